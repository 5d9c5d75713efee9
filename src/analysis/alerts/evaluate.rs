//! Firing alerts: compare each rule with the current insight and explain what it means.

use crate::analysis::alerts::{Alert, AlertKind, Scope, Threshold};
use crate::analysis::insight::Insight;
use crate::analysis::ports::PortKey;
use crate::model::{Proto, TcpState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One firing of a rule, for one subject (the host, a port, a listener, a destination).
#[derive(Debug, Clone, PartialEq)]
pub struct FiredAlert {
    pub severity: Severity,
    pub alert: Alert,
    /// The measured value: a count, or a percent for percent thresholds.
    pub value: f64,
    /// A sentence for the user: what, how much, which rule, what it means.
    pub message: String,
}

/// Every firing of `alerts` now, critical first, then in rule order, largest value first.
pub fn evaluate(alerts: &[Alert], insight: &Insight) -> Vec<FiredAlert> {
    let mut fired = Vec::new();
    for alert in alerts {
        let start = fired.len();
        match alert.kind {
            AlertKind::AcceptQueue => accept_queue(alert, insight, &mut fired),
            AlertKind::Ephemeral => ephemeral(alert, insight, &mut fired),
            _ => counts(alert, insight, &mut fired),
        }
        fired[start..].sort_by(|a, b| b.value.total_cmp(&a.value));
    }
    fired.sort_by_key(|f| std::cmp::Reverse(f.severity));
    fired
}

fn severity(alert: &Alert, value: f64) -> Severity {
    let critical = match alert.threshold {
        Threshold::Count(n) => value >= 2.0 * n as f64,
        Threshold::Percent(p) => value >= p.max(95.0),
    };
    if critical {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

fn push(fired: &mut Vec<FiredAlert>, alert: &Alert, value: f64, message: String) {
    fired.push(FiredAlert {
        severity: severity(alert, value),
        alert: *alert,
        value,
        message,
    });
}

/// The states a count kind adds up.
fn states(kind: AlertKind) -> &'static [TcpState] {
    match kind {
        AlertKind::TimeWait => &[TcpState::TimeWait],
        AlertKind::CloseWait => &[TcpState::CloseWait],
        AlertKind::SynRecv => &[TcpState::SynRecv, TcpState::NewSynRecv],
        _ => &[TcpState::Established],
    }
}

fn counts(alert: &Alert, insight: &Insight, fired: &mut Vec<FiredAlert>) {
    let states = states(alert.kind);
    let sum = |counts: &[u32; TcpState::COUNT]| -> u64 {
        states.iter().map(|s| u64::from(counts[s.index()])).sum()
    };
    match alert.scope {
        Scope::All => {
            let n = sum(insight.state_counts(Proto::Tcp));
            if alert.crossed(n as f64) {
                let mut message = format!("{} {}", sockets(n, states[0]), rule(alert));
                if alert.kind == AlertKind::TimeWait {
                    let split = insight.time_wait();
                    message.push_str(&format!(
                        ": {} client-side (we closed first: outbound pile-up), {} server-side",
                        thousands(u64::from(split.client_side)),
                        thousands(u64::from(split.server_side))
                    ));
                } else {
                    message.push_str(meaning(alert.kind, None));
                }
                push(fired, alert, n as f64, message);
            }
        }
        Scope::Port(port) => {
            let key = PortKey::new(Proto::Tcp, port);
            let n = insight.port(key).map_or(0, |r| sum(&r.counts));
            if alert.crossed(n as f64) {
                let listening = insight.listening().contains(Proto::Tcp, port);
                port_message(fired, alert, port, n, listening);
            }
        }
        Scope::EachPort => {
            for row in insight.ports().rows() {
                let n = sum(&row.counts);
                if row.key.proto == Proto::Tcp && alert.crossed(n as f64) {
                    port_message(fired, alert, row.key.port, n, row.listening);
                }
            }
        }
    }
}

fn port_message(fired: &mut Vec<FiredAlert>, alert: &Alert, port: u16, n: u64, listening: bool) {
    let message = format!(
        "port {port}: {} {}{}",
        sockets(n, states(alert.kind)[0]),
        rule(alert),
        meaning(alert.kind, Some(listening))
    );
    push(fired, alert, n as f64, message);
}

fn sockets(n: u64, state: TcpState) -> String {
    let noun = if n == 1 { "socket" } else { "sockets" };
    format!("{} {noun} in {}", thousands(n), state.kernel_name(Proto::Tcp))
}

fn rule(alert: &Alert) -> String {
    format!("(alert {alert})")
}

/// What the state means for the user; `listening` tells a server port from a client one.
fn meaning(kind: AlertKind, listening: Option<bool>) -> &'static str {
    match (kind, listening) {
        (AlertKind::CloseWait, Some(_)) => ": the application is not closing connections",
        (AlertKind::CloseWait, None) => ": an application is not closing connections",
        (AlertKind::SynRecv, _) => ": handshakes are not completing (SYN flood or lost ACKs)",
        (AlertKind::TimeWait, Some(true)) => ": the server closes first",
        (AlertKind::TimeWait, Some(false)) => ": we close first as a client",
        _ => "",
    }
}

fn accept_queue(alert: &Alert, insight: &Insight, fired: &mut Vec<FiredAlert>) {
    for l in insight.listeners() {
        if matches!(alert.scope, Scope::Port(p) if p != l.local.port()) {
            continue;
        }
        let value = match alert.threshold {
            Threshold::Count(_) => f64::from(l.queue),
            Threshold::Percent(_) => match l.fill_percent() {
                Some(p) => p,
                None => continue,
            },
        };
        if alert.crossed(value) {
            let percent = l
                .fill_percent()
                .map_or(String::new(), |p| format!(" ({p:.0}%)"));
            let message = format!(
                "listener {}: accept queue {} of {}{percent} {}: the application is not \
                 accepting fast enough; connections are dropped when the queue is full",
                l.local,
                thousands(u64::from(l.queue)),
                thousands(u64::from(l.backlog)),
                rule(alert)
            );
            push(fired, alert, value, message);
        }
    }
}

fn ephemeral(alert: &Alert, insight: &Insight, fired: &mut Vec<FiredAlert>) {
    for u in insight.ephemeral() {
        let d = u.destination;
        if matches!(alert.scope, Scope::Port(p) if p != d.remote.port()) {
            continue;
        }
        let value = match alert.threshold {
            Threshold::Count(_) => f64::from(u.used),
            Threshold::Percent(_) => match u.percent() {
                Some(p) => p,
                None => continue,
            },
        };
        if alert.crossed(value) {
            let percent = u.percent().map_or(String::new(), |p| format!(", {p:.0}%"));
            let message = format!(
                "{} uses {} of {} ephemeral ports{percent} (from {}; {}): connect() fails \
                 with EADDRNOTAVAIL once they run out",
                d.remote,
                thousands(u64::from(u.used)),
                thousands(u64::from(u.range_size)),
                d.local_ip,
                rule(alert).trim_start_matches('(').trim_end_matches(')')
            );
            push(fired, alert, value, message);
        }
    }
}

/// `23004` -> `23,004`: exact counts in sentences (the TUI's compact `12.3k` is for columns).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
