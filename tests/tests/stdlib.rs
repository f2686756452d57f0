//! Standard library components in real deployments: Download and Extract
//! from a loopback HTTP server, locally and on a real sshd host (which does
//! the work: the controller only sends the model).

#[path = "../../batou-stdlib/tests/common/mod.rs"]
mod common;

use batou_tests::*;
use common::{sh, sha256, HttpServer};
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
            Download::new(self.url.clone(), self.checksum.clone())
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

const SOURCES: &str = r##"
use batou::prelude::*;
use batou_stdlib::cmmi::Build;
use batou_stdlib::git::Clone;

/// A git checkout and a source build, both done by the host.
#[component]
pub struct Sources {
    #[attribute]
    repo: String,
    #[attribute]
    tarball: String,
    #[attribute]
    checksum: String,
}

impl Component for Sources {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(Clone::new(self.repo.clone()).target("code").branch("main"));
        cx.add(Build::new(self.tarball.clone()).checksum(self.checksum.clone()));
        Ok(())
    }
}
"##;

/// `./configure` that writes a Makefile installing `bin/hello`.
const CONFIGURE: &str = "#!/bin/sh\nprefix=/usr/local\nfor a in \"$@\"; do case \"$a\" in --prefix=*) prefix=\"${a#--prefix=}\";; esac; done\n\
printf 'install:\\n\\tmkdir -p %s/bin\\n\\techo built > %s/bin/hello\\n' \"$prefix\" \"$prefix\" > Makefile\necho ok > config.status\n";

#[test]
fn a_remote_host_clones_and_builds_itself() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["f2"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let dir = tempfile::tempdir().unwrap();
    // A repository the host's user can read (it owns it).
    let repo = dir.path().join("upstream");
    std::fs::create_dir_all(&repo).unwrap();
    sh(
        &repo,
        "git init -q -b main && echo v1 > a.txt && git add a.txt && \
         git -c user.name=T -c user.email=t@example.com commit -q -m v1",
    );
    sh(
        dir.path(),
        &format!("chmod 755 . && chown -R {} upstream", host.user),
    );
    // A source tarball over HTTP.
    let src = dir.path().join("src/hello-1.0");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("configure"), CONFIGURE).unwrap();
    sh(&src, "chmod 755 configure");
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    sh(dir.path(), "tar czf www/hello-1.0.tar.gz -C src hello-1.0");
    let sum = sha256(&std::fs::read(dir.path().join("www/hello-1.0.tar.gz")).unwrap());
    let server = HttpServer::start(&dir.path().join("www"));

    let p = Project::generate("stdlib-sources");
    p.write("components/sources/component.rs", SOURCES);
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        &format!(
            "[environment]\nconnect_method = ssh\n\n[hosts]\nf2 = sources\n\n[component:sources]\n\
             repo = {}\ntarball = {}\nchecksum = {sum}\n",
            repo.display(),
            server.url("files/hello-1.0.tar.gz")
        ),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Sources > Clone('{}')", repo.display())),
        "{text}"
    );
    assert!(
        text.contains("Sources > Build('hello-1.0.tar.gz') > Make("),
        "{text}"
    );
    let work = host.path("deployment/work/sources");
    assert_eq!(
        std::fs::read_to_string(work.join("code/a.txt")).unwrap(),
        "v1\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("bin/hello")).unwrap(),
        "built\n"
    );
    assert!(
        !p.path.join("work/sources").exists(),
        "the controller did nothing"
    );
    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );
}

#[test]
fn a_large_download_reports_progress_in_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    let data: Vec<u8> = (0..(10u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("www/big.bin"), &data).unwrap();
    let sum = sha256(&data);
    let server = HttpServer::start(&dir.path().join("www"));
    let p = Project::generate("stdlib-progress");
    p.write(
        "environments/local/environment.cfg",
        &format!(
            "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = download\n\n\
             [component:download]\nuri = {}\nchecksum = {sum}\n",
            server.url("files/big.bin")
        ),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "--json", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let progress: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "component_progress")
        .collect();
    assert!(progress.len() >= 2, "{}", stdout(&out));
    let last = progress.last().unwrap();
    assert_eq!(last["done"], 10u64 << 20);
    assert_eq!(last["total"], 10u64 << 20);
    assert_eq!(last["host"], "localhost");
    assert!(
        last["component"].as_str().unwrap().starts_with("Download("),
        "{last}"
    );
    assert_eq!(
        std::fs::read(p.path.join("work/download/big.bin")).unwrap(),
        data
    );
}

#[test]
fn installing_a_package_without_sudo_rights_says_so() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["f3"]) else {
        return;
    };
    let p = Project::generate("stdlib-dpkg");
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\nf3 = dpkg\n\n\
         [component:dpkg]\npackage = batou-test-absent-package\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(
            "cannot install batou-test-absent-package on f3: `sudo -n` needs a password; \
             allow the deployment user passwordless sudo for apt-get"
        ),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_system_unit_without_sudo_rights_says_so_and_installs_nothing() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["y1"]) else {
        return;
    };
    let p = Project::generate("stdlib-unit");
    p.write(
        "components/daemon/component.rs",
        "use batou::prelude::*;\nuse batou_stdlib::systemd::{Scope, Unit};\n\n\
         #[component]\npub struct Daemon;\n\n\
         impl Component for Daemon {\n    \
         fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {\n        \
         cx.add(Unit::new(\"batou-test-daemon.service\").exec_start(\"/bin/true\").scope(Scope::System));\n        \
         Ok(())\n    }\n}\n",
    );
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\ny1 = daemon\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "remote"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(
            "cannot install the system unit batou-test-daemon.service on y1: `sudo -n` needs a \
             password; allow the deployment user passwordless sudo for systemctl and install, \
             or use scope = user"
        ),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!std::path::Path::new("/etc/systemd/system/batou-test-daemon.service").exists());
}
