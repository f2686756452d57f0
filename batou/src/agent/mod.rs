//! The agent: the same executable started in agent mode on each host, and
//! the controller's connection to it.
//!
//! The controller never deploys in-process: even `connect_method = local`
//! starts `<current executable> agent` as a subprocess and drives it through
//! [`protocol`], exactly as a remote host would be driven over SSH.

pub mod client;
pub mod liveness;
mod outbox;
pub mod protocol;
pub mod server;
