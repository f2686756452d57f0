//! SyncDirectory: mirror a directory of the component into the target.
//!
//! batou shells out to `rsync -rcl` (and never deletes). This is a built-in
//! equivalent that needs nothing on the host: regular files are compared by
//! content and replaced atomically, symlinks by target, directories are
//! created; with `delete`, what the source no longer has is removed.
//!
//! The source of a library component is the tree embedded with it at
//! compile time (regular files with their modes; directories implied by
//! them), so it syncs the same from any machine.

use super::atomic::{remove_path, same_content};
use super::{basename, mapped};
use batou::component::EmbeddedFile;
use batou::prelude::*;
use batou::safe_fs;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Dir,
    File,
    Link(PathBuf),
}

/// Paths to copy (with their kind) and paths to delete.
type Plan = (Vec<(PathBuf, Kind)>, Vec<PathBuf>);

/// Mirrors `source` (relative to the definition directory) into `path`.
#[component(namevar = path)]
#[derive(Debug)]
pub struct SyncDirectory {
    /// Target directory.
    path: String,
    /// Source directory.
    #[attribute]
    source: String,
    /// Names or glob patterns (matched against the name and the relative
    /// path) that are neither copied nor deleted.
    #[attribute(default = Vec::<String>::new())]
    exclude: Vec<String>,
    /// Delete files the source does not have.
    #[attribute(default = false)]
    delete: bool,
    patterns: Vec<glob::Pattern>,
    /// The source as embedded with a library component (empty: on disk).
    embedded: BTreeMap<PathBuf, &'static EmbeddedFile>,
}

impl SyncDirectory {
    fn excluded(&self, rel: &Path) -> bool {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = rel.to_string_lossy();
        self.patterns
            .iter()
            .any(|p| p.matches(&name) || p.matches(&rel))
    }

    fn scan(&self, root: &Path) -> BTreeMap<PathBuf, Kind> {
        let mut out = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let Ok(entries) = fs::read_dir(root.join(&rel)) else {
                continue;
            };
            for e in entries.flatten() {
                let r = rel.join(e.file_name());
                if self.excluded(&r) {
                    continue;
                }
                let Ok(meta) = fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let kind = if meta.file_type().is_symlink() {
                    Kind::Link(fs::read_link(e.path()).unwrap_or_default())
                } else if meta.is_dir() {
                    stack.push(r.clone());
                    Kind::Dir
                } else {
                    Kind::File
                };
                out.insert(r, kind);
            }
        }
        out
    }

    /// The embedded source: its files and the directories they imply.
    fn scan_embedded(&self) -> BTreeMap<PathBuf, Kind> {
        let mut out = BTreeMap::new();
        for rel in self.embedded.keys() {
            if self.excluded(rel) || rel.ancestors().skip(1).any(|a| self.excluded(a)) {
                continue;
            }
            for dir in rel.ancestors().skip(1) {
                if !dir.as_os_str().is_empty() {
                    out.insert(dir.to_path_buf(), Kind::Dir);
                }
            }
            out.insert(rel.clone(), Kind::File);
        }
        out
    }

    fn embedded_file(&self, rel: &Path) -> Option<&'static EmbeddedFile> {
        self.embedded.get(rel).copied()
    }

    /// Whether the target file `rel` has the source's content.
    fn same_file(&self, rel: &Path) -> Result<bool> {
        let src = Path::new(&self.source).join(rel);
        let dst = Path::new(&self.path).join(rel);
        let same = match self.embedded_file(rel) {
            Some(file) => same_as_bytes(file.data, &dst),
            None => same_content(&src, &dst),
        };
        same.map_err(|e| Error::io(format!("reading {}", src.display()), e))
    }

    /// What differs: (paths to copy/create from source, paths to delete).
    fn plan(&self) -> Result<Plan> {
        let src = Path::new(&self.source);
        let dst = Path::new(&self.path);
        let have = self.scan(dst);
        let want = if self.embedded.is_empty() {
            self.scan(src)
        } else {
            self.scan_embedded()
        };
        let mut copy = Vec::new();
        for (rel, kind) in &want {
            let same = match (kind, have.get(rel)) {
                (Kind::Dir, Some(Kind::Dir)) => true,
                (Kind::Link(a), Some(Kind::Link(b))) => a == b,
                (Kind::File, Some(Kind::File)) => self.same_file(rel)?,
                _ => false,
            };
            if !same {
                copy.push((rel.clone(), kind.clone()));
            }
        }
        let delete = if self.delete {
            have.keys()
                .filter(|r| !want.contains_key(*r))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok((copy, delete))
    }
}

