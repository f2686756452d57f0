//! Benchmark (not a test): a generated deployment crate with 1,000 (or
//! `--files N`) templated File components under 10 roots; prints wall time
//! and peak memory of the first deploy, a no-op redeploy and `deploy -c`,
//! and the floors they are compared to: reading the deployed files
//! (stat + read + hash) and rendering the same templates in-process and
//! comparing them with the files. The no-op's ratio to its floor is
//! `no-op / (deploy -c + stat+read+hash)`. The no-ops, the `-c` runs and
//! the stat+read+hash floor are interleaved, each after a `-c`, so that
//! each finds the machine's caches (CPU, dentries, pages) in the same
//! state; the floor run back to back is printed for reference.
//!
//! Run: `cargo run --release -p batou-tests --bin bench-deploy [-- --files 5000]`
//! (or `bench/deploy [--files 5000]`).

use batou_tests::bench::{build_release, count_argument, generate, measure, measure_mode, median};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const ROOTS: usize = 10;

fn component_source(files_per_root: usize) -> String {
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
        for i in 0..{files_per_root} {{
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

/// The deployed files: `work/root<r>/file-<i>.conf`.
fn deployed_files(project: &Path, files_per_root: usize) -> Vec<PathBuf> {
    (0..ROOTS)
        .flat_map(|r| {
            (0..files_per_root).map(move |i| project.join(format!("work/root{r}/file-{i:03}.conf")))
        })
        .collect()
}

/// Floor of a no-op's file work: stat, read and hash every deployed file
/// once (seconds). The benchmark measures it between the deployments it is
/// compared with, so that it finds the machine's caches as they do.
fn read_and_hash_floor(files: &[PathBuf]) -> f64 {
    let started = Instant::now();
    let mut digest = 0u64;
    for f in files {
        let meta = std::fs::symlink_metadata(f).expect("deployed file");
        let data = std::fs::read(f).expect("deployed file");
        assert_eq!(meta.len(), data.len() as u64);
        digest ^= fnv1a(&data);
    }
    std::hint::black_box(digest);
    started.elapsed().as_secs_f64()
}

/// A 64-bit FNV-1a hash (the floor's "hash": cheaper than any check a
/// deployment could make).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Floor of the configure work: render the template for every file with
/// the same engine and compare with the deployed file (seconds, median of
/// 5).
fn render_and_compare_floor(project: &Path, files_per_root: usize) -> f64 {
    let runs = (0..5)
        .map(|_| {
            let started = Instant::now();
            let templates = batou::template::Templates::new();
            for r in 0..ROOTS {
                for i in 0..files_per_root {
                    let ctx = batou::template::map([
                        (
                            "component",
                            batou::template::map([
                                ("label", batou::template::Value::from("bench")),
                                ("number", batou::template::Value::from(r)),
                            ]),
                        ),
                        (
                            "host",
                            batou::template::map([(
                                "name",
                                batou::template::Value::from("localhost"),
                            )]),
                        ),
                    ]);
                    let text = templates
                        .render("file.tmpl", TEMPLATE, ctx)
                        .expect("render");
                    let path = project.join(format!("work/root{r}/file-{i:03}.conf"));
                    let current = std::fs::read(&path).expect("deployed file");
                    assert_eq!(current, text.as_bytes(), "{}", path.display());
                }
            }
            started.elapsed().as_secs_f64()
        })
        .collect();
    median(runs)
}

/// Floor of a first deploy's file work: write the same files (a private
/// temp file each, given its mode, written), sync them together and
/// rename them into place, in fresh directories (seconds, median of 5).
fn batched_write_floor(project: &Path, files: &[PathBuf]) -> f64 {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("deployed file"))
        .collect();
    let runs = (0..5)
        .map(|run| {
            let base = project.join(format!("floor-{run}"));
            let _ = std::fs::remove_dir_all(&base);
            let started = Instant::now();
            let mut written = Vec::with_capacity(files.len());
            for (i, data) in contents.iter().enumerate() {
                let dir = base.join(format!("root{}", i * ROOTS / files.len()));
                if i % (files.len() / ROOTS) == 0 {
                    std::fs::create_dir_all(&dir).expect("floor directory");
                }
                let dest = dir.join(format!("file-{i:04}.conf"));
                let tmp = dir.join(format!(".file-{i:04}.conf.tmp"));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .expect("temp file");
                f.set_permissions(std::fs::Permissions::from_mode(0o640))
                    .expect("fchmod");
                f.write_all(data).expect("write");
                written.push((f, tmp, dest));
            }
            for (f, _, _) in &written {
                f.sync_all().expect("fsync");
            }
            for (_, tmp, dest) in &written {
                std::fs::rename(tmp, dest).expect("rename");
            }
            let seconds = started.elapsed().as_secs_f64();
            drop(written);
            let _ = std::fs::remove_dir_all(&base);
            seconds
        })
        .collect();
    median(runs)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("measure") {
        return measure_mode(&args[1..]);
    }
    let Some(files) = count_argument(
        &args,
        "--files",
        1000,
        |n| n >= ROOTS && n % ROOTS == 0,
        &format!("a multiple of {ROOTS}"),
    ) else {
        return ExitCode::from(2);
    };
    let files_per_root = files / ROOTS;
    let roots: Vec<String> = (0..ROOTS).map(|r| format!("root{r}")).collect();
    let project = generate(
        "bench1000",
        &component_source(files_per_root),
        &[("file.tmpl", TEMPLATE)],
        &format!(
            "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = {}\n",
            roots.join(", ")
        ),
    );
    let Some(bin) = build_release(&project, "bench1000") else {
        return ExitCode::from(1);
    };

    println!(
        "batou-rs deploy benchmark: {} roots x {} templated files = {} files",
        ROOTS, files_per_root, files
    );
    // The first deploy, three times from nothing (median).
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(project.join("work"));
        let m = measure(&project, &bin, &["deploy", "local"]);
        if !m.ok {
            eprintln!("ERROR: first deploy failed");
            return ExitCode::from(1);
        }
        firsts.push(m);
    }
    firsts.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let first = firsts.swap_remove(1);
    let deployed = deployed_files(&project, files_per_root);
    let (mut noop, mut check, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut noop_rss, mut check_rss, mut noop_cpu, mut check_cpu) = (0, 0, Vec::new(), Vec::new());
    // Interleaved: each no-op and each floor run follows a `-c`. Short
    // runs are noisy: as many rounds as fit in about 4 s (11 to 61).
    let probe = measure(&project, &bin, &["deploy", "local"]);
    let rounds = ((4.0 / (4.0 * probe.wall.max(0.001))) as usize).clamp(11, 61) | 1;
    for _ in 0..rounds {
        let m = measure(&project, &bin, &["deploy", "local"]);
        assert!(m.ok, "no-op deploy failed");
        noop.push(m.wall);
        noop_cpu.push(m.cpu);
        noop_rss = noop_rss.max(m.max_rss_kb);
        let m = measure(&project, &bin, &["deploy", "-c", "local"]);
        assert!(m.ok, "deploy -c failed");
        check.push(m.wall);
        check_cpu.push(m.cpu);
        check_rss = check_rss.max(m.max_rss_kb);
        floor.push(read_and_hash_floor(&deployed));
        let m = measure(&project, &bin, &["deploy", "-c", "local"]);
        assert!(m.ok, "deploy -c failed");
    }
    // The same, five times back to back (every cache warm), for reference.
    let back_to_back = median((0..5).map(|_| read_and_hash_floor(&deployed)).collect());
    let noop = median(noop);
    let check = median(check);
    let (noop_cpu, check_cpu) = (median(noop_cpu), median(check_cpu));
    println!(
        "{:<22} {:>10} {:>10} {:>14}",
        "run", "wall", "CPU", "peak RSS"
    );
    println!(
        "{:<22} {:>9.3}s {:>9.3}s {:>10} KiB",
        "first deploy (med3)", first.wall, first.cpu, first.max_rss_kb
    );
    println!(
        "{:<22} {:>9.3}s {:>9.3}s {:>10} KiB",
        format!("no-op redeploy (med{rounds})"),
        noop,
        noop_cpu,
        noop_rss
    );
    println!(
        "{:<22} {:>9.3}s {:>9.3}s {:>10} KiB",
        format!("deploy -c (med{rounds})"),
        check,
        check_cpu,
        check_rss
    );
    let read_hash = median(floor);
    let render = render_and_compare_floor(&project, files_per_root);
    println!(
        "{:<22} {:>9.3}s (med{rounds}, each after a -c like the no-ops; back to back: {:.3}s)",
        "floor: stat+read+hash", read_hash, back_to_back
    );
    println!("{:<22} {:>9.3}s", "floor: render+compare", render);
    let write = batched_write_floor(&project, &deployed);
    println!("{:<22} {:>9.3}s", "floor: batched write", write);
    println!(
        "ratio to floor: first / (-c + batched write) = {:.2}, first / batched write = {:.2} (target at most 2.00)",
        first.wall / (check + write),
        first.wall / write
    );
    println!(
        "ratio to floor: no-op / (-c + stat+read+hash) = {:.2} wall, {:.2} CPU (target at most 1.20)",
        noop / (check + read_hash),
        noop_cpu / (check_cpu + read_hash)
    );
    edit_loop(&project);
    ExitCode::SUCCESS
}

/// The everyday loop through `./batou`: a deploy with nothing changed, and
/// one right after an edit of environment.cfg (wall, median of 5 each).
fn edit_loop(project: &Path) {
    let target = batou_tests::workspace_root().join("target/bench-target");
    let wrapper = format!(
        "CARGO_TARGET_DIR='{}' ./batou deploy local",
        target.display()
    );
    let run = || measure(project, Path::new("/bin/sh"), &["-c", &wrapper]);
    // The first run builds through the wrapper (its stamp).
    if !run().ok {
        eprintln!("ERROR: ./batou deploy local failed");
        return;
    }
    let unchanged = median((0..5).map(|_| run().wall).collect());
    let cfg = project.join("environments/local/environment.cfg");
    let edited = median(
        (0..5)
            .map(|i| {
                let mut text = std::fs::read_to_string(&cfg).expect("environment.cfg");
                text.push_str(&format!("# edit {i}\n"));
                std::fs::write(&cfg, text).expect("environment.cfg");
                run().wall
            })
            .collect(),
    );
    println!("{:<22} {:>9.3}s", "./batou, unchanged", unchanged);
    println!(
        "{:<22} {:>9.3}s (target at most 1 s)",
        "./batou, cfg edited", edited
    );
}
