//! What a component library's own tests look like: a component with a
//! template next to its source, requiring a resource, tested with
//! `TestRoot` (which provides the resource and finds the template).

use batou::prelude::*;
use batou::testing::TestRoot;
use batou_stdlib::file::File;

pub const GREETING: Resource<String> = Resource::new("greeting");

/// Renders `motd.txt` (next to this file) with the greetings provided.
#[component]
pub struct Motd {
    #[attribute(default = "")]
    greeting: String,
}

impl Component for Motd {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        self.greeting = cx.require(&GREETING)?.join(", ");
        cx.add(File::new("motd.txt"));
        Ok(())
    }
}

#[test]
fn a_library_component_with_its_template_and_a_resource() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path()).provide(&GREETING, "hello".to_string());
    root.configure(Motd::new()).unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("work/motd/motd.txt")).unwrap(),
        "Message of the day: hello\n"
    );
}

#[test]
fn a_requirement_nobody_provides_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    let errors = root.configure(Motd::new()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].title, "Unsatisfied resource requirements");
    let fields: Vec<(&str, &str)> = errors[0]
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(fields.contains(&("Resources", "greeting")), "{fields:?}");
}
