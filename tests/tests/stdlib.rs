//! Standard library components in real deployments: Download and Extract
//! from a loopback HTTP server, locally and on a real sshd host (which does
//! the work: the controller only sends the model).

#[path = "../../batou-stdlib/tests/common/mod.rs"]
mod common;

use batou_tests::*;
use common::{sha256, HttpServer};
use std::path::Path;

const APP: &str = r##"
use batou::prelude::*;
use batou_stdlib::archive::Extract;
use batou_stdlib::download::Download;

/// Downloads a release and unpacks it without its top directory.
#[component]
pub struct App {
    #[attribute]
    url: String,
    #[attribute]
    checksum: String,
}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(
            Download::new(self.url.clone())
                .checksum(self.checksum.clone())
                .target("pkg.tar.gz"),
        );
        cx.add(Extract::new("pkg.tar.gz").target("pkg").strip(1));
        Ok(())
    }
}
"##;

/// A release tarball `app-1.0/bin/run.sh` served from `dir/www`.
fn release(dir: &Path) -> String {
    let src = dir.join("src/app-1.0/bin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("run.sh"), "#!/bin/sh\necho app\n").unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let out = std::process::Command::new("tar")
        .arg("czf")
        .arg(dir.join("www/app-1.0.tar.gz"))
        .args(["-C"])
        .arg(dir.join("src"))
        .arg("app-1.0")
        .output()
        .unwrap();
    assert!(out.status.success());
    sha256(&std::fs::read(dir.join("www/app-1.0.tar.gz")).unwrap())
}

fn project(name: &str, env: &str, cfg: &str) -> Project {
    let p = Project::generate(name);
    p.write("components/app/component.rs", APP);
    p.write(&format!("environments/{env}/environment.cfg"), cfg);
    p
}

fn app_cfg(connect: &str, host: &str, url: &str, sum: &str) -> String {
    format!(
        "[environment]\nconnect_method = {connect}\n\n[hosts]\n{host} = app\n\n\
         [component:app]\nurl = {url}\nchecksum = {sum}\n"
    )
}

#[test]
fn download_and_extract_predict_deploy_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let sum = release(dir.path());
    let server = HttpServer::start(&dir.path().join("www"));
    let url = server.url("files/app-1.0.tar.gz");
    let p = project(
        "stdlib-fetch",
        "local",
        &app_cfg("local", "localhost", &url, &sum),
    );
    p.build_ok();

    let out = p.batou(&["deploy", "-P", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("App > Download('{url}')")), "{text}");
    assert!(
        text.contains("App > Extract('pkg.tar.gz') > Untar('pkg.tar.gz')"),
        "{text}"
    );
    assert!(
        !p.path.join("work/app/pkg.tar.gz").exists(),
        "-P downloads nothing"
    );
    assert!(!p.path.join("work/app/pkg").exists(), "-P extracts nothing");

    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(p.read("work/app/pkg/bin/run.sh"), "#!/bin/sh\necho app\n");
    let again = p.batou(&["deploy", "local"]);
    assert!(again.status.success());
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );

    // A malformed checksum is a configuration error already at -c.
    p.write(
        "environments/local/environment.cfg",
        &app_cfg("local", "localhost", &url, "sha256:1234"),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "-c", "local"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(&format!(
            "Download {url}: malformed sha256 checksum \"1234\": expected 64 hex digits"
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_remote_host_downloads_and_extracts_itself() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["f1"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sum = release(dir.path());
    let server = HttpServer::start(&dir.path().join("www"));
    let url = server.url("files/app-1.0.tar.gz");
    let p = project("stdlib-remote", "remote", &app_cfg("ssh", "f1", &url, &sum));
    p.write("ssh_config", &lab.ssh_config());
    p.build_ok();
    let out = p.batou(&["deploy", "-P", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!lab.hosts[0].path("deployment/work/app/pkg.tar.gz").exists());
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(lab.hosts[0].path("deployment/work/app/pkg/bin/run.sh")).unwrap(),
        "#!/bin/sh\necho app\n"
    );
    assert!(
        !p.path.join("work/app").exists(),
        "the controller downloaded nothing"
    );
    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success());
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );
}
