//! Behaviour of the File family on real files.

use batou::testing::TestRoot;
use batou_stdlib::file::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn root() -> (tempfile::TempDir, TestRoot) {
    let dir = tempfile::tempdir().unwrap();
    let root = TestRoot::new(dir.path());
    (dir, root)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn file_with_content_and_mode_converges() {
    let (dir, mut r) = root();
    r.configure(
        File::new("a/b.txt")
            .content("hello {{ component.path }}\n")
            .mode(0o640)
            .leading(true),
    )
    .unwrap();
    assert!(r.deploy().unwrap());
    let p = dir.path().join("work/file/a/b.txt");
    let expected = format!("hello {}\n", p.display());
    assert_eq!(fs::read_to_string(&p).unwrap(), expected);
    assert_eq!(mode(&p), 0o640);
    let out = r.take_output();
    assert!(
        out.contains(&"🚀 localhost: File('work/file/a/b.txt') > Presence('b.txt')".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&format!("  b.txt +{}", expected.trim_end())),
        "{out:?}"
    );
    assert!(!r.deploy().unwrap());
    assert!(r.take_output().is_empty());
}

#[test]
fn empty_content_empties_a_file() {
    let (dir, mut r) = root();
    let p = dir.path().join("work/file/x");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, "old\n").unwrap();
    r.configure(File::new("x").content("")).unwrap();
    assert!(r.deploy().unwrap());
    assert_eq!(fs::read(&p).unwrap(), b"");
}

#[test]
fn implicit_source_is_required_and_explained() {
    let (_dir, mut r) = root();
    let err = r.configure(File::new("missing.conf")).unwrap_err();
    let text: Vec<String> = err.iter().flat_map(|e| e.lines()).map(|l| l.text).collect();
    assert!(
        text.iter()
            .any(|l| l.contains("Missing implicit template file") && l.contains("missing.conf")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|l| l.contains(".content(\"\")")),
        "{text:?}"
    );
}

#[test]
fn templates_from_source_and_binary_files() {
    let (dir, mut r) = root();
    fs::write(dir.path().join("t.cfg"), "port={{ 40 + 2 }}\n").unwrap();
    fs::write(dir.path().join("blob"), [0u8, 159, 146, 150, b'{', b'{']).unwrap();
    r.configure(File::new("t.cfg")).unwrap();
    r.deploy().unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("work/file/t.cfg")).unwrap(),
        "port=42\n"
    );

    let mut b = TestRoot::new(dir.path());
    b.configure(BinaryFile::new("blob")).unwrap();
    assert!(b.deploy().unwrap());
    assert_eq!(
        fs::read(dir.path().join("work/binaryfile/blob")).unwrap(),
        [0u8, 159, 146, 150, b'{', b'{']
    );
    assert!(b
        .take_output()
        .contains(&"Not showing diff for binary data.".to_string()));
}

#[test]
fn sensitive_content_is_never_shown() {
    let (_dir, mut r) = root();
    r.configure(
        File::new("secret")
            .content("password=hunter2\n")
            .sensitive_data(true),
    )
    .unwrap();
    r.deploy().unwrap();
    let out = r.take_output();
    assert!(out.contains(&"Not showing diff as it contains sensitive data.".to_string()));
    assert!(!out.iter().any(|l| l.contains("hunter2")), "{out:?}");

    // Auto mode: a secret value of the environment hides the diff.
    let dir2 = tempfile::tempdir().unwrap();
    let mut r2 = TestRoot::new(dir2.path()).with_secrets(&["s3cret"]);
    r2.configure(File::new("cfg").content("user = a\npass = s3cret\n"))
        .unwrap();
    r2.deploy().unwrap();
    let out = r2.take_output();
    assert!(!out.iter().any(|l| l.contains("s3cret")), "{out:?}");
}

#[test]
fn long_diffs_are_shortened() {
    let (_dir, mut r) = root();
    let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
    r.configure(File::new("long").content(text)).unwrap();
    r.deploy().unwrap();
    let out = r.take_output();
    assert!(
        out.contains(&"More than 200 lines of diff. Showing first and last 50 lines.".to_string())
    );
    assert!(out
        .iter()
        .any(|l| l.starts_with("see ") && l.ends_with(" for the full diff.")));
    // The first 50 diff lines include the 3 header lines.
    assert_eq!(
        out.iter().filter(|l| l.starts_with("  long +line")).count(),
        97
    );
    assert!(out.contains(&"  long ...".to_string()));
}

