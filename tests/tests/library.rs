//! Component libraries as crates: a library crate outside the deployment
//! crate, listed in `[dependencies]` and nothing else, registers its
//! components, and environment.cfg is checked against them at build time
//! (attributes of its components, root names in `[hosts]`).

use batou_tests::*;
use std::path::Path;

const LIB: &str = r##"
//! A component library.
use batou::prelude::*;
use batou_stdlib::file::{Directory, File};

/// An nginx virtual host.
#[component]
pub struct VHost {
    #[attribute(default = "example.com")]
    server_name: String,
}

impl Component for VHost {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        // vhost.conf next to this file: embedded in the executable.
        cx.add(File::new("vhost.conf"));
        // htdocs/ next to this file: an embedded tree.
        cx.add(Directory::new("htdocs").source("htdocs"));
        Ok(())
    }
}
"##;

/// Writes the library crate `vhostlib` into `dir`.
fn library(dir: &Path) {
    let root = workspace_root();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"vhostlib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nbatou = {{ path = \"{0}/batou\", default-features = false }}\n\
             batou-stdlib = {{ path = \"{0}/batou-stdlib\" }}\n",
            root.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
    std::fs::write(
        dir.join("src/vhost.conf"),
        "server_name {{ component.server_name }};\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("src/htdocs/cgi")).unwrap();
    std::fs::write(
        dir.join("src/htdocs/index.html"),
        "<h1>{{ not a template }}</h1>\n",
    )
    .unwrap();
    let script = dir.join("src/htdocs/cgi/run.sh");
    std::fs::write(&script, "#!/bin/sh\necho ok\n").unwrap();
    set_mode(&script, 0o750);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The library's htdocs tree arrived in `dir` with content and modes.
fn assert_htdocs(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "<h1>{{ not a template }}</h1>\n"
    );
    let script = dir.join("cgi/run.sh");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\necho ok\n"
    );
    let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "mode of {}", script.display());
}

/// A project component that uses the library's VHost as a sub-component.
const SITE: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Site;

impl Component for Site {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(vhostlib::VHost::new().server_name("site.example"));
        cx.add(File::new("site.txt").content("site\n"));
        Ok(())
    }
}
"##;

fn user_of(lib: &Path, name: &str, env: &str) -> Project {
    let p = Project::generate(name);
    let manifest = p.read("Cargo.toml").replace(
        "[dependencies]\n",
        &format!(
            "[dependencies]\nvhostlib = {{ path = \"{}\" }}\n",
            lib.display()
        ),
    );
    p.write("Cargo.toml", &manifest);
    p.write("environments/local/environment.cfg", env);
    p
}

#[test]
fn a_dependency_line_is_all_the_wiring_and_the_build_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("vhostlib");
    library(&lib);
    let p = user_of(
        &lib,
        "lib-user",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick, vhost\n\n\
         [component:vhost]\nserver_name = batou.example\n",
    );
    assert!(p
        .read("src/main.rs")
        .contains("batou::check_environments!();"));
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/vhost/vhost.conf"),
        "server_name batou.example;\n"
    );

    // As a sub-component of a project component (in a new component
    // directory, found without a module line): its own directory.
    p.write("components/site/component.rs", SITE);
    p.write(
        "environments/site/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = site\n",
    );
    p.build_ok();
    // The library's source directory is gone: its files travel inside the
    // executable.
    let moved = dir.path().join("moved-away");
    std::fs::rename(&lib, &moved).unwrap();
    let out = p.batou(&["deploy", "site"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/site/vhost.conf"),
        "server_name site.example;\n"
    );
    assert_htdocs(&p.path.join("work/site/htdocs"));
    assert_eq!(p.read("work/site/site.txt"), "site\n");
    // Converged: a second run changes nothing.
    let out = p.batou(&["deploy", "site"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("🚀"), "converged:\n{}", stdout(&out));
    std::fs::rename(&moved, &lib).unwrap();

    // An attribute the library's component does not have fails the build.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick, vhost\n\n\
         [component:vhost]\nsever_name = batou.example\n",
    );
    let out = p.build();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "environments/local/environment.cfg:8: [component:vhost] sever_name: component `vhost` \
             has no attribute `sever_name`, did you mean `server_name`? (known attributes: server_name)"
        ),
        "{err}"
    );

    // So does a misspelt root component name in [hosts], with a suggestion.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick, vhots\n",
    );
    let out = p.build();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot find macro `__batou_component_vhots`"),
        "{err}"
    );
    assert!(err.contains("__batou_component_vhost"), "{err}");
    assert!(
        err.contains("environments/local/environment.cfg:5: [hosts] localhost = vhots"),
        "{err}"
    );
    // And in [host:NAME] components.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[host:localhost]\ncomponents = tick, !vhost, tock:feature\n",
    );
    let err = stderr(&p.build());
    assert!(
        err.contains("cannot find macro `__batou_component_tock`"),
        "{err}"
    );
    assert!(!err.contains("__batou_component_vhost`"), "{err}");
}

#[test]
fn a_library_template_reaches_a_remote_host_from_inside_the_executable() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["s11"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("vhostlib");
    library(&lib);
    let p = user_of(
        &lib,
        "lib-remote",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n",
    );
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\ns11 = vhost\n\n[component:vhost]\nserver_name = remote.example\n",
    );
    p.build_ok();
    std::fs::rename(&lib, dir.path().join("moved-away")).unwrap();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(lab.hosts[0].path("deployment/work/vhost/vhost.conf")).unwrap(),
        "server_name remote.example;\n"
    );
    assert_htdocs(&lab.hosts[0].path("deployment/work/vhost/htdocs"));
}
