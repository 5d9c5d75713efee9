//! A host under load, one sample per second, for the panels' render tests and demos: an
//! outbound TIME_WAIT pile-up toward a database, a filling accept queue, growing
//! CLOSE_WAIT, and overflow counters that climb. Deterministic for a given tick.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::model::{Owners, Proto, Snapshot, TcpState};
use crate::source::sysctl::{KernelSettings, ListenStats};
use crate::tui::synthetic::{snapshot, socket};
use portside_core::engine::Sample;

/// A small ephemeral range (1,000 ports), so the pile-up reaches warning levels quickly.
pub const BUSY_EPHEMERAL_RANGE: (u16, u16) = (32768, 33767);
/// Backlog of the 8080 listener, whose accept queue fills up.
const BACKLOG_8080: u32 = 128;

/// The kernel settings of the busy host.
pub fn busy_settings() -> KernelSettings {
    KernelSettings {
        ephemeral_range: BUSY_EPHEMERAL_RANGE,
        tcp_fin_timeout: Some(60),
        tcp_tw_reuse: Some(0),
        tcp_max_tw_buckets: Some(4096),
        somaxconn: Some(4096),
    }
}

/// Sample number `tick` (taken `tick` seconds after the base time): per tick, 40 more
/// client-side TIME_WAIT from 127.0.0.1 to 127.0.0.1:5432 (plus 10 open pool connections),
/// 5 more toward 203.0.113.7:443, 6 more CLOSE_WAIT and accept-queue entries on 8080, and
/// ListenOverflows growing by `2 x tick`.
pub fn busy(tick: u32) -> Sample {
    let mut snap = base(tick);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let app = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
    let db = SocketAddr::new(lo, 5432);
    let api = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 443);
    let client = |ip, port, state, remote| {
        let mut s = socket(
            Proto::Tcp,
            state,
            SocketAddr::new(ip, port),
            remote,
            Owners::Known(4),
        );
        if state == TcpState::TimeWait {
            s.inode = 0;
            s.owners = Owners::Inferred(4);
        }
        s
    };
    let first = BUSY_EPHEMERAL_RANGE.0;
    let db_time_wait = (40 * tick).min(900) as u16;
    for i in 0..db_time_wait + 10 {
        let state = if i < db_time_wait {
            TcpState::TimeWait
        } else {
            TcpState::Established
        };
        snap.sockets.push(client(lo, first + i, state, db));
    }
    for i in 0..(5 * tick).min(900) as u16 {
        snap.sockets
            .push(client(app, first + i, TcpState::TimeWait, api));
    }
    let leak = (6 * tick).min(400) as u16;
    for i in 0..leak {
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 40_000 + i);
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            SocketAddr::new(lo, 8080),
            peer,
            Owners::None(crate::model::Unattributed::PermissionDenied),
        ));
    }
    for l in &mut snap.sockets {
        if l.state == TcpState::Listen && l.local.port() == 8080 {
            l.send_q = BACKLOG_8080;
            l.recv_q = (6 * tick).min(BACKLOG_8080);
        }
    }
    let overflows = u64::from(tick) * u64::from(tick);
    Sample {
        snapshot: snap,
        listen_stats: Some(ListenStats {
            listen_overflows: overflows,
            listen_drops: overflows + u64::from(tick),
        }),
        settings: Some(busy_settings()),
        note: None,
    }
}

/// The web host of [`snapshot`] with 5% of its connections replaced each tick.
fn base(tick: u32) -> Snapshot {
    let mut snap = snapshot(114, 7);
    let churn = snapshot(6, u64::from(tick) + 100);
    snap.sockets.extend(churn.sockets.into_iter().skip(8));
    snap.taken_at += Duration::from_secs(u64::from(tick));
    snap.ephemeral_range = BUSY_EPHEMERAL_RANGE;
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(s: &Sample, state: TcpState, remote: &str) -> usize {
        let remote: SocketAddr = remote.parse().unwrap();
        s.snapshot
            .sockets
            .iter()
            .filter(|x| x.state == state && x.remote == remote)
            .count()
    }

    #[test]
    fn the_load_grows_tick_by_tick() {
        let (a, b) = (busy(1), busy(20));
        assert_eq!(count(&a, TcpState::TimeWait, "127.0.0.1:5432"), 40);
        assert_eq!(count(&b, TcpState::TimeWait, "127.0.0.1:5432"), 800);
        assert_eq!(count(&b, TcpState::TimeWait, "203.0.113.7:443"), 100);
        let time = |s: &Sample| s.snapshot.taken_at;
        assert_eq!(
            time(&b).duration_since(time(&a)).unwrap(),
            Duration::from_secs(19)
        );
        let stats = b.listen_stats.unwrap();
        assert_eq!((stats.listen_overflows, stats.listen_drops), (400, 420));
        let queue = b
            .snapshot
            .sockets
            .iter()
            .find(|s| s.state == TcpState::Listen && s.local.port() == 8080)
            .map(|s| (s.recv_q, s.send_q));
        assert_eq!(queue, Some((120, 128)));
        // Local ports of one destination never repeat (a 4-tuple is unique).
        let mut ports: Vec<u16> = b
            .snapshot
            .sockets
            .iter()
            .filter(|s| s.remote == "127.0.0.1:5432".parse().unwrap())
            .map(|s| s.local.port())
            .collect();
        let n = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), n);
    }
}
