//! JSON output: one object per snapshot (one line per snapshot when streaming).
//! Field names are the contract in DESIGN.md; addresses are printed as `ss` prints them.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::value::RawValue;

use crate::analysis::alerts::FiredAlert;
use crate::analysis::filter::Filter;
use crate::analysis::group::PortGroup;
use crate::analysis::sides::Listening;
use crate::model::{Coverage, Owners, PortClass, Process, Snapshot, Socket, Unattributed};
use crate::output::group::{self, GroupJson};
use crate::output::report::{self, AlertJson, ListenerJson, TimeWaitJson};
use crate::output::{Options, local_service, ordered, remote_service};
use crate::vocabulary::OwnerStatus;

#[derive(Serialize)]
struct SnapshotJson<T: Serialize> {
    time: String,
    duration_ms: f64,
    source: &'static str,
    privileged: bool,
    coverage: CoverageJson,
    ephemeral_range: [u16; 2],
    #[serde(flatten)]
    body: T,
    /// Firing alerts (see `--alert`), most severe first.
    alerts: Vec<AlertJson>,
}

#[derive(Serialize)]
struct CoverageJson {
    total: usize,
    attributed: usize,
    inferred: usize,
    no_inode: usize,
    permission_denied: usize,
    not_found: usize,
}

impl CoverageJson {
    fn new(c: Coverage, total: usize) -> CoverageJson {
        CoverageJson {
            total,
            attributed: c.attributed,
            inferred: c.inferred,
            no_inode: c.no_inode,
            permission_denied: c.permission_denied,
            not_found: c.not_found,
        }
    }
}

#[derive(Serialize)]
struct SocketsBody<'a> {
    sockets: SocketList<'a>,
}

/// Serializes the filtered, ordered sockets without building an intermediate list.
struct SocketList<'a> {
    snapshot: &'a Snapshot,
    listening: Listening,
    order: Vec<u32>,
    opts: Options,
    owners: OwnerSetsJson,
}

/// Each owner set's `processes` array, rendered once per snapshot. Sockets share a few
/// sets (70k sockets of 5 processes: 5 sets), so a command line is escaped once, not once
/// per socket. JSON string escaping was the largest user-space symbol of `--once --format
/// json` at 10k sockets (8% of `perf` samples), but the wall-time gain there was within
/// noise (42 -> 41 ms median, hyperfine, 10k preset); the saving grows with command-line
/// length and socket count.
struct OwnerSetsJson {
    sets: Vec<Box<RawValue>>,
    empty: Box<RawValue>,
}

impl OwnerSetsJson {
    fn new(snapshot: &Snapshot) -> serde_json::Result<OwnerSetsJson> {
        let sets = snapshot
            .owner_sets
            .iter()
            .map(|set| {
                let procs: Vec<ProcessJson<'_>> = set
                    .iter()
                    .filter_map(|&i| ProcessJson::of(snapshot, i))
                    .collect();
                serde_json::value::to_raw_value(&procs)
            })
            .collect::<serde_json::Result<_>>()?;
        Ok(OwnerSetsJson {
            sets,
            empty: RawValue::from_string("[]".to_string())?,
        })
    }

    fn of(&self, owners: Owners) -> &RawValue {
        match owners {
            Owners::Known(n) | Owners::Inferred(n) => {
                self.sets.get(n as usize).map_or(&*self.empty, |r| &**r)
            }
            Owners::None(_) => &self.empty,
        }
    }
}

impl Serialize for SocketList<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.order.len()))?;
        for &i in &self.order {
            let s = &self.snapshot.sockets[i as usize];
            seq.serialize_element(&SocketJson::new(
                self.snapshot,
                &self.listening,
                &self.owners,
                s,
                self.opts,
            ))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct SocketJson<'a> {
    proto: &'static str,
    family: &'static str,
    state: &'static str,
    local_addr: IpAddr,
    local_port: u16,
    remote_addr: IpAddr,
    remote_port: u16,
    recv_q: u32,
    send_q: u32,
    uid: u32,
    inode: u64,
    processes: &'a RawValue,
    /// "known", "inferred" or why there is no owner.
    attribution: &'static str,
    /// The owner vocabulary's word: known, inferred, hidden, none.
    owner: &'static str,
    service: Option<&'static str>,
    remote_service: Option<&'static str>,
    port_class: &'static str,
    ephemeral: bool,
}

