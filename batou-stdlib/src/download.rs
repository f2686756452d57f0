//! Download: a file from `http://`, `https://` or `file://`, verified by
//! its checksum (batou.lib.download).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::download::Download;
//!
//! #[component]
//! pub struct Zlib;
//!
//! impl Component for Zlib {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(
//!             Download::new(
//!                 "https://zlib.net/zlib-1.3.1.tar.gz",
//!                 "sha256:9a93b2b7dfdac77ceba5a558a580e74667dd6fede4585b91eefb60f03b72df23",
//!             ),
//!         );
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The download streams into a private temporary file next to the target,
//! hashed on the way; only a file with the right checksum is renamed to the
//! target name, so the target is never a partial or wrong file. `verify`
//! hashes the existing file. The environment's `timeout` bounds connecting,
//! waiting for the answer and every read (a stalled server fails the
//! download); redirects are followed up to 10 times.

use crate::checksum::Checksum;
use batou::prelude::*;
use batou::safe_fs::AtomicFile;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Report progress for downloads larger than this.
const PROGRESS_FROM: u64 = 4 << 20;

/// How the URI is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Scheme {
    #[default]
    Http,
    File,
}

/// Downloads `uri` to `target` (default: the last segment of the URL's
/// path, in the workdir) and checks it against `checksum`
/// (`algorithm:hex`, e.g. `sha256:…`; md5, sha1, sha224, sha256, sha384
/// and sha512 are known).
#[component(namevar = uri, args = [checksum])]
pub struct Download {
    /// The URL: `http://`, `https://` or `file://`.
    uri: String,
    /// Where to save the file (relative to the workdir).
    #[attribute]
    target: Option<String>,
    /// `algorithm:hexdigest` (required).
    #[attribute]
    checksum: String,
    parsed: Option<Checksum>,
    scheme: Scheme,
    timeout: Duration,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("uri", &masked(&self.uri))
            .field("target", &self.target)
            .field("checksum", &self.checksum)
            .finish_non_exhaustive()
    }
}

/// The URI with a password in it replaced by `*****` (as batou shows it).
fn masked(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:*****@{host}{tail}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

/// The last segment of the URL's path (without query or fragment).
pub(crate) fn file_name_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

impl Download {
    fn target_path(&self) -> PathBuf {
        PathBuf::from(self.target.as_deref().unwrap_or_default())
    }

    fn expected(&self) -> Result<&Checksum> {
        self.parsed
            .as_ref()
            .ok_or_else(|| Error::usage("Download was not configured"))
    }

    /// Streams the body into `out`, hashing it; returns the hex digest.
    fn fetch_into(&self, cx: &Deploy, out: &mut AtomicFile) -> Result<String> {
        let mut hasher = self.expected()?.hasher();
        let shown = masked(&self.uri);
        let fail = |why: String| Error::failed(format!("Cannot download {shown}: {why}"));
        let (mut body, total): (Box<dyn Read>, Option<u64>) = match self.scheme {
            Scheme::File => {
                let path = file_path(&self.uri);
                let file = std::fs::File::open(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?;
                let len = file.metadata().ok().map(|m| m.len());
                (Box::new(file), len)
            }
            Scheme::Http => {
                let agent =
                    batou::http::agent(self.timeout, batou::http::Schemes::Both).map_err(fail)?;
                let response = agent
                    .get(&self.uri)
                    .call()
                    .map_err(|e| fail(batou::http::describe(&e)))?;
                let total = response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let reader = response
                    .into_body()
                    .into_with_config()
                    .limit(u64::MAX)
                    .reader();
                (Box::new(reader), total)
            }
        };
        let mut buffer = vec![0u8; 256 << 10];
        let mut done = 0u64;
        let mut reported = 0u64;
        loop {
            let n = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(read_error(e))),
            };
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])
                .map_err(|e| Error::io(format!("writing {}", self.target_path().display()), e))?;
            done += n as u64;
            if total.unwrap_or(done) >= PROGRESS_FROM && done - reported >= PROGRESS_FROM {
                cx.progress(done, total);
                reported = done;
            }
        }
        if reported > 0 {
            cx.progress(done, total);
        }
        Ok(hasher.finish())
    }
}

