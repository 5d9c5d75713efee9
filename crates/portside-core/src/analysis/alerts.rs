//! Alert expressions (`--alert`): `[:PORT|:*] KIND (>|>=) VALUE[%]`, parsed, defaulted and
//! evaluated against an [`Insight`](crate::analysis::insight::Insight).
//!
//! Kinds and what they measure (all TCP):
//! - `time_wait`, `close_wait`, `syn_recv`, `established`: a count of sockets in that state,
//!   host-wide without a scope, on local port PORT with `:PORT`, on each local port with `:*`.
//!   A percent makes no sense for them and is rejected.
//! - `accept_queue`: each listener's accept queue, as a length or in percent of its backlog;
//!   `:PORT` keeps the listeners on that port.
//! - `ephemeral`: ephemeral ports used per destination, as a count or in percent of
//!   `ip_local_port_range`; `:PORT` keeps destinations with that *remote* port.
//!
//! Severity: critical from twice a count threshold, or from 95% (or the threshold, if
//! higher) for a percent; warning below.

use std::fmt;
use std::str::FromStr;

mod evaluate;
pub use evaluate::{FiredAlert, Severity, evaluate};

/// What an alert measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    TimeWait,
    CloseWait,
    SynRecv,
    Established,
    AcceptQueue,
    Ephemeral,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::TimeWait,
        AlertKind::CloseWait,
        AlertKind::SynRecv,
        AlertKind::Established,
        AlertKind::AcceptQueue,
        AlertKind::Ephemeral,
    ];

    /// The name used in expressions.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::TimeWait => "time_wait",
            AlertKind::CloseWait => "close_wait",
            AlertKind::SynRecv => "syn_recv",
            AlertKind::Established => "established",
            AlertKind::AcceptQueue => "accept_queue",
            AlertKind::Ephemeral => "ephemeral",
        }
    }

    fn from_name(name: &str) -> Option<AlertKind> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "time_wait" | "timewait" | "tw" => AlertKind::TimeWait,
            "close_wait" | "closewait" | "cw" => AlertKind::CloseWait,
            "syn_recv" | "synrecv" | "syn_received" => AlertKind::SynRecv,
            "established" | "estab" | "est" => AlertKind::Established,
            "accept_queue" | "acceptq" | "accept" => AlertKind::AcceptQueue,
            "ephemeral" | "ephemeral_ports" | "eph" => AlertKind::Ephemeral,
            _ => return None,
        })
    }

    /// Whether a percent threshold means something for this kind.
    pub fn takes_percent(self) -> bool {
        matches!(self, AlertKind::AcceptQueue | AlertKind::Ephemeral)
    }
}

/// Which sockets an alert looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Host-wide total (counts), every listener, every destination.
    All,
    /// Local port (counts, accept queue) or remote port (ephemeral).
    Port(u16),
    /// Each local port on its own (counts only; for the others it is `All`).
    EachPort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    /// 0 to 100.
    Percent(f64),
}

/// One alert rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alert {
    pub scope: Scope,
    pub kind: AlertKind,
    pub op: Op,
    pub threshold: Threshold,
}

/// A bad alert expression, naming the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad alert '{expr}': {message}")]
pub struct AlertError {
    /// The whole expression, as given.
    pub expr: String,
    /// The offending part (empty when the expression is empty).
    pub part: String,
    /// What is wrong, quoting `part`.
    pub message: String,
}

/// A parse failure: the bad part and what is wrong with it.
type Bad = (String, String);

impl Alert {
    /// Parse one expression, e.g. `:443 time_wait>2000` or `accept_queue>=90%`.
    pub fn parse(expr: &str) -> Result<Alert, AlertError> {
        Alert::parse_parts(expr.trim()).map_err(|(part, message)| AlertError {
            expr: expr.to_string(),
            part,
            message,
        })
    }

    fn parse_parts(rest: &str) -> Result<Alert, Bad> {
        if rest.is_empty() {
            return Err((String::new(), "empty expression".into()));
        }
        let (scope, rest) = parse_scope(rest)?;
        let (kind, name, rest) = parse_kind(rest)?;
        let (op, rest) = if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            let op: String = rest.chars().take_while(|c| "<=!≥≤".contains(*c)).collect();
            return Err(if op.is_empty() {
                (rest.into(), format!("expected '>' or '>=' after '{name}'"))
            } else {
                let message = format!("operator '{op}' is not supported (use > or >=)");
                (op, message)
            });
        };
        let threshold = parse_threshold(kind, op, rest.trim())?;
        // Only counts distinguish "each port" from "all": normalize so overrides match.
        let scope = if kind.takes_percent() && scope == Scope::EachPort {
            Scope::All
        } else {
            scope
        };
        Ok(Alert {
            scope,
            kind,
            op,
            threshold,
        })
    }

    /// Whether `value` (a count or a percent, per the threshold) crosses the threshold.
    pub fn crossed(&self, value: f64) -> bool {
        let t = match self.threshold {
            Threshold::Count(n) => n as f64,
            Threshold::Percent(p) => p,
        };
        match self.op {
            Op::Gt => value > t,
            Op::Ge => value >= t,
        }
    }
}

