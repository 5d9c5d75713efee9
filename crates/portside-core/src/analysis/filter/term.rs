//! One parsed filter term and its test against a socket; runs per socket per frame.
//!
//! Everything is precomputed at parse time (port ranges, state bit masks, CIDR masks,
//! lower-cased needles), so a test allocates nothing and touches only the socket and,
//! for owner terms, the snapshot's interned owner sets.

use std::fmt;
use std::net::SocketAddr;

use super::net::Net;
use super::state::{self, StateMask};
use super::value::{Range, User};
use crate::analysis::reach::Reach;
use crate::model::{Family, Process, Proto, Snapshot, Socket};

/// Which end of a connection a port or address term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Either,
    Local,
    Remote,
}

impl Side {
    /// Whether `test` holds for the selected end(s) of `socket`.
    fn any(self, socket: &Socket, test: impl Fn(&SocketAddr) -> bool) -> bool {
        match self {
            Side::Either => test(&socket.local) || test(&socket.remote),
            Side::Local => test(&socket.local),
            Side::Remote => test(&socket.remote),
        }
    }
}

/// What a term tests; a socket passes when any value of the list matches.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pred {
    Port(Side, Box<[Range<u16>]>),
    Addr(Side, Box<[Net]>),
    State(StateMask),
    Proto(Proto),
    Family(Family),
    /// TCP LISTEN or unconnected UDP ([`Socket::is_listening`]).
    Listening,
    /// ASCII-lower-cased substrings of an owner's name.
    Proc(Box<[Box<str>]>),
    /// ASCII-lower-cased substrings of an owner's command line.
    Cmd(Box<[Box<str>]>),
    Pid(Box<[Range<u32>]>),
    User(Box<[User]>),
    /// Reach of the local address (a listener's bind address), see [`Reach`].
    Reach(Box<[Reach]>),
}

/// A predicate, possibly negated with `!`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Term {
    pub negated: bool,
    pub pred: Pred,
}

impl Term {
    /// Whether the term consults the snapshot's owners.
    pub fn needs_owners(&self) -> bool {
        matches!(
            self.pred,
            Pred::Proc(_) | Pred::Cmd(_) | Pred::Pid(_) | Pred::User(_)
        )
    }

    pub fn matches(&self, socket: &Socket, snapshot: &Snapshot) -> bool {
        self.pred.matches(socket, snapshot) != self.negated
    }
}

impl Pred {
    fn matches(&self, socket: &Socket, snapshot: &Snapshot) -> bool {
        let owners = || snapshot.owners_of(socket);
        match self {
            Pred::Port(side, ranges) => {
                side.any(socket, |a| ranges.iter().any(|r| r.contains(a.port())))
            }
            Pred::Addr(side, nets) => side.any(socket, |a| nets.iter().any(|n| n.contains(a.ip()))),
            Pred::State(mask) => state::mask_has(*mask, socket.state),
            Pred::Proto(p) => socket.proto == *p,
            Pred::Family(f) => socket.family == *f,
            Pred::Listening => socket.is_listening(),
            Pred::Proc(needles) => owners().any(|p| needles.iter().any(|n| name_matches(p, n))),
            Pred::Cmd(needles) => owners().any(|p| needles.iter().any(|n| contains(&p.cmdline, n))),
            Pred::Pid(ranges) => owners().any(|p| ranges.iter().any(|r| r.contains(p.pid))),
            Pred::User(users) => users.iter().any(|u| user_matches(u, socket, snapshot)),
            Pred::Reach(reaches) => reaches.contains(&Reach::of(socket.local.ip())),
        }
    }
}

/// `proc:` tests the kernel's `comm` and the base name of `argv[0]`: `comm` is cut to
/// 15 bytes (`systemd-resolve`), so a full name like `systemd-resolved` still matches.
fn name_matches(p: &Process, needle: &str) -> bool {
    if contains(&p.name, needle) {
        return true;
    }
    let argv0 = p.cmdline.split(' ').next().unwrap_or("");
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    contains(base, needle)
}

/// Case-insensitive (ASCII) substring test against a needle already lower-cased; allocates
/// nothing, unlike `to_lowercase().contains()`, since it runs per socket per frame.
fn contains(hay: &str, needle: &str) -> bool {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || hay.windows(needle.len()).any(|w| {
            w.iter()
                .zip(needle)
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
        })
}

/// A uid item matches the socket's uid or an owner's uid; a name matches an owner's user
/// name, or (when the caller's lookup resolved it) that uid, so unattributed sockets of
/// the user match too.
fn user_matches(user: &User, socket: &Socket, snapshot: &Snapshot) -> bool {
    match user {
        User::Uids(r) => {
            r.contains(socket.uid) || snapshot.owners_of(socket).any(|p| r.contains(p.uid))
        }
        User::Name { name, uid } => {
            uid.is_some_and(|u| u == socket.uid)
                || snapshot
                    .owners_of(socket)
                    .any(|p| *p.user == **name || uid.is_some_and(|u| u == p.uid))
        }
    }
}

