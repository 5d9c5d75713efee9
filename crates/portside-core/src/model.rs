//! Typed domain shared by every layer: sockets, TCP states, owners, snapshots.
//!
//! This module imports nothing of ours. Text appears only in the `Display`/name helpers
//! that the edges (output, TUI) use.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const ALL: [Proto; 2] = [Proto::Tcp, Proto::Udp];

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Address family of the socket (an IPv4-mapped IPv6 socket is `V6`, as the kernel reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// Kernel socket state (`include/net/tcp_states.h`). UDP sockets use `Established`
/// (connected) and `Close` (unconnected, shown as `UNCONN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    /// `TCP_NEW_SYN_RECV`: a request socket. sock_diag and `/proc/net/tcp` report these
    /// as `SynRecv`; kept so a raw kernel value always maps to a state.
    NewSynRecv = 12,
    /// `TCP_BOUND_INACTIVE` (Linux 6.5+): bound, never listened or connected.
    BoundInactive = 13,
}

impl TcpState {
    /// Every state, in kernel order. Index with [`TcpState::index`].
    pub const ALL: [TcpState; 13] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
        TcpState::BoundInactive,
    ];
    /// Number of states; the length of per-state count arrays.
    pub const COUNT: usize = 13;

    /// The state for a raw kernel value, or `None` for a value this build does not know.
    pub fn from_kernel(v: u8) -> Option<TcpState> {
        match v {
            1..=13 => Some(TcpState::ALL[usize::from(v) - 1]),
            _ => None,
        }
    }

    /// Dense index 0..COUNT for per-state arrays.
    pub fn index(self) -> usize {
        self as usize - 1
    }

    /// The kernel's name (`TIME_WAIT`), as used in the JSON contract; UDP `Close` is `UNCONN`.
    pub fn kernel_name(self, proto: Proto) -> &'static str {
        match (self, proto) {
            (TcpState::Close, Proto::Udp) => "UNCONN",
            (TcpState::Established, _) => "ESTABLISHED",
            (TcpState::SynSent, _) => "SYN_SENT",
            (TcpState::SynRecv | TcpState::NewSynRecv, _) => "SYN_RECV",
            (TcpState::FinWait1, _) => "FIN_WAIT1",
            (TcpState::FinWait2, _) => "FIN_WAIT2",
            (TcpState::TimeWait, _) => "TIME_WAIT",
            (TcpState::Close, Proto::Tcp) => "CLOSE",
            (TcpState::CloseWait, _) => "CLOSE_WAIT",
            (TcpState::LastAck, _) => "LAST_ACK",
            (TcpState::Listen, _) => "LISTEN",
            (TcpState::Closing, _) => "CLOSING",
            (TcpState::BoundInactive, _) => "BOUND_INACTIVE",
        }
    }

    /// The name `ss` prints (`TIME-WAIT`, `ESTAB`, `UNCONN`).
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::BoundInactive => "BOUND-INACTIVE",
        }
    }

    /// A short column label for compact displays (`ESTAB`, `TW`, `CW`).
    pub fn short_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN_S",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN_R",
            TcpState::FinWait1 => "FIN_W1",
            TcpState::FinWait2 => "FIN_W2",
            TcpState::TimeWait => "TIME_W",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_W",
            TcpState::LastAck => "LAST_A",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::BoundInactive => "BOUND",
        }
    }

    /// Bit for this state in a kernel state mask (`1 << state`), as sock_diag filters use.
    pub fn mask_bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Port ranges of RFC 6335.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortClass {
    /// 0-1023
    WellKnown,
    /// 1024-49151
    Registered,
    /// 49152-65535
    Dynamic,
}

impl PortClass {
    pub fn of(port: u16) -> PortClass {
        match port {
            0..=1023 => PortClass::WellKnown,
            1024..=49151 => PortClass::Registered,
            _ => PortClass::Dynamic,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PortClass::WellKnown => "well-known",
            PortClass::Registered => "registered",
            PortClass::Dynamic => "dynamic",
        }
    }
}

/// Why a socket has no owning process in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unattributed {
    /// Inode 0: TIME_WAIT, SYN_RECV request sockets and orphans belong to no process.
    NoInode,
    /// The owner's `/proc/<pid>/fd` could not be read (another user's process, not root).
    PermissionDenied,
    /// No visible process holds the inode (it exited, or lives in another pid namespace).
    NotFound,
}

impl Unattributed {
    pub fn describe(self) -> &'static str {
        match self {
            Unattributed::NoInode => "no inode (TIME_WAIT/SYN_RECV/orphan)",
            Unattributed::PermissionDenied => "permission denied",
            Unattributed::NotFound => "no process found",
        }
    }
}

