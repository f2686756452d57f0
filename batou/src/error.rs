//! The error type of component code and the `ensure!` macro.

use crate::component::{CmdExecutionError, ConversionError};
use crate::template::TemplateError;

/// Result of component methods.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that component code returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Returned by `verify` to ask for `update` (batou's `UpdateNeeded`).
    #[error("update needed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    UpdateNeeded(Option<String>),
    /// A command failed.
    #[error(transparent)]
    Cmd(#[from] CmdExecutionError),
    /// A component was used wrongly, or its configuration is inconsistent
    /// (batou's `ComponentUsageError` / `ConfigurationError`).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// Where in the Rust source the error was made (`file:line`).
        location: Option<String>,
    },
    /// A template failed to render.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A value did not convert.
    #[error(transparent)]
    Conversion(#[from] ConversionError),
    /// A strictly required resource has no value yet. `require_one`
    /// returns it; propagate it with `?`: the root is configured again once
    /// the resource is provided (batou's `SilentConfigurationError`).
    #[error("resource \"{0}\" is not provided (yet)")]
    Unsatisfied(String),
    /// An operation of `update` failed for a reason outside the code: a
    /// download, a checksum, an archive's content.
    #[error("{0}")]
    Failed(String),
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A usage/configuration error with a message; records the caller's
    /// source location for the report.
    #[track_caller]
    pub fn usage(message: impl Into<String>) -> Self {
        let l = std::panic::Location::caller();
        Error::Usage {
            message: message.into(),
            location: Some(crate::panics::source_location(l.file(), l.line())),
        }
    }

    /// A usage error made at a known source location.
    pub fn usage_at(message: impl Into<String>, location: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            location: Some(location.into()),
        }
    }

    /// Where in the Rust source a usage error was made.
    pub fn location(&self) -> Option<&str> {
        match self {
            Error::Usage { location, .. } => location.as_deref(),
            _ => None,
        }
    }
    /// An operation failed (see [`Error::Failed`]).
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }
    /// An update is needed, with a reason shown in debug output.
    pub fn update_needed(reason: impl Into<String>) -> Self {
        Error::UpdateNeeded(Some(reason.into()))
    }
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    /// Whether this is [`Error::UpdateNeeded`].
    pub fn is_update_needed(&self) -> bool {
        matches!(self, Error::UpdateNeeded(_))
    }
}

impl From<std::io::Error> for Error {
    /// A bare I/O error; prefer [`IoContext::context`] to say what failed.
    fn from(source: std::io::Error) -> Self {
        Error::Io {
            context: "I/O error".into(),
            source,
        }
    }
}

/// Adds context to I/O results: `fs::read(p).context(|| format!("reading {}", p.display()))?`.
pub trait IoContext<T> {
    /// Turns an `io::Error` into [`Error::Io`] with the given context.
    fn context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

/// Returns `Err(Error::UpdateNeeded)` from `verify` unless the condition
/// holds.
///
/// ```
/// use batou::{ensure, Error};
/// fn verify(exists: bool) -> batou::Result<()> {
///     ensure!(exists, "the file is missing");
///     ensure!(1 + 1 == 2);
///     Ok(())
/// }
/// assert!(matches!(verify(false), Err(Error::UpdateNeeded(Some(r))) if r == "the file is missing"));
/// assert!(verify(true).is_ok());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        if !$cond {
            return ::core::result::Result::Err($crate::Error::UpdateNeeded(::core::option::Option::Some(
                ::std::string::String::from(::core::stringify!($cond)),
            )));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::Error::UpdateNeeded(::core::option::Option::Some(
                ::std::format!($($fmt)+),
            )));
        }
    };
}
