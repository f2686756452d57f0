//! The component lifecycle: order, guards, helpers, output rules.

use batou::prelude::*;
use batou::testing::TestRoot;
use std::sync::Mutex;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log(s: impl Into<String>) {
    LOG.lock().unwrap().push(s.into());
}

#[component(namevar = name)]
pub struct Step {
    name: String,
    #[attribute(default = false)]
    needs_update: bool,
    #[attribute(default = false)]
    fail: bool,
    #[attribute(default = 0)]
    children: u32,
}

impl Component for Step {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        log(format!("configure {}", self.name));
        for i in 0..self.children {
            cx.add(Step::new(format!("{}.{i}", self.name)).needs_update(i == 0));
        }
        Ok(())
    }
    fn enter(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        log(format!("enter {}", self.name));
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        log(format!("verify {}", self.name));
        if self.fail {
            return Err(Error::usage("verify exploded"));
        }
        ensure!(!self.needs_update, "{} wants an update", self.name);
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        log(format!("update {}", self.name));
        cx.log(format!("updating {}", self.name));
        self.needs_update = false;
        Ok(())
    }
    fn exit(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        log(format!("exit {}", self.name));
        Ok(())
    }
}

#[component]
pub struct Parent {}

impl Component for Parent {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(Step::new("a").children(2));
        cx.add(Step::new("b"));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        log("verify parent".to_string());
        cx.assert_no_subcomponent_changes()
    }
    fn update(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        log("update parent".to_string());
        Ok(())
    }
}

#[component]
pub struct Slow {}

impl Component for Slow {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        Ok(())
    }
}

#[component]
pub struct Files {}

impl Component for Files {
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        let dir = cx.workdir().to_path_buf();
        cx.assert_file_is_current(dir.join("out"), &[dir.join("in").as_path()])?;
        cx.assert_cmd("test -e out")
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        cx.cmd("touch out")?;
        Ok(())
    }
}

#[test]
fn lifecycle() {
    // One test: the log is shared.
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Parent::new()).unwrap();
    assert_eq!(
        *LOG.lock().unwrap(),
        ["configure a", "configure a.0", "configure a.1", "configure b"],
        "depth first: a sub-component is configured (with its own sub-components) before the next one"
    );
    LOG.lock().unwrap().clear();
    assert!(root.deploy().unwrap());
    assert_eq!(
        *LOG.lock().unwrap(),
        [
            "enter a.0",
            "verify a.0",
            "update a.0",
            "exit a.0",
            "enter a.1",
            "verify a.1",
            "exit a.1",
            "enter a",
            "verify a",
            "exit a",
            "enter b",
            "verify b",
            "exit b",
            "verify parent",
            "update parent",
        ],
        "children first, in order; enter/exit around verify/update"
    );
    let out = root.take_output();
    assert_eq!(
        out,
        [
            "🚀 localhost: Parent > Step('a') > Step('a.0')",
            "localhost: updating a.0",
            "🚀 localhost: Parent",
        ]
    );

    // exit runs even when verify fails; the error names the component.
    LOG.lock().unwrap().clear();
    let mut failing = TestRoot::new(dir.path());
    failing.configure(Step::new("x").fail(true)).unwrap();
    LOG.lock().unwrap().clear();
    let err = failing.deploy().unwrap_err();
    assert_eq!(*LOG.lock().unwrap(), ["enter x", "verify x", "exit x"]);
    let text: Vec<String> = err.into_iter().map(|l| l.text).collect();
    assert_eq!(
        text,
        ["ERROR: verify exploded", "      Component: Step('x')"]
    );

    // Prediction calls verify only.
    LOG.lock().unwrap().clear();
    let mut predict = TestRoot::new(dir.path());
    predict
        .configure(Step::new("p").needs_update(true))
        .unwrap();
    LOG.lock().unwrap().clear();
    assert!(predict.predict().unwrap());
    assert_eq!(*LOG.lock().unwrap(), ["enter p", "verify p", "exit p"]);

    // Slow components get the 💤 line.
    let mut slow = TestRoot::new(dir.path());
    slow.configure(Slow::new()).unwrap();
    slow.deploy().unwrap();
    let out = slow.take_output();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("💤 localhost: Slow [total=1.1"),
        "{out:?}"
    );
    assert!(out[0].ends_with(", update=∅, sub=∅]"), "{out:?}");

    // File helpers and assert_cmd.
    let mut files = TestRoot::new(dir.path());
    files.configure(Files::new()).unwrap();
    std::fs::create_dir_all(dir.path().join("work/files")).unwrap();
    std::fs::write(dir.path().join("work/files/in"), "").unwrap();
    assert!(files.deploy().unwrap());
    assert!(!files.deploy().unwrap());
}

/// Verifies slowly: over the one second that makes a component slow.
#[component]
pub struct Sleepy {}

impl Component for Sleepy {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        Ok(())
    }
}

/// Does nothing, at once.
#[component]
pub struct Quick {}

impl Component for Quick {}

/// A component whose verify takes over a second is reported with its
/// times; a quick one is not.
#[test]
fn a_slow_verify_is_reported_with_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Sleepy::new()).unwrap();
    assert!(!root.deploy().unwrap());
    let output = root.take_output();
    assert_eq!(output.len(), 1, "{output:?}");
    let line = &output[0];
    assert!(line.starts_with("💤 localhost: Sleepy [total=1."), "{line}");
    assert!(line.contains(", verify=1."), "{line}");
    assert!(line.ends_with(", update=∅, sub=∅]"), "{line}");
    let mut quick = TestRoot::new(dir.path());
    quick.configure(Quick::new()).unwrap();
    quick.deploy().unwrap();
    assert!(
        !quick.take_output().iter().any(|l| l.starts_with("💤")),
        "no slow line for quick components"
    );
}