/// Who owns a socket: an index into [`Snapshot::owner_sets`], or why nobody does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owners {
    /// Held by the processes of owner set `n`.
    Known(u32),
    /// Not held by any process, but inferred (the listener on the same local port, or the
    /// last process seen with the same 4-tuple).
    Inferred(u32),
    None(Unattributed),
}

/// One kernel socket. Plain data, no strings: a sample of 100k sockets allocates one `Vec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub proto: Proto,
    pub family: Family,
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// LISTEN: current accept queue. Otherwise bytes not yet read by the application.
    pub recv_q: u32,
    /// LISTEN: configured backlog. Otherwise bytes not yet acknowledged by the peer.
    pub send_q: u32,
    pub uid: u32,
    /// Socket inode; 0 for sockets no file descriptor refers to.
    pub inode: u64,
    /// The kernel's socket cookie (sock_diag `id.cookie`): unique for the kernel's lifetime,
    /// the identity of a connection (a 4-tuple is reused straight out of TIME_WAIT). A
    /// TIME_WAIT socket keeps the cookie of the connection it came from. 0 when unknown
    /// (the `/proc/net` fallback has none).
    pub cookie: u64,
    pub owners: Owners,
}

impl Socket {
    /// The key `ss` would print for this socket: protocol, local, remote, state.
    pub fn key(&self) -> (Proto, SocketAddr, SocketAddr, TcpState) {
        (self.proto, self.local, self.remote, self.state)
    }

    pub fn is_listening(&self) -> bool {
        match self.proto {
            Proto::Tcp => self.state == TcpState::Listen,
            Proto::Udp => self.state == TcpState::Close && self.remote.port() == 0,
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl Socket {
    /// A socket for tests: family from the local address, empty queues, uid 0; inode 0
    /// for `Owners::None(NoInode)` (as the kernel gives TIME_WAIT), else 1.
    pub fn for_test(
        proto: Proto,
        state: TcpState,
        local: &str,
        remote: &str,
        owners: Owners,
    ) -> Socket {
        let local: SocketAddr = local.parse().expect("test address");
        Socket {
            proto,
            family: if local.is_ipv4() {
                Family::V4
            } else {
                Family::V6
            },
            state,
            local,
            remote: remote.parse().expect("test address"),
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: u64::from(owners != Owners::None(Unattributed::NoInode)),
            cookie: 0,
            owners,
        }
    }
}

/// A process that holds at least one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid,
    /// identifies a process even when its pid is reused.
    pub start_time: u64,
    /// `comm`: the short process name.
    pub name: String,
    /// Full command line, arguments joined by spaces (empty for kernel threads).
    pub cmdline: String,
    pub uid: u32,
    pub user: String,
}

/// CPU and memory of a process, when they could be read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// CPU since the previous sample, in percent of one core; `None` on a first sample.
    pub cpu_percent: Option<f32>,
    /// Resident memory in bytes.
    pub rss_bytes: Option<u64>,
}

/// How many sockets were joined to a process, and why the others were not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub attributed: usize,
    pub inferred: usize,
    pub no_inode: usize,
    pub permission_denied: usize,
    pub not_found: usize,
}

impl Coverage {
    pub fn unattributed(&self) -> usize {
        self.no_inode + self.permission_denied + self.not_found
    }

    pub fn add(&mut self, owners: Owners) {
        match owners {
            Owners::Known(_) => self.attributed += 1,
            Owners::Inferred(_) => self.inferred += 1,
            Owners::None(Unattributed::NoInode) => self.no_inode += 1,
            Owners::None(Unattributed::PermissionDenied) => self.permission_denied += 1,
            Owners::None(Unattributed::NotFound) => self.not_found += 1,
        }
    }
}

/// Where the socket list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    SockDiag,
    ProcNet,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::SockDiag => "sock_diag",
            SourceKind::ProcNet => "proc",
        }
    }
}

/// One sample of the kernel's socket tables, joined with owners. Owned, sent across threads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken_at: SystemTime,
    /// Wall time the sample took (dump + owner join + process details).
    pub duration: Duration,
    pub source: SourceKind,
    pub sockets: Vec<Socket>,
    /// Every process that owns at least one socket of this snapshot.
    pub processes: Vec<Arc<Process>>,
    /// CPU and memory of each of `processes`, same order; empty when not measured.
    pub usage: Vec<ProcessUsage>,
    /// Interned sets of indexes into `processes`; `Owners::Known(n)` points here.
    /// Sockets held by the same processes share one set.
    pub owner_sets: Vec<Box<[u32]>>,
    pub coverage: Coverage,
    /// Whether the sampler could read every process's fds (root or capabilities).
    pub privileged: bool,
    /// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), inclusive.
    pub ephemeral_range: (u16, u16),
    /// Sockets the kernel destroyed since the previous sample, from its socket-destroy
    /// notifications; `None` when not subscribed (closed connections are then estimated).
    pub destroyed: Option<Destroyed>,
}

