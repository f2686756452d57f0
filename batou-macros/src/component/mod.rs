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

/// `"location", "component", "key", ["known", ...]`.
struct UnknownAttribute {
    location: syn::LitStr,
    component: syn::LitStr,
    key: syn::LitStr,
    known: Vec<syn::LitStr>,
}

impl syn::parse::Parse for UnknownAttribute {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        let location = input.parse()?;
        input.parse::<syn::Token![,]>()?;
        let component = input.parse()?;
        input.parse::<syn::Token![,]>()?;
        let key = input.parse()?;
        input.parse::<syn::Token![,]>()?;
        let list;
        syn::bracketed!(list in input);
        let known = list
            .parse_terminated(<syn::LitStr as syn::parse::Parse>::parse, syn::Token![,])?
            .into_iter()
            .collect();
        Ok(UnknownAttribute {
            location,
            component,
            key,
            known,
        })
    }
}

/// The build error for an override of an attribute a component lacks:
/// `LOCATION: component `C` has no attribute `K`, did you mean `N`?
/// (known attributes: ...)`, at the key's span.
pub fn unknown_attribute(input: TokenStream) -> TokenStream {
    let u: UnknownAttribute = match syn::parse2(input) {
        Ok(u) => u,
        Err(e) => return e.to_compile_error(),
    };
    let known: Vec<String> = u.known.iter().map(syn::LitStr::value).collect();
    let key = u.key.value();
    let hint = batou_cfg::closest(&key, &known)
        .map(|n| format!(", did you mean `{n}`?"))
        .unwrap_or_default();
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let message = format!(
        "{}: component `{}` has no attribute `{key}`{hint} (known attributes: {list})",
        u.location.value(),
        u.component.value()
    );
    let span = u.key.span();
    quote::quote_spanned! {span=> ::core::compile_error!(#message); }
}
