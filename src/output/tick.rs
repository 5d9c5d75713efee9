//! One printed tick in any format: what `--once`/`--count` print live and `replay --at`
//! prints from a recording, from the same parts.

use std::io::{self, Write};

use portside_core::engine::Tick;

use crate::analysis::alerts::FiredAlert;
use crate::analysis::filter::Filter;
use crate::analysis::group;
use crate::analysis::insight::Insight;
use crate::model::Snapshot;
use crate::output::json::GroupReport;
use crate::output::report::{self, TimeWaitJson};
use crate::output::{self, Format, Options};
use crate::source::sysctl::KernelSettings;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Print<'a> {
    pub format: Format,
    pub opts: Options,
    pub filter: &'a Filter,
    /// Ticks printed in all (a table gets a time line per tick when more than one).
    pub count: u64,
}

/// What one tick shows: the scoped snapshot and insight, the firing alerts, the kernel
/// settings.
pub struct Parts<'a> {
    /// The whole tick (the Prometheus exposition reads it).
    pub tick: &'a Tick,
    pub snapshot: &'a Snapshot,
    pub insight: &'a Insight,
    pub fired: &'a [FiredAlert],
    pub kernel: &'a KernelSettings,
}

/// Writes tick number `n` (from 0).
pub fn write(out: &mut dyn Write, print: Print<'_>, parts: &Parts<'_>, n: u64) -> io::Result<()> {
    let Parts {
        tick,
        snapshot,
        insight,
        fired,
        kernel,
    } = *parts;
    let opts = print.opts;
    let groups = opts
        .group
        .then(|| group::group(snapshot, print.filter, opts.grouping));
    let first = n == 0;
    match (print.format, &groups) {
        (Format::Prometheus, _) => output::prometheus::write(&mut &mut *out, tick),
        (Format::Table, _) => {
            if !first {
                writeln!(out)?;
            }
            if print.count > 1 {
                let time = humantime::format_rfc3339_millis(snapshot.taken_at);
                writeln!(out, "# {time}")?;
            }
            let mut text = String::new();
            if let Some(groups) = &groups {
                output::group::write_table(out, snapshot, groups, opts.numeric)?;
                text.push('\n');
                TimeWaitJson::new(insight, snapshot, kernel).write_text(&mut text);
            } else {
                output::table::write_sockets(out, snapshot, print.filter, opts)?;
            }
            report::write_alerts_text(fired, &mut text);
            out.write_all(text.as_bytes())
        }
        (Format::Json, Some(groups)) => {
            let extra = GroupReport {
                time_wait: TimeWaitJson::new(insight, snapshot, kernel),
                listeners: report::listeners(insight, snapshot),
            };
            output::json::write_groups(out, snapshot, groups, extra, opts, fired)
        }
        (Format::Json, None) => {
            output::json::write_sockets(out, snapshot, print.filter, opts, fired)
        }
        (Format::Csv, Some(groups)) => {
            output::csv::write_groups(out, snapshot, groups, opts, first)
        }
        (Format::Csv, None) => output::csv::write_sockets(out, snapshot, print.filter, opts, first),
    }
}
