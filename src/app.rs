//! The orchestrator: parse arguments, pick the mode, run it, map errors to exit codes.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use clap::Parser;
use clap::error::ErrorKind;

use portside_core::engine::{Engine, EngineConfig, KernelSource};

use crate::analysis::group;
use crate::cli::{Cli, Command, Config, Mode, stdout_is_tty};
use crate::output::json::GroupReport;
use crate::output::report::{self, TimeWaitJson};
use crate::output::{self, Format, Options};
use crate::source::sysctl::KernelSettings;

/// Exit code for bad input (flags, filters, durations).
pub const EXIT_USAGE: u8 = 2;

/// Run portside with the process's arguments; the whole program behind `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    if let Some(Command::Serve(args)) = &cli.command {
        return crate::serve::main(args);
    }
    let config = match cli.into_config(stdout_is_tty()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portside: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // Ended by a signal: the terminal is restored; exit as a shell expects (128 + n).
        Err(e) if e.downcast_ref::<crate::tui::Terminated>().is_some() => {
            let sig = e
                .downcast_ref::<crate::tui::Terminated>()
                .map_or(15, |t| t.0);
            ExitCode::from(128u8.saturating_add(u8::try_from(sig).unwrap_or(0)))
        }
        Err(e) => {
            eprintln!("portside: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap renders them; every other error becomes one line
/// naming the bad part, with exit code 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            // clap's first paragraph names the bad part; the rest is usage and tips.
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!(
                "portside: error: {} (see --help)",
                first.join(" ").trim_start_matches("error: ")
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Run the chosen mode.
pub fn run(config: &Config) -> anyhow::Result<()> {
    match config.mode {
        Mode::Tui => crate::tui::run(crate::tui::TuiConfig {
            sampler: config.sampler.clone(),
            interval: config.interval,
            filter: config.filter_text.clone(),
            numeric: config.numeric,
            alerts: config.alerts.clone(),
        }),
        Mode::Print { count } => print(config, count),
    }
}

/// Print `count` ticks of the engine, `interval` apart (measured from the start of each
/// sample). The engine scopes groups, the TIME_WAIT report, listeners and alerts to the
/// filter, exactly as the live view's panels; streamed output carries its rates.
fn print(config: &Config, count: u64) -> anyhow::Result<()> {
    let source = KernelSource::start(config.sampler.clone())?;
    let mut engine = Engine::new(
        source,
        EngineConfig {
            alerts: config.alerts.clone(),
            filter: config.filter.clone(),
            filter_text: config.filter_text.clone(),
            ..EngineConfig::default()
        },
    );
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let opts = Options {
        numeric: config.numeric,
        group: config.group,
    };
    let mut noted = false;
    for n in 0..count {
        let started = Instant::now();
        let tick = engine.tick()?;
        let scope = &tick.scope;
        let snapshot = &*scope.snapshot;
        let fired = &scope.alerts;
        let kernel = tick
            .settings
            .unwrap_or_else(|| KernelSettings::read(&config.sampler.proc_root));
        if !noted && let Some(note) = output::coverage_note(snapshot) {
            eprintln!("{note}");
            noted = true;
        }
        let groups = config.group.then(|| group::group(snapshot, &config.filter));
        let first = n == 0;
        match (config.format, &groups) {
            (Format::Prometheus, _) => output::prometheus::write(&mut out, &tick)?,
            (Format::Table, _) => {
                if !first {
                    writeln!(out)?;
                }
                if count > 1 {
                    let time = humantime::format_rfc3339_millis(snapshot.taken_at);
                    writeln!(out, "# {time}")?;
                }
                let mut text = String::new();
                if let Some(groups) = &groups {
                    output::group::write_table(&mut out, snapshot, groups, opts.numeric)?;
                    text.push('\n');
                    TimeWaitJson::new(&scope.insight, snapshot, &kernel).write_text(&mut text);
                } else {
                    output::table::write_sockets(&mut out, snapshot, &config.filter, opts)?;
                }
                report::write_alerts_text(fired, &mut text);
                out.write_all(text.as_bytes())?;
            }
            (Format::Json, Some(groups)) => {
                let extra = GroupReport {
                    time_wait: TimeWaitJson::new(&scope.insight, snapshot, &kernel),
                    listeners: report::listeners(&scope.insight, snapshot),
                };
                output::json::write_groups(&mut out, snapshot, groups, extra, opts, fired)?;
            }
            (Format::Json, None) => {
                output::json::write_sockets(&mut out, snapshot, &config.filter, opts, fired)?;
            }
            (Format::Csv, Some(groups)) => {
                output::csv::write_groups(&mut out, snapshot, groups, opts, first)?;
            }
            (Format::Csv, None) => {
                output::csv::write_sockets(&mut out, snapshot, &config.filter, opts, first)?;
            }
        }
        out.flush()?;
        drop(tick);
        if n + 1 < count
            && let Some(rest) = config.interval.checked_sub(started.elapsed())
        {
            thread::sleep(rest);
        }
    }
    Ok(())
}
