//! Kernel-side selection (state mask + `inet_diag` bytecode) against two oracles, on real
//! sockets in a private network namespace: for each filter, the sockets portside reports
//! with the selection equal the unselected sample filtered in user space (owners and
//! inferred owners included) and equal `ss` with the equivalent filter expression.
//!
//! Needs root (a network namespace of its own, so no other test's sockets come and go
//! between the dumps); without it the test says so, and fails when `CI=true`.

#[path = "support/oracle.rs"]
mod oracle;

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use oracle::{Key, key_of, parse_ss, portside};
use portside::analysis::filter::Filter;
use portside::model::{Owners, Snapshot};
use portside::source::sampler::{Sampler, SamplerConfig};

/// Sockets of every kind the selection must treat alike, all on loopback.
struct Sockets {
    p1: u16,
    p2: u16,
    p3: u16,
    u1: u16,
    _keep: Vec<Box<dyn std::any::Any>>,
}

fn accept_pair(l: &TcpListener, to: SocketAddr) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(to).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

fn drain(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

fn open_sockets() -> Sockets {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    // p1: IPv4 listener with an established pair, a client-side and a server-side
    // TIME_WAIT, a CLOSE_WAIT (its client in FIN_WAIT2) and one connection never accepted.
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let a1 = l1.local_addr().unwrap();
    let (c, s) = accept_pair(&l1, a1);
    keep.push(Box::new((c, s)));
    let (c, s) = accept_pair(&l1, a1);
    drop(c);
    drain(s);
    let (c, s) = accept_pair(&l1, a1);
    drop(s);
    drain(c);
    let (c, s) = accept_pair(&l1, a1);
    drop(c);
    keep.push(Box::new(s));
    keep.push(Box::new(TcpStream::connect(a1).unwrap()));
    // p2: dual-stack [::] listener with an IPv4-mapped and an IPv6 connection.
    let l2 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
    l2.set_only_v6(false).unwrap();
    l2.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())
        .unwrap();
    l2.listen(16).unwrap();
    let l2: TcpListener = l2.into();
    let p2 = l2.local_addr().unwrap().port();
    keep.push(Box::new(accept_pair(
        &l2,
        SocketAddr::from(([127, 0, 0, 1], p2)),
    )));
    keep.push(Box::new(accept_pair(
        &l2,
        SocketAddr::from((Ipv6Addr::LOCALHOST, p2)),
    )));
    // p3: IPv6-only listener on ::1 with a client-side TIME_WAIT.
    let l3 = TcpListener::bind("[::1]:0").unwrap();
    let a3 = l3.local_addr().unwrap();
    let (c, s) = accept_pair(&l3, a3);
    drop(c);
    drain(s);
    // UDP: an unconnected socket and a connected IPv6 pair.
    let u1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let u1_port = u1.local_addr().unwrap().port();
    let ua = UdpSocket::bind("[::1]:0").unwrap();
    let ub = UdpSocket::bind("[::1]:0").unwrap();
    ua.connect(ub.local_addr().unwrap()).unwrap();
    ub.connect(ua.local_addr().unwrap()).unwrap();
    keep.push(Box::new((u1, ua, ub)));
    let (p1, p3) = (a1.port(), a3.port());
    keep.push(Box::new((l1, l2, l3)));
    // Let the closes settle (FIN_WAIT2, TIME_WAIT) before anything is compared.
    std::thread::sleep(Duration::from_millis(200));
    Sockets {
        p1,
        p2,
        p3,
        u1: u1_port,
        _keep: keep,
    }
}

/// (key, owner pids, inferred) of the sockets the filter matches, sorted; and how many
/// sockets the sample held before filtering.
type Seen = Vec<(Key, Vec<u32>, bool)>;