/// Write `items` joined by ','.
fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

/// The normalized form: canonical key, canonical values; parses back to the same term.
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("!")?;
        }
        let side = |s: &Side, either, local, remote| match s {
            Side::Either => either,
            Side::Local => local,
            Side::Remote => remote,
        };
        match &self.pred {
            Pred::Port(s, r) => {
                f.write_str(side(s, "port:", "lport:", "rport:"))?;
                list(f, r)
            }
            Pred::Addr(s, n) => {
                f.write_str(side(s, "addr:", "laddr:", "raddr:"))?;
                list(f, n)
            }
            Pred::State(mask) => {
                f.write_str("state:")?;
                state::write_states(f, *mask)
            }
            Pred::Proto(p) => f.write_str(p.name()),
            Pred::Family(Family::V4) => f.write_str("v4"),
            Pred::Family(Family::V6) => f.write_str("v6"),
            Pred::Listening => f.write_str("listening"),
            Pred::Proc(n) => {
                f.write_str("proc:")?;
                list(f, n)
            }
            Pred::Cmd(n) => {
                f.write_str("cmd:")?;
                list(f, n)
            }
            Pred::Pid(r) => {
                f.write_str("pid:")?;
                list(f, r)
            }
            Pred::User(u) => {
                f.write_str("user:")?;
                list(f, u)
            }
            Pred::Reach(r) => {
                f.write_str("reach:")?;
                let names: Vec<&str> = r.iter().map(|r| r.name()).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Filter, Lookups};
    use crate::model::{Family, Proto};
    use crate::model::{Owners, Process, Snapshot, Socket, TcpState, Unattributed};

    fn process(pid: u32, name: &str, cmdline: &str, uid: u32, user: &str) -> Arc<Process> {
        Arc::new(Process {
            pid,
            start_time: 1,
            name: name.into(),
            cmdline: cmdline.into(),
            uid,
            user: user.into(),
        })
    }

    #[rustfmt::skip]
    fn socket(proto: Proto, state: TcpState, local: &str, remote: &str, uid: u32, owners: Owners) -> Socket {
        let local: std::net::SocketAddr = local.parse().unwrap();
        let family = if local.is_ipv4() { Family::V4 } else { Family::V6 };
        let remote = remote.parse().unwrap();
        Socket { proto, family, state, local, remote, recv_q: 0, send_q: 0, uid, inode: 1, cookie: 0, owners }
    }

    /// Named sockets over three processes: nginx master (root) + worker (www-data), a
    /// resolver whose `comm` is cut at 15 bytes, and sockets nobody owns.
    #[rustfmt::skip]
    fn fixture() -> (Snapshot, Vec<(&'static str, Socket)>) {
        use Proto::{Tcp, Udp};
        use TcpState::{Close, Established, Listen, SynRecv, TimeWait};
        let mut snap = Snapshot::empty();
        snap.processes = vec![
            process(100, "nginx", "nginx: master process /usr/sbin/nginx -c /etc/nginx.conf", 0, "root"),
            process(101, "nginx", "nginx: worker process", 33, "www-data"),
            process(300, "systemd-resolve", "/usr/lib/systemd/systemd-resolved", 991, "systemd-resolve"),
        ];
        snap.owner_sets = vec![Box::new([0, 1]), Box::new([1]), Box::new([2])];
        let (denied, no_inode) = (Unattributed::PermissionDenied, Unattributed::NoInode);
        let sockets = vec![
            ("listen", socket(Tcp, Listen, "0.0.0.0:80", "0.0.0.0:0", 0, Owners::Known(0))),
            ("est", socket(Tcp, Established, "10.1.2.3:443", "192.168.1.5:51234", 33, Owners::Known(1))),
            ("tw", socket(Tcp, TimeWait, "[::ffff:127.0.0.1]:8080", "[::ffff:127.0.0.1]:40000", 33, Owners::Inferred(1))),
            ("dns", socket(Udp, Close, "127.0.0.53:53", "0.0.0.0:0", 991, Owners::Known(2))),
            ("v6", socket(Tcp, Established, "[2001:db8::1]:22", "[2001:db8::2]:5555", 1000, Owners::None(denied))),
            ("synr", socket(Tcp, SynRecv, "[::]:443", "[fe80::9]:33333", 33, Owners::None(no_inode))),
            // Points at owner set 7, which does not exist: no owner, no panic.
            ("udp6", socket(Udp, Established, "[::1]:5353", "[::1]:9", 0, Owners::Known(7))),
        ];
        (snap, sockets)
    }

    fn matching(filter: &Filter) -> String {
        let (snap, sockets) = fixture();
        let names: Vec<&str> = sockets
            .iter()
            .filter(|(_, s)| filter.matches(s, &snap))
            .map(|(n, _)| *n)
            .collect();
        names.join(" ")
    }

    #[test]
    #[rustfmt::skip]
    fn every_key_against_a_synthetic_snapshot() {
        let cases = [
            ("", "listen est tw dns v6 synr udp6"),
            ("80", "listen"),
            ("port:443", "est synr"),
            ("port:0", "listen dns"),
            ("lport:443", "est synr"),
            ("rport:443", ""),
            ("dport:51234", "est"),
            ("sport:40000-60000", ""),
            ("port:40000-60000", "est tw"),
            (":22,53", "dns v6"),
            ("!port:22,53", "listen est tw synr udp6"),
            ("state:est", "est v6 udp6"),
            ("tw,syn-recv", "tw synr"),
            ("listen", "listen"),
            ("listening", "listen dns"),
            ("unconn", "dns"),
            ("state:bucket", "tw synr"),
            ("tcp", "listen est tw v6 synr"),
            ("udp", "dns udp6"),
            ("v4", "listen est dns"),
            ("ipv6", "tw v6 synr udp6"),
            ("!v4 !udp", "tw v6 synr"),
            ("addr:127.0.0.0/8", "tw dns"),
            ("addr:::ffff:127.0.0.1", "tw"),
            ("laddr:10.0.0.0/8", "est"),
            ("raddr:10.0.0.0/8", ""),
            ("raddr:192.168.0.0/16,fe80::/10", "est synr"),
            ("2001:db8::/32", "v6"),
            ("dst:2001:db8::2", "v6"),
            ("src:2001:db8::2", ""),
            ("addr:::1", "udp6"),
            ("addr:0.0.0.0/0", "listen est tw dns"),
            ("addr:::/0", "v6 synr udp6"),
            ("proc:NGINX", "listen est tw"),
            ("proc:systemd-resolved", "dns"),
            ("proc:resolve", "dns"),
            ("!proc:nginx", "dns v6 synr udp6"),
            ("cmd:master", "listen"),
            ("cmd:/ETC/nginx", "listen"),
            ("cmd:worker,resolved", "listen est tw dns"),
            ("pid:101", "listen est tw"),
            ("pid:100", "listen"),
            ("pid:200-400", "dns"),
            ("user:www-data", "listen est tw"),
            ("user:root", "listen"),
            ("user:33", "listen est tw synr"),
            ("uid:1000", "v6"),
            ("user:900-999", "dns"),
            ("tcp port:443 !state:syn-recv", "est"),
            ("proc:nginx v4 state:listen", "listen"),
            // Reach of the local address: 0.0.0.0 and [::] are all interfaces.
            ("reach:all", "listen synr"),
            ("reach:loopback", "tw dns udp6"),
            ("reach:private", "est"),
            ("reach:PUBLIC,all-interfaces", "listen v6 synr"),
            ("listening !reach:loopback", "listen"),
        ];
        for (expr, want) in cases {
            let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(matching(&f), want, "{expr}");
        }
    }

    #[test]
    fn looked_up_user_names_also_match_unattributed_sockets() {
        let users = |n: &str| match n {
            "www-data" => Some(33),
            "alice" => Some(1000),
            _ => None,
        };
        let lookups = Lookups {
            user: Some(&users),
            service: None,
        };
        let cases = [
            // The SYN_RECV request socket has no owner but uid 33.
            ("user:www-data", "listen est tw synr"),
            // Permission denied: no owner, but the socket's uid is alice's.
            ("user:alice", "v6"),
            ("!user:alice,www-data", "dns udp6"),
        ];
        for (expr, want) in cases {
            let f = Filter::parse_with(expr, &lookups).unwrap();
            assert_eq!(matching(&f), want, "{expr}");
        }
        // Without a lookup, a name sees only owners.
        assert_eq!(matching(&Filter::parse("user:alice").unwrap()), "");
    }

    #[test]
    fn owner_set_out_of_range_matches_no_owner() {
        let f = Filter::parse("pid:0-4294967295").unwrap();
        assert_eq!(matching(&f), "listen est tw dns");
    }

    /// Per-socket cost at 100k sockets. Run: `cargo test --release -- --ignored bench_matches`.
    #[test]
    #[ignore = "timing; run in release"]
    fn bench_matches_100k_sockets() {
        let (mut snap, sockets) = fixture();
        snap.sockets = (0..100_000u32)
            .map(|i| {
                let mut s = sockets[i as usize % sockets.len()].1;
                s.local.set_port((i % 60_000) as u16);
                s
            })
            .collect();
        let f = Filter::parse("tcp port:1000-50000 !state:tw addr:10.0.0.0/8,::/0 proc:x,nginx")
            .unwrap();
        let start = std::time::Instant::now();
        let mut hits = 0;
        for _ in 0..10 {
            hits += snap.sockets.iter().filter(|s| f.matches(s, &snap)).count();
        }
        let per_socket = start.elapsed() / 1_000_000;
        println!("{hits} hits, {per_socket:?} per socket");
        assert!(hits > 0 && per_socket < std::time::Duration::from_micros(1));
    }
}
