//! How socket fields are written to and read back from the recording's columns: the
//! names `--format json` uses, so a query reads like the printed output.

use std::net::{IpAddr, SocketAddr};

use crate::model::{Family, Owners, Proto, Socket, TcpState, Unattributed};

pub fn proto_name(p: Proto) -> &'static str {
    p.name()
}

pub fn proto_of(name: &str) -> Option<Proto> {
    Proto::ALL.into_iter().find(|p| p.name() == name)
}

/// The JSON state name (`TIME_WAIT`, UDP `UNCONN`).
pub fn state_name(s: &Socket) -> &'static str {
    s.state.kernel_name(s.proto)
}

pub fn state_of(proto: Proto, name: &str) -> Option<TcpState> {
    TcpState::ALL
        .into_iter()
        .find(|s| s.kernel_name(proto) == name)
}

/// `known`, `inferred`, or why there is no owner (as in the JSON output).
pub fn attribution(owners: Owners) -> &'static str {
    crate::output::json::attribution(owners)
}

/// The owner of a socket from its attribution and its owner set index (`None` for an
/// unattributed socket); `None` for an unknown attribution name.
pub fn owners_of(attribution: &str, set: Option<u32>) -> Option<Owners> {
    Some(match (attribution, set) {
        ("known", Some(n)) => Owners::Known(n),
        ("inferred", Some(n)) => Owners::Inferred(n),
        ("no_inode", _) => Owners::None(Unattributed::NoInode),
        ("permission_denied", _) => Owners::None(Unattributed::PermissionDenied),
        ("not_found", _) => Owners::None(Unattributed::NotFound),
        _ => return None,
    })
}

/// The key a socket is tracked by across ticks: its cookie, or for a socket without one
/// (the `/proc/net` fallback) a hash of its addresses, with the top bit set so it never
/// meets a real cookie.
pub fn key(s: &Socket) -> u64 {
    if s.cookie != 0 {
        return s.cookie;
    }
    let state = foldhash::fast::FixedState::with_seed(0x706f_7274);
    std::hash::BuildHasher::hash_one(&state, (s.proto, s.local, s.remote)) | (1 << 63)
}

pub fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

pub fn addr(ip: &str, port: i64) -> Option<SocketAddr> {
    let ip: IpAddr = ip.parse().ok()?;
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_per_protocol() {
        for proto in Proto::ALL {
            for state in TcpState::ALL {
                let s = Socket {
                    state,
                    ..Socket::for_test(proto, state, "127.0.0.1:1", "0.0.0.0:0", Owners::Known(0))
                };
                let back = state_of(proto, state_name(&s)).unwrap();
                // SYN_RECV names both the request socket and the full one.
                assert_eq!(back.kernel_name(proto), state.kernel_name(proto));
            }
        }
        assert_eq!(state_of(Proto::Tcp, "BOGUS"), None);
    }

    #[test]
    fn keys_without_cookie_never_meet_cookies() {
        let s = Socket::for_test(
            Proto::Tcp,
            TcpState::TimeWait,
            "127.0.0.1:1",
            "127.0.0.1:2",
            Owners::Known(0),
        );
        assert!(key(&s) >= 1 << 63);
        let with = Socket { cookie: 42, ..s };
        assert_eq!(key(&with), 42);
    }

    #[test]
    fn owners_parse_back() {
        assert_eq!(owners_of("known", Some(3)), Some(Owners::Known(3)));
        assert_eq!(owners_of("inferred", Some(1)), Some(Owners::Inferred(1)));
        assert_eq!(
            owners_of("no_inode", None),
            Some(Owners::None(Unattributed::NoInode))
        );
        assert_eq!(owners_of("known", None), None);
        assert_eq!(owners_of("what", Some(1)), None);
    }
}
