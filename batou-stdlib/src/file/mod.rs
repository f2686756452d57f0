//! Files, directories, symlinks and their attributes (batou's `batou.lib.file`).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::file::File;
//!
//! #[component]
//! pub struct Tick {
//!     #[attribute(default = 1)]
//!     sleep: u64,
//! }
//!
//! impl Component for Tick {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         // Renders components/tick/tick.sh (the implicit source) into
//!         // work/tick/tick.sh with mode 755.
//!         cx.add(File::new("tick.sh").mode("rwxr-xr-x"));
//!         Ok(())
//!     }
//! }
//! ```

pub mod atomic;
mod content;
mod sync;
pub mod users;

pub use content::{
    show_diff, Content, DiffPolicy, JSONContent, YAMLContent, MAX_DIFF_BYTES, SAVED_DIFFS_BYTES,
};
pub use sync::SyncDirectory;

use atomic::{remove_path, write_atomic};
use batou::component::{Footprint, Mode as ModeValue};
use batou::prelude::*;
use batou::template::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The path as File breadcrumbs show it: relative to the project if inside,
/// else absolute.
fn project_relative(cx: &Configure, path: &str) -> String {
    let p = Path::new(path);
    match p.strip_prefix(cx.project_root()) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => path.to_string(),
    }
}

