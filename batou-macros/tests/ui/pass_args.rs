use batou::prelude::*;

#[component(namevar = uri, args = [checksum])]
pub struct Fetch {
    uri: String,
    #[attribute]
    checksum: String,
    #[attribute(default = 3)]
    tries: u64,
}

impl Component for Fetch {}

fn main() {
    let f = Fetch::new("https://example.com/a.tgz", "sha256:00").tries(5);
    let _ = f;
}
