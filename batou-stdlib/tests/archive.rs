//! Extract with archives made by the real tar and zip (and Python's
//! tarfile/zipfile for archives no honest tool makes).

mod common;

use batou::testing::TestRoot;
use batou_stdlib::archive::{Extract, Untar, Unzip};
use common::{sh, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A source tree `pkg-1.0/` in `dir/src`: an executable script, a file
/// deep down, a symlink inside, an old mtime.
fn source_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("pkg-1.0/bin")).unwrap();
    std::fs::create_dir_all(src.join("pkg-1.0/share/doc")).unwrap();
    std::fs::write(src.join("pkg-1.0/bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        src.join("pkg-1.0/bin/run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::write(src.join("pkg-1.0/share/doc/README"), "read me\n").unwrap();
    std::os::unix::fs::symlink("share/doc/README", src.join("pkg-1.0/README")).unwrap();
    sh(
        &src,
        "touch -d '2020-01-02 03:04:05 UTC' pkg-1.0/share/doc/README",
    );
    src
}

/// The workdir of an `extract` root, with `archive` copied into it.
fn workdir_with(dir: &Path, archive: &Path) -> PathBuf {
    workdir_of(dir, "extract", archive)
}

/// The workdir of root `root`, with `archive` copied into it.
fn workdir_of(dir: &Path, root: &str, archive: &Path) -> PathBuf {
    let work = dir.join("work").join(root);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(archive, work.join(archive.file_name().unwrap())).unwrap();
    work
}

fn assert_tree(root: &Path) {
    assert_eq!(
        std::fs::read_to_string(root.join("bin/run.sh")).unwrap(),
        "#!/bin/sh\necho run\n"
    );
    let mode = std::fs::metadata(root.join("bin/run.sh")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o750);
    assert_eq!(
        std::fs::read_link(root.join("README")).unwrap(),
        PathBuf::from("share/doc/README")
    );
    let mtime = std::fs::metadata(root.join("share/doc/README"))
        .unwrap()
        .mtime();
    assert_eq!(mtime, 1_577_934_245, "mtime kept");
}

#[test]
fn every_tar_compression_extracts_strips_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    for (name, flags) in [
        ("pkg-1.0.tar", "cf"),
        ("pkg-1.0.tar.gz", "czf"),
        ("pkg-1.0.tgz", "czf"),
        ("pkg-1.0.tar.bz2", "cjf"),
        ("pkg-1.0.tar.xz", "cJf"),
    ] {
        let case = tempfile::tempdir().unwrap();
        sh(
            &src,
            &format!("tar {flags} {}/{name} pkg-1.0", case.path().display()),
        );
        let work = workdir_with(case.path(), &case.path().join(name));

        // Default target: the archive's name without its suffix.
        let mut root = TestRoot::new(case.path());
        root.configure(Extract::new(name)).unwrap();
        assert!(root.predict().unwrap(), "{name}: predicted");
        assert!(
            !work.join("pkg-1.0").exists(),
            "{name}: -P extracts nothing"
        );
        assert!(root.deploy().unwrap(), "{name}");
        assert_tree(&work.join("pkg-1.0/pkg-1.0"));
        assert!(!root.deploy().unwrap(), "{name}: converged");

        // strip = 1 into a named target.
        let mut root = TestRoot::new(case.path());
        root.configure(Extract::new(name).target("app").strip(1))
            .unwrap();
        assert!(root.deploy().unwrap(), "{name}");
        assert_tree(&work.join("app"));
        assert!(!root.deploy().unwrap(), "{name}: converged");
    }
}

