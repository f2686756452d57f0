//! Commands run by components: output, exit codes, daemons.

use batou::component::CmdOptions;
use batou::prelude::*;
use batou::testing::TestRoot;
use std::sync::Mutex;

static OUTPUT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Starts a background process that keeps the command's stdout and
/// stderr open long after the command itself has exited.
#[component]
pub struct StartsDaemon {}

impl Component for StartsDaemon {
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join("daemon.pid").exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        let out = cx.cmd_with(
            "sleep 300 & echo $! > daemon.pid; echo started; echo warned >&2",
            CmdOptions {
                starts_daemon: true,
                ..CmdOptions::default()
            },
        )?;
        OUTPUT.lock().unwrap().push((out.stdout, out.stderr));
        Ok(())
    }
}

fn alive(pid: &str) -> bool {
    std::path::Path::new("/proc").join(pid).exists()
}

#[test]
fn a_command_that_starts_a_daemon_returns_when_it_exits_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(StartsDaemon::new()).unwrap();
    assert!(root.deploy().unwrap());
    let pid_file = dir.path().join("work/startsdaemon/daemon.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    // The daemon still holds the output files: the command did not wait for it.
    let still_running = alive(&pid);
    let _ = std::process::Command::new("kill").arg(&pid).status();
    assert!(
        still_running,
        "the daemon runs on after the command returned"
    );
    assert_eq!(
        *OUTPUT.lock().unwrap(),
        [("started\n".to_string(), "warned\n".to_string())]
    );
}
