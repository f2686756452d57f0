//! batou's front-page example: `./batou deploy local` installs the Python
//! package `myapp` into a virtualenv and has supervisor run `bin/myapp`.

batou::components!();

batou::check_environments!();

fn main() -> std::process::ExitCode {
    batou::main()
}
