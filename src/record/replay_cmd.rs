//! `portside replay FILE --at TIME --once`: the recorded state at TIME, printed as `--once`
//! printed it then (same writers; `--group`'s report derived by a fresh engine from the
//! rebuilt sample, as `--once` derives it from its one sample).

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use portside_core::engine::{Engine, EngineConfig, Sample, SnapshotSource};

use crate::analysis::filter::Filter;
use crate::cli::ReplayArgs;
use crate::config::Settings;
use crate::output::tick::{self, Parts, Print};
use crate::output::{self, Options};
use crate::record::CommandError;
use crate::record::reader::Recording;
use crate::record::when;
use crate::source::sysctl::KernelSettings;

/// The engine's source in replay: samples come from the recording through `ingest`.
struct Recorded;

impl SnapshotSource for Recorded {
    fn sample(&mut self) -> Result<Sample, String> {
        Err("a replay takes its samples from the recording".into())
    }
}

fn stamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn run(args: &ReplayArgs, settings: &Settings) -> Result<(), CommandError> {
    let usage = CommandError::Usage;
    if !args.once {
        return Err(usage(
            "replay prints one recorded moment: give --at TIME --once (this build has no interactive replay)"
                .into(),
        ));
    }
    let filter_text = settings.filter.value.clone();
    let filter = Filter::parse_system(&filter_text).map_err(|e| usage(e.to_string()))?;
    let recording = Recording::open(&args.file)?;
    let Some((first, last)) = recording.extent()? else {
        return Err(usage(format!(
            "{}: the recording holds no complete tick yet",
            args.file.display()
        )));
    };
    let at_ms = when::resolve(&args.at, last.time_ms).map_err(usage)?;
    let span = format!(
        "the recording spans {} to {}",
        stamp(first.time_ms),
        stamp(last.time_ms)
    );
    if at_ms < first.time_ms {
        return Err(usage(format!(
            "--at {}: {} is before the recording starts ({span})",
            args.at,
            stamp(at_ms)
        )));
    }
    if at_ms > last.time_ms + recording.interval_ms()?.max(1000) {
        return Err(usage(format!(
            "--at {}: {} is after the recording ends ({span})",
            args.at,
            stamp(at_ms)
        )));
    }
    let at = recording
        .tick_at(at_ms)?
        .ok_or_else(|| usage(format!("--at {}: no tick at {}", args.at, stamp(at_ms))))?;
    let replayed = recording.replay(at)?;
    let kernel = replayed
        .settings
        .unwrap_or_else(|| KernelSettings::read(std::path::Path::new("/proc")));
    let mut engine = Engine::new(
        Recorded,
        EngineConfig {
            alerts: Vec::new(),
            filter: filter.clone(),
            filter_text,
            ..EngineConfig::default()
        },
    );
    let derived = engine.ingest(
        Sample {
            snapshot: replayed.snapshot,
            listen_stats: replayed.listen_stats,
            settings: Some(kernel),
            note: None,
        },
        Instant::now(),
    );
    let scope = &derived.scope;
    if let Some(note) = output::coverage_note(&scope.snapshot) {
        crate::output::say(&note);
    }
    let print = Print {
        format: settings.format.value,
        opts: Options {
            numeric: settings.numeric.value,
            group: settings.group.value,
            grouping: crate::analysis::group::Grouping::default(),
            reach: settings.listening.value,
        },
        filter: &filter,
        count: 1,
    };
    let parts = Parts {
        tick: &derived,
        snapshot: &scope.snapshot,
        insight: &scope.insight,
        fired: &replayed.alerts,
        kernel: &kernel,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    tick::write(&mut out, print, &parts, 0)
        .and_then(|()| out.flush())
        .map_err(|e| CommandError::Failed(e.into()))
}