/// `:PORT` or `:*` at the start, or nothing (host-wide).
fn parse_scope(rest: &str) -> Result<(Scope, &str), Bad> {
    let Some(after) = rest.strip_prefix(':') else {
        return Ok((Scope::All, rest));
    };
    let end = after
        .find(|c: char| !(c.is_ascii_digit() || c == '*'))
        .unwrap_or(after.len());
    let word = after.find(char::is_whitespace).unwrap_or(after.len());
    let token = &after[..end];
    let scope = match token {
        "*" => Scope::EachPort,
        "" if word == 0 => return Err((":".into(), "expected a port or '*' after ':'".into())),
        _ => match token.parse::<u16>() {
            Ok(p) if p > 0 => Scope::Port(p),
            _ => {
                let part = &rest[..=end.max(word)];
                return Err((part.into(), format!("'{part}' is not a port (1-65535)")));
            }
        },
    };
    Ok((scope, after[end..].trim_start()))
}

/// The kind name; returns the kind, the name as written, and the rest.
fn parse_kind(rest: &str) -> Result<(AlertKind, &str, &str), Bad> {
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    let kinds = AlertKind::ALL.map(AlertKind::name).join(", ");
    if name.is_empty() {
        let message = if rest.is_empty() {
            format!("expected a kind ({kinds})")
        } else {
            format!("'{rest}': expected a kind ({kinds})")
        };
        return Err((rest.into(), message));
    }
    let Some(kind) = AlertKind::from_name(name) else {
        return Err((
            name.into(),
            format!("unknown kind '{name}' (expected {kinds})"),
        ));
    };
    Ok((kind, name, rest[end..].trim_start()))
}

/// A whole number, or a percent for the kinds that take one.
fn parse_threshold(kind: AlertKind, op: Op, value: &str) -> Result<Threshold, Bad> {
    if value.is_empty() {
        let message = format!("expected a threshold after '{}'", op.symbol());
        return Err((String::new(), message));
    }
    if let Some(number) = value.strip_suffix('%') {
        if !kind.takes_percent() {
            let message = format!(
                "'{value}': {} takes a count of sockets, not a percent",
                kind.name()
            );
            return Err((value.into(), message));
        }
        return match number.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Threshold::Percent(p)),
            _ => Err((value.into(), format!("'{value}' is not a percent (0-100%)"))),
        };
    }
    value
        .replace('_', "")
        .parse::<u64>()
        .map(Threshold::Count)
        .map_err(|_| (value.into(), format!("'{value}' is not a whole number")))
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

impl FromStr for Alert {
    type Err = AlertError;

    fn from_str(s: &str) -> Result<Alert, AlertError> {
        Alert::parse(s)
    }
}

