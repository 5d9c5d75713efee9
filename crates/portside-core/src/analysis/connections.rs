//! The connection tracker: every socket's identity across ticks, and what follows from it:
//! how long each socket has been seen (ages), which connections opened and closed between
//! samples (the sampled churn estimate), and who owned a socket that no process holds any
//! more (TIME_WAIT, orphans).
//!
//! Identity: the kernel's socket cookie (sock_diag `id.cookie`), unique for the kernel's
//! lifetime. A 4-tuple reused straight out of TIME_WAIT (loopback does it at once) is a new
//! connection with a new cookie; a TIME_WAIT socket keeps the cookie of its connection.
//! Only the `/proc/net` fallback has no cookies (0): there the identity is (proto, local,
//! remote), and a reused 4-tuple looks like the same connection (its churn is undercounted).
//!
//! Definitions of the sampled events (the estimate; see `destroyed` for the exact count):
//! - A *connection* is a full socket with a remote port that is not listening; SYN_RECV
//!   request sockets are left out (the kernel gives the established child a new cookie, and
//!   a handshake that never completes opens nothing).
//! - A connection is *open* in every state but TIME_WAIT and CLOSE.
//! - **new**: an identity present now and absent from the previous tick.
//! - **closed**: an identity that was open at the previous tick and is now gone or no
//!   longer open, or a new identity already not open (opened and closed between samples).
//! - Blind spot: a connection born and gone between two samples without leaving a TIME_WAIT
//!   socket is never seen. The destroy notifications (`source::destroyed`) close it.
//!
//! Owner inference, for TCP sockets without an inode: the last owners seen on the same
//! identity (exact with cookies: the process that held this very connection, re-added to
//! the snapshot if it has exited), else the TCP listener of the local port (same address,
//! else a wildcard): a guess, for SYN_RECV request sockets and connections never seen held.
//!
//! Cost: each tick lists (key, index) for every socket, radix-sorts it by key and merges it
//! with the previous tick's sorted entries: sequential passes instead of cold hash probes
//! (see `identity`). Every buffer is kept and reused, so a warm tick allocates nothing
//! (new sets of owner processes aside). Memory: 40 B per socket in each of two entry lists,
//! 16 B in each of two sort buffers, 5 B per socket of per-index results: ~13 MB at 100k.
//! Measured with `tick_cost_at_100k_sockets` (analysis/insight/scale.rs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::model::{Family, Owners, Proto, Snapshot, Socket, TcpState, Unattributed};

pub mod identity;
mod owner_memory;

use identity::{Fingerprinter, cookie_key, sort_by_id};
use owner_memory::{NONE, OwnerMemory};

/// Whether a socket counts as a connection for new/closed events (see the definitions).
pub fn is_connection(s: &Socket) -> bool {
    !s.is_listening()
        && s.remote.port() != 0
        && !matches!(
            s.state,
            TcpState::BoundInactive | TcpState::SynRecv | TcpState::NewSynRecv
        )
}

/// Whether a connection in `state` is still open (not TIME_WAIT or CLOSE).
pub fn is_open(state: TcpState) -> bool {
    !matches!(state, TcpState::TimeWait | TcpState::Close)
}

/// When a socket was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub since: SystemTime,
    /// Already there at the first tick: its real age is at least what is shown.
    pub at_start: bool,
}

/// What the sampled churn saw of one socket this tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketEvents {
    pub new: bool,
    pub closed: bool,
}

/// A connection open at the previous tick and absent now: closed, with where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    pub proto: Proto,
    pub family: Family,
    pub local: SocketAddr,
}

// Entry flags.
const UDP: u8 = 1;
const V6: u8 = 2;
const OPEN: u8 = 4;
const CONN: u8 = 8;
const AT_START: u8 = 16;

/// A socket remembered from the previous tick, sorted by `key`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    /// Local address bits (IPv4 in the low 32 bits).
    ip: u128,
    /// First seen, in tenths of a second since the tracker's epoch (13 years fit).
    since: u32,
    /// Interned owners last seen holding it (`NONE`: never seen held).
    owners: u32,
    port: u16,
    flags: u8,
}

/// One socket of this tick: its key and its index in the snapshot.
#[derive(Debug, Clone, Copy)]
struct Item {
    key: u64,
    index: u32,
}

/// The one connection tracker: feed every snapshot, in time order, to [`Connections::update`].
#[derive(Debug, Clone, Default)]
pub struct Connections {
    fingerprint: Fingerprinter,
    epoch: Option<SystemTime>,
    last_at: Option<SystemTime>,
    /// Sorted by key, one entry per key.
    entries: Vec<Entry>,
    next: Vec<Entry>,
    items: Vec<Item>,
    scratch: Vec<Item>,
    /// Per snapshot index: first seen (tenths since epoch) and events.
    since: Vec<u32>,
    events: Vec<u8>,
    at_start: Vec<bool>,
    gone: Vec<Gone>,
    owners: OwnerMemory,
    /// TCP listeners with known owners: (port, address, snapshot owner set), by port.
    listeners: Vec<(u16, IpAddr, u32)>,
    /// Inode-less TCP sockets left after the identity pass (snapshot indexes).
    unowned: Vec<u32>,
    elapsed: Option<Duration>,
}

