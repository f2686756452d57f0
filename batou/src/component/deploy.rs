//! The context of `verify`, `update`, `enter` and `exit`.

use super::{Child, Component};
use crate::model::{DeployRun, Node};
use crate::output::{Color, Line, Style};
use crate::{Error, Result};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

/// A command that failed: what was run, its exit code and its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("command failed with return code {}: {command}", .returncode.map_or("?".to_string(), |c| c.to_string()))]
pub struct CmdExecutionError {
    /// The command line.
    pub command: String,
    /// Its exit code (`None`: killed by a signal or could not start).
    pub returncode: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl CmdExecutionError {
    /// The lines batou prints for a failed command.
    pub fn report_lines(&self) -> Vec<Line> {
        let red = Style::color(Color::Red);
        let mut out = vec![
            Line::new(
                format!("ERROR: {}", self.command),
                Style::bold_color(Color::Red),
            ),
            Line::new(
                format!(
                    "    Return code: {}",
                    self.returncode.map_or(
                        "none (it could not start, or a signal ended it)".to_string(),
                        |c| c.to_string()
                    )
                ),
                red,
            ),
            Line::new("STDOUT", red),
        ];
        out.extend(self.stdout.lines().map(Line::plain));
        out.push(Line::new("STDERR", red));
        out.extend(self.stderr.lines().map(Line::plain));
        out
    }
}

/// Output of a successful command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Decoded stdout (invalid UTF-8 replaced).
    pub stdout: String,
    /// Decoded stderr.
    pub stderr: String,
    /// Exit code.
    pub returncode: Option<i32>,
}

/// Options of [`Deploy::cmd_with`].
#[derive(Debug, Clone, Default)]
pub struct CmdOptions {
    /// A non-zero exit is not an error.
    pub ignore_returncode: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory (default: the component's workdir).
    pub cwd: Option<PathBuf>,
    /// Text for stdin (default: empty, so interactive commands see EOF).
    pub stdin: Option<String>,
    /// The command starts a daemon that outlives it (`supervisord`,
    /// `apachectl start`): its output is collected in anonymous temporary
    /// files instead of pipes, so a daemon that keeps a copy of them open
    /// does not keep the deployment waiting for their end.
    pub starts_daemon: bool,
}

/// What `verify`/`update` can see and do.
pub struct Deploy<'a> {
    pub(crate) run: &'a DeployRun<'a>,
    pub(crate) workdir: &'a Path,
    pub(crate) defdir: &'a Path,
    pub(crate) crumbs: &'a str,
    pub(crate) children: &'a [Node],
    /// Whether a component added before this one by the same parent
    /// changed in this run.
    pub(crate) earlier_siblings_changed: bool,
    /// This component's `component_changed` event is still to be sent
    /// (made only then: most components never send it).
    pub(crate) pending: std::cell::Cell<bool>,
    /// The diff that event carries.
    pub(crate) diff: RefCell<Option<Vec<String>>>,
}

impl std::fmt::Debug for Deploy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deploy")
            .field("host", &self.host_name())
            .field("component", &self.crumbs)
            .field("workdir", &self.workdir)
            .field("defdir", &self.defdir)
            .finish_non_exhaustive()
    }
}

impl<'a> Deploy<'a> {
    /// The host's name.
    pub fn host_name(&self) -> &str {
        self.run.host_name
    }

    /// The root component's name.
    pub fn root_name(&self) -> &str {
        self.run.root_name
    }

    /// Whether this is `deploy -P`: `update` is not called, components
    /// that would be updated are reported as changed.
    pub fn predicting(&self) -> bool {
        self.run.predict
    }

    /// The working directory.
    pub fn workdir(&self) -> &Path {
        self.workdir
    }

    /// The definition directory.
    pub fn defdir(&self) -> &Path {
        self.defdir
    }

    /// `std::fs::symlink_metadata(path)`, shared by the components of the
    /// walk until something may have changed on disk (any `update`, any
    /// component whose footprint is
    /// [`Footprint::Anything`](super::Footprint::Anything)). For the checks
    /// of components that declare the files they work on.
    pub fn symlink_metadata(&self, path: &Path) -> std::io::Result<std::fs::Metadata> {
        self.run.stats.symlink_metadata(path)
    }

    /// The project directory on this host.
    pub fn project_root(&self) -> &Path {
        &self.run.env.project_root
    }

    /// The breadcrumbs of this component.
    pub fn breadcrumbs(&self) -> &str {
        self.crumbs
    }

    /// Maps a path like [`Configure::map`](super::Configure::map).
    pub fn map(&self, path: impl AsRef<Path>) -> PathBuf {
        self.run.env.map(self.workdir, path.as_ref())
    }

    /// Prints a line in the deployment output (flushing this component's
    /// breadcrumb line first).
    pub fn line(&self, line: Line) {
        self.send_changed();
        (self.run.sink)(crate::events::Event::ComponentOutput {
            host: self.run.host_name.to_string(),
            root: self.run.root_name.to_string(),
            component: self.crumbs.to_string(),
            line,
        });
    }