/// Sockets the kernel reported destroyed between two samples (sock_diag destroy groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destroyed {
    /// Each full socket once, as it was when destroyed (state CLOSE), in arrival order.
    pub sockets: Vec<Socket>,
    /// Times the notification queue overflowed (`ENOBUFS`): notifications were lost, so
    /// this interval's closed count is short.
    pub overflows: u32,
}

impl Snapshot {
    /// An empty snapshot (no sockets), e.g. before the first sample arrives.
    pub fn empty() -> Snapshot {
        Snapshot {
            taken_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            source: SourceKind::SockDiag,
            sockets: Vec::new(),
            processes: Vec::new(),
            usage: Vec::new(),
            owner_sets: Vec::new(),
            coverage: Coverage::default(),
            privileged: true,
            ephemeral_range: (32768, 60999),
            destroyed: None,
        }
    }

    /// The processes that own `socket` (known or inferred); empty when unattributed.
    pub fn owners_of(&self, socket: &Socket) -> impl Iterator<Item = &Process> + '_ {
        let set: &[u32] = match socket.owners {
            Owners::Known(n) | Owners::Inferred(n) => {
                self.owner_sets.get(n as usize).map_or(&[][..], |s| &s[..])
            }
            Owners::None(_) => &[],
        };
        set.iter()
            .filter_map(|&i| self.processes.get(i as usize).map(|p| &**p))
    }

    /// CPU and memory of `processes[index]`, when measured.
    pub fn usage_of(&self, index: usize) -> ProcessUsage {
        self.usage.get(index).copied().unwrap_or_default()
    }

    /// Whether `port` lies in the kernel's ephemeral range.
    pub fn is_ephemeral(&self, port: u16) -> bool {
        (self.ephemeral_range.0..=self.ephemeral_range.1).contains(&port)
    }
}

/// Which sockets a sample should read; applied in the kernel where it can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub tcp: bool,
    pub udp: bool,
    pub v4: bool,
    pub v6: bool,
    /// Only listening sockets (TCP LISTEN, unconnected UDP).
    pub listening_only: bool,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            tcp: true,
            udp: true,
            v4: true,
            v6: true,
            listening_only: false,
        }
    }
}

impl Query {
    /// The (proto, family) tables this query reads.
    pub fn tables(&self) -> impl Iterator<Item = (Proto, Family)> + '_ {
        Proto::ALL
            .into_iter()
            .filter(|p| match p {
                Proto::Tcp => self.tcp,
                Proto::Udp => self.udp,
            })
            .flat_map(move |p| {
                Family::ALL
                    .into_iter()
                    .filter(|f| match f {
                        Family::V4 => self.v4,
                        Family::V6 => self.v6,
                    })
                    .map(move |f| (p, f))
            })
    }
}

/// The unspecified address of a family, with port 0 (`0.0.0.0:0`, `[::]:0`).
pub fn unspecified(family: Family) -> SocketAddr {
    match family {
        Family::V4 => SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
        Family::V6 => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_classes_at_boundaries() {
        assert_eq!(PortClass::of(0), PortClass::WellKnown);
        assert_eq!(PortClass::of(1023), PortClass::WellKnown);
        assert_eq!(PortClass::of(1024), PortClass::Registered);
        assert_eq!(PortClass::of(49151), PortClass::Registered);
        assert_eq!(PortClass::of(49152), PortClass::Dynamic);
        assert_eq!(PortClass::of(65535), PortClass::Dynamic);
    }

    #[test]
    fn every_kernel_state_round_trips() {
        for v in 1..=13u8 {
            let s = TcpState::from_kernel(v).unwrap();
            assert_eq!(s as u8, v);
            assert_eq!(TcpState::ALL[s.index()], s);
        }
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(14), None);
    }

    #[test]
    fn udp_close_is_unconn() {
        assert_eq!(TcpState::Close.kernel_name(Proto::Udp), "UNCONN");
        assert_eq!(TcpState::Close.kernel_name(Proto::Tcp), "CLOSE");
        assert_eq!(TcpState::NewSynRecv.kernel_name(Proto::Tcp), "SYN_RECV");
    }

    #[test]
    fn query_tables() {
        let q = Query {
            udp: false,
            v6: false,
            ..Query::default()
        };
        assert_eq!(
            q.tables().collect::<Vec<_>>(),
            vec![(Proto::Tcp, Family::V4)]
        );
        assert_eq!(Query::default().tables().count(), 4);
    }
}
