use batou::prelude::*;

#[component(namevar = pth)]
pub struct Thing {
    path: String,
}

impl Component for Thing {}

fn main() {}
