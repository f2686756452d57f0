//! A deployment killed with SIGKILL while it writes many files converges on
//! the next run, and no managed file is ever half-written.

use batou_tests::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

const COUNT: usize = 600;

fn payload(version: u64, i: usize) -> String {
    // One long line per file: big enough that writes take time, small diffs.
    let unit = format!("v{version}-{i}-");
    let mut s = unit.repeat(48 * 1024 / unit.len());
    s.push('\n');
    s
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Starts a deployment and SIGKILLs its whole process group (controller and
/// agent) once `threshold` files have been written; returns how many
/// files existed at that moment.
fn deploy_and_kill(p: &Project, watch: &dyn Fn() -> usize, threshold: usize) {
    let mut child = p
        .command(&["deploy", "local"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    for _ in 0..2000 {
        if watch() >= threshold {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: signalling the process group we created.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the deployment finished before it was killed"
    );
}

fn assert_whole(dir: &Path, versions: &[u64]) {
    for name in files(dir) {
        if name.starts_with('.') {
            continue; // temporary files of the killed run
        }
        let i: usize = name[1..].parse().unwrap();
        let content = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            versions.iter().any(|v| content == payload(*v, i)),
            "{name} is half-written ({} bytes)",
            content.len()
        );
    }
}

#[test]
fn killed_deployments_converge_and_never_leave_half_written_files() {
    let p = Project::generate("kill-test");
    p.write(
        "components/tick/component.rs",
        &format!(
            r##"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Tick {{
    #[attribute(default = 1)]
    version: u64,
}}

impl Component for Tick {{
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {{
        for i in 0..{COUNT} {{
            let unit = format!("v{{}}-{{}}-", self.version, i);
            let mut s = unit.repeat(48 * 1024 / unit.len());
            s.push('\n');
            cx.add(File::new(format!("f{{i:04}}")).content(s).is_template(false));
        }}
        Ok(())
    }}
}}
"##
        ),
    );
    p.build_ok();
    let work = p.path.join("work/tick");
    let count_files = || files(&work).iter().filter(|n| !n.starts_with('.')).count();

    // First deployment, killed part-way.
    deploy_and_kill(&p, &count_files, COUNT / 4);
    let written = count_files();
    assert!(
        written > 0 && written < COUNT,
        "killed after {written} files"
    );
    assert_whole(&work, &[1]);

    // The next run converges, the one after changes nothing.
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(count_files(), COUNT);
    assert_whole(&work, &[1]);
    assert!(
        files(&work).iter().all(|n| !n.starts_with('.')),
        "temporary files left"
    );
    let out = p.batou(&["deploy", "local"]);
    assert!(!stdout(&out).contains("🚀"), "{}", stdout(&out));

    // Replacing every file, killed part-way: each file is old or new.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick\n[component:tick]\nversion = 2\n",
    );
    let changed = || {
        files(&work)
            .iter()
            .filter(|n| !n.starts_with('.'))
            .filter(|n| {
                std::fs::read(work.join(n))
                    .map(|c| c.starts_with(b"v2"))
                    .unwrap_or(false)
            })
            .count()
    };
    deploy_and_kill(&p, &changed, COUNT / 4);
    assert_eq!(count_files(), COUNT);
    assert_whole(&work, &[1, 2]);
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_whole(&work, &[2]);
    assert!(
        files(&work).iter().all(|n| !n.starts_with('.')),
        "temporary files left"
    );
}
