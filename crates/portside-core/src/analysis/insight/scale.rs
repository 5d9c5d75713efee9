//! Scale tests: bounded memory over many ticks and distinct ports, and the per-tick cost
//! at 100k sockets (`cargo test --release -- --ignored tick_cost --nocapture`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::analysis::alerts::{configure, evaluate};
use crate::analysis::listeners::listener_rows;
use crate::analysis::testing::{at, snapshot, tcp};
use crate::analysis::timewait::TimeWaitReport;
use crate::model::{Coverage, Owners, Process, Snapshot, Socket};

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

fn sock(state: TcpState, local: SocketAddr, remote: SocketAddr, owners: Owners) -> Socket {
    let mut s = tcp(state, 0, "0.0.0.0:0");
    s.local = local;
    s.remote = remote;
    s.owners = owners;
    s.inode = u64::from(matches!(owners, Owners::Known(_)));
    s
}

/// `s` with the kernel cookie `cookie` (a TIME_WAIT keeps its connection's).
fn cookie(mut s: Socket, kind: u64, i: u64) -> Socket {
    s.cookie = kind << 40 | i;
    s
}

/// Byte `k` of `i`, for spreading identities over addresses.
fn byte(i: u64, k: u32) -> u8 {
    (i >> (8 * k)) as u8
}

/// A busy host at tick `t`: ~100k sockets. 40k inbound ESTABLISHED on :443 and 20k
/// outbound to a database, each window sliding by 5% per tick; the connections that left
/// the windows stay as TIME_WAIT (10k server-side, 20k client-side, same 4-tuples);
/// 3k SYN_RECV, 2k CLOSE_WAIT, 100 TCP listeners, 5k UDP sockets.
fn busy_host(t: u64) -> Snapshot {
    let nginx = Owners::Known(0);
    let app = Owners::Known(1);
    let no_inode = Owners::None(crate::model::Unattributed::NoInode);
    let local = |port| v4(10, 0, 0, 1, port);
    let any = |port| v4(0, 0, 0, 0, port);
    let client = |i: u64| {
        v4(
            11,
            byte(i, 2),
            byte(i, 1),
            byte(i, 0),
            1024 + (i % 60000) as u16,
        )
    };
    let outbound = |j: u64| {
        let remote = v4(10, 5, byte(j / 28232, 0), 1, 5432);
        (local(32768 + (j % 28232) as u16), remote)
    };
    let mut s = Vec::with_capacity(101_000);
    for p in [22, 80, 443, 8080].into_iter().chain(10_000..10_096) {
        let mut l = cookie(
            sock(TcpState::Listen, any(p), any(0), nginx),
            1,
            u64::from(p),
        );
        l.send_q = 511;
        l.recv_q = if p == 443 { 480 } else { 0 };
        s.push(l);
    }
    let (srv, cli) = (t * 2000, t * 1000);
    for i in srv..srv + 40_000 {
        let est = sock(TcpState::Established, local(443), client(i), nginx);
        s.push(cookie(est, 2, i));
    }
    for i in srv.saturating_sub(10_000)..srv {
        let tw = sock(TcpState::TimeWait, local(443), client(i), no_inode);
        s.push(cookie(tw, 2, i));
    }
    for j in cli..cli + 20_000 {
        let (l, r) = outbound(j);
        s.push(cookie(sock(TcpState::Established, l, r, app), 3, j));
    }
    for j in cli.saturating_sub(20_000)..cli {
        let (l, r) = outbound(j);
        s.push(cookie(sock(TcpState::TimeWait, l, r, no_inode), 3, j));
    }
    for i in 0..3000 {
        let syn = sock(TcpState::SynRecv, local(443), client(1 << 30 | i), no_inode);
        s.push(cookie(syn, 4, i));
    }
    for i in 0..2000 {
        let cw = sock(TcpState::CloseWait, local(8080), client(1 << 31 | i), app);
        s.push(cookie(cw, 5, i));
    }
    for p in 0..5000u16 {
        let mut u = sock(TcpState::Close, any(20_000 + p), any(0), app);
        u.proto = Proto::Udp;
        s.push(cookie(u, 6, u64::from(p)));
    }
    let mut snap = snapshot(at(t * 1000), s);
    let process = |pid, name: &str| {
        Arc::new(Process {
            pid,
            start_time: u64::from(pid) * 10,
            name: name.into(),
            cmdline: name.into(),
            uid: 0,
            user: "root".into(),
        })
    };
    snap.processes = vec![process(100, "nginx"), process(200, "app")];
    snap.owner_sets = vec![Box::new([0]), Box::new([1])];
    let mut coverage = Coverage::default();
    for sock in &snap.sockets {
        coverage.add(sock.owners);
    }
    snap.coverage = coverage;
    snap
}

