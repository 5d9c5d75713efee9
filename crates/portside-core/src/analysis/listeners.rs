//! The listener panel's data: one row per listening TCP socket with its accept queue,
//! the states of the connections it accepted, churn, top peers and queue history.
//!
//! Which listener accepted a connection: the kernel does not say, but its lookup does
//! (`inet_lhash2_lookup` scores candidates): a listener bound to the connection's exact
//! local address first, then the wildcard of its family (`0.0.0.0`, `::`), then any
//! wildcard (a dual-stack `::` listener). Among equals (`SO_REUSEPORT` groups, where the
//! kernel picks by hash) the one held by the connection's own process is taken, else the
//! first. So the IPv6 listener of a port loaded only over IPv4 shows no connections.

use foldhash::{HashMap, HashMapExt};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::analysis::connections::is_connection;
use crate::analysis::insight::Insight;
use crate::analysis::ports::top_counts;
use crate::analysis::rates::ConnRate;
use crate::analysis::ring::Ring;
use crate::model::{Owners, Snapshot, Socket, TcpState};

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

/// Counts of the connections one listener accepted, in one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    pub syn_recv: u32,
    pub established: u32,
    pub close_wait: u32,
    /// Every other state (FIN-WAIT, TIME-WAIT, LAST-ACK, ...).
    pub other: u32,
    /// Open connections (full sockets, TIME_WAIT excluded): what the exact churn compares.
    pub live: u32,
    /// Connections opened and closed through it since the previous tick.
    pub new: u32,
    pub closed: u32,
}

impl ListenerCounts {
    pub(crate) fn add_state(&mut self, state: TcpState) {
        match state {
            TcpState::SynRecv | TcpState::NewSynRecv => self.syn_recv += 1,
            TcpState::Established => self.established += 1,
            TcpState::CloseWait => self.close_wait += 1,
            _ => self.other += 1,
        }
    }
}

/// Listeners by port, to find the one that accepted a connection (see the module notes).
#[derive(Debug, Clone, Default)]
pub(crate) struct ListenerIndex {
    /// (port, index into the listener list), sorted.
    by_port: Vec<(u16, u32)>,
}

impl ListenerIndex {
    pub(crate) fn build(&mut self, listeners: &[Listener]) {
        self.by_port.clear();
        self.by_port.extend(
            listeners
                .iter()
                .enumerate()
                .map(|(i, l)| (l.local.port(), i as u32)),
        );
        self.by_port.sort_unstable();
    }

    /// The listener that accepted a connection with local address `local` held by
    /// `owners`, if one listens on its port.
    pub(crate) fn find(
        &self,
        listeners: &[Listener],
        local: SocketAddr,
        owners: Owners,
    ) -> Option<usize> {
        let port = local.port();
        let start = self.by_port.partition_point(|e| e.0 < port);
        let ip = local.ip();
        let mut best: Option<(u8, usize)> = None;
        for &(_, i) in self.by_port[start..].iter().take_while(|e| e.0 == port) {
            let l = &listeners[i as usize];
            let addr = l.local.ip();
            let rank = if addr == ip {
                6
            } else if addr.is_unspecified() && addr.is_ipv4() == ip.is_ipv4() {
                4
            } else if addr.is_unspecified() {
                2
            } else {
                continue;
            };
            let same_owner =
                matches!((l.owners, owners), (Owners::Known(a), Owners::Known(b)) if a == b);
            let rank = rank + u8::from(same_owner);
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, i as usize));
            }
        }
        best.map(|(_, i)| i)
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

/// One row of the listener panel: the listener and the connections it accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRow {
    pub listener: Listener,
    pub syn_recv: u32,
    pub established: u32,
    /// Growing CLOSE_WAIT means the application does not close its sockets.
    pub close_wait: u32,
    /// Change of its CLOSE_WAIT over the last minute (`None`: listener not tracked).
    pub close_wait_delta: Option<i64>,
    /// New and closed connections per second through it; `None` on the first tick.
    pub rate: Option<ConnRate>,
    /// Remote addresses with the most connections through it, most first.
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
    let mut peers = peers_by_listener(insight, snapshot, top_peers);
    let minute = insight.history().points_within(Duration::from_secs(60));
    let mut rows: Vec<ListenerRow> = insight
        .listeners()
        .iter()
        .zip(insight.listener_counts())
        .enumerate()
        .map(|(i, (l, c))| ListenerRow {
            listener: *l,
            syn_recv: c.syn_recv,
            established: c.established,
            close_wait: c.close_wait,
            close_wait_delta: insight
                .history()
                .listener_close_wait(&l.key())
                .map(|ring| ring_delta(ring, minute)),
            rate: insight.listener_rate(i),
            top_peers: peers.remove(&(i as u32)).unwrap_or_default(),
        })
        .collect();
    rows.sort_by_key(|r| (r.listener.local.port(), r.listener.local, r.listener.inode));
    rows
}

/// Newest value minus the one `points` back (or the oldest).
fn ring_delta(ring: &Ring<u32>, points: usize) -> i64 {
    match (
        ring.last(),
        ring.back(points.min(ring.len().saturating_sub(1))),
    ) {
        (Some(now), Some(then)) => i64::from(now) - i64::from(then),
        _ => 0,
    }
}