#[test]
fn zip_archives_and_extracting_into_the_workdir() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    sh(
        &src,
        &format!("zip -qry {}/pkg.zip pkg-1.0", dir.path().display()),
    );
    let work = workdir_with(dir.path(), &dir.path().join("pkg.zip"));
    let mut root = TestRoot::new(dir.path());
    root.configure(Extract::new("pkg.zip").create_target_dir(false))
        .unwrap();
    assert!(root.deploy().unwrap());
    let tree = work.join("pkg-1.0");
    assert_eq!(
        std::fs::read_to_string(tree.join("bin/run.sh")).unwrap(),
        "#!/bin/sh\necho run\n"
    );
    assert_eq!(
        std::fs::metadata(tree.join("bin/run.sh")).unwrap().mode() & 0o777,
        0o750
    );
    assert_eq!(
        std::fs::read_link(tree.join("README")).unwrap(),
        PathBuf::from("share/doc/README")
    );
    assert!(!root.deploy().unwrap(), "converged");

    // Unzip directly, with strip.
    let work = workdir_of(dir.path(), "unzip", &dir.path().join("pkg.zip"));
    let mut root = TestRoot::new(dir.path());
    root.configure(Unzip::new("pkg.zip").target("flat").strip(1))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert!(work.join("flat/bin/run.sh").is_file());
}

#[test]
fn a_changed_archive_is_extracted_again() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    sh(
        &src,
        &format!("tar czf {}/pkg.tar.gz pkg-1.0", dir.path().display()),
    );
    let work = workdir_of(dir.path(), "untar", &dir.path().join("pkg.tar.gz"));
    let mut root = TestRoot::new(dir.path());
    root.configure(Untar::new("pkg.tar.gz").strip(1)).unwrap();
    assert!(root.deploy().unwrap());
    assert!(!root.deploy().unwrap());
    std::fs::write(src.join("pkg-1.0/bin/run.sh"), "#!/bin/sh\necho v2\n").unwrap();
    sh(
        &src,
        &format!("tar czf {}/pkg.tar.gz pkg-1.0", work.display()),
    );
    assert!(root.deploy().unwrap(), "new archive, new extraction");
    assert_eq!(
        std::fs::read_to_string(work.join("pkg/bin/run.sh")).unwrap(),
        "#!/bin/sh\necho v2\n"
    );
    // A file that was extracted and then removed comes back.
    std::fs::remove_file(work.join("pkg/share/doc/README")).unwrap();
    assert!(root.deploy().unwrap());
    assert!(work.join("pkg/share/doc/README").is_file());
}

/// Makes an archive with Python (entries no tar would write).
fn python_archive(dir: &Path, script: &str) {
    common::run(dir, "python3", &["-c", script]);
}

#[test]
fn entries_that_leave_the_target_refuse_the_whole_archive() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work/extract");
    std::fs::create_dir_all(&work).unwrap();
    let tar = |name: &str, entries: &str| {
        python_archive(
            &work,
            &format!(
                "import tarfile, io\n\
                 t = tarfile.open('{name}', 'w:gz')\n\
                 def add(path, data=b'x', kind=tarfile.REGTYPE, link=''):\n\
                 \x20   i = tarfile.TarInfo(path); i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0\n\
                 \x20   t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)\n\
                 add('good/first.txt')\n{entries}\nt.close()\n"
            ),
        )
    };
    let cases = [
        (
            "dotdot.tar.gz",
            "add('good/../../evil.txt')",
            "the entry good/../../evil.txt contains `..`",
        ),
        (
            "absolute.tar.gz",
            "add('/tmp/evil.txt')",
            "the entry /tmp/evil.txt is an absolute path",
        ),
        (
            "linkout.tar.gz",
            "add('good/out', kind=tarfile.SYMTYPE, link='../../outside')",
            "the link good/out points outside the target (../../outside)",
        ),
        (
            "linkabs.tar.gz",
            "add('good/etc', kind=tarfile.SYMTYPE, link='/etc')",
            "the link good/etc points outside the target (/etc)",
        ),
        (
            "hardout.tar.gz",
            "add('good/h', kind=tarfile.LNKTYPE, link='../outside')",
            "the entry ../outside contains `..`",
        ),
        (
            "device.tar.gz",
            "add('good/dev', kind=tarfile.CHRTYPE)",
            "the entry good/dev is a Char, which batou does not create",
        ),
    ];
    for (name, entries, message) in cases {
        tar(name, entries);
        let mut root = TestRoot::new(dir.path());
        root.configure(Extract::new(name).target("t")).unwrap();
        let out = text(&root.deploy().unwrap_err());
        assert!(
            out.contains(&format!(
                "Refusing to extract {}: {message}; nothing was extracted",
                work.join(name).display()
            )),
            "{name}: {out}"
        );
        assert!(
            !work.join("t/good/first.txt").exists(),
            "{name}: nothing written"
        );
        assert!(!dir.path().join("evil.txt").exists() && !Path::new("/tmp/evil.txt").exists());
    }

    // A zip whose names leave the target.
    python_archive(
        &work,
        "import zipfile\nz = zipfile.ZipFile('bad.zip', 'w')\nz.writestr('ok.txt', 'x')\nz.writestr('../../evil.txt', 'x')\nz.close()\n",
    );
    let mut root = TestRoot::new(dir.path());
    root.configure(Extract::new("bad.zip").target("z")).unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains("the entry ../../evil.txt contains `..`"),
        "{out}"
    );
    assert!(!work.join("z/ok.txt").exists());

    // A symlink in the target is not followed: it is replaced.
    let outside = tempfile::tempdir().unwrap();
    tar("through.tar.gz", "add('good/sub/f.txt', b'inside')");
    std::fs::create_dir_all(work.join("t2/good")).unwrap();
    std::os::unix::fs::symlink(outside.path(), work.join("t2/good/sub")).unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Extract::new("through.tar.gz").target("t2"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing written outside"
    );
    assert_eq!(
        std::fs::read(work.join("t2/good/sub/f.txt")).unwrap(),
        b"inside"
    );
}

