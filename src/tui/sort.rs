//! Sortable columns of the three tables and the sorts behind them.

use std::cmp::Reverse;

use crate::analysis::connections::Connections;
use crate::analysis::group::{self, PortGroup};
use crate::analysis::sides::Listening;
use crate::model::{Owners, Snapshot, Socket, TcpState};

/// A column of the grouped view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    Proto,
    Port,
    Service,
    Class,
    Process,
    State(TcpState),
    Total,
}

/// A column of the connections and drill-down views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketColumn {
    Proto,
    State,
    RecvQ,
    SendQ,
    Local,
    Peer,
    Service,
    Process,
    Seen,
}

/// The connections view's columns, in screen order (as `--once` prints them).
pub const CONNECTION_COLUMNS: &[SocketColumn] = &[
    SocketColumn::Proto,
    SocketColumn::State,
    SocketColumn::RecvQ,
    SocketColumn::SendQ,
    SocketColumn::Local,
    SocketColumn::Peer,
    SocketColumn::Service,
    SocketColumn::Process,
];

/// The drill-down view's columns, in screen order.
pub const DRILL_COLUMNS: &[SocketColumn] = &[
    SocketColumn::Peer,
    SocketColumn::State,
    SocketColumn::RecvQ,
    SocketColumn::SendQ,
    SocketColumn::Process,
    SocketColumn::Seen,
];

/// The grouped view's sortable columns for the given state columns, in screen order.
pub fn group_columns(states: &[TcpState]) -> Vec<GroupColumn> {
    let mut cols = vec![
        GroupColumn::Proto,
        GroupColumn::Port,
        GroupColumn::Service,
        GroupColumn::Class,
        GroupColumn::Process,
    ];
    cols.extend(states.iter().map(|&s| GroupColumn::State(s)));
    cols.push(GroupColumn::Total);
    cols
}

/// Whether a column sorts largest first before `r` (counts, queues, ages).
pub trait Column: Copy + Eq {
    fn largest_first(self) -> bool;
}

impl Column for GroupColumn {
    fn largest_first(self) -> bool {
        matches!(self, GroupColumn::State(_) | GroupColumn::Total)
    }
}

impl Column for SocketColumn {
    fn largest_first(self) -> bool {
        matches!(
            self,
            SocketColumn::RecvQ | SocketColumn::SendQ | SocketColumn::Seen
        )
    }
}

/// The sort of one table: a column (`None`: the view's default order) and `r`'s flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort<C> {
    pub column: Option<C>,
    pub reverse: bool,
}

impl<C> Default for Sort<C> {
    fn default() -> Self {
        Sort {
            column: None,
            reverse: false,
        }
    }
}

impl<C: Column> Sort<C> {
    /// Moves to the next column of `columns`; after the last, back to the default order.
    pub fn cycle(&mut self, columns: &[C]) {
        let next = match self.column {
            None => columns.first(),
            Some(c) => columns
                .iter()
                .position(|&x| x == c)
                .and_then(|i| columns.get(i + 1)),
        };
        self.column = next.copied();
        self.reverse = false;
    }

    /// Whether rows end up in descending order of the column's key.
    pub fn descending(self) -> bool {
        self.column.is_some_and(Column::largest_first) != self.reverse
    }
}

fn first_owner_name<'a>(snapshot: &'a Snapshot, socket: &Socket) -> Option<&'a str> {
    match socket.owners {
        Owners::Known(_) | Owners::Inferred(_) => {
            snapshot.owners_of(socket).next().map(|p| p.name.as_str())
        }
        Owners::None(_) => None,
    }
}

/// Sorts groups; ties keep the default order (listening first, protocol, port).
pub fn sort_groups(groups: &mut [PortGroup], sort: Sort<GroupColumn>, snapshot: &Snapshot) {
    group::sort_default(groups);
    let Some(column) = sort.column else {
        if sort.reverse {
            groups.reverse();
        }
        return;
    };
    let owner = |g: &PortGroup| {
        g.owners
            .first()
            .and_then(|&i| snapshot.processes.get(i as usize))
            .map(|p| p.name.as_str())
    };
    let desc = sort.descending();
    // Stable sorts over cheap keys (no allocation); an unknown name sorts last.
    match column {
        GroupColumn::Proto => stable_by(groups, desc, |g| g.proto),
        GroupColumn::Port => stable_by(groups, desc, |g| g.port),
        GroupColumn::Service => stable_by(groups, desc, |g| (g.service.is_none(), g.service)),
        GroupColumn::Class => stable_by(groups, desc, |g| (class_rank(g.port, snapshot), g.port)),
        GroupColumn::Process => stable_by(groups, desc, |g| (owner(g).is_none(), owner(g))),
        GroupColumn::State(s) => stable_by(groups, desc, |g| g.count(s)),
        GroupColumn::Total => stable_by(groups, desc, |g| g.total),
    }
}

