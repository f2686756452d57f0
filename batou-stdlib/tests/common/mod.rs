//! A real HTTP server on loopback (Python's http.server, threaded) for the
//! download tests, with routes for the cases a download meets: files,
//! redirects, a redirect loop, error statuses, a server that stalls.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const SERVER: &str = r#"
import http.server, os, sys, time
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send_file(self, name, stall=False):
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            self.send_error(404); return
        data = open(path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if stall:
            self.wfile.write(data[: len(data) // 2]); self.wfile.flush(); time.sleep(60); return
        self.wfile.write(data)
    def do_GET(self):
        parts = self.path.split('?')[0].strip('/').split('/')
        if parts[0] == 'files':
            self.send_file('/'.join(parts[1:]))
        elif parts[0] == 'redirect':
            n = int(parts[1]); rest = '/'.join(parts[2:])
            to = '/files/' + rest if n == 0 else '/redirect/%d/%s' % (n - 1, rest)
            self.send_response(302); self.send_header('Location', to); self.send_header('Content-Length', '0'); self.end_headers()
        elif parts[0] == 'loop':
            self.send_response(302); self.send_header('Location', '/loop'); self.send_header('Content-Length', '0'); self.end_headers()
        elif parts[0] == 'status':
            self.send_error(int(parts[1]))
        elif parts[0] == 'stall':
            self.send_file('/'.join(parts[1:]), stall=True)
        elif parts[0] == 'silent':
            time.sleep(60)
        else:
            self.send_error(404)
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
s.daemon_threads = True
if len(sys.argv) > 3:
    import ssl
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(sys.argv[2], sys.argv[3])
    s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The server; killed (by PID) when dropped.
pub struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl HttpServer {
    /// Serves the files of `root` under `/files/`.
    pub fn start(root: &Path) -> HttpServer {
        Self::spawn(root, None)
    }

    /// The same over TLS with a certificate for 127.0.0.1 signed by a CA
    /// made by openssl in `pki`; returns the server and the CA file.
    pub fn start_tls(root: &Path, pki: &Path) -> (HttpServer, std::path::PathBuf) {
        let sh = |script: &str| {
            let out = Command::new("sh")
                .args(["-c", script])
                .current_dir(pki)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null");
        sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null");
        std::fs::write(
            pki.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext");
        sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null");
        let mut server = Self::spawn(root, Some((&pki.join("srv.pem"), &pki.join("srv.key"))));
        server.base = server.base.replacen("http://", "https://", 1);
        (server, pki.join("ca.pem"))
    }

    fn spawn(root: &Path, tls: Option<(&Path, &Path)>) -> HttpServer {
        let mut command = Command::new("python3");
        command.args(["-c", SERVER]).arg(root);
        if let Some((cert, key)) = tls {
            command.arg(cert).arg(key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 (the test HTTP server)");
        let mut port = String::new();
        let stdout = child.stdout.take().expect("server stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut port)
            .expect("read the server's port");
        HttpServer {
            child,
            base: format!("http://127.0.0.1:{}", port.trim()),
        }
    }

    /// The URL of a path on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sha256 of bytes, as `sha256:<hex>`, computed by Python's hashlib (not
/// by the code under test).
pub fn sha256(data: &[u8]) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("run python3 hashlib");
    format!("sha256:{}", String::from_utf8_lossy(&out.stdout).trim())
}

/// The text of a failed deployment's lines.
pub fn text(lines: &[batou::prelude::Line]) -> String {
    lines
        .iter()
        .map(|l| l.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a shell script in `dir`; panics with its stderr when it fails.
pub fn sh(dir: &Path, script: &str) {
    run(dir, "sh", &["-c", script]);
}

/// Runs a program in `dir` and returns its stdout (trimmed); panics with
/// its stderr when it fails.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
