//! Fallback socket tables: `/proc/net/{tcp,tcp6,udp,udp6}`, for kernels without `sock_diag`
//! and for diagnosis.
//!
//! Parsed here rather than with `procfs::net::TcpNetEntries`: procfs reports a bad line
//! with no line number, allocates per line (a `String` per line, a `Vec` per address for
//! hex decoding, its own entry list) and accepts a `+` sign in hex fields. Its parser
//! serves as an independent oracle in the tests instead.
//!
//! Differences from `sock_diag`, by the kernel's design: a LISTEN socket's Send-Q is 0 here
//! (no configured backlog; Recv-Q is the accept queue), request sockets carry the
//! listener's uid (`sock_diag` says 0), and the file is read in chunks, not atomically.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;

use crate::model::{Family, Owners, Proto, Socket, TcpState, Unattributed};
use crate::source::SourceError;

/// The file name of a table under `<proc_root>/net/`.
pub fn table_name(proto: Proto, family: Family) -> &'static str {
    match (proto, family) {
        (Proto::Tcp, Family::V4) => "tcp",
        (Proto::Tcp, Family::V6) => "tcp6",
        (Proto::Udp, Family::V4) => "udp",
        (Proto::Udp, Family::V6) => "udp6",
    }
}

/// Read one table under an injected proc root: `<proc_root>/net/{tcp,tcp6,udp,udp6}`.
/// Appends to `out`; on error `out` is left as it was.
pub fn read_table(
    proc_root: &Path,
    proto: Proto,
    family: Family,
    out: &mut Vec<Socket>,
) -> Result<(), SourceError> {
    let path = proc_root.join("net").join(table_name(proto, family));
    // One String per table, not per socket: lines are parsed as slices of it.
    let text = std::fs::read_to_string(&path).map_err(|source| SourceError::Io {
        path: path.clone(),
        source,
    })?;
    let before = out.len();
    let mut lines = text.lines();
    let header_ok = lines
        .next()
        .is_some_and(|h| h.trim_start().starts_with("sl") && h.contains("local_address"));
    if !header_ok {
        return Err(SourceError::Parse {
            path,
            line: 1,
            msg: "missing the `sl local_address ...` header".into(),
        });
    }
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, proto, family) {
            Ok(socket) => out.push(socket),
            Err(msg) => {
                out.truncate(before);
                return Err(SourceError::Parse {
                    path,
                    line: i + 2,
                    msg,
                });
            }
        }
    }
    Ok(())
}

