//! Where the engine's samples come from: the kernel (via [`Sampler`]), or a synthetic
//! source for demos, tests and replay.

use crate::model::Snapshot;
use crate::source::sampler::{Sampler, SamplerConfig};
use crate::source::sysctl::{self, KernelSettings, ListenStats};

/// One sample: the socket snapshot and the host figures read right after it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub snapshot: Snapshot,
    /// `/proc/net/netstat` ListenOverflows / ListenDrops; `None` when unreadable.
    pub listen_stats: Option<ListenStats>,
    /// The sysctls the TIME_WAIT report explains; `None` when the source has none (the
    /// engine then keeps the last ones it had).
    pub settings: Option<KernelSettings>,
    /// One line on how the sample was read, for the user once (the kernel refused the
    /// selection program, so whole tables were read); `None` normally.
    pub note: Option<String>,
}

impl Sample {
    /// A sample of a snapshot alone (no counters, no settings).
    pub fn of(snapshot: Snapshot) -> Sample {
        Sample {
            snapshot,
            listen_stats: None,
            settings: None,
            note: None,
        }
    }
}

/// A source of samples: one call per tick.
pub trait SnapshotSource: Send + 'static {
    /// Takes one sample; the error is one line for the user.
    fn sample(&mut self) -> Result<Sample, String>;

    /// Drops internal state after a panic in `sample`, so the next call starts afresh.
    fn reset(&mut self) {}
}

/// The real sampler, built on first use and rebuilt after a failure to build or a panic,
/// so a broken source shows as an error and recovers when it can.
pub struct KernelSource {
    config: SamplerConfig,
    sampler: Option<Sampler>,
}

impl KernelSource {
    pub fn new(config: SamplerConfig) -> KernelSource {
        KernelSource {
            config,
            sampler: None,
        }
    }

    /// A source whose sampler is built now, so a bad configuration fails here.
    pub fn start(config: SamplerConfig) -> Result<KernelSource, crate::source::SourceError> {
        let sampler = Sampler::new(config.clone())?;
        Ok(KernelSource {
            config,
            sampler: Some(sampler),
        })
    }
}

impl SnapshotSource for KernelSource {
    /// The snapshot, then `/proc/net/netstat` and the sysctls (six small reads, ~0.1 ms):
    /// read right after the dump so counter rates and socket counts cover the same time.
    fn sample(&mut self) -> Result<Sample, String> {
        let sampler = match &mut self.sampler {
            Some(s) => s,
            None => self.sampler.insert(
                Sampler::new(self.config.clone())
                    .map_err(|e| format!("cannot start sampling: {e}"))?,
            ),
        };
        let snapshot = sampler.sample().map_err(|e| e.to_string())?;
        let note = sampler.selection_note();
        let root = &self.config.proc_root;
        Ok(Sample {
            snapshot,
            listen_stats: sysctl::listen_stats(root).ok(),
            settings: Some(KernelSettings::read(root)),
            note,
        })
    }

    fn reset(&mut self) {
        self.sampler = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_source_samples_with_counters_and_settings() {
        let mut source = KernelSource::new(SamplerConfig::default());
        let sample = source.sample().unwrap();
        assert!(
            sample.listen_stats.is_some(),
            "/proc/net/netstat is readable"
        );
        let settings = sample.settings.unwrap();
        assert_eq!(settings.ephemeral_range, sample.snapshot.ephemeral_range);
        source.reset();
        assert!(source.sample().is_ok());
    }

    #[test]
    fn a_proc_root_without_counters_or_sysctls_gives_none() {
        // `net/` must exist for the sampler; netstat and the sysctls are missing.
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("net")).unwrap();
        let config = SamplerConfig {
            proc_root: root.path().to_path_buf(),
            force_proc_net: false,
            resolve_owners: false,
            ..SamplerConfig::default()
        };
        let mut source = KernelSource::new(config);
        let sample = source.sample().unwrap();
        assert_eq!(sample.listen_stats, None);
        let settings = sample.settings.unwrap();
        assert_eq!(settings.tcp_tw_reuse, None);
        assert_eq!(settings.ephemeral_range, sysctl::DEFAULT_EPHEMERAL_RANGE);
    }
}
