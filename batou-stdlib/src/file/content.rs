//! File content: Content (text or template), JSONContent, YAMLContent, and
//! the diff output of changed content.

use super::atomic::{
    copy_atomic, read_full, replace, same_content, umask, write_atomic, Attributes,
};
use super::{basename, mapped, mtime, users};
use batou::component::Footprint;
use batou::prelude::*;
use batou::template::{TemplateError, Value};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Diffs longer than this are shortened to their first and last
/// [`DIFF_KEEP`] lines.
pub const MAX_DIFF: usize = 200;
/// Lines kept at each end of a shortened diff.
pub const DIFF_KEEP: usize = 50;
/// Files larger than this (old or new) are compared but not diffed.
pub const MAX_DIFF_BYTES: u64 = 4 << 20;
/// Saved diffs under `work/.batou-diffs/` take at most this much space
/// together; the oldest go first.
pub const SAVED_DIFFS_BYTES: u64 = 16 << 20;

/// What the file should contain: rendered bytes, or a file copied as is
/// (streamed, never held in memory).
#[derive(Debug, Clone)]
enum Desired {
    Bytes(std::sync::Arc<[u8]>),
    Copy(PathBuf),
}

/// The content of a file, from `content` or `source`, rendered as a
/// template by default. The rendering happens in `configure`; a `source`
/// that does not exist yet (made by an earlier component) is read at verify.
#[component(namevar = path)]
pub struct Content {
    /// Path.
    pub(crate) path: String,
    /// Literal content.
    #[attribute]
    content: Option<String>,
    /// Source file (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Render as a template.
    #[attribute(default = true)]
    is_template: bool,
    /// `utf-8`, or none for binary content.
    #[attribute(default = "utf-8")]
    encoding: Option<String>,
    /// Diff visibility: `true` never, `false` always, unset hides secrets.
    #[attribute]
    sensitive_data: Option<bool>,
    pub(crate) template_context: Option<Value>,
    pub(crate) template_args: Option<Value>,
    rendered: Option<std::sync::Arc<[u8]>>,
    delayed_source: Option<PathBuf>,
    /// Mode of a newly created file (set by File).
    pub(crate) create_mode: Option<batou::component::Mode>,
    /// Owner and group the file is created with (set by File), checked
    /// before anything is written.
    pub(crate) create_owner: Option<String>,
    pub(crate) create_group: Option<String>,
    /// A source copied byte for byte (no template, or binary).
    copy_from: Option<PathBuf>,
}

