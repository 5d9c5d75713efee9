//! Owner inference for sockets no process holds (TIME_WAIT, SYN_RECV, orphans: inode 0).
//!
//! Server side: the socket's local port has a TCP listener with known owners (same local
//! address, else a wildcard one) -> that listener's owners. Client side: the same 4-tuple
//! was seen earlier with known owners (e.g. ESTABLISHED before its active close) -> those
//! processes, re-added to the snapshot if they have exited since. Either way the socket
//! becomes `Owners::Inferred` and `coverage` moves it from `no_inode` to `inferred`.
//!
//! Memory: 16 bytes per remembered client 4-tuple (twice, for the merge) plus interned
//! owner sets. A 4-tuple is forgotten `window` (default 2 min: TIME_WAIT lasts 60 s) after
//! it was last seen with owners; past `cap` (default 262,144) the oldest go first.
//!
//! Cost: the remembered 4-tuples are a list sorted by fingerprint; each tick sorts this
//! tick's known client 4-tuples and the inode-less queries and merges them with it
//! (sequential passes, see [`fingerprint`]), rather than one cold hash probe per socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::model::{Owners, Proto, Snapshot, Socket, TcpState, Unattributed};

pub mod fingerprint;
mod sets;

use fingerprint::{Fingerprinter, sort_by_id};
use sets::OwnerSet;

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A process identity that survives pid reuse.
pub(crate) type ProcId = (u32, u64);

/// A remembered client 4-tuple: its interned owner set and when it was last seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    id: u64,
    set: u32,
    secs: u32,
}

/// An inode-less socket to attribute: its fingerprint and index in the snapshot.
#[derive(Debug, Clone, Copy)]
struct Query {
    id: u64,
    socket: u32,
}

pub(crate) const NONE: u32 = u32::MAX;

/// Owner inference kept across ticks; call [`Inference::apply`] on every snapshot.
#[derive(Debug)]
pub struct Inference {
    fingerprint: Fingerprinter,
    window: Duration,
    cap: usize,
    base: Option<SystemTime>,
    /// Sorted by `id`, one entry per id.
    remembered: Vec<Seen>,
    sets: Vec<Option<OwnerSet>>,
    free: Vec<u32>,
    set_ids: FastMap<Box<[ProcId]>, u32>,
    // Per-tick scratch, kept for its capacity.
    known: Vec<Seen>,
    merged: Vec<Seen>,
    queries: Vec<Query>,
    query_scratch: Vec<Query>,
    listeners: Vec<(u16, IpAddr, u32)>,
    listen_ports: Box<[u64; 1024]>,
    snap_to_mine: Vec<u32>,
    mine_to_snap: Vec<u32>,
    proc_index: FastMap<ProcId, u32>,
    key: Vec<ProcId>,
}

impl Default for Inference {
    fn default() -> Self {
        Inference::new(Duration::from_secs(120), 1 << 18)
    }
}

impl Inference {
    /// Remember client 4-tuples for `window` after last seen, at most ~`cap` of them.
    pub fn new(window: Duration, cap: usize) -> Inference {
        Inference {
            fingerprint: Fingerprinter::default(),
            window,
            cap,
            base: None,
            remembered: Vec::new(),
            sets: Vec::new(),
            free: Vec::new(),
            set_ids: FastMap::default(),
            known: Vec::new(),
            merged: Vec::new(),
            queries: Vec::new(),
            query_scratch: Vec::new(),
            listeners: Vec::new(),
            listen_ports: Box::new([0; 1024]),
            snap_to_mine: Vec::new(),
            mine_to_snap: Vec::new(),
            proc_index: FastMap::default(),
            key: Vec::new(),
        }
    }

    /// Client 4-tuples remembered now.
    pub fn remembered(&self) -> usize {
        self.remembered.len()
    }

    /// Attribute the snapshot's inode-less TCP sockets, and remember its client 4-tuples.
    pub fn apply(&mut self, snapshot: &mut Snapshot) {
        let base = *self.base.get_or_insert(snapshot.taken_at);
        let now = snapshot
            .taken_at
            .duration_since(base)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        self.index_listeners(snapshot);
        self.remember(snapshot, now);
        self.attribute(snapshot);
    }

