// Rebuild when an environment or a component directory is added or
// removed: `components!()` declares one module per
// `components/<name>/component.rs`, and `check_environments!()` checks
// environment.cfg against the components at compile time.
fn main() {
    println!("cargo::rerun-if-changed=environments");
    println!("cargo::rerun-if-changed=components");
}