fn basename(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn mapped(cx: &Configure, path: &str) -> String {
    cx.map(path).to_string_lossy().into_owned()
}

pub(crate) fn mtime(path: &Path) -> Option<f64> {
    let m = fs::metadata(path).ok()?.modified().ok()?;
    m.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

/// What File and BinaryFile have in common.
struct FileSpec<'a> {
    path: &'a str,
    ensure: &'a str,
    content: Option<&'a str>,
    source: Option<&'a str>,
    is_template: bool,
    template_context: Option<Value>,
    template_args: Option<Value>,
    encoding: Option<&'a str>,
    owner: Option<&'a str>,
    group: Option<&'a str>,
    mode: Option<ModeValue>,
    link_to: Option<&'a str>,
    leading: bool,
    sensitive_data: Option<bool>,
}

fn configure_file(spec: FileSpec, cx: &mut Configure) -> Result<()> {
    let path = spec.path;
    for (what, id) in [("owner", spec.owner), ("group", spec.group)] {
        if let Some(id) = id {
            users::check_id(id).map_err(|e| Error::usage(format!("File({path:?}): {what} {e}")))?;
        }
    }
    // With content, the Content component creates the file (atomically, with
    // its final mode), so it never exists empty or half-written.
    let has_content = spec.ensure == "file";
    match spec.ensure {
        "file" => {
            let mut presence = Presence::new(path).leading(spec.leading);
            presence.content_follows = has_content;
            cx.add(presence);
        }
        "directory" => {
            cx.add(Directory::new(path).leading(spec.leading));
        }
        "symlink" => {
            let Some(target) = spec.link_to.filter(|t| !t.is_empty()) else {
                return Err(Error::usage(format!(
                    "File({path:?}) with ensure = symlink needs link_to"
                )));
            };
            cx.add(Symlink::new(path).source(target));
        }
        other => {
            return Err(Error::usage(format!(
                "File({path:?}): ensure must be file, directory or symlink, not {other:?}"
            )))
        }
    }
    if let Some(mode) = spec.mode {
        let mut m = Mode::new(path).mode(mode);
        m.content_follows = has_content;
        cx.add(m);
    }
    if spec.ensure == "file" {
        let source = match (spec.content, spec.source.filter(|s| !s.is_empty())) {
            (Some(_), _) => None,
            (None, Some(s)) => Some(s.to_string()),
            (None, None) => {
                // The implicit source: a file named like the target next to
                // the component's definition.
                let implicit = cx.defdir().join(basename(path));
                if !batou::component::source_is_file(&implicit) {
                    return Err(Error::usage(format!(
                        "Missing implicit template file {}. Or did you want to create an empty file? Then use File({:?}).content(\"\").",
                        implicit.display(),
                        basename(path)
                    )));
                }
                Some(implicit.to_string_lossy().into_owned())
            }
        };
        let mut content = Content::new(path)
            .is_template(spec.is_template)
            .encoding(spec.encoding.map(str::to_string))
            .sensitive_data(spec.sensitive_data);
        content = match (spec.content, source) {
            (Some(c), _) => content.content(c),
            (None, Some(s)) => content.source(s),
            (None, None) => content,
        };
        content.template_context = spec.template_context.or_else(|| cx.parent().cloned());
        content.create_mode = spec.mode;
        content.create_owner = spec.owner.map(str::to_string);
        content.create_group = spec.group.map(str::to_string);
        content.template_args = spec.template_args;
        cx.add(content);
    }
    if let Some(owner) = spec.owner {
        cx.add(Owner::new(path).owner(owner));
    }
    if let Some(group) = spec.group {
        cx.add(Group::new(path).group(group));
    }
    Ok(())
}

/// A file, directory or symlink with optional content, mode, owner and
/// group. Content comes from `content`, from `source` (relative to the
/// component's directory), or implicitly from a file named like the target
/// next to the component; it is a minijinja template unless
/// `is_template = false`. `content = ""` makes the file empty.
#[component(namevar = path)]
pub struct File {
    /// Target path (relative paths are relative to the workdir).
    path: String,
    /// `file`, `directory` or `symlink`.
    #[attribute(default = "file")]
    ensure: String,
    /// Literal content.
    #[attribute]
    content: Option<String>,
    /// Source file (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Render the content as a template.
    #[attribute(default = true)]
    is_template: bool,
    /// Encoding of the content (`utf-8`; none for binary).
    #[attribute(default = "utf-8")]
    encoding: Option<String>,
    /// Owner (name or uid).
    #[attribute]
    owner: Option<String>,
    /// Group (name or gid).
    #[attribute]
    group: Option<String>,
    /// Permission bits.
    #[attribute]
    mode: Option<ModeValue>,
    /// Symlink target for `ensure = symlink`.
    #[attribute]
    link_to: Option<String>,
    /// Create missing parent directories.
    #[attribute(default = false)]
    leading: bool,
    /// `true`: never show diffs; `false`: always; unset: hide diffs that
    /// contain secrets.
    #[attribute]
    sensitive_data: Option<bool>,
    template_context: Option<Value>,
    template_args: Option<Value>,
}

/// Shows the path only: contents may be secret.
impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl File {
    /// The object templates see as `component` (default: the parent).
    pub fn template_context(mut self, value: Value) -> Self {
        self.template_context = Some(value);
        self
    }
    /// Extra template variables (a map value, e.g. `minijinja::context!{..}`).
    pub fn template_args(mut self, value: Value) -> Self {
        self.template_args = Some(value);
        self
    }
    /// The absolute target path (after `configure`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Component for File {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        let spec = FileSpec {
            path: &self.path,
            ensure: &self.ensure,
            content: self.content.as_deref(),
            source: self.source.as_deref(),
            is_template: self.is_template,
            template_context: self.template_context.clone(),
            template_args: self.template_args.clone(),
            encoding: self.encoding.as_deref(),
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode,
            link_to: self.link_to.as_deref(),
            leading: self.leading,
            sensitive_data: self.sensitive_data,
        };
        configure_file(spec, cx)
    }
    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        Ok(mtime(Path::new(&self.path)))
    }
    fn breadcrumb(&self, cx: &Configure) -> Option<String> {
        Some(project_relative(cx, &self.path))
    }
    /// Its sub-components do the work.
    fn footprint(&self) -> Footprint<'_> {
        Footprint::Files(Vec::new())
    }
}

/// A file whose content is copied byte for byte (no template, no encoding).
#[component(namevar = path)]
pub struct BinaryFile {
    /// Target path.
    path: String,
    /// Literal content.
    #[attribute]
    content: Option<String>,
    /// Source file (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Owner.
    #[attribute]
    owner: Option<String>,
    /// Group.
    #[attribute]
    group: Option<String>,
    /// Permission bits.
    #[attribute]
    mode: Option<ModeValue>,
    /// Create missing parent directories.
    #[attribute(default = false)]
    leading: bool,
    /// Diff visibility, as for [`File`].
    #[attribute]
    sensitive_data: Option<bool>,
}

/// Shows the path only: contents may be secret.
impl std::fmt::Debug for BinaryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Component for BinaryFile {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        let spec = FileSpec {
            path: &self.path,
            ensure: "file",
            content: self.content.as_deref(),
            source: self.source.as_deref(),
            is_template: false,
            template_context: None,
            template_args: None,
            encoding: None,
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode,
            link_to: None,
            leading: self.leading,
            sensitive_data: self.sensitive_data,
        };
        configure_file(spec, cx)
    }
    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        Ok(mtime(Path::new(&self.path)))
    }
    fn breadcrumb(&self, cx: &Configure) -> Option<String> {
        Some(project_relative(cx, &self.path))
    }
    /// Its sub-components do the work.
    fn footprint(&self) -> Footprint<'_> {
        Footprint::Files(Vec::new())
    }
}

