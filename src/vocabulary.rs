//! One presentation vocabulary for printed output and the live view: how an endpoint, an
//! owner, a port class, a direction and a reach are written. The table, CSV, JSON and the
//! TUI take their words from here, so one hidden owner reads the same everywhere.
//!
//! Owners, for a socket:
//! - known: `812/sshd`, several processes `812/sshd +2`;
//! - inferred (no process holds it; the listener's or the last seen owner): `~812/sshd`;
//! - hidden (held by a process we may not look at, or could not find): `?(www-data)`, the
//!   socket's user;
//! - none by nature (TIME_WAIT, SYN_RECV: no process can hold them): `-`, never `?`.
//!
//! For a group: one process `812/sshd`, several `nginx (4 pids)`, `~` when every owner is
//! inferred; without one, `?(user)` if some socket is hidden, `unknown` for an outbound
//! group (a process opened those connections, none is seen now), `-` otherwise.
//! JSON and CSV say the same with `attribution` / `owner` names ([`OwnerStatus::name`]).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use crate::analysis::group::{Direction, OwnerKey, PortGroup};
use crate::model::{Owners, PortClass, Process, Snapshot, Socket, Unattributed};
use crate::source::process::UserNames;

/// How an owner is known; the JSON/CSV word of the owner vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerStatus {
    Known,
    Inferred,
    /// Held by a process portside may not look at (or could not find).
    Hidden,
    /// No process by nature (TIME_WAIT, SYN_RECV).
    None,
    /// An outbound group whose process is no longer seen.
    Unknown,
}

impl OwnerStatus {
    pub fn name(self) -> &'static str {
        match self {
            OwnerStatus::Known => "known",
            OwnerStatus::Inferred => "inferred",
            OwnerStatus::Hidden => "hidden",
            OwnerStatus::None => "none",
            OwnerStatus::Unknown => "unknown",
        }
    }

    pub fn of_socket(owners: Owners) -> OwnerStatus {
        match owners {
            Owners::Known(_) => OwnerStatus::Known,
            Owners::Inferred(_) => OwnerStatus::Inferred,
            Owners::None(Unattributed::NoInode) => OwnerStatus::None,
            Owners::None(Unattributed::PermissionDenied | Unattributed::NotFound) => {
                OwnerStatus::Hidden
            }
        }
    }

    pub fn of_group(g: &PortGroup) -> OwnerStatus {
        let a = &g.attribution;
        if a.known > 0 {
            OwnerStatus::Known
        } else if a.inferred > 0 {
            OwnerStatus::Inferred
        } else if a.hidden > 0 {
            OwnerStatus::Hidden
        } else if g.is_outbound() {
            OwnerStatus::Unknown
        } else {
            OwnerStatus::None
        }
    }
}

/// The name of a uid, cached for the whole process (the table, CSV and TUI share it).
pub fn user_name(uid: u32) -> String {
    static USERS: Mutex<Option<UserNames>> = Mutex::new(None);
    let mut guard = USERS.lock().unwrap_or_else(PoisonError::into_inner);
    guard
        .get_or_insert_with(UserNames::default)
        .name(uid)
        .to_string()
}

/// A hidden owner: `?(user)`.
pub fn hidden(uid: u32) -> String {
    format!("?({})", user_name(uid))
}

/// A socket's owner (see the module docs).
pub fn socket_owner(snapshot: &Snapshot, socket: &Socket) -> String {
    match OwnerStatus::of_socket(socket.owners) {
        OwnerStatus::Hidden => hidden(socket.uid),
        OwnerStatus::None | OwnerStatus::Unknown => "-".to_string(),
        status @ (OwnerStatus::Known | OwnerStatus::Inferred) => {
            let mut procs = snapshot.owners_of(socket);
            let Some(first) = procs.next() else {
                return "-".to_string();
            };
            let rest = procs.count();
            let mut out = String::new();
            if status == OwnerStatus::Inferred {
                out.push('~');
            }
            let _ = write!(out, "{}/{}", first.pid, first.name);
            if rest > 0 {
                let _ = write!(out, " +{rest}");
            }
            out
        }
    }
}