impl<'a> SocketJson<'a> {
    fn new(
        snapshot: &'a Snapshot,
        listening: &Listening,
        owners: &'a OwnerSetsJson,
        s: &'a Socket,
        opts: Options,
    ) -> SocketJson<'a> {
        SocketJson {
            proto: s.proto.name(),
            family: s.family.name(),
            state: s.state.kernel_name(s.proto),
            local_addr: s.local.ip(),
            local_port: s.local.port(),
            remote_addr: s.remote.ip(),
            remote_port: s.remote.port(),
            recv_q: s.recv_q,
            send_q: s.send_q,
            uid: s.uid,
            inode: s.inode,
            processes: owners.of(s.owners),
            attribution: attribution(s.owners),
            owner: OwnerStatus::of_socket(s.owners).name(),
            service: local_service(listening, snapshot, s, opts),
            remote_service: remote_service(s, opts),
            port_class: PortClass::of(s.local.port()).name(),
            ephemeral: snapshot.is_ephemeral(s.local.port()),
        }
    }
}

/// The JSON name of a socket's attribution.
pub fn attribution(owners: Owners) -> &'static str {
    match owners {
        Owners::Known(_) => "known",
        Owners::Inferred(_) => "inferred",
        Owners::None(Unattributed::NoInode) => "no_inode",
        Owners::None(Unattributed::PermissionDenied) => "permission_denied",
        Owners::None(Unattributed::NotFound) => "not_found",
    }
}

#[derive(Serialize)]
pub struct ProcessJson<'a> {
    pid: u32,
    name: &'a str,
    cmdline: &'a str,
    user: &'a str,
    /// CPU since the previous sample in percent of one core (null on a first sample).
    cpu_percent: Option<f32>,
    rss_bytes: Option<u64>,
}

impl<'a> ProcessJson<'a> {
    /// `snapshot.processes[index]` with its usage.
    pub fn of(snapshot: &'a Snapshot, index: u32) -> Option<ProcessJson<'a>> {
        let p: &Process = snapshot.processes.get(index as usize)?;
        let usage = snapshot.usage_of(index as usize);
        Some(ProcessJson {
            pid: p.pid,
            name: &p.name,
            cmdline: &p.cmdline,
            user: &p.user,
            cpu_percent: usage.cpu_percent.map(|c| (c * 10.0).round() / 10.0),
            rss_bytes: usage.rss_bytes,
        })
    }
}

fn envelope<T: Serialize>(snapshot: &Snapshot, body: T, fired: &[FiredAlert]) -> SnapshotJson<T> {
    SnapshotJson {
        time: humantime::format_rfc3339_millis(snapshot.taken_at).to_string(),
        duration_ms: snapshot.duration.as_secs_f64() * 1000.0,
        source: snapshot.source.name(),
        privileged: snapshot.privileged,
        coverage: CoverageJson::new(snapshot.coverage, snapshot.sockets.len()),
        ephemeral_range: [snapshot.ephemeral_range.0, snapshot.ephemeral_range.1],
        body,
        alerts: report::alerts(fired),
    }
}

/// Write one snapshot's sockets as a single line of JSON.
pub fn write_sockets(
    w: &mut dyn Write,
    snapshot: &Snapshot,
    filter: &Filter,
    opts: Options,
    fired: &[FiredAlert],
) -> io::Result<()> {
    let body = SocketsBody {
        sockets: SocketList {
            snapshot,
            listening: Listening::of(snapshot),
            order: ordered(snapshot, filter),
            opts,
            owners: OwnerSetsJson::new(snapshot)?,
        },
    };
    serde_json::to_writer(&mut *w, &envelope(snapshot, body, fired))?;
    w.write_all(b"\n")
}

#[derive(Serialize)]
struct GroupsBody<'a> {
    groups: Vec<GroupJson<'a>>,
    time_wait: TimeWaitJson,
    listeners: Vec<ListenerJson>,
}

/// Write one snapshot's groups, TIME_WAIT report and listeners as a single line of JSON.
pub fn write_groups(
    w: &mut dyn Write,
    snapshot: &Snapshot,
    groups: &[PortGroup],
    report: GroupReport,
    opts: Options,
    fired: &[FiredAlert],
) -> io::Result<()> {
    let body = GroupsBody {
        groups: groups
            .iter()
            .map(|g| group::json(snapshot, g, opts.numeric))
            .collect(),
        time_wait: report.time_wait,
        listeners: report.listeners,
    };
    serde_json::to_writer(&mut *w, &envelope(snapshot, body, fired))?;
    w.write_all(b"\n")
}

/// What `--group` adds to the groups: the TIME_WAIT report and the listeners.
pub struct GroupReport {
    pub time_wait: TimeWaitJson,
    pub listeners: Vec<ListenerJson>,
}
