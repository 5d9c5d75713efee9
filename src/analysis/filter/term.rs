//! One parsed filter term and its test against a socket; runs per socket per frame.
//!
//! Everything is precomputed at parse time (port ranges, state bit masks, CIDR masks,
//! lower-cased needles), so a test allocates nothing and touches only the socket and,
//! for owner terms, the snapshot's interned owner sets.

use std::fmt;
use std::net::SocketAddr;

use super::value::{self, Net, Range, StateMask, User};
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

/// What a term tests; lists inside one predicate are ORed.
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
            Pred::State(mask) => value::mask_has(*mask, socket.state),
            Pred::Proto(p) => socket.proto == *p,
            Pred::Family(f) => socket.family == *f,
            Pred::Listening => socket.is_listening(),
            Pred::Proc(needles) => owners().any(|p| needles.iter().any(|n| name_matches(p, n))),
            Pred::Cmd(needles) => owners().any(|p| needles.iter().any(|n| contains(&p.cmdline, n))),
            Pred::Pid(ranges) => owners().any(|p| ranges.iter().any(|r| r.contains(p.pid))),
            Pred::User(users) => users.iter().any(|u| user_matches(u, socket, snapshot)),
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
        || hay
            .windows(needle.len())
            .any(|w| w.iter().zip(needle).all(|(h, n)| h.to_ascii_lowercase() == *n))
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
                value::write_states(f, *mask)
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
        }
    }
}
