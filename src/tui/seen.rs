//! How long each connection has been seen: socket key -> first-seen instant, rebuilt from
//! every applied snapshot so it never holds more than the current sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::model::{Proto, Snapshot, Socket};

/// A connection's identity across samples; the state is left out since it changes.
type ConnKey = (Proto, SocketAddr, SocketAddr);

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

/// First-seen times of the sockets of the last applied snapshot.
#[derive(Debug, Default)]
pub struct SeenMap {
    current: HashMap<ConnKey, Seen>,
    /// Spare map reused for the next rebuild, so a tick at 100k sockets does not reallocate.
    next: HashMap<ConnKey, Seen>,
    started: bool,
}

fn key(socket: &Socket) -> ConnKey {
    (socket.proto, socket.local, socket.remote)
}

impl SeenMap {
    /// Records `snapshot`, applied at `now`: keeps the first-seen time of sockets still
    /// present, starts new ones at `now`, and forgets the rest.
    pub fn update(&mut self, snapshot: &Snapshot, now: Instant) {
        self.next.clear();
        let at_start = !self.started;
        for socket in &snapshot.sockets {
            let k = key(socket);
            let seen = self.current.get(&k).copied().unwrap_or(Seen {
                since: now,
                at_start,
            });
            self.next.insert(k, seen);
        }
        std::mem::swap(&mut self.current, &mut self.next);
        self.started = true;
    }

    pub fn get(&self, socket: &Socket) -> Option<Seen> {
        self.current.get(&key(socket)).copied()
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
        Socket {
            proto: Proto::Tcp,
            family: Family::V4,
            state,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 0,
            owners: Owners::None(Unattributed::NoInode),
        }
    }

    fn snap(sockets: Vec<Socket>) -> Snapshot {
        let mut s = Snapshot::empty();
        s.sockets = sockets;
        s
    }

    #[test]
    fn keeps_first_seen_across_state_changes_and_prunes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(5);
        let a = sock("127.0.0.1:80", "127.0.0.1:5000", TcpState::Established);
        let b = sock("127.0.0.1:80", "127.0.0.1:5001", TcpState::Established);
        let mut seen = SeenMap::default();
        seen.update(&snap(vec![a]), t0);
        let closing = Socket { state: TcpState::CloseWait, ..a };
        seen.update(&snap(vec![closing, b]), t1);
        assert_eq!(seen.get(&closing), Some(Seen { since: t0, at_start: true }));
        assert_eq!(seen.get(&b), Some(Seen { since: t1, at_start: false }));
        assert_eq!(seen.get(&b).unwrap().age(t1 + Duration::from_secs(2)), Duration::from_secs(2));
        seen.update(&snap(vec![b]), t1);
        assert_eq!(seen.get(&a), None);
        assert_eq!(seen.len(), 1);
    }
}
