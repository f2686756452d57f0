//! Download against a real HTTP server on loopback.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::download::Download;
use common::{sha256, text, HttpServer};
use std::path::Path;

fn served(dir: &Path, name: &str, data: &[u8]) -> String {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www").join(name), data).unwrap();
    sha256(data)
}

/// Names in the work directory (temporary files included).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn configure_error(d: Download) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    let reports = root.configure(d).unwrap_err();
    let out = reports
        .iter()
        .map(|r| format!("{} {:?}", r.title, r.fields))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(names(dir.path()).is_empty(), "nothing made");
    out
}

#[test]
fn downloads_verifies_converges_and_follows_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
    let sum = served(dir.path(), "big.bin", &data);
    let server = HttpServer::start(&dir.path().join("www"));
    let work = dir.path().join("work/download");

    // -P predicts a change and fetches nothing.
    let mut root = TestRoot::new(dir.path());
    root.configure(Download::new(server.url("redirect/3/big.bin"), sum.clone()))
        .unwrap();
    assert!(root.predict().unwrap());
    assert!(!work.join("big.bin").exists());

    // What a download killed mid-transfer left (its process is gone) is
    // removed by the next one.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join(format!(".big.bin.batou-tmp-{dead_pid}-0")),
        b"half",
    )
    .unwrap();

    assert!(root.deploy().unwrap(), "changed");
    assert_eq!(std::fs::read(work.join("big.bin")).unwrap(), data);
    assert_eq!(names(&work), vec!["big.bin"], "no temporary file left");
    assert!(!root.deploy().unwrap(), "converged");

    // verify hashes what is there: a damaged file is downloaded again.
    std::fs::write(work.join("big.bin"), b"damaged").unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(std::fs::read(work.join("big.bin")).unwrap(), data);
}

#[test]
fn every_common_algorithm_and_file_urls() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"batou";
    served(dir.path(), "a.txt", data);
    let source = dir.path().join("www/a.txt");
    for (target, sum) in [
        ("md5.txt", "md5:f77bbd81d96aa4c5eba33880fcd95521"),
        ("sha1.txt", "SHA1:6d4044f1dcd604ec5c5d7ba045e7ada5ddf80c54"),
        ("sha512.txt", "sha512:9dd93a7998c2864b321937b122ac048e4953b81b513cab8fa91ffed662b045868932cd90d806c7be1a2cc7a92eb627dcf2537e6a9cebbdf2bdb0231f883eb4ce"),
    ] {
        let mut root = TestRoot::new(dir.path());
        root.configure(
            Download::new(format!("file://{}", source.display()), sum)
                .target(target),
        )
        .unwrap();
        assert!(root.deploy().unwrap(), "{target}");
        assert_eq!(std::fs::read(dir.path().join("work/download").join(target)).unwrap(), data);
    }
}

#[test]
fn a_wrong_checksum_leaves_no_file_and_names_both() {
    let dir = tempfile::tempdir().unwrap();
    served(dir.path(), "a.txt", b"batou");
    let server = HttpServer::start(&dir.path().join("www"));
    let wrong = sha256(b"something else");
    let mut root = TestRoot::new(dir.path());
    root.configure(Download::new(server.url("files/a.txt"), wrong.clone()))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "Checksum mismatch for {}!\nexpected: {wrong}\ngot: {}",
            server.url("files/a.txt"),
            sha256(b"batou")
        )),
        "{out}"
    );
    assert!(
        names(&dir.path().join("work/download")).is_empty(),
        "no file, no temporary file"
    );
}

