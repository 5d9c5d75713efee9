//! The custom `prometheus-client` collector: one [`Exposition`] written as metric families.
//!
//! Names follow the Prometheus conventions: one `portside_` prefix, base units (seconds),
//! `_total` on counters (added by the encoder), no label names inside metric names, and a
//! sum over any label means something (all sockets of that state, all folded ports...).
//! A namespace issue will add a `netns`/`container` label to the socket series.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::exporter::exposition::Exposition;
use crate::exporter::fold::{Group, GroupKey};
use crate::model::{Proto, TcpState};

/// `Content-Type` of what [`encode`] writes: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition in the Prometheus text format (0.0.4), what `/metrics` serves.
pub fn encode(exposition: Arc<Exposition>) -> String {
    let mut registry = Registry::with_prefix("portside");
    registry.register_collector(Box::new(ExpositionCollector(exposition)));
    let mut out = String::new();
    // Writing into a String cannot fail; a collector error would be a bug in this file.
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("encoding into a String");
    out
}

/// Writes one tick's exposition; registered anew for each encoding.
#[derive(Debug)]
struct ExpositionCollector(Arc<Exposition>);

type Labels<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// States in label order; `NewSynRecv` is folded into `SYN_RECV`, which it is to `ss`.
const STATES: [TcpState; 12] = [
    TcpState::Listen,
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Closing,
    TcpState::BoundInactive,
];

fn state_count(g: &Group, state: TcpState) -> u32 {
    let n = g.counts[state.index()];
    if state == TcpState::SynRecv {
        n + g.counts[TcpState::NewSynRecv.index()]
    } else {
        n
    }
}

fn port_label(key: GroupKey) -> Cow<'static, str> {
    match key {
        GroupKey::Port(_, p) => Cow::Owned(p.to_string()),
        GroupKey::Other(_) => Cow::Borrowed("other"),
    }
}

fn proto_label(proto: Proto) -> Cow<'static, str> {
    Cow::Borrowed(proto.name())
}

fn ip_label(ip: IpAddr) -> Cow<'static, str> {
    Cow::Owned(ip.to_string())
}

fn gauge_family<'a, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (Labels<'a>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Per (proto, port, state) rows of a folded group list; only states with sockets.
fn socket_rows<'a>(
    groups: &'a [Group],
    port_name: &'static str,
) -> impl Iterator<Item = (Labels<'a>, u32)> + 'a {
    groups.iter().flat_map(move |g| {
        let proto = g.key.proto();
        STATES.iter().filter_map(move |&state| {
            let n = state_count(g, state);
            (n > 0).then(|| {
                let labels = vec![
                    ("proto", proto_label(proto)),
                    (port_name, port_label(g.key)),
                    ("state", Cow::Borrowed(state.kernel_name(proto))),
                ];
                (labels, n)
            })
        })
    })
}

impl Collector for ExpositionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &*self.0;
        encode_sockets(e, &mut encoder)?;
        encode_listeners(e, &mut encoder)?;
        encode_host(e, &mut encoder)
    }
}

/// Build info and the inbound/outbound socket groups.
fn encode_sockets(e: &Exposition, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let mut info = enc.encode_descriptor(
        "build",
        "portside's version; the value is always 1",
        None,
        MetricType::Info,
    )?;
    info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;

    gauge_family(
        enc,
        "inbound_sockets",
        "Sockets on local ports with a listener, by protocol, local port and state (only ports with a listener; beyond --max-ports summed under port=\"other\")",
        None,
        socket_rows(&e.inbound.groups, "port"),
    )?;
    gauge_family(
        enc,
        "outbound_sockets",
        "Connected sockets on local ports without a listener, by protocol, remote port and state (beyond --max-ports summed under remote_port=\"other\")",
        None,
        socket_rows(&e.outbound.groups, "remote_port"),
    )?;
    gauge_family(
        enc,
        "folded_ports",
        "Ports summed under port=\"other\" because more than --max-ports had sockets",
        None,
        [
            (
                vec![("direction", Cow::Borrowed("inbound"))],
                e.inbound.folded as u64,
            ),
            (
                vec![("direction", Cow::Borrowed("outbound"))],
                e.outbound.folded as u64,
            ),
        ],
    )?;

    Ok(())
}

