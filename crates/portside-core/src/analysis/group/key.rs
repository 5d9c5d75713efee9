//! Which group a socket belongs to: inbound on its listening port, or outbound to the
//! remote service port per owning program, by the rule of [`sides`](crate::analysis::sides).
//! Built once per snapshot, then one bitset probe and one vector index per socket.

use foldhash::HashMap;

use crate::analysis::ports::Listening;
use crate::model::{Owners, Proto, Snapshot, Socket, Unattributed};

/// How sockets are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Grouping {
    /// Inbound per (protocol, listening port), outbound per (protocol, remote service
    /// port, owning program): client sockets' ephemeral ports make no rows.
    #[default]
    Services,
    /// One row per (protocol, local port), client ports included (the raw view).
    LocalPorts,
}

/// The two kinds of group, and the raw per-local-port row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Sockets this host accepted (or could accept) on a local port.
    Inbound,
    /// Connections this host opened to a remote service.
    Outbound,
    /// [`Grouping::LocalPorts`]: every socket of a local port, whichever side it is.
    Local,
}

impl Direction {
    /// The JSON and CSV name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Local => "local",
        }
    }
}

/// Who an outbound group belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerKey {
    /// Inbound and raw groups: every owner of the port together.
    Any,
    /// A program: the index in `snapshot.processes` of the first process with its name
    /// (the processes of one program share the row: `api-server (3 pids)`).
    Program(u32),
    /// Owned by a process we may not look at, of this uid.
    Hidden(u32),
    /// No owner known: a client TIME_WAIT socket whose process was never seen, or whose
    /// process exited.
    Unknown,
}

/// The identity of a group: what the drill-down and the selection follow across ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub direction: Direction,
    pub proto: Proto,
    /// Inbound and raw: the local port. Outbound: the remote port.
    pub port: u16,
    pub owner: OwnerKey,
}

/// Assigns sockets of one snapshot to groups. Reused between ticks for its capacity.
#[derive(Debug, Default)]
pub struct Classifier {
    grouping: Grouping,
    listening: Listening,
    ephemeral: (u16, u16),
    /// Per owner set: its program.
    set_program: Vec<OwnerKey>,
}

impl Classifier {
    /// Prepares for `snapshot`: its listening ports and each owner set's program.
    pub fn prepare(&mut self, snapshot: &Snapshot, grouping: Grouping) {
        self.grouping = grouping;
        self.ephemeral = snapshot.ephemeral_range;
        self.listening.clear();
        for s in &snapshot.sockets {
            if s.is_listening() {
                self.listening.insert(s.proto, s.local.port());
            }
        }
        let mut first_of_name: HashMap<&str, u32> = HashMap::default();
        let programs: Vec<u32> = (0u32..)
            .zip(&snapshot.processes)
            .map(|(i, p)| *first_of_name.entry(p.name.as_str()).or_insert(i))
            .collect();
        self.set_program.clear();
        self.set_program
            .extend(snapshot.owner_sets.iter().map(|set| {
                set.first()
                    .and_then(|&p| programs.get(p as usize))
                    .map_or(OwnerKey::Unknown, |&p| OwnerKey::Program(p))
            }));
    }

    /// A client socket: connected, nothing listens on its local port, and that port is in
    /// the kernel's ephemeral range (the rule of `sides.rs`).
    pub fn is_client(&self, socket: &Socket) -> bool {
        let port = socket.local.port();
        socket.remote.port() != 0
            && !self.listening.contains(socket.proto, port)
            && (self.ephemeral.0..=self.ephemeral.1).contains(&port)
    }

    /// Whether some socket of `proto` listens on `port`.
    pub fn listens(&self, proto: Proto, port: u16) -> bool {
        self.listening.contains(proto, port)
    }

    /// The group of `socket`.
    pub fn key(&self, socket: &Socket) -> GroupKey {
        let local = GroupKey {
            direction: Direction::Local,
            proto: socket.proto,
            port: socket.local.port(),
            owner: OwnerKey::Any,
        };
        match self.grouping {
            Grouping::LocalPorts => local,
            Grouping::Services if self.is_client(socket) => GroupKey {
                direction: Direction::Outbound,
                proto: socket.proto,
                port: socket.remote.port(),
                owner: self.owner(socket),
            },
            Grouping::Services => GroupKey {
                direction: Direction::Inbound,
                ..local
            },
        }
    }

    /// The owner key of a client socket.
    pub fn owner(&self, socket: &Socket) -> OwnerKey {
        match socket.owners {
            Owners::Known(set) | Owners::Inferred(set) => self
                .set_program
                .get(set as usize)
                .copied()
                .unwrap_or(OwnerKey::Unknown),
            Owners::None(Unattributed::PermissionDenied | Unattributed::NotFound) => {
                OwnerKey::Hidden(socket.uid)
            }
            Owners::None(Unattributed::NoInode) => OwnerKey::Unknown,
        }
    }
}