/// A read error of the body; ureq's timeouts come wrapped in io errors.
fn read_error(e: std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<batou::http::ureq::Error>())
    {
        Some(inner) => batou::http::describe(inner),
        None => e.to_string(),
    }
}

/// The local path of a `file://` URL (`file:///a/b` and `file://localhost/a/b`).
fn file_path(uri: &str) -> PathBuf {
    let rest = &uri["file://".len()..];
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    PathBuf::from(rest)
}

impl Component for Download {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let lower = self.uri.to_ascii_lowercase();
        self.scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
            Scheme::Http
        } else if lower.starts_with("file://") {
            Scheme::File
        } else if lower.starts_with("ftp://") {
            return Err(Error::usage(format!(
                "Download: ftp is not supported ({}); use http, https or file",
                masked(&self.uri)
            )));
        } else {
            return Err(Error::usage(format!(
                "Download: unsupported URL {:?} (expected http://, https:// or file://)",
                masked(&self.uri)
            )));
        };
        if self.scheme == Scheme::File && !file_path(&self.uri).is_absolute() {
            return Err(Error::usage(format!(
                "Download: a file:// URL needs an absolute path ({})",
                self.uri
            )));
        }
        let target = match self.target.clone().filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => file_name_of(&self.uri).ok_or_else(|| {
                Error::usage(format!(
                    "No target is given and the URI does not allow deriving a filename: {}",
                    masked(&self.uri)
                ))
            })?,
        };
        self.target = Some(cx.map(&target).to_string_lossy().into_owned());
        if self.checksum.trim().is_empty() {
            return Err(Error::usage(format!(
                "Download {}: no checksum given (e.g. checksum = \"sha256:…\")",
                masked(&self.uri)
            )));
        }
        self.parsed = Some(
            Checksum::parse(&self.checksum)
                .map_err(|e| Error::usage(format!("Download {}: {e}", masked(&self.uri))))?,
        );
        self.timeout = cx.timeout();
        Ok(())
    }

    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let target = self.target_path();
        ensure!(target.is_file(), "{} does not exist", target.display());
        let expected = self.expected()?;
        let actual = expected
            .of_file(&target)
            .map_err(|e| Error::io(format!("reading {}", target.display()), e))?;
        ensure!(
            actual == expected.hex(),
            "{} has {}:{actual}",
            target.display(),
            expected.algorithm()
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let target = self.target_path();
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let mut out = AtomicFile::create(&target, 0o644)
            .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
        let actual = self.fetch_into(cx, &mut out)?;
        let expected = self.expected()?;
        if actual != expected.hex() {
            // Dropping `out` removes the temporary file.
            return Err(Error::failed(format!(
                "Checksum mismatch for {}!\nexpected: {}:{}\ngot: {}:{actual}",
                masked(&self.uri),
                expected.algorithm(),
                expected.hex(),
                expected.algorithm()
            )));
        }
        out.commit()
            .map_err(|e| Error::io(format!("writing {}", target.display()), e))
    }

    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(masked(&self.uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_breadcrumbs() {
        assert_eq!(
            masked("https://user:pw@example.com/a.tgz"),
            "https://user:*****@example.com/a.tgz"
        );
        assert_eq!(
            masked("https://example.com/a@b.tgz"),
            "https://example.com/a@b.tgz"
        );
        assert_eq!(
            masked("https://user@example.com/x"),
            "https://user@example.com/x"
        );
    }

    #[test]
    fn the_target_defaults_to_the_last_path_segment() {
        assert_eq!(
            file_name_of("https://example.com/dl/zlib-1.3.tar.gz?mirror=1#x").as_deref(),
            Some("zlib-1.3.tar.gz")
        );
        assert_eq!(file_name_of("https://example.com/"), None);
        assert_eq!(file_name_of("https://example.com"), None);
        assert_eq!(file_path("file:///srv/a.tgz"), PathBuf::from("/srv/a.tgz"));
        assert_eq!(
            file_path("file://localhost/srv/a.tgz"),
            PathBuf::from("/srv/a.tgz")
        );
    }
}