fn sample(filter: &Filter, select: bool, one_shot: bool) -> (Seen, usize) {
    let mut sampler = Sampler::new(SamplerConfig {
        selection: if select {
            filter.selection()
        } else {
            portside::source::selection::Selection::everything()
        },
        one_shot,
        ..SamplerConfig::default()
    })
    .unwrap();
    let snap: Snapshot = sampler.sample().unwrap();
    assert_eq!(sampler.selection_note(), None);
    let mut seen: Seen = snap
        .sockets
        .iter()
        .filter(|s| filter.matches(s, &snap))
        .map(|s| {
            let mut pids: Vec<u32> = snap.owners_of(s).map(|p| p.pid).collect();
            pids.sort_unstable();
            (key_of(s), pids, matches!(s.owners, Owners::Inferred(_)))
        })
        .collect();
    seen.sort();
    (seen, snap.sockets.len())
}

fn keys(seen: &Seen) -> Vec<Key> {
    seen.iter().map(|(k, _, _)| k.clone()).collect()
}

/// `ss` with these arguments. It leaves out the Netid column when one protocol is asked
/// for and the State column when one state is: those are put back before parsing.
fn ss(args: &[&str]) -> Vec<Key> {
    let out = Command::new("ss").args(args).output().expect("run ss");
    assert!(
        out.status.success(),
        "ss {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flags = args[0];
    let netid = match (flags.contains('t'), flags.contains('u')) {
        (true, false) => Some("tcp"),
        (false, true) => Some("udp"),
        _ => None,
    };
    let states: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "state")
        .map(|w| w[1])
        .collect();
    let state = match states.as_slice() {
        [one] => Some(match *one {
            "established" => "ESTAB",
            "time-wait" => "TIME-WAIT",
            "fin-wait-2" => "FIN-WAIT-2",
            other => panic!("no column name for state {other}"),
        }),
        _ => None,
    };
    let text: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mut row: Vec<&str> = Vec::new();
            let mut rest = &f[..];
            for fixed in [netid, state] {
                if let Some(value) = fixed {
                    row.push(value);
                } else {
                    row.push(rest[0]);
                    rest = &rest[1..];
                }
            }
            row.extend(rest);
            row.join(" ") + "\n"
        })
        .collect();
    let mut k: Vec<Key> = parse_ss(&text).into_iter().map(|r| r.key).collect();
    k.sort();
    k
}

fn in_own_netns(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread, which owns no netlink state yet.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        // Children (ip, ss, portside) start in this thread's namespace.
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        body();
    })
    .join()
    .unwrap();
}

/// portside filter, `ss` arguments (None: ss says something else on purpose), and whether
/// the kernel must have copied out fewer sockets.
fn cases(t: &Sockets) -> Vec<(String, Option<String>, bool)> {
    let (p1, p2, p3, u1) = (t.p1, t.p2, t.p3, t.u1);
    let (lo, hi) = (p1.min(p2).min(p3), p1.max(p2).max(p3));
    vec![
        (
            format!("lport:{p1}"),
            Some(format!("-tuanH sport = :{p1}")),
            true,
        ),
        (
            format!("port:{p1}"),
            Some(format!("-tuanH ( sport = :{p1} or dport = :{p1} )")),
            true,
        ),
        (
            format!("rport:{p2}"),
            Some(format!("-tuanH dport = :{p2}")),
            true,
        ),
        (
            format!("lport:{lo}-{hi}"),
            Some(format!("-tuanH sport >= :{lo} and sport <= :{hi}")),
            true,
        ),
        (
            format!("!port:{p1}"),
            Some(format!("-tuanH not ( sport = :{p1} or dport = :{p1} )")),
            true,
        ),
        (
            "state:tw".into(),
            Some("-tuanH state time-wait".into()),
            true,
        ),
        (
            "tcp state:listen,cw".into(),
            Some("-tanH state listening state close-wait".into()),
            true,
        ),
        (
            "state:fin-wait-2".into(),
            Some("-tuanH state fin-wait-2".into()),
            true,
        ),
        (
            "laddr:127.0.0.1".into(),
            Some("-tuanH src 127.0.0.1".into()),
            true,
        ),
        (
            "addr:127.0.0.0/8".into(),
            Some("-tuanH ( src 127.0.0.0/8 or dst 127.0.0.0/8 )".into()),
            true,
        ),
        ("laddr:::1".into(), Some("-tuanH src [::1]".into()), true),
        (
            "tcp !laddr:127.0.0.1".into(),
            Some("-tanH not src 127.0.0.1".into()),
            true,
        ),
        (
            format!("v6 lport:{p2}"),
            Some(format!("-tuan6H sport = :{p2}")),
            true,
        ),
        (
            "raddr:::ffff:127.0.0.1 state:est".into(),
            Some("-tuanH state established dst 127.0.0.1".into()),
            true,
        ),
        (
            format!("udp lport:{u1}"),
            Some(format!("-uanH sport = :{u1}")),
            true,
        ),
        (
            format!("tcp !state:tw,listen lport:{lo}-{hi}"),
            Some(format!(
                "-tanH exclude time-wait exclude listening sport >= :{lo} and sport <= :{hi}"
            )),
            true,
        ),
        ("v4 !udp".into(), Some("-tan4H".into()), true),
        // The filter compares IPv4-mapped addresses as IPv4, `ss` (and the kernel) as
        // IPv6: the kernel selects more, the filter trims.
        ("laddr:::/0".into(), None, true),
        // Not expressible exactly: stays in user space.
        ("!addr:::/0".into(), None, false),
        (
            format!("proc:kernel_selectio state:est rport:{p1}"),
            None,
            true,
        ),
        ("port:1-65535 state:est,tw".into(), None, true),
    ]
}

