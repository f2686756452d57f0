//! Views of the event stream: batou's text on a terminal ([`text`]) and
//! JSON lines ([`json`]), chosen once, in `main`. The `secrets`, `graph`
//! and `migrate` subcommands have their own views ([`secrets`], [`graph`],
//! [`migrate`]). Not everything prints through a view yet: the agent's
//! stderr is passed on as it comes, and a refused controller lock is
//! written directly (issue #26 moves both into events).

pub mod graph;
pub mod json;
pub mod migrate;
pub mod progress;
pub mod secrets;
pub mod text;

pub use json::JsonLines;
pub use text::BatouText;
