//! Remote deployments over real sshd processes (one Unix user per host):
//! the executable uploads itself as the agent, the project is shipped, host
//! keys are verified, a second deployment to the same target is refused.

use batou_tests::sshd::SshLab;
use batou_tests::*;
use std::os::unix::fs::PermissionsExt;

fn remote_project(name: &str, lab: &SshLab, hosts: &str) -> Project {
    let p = Project::generate(name);
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        &format!("[environment]\nconnect_method = ssh\n\n[hosts]\n{hosts}\n"),
    );
    p
}

#[test]
fn deploys_over_ssh_ships_the_project_and_converges() {
    let lab = SshLab::start(&["s1"]);
    let p = remote_project("ssh-deploy", &lab, "s1 = tick");
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("🌐 s1: Connecting via ssh (1/1)"), "{text}");
    assert!(
        text.contains("🚀 s1: Tick > File('work/tick/tick.sh') > Content('tick.sh')"),
        "{text}"
    );
    let host = &lab.hosts[0];
    let script = host.path("deployment/work/tick/tick.sh");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/bash\nwhile true; do\n  date\n  sleep 1\ndone\n"
    );
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let meta = std::fs::metadata(&script).unwrap();
    use std::os::unix::fs::MetadataExt;
    let uid = std::process::Command::new("id")
        .args(["-u", &host.user])
        .output()
        .unwrap();
    assert_eq!(
        meta.uid().to_string(),
        String::from_utf8_lossy(&uid.stdout).trim(),
        "deployed as the host's user"
    );
    // The project was shipped; the controller's work/ was not.
    assert!(host.path("deployment/components/tick/tick.sh").exists());
    assert!(host
        .path("deployment/environments/remote/environment.cfg")
        .exists());
    assert!(!host.path("deployment/target").exists());

    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(!stdout(&again).contains("🚀"), "{}", stdout(&again));

    // A file added to the project arrives; removed, it is deleted remotely.
    p.write("components/tick/notes.txt", "notes\n");
    assert!(p.batou(&["deploy", "remote"]).status.success());
    assert!(host.path("deployment/components/tick/notes.txt").exists());
    std::fs::remove_file(p.path.join("components/tick/notes.txt")).unwrap();
    assert!(p.batou(&["deploy", "remote"]).status.success());
    assert!(!host.path("deployment/components/tick/notes.txt").exists());
    // The agent was uploaded once, into the target directory.
    let bins: Vec<_> = std::fs::read_dir(host.path("deployment/.batou/bin"))
        .unwrap()
        .collect();
    assert_eq!(bins.len(), 1);
}

#[test]
fn host_keys_are_verified_and_unreachable_hosts_named() {
    let mut lab = SshLab::start(&["s2"]);
    let p = remote_project("ssh-keys", &lab, "s2 = tick");
    p.build_ok();

    lab.change_host_key("s2");
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: s2: the host key of s2 has CHANGED; refusing to connect"),
        "{text}{}",
        stderr(&out)
    );
    assert!(
        text.contains("DEPLOYMENT FAILED (during connect)"),
        "{text}"
    );
    assert!(!lab.hosts[0].path("deployment/work").exists());

    std::fs::write(&lab.known_hosts, "").unwrap();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert!(
        text.contains("ERROR: s2: the host key of s2 is not known; refusing to connect"),
        "{text}"
    );

    lab.host("s2").stop();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("ERROR: s2: ssh to s2 failed"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}

#[test]
fn a_second_deployment_to_the_same_target_is_refused() {
    let lab = SshLab::start(&["s3"]);
    let slow = r##"
use batou::prelude::*;

#[component]
pub struct Tick {}

impl Component for Tick {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::write(cx.workdir().join("started"), "")?;
        cx.cmd("sleep 6")?;
        Ok(())
    }
}
"##;
    let first = remote_project("ssh-lock-a", &lab, "s3 = tick");
    first.write("components/tick/component.rs", slow);
    first.build_ok();
    let second = remote_project("ssh-lock-b", &lab, "s3 = tick");
    second.write("components/tick/component.rs", slow);
    second.build_ok();

    // The second's agent is uploaded already, so it reaches the lock fast.
    assert!(second.batou(&["deploy", "remote"]).status.success());
    let _ = std::fs::remove_file(lab.hosts[0].path("deployment/work/tick/started"));

    let mut running = first.command(&["deploy", "remote"]).spawn().unwrap();
    let started = lab.hosts[0].path("deployment/work/tick/started");
    for _ in 0..400 {
        if started.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started.exists(), "the first deployment did not start");
    let out = second.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("another deployment is running in /home/batou-s3/deployment on this host"),
        "{text}"
    );
    assert!(running.wait().unwrap().success());
}
