//! Turns one whitespace-separated term into a [`Term`], or a message saying what is wrong.
//!
//! Shapes, tried in order: `!term`; `key:value[,value...]`; a bare IP/CIDR (`10.0.0.0/8`,
//! `::1`, `fe80::/10`) is `addr:`; `:443` is `port:` (netstat habit); a bare number or range
//! is `port:`; a keyword (`tcp`, `udp`, `v4`, `v6`, `listening`); a bare state name.

use super::Lookups;
use super::state::{self, STATE_HELP};
use super::term::{Pred, Side, Term};
use super::{net, value};
use crate::model::{Family, Proto};

/// The value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Port(Side),
    Addr(Side),
    State,
    Proc,
    Cmd,
    Pid,
    User,
}

/// Keys and their aliases (`sport`/`dport` and `src`/`dst` as in `ss`), case-insensitive.
const KEYS: &[(&str, Key)] = &[
    ("port", Key::Port(Side::Either)),
    ("lport", Key::Port(Side::Local)),
    ("sport", Key::Port(Side::Local)),
    ("rport", Key::Port(Side::Remote)),
    ("dport", Key::Port(Side::Remote)),
    ("state", Key::State),
    ("proc", Key::Proc),
    ("process", Key::Proc),
    ("comm", Key::Proc),
    ("cmd", Key::Cmd),
    ("cmdline", Key::Cmd),
    ("pid", Key::Pid),
    ("user", Key::User),
    ("uid", Key::User),
    ("addr", Key::Addr(Side::Either)),
    ("laddr", Key::Addr(Side::Local)),
    ("src", Key::Addr(Side::Local)),
    ("raddr", Key::Addr(Side::Remote)),
    ("dst", Key::Addr(Side::Remote)),
];

const KNOWN_KEYS: &str = "port, lport, rport, state, proc, cmd, pid, user, addr, laddr, raddr";

/// Bare keywords, case-insensitive.
const KEYWORDS: &[(&str, Pred)] = &[
    ("tcp", Pred::Proto(Proto::Tcp)),
    ("udp", Pred::Proto(Proto::Udp)),
    ("v4", Pred::Family(Family::V4)),
    ("ipv4", Pred::Family(Family::V4)),
    ("v6", Pred::Family(Family::V6)),
    ("ipv6", Pred::Family(Family::V6)),
    ("listening", Pred::Listening),
];

/// Parse one term as typed (never empty, no whitespace).
pub(super) fn term(text: &str, lookups: &Lookups<'_>) -> Result<Term, String> {
    let (negated, body) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if negated && body.is_empty() {
        return Err("'!' negates the term right after it, with no space: e.g. !port:22".into());
    }
    if body.starts_with('!') {
        return Err("negate a term once: a single '!'".into());
    }
    pred(body, lookups).map(|pred| Term { negated, pred })
}

fn pred(body: &str, lookups: &Lookups<'_>) -> Result<Pred, String> {
    let first = body.split(',').next().unwrap_or(body);
    let Some(colon) = first.find(':') else {
        let looks_v4 =
            first.starts_with(|c: char| c.is_ascii_digit()) && first.contains(['.', '/']);
        return if looks_v4 {
            nets(body).map(|n| Pred::Addr(Side::Either, n))
        } else {
            bare(body, lookups)
        };
    };
    let (key, after) = (&body[..colon], &first[colon + 1..]);
    if let Some(&(_, k)) = KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
        return keyed(key, k, &body[colon + 1..], lookups);
    }
    // Not a key: an IPv6 address (`::1`, `fe80::1`, `[::1]`), or `:443`.
    let hex = !key.is_empty() && key.len() <= 4 && key.bytes().all(|b| b.is_ascii_hexdigit());
    if key.starts_with('[')
        || (key.is_empty() && after.starts_with(':'))
        || (hex && after.contains(':'))
    {
        return nets(body).map(|n| Pred::Addr(Side::Either, n));
    }
    if key.is_empty() {
        if body.len() == 1 {
            return Err("missing port after ':' (e.g. :443)".into());
        }
        return list(&body[1..], "port", |i| {
            value::port_range(i, lookups.service)
        })
        .map(|r| Pred::Port(Side::Either, r));
    }
    let hint = suggest(key, KEYS.iter().map(|(n, _)| *n))
        .map(|s| format!("did you mean '{s}'? "))
        .unwrap_or_default();
    Err(format!("unknown key '{key}' ({hint}known: {KNOWN_KEYS})"))
}

