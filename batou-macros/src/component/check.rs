//! Semantic validation of a parsed component.

use super::model::Component;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

/// Names that the generated code uses as methods or that batou reserves.
const RESERVED: &[&str] = &["new", "__batou"];

/// Pushes an error for every problem of the model.
pub fn check(c: &Component, errors: &mut Vec<syn::Error>) {
    if !c.item.generics.params.is_empty() {
        errors.push(syn::Error::new(
            c.item.generics.span(),
            "#[component] does not support generic structs",
        ));
    }
    if c.name.is_empty()
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        || c.name.starts_with(|ch: char| ch.is_ascii_digit())
    {
        errors.push(syn::Error::new(
            c.name_span,
            "component names may only contain ASCII letters, digits and `_`, and must not start with a digit",
        ));
    }
    match (&c.platform, &c.base) {
        (Some(p), None) => errors.push(syn::Error::new(
            p.span(),
            "a platform component needs `base = Component` (the component it belongs to)",
        )),
        (None, Some(b)) => errors.push(syn::Error::new(
            b.span(),
            "`base` is only used with `platform = \"...\"`",
        )),
        _ => {}
    }
    if let Some(nv) = &c.namevar {
        if !c.fields.iter().any(|f| &f.ident == nv) {
            errors.push(syn::Error::new(
                nv.span(),
                format!("namevar `{}` is not a field of `{}`", nv, c.ident),
            ));
        }
    }
    for arg in &c.args {
        let is_attribute = c
            .fields
            .iter()
            .any(|f| &f.ident == arg && f.attribute.is_some());
        if !is_attribute || c.namevar.as_ref() == Some(arg) {
            errors.push(syn::Error::new(
                arg.span(),
                format!(
                    "`{arg}` in `args` must be an #[attribute] field of `{}` other than the namevar",
                    c.ident
                ),
            ));
        }
    }
    for f in &c.fields {
        let name = f.ident.unraw().to_string();
        if RESERVED.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                f.ident.span(),
                format!("the field name `{name}` is reserved by #[component]"),
            ));
        }
        if let Some(opts) = &f.attribute {
            if opts.optional && c.namevar.as_ref() == Some(&f.ident) {
                errors.push(syn::Error::new(
                    f.ty.span(),
                    "the namevar is always given to `new()`, it cannot be an `Option`",
                ));
            }
        }
    }
}
