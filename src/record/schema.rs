//! The recording's `SQLite` schema, its version, and opening a file as a recording.
//!
//! One table per kind of fact, so `sqlite3` answers questions directly (README "Record and
//! replay"). Times are Unix milliseconds; a tick is one sample, numbered from 1.
//!
//! Sockets are stored as *spans*: one row per stretch of a socket's life during which
//! nothing recorded about it changed (state, queues, owner, uid, inode). A socket that
//! appears opens a span; a change closes it and opens the next; a socket that vanishes
//! closes its last. A steady host writes no socket rows at all.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// The schema this build writes, and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// `meta.format`: what marks a `SQLite` file as a portside recording.
pub const FORMAT: &str = "portside-recording";

const DDL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- One row per sample.
CREATE TABLE ticks (
    tick INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    source TEXT NOT NULL,
    privileged INTEGER NOT NULL,
    ephemeral_lo INTEGER NOT NULL,
    ephemeral_hi INTEGER NOT NULL,
    sockets INTEGER NOT NULL,
    listen_overflows INTEGER,
    listen_drops INTEGER
);
CREATE INDEX ticks_time ON ticks(time_ms);
-- Host-wide sockets per protocol and state (every socket, whatever the filter); non-zero only.
CREATE TABLE totals (
    tick INTEGER NOT NULL,
    proto TEXT NOT NULL,
    state TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tick, proto, state)
) WITHOUT ROWID;
-- The kernel settings, written on the first tick and whenever one changes.
CREATE TABLE settings (
    tick INTEGER PRIMARY KEY,
    tcp_fin_timeout INTEGER,
    tcp_tw_reuse INTEGER,
    tcp_max_tw_buckets INTEGER,
    somaxconn INTEGER,
    ephemeral_lo INTEGER NOT NULL,
    ephemeral_hi INTEGER NOT NULL
);
-- Every alert firing at a tick.
CREATE TABLE alerts (
    tick INTEGER NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    value REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX alerts_tick ON alerts(tick);
-- Processes that owned recorded sockets; a row per (pid, start, name, command line, user).
CREATE TABLE processes (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    name TEXT NOT NULL,
    cmdline TEXT NOT NULL,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL
);
-- CPU and memory of each owning process at each tick.
CREATE TABLE usage (
    tick INTEGER NOT NULL,
    process INTEGER NOT NULL,
    cpu_percent REAL,
    rss_bytes INTEGER,
    PRIMARY KEY (tick, process)
) WITHOUT ROWID;
-- A socket's life in spans: alive at tick T when first_tick <= T and (end_tick IS NULL or
-- end_tick > T). `cookie` is the kernel's socket cookie (identity of a connection).
CREATE TABLE spans (
    id INTEGER PRIMARY KEY,
    cookie INTEGER NOT NULL,
    first_tick INTEGER NOT NULL,
    end_tick INTEGER,
    first_ms INTEGER NOT NULL,
    end_ms INTEGER,
    proto TEXT NOT NULL,
    state TEXT NOT NULL,
    local_addr TEXT NOT NULL,
    local_port INTEGER NOT NULL,
    remote_addr TEXT NOT NULL,
    remote_port INTEGER NOT NULL,
    recv_q INTEGER NOT NULL,
    send_q INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    attribution TEXT NOT NULL,
    owners TEXT NOT NULL
);
CREATE INDEX spans_first ON spans(first_tick);
CREATE INDEX spans_end ON spans(end_tick);
CREATE INDEX spans_port ON spans(local_port);
";

/// Why a file cannot be read or written as a recording: one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: not a portside recording ({why})")]
    Foreign { path: String, why: String },
    #[error(
        "{path}: written by a newer portside (recording schema {found}; this build reads up to {SCHEMA_VERSION}): upgrade portside to read it"
    )]
    Newer { path: String, found: u32 },
    #[error("{path}: {why}")]
    Io { path: String, why: String },
}

impl StoreError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        }
    }
}

/// WAL journal: a writer killed at any point leaves every committed tick readable, and
/// readers see the file up to its last committed tick while it is being written.
fn pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

/// Opens `path` for recording: creates it with the schema, or checks that an existing
/// file is a recording this build can append to.
pub fn open_for_writing(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| StoreError::io(path, e))?;
    let has_meta = table_exists(&conn, path)?;
    if has_meta {
        check(&conn, path)?;
        pragmas(&conn).map_err(|e| StoreError::io(path, e))?;
        return Ok(conn);
    }
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| foreign(path, &e))?;
    if tables > 0 {
        return Err(StoreError::Foreign {
            path: path.display().to_string(),
            why: "a SQLite database without portside's tables; refusing to write into it".into(),
        });
    }
    pragmas(&conn).map_err(|e| StoreError::io(path, e))?;
    let init = || -> rusqlite::Result<()> {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(DDL)?;
        let mut put = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
        put.execute(["format", FORMAT])?;
        put.execute(["schema_version", &SCHEMA_VERSION.to_string()])?;
        put.execute(["written_by", crate::VERSION])?;
        drop(put);
        tx.commit()
    };
    init().map_err(|e| StoreError::io(path, e))?;
    Ok(conn)
}

/// Opens an existing recording for reading (a file being recorded reads up to its last
/// committed tick).
pub fn open_for_reading(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::io(path, "no such file"));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .or_else(|_| {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        })
        .map_err(|e| StoreError::io(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| StoreError::io(path, e))?;
    if !table_exists(&conn, path)? {
        return Err(StoreError::Foreign {
            path: path.display().to_string(),
            why: "no portside tables".into(),
        });
    }
    check(&conn, path)?;
    Ok(conn)
}

fn foreign(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError::Foreign {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

fn table_exists(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(|e| foreign(path, &e))
}

/// The file's format marker and schema version.
fn check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let get = |key: &str| -> Result<Option<String>, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| foreign(path, &e))
    };
    if get("format")?.as_deref() != Some(FORMAT) {
        return Err(StoreError::Foreign {
            path: path.display().to_string(),
            why: "no portside format marker".into(),
        });
    }
    let version = get("schema_version")?.unwrap_or_default();
    let found: u32 = version.parse().map_err(|_| StoreError::Foreign {
        path: path.display().to_string(),
        why: format!("bad schema version '{version}'"),
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.display().to_string(),
            found,
        });
    }
    Ok(())
}
