//! Aligned text table, like `ss`/`netstat`, sorted by local port then state.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::analysis::filter::Filter;
use crate::analysis::printable::printable;
use crate::analysis::sides::{Listening, Service};
use crate::model::Snapshot;
use crate::model::{Owners, Unattributed};
use crate::output::{Options, class_label, endpoint, ordered, owners_label, state_label};
use crate::source::process::UserNames;

const HEADERS: [&str; 9] = [
    "Proto", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Service", "Class", "Process",
];
/// Columns whose numbers are right-aligned.
const RIGHT: [bool; 9] = [false, false, true, true, false, false, false, false, false];

/// Write the socket table.
pub fn write_sockets(
    w: &mut dyn Write,
    snapshot: &Snapshot,
    filter: &Filter,
    opts: Options,
) -> io::Result<()> {
    let listening = Listening::of(snapshot);
    let mut users = UserNames::default();
    let rows: Vec<[String; 9]> = ordered(snapshot, filter)
        .into_iter()
        .map(|i| {
            let s = &snapshot.sockets[i as usize];
            let service = match listening.service(snapshot, s) {
                _ if opts.numeric => "-".to_string(),
                Some(Service { name, peer: true }) => format!("->{name}"),
                Some(Service { name, peer: false }) => name.to_string(),
                None => "-".to_string(),
            };
            [
                s.proto.name().to_string(),
                state_label(s).to_string(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                endpoint(s.local),
                endpoint(s.remote),
                service,
                class_label(snapshot, s.local.port()),
                match s.owners {
                    // Held by a process we may not look at: say whose socket it is.
                    Owners::None(Unattributed::PermissionDenied | Unattributed::NotFound) => {
                        format!("?({})", users.name(s.uid))
                    }
                    _ => owners_label(snapshot, s, 3),
                },
            ]
        })
        .collect();
    write_aligned(w, &HEADERS, &RIGHT, &rows)
}

/// Write rows under headers, each column as wide as its widest cell, two spaces apart;
/// `right[c]` right-aligns column `c` (numbers). Cells are passed through [`printable`].
pub fn write_aligned<R: AsRef<[String]>>(
    w: &mut dyn Write,
    headers: &[&str],
    right: &[bool],
    rows: &[R],
) -> io::Result<()> {
    let n = headers.len();
    // Names and users come from other processes: control characters shown, not sent.
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.as_ref().iter().map(|c| printable(c)).collect())
        .collect();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (c, cell) in row.iter().enumerate().take(n) {
            width[c] = width[c].max(cell.chars().count());
        }
    }
    let mut line = String::new();
    let mut emit = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        line.clear();
        for (c, cell) in cells.enumerate().take(n) {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = width[c].saturating_sub(cell.chars().count());
            if right.get(c).copied().unwrap_or(false) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if c + 1 < n {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        line.push('\n');
        w.write_all(line.as_bytes())
    };
    emit(&mut headers.iter().copied())?;
    for row in &rows {
        emit(&mut row.iter().map(AsRef::as_ref))?;
    }
    Ok(())
}