fn stable_by<T, K: Ord>(items: &mut [T], desc: bool, key: impl Fn(&T) -> K) {
    if desc {
        items.sort_by_key(|x| Reverse(key(x)));
    } else {
        items.sort_by_key(key);
    }
}

/// Class order: well-known, registered, ephemeral, dynamic (as `format::port_class`).
fn class_rank(port: u16, snapshot: &Snapshot) -> u8 {
    match crate::tui::format::port_class(port, snapshot) {
        "wk" => 0,
        "reg" => 1,
        "eph" => 2,
        _ => 3,
    }
}

/// An address as integers in `IpAddr`'s order (IPv4 before IPv6), cheap to compare.
fn ip_order(ip: std::net::IpAddr) -> (bool, u128) {
    match ip {
        std::net::IpAddr::V4(v4) => (false, u128::from(v4.to_bits())),
        std::net::IpAddr::V6(v6) => (true, v6.to_bits()),
    }
}

/// Default order of the connections view: protocol, local port, listeners first, local
/// address, peer. Plain integers: comparing `IpAddr`s field by field made this sort of
/// 100k rows twice as slow.
pub fn default_socket_key(s: &Socket) -> impl Ord + use<> {
    (
        s.proto,
        s.local.port(),
        !s.is_listening(),
        ip_order(s.local.ip()),
        ip_order(s.remote.ip()),
        s.remote.port(),
    )
}

/// Default order of a drill-down: listeners first, then by state and peer.
pub fn drill_socket_key(s: &Socket) -> impl Ord + use<> {
    (
        !s.is_listening(),
        s.state,
        ip_order(s.remote.ip()),
        s.remote.port(),
    )
}

/// Sorts socket indexes (into `snapshot.sockets`, which `rows` must come from). Ties go
/// by index, so the order is total and unstable sorts are deterministic. Columns whose key
/// needs a lookup compute it once per row (`sort_by_cached_key`): at 100k rows that is
/// 100k lookups instead of n log n.
pub fn sort_sockets<K: Ord>(
    rows: &mut [u32],
    sort: Sort<SocketColumn>,
    default: fn(&Socket) -> K,
    snapshot: &Snapshot,
    ages: &Connections,
    listening: &Listening,
) {
    let sock = |i: u32| &snapshot.sockets[i as usize];
    let desc = sort.descending();
    match sort.column {
        None => cached_by(rows, desc, |i| default(sock(i))),
        Some(SocketColumn::Proto) => cheap_by(rows, desc, |i| sock(i).proto),
        Some(SocketColumn::State) => cheap_by(rows, desc, |i| sock(i).state),
        Some(SocketColumn::RecvQ) => cheap_by(rows, desc, |i| sock(i).recv_q),
        Some(SocketColumn::SendQ) => cheap_by(rows, desc, |i| sock(i).send_q),
        Some(SocketColumn::Local) => cheap_by(rows, desc, |i| {
            (ip_order(sock(i).local.ip()), sock(i).local.port())
        }),
        Some(SocketColumn::Peer) => cheap_by(rows, desc, |i| {
            (ip_order(sock(i).remote.ip()), sock(i).remote.port())
        }),
        Some(SocketColumn::Service) => cached_by(rows, desc, |i| {
            let s = listening.service(snapshot, sock(i)).map(|s| s.name);
            (s.is_none(), s)
        }),
        Some(SocketColumn::Process) => cached_by(rows, desc, |i| {
            let s = first_owner_name(snapshot, sock(i));
            (s.is_none(), s)
        }),
        // The age: a later first-seen instant is younger; an unknown age counts as newest.
        Some(SocketColumn::Seen) => {
            cached_by(rows, desc, |i| {
                ages.seen(i as usize).map(|s| Reverse(s.since))
            });
        }
    }
}

fn cheap_by<K: Ord>(rows: &mut [u32], desc: bool, key: impl Fn(u32) -> K) {
    if desc {
        rows.sort_unstable_by_key(|&i| (Reverse(key(i)), i));
    } else {
        rows.sort_unstable_by_key(|&i| (key(i), i));
    }
}

