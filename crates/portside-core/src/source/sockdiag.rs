//! Socket tables over netlink `sock_diag`, the way `ss` reads them: one dump per
//! (protocol, family), binary records, the state mask and the selection bytecode applied in
//! the kernel.
//!
//! Requests are laid out here (the legacy TCP request and the bytecode attribute have no
//! type in `netlink-packet-sock-diag`); replies are decoded from the bytes (see
//! `decode.rs` for why). Any netlink error fails the dump: never a shorter list.

use std::io;
use std::time::Duration;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::model::{Family, Proto, Socket};
use crate::source::SourceError;
use crate::source::selection::bytecode::{Bytecode, INET_DIAG_REQ_BYTECODE};

mod decode;
pub use decode::decode_messages;

/// Every state the kernel knows. Includes `TCP_BOUND_INACTIVE` (bit 13, Linux 6.5+), which
/// adds TCP sockets that are only bound (reported as CLOSE); `/proc/net/tcp` never lists those.
pub const ALL_STATES: u32 = u32::MAX;

/// The states `/proc/net/*` lists, and what `ss -a` of iproute2 6.1 asks for (bits 0..=11).
/// The kernel adds `TCP_NEW_SYN_RECV` request sockets whenever `SYN_RECV` is asked for.
pub const TABLE_STATES: u32 = (1 << 12) - 1;

/// Receive buffer. The kernel fills one dump datagram up to ~32 KiB (it caps its dump
/// allocation there), so 64 KiB never truncates; `MSG_TRUNC` would tell us if it did.
const RECV_BUF_LEN: usize = 64 * 1024;

/// A dump that has not finished after this long is an error, not a hang.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound on datagrams of one dump (~200 sockets each): far above any real table.
const MAX_DATAGRAMS: usize = 1 << 20;

/// Upper bound on consecutive `EINTR`s for one `recv`.
const MAX_EINTR: usize = 1000;

/// A `sock_diag` netlink socket and its receive buffer, both reused across dumps.
pub struct SockDiag {
    socket: netlink_sys::Socket,
    /// Reused for every `recv`: a dump of 100k sockets reuses it ~500 times, allocating nothing.
    buf: Vec<u8>,
    seq: u32,
    /// A dump stopped part way leaves its remaining datagrams queued: reopen before the next.
    stale: bool,
    /// The kernel refused a bytecode program, with this error: send no more.
    bytecode_refused: Option<String>,
}

impl SockDiag {
    /// Open a netlink socket for `sock_diag` (needs no privilege).
    pub fn open() -> Result<SockDiag, SourceError> {
        Ok(SockDiag {
            socket: open_socket()?,
            buf: vec![0; RECV_BUF_LEN],
            seq: 0,
            stale: false,
            bytecode_refused: None,
        })
    }

    /// Dump one table into `out` (appends). `states` is a kernel state bitmask
    /// (`TcpState::mask_bit`), `u32::MAX` = all ([`ALL_STATES`]); [`TABLE_STATES`] matches
    /// `/proc/net` and `ss -a`. On error `out` is left as it was.
    pub fn dump(
        &mut self,
        proto: Proto,
        family: Family,
        states: u32,
        out: &mut Vec<Socket>,
    ) -> Result<(), SourceError> {
        self.dump_selected(proto, Some(family), states, None, out)
    }

    /// Dump TCP sockets of both families in one pass. The kernel walks its whole
    /// established hash (shared by every network namespace) on each TCP dump; a request per
    /// family walks it twice. The old `TCPDIAG_GETSOCK` request runs the same dump with the
    /// family set to `AF_UNSPEC` (`inet_diag_dump_compat`), so one walk yields IPv4 and
    /// IPv6; replies are the same `inet_diag_msg` records. Measured at 10k sockets in a
    /// namespace beside 100k others: see BENCHMARKS.md ("one TCP walk").
    pub fn dump_tcp_both_families(
        &mut self,
        states: u32,
        out: &mut Vec<Socket>,
    ) -> Result<(), SourceError> {
        self.dump_selected(Proto::Tcp, None, states, None, out)
    }

    /// Dump one table (`family` `None`: TCP of both families in one walk, as
    /// [`SockDiag::dump_tcp_both_families`]), with the kernel running `bytecode` on each
    /// socket, as `ss` does with a filter expression: only the sockets it selects are copied
    /// out. A kernel that refuses the program (`EINVAL`, e.g. an op it does not know) gets
    /// the same request without it, now and for the rest of this socket's life; the caller
    /// still filters, and [`SockDiag::bytecode_refused`] says why the dump was wider.
    pub fn dump_selected(
        &mut self,
        proto: Proto,
        family: Option<Family>,
        states: u32,
        bytecode: Option<&Bytecode>,
        out: &mut Vec<Socket>,
    ) -> Result<(), SourceError> {
        let bytecode = bytecode.filter(|_| self.bytecode_refused.is_none());
        self.seq = self.seq.wrapping_add(1);
        let request = build_request(proto, family, states, bytecode, self.seq);
        match self.run(&request, proto, out) {
            Err(SourceError::Netlink { source, .. })
                if bytecode.is_some() && is_refusal(&source) =>
            {
                self.bytecode_refused = Some(source.to_string());
                self.seq = self.seq.wrapping_add(1);
                let request = build_request(proto, family, states, None, self.seq);
                self.run(&request, proto, out)
            }
            result => result,
        }
    }