#[test]
fn http_errors_redirect_loops_and_stalls_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    served(dir.path(), "a.txt", &vec![b'x'; 1 << 20]);
    let server = HttpServer::start(&dir.path().join("www"));
    let sum = sha256(&vec![b'x'; 1 << 20]);
    let fails = |path: &str, target: &str| {
        let mut root = TestRoot::new(dir.path());
        root.configure(Download::new(server.url(path), sum.clone()).target(target))
            .unwrap();
        let out = text(&root.deploy().unwrap_err());
        assert!(
            names(&dir.path().join("work/download"))
                .iter()
                .all(|n| n != target && !n.contains("batou-tmp")),
            "no partial file for {path}"
        );
        out
    };
    let out = fails("status/404", "x1");
    assert!(
        out.contains(&format!(
            "Cannot download {}: the server answered HTTP 404",
            server.url("status/404")
        )),
        "{out}"
    );
    let out = fails("status/503", "x2");
    assert!(out.contains("the server answered HTTP 503"), "{out}");
    let out = fails("loop", "x3");
    assert!(out.contains("too many redirects (more than 10)"), "{out}");
    let out = fails("redirect/12/a.txt", "x4");
    assert!(out.contains("too many redirects"), "{out}");
    let started = std::time::Instant::now();
    let out = fails("stall/a.txt", "x5");
    assert!(out.contains("timed out"), "{out}");
    let out = fails("silent", "x6");
    assert!(out.contains("timed out"), "{out}");
    // Bounded by the environment's timeout (3 s each), not the server's 60 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut root = TestRoot::new(dir.path());
    root.configure(
        Download::new(format!("http://127.0.0.1:{closed}/a.txt"), sum.clone()).target("x7"),
    )
    .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!("Cannot download http://127.0.0.1:{closed}/a.txt:")),
        "{out}"
    );
}

#[test]
fn configuration_errors_name_the_problem() {
    let sum = "sha256:726c2ed3d0f373e03498c07a09afdbcaa0c6f63d825f8cf60c95bd3d345fa1aa";
    let cases = [
        (
            Download::new("https://example.com/a.tgz", "crc32:1234"),
            "Download https://example.com/a.tgz: unknown checksum algorithm \"crc32\" (known: md5, sha1, sha224, sha256, sha384, sha512)",
        ),
        (
            Download::new("https://example.com/a.tgz", "sha256:abc"),
            "malformed sha256 checksum \"abc\": expected 64 hex digits",
        ),
        (
            Download::new("https://example.com/a.tgz", "726c2ed3"),
            "expected algorithm:hexdigest",
        ),
        (
            Download::new("https://example.com/a.tgz", ""),
            "Download https://example.com/a.tgz: no checksum given",
        ),
        (
            Download::new("ftp://example.com/a.tgz", sum),
            "Download: ftp is not supported (ftp://example.com/a.tgz)",
        ),
        (
            Download::new("gopher://example.com/a.tgz", sum),
            "Download: unsupported URL \"gopher://example.com/a.tgz\"",
        ),
        (
            Download::new("https://example.com/", sum),
            "No target is given and the URI does not allow deriving a filename",
        ),
        (
            Download::new("https://user:hunter2@example.com/", sum),
            "https://user:*****@example.com/",
        ),
    ];
    for (d, message) in cases {
        let out = configure_error(d);
        assert!(out.contains(message), "missing {message:?} in {out}");
        assert!(!out.contains("hunter2"), "{out}");
    }
}

#[test]
fn https_with_the_servers_ca_and_without() {
    let dir = tempfile::tempdir().unwrap();
    let sum = served(dir.path(), "a.txt", b"over tls");
    let pki = tempfile::tempdir().unwrap();
    let (server, ca) = HttpServer::start_tls(&dir.path().join("www"), pki.path());
    let url = server.url("files/a.txt");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // Not trusted by the system's roots: a clear error, no file.
    let mut root = TestRoot::new(dir.path());
    root.configure(Download::new(url.clone(), sum.clone()).target("untrusted.txt"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(out.contains(&format!("Cannot download {url}:")), "{out}");
    assert!(!dir.path().join("work/download/untrusted.txt").exists());

    // Trusted through SSL_CERT_FILE (as OpenSSL-based tools do).
    std::env::set_var("SSL_CERT_FILE", &ca);
    let mut root = TestRoot::new(dir.path());
    root.configure(Download::new(url, sum).target("trusted.txt"))
        .unwrap();
    let result = root.deploy();
    std::env::remove_var("SSL_CERT_FILE");
    assert!(result.unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("work/download/trusted.txt")).unwrap(),
        b"over tls"
    );
}
