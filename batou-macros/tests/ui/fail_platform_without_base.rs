use batou::prelude::*;

#[component(platform = "debian")]
pub struct DebianThing {}

impl Component for DebianThing {}

fn main() {}