#[test]
fn kernel_selection_equals_user_space_filtering_and_ss() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root: this test must run there"
        );
        eprintln!("SKIPPED: needs root for a network namespace of its own");
        return;
    }
    in_own_netns(|| {
        let t = open_sockets();
        let cases = cases(&t);
        for (expr, ss_args, narrower) in cases {
            let filter = Filter::parse_system(&expr).unwrap();
            let (want, all) = sample(&filter, false, true);
            assert!(!want.is_empty(), "{expr}: matches nothing");
            for one_shot in [true, false] {
                let (got, dumped) = sample(&filter, true, one_shot);
                assert_eq!(got, want, "{expr} (one_shot {one_shot})");
                assert!(dumped <= all, "{expr}: {dumped} > {all}");
                if narrower && one_shot {
                    assert!(dumped < all, "{expr}: the kernel selected nothing out");
                }
            }
            let (_, rows) = portside(&[&expr]);
            let mut bin: Vec<Key> = rows.into_iter().map(|r| r.key).collect();
            bin.sort();
            assert_eq!(bin, keys(&want), "{expr}: portside --once");
            if let Some(args) = ss_args {
                let args: Vec<&str> = args.split(' ').collect();
                assert_eq!(ss(&args), keys(&want), "{expr} vs ss {args:?}");
            }
        }
        drop(t);
    });
}

#[test]
fn owners_of_unaccepted_and_time_wait_sockets_survive_selection() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root: this test must run there"
        );
        eprintln!("SKIPPED: needs root for a network namespace of its own");
        return;
    }
    in_own_netns(|| {
        let t = open_sockets();
        // The never-accepted connection has no inode: its owner is inferred from the
        // listener, which `state:est` alone would not have asked the kernel for.
        let filter = Filter::parse_system(&format!("state:est lport:{}", t.p1)).unwrap();
        let (got, _) = sample(&filter, true, true);
        let inferred: Vec<_> = got.iter().filter(|(_, _, inf)| *inf).collect();
        assert_eq!(inferred.len(), 1, "{got:?}");
        assert_eq!(inferred[0].1, vec![std::process::id()]);
        // Server-side TIME_WAIT on p1, inferred the same way.
        let filter = Filter::parse_system(&format!("state:tw lport:{}", t.p1)).unwrap();
        let (got, _) = sample(&filter, true, true);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].1.clone(), got[0].2),
            (vec![std::process::id()], true)
        );
        drop(t);
    });
}
