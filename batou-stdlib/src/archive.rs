//! Extract, Untar, Unzip: unpack archives in-process (batou.lib.archive),
//! with nothing installed on the host.
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::archive::Extract;
//! use batou_stdlib::download::Download;
//!
//! #[component]
//! pub struct App;
//!
//! impl Component for App {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Download::new("https://example.com/app-1.0.tar.gz", "sha256:…"));
//!         // Into work/app/app-1.0, without the archive's top directory.
//!         cx.add(Extract::new("app-1.0.tar.gz").strip(1));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2`/`.tbz2`, `.tar.xz`/`.txz` are
//! untarred, `.zip` is unzipped. Entries that would land outside the
//! target (absolute paths, `..`, links pointing outside) refuse the whole
//! archive before anything is written; nothing inside the target is
//! followed (a link where a directory belongs is replaced). Files keep
//! their permission bits (without setuid/setgid) and modification times.
//!
//! Verify, as batou: the archive exists and every extracted file changed
//! after the archive did; and a marker in the target records the archive,
//! its hash and `strip`, so a changed archive is extracted again (one
//! marker per archive path: one archive may go into several targets).
//!
//! The compression is read from the archive's first bytes (gzip, bzip2,
//! xz, or none), as `tar` does: a plain tar named `.tar.gz` is read.

use crate::file::Directory;
use batou::prelude::*;
use batou::safe_fs::{self, AtomicFile};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component as PathPart, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The archive formats, by suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.tar`.
    Tar,
    /// `.tar.gz`, `.tgz`.
    TarGz,
    /// `.tar.bz2`, `.tbz2`.
    TarBz2,
    /// `.tar.xz`, `.txz`.
    TarXz,
    /// `.zip`.
    Zip,
}

const SUFFIXES: [(&str, Format); 8] = [
    (".tar.gz", Format::TarGz),
    (".tgz", Format::TarGz),
    (".tar.bz2", Format::TarBz2),
    (".tbz2", Format::TarBz2),
    (".tar.xz", Format::TarXz),
    (".txz", Format::TarXz),
    (".tar", Format::Tar),
    (".zip", Format::Zip),
];

impl Format {
    /// The format of an archive name and the name without its suffix.
    ///
    /// ```
    /// use batou_stdlib::archive::Format;
    /// assert_eq!(Format::of("zlib-1.3.tar.gz"), Some((Format::TarGz, "zlib-1.3")));
    /// assert_eq!(Format::of("site.zip"), Some((Format::Zip, "site")));
    /// assert_eq!(Format::of("notes.txt"), None);
    /// ```
    pub fn of(name: &str) -> Option<(Format, &str)> {
        SUFFIXES
            .iter()
            .find_map(|(suffix, format)| name.strip_suffix(suffix).map(|base| (*format, base)))
    }
}

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    /// A hard link to an earlier entry (its path in the target).
    Hardlink(PathBuf),
}

/// One entry, its path already stripped and checked.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    kind: Kind,
    mode: u32,
    mtime: Option<u64>,
}

/// Why an archive is refused.
fn refused(archive: &Path, why: String) -> Error {
    Error::failed(format!(
        "Refusing to extract {}: {why}; nothing was extracted",
        archive.display()
    ))
}

/// `path` with `strip` leading components removed, checked to stay inside
/// the target. `Ok(None)`: nothing left after stripping.
fn inside_path(raw: &Path, strip: usize) -> std::result::Result<Option<PathBuf>, String> {
    let mut parts = Vec::new();
    for part in raw.components() {
        match part {
            PathPart::Normal(p) => parts.push(p),
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                return Err(format!("the entry {} contains `..`", raw.display()))
            }
            PathPart::RootDir | PathPart::Prefix(_) => {
                return Err(format!("the entry {} is an absolute path", raw.display()))
            }
        }
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(parts[strip..].iter().collect()))
}

/// Whether a symlink at `entry` pointing to `to` stays inside the target.
fn link_stays_inside(entry: &Path, to: &Path) -> bool {
    if to.is_absolute() {
        return false;
    }
    let mut depth: usize = entry.components().count().saturating_sub(1);
    for part in to.components() {
        match part {
            PathPart::Normal(_) => depth += 1,
            PathPart::CurDir => {}
            PathPart::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            PathPart::RootDir | PathPart::Prefix(_) => return false,
        }
    }
    true
}

