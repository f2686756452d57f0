//! The components of this deployment: one directory each, with the
//! component's code in `component.rs` and its templates next to it.

#[path = "tick/component.rs"]
pub mod tick;
