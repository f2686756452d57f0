//! `batou migrate`: batou's layout migrations (2.2 → 2.3 → 2.4) for
//! projects that come from Python batou, and the check that refuses to
//! work on a layout that still needs them.
//!
//! The steps are batou's, with its version numbers, titles and kinds
//! (automatic or manual): 2301 moves `environments/<env>.cfg`,
//! `secrets/<env>.cfg` and `secrets/<env>-*` into `environments/<env>/`,
//! 2400 appends `.gpg` to secret files of that era. `.batou.json` records
//! the version reached. Unlike batou, a step never overwrites a file: all
//! moves of a step are planned and checked before the first one is made.
//!
//! ```
//! let project = tempfile::tempdir().unwrap();
//! std::fs::create_dir(project.path().join("environments")).unwrap();
//! std::fs::write(project.path().join("environments/prod.cfg"), "[hosts]\n").unwrap();
//! assert!(batou::migrate::pending(project.path()).is_some());
//! let done = batou::migrate::migrate(project.path()).unwrap();
//! assert_eq!(done.reached, 2400);
//! assert!(project.path().join("environments/prod/environment.cfg").is_file());
//! assert!(batou::migrate::pending(project.path()).is_none());
//! ```

use std::fs;
use std::path::{Path, PathBuf};

/// The newest migration version.
pub const LATEST: u32 = 2400;
/// Where the version reached is recorded.
pub const CONFIG_FILE: &str = ".batou.json";

/// Automatic (done by `migrate`) or manual (the user has to look).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Done by `migrate`.
    Automatic,
    /// Instructions for the user.
    Manual,
}

/// One step that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// batou's version number of the step.
    pub version: u32,
    /// Its title.
    pub title: &'static str,
    /// Automatic or manual.
    pub kind: Kind,
    /// What it means for the user.
    pub text: &'static str,
    /// The moves it made, relative to the project (`from → to`).
    pub moves: Vec<(String, String)>,
}

/// The result of `migrate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The version found (0 without `.batou.json`).
    pub current: u32,
    /// The steps that ran.
    pub steps: Vec<Step>,
    /// The version reached.
    pub reached: u32,
}

