//! `check_environments!()`: compile-time check of environment overrides.
//!
//! Every `#[component]` emits a hidden `macro_rules! __batou_component_<name>`
//! with one arm per attribute and a fallback arm that fails with
//! `compile_error!`. This macro reads `environments/*/environment.cfg` of the
//! crate being compiled and emits one invocation per `[component:NAME]` key:
//!
//! - an unknown key hits the fallback arm: the error names the cfg file, the
//!   line, the section and the key;
//! - an unknown component makes rustc report `cannot find macro
//!   __batou_component_<name>`. The invocations are written to a generated
//!   file under `OUT_DIR` and `include!`d, so rustc's snippet shows the line
//!   with the cfg location.
//!
//! Each cfg file is also `include_str!`ed so editing it rebuilds the crate;
//! a new environment directory needs the crate's `build.rs` to say
//! `cargo::rerun-if-changed=environments`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::path::{Path, PathBuf};
use syn::parse::Parser;
use syn::punctuated::Punctuated;

pub fn expand(input: TokenStream) -> TokenStream {
    let crates = match Punctuated::<syn::Path, syn::Token![,]>::parse_terminated.parse2(input) {
        Ok(list) => list.into_iter().collect::<Vec<_>>(),
        Err(e) => return e.to_compile_error(),
    };
    let Ok(manifest) = std::env::var("CARGO_MANIFEST_DIR") else {
        return syn::Error::new(
            Span::call_site(),
            "CARGO_MANIFEST_DIR is not set; build with cargo",
        )
        .to_compile_error();
    };
    let manifest = PathBuf::from(manifest);
    // Without arguments: every direct dependency that depends on batou is
    // a component library (from Cargo.lock); listing one is all the wiring.
    let crates: Vec<syn::Path> = if crates.is_empty() {
        component_libraries(&manifest)
            .iter()
            .filter_map(|name| syn::parse_str(name).ok())
            .collect()
    } else {
        crates
    };
    let own_crate = std::env::var("CARGO_CRATE_NAME").unwrap_or_default();
    let cfgs = environment_files(&manifest);

    let mut lines = Vec::new();
    let mut tracked = Vec::new();
    for (abs, rel) in &cfgs {
        tracked.push(abs.to_string_lossy().into_owned());
        // A file that does not parse is reported by `deploy` at load time
        // with its line; the build does not fail on it.
        let Ok(cfg) = batou_cfg::CfgFile::load(abs, rel) else {
            continue;
        };
        for section in &cfg.sections {
            roots_of_section(&cfg, section, &own_crate, &mut lines);
            let Some(component) = section.name.strip_prefix("component:") else {
                continue;
            };
            let component = component.trim();
            let Some(call) = check_call(component, &own_crate) else {
                let msg = format!(
                    "{}: [component:{}] is not a valid component name",
                    cfg.location(section.line),
                    component
                );
                lines.push(format!("::core::compile_error!({msg:?});"));
                continue;
            };
            for entry in &section.entries {
                let loc = format!(
                    "{}: [component:{}] {}",
                    cfg.location(entry.line),
                    component,
                    entry.key
                );
                lines.push(format!("{call}!({:?}, {:?}); // {loc}", entry.key, loc));
            }
        }
    }

    let body = generated_body(&lines);
    let uses = crates
        .iter()
        .map(|c| quote! { #[allow(unused_imports)] use ::#c::*; });
    let links = crates
        .iter()
        .map(|c| quote! { #[allow(unused_imports)] use ::#c as _; });
    let module = format_ident!("__batou_environment_checks");
    quote! {
        #[doc(hidden)]
        #[allow(unused_imports, dead_code, non_snake_case)]
        mod #module {
            #[allow(unused_imports)]
            use crate::*;
            #(#uses)*
            #(#links)*
            #body
            #(const _: &str = ::core::include_str!(#tracked);)*
        }

        ::batou::__private_register_deployment!();
    }
}

/// `[hosts] web = a, !b, c:feature` and `[host:web] components = ...`: one
/// existence check per root component name (an unknown name fails with
/// rustc's "cannot find macro" and its similar-name suggestion, on a
/// generated line that names the cfg location).
fn roots_of_section(
    cfg: &batou_cfg::CfgFile,
    section: &batou_cfg::Section,
    own_crate: &str,
    lines: &mut Vec<String>,
) {
    let is_hosts = section.name == "hosts";
    let is_host = section.name.starts_with("host:");
    if !is_hosts && !is_host {
        return;
    }
    for entry in &section.entries {
        if is_host && entry.key != "components" {
            continue;
        }
        let items = entry
            .value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|i| !i.is_empty());
        for item in items {
            let name = item.trim_start_matches('!');
            let name = name.split(':').next().unwrap_or(name).trim();
            let loc = format!(
                "{}: [{}] {} = {}",
                cfg.location(entry.line),
                section.name,
                entry.key,
                name
            );
            match check_call(name, own_crate) {
                Some(call) => lines.push(format!("{call}!(@root, {loc:?}); // {loc}")),
                None => {
                    let msg = format!("{loc}: not a valid component name");
                    lines.push(format!("::core::compile_error!({msg:?});"));
                }
            }
        }
    }
}

/// Marks lines that go into the module seeing only the crate's own
/// components.
const OWN: &str = "@own ";

/// The check macro of a component name (`name` or `crate_name.name`).
fn check_call(name: &str, own_crate: &str) -> Option<String> {
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    match name.split_once('.') {
        None if ident(name) => Some(format!("__batou_component_{name}")),
        Some((krate, comp)) if ident(krate) && ident(comp) => Some(if krate == own_crate {
            // Resolved in a module that sees only this crate's components
            // (an absolute `crate::` path to a macro-expanded macro_export
            // is refused by rustc).
            format!("{OWN}__batou_component_{comp}")
        } else {
            format!("::{krate}::__batou_component_{comp}")
        }),
        _ => None,
    }
}

/// The direct dependencies of the crate being compiled that depend on
/// batou themselves, by their library names, read from `Cargo.lock`
/// (found next to the manifest or in a parent workspace).
fn component_libraries(manifest: &Path) -> Vec<String> {
    let Ok(package) = std::env::var("CARGO_PKG_NAME") else {
        return Vec::new();
    };
    let Some(text) = manifest
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return Vec::new();
    };
    let Ok(lock) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let packages: Vec<&toml::Table> = lock
        .get("package")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default();
    let name_of = |p: &toml::Table| {
        p.get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let deps_of = |p: &toml::Table| -> Vec<String> {
        p.get("dependencies")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(toml::Value::as_str)
                    .filter_map(|d| d.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    // The crate itself: a path package (no `source`) of this name.
    let Some(me) = packages
        .iter()
        .find(|p| name_of(p) == package && p.get("source").is_none())
    else {
        return Vec::new();
    };
    let locked = deps_of(me);
    // Normal dependencies only (Cargo.lock lists dev- and build-
    // dependencies too), by the name the code uses.
    let mut out: Vec<String> = normal_dependencies(manifest)
        .into_iter()
        .filter(|(_, package)| locked.contains(package))
        .filter(|(_, package)| !matches!(package.as_str(), "batou" | "batou-macros" | "batou-cfg"))
        .filter(|(_, package)| {
            packages
                .iter()
                .filter(|p| name_of(p) == *package)
                .any(|p| deps_of(p).iter().any(|x| x == "batou"))
        })
        .map(|(name, _)| name.replace('-', "_"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `(name in code, package)` of the non-optional `[dependencies]` of the
/// manifest.
fn normal_dependencies(manifest: &Path) -> Vec<(String, String)> {
    let Some(toml) = std::fs::read_to_string(manifest.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return Vec::new();
    };
    // Not target-specific ones: they may not exist for this target.
    let tables: Vec<&toml::Table> = toml
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for table in tables {
        for (key, spec) in table {
            let optional = spec.get("optional").and_then(toml::Value::as_bool) == Some(true);
            if optional {
                continue;
            }
            let package = spec
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key)
                .to_string();
            out.push((key.clone(), package));
        }
    }
    out
}

/// The invocations, either `include!`d from a generated file (so errors show
/// the cfg location in rustc's snippet) or inline when there is no OUT_DIR.
fn generated_body(lines: &[String]) -> TokenStream {
    let mut text = String::from(
        "// Generated by batou::check_environments!(): one line per override in environments/*/environment.cfg.\n",
    );
    for l in lines.iter().filter(|l| !l.starts_with(OWN)) {
        text.push_str(l);
        text.push('\n');
    }
    let own: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix(OWN)).collect();
    if !own.is_empty() {
        text.push_str(
            "mod __batou_own_components {\n    #[allow(unused_imports)]\n    use crate::*;\n",
        );
        for l in own {
            text.push_str("    ");
            text.push_str(l);
            text.push('\n');
        }
        text.push_str("}\n");
    }
    if let Ok(out_dir) = std::env::var("OUT_DIR") {
        let path = Path::new(&out_dir).join("batou-environment-checks.rs");
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == text);
        if unchanged || std::fs::write(&path, &text).is_ok() {
            let p = path.to_string_lossy().into_owned();
            return quote! { ::core::include!(#p); };
        }
    }
    text.parse().unwrap_or_else(|_| {
        syn::Error::new(
            Span::call_site(),
            "batou: cannot generate the environment checks",
        )
        .to_compile_error()
    })
}

/// `(absolute path, path relative to the manifest)` of every
/// `environments/*/environment.cfg`, sorted.
fn environment_files(manifest: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(manifest.join("environments")) else {
        return out;
    };
    for entry in dir.flatten() {
        let cfg = entry.path().join("environment.cfg");
        if cfg.is_file() {
            let rel = Path::new("environments")
                .join(entry.file_name())
                .join("environment.cfg");
            out.push((cfg, rel));
        }
    }
    out.sort();
    out
}
