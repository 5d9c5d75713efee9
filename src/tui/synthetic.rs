//! Synthetic snapshots for demos, render tests and the frame-time measurement: a small
//! web host (sshd, nginx, postgres, a resolver) with as many connections as asked for,
//! deterministic for a given seed. No kernel access.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::{
    Coverage, Family, Owners, Process, Proto, Snapshot, Socket, SourceKind, TcpState, Unattributed,
};
use portside_core::engine::{Sample, SnapshotSource};

mod busy;
pub use busy::{BUSY_EPHEMERAL_RANGE, busy, busy_settings};

/// A tiny deterministic generator (64-bit LCG); good enough to spread addresses.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

fn process(pid: u32, name: &str, user: &str) -> Arc<Process> {
    Arc::new(Process {
        pid,
        start_time: u64::from(pid) * 10,
        name: name.to_string(),
        cmdline: format!("/usr/sbin/{name}"),
        uid: if user == "root" { 0 } else { 33 },
        user: user.to_string(),
    })
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
}

fn v6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

fn socket(
    proto: Proto,
    state: TcpState,
    local: SocketAddr,
    remote: SocketAddr,
    owners: Owners,
) -> Socket {
    Socket {
        proto,
        family: if local.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        },
        state,
        local,
        remote,
        recv_q: 0,
        send_q: 0,
        uid: 0,
        inode: 1,
        cookie: 0,
        owners,
    }
}

/// Owner sets: 0 sshd, 1 nginx workers, 2 postgres, 3 resolver, 4 curl.
const SSHD: Owners = Owners::Known(0);
const NGINX: Owners = Owners::Known(1);
const POSTGRES: Owners = Owners::Known(2);
const RESOLVER: Owners = Owners::Known(3);
const CURL: Owners = Owners::Known(4);

/// The host's listeners: sshd and nginx on v4 and v6, postgres on loopback, a resolver,
/// and an exporter whose owner is hidden (permission denied).
fn listeners() -> Vec<Socket> {
    let (any4, any6) = (v4([0, 0, 0, 0], 0), v6(Ipv6Addr::UNSPECIFIED, 0));
    let tcp = |local, remote, owners| socket(Proto::Tcp, TcpState::Listen, local, remote, owners);
    let mut sockets = vec![
        tcp(v4([0, 0, 0, 0], 22), any4, SSHD),
        tcp(v6(Ipv6Addr::UNSPECIFIED, 22), any6, SSHD),
        tcp(v4([0, 0, 0, 0], 80), any4, NGINX),
        tcp(v4([0, 0, 0, 0], 443), any4, NGINX),
        tcp(v6(Ipv6Addr::UNSPECIFIED, 443), any6, NGINX),
        tcp(v4([127, 0, 0, 1], 5432), any4, POSTGRES),
        socket(
            Proto::Udp,
            TcpState::Close,
            v4([127, 0, 0, 53], 53),
            any4,
            RESOLVER,
        ),
        tcp(
            v4([127, 0, 0, 1], 8080),
            any4,
            Owners::None(Unattributed::PermissionDenied),
        ),
    ];
    for l in &mut sockets {
        if l.state == TcpState::Listen {
            l.send_q = 4096;
        }
    }
    sockets[3].recv_q = 3;
    sockets
}