fn keyed(key: &str, k: Key, text: &str, lookups: &Lookups<'_>) -> Result<Pred, String> {
    if text.is_empty() {
        let example = match k {
            Key::Port(_) => "443",
            Key::Addr(_) => "10.0.0.0/8",
            Key::State => "tw,est",
            Key::Proc => "nginx",
            Key::Cmd => "gunicorn",
            Key::Pid => "1234",
            Key::User => "www-data",
        };
        return Err(format!(
            "missing value after '{key}:' (e.g. {key}:{example})"
        ));
    }
    let needle = |i: &str| Ok(Box::from(i.to_ascii_lowercase()));
    Ok(match k {
        Key::Port(side) => Pred::Port(
            side,
            list(text, "port", |i| value::port_range(i, lookups.service))?,
        ),
        Key::Addr(side) => Pred::Addr(side, nets(text)?),
        Key::State => Pred::State(states(text)?),
        Key::Proc => Pred::Proc(list(text, "name", needle)?),
        Key::Cmd => Pred::Cmd(list(text, "text", needle)?),
        Key::Pid => Pred::Pid(list(text, "pid", |i| {
            value::range(i, |t| value::number(t, "pid", u32::MAX))
        })?),
        Key::User => Pred::User(list(text, "user", |i| value::user(i, lookups.user))?),
    })
}

/// A term with no key: a port list, a keyword, or a state list.
fn bare(body: &str, lookups: &Lookups<'_>) -> Result<Pred, String> {
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        return list(body, "port", |i| value::port_range(i, lookups.service))
            .map(|r| Pred::Port(Side::Either, r));
    }
    if let Some((_, p)) = KEYWORDS.iter().find(|(n, _)| n.eq_ignore_ascii_case(body)) {
        return Ok(p.clone());
    }
    if let Some((name, _)) = KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(body)) {
        return Err(format!("'{name}' needs a value: write {name}:VALUE"));
    }
    let first = body.split(',').next().unwrap_or(body);
    if KEYWORDS.iter().any(|(n, _)| n.eq_ignore_ascii_case(first)) {
        return Err(format!(
            "keywords take no list: write '{first}' alone (both protocols and families are shown by default)"
        ));
    }
    if state::state(first).is_some() {
        return states(body).map(Pred::State);
    }
    let words = KEYWORDS.iter().map(|(n, _)| *n).chain(state::state_names());
    let name_like = body
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let hint = match suggest(body, words) {
        Some(s) => format!("; did you mean '{s}'?"),
        // A long body is cut as quoted values are (it may be a 100 KB argument).
        None if name_like && body.chars().count() > crate::analysis::printable::QUOTE_MAX => {
            let head: String = body
                .chars()
                .take(crate::analysis::printable::QUOTE_MAX)
                .collect();
            format!("; for a process name, write proc:{head}…")
        }
        None if name_like => format!("; for a process name, write proc:{body}"),
        None => String::new(),
    };
    Err(format!(
        "unknown term '{body}': not a key:value, port, state or keyword \
         (tcp, udp, v4, v6, listening){hint}"
    ))
}

fn states(text: &str) -> Result<state::StateMask, String> {
    let masks = list(text, "state", |i| {
        state::state(i).ok_or_else(|| {
            let hint = suggest(i, state::state_names())
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            format!("unknown state '{i}' ({hint}known: {STATE_HELP})")
        })
    })?;
    Ok(masks.iter().fold(0, |acc, m| acc | m))
}

