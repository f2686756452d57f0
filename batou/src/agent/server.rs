//! The agent side: serve requests from stdin, answer on stdout.
//!
//! Requests are read by the main thread; every `Deploy` runs on its own
//! thread, so several roots of one host deploy at once when the controller
//! asks for it (`-j`). Answers carry the request's id.

use super::protocol::{read_frame, write_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::model::{Model, ModelEnv};
use crate::output::Line;
use std::fs::File;
use std::io::{BufReader, BufWriter};
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
    let mut reader = BufReader::new(std::io::stdin().lock());
    let send = |msg: &Response| -> bool {
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *w, msg).is_ok()
    };

    // Phase 1: hello, lock, ship, configure.
    let mut lock: Option<crate::deploy::ProjectLock> = None;
    let mut shipping: Option<(PathBuf, Vec<crate::shipping::Entry>)> = None;
    let (model, host) = loop {
        let req: Request = match read_frame(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return 0,
        };
        match req {
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
                if !send(&Response::Hello {
                    protocol: PROTOCOL_VERSION,
                    version: crate::VERSION.to_string(),
                }) {
                    return 1;
                }
            }
            Request::Lock { root } => {
                let root = crate::model::expand_user(std::path::Path::new(&root));
                let _ = std::fs::create_dir_all(&root);
                match crate::deploy::ProjectLock::acquire(&root) {
                    Ok(l) => {
                        lock = Some(l);
                        if !send(&Response::Locked) {
                            return 1;
                        }
                    }
                    Err(_) => {
                        send(&Response::Failed {
                            message: format!(
                                "another deployment is running in {} on this host (its .batou-lock is held)",
                                root.display()
                            ),
                        });
                        return 1;
                    }
                }
            }
            Request::Ship { root, manifest } => {
                let root = crate::model::expand_user(std::path::Path::new(&root));
                if let Err(e) = std::fs::create_dir_all(&root) {
                    send(&Response::Failed {
                        message: format!("cannot create {}: {e}", root.display()),
                    });
                    return 1;
                }
                let paths = crate::shipping::missing(&root, &manifest);
                shipping = Some((root, manifest));
                if !send(&Response::Need { paths }) {
                    return 1;
                }
            }
            Request::ShipFile { path, data, mode } => {
                let Some((root, _)) = &shipping else {
                    send(&Response::Failed {
                        message: "file before manifest".into(),
                    });
                    return 1;
                };
                use base64::Engine;
                let written = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| crate::shipping::write_file(root, &path, &bytes, mode));
                if let Err(e) = written {
                    send(&Response::Failed {
                        message: format!("cannot write {path}: {e}"),
                    });
                    return 1;
                }
            }
            Request::ShipDone => {
                let Some((root, manifest)) = shipping.take() else {
                    send(&Response::Failed {
                        message: "ship done before manifest".into(),
                    });
                    return 1;
                };
                match crate::shipping::finish(&root, &manifest) {
                    Ok(deleted) => {
                        if !send(&Response::Shipped { deleted }) {
                            return 1;
                        }
                    }
                    Err(e) => {
                        send(&Response::Failed {
                            message: format!("cannot finish shipping to {}: {e}", root.display()),
                        });
                        return 1;
                    }
                }
            }
            Request::VcsHead { vcs, root } => {
                let root = crate::model::expand_user(std::path::Path::new(&root));
                match crate::repository::remote_head(vcs, &root) {
                    Ok(commit) => {
                        let _ = std::fs::remove_file(root.join(".batou-bundle"));
                        if !send(&Response::Head { commit }) {
                            return 1;
                        }
                        shipping = Some((root, Vec::new()));
                    }
                    Err(message) => {
                        send(&Response::Failed { message });
                        return 1;
                    }
                }
            }
            Request::VcsChunk { data } => {
                let Some((root, _)) = &shipping else {
                    send(&Response::Failed {
                        message: "bundle before head".into(),
                    });
                    return 1;
                };
                use base64::Engine;
                use std::io::Write;
                let written = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| {
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(root.join(".batou-bundle"))?
                            .write_all(&bytes)
                    });
                if let Err(e) = written {
                    send(&Response::Failed {
                        message: format!("cannot write the bundle: {e}"),
                    });
                    return 1;
                }
            }
            Request::VcsUpdate {
                vcs,
                root,
                branch,
                url,
            } => {
                let root = crate::model::expand_user(std::path::Path::new(&root));
                let source = url
                    .unwrap_or_else(|| root.join(".batou-bundle").to_string_lossy().into_owned());
                let result = crate::repository::update(vcs, &root, &source, &branch);
                let _ = std::fs::remove_file(root.join(".batou-bundle"));
                match result {
                    Ok(commit) => {
                        if !send(&Response::Head {
                            commit: Some(commit),
                        }) {
                            return 1;
                        }
                    }
                    Err(message) => {
                        send(&Response::Failed { message });
                        return 1;
                    }
                }
            }
            Request::Configure {
                project_root,
                environment,
                host,
            } => {
                let project_root = crate::model::expand_user(std::path::Path::new(&project_root))
                    .to_string_lossy()
                    .into_owned();
                let env: Environment = *environment;
                if !env.hosts.iter().any(|h| h.name == host) {
                    send(&Response::Failed {
                        message: format!("host {host} is not part of environment {}", env.name),
                    });
                    return 1;
                }
                let (m, errors) = Model::configure(ModelEnv::new(PathBuf::from(project_root), env));
                if !send(&Response::Configured { errors }) {
                    return 1;
                }
                break (m, host);
            }
            Request::Bye => return 0,
            Request::Deploy { .. } => {
                send(&Response::Failed {
                    message: "deploy before configure".into(),
                });
                return 1;
            }
        }
    };

    // Phase 2: deployments, each on its own thread (the lock is held
    // until the agent ends).
    let _lock = lock;
    let model = &model;
    let host = host.as_str();
    let send = &send;
    std::thread::scope(|scope| loop {
        let req: Request = match read_frame(&mut reader) {
            Ok(Some(r)) => r,
            // The controller is gone (killed, or the connection dropped):
            // stop at once rather than deploy on our own. Every change is
            // atomic; the next run converges.
            Ok(None) | Err(_) => std::process::exit(3),
        };
        match req {
            Request::Deploy { id, root, predict } => {
                scope.spawn(move || {
                    let sink = |line: Line| {
                        if !send(&Response::Output { id, line }) {
                            // The controller is gone: stop here. Every
                            // change is atomic, the next run converges.
                            std::process::exit(3);
                        }
                    };
                    // A panic in component code fails this root with a
                    // report, like any other error.
                    let result =
                        crate::panics::catch(|| model.deploy_root(host, &root, predict, &sink))
                            .unwrap_or_else(|panic| {
                                use crate::output::{tabular_text, Color, Style};
                                let red = Style::color(Color::Red);
                                let mut lines = vec![Line::new(
                                    format!(
                                        "ERROR: panic while deploying {root}: {}",
                                        panic.message
                                    ),
                                    Style::bold_color(Color::Red),
                                )];
                                if let Some(l) = panic.location {
                                    lines.push(Line::new(tabular_text("Source", &l), red));
                                }
                                Err(lines)
                            });
                    if !send(&Response::Deployed {
                        id,
                        error: result.err(),
                    }) {
                        std::process::exit(3);
                    }
                });
            }
            // Running deployments finish first: the scope joins them.
            Request::Bye => return 0,
            Request::Hello { .. }
            | Request::Configure { .. }
            | Request::Lock { .. }
            | Request::Ship { .. }
            | Request::ShipFile { .. }
            | Request::ShipDone
            | Request::VcsHead { .. }
            | Request::VcsChunk { .. }
            | Request::VcsUpdate { .. } => {
                send(&Response::Failed {
                    message: "unexpected request after configure".into(),
                });
                return 1;
            }
        }
    })
}
