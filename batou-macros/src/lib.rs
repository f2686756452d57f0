//! Procedural macros of batou.
//!
//! - `#[component]` turns a struct with `#[attribute(...)]` fields into a batou
//!   component: constructor, builder setters, override conversion, template
//!   exposure, registration through `inventory`, and a hidden macro that the
//!   compile-time environment check calls.
//! - `check_environments!()` reads every `environments/*/environment.cfg` of
//!   the crate being compiled and makes `cargo build` fail when an override
//!   names an unknown component or attribute.
//! - `components!()` declares the deployment crate's component modules, one
//!   per `components/<name>/component.rs`.
//!
//! Like serde_derive, the code is split into parsing into a model
//! (`component::model`), validation (`component::check`) and generation
//! (`component::expand`). Use these macros through the `batou` crate, which
//! re-exports them.

mod component;
mod components;
mod environments;
mod paths;

use proc_macro::TokenStream;

/// *Defined in batou-macros and re-exported by batou: use it as
/// `batou::component`; the reference is in batou's documentation.*
#[proc_macro_attribute]
pub fn component(args: TokenStream, input: TokenStream) -> TokenStream {
    component::expand(args.into(), input.into()).into()
}

/// *Defined in batou-macros and re-exported by batou: use it as
/// `batou::check_environments!()`; the reference is in batou's documentation.*
#[proc_macro]
pub fn check_environments(input: TokenStream) -> TokenStream {
    environments::expand(input.into()).into()
}

/// *Defined in batou-macros and re-exported by batou: use it as
/// `batou::components!()`; the reference is in batou's documentation.*
#[proc_macro]
pub fn components(input: TokenStream) -> TokenStream {
    components::expand(input.into()).into()
}

/// *Used by the code `#[component]` generates*: the build error for an
/// override of an attribute a component lacks, with the nearest known
/// name. Input: `"location", "component", "key", ["known", ...]`.
#[doc(hidden)]
#[proc_macro]
pub fn __unknown_attribute(input: TokenStream) -> TokenStream {
    component::unknown_attribute(input.into()).into()
}
