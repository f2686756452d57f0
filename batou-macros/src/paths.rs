//! Paths of the file a macro is invoked in, for the code it generates.

use std::path::{Component, Path, PathBuf};

/// The absolute path of the file the macro is invoked in, with `..` and
/// `.` resolved (`src/../components/x.rs` from a `#[path]`); `None` when
/// rustc does not know it.
pub fn invoking_file() -> Option<PathBuf> {
    let file = proc_macro::Span::call_site().local_file()?;
    let file = if file.is_absolute() {
        file
    } else {
        std::env::current_dir().ok()?.join(file)
    };
    Some(normal(&file))
}

/// `..` and `.` resolved lexically.
pub fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `target` relative to the directory `base` (both absolute, normal).
pub fn relative_to(base: &Path, target: &Path) -> PathBuf {
    let common = base
        .components()
        .zip(target.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in base.components().skip(common) {
        rel.push("..");
    }
    for c in target.components().skip(common) {
        rel.push(c);
    }
    rel
}
