//! Kernel access: socket tables (sock_diag, `/proc/net` fallback), the owner join,
//! process details, service names and kernel settings. Knows nothing of the UI or CLI.

use std::io;
use std::path::PathBuf;

#[cfg(target_os = "linux")]
pub mod destroyed;
pub mod owners;
pub mod process;
pub mod procnet;
pub mod sampler;
pub mod selection;
pub mod services;
#[cfg(target_os = "linux")]
pub mod sockdiag;
pub mod sysctl;
pub mod usage;

/// An error reading the kernel's tables. Never a silently shorter list.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The netlink socket could not be opened, or a dump failed part way.
    #[error("netlink sock_diag: {context}: {source}")]
    Netlink {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// A netlink message that does not decode.
    #[error("netlink sock_diag: malformed message: {0}")]
    Decode(String),
    /// A file under `/proc` that could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A line of a `/proc` table that does not parse.
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// Not a Linux system with `/proc`.
    #[error("{0}")]
    Unsupported(String),
}