#[test]
fn tracked_ports_stay_bounded_with_many_distinct_ports() {
    let config = InsightConfig {
        window: Duration::from_secs(120),
        max_ports: 64,
        max_listeners: 16,
        ..InsightConfig::default()
    };
    let mut insight = Insight::new(config);
    let mut ports_seen = std::collections::HashSet::new();
    // 400 ticks, each with 300 fresh non-listening ports of 2-4 sockets (all candidates)
    // and 40 fresh listeners: 136,000 distinct ports over the run.
    for t in 0..400u64 {
        let mut sockets = Vec::new();
        for k in 0..340u64 {
            let port = (1000 + (t * 340 + k) % 60_000) as u16;
            ports_seen.insert(port);
            if k < 40 {
                sockets.push(tcp(TcpState::Listen, port, "0.0.0.0:0"));
            } else {
                for c in 0..2 + k % 3 {
                    sockets.push(tcp(
                        TcpState::Established,
                        port,
                        &format!("10.0.{c}.{}:9", k % 250),
                    ));
                }
            }
        }
        insight.update(&mut snapshot(at(t * 1000), sockets));
        let history = insight.history();
        assert!(
            history.ports().count() <= 64,
            "tick {t}: {}",
            history.ports().count()
        );
        assert!(
            history
                .ports()
                .all(|(_, h)| h.points().len() <= history.capacity())
        );
        assert!(history.host().len() <= history.capacity());
    }
    let history = insight.history();
    assert!(ports_seen.len() > 50_000);
    assert_eq!(
        history.host().len(),
        history.capacity(),
        "the host ring is full and wraps"
    );
    let span = history
        .host()
        .last()
        .unwrap()
        .at
        .duration_since(history.host().iter().next().unwrap().at);
    assert!(
        span.unwrap() >= Duration::from_secs(119),
        "the rings cover the window"
    );
    assert!(
        insight.heap_bytes() < 20 << 20,
        "{} bytes",
        insight.heap_bytes()
    );
}

#[test]
fn default_budget_is_under_20_mb() {
    let insight = Insight::default();
    let max = insight.history().max_heap_bytes();
    assert!(max < 20 << 20, "{max}");
    assert!(insight.history().capacity() >= 600);
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn tick_cost_at_100k_sockets() {
    // From tick 20 on, every window is full: ~100k sockets, 5% churn per tick.
    let ticks = 40u64;
    let snaps: Vec<Snapshot> = (0..=ticks).map(busy_host).collect();
    assert!(snaps[20].sockets.len() > 100_000);
    let mut insight = Insight::default();
    let alerts = configure::<&str>(&[]).unwrap();
    let (mut update, mut alert, mut report) = (vec![], vec![], vec![]);
    let mut fired = Vec::new();
    let mut heap_after_warmup = 0;
    for (t, snap) in snaps.iter().enumerate() {
        let mut snap = snap.clone();
        update.push(timed(|| insight.update(&mut snap)));
        if t == 21 {
            heap_after_warmup = insight.connections().heap_bytes();
        }
        alert.push(timed(|| fired = evaluate(&alerts, &insight)));
        let mut reports = None;
        report.push(timed(|| {
            reports = Some((
                TimeWaitReport::build(&insight, &snap, 10),
                listener_rows(&insight, &snap, 5),
            ));
        }));
        let (tw, rows) = reports.unwrap();
        assert_eq!(rows.len(), 100);
        if snap.taken_at >= at(20_000) {
            assert_eq!(
                (tw.split.server_side, tw.split.client_side),
                (10_000, 20_000)
            );
            assert_eq!(
                snap.coverage.no_inode, 0,
                "every TIME_WAIT/SYN_RECV attributed"
            );
        }
    }
    let stats = |name: &str, v: &[(Duration, Duration)]| {
        let warm = &v[21..];
        let n = warm.len() as u32;
        let wall = warm.iter().map(|t| t.0).sum::<Duration>() / n;
        let cpu = warm.iter().map(|t| t.1).sum::<Duration>() / n;
        let max = warm.iter().map(|t| t.1).max().unwrap_or_default();
        println!(
            "{name:<28} cpu mean {:>6.2} ms  max {:>6.2} ms   (wall mean {:>6.2} ms)",
            ms(cpu),
            ms(max),
            ms(wall)
        );
        cpu
    };
    println!(
        "{} sockets per snapshot, {} steady ticks",
        snaps[20].sockets.len(),
        ticks - 20
    );
    let u = stats("Insight::update (+ tracker)", &update);
    stats("alerts::evaluate", &alert);
    stats("TimeWait + listener reports", &report);
    println!(
        "Insight heap: {:.1} MB (history bound {:.1} MB; connection tracker {:.1} MB, {} sockets)",
        insight.heap_bytes() as f64 / 1e6,
        insight.history().max_heap_bytes() as f64 / 1e6,
        insight.connections().heap_bytes() as f64 / 1e6,
        insight.connections().len()
    );
    // Steady ticks reuse the tracker's buffers: nothing grew after the windows filled
    // (the history rings keep filling, so only the tracker is compared).
    assert_eq!(insight.connections().heap_bytes(), heap_after_warmup);
    for f in &fired {
        println!("alert [{}] {}", f.severity.name(), f.message);
    }
    if !cfg!(debug_assertions) {
        assert!(u < Duration::from_millis(30), "update too slow: {u:?}");
    }
}

/// Run `f`, returning its wall time and this thread's CPU time (the machine is shared: CPU
/// time is the figure that does not include waiting for a core).
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let (wall, before) = (Instant::now(), cpu());
    f();
    (wall.elapsed(), cpu().saturating_sub(before))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