/// Per-listener queues and the connection counters of inbound ports.
fn encode_listeners(e: &Exposition, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let listener_labels = |address: Option<IpAddr>, port: Option<u16>| -> Labels<'static> {
        vec![
            ("address", address.map_or(Cow::Borrowed("other"), ip_label)),
            (
                "port",
                port.map_or(Cow::Borrowed("other"), |p| Cow::Owned(p.to_string())),
            ),
        ]
    };
    gauge_family(
        enc,
        "listener_accept_queue_length",
        "Connections waiting to be accepted, per TCP listening address and port",
        None,
        e.listeners
            .groups
            .iter()
            .map(|l| (listener_labels(l.address, l.port), l.queue)),
    )?;
    gauge_family(
        enc,
        "listener_accept_queue_limit",
        "Accept queue limit (the listen backlog), per TCP listening address and port",
        None,
        e.listeners
            .groups
            .iter()
            .map(|l| (listener_labels(l.address, l.port), l.limit)),
    )?;
    gauge_family(
        enc,
        "folded_listeners",
        "TCP listening addresses summed under address=\"other\",port=\"other\"",
        None,
        [(Vec::new(), e.listeners.folded as u64)],
    )?;

    if let Some(connections) = &e.connections {
        let labels = |key: GroupKey| -> Labels<'static> {
            vec![
                ("proto", proto_label(key.proto())),
                ("port", port_label(key)),
            ]
        };
        counter_family(
            enc,
            "inbound_connections_opened",
            "Connections seen opening on a listening port since the exporter started",
            connections.iter().map(|&(k, o, _)| (labels(k), o)),
        )?;
        counter_family(
            enc,
            "inbound_connections_closed",
            "Connections seen closing on a listening port since the exporter started",
            connections.iter().map(|&(k, _, c)| (labels(k), c)),
        )?;
    }

    Ok(())
}

/// Host-wide TIME_WAIT, ephemeral ports, kernel counters, owner coverage, the tick itself.
fn encode_host(e: &Exposition, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    gauge_family(
        enc,
        "time_wait_sockets",
        "TCP sockets in TIME_WAIT by the side that closed first: server (a listening local port) or client",
        None,
        [
            (
                vec![("side", Cow::Borrowed("server"))],
                e.time_wait.server_side,
            ),
            (
                vec![("side", Cow::Borrowed("client"))],
                e.time_wait.client_side,
            ),
        ],
    )?;
    gauge_family(
        enc,
        "ephemeral_ports_in_use",
        "Local ephemeral ports held toward one destination (source address, remote address and port), the --top-destinations busiest",
        None,
        e.ephemeral_top.iter().map(|u| {
            let labels = vec![
                ("local_address", ip_label(u.destination.local_ip)),
                ("remote_address", ip_label(u.destination.remote.ip())),
                (
                    "remote_port",
                    Cow::Owned(u.destination.remote.port().to_string()),
                ),
            ];
            (labels, u.used)
        }),
    )?;
    gauge_family(
        enc,
        "ephemeral_port_range_size",
        "Ports in net.ipv4.ip_local_port_range: what one destination can use at most",
        None,
        [(Vec::new(), e.ephemeral_range_size)],
    )?;
    gauge_family(
        enc,
        "ephemeral_destinations",
        "Outbound TCP destinations holding ephemeral ports now",
        None,
        [(Vec::new(), e.ephemeral_destinations as u64)],
    )?;

    if let Some(stats) = e.listen_stats {
        let mut f = enc.encode_descriptor(
            "tcp_listen_overflows",
            "Kernel ListenOverflows: connections dropped because an accept queue was full",
            None,
            MetricType::Counter,
        )?;
        f.encode_counter::<NoLabelSet, _, u64>(&stats.listen_overflows, None)?;
        let mut f = enc.encode_descriptor(
            "tcp_listen_drops",
            "Kernel ListenDrops: every connection dropped at a listener, overflows included",
            None,
            MetricType::Counter,
        )?;
        f.encode_counter::<NoLabelSet, _, u64>(&stats.listen_drops, None)?;
    }

    let c = e.coverage;
    gauge_family(
        enc,
        "owner_sockets",
        "Sockets by how their owning process is known: known, inferred, no_inode (TIME_WAIT, SYN_RECV: no process by nature), permission_denied, not_found",
        None,
        [
            ("known", c.attributed),
            ("inferred", c.inferred),
            ("no_inode", c.no_inode),
            ("permission_denied", c.permission_denied),
            ("not_found", c.not_found),
        ]
        .map(|(a, n)| (vec![("attribution", Cow::Borrowed(a))], n as u64)),
    )?;

    encode_tick(e, enc)
}

/// The exporter's own tick: duration, time, count, failures.
fn encode_tick(e: &Exposition, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    gauge_family(
        enc,
        "tick_duration",
        "Wall time of the last tick: socket dump, owner join and analysis",
        Some(&Unit::Seconds),
        [(Vec::new(), e.tick_duration.as_secs_f64())],
    )?;
    gauge_family(
        enc,
        "tick_timestamp",
        "When the last tick sampled the kernel, in seconds since the Unix epoch",
        Some(&Unit::Seconds),
        [(
            Vec::new(),
            e.taken_at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        )],
    )?;
    let mut f = enc.encode_descriptor("ticks", "Ticks taken", None, MetricType::Counter)?;
    f.encode_counter::<NoLabelSet, _, u64>(&e.ticks, None)?;
    let mut f = enc.encode_descriptor(
        "tick_errors",
        "Ticks that failed to sample (the last good tick stays served)",
        None,
        MetricType::Counter,
    )?;
    f.encode_counter::<NoLabelSet, _, u64>(&e.tick_errors, None)?;
    Ok(())
}
