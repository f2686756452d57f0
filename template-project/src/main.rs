//! The {{project-name}} deployment: `./batou deploy local`.

#[path = "../components/mod.rs"]
mod components;

// Fails the build when an override in environments/*/environment.cfg names
// an unknown component or attribute.
batou::check_environments!();

fn main() -> std::process::ExitCode {
    batou::main()
}
