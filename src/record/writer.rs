//! Appends engine ticks to a recording: one transaction per tick, socket changes as spans,
//! the oldest ticks dropped past `--max-size` or `--retention`.

#![expect(
    clippy::cast_possible_wrap,
    reason = "SQLite integers are i64: kernel u64 values (cookies, counters) are stored bit for bit"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, params};

use portside_core::engine::Tick;

use crate::model::{Owners, Proto, Snapshot, Socket, TcpState};
use crate::record::codec;
use crate::record::schema::{self, StoreError};
use crate::source::sysctl::KernelSettings;

/// How much a recording may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes of live data in the file (free pages excluded; they are reused).
    pub max_size: Option<u64>,
    /// How far back ticks are kept.
    pub retention: Option<Duration>,
}

/// What the recorder remembers of a live socket: its open span and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Live {
    span: i64,
    state: TcpState,
    recv_q: u32,
    send_q: u32,
    uid: u32,
    inode: u64,
    attribution: &'static str,
    owners: String,
}

/// A recording open for appending.
pub struct Recorder {
    conn: Connection,
    path: PathBuf,
    bounds: Bounds,
    tracked: Tracked,
    settings: Option<KernelSettings>,
    /// The tick number of the next sample.
    next: i64,
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(sql)")]
fn sql(e: rusqlite::Error) -> anyhow::Error {
    anyhow::anyhow!("recording: {e}")
}

impl Recorder {
    /// Creates `path`, or continues an existing recording: sockets still open in it are
    /// closed at its last tick (their later life was not seen).
    pub fn open(path: &Path, bounds: Bounds, interval: Duration) -> Result<Recorder, StoreError> {
        let conn = schema::open_for_writing(path)?;
        let io = |e: rusqlite::Error| StoreError::io(path, e);
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('interval_ms', ?1)",
            [interval.as_millis().to_string()],
        )
        .map_err(io)?;
        let last: Option<i64> = conn
            .query_row("SELECT max(tick) FROM ticks", [], |r| r.get(0))
            .map_err(io)?;
        if let Some(last) = last {
            conn.execute(
                "UPDATE spans SET end_tick = ?1 + 1, end_ms = (SELECT time_ms FROM ticks WHERE tick = ?1) WHERE end_tick IS NULL",
                [last],
            )
            .map_err(io)?;
        }
        Ok(Recorder {
            conn,
            path: path.to_path_buf(),
            bounds,
            tracked: Tracked::default(),
            settings: None,
            next: last.unwrap_or(0) + 1,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one tick: the (filtered) sockets of its scope, the host totals and
    /// counters, the kernel settings when changed, the firing alerts. Then applies the
    /// bounds.
    pub fn append(&mut self, tick: &Tick) -> anyhow::Result<()> {
        let n = self.next;
        let tx = self.conn.transaction().map_err(sql)?;
        let snapshot = &*tick.scope.snapshot;
        let time_ms = millis(snapshot.taken_at);
        tx.execute(
            "INSERT INTO ticks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                n,
                time_ms,
                i64::try_from(snapshot.duration.as_micros()).unwrap_or(i64::MAX),
                snapshot.source.name(),
                snapshot.privileged,
                snapshot.ephemeral_range.0,
                snapshot.ephemeral_range.1,
                snapshot.sockets.len() as i64,
                tick.listen_stats.map(|s| s.listen_overflows as i64),
                tick.listen_stats.map(|s| s.listen_drops as i64),
            ],
        )
        .map_err(sql)?;
        {
            let mut put = tx
                .prepare_cached("INSERT INTO totals VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql)?;
            for proto in Proto::ALL {
                for state in TcpState::ALL {
                    let count = tick.totals.of(proto)[state.index()];
                    if count > 0 {
                        put.execute(params![n, proto.name(), state.kernel_name(proto), count])
                            .map_err(sql)?;
                    }
                }
            }
        }
        if let Some(s) = tick.settings
            && self.settings != Some(s)
        {
            tx.execute(
                "INSERT INTO settings VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n,
                    s.tcp_fin_timeout,
                    s.tcp_tw_reuse,
                    s.tcp_max_tw_buckets.map(|v| v as i64),
                    s.somaxconn,
                    s.ephemeral_range.0,
                    s.ephemeral_range.1
                ],
            )
            .map_err(sql)?;
            self.settings = Some(s);
        }
        {
            let mut put = tx
                .prepare_cached("INSERT INTO alerts VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(sql)?;
            for a in &tick.scope.alerts {
                put.execute(params![
                    n,
                    a.alert.to_string(),
                    a.severity.name(),
                    a.value,
                    a.message
                ])
                .map_err(sql)?;
            }
        }
        let process_ids = self.tracked.processes(&tx, n, snapshot)?;
        self.tracked
            .sockets(&tx, n, time_ms, snapshot, &process_ids)?;
        tx.commit().map_err(sql)?;
        self.next += 1;
        self.apply_bounds(time_ms)
    }
}

/// What the recorder remembers between ticks.
#[derive(Default)]
struct Tracked {
    live: HashMap<u64, Live>,
    /// (pid, start time) -> process row and what it says.
    processes: HashMap<(u32, u64), (i64, String, String, String)>,
}

impl Tracked {
    /// The row of each of the snapshot's processes (inserted when new or changed), and
    /// their usage at this tick.
    fn processes(
        &mut self,
        tx: &Transaction<'_>,
        n: i64,
        snapshot: &Snapshot,
    ) -> anyhow::Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(snapshot.processes.len());
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO processes (pid, start_time, name, cmdline, uid, user) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql)?;
        let mut usage = tx
            .prepare_cached("INSERT OR REPLACE INTO usage VALUES (?1, ?2, ?3, ?4)")
            .map_err(sql)?;
        for (i, p) in snapshot.processes.iter().enumerate() {
            let known = self
                .processes
                .get(&(p.pid, p.start_time))
                .filter(|(_, name, cmd, user)| {
                    *name == p.name && *cmd == p.cmdline && *user == p.user
                })
                .map(|(id, ..)| *id);
            let id = if let Some(id) = known {
                id
            } else {
                insert
                    .execute(params![
                        p.pid,
                        p.start_time as i64,
                        p.name,
                        p.cmdline,
                        p.uid,
                        p.user
                    ])
                    .map_err(sql)?;
                let id = tx.last_insert_rowid();
                self.processes.insert(
                    (p.pid, p.start_time),
                    (id, p.name.clone(), p.cmdline.clone(), p.user.clone()),
                );
                id
            };
            let u = snapshot.usage_of(i);
            if u.cpu_percent.is_some() || u.rss_bytes.is_some() {
                usage
                    .execute(params![
                        n,
                        id,
                        u.cpu_percent.map(f64::from),
                        u.rss_bytes.map(|b| b as i64)
                    ])
                    .map_err(sql)?;
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Opens a span for each socket that appeared or changed, closes the span of each
    /// socket that changed or vanished.
    fn sockets(
        &mut self,
        tx: &Transaction<'_>,
        n: i64,
        time_ms: i64,
        snapshot: &Snapshot,
        process_ids: &[i64],
    ) -> anyhow::Result<()> {
        // Each owner set's process rows, as the `owners` column writes them.
        let sets: Vec<String> = snapshot
            .owner_sets
            .iter()
            .map(|set| {
                set.iter()
                    .filter_map(|&i| process_ids.get(i as usize))
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let mut close = tx
            .prepare_cached("UPDATE spans SET end_tick = ?1, end_ms = ?2 WHERE id = ?3")
            .map_err(sql)?;
        let mut open = tx
            .prepare_cached(
                "INSERT INTO spans (cookie, first_tick, first_ms, proto, state, local_addr, local_port, remote_addr, remote_port, recv_q, send_q, uid, inode, attribution, owners)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )
            .map_err(sql)?;
        let mut seen: HashMap<u64, Live> = HashMap::with_capacity(snapshot.sockets.len());
        for s in &snapshot.sockets {
            let key = codec::key(s);
            let owners = match s.owners {
                Owners::Known(i) | Owners::Inferred(i) => {
                    sets.get(i as usize).cloned().unwrap_or_default()
                }
                Owners::None(_) => String::new(),
            };
            let mut now = Live {
                span: 0,
                state: s.state,
                recv_q: s.recv_q,
                send_q: s.send_q,
                uid: s.uid,
                inode: s.inode,
                attribution: codec::attribution(s.owners),
                owners,
            };
            match self.live.remove(&key) {
                Some(before)
                    if Live {
                        span: 0,
                        ..before.clone()
                    } == now =>
                {
                    now.span = before.span;
                }
                before => {
                    if let Some(before) = before {
                        close
                            .execute(params![n, time_ms, before.span])
                            .map_err(sql)?;
                    }
                    now.span = insert_span(&mut open, tx, n, time_ms, key, s, &now)?;
                }
            }
            // Two sockets with one key (no cookie, same addresses): keep the first.
            seen.entry(key).or_insert(now);
        }
        for gone in self.live.values() {
            close.execute(params![n, time_ms, gone.span]).map_err(sql)?;
        }
        self.live = seen;
        Ok(())
    }
}

impl Recorder {
    /// Drops the oldest ticks while the file holds more than `max_size` bytes of data or
    /// ticks older than `retention`. Sockets still alive keep their spans.
    fn apply_bounds(&mut self, now_ms: i64) -> anyhow::Result<()> {
        if let Some(keep) = self.bounds.retention {
            let cutoff = now_ms - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let first: Option<i64> = self
                .conn
                .query_row(
                    "SELECT min(tick) FROM ticks WHERE time_ms >= ?1",
                    [cutoff],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if let Some(first) = first {
                self.drop_before(first)?;
            }
        }
        if let Some(max) = self.bounds.max_size {
            // Drop a tenth of the ticks at a time until the data fits (never the newest).
            while self.used_bytes()? > max {
                let (lo, hi): (Option<i64>, Option<i64>) = self
                    .conn
                    .query_row("SELECT min(tick), max(tick) FROM ticks", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(sql)?;
                let (Some(lo), Some(hi)) = (lo, hi) else {
                    break;
                };
                if lo >= hi {
                    break;
                }
                let step = ((hi - lo) / 10).max(1);
                self.drop_before((lo + step).min(hi))?;
            }
        }
        Ok(())
    }

    /// Bytes of the file in use (free pages are reused by later ticks).
    fn used_bytes(&self) -> anyhow::Result<u64> {
        let get = |p: &str| -> anyhow::Result<i64> {
            self.conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                .map_err(sql)
        };
        let used = (get("page_count")? - get("freelist_count")?) * get("page_size")?;
        Ok(used.max(0) as u64)
    }

    /// Deletes every tick before `first`, and every span that ended by then.
    fn drop_before(&mut self, first: i64) -> anyhow::Result<()> {
        let tx = self.conn.transaction().map_err(sql)?;
        for stmt in [
            "DELETE FROM ticks WHERE tick < ?1",
            "DELETE FROM totals WHERE tick < ?1",
            "DELETE FROM alerts WHERE tick < ?1",
            "DELETE FROM usage WHERE tick < ?1",
            "DELETE FROM spans WHERE end_tick <= ?1",
            // The settings in force at `first` stay.
            "DELETE FROM settings WHERE tick < (SELECT coalesce(max(tick), ?1) FROM settings WHERE tick <= ?1)",
        ] {
            tx.execute(stmt, [first]).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }
}

fn insert_span(
    open: &mut rusqlite::CachedStatement<'_>,
    tx: &Transaction<'_>,
    n: i64,
    time_ms: i64,
    key: u64,
    s: &Socket,
    live: &Live,
) -> anyhow::Result<i64> {
    open.execute(params![
        key as i64,
        n,
        time_ms,
        codec::proto_name(s.proto),
        codec::state_name(s),
        s.local.ip().to_string(),
        s.local.port(),
        s.remote.ip().to_string(),
        s.remote.port(),
        s.recv_q,
        s.send_q,
        s.uid,
        s.inode as i64,
        live.attribution,
        live.owners,
    ])
    .map_err(sql)?;
    Ok(tx.last_insert_rowid())
}
