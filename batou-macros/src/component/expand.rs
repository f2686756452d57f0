//! Code generation for `#[component]`.

use super::model::Component;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;

/// Generates the struct and everything batou needs to know about it.
pub fn generate(c: &Component) -> TokenStream {
    let ident = &c.ident;
    let name = &c.name;
    let type_name = ident.to_string();
    let p = quote!(::batou::component::__private);
    let p_meta = quote!(::batou::component::__private::ComponentMeta);

    // The struct itself, with our helper attributes removed and the hidden
    // attribute state appended.
    let mut item = super::model::strip_helper_attributes(c.item.clone());
    if matches!(item.fields, syn::Fields::Unit) {
        item.fields = syn::Fields::Named(syn::parse_quote!({}));
        item.semi_token = None;
    }
    if let syn::Fields::Named(named) = &mut item.fields {
        named.named.push(syn::parse_quote! {
            #[doc(hidden)]
            pub __batou: #p::AttrState
        });
    }

    let attrs: Vec<_> = c.attributes().collect();
    let n_attrs = attrs.len();

    // Attribute metadata.
    let infos = attrs.iter().map(|(f, o)| {
        let aname = f.ident.unraw().to_string();
        let ty = &f.ty;
        let ty_str = quote!(#ty).to_string().replace(' ', "");
        let required = o.default.is_none() && !o.optional && c.namevar.as_ref() != Some(&f.ident);
        let namevar = c.namevar.as_ref() == Some(&f.ident);
        let expand = o.expand;
        quote! {
            #p::AttributeInfo {
                name: #aname,
                type_name: #ty_str,
                required: #required,
                namevar: #namevar,
                expand: #expand,
            }
        }
    });

    // Field initialisers for `__batou_with_defaults`.
    let mut index = 0usize;
    let inits = c.fields.iter().map(|f| {
        let fid = &f.ident;
        let ty = &f.ty;
        match &f.attribute {
            None => quote! { #fid: ::core::default::Default::default() },
            Some(o) => {
                let i = index;
                index += 1;
                let aname = fid.unraw().to_string();
                if let Some(default) = &o.default {
                    let span = syn::spanned::Spanned::span(default);
                    quote_spanned! {span=>
                        #fid: match #p::IntoAttribute::<#ty>::into_attribute(#default) {
                            ::core::result::Result::Ok(v) => { __state.mark(#i); v }
                            ::core::result::Result::Err(e) => {
                                __state.push_error(#aname, e);
                                ::core::default::Default::default()
                            }
                        }
                    }
                } else if o.optional {
                    quote! { #fid: { __state.mark(#i); ::core::option::Option::None } }
                } else {
                    quote! { #fid: ::core::default::Default::default() }
                }
            }
        }
    });

    // Setters and conversions.
    let mut setters = Vec::new();
    let mut set_arms = Vec::new();
    let mut values = Vec::new();
    let mut namevar_value = quote!(::core::option::Option::None);
    // `new()`'s parameters: the namevar, then `args`.
    let mut params = Vec::new();
    let mut assigns = Vec::new();
    let mut param_names = Vec::new();
    for (i, (f, _o)) in attrs.iter().enumerate() {
        let fid = &f.ident;
        let ty = &f.ty;
        let aname = fid.unraw().to_string();
        let is_namevar = c.namevar.as_ref() == Some(fid);
        set_arms.push(quote! {
            #aname => ::core::option::Option::Some(
                <#ty as #p::ConfigValue>::from_config(raw).map(|v| {
                    self.#fid = v;
                    self.__batou.mark(#i);
                })
            ),
        });
        values.push(quote! { (#aname, #p::ConfigValue::to_template(&self.#fid)) });
        let assign = quote! {
            match #p::IntoAttribute::<#ty>::into_attribute(#fid) {
                ::core::result::Result::Ok(v) => { this.#fid = v; this.__batou.mark(#i); }
                ::core::result::Result::Err(e) => this.__batou.push_error(#aname, e),
            }
        };
        if is_namevar {
            namevar_value =
                quote!(::core::option::Option::Some(#p::ConfigValue::to_template(&self.#fid)));
            params.insert(0, quote!(#fid: impl #p::IntoAttribute<#ty>));
            assigns.insert(0, assign);
            param_names.insert(0, format!("`{aname}`"));
            continue;
        }
        if c.args.contains(fid) {
            params.push(quote!(#fid: impl #p::IntoAttribute<#ty>));
            assigns.push(assign);
            param_names.push(format!("`{aname}`"));
        }
        let doc = format!("Sets the attribute `{aname}`.");
        setters.push(quote! {
            #[doc = #doc]
            #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
            pub fn #fid(mut self, value: impl #p::IntoAttribute<#ty>) -> Self {
                match #p::IntoAttribute::<#ty>::into_attribute(value) {
                    ::core::result::Result::Ok(v) => { self.#fid = v; self.__batou.mark(#i); }
                    ::core::result::Result::Err(e) => self.__batou.push_error(#aname, e),
                }
                self
            }
        });
    }
    let (ctor, default_impl) = if params.is_empty() {
        (
            quote! {
                /// Creates the component with its default attribute values.
                pub fn new() -> Self {
                    Self::__batou_with_defaults()
                }
            },
            quote! {
                impl ::core::default::Default for #ident {
                    fn default() -> Self { Self::__batou_with_defaults() }
                }
            },
        )
    } else {
        let doc = format!("Creates the component with {}.", param_names.join(", "));
        (
            quote! {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments)]
                pub fn new(#(#params),*) -> Self {
                    let mut this = Self::__batou_with_defaults();
                    #(#assigns)*
                    this
                }
            },
            quote!(),
        )
    };

    // The compile-time override check macro.
    let check_macro = format_ident!("__batou_component_{}", name, span = Span::call_site());
    let known: Vec<String> = attrs
        .iter()
        .map(|(f, _)| f.ident.unraw().to_string())
        .collect();
    let name_text = name.to_string();
    let check_arms = known.iter().map(|k| quote! { (#k, $loc:literal) => {}; });

    let features = &c.features;
    let (defdir, source) = paths_relative_to_manifest();
    let embedded = embedded_files(&defdir).into_iter().map(|(rel, abs, mode)| {
        quote! {
            #p::EmbeddedFile { path: #rel, mode: #mode, data: ::core::include_bytes!(#abs) }
        }
    });
    let platform = match (&c.platform, &c.base) {
        (Some(p), Some(b)) => quote! {
            ::core::option::Option::Some((#p, <#b as #p_meta>::NAME))
        },
        _ => quote!(::core::option::Option::None),
    };

    quote! {
        #item

        #[allow(dead_code)]
        impl #ident {
            #[doc(hidden)]
            fn __batou_with_defaults() -> Self {
                #[allow(unused_mut)]
                let mut __state = #p::AttrState::new(#n_attrs);
                Self {
                    #(#inits,)*
                    __batou: __state,
                }
            }

            #ctor

            #(#setters)*
        }

        #default_impl

        impl #p::ComponentMeta for #ident {
            const NAME: &'static str = #name;
            const TYPE_NAME: &'static str = #type_name;
            const ATTRIBUTES: &'static [#p::AttributeInfo] = &[#(#infos),*];

            fn instantiate() -> Self {
                Self::__batou_with_defaults()
            }
            fn attr_state(&self) -> &#p::AttrState {
                &self.__batou
            }
            fn attr_state_mut(&mut self) -> &mut #p::AttrState {
                &mut self.__batou
            }
            fn set_attribute(
                &mut self,
                name: &str,
                raw: &str,
            ) -> ::core::option::Option<::core::result::Result<(), #p::ConversionError>> {
                #[allow(unreachable_code, unused_variables)]
                match name {
                    #(#set_arms)*
                    _ => ::core::option::Option::None,
                }
            }
            fn attribute_values(&self) -> ::std::vec::Vec<(&'static str, #p::Value)> {
                ::std::vec![#(#values),*]
            }
            fn namevar_value(&self) -> ::core::option::Option<#p::Value> {
                #namevar_value
            }
        }

        const _: () = {
            fn __batou_factory() -> ::std::boxed::Box<dyn #p::DynComponent> {
                #p::instantiate_boxed::<#ident>()
            }
            #p::inventory::submit! {
                #p::Registration {
                    name: #name,
                    type_name: #type_name,
                    file: ::core::file!(),
                    line: ::core::line!(),
                    manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
                    defdir: #defdir,
                    source: #source,
                    package: ::core::env!("CARGO_PKG_NAME"),
                    crate_name: ::core::env!("CARGO_CRATE_NAME"),
                    platform: #platform,
                    features: &[#(#features),*],
                    attributes: <#ident as #p::ComponentMeta>::ATTRIBUTES,
                    files: &[#(#embedded),*],
                    factory: __batou_factory,
                    type_id: ::core::any::TypeId::of::<#ident>,
                }
            }
        };

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #check_macro {
            (@root, $loc:literal) => {};
            #(#check_arms)*
            ($key:literal, $loc:literal) => {
                ::batou::__private::unknown_attribute!($loc, #name_text, $key, [#(#known),*]);
            };
        }
    }
}

/// A placeholder `ComponentMeta` impl emitted next to compile errors, so
/// the user sees the real error and not "ComponentMeta is not implemented"
/// follow-ups (the clap_derive approach).
pub fn dummy(c: &Component) -> TokenStream {
    if !c.item.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = &c.ident;
    let p = quote!(::batou::component::__private);
    quote! {
        impl #p::ComponentMeta for #ident {
            const NAME: &'static str = "";
            const TYPE_NAME: &'static str = "";
            const ATTRIBUTES: &'static [#p::AttributeInfo] = &[];
            fn instantiate() -> Self { ::core::unreachable!() }
            fn attr_state(&self) -> &#p::AttrState { ::core::unreachable!() }
            fn attr_state_mut(&mut self) -> &mut #p::AttrState { ::core::unreachable!() }
            fn set_attribute(&mut self, _: &str, _: &str)
                -> ::core::option::Option<::core::result::Result<(), #p::ConversionError>> { ::core::unreachable!() }
            fn attribute_values(&self) -> ::std::vec::Vec<(&'static str, #p::Value)> { ::core::unreachable!() }
            fn namevar_value(&self) -> ::core::option::Option<#p::Value> { ::core::unreachable!() }
        }
    }
}

/// Largest file embedded next to a library component.
const MAX_EMBEDDED: u64 = 64 << 20;

/// The files next to a library component's source (its directory and
/// below; no `.rs` files, nothing hidden, no `target`), as `(path relative
/// to the directory, absolute path, permission bits)`: embedded with
/// `include_bytes!` so
/// they travel with the code (remote hosts, registry copies). Components
/// of a binary (the deployment crate) read theirs from the project.
fn embedded_files(defdir: &str) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    if std::env::var_os("CARGO_BIN_NAME").is_some() {
        return out;
    }
    let Ok(manifest) = std::env::var("CARGO_MANIFEST_DIR") else {
        return out;
    };
    let root = std::path::Path::new(&manifest).join(defdir);
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && !name.ends_with(".rs") && meta.len() <= MAX_EMBEDDED {
                if let Ok(rel) = path.strip_prefix(&root) {
                    use std::os::unix::fs::PermissionsExt;
                    out.push((
                        rel.to_string_lossy().into_owned(),
                        path.to_string_lossy().into_owned(),
                        meta.permissions().mode() & 0o7777,
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The directory of the file being compiled and the file itself, relative
/// to the crate's manifest directory (empty when unknown; the runtime then
/// falls back to `file!()`).
fn paths_relative_to_manifest() -> (String, String) {
    let none = (String::new(), String::new());
    let (Some(file), Ok(manifest)) = (
        crate::paths::invoking_file(),
        std::env::var("CARGO_MANIFEST_DIR"),
    ) else {
        return none;
    };
    match file.strip_prefix(&manifest) {
        Ok(rel) => (
            rel.parent()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rel.to_string_lossy().into_owned(),
        ),
        Err(_) => none,
    }
}
