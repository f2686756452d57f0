//! Why a host could not be reached or its agent not be talked to.

/// A failure to reach a host or to talk to its agent.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {detail}")]
pub struct TransportError {
    /// What kind of failure (decides retries and the exit code).
    pub kind: ErrorKind,
    /// The host.
    pub host: String,
    /// What went wrong.
    pub detail: String,
}

/// Kinds of connection failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing listens, or the connection was reset or closed.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// The host key is unknown or changed.
    HostKey,
    /// The host did not accept our keys.
    Auth,
    /// Anything else (the agent, shipping, the platform, sudo).
    Other,
}

impl ErrorKind {
    /// Transient network trouble, worth another attempt.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Refused | Self::Timeout)
    }

    /// The host could not be reached at all (exit code 3).
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            Self::Refused | Self::Timeout | Self::HostKey | Self::Auth
        )
    }
}

impl TransportError {
    /// An error of kind [`ErrorKind::Other`].
    pub fn other(host: impl Into<String>, detail: impl Into<String>) -> Self {
        TransportError {
            kind: ErrorKind::Other,
            host: host.into(),
            detail: detail.into(),
        }
    }

    /// The same error with another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
}