/// A regular file exists (its content is not managed).
#[component(namevar = path)]
#[derive(Debug)]
pub struct Presence {
    /// Path.
    path: String,
    /// Create missing parent directories.
    #[attribute(default = false)]
    leading: bool,
    /// A Content component of the same File creates the file.
    content_follows: bool,
}

impl Component for Presence {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let path = Path::new(&self.path);
        let is_file = match cx.symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => path.is_file(),
            Ok(m) => m.is_file(),
            Err(_) => false,
        };
        ensure!(is_file, "{} is not a file", self.path);
        Ok(())
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        let path = Path::new(&self.path);
        if self.leading {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
            }
        }
        remove_path(path).map_err(io(format!("removing {}", path.display())))?;
        if self.content_follows {
            return Ok(());
        }
        write_atomic(path, b"", None).map_err(io(format!("creating {}", path.display())))
    }
    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        Ok(mtime(Path::new(&self.path)))
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
    fn footprint(&self) -> Footprint<'_> {
        Footprint::File(Path::new(&self.path))
    }
}

/// A directory exists; with `source`, its content mirrors a directory of
/// the component (see [`SyncDirectory`]).
#[component(namevar = path)]
#[derive(Debug)]
pub struct Directory {
    /// Path.
    path: String,
    /// Create missing parent directories.
    #[attribute(default = false)]
    leading: bool,
    /// Directory to copy from (relative to the definition directory).
    #[attribute]
    source: Option<String>,
    /// Names or glob patterns not to copy.
    #[attribute(default = Vec::<String>::new())]
    exclude: Vec<String>,
    /// Also delete what the source no longer has.
    #[attribute(default = false)]
    delete: bool,
}

impl Component for Directory {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        if let Some(source) = self.source.clone().filter(|s| !s.is_empty()) {
            cx.add(
                SyncDirectory::new(self.path.as_str())
                    .source(source)
                    .exclude(self.exclude.clone())
                    .delete(self.delete),
            );
        }
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        ensure!(
            Path::new(&self.path).is_dir(),
            "{} is not a directory",
            self.path
        );
        Ok(())
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        let path = Path::new(&self.path);
        if fs::symlink_metadata(path).is_ok() {
            remove_path(path).map_err(io(format!("removing {}", path.display())))?;
        }
        let r = if self.leading {
            fs::create_dir_all(path)
        } else {
            fs::create_dir(path)
        };
        r.map_err(io(format!("creating directory {}", path.display())))
    }
    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        // The newest mtime of any file below (0 when empty).
        let mut newest = 0f64;
        let mut stack = vec![PathBuf::from(&self.path)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Some(t) = mtime(&p) {
                    newest = newest.max(t);
                }
            }
        }
        Ok(Some(newest))
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
}

/// A symlink at `path` pointing to `source`.
#[component(namevar = path)]
#[derive(Debug)]
pub struct Symlink {
    /// Where the link is.
    path: String,
    /// What it points to.
    #[attribute]
    source: String,
}

impl Component for Symlink {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        self.source = mapped(cx, &self.source);
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let target = fs::read_link(&self.path).ok();
        ensure!(
            target.as_deref() == Some(Path::new(&self.source)),
            "{} does not point to {}",
            self.path,
            self.source
        );
        Ok(())
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        let path = Path::new(&self.path);
        let tmp = atomic::temp_name(path);
        std::os::unix::fs::symlink(&self.source, &tmp)
            .map_err(io(format!("creating symlink {}", tmp.display())))?;
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            remove_path(path).map_err(io(format!("removing {}", path.display())))?;
        }
        fs::rename(&tmp, path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(format!("replacing {}", path.display()), e)
        })
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
}

/// Permission bits of a path (symlinks are left alone).
#[component(namevar = path)]
#[derive(Debug)]
pub struct Mode {
    /// Path.
    path: String,
    /// `0o755`, `"755"` or `"rwxr-xr-x"`.
    #[attribute]
    mode: ModeValue,
    /// A Content component of the same File creates the file with this mode.
    content_follows: bool,
}