/// The canonical expression: `:443 time_wait>2000`, `accept_queue>=90%`.
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::All => {}
            Scope::Port(p) => write!(f, ":{p} ")?,
            Scope::EachPort => f.write_str(":* ")?,
        }
        write!(f, "{}{}", self.kind.name(), self.op.symbol())?;
        match self.threshold {
            Threshold::Count(n) => write!(f, "{n}"),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The default rules, always on unless overridden:
/// - `time_wait>20000`: ~70% of the default 28,232-port ephemeral range; a pile-up of this
///   size toward one destination starts failing `connect()`;
/// - `:* close_wait>100`: CLOSE_WAIT waits on the application only; 100 on one port is a leak;
/// - `syn_recv>1000`: beyond usual `tcp_max_syn_backlog` levels: a SYN flood or lost ACKs;
/// - `accept_queue>=90%`: a full queue drops connections (ListenOverflows);
/// - `ephemeral>70%`: leaves headroom before EADDRNOTAVAIL.
pub fn default_alerts() -> Vec<Alert> {
    [
        "time_wait>20000",
        ":* close_wait>100",
        "syn_recv>1000",
        "accept_queue>=90%",
        "ephemeral>70%",
    ]
    .iter()
    .filter_map(|e| Alert::parse(e).ok())
    .collect()
}

/// The defaults plus the user's `--alert` expressions; a user rule replaces the default of
/// the same kind and scope (so `--alert time_wait>5000` changes the host-wide threshold).
pub fn configure<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Alert>, AlertError> {
    let user: Vec<Alert> = exprs
        .iter()
        .map(|e| Alert::parse(e.as_ref()))
        .collect::<Result<_, _>>()?;
    let mut alerts: Vec<Alert> = default_alerts()
        .into_iter()
        .filter(|d| !user.iter().any(|u| u.kind == d.kind && u.scope == d.scope))
        .collect();
    alerts.extend(user);
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("time_wait>5000", "time_wait>5000"),
            (":443 time_wait>2000", ":443 time_wait>2000"),
            ("  :443time-wait >= 2_000 ", ":443 time_wait>=2000"),
            (":* cw>100", ":* close_wait>100"),
            ("SYN_RECV>1000", "syn_recv>1000"),
            ("est>=10", "established>=10"),
            ("accept_queue>80%", "accept_queue>80%"),
            ("accept_queue>100", "accept_queue>100"),
            (":* accept_queue>=90.5%", "accept_queue>=90.5%"),
            (":5432 ephemeral>70%", ":5432 ephemeral>70%"),
        ];
        for (input, canonical) in cases {
            let alert = Alert::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(alert.to_string(), canonical, "{input}");
            assert_eq!(
                Alert::parse(canonical).unwrap(),
                alert,
                "{input} round-trips"
            );
        }
        let a: Alert = ":443 time_wait>2000".parse().unwrap();
        assert_eq!(
            a,
            Alert {
                scope: Scope::Port(443),
                kind: AlertKind::TimeWait,
                op: Op::Gt,
                threshold: Threshold::Count(2000)
            }
        );
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("", "", "empty expression"),
            ("time_wiat>5", "time_wiat", "unknown kind 'time_wiat'"),
            ("time_wait<5", "<", "operator '<' is not supported"),
            ("time_wait=5", "=", "operator '=' is not supported"),
            ("time_wait 5", "5", "expected '>' or '>=' after 'time_wait'"),
            ("time_wait>", "", "expected a threshold after '>'"),
            ("time_wait>abc", "abc", "'abc' is not a whole number"),
            ("time_wait>-3", "-3", "'-3' is not a whole number"),
            (
                "time_wait>80%",
                "80%",
                "time_wait takes a count of sockets, not a percent",
            ),
            ("accept_queue>120%", "120%", "'120%' is not a percent"),
            ("ephemeral>x%", "x%", "'x%' is not a percent"),
            (":99999 time_wait>1", ":99999", "':99999' is not a port"),
            (":0 time_wait>1", ":0", "':0' is not a port"),
            (":http time_wait>1", ":http", "':http' is not a port"),
            (": time_wait>1", ":", "expected a port or '*' after ':'"),
            (":443", "", "expected a kind"),
            (">5", ">5", "'>5': expected a kind"),
            (
                "time_wait>5 extra",
                "5 extra",
                "'5 extra' is not a whole number",
            ),
        ];
        for (input, part, message) in cases {
            let e = Alert::parse(input).expect_err(input);
            assert_eq!(e.expr, input);
            assert_eq!(e.part, part, "{input}: {e}");
            assert!(e.message.contains(message), "{input}: {}", e.message);
            assert!(e.to_string().starts_with(&format!("bad alert '{input}': ")));
        }
    }

    #[test]
    fn thresholds_cross_with_the_operator() {
        let gt = Alert::parse("time_wait>10").unwrap();
        let ge = Alert::parse("time_wait>=10").unwrap();
        assert!(!gt.crossed(10.0) && gt.crossed(11.0));
        assert!(ge.crossed(10.0) && !ge.crossed(9.0));
        assert!(Alert::parse("accept_queue>=90%").unwrap().crossed(90.0));
    }

    #[test]
    fn user_rules_replace_defaults_of_the_same_kind_and_scope() {
        let defaults: Vec<String> = default_alerts().iter().map(ToString::to_string).collect();
        assert_eq!(
            defaults,
            [
                "time_wait>20000",
                ":* close_wait>100",
                "syn_recv>1000",
                "accept_queue>=90%",
                "ephemeral>70%"
            ]
        );
        let alerts = configure(&[
            "time_wait>5000",
            ":443 time_wait>2000",
            ":* accept_queue>80%",
        ])
        .unwrap();
        let names: Vec<String> = alerts.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                ":* close_wait>100",
                "syn_recv>1000",
                "ephemeral>70%",
                "time_wait>5000",
                ":443 time_wait>2000",
                "accept_queue>80%",
            ]
        );
        let e = configure(&["close_wait>1", "bogus>1"]).unwrap_err();
        assert_eq!(e.part, "bogus");
    }
}