/// Replaces `target` (whatever it is; a link is replaced, not followed)
/// with a copy of `source` that has the source's mode before any data.
fn copy_file(source: &Path, target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut input = fs::File::open(source)?;
    let mode = input.metadata()?.permissions().mode();
    replace_with(target, mode, &mut input)
}

/// Replaces `target` (as [`copy_file`]) with the bytes of an embedded file.
fn write_embedded(file: &EmbeddedFile, target: &Path) -> std::io::Result<()> {
    replace_with(target, file.mode, &mut &file.data[..])
}

fn replace_with(target: &Path, mode: u32, input: &mut impl std::io::Read) -> std::io::Result<()> {
    if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        remove_path(target)?;
    }
    let mut out = safe_fs::AtomicFile::create(target, mode)?;
    std::io::copy(input, &mut out)?;
    out.commit()
}

/// Whether `path` is a regular file (not followed if a link) with exactly
/// `data` as content.
fn same_as_bytes(data: &[u8], path: &Path) -> std::io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == data.len() as u64 => Ok(fs::read(path)? == data),
        _ => Ok(false),
    }
}

impl Component for SyncDirectory {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = mapped(cx, &self.path);
        if self.source.is_empty() {
            return Err(Error::usage(
                "SyncDirectory requires a source to sync from.",
            ));
        }
        let source = cx.resolve_source(&self.source);
        self.embedded = batou::component::embedded_tree(&source)
            .into_iter()
            .collect();
        self.source = source.to_string_lossy().into_owned();
        self.patterns = self
            .exclude
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| Error::usage(format!("invalid exclude pattern {p:?}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        if self.embedded.is_empty() && !Path::new(&self.source).is_dir() {
            return Err(Error::usage(format!(
                "source directory {} does not exist",
                self.source
            )));
        }
        let (copy, delete) = self.plan()?;
        ensure!(
            copy.is_empty() && delete.is_empty(),
            "{} to copy, {} to delete",
            copy.len(),
            delete.len()
        );
        Ok(())
    }
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        let (copy, delete) = self.plan()?;
        let src = PathBuf::from(&self.source);
        let dst = PathBuf::from(&self.path);
        fs::create_dir_all(&dst)
            .map_err(|e| Error::io(format!("creating {}", dst.display()), e))?;
        // Parents sort before their children. Nothing inside the target is
        // followed: a link where a directory belongs is replaced.
        for (rel, kind) in copy {
            let target = dst.join(&rel);
            let ctx = |e| Error::io(format!("syncing {}", target.display()), e);
            if let Some(parent) = rel.parent() {
                safe_fs::make_dirs(&dst, parent).map_err(ctx)?;
            }
            match kind {
                Kind::Dir => safe_fs::make_dirs(&dst, &rel).map_err(ctx)?,
                Kind::File => match self.embedded_file(&rel) {
                    Some(file) => write_embedded(file, &target).map_err(ctx)?,
                    None => copy_file(&src.join(&rel), &target).map_err(ctx)?,
                },
                Kind::Link(to) => {
                    remove_path(&target).map_err(ctx)?;
                    std::os::unix::fs::symlink(&to, &target).map_err(ctx)?;
                }
            }
        }
        for rel in delete.iter().rev() {
            let target = dst.join(rel);
            remove_path(&target)
                .map_err(|e| Error::io(format!("deleting {}", target.display()), e))?;
        }
        Ok(())
    }
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(basename(&self.path))
    }
}
