//! How long each connection has been seen: socket key -> first-seen instant, rebuilt from
//! every applied snapshot so it never holds more than the current sockets.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use foldhash::HashMap;
use foldhash::fast::RandomState;

use crate::model::{Family, Proto, Snapshot, Socket};

/// A connection's identity across samples (the state is left out since it changes),
/// packed into plain integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    local: u128,
    remote: u128,
    /// Local port, remote port, protocol and family bits.
    rest: u64,
}

fn bits(addr: SocketAddr) -> u128 {
    match addr.ip() {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

fn conn_key(socket: &Socket) -> ConnKey {
    let proto = u64::from(socket.proto == Proto::Udp);
    let family = u64::from(socket.family == Family::V6);
    ConnKey {
        local: bits(socket.local),
        remote: bits(socket.remote),
        rest: u64::from(socket.local.port()) << 16
            | u64::from(socket.remote.port())
            | proto << 32
            | family << 33,
    }
}

/// When a connection was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub since: Instant,
    /// Already there in the first sample: its real age is at least what is shown.
    pub at_start: bool,
}

impl Seen {
    pub fn age(self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

/// Bit of a stored value marking "there at start"; the rest is milliseconds since `epoch`.
const AT_START: u64 = 1 << 63;

/// First-seen times of the sockets of the last applied snapshot.
///
/// Hot path: rebuilt from every snapshot (100k sockets). Entries are 16 bytes, a 64-bit
/// seeded hash of the connection's key (foldhash: peers choose their addresses, so the
/// hash must not be predictable) to milliseconds since the map's epoch, so the table
/// stays small enough for the cache; two connections whose 64-bit hashes collide (about
/// 1 in 10^9 at 100k sockets) would share an age, nothing worse. The spare map is reused,
/// so a rebuild does not allocate. Hashing `SocketAddr`s through `SipHash` into a map of
/// full keys took 3x longer.
#[derive(Debug, Default)]
pub struct SeenMap {
    current: HashMap<u64, u64>,
    next: HashMap<u64, u64>,
    hasher: RandomState,
    epoch: Option<Instant>,
}

impl SeenMap {
    fn key(&self, socket: &Socket) -> u64 {
        self.hasher.hash_one(conn_key(socket))
    }

    /// Records `snapshot`, applied at `now`: keeps the first-seen time of sockets still
    /// present, starts new ones at `now`, and forgets the rest.
    pub fn update(&mut self, snapshot: &Snapshot, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let at_start = if now == epoch { AT_START } else { 0 };
        let since = u64::try_from(now.saturating_duration_since(epoch).as_millis())
            .unwrap_or(u64::MAX >> 1);
        let fresh = since | at_start;
        self.next.clear();
        for socket in &snapshot.sockets {
            let k = self.key(socket);
            let seen = self.current.get(&k).copied().unwrap_or(fresh);
            self.next.insert(k, seen);
        }
        std::mem::swap(&mut self.current, &mut self.next);
    }

    pub fn get(&self, socket: &Socket) -> Option<Seen> {
        let epoch = self.epoch?;
        let v = *self.current.get(&self.key(socket))?;
        Some(Seen {
            since: epoch + Duration::from_millis(v & !AT_START),
            at_start: v & AT_START != 0,
        })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.current.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Owners, TcpState, Unattributed};

    fn sock(local: &str, remote: &str, state: TcpState) -> Socket {
        Socket::for_test(
            Proto::Tcp,
            state,
            local,
            remote,
            Owners::None(Unattributed::NoInode),
        )
    }

    fn snap(sockets: Vec<Socket>) -> Snapshot {
        let mut s = Snapshot::empty();
        s.sockets = sockets;
        s
    }

    #[test]
    fn keys_tell_protocols_families_and_ports_apart() {
        let a = sock("127.0.0.1:80", "127.0.0.1:5000", TcpState::Established);
        let udp = Socket {
            proto: Proto::Udp,
            ..a
        };
        let swapped = Socket {
            local: a.remote,
            remote: a.local,
            ..a
        };
        let v6 = Socket {
            family: Family::V6,
            local: "[::ffff:127.0.0.1]:80".parse().unwrap(),
            remote: "[::ffff:127.0.0.1]:5000".parse().unwrap(),
            ..a
        };
        let keys = [
            conn_key(&a),
            conn_key(&udp),
            conn_key(&swapped),
            conn_key(&v6),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "{i}");
        }
    }

    #[test]
    fn keeps_first_seen_across_state_changes_and_prunes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(5);
        let a = sock("127.0.0.1:80", "127.0.0.1:5000", TcpState::Established);
        let b = sock("127.0.0.1:80", "127.0.0.1:5001", TcpState::Established);
        let mut seen = SeenMap::default();
        seen.update(&snap(vec![a]), t0);
        let closing = Socket {
            state: TcpState::CloseWait,
            ..a
        };
        seen.update(&snap(vec![closing, b]), t1);
        assert_eq!(
            seen.get(&closing),
            Some(Seen {
                since: t0,
                at_start: true
            })
        );
        assert_eq!(
            seen.get(&b),
            Some(Seen {
                since: t1,
                at_start: false
            })
        );
        assert_eq!(
            seen.get(&b).unwrap().age(t1 + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        seen.update(&snap(vec![b]), t1);
        assert_eq!(seen.get(&a), None);
        assert_eq!(seen.len(), 1);
    }
}
