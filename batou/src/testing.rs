//! Testing components without a deployment crate: configure one component
//! as a root on `localhost` and deploy it in-process, collecting the output.
//! (Deployments themselves always go through the agent; this is for unit
//! tests of component code, like batou's `root` fixture.)
//!
//! ```
//! use batou::prelude::*;
//! use batou::testing::TestRoot;
//!
//! #[component]
//! pub struct Marker {
//!     #[attribute(default = "hello")]
//!     text: String,
//! }
//!
//! impl Component for Marker {
//!     fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
//!         ensure!(cx.workdir().join("marker").exists());
//!         Ok(())
//!     }
//!     fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
//!         std::fs::write(cx.workdir().join("marker"), &self.text)?;
//!         Ok(())
//!     }
//! }
//!
//! let dir = std::env::temp_dir().join(format!("batou-doc-{}", std::process::id()));
//! let mut root = TestRoot::new(&dir);
//! root.configure(Marker::new()).unwrap();
//! assert!(root.deploy().unwrap());       // changed
//! assert!(!root.deploy().unwrap());      // converged
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::component::{Component, DynComponent};
use crate::environment::Environment;
use crate::model::{DeployRun, ModelEnv, Node};
use crate::output::Line;
use crate::report::Report;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One component configured as a root on host `localhost`.
pub struct TestRoot {
    env: ModelEnv,
    node: Option<Node>,
    lines: Mutex<Vec<Line>>,
    logs: Vec<String>,
    root_name: String,
    provided: Vec<crate::model::ProvideFn>,
}

impl std::fmt::Debug for TestRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRoot")
            .field("root", &self.root_name)
            .field("configured", &self.node.is_some())
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

impl TestRoot {
    /// A root in `project_root` (its definition directory too).
    pub fn new(project_root: &Path) -> TestRoot {
        let mut environment = Environment::new("test", "environments/test/environment.cfg");
        environment.connect_method = crate::settings::ConnectMethod::Local;
        let host = environment.new_host("localhost");
        environment.hosts.push(host);
        TestRoot {
            env: ModelEnv::new(project_root.to_path_buf(), environment),
            node: None,
            lines: Mutex::new(Vec::new()),
            logs: Vec::new(),
            root_name: String::new(),
            provided: Vec::new(),
        }
    }

    /// Sets the secret values used for masking diffs.
    pub fn with_secrets(mut self, secrets: &[&str]) -> TestRoot {
        self.env.secret_data = std::sync::Arc::new(secrets.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Provides a resource value to the component under test (as another
    /// root on `localhost` would).
    pub fn provide<T: crate::resources::ResourceValue>(
        mut self,
        resource: &crate::resources::Resource<T>,
        value: T,
    ) -> TestRoot {
        let key = resource.key().to_string();
        self.provided.push(Box::new(move |resources, root| {
            resources.provide(root, &key, value.clone(), "TestRoot::provide")
        }));
        self
    }

    /// Configures the component (and its sub-components). A component
    /// that carries files (templates next to its source) finds them there;
    /// others resolve names against the project directory. A requirement
    /// nobody provides is an error.
    pub fn configure<C: Component>(&mut self, component: C) -> Result<(), Vec<Report>> {
        let boxed: Box<dyn DynComponent> = Box::new(component);
        let name = boxed.component_name().to_string();
        self.root_name = name.clone();
        let workdir: PathBuf = self.env.project_root.join("work").join(&name);
        // The component's own directory when it carries files (a library
        // component's templates), else the project (File, Directory, ...
        // resolve names against it).
        let type_id = boxed.as_any().type_id();
        let defdir = crate::component::registrations()
            .into_iter()
            .find(|r| (r.type_id)() == type_id && !r.files.is_empty())
            .map(|r| r.compiled_defdir())
            .unwrap_or_else(|| self.env.project_root.clone());
        let host = self.env.environment.hosts[0].clone();
        let root = crate::model::SingleRoot {
            name: &name,
            workdir,
            defdir,
            provided: &self.provided,
        };
        let node = crate::model::configure_single(&self.env, &host, root, boxed, &mut self.logs)?;
        self.node = Some(node);
        Ok(())
    }

    fn run(&mut self, predict: bool) -> Result<bool, Vec<Line>> {
        let Some(node) = self.node.as_ref() else {
            return Err(vec![Line::plain("ERROR: configure() first")]);
        };
        let lines = &self.lines;
        let sink = |e: crate::events::Event| {
            if let Some(l) = crate::ui::text::component_line(&e) {
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(l);
            }
        };
        let run = DeployRun {
            env: &self.env,
            root_name: &self.root_name,
            host_name: "localhost",
            host_fqdn: "localhost",
            predict,
            sink: &sink,
            stats: Default::default(),
        };
        crate::model::deploy_tree(node, &run)
    }

    /// Deploys; `Ok(true)` if anything changed.
    pub fn deploy(&mut self) -> Result<bool, Vec<Line>> {
        self.run(false)
    }

    /// Predicts (`-P`): verify only; `Ok(true)` if anything would change.
    pub fn predict(&mut self) -> Result<bool, Vec<Line>> {
        self.run(true)
    }

    /// The output lines so far (and forgets them).
    pub fn take_output(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    /// Configure-time log lines.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The working directory of the root.
    pub fn workdir(&self) -> PathBuf {
        self.node
            .as_ref()
            .map(|n| n.workdir.clone())
            .unwrap_or_default()
    }
}
