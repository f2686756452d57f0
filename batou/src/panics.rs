//! Panics in component code: caught, reported as errors of that component
//! with their source location, and never printed as Rust backtraces unless
//! `--debug`.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A caught panic: its message and where it happened.
#[derive(Debug, Clone)]
pub struct Caught {
    /// The panic message.
    pub message: String,
    /// `file:line` of the panic, when the hook saw it.
    pub location: Option<String>,
}

/// Installs batou's panic hook: inside [`catch`] it only records where the
/// panic happened; elsewhere it prints one line (or a backtrace with
/// `debug`).
pub fn install_hook(debug: bool) {
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo| {
        if CATCHING.with(Cell::get) {
            let loc = info.location().map(|l| source_location(l.file(), l.line()));
            LAST.with(|last| *last.borrow_mut() = loc);
            return;
        }
        if debug {
            eprintln!("{info}\n{}", std::backtrace::Backtrace::force_capture());
        } else {
            eprintln!("ERROR: internal error: {info} (run with -d for a backtrace)");
        }
    }));
}

/// Runs `f`, turning a panic into [`Caught`].
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    let before = CATCHING.with(|c| c.replace(true));
    LAST.with(|last| *last.borrow_mut() = None);
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(before));
    result.map_err(|payload| Caught {
        message: payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into()),
        location: LAST.with(|last| last.borrow_mut().take()),
    })
}

/// `file:line` with `dir/../` resolved (`src/../components/x.rs` becomes
/// `components/x.rs`), as reports show source locations.
pub fn source_location(file: &str, line: u32) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in file.split('/') {
        match part {
            ".." if parts.last().is_some_and(|p| *p != ".." && !p.is_empty()) => {
                parts.pop();
            }
            "." => {}
            p => parts.push(p),
        }
    }
    format!("{}:{line}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn locations_are_cleaned() {
        assert_eq!(
            super::source_location("src/../components/x.rs", 3),
            "components/x.rs:3"
        );
        assert_eq!(super::source_location("/abs/./a/../b.rs", 1), "/abs/b.rs:1");
    }
}
