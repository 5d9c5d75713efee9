//! The filter language shared by the command line and the TUI's `/` prompt.
//!
//! Terms are separated by whitespace and all must hold; `!` negates a term; `a,b` is OR;
//! `a-b` is an inclusive range. Keys (case-insensitive, aliases in brackets):
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
//!   names and, when a user lookup is injected, the socket's uid (so `TIME_WAIT` and other
//!   unattributed sockets of that user match too).
//! - `addr:` either end, `laddr:` (`src:`), `raddr:` (`dst:`): IP or CIDR, v4 or v6;
//!   IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are compared as IPv4, so
//!   `127.0.0.0/8` matches them. A bare IP or CIDR is `addr:`.
//! - Keywords: `tcp`, `udp`, `v4` (`ipv4`), `v6` (`ipv6`) by socket family as the kernel
//!   reports it, `listening`.
//!
//! Values cannot contain whitespace or ',' (there is no quoting).

mod net;
mod parse;
mod select;
mod state;
mod term;
mod value;

use std::fmt;
use std::str::FromStr;

use crate::model::{Snapshot, Socket};
use term::Term;

/// A parsed filter expression: a socket must pass every term. The empty filter matches everything.
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
    pub user: Option<UserLookup<'a>>,
    /// Service name to port (e.g. from `/etc/services`). Without it, `port:https` is an error.
    pub service: Option<ServiceLookup<'a>>,
}

/// Resolves a user name to its uid.
pub type UserLookup<'a> = &'a dyn Fn(&str) -> Option<u32>;
/// Resolves a service name to its port.
pub type ServiceLookup<'a> = &'a dyn Fn(&str) -> Option<u16>;

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

    /// Parse with this system's lookups: user names from the user database (so `user:NAME`
    /// also matches sockets no process is known for) and service names (`port:https`).
    /// What the command line and the live view's prompt use.
    pub fn parse_system(expr: &str) -> Result<Filter, FilterError> {
        let user = |name: &str| crate::source::process::uid_of(name);
        let service = |name: &str| crate::source::services::service_port(name);
        Filter::parse_with(
            expr,
            &Lookups {
                user: Some(&user),
                service: Some(&service),
            },
        )
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
        socket_terms
            .chain(owner_terms)
            .all(|t| t.matches(socket, snapshot))
    }
}

