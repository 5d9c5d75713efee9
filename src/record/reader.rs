//! Reads a recording back: its span of time, and the state at any tick rebuilt as the
//! snapshot, alerts and kernel settings the live engine had then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::analysis::alerts::{Alert, FiredAlert, Severity};
use crate::model::{Coverage, Process, ProcessUsage, Snapshot, Socket, SourceKind};
use crate::record::codec;
use crate::record::schema::{self, StoreError};
use crate::source::sysctl::{KernelSettings, ListenStats};

/// One recorded tick: its number and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickRef {
    pub tick: i64,
    pub time_ms: i64,
}

impl TickRef {
    pub fn time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.time_ms).unwrap_or(0))
    }
}

/// The state at one tick, as the live engine had it.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub snapshot: Snapshot,
    pub alerts: Vec<FiredAlert>,
    pub settings: Option<KernelSettings>,
    pub listen_stats: Option<ListenStats>,
}

/// A recording open for reading.
pub struct Recording {
    conn: Connection,
    path: PathBuf,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Recording, StoreError> {
        Ok(Recording {
            conn: schema::open_for_reading(path)?,
            path: path.to_path_buf(),
        })
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            why: format!("unreadable recording: {e}"),
        }
    }

    /// The sampling interval of the latest recording session, in ms (1000 when unknown).
    pub fn interval_ms(&self) -> Result<i64, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'interval_ms'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(1000))
    }

    /// The first and last complete ticks; `None` for a recording without any.
    pub fn extent(&self) -> Result<Option<(TickRef, TickRef)>, StoreError> {
        let one = |sql: &str| {
            self.conn
                .query_row(sql, [], |r| {
                    Ok(TickRef {
                        tick: r.get(0)?,
                        time_ms: r.get(1)?,
                    })
                })
                .optional()
                .map_err(|e| self.corrupt(e))
        };
        let first = one("SELECT tick, time_ms FROM ticks ORDER BY tick LIMIT 1")?;
        let last = one("SELECT tick, time_ms FROM ticks ORDER BY tick DESC LIMIT 1")?;
        Ok(first.zip(last))
    }

    /// The last tick taken at or before `time_ms`.
    pub fn tick_at(&self, time_ms: i64) -> Result<Option<TickRef>, StoreError> {
        self.conn
            .query_row(
                "SELECT tick, time_ms FROM ticks WHERE time_ms <= ?1 ORDER BY time_ms DESC, tick DESC LIMIT 1",
                [time_ms],
                |r| {
                    Ok(TickRef {
                        tick: r.get(0)?,
                        time_ms: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    /// Rebuilds the state at `at`: the sockets alive then, their owners and the
    /// processes' usage, the firing alerts, the kernel settings in force.
    pub fn replay(&self, at: TickRef) -> Result<Replayed, StoreError> {
        let bad = |e: rusqlite::Error| self.corrupt(e);
        let (duration_us, source, privileged, lo, hi, overflows, drops): (
            i64,
            String,
            bool,
            u16,
            u16,
            Option<i64>,
            Option<i64>,
        ) = self
            .conn
            .query_row(
                "SELECT duration_us, source, privileged, ephemeral_lo, ephemeral_hi, listen_overflows, listen_drops FROM ticks WHERE tick = ?1",
                [at.tick],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .map_err(bad)?;
        let mut snapshot = Snapshot {
            taken_at: at.time(),
            duration: Duration::from_micros(u64::try_from(duration_us).unwrap_or(0)),
            source: if source == SourceKind::ProcNet.name() {
                SourceKind::ProcNet
            } else {
                SourceKind::SockDiag
            },
            sockets: Vec::new(),
            processes: Vec::new(),
            usage: Vec::new(),
            owner_sets: Vec::new(),
            coverage: Coverage::default(),
            privileged,
            ephemeral_range: (lo, hi),
            destroyed: None,
        };
        self.sockets(at.tick, &mut snapshot)?;
        let listen_stats = overflows.zip(drops).map(|(o, d)| ListenStats {
            listen_overflows: o as u64,
            listen_drops: d as u64,
        });
        Ok(Replayed {
            alerts: self.alerts(at.tick)?,
            settings: self.settings(at.tick)?,
            listen_stats,
            snapshot,
        })
    }

    fn sockets(&self, tick: i64, snapshot: &mut Snapshot) -> Result<(), StoreError> {
        let bad = |e: rusqlite::Error| self.corrupt(e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT proto, state, local_addr, local_port, remote_addr, remote_port, recv_q, send_q, uid, inode, cookie, attribution, owners
                 FROM spans WHERE first_tick <= ?1 AND (end_tick IS NULL OR end_tick > ?1)",
            )
            .map_err(bad)?;
        // Owner sets interned by their `owners` text; processes by row id.
        let mut sets: HashMap<String, u32> = HashMap::new();
        let mut procs: HashMap<i64, u32> = HashMap::new();
        let mut rows = stmt.query([tick]).map_err(bad)?;
        while let Some(r) = rows.next().map_err(bad)? {
            let proto: String = r.get(0).map_err(bad)?;
            let state: String = r.get(1).map_err(bad)?;
            let local: String = r.get(2).map_err(bad)?;
            let remote: String = r.get(4).map_err(bad)?;
            let attribution: String = r.get(11).map_err(bad)?;
            let owners: String = r.get(12).map_err(bad)?;
            let broken = || self.corrupt(format!("bad socket row ({proto} {state} {local})"));
            let proto = codec::proto_of(&proto).ok_or_else(broken)?;
            let state = codec::state_of(proto, &state).ok_or_else(broken)?;
            let local = codec::addr(&local, r.get(3).map_err(bad)?).ok_or_else(broken)?;
            let remote = codec::addr(&remote, r.get(5).map_err(bad)?).ok_or_else(broken)?;
            let set = if owners.is_empty() {
                None
            } else if let Some(&n) = sets.get(&owners) {
                Some(n)
            } else {
                let mut members = Vec::new();
                for id in owners.split(',') {
                    let id: i64 = id.parse().map_err(|_| broken())?;
                    let next = procs.len() as u32;
                    members.push(*procs.entry(id).or_insert(next));
                }
                let n = snapshot.owner_sets.len() as u32;
                snapshot.owner_sets.push(members.into_boxed_slice());
                sets.insert(owners, n);
                Some(n)
            };
            let owners = codec::owners_of(&attribution, set).ok_or_else(broken)?;
            let inode: i64 = r.get(9).map_err(bad)?;
            let cookie: i64 = r.get(10).map_err(bad)?;
            let cookie = cookie as u64;
            snapshot.sockets.push(Socket {
                proto,
                family: codec::family_of(local.ip()),
                state,
                local,
                remote,
                recv_q: r.get(6).map_err(bad)?,
                send_q: r.get(7).map_err(bad)?,
                uid: r.get(8).map_err(bad)?,
                inode: inode as u64,
                // A synthetic key (no cookie when recorded) is not a cookie.
                cookie: if cookie >> 63 == 1 { 0 } else { cookie },
                owners,
            });
            snapshot.coverage.add(owners);
        }
        // The processes, in the order the owner sets index them, with their usage.
        let mut order: Vec<(u32, i64)> = procs.into_iter().map(|(id, i)| (i, id)).collect();
        order.sort_unstable();
        let mut get = self
            .conn
            .prepare_cached(
                "SELECT p.pid, p.start_time, p.name, p.cmdline, p.uid, p.user, u.cpu_percent, u.rss_bytes
                 FROM processes p LEFT JOIN usage u ON u.process = p.id AND u.tick = ?2 WHERE p.id = ?1",
            )
            .map_err(bad)?;
        for (_, id) in order {
            let (process, usage) = get
                .query_row(params![id, tick], |r| {
                    let start: i64 = r.get(1)?;
                    let cpu: Option<f64> = r.get(6)?;
                    let rss: Option<i64> = r.get(7)?;
                    Ok((
                        Process {
                            pid: r.get(0)?,
                            start_time: start as u64,
                            name: r.get(2)?,
                            cmdline: r.get(3)?,
                            uid: r.get(4)?,
                            user: r.get(5)?,
                        },
                        ProcessUsage {
                            cpu_percent: cpu.map(|c| c as f32),
                            rss_bytes: rss.map(|b| b as u64),
                        },
                    ))
                })
                .map_err(bad)?;
            snapshot.processes.push(Arc::new(process));
            snapshot.usage.push(usage);
        }
        Ok(())
    }

    fn alerts(&self, tick: i64) -> Result<Vec<FiredAlert>, StoreError> {
        let bad = |e: rusqlite::Error| self.corrupt(e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT rule, severity, value, message FROM alerts WHERE tick = ?1 ORDER BY rowid",
            )
            .map_err(bad)?;
        let rows = stmt
            .query_map([tick], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(bad)?;
        let mut fired = Vec::new();
        for row in rows {
            let (rule, severity, value, message) = row.map_err(bad)?;
            let alert = Alert::parse(&rule).map_err(|e| self.corrupt(e))?;
            let severity = match severity.as_str() {
                "critical" => Severity::Critical,
                "warning" => Severity::Warning,
                other => return Err(self.corrupt(format!("bad alert severity '{other}'"))),
            };
            fired.push(FiredAlert {
                severity,
                alert,
                value,
                message,
            });
        }
        Ok(fired)
    }

    fn settings(&self, tick: i64) -> Result<Option<KernelSettings>, StoreError> {
        self.conn
            .query_row(
                "SELECT tcp_fin_timeout, tcp_tw_reuse, tcp_max_tw_buckets, somaxconn, ephemeral_lo, ephemeral_hi
                 FROM settings WHERE tick <= ?1 ORDER BY tick DESC LIMIT 1",
                [tick],
                |r| {
                    let buckets: Option<i64> = r.get(2)?;
                    Ok(KernelSettings {
                        tcp_fin_timeout: r.get(0)?,
                        tcp_tw_reuse: r.get(1)?,
                        tcp_max_tw_buckets: buckets.map(|b| b as u64),
                        somaxconn: r.get(3)?,
                        ephemeral_range: (r.get(4)?, r.get(5)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }
}