/// One connection: mostly to nginx, some TIME_WAIT, CLOSE_WAIT on postgres, SYN_RECV,
/// and outgoing client connections from ephemeral ports.
fn connection(rng: &mut Lcg) -> Socket {
    let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
    let peer = v4(
        [198, 51, rng.below(256) as u8, rng.below(256) as u8],
        1024 + rng.below(60_000) as u16,
    );
    let (port, state, owners) = match rng.below(100) {
        0..=49 => (443, TcpState::Established, NGINX),
        50..=69 => (443, TcpState::TimeWait, Owners::Inferred(1)),
        70..=79 => (80, TcpState::Established, NGINX),
        80..=84 => (22, TcpState::Established, SSHD),
        85..=89 => (5432, TcpState::CloseWait, POSTGRES),
        90..=91 => (443, TcpState::SynRecv, Owners::None(Unattributed::NoInode)),
        92..=93 => (80, TcpState::FinWait2, NGINX),
        _ => (0, TcpState::Established, CURL),
    };
    let mut s = if port == 0 {
        let eph = SocketAddr::new(local, 32_768 + rng.below(28_000) as u16);
        socket(Proto::Tcp, state, eph, v4([203, 0, 113, 7], 443), owners)
    } else {
        socket(
            Proto::Tcp,
            state,
            SocketAddr::new(local, port),
            peer,
            owners,
        )
    };
    if state == TcpState::Established && rng.below(10) == 0 {
        s.send_q = rng.below(200_000);
    }
    if matches!(s.owners, Owners::None(_) | Owners::Inferred(_)) {
        s.inode = 0;
    }
    s
}

/// A snapshot with the host's 8 listeners plus `connections` more sockets.
pub fn snapshot(connections: usize, seed: u64) -> Snapshot {
    let mut rng = Lcg(seed);
    let mut sockets = listeners();
    sockets.extend((0..connections).map(|_| connection(&mut rng)));
    let mut coverage = Coverage::default();
    for s in &sockets {
        coverage.add(s.owners);
    }
    Snapshot {
        taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        duration: Duration::from_millis(12),
        source: SourceKind::SockDiag,
        sockets,
        processes: vec![
            process(812, "sshd", "root"),
            process(1000, "nginx", "www-data"),
            process(1001, "nginx", "www-data"),
            process(2000, "postgres", "postgres"),
            process(530, "systemd-resolve", "systemd-resolve"),
            process(4242, "curl", "alice"),
        ],
        usage: Vec::new(),
        owner_sets: vec![
            vec![0].into(),
            vec![1, 2].into(),
            vec![3].into(),
            vec![4].into(),
            vec![5].into(),
        ],
        coverage,
        privileged: true,
        ephemeral_range: (32768, 60999),
        destroyed: None,
    }
}

/// A [`SnapshotSource`] that serves [`snapshot`]s whose connections come and go.
pub struct SyntheticSource {
    connections: usize,
    tick: u64,
}

impl SyntheticSource {
    pub fn new(connections: usize) -> SyntheticSource {
        SyntheticSource {
            connections,
            tick: 0,
        }
    }
}

impl SnapshotSource for SyntheticSource {
    /// Taken now (so history and rates move in a demo); no counters or settings.
    fn sample(&mut self) -> Result<Sample, String> {
        self.tick += 1;
        // Most connections stay (same seed prefix), a few change each tick.
        let churn = self.connections / 20 + 1;
        let mut snap = snapshot(self.connections.saturating_sub(churn), 7);
        let extra = snapshot(churn, self.tick);
        snap.sockets.extend(extra.sockets.into_iter().skip(8));
        snap.taken_at = SystemTime::now();
        Ok(Sample::of(snap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = snapshot(1000, 1);
        let b = snapshot(1000, 1);
        assert_eq!(a.sockets, b.sockets);
        assert_eq!(a.sockets.len(), 1008);
        assert_eq!(
            a.coverage.unattributed() + a.coverage.attributed + a.coverage.inferred,
            1008
        );
        for s in &a.sockets {
            if let Owners::Known(n) | Owners::Inferred(n) = s.owners {
                assert!((n as usize) < a.owner_sets.len());
            }
        }
    }

    #[test]
    fn source_keeps_most_connections() {
        let mut src = SyntheticSource::new(200);
        let a = src.sample().unwrap().snapshot;
        let b = src.sample().unwrap().snapshot;
        assert!(b.taken_at >= a.taken_at);
        assert_eq!(a.sockets.len(), b.sockets.len());
        let kept = a.sockets.iter().filter(|s| b.sockets.contains(s)).count();
        assert!(kept > 150, "{kept}");
    }
}
