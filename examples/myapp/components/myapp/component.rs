//! The application of batou's front page:
//!
//! ```python
//! class MyApp(Component):
//!     def configure(self):
//!         venv = VirtualEnv('3'); self += venv
//!         venv += Package('myapp')
//!         self += Program('myapp', command='bin/myapp')
//! ```

use batou::prelude::*;
use batou_stdlib::python::{Package, VirtualEnv};
use batou_stdlib::supervisor::Program;

/// `myapp` from the package index, run by the host's supervisor.
#[component]
pub struct MyApp {
    /// The release of the `myapp` package.
    #[attribute(default = "1.0")]
    version: String,
    /// More pip arguments: where the package comes from
    /// (`--index-url=https://pypi.example.com/simple`, or
    /// `--no-index, --find-links=/srv/wheels`).
    #[attribute(default = Vec::<String>::new())]
    pip_options: Vec<String>,
}

impl Component for MyApp {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(
            VirtualEnv::new("3").package(
                Package::new("myapp")
                    .version(self.version.clone())
                    .install_options(self.pip_options.clone()),
            ),
        );
        cx.add(Program::new("myapp", "bin/myapp"));
        Ok(())
    }
}
