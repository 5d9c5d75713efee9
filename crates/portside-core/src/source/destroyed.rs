//! Socket-destroy notifications: the sock_diag multicast groups `ss -E` listens to
//! (`SKNLGRP_INET_TCP_DESTROY`, `SKNLGRP_INET6_TCP_DESTROY` and the UDP ones; iproute2
//! `misc/ss.c`, `handle_follow_request`).
//!
//! The kernel sends one `inet_diag_msg` when it frees a full socket (`__sk_free` ->
//! `sock_diag_broadcast_destroy`), to the listeners of the socket's own network namespace:
//! every connection once, however short, which sampling cannot see. Request sockets
//! (SYN_RECV) and TIME_WAIT sockets are not full sockets and are not reported; a connection
//! that closes through TIME_WAIT is reported when it enters TIME_WAIT.
//!
//! Privilege: none. The sock_diag netlink family lets any user join these groups
//! (`NL_CFG_F_NONROOT_RECV`); checked as `nobody` (see the tests), and it reports every
//! user's sockets of the namespace.
//!
//! Each tick drains what queued since the last one, without blocking, at most
//! [`MAX_DATAGRAMS_PER_DRAIN`] messages (the rest waits for the next tick), decoding with
//! the sampler's decoder into a reused `Vec`. If the queue overflowed between two drains,
//! the kernel drops notifications and says so once with `ENOBUFS`: that is counted in
//! [`Destroyed::overflows`], never an error. The receive queue is raised to 8 MiB with
//! `SO_RCVBUFFORCE` when privileged (~8,000 notifications), else as far as
//! `net.core.rmem_max` allows (about 350 notifications at the default 208 KiB).

use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::model::{Destroyed, Proto, Query};
use crate::source::SourceError;
use crate::source::sockdiag::decode_messages;

/// `enum sknetlink_groups` (`linux/sock_diag.h`).
pub const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
pub const SKNLGRP_INET_UDP_DESTROY: u32 = 2;
pub const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
pub const SKNLGRP_INET6_UDP_DESTROY: u32 = 4;

/// Messages read per drain at most: a bound on one tick's work under a flood.
pub const MAX_DATAGRAMS_PER_DRAIN: usize = 1 << 17;

/// Receive queue asked for (`SO_RCVBUFFORCE`, privileged).
const RECV_QUEUE_BYTES: i32 = 8 << 20;

/// One destroy notification is ~380 bytes (the record and its attributes); the buffer
/// holds one datagram, which the kernel sends per socket.
const BUF_LEN: usize = 16 * 1024;

/// Subscriptions to the destroy groups of the query's tables: one netlink socket per
/// protocol, so each record's protocol is known from the socket it came on.
pub struct DestroyFeed {
    feeds: Vec<(Proto, netlink_sys::Socket)>,
    buf: Vec<u8>,
    /// Filled between drains; its capacity is kept.
    pending: Destroyed,
}

impl DestroyFeed {
    /// Subscribe to the destroy groups of `query`'s protocols and families, in the current
    /// network namespace.
    pub fn open(query: &Query) -> Result<DestroyFeed, SourceError> {
        let mut feeds = Vec::new();
        for (proto, v4_group, v6_group, wanted) in [
            (
                Proto::Tcp,
                SKNLGRP_INET_TCP_DESTROY,
                SKNLGRP_INET6_TCP_DESTROY,
                query.tcp,
            ),
            (
                Proto::Udp,
                SKNLGRP_INET_UDP_DESTROY,
                SKNLGRP_INET6_UDP_DESTROY,
                query.udp,
            ),
        ] {
            let mut groups = 0;
            if query.v4 {
                groups |= 1 << (v4_group - 1);
            }
            if query.v6 {
                groups |= 1 << (v6_group - 1);
            }
            if wanted && groups != 0 {
                feeds.push((proto, subscribe(groups)?));
            }
        }
        Ok(DestroyFeed {
            feeds,
            buf: vec![0; BUF_LEN],
            pending: Destroyed::default(),
        })
    }

    /// Everything reported since the last call (nothing blocks). A malformed message is
    /// skipped, not fatal: a lost notification is what an overflow is too.
    pub fn drain(&mut self) -> Destroyed {
        for (proto, socket) in &self.feeds {
            for _ in 0..MAX_DATAGRAMS_PER_DRAIN {
                match socket.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                    Ok(n) if n <= self.buf.len() => {
                        let _ = decode_messages(&self.buf[..n], *proto, &mut self.pending.sockets);
                    }
                    Ok(_) => self.pending.overflows = self.pending.overflows.saturating_add(1),
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        self.pending.overflows = self.pending.overflows.saturating_add(1);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let capacity = self.pending.sockets.capacity().min(1 << 16);
        let mut out = Destroyed {
            sockets: Vec::with_capacity(capacity),
            overflows: 0,
        };
        std::mem::swap(&mut out, &mut self.pending);
        out
    }
}

/// A nonblocking netlink socket that joined `groups` (a bitmask of group - 1).
fn subscribe(groups: u32) -> Result<netlink_sys::Socket, SourceError> {
    let err = |context, source| SourceError::Netlink { context, source };
    let mut socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG).map_err(|e| err("socket", e))?;
    socket
        .bind(&netlink_sys::SocketAddr::new(0, groups))
        .map_err(|e| err("bind to the destroy groups", e))?;
    socket
        .set_non_blocking(true)
        .map_err(|e| err("set nonblocking", e))?;
    if set_int(&socket, libc::SO_RCVBUFFORCE, RECV_QUEUE_BYTES).is_err() {
        // Unprivileged: as much as net.core.rmem_max allows (the kernel clamps).
        let _ = set_int(&socket, libc::SO_RCVBUF, RECV_QUEUE_BYTES);
    }
    Ok(socket)
}

fn set_int(socket: &netlink_sys::Socket, option: libc::c_int, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd, and a pointer to an int that outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
