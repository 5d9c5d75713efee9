//! `portside record FILE`: samples headless through the engine and appends every tick,
//! until SIGINT/SIGTERM or `--duration`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portside_core::engine::{Engine, EngineConfig, KernelSource};

use crate::analysis::filter::Filter;
use crate::cli::RecordArgs;
use crate::config::Settings;
use crate::model::Query;
use crate::record::CommandError;
use crate::record::writer::{Bounds, Recorder};
use crate::source::sampler::SamplerConfig;

/// How often a sleeping recorder looks for a stop signal.
const POLL: Duration = Duration::from_millis(50);

pub fn run(args: &RecordArgs, settings: &Settings) -> Result<(), CommandError> {
    let filter_text = settings.filter.value.clone();
    let filter =
        Filter::parse_system(&filter_text).map_err(|e| CommandError::Usage(e.to_string()))?;
    let sampler = SamplerConfig {
        query: Query::default(),
        proc_root: "/proc".into(),
        force_proc_net: false,
        resolve_owners: settings.owners.value,
        // Every socket is sampled: the host totals count them all; the engine's scope
        // keeps what the filter records.
        ..SamplerConfig::default()
    };
    let mut recorder = Recorder::open(
        &args.file,
        Bounds {
            max_size: Some(args.max_size),
            retention: Some(args.retention),
        },
        settings.interval.value,
    )?;
    let source = KernelSource::start(sampler).map_err(|e| CommandError::Failed(e.into()))?;
    let mut engine = Engine::new(
        source,
        EngineConfig {
            alerts: settings.alerts.value.clone(),
            filter,
            filter_text,
            ..EngineConfig::default()
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| CommandError::Failed(e.into()))?;
    }
    let interval = settings.interval.value;
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut ticks = 0u64;
    let mut noted = false;
    loop {
        let started = Instant::now();
        let tick = engine.tick().map_err(|e| CommandError::Failed(e.into()))?;
        if !noted && let Some(note) = crate::output::coverage_note(&tick.snapshot) {
            crate::output::say(&note);
            noted = true;
        }
        recorder.append(&tick)?;
        ticks += 1;
        let next = started + interval;
        if deadline.is_some_and(|d| next > d) {
            break;
        }
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    crate::output::say(&format!(
        "portside: recorded {ticks} tick{} to {}",
        if ticks == 1 { "" } else { "s" },
        recorder.path().display()
    ));
    Ok(())
}
