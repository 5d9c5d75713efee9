//! Thin safe wrappers over the socket, namespace and process calls std does not offer:
//! source binding without a port, `TCP_LINGER2`, listen backlogs, epoll, setns, rlimits.

use std::fs::File;
use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// Turn a `-1` return into the thread's `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Raise the soft open-file limit to the hard one; returns the new limit.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) })?;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit; raising soft to hard needs no privilege.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) })?;
    Ok(lim.rlim_cur)
}

/// Ask the kernel to send `signal` to this process when its parent exits, so a killed
/// coordinator never leaves workers behind. Call in the child (`pre_exec`) or the worker.
pub fn die_with_parent(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Ignore `signal` (workers ignore SIGINT: the coordinator decides when they stop).
pub fn ignore_signal(signal: libc::c_int) {
    // SAFETY: installing SIG_IGN is async-signal-safe and has no memory effects.
    unsafe {
        libc::signal(signal, libc::SIG_IGN);
    }
}

/// Move the calling thread into the network namespace bound at `path` (`/run/netns/NAME`).
/// Processes spawned from this thread afterwards start inside it.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: the fd is a valid open namespace file for the duration of the call.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// Encode a socket address for the kernel.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A new blocking TCP socket of the family of `addr`, close-on-exec.
fn tcp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the returned fd is owned by the OwnedFd below.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listening socket on `addr` with `backlog` (IPv6 listeners are IPv6-only, so an IPv4
/// wildcard and an IPv6 one never clash).
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let fd = tcp_socket(addr)?;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1_i32)?;
    if addr.is_ipv6() {
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1_i32)?;
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: `sa` holds a valid address of length `len`.
    check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), len) })?;
    // SAFETY: listen on our own bound socket.
    check(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(TcpListener::from(fd))
}

/// How a client socket is set up before it connects.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOpts {
    /// Source to bind; port 0 means chosen at connect time, per 4-tuple.
    pub source: Option<SocketAddr>,
    /// `TCP_LINGER2` in seconds: how long an orphaned `FIN_WAIT2` end lingers after close.
    pub linger2: Option<i32>,
    /// Upper bound on a connect that the peer does not answer.
    pub timeout: Option<Duration>,
}

/// Connect to `to` on loopback with the given options; blocking, bounded by `timeout`.
pub fn connect(to: SocketAddr, opts: ConnectOpts) -> io::Result<TcpStream> {
    let fd = tcp_socket(to)?;
    if let Some(src) = opts.source {
        if src.port() == 0 {
            // Defer the port choice to connect(), which checks the whole 4-tuple, instead
            // of reserving a port per address at bind time.
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, &1_i32)?;
        }
        let (sa, len) = sockaddr(src);
        // SAFETY: `sa` holds a valid address of length `len`.
        check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), len) })?;
    }
    if let Some(secs) = opts.linger2 {
        setsockopt(&fd, libc::IPPROTO_TCP, libc::TCP_LINGER2, &secs)?;
    }
    if let Some(t) = opts.timeout {
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(t.subsec_micros()),
        };
        // connect(2) honours SO_SNDTIMEO: a dropped SYN fails with EINPROGRESS, not a hang.
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)?;
    }
    let (sa, len) = sockaddr(to);
    // SAFETY: `sa` holds a valid address of length `len`.
    check(unsafe { libc::connect(fd.as_raw_fd(), (&raw const sa).cast(), len) })?;
    Ok(TcpStream::from(fd))
}

/// `TCP_FIN_WAIT2` in the kernel's state numbering (`include/net/tcp_states.h`).
pub const FIN_WAIT2: u8 = 5;

/// The kernel's TCP state of `stream` (first byte of `struct tcp_info`).
pub fn tcp_state(stream: &TcpStream) -> io::Result<u8> {
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes; the kernel copies at most that many.
    check(unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &raw mut len,
        )
    })?;
    Ok(info[0])
}

/// Readiness flags for [`Epoll::add`].
pub const READABLE: u32 = libc::EPOLLIN as u32;
/// The peer closed its end (or the socket errored).
pub const HANGUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// A minimal epoll set: register fds with a token, wait for ready tokens.
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    pub fn new(capacity: usize) -> io::Result<Epoll> {
        // SAFETY: plain epoll_create1 call; the fd is owned below.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` was just returned and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    pub fn add(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid event; the kernel copies it.
        check(unsafe {
            libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut ev)
        })?;
        Ok(())
    }

    /// Wait up to `timeout`; returns the (token, flags) pairs that are ready.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = (u64, u32)> + '_> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a writable buffer of the length passed.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                i32::try_from(self.events.len()).unwrap_or(i32::MAX),
                ms,
            )
        };
        let n = match check(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(self.events[..n].iter().map(|e| (e.u64, e.events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn connect_binds_the_requested_source_address() {
        let listener = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), 16).unwrap();
        let to = listener.local_addr().unwrap();
        let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let opts = ConnectOpts {
            source: Some(SocketAddr::new(src, 0)),
            linger2: Some(1),
            timeout: Some(Duration::from_secs(2)),
        };
        let client = connect(to, opts).unwrap();
        assert_eq!(client.local_addr().unwrap().ip(), src);
        let (mut server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(2);
        while tcp_state(&client).unwrap() != FIN_WAIT2 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            tcp_state(&client).unwrap(),
            FIN_WAIT2,
            "the server acked our FIN"
        );
        drop(client);
        let mut buf = [0u8; 1];
        assert_eq!(
            server.read(&mut buf).unwrap(),
            0,
            "client close reaches the server"
        );
    }

    #[test]
    fn epoll_reports_a_pending_accept() {
        let listener = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), 16).unwrap();
        let mut ep = Epoll::new(4).unwrap();
        ep.add(listener.as_raw_fd(), 7, READABLE).unwrap();
        assert_eq!(ep.wait(Duration::ZERO).unwrap().count(), 0);
        let _c = connect(listener.local_addr().unwrap(), ConnectOpts::default()).unwrap();
        let ready: Vec<_> = ep.wait(Duration::from_secs(2)).unwrap().collect();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].0, 7);
    }

    #[test]
    fn raising_the_fd_limit_reaches_the_hard_limit() {
        let soft = raise_nofile().unwrap();
        assert!(soft >= 1024);
    }
}
