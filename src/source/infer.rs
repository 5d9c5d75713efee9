//! Owner inference for sockets no process holds (TIME_WAIT, SYN_RECV, orphans: inode 0).
//!
//! Server side: the socket's local port has a TCP listener with known owners (same local
//! address, else a wildcard one) -> that listener's owners. Client side: the same 4-tuple
//! was seen earlier with known owners (e.g. ESTABLISHED before its active close) -> those
//! processes, re-added to the snapshot if they have exited since. Either way the socket
//! becomes `Owners::Inferred` and `coverage` moves it from `no_inode` to `inferred`.
//!
//! Memory: 16 bytes per remembered client 4-tuple plus interned owner sets. A 4-tuple is
//! forgotten `window` (default 2 min: TIME_WAIT lasts 60 s) after it was last seen with
//! owners; past `cap` (default 262,144 entries, ~4.5 MB) older entries go first.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::{Owners, Process, Proto, Snapshot, Socket, TcpState, Unattributed};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Seeded 64-bit fingerprint of a connection identity (proto, local, remote).
///
/// foldhash rather than FxHash: as fast on these few words, but seeded per process, so peers
/// choosing their addresses and ports (a SYN flood, the very moment this tool is opened)
/// cannot aim at collisions. At 100k identities the chance of any 64-bit collision in one
/// tick is ~3e-10, and one would only miscount one event.
#[derive(Debug, Clone, Default)]
pub struct Fingerprinter(foldhash::fast::RandomState);

impl Fingerprinter {
    pub fn of(&self, proto: Proto, local: SocketAddr, remote: SocketAddr) -> u64 {
        let mut h = self.0.build_hasher();
        let mut tag = u64::from(proto == Proto::Udp);
        for (i, a) in [local, remote].into_iter().enumerate() {
            match a.ip() {
                IpAddr::V4(ip) => h.write_u32(ip.to_bits()),
                IpAddr::V6(ip) => {
                    h.write_u128(ip.to_bits());
                    tag |= 2 << i;
                }
            }
        }
        h.write_u64(tag | u64::from(local.port()) << 16 | u64::from(remote.port()) << 32);
        h.finish()
    }
}

/// A process identity that survives pid reuse.
type ProcId = (u32, u64);

#[derive(Debug)]
struct OwnerSet {
    procs: Box<[Arc<Process>]>,
    /// Last time (seconds since `base`) a 4-tuple was remembered with this set.
    last_used: u32,
}

/// Remembered owner of a client 4-tuple: an interned set and when it was last seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    set: u32,
    secs: u32,
}

const NONE: u32 = u32::MAX;

/// Owner inference kept across ticks; call [`Inference::apply`] on every snapshot.
#[derive(Debug)]
pub struct Inference {
    fingerprint: Fingerprinter,
    window: Duration,
    cap: usize,
    base: Option<SystemTime>,
    last_eviction: u32,
    remembered: FastMap<u64, Seen>,
    sets: Vec<Option<OwnerSet>>,
    free: Vec<u32>,
    set_ids: FastMap<Box<[ProcId]>, u32>,
    // Per-tick scratch, kept for its capacity.
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
            last_eviction: 0,
            remembered: FastMap::default(),
            sets: Vec::new(),
            free: Vec::new(),
            set_ids: FastMap::default(),
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
        self.evict(now);
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

