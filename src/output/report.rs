//! The insight `--group` and streamed output print besides sockets: the TIME_WAIT report
//! (the numbers of the live view's `w` panel), listeners, kernel settings and firing alerts.
//! One serializable model, written as JSON or as text.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::analysis::alerts::FiredAlert;
use crate::analysis::insight::Insight;
use crate::analysis::listeners::listener_rows;
use crate::analysis::timewait::TimeWaitReport;
use crate::model::Snapshot;
use crate::source::sysctl::KernelSettings;

/// How many entries each breakdown keeps.
const TOP: usize = 10;

#[derive(Serialize)]
pub struct AlertJson {
    pub alert: String,
    pub severity: &'static str,
    pub value: f64,
    pub message: String,
}

pub fn alerts(fired: &[FiredAlert]) -> Vec<AlertJson> {
    fired
        .iter()
        .map(|a| AlertJson {
            alert: a.alert.to_string(),
            severity: a.severity.name(),
            value: a.value,
            message: a.message.clone(),
        })
        .collect()
}

#[derive(Serialize)]
pub struct TimeWaitJson {
    pub total: u32,
    /// TIME_WAIT on ports with a listener: our server closed first.
    pub server_side: u32,
    /// TIME_WAIT on client ports: we are the client and closed first (outbound pile-up).
    pub client_side: u32,
    pub by_local_port: Vec<PortCount>,
    pub by_remote_addr: Vec<AddrCount>,
    pub by_remote: Vec<EndpointCount>,
    /// Ephemeral ports in use per destination (all states), against the range size.
    pub ephemeral: Vec<EphemeralJson>,
    pub kernel: KernelJson,
    pub notes: Vec<String>,
}

#[derive(Serialize)]
pub struct PortCount {
    pub port: u16,
    pub count: u32,
    pub listening: bool,
}

#[derive(Serialize)]
pub struct AddrCount {
    pub addr: IpAddr,
    pub count: u32,
}

#[derive(Serialize)]
pub struct EndpointCount {
    pub addr: IpAddr,
    pub port: u16,
    pub count: u32,
}

#[derive(Serialize)]
pub struct EphemeralJson {
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub used: u32,
    pub range_size: u32,
    pub percent: Option<f64>,
}

#[derive(Serialize)]
pub struct KernelJson {
    pub ip_local_port_range: [u16; 2],
    pub tcp_fin_timeout: Option<u32>,
    pub tcp_tw_reuse: Option<u32>,
    pub tcp_max_tw_buckets: Option<u64>,
    pub somaxconn: Option<u32>,
}

impl TimeWaitJson {
    pub fn new(insight: &Insight, snapshot: &Snapshot, kernel: &KernelSettings) -> TimeWaitJson {
        let r = TimeWaitReport::build(insight, snapshot, TOP);
        TimeWaitJson {
            total: r.total,
            server_side: r.split.server_side,
            client_side: r.split.client_side,
            by_local_port: r
                .by_local_port
                .iter()
                .map(|p| PortCount {
                    port: p.port,
                    count: p.count,
                    listening: p.listening,
                })
                .collect(),
            by_remote_addr: r
                .by_remote_addr
                .iter()
                .map(|&(addr, count)| AddrCount { addr, count })
                .collect(),
            by_remote: r
                .by_remote
                .iter()
                .map(|&(a, count)| EndpointCount {
                    addr: a.ip(),
                    port: a.port(),
                    count,
                })
                .collect(),
            ephemeral: r
                .ephemeral
                .iter()
                .map(|u| EphemeralJson {
                    local_addr: u.destination.local_ip,
                    remote_addr: u.destination.remote.ip(),
                    remote_port: u.destination.remote.port(),
                    used: u.used,
                    range_size: u.range_size,
                    percent: u.percent().map(|p| (p * 10.0).round() / 10.0),
                })
                .collect(),
            kernel: KernelJson {
                ip_local_port_range: [kernel.ephemeral_range.0, kernel.ephemeral_range.1],
                tcp_fin_timeout: kernel.tcp_fin_timeout,
                tcp_tw_reuse: kernel.tcp_tw_reuse,
                tcp_max_tw_buckets: kernel.tcp_max_tw_buckets,
                somaxconn: kernel.somaxconn,
            },
            notes: r.kernel_notes(kernel),
        }
    }

