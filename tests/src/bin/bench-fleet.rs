//! Benchmark (not a test): a fleet of `--hosts N` (default 500) simulated
//! hosts, each a local agent process with two roots (`app` provides its
//! address, `web` on the same host requires it) of 10 templated files
//! each; prints wall time, CPU time, peak memory of the largest process
//! and CPU per host, for the first deploy and a no-op redeploy.
//!
//! Every host's agent is a separate process, as on a real fleet; what it
//! costs per host should not grow with the number of other hosts.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-fleet [-- --hosts 100]`
//! (or `bench/fleet [--hosts 100]`).

use batou_tests::bench::{
    build_release, count_argument, generate, measure_agents, measure_mode, median,
};
use std::process::ExitCode;

const FILES_PER_ROOT: usize = 10;

const COMPONENTS: &str = r#"use batou::prelude::*;
use batou_stdlib::file::File;

pub const APP: Resource<String> = Resource::new("app");

/// Files under work/<root>/<host>/ (all local hosts share one project).
fn files(cx: &mut Configure, n: usize) {
    for i in 0..n {
        cx.add(
            File::new(format!("{}/file-{i:02}.conf", cx.host_name()))
                .source("file.tmpl")
                .leading(true),
        );
    }
}

#[component]
pub struct App {
    #[attribute(default = 10)]
    files: usize,
}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&APP, format!("{}:8080", cx.host_name()))?;
        files(cx, self.files);
        Ok(())
    }
}

#[component]
pub struct Web {
    #[attribute(default = 10)]
    files: usize,
}

impl Component for Web {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let host = cx.host_name().to_string();
        let apps = cx.require_with(&APP, RequireOptions::new().on_host(host))?;
        cx.log(format!("web proxies {}", apps.join(", ")));
        files(cx, self.files);
        Ok(())
    }
}
"#;

const TEMPLATE: &str = "# {{ host.name }}
@@ for i in range(5)
line {{ i }} of {{ component.files }} files
@@ endfor
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("measure") {
        return measure_mode(&args[1..]);
    }
    let Some(hosts) = count_argument(&args, "--hosts", 500, |n| n > 0, "a number of hosts") else {
        return ExitCode::from(2);
    };
    let mut cfg = String::from("[environment]\nconnect_method = local\n\n[hosts]\n");
    for h in 0..hosts {
        cfg.push_str(&format!("h{h:04} = app, web\n"));
    }
    let project = generate("benchfleet", COMPONENTS, &[("file.tmpl", TEMPLATE)], &cfg);
    let Some(bin) = build_release(&project, "benchfleet") else {
        return ExitCode::from(1);
    };
    println!(
        "batou-rs fleet benchmark: {hosts} local hosts x 2 roots x {FILES_PER_ROOT} templated files"
    );
    let first = measure_agents(&project, &bin, &["deploy", "local"]);
    if !first.ok {
        eprintln!("ERROR: first deploy failed");
        return ExitCode::from(1);
    }
    let runs: Vec<_> = (0..3)
        .map(|_| measure_agents(&project, &bin, &["deploy", "local"]))
        .collect();
    if runs.iter().any(|m| !m.ok) {
        eprintln!("ERROR: a no-op deploy failed");
        return ExitCode::from(1);
    }
    let noop_wall = median(runs.iter().map(|m| m.wall).collect());
    let noop_cpu = median(runs.iter().map(|m| m.cpu).collect());
    let noop_rss = runs.iter().map(|m| m.max_rss_kb).max().unwrap_or(0);
    let noop_pss = runs.iter().map(|m| m.agents_pss_kb).max().unwrap_or(0);
    let noop_agents = runs.iter().map(|m| m.agents).max().unwrap_or(0);
    println!(
        "{:<20} {:>10} {:>10} {:>16} {:>14}",
        "run", "wall", "CPU", "largest process", "CPU per host"
    );
    println!(
        "{:<20} {:>9.3}s {:>9.3}s {:>12} KiB {:>12.1}ms",
        "first deploy",
        first.wall,
        first.cpu,
        first.max_rss_kb,
        first.cpu * 1000.0 / hosts as f64
    );
    println!(
        "{:<20} {:>9.3}s {:>9.3}s {:>12} KiB {:>12.1}ms",
        "no-op (med3)",
        noop_wall,
        noop_cpu,
        noop_rss,
        noop_cpu * 1000.0 / hosts as f64
    );
    println!(
        "agents' memory (PSS, all at once): first deploy {} KiB for {} agents, no-op {} KiB for {} agents: {:.1} MB per host",
        first.agents_pss_kb,
        first.agents,
        noop_pss,
        noop_agents,
        noop_pss as f64 / 1024.0 / noop_agents.max(1) as f64
    );
    println!(
        "targets: no-op at most 10 s at 500 hosts (ratio {:.2} here, scaled to 500), memory per host at most 5 MB",
        noop_wall / 10.0 * 500.0 / hosts as f64
    );
    ExitCode::SUCCESS
}
