//! Firing alerts: compare each rule with the current insight and explain what it means.

use std::fmt::Write as _;

use crate::analysis::alerts::{Alert, AlertKind, Scope, Threshold};
use crate::analysis::insight::Insight;
use crate::analysis::ports::PortKey;
use crate::analysis::text::thousands;
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
                    let _ = write!(
                        message,
                        ": {} client-side (we closed first: outbound pile-up), {} server-side",
                        thousands(u64::from(split.client_side)),
                        thousands(u64::from(split.server_side))
                    );
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
    format!(
        "{} {noun} in {}",
        thousands(n),
        state.kernel_name(Proto::Tcp)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::alerts::configure;
    use crate::analysis::testing::{at, snapshot, tcp};
    use crate::model::Socket;

    fn many(n: u32, state: TcpState, port: u16, first_octet: u8) -> Vec<Socket> {
        (0..n)
            .map(|i| {
                tcp(
                    state,
                    port,
                    &format!("10.{first_octet}.{}.{}:1000", i / 250, i % 250),
                )
            })
            .collect()
    }

    fn fire(rules: &[&str], sockets: Vec<Socket>) -> Vec<FiredAlert> {
        let mut insight = Insight::default();
        let mut snap = snapshot(at(0), sockets);
        snap.ephemeral_range = (40000, 40099);
        insight.update(&mut snap);
        let alerts: Vec<Alert> = rules.iter().map(|r| Alert::parse(r).unwrap()).collect();
        evaluate(&alerts, &insight)
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(23004), "23,004");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn close_wait_per_port_explains_itself() {
        let mut sockets = vec![tcp(TcpState::Listen, 443, "0.0.0.0:0")];
        sockets.extend(many(150, TcpState::CloseWait, 443, 1));
        sockets.extend(many(90, TcpState::CloseWait, 8443, 2));
        let fired = fire(&[":* close_wait>100"], sockets);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].severity, Severity::Warning);
        assert!((fired[0].value - 150.0).abs() < 1e-9);
        assert_eq!(
            fired[0].message,
            "port 443: 150 sockets in CLOSE_WAIT (alert :* close_wait>100): the application is \
             not closing connections"
        );
    }

    #[test]
    fn host_time_wait_reports_who_closed_first_and_severity() {
        let mut sockets = vec![tcp(TcpState::Listen, 80, "0.0.0.0:0")];
        sockets.extend(many(1500, TcpState::TimeWait, 80, 1));
        let mut client = many(2600, TcpState::TimeWait, 0, 2);
        for (i, s) in client.iter_mut().enumerate() {
            s.local.set_port(50000 + i as u16);
        }
        sockets.extend(client);
        let fired = fire(
            &["time_wait>2000", ":80 time_wait>=1500", ":81 time_wait>0"],
            sockets,
        );
        let messages: Vec<&str> = fired.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "4,100 sockets in TIME_WAIT (alert time_wait>2000): 2,600 client-side (we closed \
                 first: outbound pile-up), 1,500 server-side",
                "port 80: 1,500 sockets in TIME_WAIT (alert :80 time_wait>=1500): the server \
                 closes first",
            ]
        );
        assert_eq!(fired[0].severity, Severity::Critical, "4,100 >= 2 x 2,000");
        assert_eq!(fired[1].severity, Severity::Warning);
    }

    #[test]
    fn accept_queue_by_percent_or_length() {
        let mut full = tcp(TcpState::Listen, 443, "0.0.0.0:0");
        (full.recv_q, full.send_q) = (125, 128);
        let mut half = tcp(TcpState::Listen, 80, "0.0.0.0:0");
        (half.recv_q, half.send_q) = (64, 128);
        let fired = fire(&["accept_queue>=90%"], vec![full, half]);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].severity, Severity::Critical, "97.7% >= 95%");
        assert!(
            fired[0].message.starts_with(
                "listener 0.0.0.0:443: accept queue 125 of 128 (98%) (alert accept_queue>=90%): \
                 the application is not accepting fast enough"
            ),
            "{}",
            fired[0].message
        );
        let by_length = fire(&[":80 accept_queue>50"], vec![full, half]);
        assert_eq!(by_length.len(), 1);
        assert!((by_length[0].value - 64.0).abs() < 1e-9);
    }

    #[test]
    fn ephemeral_per_destination_against_the_range() {
        let mut sockets = Vec::new();
        for i in 0..81u16 {
            let mut s = tcp(TcpState::TimeWait, 40000 + i, "127.0.0.1:5432");
            s.local.set_ip("127.0.0.1".parse().unwrap());
            sockets.push(s);
        }
        sockets.extend((0..10u16).map(|i| tcp(TcpState::Established, 40000 + i, "10.0.0.7:443")));
        let fired = fire(&["ephemeral>70%", ":443 ephemeral>8"], sockets.clone());
        assert_eq!(fired.len(), 2);
        assert_eq!(
            fired[0].message,
            "127.0.0.1:5432 uses 81 of 100 ephemeral ports, 81% (from 127.0.0.1; alert \
             ephemeral>70%): connect() fails with EADDRNOTAVAIL once they run out"
        );
        assert_eq!(fired[1].alert.to_string(), ":443 ephemeral>8");
        assert!((fired[1].value - 10.0).abs() < 1e-9);
        assert!(fire(&[":5433 ephemeral>1"], sockets).is_empty());
    }

    #[test]
    fn defaults_stay_quiet_on_a_calm_host() {
        let mut sockets = vec![tcp(TcpState::Listen, 22, "0.0.0.0:0")];
        sockets.extend(many(50, TcpState::Established, 22, 1));
        sockets.extend(many(20, TcpState::CloseWait, 22, 2));
        let alerts = configure::<&str>(&[]).unwrap();
        let mut insight = Insight::default();
        insight.update(&mut snapshot(at(0), sockets));
        assert!(evaluate(&alerts, &insight).is_empty());
    }
}
