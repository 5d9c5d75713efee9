//! The Prometheus exporter's metrics: what one tick exposes, folded to a bounded series
//! count, encoded by `prometheus-client` through a custom collector.
//!
//! Shared by `portside serve` (which encodes once per tick and serves the bytes to every
//! scrape) and `--once --format prometheus` (`node_exporter`'s textfile collector).
//!
//! Series bound: with `P` = `--max-ports` and `D` = `--top-destinations`, a scrape has at
//! most [`series_bound`] series, whatever the socket count (README: "Prometheus").

pub mod collector;
pub mod counters;
pub mod exposition;
pub mod fold;

pub use collector::{CONTENT_TYPE, encode};
pub use exposition::{Exposition, Limits};

/// Distinct `state` label values per protocol (`SYN_RECV` covers both kernel values).
pub const STATES_PER_PORT: usize = 12;

/// The most series one scrape can hold with these limits (a port series carries at most
/// [`STATES_PER_PORT`] states; every folded group one `other` port per protocol).
pub fn series_bound(limits: Limits) -> usize {
    let p = limits.max_ports;
    let d = limits.top_destinations;
    let port_groups = (p + 2) * STATES_PER_PORT; // inbound or outbound, incl. 2 x other
    let listeners = 2 * (p + 1); // queue length + limit, incl. other
    let connections = 2 * (p + 2); // opened + closed per inbound port, incl. 2 x other
    let fixed = 1 // build_info
        + 2 // folded_ports{direction}
        + 1 // folded_listeners
        + 2 // time_wait_sockets{side}
        + 2 // ephemeral range size, destinations
        + 2 // listen overflows, drops
        + 5 // owner_sockets{attribution}
        + 4; // tick duration, timestamp, ticks, tick errors
    2 * port_groups + listeners + connections + d + fixed
}
