//! The engine over synthetic sources: host totals against the scope, re-scoping from the
//! last sample, sharing, and the engine thread's schedule, errors and control channel.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::analysis::alerts::Alert;
use crate::analysis::testing::{at, snapshot, tcp};

/// Serves the given samples in turn, then errors.
struct Script(VecDeque<Result<Sample, String>>);

impl SnapshotSource for Script {
    fn sample(&mut self) -> Result<Sample, String> {
        self.0
            .pop_front()
            .unwrap_or_else(|| Err("script ended".into()))
    }
}

/// Port 443 (a listener, 3 ESTAB, 4 TIME_WAIT) and port 8080 (a listener, 2 TIME_WAIT),
/// plus 5 client-side TIME_WAIT toward :80; taken at `ms`.
fn host(ms: u64) -> Sample {
    let mut sockets = vec![
        tcp(TcpState::Listen, 443, "0.0.0.0:0"),
        tcp(TcpState::Listen, 8080, "0.0.0.0:0"),
    ];
    for i in 1..=3 {
        sockets.push(tcp(TcpState::Established, 443, &format!("10.0.0.{i}:5000")));
    }
    for i in 1..=4 {
        sockets.push(tcp(TcpState::TimeWait, 443, &format!("10.0.1.{i}:5000")));
    }
    for i in 1..=2 {
        sockets.push(tcp(TcpState::TimeWait, 8080, &format!("10.0.2.{i}:5000")));
    }
    for i in 0..5 {
        sockets.push(tcp(TcpState::TimeWait, 40000 + i, "198.51.100.1:80"));
    }
    Sample::of(snapshot(at(ms), sockets))
}

fn config(filter: &str, alerts: &[&str]) -> EngineConfig {
    EngineConfig {
        filter: Filter::parse(filter).unwrap(),
        filter_text: filter.into(),
        alerts: alerts.iter().map(|a| Alert::parse(a).unwrap()).collect(),
        ..EngineConfig::default()
    }
}

fn engine(filter: &str, alerts: &[&str], samples: Vec<Sample>) -> Engine {
    Engine::new(
        Script(samples.into_iter().map(Ok).collect()),
        config(filter, alerts),
    )
}

#[test]
fn without_a_filter_the_scope_is_the_host() {
    let mut e = engine("", &["time_wait>10"], vec![host(0)]);
    let t = e.tick().unwrap();
    assert_eq!(t.sample, 1);
    assert_eq!(t.totals.sockets, 16);
    assert_eq!(t.totals.state(TcpState::TimeWait), 11);
    assert!(!t.scope.is_filtered());
    assert!(Arc::ptr_eq(&t.snapshot, &t.scope.snapshot));
    assert!(Arc::ptr_eq(&t.host, &t.scope.insight));
    assert_eq!(t.scope.time_wait.total, 11);
    assert_eq!(t.scope.time_wait.split.client_side, 5);
    assert_eq!(t.scope.listeners.len(), 2);
    assert_eq!(t.scope.alerts.len(), 1);
    assert!((t.scope.alerts[0].value - 11.0).abs() < 1e-9);
}

#[test]
fn a_filter_scopes_reports_and_alerts_but_not_the_host_totals() {
    let mut e = engine("port:443", &["time_wait>3", "time_wait>10"], vec![host(0)]);
    let t = e.tick().unwrap();
    assert_eq!(t.totals.state(TcpState::TimeWait), 11, "host-wide");
    assert_eq!(t.host.count(Proto::Tcp, TcpState::TimeWait), 11);
    assert!(t.scope.is_filtered());
    assert_eq!(t.scope.snapshot.sockets.len(), 8);
    assert_eq!(t.scope.time_wait.total, 4);
    assert_eq!(t.scope.time_wait.split.server_side, 4);
    let ports: Vec<u16> = t
        .scope
        .listeners
        .iter()
        .map(|l| l.listener.local.port())
        .collect();
    assert_eq!(ports, [443]);
    let fired: Vec<String> = t.scope.alerts.iter().map(|a| a.alert.to_string()).collect();
    assert_eq!(fired, ["time_wait>3"], "4 TIME_WAIT in scope, not 11");
}

#[test]
fn a_new_filter_re_derives_the_last_sample_without_sampling() {
    // One sample only: a second `tick` would fail.
    let mut e = engine("", &["time_wait>3"], vec![host(0)]);
    assert!(
        e.set_filter(Filter::parse("8080").unwrap(), "8080".into())
            .is_none()
    );
    let first = e.tick().unwrap();
    assert_eq!(
        first.scope.time_wait.total, 2,
        "the filter set before a sample holds"
    );
    let t = e
        .set_filter(Filter::parse("port:443").unwrap(), "port:443".into())
        .unwrap();
    assert_eq!(t.sample, first.sample, "same sample");
    assert!(Arc::ptr_eq(&t.snapshot, &first.snapshot));
    assert_eq!(t.scope.filter_text, "port:443");
    assert_eq!(t.scope.time_wait.total, 4);
    assert_eq!(t.scope.alerts.len(), 1);
    let t = e.set_filter(Filter::default(), String::new()).unwrap();
    assert_eq!(t.scope.time_wait.total, 11);
    assert!(Arc::ptr_eq(&t.host, &t.scope.insight));
    assert_eq!(e.tick().unwrap_err().0, "script ended");
}

