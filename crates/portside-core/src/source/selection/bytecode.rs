//! `inet_diag` bytecode (`INET_DIAG_REQ_BYTECODE`): the clauses of a [`Selection`] as the
//! little program the kernel runs on every socket of a dump (`inet_diag_bc_run`).
//!
//! Layout, as iproute2's `ss` builds it (`ssfilter_bytecode`): an op is
//! `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }`, followed by its operand. The
//! kernel starts at offset 0; after an op it skips `yes` bytes when the op holds and `no`
//! bytes when not. The socket is selected when the program ends exactly at its length, and
//! rejected when it ends 4 bytes past it. Every op here has `yes` = its own length (the
//! kernel's `inet_diag_bc_audit` requires jump targets to be on that chain), so a fragment of
//! length L means "holds" by reaching L and "fails" by reaching L + 4:
//! - a condition's `no` is its length + 4;
//! - `a AND b` is `a b` with `a`'s failure jumps moved past `b` (`ssfilter_patch`);
//! - `a OR b` is `a JMP b`, the `JMP` (always "no") skipping `b`: `a` failing lands on `b`;
//! - `NOT a` is `a JMP`, the `JMP` jumping to 4 past the end: `a` failing lands on the end.
//!
//! [`Selection`]: super::Selection

use std::net::IpAddr;

use super::{Clause, Cond, End};

/// `INET_DIAG_BC_*` op codes (`linux/inet_diag.h`).
pub const BC_JMP: u8 = 1;
pub const BC_S_GE: u8 = 2;
pub const BC_S_LE: u8 = 3;
pub const BC_D_GE: u8 = 4;
pub const BC_D_LE: u8 = 5;
pub const BC_S_COND: u8 = 7;
pub const BC_D_COND: u8 = 8;

/// `INET_DIAG_REQ_BYTECODE`: the request attribute carrying the program.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// Longest program sent: jump offsets are 16 bits and the attribute length too.
pub const MAX_LEN: usize = 32 * 1024;

/// A compiled program, ready to be the payload of an `INET_DIAG_REQ_BYTECODE` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytecode(Vec<u8>);

impl Bytecode {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Raw bytes, for tests of how a refused program is handled.
    #[cfg(test)]
    pub(crate) fn from_raw(bytes: Vec<u8>) -> Bytecode {
        Bytecode(bytes)
    }
}

/// The program for "every clause holds"; `None` for no clauses or one too long to send.
pub fn compile(clauses: &[Clause]) -> Option<Bytecode> {
    let mut program: Option<Vec<u8>> = None;
    for clause in clauses {
        let fragment = clause_fragment(clause)?;
        program = Some(match program {
            None => fragment,
            Some(a) => and(a, &fragment),
        });
        if program.as_ref().is_some_and(|p| p.len() > MAX_LEN) {
            return None;
        }
    }
    program.filter(|p| !p.is_empty()).map(Bytecode)
}

fn clause_fragment(clause: &Clause) -> Option<Vec<u8>> {
    let mut any: Option<Vec<u8>> = None;
    // OR is built from the right: `a JMP (b JMP c)`.
    for cond in clause.any.iter().rev() {
        let c = cond_fragment(cond);
        any = Some(match any {
            None => c,
            Some(rest) => or(c, &rest),
        });
        if any.as_ref().is_some_and(|p| p.len() > MAX_LEN) {
            return None;
        }
    }
    let any = any?;
    Some(if clause.negated { not(any) } else { any })
}

/// One condition: a port range is one or two comparisons, an address one host condition.
fn cond_fragment(cond: &Cond) -> Vec<u8> {
    match *cond {
        Cond::Port { end, lo, hi } => {
            let (ge, le) = match end {
                End::Local => (BC_S_GE, BC_S_LE),
                End::Remote => (BC_D_GE, BC_D_LE),
            };
            match (lo > 0, hi < u16::MAX) {
                (true, true) => and(port_op(ge, lo), &port_op(le, hi)),
                (true, false) => port_op(ge, lo),
                (false, true) => port_op(le, hi),
                // The full range holds for every socket: a comparison that always does.
                (false, false) => port_op(ge, 0),
            }
        }
        Cond::Net { end, addr, prefix } => {
            let code = match end {
                End::Local => BC_S_COND,
                End::Remote => BC_D_COND,
            };
            host_cond(code, addr, prefix)
        }
    }
}

