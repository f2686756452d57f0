//! Configuration errors of the standard library: each bad input is refused
//! at configure (`deploy -c`) with a message naming the component and the
//! value, and nothing is deployed.

use batou::testing::TestRoot;
use batou_stdlib::appenv::AppEnv;
use batou_stdlib::buildout::Buildout;
use batou_stdlib::cmmi::Build;
use batou_stdlib::cron::{CronJob, CronTab, Entry, JOBS};
use batou_stdlib::logrotate::RotatedLogfile;
use batou_stdlib::nagios::ServiceCheck;
use batou_stdlib::python::{Package, VirtualEnv};
use batou_stdlib::service::Service;
use batou_stdlib::supervisor::{
    DeploymentMode, Eventlistener, Program, Supervisor, SupervisorInfo, SUPERVISOR,
};
use batou_stdlib::svn::Checkout;
use std::collections::BTreeMap;
use std::path::Path;

/// The first report's title of a configure that must fail.
fn refused(root: TestRoot, component: impl batou::prelude::Component) -> String {
    let mut root = root;
    let reports = root
        .configure(component)
        .expect_err("the configuration is refused");
    reports[0].title.clone()
}

fn root(dir: &Path) -> TestRoot {
    TestRoot::new(dir)
}

fn with_supervisor(dir: &Path) -> TestRoot {
    let work = dir.join("work/supervisor");
    TestRoot::new(dir).provide(
        &SUPERVISOR,
        SupervisorInfo {
            workdir: work.clone(),
            program_config_dir: work.join("etc/supervisor.d"),
            logdir: work.join("var/log"),
            config: work.join("etc/supervisord.conf"),
            enable: true,
            wait_for_running: true,
            deployment_mode: DeploymentMode::Hot,
        },
    )
}

fn assert_has(title: String, expected: &str) {
    assert!(
        title.contains(expected),
        "{title:?} should contain {expected:?}"
    );
}

#[test]
fn acquisition_and_host_components_refuse_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_has(
        refused(
            root(d),
            Build::new("https://example.com/").checksum("sha256:00"),
        ),
        "Build: the URI does not name a file: https://example.com/",
    );
    assert_has(
        refused(root(d), Checkout::new("--config-dir=/tmp").revision("3")),
        "Checkout: invalid URL \"--config-dir=/tmp\"",
    );
    assert_has(
        refused(
            root(d),
            CronJob::new("bin/backup\nrm -rf /").timing("@daily"),
        ),
        "CronJob(bin/backup): a command must be one line",
    );
    let job = Entry {
        timing: "@daily".into(),
        command: "bin/backup".into(),
        args: String::new(),
        logger: None,
    };
    assert_has(
        refused(root(d).provide(&JOBS, job), CronTab::new().purge(true)),
        "Found cron jobs, but expecting an empty crontab.",
    );
    assert_has(
        refused(root(d), RotatedLogfile::new("var/log/my app.log")),
        "RotatedLogfile: \"",
    );
    assert_has(
        refused(root(d), RotatedLogfile::new("var/log/{app}.log")),
        "cannot be written into logrotate.conf",
    );
    assert_has(
        refused(root(d), Service::new("bin/app\n@reboot rm")),
        "Service: \"bin/app\\n@reboot rm\" is not a program",
    );
    assert_has(
        refused(root(d), ServiceCheck::new("http").command("check_http\nx")),
        "ServiceCheck(http): values must be one line",
    );
    assert!(!d.join("work").exists(), "nothing was deployed");
}

#[test]
fn python_components_refuse_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_has(
        refused(root(d), VirtualEnv::new("three")),
        "VirtualEnv: \"three\" is not a Python version (write it as `3` or `3.11`)",
    );
    assert_has(
        refused(root(d), Package::new("myapp")),
        "Package(myapp) must be added to a virtual environment: \
         VirtualEnv::new(\"3\").package(Package::new(\"myapp\"))",
    );
    assert_has(
        refused(
            root(d),
            VirtualEnv::new("3").package(Package::new("-r/etc/passwd")),
        ),
        "Package: \"-r/etc/passwd\" is not a Python distribution name",
    );
    assert_has(
        refused(
            root(d),
            VirtualEnv::new("3").package(Package::new("myapp").version("1.0; rm")),
        ),
        "Package(myapp): \"1.0; rm\" is not a version",
    );
    assert_has(
        refused(root(d), AppEnv::new("3.x")),
        "AppEnv: \"3.x\" is not a Python version (write it as `3` or `3.11`)",
    );
    assert_has(
        refused(root(d), AppEnv::new("3")),
        &format!(
            "AppEnv: cannot read the lock file {}: No such file or directory",
            d.join("requirements.lock").display()
        ),
    );
    assert_has(
        refused(root(d), Buildout::new().python("3")),
        "Buildout: either setuptools or distribute version must be specified",
    );
    assert_has(
        refused(
            root(d),
            Buildout::new()
                .python("3")
                .setuptools("68.0.0")
                .use_default(false),
        ),
        "Buildout: no configuration (use_default is false and no config was given)",
    );
    std::fs::write(d.join("requirements.lock"), b"myapp==1.0 \xff\n").unwrap();
    assert_has(
        refused(root(d), AppEnv::new("3")),
        &format!(
            "AppEnv: the lock file {} is not UTF-8 text",
            d.join("requirements.lock").display()
        ),
    );
    std::fs::write(d.join("requirements.lock"), "myapp==1.0\n").unwrap();
    assert_has(
        refused(root(d), AppEnv::new("3").pip_version("24; rm -rf")),
        "AppEnv: pip_version \"24; rm -rf\" is not a version",
    );
    assert!(!d.join("work").exists(), "nothing was deployed");
}

#[test]
fn supervisor_components_refuse_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_has(
        refused(root(d), Supervisor::new().loglevel("info\n[x]")),
        "Supervisor loglevel: values must be one line",
    );
    assert_has(
        refused(
            root(d),
            Supervisor::new().address(batou::address::NetLoc::parse("localhost").unwrap()),
        ),
        "Supervisor: `address` needs a port (localhost:9001)",
    );
    assert_has(
        refused(with_supervisor(d), Program::new("myapp", "")),
        "`command` option missing for program myapp",
    );
    assert_has(
        refused(with_supervisor(d), Program::new("my app", "bin/app")),
        "Program: \"my app\" is not a supervisor program name (letters, digits, `.`, `_`, `-`)",
    );
    assert_has(
        refused(
            with_supervisor(d),
            Program::new("myapp", "bin/app").args("--a\n[program:evil]"),
        ),
        "Program(myapp): values must be one line",
    );
    let options = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    assert_has(
        refused(
            with_supervisor(d),
            Program::new("myapp", "bin/app").options(options("a=b", "1")),
        ),
        "Program(myapp): an option name is empty or has `=`",
    );
    assert_has(
        refused(
            with_supervisor(d),
            Program::new("myapp", "bin/app").options(options("startsecs", "soon")),
        ),
        "Program(myapp): startsecs must be a number of seconds",
    );
    assert_has(
        refused(
            with_supervisor(d),
            Eventlistener::new("memmon", "bin/memmon").events(vec!["TICK\n60".to_string()]),
        ),
        "Eventlistener(memmon): values must be one line",
    );
    assert!(!d.join("work").exists(), "nothing was deployed");
}
