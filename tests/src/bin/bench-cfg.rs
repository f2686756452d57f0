//! Benchmark (not a test): loading large environment.cfg files — 100,000
//! keys in one section and 100,000 sections — through batou-cfg, with the
//! time per item at 10k and 100k (1.0 means linear).
//!
//! Run: `cargo run --release -p batou-tests --bin bench-cfg` (or
//! `bench/cfg`).

use std::time::Instant;

fn keys(n: usize) -> String {
    let mut s = String::from("[component:tick]\n");
    for i in 0..n {
        s.push_str(&format!("key{i} = value {i}\n"));
    }
    s
}

fn sections(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("[host:h{i}]\ncomponents = tick\n"));
    }
    s
}

fn time(text: &str) -> f64 {
    let started = Instant::now();
    let cfg = batou_cfg::CfgFile::parse("environment.cfg", text).expect("the file parses");
    let took = started.elapsed().as_secs_f64();
    assert!(!cfg.sections.is_empty());
    took
}

/// Loads an environment of `n` hosts, each in its own `[host:]` section,
/// through the runtime's loader (all checks included).
fn load_environment(n: usize) -> f64 {
    use batou_stdlib as _;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env_dir = dir.path().join("environments/big");
    std::fs::create_dir_all(&env_dir).expect("environment directory");
    let mut text = String::from("[environment]\nconnect_method = local\n");
    for i in 0..n {
        text.push_str(&format!(
            "[host:h{i}]\ncomponents = directory\ndata-n = {i}\n"
        ));
    }
    std::fs::write(env_dir.join("environment.cfg"), text).expect("write the cfg");
    let started = Instant::now();
    let env = batou::environment::Environment::load(dir.path(), "big")
        .unwrap_or_else(|e| panic!("{:?}", e.0.first().map(|r| &r.title)));
    let took = started.elapsed().as_secs_f64();
    assert_eq!(env.hosts.len(), n);
    took
}

fn main() {
    for (what, make) in [
        ("keys in one section", keys as fn(usize) -> String),
        ("sections", sections),
    ] {
        let small = time(&make(10_000));
        let large = time(&make(100_000));
        println!(
            "{what}: 10,000 in {small:.3} s, 100,000 in {large:.3} s (target < 1 s); time per item 100k/10k = {:.2}",
            (large / 100_000.0) / (small / 10_000.0)
        );
    }
    let small = load_environment(10_000);
    let large = load_environment(100_000);
    println!(
        "environment of [host:] sections: 10,000 in {small:.3} s, 100,000 in {large:.3} s (target < 1 s); time per host 100k/10k = {:.2}",
        (large / 100_000.0) / (small / 10_000.0)
    );
}