#[test]
fn rates_churn_counters_and_settings_follow_the_samples() {
    let mut second = host(2000);
    // Two ESTAB on 443 closed, four new ones.
    second
        .snapshot
        .sockets
        .retain(|s| s.remote.ip().to_string() != "10.0.0.1");
    second
        .snapshot
        .sockets
        .retain(|s| s.remote.ip().to_string() != "10.0.0.2");
    for i in 4..8 {
        second
            .snapshot
            .sockets
            .push(tcp(TcpState::Established, 443, &format!("10.0.0.{i}:5000")));
    }
    second.listen_stats = Some(ListenStats {
        listen_overflows: 10,
        listen_drops: 20,
    });
    let mut first = host(0);
    first.listen_stats = Some(ListenStats {
        listen_overflows: 0,
        listen_drops: 0,
    });
    let settings = KernelSettings::read(std::path::Path::new("/nonexistent"));
    first.settings = Some(settings);
    let mut e = engine("", &[], vec![first, second]);
    let t1 = e.tick().unwrap();
    assert_eq!(t1.host.rate(), None);
    let t2 = e.tick().unwrap();
    let rate = t2.host.rate().unwrap();
    assert!((rate.new_per_sec - 2.0).abs() < 1e-9, "{rate:?}");
    assert_eq!(
        t2.churn,
        Churn {
            opened: 4,
            closed: 2
        }
    );
    let listen = t2.host.listen_rate().unwrap();
    assert!((listen.overflows_per_sec - 5.0).abs() < 1e-9);
    assert_eq!(t2.listen_stats.unwrap().listen_drops, 20);
    assert_eq!(t2.settings, Some(settings), "kept from the first sample");
    assert_eq!(t2.host.history().host().len(), 2);
    assert_eq!(
        t1.host.history().host().len(),
        1,
        "the first tick did not change"
    );
}

#[test]
fn a_released_tick_is_updated_in_place() {
    let mut e = engine("", &[], vec![host(0), host(1000)]);
    let t1 = e.tick().unwrap();
    let first = Arc::as_ptr(&t1.host);
    drop(t1);
    let t2 = e.tick().unwrap();
    assert_eq!(
        Arc::as_ptr(&t2.host),
        first,
        "no copy when nobody holds the last tick"
    );
}

/// Fails, panics, then succeeds, in turn.
struct Flaky(u32);

impl SnapshotSource for Flaky {
    fn sample(&mut self) -> Result<Sample, String> {
        self.0 += 1;
        match self.0 % 3 {
            1 => Err("no netlink".into()),
            2 => panic!("decoder bug"),
            _ => Ok(host(u64::from(self.0) * 1000)),
        }
    }

    fn reset(&mut self) {
        self.0 += 10 * 3;
    }
}

fn describe(event: &EngineEvent) -> String {
    match event {
        EngineEvent::Error(e) => e.clone(),
        EngineEvent::Tick(t) => format!("tick {} tw {}", t.sample, t.scope.time_wait.total),
    }
}

#[test]
fn the_thread_turns_errors_and_panics_into_events_and_goes_on() {
    let (tx, rx) = mpsc::channel();
    let cancel = Cancel::default();
    let e = Engine::new(Flaky(0), EngineConfig::default());
    let handle = spawn(e, Duration::from_millis(1), cancel.clone(), move |ev| {
        tx.send(ev).is_ok()
    })
    .unwrap();
    let got: Vec<String> = (0..3)
        .map(|_| describe(&rx.recv_timeout(Duration::from_secs(10)).unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            "no netlink",
            "sampler panicked: decoder bug",
            "tick 1 tw 11"
        ]
    );
    cancel.cancel();
    handle.join();
}

/// The same sample every time.
struct Steady;

impl SnapshotSource for Steady {
    fn sample(&mut self) -> Result<Sample, String> {
        Ok(host(0))
    }
}

#[test]
fn the_thread_re_scopes_at_once_and_quits_at_once_during_a_long_interval() {
    let (tx, rx) = mpsc::channel();
    let cancel = Cancel::default();
    let e = Engine::new(Steady, EngineConfig::default());
    let handle = spawn(e, Duration::from_secs(3600), cancel.clone(), move |ev| {
        tx.send(ev).is_ok()
    })
    .unwrap();
    let first = describe(&rx.recv_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(first, "tick 1 tw 11");
    let t = Instant::now();
    handle.set_filter(Filter::parse("8080").unwrap(), "8080".into());
    let rescoped = describe(&rx.recv_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(rescoped, "tick 1 tw 2", "same sample, new scope");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "did not wait for the hour"
    );
    let t = Instant::now();
    cancel.cancel();
    handle.join();
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn dropping_the_handle_or_the_consumer_stops_the_thread() {
    let (tx, rx) = mpsc::channel();
    let e = Engine::new(Steady, EngineConfig::default());
    let handle = spawn(e, Duration::from_millis(1), Cancel::default(), move |ev| {
        tx.send(ev).is_ok()
    })
    .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    drop(rx);
    let t = Instant::now();
    while !handle.is_finished() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(handle.is_finished(), "the consumer went away");
}
