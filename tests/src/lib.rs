//! Helpers of the end-to-end tests: generate deployment crates from
//! `template-project/` (with the same placeholders cargo-generate fills in),
//! build them, run them.
//!
//! Generated crates share one target directory (`target/e2e`) and the
//! workspace's `Cargo.lock`, so their dependencies are compiled once.

pub mod bench;
pub mod gpg;
pub mod link;
pub mod python;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Files of the template that are copied without placeholder substitution
/// (`exclude` in cargo-generate.toml).
fn excluded(template: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(template.join("cargo-generate.toml")).unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.trim_start().starts_with("exclude")) else {
        return Vec::new();
    };
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Renders `template-project/` into `dest` as `cargo generate --path
/// template-project --name NAME` does (Liquid placeholders
/// `{{project-name}}` and `{{crate_name}}`, excluded files copied as they
/// are, `cargo-generate.toml` dropped, file modes kept), then points the
/// crate's batou dependencies at the checkout in `batou_path`
/// ([`patch_to_checkout`]).
pub fn render_template(dest: &Path, name: &str, batou_path: &Path) -> std::io::Result<()> {
    render_template_only(dest, name)?;
    patch_to_checkout(dest, batou_path)
}

/// The `[patch.crates-io]` section that makes a deployment crate build
/// against the batou checkout at `batou_path` instead of crates.io.
pub fn checkout_patch(batou_path: &Path) -> String {
    let root = batou_path.to_string_lossy();
    format!(
        "\n# Build against a local checkout of batou instead of crates.io.\n\
         [patch.crates-io]\n\
         batou = {{ path = \"{root}/batou\" }}\n\
         batou-stdlib = {{ path = \"{root}/batou-stdlib\" }}\n"
    )
}

/// Appends [`checkout_patch`] to the Cargo.toml of the crate in `dest`.
pub fn patch_to_checkout(dest: &Path, batou_path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dest.join("Cargo.toml"))?;
    file.write_all(checkout_patch(batou_path).as_bytes())
}

/// Renders the template as cargo-generate does, without the patch.
pub fn render_template_only(dest: &Path, name: &str) -> std::io::Result<()> {
    let template = workspace_root().join("template-project");
    let skip = excluded(&template);
    let crate_name = name.replace('-', "_");
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(template.join(&rel))? {
            let entry = entry?;
            let r = rel.join(entry.file_name());
            let src = entry.path();
            let dst = dest.join(&r);
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if r == Path::new("target") || r == Path::new("work") {
                    continue;
                }
                std::fs::create_dir_all(&dst)?;
                stack.push(r);
                continue;
            }
            let rs = r.to_string_lossy().to_string();
            if rs == "cargo-generate.toml" || rs == "Cargo.lock" || rs == ".batou-lock" {
                continue;
            }
            std::fs::create_dir_all(dst.parent().unwrap_or(dest))?;
            if skip.contains(&rs) {
                std::fs::copy(&src, &dst)?;
            } else {
                let text = std::fs::read_to_string(&src)?;
                let text = text
                    .replace("{{project-name}}", name)
                    .replace("{{crate_name}}", &crate_name);
                std::fs::write(&dst, text)?;
                std::fs::set_permissions(&dst, meta.permissions())?;
            }
        }
    }
    Ok(())
}

/// A generated deployment crate in a temporary directory.
pub struct Project {
    /// Keeps the directory alive.
    _dir: tempfile::TempDir,
    /// The crate's directory.
    pub path: PathBuf,
    /// Package name.
    pub name: String,
}

impl Project {
    /// Generates a crate from the template.
    pub fn generate(name: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("batou-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create the project directory");
        render_template(&path, name, &workspace_root()).expect("render the template");
        Project::adopt(dir, path, name)
    }

