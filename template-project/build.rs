// Rebuild when an environment is added or removed: `check_environments!()`
// checks every `[component:NAME]` override against the components at
// compile time.
fn main() {
    println!("cargo::rerun-if-changed=environments");
}