#[test]
fn unknown_suffixes_and_missing_or_damaged_archives() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    let reports = root.configure(Extract::new("notes.rar")).unwrap_err();
    assert!(
        reports[0].title.contains("No handler found for archive"),
        "{:?}",
        reports[0]
    );
    assert!(reports[0].title.contains("notes.rar"), "{:?}", reports[0]);

    let work = dir.path().join("work/extract");
    let mut root = TestRoot::new(dir.path());
    root.configure(Extract::new("later.tar.gz")).unwrap();
    // Not there yet (made by a Download before it): predicted as a change.
    assert!(root.predict().unwrap());
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "The archive {} does not exist",
            work.join("later.tar.gz").display()
        )),
        "{out}"
    );
    std::fs::write(work.join("later.tar.gz"), b"not gzip at all").unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "Cannot read the archive {}",
            work.join("later.tar.gz").display()
        )),
        "{out}"
    );
}

#[test]
fn one_archive_into_two_targets_converges_and_nothing_is_written_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    sh(
        &src,
        &format!("tar czf {}/pkg.tar.gz pkg-1.0", dir.path().display()),
    );
    let work = workdir_with(dir.path(), &dir.path().join("pkg.tar.gz"));
    let beside: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let root = |target: &str| {
        let mut root = TestRoot::new(dir.path());
        root.configure(Extract::new("pkg.tar.gz").target(target).strip(1))
            .unwrap();
        root
    };
    let (mut a, mut b) = (root("a"), root("b"));
    assert!(a.deploy().unwrap());
    assert!(b.deploy().unwrap());
    assert!(!a.deploy().unwrap(), "a converged after b was extracted");
    assert!(!b.deploy().unwrap(), "b converged");
    assert_tree(&work.join("a"));
    assert_tree(&work.join("b"));
    let mut after: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "a" && n != "b")
        .collect();
    after.sort();
    assert_eq!(after, beside, "the archive's directory is only read");
}

#[test]
fn the_compression_is_read_from_the_content_as_tar_does() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    // A plain tar named .tar.gz, and a gzipped one named .tar.
    sh(
        &src,
        &format!("tar cf {}/plain.tar.gz pkg-1.0", dir.path().display()),
    );
    sh(
        &src,
        &format!("tar czf {}/zipped.tar pkg-1.0", dir.path().display()),
    );
    for name in ["plain.tar.gz", "zipped.tar"] {
        let work = workdir_with(dir.path(), &dir.path().join(name));
        let mut root = TestRoot::new(dir.path());
        root.configure(Extract::new(name).target(name.replace('.', "-")).strip(1))
            .unwrap();
        assert!(root.deploy().unwrap(), "{name}");
        assert_tree(&work.join(name.replace('.', "-")));
        assert!(!root.deploy().unwrap(), "{name}: converged");
    }
}
