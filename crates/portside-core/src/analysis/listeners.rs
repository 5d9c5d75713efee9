//! The listener panel's data: one row per listening TCP socket with its accept queue,
//! the states of the connections on its port, churn, top peers and queue history.

use foldhash::{HashMap, HashMapExt};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::analysis::insight::Insight;
use crate::analysis::ports::{PortKey, top_counts};
use crate::analysis::rates::{ConnRate, is_connection};
use crate::analysis::ring::Ring;
use crate::model::{Owners, Proto, Snapshot, Socket, TcpState};

/// Identifies one listening socket across ticks (several share an address with `SO_REUSEPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKey {
    pub local: SocketAddr,
    pub inode: u64,
}

/// A listening TCP socket in the current snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub local: SocketAddr,
    pub inode: u64,
    pub owners: Owners,
    /// Connections waiting in the accept queue (Recv-Q of the LISTEN socket).
    pub queue: u32,
    /// The accept queue's maximum, `min(backlog, somaxconn)` (Send-Q of the LISTEN socket).
    pub backlog: u32,
}

impl Listener {
    pub(crate) fn of(s: &Socket) -> Listener {
        Listener {
            local: s.local,
            inode: s.inode,
            owners: s.owners,
            queue: s.recv_q,
            backlog: s.send_q,
        }
    }

    pub fn key(&self) -> ListenerKey {
        ListenerKey {
            local: self.local,
            inode: self.inode,
        }
    }

    /// Accept-queue fill in percent of the backlog; `None` with a zero backlog.
    pub fn fill_percent(&self) -> Option<f64> {
        (self.backlog > 0).then(|| 100.0 * f64::from(self.queue) / f64::from(self.backlog))
    }
}

/// Host-wide ListenOverflows / ListenDrops per second (`/proc/net/netstat`, TcpExt):
/// connections refused because an accept queue was full, and every dropped SYN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenRate {
    pub overflows_per_sec: f64,
    pub drops_per_sec: f64,
}

impl ListenRate {
    /// Rates of counter increases over `span_ms`; `None` when no time passed.
    pub fn of(overflows: u32, drops: u32, span_ms: u32) -> Option<ListenRate> {
        (span_ms > 0).then(|| {
            let secs = f64::from(span_ms) / 1000.0;
            ListenRate {
                overflows_per_sec: f64::from(overflows) / secs,
                drops_per_sec: f64::from(drops) / secs,
            }
        })
    }
}

/// One row of the listener panel. Connection counts, rates and peers are per local port:
/// listeners sharing a port (IPv4 and IPv6, `SO_REUSEPORT` workers) show the same figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRow {
    pub listener: Listener,
    pub syn_recv: u32,
    pub established: u32,
    /// Growing CLOSE_WAIT means the application does not close its sockets.
    pub close_wait: u32,
    /// Change of CLOSE_WAIT on the port over the last minute (`None`: port not tracked).
    pub close_wait_delta: Option<i64>,
    /// New and closed connections per second on the port; `None` on the first tick.
    pub rate: Option<ConnRate>,
    /// Remote addresses with the most connections on the port, most first.
    pub top_peers: Vec<(IpAddr, u32)>,
}

impl ListenerRow {
    /// Accept-queue length over time, oldest first (absent past the listener budget).
    pub fn queue_history<'a>(&self, insight: &'a Insight) -> Option<&'a Ring<u32>> {
        insight.history().listener_queue(&self.listener.key())
    }
}