    /// Reports progress of a long operation (bytes done, of `total` when
    /// known) as a `component_progress` event; views may draw it. Call it
    /// at most every few megabytes.
    pub fn progress(&self, done: u64, total: Option<u64>) {
        self.send_changed();
        (self.run.sink)(crate::events::Event::ComponentProgress {
            host: self.run.host_name.to_string(),
            root: self.run.root_name.to_string(),
            component: self.crumbs.to_string(),
            done,
            total,
        });
    }

    /// Records the diff of this component's change (the lines of a unified
    /// diff) for the `component_changed` event; call it before printing
    /// the diff. Never for sensitive or binary content.
    pub fn diff(&self, lines: Vec<String>) {
        if self.pending.get() {
            *self.diff.borrow_mut() = Some(lines);
        }
    }

    /// Sends this component's `component_changed` event if it is still
    /// to be sent.
    pub(crate) fn send_changed(&self) {
        if self.pending.replace(false) {
            (self.run.sink)(crate::events::Event::ComponentChanged {
                host: self.run.host_name.to_string(),
                root: self.run.root_name.to_string(),
                component: self.crumbs.to_string(),
                diff: self.diff.borrow_mut().take(),
            });
        }
    }

    /// Logs `host: message` during deployment.
    pub fn log(&self, message: impl AsRef<str>) {
        self.line(Line::plain(format!(
            "{}: {}",
            self.run.host_fqdn,
            message.as_ref()
        )));
    }

    /// Secret values of the environment (for masking diffs).
    pub fn secret_data(&self) -> &std::collections::BTreeSet<String> {
        &self.run.env.secret_data
    }

    /// Renders a template source like [`Configure::render`](super::Configure::render).
    pub fn render(
        &self,
        name: &str,
        source: &str,
        component: crate::template::Value,
        extra: Option<&crate::template::Value>,
    ) -> std::result::Result<String, crate::template::TemplateError> {
        self.run
            .env
            .render(self.run.host_name, name, source, component, extra)
    }

    /// Runs a shell command in the working directory; a non-zero exit is a
    /// [`CmdExecutionError`].
    pub fn cmd(&self, command: &str) -> Result<CmdOutput> {
        self.cmd_with(command, CmdOptions::default())
    }