#[test]
fn directory_sync_with_exclude_and_delete() {
    let (dir, _) = root();
    let src = dir.path().join("static");
    fs::create_dir_all(src.join("css")).unwrap();
    fs::write(src.join("index.html"), "<h1>hi</h1>").unwrap();
    fs::write(src.join("css/site.css"), "body{}").unwrap();
    fs::write(src.join("notes.tmp"), "skip me").unwrap();
    std::os::unix::fs::symlink("index.html", src.join("home.html")).unwrap();

    let mut r = TestRoot::new(dir.path());
    r.configure(
        Directory::new("site")
            .source("static")
            .exclude(vec!["*.tmp"])
            .delete(true),
    )
    .unwrap();
    assert!(r.deploy().unwrap());
    let dst = dir.path().join("work/directory/site");
    assert_eq!(
        fs::read_to_string(dst.join("css/site.css")).unwrap(),
        "body{}"
    );
    assert_eq!(
        fs::read_link(dst.join("home.html")).unwrap(),
        Path::new("index.html")
    );
    assert!(!dst.join("notes.tmp").exists());
    assert!(!r.deploy().unwrap());

    // Removed from the source: deleted from the target (batou's rsync never does).
    fs::remove_file(src.join("css/site.css")).unwrap();
    fs::write(dst.join("stray"), "x").unwrap();
    assert!(r.deploy().unwrap());
    assert!(!dst.join("css/site.css").exists());
    assert!(!dst.join("stray").exists());
    assert!(dst.join("index.html").exists());
}

#[test]
fn symlinks_directories_and_purge() {
    let (dir, mut r) = root();
    r.configure(File::new("link").ensure("symlink").link_to("/etc/hostname"))
        .unwrap();
    assert!(r.deploy().unwrap());
    let link = dir.path().join("work/file/link");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/etc/hostname"));
    assert!(!r.deploy().unwrap());

    let mut d = TestRoot::new(dir.path());
    d.configure(
        File::new("sub/dir")
            .ensure("directory")
            .leading(true)
            .mode("rwxr-x---"),
    )
    .unwrap();
    d.deploy().unwrap();
    let sub = dir.path().join("work/file/sub/dir");
    assert!(sub.is_dir());
    assert_eq!(mode(&sub), 0o750);

    let work = dir.path().join("work/purge");
    fs::create_dir_all(work.join("old-1")).unwrap();
    fs::write(work.join("old-2"), "").unwrap();
    fs::write(work.join("keep"), "").unwrap();
    let mut p = TestRoot::new(dir.path());
    p.configure(Purge::new("old-*")).unwrap();
    assert!(p.deploy().unwrap());
    assert!(!work.join("old-1").exists() && !work.join("old-2").exists());
    assert!(work.join("keep").exists());
    assert!(!p.deploy().unwrap());
}

#[test]
fn owner_and_group_by_name_or_id() {
    let (dir, mut r) = root();
    let uid = unsafe { libc::getuid() };
    let gid = unsafe { libc::getgid() };
    r.configure(
        File::new("owned")
            .content("x")
            .owner(uid.to_string())
            .group(gid.to_string()),
    )
    .unwrap();
    r.deploy().unwrap();
    let m = fs::metadata(dir.path().join("work/file/owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    assert!(!r.deploy().unwrap());

    let mut bad = TestRoot::new(dir.path());
    bad.configure(File::new("owned").content("x").owner("no-such-user-batou"))
        .unwrap();
    let err = bad.deploy().unwrap_err();
    assert!(
        err.iter()
            .any(|l| l.text.contains("unknown user \"no-such-user-batou\"")),
        "{err:?}"
    );
}

#[test]
fn json_and_yaml_content_with_overrides() {
    let (dir, mut r) = root();
    r.configure(
        JSONContent::new("app.json")
            .data(Some(serde_json::json!({"b": [1], "a": {"x": 1}})))
            .overrides(Some(serde_json::json!({"b": [2], "a": {"y": 2}}))),
    )
    .unwrap();
    r.deploy().unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("work/jsoncontent/app.json")).unwrap(),
        "{\n    \"a\": {\n        \"x\": 1,\n        \"y\": 2\n    },\n    \"b\": [\n        1,\n        2\n    ]\n}"
    );

    fs::write(dir.path().join("base.yaml"), "name: app\nports: [80]\n").unwrap();
    let mut y = TestRoot::new(dir.path());
    y.configure(
        YAMLContent::new("app.yaml")
            .source("base.yaml")
            .overrides(Some(serde_json::json!({"ports": [443]}))),
    )
    .unwrap();
    y.deploy().unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("work/yamlcontent/app.yaml")).unwrap(),
        "name: app\nports:\n- 80\n- 443\n"
    );
}

