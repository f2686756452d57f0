use batou::prelude::*;

#[component(namevr = path)]
pub struct Thing {
    path: String,
}

impl Component for Thing {}

fn main() {}
