//! Fetching age key lists from `https://` URLs (ureq over rustls). The
//! server is checked against Mozilla's roots, or against the certificates
//! in `$SSL_CERT_FILE` when that is set (as OpenSSL-based tools do).

use super::{Result, SecretsError};
use std::sync::Arc;
use std::time::Duration;

/// Largest key list accepted.
pub const MAX_KEY_LIST: u64 = 1 << 20;

/// The text behind an `https://` URL.
pub fn https_text(url: &str) -> Result<String> {
    let fail = |reason: String| SecretsError::Encrypt {
        file: "(members)".into(),
        reason: format!("cannot fetch keys from {url}: {reason}"),
    };
    let roots = match std::env::var_os("SSL_CERT_FILE") {
        Some(file) => {
            let pem = std::fs::read(&file).map_err(|e| {
                fail(format!(
                    "cannot read SSL_CERT_FILE {}: {e}",
                    file.to_string_lossy()
                ))
            })?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            ureq::tls::RootCerts::Specific(Arc::new(certs))
        }
        None => ureq::tls::RootCerts::WebPki,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .https_only(true)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_KEY_LIST)
        .read_to_string()
        .map_err(|e| fail(e.to_string()))
}
