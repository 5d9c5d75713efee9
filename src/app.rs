//! The orchestrator: parse arguments, pick the mode, run it, map errors to exit codes.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use clap::Parser;
use clap::error::ErrorKind;

use crate::analysis::filter::Filter;
use crate::analysis::insight::{Insight, InsightConfig};
use crate::analysis::printable::{message_line, quoted};
use crate::analysis::{alerts, group};
use crate::cli::{Cli, Config, Mode, stdout_is_tty};
use crate::model::{Coverage, Snapshot};
use crate::output::json::GroupReport;
use crate::output::report::{self, TimeWaitJson};
use crate::output::{self, Format, Options};
use crate::source::sampler::Sampler;
use crate::source::sysctl::{self, KernelSettings};

/// Exit code for bad input (flags, filters, durations).
pub const EXIT_USAGE: u8 = 2;

/// Run portside with the process's arguments; the whole program behind `main`.
pub fn main() -> ExitCode {
    if let Some(bad) = non_utf8_argument(std::env::args_os()) {
        say(&format!("portside: error: {bad}"));
        return ExitCode::from(EXIT_USAGE);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let config = match cli.into_config(stdout_is_tty()) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("portside: error: {e}"));
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
            say(&format!("portside: error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Write one message line to stderr: control characters escaped, long quoted parts cut
/// (a 100 KB argument is not echoed whole). A write error is ignored: stderr may be a
/// terminal that went away, and `eprintln!` would panic there.
fn say(line: &str) {
    let mut line = message_line(line);
    line.push('\n');
    let _ = io::stderr().write_all(line.as_bytes());
}

/// The first argument that is not valid UTF-8, named by position and shown lossily.
fn non_utf8_argument(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    args.enumerate().skip(1).find_map(|(n, arg)| {
        arg.to_str().is_none().then(|| {
            format!(
                "argument {n} ({}) is not valid UTF-8",
                quoted(&arg.to_string_lossy())
            )
        })
    })
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
            say(&format!(
                "portside: error: {} (see --help)",
                first.join(" ").trim_start_matches("error: ")
            ));
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

/// Print `count` snapshots, `interval` apart (measured from the start of each sample).
/// An `Insight` follows the snapshots, so streamed output carries rates and alerts.
fn print(config: &Config, count: u64) -> anyhow::Result<()> {
    let mut sampler = Sampler::new(config.sampler.clone())?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let opts = Options {
        numeric: config.numeric,
        group: config.group,
    };
    let proc_root = &config.sampler.proc_root;
    let kernel = KernelSettings::read(proc_root);
    let mut insight = Insight::new(InsightConfig::default());
    let mut noted = false;
    for n in 0..count {
        let started = Instant::now();
        let mut snapshot = sampler.sample()?;
        retain_matching(&mut snapshot, &config.filter);
        insight.update(&snapshot);
        if let Ok(stats) = sysctl::listen_stats(proc_root) {
            insight.record_listen_stats(&stats);
        }
        let fired = alerts::evaluate(&config.alerts, &insight);
        if !noted && let Some(note) = output::coverage_note(&snapshot) {
            say(&note);
            noted = true;
        }
        let groups = config
            .group
            .then(|| group::group(&snapshot, &config.filter));
        let first = n == 0;
        match (config.format, &groups) {
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
                    output::group::write_table(&mut out, &snapshot, groups, opts.numeric)?;
                    text.push('\n');
                    TimeWaitJson::new(&insight, &snapshot, &kernel).write_text(&mut text);
                } else {
                    output::table::write_sockets(&mut out, &snapshot, &config.filter, opts)?;
                }
                report::write_alerts_text(&fired, &mut text);
                out.write_all(text.as_bytes())?;
            }
            (Format::Json, Some(groups)) => {
                let extra = GroupReport {
                    time_wait: TimeWaitJson::new(&insight, &snapshot, &kernel),
                    listeners: report::listeners(&insight, &snapshot),
                };
                output::json::write_groups(&mut out, &snapshot, groups, extra, opts, &fired)?;
            }
            (Format::Json, None) => {
                output::json::write_sockets(&mut out, &snapshot, &config.filter, opts, &fired)?;
            }
            (Format::Csv, Some(groups)) => {
                output::csv::write_groups(&mut out, &snapshot, groups, opts, first)?;
            }
            (Format::Csv, None) => {
                output::csv::write_sockets(&mut out, &snapshot, &config.filter, opts, first)?;
            }
        }
        out.flush()?;
        if n + 1 < count
            && let Some(rest) = config.interval.checked_sub(started.elapsed())
        {
            thread::sleep(rest);
        }
    }
    Ok(())
}

/// Keep only the sockets the filter matches, so groups, the TIME_WAIT report, listeners
/// and alerts all describe what the user asked about; coverage is recounted to match.
fn retain_matching(snapshot: &mut Snapshot, filter: &Filter) {
    if filter.is_empty() {
        return;
    }
    let keep: Vec<bool> = snapshot
        .sockets
        .iter()
        .map(|s| filter.matches(s, snapshot))
        .collect();
    let mut keep = keep.into_iter();
    snapshot.sockets.retain(|_| keep.next().unwrap_or(false));
    let mut coverage = Coverage::default();
    for s in &snapshot.sockets {
        coverage.add(s.owners);
    }
    snapshot.coverage = coverage;
}
