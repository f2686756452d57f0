//! The documented helpers of component code, each doing what the guide
//! says: `set_workdir`, `last_updated` with `assert_component_is_current`,
//! and `Child<C>` handles with `with_sub_component` and `changed`.

use batou::prelude::*;
use batou::testing::TestRoot;
use std::path::Path;

/// Writes `name` into its workdir; its `last_updated` is that file's time.
#[component(namevar = name)]
pub struct Stamp {
    name: String,
    #[attribute(default = "")]
    workdir: String,
}

impl Component for Stamp {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        if !self.workdir.is_empty() {
            cx.set_workdir(&self.workdir);
        }
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join(&self.name).exists(), "no stamp yet");
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::create_dir_all(cx.workdir())?;
        std::fs::write(cx.workdir().join(&self.name), "stamped")?;
        Ok(())
    }
    fn last_updated(&self, cx: &Deploy) -> batou::Result<Option<f64>> {
        Ok(mtime(&cx.workdir().join(&self.name)))
    }
}

fn mtime(path: &Path) -> Option<f64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// Builds `result` from its stamp: again whenever the stamp is newer (by
/// `last_updated`), and says what its child is called and whether it
/// changed.
#[component]
pub struct Builder {
    stamp: Option<Child<Stamp>>,
}

impl Component for Builder {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        self.stamp = Some(cx.add(Stamp::new("input")));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        let stamp = self.stamp.expect("configured");
        let name = cx.with_sub_component(stamp, |s| s.name.clone());
        cx.log(format!("child {name:?} changed: {}", cx.changed(stamp)));
        let mine = mtime(&cx.workdir().join("result"));
        cx.assert_component_is_current(mine, &[stamp.index()])
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::write(cx.workdir().join("result"), "built")?;
        Ok(())
    }
}

#[test]
fn last_updated_decides_with_assert_component_is_current_and_children_are_reached_by_handle() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Builder::new()).unwrap();
    assert!(root.deploy().unwrap(), "first build");
    let out = root.take_output().join("\n");
    assert!(out.contains("child Some(\"input\") changed: true"), "{out}");
    assert!(
        !root.deploy().unwrap(),
        "converged: result is newer than input"
    );
    let out = root.take_output().join("\n");
    assert!(
        out.contains("child Some(\"input\") changed: false"),
        "{out}"
    );

    // The input is touched later than the result: built again.
    let work = dir.path().join("work/builder");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(work.join("input"), "newer").unwrap();
    assert!(root.deploy().unwrap(), "the newer input rebuilds");
    assert!(!root.deploy().unwrap());
}

#[test]
fn set_workdir_moves_a_component_and_what_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Stamp::new("here").workdir("elsewhere/deeper"))
        .unwrap();
    assert!(root.deploy().unwrap());
    // Relative to the workdir it would have had.
    assert!(dir
        .path()
        .join("work/stamp/elsewhere/deeper/here")
        .is_file());
    assert!(!dir.path().join("work/stamp/here").exists());
    assert!(!root.deploy().unwrap());
}
