use batou::prelude::*;

#[component]
pub struct Tuple(u32);

fn main() {}
