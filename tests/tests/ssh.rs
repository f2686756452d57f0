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
    let Some(lab) = SshLab::for_test(&["s1"]) else {
        return;
    };
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
fn setting_up_a_host_reports_upload_and_shipping_progress() {
    let Some(lab) = SshLab::for_test(&["s9"]) else {
        return;
    };
    let p = remote_project("ssh-progress", &lab, "s9 = tick");
    p.build_ok();
    let out = p.batou(&["deploy", "--json", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let progress = |stage: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["event"] == "host_progress" && e["stage"] == stage)
            .collect()
    };
    for stage in ["upload", "ship"] {
        let last = *progress(stage)
            .last()
            .unwrap_or_else(|| panic!("no {stage} progress"));
        assert_eq!(last["host"], "s9");
        assert_eq!(last["done"], last["total"], "{last}");
    }
    assert!(events
        .iter()
        .any(|e| e["event"] == "host_connected" && e["host"] == "s9"));

    // Uploaded once: the next run ships nothing and uploads nothing, and
    // text output that is not a terminal has no progress lines.
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("⏳"), "{text}");
    let out = p.batou(&["deploy", "--json", "remote"]);
    assert!(!stdout(&out).contains("\"stage\":\"upload\""));
}

#[test]
fn host_keys_are_verified_and_unreachable_hosts_named() {
    let Some(mut lab) = SshLab::for_test(&["s2"]) else {
        return;
    };
    let p = remote_project("ssh-keys", &lab, "s2 = tick");
    p.build_ok();

    lab.change_host_key("s2");
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "a host key refused: {text}");
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
    assert_eq!(out.status.code(), Some(3), "unreachable: {text}");
    assert!(text.contains("ERROR: s2: ssh to s2 failed"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}

#[test]
fn a_second_deployment_to_the_same_target_is_refused() {
    let Some(lab) = SshLab::for_test(&["s3"]) else {
        return;
    };
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
        // Holds the lock while the test's `hold` file exists (at most a
        // minute), however slow the machine.
        cx.cmd("i=0; while [ -e hold ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")?;
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
    let hold = lab.hosts[0].path("deployment/work/tick/hold");
    std::fs::write(&hold, "").unwrap();

    let mut running = first.command(&["deploy", "remote"]).spawn().unwrap();
    let started = lab.hosts[0].path("deployment/work/tick/started");
    wait_for(&started, "the first deployment starting");
    let out = second.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("another deployment is running in /home/batou-s3/deployment on this host"),
        "{text}"
    );
    assert!(
        text.contains("the lock /home/batou-s3/deployment/.batou-lock is held by PID "),
        "{text}"
    );
    assert!(
        text.contains(" UTC. Wait for it to finish (or stop it) and deploy again."),
        "{text}"
    );
    std::fs::remove_file(&hold).unwrap();
    assert!(running.wait().unwrap().success());
}

const LOAD_BALANCER: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

pub const APPLICATION: Resource<Address> = Resource::new("application");

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

#[component]
pub struct App {}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let me = cx.address(&format!("{}:8080", cx.host_name()))?;
        cx.provide(&APPLICATION, me)?;
        cx.add(File::new("app.conf").content("port=8080\n"));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join("finished").exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(500));
        std::fs::write(cx.workdir().join("finished"), now_ms().to_string())?;
        Ok(())
    }
}

#[component]
pub struct Balancer {}

impl Component for Balancer {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let mut text = String::from("backend app\n");
        for b in cx.require(&APPLICATION)? {
            text.push_str(&format!("    server {b}\n"));
        }
        cx.add(File::new("haproxy.cfg").content(text));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join("started").exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::write(cx.workdir().join("started"), now_ms().to_string())?;
        Ok(())
    }
}

#[component]
pub struct Slow {}

impl Component for Slow {
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join("done").exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::write(cx.workdir().join("started"), "")?;
        cx.cmd("sleep 5")?;
        std::fs::write(cx.workdir().join("done"), "")?;
        Ok(())
    }
}
"##;

