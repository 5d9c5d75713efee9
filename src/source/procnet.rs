//! Fallback socket tables: `/proc/net/{tcp,tcp6,udp,udp6}`, for kernels without sock_diag
//! and for diagnosis.
//!
//! Parsed here rather than with `procfs::net::TcpNetEntries`: procfs reports a bad line
//! with no line number, allocates per line (a `String` per line, a `Vec` per address for
//! hex decoding, its own entry list) and accepts a `+` sign in hex fields. Its parser
//! serves as an independent oracle in the tests instead.
//!
//! Differences from sock_diag, by the kernel's design: a LISTEN socket's Send-Q is 0 here
//! (no configured backlog; Recv-Q is the accept queue), request sockets carry the
//! listener's uid (sock_diag says 0), and the file is read in chunks, not atomically.

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
    let mut next = |name: &str| fields.next().ok_or_else(|| format!("missing field `{name}`"));
    let sl = next("sl")?;
    if !sl.ends_with(':') || sl.len() < 2 || !sl[..sl.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad slot `{sl}`, expected a number and `:`"));
    }
    let local = parse_addr(next("local_address")?, family)?;
    let remote = parse_addr(next("rem_address")?, family)?;
    let st = next("st")?;
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
    let port = hex(port, 4)
        .map_err(|e| format!("port in `{field}`: {e}"))
        .and_then(|p| u16::try_from(p).map_err(|_| format!("port {p:#x} in `{field}` out of range")))?;
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
            return Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0)));
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
