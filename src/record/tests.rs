//! The store against synthetic ticks: every recorded moment rebuilds exactly, the size
//! bound holds, foreign and newer files are refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portside_core::engine::{Engine, EngineConfig, Sample, SnapshotSource};

use crate::analysis::testing::{at, snapshot};
use crate::model::{
    Owners, Process, ProcessUsage, Proto, Snapshot, Socket, TcpState, Unattributed,
};
use crate::record::reader::Recording;
use crate::record::schema::{self, StoreError};
use crate::record::writer::{Bounds, Recorder};

struct Nothing;

impl SnapshotSource for Nothing {
    fn sample(&mut self) -> Result<Sample, String> {
        Err("none".into())
    }
}

fn engine() -> Engine {
    Engine::new(Nothing, EngineConfig::default())
}

fn process(pid: u32, name: &str) -> Arc<Process> {
    Arc::new(Process {
        pid,
        start_time: u64::from(pid) * 7,
        name: name.into(),
        cmdline: format!("/usr/bin/{name} --flag"),
        uid: 0,
        user: "root".into(),
    })
}

/// Tick `n` of a scenario: a listener owned by two processes throughout, `n` TIME_WAIT
/// sockets (one more per tick), a connection whose queue changes every tick, a UDP socket
/// gone from tick 3, and a v6 socket owned by "b" alone appearing at tick 2.
fn scene(n: u32) -> Snapshot {
    let mut s = snapshot(at(u64::from(n) * 1000), Vec::new());
    s.processes = vec![process(10, "a"), process(20, "b")];
    s.usage = vec![
        ProcessUsage {
            cpu_percent: Some(n as f32),
            rss_bytes: Some(4096),
        },
        ProcessUsage::default(),
    ];
    s.owner_sets = vec![vec![0, 1].into_boxed_slice(), vec![1].into_boxed_slice()];
    let sock = |proto, state, local: &str, remote: &str, owners, cookie| Socket {
        cookie,
        ..Socket::for_test(proto, state, local, remote, owners)
    };
    s.sockets.push(sock(
        Proto::Tcp,
        TcpState::Listen,
        "0.0.0.0:443",
        "0.0.0.0:0",
        Owners::Known(0),
        1,
    ));
    for i in 0..n {
        let remote = format!("127.0.0.1:{}", 40_000 + i);
        s.sockets.push(sock(
            Proto::Tcp,
            TcpState::TimeWait,
            "127.0.0.1:443",
            &remote,
            Owners::None(Unattributed::NoInode),
            100 + u64::from(i),
        ));
    }
    let mut conn = sock(
        Proto::Tcp,
        TcpState::Established,
        "127.0.0.1:443",
        "127.0.0.1:39999",
        Owners::Inferred(0),
        2,
    );
    conn.recv_q = n * 10;
    s.sockets.push(conn);
    if n < 3 {
        // No cookie: tracked by its addresses.
        s.sockets.push(sock(
            Proto::Udp,
            TcpState::Close,
            "0.0.0.0:53",
            "0.0.0.0:0",
            Owners::Known(1),
            0,
        ));
    }
    if n >= 2 {
        s.sockets.push(sock(
            Proto::Tcp,
            TcpState::Established,
            "[::1]:8080",
            "[::1]:5555",
            Owners::Known(1),
            3,
        ));
    }
    s.coverage = crate::model::Coverage::default();
    for x in &s.sockets {
        s.coverage.add(x.owners);
    }
    s
}

