//! Benchmark (not a test): configuring models of 1,000 and 10,000 roots
//! linked in chains of resources, one root per host, hosts listed against
//! the chain order (so values have to ripple through the fixed point).
//! Prints time and peak memory per size and how the time per root scales.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-configure`
//! (or `bench/configure`).

use batou::environment::{Environment, RootSpec};
use batou::model::{Model, ModelEnv};
use batou::prelude::*;
use batou_stdlib::file::File;
use std::process::{Command, ExitCode};
use std::time::Instant;

const CHAINS: usize = 10;

/// One link of a chain: requires the previous link's value, provides its own.
#[component]
pub struct Link {
    #[attribute(default = 0)]
    total: usize,
}

impl Component for Link {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let n: usize = cx.host_name()[1..]
            .parse()
            .map_err(|_| Error::usage("host names are h<number>"))?;
        let i = self.total - n;
        let (chain, pos) = (i % CHAINS, i / CHAINS);
        let mut value = pos as u64;
        if pos > 0 {
            let prev: u64 =
                cx.require_one(&Resource::named(format!("link-{chain}-{}", pos - 1)))?;
            value += prev;
        }
        if i + CHAINS < self.total {
            cx.provide(&Resource::named(format!("link-{chain}-{pos}")), value)?;
        }
        cx.add(File::new("value").content(value.to_string()));
        Ok(())
    }
}

fn environment(total: usize) -> Environment {
    let mut env = Environment::new("bench", "bench");
    env.connect_method = batou::settings::ConnectMethod::Local;
    for i in 0..total {
        // Sorted host order is the reverse of the chain order.
        let mut host = env.new_host(&format!("h{:06}", total - i));
        host.components.push(RootSpec {
            name: "link".into(),
            features: Vec::new(),
            ignore: false,
        });
        env.hosts.push(host);
    }
    env.hosts.sort_by(|a, b| a.name.cmp(&b.name));
    env.overrides.insert(
        "link".to_string(),
        vec![batou::environment::Override {
            key: "total".into(),
            value: total.to_string(),
            location: "bench".into(),
            secret: false,
        }],
    );
    env
}

fn run_one(total: usize) -> ExitCode {
    let env = environment(total);
    let started = Instant::now();
    let (model, errors) = Model::configure(ModelEnv::new(std::env::temp_dir(), env));
    let took = started.elapsed().as_secs_f64();
    if !errors.is_empty() {
        for e in errors.iter().take(5) {
            eprintln!("{e:?}");
        }
        return ExitCode::from(1);
    }
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let edges: usize = model.dependencies.iter().map(|d| d.len()).sum();
    println!("{total} {took:.6} {} {edges}", ru.ru_maxrss);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(n) = args.first().and_then(|a| a.parse().ok()) {
        return run_one(n);
    }
    let me = std::env::current_exe().expect("current exe");
    println!("batou-rs configure benchmark: {CHAINS} chains of resources, one root per host");
    println!(
        "{:>8} {:>10} {:>14} {:>12} {:>8}",
        "roots", "configure", "per root", "peak RSS", "edges"
    );
    let mut per_root = Vec::new();
    for total in [1_000usize, 10_000] {
        let out = Command::new(&me)
            .arg(total.to_string())
            .output()
            .expect("run size");
        if !out.status.success() {
            eprintln!(
                "ERROR: configuring {total} roots failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return ExitCode::from(1);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        let took: f64 = f[1].parse().unwrap_or(0.0);
        let rss: u64 = f[2].parse().unwrap_or(0);
        println!(
            "{:>8} {:>9.3}s {:>11.1} µs {:>8} KiB {:>8}",
            total,
            took,
            took / total as f64 * 1e6,
            rss,
            f[3]
        );
        per_root.push(took / total as f64);
    }
    println!(
        "time per root at 10k / at 1k: {:.2} (1.00 is linear)",
        per_root[1] / per_root[0]
    );
    ExitCode::SUCCESS
}
