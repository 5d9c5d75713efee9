//! CSV output: one row per socket, a `time` column so streamed snapshots stay one table.
//! Text from other processes (names, services) goes through [`csv_cell`]: no control
//! characters, and no cell a spreadsheet would run as a formula.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::filter::Filter;
use crate::analysis::group::PortGroup;
use crate::analysis::printable::csv_cell;
use crate::analysis::sides::Listening;
use crate::model::{PortClass, Proto, Snapshot, TcpState};
use crate::output::json::attribution;
use crate::output::{Options, local_service, ordered};

#[derive(Serialize)]
struct Row<'a> {
    time: &'a str,
    proto: &'static str,
    family: &'static str,
    state: &'static str,
    local_addr: String,
    local_port: u16,
    remote_addr: String,
    remote_port: u16,
    recv_q: u32,
    send_q: u32,
    uid: u32,
    inode: u64,
    /// Owner pids separated by `;`.
    pids: String,
    /// Owner process names separated by `;`.
    processes: String,
    attribution: &'static str,
    service: Option<Cow<'static, str>>,
    port_class: &'static str,
}

/// Write one snapshot's sockets; the header only when `header` is set (first snapshot).
pub fn write_sockets(
    w: &mut dyn Write,
    snapshot: &Snapshot,
    filter: &Filter,
    opts: Options,
    header: bool,
) -> io::Result<()> {
    let listening = Listening::of(snapshot);
    let time = humantime::format_rfc3339_millis(snapshot.taken_at).to_string();
    let mut out = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(&mut *w);
    for i in ordered(snapshot, filter) {
        let s = &snapshot.sockets[i as usize];
        let owners: Vec<_> = snapshot.owners_of(s).collect();
        let join = |f: &dyn Fn(&crate::model::Process) -> String| {
            owners.iter().map(|p| f(p)).collect::<Vec<_>>().join(";")
        };
        out.serialize(Row {
            time: &time,
            proto: s.proto.name(),
            family: s.family.name(),
            state: s.state.kernel_name(s.proto),
            local_addr: s.local.ip().to_string(),
            local_port: s.local.port(),
            remote_addr: s.remote.ip().to_string(),
            remote_port: s.remote.port(),
            recv_q: s.recv_q,
            send_q: s.send_q,
            uid: s.uid,
            inode: s.inode,
            pids: join(&|p| p.pid.to_string()),
            processes: csv_cell(&join(&|p| p.name.clone())).into_owned(),
            attribution: attribution(s.owners),
            service: local_service(&listening, snapshot, s, opts).map(csv_cell),
            port_class: PortClass::of(s.local.port()).name(),
        })
        .map_err(io::Error::other)?;
    }
    out.flush()
}

/// Write one snapshot's groups: fixed columns, one count column per state (kernel names),
/// so streamed snapshots stay one table.
pub fn write_groups(
    w: &mut dyn Write,
    snapshot: &Snapshot,
    groups: &[PortGroup],
    opts: Options,
    header: bool,
) -> io::Result<()> {
    let time = humantime::format_rfc3339_millis(snapshot.taken_at).to_string();
    let states: Vec<TcpState> = TcpState::ALL
        .into_iter()
        .filter(|s| *s != TcpState::NewSynRecv)
        .collect();
    let mut out = csv::Writer::from_writer(&mut *w);
    if header {
        let mut h: Vec<String> = [
            "time",
            "proto",
            "port",
            "service",
            "port_class",
            "listening",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        h.extend(states.iter().map(|s| s.kernel_name(Proto::Tcp).to_string()));
        h.extend(
            ["total", "accept_queue", "backlog", "pids", "processes"]
                .iter()
                .map(ToString::to_string),
        );
        out.write_record(&h).map_err(io::Error::other)?;
    }
    for g in groups {
        let procs: Vec<_> = g
            .owners
            .iter()
            .filter_map(|&i| snapshot.processes.get(i as usize))
            .collect();
        let mut rec: Vec<String> = vec![
            time.clone(),
            g.proto.name().to_string(),
            g.port.to_string(),
            csv_cell(g.service.filter(|_| !opts.numeric).unwrap_or("")).into_owned(),
            PortClass::of(g.port).name().to_string(),
            g.listening.to_string(),
        ];
        rec.extend(states.iter().map(|s| g.count(*s).to_string()));
        rec.push(g.total.to_string());
        rec.push(g.accept_queue.to_string());
        rec.push(g.backlog.to_string());
        rec.push(
            procs
                .iter()
                .map(|p| p.pid.to_string())
                .collect::<Vec<_>>()
                .join(";"),
        );
        let names: Vec<&str> = procs.iter().map(|p| p.name.as_str()).collect();
        rec.push(csv_cell(&names.join(";")).into_owned());
        out.write_record(&rec).map_err(io::Error::other)?;
    }
    out.flush()
}