/// Shows the path only: contents may be secret.
impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Content {
    /// The object templates see as `component` (default: the parent).
    pub fn template_context(mut self, value: Value) -> Self {
        self.template_context = Some(value);
        self
    }
    /// Extra template variables (a map value).
    pub fn template_args(mut self, value: Value) -> Self {
        self.template_args = Some(value);
        self
    }
    /// The rendered content (after `configure`, unless the source is
    /// delayed).
    pub fn rendered(&self) -> Option<&[u8]> {
        self.rendered.as_deref()
    }

    /// Whether the content is copied as is (no template, or binary).
    fn is_plain(&self) -> Result<bool> {
        Ok(!self.is_template || !self.utf8()?)
    }

    fn utf8(&self) -> Result<bool> {
        match self.encoding.as_deref().map(str::to_ascii_lowercase) {
            None => Ok(false),
            Some(e) if e == "utf-8" || e == "utf8" => Ok(true),
            Some(e) => Err(Error::usage(format!(
                "unsupported encoding {e:?} (use utf-8 or none)"
            ))),
        }
    }

    fn process(
        &self,
        name: &str,
        bytes: Vec<u8>,
        render: impl Fn(&str, &str) -> std::result::Result<String, TemplateError>,
    ) -> Result<Vec<u8>> {
        if self.is_plain()? {
            return Ok(bytes);
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::usage(format!(
                "{name} is not valid utf-8; use BinaryFile or encoding = None"
            ))
        })?;
        Ok(render(name, &text)?.into_bytes())
    }

    fn desired(&mut self, cx: &Deploy) -> Result<Option<Desired>> {
        if let Some(r) = &self.rendered {
            return Ok(Some(Desired::Bytes(r.clone())));
        }
        if let Some(src) = &self.copy_from {
            return Ok(Some(Desired::Copy(src.clone())));
        }
        let Some(src) = self.delayed_source.clone() else {
            return Err(Error::usage("Content needs `content` or `source`"));
        };
        if !src.exists() {
            if cx.predicting() {
                return Ok(None);
            }
            return Err(Error::usage(format!(
                "source for {} does not exist: {}",
                self.path,
                src.display()
            )));
        }
        if self.is_plain()? {
            self.copy_from = Some(src.clone());
            return Ok(Some(Desired::Copy(src)));
        }
        let bytes = fs::read(&src)
            .map_err(|e| Error::io(format!("reading source {}", src.display()), e))?;
        let ctx = self.template_context.clone().unwrap_or_default();
        let args = self.template_args.clone();
        let rendered = self.process(&basename(&src.to_string_lossy()), bytes, |n, t| {
            cx.render(n, t, ctx.clone(), args.as_ref())
        })?;
        let rendered: std::sync::Arc<[u8]> = rendered.into();
        self.rendered = Some(rendered.clone());
        Ok(Some(Desired::Bytes(rendered)))
    }

    /// The ids of `create_owner`/`create_group` on this host: an unknown
    /// name fails the file before anything is written.
    fn ids(&self) -> Result<(Option<u32>, Option<u32>)> {
        let uid =
            match &self.create_owner {
                Some(name) => Some(users::uid(name).ok_or_else(|| {
                    Error::usage(format!("unknown user {name:?} for {}", self.path))
                })?),
                None => None,
            };
        let gid = match &self.create_group {
            Some(name) => Some(users::gid(name).ok_or_else(|| {
                Error::usage(format!("unknown group {name:?} for {}", self.path))
            })?),
            None => None,
        };
        Ok((uid, gid))
    }

    /// Whether the file is (or will be) unreadable for others: its diff
    /// is then never saved.
    fn is_private(&self) -> bool {
        let mode = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_file() => m.mode(),
            _ => self.create_mode.map(|m| m.0).unwrap_or(0o666 & !umask()),
        };
        let created = self.create_mode.map(|m| m.0).unwrap_or(0o777);
        mode & 0o004 == 0 || created & 0o004 == 0
    }

    /// Prints the diff between the file and what it should be, unless
    /// either is too large to diff.
    fn show_change(&self, cx: &Deploy, want: &Desired) -> Result<()> {
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .unwrap_or(0);
        let new_len = match want {
            Desired::Bytes(b) => b.len() as u64,
            Desired::Copy(src) => fs::metadata(src).map(|m| m.len()).unwrap_or(0),
        };
        if self.sensitive_data != Some(true) && current.max(new_len) > MAX_DIFF_BYTES {
            cx.line(Line::new(
                format!(
                    "Not showing diff: {} is larger than {} MiB.",
                    basename(&self.path),
                    MAX_DIFF_BYTES >> 20
                ),
                Style::color(Color::Yellow),
            ));
            return Ok(());
        }
        let old = if current > 0 {
            fs::read(&self.path).unwrap_or_default()
        } else {
            Vec::new()
        };
        let new = match want {
            Desired::Bytes(b) => std::borrow::Cow::Borrowed(&b[..]),
            Desired::Copy(src) => std::borrow::Cow::Owned(
                fs::read(src)
                    .map_err(|e| Error::io(format!("reading source {}", src.display()), e))?,
            ),
        };
        show_diff(
            cx,
            &self.path,
            &old,
            &new,
            DiffPolicy {
                sensitive: self.sensitive_data,
                save: !self.is_private() && !cx.predicting(),
            },
        );
        Ok(())
    }
}

/// Whether `path` is a regular file with exactly `data`: one open (not
/// following a link), one `fstat`, and a read only when the sizes match.
/// Whether `path` is a regular file holding exactly `data`; `meta` is its
/// `lstat` (links and anything but regular files never match).
fn has_bytes(path: &Path, data: &[u8], meta: std::io::Result<fs::Metadata>) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    match meta {
        Ok(m) if m.is_file() && m.len() == data.len() as u64 => {}
        _ => return false,
    }
    if data.is_empty() {
        return true;
    }
    // Never through a link, never waiting on a FIFO put there meanwhile.
    let Ok(mut file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    // One byte more than expected tells a file that grew since. A regular
    // file's read stops short only at its end, so the first read usually
    // tells all.
    let mut current = vec![0u8; data.len() + 1];
    let read = file.read(&mut current).and_then(|n| {
        if n >= data.len() {
            Ok(n)
        } else {
            read_full(&mut file, &mut current[n..]).map(|more| n + more)
        }
    });
    read.is_ok_and(|n| current[..n] == *data)
}

