use batou::prelude::*;

#[component]
pub struct Thing<T> {
    #[attribute]
    value: Option<T>,
}

fn main() {}
