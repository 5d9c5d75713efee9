//! Socket tables over netlink `sock_diag`, the way `ss` reads them: one dump per
//! (protocol, family), binary records, the state filter applied in the kernel.
//!
//! The request is built with `netlink-packet-sock-diag`; replies are decoded from the bytes
//! (see `decode.rs` for why). Any netlink error fails the dump: never a shorter list.

use std::io;
use std::time::Duration;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SockDiagMessage};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::model::{Family, Proto, Socket};
use crate::source::SourceError;

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
}

impl SockDiag {
    /// Open a netlink socket for `sock_diag` (needs no privilege).
    pub fn open() -> Result<SockDiag, SourceError> {
        Ok(SockDiag {
            socket: open_socket()?,
            buf: vec![0; RECV_BUF_LEN],
            seq: 0,
            stale: false,
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
        self.seq = self.seq.wrapping_add(1);
        let request = build_request(proto, family, states, self.seq);
        self.run(&request, proto, out)
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
        self.seq = self.seq.wrapping_add(1);
        let request = build_compat_tcp_request(states, self.seq);
        self.run(&request, Proto::Tcp, out)
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

/// The bytes of a `SOCK_DIAG_BY_FAMILY` dump request (`inet_diag_req_v2`, no extensions).
fn build_request(proto: Proto, family: Family, states: u32, seq: u32) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::V4 => (AF_INET, SocketId::new_v4()),
        Family::V6 => (AF_INET6, SocketId::new_v6()),
    };
    let protocol = match proto {
        Proto::Tcp => IPPROTO_TCP,
        Proto::Udp => IPPROTO_UDP,
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::from_bits_retain(states),
            socket_id,
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// `TCPDIAG_GETSOCK` (`linux/inet_diag.h`): the pre-`sock_diag` TCP dump request.
pub const TCPDIAG_GETSOCK: u16 = 18;

/// A `TCPDIAG_GETSOCK` dump request: `nlmsghdr` + `struct inet_diag_req` (family, src/dst
/// lengths, extensions: 4 bytes; `inet_diag_sockid`: 48; states: 4; dbs: 4). The crate has
/// no type for this legacy request, so it is laid out here.
fn build_compat_tcp_request(states: u32, seq: u32) -> Vec<u8> {
    const HEADER: usize = 16;
    const REQ: usize = 4 + 48 + 4 + 4;
    let mut b = vec![0u8; HEADER + REQ];
    b[0..4].copy_from_slice(&((HEADER + REQ) as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel. Family, lengths, extensions and socket id stay zero.
    b[HEADER + 52..HEADER + 56].copy_from_slice(&states.to_ne_bytes());
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
        let r = build_request(Proto::Tcp, Family::V4, TABLE_STATES, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
        assert_eq!(&r[16..20], &[AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 0xfff);
        assert!(r[24..].iter().all(|&b| b == 0));
        let r6 = build_request(Proto::Udp, Family::V6, u32::MAX, 8);
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
        let mut request = build_request(Proto::Tcp, Family::V4, ALL_STATES, 99);
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