/// What a printed socket says: everything but the owner set's index.
fn described(s: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = s
        .sockets
        .iter()
        .map(|x| {
            let owners: Vec<String> = s
                .owners_of(x)
                .map(|p| format!("{}/{}/{}/{}", p.pid, p.name, p.cmdline, p.user))
                .collect();
            let usage: Vec<String> = match x.owners {
                Owners::Known(n) | Owners::Inferred(n) => s.owner_sets[n as usize]
                    .iter()
                    .map(|&i| format!("{:?}", s.usage_of(i as usize)))
                    .collect(),
                Owners::None(_) => Vec::new(),
            };
            format!(
                "{:?} {:?} {:?} {} {} q{} {} uid{} ino{} cookie{} {} {:?} {:?}",
                x.proto,
                x.family,
                x.state,
                x.local,
                x.remote,
                x.recv_q,
                x.send_q,
                x.uid,
                x.inode,
                x.cookie,
                crate::record::codec::attribution(x.owners),
                owners,
                usage
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_tick_rebuilds_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.portside");
    let bounds = Bounds {
        max_size: None,
        retention: None,
    };
    let mut rec = Recorder::open(&path, bounds, Duration::from_secs(1)).unwrap();
    let mut engine = engine();
    let mut live = Vec::new();
    for n in 0..6 {
        let tick = engine.ingest(Sample::of(scene(n)), Instant::now());
        rec.append(&tick).unwrap();
        live.push(tick);
    }
    let reading = Recording::open(&path).unwrap();
    let (first, last) = reading.extent().unwrap().unwrap();
    assert_eq!((first.tick, last.tick), (1, 6));
    for (n, tick) in live.iter().enumerate() {
        let at = reading
            .tick_at(
                tick.snapshot
                    .taken_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64
                    + 999,
            )
            .unwrap()
            .unwrap();
        assert_eq!(at.tick, i64::try_from(n).unwrap() + 1);
        let back = reading.replay(at).unwrap();
        assert_eq!(
            described(&back.snapshot),
            described(&tick.snapshot),
            "tick {n}"
        );
        assert_eq!(back.snapshot.coverage, tick.snapshot.coverage);
        assert_eq!(back.snapshot.taken_at, tick.snapshot.taken_at);
    }
    // A steady socket keeps one span; the changing queue opens one per tick.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let spans = |cookie: i64| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM spans WHERE cookie = ?1",
            [cookie],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(spans(1), 1);
    assert_eq!(spans(2), 6);
    let udp_end: Option<i64> = conn
        .query_row("SELECT end_tick FROM spans WHERE proto = 'udp'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        udp_end,
        Some(4),
        "the UDP socket vanished at tick 4 (scene 3)"
    );
}

#[test]
fn continuing_a_recording_closes_what_it_could_not_see() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.portside");
    let bounds = Bounds {
        max_size: None,
        retention: None,
    };
    let mut engine = engine();
    let mut rec = Recorder::open(&path, bounds, Duration::from_secs(1)).unwrap();
    rec.append(&engine.ingest(Sample::of(scene(1)), Instant::now()))
        .unwrap();
    drop(rec);
    let mut rec = Recorder::open(&path, bounds, Duration::from_secs(1)).unwrap();
    let tick = engine.ingest(Sample::of(scene(4)), Instant::now());
    rec.append(&tick).unwrap();
    let reading = Recording::open(&path).unwrap();
    let (_, last) = reading.extent().unwrap().unwrap();
    assert_eq!(last.tick, 2);
    assert_eq!(
        described(&reading.replay(last).unwrap().snapshot),
        described(&tick.snapshot)
    );
}

#[test]
fn max_size_holds_with_churn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.portside");
    let max = 256 * 1024;
    let bounds = Bounds {
        max_size: Some(max),
        retention: None,
    };
    let mut rec = Recorder::open(&path, bounds, Duration::from_secs(1)).unwrap();
    let mut engine = engine();
    // 300 new sockets a tick, each gone the next: ~30 KB of spans per tick.
    let mut biggest_tick = 0;
    for n in 0..200u32 {
        let mut s = snapshot(at(u64::from(n) * 1000), Vec::new());
        for i in 0..300u32 {
            let remote = format!("127.0.0.1:{}", 1000 + i);
            let mut x = Socket::for_test(
                Proto::Tcp,
                TcpState::TimeWait,
                "127.0.0.1:443",
                &remote,
                Owners::None(Unattributed::NoInode),
            );
            x.cookie = u64::from(n * 1000 + i + 1);
            s.sockets.push(x);
        }
        let before = std::fs::metadata(&path).unwrap().len();
        rec.append(&engine.ingest(Sample::of(s), Instant::now()))
            .unwrap();
        biggest_tick = biggest_tick.max(
            std::fs::metadata(&path)
                .unwrap()
                .len()
                .saturating_sub(before),
        );
    }
    drop(rec);
    let size = std::fs::metadata(&path).unwrap().len();
    let wal = dir.path().join("r.portside-wal");
    let wal = std::fs::metadata(wal).map_or(0, |m| m.len());
    // Never more than the bound plus one tick's data (a tick ≈ 30-60 KB here).
    assert!(
        size <= max + 128 * 1024,
        "file {size} B over the {max} B bound"
    );
    assert!(wal == 0, "WAL left behind: {wal} B");
    let reading = Recording::open(&path).unwrap();
    let (first, last) = reading.extent().unwrap().unwrap();
    assert_eq!(last.tick, 200, "the newest tick is kept");
    assert!(
        first.tick > 100,
        "the oldest ticks were dropped: first {}",
        first.tick
    );
    assert_eq!(reading.replay(last).unwrap().snapshot.sockets.len(), 300);
    let _ = biggest_tick;
}

#[test]
fn foreign_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "hello, this is not a database at all, not even close\n".repeat(100),
    )
    .unwrap();
    let e = Recording::open(&text).err().unwrap();
    assert!(matches!(e, StoreError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("not a portside recording"), "{e}");
    assert!(
        Recorder::open(
            &text,
            Bounds {
                max_size: None,
                retention: None
            },
            Duration::from_secs(1)
        )
        .is_err()
    );
    assert_eq!(
        std::fs::read_to_string(&text).unwrap().len(),
        5300,
        "a foreign file is left alone"
    );

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = Recorder::open(
        &other,
        Bounds {
            max_size: None,
            retention: None,
        },
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("refusing"), "{e}");
    assert!(Recording::open(&other).is_err());

    let newer = dir.path().join("newer.portside");
    drop(
        Recorder::open(
            &newer,
            Bounds {
                max_size: None,
                retention: None,
            },
            Duration::from_secs(1),
        )
        .unwrap(),
    );
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [(schema::SCHEMA_VERSION + 1).to_string()],
        )
        .unwrap();
    let e = Recording::open(&newer).err().unwrap();
    assert!(matches!(e, StoreError::Newer { .. }), "{e}");
    assert!(e.to_string().contains("newer portside"), "{e}");
}
