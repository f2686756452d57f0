//! Benchmark (not a test): a 500 MB file shipped to a real sshd host and
//! deployed there with `BinaryFile`; the file is then changed and deployed
//! again. Prints the peak memory (VmHWM) of the controller and of the agent
//! for the change, above their peaks for a no-op deployment (target: under
//! 64 MB above that baseline on each side). Needs root, like the SSH tests.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-bigfile` (or
//! `bench/bigfile`).

use batou_tests::sshd::SshLab;
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SIZE: usize = 500 << 20;

/// A file of SIZE bytes, different for each seed, written in pieces.
fn write_big(path: &std::path::Path, seed: u8) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create big file"));
    let block: Vec<u8> = (0..(1usize << 20))
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    for _ in 0..(SIZE >> 20) {
        f.write_all(&block).expect("write big file");
    }
}

/// VmHWM of a process in kB (0 when it is gone).
fn hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Processes whose command line starts with an executable under `dir`.
fn agents(dir: &str) -> Vec<u32> {
    batou_tests::bench::pids_where(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.starts_with(dir.as_bytes()))
            .unwrap_or(false)
    })
}

/// Deploys and returns (seconds, controller peak kB, agent peak kB).
fn deploy(bin: &std::path::Path, project: &std::path::Path, agent_dir: &str) -> (f64, u64, u64) {
    let started = Instant::now();
    let child = Command::new(bin)
        .args(["deploy", "remote"])
        .current_dir(project)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("deploy");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new(Mutex::new((0u64, 0u64)));
    let watcher = {
        let (done, peaks, agent_dir) = (done.clone(), peaks.clone(), agent_dir.to_string());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let controller = hwm(pid);
                let agent = agents(&agent_dir).into_iter().map(hwm).max().unwrap_or(0);
                let mut p = peaks.lock().unwrap_or_else(|e| e.into_inner());
                p.0 = p.0.max(controller);
                p.1 = p.1.max(agent);
                drop(p);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().expect("deploy output");
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        std::process::exit(1);
    }
    let (c, a) = *peaks.lock().unwrap_or_else(|e| e.into_inner());
    (started.elapsed().as_secs_f64(), c, a)
}

fn main() -> ExitCode {
    let lab = SshLab::start(&["m1"]);
    let root = batou_tests::workspace_root();
    let project = root.join("target/bench/bench-bigfile");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).expect("project dir");
    batou_tests::render_template(&project, "bench-bigfile", &root).expect("render");
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("lock");
    std::fs::write(
        project.join("components/tick/component.rs"),
        r#"
use batou::prelude::*;
use batou_stdlib::file::BinaryFile;

#[component]
pub struct Tick {}

impl Component for Tick {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(BinaryFile::new("big.bin"));
        Ok(())
    }
}
"#,
    )
    .expect("component");
    let big = project.join("components/tick/big.bin");
    write_big(&big, 1);
    std::fs::write(project.join("ssh_config"), lab.ssh_config()).expect("ssh_config");
    std::fs::create_dir_all(project.join("environments/remote")).expect("environment dir");
    std::fs::write(
        project.join("environments/remote/environment.cfg"),
        "[environment]\nconnect_method = ssh\n\n[hosts]\nm1 = tick\n",
    )
    .expect("cfg");
    let bin = match batou_tests::build_bench_crate(&project, "bench-bigfile") {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    let agent_dir = lab.hosts[0]
        .path("deployment/.batou/bin/")
        .to_string_lossy()
        .into_owned();

    let (t_first, c_first, a_first) = deploy(&bin, &project, &agent_dir);
    let (t_noop, c_noop, a_noop) = deploy(&bin, &project, &agent_dir);
    write_big(&big, 2);
    let (t_change, c_change, a_change) = deploy(&bin, &project, &agent_dir);
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "batou-rs big-file benchmark: one {} MB file over SSH (russh, loopback)",
        SIZE >> 20
    );
    println!(
        "{:<16} {:>9} {:>16} {:>12}",
        "run", "seconds", "controller MB", "agent MB"
    );
    for (name, t, c, a) in [
        ("first deploy", t_first, c_first, a_first),
        ("no-op", t_noop, c_noop, a_noop),
        ("file changed", t_change, c_change, a_change),
    ] {
        println!("{name:<16} {t:>9.2} {:>16.1} {:>12.1}", mb(c), mb(a));
    }
    println!(
        "change above no-op: controller +{:.1} MB, agent +{:.1} MB (target: under 64 MB each)",
        mb(c_change.saturating_sub(c_noop)),
        mb(a_change.saturating_sub(a_noop))
    );
    ExitCode::SUCCESS
}