#[test]
fn predicting_changes_nothing() {
    let (dir, mut r) = root();
    r.configure(File::new("p").content("x").mode(0o600))
        .unwrap();
    assert!(r.predict().unwrap());
    assert!(!dir.path().join("work").exists());
    assert!(r.take_output().iter().any(|l| l.contains("Content('p')")));
}

#[test]
fn bad_modes_are_conversion_errors() {
    let (_dir, mut r) = root();
    let err = r
        .configure(File::new("m").content("x").mode("rwxrwxrwz"))
        .unwrap_err();
    let lines: Vec<String> = err.iter().flat_map(|e| e.lines()).map(|l| l.text).collect();
    assert!(
        lines.contains(
            &"ERROR: Mode-string should be between `---------` and `rwxrwxrwx`.".to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"      Attribute: File('m').mode".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"     Conversion: convert_mode('rwxrwxrwz')".to_string()),
        "{lines:?}"
    );
}

#[test]
fn unknown_owner_fails_before_the_content_is_written() {
    let (dir, mut r) = root();
    r.configure(File::new("owned").content("x").owner("no-such-user-batou"))
        .unwrap();
    let err = r.deploy().unwrap_err();
    assert!(
        err.iter()
            .any(|l| l.text.contains("unknown user \"no-such-user-batou\" for ")),
        "{err:?}"
    );
    assert!(!dir.path().join("work/file/owned").exists());
    let mut g = TestRoot::new(dir.path());
    g.configure(
        File::new("grouped")
            .content("x")
            .group("no-such-group-batou"),
    )
    .unwrap();
    let err = g.deploy().unwrap_err();
    assert!(
        err.iter()
            .any(|l| l.text.contains("unknown group \"no-such-group-batou\"")),
        "{err:?}"
    );
    assert!(!dir.path().join("work/file/grouped").exists());
}

#[test]
fn numeric_ids_out_of_range_are_configuration_errors() {
    let (_dir, mut r) = root();
    let err = r
        .configure(File::new("g").content("x").group("4294967295"))
        .unwrap_err();
    let lines: Vec<String> = err.iter().flat_map(|e| e.lines()).map(|l| l.text).collect();
    assert!(
        lines.iter().any(|l| l
            .contains("File(\"g\"): group 4294967295 is out of range (0 to 4294967294)")
            || l.contains("group 4294967295 is out of range (0 to 4294967294)")),
        "{lines:?}"
    );
}

#[test]
fn private_files_never_exist_with_wider_modes_and_keep_no_diff() {
    let (dir, mut r) = root();
    let text: String = (0..500).map(|i| format!("secret line {i}\n")).collect();
    r.configure(File::new("key").content(text).mode(0o600))
        .unwrap();
    assert!(r.deploy().unwrap());
    let p = dir.path().join("work/file/key");
    assert_eq!(mode(&p), 0o600);
    let out = r.take_output();
    assert!(
        out.contains(&"More than 200 lines of diff. Showing first and last 50 lines.".to_string())
    );
    assert!(
        !out.iter().any(|l| l.starts_with("see ")),
        "a diff of a private file is not saved: {out:?}"
    );
    assert!(!dir.path().join("work/.batou-diffs").exists());
}

#[test]
fn saved_diffs_are_private_capped_and_never_written_when_predicting() {
    let (dir, mut r) = root();
    let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
    r.configure(File::new("long").content(text.clone()))
        .unwrap();
    assert!(r.predict().unwrap());
    assert!(
        !dir.path().join("work").exists(),
        "-P writes nothing, not even a diff"
    );
    r.deploy().unwrap();
    let diffs = dir.path().join("work/.batou-diffs");
    let saved: Vec<_> = fs::read_dir(&diffs).unwrap().flatten().collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(mode(&saved[0].path()), 0o600);
    // Beyond the cap the oldest go: fill the directory with old diffs.
    let big = vec![b'x'; (SAVED_DIFFS_BYTES / 4) as usize];
    for i in 0..6 {
        fs::write(diffs.join(format!("old-{i}.diff")), &big).unwrap();
    }
    let mut r2 = TestRoot::new(dir.path());
    let other: String = (0..500).map(|i| format!("other {i}\n")).collect();
    r2.configure(File::new("long").content(other)).unwrap();
    r2.deploy().unwrap();
    let total: u64 = fs::read_dir(&diffs)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= SAVED_DIFFS_BYTES, "{total}");
    assert!(!diffs.join("old-0.diff").exists(), "the oldest went first");
}

