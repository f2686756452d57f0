//! What the benchmarks share: a release build of a generated crate, and
//! runs of it measured for wall time, CPU time and peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Wall-clock seconds.
    pub wall: f64,
    /// User + system CPU seconds of the command and its descendants.
    pub cpu: f64,
    /// Peak resident memory of the largest of them (KiB).
    pub max_rss_kb: u64,
    /// The largest sum, over the run, of the proportional set sizes of
    /// the command's child processes (the agents), KiB: shared pages
    /// count once in all.
    pub agents_pss_kb: u64,
    /// The most child processes seen at once.
    pub agents: u64,
    /// Whether the command succeeded.
    pub ok: bool,
}

/// Generates `name` in `target/bench/<name>` from the template (against
/// this checkout), with `component.rs`, extra files of the component
/// directory and the `local` environment; returns the project directory.
pub fn generate(name: &str, component: &str, files: &[(&str, &str)], cfg: &str) -> PathBuf {
    let root = crate::workspace_root();
    let project = root.join("target/bench").join(name);
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).expect("create project dir");
    crate::render_template(&project, name, &root).expect("render template");
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy lock");
    std::fs::write(project.join("components/tick/component.rs"), component)
        .expect("write component");
    for (rel, text) in files {
        std::fs::write(project.join("components/tick").join(rel), text).expect("write file");
    }
    std::fs::write(project.join("environments/local/environment.cfg"), cfg).expect("write cfg");
    project
}

/// Builds a generated crate in release mode into `target/bench-target`;
/// returns its executable, or `None` (after saying so) on failure.
pub fn build_release(project: &Path, name: &str) -> Option<PathBuf> {
    eprintln!("building the benchmark crate {name} (release)...");
    let target = crate::workspace_root().join("target/bench-target");
    let status = Command::new("cargo")
        .args(["build", "--release", "--offline", "--quiet"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    if !status.success() {
        eprintln!("ERROR: building the benchmark crate failed");
        return None;
    }
    Some(target.join("release").join(name))
}

/// Runs `bin args` in `project` through the benchmark's own `measure`
/// mode ([`measure_mode`]), which reports the CPU time and peak RSS of the
/// command and its descendants (controller and agents).
pub fn measure(project: &Path, bin: &Path, args: &[&str]) -> Measured {
    run_measured(project, bin, args, false)
}

/// [`measure`], also sampling the memory (PSS) of the command's agents
/// every 10 ms or so. Reading an agent's `smaps_rollup` walks its page
/// tables under its memory lock and takes a core of the two: only the
/// fleet benchmark, which reports it, pays that.
pub fn measure_agents(project: &Path, bin: &Path, args: &[&str]) -> Measured {
    run_measured(project, bin, args, true)
}

fn run_measured(project: &Path, bin: &Path, args: &[&str], agents: bool) -> Measured {
    let me = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let out = Command::new(me)
        .arg("measure")
        .args(agents.then_some("--agents"))
        .arg(bin)
        .args(args)
        .current_dir(project)
        .env("NO_COLOR", "1")
        .output()
        .expect("run measure");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Measured {
        wall,
        cpu: field("cpu_s="),
        max_rss_kb: field("maxrss_kb=") as u64,
        agents_pss_kb: field("agents_pss_kb=") as u64,
        agents: field("agents=") as u64,
        ok: out.status.success(),
    }
}

/// The `measure` mode of a benchmark executable: runs the command (its
/// output discarded) and prints `cpu_s=` and `maxrss_kb=` of it and its
/// descendants; with `--agents` first, also the peak PSS of its children.
pub fn measure_mode(args: &[String]) -> ExitCode {
    let (sample_agents, args) = match args.split_first() {
        Some((flag, rest)) if flag == "--agents" => (true, rest),
        _ => (false, args),
    };
    let Some((command, rest)) = args.split_first() else {
        return ExitCode::from(2);
    };
    let mut child = Command::new(command)
        .args(rest)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run command");
    let (mut agents_pss, mut agents) = (0u64, 0u64);
    let status = loop {
        if !sample_agents {
            break child.wait().expect("wait for command");
        }
        if let Some(status) = child.try_wait().expect("wait for command") {
            break status;
        }
        let pss = children_pss(child.id());
        agents_pss = agents_pss.max(pss.iter().sum());
        agents = agents.max(pss.len() as u64);
        // Often enough for short runs, rarely enough that scanning /proc
        // does not slow down a fleet of agents.
        let pause = 10 + pss.len() as u64 / 5;
        std::thread::sleep(std::time::Duration::from_millis(pause));
    };
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!("cpu_s={}", seconds(ru.ru_utime) + seconds(ru.ru_stime));
    println!("maxrss_kb={}", ru.ru_maxrss);
    println!("agents_pss_kb={agents_pss}");
    println!("agents={agents}");
    if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The proportional set size (KiB) of each child process of `parent`, from
/// `/proc/<pid>/smaps_rollup`.
fn children_pss(parent: u32) -> Vec<u64> {
    pids_where(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            })
            == Some(parent)
    })
    .into_iter()
    .filter_map(|pid| {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        rollup.lines().find_map(|l| {
            l.strip_prefix("Pss:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
    })
    .collect()
}

/// The running processes for which `pred(pid)` holds.
pub fn pids_where(pred: impl Fn(u32) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| pred(*pid))
        .collect()
}

/// The benchmark's one optional `FLAG N` argument: `default` without it,
/// `None` (after saying why) when it is not a number `valid` accepts.
pub fn count_argument(
    args: &[String],
    flag: &str,
    default: usize,
    valid: impl Fn(usize) -> bool,
    what: &str,
) -> Option<usize> {
    match args {
        [] => Some(default),
        [f, n] if f == flag => match n.parse::<usize>() {
            Ok(n) if valid(n) => Some(n),
            _ => {
                eprintln!("ERROR: {flag} takes {what}");
                None
            }
        },
        _ => {
            eprintln!("usage: [{flag} N]");
            None
        }
    }
}

/// The median of some runs.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