    /// Why the kernel refused a selection program, once it has (then every later dump
    /// of this socket is sent without one).
    pub fn bytecode_refused(&self) -> Option<&str> {
        self.bytecode_refused.as_deref()
    }

    /// Send one dump request and decode its whole answer; on error, restore `out`.
    fn run(
        &mut self,
        request: &[u8],
        proto: Proto,
        out: &mut Vec<Socket>,
    ) -> Result<(), SourceError> {
        if self.stale {
            self.socket = open_socket()?;
            self.stale = false;
        }
        let before = out.len();
        let result = match self.socket.send(request, 0) {
            Ok(n) if n == request.len() => self.receive(proto, out),
            Ok(_) => Err(netlink_err("send", io::ErrorKind::WriteZero.into())),
            Err(e) => Err(netlink_err("send", e)),
        };
        if result.is_err() {
            out.truncate(before);
            self.stale = true;
        }
        result
    }

    fn receive(&mut self, proto: Proto, out: &mut Vec<Socket>) -> Result<(), SourceError> {
        for _ in 0..MAX_DATAGRAMS {
            let n = self.recv_datagram()?;
            if decode_messages(&self.buf[..n], proto, out)? {
                return Ok(());
            }
        }
        Err(SourceError::Decode(format!(
            "no NLMSG_DONE after {MAX_DATAGRAMS} datagrams"
        )))
    }

    /// One datagram into `buf`; its length. Retries `EINTR`; a truncated datagram is an error.
    fn recv_datagram(&mut self) -> Result<usize, SourceError> {
        for _ in 0..MAX_EINTR {
            match self.socket.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(SourceError::Decode(format!(
                        "datagram of {n} bytes truncated to {}",
                        self.buf.len()
                    )));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(netlink_err(
                        "recv: receive queue overflowed, messages lost",
                        e,
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(netlink_err("recv: no answer from the kernel in time", e));
                }
                Err(e) => return Err(netlink_err("recv", e)),
            }
        }
        Err(netlink_err("recv", io::ErrorKind::Interrupted.into()))
    }
}

/// A socket connected to the kernel, with a receive timeout so a dump cannot hang.
fn open_socket() -> Result<netlink_sys::Socket, SourceError> {
    let mut socket =
        netlink_sys::Socket::new(NETLINK_SOCK_DIAG).map_err(|e| netlink_err("socket", e))?;
    socket.bind_auto().map_err(|e| netlink_err("bind", e))?;
    socket
        .connect(&netlink_sys::SocketAddr::new(0, 0))
        .map_err(|e| netlink_err("connect", e))?;
    set_recv_timeout(&socket, RECV_TIMEOUT)
        .map_err(|e| netlink_err("setsockopt SO_RCVTIMEO", e))?;
    Ok(socket)
}

fn set_recv_timeout(socket: &netlink_sys::Socket, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    };
    // SAFETY: a valid fd, and a pointer to a timeval that outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a failed request was refused for what it asked (`EINVAL` from
/// `inet_diag_bc_audit`, `EPERM`/`EOPNOTSUPP` for an op the kernel will not run).
fn is_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EPERM | libc::EOPNOTSUPP)
    )
}

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDR: usize = 16;

/// `TCPDIAG_GETSOCK` (`linux/inet_diag.h`): the pre-`sock_diag` TCP dump request.
pub const TCPDIAG_GETSOCK: u16 = 18;