    fn is_listen_port(&self, port: u16) -> bool {
        self.listen_ports[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// Collect the TCP listeners with known owners, sorted by port.
    fn index_listeners(&mut self, snapshot: &Snapshot) {
        self.listeners.clear();
        self.listen_ports.fill(0);
        for s in &snapshot.sockets {
            if s.proto == Proto::Tcp && s.state == TcpState::Listen {
                let port = s.local.port();
                self.listen_ports[usize::from(port >> 6)] |= 1 << (port & 63);
                if let Owners::Known(set) = s.owners {
                    self.listeners.push((port, s.local.ip(), set));
                }
            }
        }
        self.listeners.sort_unstable_by_key(|l| l.0);
    }

    /// Merge this tick's client-side TCP connections with known owners into the remembered
    /// list, dropping entries older than `window` (and the oldest past `cap`).
    fn remember(&mut self, snapshot: &Snapshot, now: u32) {
        self.snap_to_mine.clear();
        self.snap_to_mine.resize(snapshot.owner_sets.len(), NONE);
        self.mine_to_snap.clear();
        self.mine_to_snap.resize(self.sets.len(), NONE);
        self.known.clear();
        for s in &snapshot.sockets {
            let Owners::Known(n) = s.owners else { continue };
            if s.proto != Proto::Tcp
                || s.state == TcpState::Listen
                || s.remote.port() == 0
                || self.is_listen_port(s.local.port())
            {
                continue;
            }
            let Some(&mine) = self.snap_to_mine.get(n as usize) else {
                continue;
            };
            let set = if mine == NONE {
                let Some(id) = self.intern(snapshot, n, now) else {
                    continue;
                };
                self.snap_to_mine[n as usize] = id;
                id
            } else {
                mine
            };
            let id = self.fingerprint.of(s.proto, s.local, s.remote);
            self.known.push(Seen { id, set, secs: now });
        }
        sort_by_id(&mut self.known, &mut self.merged, |s| s.id);

        let window = u32::try_from(self.window.as_secs()).unwrap_or(u32::MAX);
        let cutoff = now.saturating_sub(window);
        self.merged.clear();
        let (old, new) = (&self.remembered, &self.known);
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let take_new = j < new.len() && (i == old.len() || new[j].id <= old[i].id);
            if take_new {
                let seen = new[j];
                if i < old.len() && old[i].id == seen.id {
                    i += 1;
                }
                while j < new.len() && new[j].id == seen.id {
                    j += 1;
                }
                self.merged.push(seen);
            } else {
                if old[i].secs >= cutoff {
                    self.merged.push(old[i]);
                }
                i += 1;
            }
        }
        std::mem::swap(&mut self.remembered, &mut self.merged);
        let mut keep = window;
        while self.remembered.len() > self.cap && keep > 0 {
            keep /= 2;
            let cutoff = now.saturating_sub(keep);
            self.remembered.retain(|s| s.secs >= cutoff);
        }
        self.free_sets(now.saturating_sub(keep));
    }

    /// Give every inode-less TCP socket the owners of its listener or remembered 4-tuple.
    fn attribute(&mut self, snapshot: &mut Snapshot) {
        self.proc_index.clear();
        for (i, p) in snapshot.processes.iter().enumerate() {
            self.proc_index.insert((p.pid, p.start_time), i as u32);
        }
        self.queries.clear();
        for i in 0..snapshot.sockets.len() {
            let s = snapshot.sockets[i];
            if s.proto != Proto::Tcp || s.owners != Owners::None(Unattributed::NoInode) {
                continue;
            }
            if let Some(set) = self.listener_owners(&s) {
                infer(snapshot, i, set);
            } else {
                let id = self.fingerprint.of(s.proto, s.local, s.remote);
                self.queries.push(Query {
                    id,
                    socket: i as u32,
                });
            }
        }
        sort_by_id(&mut self.queries, &mut self.query_scratch, |q| q.id);
        let mut r = 0;
        for q in std::mem::take(&mut self.queries) {
            while r < self.remembered.len() && self.remembered[r].id < q.id {
                r += 1;
            }
            match self.remembered.get(r) {
                Some(seen) if seen.id == q.id => {
                    if let Some(set) = self.snapshot_set(snapshot, seen.set) {
                        infer(snapshot, q.socket as usize, set);
                    }
                }
                _ => {}
            }
        }
    }

    /// Owner set of the listener on the socket's local port: same address, else wildcard.
    fn listener_owners(&self, s: &Socket) -> Option<u32> {
        let port = s.local.port();
        if !self.is_listen_port(port) {
            return None;
        }
        let start = self.listeners.partition_point(|l| l.0 < port);
        let on_port = self.listeners[start..].iter().take_while(|l| l.0 == port);
        let ip = s.local.ip();
        let mut same_family_wildcard = None;
        let mut any_wildcard = None;
        for &(_, addr, set) in on_port {
            if addr == ip {
                return Some(set);
            }
            if addr.is_unspecified() {
                if addr.is_ipv4() == ip.is_ipv4() {
                    same_family_wildcard.get_or_insert(set);
                }
                any_wildcard.get_or_insert(set);
            }
        }
        same_family_wildcard.or(any_wildcard)
    }
}

/// Mark socket `i` as owned by snapshot owner set `set`, by inference.
fn infer(snapshot: &mut Snapshot, i: usize, set: u32) {
    snapshot.sockets[i].owners = Owners::Inferred(set);
    let c = &mut snapshot.coverage;
    c.no_inode = c.no_inode.saturating_sub(1);
    c.inferred += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Coverage, Process};
    use std::sync::Arc;