impl Component for Mode {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        match cx.symlink_metadata(Path::new(&self.path)) {
            Ok(m) if m.file_type().is_symlink() => Ok(()),
            Ok(m) => {
                ensure!(
                    m.mode() & 0o7777 == self.mode.0,
                    "mode of {} differs",
                    self.path
                );
                Ok(())
            }
            Err(_) => Err(Error::update_needed(format!(
                "{} does not exist",
                self.path
            ))),
        }
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        if self.content_follows && fs::symlink_metadata(&self.path).is_err() {
            return Ok(());
        }
        fs::set_permissions(&self.path, fs::Permissions::from_mode(self.mode.0))
            .map_err(io(format!("changing the mode of {}", self.path)))
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
    fn footprint(&self) -> Footprint<'_> {
        Footprint::File(Path::new(&self.path))
    }
}

/// The owner of a path.
#[component(namevar = path)]
#[derive(Debug)]
pub struct Owner {
    /// Path.
    path: String,
    /// User name or uid.
    #[attribute]
    owner: String,
}

impl Component for Owner {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        users::check_id(&self.owner).map_err(|e| Error::usage(format!("owner {e}")))
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        OWNER.verify(&self.path, &self.owner)
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        OWNER.update(&self.path, &self.owner)
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
    fn footprint(&self) -> Footprint<'_> {
        Footprint::File(Path::new(&self.path))
    }
}

/// What Owner and Group share: an id of a path, given by name or number.
struct IdAttribute {
    what: &'static str,
    lookup: fn(&str) -> Option<u32>,
    current: fn(&fs::Metadata) -> u32,
    set: fn(&str, u32) -> std::io::Result<()>,
}

const OWNER: IdAttribute = IdAttribute {
    what: "user",
    lookup: users::uid,
    current: |m| m.uid(),
    set: |p, id| std::os::unix::fs::lchown(p, Some(id), None),
};

const GROUP: IdAttribute = IdAttribute {
    what: "group",
    lookup: users::gid,
    current: |m| m.gid(),
    set: |p, id| std::os::unix::fs::lchown(p, None, Some(id)),
};

impl IdAttribute {
    fn id(&self, name: &str) -> Result<u32> {
        (self.lookup)(name).ok_or_else(|| Error::usage(format!("unknown {} {name:?}", self.what)))
    }
    fn verify(&self, path: &str, name: &str) -> Result<()> {
        let id = self.id(name)?;
        let current = fs::symlink_metadata(path).map(|m| (self.current)(&m)).ok();
        ensure!(current == Some(id), "{} of {path} differs", self.what);
        Ok(())
    }
    fn update(&self, path: &str, name: &str) -> Result<()> {
        let id = self.id(name)?;
        (self.set)(path, id).map_err(io(format!(
            "changing the {} of {path} to {name}",
            self.what
        )))
    }
}

/// The group of a path.
#[component(namevar = path)]
#[derive(Debug)]
pub struct Group {
    /// Path.
    path: String,
    /// Group name or gid.
    #[attribute]
    group: String,
}

impl Component for Group {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        users::check_id(&self.group).map_err(|e| Error::usage(format!("group {e}")))
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        GROUP.verify(&self.path, &self.group)
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        GROUP.update(&self.path, &self.group)
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
    fn footprint(&self) -> Footprint<'_> {
        Footprint::File(Path::new(&self.path))
    }
}

/// Nothing matches a glob pattern (files, links and directory trees are
/// removed).
#[component(namevar = pattern)]
#[derive(Debug)]
pub struct Purge {
    /// Glob pattern (relative to the workdir).
    pattern: String,
}

impl Purge {
    fn matches(&self) -> Result<Vec<PathBuf>> {
        let paths = glob::glob(&self.pattern)
            .map_err(|e| Error::usage(format!("invalid pattern {:?}: {e}", self.pattern)))?;
        Ok(paths.flatten().collect())
    }
}

impl Component for Purge {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.pattern = mapped(cx, &self.pattern);
        glob::Pattern::new(&self.pattern)
            .map_err(|e| Error::usage(format!("invalid pattern {:?}: {e}", self.pattern)))?;
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let found = self.matches()?;
        ensure!(
            found.is_empty(),
            "{} path(s) match {}",
            found.len(),
            self.pattern
        );
        Ok(())
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        for p in self.matches()? {
            remove_path(&p).map_err(io(format!("removing {}", p.display())))?;
        }
        Ok(())
    }
}
