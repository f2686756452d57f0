//! batou's `before-update` event with the `*` and `precursor` scopes.

use batou::component::EventScope;
use batou::prelude::*;
use batou::testing::TestRoot;
use std::sync::Mutex;

static HEARD: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[component(namevar = name)]
pub struct Changing {
    name: String,
}
impl Component for Changing {
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join(&self.name).exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        HEARD.lock().unwrap().push(format!("update {}", self.name));
        std::fs::write(cx.workdir().join(&self.name), "")?;
        Ok(())
    }
}

#[component(namevar = name)]
pub struct Watcher {
    name: String,
    #[attribute(default = false)]
    precursor_only: bool,
}
impl Component for Watcher {
    fn before_update_scope(&self) -> Option<EventScope> {
        Some(if self.precursor_only {
            EventScope::Precursor
        } else {
            EventScope::All
        })
    }
    fn before_update(&mut self, _cx: &mut Deploy, source: &str) -> batou::Result<()> {
        HEARD
            .lock()
            .unwrap()
            .push(format!("{} heard {source}", self.name));
        Ok(())
    }
}

#[component]
pub struct Events {}
impl Component for Events {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(Watcher::new("all"));
        cx.add(Changing::new("a"));
        cx.add(Watcher::new("later").precursor_only(true));
        cx.add(Changing::new("b"));
        Ok(())
    }
}

#[test]
fn before_update_reaches_every_handler_of_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Events::new()).unwrap();

    assert!(root.predict().unwrap());
    let out = root.take_output();
    assert!(
        out.contains(&"Trigger before-update: Events > Watcher('all').before_update".to_string()),
        "{out:?}"
    );
    assert!(
        HEARD.lock().unwrap().is_empty(),
        "predicting calls no handler"
    );

    assert!(root.deploy().unwrap());
    assert_eq!(
        *HEARD.lock().unwrap(),
        [
            "all heard Events > Changing('a')",
            "later heard Events > Changing('a')",
            "update a",
            // `later` comes before b: a precursor handler does not hear it.
            "all heard Events > Changing('b')",
            "update b",
        ]
    );
    HEARD.lock().unwrap().clear();
    assert!(!root.deploy().unwrap());
    assert!(HEARD.lock().unwrap().is_empty());
}
