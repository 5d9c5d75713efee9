//! Value parsers of the filter language: numbers, ranges, ports, users.
//!
//! Each parser takes one list item as typed and returns a typed value or a message naming
//! the item; the caller adds the term and its position.

use std::fmt;

use super::{ServiceLookup, UserLookup};
use crate::analysis::printable::quoted;

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
        return Err(format!("{} is not a {what} number", quoted(text)));
    }
    // Saturate instead of overflowing: any value past `max` gets the same message.
    let value = text.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    match u32::try_from(value) {
        Ok(v) if v <= max => Ok(v),
        // A number this long is shown cut, not whole (it may be 100 KB).
        _ if text.len() > 20 => Err(format!("{what} {} is out of range 0-{max}", quoted(text))),
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
    if b.contains('-') {
        return Err(format!(
            "{} is not a range: a range has two ends, e.g. 8000-8100",
            quoted(item)
        ));
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
    services: Option<ServiceLookup<'_>>,
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
fn port(text: &str, services: Option<ServiceLookup<'_>>) -> Result<u16, String> {
    if !text.is_empty() && !text.bytes().all(|b| b.is_ascii_digit()) {
        return match services {
            Some(lookup) => lookup(text).ok_or_else(|| format!("unknown service '{text}'")),
            None => Err(format!("'{text}' is not a port number")),
        };
    }
    number(text, "port", u32::from(u16::MAX)).map(|v| v as u16)
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
pub(super) fn user(item: &str, lookup: Option<UserLookup<'_>>) -> Result<User, String> {
    let numeric = item.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && item.bytes().any(|b| b.is_ascii_digit());
    if numeric {
        return range(item, |t| number(t, "uid", u32::MAX)).map(User::Uids);
    }
    let uid = match lookup {
        Some(lookup) => Some(lookup(item).ok_or_else(|| format!("unknown user '{item}'"))?),
        None => None,
    };
    Ok(User::Name {
        name: item.into(),
        uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_has_two_ends() {
        // Issue 16: `port:1-2-3` said "unknown service '2-3'".
        let lookup = |name: &str| (name == "http-alt").then_some(8080u16);
        let e = port_range("1-2-3", Some(&lookup)).unwrap_err();
        assert_eq!(
            e,
            "'1-2-3' is not a range: a range has two ends, e.g. 8000-8100"
        );
        assert_eq!(
            port_range("http-alt", Some(&lookup)),
            Ok(Range { lo: 8080, hi: 8080 })
        );
        let e = number(&"9".repeat(10_000), "port", 65535).unwrap_err();
        assert!(e.len() < 150, "{e}");
    }

    #[test]
    fn numbers_and_ranges() {
        assert_eq!(number("0", "port", 65535), Ok(0));
        assert_eq!(number("65535", "port", 65535), Ok(65535));
        let cases = [
            ("65536", "port 65536 is out of range 0-65535"),
            (
                "99999999999999999999999",
                "port 99999999999999999999999 is out of range 0-65535",
            ),
            ("8o", "'8o' is not a port number"),
            ("+1", "'+1' is not a port number"),
            ("", "missing port number"),
        ];
        for (text, msg) in cases {
            assert_eq!(number(text, "port", 65535), Err(msg.to_string()), "{text}");
        }
        assert_eq!(
            port_range("8000-8100", None),
            Ok(Range { lo: 8000, hi: 8100 })
        );
        assert_eq!(port_range("22", None), Ok(Range { lo: 22, hi: 22 }));
        let bad = [
            (
                "8100-8000",
                "range 8100-8000 is inverted (8100 > 8000); write 8000-8100",
            ),
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
        let lookup: Option<ServiceLookup<'_>> = Some(&services);
        assert_eq!(port_range("https", lookup), Ok(Range { lo: 443, hi: 443 }));
        assert_eq!(
            port_range("http-alt", lookup),
            Ok(Range { lo: 8080, hi: 8080 })
        );
        assert_eq!(
            port_range("http-https", lookup),
            Ok(Range { lo: 80, hi: 443 })
        );
        assert_eq!(
            port_range("gopher", lookup),
            Err("unknown service 'gopher'".into())
        );
    }

    #[test]
    fn users_numeric_named_and_looked_up() {
        assert_eq!(user("33", None), Ok(User::Uids(Range { lo: 33, hi: 33 })));
        assert_eq!(
            user("1000-1999", None),
            Ok(User::Uids(Range { lo: 1000, hi: 1999 }))
        );
        assert_eq!(
            user("www-data", None),
            Ok(User::Name {
                name: "www-data".into(),
                uid: None
            })
        );
        let lookup = |n: &str| (n == "www-data").then_some(33);
        let l: Option<UserLookup<'_>> = Some(&lookup);
        assert_eq!(
            user("www-data", l),
            Ok(User::Name {
                name: "www-data".into(),
                uid: Some(33)
            })
        );
        assert_eq!(user("nobody", l), Err("unknown user 'nobody'".into()));
        assert_eq!(
            user("5000000000", None),
            Err("uid 5000000000 is out of range 0-4294967295".into())
        );
    }
}