    /// The same numbers as text, one section.
    pub fn write_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "TIME_WAIT: {} (server side {}, client side {})",
            self.total, self.server_side, self.client_side
        );
        if !self.by_local_port.is_empty() {
            let items: Vec<String> = self
                .by_local_port
                .iter()
                .map(|p| {
                    let side = if p.listening { " (server)" } else { "" };
                    format!("{} {}{side}", p.port, p.count)
                })
                .collect();
            let _ = writeln!(out, "  by local port:      {}", items.join(", "));
        }
        if !self.by_remote_addr.is_empty() {
            let items: Vec<String> = self
                .by_remote_addr
                .iter()
                .map(|a| format!("{} {}", a.addr, a.count))
                .collect();
            let _ = writeln!(out, "  by remote address:  {}", items.join(", "));
        }
        if !self.by_remote.is_empty() {
            let items: Vec<String> = self
                .by_remote
                .iter()
                .map(|e| format!("{} {}", endpoint(e.addr, e.port), e.count))
                .collect();
            let _ = writeln!(out, "  by remote endpoint: {}", items.join(", "));
        }
        for u in &self.ephemeral {
            let percent = match u.percent {
                Some(p) if p < 0.1 => "<0.1%".to_string(),
                Some(p) => format!("{p:.1}%"),
                None => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "  ephemeral ports: {} -> {} uses {} of {} ({percent})",
                u.local_addr,
                endpoint(u.remote_addr, u.remote_port),
                u.used,
                u.range_size,
            );
        }
        let k = &self.kernel;
        let show = |v: Option<String>| v.unwrap_or_else(|| "?".to_string());
        let _ = writeln!(
            out,
            "  kernel: ip_local_port_range {}-{}, tcp_fin_timeout {}, tcp_tw_reuse {}, tcp_max_tw_buckets {}",
            k.ip_local_port_range[0],
            k.ip_local_port_range[1],
            show(k.tcp_fin_timeout.map(|v| v.to_string())),
            show(k.tcp_tw_reuse.map(|v| v.to_string())),
            show(k.tcp_max_tw_buckets.map(|v| v.to_string())),
        );
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    crate::output::endpoint(std::net::SocketAddr::new(addr, port))
}

#[derive(Serialize)]
pub struct ListenerJson {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub accept_queue: u32,
    pub backlog: u32,
    pub syn_recv: u32,
    pub established: u32,
    pub close_wait: u32,
    /// New / closed connections per second through this listener since the previous
    /// sample (null on the first).
    pub new_per_sec: Option<f64>,
    pub closed_per_sec: Option<f64>,
    /// How those rates were counted: "exact" (the kernel's socket-destroy notifications)
    /// or "estimated" (comparing samples); null on the first sample.
    pub rates: Option<&'static str>,
    pub top_peers: Vec<AddrCount>,
}

pub fn listeners(insight: &Insight, snapshot: &Snapshot) -> Vec<ListenerJson> {
    listener_rows(insight, snapshot, 5)
        .into_iter()
        .map(|r| ListenerJson {
            local_addr: r.listener.local.ip(),
            local_port: r.listener.local.port(),
            accept_queue: r.listener.queue,
            backlog: r.listener.backlog,
            syn_recv: r.syn_recv,
            established: r.established,
            close_wait: r.close_wait,
            new_per_sec: r.rate.map(|c| c.new_per_sec),
            closed_per_sec: r.rate.map(|c| c.closed_per_sec),
            rates: insight.churn_source().name(),
            top_peers: r
                .top_peers
                .iter()
                .map(|&(addr, count)| AddrCount { addr, count })
                .collect(),
        })
        .collect()
}

/// Firing alerts as text lines.
pub fn write_alerts_text(fired: &[FiredAlert], out: &mut String) {
    for a in fired {
        let message = crate::analysis::printable::printable(&a.message);
        let _ = writeln!(out, "ALERT {}: {message}", a.severity.name());
    }
}
