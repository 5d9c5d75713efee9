//! The exporter's tick: sample, analyse, fold, encode, publish; every `--interval`.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::analysis::insight::{Insight, InsightConfig};
use crate::exporter::counters::ConnectionCounters;
use crate::exporter::{Exposition, Limits, encode};
use crate::serve::published::Published;
use crate::source::SourceError;
use crate::source::sampler::{Sampler, SamplerConfig};
use crate::source::sysctl;

/// The state carried from tick to tick.
pub struct Ticker {
    sampler: Sampler,
    insight: Insight,
    counters: ConnectionCounters,
    limits: Limits,
    proc_root: std::path::PathBuf,
    ticks: u64,
    errors: u64,
    last: Option<Arc<Exposition>>,
}

impl Ticker {
    pub fn new(config: SamplerConfig, limits: Limits) -> Result<Ticker, SourceError> {
        let proc_root = config.proc_root.clone();
        Ok(Ticker {
            sampler: Sampler::new(config)?,
            // The exporter keeps no history: a short window keeps its memory small.
            insight: Insight::new(InsightConfig {
                window: Duration::from_secs(2),
                max_ports: 1,
                max_listeners: 1,
                ..InsightConfig::default()
            }),
            counters: ConnectionCounters::new(),
            limits,
            proc_root,
            ticks: 0,
            errors: 0,
            last: None,
        })
    }

    /// Take one tick and return the encoded exposition. A failed sample keeps the last
    /// good values (with the error counted); the error is returned for the log.
    pub fn tick(&mut self) -> (Vec<u8>, Option<SourceError>) {
        let started = Instant::now();
        match self.sampler.sample() {
            Ok(snapshot) => {
                self.insight.update(&snapshot);
                let stats = sysctl::listen_stats(&self.proc_root).ok();
                self.ticks += 1;
                let mut e = Exposition::build(
                    &snapshot,
                    &self.insight,
                    stats,
                    self.limits,
                    Some(&mut self.counters),
                );
                e.ticks = self.ticks;
                e.tick_errors = self.errors;
                e.tick_duration = started.elapsed();
                let e = Arc::new(e);
                self.last = Some(Arc::clone(&e));
                (encode(e).into_bytes(), None)
            }
            Err(err) => {
                self.errors += 1;
                let body = self.last.as_ref().map_or_else(Vec::new, |last| {
                    let mut e = Exposition::clone(last);
                    e.tick_errors = self.errors;
                    encode(Arc::new(e)).into_bytes()
                });
                (body, Some(err))
            }
        }
    }
}

/// Tick every `interval` (measured from the start of each tick) on this thread, forever.
pub fn run(mut ticker: Ticker, interval: Duration, published: &Published) {
    let mut logged_error = false;
    loop {
        let started = Instant::now();
        let (body, err) = ticker.tick();
        if !body.is_empty() {
            published.publish(body);
        }
        if let Some(err) = err
            && !logged_error
        {
            eprintln!("portside: warning: sampling failed (serving the last values): {err}");
            logged_error = true;
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
    }
}
