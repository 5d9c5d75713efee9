//! Value parsers of the filter language: numbers, ranges, states, CIDR networks, users.
//!
//! Each parser takes one list item as typed and returns a typed value or a message naming
//! the item; the caller adds the term and its position.

use std::fmt;
use std::net::IpAddr;

use crate::model::TcpState;

/// An inclusive range of ports, pids or uids; a single value is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range<T> {
    pub lo: T,
    pub hi: T,
}

impl<T: PartialOrd + Copy> Range<T> {
    pub fn contains(self, v: T) -> bool {
        self.lo <= v && v <= self.hi
    }
}

impl<T: PartialEq + fmt::Display> fmt::Display for Range<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Parse a decimal number of at most `max`; `what` names it in messages ("port", "pid").
pub(super) fn number(text: &str, what: &str, max: u32) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("missing {what} number"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a {what} number"));
    }
    // Saturate instead of overflowing: any value past `max` gets the same message.
    let value = text.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    match u32::try_from(value) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(format!("{what} {text} is out of range 0-{max}")),
    }
}

/// Parse `n` or `lo-hi` with `bound` for each end; rejects inverted and half-open ranges.
pub(super) fn range<T: PartialOrd + Copy + fmt::Display>(
    item: &str,
    mut bound: impl FnMut(&str) -> Result<T, String>,
) -> Result<Range<T>, String> {
    let Some((a, b)) = item.split_once('-') else {
        let v = bound(item)?;
        return Ok(Range { lo: v, hi: v });
    };
    if a.is_empty() {
        return Err(format!("range '{item}' has no start"));
    }
    if b.is_empty() {
        return Err(format!("range '{item}' has no end"));
    }
    let (lo, hi) = (bound(a)?, bound(b)?);
    if lo > hi {
        return Err(format!(
            "range {item} is inverted ({lo} > {hi}); write {hi}-{lo}"
        ));
    }
    Ok(Range { lo, hi })
}

/// A port range; names resolve through `services` when the caller gave one.
pub(super) fn port_range(
    item: &str,
    services: Option<&dyn Fn(&str) -> Option<u16>>,
) -> Result<Range<u16>, String> {
    // A service name may itself contain '-' (`http-alt`): try the whole item first.
    if let Some(p) = services
        .filter(|_| !item.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|lookup| lookup(item))
    {
        return Ok(Range { lo: p, hi: p });
    }
    range(item, |t| port(t, services))
}

/// One port: a number 0-65535, or a service name when a lookup is injected.
fn port(text: &str, services: Option<&dyn Fn(&str) -> Option<u16>>) -> Result<u16, String> {
    if !text.is_empty() && !text.bytes().all(|b| b.is_ascii_digit()) {
        return match services {
            Some(lookup) => lookup(text).ok_or_else(|| format!("unknown service '{text}'")),
            None => Err(format!("'{text}' is not a port number")),
        };
    }
    number(text, "port", u32::from(u16::MAX)).map(|v| v as u16)
}

/// Bit of `state` in a [`StateMask`].
const fn bit(state: TcpState) -> u16 {
    1 << (state as u16 - 1)
}

/// A set of states as bits indexed by [`TcpState::index`]; 13 states fit in a `u16`.
pub(super) type StateMask = u16;

const SYN_RECV: StateMask = bit(TcpState::SynRecv) | bit(TcpState::NewSynRecv);
const ALL: StateMask = (1 << TcpState::COUNT) - 1;
/// `ss`'s groups (ss.c `SS_CONN`): connected excludes listen, close, time-wait, syn-recv.
const CONNECTED: StateMask =
    ALL & !(bit(TcpState::Listen) | bit(TcpState::Close) | bit(TcpState::TimeWait) | SYN_RECV);
const BUCKET: StateMask = bit(TcpState::TimeWait) | SYN_RECV;