/// One row per listening TCP socket of the last update, ordered by port then address.
/// `snapshot` must be the one last passed to `insight.update` (it supplies the peers).
pub fn listener_rows(insight: &Insight, snapshot: &Snapshot, top_peers: usize) -> Vec<ListenerRow> {
    let peers = peers_by_port(insight, snapshot, top_peers);
    let minute = insight.history().points_within(Duration::from_secs(60));
    let mut rows: Vec<ListenerRow> = insight
        .listeners()
        .iter()
        .map(|l| {
            let key = PortKey::new(Proto::Tcp, l.local.port());
            let count = |state| insight.port(key).map_or(0, |r| r.count(state));
            ListenerRow {
                listener: *l,
                syn_recv: count(TcpState::SynRecv) + count(TcpState::NewSynRecv),
                established: count(TcpState::Established),
                close_wait: count(TcpState::CloseWait),
                close_wait_delta: insight
                    .history()
                    .port(key)
                    .map(|h| h.delta(Some(TcpState::CloseWait), minute)),
                rate: insight.port_rate(key),
                top_peers: peers.get(&l.local.port()).cloned().unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by_key(|r| (r.listener.local.port(), r.listener.local, r.listener.inode));
    rows
}

/// Top remote addresses per listening TCP port, in one pass over the snapshot.
fn peers_by_port(
    insight: &Insight,
    snapshot: &Snapshot,
    n: usize,
) -> HashMap<u16, Vec<(IpAddr, u32)>> {
    let listening = insight.listening().of(Proto::Tcp);
    let mut counts: HashMap<(u16, IpAddr), u32> = HashMap::new();
    for s in &snapshot.sockets {
        if s.proto == Proto::Tcp && is_connection(s) && listening.contains(s.local.port()) {
            *counts.entry((s.local.port(), s.remote.ip())).or_default() += 1;
        }
    }
    let mut by_port: HashMap<u16, Vec<(IpAddr, u32)>> = HashMap::new();
    for ((port, ip), c) in counts {
        by_port.entry(port).or_default().push((ip, c));
    }
    for list in by_port.values_mut() {
        *list = top_counts(list.drain(..), n);
    }
    by_port
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{at, snapshot, tcp};

    #[test]
    fn rows_carry_queue_counts_rates_and_peers() {
        let mut listen = tcp(TcpState::Listen, 443, "0.0.0.0:0");
        listen.recv_q = 115;
        listen.send_q = 128;
        listen.inode = 77;
        let base = vec![
            listen,
            tcp(TcpState::Listen, 22, "0.0.0.0:0"),
            tcp(TcpState::Established, 443, "10.0.0.1:1000"),
            tcp(TcpState::Established, 443, "10.0.0.1:1001"),
            tcp(TcpState::CloseWait, 443, "10.0.0.2:1000"),
        ];
        let mut next = base.clone();
        next.push(tcp(TcpState::SynRecv, 443, "10.0.0.3:1000"));
        next.push(tcp(TcpState::Established, 443, "10.0.0.1:1002"));
        next.push(tcp(TcpState::Established, 40000, "10.0.0.9:443")); // client side: not a peer
        let mut insight = Insight::default();
        insight.update(&snapshot(at(0), base));
        let s1 = snapshot(at(500), next);
        insight.update(&s1);

        let rows = listener_rows(&insight, &s1, 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].listener.local.port(), 22);
        assert!(rows[0].top_peers.is_empty());
        let r = &rows[1];
        assert_eq!((r.listener.queue, r.listener.backlog), (115, 128));
        assert!((r.listener.fill_percent().unwrap() - 89.84).abs() < 0.01);
        assert_eq!((r.syn_recv, r.established, r.close_wait), (1, 3, 1));
        assert_eq!(r.close_wait_delta, Some(0));
        let rate = r.rate.unwrap();
        assert!((rate.new_per_sec - 4.0).abs() < 1e-9, "{rate:?}");
        assert!(rate.closed_per_sec.abs() < 1e-9);
        assert_eq!(
            r.top_peers,
            vec![
                ("10.0.0.1".parse().unwrap(), 3),
                ("10.0.0.2".parse().unwrap(), 1)
            ]
        );
        let queue: Vec<u32> = r.queue_history(&insight).unwrap().iter().collect();
        assert_eq!(queue, vec![115], "ticks 500 ms apart merge into one point");
    }

    #[test]
    fn close_wait_growth_over_the_last_minute() {
        let mut insight = Insight::default();
        let mut last = snapshot(at(0), vec![]);
        for (secs, close_wait) in [(0u64, 40u16), (30, 1), (60, 5), (90, 12)] {
            let mut sockets = vec![tcp(TcpState::Listen, 8080, "0.0.0.0:0")];
            sockets.extend(
                (0..close_wait).map(|i| tcp(TcpState::CloseWait, 8080, &format!("10.0.0.1:{i}"))),
            );
            last = snapshot(at(secs * 1000), sockets);
            insight.update(&last);
        }
        let rows = listener_rows(&insight, &last, 0);
        assert_eq!(rows[0].close_wait, 12);
        assert_eq!(
            rows[0].close_wait_delta,
            Some(11),
            "12 now against 1 a minute ago"
        );
    }

    #[test]
    fn zero_backlog_has_no_fill() {
        let l = Listener::of(&tcp(TcpState::Listen, 80, "0.0.0.0:0"));
        assert_eq!(l.fill_percent(), None);
    }
}