impl Component for Content {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        if self.template_context.is_none() {
            self.template_context = cx.parent().cloned();
        }
        let ctx = self.template_context.clone().unwrap_or_default();
        let args = self.template_args.clone();
        let name = basename(&self.path);
        if let Some(text) = self.content.clone() {
            let r = self.process(&name, text.into_bytes(), |n, t| {
                cx.render(n, t, ctx.clone(), args.as_ref())
            })?;
            self.rendered = Some(r.into());
        } else if let Some(src) = self.source.clone().filter(|s| !s.is_empty()) {
            let p = cx.resolve_source(&src);
            if let Some(data) = batou::component::embedded_file(&p) {
                // Carried by a library component (embedded at build time).
                let r = if self.is_plain()? {
                    data.to_vec()
                } else {
                    let sname = basename(&p.to_string_lossy());
                    self.process(&sname, data.to_vec(), |n, t| {
                        cx.render(n, t, ctx.clone(), args.as_ref())
                    })?
                };
                self.rendered = Some(r.into());
                return Ok(());
            }
            if self.is_plain()? {
                // Copied as is, in chunks, when deploying (it may not
                // exist yet: made by an earlier component).
                if p.is_file() {
                    self.copy_from = Some(p);
                } else {
                    self.delayed_source = Some(p);
                }
                return Ok(());
            }
            match cx.read_source(&p) {
                Ok(bytes) => {
                    let sname = basename(&p.to_string_lossy());
                    let r = self.process(&sname, bytes.to_vec(), |n, t| {
                        cx.render(n, t, ctx.clone(), args.as_ref())
                    })?;
                    self.rendered = Some(r.into());
                }
                Err(_) => self.delayed_source = Some(p),
            }
        } else {
            return Err(Error::usage(format!(
                "Content({name:?}) needs `content` or `source`"
            )));
        }
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        self.ids()?;
        let Some(want) = self.desired(cx)? else {
            return Err(Error::update_needed("source does not exist yet"));
        };
        let path = Path::new(&self.path);
        let same = match &want {
            Desired::Bytes(b) => has_bytes(path, b, cx.symlink_metadata(path)),
            Desired::Copy(src) => same_content(src, path)
                .map_err(|e| Error::io(format!("reading source {}", src.display()), e))?,
        };
        if same {
            return Ok(());
        }
        self.show_change(cx, &want)?;
        Err(Error::update_needed(format!(
            "content of {} differs",
            self.path
        )))
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let (uid, gid) = self.ids()?;
        let Some(want) = self.desired(cx)? else {
            return Err(Error::usage(format!(
                "source for {} does not exist",
                self.path
            )));
        };
        let attrs = Attributes {
            new_mode: self.create_mode.map(|m| m.0),
            uid,
            gid,
        };
        let path = Path::new(&self.path);
        match want {
            Desired::Bytes(b) => replace(path, attrs).and_then(|mut f| {
                f.write_all(&b)?;
                f.commit_batched()
            }),
            Desired::Copy(src) => copy_atomic(&src, path, attrs),
        }
        .map_err(|e| Error::io(format!("writing {}", self.path), e))
    }

    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        Ok(mtime(Path::new(&self.path)))
    }

    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
    /// The file, and the file it is copied from.
    fn footprint(&self) -> Footprint<'_> {
        let path = Path::new(&self.path);
        match (&self.copy_from, &self.delayed_source) {
            (None, None) => Footprint::File(path),
            (copy, delayed) => Footprint::Files(
                std::iter::once(path)
                    .chain(copy.iter().chain(delayed).map(PathBuf::as_path))
                    .collect(),
            ),
        }
    }
}

/// How a diff may be shown and kept.
#[derive(Debug, Clone, Copy)]
pub struct DiffPolicy {
    /// Diff visibility: `Some(true)` never, `Some(false)` always, `None`
    /// hides diffs that contain secrets.
    pub sensitive: Option<bool>,
    /// A long diff may be saved under `work/.batou-diffs/` (not for files
    /// others cannot read, never when predicting).
    pub save: bool,
}

/// Whether either text contains a secret value of the environment (an
/// exact substring: every override value of the secrets file, every line
/// of at least 4 characters of a secret file).
pub fn contains_secret(secrets: &std::collections::BTreeSet<String>, old: &str, new: &str) -> bool {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| old.contains(s.as_str()) || new.contains(s.as_str()))
}

