//! [`CpuError`]: why a CPU meter could not be built or could not take a sample.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a CPU meter could not be built or could not take a sample.
///
/// The parser messages are go-zero's, word for word, so that logs read the same.
///
/// ```
/// use keel_shedder::cpu::CpuError;
///
/// let err = CpuError::BadInt("foo".into());
/// assert_eq!(err.to_string(), "cgroup: bad int format: foo");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CpuError {
    /// A value that should have been an integer was not (the text is kept).
    BadInt(String),
    /// A CPU list such as `0-3,5` was malformed (the whole list is kept).
    BadIntList(String),
    /// A file could not be read.
    Io {
        /// The file, including the configured root.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A file was read but its content is not what the kernel writes there.
    Format {
        /// The file, including the configured root.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// None of the files this meter needs exist (wrong cgroup version, no `/proc`).
    NoData(&'static str),
    /// This platform has no CPU signal (everything but Linux).
    Unsupported,
}

impl CpuError {
    /// A [`CpuError::Format`] for `path`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> CpuError {
        CpuError::Format {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuError::BadInt(s) => write!(f, "cgroup: bad int format: {s}"),
            CpuError::BadIntList(s) => write!(f, "cgroup: bad int list format: {s}"),
            CpuError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            CpuError::Format { path, detail } => {
                write!(f, "malformed {}: {detail}", path.display())
            }
            CpuError::NoData(why) => write!(f, "no usable cgroup/proc data: {why}"),
            CpuError::Unsupported => f.write_str("no CPU signal on this platform"),
        }
    }
}

impl Error for CpuError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CpuError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
