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

/// A component without attributes may be a unit struct.
#[component]
pub struct Tick;

impl Component for Tick {}

#[component]
pub struct WithData {
    #[attribute]
    data: Option<serde_json::Value>,
}

impl Component for WithData {}

fn main() {
    assert!(Tick::ATTRIBUTES.is_empty());
    let _tick = Tick::new();
    // Optional attributes take plain values.
    let d = WithData::new().data(json!({"a": 1}));
    assert_eq!(d.data, Some(json!({"a": 1})));
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
