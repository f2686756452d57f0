// The runtime is not public API: only what component code needs is.
use batou::shipping::Entry;
use batou::transport::TransportError;
use batou::ui::text::BatouText;

fn main() {}
