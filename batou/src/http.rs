//! The HTTP client batou uses (ureq over rustls), for components that
//! fetch over `http://` and `https://` (e.g. batou-stdlib's `Download`) and
//! for age key lists.
//!
//! Servers are checked against the system's certificate bundle (Debian's
//! `/etc/ssl/certs/ca-certificates.crt` and the other usual places), or
//! the certificates in `$SSL_CERT_FILE` when that is set, as OpenSSL-based
//! tools do; without either, against Mozilla's roots built into batou.
//!
//! ```
//! use std::time::Duration;
//! let agent = batou::http::agent(Duration::from_secs(3), batou::http::Schemes::HttpsOnly)?;
//! # let _ = agent;
//! # Ok::<(), String>(())
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use ureq;

/// Where systems keep their CA bundle.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];

/// Which URL schemes a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// `http://` and `https://` (also across redirects).
    Both,
    /// Only `https://`.
    HttpsOnly,
}

/// A client whose connects, responses and reads each time out after
/// `timeout`, following up to 10 redirects (an error beyond), with HTTP
/// error statuses as errors. Fails only when `$SSL_CERT_FILE` names a
/// file that cannot be read or has no certificate.
pub fn agent(timeout: Duration, schemes: Schemes) -> Result<ureq::Agent, String> {
    let config = ureq::Agent::config_builder()
        .https_only(schemes == Schemes::HttpsOnly)
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .max_redirects(10)
        .max_redirects_will_error(true)
        .http_status_as_error(true)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(root_certs()?)
                .build(),
        )
        .build();
    Ok(config.into())
}

/// The trusted roots: `$SSL_CERT_FILE`, else the system's bundle, else
/// Mozilla's.
fn root_certs() -> Result<ureq::tls::RootCerts, String> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        let path = Path::new(&file);
        let certs = certificates_in(path)
            .map_err(|e| format!("cannot read SSL_CERT_FILE {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "SSL_CERT_FILE {} holds no certificate",
                path.display()
            ));
        }
        return Ok(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    }
    for bundle in SYSTEM_BUNDLES {
        if let Ok(certs) = certificates_in(Path::new(bundle)) {
            if !certs.is_empty() {
                return Ok(ureq::tls::RootCerts::Specific(Arc::new(certs)));
            }
        }
    }
    Ok(ureq::tls::RootCerts::WebPki)
}

fn certificates_in(path: &Path) -> std::io::Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(path)?;
    Ok(ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect())
}

/// A ureq error as a user reads it (`HTTP 404`, `timed out`, `too many
/// redirects`, ...).
pub fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::TooManyRedirects => "too many redirects (more than 10)".into(),
        ureq::Error::RequireHttpsOnly(url) => format!("refusing a non-https URL: {url}"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        other => other.to_string(),
    }
}