    fn process(pid: u32, name: &str) -> Arc<Process> {
        Arc::new(Process {
            pid,
            start_time: u64::from(pid) * 7,
            name: name.into(),
            cmdline: name.into(),
            uid: 0,
            user: "root".into(),
        })
    }

    fn sock(state: TcpState, local: &str, remote: &str, owners: Owners) -> Socket {
        Socket {
            inode: u64::from(matches!(owners, Owners::Known(_))),
            ..Socket::for_test(Proto::Tcp, state, local, remote, owners)
        }
    }

    const NO_INODE: Owners = Owners::None(Unattributed::NoInode);

    /// A snapshot at `secs` with `procs`, one owner set per process, and `sockets`.
    fn snap(secs: u64, procs: Vec<Arc<Process>>, sockets: Vec<Socket>) -> Snapshot {
        let mut coverage = Coverage::default();
        for s in &sockets {
            coverage.add(s.owners);
        }
        Snapshot {
            taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs),
            owner_sets: (0..procs.len() as u32)
                .map(|i| vec![i].into_boxed_slice())
                .collect(),
            processes: procs,
            sockets,
            coverage,
            ..Snapshot::empty()
        }
    }

    fn owner_names(s: &Snapshot, i: usize) -> Vec<String> {
        s.owners_of(&s.sockets[i]).map(|p| p.name.clone()).collect()
    }

    #[test]
    fn server_side_goes_to_the_listener_on_the_same_or_wildcard_address() {
        let mut inf = Inference::default();
        let mut s = snap(
            0,
            vec![process(10, "nginx"), process(20, "admin")],
            vec![
                sock(
                    TcpState::Listen,
                    "0.0.0.0:443",
                    "0.0.0.0:0",
                    Owners::Known(0),
                ),
                sock(
                    TcpState::Listen,
                    "127.0.0.1:443",
                    "0.0.0.0:0",
                    Owners::Known(1),
                ),
                sock(TcpState::Listen, "[::]:8443", "[::]:0", Owners::Known(0)),
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:443",
                    "10.9.0.1:5000",
                    NO_INODE,
                ),
                sock(
                    TcpState::SynRecv,
                    "127.0.0.1:443",
                    "127.0.0.1:5001",
                    NO_INODE,
                ),
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:8443",
                    "10.9.0.1:5000",
                    NO_INODE,
                ),
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:9999",
                    "10.9.0.1:5000",
                    NO_INODE,
                ),
            ],
        );
        inf.apply(&mut s);
        assert_eq!(s.sockets[3].owners, Owners::Inferred(0));
        assert_eq!(
            owner_names(&s, 4),
            ["admin"],
            "exact address beats the wildcard"
        );
        assert_eq!(
            owner_names(&s, 5),
            ["nginx"],
            "a v6 wildcard covers v4-mapped traffic"
        );
        assert_eq!(
            s.sockets[6].owners, NO_INODE,
            "no listener, never seen: stays unknown"
        );
        assert_eq!((s.coverage.inferred, s.coverage.no_inode), (3, 1));
        assert_eq!(s.coverage.attributed, 3);
    }

    #[test]
    fn client_side_goes_to_the_last_owner_of_the_4_tuple_even_after_exit() {
        let mut inf = Inference::default();
        let curl = process(30, "curl");
        let mut s0 = snap(
            0,
            vec![curl, process(40, "sshd")],
            vec![
                sock(
                    TcpState::Established,
                    "10.0.0.1:40000",
                    "10.5.0.5:5432",
                    Owners::Known(0),
                ),
                sock(
                    TcpState::Established,
                    "10.0.0.1:40001",
                    "10.5.0.5:5432",
                    Owners::Known(0),
                ),
            ],
        );
        inf.apply(&mut s0);
        assert_eq!(inf.remembered(), 2);
        // curl exited; its connections are in TIME_WAIT. sshd is still there.
        let mut s1 = snap(
            5,
            vec![process(40, "sshd")],
            vec![
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:40000",
                    "10.5.0.5:5432",
                    NO_INODE,
                ),
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:40001",
                    "10.5.0.5:5432",
                    NO_INODE,
                ),
                sock(
                    TcpState::TimeWait,
                    "10.0.0.1:40002",
                    "10.5.0.5:5432",
                    NO_INODE,
                ),
            ],
        );
        inf.apply(&mut s1);
        assert_eq!(owner_names(&s1, 0), ["curl"]);
        assert_eq!(
            s1.sockets[0].owners, s1.sockets[1].owners,
            "one owner set, shared"
        );
        assert_eq!(s1.sockets[2].owners, NO_INODE);
        assert_eq!(s1.processes.len(), 2, "curl re-added once");
        assert_eq!(s1.owner_sets.len(), 2);
        assert_eq!((s1.coverage.inferred, s1.coverage.no_inode), (2, 1));
    }

    #[test]
    fn a_reused_pid_is_a_different_process() {
        let mut inf = Inference::default();
        let mut s0 = snap(
            0,
            vec![process(50, "old")],
            vec![sock(
                TcpState::Established,
                "10.0.0.1:40000",
                "10.5.0.5:80",
                Owners::Known(0),
            )],
        );
        inf.apply(&mut s0);
        let mut reborn = (*process(50, "new")).clone();
        reborn.start_time += 1;
        let mut s1 = snap(
            1,
            vec![Arc::new(reborn)],
            vec![sock(
                TcpState::TimeWait,
                "10.0.0.1:40000",
                "10.5.0.5:80",
                NO_INODE,
            )],
        );
        inf.apply(&mut s1);
        assert_eq!(owner_names(&s1, 0), ["old"]);
        assert_eq!(s1.processes.len(), 2);
    }

    #[test]
    fn remembered_tuples_expire_and_stay_under_the_cap() {
        let mut inf = Inference::new(Duration::from_secs(120), 1000);
        for t in 0..300u64 {
            let sockets: Vec<Socket> = (0..100u16)
                .map(|i| {
                    let local = format!("10.0.0.1:{}", 30000 + (t as u16 % 300) * 100 + i);
                    sock(
                        TcpState::Established,
                        &local,
                        "10.5.0.5:80",
                        Owners::Known(0),
                    )
                })
                .collect();
            let mut s = snap(t, vec![process(60, "client")], sockets);
            inf.apply(&mut s);
            assert!(
                inf.remembered() <= 1000 + 100,
                "tick {t}: {}",
                inf.remembered()
            );
        }
        let mut s = snap(1000, vec![], vec![]);
        inf.apply(&mut s);
        assert_eq!(inf.remembered(), 0, "all older than the window");
        assert!(
            inf.sets.iter().all(Option::is_none),
            "unused owner sets freed"
        );
        let mut late = snap(
            1001,
            vec![],
            vec![sock(
                TcpState::TimeWait,
                "10.0.0.1:30000",
                "10.5.0.5:80",
                NO_INODE,
            )],
        );
        inf.apply(&mut late);
        assert_eq!(late.sockets[0].owners, NO_INODE);
    }
}