/// The archive's entries, checked; the first bad one refuses the archive.
fn read_entries(archive: &Path, format: Format, strip: usize) -> Result<Vec<Entry>> {
    let raw = match format {
        Format::Zip => zip_entries(archive)?,
        _ => tar_entries(archive, format)?,
    };
    let mut out = Vec::new();
    for (raw_path, kind, mode, mtime) in raw {
        let Some(path) = inside_path(&raw_path, strip).map_err(|e| refused(archive, e))? else {
            continue;
        };
        let kind = match kind {
            Kind::Symlink(to) => {
                if !link_stays_inside(&path, &to) {
                    return Err(refused(
                        archive,
                        format!(
                            "the link {} points outside the target ({})",
                            raw_path.display(),
                            to.display()
                        ),
                    ));
                }
                Kind::Symlink(to)
            }
            Kind::Hardlink(to) => match inside_path(&to, strip).map_err(|e| refused(archive, e))? {
                Some(to) => Kind::Hardlink(to),
                None => {
                    return Err(refused(
                        archive,
                        format!(
                            "the hard link {} points outside the target ({})",
                            raw_path.display(),
                            to.display()
                        ),
                    ))
                }
            },
            other => other,
        };
        out.push(Entry {
            path,
            kind,
            mode,
            mtime,
        });
    }
    Ok(out)
}

type RawEntry = (PathBuf, Kind, u32, Option<u64>);

fn open(archive: &Path) -> Result<fs::File> {
    fs::File::open(archive).map_err(|e| Error::io(format!("opening {}", archive.display()), e))
}

/// The tar format the archive's first bytes say (its compression), or
/// `None` when they name none (a plain tar, or too short to tell).
fn sniff_tar(archive: &Path) -> Result<Option<Format>> {
    let mut head = [0u8; 6];
    let mut file = open(archive)?;
    let n = crate::file::atomic::read_full(&mut file, &mut head)
        .map_err(|e| Error::io(format!("reading {}", archive.display()), e))?;
    let head = &head[..n];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::TarGz)
    } else if head.starts_with(b"BZh") {
        Some(Format::TarBz2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::TarXz)
    } else {
        None
    })
}

/// A decompressing reader for a tar format; the compression the content
/// shows wins over the one the name says.
fn tar_reader(archive: &Path, format: Format) -> Result<Box<dyn Read>> {
    let format = sniff_tar(archive)?.unwrap_or(match format {
        Format::Zip => Format::Zip,
        _ => Format::Tar,
    });
    let file = std::io::BufReader::new(open(archive)?);
    Ok(match format {
        Format::TarGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Format::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Format::TarXz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        _ => Box::new(file),
    })
}

fn damaged(archive: &Path, e: impl std::fmt::Display) -> Error {
    Error::failed(format!(
        "Cannot read the archive {}: {e}",
        archive.display()
    ))
}

fn tar_entries(archive: &Path, format: Format) -> Result<Vec<RawEntry>> {
    let mut tar = tar::Archive::new(tar_reader(archive, format)?);
    let mut out = Vec::new();
    for entry in tar.entries().map_err(|e| damaged(archive, e))? {
        let entry = entry.map_err(|e| damaged(archive, e))?;
        let path = entry.path().map_err(|e| damaged(archive, e))?.into_owned();
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().ok();
        let link = || -> Result<PathBuf> {
            entry
                .link_name()
                .map_err(|e| damaged(archive, e))?
                .map(|l| l.into_owned())
                .ok_or_else(|| {
                    damaged(
                        archive,
                        format!("the link {} has no target", path.display()),
                    )
                })
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink(link()?),
            tar::EntryType::Link => Kind::Hardlink(link()?),
            // Extended headers are consumed by the tar crate's iterator.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(refused(
                    archive,
                    format!(
                        "the entry {} is a {other:?}, which batou does not create",
                        path.display()
                    ),
                ))
            }
        };
        out.push((path, kind, mode, mtime));
    }
    Ok(out)
}

fn zip_archive(archive: &Path) -> Result<zip::ZipArchive<fs::File>> {
    zip::ZipArchive::new(open(archive)?).map_err(|e| damaged(archive, e))
}