/// `S_GE`/`S_LE`/`D_GE`/`D_LE`: the op, then a second op word whose `no` is the port.
pub fn port_op(code: u8, port: u16) -> Vec<u8> {
    let mut b = op(code, 8, 12);
    b.extend(op(0, 0, port));
    b
}

/// `S_COND`/`D_COND`: the op, then `struct inet_diag_hostcond { u8 family; u8 prefix_len;
/// int port; __be32 addr[]; }` (2 bytes of padding before `port`); port -1 = any.
pub fn host_cond(code: u8, addr: IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes): (u8, Vec<u8>) = match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    let len = 4 + 8 + bytes.len();
    let len16 = u16::try_from(len).unwrap_or(u16::MAX);
    let mut b = op(code, len as u8, len16 + 4);
    b.extend([family, prefix, 0, 0]);
    b.extend((-1i32).to_ne_bytes());
    b.extend(bytes);
    b
}

/// `JMP`: never "holds", so it always jumps `no` bytes.
pub fn jmp(no: u16) -> Vec<u8> {
    op(BC_JMP, 4, no)
}

fn op(code: u8, yes: u8, no: u16) -> Vec<u8> {
    let mut b = vec![code, yes];
    b.extend(no.to_ne_bytes());
    b
}

fn no_of(program: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([program[at + 2], program[at + 3]])
}

/// `a AND b`: `a`'s failure jumps (to its length + 4) now land past `b`.
fn and(mut a: Vec<u8>, b: &[u8]) -> Vec<u8> {
    let len = a.len();
    let mut at = 0;
    while at < len {
        let rest = len - at;
        let no = no_of(&a, at);
        if usize::from(no) == rest + 4 {
            let moved = u16::try_from(usize::from(no) + b.len()).unwrap_or(u16::MAX);
            a[at + 2..at + 4].copy_from_slice(&moved.to_ne_bytes());
        }
        at += usize::from(a[at + 1]);
    }
    a.extend_from_slice(b);
    a
}

/// `a OR b`: `a JMP b`; the jump skips `b` when `a` held.
fn or(mut a: Vec<u8>, b: &[u8]) -> Vec<u8> {
    let skip = u16::try_from(b.len() + 4).unwrap_or(u16::MAX);
    a.extend(jmp(skip));
    a.extend_from_slice(b);
    a
}

