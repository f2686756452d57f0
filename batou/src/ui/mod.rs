//! Views of the event stream: batou's text on a terminal ([`text`]) and
//! JSON lines ([`json`]). Chosen once, in `main`; nothing else prints.
//! The `secrets` subcommands have their own view ([`secrets`]).

pub mod graph;
pub mod json;
pub mod migrate;
pub mod progress;
pub mod secrets;
pub mod text;

pub use json::JsonLines;
pub use text::BatouText;