/// A group's owners (see the module docs).
pub fn group_owner(snapshot: &Snapshot, g: &PortGroup) -> String {
    let status = OwnerStatus::of_group(g);
    match status {
        OwnerStatus::Known | OwnerStatus::Inferred => {
            let mark = if status == OwnerStatus::Inferred {
                "~"
            } else {
                ""
            };
            let label = processes(
                g.owners
                    .iter()
                    .filter_map(|&i| snapshot.processes.get(i as usize).map(|p| &**p)),
            );
            if label.is_empty() {
                "-".to_string()
            } else {
                format!("{mark}{label}")
            }
        }
        OwnerStatus::Hidden => hidden(g.attribution.hidden_uid.unwrap_or(u32::MAX)),
        OwnerStatus::Unknown => "unknown".to_string(),
        OwnerStatus::None => "-".to_string(),
    }
}

/// Several processes: `812/sshd` for one, `nginx (4 pids)`, `nginx,php-fpm (5 pids)`;
/// empty for none.
pub fn processes<'a>(procs: impl Iterator<Item = &'a Process>) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut n = 0;
    let mut single = None;
    for p in procs {
        n += 1;
        single = Some(p);
        if !names.contains(&p.name.as_str()) {
            names.push(&p.name);
        }
    }
    match (n, single) {
        (0, _) | (_, None) => String::new(),
        (1, Some(p)) => format!("{}/{}", p.pid, p.name),
        _ => format!("{} ({n} pids)", names.join(",")),
    }
}

/// The owner of an outbound list entry (the TIME_WAIT report): a program name,
/// `?(user)`, or `unknown`.
pub fn program(snapshot: &Snapshot, owner: OwnerKey) -> String {
    match owner {
        OwnerKey::Program(i) => snapshot
            .processes
            .get(i as usize)
            .map_or_else(|| "unknown".to_string(), |p| p.name.clone()),
        OwnerKey::Hidden(uid) => hidden(uid),
        OwnerKey::Unknown => "unknown".to_string(),
        OwnerKey::Any => String::new(),
    }
}

/// An endpoint as `ss` prints it: `127.0.0.1:80`, `[::1]:80`, port 0 as `*`.
pub fn endpoint(addr: SocketAddr) -> String {
    let mut out = String::with_capacity(24);
    match addr {
        SocketAddr::V4(v4) => {
            let _ = write!(out, "{}", v4.ip());
        }
        SocketAddr::V6(v6) => {
            let _ = write!(out, "[{}]", v6.ip());
        }
    }
    out.push(':');
    if addr.port() == 0 {
        out.push('*');
    } else {
        let _ = write!(out, "{}", addr.port());
    }
    out
}

/// The class of a local port: `wk` (well-known, 0-1023), `reg` (registered), `dyn`
/// (dynamic, 49152+), or `eph` when it lies in this kernel's ephemeral range.
pub fn local_port_class(snapshot: &Snapshot, port: u16) -> &'static str {
    if snapshot.is_ephemeral(port) {
        "eph"
    } else {
        port_class(port)
    }
}

/// The RFC 6335 class of a port: `wk`, `reg`, `dyn` (a remote port: our kernel's
/// ephemeral range says nothing about it).
pub fn port_class(port: u16) -> &'static str {
    match PortClass::of(port) {
        PortClass::WellKnown => "wk",
        PortClass::Registered => "reg",
        PortClass::Dynamic => "dyn",
    }
}

/// The class of a group's port.
pub fn group_port_class(snapshot: &Snapshot, g: &PortGroup) -> &'static str {
    if g.is_outbound() {
        port_class(g.port())
    } else {
        local_port_class(snapshot, g.port())
    }
}

/// A group's port: `8080` for inbound and raw rows, `→5432` for outbound.
pub fn group_port(g: &PortGroup) -> String {
    match g.direction() {
        Direction::Outbound => format!("→{}", g.port()),
        Direction::Inbound | Direction::Local => g.port().to_string(),
    }
}