/// Prints the diff of a content change in batou's format, unless the
/// content is sensitive or binary.
pub fn show_diff(cx: &Deploy, path: &str, old: &[u8], new: &[u8], policy: DiffPolicy) {
    let sensitive = policy.sensitive;
    let red = Style::color(Color::Red);
    if sensitive == Some(true) {
        cx.line(Line::new(
            "Not showing diff as it contains sensitive data.",
            red,
        ));
        return;
    }
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        cx.line(Line::new(
            "Not showing diff for binary data.",
            Style::color(Color::Yellow),
        ));
        return;
    };
    let has_secret = contains_secret(cx.secret_data(), old, new);
    if sensitive.is_none() && has_secret {
        cx.line(Line::new(
            "Not showing diff as it contains sensitive data.",
            red,
        ));
        return;
    }
    // Shown on request (`sensitive_data = false`), but never kept on disk.
    let policy = DiffPolicy {
        save: policy.save && !has_secret,
        ..policy
    };
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header("", "")
        .to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    cx.diff(lines.iter().map(|l| l.to_string()).collect());
    let name = basename(path);
    let print = |l: &str| {
        let style = if l.starts_with('-') {
            red
        } else if l.starts_with('+') {
            Style::color(Color::Green)
        } else {
            Style::PLAIN
        };
        cx.line(Line::new(format!("  {name} {l}"), style));
    };
    if lines.len() > MAX_DIFF {
        let yellow = Style::color(Color::Yellow);
        cx.line(Line::new(
            format!(
                "More than {MAX_DIFF} lines of diff. Showing first and last {DIFF_KEEP} lines."
            ),
            yellow,
        ));
        if let Some(file) = policy.save.then(|| save_diff(cx, &name, &text)).flatten() {
            cx.line(Line::new(
                format!("see {} for the full diff.", file.display()),
                yellow,
            ));
        }
        lines[..DIFF_KEEP].iter().for_each(|l| print(l));
        cx.line(Line::plain(format!("  {name} ...")));
        lines[lines.len() - DIFF_KEEP..]
            .iter()
            .for_each(|l| print(l));
    } else {
        lines.iter().for_each(|l| print(l));
    }
}

/// Keeps a long (non-sensitive) diff under `work/.batou-diffs/` (mode
/// 0600); the oldest saved diffs are removed beyond [`SAVED_DIFFS_BYTES`].
fn save_diff(cx: &Deploy, name: &str, text: &str) -> Option<PathBuf> {
    if text.len() as u64 > SAVED_DIFFS_BYTES {
        return None;
    }
    let dir = cx.project_root().join("work").join(".batou-diffs");
    fs::create_dir_all(&dir).ok()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let file = dir.join(format!("{name}-{stamp}.diff"));
    write_atomic(&file, text.as_bytes(), Some(0o600)).ok()?;
    prune_diffs(&dir, SAVED_DIFFS_BYTES);
    Some(file)
}