/// Parse one data line of such a table (pure). Errors say what is wrong; callers add path and line.
///
/// `sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`
pub fn parse_line(line: &str, proto: Proto, family: Family) -> Result<Socket, String> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |name: &str| {
        fields
            .next()
            .ok_or_else(|| format!("missing field `{name}`"))
    };
    let sl = next("sl")?;
    if !sl.ends_with(':') || sl.len() < 2 || !sl[..sl.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("bad slot `{sl}`, expected a number and `:`"));
    }
    let local = parse_addr(next("local_address")?, family)?;
    let remote = parse_addr(next("rem_address")?, family)?;
    let st = next("st")?;
    if st.len() != 2 {
        return Err(format!("state `{st}`, expected 2 hex digits"));
    }
    let state = match hex(st, 2).map_err(|e| format!("state `{st}`: {e}"))? {
        // Request sockets: the kernel prints them as SYN_RECV already; keep it so.
        12 => TcpState::SynRecv,
        v => u8::try_from(v)
            .ok()
            .and_then(TcpState::from_kernel)
            .ok_or_else(|| format!("unknown state {st}"))?,
    };
    let queues = next("tx_queue:rx_queue")?;
    let (tx, rx) = queues
        .split_once(':')
        .ok_or_else(|| format!("queues `{queues}`, expected tx:rx"))?;
    let send_q = hex(tx, 8).map_err(|e| format!("tx_queue `{tx}`: {e}"))?;
    let recv_q = hex(rx, 8).map_err(|e| format!("rx_queue `{rx}`: {e}"))?;
    next("tr:tm->when")?;
    next("retrnsmt")?;
    let uid = decimal(next("uid")?, "uid")?;
    next("timeout")?;
    let inode = decimal(next("inode")?, "inode")?;
    Ok(Socket {
        proto,
        family,
        state,
        local,
        remote,
        recv_q,
        send_q,
        uid: u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?,
        inode,
        // /proc/net has no cookie.
        cookie: 0,
        owners: Owners::None(if inode == 0 {
            Unattributed::NoInode
        } else {
            Unattributed::NotFound
        }),
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6). The kernel prints each 32-bit
/// word of the address as a host-order integer, so the word's native bytes are the octets.
fn parse_addr(field: &str, family: Family) -> Result<SocketAddr, String> {
    let (addr, port) = field
        .split_once(':')
        .ok_or_else(|| format!("address `{field}`, expected ADDR:PORT"))?;
    // `%04X`: four digits, so anything longer is out of range for a u16.
    let port = match hex(port, 4) {
        Ok(p) if port.len() == 4 => p as u16,
        _ => {
            return Err(format!(
                "port in `{field}`: expected 4 hex digits (0000-FFFF)"
            ));
        }
    };
    let word = |i: usize| -> Result<[u8; 4], String> {
        addr.get(i * 8..i * 8 + 8)
            .ok_or_else(|| format!("address `{addr}` too short"))
            .and_then(|w| hex(w, 8).map_err(|e| format!("address `{addr}`: {e}")))
            .map(u32::to_ne_bytes)
    };
    let ip = match (family, addr.len()) {
        (Family::V4, 8) => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        (Family::V6, 32) => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            return Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                0,
                0,
            )));
        }
        (_, n) => {
            return Err(format!(
                "address `{addr}` has {n} hex digits, expected {} for {}",
                if family == Family::V4 { 8 } else { 32 },
                family.name()
            ));
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Strict hex: 1..=`max_digits` hex digits, no sign, no prefix.
fn hex(s: &str, max_digits: usize) -> Result<u32, String> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected 1 to {max_digits} hex digits"));
    }
    u32::from_str_radix(s, 16).map_err(|e| e.to_string())
}

