//! `#[component]`: parse into a model, validate, generate.

mod check;
mod expand;
mod model;

use proc_macro2::TokenStream;

/// Entry point of `#[component]`. On errors the struct is still emitted
/// (without our attributes) next to the `compile_error!`s, so the user sees
/// the real problem and not a cascade of follow-up errors.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::ItemStruct = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            return syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[component] can only be used on a struct with named fields",
            )
            .to_compile_error()
        }
    };
    let mut errors = Vec::new();
    let model = model::Component::parse(args, item.clone(), &mut errors);
    if let Some(model) = &model {
        check::check(model, &mut errors);
    }
    match (model, errors.is_empty()) {
        (Some(model), true) => expand::generate(&model),
        (model, _) => {
            let errs = errors.iter().map(syn::Error::to_compile_error);
            let clean = model::strip_helper_attributes(item);
            let dummy = model.as_ref().map(expand::dummy).unwrap_or_default();
            quote::quote! { #clean #dummy #(#errs)* }
        }
    }
}
