//! A deployment never touches what it does not own: the attacks of a
//! careless configuration and of hostile input, reproduced on real sshd
//! hosts and on a real agent process, now refused.

use batou_tests::sshd::SshLab;
use batou_tests::*;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

fn remote_project(name: &str, lab: &SshLab, environment: &str, hosts: &str) -> Project {
    let p = Project::generate(name);
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        &format!("[environment]\nconnect_method = ssh\n{environment}\n[hosts]\n{hosts}\n"),
    );
    p
}

fn chown(path: &std::path::Path, user: &str) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_home_directory_as_target_is_refused_and_nothing_is_deleted() {
    let Some(lab) = SshLab::for_test(&["x1"]) else {
        return;
    };
    let host = &lab.hosts[0];
    std::fs::write(host.path("notes.txt"), "mine\n").unwrap();
    chown(&host.path("notes.txt"), &host.user);
    let p = remote_project("safety-home", &lab, "target_directory = ~", "x1 = tick");
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "ERROR: x1: refusing to deploy into {}: it is not empty and holds no record of an earlier deployment (.batou/shipped.json)",
            host.home.display()
        )),
        "{text}"
    );
    assert!(text.contains(".ssh"), "the message lists entries: {text}");
    assert!(
        text.contains("Empty it or choose another target_directory."),
        "{text}"
    );
    assert!(
        text.contains("DEPLOYMENT FAILED (during connect)"),
        "{text}"
    );
    assert!(host.path(".ssh/authorized_keys").exists());
    assert_eq!(
        std::fs::read_to_string(host.path("notes.txt")).unwrap(),
        "mine\n"
    );
    assert!(!host.path("components").exists());
    assert!(!host.path("work").exists());
    // Still logged in fine: a second attempt says the same.
    let again = p.batou(&["deploy", "remote"]);
    assert!(stdout(&again).contains("refusing to deploy into"));
}

#[test]
fn links_in_the_target_are_replaced_never_written_through() {
    let Some(lab) = SshLab::for_test(&["x2"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let outside = host.path("outside");
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).unwrap();
    chown(&outside, &host.user);
    let p = remote_project("safety-links", &lab, "", "x2 = tick");
    p.build_ok();
    std::os::unix::fs::symlink("../outside", p.path.join("data")).unwrap();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(std::fs::symlink_metadata(host.path("deployment/data"))
        .unwrap()
        .file_type()
        .is_symlink());

    // The link becomes a real directory: its file lands in the target.
    std::fs::remove_file(p.path.join("data")).unwrap();
    p.write("data/victim", "v\n");
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(host.path("deployment/data"))
        .unwrap()
        .is_dir());
    assert_eq!(
        std::fs::read_to_string(host.path("deployment/data/victim")).unwrap(),
        "v\n"
    );
    // Files somebody else put into the target are not the deployment's.
    std::fs::write(host.path("deployment/data/local"), "x").unwrap();
    std::fs::remove_dir_all(p.path.join("data")).unwrap();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(!host.path("deployment/data/victim").exists());
    assert!(host.path("deployment/data/local").exists());
}

