//! One sample: socket dump + owner join + process details -> an owned `Snapshot`.

use std::path::PathBuf;

use crate::model::{Query, Snapshot};
use crate::source::SourceError;

/// How the sampler reads the kernel.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub query: Query,
    /// Root of the proc filesystem (`/proc`); injected so tests can use a recorded tree.
    pub proc_root: PathBuf,
    /// Read `/proc/net/{tcp,udp}{,6}` instead of netlink sock_diag.
    pub force_proc_net: bool,
    /// Join sockets with their owning processes.
    pub resolve_owners: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            query: Query::default(),
            proc_root: PathBuf::from("/proc"),
            force_proc_net: false,
            resolve_owners: true,
        }
    }
}

/// Long-lived sampler: keeps buffers and the owner index across ticks.
pub struct Sampler {
    #[allow(dead_code)]
    config: SamplerConfig,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Result<Sampler, SourceError> {
        Ok(Sampler { config })
    }

    /// Take one sample.
    pub fn sample(&mut self) -> Result<Snapshot, SourceError> {
        Ok(Snapshot::empty())
    }
}
