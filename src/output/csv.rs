//! CSV output: one row per socket, a `time` column so streamed snapshots stay one table.

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::filter::Filter;
use crate::analysis::sides::Listening;
use crate::model::{PortClass, Snapshot};
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
    service: Option<&'static str>,
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
            processes: join(&|p| p.name.clone()),
            attribution: attribution(s.owners),
            service: local_service(&listening, snapshot, s, opts),
            port_class: PortClass::of(s.local.port()).name(),
        })
        .map_err(io::Error::other)?;
    }
    out.flush()
}
