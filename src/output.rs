//! Non-interactive writers over the same model the TUI shows: table, JSON, CSV.
//! One file per format; this file holds what they share (row order, labels).

use std::cmp::Ordering;

use crate::analysis::filter::Filter;
use crate::analysis::group::Grouping;
use crate::analysis::sides::Listening;
use crate::model::{Snapshot, Socket, TcpState};
use crate::source::services::service_name;

pub mod csv;
pub mod group;
pub mod json;
pub mod prometheus;
pub mod report;
pub mod table;
pub mod tick;

/// Printed output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    // The Prometheus text format (node_exporter textfile collector).
    Prometheus,
}

/// How to print: shared by every format.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Hide service names.
    pub numeric: bool,
    /// Print groups instead of sockets.
    pub group: bool,
    /// How `--group` groups: by service (default) or raw local ports (`--local-ports`).
    pub grouping: Grouping,
    /// Add the listeners' reach column to the socket table (`-l`).
    pub reach: bool,
}

/// Indexes of the sockets that pass `filter`, in print order: local port, then state
/// (LISTEN first), then addresses.
pub fn ordered(snapshot: &Snapshot, filter: &Filter) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..snapshot.sockets.len() as u32)
        .filter(|&i| filter.matches(&snapshot.sockets[i as usize], snapshot))
        .collect();
    idx.sort_unstable_by(|&a, &b| {
        compare(&snapshot.sockets[a as usize], &snapshot.sockets[b as usize])
    });
    idx
}

fn compare(a: &Socket, b: &Socket) -> Ordering {
    a.local
        .port()
        .cmp(&b.local.port())
        .then(a.proto.cmp(&b.proto))
        .then(state_rank(a.state).cmp(&state_rank(b.state)))
        .then(a.local.ip().cmp(&b.local.ip()))
        .then(a.remote.ip().cmp(&b.remote.ip()))
        .then(a.remote.port().cmp(&b.remote.port()))
}

/// Sort rank of a state: LISTEN first, then the kernel's order.
pub fn state_rank(state: TcpState) -> u8 {
    if state == TcpState::Listen {
        0
    } else {
        state as u8
    }
}

/// The service name of the local port; `None` for a client socket (see [`Listening`]) or
/// with `-n`.
pub fn local_service(
    listening: &Listening,
    snapshot: &Snapshot,
    socket: &Socket,
    opts: Options,
) -> Option<&'static str> {
    if opts.numeric {
        return None;
    }
    listening
        .service(snapshot, socket)
        .filter(|s| !s.peer)
        .map(|s| s.name)
}

/// The service name of the peer's port (`None` with `-n` or without a peer).
pub fn remote_service(socket: &Socket, opts: Options) -> Option<&'static str> {
    if opts.numeric || socket.remote.port() == 0 {
        None
    } else {
        service_name(socket.remote.port(), socket.proto)
    }
}

/// The state name `ss` prints; UDP unconnected is `UNCONN`.
pub fn state_label(socket: &Socket) -> &'static str {
    socket.state.ss_name()
}

pub use crate::vocabulary::endpoint;

/// One line saying how many sockets have no known owner and how to see them, if any
/// could not be read for lack of privilege.
pub fn coverage_note(snapshot: &Snapshot) -> Option<String> {
    let c = &snapshot.coverage;
    if crate::source::process::real_user::capable_non_root() {
        return Some(format!(
            "portside: running with capabilities as uid {}: owners show their pid and name; \
             command line, user, memory and CPU only where uid {0} may read them itself",
            rustix::process::getuid().as_raw()
        ));
    }
    if c.permission_denied == 0 {
        return None;
    }
    Some(format!(
        "portside: {} of {} sockets could not be attributed to a process (permission denied); \
         run as root or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to see their owners",
        c.permission_denied,
        snapshot.sockets.len()
    ))
}

/// Write one message line to stderr: control characters escaped, long quoted parts cut
/// (a 100 KB argument is not echoed whole). A write error is ignored: stderr may be a
/// terminal that went away, and `eprintln!` would panic there.
pub fn say(line: &str) {
    use std::io::Write as _;
    let mut line = crate::analysis::printable::message_line(line);
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}
