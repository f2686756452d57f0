use batou::prelude::*;

/// `args`: what cannot come from the environment is an argument of `new`.
#[component(namevar = uri, args = [checksum])]
pub struct Fetch {
    uri: String,
    #[attribute]
    checksum: String,
}

impl Component for Fetch {}

#[component(namevar = uri, args = [uri, size])]
pub struct Bad {
    uri: String,
    size: u64,
}

impl Component for Bad {}

fn main() {
    let _ = Fetch::new("https://example.com/a.tgz");
}