#[test]
fn the_load_balancer_deploys_to_three_ssh_hosts() {
    let Some(lab) = SshLab::for_test(&["s4", "s5", "s6"]) else {
        return;
    };
    let p = remote_project(
        "ssh-lb",
        &lab,
        "s4 = balancer\ns5 = app\ns6 = app\n\n[resolver]\ns5 = 10.0.0.5\ns6 = 10.0.0.6",
    );
    p.write("components/tick/component.rs", LOAD_BALANCER);
    // The template's local environment names Tick, which this file drops.
    std::fs::remove_dir_all(p.path.join("environments/local")).unwrap();
    p.build_ok();
    let out = p.batou(&["deploy", "-j", "3", "remote"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let read = |host: usize, rel: &str| std::fs::read_to_string(lab.hosts[host].path(rel)).unwrap();
    assert_eq!(
        read(0, "deployment/work/balancer/haproxy.cfg"),
        "backend app\n    server s5:8080\n    server s6:8080\n"
    );
    let lb_start: u128 = read(0, "deployment/work/balancer/started").parse().unwrap();
    for h in [1, 2] {
        let finished: u128 = read(h, "deployment/work/app/finished").parse().unwrap();
        assert!(
            finished <= lb_start,
            "the balancer started before {} finished",
            lab.hosts[h].name
        );
    }
    let again = p.batou(&["deploy", "-j", "3", "remote"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(!stdout(&again).contains("🚀"), "{}", stdout(&again));
}

#[test]
fn losing_a_host_mid_deployment_names_it_and_the_next_run_converges() {
    let Some(mut lab) = SshLab::for_test(&["s7"]) else {
        return;
    };
    let p = remote_project("ssh-kill", &lab, "s7 = slow");
    p.write("components/tick/component.rs", LOAD_BALANCER);
    // The template's local environment names Tick, which this file drops.
    std::fs::remove_dir_all(p.path.join("environments/local")).unwrap();
    p.build_ok();
    let running = p
        .command(&["deploy", "remote"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = lab.hosts[0].path("deployment/work/slow/started");
    wait_for(&started, "the deployment starting");
    lab.host("s7").stop();
    let out = running.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: s7: the host closed the connection (its sshd ended the session: restarted, or the session was killed)"),
        "{text}"
    );
    assert!(text.contains("DEPLOYMENT FAILED (during deploy)"), "{text}");
    assert!(!text.contains("panicked"), "{text}");

    lab.host("s7").start();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(lab.hosts[0].path("deployment/work/slow/done").exists());
}

/// Whether nobody holds the lock file at `path` (an open-file-description
/// lock, as batou takes it, would fail).
fn lock_is_free(path: &std::path::Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return true;
    };
    // SAFETY: an all-zero flock is valid; a valid descriptor.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) == 0 }
}

/// The network path to the host drops mid-deploy (a link that goes
/// silent, as a pulled cable or a firewall's DROP): the controller says
/// the host stopped answering after the environment's timeout allows, the
/// agent on the host notices its silent controller and ends, releasing
/// the lock, and once the link is back the next deploy converges without
/// anyone touching the host. With both ssh clients.
#[test]
fn a_dropped_link_is_noticed_at_both_ends_and_leaves_the_host_unlocked() {
    let Some(lab) = SshLab::for_test(&["dl"]) else {
        return;
    };
    for client in ["russh", "openssh"] {
        let _ = std::fs::remove_dir_all(lab.hosts[0].path("deployment"));
        let link = batou_tests::link::Link::to(lab.hosts[0].port);
        let p = Project::generate(&format!("ssh-dropped-link-{client}"));
        p.write(
            "ssh_config",
            &lab.ssh_config().replace(
                &format!("Port {}\n", lab.hosts[0].port),
                &format!("Port {}\n", link.port),
            ),
        );
        p.write(
            "environments/remote/environment.cfg",
            &format!(
                "[environment]\nconnect_method = ssh\nssh_client = {client}\ntimeout = 1\n\n[hosts]\ndl = slow\n"
            ),
        );
        p.write("components/tick/component.rs", LOAD_BALANCER);
        std::fs::remove_dir_all(p.path.join("environments/local")).unwrap();
        p.build_ok();
        let running = p
            .command(&["deploy", "remote"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = lab.hosts[0].path("deployment/work/slow/started");
        wait_for(&started, "the deployment starting");
        link.cut();
        let out = running.wait_with_output().unwrap();
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{client}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.contains("ERROR: dl: the host stopped answering: nothing heard for 4s (keep-alives every 1s, the environment's timeout)"),
            "{client}: {text}{}",
            stderr(&out)
        );
        // The agent notices its silent controller and ends: the lock is
        // free, without anyone logging in.
        let lock = lab.hosts[0].path("deployment/.batou-lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !lock_is_free(&lock) {
            assert!(
                std::time::Instant::now() < deadline,
                "{client}: the agent on the host still holds {}",
                lock.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        link.restore();
        let out = p.batou(&["deploy", "remote"]);
        assert!(
            out.status.success(),
            "{client}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(lab.hosts[0].path("deployment/work/slow/done").exists());
    }
}

/// Every name below `dir` that contains `needle`.
fn names_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .map(|(rel, _, _)| rel.display().to_string())
        .filter(|rel| rel.contains(needle))
        .collect()
}

/// A shipment cut off mid-file leaves a temp file of an agent that is
/// gone; the next deploy removes it, as it removes a half-uploaded
/// executable of an upload that no longer runs.
#[test]
fn what_interrupted_uploads_left_is_removed_by_the_next_deploy() {
    let Some(lab) = SshLab::for_test(&["iu"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let link = batou_tests::link::Link::to(host.port);
    let p = Project::generate("ssh-interrupted-upload");
    p.write(
        "ssh_config",
        &lab.ssh_config().replace(
            &format!("Port {}\n", host.port),
            &format!("Port {}\n", link.port),
        ),
    );
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = ssh\ntimeout = 1\n\n[hosts]\niu = tick\n",
    );
    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(p.path.join("components/tick/big.bin"), big).unwrap();
    p.build_ok();
    // A half-uploaded executable of an upload shell that is gone.
    let bin = host.path("deployment/.batou/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let half_exe = bin.join(format!("batou-0123.tmp.{dead_pid}"));
    std::fs::write(&half_exe, "half").unwrap();
    host.give(&host.path("deployment"));
    std::fs::set_permissions(
        host.path("deployment/.batou"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();

    let running = p
        .command(&["deploy", "local"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let target = host.path("deployment/components/tick");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while names_containing(&target, ".batou-tmp-").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the shipment never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    link.cut();
    let out = running.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        !half_exe.exists(),
        "the upload removes half-uploaded executables"
    );
    let lock = host.path("deployment/.batou-lock");
    while !lock_is_free(&lock) {
        assert!(std::time::Instant::now() < deadline, "the agent still runs");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        names_containing(&target, ".batou-tmp-").len(),
        1,
        "the cut shipment left its temp file"
    );
    link.restore();
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        names_containing(&host.path("deployment"), ".batou-tmp-"),
        Vec::<String>::new()
    );
    assert_eq!(
        std::fs::metadata(target.join("big.bin")).unwrap().len(),
        64 << 20
    );
}

const GREEDY: &str = r##"
use batou::prelude::*;

/// Caps its agent's address space (as `ulimit -v` would), then asks for
/// more.
#[component]
pub struct Greedy {}

impl Component for Greedy {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        cx.cmd(&format!("prlimit --pid {} --as=4294967296", std::process::id()))?;
        let v = vec![7u8; 8 << 30];
        std::hint::black_box(&v);
        Ok(())
    }
}

/// Its agent is killed with SIGKILL, as the kernel's OOM killer does.
#[component]
pub struct Killed {}

impl Component for Killed {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        cx.cmd("kill -KILL $PPID")?;
        Ok(())
    }
}
"##;

/// An agent that runs out of memory says so: a failed allocation under a
/// memory cap is named with its size, a SIGKILL (the OOM killer's way) is
/// named as such; locally and over ssh.
#[test]
fn an_agent_out_of_memory_or_killed_is_reported_with_the_cause() {
    let lab = SshLab::for_test(&["om"]);
    let p = Project::generate("agent-memory");
    p.write("components/tick/component.rs", GREEDY);
    std::fs::remove_dir_all(p.path.join("environments/local")).unwrap();
    let mut envs = vec!["local"];
    p.write(
        "environments/local-greedy/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = greedy\n",
    );
    p.write(
        "environments/local-killed/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = killed\n",
    );
    if let Some(lab) = &lab {
        envs.push("remote");
        p.write("ssh_config", &lab.ssh_config());
        for what in ["greedy", "killed"] {
            p.write(
                &format!("environments/remote-{what}/environment.cfg"),
                &format!("[environment]\nconnect_method = ssh\n\n[hosts]\nom = {what}\n"),
            );
        }
    }
    p.build_ok();
    let fails_with = |env: &str, error: &str| {
        let out = p.batou(&["deploy", env]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{env}: {text}{}", stderr(&out));
        assert!(text.contains(error), "{env}: {text}{}", stderr(&out));
    };
    for env in envs {
        let host = if env == "local" { "localhost" } else { "om" };
        fails_with(
            &format!("{env}-greedy"),
            &format!("ERROR: {host}: the agent ran out of memory (memory allocation of 8589934592 bytes failed)"),
        );
        fails_with(
            &format!("{env}-killed"),
            &format!("ERROR: {host}: the agent was killed (SIGKILL): on a host short of memory this is the kernel's out-of-memory killer"),
        );
    }
}

#[test]
// Its service users are its own: other tests' hosts (s9, ...) have
// users named batou-<host> that their tests reset meanwhile.
fn service_user_through_sudo() {
    let Some(lab) = SshLab::for_test(&["s8"]) else {
        return;
    };
    let service_home = batou_tests::sshd::ensure_user("batou-svc1");
    batou_tests::sshd::ensure_user("batou-svc2");
    batou_tests::sshd::allow_sudo("batou-s8", "batou-svc1");
    let p = remote_project("ssh-sudo", &lab, "s8 = tick");
    p.write(
        "environments/service/environment.cfg",
        "[environment]\nconnect_method = ssh\nservice_user = batou-svc1\n\n[hosts]\ns8 = tick\n",
    );
    p.write(
        "environments/nosudo/environment.cfg",
        "[environment]\nconnect_method = ssh\nservice_user = batou-svc2\n\n[hosts]\ns8 = tick\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "service"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let script = service_home.join("deployment/work/tick/tick.sh");
    assert!(script.exists(), "deployed into the service user's home");
    use std::os::unix::fs::MetadataExt;
    let uid = std::process::Command::new("id")
        .args(["-u", "batou-svc1"])
        .output()
        .unwrap();
    assert_eq!(
        std::fs::metadata(&script).unwrap().uid().to_string(),
        String::from_utf8_lossy(&uid.stdout).trim()
    );
    assert!(
        !lab.hosts[0].path("deployment/work").exists(),
        "nothing deployed as the login user"
    );

    let out = p.batou(&["deploy", "nosudo"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: s8: cannot become the service user batou-svc2 on s8 with `sudo -n` (sudo: a password is required)"),
        "{text}"
    );
}

/// `connect_method = vagrant`: batou asks `vagrant up` and `vagrant
/// ssh-config NAME` how to reach the machine. VirtualBox cannot run here, so
/// a stand-in `vagrant` on PATH answers with the ssh settings of a real sshd.
#[test]
fn vagrant_machines_are_reached_with_vagrants_ssh_config() {
    let Some(lab) = SshLab::for_test(&["v1"]) else {
        return;
    };
    let p = Project::generate("vagrant-deploy");
    p.write(
        "environments/dev/environment.cfg",
        "[environment]\nconnect_method = vagrant\n\n[hosts]\nv1 = tick\n",
    );
    p.build_ok();
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls");
    std::fs::write(bin.path().join("ssh-config"), lab.ssh_config()).unwrap();
    let path = stand_in(
        bin.path(),
        "vagrant",
        &format!(
            "echo \"$@\" >> {log}\ncase \"$1\" in\n  up) exit 0;;\n  ssh-config) cat {cfg};;\n  *) exit 1;;\nesac\n",
            log = log.display(),
            cfg = bin.path().join("ssh-config").display()
        ),
    );
    let out = p
        .command(&["deploy", "dev"])
        .env("PATH", path)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("🧱 main: Starting vagrant machines ..."),
        "{text}"
    );
    assert!(
        text.contains("🌐 v1: Connecting via vagrant (1/1)"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "up\nssh-config v1\n"
    );
    assert!(lab.hosts[0].path("deployment/work/tick/tick.sh").exists());
}

/// `connect_method = kitchen`: `kitchen create NAME`, then the ssh settings
/// from `kitchen diagnose`. A stand-in `kitchen` on PATH describes a real
/// sshd, as test-kitchen describes its instances.
#[test]
fn kitchen_instances_are_reached_with_kitchens_state() {
    let Some(lab) = SshLab::for_test(&["k1"]) else {
        return;
    };
    let p = Project::generate("kitchen-deploy");
    p.write(
        "environments/kitchen/environment.cfg",
        "[environment]\nconnect_method = kitchen\n\n[hosts]\nk1 = tick\n",
    );
    p.build_ok();
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls");
    let h = &lab.hosts[0];
    std::fs::write(
        bin.path().join("diagnose.yml"),
        format!(
            "---\ntimestamp: 2026-11-23\ninstances:\n  k1:\n    state_file:\n      hostname: 127.0.0.1\n      port: '{}'\n      username: {}\n      ssh_key: {}\n",
            h.port,
            h.user,
            lab.key.display()
        ),
    )
    .unwrap();
    let path = stand_in(
        bin.path(),
        "kitchen",
        &format!(
            "echo \"$@\" >> {log}\ncase \"$1\" in\n  create) exit 0;;\n  diagnose) cat {yml};;\n  *) exit 1;;\nesac\n",
            log = log.display(),
            yml = bin.path().join("diagnose.yml").display()
        ),
    );
    let out = p
        .command(&["deploy", "kitchen"])
        .env("PATH", path)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "create k1\ndiagnose --log-level=error k1\n"
    );
    assert!(lab.hosts[0].path("deployment/work/tick/tick.sh").exists());
}

/// The same deployment through the system OpenSSH client
/// (`ssh_client = openssh`), for configurations russh cannot honour.
#[test]
fn the_system_openssh_client_works_the_same() {
    let Some(mut lab) = SshLab::for_test(&["o1"]) else {
        return;
    };
    let p = Project::generate("openssh-deploy");
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\nssh_client = openssh\n\n[hosts]\no1 = tick\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(lab.hosts[0].path("deployment/work/tick/tick.sh").exists());
    let again = p.batou(&["deploy", "remote"]);
    assert!(
        again.status.success() && !stdout(&again).contains("🚀"),
        "{}",
        stdout(&again)
    );

    lab.change_host_key("o1");
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "a changed host key: {text}");
    assert!(
        text.contains("ERROR: o1: the host key of o1 has CHANGED; refusing to connect"),
        "{text}"
    );
}

/// russh through a ProxyJump host: stopping the jump host's sshd makes the
/// target unreachable, which proves the hop is used.
#[test]
fn russh_connects_through_a_proxy_jump() {
    let Some(mut lab) = SshLab::for_test(&["pj", "pt"]) else {
        return;
    };
    let p = Project::generate("proxy-jump");
    p.write(
        "ssh_config",
        &format!("Host pt\n  ProxyJump pj\n\n{}", lab.ssh_config()),
    );
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\npt = tick\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(lab.hosts[1].path("deployment/work/tick/tick.sh").exists());
    lab.host("pj").stop();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "unreachable: {text}");
    assert!(
        text.contains("ERROR: pt: ssh to pt failed (connection failed): ProxyJump pj:"),
        "{text}"
    );
}

/// russh authenticates with keys held by an ssh-agent when no key file
/// works.
#[test]
fn russh_authenticates_with_the_ssh_agent() {
    let Some(lab) = SshLab::for_test(&["ag"]) else {
        return;
    };
    let p = Project::generate("ssh-agent-auth");
    let h = &lab.hosts[0];
    p.write(
        "ssh_config",
        &format!(
            "Host ag\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  UserKnownHostsFile {}\n  HostKeyAlias ag\n",
            h.port,
            h.user,
            lab.known_hosts.display()
        ),
    );
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\nag = tick\n",
    );
    p.build_ok();
    let home = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let sock = agent_dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&lab.key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // No key file and no agent: refused.
    let out = p
        .command(&["deploy", "remote"])
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "authentication refused: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("Permission denied (publickey)"),
        "{}",
        stdout(&out)
    );
    // With the agent: deployed.
    let out = p
        .command(&["deploy", "remote"])
        .env("HOME", home.path())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(h.path("deployment/work/tick/tick.sh").exists());
}

/// The default (russh) transport reads the configuration as OpenSSH does:
/// the host is defined only in an `Include`d file (by a glob), its login
/// user comes from a `Match host` on the name `HostName` gave, and the key
/// is a quoted path with a space and a `%h` token.
#[test]
fn russh_honours_include_match_quoted_paths_and_tokens() {
    let Some(lab) = SshLab::for_test(&["ic"]) else {
        return;
    };
    let h = &lab.hosts[0];
    let dir = tempfile::Builder::new()
        .prefix("batou ssh config ")
        .tempdir()
        .unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(
        conf_d.join("ic.conf"),
        format!(
            "Host ic\n  HostName 127.0.0.1\n  Port {}\n  UserKnownHostsFile \"{}\"\n  HostKeyAlias ic\n  \
             StrictHostKeyChecking yes\n",
            h.port,
            lab.known_hosts.display()
        ),
    )
    .unwrap();
    let key = dir.path().join("key 127.0.0.1");
    std::fs::copy(&lab.key, &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = Project::generate("ssh-config-include");
    p.write(
        "ssh_config",
        &format!(
            "Include \"{conf}/*.conf\"\nMatch host 127.0.0.1 originalhost ic\n  User {user}\n\
             Host *\n  IdentityFile \"{dir}/key %h\"\n  IdentitiesOnly yes\n",
            conf = conf_d.display(),
            user = h.user,
            dir = dir.path().display(),
        ),
    );
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\nic = tick\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(h.path("deployment/work/tick/tick.sh").exists());

    // A token the key name cannot have is an error naming it.
    p.write(
        "ssh_config",
        &format!(
            "Include \"{}/*.conf\"\nHost ic\n  IdentityFile /keys/%Q\n",
            conf_d.display()
        ),
    );
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: ic: ssh configuration: unknown token %Q in IdentityFile `/keys/%Q`"),
        "{text}"
    );
}
