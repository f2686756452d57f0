//! The real `cargo generate` on `template-project/`: what a user without
//! this repository's helpers runs. cargo-generate is built from
//! `tests/cargo-generate/` (pinned versions that build on this compiler,
//! its own Cargo.lock) into `target/cargo-generate`.

use batou_tests::{render_template_only, snapshot, stderr, stdout, workspace_root, Project};
use std::path::PathBuf;
use std::process::Command;

/// Builds the pinned cargo-generate and returns its executable.
fn cargo_generate() -> PathBuf {
    let root = workspace_root();
    let target = root.join("target").join("cargo-generate");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(root.join("tests/cargo-generate/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo build for cargo-generate");
    assert!(
        out.status.success(),
        "building cargo-generate failed:\n{}",
        stderr(&out)
    );
    target.join("debug").join("batou-cargo-generate")
}

#[test]
fn real_cargo_generate_makes_the_crate_our_helpers_make_and_it_deploys() {
    let generate = cargo_generate();
    let dir = tempfile::Builder::new()
        .prefix("batou-cargo-generate-")
        .tempdir()
        .expect("temp dir");
    let out = Command::new(&generate)
        .args(["generate", "--path"])
        .arg(workspace_root().join("template-project"))
        .args([
            "--name",
            "my-deployment",
            "--silent",
            "--vcs",
            "none",
            "--destination",
        ])
        .arg(dir.path())
        .env("USER", "batou-test")
        .env("CARGO_GENERATE_NO_TIP", "1")
        .output()
        .expect("run cargo-generate");
    assert!(
        out.status.success(),
        "cargo generate failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    let generated = dir.path().join("my-deployment");

    // The helpers the other tests use render the same tree.
    let ours = tempfile::tempdir().expect("temp dir");
    render_template_only(ours.path(), "my-deployment").expect("render the template");
    let theirs = snapshot(&generated);
    let expected = snapshot(ours.path());
    let names = |s: &[(PathBuf, Vec<u8>, u32)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&theirs), names(&expected), "the same files");
    for ((path, content, mode), (_, want, want_mode)) in theirs.iter().zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(want),
            "content of {}",
            path.display()
        );
        assert_eq!(
            mode & 0o777,
            want_mode & 0o777,
            "mode of {}",
            path.display()
        );
    }
    let manifest = std::fs::read_to_string(generated.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"my-deployment\""), "{manifest}");
    assert!(
        manifest.contains("batou = \"0.1\""),
        "by version:\n{manifest}"
    );
    assert!(
        !manifest.contains("path ="),
        "no checkout path:\n{manifest}"
    );

    // Against this checkout (the documented [patch]), it builds and deploys.
    batou_tests::patch_to_checkout(&generated, &workspace_root()).expect("add the patch");
    let project = Project::adopt(dir, generated, "my-deployment");
    project.build_ok();
    let out = project.batou(&["deploy", "local"]);
    assert!(
        out.status.success(),
        "deploy failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("DEPLOYMENT FINISHED"),
        "{}",
        stdout(&out)
    );
    assert!(project.path.join("work/tick/tick.sh").is_file());
    let again = project.batou(&["deploy", "local"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !stdout(&again).contains("Content('tick.sh')"),
        "converged:\n{}",
        stdout(&again)
    );
}

/// The template's `./batou` starts the built executable without asking
/// cargo when nothing it is built from changed since the last build it
/// made, and asks cargo otherwise: after an edit of environment.cfg, and
/// always for a crate with `path` dependencies. (PATH without cargo shows
/// which way it went; the release build is the debug one copied, so the
/// test needs no release build of the dependencies.)
#[test]
fn the_wrapper_skips_cargo_only_when_nothing_changed() {
    let p = Project::generate("wrapper");
    p.build_ok();
    let target = tempfile::tempdir().unwrap();
    let release = target.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let exe = release.join("wrapper");
    std::fs::copy(p.binary(), &exe).unwrap();
    // Cargo's record of the build: the project's sources and a path
    // dependency's (one with a space in its name), and a registry crate's
    // (never looked at).
    let dependency = tempfile::tempdir().unwrap();
    let dep_source = dependency.path().join("lib with space.rs");
    let registry = dependency
        .path()
        .join("registry/src/index/serde-1.0/lib.rs");
    std::fs::create_dir_all(registry.parent().unwrap()).unwrap();
    std::fs::write(&dep_source, "").unwrap();
    std::fs::write(&registry, "").unwrap();
    // A file the build generated (check_environments!'s, under OUT_DIR).
    let generated = release.join("build/wrapper-1/out/environments.rs");
    std::fs::create_dir_all(generated.parent().unwrap()).unwrap();
    std::fs::write(&generated, "").unwrap();
    let component = p.path.join("components/tick/component.rs");
    let env_cfg = p.path.join("environments/local/environment.cfg");
    let escaped = |path: &std::path::Path| path.display().to_string().replace(' ', "\\ ");
    std::fs::write(
        release.join("wrapper.d"),
        format!(
            "{}: {} {} {} {} {}\n",
            exe.display(),
            escaped(&component),
            escaped(&env_cfg),
            escaped(&dep_source),
            escaped(&registry),
            escaped(&generated)
        ),
    )
    .unwrap();
    let stamp = release.join(".batou-build-started");
    // As if the wrapper had built it, after all edits so far.
    let built = || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&stamp, b"").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    built();
    let run = || {
        Command::new(p.path.join("batou"))
            .args(["deploy", "local"])
            .current_dir(&p.path)
            .env("CARGO_TARGET_DIR", target.path())
            .env("PATH", "/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let asks_cargo = |what: &str| {
        let out = run();
        assert_eq!(out.status.code(), Some(127), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cargo: not found"),
            "{what}: {}",
            stderr(&out)
        );
    };
    let out = run();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(p.path.join("work/tick/tick.sh").exists());
    assert!(
        stdout(&out).contains("DEPLOYMENT FINISHED"),
        "{}",
        stdout(&out)
    );

    // A crate from a registry never changes, and what the build generated
    // is not an input: their times are not looked at.
    std::fs::write(&registry, "// touched").unwrap();
    std::fs::write(&generated, "// generated again").unwrap();
    assert!(run().status.success());

    // An edited environment needs no build: deploy checks its overrides
    // as the build does.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nslep = 1\n",
    );
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Overrides for undefined attributes"),
        "{text}"
    );
    assert!(text.contains("slep"), "{text}");
    assert!(text.contains("Did you mean: sleep (for slep)"), "{text}");

    // A component's source, a path dependency's source, a new file in
    // src/: cargo is asked.
    std::fs::write(&component, p.read("components/tick/component.rs")).unwrap();
    asks_cargo("component edited");
    built();
    std::fs::write(&dep_source, "// edited").unwrap();
    asks_cargo("path dependency edited");
    built();
    p.write("src/extra.rs", "");
    asks_cargo("new file");
    built();
    // Without cargo's record, cargo is asked.
    std::fs::remove_file(release.join("wrapper.d")).unwrap();
    asks_cargo("no dep-info");
}
