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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::insight::Insight;
    use crate::analysis::testing::{at, snapshot, tcp};
    use crate::exporter::counters::ConnectionCounters;
    use crate::model::{Owners, Proto, Socket, TcpState, Unattributed};
    use std::net::SocketAddr;
    use std::sync::Arc;

    /// Sockets in every state on `ports` inbound ports, `remotes` outbound remote ports,
    /// UDP listeners, and listeners on two addresses per port.
    fn worst_case(ports: u16, remotes: u16, ms: u64) -> crate::model::Snapshot {
        let states = [
            TcpState::Established,
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::NewSynRecv,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
            TcpState::Close,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closing,
            TcpState::BoundInactive,
        ];
        let mut sockets = Vec::new();
        for i in 0..ports {
            let port = 1000 + i;
            sockets.push(tcp(TcpState::Listen, port, "0.0.0.0:0"));
            let mut v6 = tcp(TcpState::Listen, port, "[::]:0");
            v6.local = SocketAddr::new("::".parse().unwrap(), port);
            sockets.push(v6);
            for (n, &s) in states.iter().enumerate() {
                // Timestamp-dependent remote ports make connections open and close.
                let remote = format!("10.0.{}.{}:{}", i % 200, n, 1 + ms % 1000);
                sockets.push(tcp(s, port, &remote));
            }
            sockets.push(Socket::for_test(
                Proto::Udp,
                TcpState::Close,
                &format!("0.0.0.0:{}", 20000 + i),
                "0.0.0.0:0",
                Owners::None(Unattributed::NotFound),
            ));
        }
        for r in 0..remotes {
            for (n, &s) in states.iter().enumerate() {
                let local_port = 33000 + r * 13 + n as u16;
                sockets.push(tcp(
                    s,
                    local_port,
                    &format!("198.51.100.{}:{}", r % 250, 5000 + r),
                ));
            }
        }
        snapshot(at(ms), sockets)
    }

    #[test]
    fn series_stay_within_the_bound_in_the_worst_case() {
        let limits = Limits {
            max_ports: 20,
            top_destinations: 7,
        };
        let mut insight = Insight::default();
        let mut counters = ConnectionCounters::new();
        let mut text = String::new();
        for ms in [0, 1000, 2000] {
            let mut snap = worst_case(300, 300, ms);
            insight.update(&mut snap);
            let e = Exposition::build(&snap, &insight, None, limits, Some(&mut counters));
            assert_eq!(
                e.inbound.folded,
                2 * 300 - 20,
                "TCP and UDP ports fold together"
            );
            assert_eq!(e.outbound.folded, 300 - 20);
            text = encode(Arc::new(e));
        }
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let series = lines.len();
        let distinct: std::collections::HashSet<&str> = lines
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().0)
            .collect();
        assert_eq!(
            distinct.len(),
            series,
            "no series twice (SYN_RECV is one state)"
        );
        let bound = series_bound(limits);
        assert!(series <= bound, "{series} series > bound {bound}\n{text}");
        // Within the 2 host counters absent here (no /proc/net/netstat) and the unused
        // slots (UDP has 2 states, not 12; the `other` groups of one protocol).
        assert!(
            series + 200 >= bound,
            "{series} series, bound {bound}: the bound is tight"
        );
        assert!(
            text.contains(
                "portside_inbound_connections_opened_total{proto=\"tcp\",port=\"other\"}"
            )
        );
    }
}
