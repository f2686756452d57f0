//! logrotate: log files of a host's components collected into its
//! logrotate.conf, checked with the real `logrotate -d`, run by the real
//! logrotate, scheduled through the host's crontab; on a real sshd host.

use batou_tests::*;
use std::process::Command;

const APP: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;
use batou_stdlib::logrotate::RotatedLogfile;

#[component]
pub struct App;

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("var/log/app.log").content("a line\n").leading(true));
        cx.add(RotatedLogfile::new("var/log/app.log").args("rotate 3, size 1").postrotate("true"));
        Ok(())
    }
}
"##;

fn cfg(extra: &str) -> String {
    format!(
        "[environment]\nconnect_method = ssh\n\n[hosts]\nl1 = app, logrotate, crontab\n\n\
         [component:logrotate]\ncron = true\n{extra}"
    )
}

#[test]
fn logfiles_are_collected_checked_rotated_and_scheduled() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["l1"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let _ = Command::new("crontab")
        .args(["-r", "-u", &host.user])
        .output();
    let p = Project::generate("logrotate-app");
    p.write("components/app/component.rs", APP);
    p.write("ssh_config", &lab.ssh_config());
    p.write("environments/remote/environment.cfg", &cfg(""));
    p.build_ok();
    let out = p.batou(&["deploy", "-P", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let work = host.path("deployment/work");
    let conf = std::fs::read_to_string(work.join("logrotate/logrotate.conf")).unwrap();
    let log = work.join("app/var/log/app.log");
    assert!(conf.starts_with("daily\nrotate 14\n"), "{conf}");
    assert!(
        conf.ends_with(&format!(
            "\n{}  {{\nrotate 3\nsize 1\npostrotate\ntrue\nendscript\n}}\n",
            log.display()
        )),
        "{conf}"
    );
    let crontab = Command::new("crontab")
        .args(["-l", "-u", &host.user])
        .output()
        .unwrap();
    let crontab = String::from_utf8_lossy(&crontab.stdout).into_owned();
    let dir = work.join("logrotate");
    assert!(
        crontab.contains(&format!(
            "45 2 * * * /usr/sbin/logrotate -s {0}/state {0}/logrotate.conf",
            dir.display()
        )),
        "{crontab}"
    );
    let again = p.batou(&["deploy", "remote"]);
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );

    // The real logrotate, run as the host's user like its cron job,
    // rotates with it.
    let rotated = Command::new("runuser")
        .args(["-u", &host.user, "--", "/usr/sbin/logrotate", "-s"])
        .arg(dir.join("state"))
        .arg(dir.join("logrotate.conf"))
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("app.log-") && n.ends_with(".gz")),
        "{names:?}"
    );

    // A directive logrotate does not know fails the deployment.
    p.write(
        "environments/remote/environment.cfg",
        &cfg("common_config = rotat 3\n"),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(&format!(
            "logrotate rejects {}:",
            dir.join("logrotate.conf").display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("rotat"), "{}", stdout(&out));
}