/// State names and aliases, compacted (lower case, no '-' or '_'), with their masks.
/// Request sockets (`NEW_SYN_RECV`) go with `syn-recv`, as the kernel reports them.
const STATES: &[(&str, StateMask)] = &[
    ("established", bit(TcpState::Established)),
    ("estab", bit(TcpState::Established)),
    ("est", bit(TcpState::Established)),
    ("synsent", bit(TcpState::SynSent)),
    ("syns", bit(TcpState::SynSent)),
    ("synrecv", SYN_RECV),
    ("synrcvd", SYN_RECV),
    ("synr", SYN_RECV),
    ("finwait1", bit(TcpState::FinWait1)),
    ("finw1", bit(TcpState::FinWait1)),
    ("fw1", bit(TcpState::FinWait1)),
    ("finwait2", bit(TcpState::FinWait2)),
    ("finw2", bit(TcpState::FinWait2)),
    ("fw2", bit(TcpState::FinWait2)),
    ("timewait", bit(TcpState::TimeWait)),
    ("timew", bit(TcpState::TimeWait)),
    ("tw", bit(TcpState::TimeWait)),
    ("close", bit(TcpState::Close)),
    ("closed", bit(TcpState::Close)),
    ("unconn", bit(TcpState::Close)),
    ("closewait", bit(TcpState::CloseWait)),
    ("closew", bit(TcpState::CloseWait)),
    ("cw", bit(TcpState::CloseWait)),
    ("lastack", bit(TcpState::LastAck)),
    ("lasta", bit(TcpState::LastAck)),
    ("listen", bit(TcpState::Listen)),
    ("closing", bit(TcpState::Closing)),
    ("newsynrecv", bit(TcpState::NewSynRecv)),
    ("boundinactive", bit(TcpState::BoundInactive)),
    ("bound", bit(TcpState::BoundInactive)),
    ("all", ALL),
    ("connected", CONNECTED),
    ("synchronized", CONNECTED & !bit(TcpState::SynSent)),
    ("bucket", BUCKET),
    ("big", ALL & !BUCKET),
];

/// The canonical names the normalized form prints, in kernel order (`syn-recv` covers both).
const CANONICAL: &[(&str, StateMask)] = &[
    ("established", bit(TcpState::Established)),
    ("syn-sent", bit(TcpState::SynSent)),
    ("syn-recv", SYN_RECV),
    ("fin-wait-1", bit(TcpState::FinWait1)),
    ("fin-wait-2", bit(TcpState::FinWait2)),
    ("time-wait", bit(TcpState::TimeWait)),
    ("close", bit(TcpState::Close)),
    ("close-wait", bit(TcpState::CloseWait)),
    ("last-ack", bit(TcpState::LastAck)),
    ("listen", bit(TcpState::Listen)),
    ("closing", bit(TcpState::Closing)),
    ("new-syn-recv", bit(TcpState::NewSynRecv)),
    ("bound-inactive", bit(TcpState::BoundInactive)),
];

/// The names a state-name error lists.
pub(super) const STATE_HELP: &str = "established (est), syn-sent, syn-recv, fin-wait-1, \
    fin-wait-2, time-wait (tw), close (unconn), close-wait (cw), last-ack, listen, closing, \
    bound-inactive; groups: all, connected, synchronized, bucket, big";

/// Look up a state name or alias, case-insensitive, ignoring '-' and '_'.
pub(super) fn state(item: &str) -> Option<StateMask> {
    let mut compact = item.to_ascii_lowercase();
    compact.retain(|c| c != '-' && c != '_');
    STATES
        .iter()
        .find(|(name, _)| *name == compact)
        .map(|&(_, mask)| mask)
}

/// Every state name and alias, for "did you mean" suggestions.
pub(super) fn state_names() -> impl Iterator<Item = &'static str> {
    STATES.iter().map(|(name, _)| *name)
}

/// Whether `state` is in `mask`.
pub(super) fn mask_has(mask: StateMask, state: TcpState) -> bool {
    mask & bit(state) != 0
}

/// Write `mask` as canonical state names joined by ','.
pub(super) fn write_states(f: &mut fmt::Formatter<'_>, mask: StateMask) -> fmt::Result {
    let mut left = mask;
    let mut sep = "";
    for &(name, bits) in CANONICAL {
        if left & bits == bits {
            write!(f, "{sep}{name}")?;
            sep = ",";
            left &= !bits;
        }
    }
    Ok(())
}

/// An IP network. IPv4-mapped IPv6 networks are stored as IPv4, and addresses are made
/// canonical before the test, so `127.0.0.0/8` also matches `::ffff:127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Net {
    V4 { net: u32, mask: u32, prefix: u8 },
    V6 { net: u128, mask: u128, prefix: u8 },
}

impl Net {
    fn v4(addr: u32, prefix: u8) -> Net {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Net::V4 { net: addr & mask, mask, prefix }
    }

    fn v6(addr: u128, prefix: u8) -> Net {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        Net::V6 { net: addr & mask, mask, prefix }
    }

