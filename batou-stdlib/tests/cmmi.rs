//! cmmi::Build: a source tarball from a loopback HTTP server, configured
//! and installed with the real make.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::cmmi::Build;
use common::{sha256, HttpServer};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `./configure` as autoconf's would behave for this test: reads
/// --prefix and --with-name=, writes Makefile and config.status.
const CONFIGURE: &str = r##"#!/bin/sh
prefix=/usr/local
name=world
for a in "$@"; do
  case "$a" in
    --prefix=*) prefix="${a#--prefix=}" ;;
    --with-name=*) name="${a#--with-name=}" ;;
  esac
done
{
  echo "PREFIX = $prefix"
  echo "NAME = $name"
  echo "GREETING = ${GREETING:-hello}"
  echo 'install:'
  printf '\tmkdir -p $(PREFIX)/bin\n'
  printf '\tprintf "#!/bin/sh\\necho $(GREETING) $(NAME)\\n" > $(PREFIX)/bin/hello\n'
  printf '\tchmod 755 $(PREFIX)/bin/hello\n'
  printf '\techo run >> $(PREFIX)/make-runs\n'
} > Makefile
echo configured > config.status
"##;

fn tarball(dir: &Path) -> String {
    let src = dir.join("src/hello-1.0");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("configure"), CONFIGURE).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("configure"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let status = Command::new("tar")
        .arg("czf")
        .arg(dir.join("www/hello-1.0.tar.gz"))
        .arg("-C")
        .arg(dir.join("src"))
        .arg("hello-1.0")
        .status()
        .unwrap();
    assert!(status.success());
    sha256(&std::fs::read(dir.join("www/hello-1.0.tar.gz")).unwrap())
}

fn hello(prefix: &Path) -> String {
    let out = Command::new(prefix.join("bin/hello")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn download_extract_configure_make_install_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let sum = tarball(dir.path());
    let server = HttpServer::start(&dir.path().join("www"));
    let work = dir.path().join("work/build");
    let env: BTreeMap<String, String> = [("GREETING".to_string(), "hi".to_string())].into();
    let build = || {
        Build::new(server.url("files/hello-1.0.tar.gz"))
            .checksum(sum.clone())
            .build_environment(env.clone())
    };

    let mut root = TestRoot::new(dir.path());
    root.configure(build()).unwrap();
    assert!(root.predict().unwrap());
    assert!(
        !work.join("hello-1.0.tar.gz").exists(),
        "-P touches nothing"
    );
    assert!(root.deploy().unwrap());
    assert_eq!(hello(&work), "hi world", "installed into the workdir");
    assert!(work.join("hello-1.0/.batou.config.success").is_file());
    assert!(work.join("hello-1.0/.batou.make.success").is_file());
    assert!(!root.deploy().unwrap(), "converged");
    assert_eq!(
        std::fs::read_to_string(work.join("make-runs")).unwrap(),
        "run\n"
    );

    // New configure arguments configure and install again.
    let mut root = TestRoot::new(dir.path());
    root.configure(build().configure_args("--with-name=batou"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(hello(&work), "hi batou");
    assert!(!root.deploy().unwrap());

    // Another prefix.
    let mut root = TestRoot::new(dir.path());
    root.configure(build().configure_args("--with-name=batou").prefix("opt"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(hello(&work.join("opt")), "hi batou");
}

#[test]
fn a_uri_that_is_not_an_archive_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    let reports = root
        .configure(Build::new("https://example.com/hello.txt").checksum(sha256(b"x")))
        .unwrap_err();
    assert!(
        reports[0]
            .title
            .contains("Build: hello.txt is not an archive batou can extract"),
        "{:?}",
        reports[0]
    );
}