/// Top remote addresses per listener (by index), in one pass over the accepted sockets.
fn peers_by_listener(
    insight: &Insight,
    snapshot: &Snapshot,
    n: usize,
) -> HashMap<u32, Vec<(IpAddr, u32)>> {
    let mut counts: HashMap<(u32, IpAddr), u32> = HashMap::new();
    for &(i, l) in insight.inbound() {
        let s = &snapshot.sockets[i as usize];
        if is_connection(s) {
            *counts.entry((l, s.remote.ip())).or_default() += 1;
        }
    }
    let mut by_listener: HashMap<u32, Vec<(IpAddr, u32)>> = HashMap::new();
    for ((l, ip), c) in counts {
        by_listener.entry(l).or_default().push((ip, c));
    }
    for list in by_listener.values_mut() {
        *list = top_counts(list.drain(..), n);
    }
    by_listener
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
        insight.update(&mut snapshot(at(0), base));
        let mut s1 = snapshot(at(500), next);
        insight.update(&mut s1);

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
        // One new ESTABLISHED in 0.5 s; the SYN_RECV request socket is no connection yet.
        assert!((rate.new_per_sec - 2.0).abs() < 1e-9, "{rate:?}");
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
                (1..=close_wait).map(|i| tcp(TcpState::CloseWait, 8080, &format!("10.0.0.1:{i}"))),
            );
            last = snapshot(at(secs * 1000), sockets);
            insight.update(&mut last);
        }
        let rows = listener_rows(&insight, &last, 0);
        assert_eq!(rows[0].close_wait, 12);
        assert_eq!(
            rows[0].close_wait_delta,
            Some(11),
            "12 now against 1 a minute ago"
        );
    }

    fn at_addr(state: TcpState, local: &str, remote: &str) -> Socket {
        let mut s = tcp(state, 0, remote);
        s.local = local.parse().unwrap();
        s.family = if s.local.is_ipv4() {
            crate::model::Family::V4
        } else {
            crate::model::Family::V6
        };
        s
    }

    #[test]
    fn each_listener_counts_only_what_it_accepted() {
        // nginx-like: 127.0.0.1:8080 and [::1]:8080, load over IPv4 only; plus a wildcard
        // pair on :9090, where [::ffff:...] connections came through the dual-stack `::`.
        let mut sockets = vec![
            at_addr(TcpState::Listen, "127.0.0.1:8080", "0.0.0.0:0"),
            at_addr(TcpState::Listen, "[::1]:8080", "[::]:0"),
            at_addr(TcpState::Listen, "0.0.0.0:9090", "0.0.0.0:0"),
            at_addr(TcpState::Listen, "[::]:9090", "[::]:0"),
        ];
        for (l, b) in sockets.iter_mut().zip([511, 511, 128, 128]) {
            l.send_q = b;
        }
        for i in 0..5 {
            let peer = format!("127.0.0.1:{}", 40000 + i);
            sockets.push(at_addr(TcpState::Established, "127.0.0.1:8080", &peer));
        }
        sockets.push(at_addr(
            TcpState::CloseWait,
            "127.0.0.1:8080",
            "127.0.0.1:39999",
        ));
        sockets.push(at_addr(
            TcpState::Established,
            "10.0.0.1:9090",
            "10.0.0.9:1",
        ));
        sockets.push(at_addr(
            TcpState::Established,
            "[::ffff:10.0.0.1]:9090",
            "[::ffff:10.0.0.9]:2",
        ));
        sockets.push(at_addr(TcpState::Established, "[::1]:9090", "[::1]:3"));
        let mut insight = Insight::default();
        insight.update(&mut snapshot(at(0), sockets.clone()));
        sockets.push(at_addr(
            TcpState::Established,
            "127.0.0.1:8080",
            "127.0.0.1:45000",
        ));
        let mut s1 = snapshot(at(1000), sockets);
        insight.update(&mut s1);
        let rows = listener_rows(&insight, &s1, 3);
        let by_addr = |a: &str| {
            let a: SocketAddr = a.parse().unwrap();
            rows.iter().find(|r| r.listener.local == a).unwrap()
        };
        let v4 = by_addr("127.0.0.1:8080");
        assert_eq!((v4.established, v4.close_wait), (6, 1));
        assert!((v4.rate.unwrap().new_per_sec - 1.0).abs() < 1e-9);
        assert_eq!(v4.top_peers, vec![("127.0.0.1".parse().unwrap(), 7)]);
        let v6 = by_addr("[::1]:8080");
        assert_eq!((v6.established, v6.close_wait), (0, 0));
        assert!(v6.rate.unwrap().new_per_sec.abs() < 1e-9);
        assert!(v6.top_peers.is_empty());
        assert_eq!(by_addr("0.0.0.0:9090").established, 1);
        assert_eq!(
            by_addr("[::]:9090").established,
            2,
            "mapped and native IPv6"
        );
    }

    #[test]
    fn reuseport_twins_split_by_owner() {
        let mut a = at_addr(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0");
        a.owners = Owners::Known(0);
        a.inode = 1;
        let mut b = a;
        b.owners = Owners::Known(1);
        b.inode = 2;
        let mut conn = at_addr(TcpState::Established, "10.0.0.1:80", "10.0.0.2:1");
        conn.owners = Owners::Known(1);
        let mut insight = Insight::default();
        let mut s = snapshot(at(0), vec![a, b, conn]);
        s.owner_sets = vec![Box::new([0]), Box::new([1])];
        s.processes = (0..2)
            .map(|pid| {
                std::sync::Arc::new(crate::model::Process {
                    pid,
                    start_time: 1,
                    name: format!("worker{pid}"),
                    cmdline: String::new(),
                    uid: 0,
                    user: "root".into(),
                })
            })
            .collect();
        insight.update(&mut s);
        let counts: Vec<u32> = insight
            .listener_counts()
            .iter()
            .map(|c| c.established)
            .collect();
        assert_eq!(counts, vec![0, 1], "the worker that holds it accepted it");
    }

    #[test]
    fn zero_backlog_has_no_fill() {
        let l = Listener::of(&tcp(TcpState::Listen, 80, "0.0.0.0:0"));
        assert_eq!(l.fill_percent(), None);
    }
}
