//! Python packages for the tests: wheels built here (a real wheel, which
//! the real pip installs with its console scripts) and supervisor's
//! wheels, fetched once from PyPI into `target/wheels` (by `.ci/run`, or by
//! the first test that needs them). Deployments under test install with
//! `--no-index --find-links=<dir>`: they never use the network.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The supervisor release the tests install (batou's).
pub const SUPERVISOR_VERSION: &str = "4.2.5";

/// The zc.buildout release the Buildout test installs, with the
/// setuptools, wheel and packaging it needs (batou's versions).
pub const BUILDOUT_VERSION: &str = "3.3";
/// setuptools for the Buildout test.
pub const BUILDOUT_SETUPTOOLS: &str = "68.0.0";

/// The setuptools release the Supervisor component pins
/// (`batou_stdlib::supervisor::SETUPTOOLS`).
pub const SUPERVISOR_SETUPTOOLS: &str = "79.0.1";

/// The pip release an AppEnv test installs over the venv's own.
pub const PIP_VERSION: &str = "24.0";

/// `target/wheels`, holding supervisor's and pip's wheels (fetched if
/// missing).
pub fn supervisor_wheels() -> PathBuf {
    // Tests running in parallel fetch once.
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::workspace_root().join("target").join("wheels");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let have = [
        format!("supervisor-{SUPERVISOR_VERSION}-"),
        format!("setuptools-{SUPERVISOR_SETUPTOOLS}-"),
        format!("pip-{PIP_VERSION}-"),
        format!("zc.buildout-{BUILDOUT_VERSION}-"),
    ]
    .iter()
    .all(|prefix| names.iter().any(|n| n.starts_with(prefix)));
    if !have {
        let script = crate::workspace_root()
            .join("scripts")
            .join("fetch-test-wheels");
        let out = Command::new(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "fetching supervisor's wheels failed (PyPI must be reachable once):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Copies the fetched wheels whose names start with one of `prefixes`
/// (`"pip-"`) into `dir`.
pub fn copy_wheels(dir: &Path, prefixes: &[&str]) {
    std::fs::create_dir_all(dir).expect("wheel directory");
    for entry in std::fs::read_dir(supervisor_wheels())
        .expect("wheels")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            std::fs::copy(entry.path(), dir.join(&name)).expect("copy a wheel");
        }
    }
}

/// Builds `<dir>/<name>-<version>-py3-none-any.whl`: a package `<name>`
/// whose `__init__.py` is `source`, and a console script `<name>` calling
/// its `main()`. Returns the wheel's path.
pub fn build_wheel(dir: &Path, name: &str, version: &str, source: &str) -> PathBuf {
    let entry_points = format!("[console_scripts]\n{name} = {name}:main\n");
    build_wheel_with_entry_points(dir, name, version, source, &entry_points)
}

/// Like [`build_wheel`], with `entry_points.txt` as given (a buildout
/// recipe: `[zc.buildout]\ndefault = name:Recipe`).
pub fn build_wheel_with_entry_points(
    dir: &Path,
    name: &str,
    version: &str,
    source: &str,
    entry_points: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("wheel directory");
    let wheel = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let info = format!("{name}-{version}.dist-info");
    let files = [
        (format!("{name}/__init__.py"), source.to_string()),
        (
            format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: batou-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
        (format!("{info}/entry_points.txt"), entry_points.to_string()),
    ];
    let mut record = String::new();
    let mut script =
        String::from("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w')\nfiles = {}\n");
    for (path, text) in &files {
        script.push_str(&format!("files[{path:?}] = {text:?}\n"));
        record.push_str(&format!("{path},,\n"));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    script.push_str(&format!(
        "files[{:?}] = {record:?}\n",
        format!("{info}/RECORD")
    ));
    script.push_str("for p, t in files.items():\n    z.writestr(p, t)\nz.close()\n");
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(&wheel)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "building {}: {}",
        wheel.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    wheel
}

/// The pid in a pid file, if the process lives.
pub fn live_pid(pidfile: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Kills supervisord (and so its programs) by the pid in its pid file
/// when dropped.
pub struct KillOnDrop(pub PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = live_pid(&self.0) {
            // SAFETY: a plain signal to a process this test started.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            for _ in 0..50 {
                if live_pid(&self.0).is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}