/// `NOT a`: `a JMP`; holding, `a` falls into the jump to failure; failing, it lands past it.
fn not(mut a: Vec<u8>) -> Vec<u8> {
    a.extend(jmp(8));
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The kernel's `inet_diag_bc_audit` (`net/ipv4/inet_diag.c`), for `S_COND`/`D_COND`, port
    /// comparisons and JMP: what it would refuse with EINVAL.
    fn audit(bc: &[u8]) -> Result<(), String> {
        let total = i64::try_from(bc.len()).unwrap();
        if total < 4 {
            return Err("shorter than one op".into());
        }
        let valid_cc = |cc: i64| -> bool {
            let (mut len, mut at) = (total, 0usize);
            while len >= 0 {
                if cc > len {
                    return false;
                }
                if cc == len {
                    return true;
                }
                let yes = i64::from(bc[at + 1]);
                if yes < 4 || yes & 3 != 0 {
                    return false;
                }
                len -= yes;
                at += yes as usize;
            }
            false
        };
        let (mut len, mut at) = (total, 0usize);
        while len > 0 {
            let code = bc[at];
            let (yes, no) = (i64::from(bc[at + 1]), i64::from(no_of(bc, at)));
            let min = match code {
                BC_S_COND | BC_D_COND => {
                    let alen = match bc.get(at + 4) {
                        Some(&f) if f == libc::AF_INET as u8 => 4,
                        Some(&f) if f == libc::AF_INET6 as u8 => 16,
                        Some(0) => 0,
                        _ => return Err(format!("bad family at {at}")),
                    };
                    if i64::from(bc[at + 5]) > 8 * alen {
                        return Err(format!("prefix too long at {at}"));
                    }
                    4 + 8 + alen
                }
                BC_S_GE | BC_S_LE | BC_D_GE | BC_D_LE => 8,
                BC_JMP => 4,
                c => return Err(format!("unknown op {c} at {at}")),
            };
            if len < min {
                return Err(format!("op at {at} runs past the end"));
            }
            if no < min || no > len + 4 || no & 3 != 0 {
                return Err(format!("bad no {no} at {at}"));
            }
            if no < len && !valid_cc(len - no) {
                return Err(format!("no {no} at {at} lands inside an op"));
            }
            if yes < min || yes > len + 4 || yes & 3 != 0 {
                return Err(format!("bad yes {yes} at {at}"));
            }
            at += yes as usize;
            len -= yes;
        }
        if len == 0 {
            Ok(())
        } else {
            Err("yes chain does not end at the end".into())
        }
    }

    /// A socket as the kernel's `inet_diag_entry` sees it.
    #[derive(Debug, Clone, Copy)]
    struct Entry {
        v6: bool,
        saddr: [u8; 16],
        daddr: [u8; 16],
        sport: u16,
        dport: u16,
    }

    /// `bitstring_match`: the first `bits` bits of `a` and `b` agree.
    fn bits_match(a: &[u8], b: &[u8], bits: usize) -> bool {
        (0..bits).all(|i| (a[i / 8] ^ b[i / 8]) & (0x80 >> (i % 8)) == 0)
    }

    /// The kernel's `inet_diag_bc_run`.
    fn run(bc: &[u8], e: &Entry) -> bool {
        let (mut len, mut at) = (i64::try_from(bc.len()).unwrap(), 0usize);
        while len > 0 {
            let code = bc[at];
            let operand = || u32::from(no_of(bc, at + 4));
            let yes = match code {
                BC_JMP => false,
                BC_S_GE => u32::from(e.sport) >= operand(),
                BC_S_LE => u32::from(e.sport) <= operand(),
                BC_D_GE => u32::from(e.dport) >= operand(),
                BC_D_LE => u32::from(e.dport) <= operand(),
                BC_S_COND | BC_D_COND => {
                    let family = bc[at + 4];
                    let prefix = usize::from(bc[at + 5]);
                    let addr = if code == BC_S_COND {
                        &e.saddr
                    } else {
                        &e.daddr
                    };
                    let cond = &bc[at + 12..];
                    let entry_family = if e.v6 {
                        libc::AF_INET6 as u8
                    } else {
                        libc::AF_INET as u8
                    };
                    if family == entry_family {
                        prefix == 0 || bits_match(addr, cond, prefix)
                    } else {
                        e.v6 && family == libc::AF_INET as u8
                            && addr[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                            && bits_match(&addr[12..], cond, prefix)
                    }
                }
                c => panic!("op {c}"),
            };
            let step = if yes {
                i64::from(bc[at + 1])
            } else {
                i64::from(no_of(bc, at))
            };
            len -= step;
            at = at.wrapping_add(step as usize);
        }
        len == 0
    }

    fn entry(local: &str, remote: &str) -> Entry {
        let parse = |s: &str| -> (bool, [u8; 16], u16) {
            let a: std::net::SocketAddr = s.parse().unwrap();
            match a.ip() {
                IpAddr::V4(v4) => {
                    let mut b = [0; 16];
                    b[..4].copy_from_slice(&v4.octets());
                    (false, b, a.port())
                }
                IpAddr::V6(v6) => (true, v6.octets(), a.port()),
            }
        };
        let (v6, saddr, sport) = parse(local);
        let (_, daddr, dport) = parse(remote);
        Entry {
            v6,
            saddr,
            daddr,
            sport,
            dport,
        }
    }

    fn port(end: End, lo: u16, hi: u16) -> Cond {
        Cond::Port { end, lo, hi }
    }

    fn net(end: End, addr: &str, prefix: u8) -> Cond {
        Cond::Net {
            end,
            addr: addr.parse().unwrap(),
            prefix,
        }
    }

    fn clause(negated: bool, any: &[Cond]) -> Clause {
        Clause {
            negated,
            any: any.to_vec(),
        }
    }

    /// What a clause means, evaluated directly (the reference the program must agree with).
    fn holds(clause: &Clause, sock: &Entry) -> bool {
        let one = |cond: &Cond| match *cond {
            Cond::Port { end, lo, hi } => {
                let port = if end == End::Local {
                    sock.sport
                } else {
                    sock.dport
                };
                (lo..=hi).contains(&port)
            }
            Cond::Net { end, addr, prefix } => {
                let at = if end == End::Local {
                    &sock.saddr
                } else {
                    &sock.daddr
                };
                let bits = usize::from(prefix);
                match addr {
                    IpAddr::V4(net) if sock.v6 => {
                        at[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                            && bits_match(&at[12..], &net.octets(), bits)
                    }
                    IpAddr::V4(net) => bits_match(at, &net.octets(), bits),
                    IpAddr::V6(net) => sock.v6 && bits_match(at, &net.octets(), bits),
                }
            }
        };
        clause.any.iter().any(one) != clause.negated
    }

    // Hand-checked bytes of each op this module emits (native endian: x86 is little).

    #[test]
    fn port_comparisons() {
        // {S_GE, yes 8, no 12}, {0, 0, 443}.
        assert_eq!(port_op(BC_S_GE, 443), [2, 8, 12, 0, 0, 0, 0xbb, 0x01]);
        assert_eq!(port_op(BC_S_LE, 1024), [3, 8, 12, 0, 0, 0, 0x00, 0x04]);
        assert_eq!(port_op(BC_D_GE, 1), [4, 8, 12, 0, 0, 0, 1, 0]);
        assert_eq!(port_op(BC_D_LE, 65534), [5, 8, 12, 0, 0, 0, 0xfe, 0xff]);
    }

    #[test]
    fn host_conditions() {
        // {S_COND, yes 16, no 20}, {AF_INET 2, /8, pad}, port -1, 10.0.0.0.
        assert_eq!(
            host_cond(BC_S_COND, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
            [
                7, 16, 20, 0, 2, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 10, 0, 0, 0
            ]
        );
        // {D_COND, yes 28, no 32}, {AF_INET6 10, /128, pad}, port -1, ::1.
        let mut want = vec![8, 28, 32, 0, 10, 128, 0, 0, 0xff, 0xff, 0xff, 0xff];
        want.extend([0; 15]);
        want.push(1);
        assert_eq!(
            host_cond(BC_D_COND, IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            want
        );
    }

    #[test]
    fn jump() {
        assert_eq!(jmp(8), [1, 4, 8, 0]);
        assert_eq!(jmp(300), [1, 4, 0x2c, 0x01]);
    }

    #[test]
    fn combinators_lay_out_as_ss_does() {
        // `sport >= 1000 AND sport <= 2000`: the first op's failure moves past the second.
        let range = compile(&[clause(false, &[port(End::Local, 1000, 2000)])]).unwrap();
        assert_eq!(
            range.as_bytes(),
            [2, 8, 20, 0, 0, 0, 0xe8, 0x03, 3, 8, 12, 0, 0, 0, 0xd0, 0x07]
        );
        // `sport <= 22 OR dport <= 22`: a JMP over the second comparison.
        let either = compile(&[clause(
            false,
            &[port(End::Local, 0, 22), port(End::Remote, 0, 22)],
        )])
        .unwrap();
        assert_eq!(
            either.as_bytes(),
            [
                3, 8, 12, 0, 0, 0, 22, 0, 1, 4, 12, 0, 5, 8, 12, 0, 0, 0, 22, 0
            ]
        );
        // `NOT sport >= 5`: holding falls into a JMP to failure (4 past the end).
        let not = compile(&[clause(true, &[port(End::Local, 5, u16::MAX)])]).unwrap();
        assert_eq!(not.as_bytes(), [2, 8, 12, 0, 0, 0, 5, 0, 1, 4, 8, 0]);
        // Two clauses: the NOT's failing JMP moves past the second clause.
        let both = compile(&[
            clause(true, &[port(End::Local, 5, u16::MAX)]),
            clause(false, &[port(End::Remote, 7, u16::MAX)]),
        ])
        .unwrap();
        assert_eq!(
            both.as_bytes(),
            [
                2, 8, 12, 0, 0, 0, 5, 0, 1, 4, 16, 0, 4, 8, 12, 0, 0, 0, 7, 0
            ]
        );
        assert_eq!(compile(&[]), None);
    }

    #[test]
    fn too_long_is_left_to_user_space() {
        let many: Vec<Cond> = (0..4000).map(|p| port(End::Local, p, p)).collect();
        assert_eq!(compile(&[clause(false, &many)]), None);
    }

    /// Random clause sets (fixed xorshift stream), each program audited as the kernel does
    /// and run on sockets as the kernel does, against the clauses evaluated directly.
    #[test]
    fn programs_pass_the_audit_and_mean_their_clauses() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let ports = [0u16, 1, 22, 80, 443, 1024, 8080, 40000, 65535];
        let nets: [(&str, u8); 8] = [
            ("127.0.0.0", 8),
            ("10.1.0.0", 16),
            ("0.0.0.0", 0),
            ("127.0.0.1", 32),
            ("::1", 128),
            ("fe80::", 10),
            ("::", 0),
            ("::ffff:0.0.0.0", 96),
        ];
        let sockets: Vec<Entry> = [
            ("127.0.0.1:80", "127.0.0.1:40000"),
            ("10.1.2.3:443", "192.168.1.1:1024"),
            ("0.0.0.0:22", "0.0.0.0:0"),
            ("[::1]:8080", "[::1]:1"),
            ("[::ffff:127.0.0.1]:443", "[::ffff:10.1.9.9]:65535"),
            ("[fe80::1]:0", "[2001:db8::1]:22"),
            ("[::]:1024", "[::]:0"),
        ]
        .iter()
        .map(|(l, r)| entry(l, r))
        .collect();
        let mut checked = 0;
        for _ in 0..3000 {
            let n_clauses = 1 + next() % 4;
            let clauses: Vec<Clause> = (0..n_clauses)
                .map(|_| {
                    let n = 1 + next() % 4;
                    let any = (0..n)
                        .map(|_| {
                            let end = if next() % 2 == 0 {
                                End::Local
                            } else {
                                End::Remote
                            };
                            if next() % 2 == 0 {
                                let a = ports[(next() % 9) as usize];
                                let b = ports[(next() % 9) as usize];
                                port(end, a.min(b), a.max(b))
                            } else {
                                let (a, p) = nets[(next() % 8) as usize];
                                net(end, a, p)
                            }
                        })
                        .collect::<Vec<_>>();
                    clause(next() % 3 == 0, &any)
                })
                .collect();
            let bc = compile(&clauses).unwrap();
            audit(bc.as_bytes()).unwrap_or_else(|e| panic!("{clauses:?}: {e}"));
            for s in &sockets {
                let want = clauses.iter().all(|c| holds(c, s));
                assert_eq!(run(bc.as_bytes(), s), want, "{clauses:?} on {s:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 3000 * sockets.len());
    }
}