/// The bytes of a dump request. With a family: `SOCK_DIAG_BY_FAMILY` + `struct
/// inet_diag_req_v2` (family, protocol, extensions, pad: 4 bytes; states: 4; socket id:
/// 48). Without: `TCPDIAG_GETSOCK` + the legacy `struct inet_diag_req` (family, src/dst
/// lengths, extensions: 4; socket id: 48; states: 4; dbs: 4) with family `AF_UNSPEC`, which
/// the kernel runs as one TCP dump of both families. Either way followed by the bytecode
/// as an `INET_DIAG_REQ_BYTECODE` attribute when given. No extensions are asked for.
fn build_request(
    proto: Proto,
    family: Option<Family>,
    states: u32,
    bytecode: Option<&Bytecode>,
    seq: u32,
) -> Vec<u8> {
    const REQ_V2: usize = 4 + 4 + 48;
    const REQ_COMPAT: usize = 4 + 48 + 4 + 4;
    let attr = bytecode.map_or(0, |b| 4 + b.as_bytes().len());
    let body = if family.is_some() { REQ_V2 } else { REQ_COMPAT };
    let len = NLMSG_HDR + body + attr;
    let mut b = vec![0u8; len];
    let kind = if family.is_some() {
        SOCK_DIAG_BY_FAMILY
    } else {
        TCPDIAG_GETSOCK
    };
    b[0..4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    b[4..6].copy_from_slice(&kind.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel. The socket id stays zero (a dump, not a lookup).
    let req = &mut b[NLMSG_HDR..NLMSG_HDR + body];
    match family {
        Some(family) => {
            req[0] = match family {
                Family::V4 => AF_INET,
                Family::V6 => AF_INET6,
            };
            req[1] = match proto {
                Proto::Tcp => IPPROTO_TCP,
                Proto::Udp => IPPROTO_UDP,
            };
            req[4..8].copy_from_slice(&states.to_ne_bytes());
        }
        None => req[52..56].copy_from_slice(&states.to_ne_bytes()),
    }
    if let Some(code) = bytecode {
        let at = NLMSG_HDR + body;
        let attr_len = u16::try_from(attr).unwrap_or(u16::MAX);
        b[at..at + 2].copy_from_slice(&attr_len.to_ne_bytes());
        b[at + 2..at + 4].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        b[at + 4..].copy_from_slice(code.as_bytes());
    }
    b
}

fn netlink_err(context: &'static str, source: io::Error) -> SourceError {
    SourceError::Netlink { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd};

    #[test]
    fn request_matches_what_ss_sends() {
        // `strace ss -tan`: nlmsg_len=72, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST|NLM_F_DUMP,
        // AF_INET, IPPROTO_TCP, idiag_ext=0, idiag_states=0xfff, zero socket id.
        let r = build_request(Proto::Tcp, Some(Family::V4), TABLE_STATES, None, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
        assert_eq!(&r[16..20], &[AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 0xfff);
        assert!(r[24..].iter().all(|&b| b == 0));
        let r6 = build_request(Proto::Udp, Some(Family::V6), u32::MAX, None, 8);
        assert_eq!(
            &r6[16..24],
            &[AF_INET6, IPPROTO_UDP, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn kernel_refusal_is_an_error_and_the_next_dump_works() {
        let mut diag = SockDiag::open().unwrap();
        let mut out = Vec::new();
        diag.dump(Proto::Tcp, Family::V4, ALL_STATES, &mut out)
            .unwrap();
        let before = out.clone();
        // IPPROTO_RAW (255) has no sock_diag handler: the kernel answers NLMSG_ERROR.
        let mut request = build_request(Proto::Tcp, Some(Family::V4), ALL_STATES, None, 99);
        request[17] = 255;
        match diag.run(&request, Proto::Tcp, &mut out) {
            Err(SourceError::Netlink { source, .. }) => assert!(source.raw_os_error().is_some()),
            other => panic!("{other:?}"),
        }
        assert_eq!(out, before, "a failed dump leaves `out` as it was");
        assert!(diag.stale);
        diag.dump(Proto::Udp, Family::V4, ALL_STATES, &mut out)
            .unwrap();
        assert!(!diag.stale);
    }

    #[test]
    fn request_carries_the_bytecode_attribute() {
        use crate::source::selection::{Clause, Cond, End};
        let bc = crate::source::selection::bytecode::compile(&[Clause {
            negated: false,
            any: vec![Cond::Port {
                end: End::Local,
                lo: 443,
                hi: 443,
            }],
        }])
        .unwrap();
        let r = build_request(Proto::Tcp, Some(Family::V4), 0x400, Some(&bc), 3);
        assert_eq!(r.len(), 72 + 4 + 16);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 92);
        // nlattr { len 20, type INET_DIAG_REQ_BYTECODE }, then the program.
        assert_eq!(&r[72..76], &[20, 0, 1, 0]);
        assert_eq!(&r[76..], bc.as_bytes());
        // The legacy both-families request: 16 + 60 bytes, states at offset 16 + 52.
        let r = build_request(Proto::Tcp, None, 0x400, Some(&bc), 4);
        assert_eq!(r.len(), 76 + 20);
        assert_eq!(
            u16::from_ne_bytes(r[4..6].try_into().unwrap()),
            TCPDIAG_GETSOCK
        );
        assert_eq!(u32::from_ne_bytes(r[68..72].try_into().unwrap()), 0x400);
        assert_eq!(&r[76..80], &[20, 0, 1, 0]);
    }

    #[test]
    fn refused_bytecode_falls_back_to_the_whole_table() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let listen = TcpState::Listen.mask_bit();
        // Op code 99 does not exist: `inet_diag_bc_audit` answers EINVAL.
        let bad = Bytecode::from_raw(vec![99, 4, 8, 0]);
        for family in [Some(Family::V4), None] {
            let mut diag = SockDiag::open().unwrap();
            let mut out = Vec::new();
            diag.dump_selected(Proto::Tcp, family, listen, Some(&bad), &mut out)
                .unwrap();
            assert!(
                out.iter().any(|s| s.local == addr),
                "{family:?}: unfiltered dump"
            );
            let why = diag.bytecode_refused().expect("refusal recorded");
            assert!(why.contains("Invalid argument"), "{why}");
            // Later dumps go without the program, and work.
            out.clear();
            diag.dump_selected(Proto::Tcp, family, listen, Some(&bad), &mut out)
                .unwrap();
            assert!(out.iter().any(|s| s.local == addr));
        }
    }

    #[test]
    fn bytecode_selects_in_the_kernel() {
        use crate::source::selection::{Clause, Cond, End};
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        let bc = crate::source::selection::bytecode::compile(&[Clause {
            negated: false,
            any: vec![Cond::Port {
                end: End::Local,
                lo: port,
                hi: port,
            }],
        }])
        .unwrap();
        let mut diag = SockDiag::open().unwrap();
        let mut out = Vec::new();
        let listen = TcpState::Listen.mask_bit();
        diag.dump_selected(Proto::Tcp, Some(Family::V4), listen, Some(&bc), &mut out)
            .unwrap();
        assert_eq!(diag.bytecode_refused(), None);
        assert!(!out.is_empty());
        assert!(out.iter().all(|s| s.local.port() == port), "{out:?}");
        assert!(out.iter().all(|s| s.local != b.local_addr().unwrap()));
    }

    #[test]
    fn bound_only_tcp_socket_appears_with_all_states_only() {
        // A TCP socket bound to loopback that neither listens nor connects.
        // SAFETY: plain socket calls on a fd we own, with a sockaddr_in of the right size.
        let (fd, port) = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, (&raw const sa).cast(), len), 0);
            let mut len = len;
            assert_eq!(libc::getsockname(fd, (&raw mut sa).cast(), &raw mut len), 0);
            (
                std::os::fd::OwnedFd::from_raw_fd(fd),
                u16::from_be(sa.sin_port),
            )
        };
        let mut diag = SockDiag::open().unwrap();
        let find = |diag: &mut SockDiag, states| {
            let mut out = Vec::new();
            diag.dump(Proto::Tcp, Family::V4, states, &mut out).unwrap();
            out.into_iter().find(|s| s.local.port() == port)
        };
        // The kernel reports it as CLOSE (bit 13 only selects it), like newer `ss -a`.
        let bound = find(&mut diag, ALL_STATES).expect("bound socket with ALL_STATES");
        assert_eq!(bound.state, TcpState::Close);
        assert_eq!(find(&mut diag, TABLE_STATES), None);
        let mut proc = Vec::new();
        crate::source::procnet::read_table(
            std::path::Path::new("/proc"),
            Proto::Tcp,
            Family::V4,
            &mut proc,
        )
        .unwrap();
        assert!(
            proc.iter().all(|s| s.local.port() != port),
            "/proc/net/tcp never lists it"
        );
        drop(fd);
    }

    #[test]
    fn dump_finds_a_listener_with_its_backlog_and_a_pending_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Listening again on a listening socket only changes its backlog.
        // SAFETY: a valid listening socket fd.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 5) }, 0);
        let addr = listener.local_addr().unwrap();
        let _pending = TcpStream::connect(addr).unwrap();
        let mut diag = SockDiag::open().unwrap();
        let mut out = Vec::new();
        // The accept queue fills asynchronously on loopback; allow a few looks.
        for _ in 0..50 {
            out.clear();
            diag.dump(
                Proto::Tcp,
                Family::V4,
                TcpState::Listen.mask_bit(),
                &mut out,
            )
            .unwrap();
            if out.iter().any(|s| s.local == addr && s.recv_q == 1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            out.iter()
                .all(|s| s.state == TcpState::Listen && s.family == Family::V4)
        );
        let me = out.iter().find(|s| s.local == addr).expect("our listener");
        assert_eq!((me.recv_q, me.send_q), (1, 5));
        assert_ne!(me.inode, 0);
        // The same socket reused for another table and state set.
        let mut est = Vec::new();
        diag.dump(
            Proto::Tcp,
            Family::V4,
            TcpState::Established.mask_bit(),
            &mut est,
        )
        .unwrap();
        assert!(est.iter().any(|s| s.remote == addr));
        assert!(est.iter().all(|s| s.state == TcpState::Established));
    }
}
