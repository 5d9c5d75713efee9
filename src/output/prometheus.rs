//! `--format prometheus`: one exposition in the Prometheus text format, for `node_exporter`'s
//! textfile collector. The same metrics as `portside serve` (see `exporter`), less the
//! connection counters: a one-shot run sees no connections open or close, and a counter
//! that restarted at every run would mislead `rate()`.

use std::io::{self, Write};
use std::sync::Arc;

use portside_core::engine::Tick;

use crate::exporter::{Exposition, Limits, encode};

/// The tick's scope (the sockets the filter selects) as one exposition.
pub fn write(out: &mut impl Write, tick: &Tick) -> io::Result<()> {
    let exposition = Exposition::of_tick(tick, Limits::default(), None);
    out.write_all(encode(Arc::new(exposition)).as_bytes())
}