#[test]
fn large_plain_files_are_copied_and_not_diffed() {
    let (dir, mut r) = root();
    let data: Vec<u8> = (0..(MAX_DIFF_BYTES as usize + 10))
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    fs::write(dir.path().join("big.txt"), &data).unwrap();
    r.configure(File::new("big.txt").is_template(false))
        .unwrap();
    assert!(r.deploy().unwrap());
    assert_eq!(
        fs::read(dir.path().join("work/file/big.txt")).unwrap(),
        data
    );
    let out = r.take_output();
    assert!(
        out.contains(&"Not showing diff: big.txt is larger than 4 MiB.".to_string()),
        "{out:?}"
    );
    assert!(!r.deploy().unwrap());
}

#[test]
fn directory_sync_never_writes_through_links_in_the_target() {
    let (dir, _) = root();
    let src = dir.path().join("static");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/page.html"), "p").unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let dst = dir.path().join("work/directory/site");
    fs::create_dir_all(&dst).unwrap();
    std::os::unix::fs::symlink("../../../outside", dst.join("sub")).unwrap();

    let mut r = TestRoot::new(dir.path());
    r.configure(Directory::new("site").source("static"))
        .unwrap();
    assert!(r.deploy().unwrap());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(fs::symlink_metadata(dst.join("sub")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(dst.join("sub/page.html")).unwrap(), "p");
    assert!(!r.deploy().unwrap(), "converges");
}

#[test]
fn secrets_hide_diffs_by_exact_substring_and_are_never_saved() {
    // A multi-word line of a secret file (batou's whitespace tokens never
    // match it) hides the diff.
    let dir = tempfile::tempdir().unwrap();
    let mut r = TestRoot::new(dir.path()).with_secrets(&["correct horse battery"]);
    r.configure(File::new("a").content("phrase: correct horse battery staple\n"))
        .unwrap();
    r.deploy().unwrap();
    let out = r.take_output();
    assert!(
        out.contains(&"Not showing diff as it contains sensitive data.".to_string()),
        "{out:?}"
    );
    assert!(!out.iter().any(|l| l.contains("horse")), "{out:?}");

    // A diff without the secret is shown, even when the words occur alone.
    let dir = tempfile::tempdir().unwrap();
    let mut r = TestRoot::new(dir.path()).with_secrets(&["correct horse battery"]);
    r.configure(File::new("b").content("horse\nbattery\n"))
        .unwrap();
    r.deploy().unwrap();
    assert!(r.take_output().iter().any(|l| l.contains("b +horse")));

    // Shown on request (sensitive_data = false), but a long diff that
    // holds a secret is never saved.
    let dir = tempfile::tempdir().unwrap();
    let mut r = TestRoot::new(dir.path()).with_secrets(&["tok3n"]);
    let text: String = (0..500).map(|i| format!("line {i} tok3n\n")).collect();
    r.configure(File::new("long").content(text).sensitive_data(false))
        .unwrap();
    r.deploy().unwrap();
    let out = r.take_output();
    assert!(out.iter().any(|l| l.contains("tok3n")), "shown on request");
    assert!(!out.iter().any(|l| l.starts_with("see ")), "{out:?}");
    assert!(!dir.path().join("work/.batou-diffs").exists());
}

/// What `Reader` saw in its verify.
static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Writes two files (the second a copy of the first) and reads both in its
/// own verify: a component that may look at anything.
#[batou::component]
pub struct Reader {}

impl batou::component::Component for Reader {
    fn configure(&mut self, cx: &mut batou::component::Configure) -> batou::Result<()> {
        let first = cx.workdir().join("first");
        cx.add(File::new("first").content("fresh\n"));
        cx.add(
            File::new("copy")
                .source(first.to_string_lossy().into_owned())
                .is_template(false),
        );
        Ok(())
    }
    fn verify(&mut self, cx: &mut batou::component::Deploy) -> batou::Result<()> {
        let mut seen = SEEN.lock().unwrap();
        for name in ["first", "copy"] {
            seen.push(fs::read_to_string(cx.workdir().join(name)).unwrap_or_default());
        }
        Ok(())
    }
}

#[test]
fn files_written_in_a_batch_are_in_place_before_anything_reads_them() {
    let (dir, mut r) = root();
    let work = dir.path().join("work/reader");
    fs::create_dir_all(&work).unwrap();
    // The copy's source exists when configuring, with the old content.
    fs::write(work.join("first"), "stale\n").unwrap();
    r.configure(Reader::new()).unwrap();
    assert!(r.deploy().unwrap());
    assert_eq!(*SEEN.lock().unwrap(), ["fresh\n", "fresh\n"]);
    assert_eq!(fs::read_to_string(work.join("copy")).unwrap(), "fresh\n");
    let mut names: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["copy", "first"], "no temp file left");
    assert!(!r.deploy().unwrap());
}

