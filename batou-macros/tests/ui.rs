//! Compile errors of the macros, pinned with trybuild.
//!
//! The expected `.stderr` files are rustc's output, which changes between
//! compiler versions: they are recorded with the compiler in
//! [`RECORDED_WITH`] (the workspace's `rust-version`). On another compiler
//! the compile-fail cases are skipped with a message; re-record them with
//! `TRYBUILD=overwrite cargo test -p batou-macros --test ui` and review the
//! diff.

/// `major.minor` of the compiler the `.stderr` files were recorded with.
const RECORDED_WITH: &str = "1.95";

/// `major.minor` of the compiler that builds the tests.
fn compiler() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    match compiler() {
        Some(v) if v == RECORDED_WITH => t.compile_fail("tests/ui/fail_*.rs"),
        other => eprintln!(
            "SKIPPED: the compile-fail outputs are recorded with rustc {RECORDED_WITH}, \
             this is rustc {}; re-record with TRYBUILD=overwrite",
            other.as_deref().unwrap_or("(unknown)")
        ),
    }
}
