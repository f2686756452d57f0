//! The front-page example (`examples/myapp`): a Python package installed
//! by the real pip into a virtualenv made by the real `python3 -m venv`,
//! run by a real supervisord that pip installed from supervisor's wheel;
//! locally and on a real sshd host.

use batou_tests::python::{build_wheel, live_pid, supervisor_wheels, KillOnDrop};
use batou_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn app_source(version: &str) -> String {
    format!(
        "import os, time\n\n\
         def main():\n    \
         print('myapp {version} running in', os.getcwd(), flush=True)\n    \
         while True:\n        time.sleep(1)\n"
    )
}

/// Copies examples/myapp as crate `name` built against this checkout.
fn example(name: &str) -> Project {
    let dir = tempfile::Builder::new()
        .prefix("batou-e2e-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join(name);
    copy_tree(&workspace_root().join("examples/myapp"), &path);
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("name = \"myapp-deployment\"", &format!("name = \"{name}\"")),
    )
    .unwrap();
    patch_to_checkout(&path, &workspace_root()).unwrap();
    Project::adopt(dir, path, name)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "target" || name == "work" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn environment(connect: &str, host: &str, roots: &str, app_wheels: &Path, version: &str) -> String {
    let sup = supervisor_wheels();
    format!(
        "[environment]\nconnect_method = {connect}\n\n[hosts]\n{host} = {roots}\n\n\
         [component:myapp]\nversion = {version}\npip_options = --no-index, --find-links={}\n\n\
         [component:supervisor]\ninstall_options = --no-index, --find-links={}\n",
        app_wheels.display(),
        sup.display()
    )
}

fn ctl(supervisor: &Path, args: &[&str]) -> String {
    let out = Command::new(supervisor.join("bin/supervisorctl"))
        .arg("-c")
        .arg(supervisor.join("etc/supervisord.conf"))
        .args(args)
        .output()
        .expect("run supervisorctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn changed(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.strip_prefix("🚀 "))
        .map(str::to_string)
        .collect()
}

fn wait_for_text(path: &Path, text: &str) {
    for _ in 0..100 {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(text)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "{} never contained {text:?}: {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
}

#[test]
fn the_front_page_example_runs_converges_and_upgrades_only_what_changed() {
    let p = example("myapp-local");
    let wheels: PathBuf = p.path.join("wheels");
    build_wheel(&wheels, "myapp", "1.0", &app_source("1.0"));
    p.write(
        "environments/test/environment.cfg",
        &environment("local", "localhost", "myapp, supervisor", &wheels, "1.0"),
    );
    p.build_ok();
    let work = p.path.join("work");
    let supervisor = work.join("supervisor");
    let _kill = KillOnDrop(supervisor.join("supervisord.pid"));

    let out = p.batou(&["deploy", "-P", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!work.exists(), "-P changes nothing");

    let out = p.batou(&["deploy", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let status = ctl(&supervisor, &["status", "myapp"]);
    assert!(status.contains("RUNNING"), "{status}");
    let log = supervisor.join("var/log/myapp.log");
    wait_for_text(
        &log,
        &format!("myapp 1.0 running in {}", work.join("myapp").display()),
    );
    let supervisord = live_pid(&supervisor.join("supervisord.pid")).expect("supervisord runs");
    let first = ctl(&supervisor, &["pid", "myapp"]);
    // The wheels hold the newest setuptools (without pkg_resources) too:
    // the component's pin is what is installed, and supervisor can use it.
    assert!(
        std::fs::read_dir(supervisor_wheels())
            .unwrap()
            .flatten()
            .any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("setuptools-")
                    && !n.contains(batou_tests::python::SUPERVISOR_SETUPTOOLS)
            }),
        "the newest setuptools is among the wheels"
    );
    let setuptools = Command::new(supervisor.join("bin/python"))
        .args([
            "-c",
            "import pkg_resources, setuptools; print(setuptools.__version__)",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&setuptools.stdout).trim(),
        batou_tests::python::SUPERVISOR_SETUPTOOLS,
        "{}",
        String::from_utf8_lossy(&setuptools.stderr)
    );

    let again = p.batou(&["deploy", "test"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert_eq!(changed(&again), Vec::<String>::new(), "{}", stdout(&again));
    let predicted = p.batou(&["deploy", "-P", "test"]);
    assert_eq!(changed(&predicted), Vec::<String>::new());

    // A new release: the package and the program's restart, nothing else.
    build_wheel(&wheels, "myapp", "1.1", &app_source("1.1"));
    p.write(
        "environments/test/environment.cfg",
        &environment("local", "localhost", "myapp, supervisor", &wheels, "1.1"),
    );
    let out = p.batou(&["deploy", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        changed(&out),
        [
            "localhost: MyApp > VirtualEnv('3') > Package('myapp==1.1')",
            "localhost: MyApp > Program('myapp')",
        ],
        "{}",
        stdout(&out)
    );
    wait_for_text(&log, "myapp 1.1 running");
    assert_ne!(ctl(&supervisor, &["pid", "myapp"]), first, "restarted");
    assert_eq!(
        live_pid(&supervisor.join("supervisord.pid")),
        Some(supervisord),
        "supervisord itself was not reloaded"
    );

    // A program that does not come up fails the deployment with its log.
    p.write(
        "components/broken/component.rs",
        "use batou::prelude::*;\nuse batou_stdlib::supervisor::Program;\n\n\
         #[component]\npub struct Broken;\n\n\
         impl Component for Broken {\n    \
         fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {\n        \
         cx.add(Program::new(\"broken\", \"/bin/sh\").command_absolute(false)\n            \
         .args(\"-c 'echo broken-start; exit 3'\")\n            \
         .options([(\"startsecs\".to_string(), \"1\".to_string())].into_iter().collect::<std::collections::BTreeMap<_, _>>()));\n        \
         Ok(())\n    }\n}\n",
    );
    p.write(
        "environments/test/environment.cfg",
        &environment(
            "local",
            "localhost",
            "myapp, supervisor, broken",
            &wheels,
            "1.1",
        ),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "test"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Program \"broken\" did not start up"),
        "{text}"
    );
    assert!(
        text.contains("broken-start"),
        "the log's tail is shown: {text}"
    );
}

#[test]
fn the_front_page_example_runs_on_a_real_sshd_host() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["m1"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let p = example("myapp-remote");
    // The host's user reads the wheels from its own home.
    let wheels = host.path("wheels");
    build_wheel(&wheels, "myapp", "1.0", &app_source("1.0"));
    let sup_wheels = host.path("supervisor-wheels");
    copy_tree(&supervisor_wheels(), &sup_wheels);
    host.give(&wheels);
    host.give(&sup_wheels);
    let cfg = environment("ssh", "m1", "myapp, supervisor", &wheels, "1.0").replace(
        &supervisor_wheels().display().to_string(),
        &sup_wheels.display().to_string(),
    );
    p.write("environments/remote/environment.cfg", &cfg);
    p.write("ssh_config", &lab.ssh_config());
    p.build_ok();
    let supervisor = host.path("deployment/work/supervisor");
    let _kill = KillOnDrop(supervisor.join("supervisord.pid"));
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let status = ctl(&supervisor, &["status", "myapp"]);
    assert!(status.contains("RUNNING"), "{status}");
    wait_for_text(&supervisor.join("var/log/myapp.log"), "myapp 1.0 running");
    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert_eq!(changed(&again), Vec::<String>::new(), "{}", stdout(&again));
}

const EXTRAS: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;
use batou_stdlib::supervisor::Eventlistener;

/// An event listener that cannot start: it says why on stderr and exits.
#[component]
pub struct Deaf;

impl Component for Deaf {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(
            Eventlistener::new("deaf", "/bin/sh")
                .command_absolute(false)
                .args("-c 'echo \"cannot hear in $(pwd)\" >&2; exit 3'")
                .directory("/tmp")
                .options(std::collections::BTreeMap::from([(
                    "startsecs".to_string(),
                    "1".to_string(),
                )])),
        );
        Ok(())
    }
}

/// An event listener speaking supervisor's protocol (READY, RESULT).
#[component]
pub struct Extras;

impl Component for Extras {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("listener.py").is_template(false).content(
            "import sys\n\
             while True:\n\
             \x20   sys.stdout.write('READY\\n'); sys.stdout.flush()\n\
             \x20   headers = dict(x.split(':') for x in sys.stdin.readline().split())\n\
             \x20   sys.stdin.read(int(headers['len']))\n\
             \x20   sys.stderr.write('tick\\n'); sys.stderr.flush()\n\
             \x20   sys.stdout.write('RESULT 2\\nOK'); sys.stdout.flush()\n",
        ));
        let script = cx.workdir().join("listener.py");
        cx.add(
            Eventlistener::new("ticker", "/bin/sh")
                .command_absolute(false)
                .args(format!("-c 'exec python3 {}'", script.display()))
                .events(vec!["TICK_5".to_string()])
                .options(std::collections::BTreeMap::from([(
                    "stderr_logfile".to_string(),
                    cx.workdir().join("ticker.log").display().to_string(),
                )])),
        );
        Ok(())
    }
}
"##;

#[test]
fn supervisor_listeners_checks_logrotate_cold_deployment_and_shutdown() {
    let p = example("myapp-features");
    let wheels: PathBuf = p.path.join("wheels");
    build_wheel(&wheels, "myapp", "1.0", &app_source("1.0"));
    p.write("components/extras/component.rs", EXTRAS);
    let nrpe = p.path.join("nrpe.cfg");
    let cfg = |version: &str, supervisor: &str| {
        environment(
            "local",
            "localhost",
            "myapp, supervisor, extras, logrotate, nrpehost",
            &wheels,
            version,
        ) + &format!(
            "logrotate = true\nnagios = true\ndeployment_mode = cold\n{supervisor}\n\
             [component:nrpehost]\npath = {}\n",
            nrpe.display()
        )
    };
    p.write("environments/test/environment.cfg", &cfg("1.0", ""));
    p.build_ok();
    let supervisor = p.path.join("work/supervisor");
    let _kill = KillOnDrop(supervisor.join("supervisord.pid"));

    let out = p.batou(&["deploy", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let status = ctl(&supervisor, &["status"]);
    assert!(
        status.contains("ticker") && status.contains("RUNNING"),
        "{status}"
    );
    // It hears supervisor's TICK_5 events.
    wait_for_text(&p.path.join("work/extras/ticker.log"), "tick");

    // The nagios check is a real script, run through NRPE's config.
    let nrpe_text = std::fs::read_to_string(&nrpe).unwrap();
    let check = supervisor.join("check_supervisor");
    assert!(
        nrpe_text.contains(&check.display().to_string()),
        "{nrpe_text}"
    );
    let ran = Command::new(&check).output().unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "OK - all programs are running\n"
    );
    let logrotate = std::fs::read_to_string(p.path.join("work/logrotate/logrotate.conf")).unwrap();
    assert!(
        logrotate.contains(&format!("{}/var/log/*.log", supervisor.display())),
        "{logrotate}"
    );

    // Cold: the program is stopped before its package changes.
    build_wheel(&wheels, "myapp", "1.1", &app_source("1.1"));
    p.write("environments/test/environment.cfg", &cfg("1.1", ""));
    let out = p.batou(&["deploy", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    // The package's change is announced, the program stopped, then the
    // package installed and the program started.
    let announced = text
        .find("🚀 localhost: MyApp > VirtualEnv('3') > Package('myapp==1.1')")
        .unwrap_or_else(|| panic!("{text}"));
    let stopped = text
        .find("localhost: ☣ Stopping myapp for cold deployment")
        .unwrap_or_else(|| panic!("{text}"));
    let started = text
        .find("🚀 localhost: MyApp > Program('myapp')")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(announced < stopped && stopped < started, "{text}");
    wait_for_text(&supervisor.join("var/log/myapp.log"), "myapp 1.1 running");
    assert!(ctl(&supervisor, &["status", "myapp"]).contains("RUNNING"));

    // A program that stops makes the check critical.
    ctl(&supervisor, &["stop", "myapp"]);
    let ran = Command::new(&check).output().unwrap();
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stdout).starts_with("CRITICAL - myapp"));

    // A listener that exits at once: the error shows its stderr, from the
    // log its section names, and its directory is the one given.
    p.write(
        "environments/deaf/environment.cfg",
        &environment(
            "local",
            "localhost",
            "myapp, supervisor, deaf",
            &wheels,
            "1.1",
        ),
    );
    let out = p.batou(&["deploy", "deaf"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Eventlistener \"deaf\" did not start up (deaf"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "the end of {}:",
            supervisor.join("var/log/deaf.log").display()
        )),
        "{text}"
    );
    assert!(text.contains("cannot hear in /tmp"), "{text}");
    let section = std::fs::read_to_string(supervisor.join("etc/supervisor.d/deaf.conf")).unwrap();
    assert!(section.contains("directory = /tmp\n"), "{section}");
    ctl(&supervisor, &["stop", "deaf"]);

    // Disabled: supervisord is shut down.
    let pid = live_pid(&supervisor.join("supervisord.pid")).expect("supervisord runs");
    p.write(
        "environments/test/environment.cfg",
        &cfg("1.1", "enable = false\n"),
    );
    let out = p.batou(&["deploy", "test"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for _ in 0..100 {
        if !Path::new("/proc").join(pid.to_string()).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(live_pid(&supervisor.join("supervisord.pid")), None);
}