/// Why a migration stopped; nothing of the failing step was changed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// `.batou.json` is not batou's.
    #[error("{CONFIG_FILE} is not {{\"migration\": {{\"version\": N}}}}: {0}")]
    Config(String),
    /// A move would replace an existing file.
    #[error("step {version}: {to} exists already (it would be replaced by {from}); move one of them away and run migrate again")]
    Exists {
        /// The step.
        version: u32,
        /// Source.
        from: String,
        /// Existing target.
        to: String,
    },
    /// A file operation failed.
    #[error("step {version}: {what}: {source}")]
    Io {
        /// The step.
        version: u32,
        /// What was done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

const STEPS: &[(u32, &str, Kind, &str)] = &[
    (
        2300,
        "Colliding attributes in environment and secrets",
        Kind::Manual,
        "batou will now fail explicitly if an attribute exists both as an environment\noverride as well as a secret.\n\nYou will usually want to delete it from the environment config as that was\nbeing used previously.",
    ),
    (
        2301,
        "Environments have separate directories now",
        Kind::Automatic,
        "Each environment has been turned into a separate directory containing all the\nconfiguration files:\n\n* unencrypted configuration is now stored in\n  `environments/<env>/environment.cfg`\n* encrypted configuration is now stored in `environments/<env>/secrets.cfg`\n* additional encrypted files are stored in `environments/<env>/secret-*`\n\nThe old `secrets` directory is now gone.\n\nAll data was migrated automatically for you, but you will need to commit those\nchanges manually.",
    ),
    (
        2302,
        "`Attribute` defaults now require `ConfigString` for expansion, mapping, and conversion.",
        Kind::Manual,
        "In batou for Rust components are Rust code: an #[attribute(default = ...)] is a\ntyped value and overrides from environment.cfg are converted by the attribute's\ntype. Nothing to review in environments/.",
    ),
    (
        2303,
        "Address objects now only resolve IPv4 addresses by default",
        Kind::Manual,
        "If you use IPv6 then you have to enable it explicitly by setting\n`require_v6=True`. If you want the old behaviour you can use\n`require_v6='optional'`.\n\nYou can also set new defaults per environment settings:\n\n[environment]\nrequire_v4 = True\nrequire_v6 = optional",
    ),
    (
        2400,
        "Secrets may be encrypted with age or gpg now",
        Kind::Automatic,
        "The two secret providers `age` and `gpg` signify their encryption method in the\nfile name. The new naming scheme is:\nsecrets.cfg -> secrets.cfg.gpg\nsecret-foo -> secret-foo.gpg\n\nSince previously all secrets were encrypted with gpg, we rename all files to\nmatch the new naming scheme. This is done automatically for you, but you will\nneed to commit those changes manually.",
    ),
];

/// The version recorded in `.batou.json` (0 without one).
pub fn current_version(project_root: &Path) -> Result<u32, MigrateError> {
    let text = match fs::read_to_string(project_root.join(CONFIG_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(MigrateError::Config(e.to_string())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| MigrateError::Config(e.to_string()))?;
    value["migration"]["version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| MigrateError::Config("no migration.version number".into()))
}

/// What still needs `migrate`: files of the old layouts, or a
/// `.batou.json` below the newest version. `None`: nothing.
pub fn pending(project_root: &Path) -> Option<Vec<String>> {
    let mut found = Vec::new();
    match current_version(project_root) {
        Ok(v) if v > 0 && v < LATEST => found.push(format!(
            "{CONFIG_FILE} records version {v} (newest: {LATEST})"
        )),
        Ok(_) => {}
        Err(e) => found.push(e.to_string()),
    }
    let plan = plan_2301(project_root);
    found.extend(plan.iter().map(|(from, _)| rel(project_root, from)));
    found.extend(
        plan_2400(project_root)
            .iter()
            .map(|(from, _)| rel(project_root, from)),
    );
    (!found.is_empty()).then_some(found)
}

/// Runs the steps after the recorded version and records the version
/// reached.
pub fn migrate(project_root: &Path) -> Result<Migration, MigrateError> {
    let current = current_version(project_root)?;
    let mut steps = Vec::new();
    for &(version, title, kind, text) in STEPS.iter().filter(|s| s.0 > current) {
        let plan = match version {
            2301 => plan_2301(project_root),
            2400 => plan_2400(project_root),
            _ => Vec::new(),
        };
        let moves = apply(project_root, version, &plan)?;
        if version == 2301 {
            // batou's text says the old directory is gone; it is, once empty.
            let _ = fs::remove_dir(project_root.join("secrets"));
        }
        steps.push(Step {
            version,
            title,
            kind,
            text,
            moves,
        });
    }
    let reached = steps.last().map_or(current, |s| s.version);
    if reached != current {
        crate::safe_fs::write_atomic(
            &project_root.join(CONFIG_FILE),
            format!("{{\"migration\": {{\"version\": {reached}}}}}\n").as_bytes(),
            0o644,
        )
        .map_err(|source| MigrateError::Io {
            version: reached,
            what: format!("writing {CONFIG_FILE}"),
            source,
        })?;
    }
    Ok(Migration {
        current,
        steps,
        reached,
    })
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// 2301: `environments/<env>.cfg` → `environments/<env>/environment.cfg`,
/// `secrets/<env>.cfg` → `…/secrets.cfg`, `secrets/<env>-X` →
/// `…/secret-X`; the longest environment names first, so `prod-eu`'s
/// files are not taken for `prod`'s.
fn plan_2301(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let envs_dir = root.join("environments");
    let mut envs: Vec<String> = names_in(&envs_dir)
        .into_iter()
        .filter(|n| envs_dir.join(n).is_file())
        .filter_map(|n| n.strip_suffix(".cfg").map(str::to_string))
        .filter(|n| crate::environment::is_plain_name(n))
        .collect();
    envs.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let secrets_dir = root.join("secrets");
    let mut secrets = names_in(&secrets_dir);
    let mut plan = Vec::new();
    for env in envs {
        let target = envs_dir.join(&env);
        plan.push((
            envs_dir.join(format!("{env}.cfg")),
            target.join("environment.cfg"),
        ));
        secrets.retain(|name| {
            let to = if *name == format!("{env}.cfg") {
                "secrets.cfg".to_string()
            } else if let Some(rest) = name.strip_prefix(&format!("{env}-")) {
                format!("secret-{rest}")
            } else {
                return true;
            };
            plan.push((secrets_dir.join(name), target.join(to)));
            false
        });
    }
    plan
}

/// 2400: where `environments/<env>/secrets.cfg` exists, it and the
/// `secret-*` files without a provider suffix get `.gpg`.
fn plan_2400(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let envs_dir = root.join("environments");
    let mut plan = Vec::new();
    for env in names_in(&envs_dir) {
        let dir = envs_dir.join(&env);
        if !dir.join("secrets.cfg").is_file() {
            continue;
        }
        for name in names_in(&dir) {
            let suffixed = [".gpg", ".age", ".age-diffable"]
                .iter()
                .any(|s| name.ends_with(s));
            if name == "secrets.cfg" || (name.starts_with("secret-") && !suffixed) {
                plan.push((dir.join(&name), dir.join(format!("{name}.gpg"))));
            }
        }
    }
    plan
}

/// Checks every move of a step (no target exists, no two share one),
/// then makes them.
fn apply(
    root: &Path,
    version: u32,
    plan: &[(PathBuf, PathBuf)],
) -> Result<Vec<(String, String)>, MigrateError> {
    let mut targets = std::collections::BTreeSet::new();
    for (from, to) in plan {
        if to.symlink_metadata().is_ok() || !targets.insert(to.clone()) {
            return Err(MigrateError::Exists {
                version,
                from: rel(root, from),
                to: rel(root, to),
            });
        }
    }
    let mut done = Vec::new();
    for (from, to) in plan {
        let io = |what: String| {
            move |source| MigrateError::Io {
                version,
                what,
                source,
            }
        };
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(format!("creating {}", rel(root, parent))))?;
        }
        fs::rename(from, to).map_err(io(format!(
            "moving {} to {}",
            rel(root, from),
            rel(root, to)
        )))?;
        done.push((rel(root, from), rel(root, to)));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn the_layouts_of_batou_2_2_and_2_3_move_into_environment_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "environments/prod.cfg", "[hosts]\n");
        write(root, "environments/prod-eu.cfg", "[hosts]\n");
        write(root, "secrets/prod.cfg", "gpg");
        write(root, "secrets/prod-eu.cfg", "gpg");
        write(root, "secrets/prod-eu-cert.pem", "gpg");
        write(root, "secrets/prod-key", "gpg");
        let m = migrate(root).unwrap();
        assert_eq!(m.current, 0);
        let versions: Vec<u32> = m.steps.iter().map(|s| s.version).collect();
        assert_eq!(versions, [2300, 2301, 2302, 2303, 2400]);
        for path in [
            "environments/prod/environment.cfg",
            "environments/prod/secrets.cfg.gpg",
            "environments/prod/secret-key.gpg",
            "environments/prod-eu/environment.cfg",
            "environments/prod-eu/secrets.cfg.gpg",
            "environments/prod-eu/secret-cert.pem.gpg",
        ] {
            assert!(root.join(path).is_file(), "{path}");
        }
        assert!(!root.join("secrets").exists());
        assert_eq!(
            fs::read_to_string(root.join(".batou.json")).unwrap(),
            "{\"migration\": {\"version\": 2400}}\n"
        );
        // Idempotent.
        let again = migrate(root).unwrap();
        assert_eq!((again.current, again.reached), (2400, 2400));
        assert!(again.steps.is_empty());
        assert!(pending(root).is_none());
    }

    #[test]
    fn a_move_that_would_replace_a_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "environments/prod.cfg", "old\n");
        write(root, "environments/prod/environment.cfg", "new\n");
        let err = migrate(root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 2301: environments/prod/environment.cfg exists already (it would be replaced by environments/prod.cfg); move one of them away and run migrate again"
        );
        assert_eq!(
            fs::read_to_string(root.join("environments/prod.cfg")).unwrap(),
            "old\n"
        );
        assert!(!root.join(".batou.json").exists());
        assert_eq!(
            pending(root).unwrap(),
            ["environments/prod.cfg".to_string()]
        );
        write(
            root,
            ".batou.json",
            "{\"migration\": {\"version\": 2303}}\n",
        );
        fs::remove_file(root.join("environments/prod.cfg")).unwrap();
        assert_eq!(
            pending(root).unwrap(),
            [".batou.json records version 2303 (newest: 2400)".to_string()]
        );
        write(root, ".batou.json", "[]");
        assert!(matches!(migrate(root), Err(MigrateError::Config(_))));
    }
}
