//! Benchmark (not a test): a generated deployment crate with 1,000 templated
//! File components under 10 roots; prints wall time and peak memory of the
//! first deploy, a no-op redeploy and `deploy -c`.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-deploy`
//! (or `bench/deploy`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const ROOTS: usize = 10;
const FILES_PER_ROOT: usize = 100;

fn component_source() -> String {
    let mut s = String::from("use batou::prelude::*;\nuse batou_stdlib::file::File;\n");
    for r in 0..ROOTS {
        s.push_str(&format!(
            r#"
#[component]
pub struct Root{r} {{
    #[attribute(default = {r})]
    number: u32,
    #[attribute(default = "bench")]
    label: String,
}}

impl Component for Root{r} {{
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {{
        for i in 0..{FILES_PER_ROOT} {{
            cx.add(File::new(format!("file-{{i:03}}.conf")).source("file.tmpl").mode(0o640));
        }}
        Ok(())
    }}
}}
"#
        ));
    }
    s
}

const TEMPLATE: &str = "# generated for {{ component.label }} {{ component.number }}
@@ for i in range(5)
line {{ i }} of root {{ component.number }} on {{ host.name }}
@@ endfor
";

/// Runs a command through `bench-deploy measure`, which reports the peak
/// RSS of the command and its descendants (controller and agent).
fn measure(project: &Path, bin: &Path, args: &[&str]) -> (f64, u64, bool) {
    let me = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let out = Command::new(me)
        .arg("measure")
        .arg(bin)
        .args(args)
        .current_dir(project)
        .env("NO_COLOR", "1")
        .output()
        .expect("run measure");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let rss = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (wall, rss, out.status.success())
}

fn measure_mode(args: Vec<String>) -> ExitCode {
    let status = Command::new(&args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run command");
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!("maxrss_kb={}", ru.ru_maxrss);
    if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("measure") {
        return measure_mode(args[1..].to_vec());
    }
    let root = batou_tests::workspace_root();
    let project: PathBuf = root.join("target/bench/bench1000");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).expect("create project dir");
    batou_tests::render_template(&project, "bench1000", &root).expect("render template");
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy lock");
    std::fs::write(
        project.join("components/tick/component.rs"),
        component_source(),
    )
    .expect("write component");
    std::fs::write(project.join("components/tick/file.tmpl"), TEMPLATE).expect("write template");
    let roots: Vec<String> = (0..ROOTS).map(|r| format!("root{r}")).collect();
    std::fs::write(
        project.join("environments/local/environment.cfg"),
        format!(
            "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = {}\n",
            roots.join(", ")
        ),
    )
    .expect("write cfg");

    eprintln!("building the benchmark crate (release)...");
    let target = root.join("target/bench-target");
    let status = Command::new("cargo")
        .args(["build", "--release", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    if !status.success() {
        eprintln!("ERROR: building the benchmark crate failed");
        return ExitCode::from(1);
    }
    let bin = target.join("release/bench1000");

    println!(
        "batou-rs deploy benchmark: {} roots x {} templated files = {} files",
        ROOTS,
        FILES_PER_ROOT,
        ROOTS * FILES_PER_ROOT
    );
    let (first, first_rss, ok) = measure(&project, &bin, &["deploy", "local"]);
    if !ok {
        eprintln!("ERROR: first deploy failed");
        return ExitCode::from(1);
    }
    let mut noop = Vec::new();
    let mut noop_rss = 0;
    let mut check = Vec::new();
    let mut check_rss = 0;
    for _ in 0..5 {
        let (t, r, ok) = measure(&project, &bin, &["deploy", "local"]);
        assert!(ok, "no-op deploy failed");
        noop.push(t);
        noop_rss = noop_rss.max(r);
        let (t, r, ok) = measure(&project, &bin, &["deploy", "-c", "local"]);
        assert!(ok, "deploy -c failed");
        check.push(t);
        check_rss = check_rss.max(r);
    }
    let noop = median(noop);
    let check = median(check);
    println!(
        "{:<22} {:>10} {:>14} {:>10}",
        "run", "wall", "peak RSS", "target"
    );
    println!(
        "{:<22} {:>9.3}s {:>11} KiB {:>10}",
        "first deploy", first, first_rss, "-"
    );
    println!(
        "{:<22} {:>9.3}s {:>11} KiB {:>9}s",
        "no-op redeploy (med5)", noop, noop_rss, "0.100"
    );
    println!(
        "{:<22} {:>9.3}s {:>11} KiB {:>9}s",
        "deploy -c (med5)", check, check_rss, "0.050"
    );
    println!(
        "ratio to target: no-op {:.2}, -c {:.2} (below 1.00 meets the target)",
        noop / 0.1,
        check / 0.05
    );
    ExitCode::SUCCESS
}