/// Sets `tweaked`'s mode to 0600 when it exits: a change to the disk that
/// is not an update.
#[batou::component]
pub struct Tweaker {}

impl batou::component::Component for Tweaker {
    fn exit(&mut self, cx: &mut batou::component::Deploy) -> batou::Result<()> {
        fs::set_permissions(
            cx.workdir().join("tweaked"),
            fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| batou::Error::io("tweaking", e))
    }
}

/// Checks `tweaked`'s mode, lets Tweaker change it, checks it again.
#[batou::component]
pub struct Twice {}

impl batou::component::Component for Twice {
    fn configure(&mut self, cx: &mut batou::component::Configure) -> batou::Result<()> {
        cx.add(Mode::new("tweaked").mode(0o644));
        cx.add(Tweaker::new());
        cx.add(Mode::new("tweaked").mode(0o644));
        Ok(())
    }
}

#[test]
fn what_a_check_saw_is_forgotten_when_something_else_ran() {
    let (dir, mut r) = root();
    let p = dir.path().join("work/twice/tweaked");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, "x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    r.configure(Twice::new()).unwrap();
    assert!(r.deploy().unwrap(), "the second check sees 0600");
    assert_eq!(mode(&p), 0o644);
}

/// Moves the directory `sub` away in its update while claiming to touch no
/// file: the batched file written into it can no longer be put in place.
#[batou::component]
pub struct Mover {}

impl batou::component::Component for Mover {
    fn verify(&mut self, _cx: &mut batou::component::Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut batou::component::Deploy) -> batou::Result<()> {
        fs::rename(cx.workdir().join("sub"), cx.workdir().join("moved"))
            .map_err(|e| batou::Error::io("moving", e))
    }
    fn footprint(&self) -> batou::component::Footprint<'_> {
        batou::component::Footprint::Files(Vec::new())
    }
}

/// A file, then Mover.
#[batou::component]
pub struct Lost {}

impl batou::component::Component for Lost {
    fn configure(&mut self, cx: &mut batou::component::Configure) -> batou::Result<()> {
        cx.add(File::new("sub/x").content("x\n").leading(true));
        cx.add(Mover::new());
        Ok(())
    }
}

#[test]
fn a_batched_file_that_cannot_be_put_in_place_fails_the_root_and_is_named() {
    let (dir, mut r) = root();
    r.configure(Lost::new()).unwrap();
    let lines = r.deploy().unwrap_err();
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let expected = format!(
        "completing the files written so far: writing {}: No such file or directory (os error 2)",
        dir.path().join("work/lost/sub/x").display()
    );
    assert!(text.iter().any(|l| l.contains(&expected)), "{text:#?}");
}

/// Lost, as a root that touches no file itself: the file is put in place
/// only when the root ends.
#[batou::component]
pub struct LostAtTheEnd {}

impl batou::component::Component for LostAtTheEnd {
    fn configure(&mut self, cx: &mut batou::component::Configure) -> batou::Result<()> {
        cx.add(File::new("sub/x").content("x\n").leading(true));
        cx.add(Mover::new());
        Ok(())
    }
    fn footprint(&self) -> batou::component::Footprint<'_> {
        batou::component::Footprint::Files(Vec::new())
    }
}

#[test]
fn a_batched_file_lost_at_the_end_of_the_root_is_named() {
    let (dir, mut r) = root();
    r.configure(LostAtTheEnd::new()).unwrap();
    let lines = r.deploy().unwrap_err();
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let expected = format!(
        "completing the deployment: writing {}: No such file or directory (os error 2)",
        dir.path().join("work/lostattheend/sub/x").display()
    );
    assert!(text.iter().any(|l| l.contains(&expected)), "{text:#?}");
}
