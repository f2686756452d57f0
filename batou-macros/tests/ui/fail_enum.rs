use batou::prelude::*;

#[component]
pub enum NotAStruct {
    A,
}

fn main() {}
