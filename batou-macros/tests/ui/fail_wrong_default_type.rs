use batou::prelude::*;

#[component]
pub struct Thing {
    #[attribute(default = "three")]
    count: u32,
}

impl Component for Thing {}

fn main() {}
