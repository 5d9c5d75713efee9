//! Cost of grouping 100k sockets, in the same run: the grouper before outbound groups
//! (`old_grouper.rs`, a copy of main's), the raw per-local-port grouping, and grouping by
//! service (inbound per listening port, outbound per remote service and program).
//!
//! Run: `cargo run --release -p portside-core --example grouping_bench [SOCKETS] [ROUNDS]`;
//! instruction counts: `valgrind --tool=callgrind target/release/examples/grouping_bench
//! 100000 1 MODE` for MODE in none, old, raw, service (subtract `none`).
//! The snapshot is synthetic (a web host: 5 listeners, inbound connections, clients of 4
//! services from 6 programs, client and server TIME_WAIT), so the figures isolate the
//! grouping from the kernel.

mod old_grouper;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portside_core::analysis::filter::Filter;
use portside_core::analysis::group::{Grouper, Grouping, PortGroup};
use portside_core::model::{Family, Owners, Process, Proto, Snapshot, Socket, TcpState};

fn socket(state: TcpState, local: SocketAddr, remote: SocketAddr, owners: Owners) -> Socket {
    Socket {
        proto: Proto::Tcp,
        family: Family::V4,
        state,
        local,
        remote,
        recv_q: 0,
        send_q: 0,
        uid: 0,
        inode: 1,
        cookie: 0,
        owners,
    }
}

fn snapshot(n: usize) -> Snapshot {
    let mut s = Snapshot::empty();
    let names = ["nginx", "api", "api", "worker", "cron", "curl", "psql"];
    s.processes = (0u32..)
        .zip(names)
        .map(|(i, name)| {
            Arc::new(Process {
                pid: 100 + i,
                start_time: 1,
                name: name.into(),
                cmdline: name.into(),
                uid: 0,
                user: "root".into(),
            })
        })
        .collect();
    s.owner_sets = (0..7u32).map(|i| vec![i].into()).collect();
    let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let listen_ports = [80, 443, 8080, 9090, 22];
    for p in listen_ports {
        s.sockets.push(socket(
            TcpState::Listen,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            Owners::Known(0),
        ));
    }
    let services = [5432, 6379, 443, 11211];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while s.sockets.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let peer = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (x as u32 & 0xffff)));
        let eph = 32768 + (x >> 20) as u16 % 28000;
        let i = s.sockets.len();
        if i % 10 < 4 {
            // Inbound: a client of one of our listeners.
            let state = if i.is_multiple_of(7) {
                TcpState::TimeWait
            } else {
                TcpState::Established
            };
            s.sockets.push(socket(
                state,
                SocketAddr::new(me, listen_ports[i % 5]),
                SocketAddr::new(peer, eph),
                Owners::Known(0),
            ));
        } else {
            // Outbound: one of 6 programs to one of 4 services, a third in TIME_WAIT.
            let (state, owners) = if i.is_multiple_of(3) {
                (TcpState::TimeWait, Owners::Inferred(1 + (i % 6) as u32))
            } else {
                (TcpState::Established, Owners::Known(1 + (i % 6) as u32))
            };
            s.sockets.push(socket(
                state,
                SocketAddr::new(me, eph),
                SocketAddr::new(peer, services[i % 4]),
                owners,
            ));
        }
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn time(snap: &Snapshot, grouping: Grouping, rounds: usize) -> (Duration, usize) {
    let (mut grouper, mut out) = (Grouper::new(), Vec::<PortGroup>::new());
    let filter = Filter::default();
    grouper.group_into(snap, &filter, grouping, &mut out); // warm the tables
    let times = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            grouper.group_into(snap, &filter, grouping, &mut out);
            t.elapsed()
        })
        .collect();
    (median(times), out.len())
}

fn time_old(snap: &Snapshot, rounds: usize) -> (Duration, usize) {
    let (mut grouper, mut out) = (old_grouper::Grouper::new(), Vec::new());
    let filter = Filter::default();
    grouper.group_into(snap, &filter, &mut out);
    let times = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            grouper.group_into(snap, &filter, &mut out);
            t.elapsed()
        })
        .collect();
    (median(times), out.len())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(51);
    let snap = snapshot(n);
    // `only MODE` (old, raw, service, none) runs one grouper once: for instruction counts
    // under `valgrind --tool=callgrind`, with `none` as the baseline (the snapshot build).
    if let Some(mode) = args.next() {
        let filter = Filter::default();
        let mut out = Vec::new();
        match mode.as_str() {
            "old" => old_grouper::Grouper::new().group_into(&snap, &filter, &mut Vec::new()),
            "raw" => Grouper::new().group_into(&snap, &filter, Grouping::LocalPorts, &mut out),
            "service" => Grouper::new().group_into(&snap, &filter, Grouping::Services, &mut out),
            _ => {}
        }
        println!("{mode}: {} groups", out.len());
        return;
    }
    let (old, old_groups) = time_old(&snap, rounds);
    let (raw, raw_groups) = time(&snap, Grouping::LocalPorts, rounds);
    let (services, service_groups) = time(&snap, Grouping::Services, rounds);
    println!("sockets {n}, rounds {rounds} (median)");
    println!("before (main)    {old:>10.2?}  {old_groups} groups");
    println!("raw local ports  {raw:>10.2?}  {raw_groups} groups");
    println!("by service       {services:>10.2?}  {service_groups} groups");
    println!(
        "ratio by service / before: {:.2}, raw / before: {:.2}",
        services.as_secs_f64() / old.as_secs_f64(),
        raw.as_secs_f64() / old.as_secs_f64()
    );
}
