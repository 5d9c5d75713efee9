//! `--format prometheus`: one exposition in the Prometheus text format, for `node_exporter`'s
//! textfile collector. The same metrics as `portside serve` (see `exporter`), less the
//! connection counters: a one-shot run sees no connections open or close, and a counter
//! that restarted at every run would mislead `rate()`.

use std::io::{self, Write};
use std::sync::Arc;

use crate::analysis::insight::Insight;
use crate::exporter::{Exposition, Limits, encode};
use crate::model::Snapshot;
use crate::source::sysctl::ListenStats;

pub fn write(
    out: &mut impl Write,
    snapshot: &Snapshot,
    insight: &Insight,
    listen_stats: Option<ListenStats>,
) -> io::Result<()> {
    let exposition = Exposition::build(snapshot, insight, listen_stats, Limits::default(), None);
    out.write_all(encode(Arc::new(exposition)).as_bytes())
}