const NEW: u8 = 1;
const CLOSED: u8 = 2;

impl Connections {
    pub fn new() -> Connections {
        Connections::default()
    }

    /// The identity key of a socket: its cookie, or without one (the `/proc/net` fallback)
    /// a fingerprint of its 4-tuple.
    fn key(&self, s: &Socket) -> u64 {
        if s.cookie == 0 {
            self.fingerprint.of(s.proto, s.local, s.remote)
        } else {
            cookie_key(s.cookie)
        }
    }

    /// Take in `snapshot`: ages and events of its sockets, and owners inferred for its
    /// inode-less TCP sockets (written into the snapshot; `coverage` moves them from
    /// `no_inode` to `inferred`). A snapshot not later than the previous one (clock stepped
    /// back) refreshes identities without events.
    pub fn update(&mut self, snapshot: &mut Snapshot) {
        let taken_at = snapshot.taken_at;
        let epoch = *self.epoch.get_or_insert(taken_at);
        let first_tick = self.last_at.is_none();
        self.elapsed = self
            .last_at
            .and_then(|last| taken_at.duration_since(last).ok())
            .filter(|d| !d.is_zero());
        self.last_at = Some(taken_at);
        let now = taken_at.duration_since(epoch).map_or(0, |d| {
            u32::try_from(d.as_millis() / 100).unwrap_or(u32::MAX)
        });

        let n = snapshot.sockets.len();
        self.items.clear();
        self.listeners.clear();
        for (i, s) in snapshot.sockets.iter().enumerate() {
            self.items.push(Item {
                key: self.key(s),
                index: i as u32,
            });
            if s.proto == Proto::Tcp
                && s.state == TcpState::Listen
                && let Owners::Known(set) = s.owners
            {
                self.listeners.push((s.local.port(), s.local.ip(), set));
            }
        }
        self.listeners.sort_unstable_by_key(|l| l.0);
        sort_by_id(&mut self.items, &mut self.scratch, |it| it.key);

        self.since.clear();
        self.since.resize(n, now);
        self.at_start.clear();
        self.at_start.resize(n, first_tick);
        self.events.clear();
        self.events.resize(n, 0);
        self.gone.clear();
        self.unowned.clear();
        self.owners.begin(snapshot);
        let count = self.elapsed.is_some();
        self.merge(snapshot, now, first_tick, count);
        std::mem::swap(&mut self.entries, &mut self.next);
        self.owners.sweep();
        self.infer_from_listeners(snapshot);
    }

    /// Walk the previous entries and this tick's sorted items together.
    fn merge(&mut self, snapshot: &mut Snapshot, now: u32, first_tick: bool, count: bool) {
        self.next.clear();
        let mut i = 0;
        let mut j = 0;
        let old_len = self.entries.len();
        while j < self.items.len() {
            let key = self.items[j].key;
            while i < old_len && self.entries[i].key < key {
                let gone = self.entries[i];
                if count && gone.flags & (CONN | OPEN) == CONN | OPEN {
                    self.gone.push(gone_of(&gone));
                }
                i += 1;
            }
            let prev = (i < old_len && self.entries[i].key == key).then(|| self.entries[i]);
            if prev.is_some() {
                i += 1;
            }
            let index = self.items[j].index as usize;
            let entry = self.track(snapshot, index, key, prev, now, first_tick, count);
            self.owners.mark(entry.owners);
            self.next.push(entry);
            j += 1;
            // The same identity twice in one dump (a socket moving during the walk): the
            // copies share the first one's age and owners, and count once.
            while j < self.items.len() && self.items[j].key == key {
                let dup = self.items[j].index as usize;
                self.since[dup] = entry.since;
                self.at_start[dup] = entry.flags & AT_START != 0;
                self.settle_owner(snapshot, dup, entry.owners);
                j += 1;
            }
        }
        for k in i..old_len {
            let gone = self.entries[k];
            if count && gone.flags & (CONN | OPEN) == CONN | OPEN {
                self.gone.push(gone_of(&gone));
            }
        }
    }