fn zip_entries(archive: &Path) -> Result<Vec<RawEntry>> {
    let mut zip = zip_archive(archive)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| damaged(archive, e))?;
        let path = PathBuf::from(file.name());
        let mode = file
            .unix_mode()
            .unwrap_or(if file.is_dir() { 0o755 } else { 0o644 });
        let kind = if file.is_dir() {
            Kind::Dir
        } else if file.is_symlink() {
            let mut to = String::new();
            file.read_to_string(&mut to)
                .map_err(|e| damaged(archive, e))?;
            Kind::Symlink(PathBuf::from(to))
        } else {
            Kind::File
        };
        let mtime = file.last_modified().map(|t| {
            unix_time(
                t.year().into(),
                t.month().into(),
                t.day().into(),
                u64::from(t.hour()) * 3600 + u64::from(t.minute()) * 60 + u64::from(t.second()),
            )
        });
        out.push((path, kind, mode, mtime));
    }
    Ok(out)
}

/// Seconds since 1970 of a UTC date and second of day (zip stores local
/// time without a zone; it is taken as UTC, as Info-ZIP does with `-X`).
fn unix_time(year: i64, month: i64, day: i64, second_of_day: u64) -> u64 {
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).unwrap_or(0) * 86_400 + second_of_day
}

/// Writes one regular file's bytes from `input` into the target.
fn write_file(target: &Path, entry: &Entry, input: &mut dyn Read) -> std::io::Result<()> {
    let dest = target.join(&entry.path);
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
        safe_fs::remove(&dest)?;
    }
    let mut out = AtomicFile::create(&dest, entry.mode & 0o777)?;
    std::io::copy(input, &mut out)?;
    if let Some(mtime) = entry.mtime {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
        out.file().set_modified(when)?;
    }
    out.commit()
}

/// Creates what an entry is (files come with their content separately).
fn place(target: &Path, entry: &Entry) -> std::io::Result<()> {
    let dest = target.join(&entry.path);
    if let Some(parent) = entry.path.parent() {
        safe_fs::make_dirs(target, parent)?;
    }
    match &entry.kind {
        Kind::Dir => safe_fs::make_dirs(target, &entry.path),
        Kind::Symlink(to) => {
            safe_fs::remove(&dest)?;
            std::os::unix::fs::symlink(to, &dest)
        }
        Kind::Hardlink(to) => {
            let source = target.join(to);
            let is_file = fs::symlink_metadata(&source).is_ok_and(|m| m.is_file());
            if !is_file || safe_fs::has_link_in_parents(target, to) {
                return Err(std::io::Error::other(format!(
                    "the hard link {} needs {} to be a file extracted before it",
                    entry.path.display(),
                    to.display()
                )));
            }
            safe_fs::remove(&dest)?;
            fs::hard_link(source, &dest)
        }
        Kind::File => Ok(()),
    }
}

/// Extracts the checked `entries` of the archive into `target`.
fn extract(
    archive: &Path,
    format: Format,
    strip: usize,
    target: &Path,
    entries: &[Entry],
) -> Result<()> {
    let by_path: BTreeMap<&Path, &Entry> = entries.iter().map(|e| (e.path.as_path(), e)).collect();
    let ctx = |e: std::io::Error| {
        Error::io(
            format!("extracting {} into {}", archive.display(), target.display()),
            e,
        )
    };
    fs::create_dir_all(target).map_err(ctx)?;
    let visit = |path: PathBuf, data: &mut dyn Read| -> Result<()> {
        let Some(stripped) = inside_path(&path, strip).ok().flatten() else {
            return Ok(());
        };
        let Some(entry) = by_path.get(stripped.as_path()) else {
            return Ok(());
        };
        place(target, entry).map_err(ctx)?;
        if entry.kind == Kind::File {
            write_file(target, entry, data).map_err(ctx)?;
        }
        Ok(())
    };
    match format {
        Format::Zip => {
            let mut zip = zip_archive(archive)?;
            for i in 0..zip.len() {
                let mut file = zip.by_index(i).map_err(|e| damaged(archive, e))?;
                let path = PathBuf::from(file.name());
                visit(path, &mut file)?;
            }
        }
        _ => {
            let mut tar = tar::Archive::new(tar_reader(archive, format)?);
            for entry in tar.entries().map_err(|e| damaged(archive, e))? {
                let mut entry = entry.map_err(|e| damaged(archive, e))?;
                let path = entry.path().map_err(|e| damaged(archive, e))?.into_owned();
                visit(path, &mut entry)?;
            }
        }
    }
    // Directories get their modes last (a read-only one is filled first),
    // always writable by the owner.
    for entry in entries.iter().filter(|e| e.kind == Kind::Dir) {
        use std::os::unix::fs::PermissionsExt;
        let dir = target.join(&entry.path);
        fs::set_permissions(
            &dir,
            fs::Permissions::from_mode((entry.mode & 0o777) | 0o700),
        )
        .map_err(ctx)?;
    }
    Ok(())
}