    /// Runs a shell command with options.
    pub fn cmd_with(&self, command: &str, options: CmdOptions) -> Result<CmdOutput> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
        self.execute(cmd, command.to_string(), options)
    }

    /// Runs `program` with `args`, without a shell: every argument reaches
    /// the program as it is (no quoting needed, nothing is interpreted). A
    /// program that is not installed is an error naming it and the host.
    ///
    /// ```no_run
    /// # use batou::prelude::*;
    /// # use batou::component::CmdOptions;
    /// # fn f(cx: &mut Deploy, url: &str) -> batou::Result<()> {
    /// cx.run("git", &["clone", "--", url, "checkout"], CmdOptions::default())?;
    /// # Ok(()) }
    /// ```
    pub fn run<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: &str,
        args: &[S],
        options: CmdOptions,
    ) -> Result<CmdOutput> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let shown = std::iter::once(program.to_string())
            .chain(
                args.iter()
                    .map(|a| shell_quote(&a.as_ref().to_string_lossy())),
            )
            .collect::<Vec<_>>()
            .join(" ");
        if find_program(program).is_none() {
            return Err(Error::Cmd(CmdExecutionError {
                command: shown,
                returncode: None,
                stdout: String::new(),
                stderr: format!(
                    "`{program}` is not installed on {} (not found in PATH)",
                    self.host_name()
                ),
            }));
        }
        self.execute(cmd, shown, options)
    }

    fn execute(&self, mut cmd: Command, shown: String, options: CmdOptions) -> Result<CmdOutput> {
        if options.cwd.is_none() && self.run.predict && !self.workdir.is_dir() {
            // `deploy -P` before the first deployment: nothing exists yet,
            // so whatever this command would check needs an update.
            return Err(Error::update_needed(format!(
                "{} does not exist yet",
                self.workdir.display()
            )));
        }
        let cwd = options
            .cwd
            .clone()
            .unwrap_or_else(|| self.workdir.to_path_buf());
        cmd.current_dir(&cwd);
        let failed = |e: std::io::Error| {
            Error::Cmd(CmdExecutionError {
                command: shown.clone(),
                returncode: None,
                stdout: String::new(),
                stderr: format!("could not run the command in {}: {e}", cwd.display()),
            })
        };
        let captured = if options.starts_daemon {
            let (out, err) = (
                tempfile::tempfile().map_err(failed)?,
                tempfile::tempfile().map_err(failed)?,
            );
            cmd.stdout(out.try_clone().map_err(failed)?)
                .stderr(err.try_clone().map_err(failed)?);
            Some((out, err))
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            None
        };
        cmd.stdin(if options.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(failed)?;
        if let Some(input) = &options.stdin {
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                let _ = stdin.write_all(input.as_bytes());
            }
        }
        let mut out = child.wait_with_output().map_err(failed)?;
        if let Some((stdout, stderr)) = captured {
            out.stdout = read_from_start(stdout).map_err(failed)?;
            out.stderr = read_from_start(stderr).map_err(failed)?;
        }
        let result = CmdOutput {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            returncode: out.status.code(),
        };
        if out.status.success() || options.ignore_returncode {
            Ok(result)
        } else {
            Err(Error::Cmd(CmdExecutionError {
                command: shown,
                returncode: result.returncode,
                stdout: result.stdout,
                stderr: result.stderr,
            }))
        }
    }

    /// `verify` helper: a failing command means an update is needed.
    pub fn assert_cmd(&self, command: &str) -> Result<()> {
        match self.cmd(command) {
            Ok(_) => Ok(()),
            Err(Error::Cmd(e)) => Err(Error::update_needed(format!(
                "`{}` returned {}",
                e.command,
                e.returncode.unwrap_or(-1)
            ))),
            Err(e) => Err(e),
        }
    }

    /// `verify` helper: the reference file must exist and be at least as new
    /// (mtime) as every requirement.
    pub fn assert_file_is_current(
        &self,
        reference: impl AsRef<Path>,
        requirements: &[&Path],
    ) -> Result<()> {
        let reference = self.map(reference);
        let Some(ref_time) = mtime(&reference) else {
            return Err(Error::update_needed(format!(
                "{} does not exist",
                reference.display()
            )));
        };
        for r in requirements {
            let r = self.map(r);
            if mtime(&r).is_some_and(|t| t > ref_time) {
                return Err(Error::update_needed(format!(
                    "{} is newer than {}",
                    r.display(),
                    reference.display()
                )));
            }
        }
        Ok(())
    }

    /// `verify` helper: this component (its `last_updated`, passed in) must
    /// be at least as new as the given sub-components (their
    /// [`Child::index`](super::Child::index)es), by their own
    /// `last_updated`.
    pub fn assert_component_is_current(
        &self,
        mine: Option<f64>,
        requirements: &[usize],
    ) -> Result<()> {
        let Some(mine) = mine else {
            return Err(Error::update_needed("never updated"));
        };
        for &i in requirements {
            let Some(node) = self.children.get(i) else {
                continue;
            };
            let theirs = node.last_updated(self.run)?;
            match theirs {
                Some(t) if t > mine => {
                    return Err(Error::update_needed(format!("{} is newer", node.crumbs)));
                }
                None => {
                    return Err(Error::update_needed(format!(
                        "{} was never updated",
                        node.crumbs
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `verify` helper: no sub-component changed in this run.
    pub fn assert_no_subcomponent_changes(&self) -> Result<()> {
        match self
            .children
            .iter()
            .find(|c| c.changed.load(Ordering::Relaxed))
        {
            Some(c) => Err(Error::update_needed(format!("{} changed", c.crumbs))),
            None => Ok(()),
        }
    }

    /// `verify` helper: neither this component nor its sub-components
    /// changed in this run (this component cannot have changed before its
    /// own `verify`, so this equals [`Self::assert_no_subcomponent_changes`]).
    pub fn assert_no_changes(&self) -> Result<()> {
        self.assert_no_subcomponent_changes()
    }

    /// Whether a component that the same parent added before this one
    /// changed in this run (batou's `dependency.assert_no_changes()` on
    /// the parent): a supervisor `Program` restarts when the package it
    /// runs was installed by an earlier sibling.
    pub fn earlier_siblings_changed(&self) -> bool {
        self.earlier_siblings_changed
    }

    /// Whether any sub-component changed in this run.
    pub fn sub_components_changed(&self) -> bool {
        self.children
            .iter()
            .any(|c| c.changed.load(Ordering::Relaxed))
    }

    /// Calls `f` with a sub-component added in `configure`, by its handle.
    pub fn with_sub_component<C: Component, R>(
        &self,
        child: Child<C>,
        f: impl FnOnce(&C) -> R,
    ) -> Option<R> {
        let node = self.children.get(child.index)?;
        let guard = node.component.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_any().downcast_ref::<C>().map(f)
    }

    /// Whether a sub-component changed in this run.
    pub fn changed<C>(&self, child: Child<C>) -> bool {
        self.children
            .get(child.index)
            .is_some_and(|c| c.changed.load(Ordering::Relaxed))
    }
}

/// Modification time in seconds since the epoch.
pub(crate) fn mtime(path: &Path) -> Option<f64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    m.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// An argument as a POSIX shell needs it written: unchanged when it is
/// plain, else in single quotes.
///
/// ```
/// use batou::component::shell_quote;
/// assert_eq!(shell_quote("--prefix=/opt/app"), "--prefix=/opt/app");
/// assert_eq!(shell_quote("it's here"), r"'it'\''s here'");
/// ```
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The path of `program` (as `Command` would find it), if it exists.
/// The whole content of a file a command wrote its output into.
fn read_from_start(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
