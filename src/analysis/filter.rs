//! The filter language shared by the command line and the TUI's `/` prompt.
//!
//! Terms are separated by whitespace and ANDed; `!` negates a term; `a,b` is OR; `a-b` is
//! an inclusive range. Keys (case-insensitive, aliases in brackets):
//! - `port:` either end, `lport:` (`sport:`) local, `rport:` (`dport:`) remote: numbers,
//!   ranges, or service names when a service lookup is injected. `443`, `8000-8100` and
//!   `:443` alone are `port:`.
//! - `state:` kernel names and aliases, any case, `-`/`_` optional: `time-wait`, `tw`,
//!   `est`, `syn-recv`, `cw`, `unconn`, ... and `ss`'s groups (`connected`, `bucket`, ...).
//!   A bare state name is `state:`. `listen` is TCP LISTEN only; `listening` also takes
//!   unconnected UDP sockets.
//! - `proc:` (`process:`, `comm:`) substring of an owner's name (`comm`, or the base name
//!   of `argv[0]` since `comm` is cut at 15 bytes); `cmd:` (`cmdline:`) substring of an
//!   owner's full command line. Both ignore ASCII case.
//! - `pid:` an owner's pid; `user:` (`uid:`) a uid or uid range matched against the
//!   socket's uid and the owners' uids, or a user name matched against the owners' user
//!   names and, when a user lookup is injected, the socket's uid (so TIME_WAIT and other
//!   unattributed sockets of that user match too).
//! - `addr:` either end, `laddr:` (`src:`), `raddr:` (`dst:`): IP or CIDR, v4 or v6;
//!   IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are compared as IPv4, so
//!   `127.0.0.0/8` matches them. A bare IP or CIDR is `addr:`.
//! - Keywords: `tcp`, `udp`, `v4` (`ipv4`), `v6` (`ipv6`) by socket family as the kernel
//!   reports it, `listening`.
//!
//! Values cannot contain whitespace or ',' (there is no quoting).

mod parse;
mod term;
mod value;

use std::fmt;
use std::str::FromStr;

use crate::model::{Snapshot, Socket};
use term::Term;

/// A parsed filter expression: terms ANDed together. The empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// In the order typed, for [`Display`](fmt::Display).
    terms: Vec<Term>,
}

/// A filter expression that does not parse: names the bad term and where it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term '{term}' at position {position}: {message}")]
pub struct FilterError {
    /// The offending term, as the user typed it.
    pub term: String,
    /// 1-based character position of the term in the expression.
    pub position: usize,
    pub message: String,
}

/// Name resolvers the caller injects (the filter itself reads no system database).
#[derive(Clone, Copy, Default)]
pub struct Lookups<'a> {
    /// User name to uid (e.g. from `/etc/passwd`). Without it, `user:NAME` matches owners'
    /// user names only; with it, an unknown name is an error.
    pub user: Option<&'a dyn Fn(&str) -> Option<u32>>,
    /// Service name to port (e.g. from `/etc/services`). Without it, `port:https` is an error.
    pub service: Option<&'a dyn Fn(&str) -> Option<u16>>,
}

impl Filter {
    /// Parse an expression (the positional arguments joined by spaces), resolving no names.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        Filter::parse_with(expr, &Lookups::default())
    }

    /// Parse an expression, resolving user and service names through `lookups`.
    pub fn parse_with(expr: &str, lookups: &Lookups<'_>) -> Result<Filter, FilterError> {
        let terms = split_terms(expr)
            .map(|(position, text)| {
                parse::term(text, lookups).map_err(|message| FilterError {
                    term: text.to_string(),
                    position,
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the filter looks at owners (`proc:`, `cmd:`, `pid:`, `user:`).
    pub fn needs_owners(&self) -> bool {
        self.terms.iter().any(Term::needs_owners)
    }

    /// Whether `socket` passes every term. Socket-only terms run before owner terms, which
    /// walk the snapshot's owner sets; nothing allocates (see `term.rs`).
    pub fn matches(&self, socket: &Socket, snapshot: &Snapshot) -> bool {
        let (owner_terms, socket_terms) = (
            self.terms.iter().filter(|t| t.needs_owners()),
            self.terms.iter().filter(|t| !t.needs_owners()),
        );
        socket_terms.chain(owner_terms).all(|t| t.matches(socket, snapshot))
    }
}

/// Split on whitespace, with each term's 1-based character (not byte) position.
fn split_terms(expr: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut chars = expr.char_indices().enumerate().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|(_, (_, c))| c.is_whitespace()).is_some() {}
        let (pos, (start, _)) = chars.next()?;
        let mut end = expr.len();
        while let Some((_, (byte, c))) = chars.next() {
            if c.is_whitespace() {
                end = byte;
                break;
            }
        }
        Some((pos + 1, &expr[start..end]))
    })
}

/// The normalized form (canonical keys and values, one space between terms), e.g. for the
/// TUI footer; it parses back to an equal filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            term.fmt(f)?;
        }
        Ok(())
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}
