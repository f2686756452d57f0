//! The agent side: serve requests from stdin, answer on stdout.

use super::protocol::{read_frame, write_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::model::{Model, ModelEnv};
use crate::output::Line;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

/// Runs the agent until the controller says `Bye` or closes the channel.
/// Returns the process exit code.
pub fn serve() -> i32 {
    // The protocol owns the original stdout. Anything component code prints
    // to fd 1 goes to stderr instead and cannot corrupt the frames.
    // SAFETY: plain descriptor duplication on descriptors this process owns.
    let proto_fd = unsafe { libc::dup(libc::STDOUT_FILENO) };
    if proto_fd < 0 || unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        eprintln!("batou agent: cannot set up the protocol channel");
        return 1;
    }
    // SAFETY: proto_fd is a fresh descriptor owned by nothing else.
    let out = unsafe { File::from_raw_fd(proto_fd) };
    let writer = Mutex::new(BufWriter::new(out));
    // A local agent dies with its controller (SIGKILL of the controller must
    // not leave an agent deploying on its own).
    // SAFETY: prctl with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let mut reader = BufReader::new(std::io::stdin().lock());
    let send = |msg: &Response| -> bool {
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *w, msg).is_ok()
    };

    let mut model: Option<(Model, String)> = None;
    loop {
        let req: Request = match read_frame(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("batou agent: broken channel: {e}");
                return 1;
            }
        };
        let ok = match req {
            Request::Hello { protocol, version } => {
                if protocol != PROTOCOL_VERSION {
                    send(&Response::Failed {
                        message: format!(
                            "protocol mismatch: controller batou {version} speaks protocol {protocol}, this agent (batou {}) speaks {PROTOCOL_VERSION}",
                            crate::VERSION
                        ),
                    });
                    return 1;
                }
                send(&Response::Hello {
                    protocol: PROTOCOL_VERSION,
                    version: crate::VERSION.to_string(),
                })
            }
            Request::Configure {
                project_root,
                environment,
                host,
            } => {
                let env: Environment = *environment;
                if !env.hosts.iter().any(|h| h.name == host) {
                    send(&Response::Failed {
                        message: format!("host {host} is not part of environment {}", env.name),
                    })
                } else {
                    let (m, errors) =
                        Model::configure(ModelEnv::new(PathBuf::from(project_root), env));
                    model = Some((m, host));
                    send(&Response::Configured { errors })
                }
            }
            Request::Deploy { root, predict } => match model.as_mut() {
                None => send(&Response::Failed {
                    message: "deploy before configure".into(),
                }),
                Some((m, host)) => {
                    let sink = |line: Line| {
                        if !send(&Response::Output(line)) {
                            // The controller is gone: stop here. Every
                            // change is atomic, the next run converges.
                            std::process::exit(3);
                        }
                    };
                    let result = m.deploy_root(host, &root, predict, &sink);
                    send(&Response::Deployed {
                        error: result.err(),
                    })
                }
            },
            Request::Bye => {
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                let _ = w.flush();
                return 0;
            }
        };
        if !ok {
            return 1;
        }
    }
}