    /// The entry of socket `index` this tick, given its previous entry.
    #[expect(
        clippy::too_many_arguments,
        reason = "the merge's loop state, kept flat"
    )]
    fn track(
        &mut self,
        snapshot: &mut Snapshot,
        index: usize,
        key: u64,
        prev: Option<Entry>,
        now: u32,
        first_tick: bool,
        count: bool,
    ) -> Entry {
        let s = snapshot.sockets[index];
        let mut flags = 0;
        if s.proto == Proto::Udp {
            flags |= UDP;
        }
        if s.family == Family::V6 {
            flags |= V6;
        }
        let conn = is_connection(&s);
        let open = is_open(s.state);
        if conn {
            flags |= CONN;
        }
        if open {
            flags |= OPEN;
        }
        let (since, owners) = if let Some(p) = prev {
            flags |= p.flags & AT_START;
            if count && conn && p.flags & (CONN | OPEN) == CONN | OPEN && !open {
                self.events[index] |= CLOSED;
            }
            (p.since, p.owners)
        } else {
            if first_tick {
                flags |= AT_START;
            }
            if count && conn {
                self.events[index] |= if open { NEW } else { NEW | CLOSED };
            }
            (now, NONE)
        };
        self.since[index] = since;
        self.at_start[index] = flags & AT_START != 0;
        let owners = match s.owners {
            Owners::Known(n) if s.proto == Proto::Tcp && conn => self.owners.remember(snapshot, n),
            _ => {
                self.settle_owner(snapshot, index, owners);
                owners
            }
        };
        Entry {
            key,
            ip: ip_bits(s.local.ip()),
            since,
            owners,
            port: s.local.port(),
            flags,
        }
    }

    /// Give inode-less TCP socket `index` the remembered owners `mine`, or queue it for
    /// the listener guess.
    fn settle_owner(&mut self, snapshot: &mut Snapshot, index: usize, mine: u32) {
        let s = &snapshot.sockets[index];
        if s.proto != Proto::Tcp || s.owners != Owners::None(Unattributed::NoInode) {
            return;
        }
        match (mine != NONE)
            .then(|| self.owners.recall(snapshot, mine))
            .flatten()
        {
            Some(set) => infer(snapshot, index, set),
            None => self.unowned.push(index as u32),
        }
    }

    /// Inode-less TCP sockets never seen held go to the listener of their local port.
    fn infer_from_listeners(&mut self, snapshot: &mut Snapshot) {
        for k in 0..self.unowned.len() {
            let i = self.unowned[k] as usize;
            if let Some(set) = listener_owners(&self.listeners, &snapshot.sockets[i]) {
                infer(snapshot, i, set);
            }
        }
    }

    /// When socket `index` of the last snapshot was first seen.
    pub fn seen(&self, index: usize) -> Option<Seen> {
        let epoch = self.epoch?;
        let since = *self.since.get(index)?;
        Some(Seen {
            since: epoch + Duration::from_millis(u64::from(since) * 100),
            at_start: self.at_start[index],
        })
    }

    /// Sampled events of socket `index` of the last snapshot (none on the first tick).
    pub fn events(&self, index: usize) -> SocketEvents {
        let e = self.events.get(index).copied().unwrap_or(0);
        SocketEvents {
            new: e & NEW != 0,
            closed: e & CLOSED != 0,
        }
    }

    /// Connections open at the previous tick and absent from the last snapshot.
    pub fn gone(&self) -> &[Gone] {
        &self.gone
    }

    /// Real time since the previous snapshot; `None` on the first tick or a clock step back.
    pub fn elapsed(&self) -> Option<Duration> {
        self.elapsed
    }

    /// Sockets remembered (those of the last snapshot, one per identity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Owner sets remembered now.
    pub fn remembered_owner_sets(&self) -> usize {
        self.owners.len()
    }

    /// Heap bytes held by the tracker's buffers.
    pub fn heap_bytes(&self) -> usize {
        (self.entries.capacity() + self.next.capacity()) * size_of::<Entry>()
            + (self.items.capacity() + self.scratch.capacity()) * size_of::<Item>()
            + self.since.capacity() * 4
            + self.events.capacity()
            + self.at_start.capacity()
            + self.gone.capacity() * size_of::<Gone>()
            + self.listeners.capacity() * size_of::<(u16, IpAddr, u32)>()
            + self.unowned.capacity() * 4
            + self.owners.heap_bytes()
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

fn gone_of(e: &Entry) -> Gone {
    let (family, ip) = if e.flags & V6 != 0 {
        (Family::V6, IpAddr::V6(Ipv6Addr::from_bits(e.ip)))
    } else {
        (Family::V4, IpAddr::V4(Ipv4Addr::from_bits(e.ip as u32)))
    };
    Gone {
        proto: if e.flags & UDP != 0 {
            Proto::Udp
        } else {
            Proto::Tcp
        },
        family,
        local: SocketAddr::new(ip, e.port),
    }
}

/// Owner set of the listener on the socket's local port: same address, else a wildcard of
/// the same family, else any wildcard (a dual-stack `::`).
fn listener_owners(listeners: &[(u16, IpAddr, u32)], s: &Socket) -> Option<u32> {
    let port = s.local.port();
    let start = listeners.partition_point(|l| l.0 < port);
    let ip = s.local.ip();
    let mut same_family_wildcard = None;
    let mut any_wildcard = None;
    for &(_, addr, set) in listeners[start..].iter().take_while(|l| l.0 == port) {
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

/// Mark socket `i` as owned by snapshot owner set `set`, by inference.
fn infer(snapshot: &mut Snapshot, i: usize, set: u32) {
    snapshot.sockets[i].owners = Owners::Inferred(set);
    let c = &mut snapshot.coverage;
    c.no_inode = c.no_inode.saturating_sub(1);
    c.inferred += 1;
}

#[cfg(test)]
mod tests;
