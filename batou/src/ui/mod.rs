//! Views of the event stream: batou's text on a terminal ([`text`]) and
//! JSON lines ([`json`]). Chosen once, in `main`; nothing else prints.

pub mod graph;
pub mod json;
pub mod progress;
pub mod text;

pub use json::JsonLines;
pub use text::BatouText;