#[test]
fn an_agent_others_could_replace_is_not_run() {
    let Some(lab) = SshLab::for_test(&["x3"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let p = remote_project("safety-agent", &lab, "", "x3 = tick");
    p.build_ok();
    assert!(p.batou(&["deploy", "remote"]).status.success());
    let bin = host.path("deployment/.batou/bin");
    assert_eq!(mode(&host.path("deployment/.batou")), 0o700);
    assert_eq!(mode(&bin), 0o700);

    // Group-writable: somebody else could have swapped the executable.
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = p.batou(&["deploy", "remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "ERROR: x3: refusing to run the agent on x3: {} is a link, belongs to another user or is writable by group or others",
            bin.display()
        )),
        "{text}{}",
        stderr(&out)
    );
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();

    // Other bytes under the right name are replaced by a fresh upload, and
    // only the current and the previous executable are kept.
    let current: Vec<_> = std::fs::read_dir(&bin).unwrap().flatten().collect();
    assert_eq!(current.len(), 1);
    let exe = current[0].path();
    for (name, date) in [
        ("batou-0000000000000000", "2020-01-01"),
        ("batou-1111111111111111", "2021-01-01"),
    ] {
        std::fs::write(bin.join(name), "old").unwrap();
        chown(&bin.join(name), &host.user);
        Command::new("touch")
            .args(["-d", date])
            .arg(bin.join(name))
            .status()
            .unwrap();
    }
    std::fs::write(&exe, "#!/bin/sh\necho replaced >&2\n").unwrap();
    chown(&exe, &host.user);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stderr(&out).contains("replaced"), "{}", stderr(&out));
    let mut left: Vec<String> = std::fs::read_dir(&bin)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = [
        "batou-1111111111111111".to_string(),
        exe.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn files_of_any_size_ship_in_chunks() {
    let Some(lab) = SshLab::for_test(&["x4"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let p = remote_project("safety-big", &lab, "", "x4 = tick");
    p.build_ok();
    // Larger than the old single-frame limit (64 MiB base64).
    let data: Vec<u8> = (0..(50usize << 20)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(p.path.join("big.bin"), &data).unwrap();
    std::fs::write(p.path.join(".gitignore"), "work/\ntarget/\n*.log\n").unwrap();
    p.write("debug.log", "junk\n");
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(std::fs::read(host.path("deployment/big.bin")).unwrap() == data);
    assert!(
        !host.path("deployment/debug.log").exists(),
        ".gitignore is honoured"
    );
}

#[test]
fn a_listener_that_never_speaks_ssh_fails_within_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let p = Project::generate("safety-timeout");
    let known = p.path.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    p.write(
        "ssh_config",
        &format!(
            "Host mute\n  HostName 127.0.0.1\n  Port {port}\n  User nobody\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
            known.display()
        ),
    );
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\ntimeout = 1\n\n[hosts]\nmute = tick\n",
    );
    p.build_ok();
    let started = std::time::Instant::now();
    let out = p.batou(&["deploy", "remote"]);
    let took = started.elapsed();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "unreachable: {text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(
        text.contains("(gave up after 3 attempts of at most 1s each, 6s in all at most; the environment's timeout sets the time per attempt)"),
        "{text}"
    );
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
}

/// Writes one frame of the agent protocol.
fn frame(w: &mut impl Write, body: &[u8]) {
    w.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    w.write_all(body).unwrap();
    w.flush().unwrap();
}

fn read_answer(r: &mut impl Read) -> String {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    r.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn the_agent_answers_garbage_with_a_failure_and_serves_nothing_before_hello() {
    let p = Project::generate("safety-agent-frames");
    p.build_ok();
    let start = || {
        Command::new(p.binary())
            .arg("agent")
            .current_dir(&p.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // A request before Hello.
    let mut agent = start();
    let (mut to, mut from) = (agent.stdin.take().unwrap(), agent.stdout.take().unwrap());
    frame(&mut to, br#"{"Lock":{"root":"/tmp"}}"#);
    let answer = read_answer(&mut from);
    assert_eq!(
        answer,
        r#"{"Failed":{"message":"batou agent: the first request must be Hello"}}"#
    );
    assert_eq!(agent.wait().unwrap().code(), Some(1));

    // An oversized frame.
    let mut agent = start();
    let (mut to, mut from) = (agent.stdin.take().unwrap(), agent.stdout.take().unwrap());
    to.write_all(&u32::MAX.to_be_bytes()).unwrap();
    to.flush().unwrap();
    let answer = read_answer(&mut from);
    assert!(
        answer.contains("refusing the request: a frame of 4294967295 bytes exceeds the limit of 67108864 bytes (64 MiB)"),
        "{answer}"
    );
    assert_eq!(agent.wait().unwrap().code(), Some(2));

    // A path that leaves the target, after a proper hello.
    let mut agent = start();
    let (mut to, mut from) = (agent.stdin.take().unwrap(), agent.stdout.take().unwrap());
    frame(
        &mut to,
        format!(
            r#"{{"Hello":{{"protocol":{},"version":"x"}}}}"#,
            batou::agent::protocol::PROTOCOL_VERSION
        )
        .as_bytes(),
    );
    assert!(read_answer(&mut from).starts_with(r#"{"Hello""#));
    let target = tempfile::tempdir().unwrap();
    frame(
        &mut to,
        format!(
            r#"{{"Ship":{{"root":"{}","manifest":[{{"path":"../escape","kind":"Dir"}}]}}}}"#,
            target.path().display()
        )
        .as_bytes(),
    );
    assert_eq!(
        read_answer(&mut from),
        r#"{"Failed":{"message":"refusing the path \"../escape\": it contains `..`"}}"#
    );
    assert_eq!(agent.wait().unwrap().code(), Some(1));
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}
