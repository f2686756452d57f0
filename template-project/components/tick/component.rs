//! The tutorial's Tick: a shell script that prints the date every few
//! seconds.

use batou::prelude::*;
use batou_stdlib::file::File;

/// Renders `tick.sh` (next to this file) into `work/tick/tick.sh`.
#[component]
pub struct Tick {
    /// Seconds between two lines (override with `[component:tick] sleep = 10`).
    #[attribute(default = 1)]
    sleep: u64,
}

impl Component for Tick {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("tick.sh").mode("rwxr-xr-x"));
        Ok(())
    }
}
