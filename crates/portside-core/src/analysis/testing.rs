//! Builders of synthetic sockets and snapshots for the analysis tests.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::model::{Family, Owners, Proto, Snapshot, Socket, TcpState, Unattributed};

/// A fixed instant plus `ms` milliseconds.
pub fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

/// A snapshot of `sockets` taken at `taken_at`, default ephemeral range 32768-60999.
pub fn snapshot(taken_at: SystemTime, sockets: Vec<Socket>) -> Snapshot {
    Snapshot {
        taken_at,
        sockets,
        ..Snapshot::empty()
    }
}

/// A TCP socket on local port `port` (address 0.0.0.0 when listening, else 192.0.2.1)
/// to `remote`; TIME_WAIT and SYN_RECV have no inode, like the kernel's.
pub fn tcp(state: TcpState, port: u16, remote: &str) -> Socket {
    let local_ip = if state == TcpState::Listen {
        "0.0.0.0"
    } else {
        "192.0.2.1"
    };
    let remote: SocketAddr = remote.parse().expect("test address");
    let no_inode = matches!(state, TcpState::TimeWait | TcpState::SynRecv);
    Socket {
        proto: Proto::Tcp,
        family: if remote.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        },
        state,
        local: SocketAddr::new(local_ip.parse().expect("test address"), port),
        remote,
        recv_q: 0,
        send_q: 0,
        uid: 0,
        inode: u64::from(!no_inode),
        cookie: 0,
        owners: if no_inode {
            Owners::None(Unattributed::NoInode)
        } else {
            Owners::None(Unattributed::NotFound)
        },
    }
}