/// The marker of an extraction: in the target (which the extraction
/// writes anyway; the archive's directory may not be writable), one per
/// archive path, so one archive extracted into two targets, or two
/// archives into one, each keep their own.
fn marker_path(archive: &Path, target: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = crate::checksum::Algorithm::Sha256.digest(archive.as_os_str().as_encoded_bytes());
    target.join(format!(".batou-extracted-{name}-{}", &id[..12]))
}

fn marker_text(archive: &Path, archive_hash: &str, strip: usize) -> String {
    format!(
        "archive={}\nsha256:{archive_hash}\nstrip={strip}\n",
        archive.display()
    )
}

fn sha256_of(path: &Path) -> Result<String> {
    crate::checksum::Algorithm::Sha256
        .digest_file(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

fn ctime(meta: &fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (meta.ctime(), meta.ctime_nsec())
}

/// The state an extractor converges to.
#[derive(Debug, Clone, Default)]
struct Plan {
    archive: PathBuf,
    target: PathBuf,
    strip: usize,
    format: Option<Format>,
}

impl Plan {
    fn format(&self) -> Result<Format> {
        self.format
            .ok_or_else(|| Error::usage("the extractor was not configured"))
    }

    fn verify(&self) -> Result<()> {
        let archive_meta = match fs::metadata(&self.archive) {
            Ok(m) => m,
            // Not there yet (a Download before us makes it): extract then.
            Err(_) => {
                return Err(Error::update_needed(format!(
                    "{} is missing",
                    self.archive.display()
                )))
            }
        };
        let hash = sha256_of(&self.archive)?;
        let marker =
            fs::read_to_string(marker_path(&self.archive, &self.target)).unwrap_or_default();
        ensure!(
            marker == marker_text(&self.archive, &hash, self.strip),
            "{} was not extracted into {} yet",
            self.archive.display(),
            self.target.display()
        );
        let entries = read_entries(&self.archive, self.format()?, self.strip)?;
        let since = ctime(&archive_meta);
        for entry in entries.iter().filter(|e| e.kind == Kind::File) {
            let path = self.target.join(&entry.path);
            let current =
                fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && ctime(&m) >= since);
            ensure!(current, "{} is older than the archive", path.display());
        }
        Ok(())
    }

    fn update(&self) -> Result<()> {
        let format = self.format()?;
        if !self.archive.is_file() {
            return Err(Error::failed(format!(
                "The archive {} does not exist",
                self.archive.display()
            )));
        }
        // Every entry is checked before anything is written.
        let entries = read_entries(&self.archive, format, self.strip)?;
        let hash = sha256_of(&self.archive)?;
        extract(&self.archive, format, self.strip, &self.target, &entries)?;
        let marker = marker_path(&self.archive, &self.target);
        safe_fs::write_atomic(
            &marker,
            marker_text(&self.archive, &hash, self.strip).as_bytes(),
            0o644,
        )
        .map_err(|e| Error::io(format!("writing {}", marker.display()), e))
    }
}

/// Extracts `archive` (relative to the workdir) by its suffix, through
/// [`Untar`] or [`Unzip`].
#[component(namevar = archive)]
#[derive(Debug)]
pub struct Extract {
    /// The archive file.
    archive: String,
    /// Directory to extract into (default: the archive's path without
    /// its suffix).
    #[attribute]
    target: Option<String>,
    /// Extract into `target` (created if missing); `false` extracts into
    /// the workdir.
    #[attribute(default = true)]
    create_target_dir: bool,
    /// Leading path components to strip from every entry.
    #[attribute(default = 0)]
    strip: u32,
}

impl Component for Extract {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let archive = cx.map(&self.archive).to_string_lossy().into_owned();
        let name = file_name(&archive);
        let Some((format, _)) = Format::of(&name) else {
            return Err(Error::usage(format!(
                "No handler found for archive '{archive}' (known: .tar, .tar.gz, .tgz, .tar.bz2, .tbz2, .tar.xz, .txz, .zip)"
            )));
        };
        match format {
            Format::Zip => {
                cx.add(
                    Unzip::new(archive)
                        .target(self.target.clone())
                        .create_target_dir(self.create_target_dir)
                        .strip(self.strip),
                );
            }
            _ => {
                cx.add(
                    Untar::new(archive)
                        .target(self.target.clone())
                        .create_target_dir(self.create_target_dir)
                        .strip(self.strip),
                );
            }
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        Some(file_name(&self.archive))
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// Shared configure of Untar and Unzip: the target directory (as a
/// `Directory` sub-component when `create_target_dir`).
fn configure_extractor(
    cx: &mut Configure,
    archive: &str,
    target: &Option<String>,
    create_target_dir: bool,
    strip: u32,
    allowed: fn(Format) -> bool,
    what: &str,
) -> Result<Plan> {
    let archive = cx.map(archive);
    let name = file_name(&archive.to_string_lossy());
    let Some((format, _)) = Format::of(&name).filter(|(f, _)| allowed(*f)) else {
        return Err(Error::usage(format!(
            "{what} cannot extract '{}'",
            archive.display()
        )));
    };
    let target = if create_target_dir {
        let target = match target.clone().filter(|t| !t.is_empty()) {
            Some(t) => cx.map(t),
            None => {
                let full = archive.to_string_lossy();
                let base = Format::of(&full)
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default();
                if base.is_empty() || base.ends_with('/') {
                    return Err(Error::usage(format!(
                        "Target not given and not derivable from archive name ({})",
                        archive.display()
                    )));
                }
                PathBuf::from(base)
            }
        };
        cx.add(Directory::new(target.to_string_lossy().into_owned()).leading(true));
        target
    } else {
        cx.map(".")
    };
    Ok(Plan {
        archive,
        target,
        strip: strip as usize,
        format: Some(format),
    })
}

/// Declares an extractor component: the same attributes and steps, the
/// formats it accepts.
macro_rules! extractor {
    ($(#[$doc:meta])* $name:ident, $accepts:expr) => {
        $(#[$doc])*
        #[component(namevar = archive)]
        #[derive(Debug)]
        pub struct $name {
            /// The archive file.
            archive: String,
            /// Directory to extract into.
            #[attribute]
            target: Option<String>,
            /// Extract into `target`; `false`: into the workdir.
            #[attribute(default = true)]
            create_target_dir: bool,
            /// Leading path components to strip.
            #[attribute(default = 0)]
            strip: u32,
            plan: Plan,
        }

        impl Component for $name {
            fn configure(&mut self, cx: &mut Configure) -> Result<()> {
                self.plan = configure_extractor(
                    cx,
                    &self.archive,
                    &self.target,
                    self.create_target_dir,
                    self.strip,
                    $accepts,
                    stringify!($name),
                )?;
                self.archive = self.plan.archive.to_string_lossy().into_owned();
                Ok(())
            }
            fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
                self.plan.verify()
            }
            fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
                self.plan.update()
            }
            fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
                Some(file_name(&self.archive))
            }
        }
    };
}

extractor!(
    /// Unpacks a tar archive (plain, gzip, bzip2 or xz).
    Untar,
    |f| f != Format::Zip
);

extractor!(
    /// Unpacks a zip archive.
    Unzip,
    |f| f == Format::Zip
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped_and_must_stay_inside() {
        assert_eq!(
            inside_path(Path::new("a/b/c"), 1),
            Ok(Some(PathBuf::from("b/c")))
        );
        assert_eq!(
            inside_path(Path::new("./a/b"), 0),
            Ok(Some(PathBuf::from("a/b")))
        );
        assert_eq!(inside_path(Path::new("a"), 1), Ok(None));
        assert!(inside_path(Path::new("a/../../etc"), 0)
            .unwrap_err()
            .contains("`..`"));
        assert!(inside_path(Path::new("/etc/passwd"), 0)
            .unwrap_err()
            .contains("absolute"));
    }

    #[test]
    fn links_must_point_inside() {
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../b")));
        assert!(link_stays_inside(Path::new("l"), Path::new("b/c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../x")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("/etc")));
        assert!(!link_stays_inside(
            Path::new("a/l"),
            Path::new("b/../../../x")
        ));
    }

    #[test]
    fn zip_dates_become_unix_times() {
        assert_eq!(unix_time(1970, 1, 1, 0), 0);
        assert_eq!(unix_time(2000, 3, 1, 3661), 951_872_461);
        assert_eq!(unix_time(2024, 2, 29, 0), 1_709_164_800);
    }
}