    /// A crate made some other way (the real cargo-generate) at `path`
    /// inside `dir`; gets the workspace's Cargo.lock like [`Project::generate`].
    pub fn adopt(dir: tempfile::TempDir, path: PathBuf, name: &str) -> Project {
        Project::hold(name);
        // The same dependency versions as the workspace: nothing to resolve.
        let lock = workspace_root().join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(lock, path.join("Cargo.lock")).expect("copy Cargo.lock");
        }
        Project {
            _dir: dir,
            path,
            name: name.to_string(),
        }
    }

    /// Counts a live project of this name (tests of one binary may share
    /// a name, and build it one after another).
    fn hold(name: &str) {
        *live_projects().entry(name.to_string()).or_default() += 1;
    }

    /// Shared target directory of all generated crates.
    pub fn target_dir() -> PathBuf {
        workspace_root().join("target").join("e2e")
    }

    /// The built executable.
    pub fn binary(&self) -> PathBuf {
        Self::target_dir().join("debug").join(&self.name)
    }

    /// `cargo build` of the crate; returns the output (check `status`).
    pub fn build(&self) -> Output {
        Command::new(env!("CARGO"))
            .args(["build", "--offline", "--quiet"])
            .current_dir(&self.path)
            .env("CARGO_TARGET_DIR", Self::target_dir())
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo build")
    }

    /// Builds and panics with cargo's output on failure.
    pub fn build_ok(&self) {
        let out = self.build();
        assert!(
            out.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the built executable with arguments in the project directory,
    /// with a fixed 80-column, colourless terminal.
    pub fn batou(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("run the deployment executable")
    }

    /// The command [`Project::batou`] runs, to adjust before running.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.binary());
        c.args(args)
            .current_dir(&self.path)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "80")
            .env_remove("RUST_BACKTRACE");
        c
    }

    /// Writes a file of the project (creating directories).
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().expect("file has a parent"))
            .expect("create directories");
        std::fs::write(p, text).expect("write project file");
    }

    /// Reads a file of the project.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// Live projects per name in this test binary.
fn live_projects() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, usize>> {
    static LIVE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
        std::sync::OnceLock::new();
    LIVE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl Drop for Project {
    /// Removes the crate's own build outputs from the shared target
    /// directory: every generated crate links a binary of some 60 MB, and
    /// a hundred of them would fill a CI machine's disk. Dependencies stay.
    fn drop(&mut self) {
        // Held while deleting: a test generating this name meanwhile waits.
        let mut live = live_projects();
        let count = live.entry(self.name.clone()).or_default();
        *count = count.saturating_sub(1);
        if *count > 0 {
            // Another test of this binary builds and runs it.
            return;
        }
        let debug = Self::target_dir().join("debug");
        let _ = std::fs::remove_file(debug.join(&self.name));
        let _ = std::fs::remove_file(debug.join(format!("{}.d", self.name)));
        let prefix = format!("{}-", self.name.replace('-', "_"));
        for sub in ["deps", "incremental"] {
            let Ok(entries) = std::fs::read_dir(debug.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                    continue;
                }
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
}

/// stdout of a run as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of a run as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file below `dir` with its content, relative paths sorted (for
/// "changes nothing" assertions).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap_or_default(), m.mode()));
            }
        }
    }
    out.sort();
    out
}

/// Waits (up to 20 s) until `path` exists, e.g. a marker a running
/// deployment writes; panics naming `what` otherwise.
pub fn wait_for(path: &Path, what: &str) {
    for _ in 0..400 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not happen ({} never appeared)", path.display());
}

/// Writes an executable shell script `name` into `dir` (a stand-in for a
/// tool that cannot run here) and returns a PATH with `dir` first.
pub fn stand_in(dir: &Path, name: &str, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(name);
    std::fs::write(&file, format!("#!/bin/sh\n{script}")).expect("write the stand-in");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Builds a benchmark's deployment crate in release mode (shared target
/// directory `target/bench-target`); the path of its executable.
pub fn build_bench_crate(project: &Path, name: &str) -> Result<PathBuf, String> {
    eprintln!("building the benchmark crate (release)...");
    let target = workspace_root().join("target/bench-target");
    let built = Command::new("cargo")
        .args(["build", "--release", "--offline", "--quiet"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !built.success() {
        return Err("building the benchmark crate failed".into());
    }
    Ok(target.join("release").join(name))
}
