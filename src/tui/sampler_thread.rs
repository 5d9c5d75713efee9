//! The sampler's own thread: one sample per interval, each moved to the UI as an owned
//! snapshot with the host counters read next to it. The UI never waits on a sample and
//! never reads `/proc` itself; the sleep between samples is cancellable.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::source::sampler::{Sampler, SamplerConfig};
use crate::source::sysctl::{self, KernelSettings};
use crate::tui::event::{Cancel, Event, Sample};
use crate::tui::terminal::panic_message;

/// Where the UI's snapshots come from: the kernel (via [`Sampler`]), or a synthetic
/// source for demos and tests.
pub trait SnapshotSource: Send + 'static {
    /// Takes one sample; the error is shown in the UI's status line.
    fn sample(&mut self) -> Result<Sample, String>;

    /// Drops internal state after a panic in `sample`, so the next call starts afresh.
    fn reset(&mut self) {}
}

/// The real sampler, built on first use and rebuilt after a failure to build or a panic,
/// so a broken source shows as an error line and recovers when it can.
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
        let root = &self.config.proc_root;
        Ok(Sample {
            snapshot: Box::new(snapshot),
            listen_stats: sysctl::listen_stats(root).ok(),
            settings: Some(KernelSettings::read(root)),
        })
    }

    fn reset(&mut self) {
        self.sampler = None;
    }
}

/// Starts sampling every `interval`, measured start to start (a sample slower than the
/// interval is followed at once by the next).
pub fn spawn(
    source: impl SnapshotSource,
    interval: Duration,
    tx: Sender<Event>,
    cancel: Cancel,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("sampler".into())
        .spawn(move || run(source, interval, &tx, &cancel))
}

fn run(mut source: impl SnapshotSource, interval: Duration, tx: &Sender<Event>, cancel: &Cancel) {
    while !cancel.is_cancelled() {
        let started = Instant::now();
        // A panic in the source becomes an error line; the source starts afresh next tick.
        let event = match panic::catch_unwind(AssertUnwindSafe(|| source.sample())) {
            Ok(Ok(sample)) => Event::Sample(sample),
            Ok(Err(e)) => Event::SampleError(e),
            Err(payload) => {
                source.reset();
                Event::SampleError(format!("sampler panicked: {}", panic_message(&*payload)))
            }
        };
        if cancel.is_cancelled() || tx.send(event).is_err() {
            return;
        }
        if cancel.sleep(interval.saturating_sub(started.elapsed())) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Fails, panics, then succeeds, in turn.
    struct Flaky(u32);

    impl SnapshotSource for Flaky {
        fn sample(&mut self) -> Result<Sample, String> {
            self.0 += 1;
            match self.0 % 3 {
                1 => Err("no netlink".into()),
                2 => panic!("decoder bug"),
                _ => Ok(Sample::of(crate::model::Snapshot::empty())),
            }
        }

        fn reset(&mut self) {
            self.0 += 10 * 3;
        }
    }

    #[test]
    fn errors_and_panics_become_events_and_sampling_goes_on() {
        let (tx, rx) = mpsc::channel();
        let cancel = Cancel::default();
        let handle = spawn(Flaky(0), Duration::from_millis(1), tx, cancel.clone()).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                Event::SampleError(e) => e,
                Event::Sample(_) => "snapshot".into(),
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(
            got,
            ["no netlink", "sampler panicked: decoder bug", "snapshot"]
        );
        cancel.cancel();
        handle.join().unwrap();
    }

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

    #[test]
    fn quits_at_once_during_a_long_interval() {
        let (tx, rx) = mpsc::channel();
        let cancel = Cancel::default();
        let source = KernelSource::new(SamplerConfig::default());
        let handle = spawn(source, Duration::from_secs(3600), tx, cancel.clone()).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let t = Instant::now();
        cancel.cancel();
        handle.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
