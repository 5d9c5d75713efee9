//! Benchmark of the socket-table readers on a table of N loopback TCP sockets: `sock_diag` with
//! the hand decoder (`SockDiag::dump`), `sock_diag` with the crate's parser, the bare netlink
//! transfer, `/proc/net/tcp`, and `ss -tan`. Counts heap allocations per socket too.
//!
//! Run it in a private network namespace, so the table holds only its own sockets:
//! `unshare -n sh -c 'ip link set lo up && target/release/examples/sockdiag_bench 5000 90000'`
//! (args: established pairs, `TIME_WAIT` sockets). Bounded: at most 9000 pairs, 120000 `TIME_WAIT`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{AF_INET, IPPROTO_TCP, SockDiagMessage};
use portside_core::model::{Family, Owners, Proto, Socket, TcpState, Unattributed};
use portside_core::source::procnet;
use portside_core::source::sockdiag::{self, SockDiag};

/// Counts allocations, to show what each decoder allocates per socket.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 15;
const LISTENERS: usize = 8;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pairs = args.first().copied().unwrap_or(5000).min(9000);
    let timewait = args.get(1).copied().unwrap_or(0).min(120_000);

    let (held, made_tw) = build_table(pairs, timewait);
    std::thread::sleep(Duration::from_millis(300));

    let mut diag = SockDiag::open().expect("open sock_diag");
    let mut out = Vec::new();
    diag.dump(Proto::Tcp, Family::V4, sockdiag::TABLE_STATES, &mut out)
        .expect("dump");
    let n = out.len();
    let mut per_state = [0usize; TcpState::COUNT];
    for s in &out {
        per_state[s.state.index()] += 1;
    }
    println!("pairs {pairs}, time-wait made {made_tw}; sockets in table: {n}");
    for st in TcpState::ALL {
        if per_state[st.index()] > 0 {
            println!("  {:<11} {}", st.ss_name(), per_state[st.index()]);
        }
    }

    let hand = measure(|| {
        out.clear();
        diag.dump(Proto::Tcp, Family::V4, sockdiag::TABLE_STATES, &mut out)
            .expect("dump");
        out.len()
    });
    report("sock_diag, hand decoder (SockDiag::dump)", hand, n);

    let mut raw = RawDump::new();
    let transfer = measure(|| raw.run(|_, _| {}));
    report("sock_diag, transfer only (recv, no decode)", transfer, n);

    let mut hand_out: Vec<Socket> = Vec::with_capacity(n);
    let hand_raw = measure(|| {
        hand_out.clear();
        raw.run(|buf, _| {
            sockdiag::decode_messages(buf, Proto::Tcp, &mut hand_out).expect("decode");
        });
        hand_out.len()
    });
    report("sock_diag, hand decoder on the bare loop", hand_raw, n);

    let mut crate_out: Vec<Socket> = Vec::with_capacity(n);
    let crate_parse = measure(|| {
        crate_out.clear();
        raw.run(|buf, _| crate_decode(buf, &mut crate_out));
        crate_out.len()
    });
    report("sock_diag, crate parser", crate_parse, n);

    let hand2 = measure(|| {
        out.clear();
        diag.dump(Proto::Tcp, Family::V4, sockdiag::TABLE_STATES, &mut out)
            .expect("dump");
        out.len()
    });
    report("sock_diag, hand decoder (SockDiag::dump), again", hand2, n);

    let mut proc_out = Vec::new();
    let proc = measure(|| {
        proc_out.clear();
        procnet::read_table(Path::new("/proc"), Proto::Tcp, Family::V4, &mut proc_out)
            .expect("proc");
        proc_out.len()
    });
    report("/proc/net/tcp (procnet::read_table)", proc, n);

    let ss = measure(|| {
        let st = std::process::Command::new("ss")
            .args(["-tan"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run ss");
        assert!(st.success());
        n
    });
    report("`ss -tan` (process, output to /dev/null)", ss, n);
    drop(held);
}

/// Open `pairs` established loopback pairs and make up to `timewait` `TIME_WAIT` sockets.
fn build_table(pairs: usize, timewait: usize) -> ((Vec<TcpListener>, Vec<TcpStream>), usize) {
    let listeners: Vec<TcpListener> = (0..LISTENERS)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind listener"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect();
    let mut held = Vec::with_capacity(pairs * 2);
    for i in 0..pairs {
        let client = TcpStream::connect(addrs[i % LISTENERS]).expect("connect");
        let (server, _) = listeners[i % LISTENERS].accept().expect("accept");
        held.push(client);
        held.push(server);
    }
    let mut made_tw = 0;
    for i in 0..timewait {
        match TcpStream::connect(addrs[i % LISTENERS]) {
            Ok(client) => {
                let (server, _) = listeners[i % LISTENERS].accept().expect("accept");
                drop(client); // active close: the client side ends in TIME_WAIT
                drop(server);
                made_tw += 1;
            }
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable => break,
            Err(e) => panic!("connect: {e}"),
        }
    }
    ((listeners, held), made_tw)
}

/// CPU time of this thread plus waited-for children (the `ss` runs), less noisy than wall
/// time on a shared machine.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN and a pointer to an rusage we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32) + tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Medians of `ROUNDS` runs of `f`: wall time, CPU time, allocations.
fn measure(mut f: impl FnMut() -> usize) -> (Duration, Duration, u64) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut cpu = Vec::with_capacity(ROUNDS);
    let mut allocs = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let (t0, c0) = (Instant::now(), cpu_now());
        std::hint::black_box(f());
        times.push(t0.elapsed());
        cpu.push(cpu_now().saturating_sub(c0));
        allocs.push(ALLOCS.load(Ordering::Relaxed) - a0);
    }
    times.sort();
    cpu.sort();
    allocs.sort_unstable();
    (times[ROUNDS / 2], cpu[ROUNDS / 2], allocs[ROUNDS / 2])
}