/// Strict decimal u64: digits only.
fn decimal(s: &str, name: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} `{s}` is not a decimal number"));
    }
    s.parse().map_err(|e| format!("{name} `{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/procnet")
    }

    fn read(proto: Proto, family: Family) -> Vec<Socket> {
        let mut out = Vec::new();
        read_table(&fixture_root(), proto, family, &mut out).unwrap();
        out
    }

    const LISTENER: &str = "   1: 0100007F:1B58 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 672524 2 000000007bb85ee3 100 0 0 10 0";

    #[test]
    fn listener_line_parses_every_field() {
        let s = parse_line(LISTENER, Proto::Tcp, Family::V4).unwrap();
        assert_eq!(s.state, TcpState::Listen);
        assert_eq!(s.local, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.remote, "0.0.0.0:0".parse().unwrap());
        // Recv-Q is the accept queue; /proc has no backlog, so Send-Q is 0 (sock_diag says 7).
        assert_eq!((s.recv_q, s.send_q, s.uid, s.inode), (1, 0, 0, 672_524));
        assert_eq!(s.owners, Owners::None(Unattributed::NotFound));
    }

    #[test]
    fn recorded_tables_read_exactly() {
        let tcp = read(Proto::Tcp, Family::V4);
        assert_eq!(tcp.len(), 17);
        let tw = tcp.iter().find(|s| s.state == TcpState::TimeWait).unwrap();
        assert_eq!(
            (tw.local.port(), tw.remote.port(), tw.inode),
            (44376, 7001, 0)
        );
        assert_eq!(tw.owners, Owners::None(Unattributed::NoInode));
        let unread = tcp.iter().find(|s| s.recv_q == 100).unwrap();
        assert_eq!(
            (unread.state, unread.local.port(), unread.inode),
            (TcpState::Established, 7000, 672_526)
        );
        let syn_sent = tcp.iter().find(|s| s.state == TcpState::SynSent).unwrap();
        assert_eq!((syn_sent.remote.port(), syn_sent.send_q), (7005, 1));
        assert!(
            tcp.iter()
                .any(|s| s.state == TcpState::SynRecv && s.local.port() == 7004)
        );
        assert!(
            tcp.iter()
                .any(|s| s.state == TcpState::CloseWait && s.recv_q == 1)
        );
        assert!(
            tcp.iter()
                .any(|s| s.state == TcpState::FinWait2 && s.inode == 0)
        );

        let tcp6 = read(Proto::Tcp, Family::V6);
        assert_eq!(tcp6.len(), 5);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7003".parse().unwrap();
        assert!(
            tcp6.iter()
                .any(|s| s.local == mapped && s.state == TcpState::Listen)
        );
        assert!(
            tcp6.iter()
                .any(|s| s.local == "[::1]:7002".parse().unwrap() && s.remote.port() == 45026)
        );

        let udp = read(Proto::Udp, Family::V4);
        assert_eq!(
            udp.iter()
                .map(|s| (s.local.port(), s.state, s.recv_q))
                .collect::<Vec<_>>(),
            vec![
                (7100, TcpState::Close, 832),
                (7101, TcpState::Established, 0)
            ]
        );
        let udp6 = read(Proto::Udp, Family::V6);
        assert_eq!(udp6.len(), 1);
        assert_eq!(
            (udp6[0].local, udp6[0].proto),
            ("[::1]:7102".parse().unwrap(), Proto::Udp)
        );
    }

    #[test]
    fn agrees_with_procfs_parser_on_recorded_tables() {
        use procfs::FromBufReadSI;
        use procfs::net::{TcpNetEntries, UdpNetEntries};
        let si = procfs::current_system_info();
        for family in Family::ALL {
            let file = |p| {
                std::io::BufReader::new(
                    std::fs::File::open(fixture_root().join("net").join(table_name(p, family)))
                        .unwrap(),
                )
            };
            let oracle: Vec<_> = TcpNetEntries::from_buf_read(file(Proto::Tcp), si)
                .unwrap()
                .0
                .into_iter()
                .map(|e| {
                    (
                        e.local_address,
                        e.remote_address,
                        e.state.to_u8(),
                        e.rx_queue,
                        e.tx_queue,
                        e.uid,
                        e.inode,
                    )
                })
                .chain(
                    UdpNetEntries::from_buf_read(file(Proto::Udp), si)
                        .unwrap()
                        .0
                        .into_iter()
                        .map(|e| {
                            (
                                e.local_address,
                                e.remote_address,
                                e.state.to_u8(),
                                e.rx_queue,
                                e.tx_queue,
                                e.uid,
                                e.inode,
                            )
                        }),
                )
                .collect();
            let mine: Vec<_> = read(Proto::Tcp, family)
                .into_iter()
                .chain(read(Proto::Udp, family))
                .map(|s| {
                    (
                        s.local,
                        s.remote,
                        s.state as u8,
                        s.recv_q,
                        s.send_q,
                        s.uid,
                        s.inode,
                    )
                })
                .collect();
            assert!(!mine.is_empty());
            assert_eq!(mine, oracle, "{family:?}");
        }
    }

    #[test]
    fn every_state_value_maps() {
        for v in 1..=11u8 {
            let line = LISTENER.replacen(" 0A ", &format!(" {v:02X} "), 1);
            let s = parse_line(&line, Proto::Tcp, Family::V4).unwrap();
            assert_eq!(s.state as u8, v, "{line}");
        }
        let line = LISTENER.replacen(" 0A ", " 0C ", 1);
        assert_eq!(
            parse_line(&line, Proto::Tcp, Family::V4).unwrap().state,
            TcpState::SynRecv
        );
        for bad in ["00", "0E", "FF", "1", "100", "+1", "zz"] {
            let line = LISTENER.replacen(" 0A ", &format!(" {bad} "), 1);
            assert!(
                parse_line(&line, Proto::Tcp, Family::V4).is_err(),
                "state {bad}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let fields: Vec<&str> = LISTENER.split_ascii_whitespace().collect();
        // The first ten fields are required; the rest are ignored.
        for n in 0..10 {
            let line = fields[..n].join(" ");
            assert!(
                parse_line(&line, Proto::Tcp, Family::V4).is_err(),
                "{n} fields"
            );
        }
        for cut in 0..LISTENER.len() {
            let _ = parse_line(&LISTENER[..cut], Proto::Tcp, Family::V4);
        }
        assert!(parse_line(&fields[..10].join(" "), Proto::Tcp, Family::V4).is_ok());
    }

    #[test]
    fn bad_fields_are_errors_naming_them() {
        let bad = |from: &str, to: &str| {
            let line = LISTENER.replacen(from, to, 1);
            assert_ne!(line, LISTENER, "{from}");
            parse_line(&line, Proto::Tcp, Family::V4).unwrap_err()
        };
        assert!(bad("0100007F:1B58", "0100007G:1B58").contains("address"));
        assert!(bad("0100007F:1B58", "+100007F:1B58").contains("address"));
        assert!(bad("0100007F:1B58", "0100007F:1FFFF").contains("port"));
        assert!(bad("0100007F:1B58", "0100007F:").contains("port"));
        assert!(bad("0100007F:1B58", "0100007F1B58").contains("ADDR:PORT"));
        assert!(
            bad("0100007F:1B58", "00000000000000000000000001000000:1B58").contains("32 hex digits")
        );
        assert!(bad("00000000:00000001", "00000000-00000001").contains("tx:rx"));
        assert!(bad("00000000:00000001", "00000000:100000000").contains("rx_queue"));
        assert!(bad("   1:", "   x:").contains("slot"));
        assert!(bad("     0        0 672524", "    -1        0 672524").contains("uid"));
        assert!(bad("     0        0 672524", "  99999999999        0 672524").contains("uid"));
        assert!(bad("0 672524 2", "0 67x524 2").contains("inode"));
        // An IPv4 line in an IPv6 table.
        assert!(
            parse_line(LISTENER, Proto::Tcp, Family::V6)
                .unwrap_err()
                .contains("ipv6")
        );
    }

    #[test]
    fn read_table_reports_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        std::fs::create_dir(&net).unwrap();
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        std::fs::write(
            net.join("tcp"),
            format!("{header}{LISTENER}\n   2: garbage\n"),
        )
        .unwrap();
        let mut out = vec![parse_line(LISTENER, Proto::Tcp, Family::V4).unwrap()];
        match read_table(dir.path(), Proto::Tcp, Family::V4, &mut out) {
            Err(SourceError::Parse { path, line, msg }) => {
                assert_eq!((path, line), (net.join("tcp"), 3));
                assert!(msg.contains("address"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out.len(), 1, "a failed read leaves `out` as it was");

        std::fs::write(net.join("udp"), "no header\n").unwrap();
        assert!(matches!(
            read_table(dir.path(), Proto::Udp, Family::V4, &mut out),
            Err(SourceError::Parse { line: 1, .. })
        ));
        assert!(matches!(
            read_table(dir.path(), Proto::Tcp, Family::V6, &mut out),
            Err(SourceError::Io { .. })
        ));
        std::fs::write(net.join("udp6"), header).unwrap();
        read_table(dir.path(), Proto::Udp, Family::V6, &mut out).unwrap();
        assert_eq!(out.len(), 1, "an empty table adds nothing");
    }
}