fn nets(text: &str) -> Result<Box<[net::Net]>, String> {
    list(text, "address", net::net)
}

/// Split a value list on ',' and parse each item; an empty item is an error.
fn list<T>(
    text: &str,
    what: &str,
    mut item: impl FnMut(&str) -> Result<T, String>,
) -> Result<Box<[T]>, String> {
    text.split(',')
        .map(|i| {
            if i.is_empty() {
                Err(format!("empty {what} in list '{text}'"))
            } else {
                item(i)
            }
        })
        .collect()
}

/// The closest of `candidates` to `word` (case-insensitive): within one edit, two for words
/// of 8 bytes or more, so short words do not draw far-fetched suggestions.
fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    // Bounded: the TUI parses on every keystroke, and garbage may be long.
    if word.len() > 32 {
        return None;
    }
    let word = word.to_ascii_lowercase();
    let limit = (word.len() / 4).clamp(1, 2);
    candidates
        .map(|c| (edit_distance(&word, c), c))
        .filter(|&(d, c)| d <= limit && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting an adjacent swap as one edit (optimal string alignment), so
/// `prot` is one edit from `port`. Over bytes: the candidates are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        for j in 0..b.len() {
            let mut d = (prev[j] + usize::from(a[i] != b[j]))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_and_bounded() {
        assert_eq!(edit_distance("prot", "port"), 1);
        assert_eq!(edit_distance("prot", "proc"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "tw"), 2);
        assert_eq!(suggest("prot", KEYS.iter().map(|(n, _)| *n)), Some("port"));
        assert_eq!(
            suggest("STAET", KEYS.iter().map(|(n, _)| *n)),
            Some("state")
        );
        assert_eq!(suggest("zzzzzz", KEYS.iter().map(|(n, _)| *n)), None);
        // A two-letter alias is not suggested for an unrelated two-letter word.
        assert_eq!(suggest("ab", state::state_names()), None);
        assert_eq!(
            suggest(&"x".repeat(100), KEYS.iter().map(|(n, _)| *n)),
            None
        );
    }

    #[test]
    fn every_key_alias_maps_to_its_key() {
        let lookups = Lookups::default();
        let cases = [
            (&["port", "PORT"][..], "port:1"),
            (&["lport", "sport"], "lport:1"),
            (&["rport", "dport"], "rport:1"),
            (&["addr"], "addr:10.0.0.1"),
            (&["laddr", "src"], "laddr:10.0.0.1"),
            (&["raddr", "dst"], "raddr:10.0.0.1"),
        ];
        for (keys, want) in cases {
            for k in keys {
                let v = if want.contains("addr") {
                    "10.0.0.1"
                } else {
                    "1"
                };
                let t = term(&format!("{k}:{v}"), &lookups).unwrap();
                assert_eq!(t.to_string(), want, "{k}");
            }
        }
        let named = [
            (&["proc", "process", "comm", "Proc"][..], "proc:ngx"),
            (&["cmd", "cmdline"], "cmd:ngx"),
            (&["user", "uid"], "user:ngx"),
        ];
        for (keys, want) in named {
            for k in keys {
                assert_eq!(
                    term(&format!("{k}:NGX"), &lookups).map(|t| t.to_string()),
                    {
                        // user names keep their case; proc/cmd needles are lower-cased.
                        if want.starts_with("user") {
                            Ok("user:NGX".into())
                        } else {
                            Ok(want.into())
                        }
                    },
                    "{k}"
                );
            }
        }
        assert_eq!(
            term("state:TW", &lookups).unwrap().to_string(),
            "state:time-wait"
        );
        assert_eq!(term("pid:7", &lookups).unwrap().to_string(), "pid:7");
    }
}