fn report(what: &str, (t, cpu, allocs): (Duration, Duration, u64), n: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<46} wall {:>7.2} ms, cpu {:>7.2} ms ({:>6.1} ms per 100k)  allocs {allocs} ({:.2}/socket)",
        ms(t),
        ms(cpu),
        ms(cpu) * 100_000.0 / n.max(1) as f64,
        allocs as f64 / n.max(1) as f64
    );
}

/// A bare dump loop over `netlink-sys`, handing each datagram to a callback.
struct RawDump {
    socket: netlink_sys::Socket,
    buf: Vec<u8>,
}

impl RawDump {
    fn new() -> RawDump {
        let mut socket =
            netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_SOCK_DIAG).expect("socket");
        socket.bind_auto().expect("bind");
        socket
            .connect(&netlink_sys::SocketAddr::new(0, 0))
            .expect("connect");
        RawDump {
            socket,
            buf: vec![0; 64 * 1024],
        }
    }

    fn run(&mut self, mut each: impl FnMut(&[u8], &mut bool)) -> usize {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut msg = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: AF_INET,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::from_bits_retain(sockdiag::TABLE_STATES),
                socket_id: SocketId::new_v4(),
            })
            .into(),
        );
        msg.finalize();
        let mut req = vec![0; msg.buffer_len()];
        msg.serialize(&mut req);
        self.socket.send(&req, 0).expect("send");
        let mut total = 0;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0).expect("recv");
            total += n;
            let mut stop = false;
            each(&self.buf[..n], &mut stop);
            if done_in(&self.buf[..n]) {
                return total;
            }
        }
    }
}

/// Whether a datagram holds `NLMSG_DONE` (header walk only).
fn done_in(mut buf: &[u8]) -> bool {
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if u16::from_ne_bytes([buf[4], buf[5]]) == 3 {
            return true;
        }
        if len < 16 {
            return false;
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
    false
}

/// Decode a datagram with `NetlinkMessage::<SockDiagMessage>::deserialize`, as the crate intends.
fn crate_decode(mut buf: &[u8], out: &mut Vec<Socket>) {
    while !buf.is_empty() {
        let msg = NetlinkMessage::<SockDiagMessage>::deserialize(buf).expect("crate parse");
        let len = msg.header.length as usize;
        if let NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) = msg.payload {
            let h = &r.header;
            let id = &h.socket_id;
            let fam = if matches!(id.source_address, IpAddr::V4(_)) {
                Family::V4
            } else {
                Family::V6
            };
            out.push(Socket {
                proto: Proto::Tcp,
                family: fam,
                state: TcpState::from_kernel(h.state).expect("state"),
                local: SocketAddr::new(id.source_address, id.source_port),
                remote: SocketAddr::new(id.destination_address, id.destination_port),
                recv_q: h.recv_queue,
                send_q: h.send_queue,
                uid: h.uid,
                inode: u64::from(h.inode),
                cookie: 0,
                owners: Owners::None(Unattributed::NotFound),
            });
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
}
