//! The exporter's tick: the engine samples and analyses; the exporter folds, encodes and
//! publishes; every `--interval`. The exporter is one more consumer of the engine's tick:
//! it re-derives nothing the engine computes.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use portside_core::engine::{Engine, EngineConfig, KernelSource, TickError};

use crate::analysis::insight::InsightConfig;
use crate::exporter::counters::ConnectionCounters;
use crate::exporter::{Exposition, Limits, encode};
use crate::serve::published::Published;
use crate::source::SourceError;
use crate::source::sampler::SamplerConfig;

/// The state carried from tick to tick.
pub struct Ticker {
    engine: Engine,
    counters: ConnectionCounters,
    limits: Limits,
    errors: u64,
    last: Option<Arc<Exposition>>,
}

impl Ticker {
    pub fn new(config: SamplerConfig, limits: Limits) -> Result<Ticker, SourceError> {
        let source = KernelSource::start(config)?;
        let engine = Engine::new(
            source,
            EngineConfig {
                // The exporter serves the present; Prometheus keeps the history. A short
                // window keeps the engine's history rings small.
                insight: InsightConfig {
                    window: Duration::from_secs(2),
                    max_ports: 1,
                    max_listeners: 1,
                    ..InsightConfig::default()
                },
                alerts: Vec::new(),
                report_top: 0,
                top_peers: 0,
                ..EngineConfig::default()
            },
        );
        Ok(Ticker {
            engine,
            counters: ConnectionCounters::new(),
            limits,
            errors: 0,
            last: None,
        })
    }

    /// Take one tick and return the encoded exposition. A failed sample keeps the last
    /// good values (with the error counted); the error is returned for the log.
    pub fn tick(&mut self) -> (Vec<u8>, Option<TickError>) {
        match self.engine.tick() {
            Ok(tick) => {
                let started = Instant::now();
                let mut e = Exposition::of_tick(&tick, self.limits, Some(&mut self.counters));
                // Released before the next tick, so the engine updates its insight in
                // place rather than copying it.
                drop(tick);
                e.tick_errors = self.errors;
                e.tick_duration += started.elapsed();
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
            crate::output::say(&format!(
                "portside: warning: sampling failed (serving the last values): {err}"
            ));
            logged_error = true;
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
    }
}
