//! Benchmark (not a test): 3 SSH hosts (real sshd on loopback, one user
//! each) × 300 templated files; first deploy and no-op redeploy with `-j 1`
//! and `-j 3`. Needs root, like the SSH tests.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-ssh` (or `bench/ssh`).

use batou_tests::sshd::SshLab;
use std::process::{Command, ExitCode};
use std::time::Instant;

const FILES: usize = 300;

fn main() -> ExitCode {
    let lab = SshLab::start(&["b1", "b2", "b3"]);
    let root = batou_tests::workspace_root();
    let project = root.join("target/bench/bench-ssh");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).expect("project dir");
    batou_tests::render_template(&project, "bench-ssh", &root).expect("render");
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("lock");
    std::fs::write(
        project.join("components/tick/component.rs"),
        format!(
            r#"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Files {{
    #[attribute(default = "bench")]
    label: String,
}}

impl Component for Files {{
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {{
        for i in 0..{FILES} {{
            cx.add(File::new(format!("f{{i:03}}.conf")).source("file.tmpl"));
        }}
        Ok(())
    }}
}}
"#
        ),
    )
    .expect("component");
    std::fs::write(
        project.join("components/tick/file.tmpl"),
        "# {{ component.label }} on {{ host.name }}\nline = {{ component.workdir }}\n",
    )
    .expect("template");
    std::fs::write(project.join("ssh_config"), lab.ssh_config()).expect("ssh_config");
    std::fs::write(
        project.join("environments/local/environment.cfg"),
        "[environment]\nconnect_method = ssh\n\n[hosts]\nb1 = files\nb2 = files\nb3 = files\n",
    )
    .expect("cfg");
    let bin = match batou_tests::build_bench_crate(&project, "bench-ssh") {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    let deploy = |jobs: &str| {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(["deploy", "-j", jobs, "local"])
            .current_dir(&project)
            .env("NO_COLOR", "1")
            .output()
            .expect("deploy");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
            std::process::exit(1);
        }
        t.elapsed().as_secs_f64()
    };
    println!("batou-rs SSH benchmark: 3 hosts x {FILES} templated files (russh, loopback)");
    println!(
        "{:<6} {:>14} {:>16}",
        "jobs", "first deploy", "no-op (median3)"
    );
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    for jobs in ["1", "3"] {
        for h in &lab.hosts {
            let _ = std::fs::remove_dir_all(h.path("deployment"));
        }
        let first = deploy(jobs);
        let mut noop: Vec<f64> = (0..3).map(|_| deploy(jobs)).collect();
        noop.sort_by(|a, b| a.total_cmp(b));
        println!("{jobs:<6} {first:>13.3}s {:>15.3}s", noop[1]);
    }
    println!(
        "agent executable: {:.1} MiB (uploaded once per host and version)",
        size as f64 / 1048576.0
    );
    println!("target for the no-op: under 1 s (Python batou: about 5 s)");
    ExitCode::SUCCESS
}