/// Removes the oldest `.diff` files of `dir` until the rest fit in `limit`.
fn prune_diffs(dir: &Path, limit: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut diffs: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "diff"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    diffs.sort();
    let mut total: u64 = diffs.iter().map(|d| d.1).sum();
    for (_, len, path) in diffs {
        if total <= limit {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// Sorts object keys recursively (for stable JSON/YAML output).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// batou's `dict_merge`: objects merge recursively, lists are concatenated,
/// anything else is replaced by the override.
pub fn merge(base: serde_json::Value, over: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match (base, over) {
        (J::Object(mut a), J::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            J::Object(a)
        }
        (J::Array(mut a), J::Array(b)) => {
            a.extend(b);
            J::Array(a)
        }
        (_, over) => over,
    }
}

fn structured_data(
    cx: &Configure,
    data: &Option<serde_json::Value>,
    source: &Option<String>,
    overrides: &Option<serde_json::Value>,
    parse: impl Fn(&str) -> std::result::Result<serde_json::Value, String>,
) -> Result<serde_json::Value> {
    let base = match (data, source.as_deref().filter(|s| !s.is_empty())) {
        (Some(d), _) => d.clone(),
        (None, Some(src)) => {
            let p = cx.resolve_source(src);
            let bytes = batou::component::read_source(&p)
                .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            let text = String::from_utf8_lossy(&bytes);
            parse(&text).map_err(|e| Error::usage(format!("cannot parse {}: {e}", p.display())))?
        }
        (None, None) => return Err(Error::usage("needs `data` or `source`")),
    };
    Ok(match overrides {
        Some(o) => merge(base, o.clone()),
        None => base,
    })
}

/// The rendered text as the file's Content (no template processing).
fn add_rendered(cx: &mut Configure, path: &str, text: String, sensitive: Option<bool>) {
    cx.add(
        Content::new(path)
            .content(text)
            .is_template(false)
            .sensitive_data(sensitive),
    );
}

/// A JSON file from `data` or a JSON `source`, merged with `overrides`;
/// keys sorted, indented by 4 spaces unless `human_readable = false`.
#[component(namevar = path)]
pub struct JSONContent {
    /// Path.
    path: String,
    /// The data.
    #[attribute]
    data: Option<serde_json::Value>,
    /// A JSON file (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Merged into the data.
    #[attribute]
    overrides: Option<serde_json::Value>,
    /// Indented output.
    #[attribute(default = true)]
    human_readable: bool,
    /// Diff visibility.
    #[attribute]
    sensitive_data: Option<bool>,
}

/// Shows the path only: contents may be secret.
impl std::fmt::Debug for JSONContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JSONContent")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Component for JSONContent {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        let data = sorted(structured_data(
            cx,
            &self.data,
            &self.source,
            &self.overrides,
            |t| serde_json::from_str(t).map_err(|e| e.to_string()),
        )?);
        let text = if self.human_readable {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&data, &mut ser)
                .map_err(|e| Error::usage(e.to_string()))?;
            String::from_utf8_lossy(&buf).into_owned()
        } else {
            data.to_string()
        };
        add_rendered(cx, &self.path, text, self.sensitive_data);
        Ok(())
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
}

/// A YAML file from `data` or a YAML `source`, merged with `overrides`.
#[component(namevar = path)]
pub struct YAMLContent {
    /// Path.
    path: String,
    /// The data.
    #[attribute]
    data: Option<serde_json::Value>,
    /// A YAML file (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Merged into the data.
    #[attribute]
    overrides: Option<serde_json::Value>,
    /// Diff visibility.
    #[attribute]
    sensitive_data: Option<bool>,
}

/// Shows the path only: contents may be secret.
impl std::fmt::Debug for YAMLContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YAMLContent")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Component for YAMLContent {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        let data = sorted(structured_data(
            cx,
            &self.data,
            &self.source,
            &self.overrides,
            |t| serde_yaml::from_str(t).map_err(|e| e.to_string()),
        )?);
        let text = serde_yaml::to_string(&data).map_err(|e| Error::usage(e.to_string()))?;
        add_rendered(cx, &self.path, text, self.sensitive_data);
        Ok(())
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn has_bytes_reads_only_regular_files_and_never_follows_links() {
        let check = |p: &Path, data: &[u8]| has_bytes(p, data, fs::symlink_metadata(p));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        fs::write(&f, b"abc").unwrap();
        assert!(check(&f, b"abc"));
        assert!(!check(&f, b"abd"));
        assert!(!check(&f, b"ab"));
        assert!(!check(&f, b"abcd"));
        assert!(!check(&d.path().join("missing"), b""));
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(!check(&link, b"abc"), "a link is not the file");
        assert!(!check(d.path(), b""), "a directory is not a file");
        let fifo = d.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a valid C string and mode.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert!(!check(&fifo, b""), "a FIFO is not read (nor waited on)");
        // What was looked at earlier in the walk may be out of date: a
        // FIFO or a longer file found when reading never matches.
        let earlier = fs::symlink_metadata(&f).unwrap();
        assert!(
            !has_bytes(&fifo, b"abc", Ok(earlier.clone())),
            "no wait on a FIFO"
        );
        fs::write(&f, b"abcd").unwrap();
        assert!(!has_bytes(&f, b"abc", Ok(earlier)), "grown since");
    }

    #[test]
    fn merge_follows_dict_merge() {
        let m = merge(
            json!({"a": {"b": 1, "c": [1]}, "d": 1}),
            json!({"a": {"c": [2], "e": 3}, "d": 2}),
        );
        assert_eq!(m, json!({"a": {"b": 1, "c": [1, 2], "e": 3}, "d": 2}));
    }
}
