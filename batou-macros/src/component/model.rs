//! The model of a `#[component]` struct, parsed from syn's AST.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Ident, ItemStruct, LitBool, LitStr, Type};

/// A component as the macro understands it.
pub struct Component {
    pub item: ItemStruct,
    pub ident: Ident,
    /// Registered name (lowercased struct name unless `name = "..."`).
    pub name: String,
    pub name_span: Span,
    /// The namevar field, if any.
    pub namevar: Option<Ident>,
    /// `args = [field, ...]`: attributes `new()` takes after the namevar,
    /// so that leaving out a required value fails the build.
    pub args: Vec<Ident>,
    /// `platform = "name"`: attached to `base` on hosts of that platform.
    pub platform: Option<LitStr>,
    /// `base = Type`: the component a platform component belongs to.
    pub base: Option<syn::Path>,
    /// `features = ["a", "b"]`: the feature names the environment may
    /// enable (`component:feature`).
    pub features: Vec<LitStr>,
    pub fields: Vec<Field>,
}

/// One field of the struct.
pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    /// `Some` for `#[attribute]` fields (and the namevar).
    pub attribute: Option<AttributeOptions>,
}

/// The options of `#[attribute(...)]`.
#[derive(Default)]
pub struct AttributeOptions {
    pub default: Option<Expr>,
    /// Expand overrides as templates before converting (default true).
    pub expand: bool,
    /// The field's type is `Option<_>`.
    pub optional: bool,
}

const HELPER: &str = "attribute";

impl Component {
    /// Parses the macro arguments and the struct. Problems are pushed to
    /// `errors`; `None` means the struct cannot be used at all.
    pub fn parse(
        args: TokenStream,
        item: ItemStruct,
        errors: &mut Vec<syn::Error>,
    ) -> Option<Self> {
        let ident = item.ident.clone();
        let mut name = ident.to_string().to_lowercase();
        let mut name_span = ident.span();
        let mut namevar = None;
        let mut ctor_args = Vec::new();
        let mut platform = None;
        let mut base = None;
        let mut features = Vec::new();

        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("namevar") {
                let value: Ident = meta.value()?.parse()?;
                namevar = Some(value);
                Ok(())
            } else if meta.path.is_ident("args") {
                let list: syn::ExprArray = meta.value()?.parse()?;
                for e in list.elems {
                    match e {
                        Expr::Path(p) if p.path.get_ident().is_some() => {
                            ctor_args.extend(p.path.get_ident().cloned())
                        }
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "args are attribute fields: `args = [checksum]`",
                            ))
                        }
                    }
                }
                Ok(())
            } else if meta.path.is_ident("platform") {
                platform = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else if meta.path.is_ident("base") {
                base = Some(meta.value()?.parse::<syn::Path>()?);
                Ok(())
            } else if meta.path.is_ident("features") {
                let list: syn::ExprArray = meta.value()?.parse()?;
                for e in list.elems {
                    match e {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => features.push(s),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "features are string literals: `features = [\"hourly\"]`",
                            ))
                        }
                    }
                }
                Ok(())
            } else if meta.path.is_ident("name") {
                let value: LitStr = meta.value()?.parse()?;
                name = value.value();
                name_span = value.span();
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[component] option; expected `namevar = field`, `args = [field, ...]`, `name = \"...\"`, `features = [...]`, `platform = \"...\"` or `base = Type`",
                ))
            }
        });
        if let Err(e) = parser.parse2(args) {
            errors.push(e);
        }

        let empty = syn::punctuated::Punctuated::<syn::Field, syn::Token![,]>::new();
        let named = match &item.fields {
            syn::Fields::Named(named) => &named.named,
            // `pub struct Tick;`: a component without attributes.
            syn::Fields::Unit => &empty,
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    "#[component] can only be used on a struct with named fields or a unit struct",
                ));
                return None;
            }
        };

        let mut fields = Vec::new();
        for f in named {
            let Some(fident) = f.ident.clone() else {
                continue;
            };
            let mut attribute = None;
            for attr in &f.attrs {
                if !attr.path().is_ident(HELPER) {
                    continue;
                }
                if attribute.is_some() {
                    errors.push(syn::Error::new(
                        attr.span(),
                        "duplicate #[attribute] on this field",
                    ));
                    continue;
                }
                let mut opts = AttributeOptions {
                    expand: true,
                    optional: is_option(&f.ty),

                    ..Default::default()
                };
                if let syn::Meta::List(_) = &attr.meta {
                    let mut seen_default = false;
                    let mut seen_expand = false;
                    let res = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("default") {
                            if seen_default {
                                return Err(meta.error("duplicate `default`"));
                            }
                            seen_default = true;
                            opts.default = Some(meta.value()?.parse()?);
                            Ok(())
                        } else if meta.path.is_ident("expand") {
                            if seen_expand {
                                return Err(meta.error("duplicate `expand`"));
                            }
                            seen_expand = true;
                            let v: LitBool = meta.value()?.parse()?;
                            opts.expand = v.value;
                            Ok(())
                        } else {
                            Err(meta.error(
                                "unknown #[attribute] option; expected `default = <expr>` or `expand = <bool>`",
                            ))
                        }
                    });
                    if let Err(e) = res {
                        errors.push(e);
                    }
                } else if let syn::Meta::NameValue(nv) = &attr.meta {
                    errors.push(syn::Error::new(
                        nv.span(),
                        "expected #[attribute] or #[attribute(default = <expr>)]",
                    ));
                }
                attribute = Some(opts);
            }
            if attribute.is_none() && namevar.as_ref() == Some(&fident) {
                attribute = Some(AttributeOptions {
                    expand: true,
                    optional: is_option(&f.ty),

                    ..Default::default()
                });
            }
            fields.push(Field {
                ident: fident,
                ty: f.ty.clone(),
                attribute,
            });
        }

        Some(Component {
            item,
            ident,
            name,
            name_span,
            namevar,
            args: ctor_args,
            platform,
            base,
            features,
            fields,
        })
    }

    /// The fields that are attributes, in declaration order.
    pub fn attributes(&self) -> impl Iterator<Item = (&Field, &AttributeOptions)> {
        self.fields
            .iter()
            .filter_map(|f| f.attribute.as_ref().map(|a| (f, a)))
    }
}

/// Whether a type is spelled `Option<...>`.
fn is_option(ty: &Type) -> bool {
    if let Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            return last.ident == "Option";
        }
    }
    false
}

/// Removes `#[attribute]` from the fields, for emitting the struct unchanged
/// next to compile errors.
pub fn strip_helper_attributes(mut item: ItemStruct) -> ItemStruct {
    if let syn::Fields::Named(named) = &mut item.fields {
        for f in named.named.iter_mut() {
            f.attrs.retain(|a| !a.path().is_ident(HELPER));
        }
    }
    item
}
