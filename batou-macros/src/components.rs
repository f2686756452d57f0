//! `components!()`: the deployment crate's component modules, one per
//! `components/<name>/component.rs`, without a hand-written `#[path]`
//! line each.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::path::{Path, PathBuf};

pub fn expand(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return syn::Error::new(Span::call_site(), "components!() takes no arguments")
            .to_compile_error();
    }
    let Ok(manifest) = std::env::var("CARGO_MANIFEST_DIR") else {
        return syn::Error::new(
            Span::call_site(),
            "CARGO_MANIFEST_DIR is not set; build with cargo",
        )
        .to_compile_error();
    };
    let dir = PathBuf::from(manifest).join("components");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("component.rs"),
            )
        })
        .filter(|(_, file)| file.is_file())
        .collect();
    found.sort();
    let mut modules = Vec::new();
    for (name, _) in found {
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            let msg = format!(
                "components/{name}/component.rs: `{name}` is not a valid module name \
                 (letters, digits and `_`)"
            );
            modules.push(quote! { ::core::compile_error!(#msg); });
            continue;
        }
        let ident = format_ident!("{}", name);
        let path = format!("{name}/component.rs");
        modules.push(quote! {
            #[path = #path]
            pub mod #ident;
        });
    }
    // `#[path]` on the inline module names the directory of its modules:
    // relative to the invoking file, so `file!()` stays relative to the
    // crate as with hand-written module lines.
    let dir_path = module_dir(&dir);
    quote! {
        /// The components of this deployment (`components/<name>/component.rs`).
        #[path = #dir_path]
        pub mod components {
            #(#modules)*
        }
    }
}

/// `components/`, relative to the directory of the invoking file (absolute
/// when that is unknown).
fn module_dir(dir: &Path) -> String {
    let base = crate::paths::invoking_file().and_then(|f| f.parent().map(Path::to_path_buf));
    match base {
        Some(base) => crate::paths::relative_to(&base, &crate::paths::normal(dir))
            .to_string_lossy()
            .into_owned(),
        None => dir.to_string_lossy().into_owned(),
    }
}
