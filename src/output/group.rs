//! `--group`: inbound groups per listening port, outbound groups per remote service and
//! program (or, with `--local-ports`, one row per local port), with a count per state,
//! owners, service and reach. Table and JSON here; CSV flattens the same fields.

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::analysis::group::PortGroup;
use crate::analysis::reach::Reach;
use crate::model::{Family, PortClass, Snapshot, TcpState};
use crate::output::json::ProcessJson;
use crate::output::table::write_aligned;
use crate::vocabulary::{self, OwnerStatus};

/// States in column order: LISTEN first, then the kernel's order. `NewSynRecv` is folded
/// into SYN-RECV by the kernel already.
pub fn columns() -> impl Iterator<Item = TcpState> {
    std::iter::once(TcpState::Listen).chain(
        TcpState::ALL
            .into_iter()
            .filter(|s| !matches!(s, TcpState::Listen | TcpState::NewSynRecv)),
    )
}

/// The group table: only the state columns some group has sockets in.
pub fn write_table(
    out: &mut dyn std::io::Write,
    snapshot: &Snapshot,
    groups: &[PortGroup],
    numeric: bool,
) -> std::io::Result<()> {
    let states: Vec<TcpState> = columns()
        .filter(|s| groups.iter().any(|g| g.count(*s) > 0))
        .collect();
    let outbound = groups.iter().any(PortGroup::is_outbound);
    let fixed = ["Proto", "Port", "Service", "Class", "Reach", "Process"];
    let mut headers: Vec<String> = fixed.iter().map(ToString::to_string).collect();
    headers.extend(states.iter().map(|s| s.ss_name().to_string()));
    headers.push("Total".to_string());
    if outbound {
        headers.push("Eph-ports".to_string());
        headers.push("Peers".to_string());
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let mut row = vec![
                g.proto().name().to_string(),
                vocabulary::group_port(g),
                g.service.filter(|_| !numeric).unwrap_or("-").to_string(),
                vocabulary::group_port_class(snapshot, g).to_string(),
                g.reach.map_or("-", |r| r.name()).to_string(),
                vocabulary::group_owner(snapshot, g),
            ];
            row.extend(states.iter().map(|s| g.count(*s).to_string()));
            row.push(g.total.to_string());
            if outbound {
                if g.is_outbound() {
                    row.push(g.local_ports.to_string());
                    let n = g.remote_addrs;
                    row.push(format!("{n}: {}", vocabulary::remote_addrs(g)));
                } else {
                    row.extend(["-".to_string(), "-".to_string()]);
                }
            }
            row
        })
        .collect();
    let right: Vec<bool> = (0..headers.len())
        .map(|c| c >= fixed.len() && headers[c] != "Peers")
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    write_aligned(out, &headers, &right, &rows)
}

/// One group as JSON: the `--group --format json` contract (README "Grouped output").
#[derive(Serialize)]
pub struct GroupJson<'a> {
    direction: &'static str,
    proto: &'static str,
    /// Inbound and raw groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    local_port: Option<u16>,
    /// Outbound groups: the service's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_port: Option<u16>,
    /// Outbound groups: distinct remote addresses and the busiest few.
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_addrs: Option<RemoteAddrsJson>,
    /// Outbound groups: distinct local (ephemeral) ports in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    local_ports: Option<u32>,
    service: Option<&'static str>,
    port_class: &'static str,
    /// The local port lies in the kernel's ephemeral range (always false for outbound).
    ephemeral: bool,
    processes: Vec<ProcessJson<'a>>,
    /// How the owners are known: known, inferred, hidden, none, unknown.
    owner: &'static str,
    /// Hidden owners: the user of their sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_user: Option<String>,
    /// Sockets per state (kernel names), only states with sockets.
    states: StateCounts<'a>,
    total: u32,
    /// Reach of the widest listener: loopback, private, public, all; null without a
    /// listener (always for outbound groups).
    reach: Option<&'static str>,
    listening: bool,
    families: Vec<&'static str>,
    listen_addrs: &'a [IpAddr],
    accept_queue: u32,
    backlog: u32,
}

#[derive(Serialize)]
struct RemoteAddrsJson {
    count: u32,
    top: Vec<AddrCountJson>,
}

#[derive(Serialize)]
struct AddrCountJson {
    addr: IpAddr,
    count: u32,
}

struct StateCounts<'a>(&'a PortGroup);

impl Serialize for StateCounts<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for s in columns() {
            let n = self.0.count(s);
            if n > 0 {
                map.serialize_entry(s.kernel_name(self.0.proto()), &n)?;
            }
        }
        map.end()
    }
}

pub fn json<'a>(snapshot: &'a Snapshot, g: &'a PortGroup, numeric: bool) -> GroupJson<'a> {
    let outbound = g.is_outbound();
    let status = OwnerStatus::of_group(g);
    GroupJson {
        direction: g.direction().name(),
        proto: g.proto().name(),
        local_port: (!outbound).then_some(g.port()),
        remote_port: outbound.then_some(g.port()),
        remote_addrs: outbound.then(|| RemoteAddrsJson {
            count: g.remote_addrs,
            top: g
                .top_remote_addrs
                .iter()
                .map(|&(addr, count)| AddrCountJson { addr, count })
                .collect(),
        }),
        local_ports: outbound.then_some(g.local_ports),
        service: g.service.filter(|_| !numeric),
        port_class: PortClass::of(g.port()).name(),
        ephemeral: !outbound && snapshot.is_ephemeral(g.port()),
        processes: g
            .owners
            .iter()
            .filter_map(|&i| ProcessJson::of(snapshot, i))
            .collect(),
        owner: status.name(),
        owner_user: (status == OwnerStatus::Hidden)
            .then(|| g.attribution.hidden_uid.map(vocabulary::user_name))
            .flatten(),
        states: StateCounts(g),
        total: g.total,
        reach: g.reach.map(Reach::name),
        listening: g.listening,
        families: Family::ALL
            .into_iter()
            .filter(|f| g.has_family(*f))
            .map(Family::name)
            .collect(),
        listen_addrs: &g.listen_addrs,
        accept_queue: g.accept_queue,
        backlog: g.backlog,
    }
}
