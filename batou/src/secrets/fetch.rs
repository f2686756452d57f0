//! Fetching age key lists from `https://` URLs, with batou's HTTP client
//! ([`crate::http`]: the system's roots or `$SSL_CERT_FILE`).

use super::{Result, SecretsError};
use std::time::Duration;

/// Largest key list accepted.
pub const MAX_KEY_LIST: u64 = 1 << 20;

/// The text behind an `https://` URL.
pub fn https_text(url: &str) -> Result<String> {
    let fail = |reason: String| SecretsError::Encrypt {
        file: "(members)".into(),
        reason: format!("cannot fetch keys from {url}: {reason}"),
    };
    let agent = crate::http::agent(Duration::from_secs(30), crate::http::Schemes::HttpsOnly)
        .map_err(fail)?;
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| fail(crate::http::describe(&e)))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_KEY_LIST)
        .read_to_string()
        .map_err(|e| fail(e.to_string()))
}
