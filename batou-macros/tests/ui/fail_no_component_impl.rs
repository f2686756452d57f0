use batou::prelude::*;

#[component]
pub struct Forgotten {
    #[attribute(default = 1)]
    count: u32,
}

fn main() {}
