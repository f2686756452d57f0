use batou::prelude::*;

#[component]
pub struct Thing {
    #[attribute]
    new: Option<String>,
}

impl Component for Thing {}

fn main() {}
