//! Reaching hosts: the system OpenSSH client as transport (it honours the
//! user's full OpenSSH configuration: Include, Match, ProxyJump,
//! ControlMaster, agents, FIDO keys), and uploading this executable as the
//! agent.

pub mod ssh;

pub use ssh::Ssh;
