//! `--group`: one row per (protocol, local port) with a count per state, owners, service.

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::analysis::group::PortGroup;
use crate::model::{Family, PortClass, Snapshot, TcpState};
use crate::output::table::write_aligned;

/// States in column order: LISTEN first, then the kernel's order. `NewSynRecv` is folded
/// into SYN-RECV by the kernel already.
fn columns() -> impl Iterator<Item = TcpState> {
    std::iter::once(TcpState::Listen).chain(
        TcpState::ALL
            .into_iter()
            .filter(|s| !matches!(s, TcpState::Listen | TcpState::NewSynRecv)),
    )
}

/// `pid/name` of a group's owners, at most `max`, then `+n`.
fn owners(snapshot: &Snapshot, g: &PortGroup, max: usize) -> String {
    let mut names: Vec<String> = g
        .owners
        .iter()
        .filter_map(|&i| snapshot.processes.get(i as usize))
        .take(max)
        .map(|p| format!("{}/{}", p.pid, p.name))
        .collect();
    if g.owners.len() > max {
        names.push(format!("+{}", g.owners.len() - max));
    }
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
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
    let fixed = ["Proto", "Port", "Service", "Class", "Process"];
    let mut headers: Vec<String> = fixed.iter().map(ToString::to_string).collect();
    headers.extend(states.iter().map(|s| s.ss_name().to_string()));
    headers.push("Total".to_string());
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let mut row = vec![
                g.proto.name().to_string(),
                g.port.to_string(),
                g.service.filter(|_| !numeric).unwrap_or("-").to_string(),
                crate::output::class_label(snapshot, g.port),
                owners(snapshot, g, 3),
            ];
            row.extend(states.iter().map(|s| g.count(*s).to_string()));
            row.push(g.total.to_string());
            row
        })
        .collect();
    let right: Vec<bool> = (0..headers.len())
        .map(|c| c == 1 || c >= fixed.len())
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    write_aligned(out, &headers, &right, &rows)
}

/// One group as JSON.
#[derive(Serialize)]
pub struct GroupJson<'a> {
    proto: &'static str,
    port: u16,
    service: Option<&'static str>,
    port_class: &'static str,
    ephemeral: bool,
    listening: bool,
    families: Vec<&'static str>,
    listen_addrs: &'a [IpAddr],
    /// Sockets per state (kernel names), only states with sockets.
    states: StateCounts<'a>,
    total: u32,
    accept_queue: u32,
    backlog: u32,
    processes: Vec<crate::output::json::ProcessJson<'a>>,
}

struct StateCounts<'a>(&'a PortGroup);

impl Serialize for StateCounts<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for s in columns() {
            let n = self.0.count(s);
            if n > 0 {
                map.serialize_entry(s.kernel_name(self.0.proto), &n)?;
            }
        }
        map.end()
    }
}

pub fn json<'a>(snapshot: &'a Snapshot, g: &'a PortGroup, numeric: bool) -> GroupJson<'a> {
    GroupJson {
        proto: g.proto.name(),
        port: g.port,
        service: g.service.filter(|_| !numeric),
        port_class: PortClass::of(g.port).name(),
        ephemeral: snapshot.is_ephemeral(g.port),
        listening: g.listening,
        families: Family::ALL
            .into_iter()
            .filter(|f| g.has_family(*f))
            .map(Family::name)
            .collect(),
        listen_addrs: &g.listen_addrs,
        states: StateCounts(g),
        total: g.total,
        accept_queue: g.accept_queue,
        backlog: g.backlog,
        processes: g
            .owners
            .iter()
            .filter_map(|&i| crate::output::json::ProcessJson::of(snapshot, i))
            .collect(),
    }
}
