//! appenv: an application installed from the requirements.lock next to its
//! component into a hash-named environment, with the real venv and pip, on
//! a real sshd host; a new lock switches environments only once it is
//! installed, and a broken lock leaves the application where it was.

use batou_tests::python::{build_wheel, copy_wheels, PIP_VERSION};
use batou_tests::*;
use std::path::Path;
use std::process::Command;

const APP: &str = r##"
use batou::prelude::*;
use batou_stdlib::appenv::AppEnv;

#[component]
pub struct App {
    #[attribute(default = Vec::<String>::new())]
    pip_options: Vec<String>,
}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(AppEnv::new("3").pip_version("24.0").install_options(self.pip_options.clone()));
        Ok(())
    }
}
"##;

fn source(version: &str) -> String {
    format!("VERSION = '{version}'\n\ndef main():\n    print(VERSION)\n")
}

/// What the application's own `bin/python` imports.
fn imported_version(app: &Path) -> String {
    let out = Command::new(app.join("bin/python"))
        .args(["-c", "import myapp; print(myapp.VERSION)"])
        .output()
        .expect("run the app's python");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn environments(app: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(app.join(".appenv"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `.appenv` holding only the environment `hash` and `current`.
fn only(hash: &str) -> Vec<String> {
    let mut names = vec![hash.to_string(), "current".to_string()];
    names.sort();
    names
}

fn current(app: &Path) -> String {
    std::fs::read_link(app.join(".appenv/current"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn an_appenv_is_built_switched_and_cleaned_up_on_a_real_sshd_host() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["a1"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let wheels = host.path("wheels");
    build_wheel(&wheels, "myapp", "1.0", &source("1.0"));
    build_wheel(&wheels, "myapp", "1.1", &source("1.1"));
    copy_wheels(&wheels, &["pip-"]);
    host.give(&wheels);

    let p = Project::generate("appenv-e2e");
    p.write("components/app/component.rs", APP);
    p.write("components/app/requirements.lock", "myapp==1.0\n");
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        &format!(
            "[environment]\nconnect_method = ssh\n\n[hosts]\na1 = app\n\n\
             [component:app]\npip_options = --no-index, --find-links={}\n",
            wheels.display()
        ),
    );
    p.build_ok();
    let app = host.path("deployment/work/app");

    let out = p.batou(&["deploy", "-P", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!app.join(".appenv").exists(), "-P changes nothing");

    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let first = current(&app);
    assert_eq!(first.len(), 8, "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("a1: App > AppEnv('{first}') > AppEnvPython")),
        "{}",
        stdout(&out)
    );
    assert_eq!(environments(&app), only(&first));
    assert_eq!(imported_version(&app), "1.0");
    assert!(app.join(format!(".appenv/{first}/appenv.ready")).is_file());
    let pip = Command::new(app.join("bin/python"))
        .args(["-m", "pip", "--version"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&pip.stdout).starts_with(&format!("pip {PIP_VERSION} ")),
        "{}",
        String::from_utf8_lossy(&pip.stdout)
    );

    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );

    // A new lock: a new environment, then the switch, then the old one goes.
    p.write("components/app/requirements.lock", "myapp==1.1\n");
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let second = current(&app);
    assert_ne!(second, first);
    assert_eq!(environments(&app), only(&second));
    assert_eq!(imported_version(&app), "1.1");

    // A lock pip cannot install fails, and the application stays on 1.1.
    p.write("components/app/requirements.lock", "myapp==9.9\n");
    let out = p.batou(&["deploy", "remote"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("No matching distribution found for myapp==9.9"),
        "{}",
        stdout(&out)
    );
    assert_eq!(current(&app), second, "still the last good environment");
    assert_eq!(imported_version(&app), "1.1");

    // Back to a good lock: the half-made environment is cleaned up.
    p.write("components/app/requirements.lock", "myapp==1.1\n");
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(current(&app), second);
    assert_eq!(environments(&app), only(&second));
}
