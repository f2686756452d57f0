//! The controller ↔ agent protocol: length-prefixed JSON frames over the
//! agent's stdin/stdout (a local pipe, or later an SSH channel).
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of
//! JSON. The first exchange is `Hello` in both directions; the agent refuses
//! a different [`PROTOCOL_VERSION`].

use crate::environment::Environment;
use crate::output::Line;
use crate::report::Report;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{Read, Write};

/// Bumped on every incompatible change of [`Request`] or [`Response`].
pub const PROTOCOL_VERSION: u32 = 8;

/// Largest frame accepted (64 MiB): protects against garbage on the channel.
pub const MAX_FRAME: usize = 64 << 20;

/// Controller → agent.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// First message.
    Hello {
        /// [`PROTOCOL_VERSION`] of the controller.
        protocol: u32,
        /// batou version of the controller.
        version: String,
        /// Seconds between the controller's [`Request::Ping`]s; the agent
        /// gives up after [`super::liveness::silence_limit`] of them without
        /// a frame. 0: the controller sends none (the agent never gives up).
        #[serde(default)]
        heartbeat: u64,
    },
    /// "Still here": sent by the controller every `heartbeat` seconds for
    /// the whole session; never answered.
    Ping,
    /// Take the host's deployment lock of the project directory
    /// (`<root>/.batou-lock`); refused while another deployment holds it.
    Lock {
        /// Project directory (`~` is the remote user's home).
        root: String,
    },
    /// Start shipping the project: the full manifest of the working copy.
    Ship {
        /// Project directory on the host.
        root: String,
        /// Every path that should exist.
        manifest: Vec<crate::shipping::Entry>,
    },
    /// A piece of a file the agent asked for (base64 content, at most
    /// 1 MiB); the pieces of one file come in
    /// order, the last one has `last` set.
    ShipFile {
        /// Relative path.
        path: String,
        /// Content, base64.
        data: String,
        /// The file is complete with this piece.
        last: bool,
    },
    /// All files sent: make directories and links, delete what is gone.
    ShipDone,
    /// The commit of the host's copy in `root` (created if needed).
    VcsHead {
        /// git or Mercurial.
        vcs: crate::repository::Vcs,
        /// Repository directory on the host.
        root: String,
    },
    /// A piece of a bundle (base64), appended to the bundle file.
    VcsChunk {
        /// Content, base64.
        data: String,
    },
    /// Move the host's copy to `branch` from the bundle sent (`url`
    /// `None`) or by fetching from `url` (git-pull).
    VcsUpdate {
        /// git or Mercurial.
        vcs: crate::repository::Vcs,
        /// Repository directory on the host.
        root: String,
        /// Branch.
        branch: String,
        /// Fetch from here instead of the bundle.
        url: Option<String>,
    },
    /// Configure the model for a host.
    Configure {
        /// Project directory on the agent's machine.
        project_root: String,
        /// The loaded environment (overrides and secrets included).
        environment: Box<Environment>,
        /// The host the agent serves.
        host: String,
        /// The roots to configure, `(host, root)`: the host's own and those
        /// whose values they read (from the controller's model). `None`:
        /// every root of the environment.
        #[serde(default)]
        roots: Option<std::collections::BTreeSet<(String, String)>>,
    },
    /// Deploy one root component. Several may run at once; answers carry
    /// the same `id`.
    Deploy {
        /// Chosen by the controller, echoed in the answers.
        id: u64,
        /// Root component name.
        root: String,
        /// `-P`: verify only.
        predict: bool,
    },
    /// Finish.
    Bye,
}

/// Agent → controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Hello`.
    Hello {
        /// [`PROTOCOL_VERSION`] of the agent.
        protocol: u32,
        /// batou version of the agent.
        version: String,
    },
    /// The lock is held for this connection.
    Locked,
    /// The files of the manifest the agent needs.
    Need {
        /// Relative paths.
        paths: Vec<String>,
    },
    /// Shipping finished.
    Shipped {
        /// Paths deleted because the project no longer has them.
        deleted: usize,
    },
    /// The commit of the host's git copy (`None`: no commit yet).
    Head {
        /// Commit id.
        commit: Option<String>,
    },
    /// The model is configured (errors empty) or not.
    Configured {
        /// Configuration errors.
        errors: Vec<Report>,
        /// The roots and their order as this agent configured them.
        plan: crate::model::Plan,
    },
    /// Something happened in deployment `id` (a component changed,
    /// printed, was slow, ...).
    Event {
        /// The deployment this event belongs to.
        id: u64,
        /// The event.
        event: Box<crate::events::Event>,
    },
    /// A root finished: whether it changed anything and how long it took,
    /// or the lines of its error.
    Deployed {
        /// The deployment that finished.
        id: u64,
        /// Whether anything changed.
        changed: bool,
        /// Seconds it took.
        seconds: f64,
        /// The error report, if the root failed.
        error: Option<Vec<Line>>,
    },
    /// The answer to [`Request::Ping`]: the controller hears the agent
    /// (and the link) every heartbeat, also while a root deploys quietly.
    Pong,
    /// The agent cannot handle the request.
    Failed {
        /// Why.
        message: String,
    },
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    write_frame_unflushed(w, msg)?;
    w.flush()
}

/// Writes one frame into a buffered writer without flushing it.
pub fn write_frame_unflushed<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    read_frame_after_length(r, u32::from_be_bytes(len)).map(Some)
}

/// Reads a frame whose 4-byte length was already read.
pub fn read_frame_after_length<T: DeserializeOwned>(
    r: &mut impl Read,
    len: u32,
) -> std::io::Result<T> {
    let len = len as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a frame of {len} bytes exceeds the limit of {MAX_FRAME} bytes ({} MiB)",
                MAX_FRAME >> 20
            ),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Request::Deploy {
                id: 7,
                root: "tick".into(),
                predict: true,
            },
        )
        .unwrap();
        write_frame(&mut buf, &Request::Bye).unwrap();
        let mut r = buf.as_slice();
        let a: Request = read_frame(&mut r).unwrap().unwrap();
        assert!(matches!(a, Request::Deploy { id: 7, ref root, predict: true } if root == "tick"));
        assert!(matches!(
            read_frame::<Request>(&mut r).unwrap(),
            Some(Request::Bye)
        ));
        assert!(read_frame::<Request>(&mut r).unwrap().is_none());
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut buf = (u32::MAX).to_be_bytes().to_vec();
        buf.extend_from_slice(b"xx");
        let err = read_frame::<Request>(&mut buf.as_slice()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "a frame of 4294967295 bytes exceeds the limit of 67108864 bytes (64 MiB)"
        );
    }
}