    /// Remember the owners of every client-side TCP connection with known owners.
    fn remember(&mut self, snapshot: &Snapshot, now: u32) {
        self.snap_to_mine.clear();
        self.snap_to_mine.resize(snapshot.owner_sets.len(), NONE);
        self.mine_to_snap.clear();
        self.mine_to_snap.resize(self.sets.len(), NONE);
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
            let mine = if mine == NONE {
                let Some(id) = self.intern(snapshot, n, now) else {
                    continue;
                };
                self.snap_to_mine[n as usize] = id;
                id
            } else {
                mine
            };
            let id = self.fingerprint.of(s.proto, s.local, s.remote);
            self.remembered.insert(id, Seen { set: mine, secs: now });
        }
    }

    /// Intern snapshot owner set `n` (by process identity); `None` if it names no process.
    fn intern(&mut self, snapshot: &Snapshot, n: u32, now: u32) -> Option<u32> {
        let procs: Vec<&Arc<Process>> = snapshot.owner_sets[n as usize]
            .iter()
            .filter_map(|&i| snapshot.processes.get(i as usize))
            .collect();
        if procs.is_empty() {
            return None;
        }
        self.key.clear();
        self.key.extend(procs.iter().map(|p| (p.pid, p.start_time)));
        self.key.sort_unstable();
        let id = if let Some(&id) = self.set_ids.get(&self.key[..]) {
            id
        } else {
            let set = OwnerSet {
                procs: procs.into_iter().cloned().collect(),
                last_used: now,
            };
            let id = if let Some(id) = self.free.pop() {
                self.sets[id as usize] = Some(set);
                id
            } else {
                self.sets.push(Some(set));
                self.mine_to_snap.push(NONE);
                (self.sets.len() - 1) as u32
            };
            self.set_ids.insert(self.key.clone().into_boxed_slice(), id);
            id
        };
        if let Some(Some(set)) = self.sets.get_mut(id as usize) {
            set.last_used = now;
        }
        self.mine_to_snap[id as usize] = n;
        Some(id)
    }

    /// Give every inode-less TCP socket the owners of its listener or remembered 4-tuple.
    fn attribute(&mut self, snapshot: &mut Snapshot) {
        self.proc_index.clear();
        for (i, p) in snapshot.processes.iter().enumerate() {
            self.proc_index.insert((p.pid, p.start_time), i as u32);
        }
        for i in 0..snapshot.sockets.len() {
            let s = snapshot.sockets[i];
            if s.proto != Proto::Tcp || s.owners != Owners::None(Unattributed::NoInode) {
                continue;
            }
            let set = self.listener_owners(&s).or_else(|| {
                let seen = *self
                    .remembered
                    .get(&self.fingerprint.of(s.proto, s.local, s.remote))?;
                self.snapshot_set(snapshot, seen.set)
            });
            if let Some(set) = set {
                snapshot.sockets[i].owners = Owners::Inferred(set);
                let c = &mut snapshot.coverage;
                c.no_inode = c.no_inode.saturating_sub(1);
                c.inferred += 1;
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

    /// The snapshot owner set holding the processes of interned set `mine`, created (and
    /// exited processes re-added) if the snapshot has none.
    fn snapshot_set(&mut self, snapshot: &mut Snapshot, mine: u32) -> Option<u32> {
        let existing = *self.mine_to_snap.get(mine as usize)?;
        if existing != NONE {
            return Some(existing);
        }
        let set = self.sets.get(mine as usize)?.as_ref()?;
        let mut indexes: Vec<u32> = Vec::with_capacity(set.procs.len());
        for p in &set.procs {
            let i = *self
                .proc_index
                .entry((p.pid, p.start_time))
                .or_insert_with(|| {
                    snapshot.processes.push(Arc::clone(p));
                    (snapshot.processes.len() - 1) as u32
                });
            indexes.push(i);
        }
        indexes.sort_unstable();
        snapshot.owner_sets.push(indexes.into_boxed_slice());
        let n = (snapshot.owner_sets.len() - 1) as u32;
        self.mine_to_snap[mine as usize] = n;
        Some(n)
    }

    /// Forget 4-tuples older than `window` (checked every window/8), and the oldest ones
    /// while more than `cap` remain; then owner sets no longer used.
    fn evict(&mut self, now: u32) {
        let window = u32::try_from(self.window.as_secs()).unwrap_or(u32::MAX);
        let over_cap = self.remembered.len() > self.cap;
        if !over_cap && now.saturating_sub(self.last_eviction) < (window / 8).max(1) {
            return;
        }
        self.last_eviction = now;
        let mut keep = window;
        loop {
            let cutoff = now.saturating_sub(keep);
            self.remembered.retain(|_, seen| seen.secs >= cutoff);
            if self.remembered.len() <= self.cap || keep == 0 {
                break;
            }
            keep /= 2;
        }
        let cutoff = now.saturating_sub(keep);
        for (id, slot) in self.sets.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|s| s.last_used < cutoff) {
                if let Some(set) = slot.take() {
                    self.key.clear();
                    self.key.extend(set.procs.iter().map(|p| (p.pid, p.start_time)));
                    self.key.sort_unstable();
                    self.set_ids.remove(&self.key[..]);
                    self.free.push(id as u32);
                }
            }
        }
    }
}