fn cached_by<K: Ord>(rows: &mut [u32], desc: bool, key: impl Fn(u32) -> K) {
    if desc {
        rows.sort_by_cached_key(|&i| (Reverse(key(i)), i));
    } else {
        rows.sort_by_cached_key(|&i| (key(i), i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::filter::Filter;
    use crate::model::Proto;
    use crate::tui::synthetic;

    #[test]
    fn cycle_walks_the_columns_then_back_to_default() {
        let cols = [SocketColumn::Peer, SocketColumn::Seen];
        let mut sort = Sort {
            column: None,
            reverse: true,
        };
        sort.cycle(&cols);
        assert_eq!(
            sort,
            Sort {
                column: Some(SocketColumn::Peer),
                reverse: false
            }
        );
        assert!(!sort.descending());
        sort.cycle(&cols);
        assert!(sort.descending(), "ages sort oldest first");
        sort.cycle(&cols);
        assert_eq!(sort, Sort::default());
        // A column that went away (a state column) falls back to the default.
        let mut gone = Sort {
            column: Some(SocketColumn::Proto),
            reverse: false,
        };
        gone.cycle(&cols);
        assert_eq!(gone.column, None);
    }

    #[test]
    fn group_ties_keep_the_default_order() {
        let snap = synthetic::snapshot(40, 1);
        let mut groups = group::group(&snap, &Filter::default());
        let sort = Sort {
            column: Some(GroupColumn::State(TcpState::Listen)),
            reverse: false,
        };
        sort_groups(&mut groups, sort, &snap);
        let listen: Vec<u32> = groups.iter().map(|g| g.count(TcpState::Listen)).collect();
        assert!(listen.windows(2).all(|w| w[0] >= w[1]), "{listen:?}");
        // Among the groups with one listener, ports stay ascending (default order).
        let ones: Vec<u16> = groups
            .iter()
            .filter(|g| g.count(TcpState::Listen) == 1)
            .map(|g| g.port)
            .collect();
        assert!(ones.windows(2).all(|w| w[0] < w[1]), "{ones:?}");
        let by_service = Sort {
            column: Some(GroupColumn::Service),
            reverse: false,
        };
        sort_groups(&mut groups, by_service, &snap);
        let named: Vec<_> = groups.iter().map(|g| g.service).collect();
        let first_none = named.iter().position(Option::is_none).unwrap();
        assert!(
            named[first_none..].iter().all(Option::is_none),
            "unnamed last"
        );
        assert!(named[..first_none].windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn socket_sorts_are_total_orders() {
        let snap = synthetic::snapshot(200, 3);
        let ages = Connections::default();
        let listening = Listening::of(&snap);
        let all: Vec<u32> = (0..snap.sockets.len() as u32).collect();
        let sorted = |column, reverse, from_end: bool| {
            let mut rows = all.clone();
            if from_end {
                rows.reverse();
            }
            let sort = Sort { column, reverse };
            sort_sockets(
                &mut rows,
                sort,
                default_socket_key,
                &snap,
                &ages,
                &listening,
            );
            rows
        };
        let columns = CONNECTION_COLUMNS.iter().copied().map(Some);
        for column in columns.chain([None, Some(SocketColumn::Seen)]) {
            for reverse in [false, true] {
                // Ties break on the index: the result does not depend on the input order.
                let rows = sorted(column, reverse, false);
                assert_eq!(rows, sorted(column, reverse, true), "{column:?} {reverse}");
                let mut check = rows.clone();
                check.sort_unstable();
                assert_eq!(check, all);
            }
        }
        let up = sorted(Some(SocketColumn::Proto), false, false);
        let down = sorted(Some(SocketColumn::Proto), true, false);
        assert_eq!(snap.sockets[up[up.len() - 1] as usize].proto, Proto::Udp);
        assert_eq!(snap.sockets[down[0] as usize].proto, Proto::Udp);
        let by_peer = sorted(Some(SocketColumn::Peer), false, false);
        let peers: Vec<_> = by_peer
            .iter()
            .map(|&i| snap.sockets[i as usize].remote.ip())
            .collect();
        assert!(peers.windows(2).all(|w| w[0] <= w[1]));
        let default = sorted(None, false, false);
        let first = &snap.sockets[default[0] as usize];
        assert_eq!((first.local.port(), first.is_listening()), (22, true));
    }
}