/// An outbound group's remote addresses: `10.0.0.5, 10.0.0.6 +3`; `-` for other groups.
pub fn remote_addrs(g: &PortGroup) -> String {
    if !g.is_outbound() {
        return "-".to_string();
    }
    let top: Vec<String> = g
        .top_remote_addrs
        .iter()
        .map(|(ip, _)| ip.to_string())
        .collect();
    let more = (g.remote_addrs as usize).saturating_sub(top.len());
    if more > 0 {
        format!("{} +{more}", top.join(", "))
    } else {
        top.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::filter::Filter;
    use crate::analysis::group::{Grouping, group};
    use crate::model::{Process, Proto, TcpState};
    use std::sync::Arc;

    fn snap() -> Snapshot {
        let mut s = Snapshot::empty();
        s.processes = ["nginx", "nginx", "psql"]
            .iter()
            .zip(10..)
            .map(|(n, pid)| {
                Arc::new(Process {
                    pid,
                    start_time: 1,
                    name: (*n).into(),
                    cmdline: (*n).into(),
                    uid: 0,
                    user: "root".into(),
                })
            })
            .collect();
        s.owner_sets = vec![vec![0, 1].into(), vec![2].into()];
        let t = |state, l: &str, r: &str, o| Socket::for_test(Proto::Tcp, state, l, r, o);
        s.sockets = vec![
            t(
                TcpState::Listen,
                "0.0.0.0:80",
                "0.0.0.0:0",
                Owners::Known(0),
            ),
            t(
                TcpState::TimeWait,
                "127.0.0.1:80",
                "127.0.0.1:40000",
                Owners::None(Unattributed::NoInode),
            ),
            t(
                TcpState::TimeWait,
                "127.0.0.1:40001",
                "127.0.0.1:5432",
                Owners::Inferred(1),
            ),
            Socket {
                uid: 0,
                ..t(
                    TcpState::Established,
                    "127.0.0.1:40002",
                    "127.0.0.1:443",
                    Owners::None(Unattributed::PermissionDenied),
                )
            },
            t(
                TcpState::TimeWait,
                "127.0.0.1:40003",
                "[::1]:8443",
                Owners::None(Unattributed::NoInode),
            ),
        ];
        s
    }

    #[test]
    fn one_word_per_owner_kind() {
        let s = snap();
        let words: Vec<String> = s.sockets.iter().map(|k| socket_owner(&s, k)).collect();
        assert_eq!(words, ["10/nginx +1", "-", "~12/psql", "?(root)", "-"]);
        let groups = group(&s, &Filter::default(), Grouping::Services);
        let by_port = |port| {
            let g = groups.iter().find(|g| g.port() == port).unwrap();
            (
                group_owner(&s, g),
                OwnerStatus::of_group(g).name(),
                group_port(g),
            )
        };
        assert_eq!(by_port(80), ("nginx (2 pids)".into(), "known", "80".into()));
        assert_eq!(
            by_port(5432),
            ("~12/psql".into(), "inferred", "→5432".into())
        );
        assert_eq!(by_port(443), ("?(root)".into(), "hidden", "→443".into()));
        assert_eq!(by_port(8443), ("unknown".into(), "unknown", "→8443".into()));
    }

    #[test]
    fn processes_and_owner_edge_cases() {
        let s = snap();
        let p = |i: usize| &*s.processes[i];
        assert_eq!(processes(std::iter::empty()), "");
        assert_eq!(processes([p(0)].into_iter()), "10/nginx");
        assert_eq!(processes([p(0), p(1)].into_iter()), "nginx (2 pids)");
        assert_eq!(
            processes([p(0), p(1), p(2)].into_iter()),
            "nginx,psql (3 pids)"
        );
        // An owner set that does not exist: no owner, no panic.
        let mut k = s.sockets[0];
        k.owners = Owners::Known(9);
        assert_eq!(socket_owner(&s, &k), "-");
        k.owners = Owners::None(Unattributed::NotFound);
        assert_eq!(socket_owner(&s, &k), "?(root)");
    }

    #[test]
    fn endpoints_and_classes() {
        assert_eq!(endpoint("127.0.0.1:80".parse().unwrap()), "127.0.0.1:80");
        assert_eq!(endpoint("[::1]:0".parse().unwrap()), "[::1]:*");
        let s = snap();
        assert_eq!(local_port_class(&s, 80), "wk");
        assert_eq!(local_port_class(&s, 40000), "eph");
        assert_eq!(port_class(40000), "reg");
        assert_eq!(port_class(50000), "dyn");
    }
}