    pub fn contains(self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Net::V4 { net, mask, .. }, IpAddr::V4(a)) => u32::from(a) & mask == net,
            (Net::V6 { net, mask, .. }, IpAddr::V6(a)) => u128::from(a) & mask == net,
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { net, prefix, .. } => {
                write!(f, "{}", std::net::Ipv4Addr::from(net))?;
                if prefix != 32 {
                    write!(f, "/{prefix}")?;
                }
            }
            Net::V6 { net, prefix, .. } => {
                write!(f, "{}", std::net::Ipv6Addr::from(net))?;
                if prefix != 128 {
                    write!(f, "/{prefix}")?;
                }
            }
        }
        Ok(())
    }
}

/// Parse `ip`, `ip/prefix`, `[v6]` or `[v6]/prefix`; host bits past the prefix are cleared.
pub(super) fn net(item: &str) -> Result<Net, String> {
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| format!("'{addr}' is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            match number(p, "prefix", 255) {
                Ok(n) if n <= u32::from(max) => n as u8,
                _ => {
                    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                    return Err(format!(
                        "prefix /{p} is out of range for {family} (0-{max})"
                    ));
                }
            }
        }
        Some(p) => return Err(format!("'/{p}' is not a prefix length")),
    };
    Ok(match ip {
        IpAddr::V4(a) => Net::v4(u32::from(a), prefix),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Net::v4(u32::from(v4), prefix - 96),
            _ => Net::v6(u128::from(a), prefix),
        },
    })
}

/// A `user:` item: a uid range, or a name with the uid the caller's lookup gave for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum User {
    Uids(Range<u32>),
    Name { name: Box<str>, uid: Option<u32> },
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            User::Uids(r) => r.fmt(f),
            User::Name { name, .. } => f.write_str(name),
        }
    }
}

