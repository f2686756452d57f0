//! The standard library of batou components, written with the same
//! `#[component]` macro users write theirs with.
//!
//! - [`file`]: File, BinaryFile, Presence, Directory, SyncDirectory, Symlink,
//!   Mode, Owner, Group, Content, JSONContent, YAMLContent, Purge.
//!
//! Every write is atomic: a temporary file in the same directory, then a
//! rename, so a killed deployment never leaves a half-written managed file.

pub mod file;
