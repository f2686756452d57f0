use batou::component::ComponentMeta;
use batou::prelude::*;

#[component(namevar = path)]
pub struct Thing {
    path: String,
    #[attribute(default = 3)]
    count: u32,
    #[attribute(default = "rwxr-x---")]
    mode: batou::component::Mode,
    #[attribute]
    note: Option<String>,
    #[attribute(expand = false)]
    required: String,
    scratch: Vec<u8>,
}

impl Component for Thing {}

fn main() {
    let t = Thing::new("a").count(4u32).note("n").required("r");
    assert_eq!(t.count, 4);
    assert_eq!(t.mode.0, 0o750);
    assert_eq!(t.note.as_deref(), Some("n"));
    assert!(t.scratch.is_empty());
    assert_eq!(Thing::NAME, "thing");
    let names: Vec<_> = Thing::ATTRIBUTES.iter().map(|a| a.name).collect();
    assert_eq!(names, ["path", "count", "mode", "note", "required"]);
    assert!(Thing::ATTRIBUTES[4].required && !Thing::ATTRIBUTES[3].required);
}