/// Split on whitespace, with each term's 1-based character (not byte) position.
fn split_terms(expr: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut chars = expr.char_indices().enumerate().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|(_, (_, c))| c.is_whitespace()).is_some() {}
        let (pos, (start, _)) = chars.next()?;
        let mut end = expr.len();
        for (_, (byte, c)) in chars.by_ref() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(expr: &str) -> String {
        Filter::parse(expr).map_or_else(|e| panic!("{expr}: {e}"), |f| f.to_string())
    }

    #[test]
    fn normalized_form_for_every_shape() {
        let cases = [
            ("", ""),
            ("   \t ", ""),
            ("443", "port:443"),
            (":443", "port:443"),
            (":8000-8100", "port:8000-8100"),
            ("80,443", "port:80,443"),
            ("port:443", "port:443"),
            ("PORT:0443", "port:443"),
            ("sport:22 dport:1024-2048", "lport:22 rport:1024-2048"),
            ("port:22-22", "port:22"),
            ("tw", "state:time-wait"),
            ("TIME_WAIT,est", "state:established,time-wait"),
            ("state:syn-recv,LISTEN", "state:syn-recv,listen"),
            ("state:new-syn-recv", "state:new-syn-recv"),
            (
                "state:connected",
                "state:established,syn-sent,fin-wait-1,fin-wait-2,close-wait,last-ack,closing,bound-inactive",
            ),
            ("state:unconn", "state:close"),
            (
                "TCP Udp v4 IPV6 ipv4 v6 listening",
                "tcp udp v4 v6 v4 v6 listening",
            ),
            ("!tcp  !port:22", "!tcp !port:22"),
            ("proc:NGINX,Sshd", "proc:nginx,sshd"),
            ("cmd:--Config=/etc/x:y", "cmd:--config=/etc/x:y"),
            ("pid:1,100-200", "pid:1,100-200"),
            ("user:www-data,0,1000-1999", "user:www-data,0,1000-1999"),
            ("10.0.0.0/8", "addr:10.0.0.0/8"),
            ("10.1.2.3/8,::1", "addr:10.0.0.0/8,::1"),
            ("::1", "addr:::1"),
            ("fe80::/10", "addr:fe80::/10"),
            ("[::1]", "addr:::1"),
            (
                "src:::ffff:127.0.0.1 dst:192.168.0.0/16",
                "laddr:127.0.0.1 raddr:192.168.0.0/16",
            ),
            ("!addr:2001:db8::/32", "!addr:2001:db8::/32"),
        ];
        for (expr, want) in cases {
            assert_eq!(norm(expr), want, "{expr}");
            // The normalized form is stable and parses back to the same filter.
            assert_eq!(Filter::parse(want), Filter::parse(expr), "{expr}");
            assert_eq!(norm(want), want, "{expr}");
        }
        assert_eq!("port:1".parse::<Filter>(), Filter::parse("1"));
    }

    /// Expression, the term reported, its position, a part of the message.
    #[rustfmt::skip]
    const ERRORS: &[(&str, &str, usize, &str)] = &[
        ("prot:443", "prot:443", 1, "unknown key 'prot' (did you mean 'port'? known: port, lport, \
            rport, state, proc, cmd, pid, user, addr, laddr, raddr)"),
        ("tcp xyz:1", "xyz:1", 5, "unknown key 'xyz' (known: port,"),
        ("tcp state:tw,bogus", "state:tw,bogus", 5, "unknown state 'bogus' (known: established (est)"),
        ("state:lisen", "state:lisen", 1, "unknown state 'lisen' (did you mean 'listen'?"),
        ("tw,nope", "tw,nope", 1, "unknown state 'nope'"),
        ("port:70000", "port:70000", 1, "port 70000 is out of range 0-65535"),
        ("port:80,70000", "port:80,70000", 1, "port 70000 is out of range 0-65535"),
        ("port:8o", "port:8o", 1, "'8o' is not a port number"),
        ("port:https", "port:https", 1, "'https' is not a port number"),
        ("  port:8100-8000", "port:8100-8000", 3, "range 8100-8000 is inverted (8100 > 8000); write 8000-8100"),
        ("port:", "port:", 1, "missing value after 'port:' (e.g. port:443)"),
        ("udp State:", "State:", 5, "missing value after 'State:' (e.g. State:tw,est)"),
        (":", ":", 1, "missing port after ':' (e.g. :443)"),
        ("port:80,,443", "port:80,,443", 1, "empty port in list '80,,443'"),
        ("port:80,", "port:80,", 1, "empty port in list '80,'"),
        ("tcp !", "!", 5, "'!' negates the term right after it, with no space: e.g. !port:22"),
        ("!! tcp", "!!", 1, "negate a term once"),
        ("!!tcp", "!!tcp", 1, "negate a term once"),
        ("addr:10.0.0.0/33", "addr:10.0.0.0/33", 1, "prefix /33 is out of range for IPv4 (0-32)"),
        ("10.0.0.0/33", "10.0.0.0/33", 1, "prefix /33 is out of range for IPv4 (0-32)"),
        ("laddr:::/129", "laddr:::/129", 1, "prefix /129 is out of range for IPv6 (0-128)"),
        ("raddr:10.0.0", "raddr:10.0.0", 1, "'10.0.0' is not an IP address"),
        ("fe80::zz", "fe80::zz", 1, "'fe80::zz' is not an IP address"),
        ("pid:x", "pid:x", 1, "'x' is not a pid number"),
        ("pid:5000000000", "pid:5000000000", 1, "pid 5000000000 is out of range 0-4294967295"),
        ("nginx", "nginx", 1, "unknown term 'nginx': not a key:value, port, state or keyword \
            (tcp, udp, v4, v6, listening); for a process name, write proc:nginx"),
        ("tpc", "tpc", 1, "did you mean 'tcp'?"),
        ("tcp Port", "Port", 5, "'port' needs a value: write port:VALUE"),
        ("80 ,", ",", 4, "unknown term ',': not a key:value, port, state or keyword \
            (tcp, udp, v4, v6, listening)"),
        ("v4 tcp,udp", "tcp,udp", 4, "keywords take no list: write 'tcp' alone"),
    ];

    #[test]
    fn errors_name_the_term_and_its_position() {
        for &(expr, term, position, message) in ERRORS {
            let err = Filter::parse(expr).expect_err(expr);
            assert_eq!(
                (err.term.as_str(), err.position),
                (term, position),
                "{expr}"
            );
            assert!(err.message.contains(message), "{expr}: {}", err.message);
        }
        // No process-name hint for what cannot be a name.
        assert!(
            Filter::parse("a=b")
                .unwrap_err()
                .message
                .ends_with("listening)")
        );
        let err = Filter::parse("tcp port:99999").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad filter term 'port:99999' at position 5: port 99999 is out of range 0-65535"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        // "ünïcode" is 7 characters but 9 bytes; the tab and the ideographic space
        // (U+3000, 3 bytes) are whitespace.
        let err = Filter::parse("ünïcode port:80").unwrap_err();
        assert_eq!((err.term.as_str(), err.position), ("ünïcode", 1));
        let err = Filter::parse("proc:ünï\tport:80\u{3000}prot:1").unwrap_err();
        assert_eq!((err.term.as_str(), err.position), ("prot:1", 18));
        let err = Filter::parse("proc:日本 state:日本").unwrap_err();
        assert_eq!((err.term.as_str(), err.position), ("state:日本", 9));
        assert_eq!(err.message.split(" (").next(), Some("unknown state '日本'"));
        assert_eq!(norm("proc:日本"), "proc:日本");
    }

    #[test]
    fn user_and_service_lookups_are_injected() {
        let users = |n: &str| (n == "www-data").then_some(33);
        let services = |n: &str| (n == "https").then_some(443);
        let lookups = Lookups {
            user: Some(&users),
            service: Some(&services),
        };
        let f = Filter::parse_with("user:www-data port:https", &lookups).unwrap();
        assert_eq!(f.to_string(), "user:www-data port:443");
        let err = Filter::parse_with("tcp user:nobody", &lookups).unwrap_err();
        assert_eq!((err.term.as_str(), err.position), ("user:nobody", 5));
        assert_eq!(err.message, "unknown user 'nobody'");
        let err = Filter::parse_with("port:gopher", &lookups).unwrap_err();
        assert_eq!(err.message, "unknown service 'gopher'");
        // Without lookups, names are not resolved: users stay names, services are errors.
        assert!(Filter::parse("user:nobody").is_ok());
        assert!(Filter::parse("port:https").is_err());
    }

    #[test]
    fn needs_owners_and_is_empty() {
        let cases = [
            ("", false),
            ("port:80 tw tcp v6 listening addr:::1", false),
            ("proc:x", true),
            ("!cmd:x", true),
            ("tcp pid:1", true),
            ("user:0", true),
        ];
        for (expr, want) in cases {
            let f = Filter::parse(expr).unwrap();
            assert_eq!(f.needs_owners(), want, "{expr}");
            assert_eq!(f.is_empty(), expr.is_empty(), "{expr}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A fixed xorshift stream over an alphabet heavy in the language's punctuation,
        // with multi-byte and whitespace characters; bounded to 8k expressions.
        let alphabet: Vec<char> =
            "!:,-/.[]0123456789abcdeflnoprstuvwx PORTSTAE_\t\u{3000}é日\u{1F600}%\0"
                .chars()
                .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..8_000 {
            let len = (next() % 24) as usize;
            let expr: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            match Filter::parse(&expr) {
                Ok(f) => {
                    ok += 1;
                    assert_eq!(Filter::parse(&f.to_string()), Ok(f), "{expr:?}");
                }
                Err(e) => {
                    bad += 1;
                    // The reported term is really at the reported position.
                    let at: String = expr.chars().skip(e.position - 1).collect();
                    assert!(at.starts_with(&e.term), "{expr:?}: {e}");
                    assert!(!e.term.is_empty() && !e.message.is_empty(), "{expr:?}");
                }
            }
        }
        // The stream exercises both outcomes.
        assert!(ok > 100 && bad > 100, "ok {ok} bad {bad}");
    }
}
