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

impl Alert {
    /// Parse one expression, e.g. `:443 time_wait>2000` or `accept_queue>=90%`.
    pub fn parse(expr: &str) -> Result<Alert, AlertError> {
        let fail = |part: &str, message: String| AlertError {
            expr: expr.to_string(),
            part: part.to_string(),
            message,
        };
        let rest = expr.trim();
        if rest.is_empty() {
            return Err(fail("", "empty expression".into()));
        }
        let (scope, rest) = match rest.strip_prefix(':') {
            Some(after) => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '*'))
                    .unwrap_or(after.len());
                let token = &after[..end];
                let part = &rest[..=end];
                let scope = match token {
                    "*" => Scope::EachPort,
                    "" => return Err(fail(part, "expected a port or '*' after ':'".into())),
                    t => match t.parse::<u16>() {
                        Ok(p) if p > 0 => Scope::Port(p),
                        _ => return Err(fail(part, format!("'{part}' is not a port (1-65535)"))),
                    },
                };
                (scope, after[end..].trim_start())
            }
            None => (Scope::All, rest),
        };
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        let kinds = || {
            let names: Vec<&str> = AlertKind::ALL.iter().map(|k| k.name()).collect();
            names.join(", ")
        };
        if name.is_empty() {
            return Err(fail(rest, format!("'{rest}': expected a kind ({})", kinds())));
        }
        let Some(kind) = AlertKind::from_name(name) else {
            return Err(fail(name, format!("unknown kind '{name}' (expected {})", kinds())));
        };
        let rest = rest[end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            let op: String = rest.chars().take_while(|c| "<=!≥≤".contains(*c)).collect();
            return Err(if op.is_empty() {
                fail(rest, format!("expected '>' or '>=' after '{name}'"))
            } else {
                fail(&op, format!("operator '{op}' is not supported (use > or >=)"))
            });
        };
        let value = rest.trim();
        if value.is_empty() {
            return Err(fail(value, format!("expected a threshold after '{}'", op.symbol())));
        }
        let threshold = if let Some(number) = value.strip_suffix('%') {
            if !kind.takes_percent() {
                return Err(fail(
                    value,
                    format!(
                        "'{value}': {} takes a count of sockets, not a percent",
                        kind.name()
                    ),
                ));
            }
            match number.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Threshold::Percent(p),
                _ => return Err(fail(value, format!("'{value}' is not a percent (0-100%)"))),
            }
        } else {
            match value.replace('_', "").parse::<u64>() {
                Ok(n) => Threshold::Count(n),
                Err(_) => {
                    return Err(fail(value, format!("'{value}' is not a whole number")));
                }
            }
        };
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
    ["time_wait>20000", ":* close_wait>100", "syn_recv>1000", "accept_queue>=90%", "ephemeral>70%"]
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

