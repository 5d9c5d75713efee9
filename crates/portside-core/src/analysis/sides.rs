//! Which service a socket is about: its local port's for a server side, the peer's for a
//! client. A client's ephemeral port's registry name is noise (32768 is not "filenet-tms").
//! Shared by the live view and the printed output.

use foldhash::HashSet;

use crate::model::{Proto, Snapshot, Socket};
use crate::source::services;

/// A socket's service name and whether it is the peer's (shown as `->https`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub peer: bool,
}

/// The local ports some socket listens on, computed once per snapshot.
#[derive(Debug, Default)]
pub struct Listening(HashSet<(Proto, u16)>);

impl Listening {
    pub fn of(snapshot: &Snapshot) -> Listening {
        Listening(
            snapshot
                .sockets
                .iter()
                .filter(|s| s.is_listening())
                .map(|s| (s.proto, s.local.port()))
                .collect(),
        )
    }

    /// A client socket: connected, nothing listens on its local port, and that port is in
    /// the kernel's ephemeral range.
    pub fn is_client(&self, snapshot: &Snapshot, socket: &Socket) -> bool {
        let port = socket.local.port();
        socket.remote.port() != 0
            && !self.0.contains(&(socket.proto, port))
            && snapshot.is_ephemeral(port)
    }

    pub fn service(&self, snapshot: &Snapshot, socket: &Socket) -> Option<Service> {
        if self.is_client(snapshot, socket) {
            services::service_name(socket.remote.port(), socket.proto)
                .map(|name| Service { name, peer: true })
        } else {
            services::service_name(socket.local.port(), socket.proto)
                .map(|name| Service { name, peer: false })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Owners, TcpState, Unattributed};

    fn sock(state: TcpState, local: &str, remote: &str) -> Socket {
        Socket::for_test(
            Proto::Tcp,
            state,
            local,
            remote,
            Owners::None(Unattributed::NotFound),
        )
    }

    #[test]
    fn servers_name_their_port_clients_their_peer() {
        let mut snap = Snapshot::empty();
        snap.sockets = vec![
            sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0"),
            sock(TcpState::Established, "10.0.0.1:22", "10.0.0.2:40000"),
            sock(TcpState::Established, "10.0.0.2:40000", "10.0.0.1:22"),
            sock(TcpState::Listen, "0.0.0.0:33000", "0.0.0.0:0"),
            sock(TcpState::Established, "10.0.0.1:33000", "10.0.0.2:443"),
        ];
        let l = Listening::of(&snap);
        let got: Vec<_> = snap
            .sockets
            .iter()
            .map(|s| l.service(&snap, s).map(|v| v.peer))
            .collect();
        assert_eq!(got[..3], [Some(false), Some(false), Some(true)]);
        assert_eq!(l.service(&snap, &snap.sockets[2]).unwrap().name, "ssh");
        // A listener in the ephemeral range keeps its own port's side.
        assert!(!l.is_client(&snap, &snap.sockets[4]));
    }
}
