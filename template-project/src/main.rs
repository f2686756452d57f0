//! The {{project-name}} deployment: `./batou deploy local`.

// The components: one module per `components/<name>/component.rs`, with the
// component's templates next to it.
batou::components!();

// Fails the build when environments/*/environment.cfg names an unknown
// component (in [hosts] or a [component:NAME] section) or attribute.
batou::check_environments!();

fn main() -> std::process::ExitCode {
    batou::main()
}