/// Parse a uid, uid range or user name; names resolve through `lookup` when given.
pub(super) fn user(item: &str, lookup: Option<&dyn Fn(&str) -> Option<u32>>) -> Result<User, String> {
    let numeric = item.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && item.bytes().any(|b| b.is_ascii_digit());
    if numeric {
        return range(item, |t| number(t, "uid", u32::MAX)).map(User::Uids);
    }
    let uid = match lookup {
        Some(lookup) => Some(lookup(item).ok_or_else(|| format!("unknown user '{item}'"))?),
        None => None,
    };
    Ok(User::Name { name: item.into(), uid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ranges() {
        assert_eq!(number("0", "port", 65535), Ok(0));
        assert_eq!(number("65535", "port", 65535), Ok(65535));
        let cases = [
            ("65536", "port 65536 is out of range 0-65535"),
            ("99999999999999999999999", "port 99999999999999999999999 is out of range 0-65535"),
            ("8o", "'8o' is not a port number"),
            ("+1", "'+1' is not a port number"),
            ("", "missing port number"),
        ];
        for (text, msg) in cases {
            assert_eq!(number(text, "port", 65535), Err(msg.to_string()), "{text}");
        }
        assert_eq!(port_range("8000-8100", None), Ok(Range { lo: 8000, hi: 8100 }));
        assert_eq!(port_range("22", None), Ok(Range { lo: 22, hi: 22 }));
        let bad = [
            ("8100-8000", "range 8100-8000 is inverted (8100 > 8000); write 8000-8100"),
            ("-80", "range '-80' has no start"),
            ("80-", "range '80-' has no end"),
            ("1-2-3", "'2-3' is not a port number"),
            ("https", "'https' is not a port number"),
        ];
        for (text, msg) in bad {
            assert_eq!(port_range(text, None), Err(msg.to_string()), "{text}");
        }
    }

    #[test]
    fn service_names_resolve_through_the_injected_lookup() {
        let services = |name: &str| match name {
            "https" => Some(443),
            "http-alt" => Some(8080),
            "http" => Some(80),
            _ => None,
        };
        let lookup: Option<&dyn Fn(&str) -> Option<u16>> = Some(&services);
        assert_eq!(port_range("https", lookup), Ok(Range { lo: 443, hi: 443 }));
        assert_eq!(port_range("http-alt", lookup), Ok(Range { lo: 8080, hi: 8080 }));
        assert_eq!(port_range("http-https", lookup), Ok(Range { lo: 80, hi: 443 }));
        assert_eq!(port_range("gopher", lookup), Err("unknown service 'gopher'".into()));
    }

    #[test]
    fn every_state_alias() {
        let e = bit(TcpState::Established);
        let cases: &[(&[&str], StateMask)] = &[
            (&["established", "ESTABLISHED", "estab", "Est", "est"], e),
            (&["syn-sent", "SYN_SENT", "synsent"], bit(TcpState::SynSent)),
            (&["syn-recv", "syn_recv", "SYN-RECV", "syn-rcvd"], SYN_RECV),
            (&["fin-wait-1", "fin-wait1", "FIN_WAIT1", "fw1"], bit(TcpState::FinWait1)),
            (&["fin-wait-2", "fin-wait2", "FIN_WAIT2", "fw2"], bit(TcpState::FinWait2)),
            (&["time-wait", "time_wait", "TIME_WAIT", "tw", "TW"], bit(TcpState::TimeWait)),
            (&["close", "CLOSE", "unconn", "UNCONN", "closed"], bit(TcpState::Close)),
            (&["close-wait", "CLOSE_WAIT", "cw"], bit(TcpState::CloseWait)),
            (&["last-ack", "LAST_ACK", "lastack"], bit(TcpState::LastAck)),
            (&["listen", "LISTEN"], bit(TcpState::Listen)),
            (&["closing", "CLOSING"], bit(TcpState::Closing)),
            (&["new-syn-recv", "NEW_SYN_RECV"], bit(TcpState::NewSynRecv)),
            (&["bound-inactive", "BOUND_INACTIVE", "bound"], bit(TcpState::BoundInactive)),
            (&["all"], ALL),
            (&["bucket"], bit(TcpState::TimeWait) | SYN_RECV),
        ];
        for (names, mask) in cases {
            for name in *names {
                assert_eq!(state(name), Some(*mask), "{name}");
            }
        }
        for s in TcpState::ALL {
            assert!(mask_has(ALL, s), "{s:?}");
            // Every kernel name parses back to a mask holding that state.
            let m = state(s.kernel_name(crate::model::Proto::Tcp)).unwrap();
            assert!(mask_has(m, s), "{s:?}");
        }
        assert!(!mask_has(CONNECTED, TcpState::Listen));
        assert!(mask_has(CONNECTED, TcpState::Established));
        assert_eq!(state("timewaitx"), None);
        assert_eq!(state(""), None);
    }

    #[test]
    fn cidr_v4_v6_and_mapped() {
        let n = net("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert_eq!(net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(net("10.1.2.3").unwrap().to_string(), "10.1.2.3");
        assert_eq!(net("::ffff:127.0.0.1").unwrap().to_string(), "127.0.0.1");
        assert_eq!(net("::ffff:127.0.0.0/104").unwrap().to_string(), "127.0.0.0/8");
        assert_eq!(net("[::1]").unwrap().to_string(), "::1");
        assert_eq!(net("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        let v6 = net("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(net("::/0").unwrap().contains("::1".parse().unwrap()));
        assert!(!net("::1").unwrap().contains("127.0.0.1".parse().unwrap()));
        let bad = [
            ("10.0.0.0/33", "prefix /33 is out of range for IPv4 (0-32)"),
            ("::/129", "prefix /129 is out of range for IPv6 (0-128)"),
            ("::/99999999999", "prefix /99999999999 is out of range for IPv6 (0-128)"),
            ("10.0.0.0/", "'/' is not a prefix length"),
            ("10.0.0.0/x", "'/x' is not a prefix length"),
            ("10.0.0.256", "'10.0.0.256' is not an IP address"),
            ("fe80::1%eth0", "'fe80::1%eth0' is not an IP address"),
        ];
        for (text, msg) in bad {
            assert_eq!(net(text), Err(msg.to_string()), "{text}");
        }
    }

    #[test]
    fn users_numeric_named_and_looked_up() {
        assert_eq!(user("33", None), Ok(User::Uids(Range { lo: 33, hi: 33 })));
        assert_eq!(user("1000-1999", None), Ok(User::Uids(Range { lo: 1000, hi: 1999 })));
        assert_eq!(
            user("www-data", None),
            Ok(User::Name { name: "www-data".into(), uid: None })
        );
        let lookup = |n: &str| (n == "www-data").then_some(33);
        let l: Option<&dyn Fn(&str) -> Option<u32>> = Some(&lookup);
        assert_eq!(
            user("www-data", l),
            Ok(User::Name { name: "www-data".into(), uid: Some(33) })
        );
        assert_eq!(user("nobody", l), Err("unknown user 'nobody'".into()));
        assert_eq!(
            user("5000000000", None),
            Err("uid 5000000000 is out of range 0-4294967295".into())
        );
    }
}
