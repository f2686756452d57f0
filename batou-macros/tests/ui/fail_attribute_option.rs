use batou::prelude::*;

#[component]
pub struct Thing {
    #[attribute(defualt = 1)]
    count: u32,
    #[attribute(default = 1, default = 2)]
    other: u32,
    #[attribute = 3]
    third: u32,
}

impl Component for Thing {}

fn main() {}
