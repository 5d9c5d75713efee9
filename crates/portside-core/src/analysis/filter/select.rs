//! The part of a filter the kernel can evaluate: a [`Selection`] for the sock_diag request.
//!
//! The selection must be a superset of what the filter matches, because the filter still
//! runs on every socket the kernel returns. So a term goes to the kernel only where the
//! kernel's answer is the filter's own: states, protocols and families always; ports and
//! addresses as bytecode; owners never (the kernel has no pids). A negated address term
//! goes only when every network of it means the same to the kernel and to the filter (an
//! IPv6 network overlapping `::ffff:0:0/96` does not: the filter compares IPv4-mapped
//! addresses as IPv4, the kernel as IPv6).

use super::Filter;
use super::net::Net;
use super::state::StateMask;
use super::term::{Pred, Side, Term};
use crate::model::{Family, Proto, TcpState};
use crate::source::selection::{Clause, Cond, End, Selection};

impl Filter {
    /// The kernel-side selection of this filter (a superset of what it matches).
    pub fn selection(&self) -> Selection {
        let mut s = Selection::everything();
        for term in &self.terms {
            narrow(&mut s, term);
        }
        s
    }
}

fn narrow(s: &mut Selection, term: &Term) {
    let negated = term.negated;
    match &term.pred {
        Pred::State(mask) => {
            let bits = kernel_states(*mask);
            let keep = if negated { !bits } else { bits };
            s.tcp_states &= keep;
            s.udp_states &= keep;
        }
        Pred::Proto(p) => {
            let (tcp, udp) = (*p == Proto::Tcp, *p == Proto::Udp);
            s.tcp &= tcp != negated;
            s.udp &= udp != negated;
        }
        Pred::Family(f) => {
            let (v4, v6) = (*f == Family::V4, *f == Family::V6);
            s.v4 &= v4 != negated;
            s.v6 &= v6 != negated;
        }
        Pred::Listening => {
            let listen = TcpState::Listen.mask_bit();
            if negated {
                // UDP `listening` also looks at the remote port: only TCP is exact.
                s.tcp_states &= !listen;
            } else {
                s.tcp_states &= listen;
                s.udp_states &= TcpState::Close.mask_bit();
            }
        }
        Pred::Port(side, ranges) => {
            // A range covering every port holds for every socket: nothing to ask.
            if ranges.iter().any(|r| r.lo == 0 && r.hi == u16::MAX) {
                return;
            }
            let any = ranges
                .iter()
                .flat_map(|r| {
                    ends(*side).map(move |end| Cond::Port {
                        end,
                        lo: r.lo,
                        hi: r.hi,
                    })
                })
                .collect();
            s.clauses.push(Clause { negated, any });
        }
        Pred::Addr(side, nets) => {
            if negated && !nets.iter().all(|n| exact(*n)) {
                return;
            }
            let any = nets
                .iter()
                .flat_map(|n| ends(*side).map(move |end| net_cond(end, *n)))
                .collect();
            s.clauses.push(Clause { negated, any });
        }
        Pred::Proc(_) | Pred::Cmd(_) | Pred::Pid(_) | Pred::User(_) => {}
    }
}

/// The filter's state bits (`1 << (state - 1)`) as the kernel's (`1 << state`).
fn kernel_states(mask: StateMask) -> u32 {
    TcpState::ALL
        .into_iter()
        .filter(|&st| super::state::mask_has(mask, st))
        .fold(0, |bits, st| bits | st.mask_bit())
}

fn ends(side: Side) -> impl Iterator<Item = End> {
    let (local, remote) = match side {
        Side::Either => (true, true),
        Side::Local => (true, false),
        Side::Remote => (false, true),
    };
    [(local, End::Local), (remote, End::Remote)]
        .into_iter()
        .filter_map(|(on, end)| on.then_some(end))
}

fn net_cond(end: End, net: Net) -> Cond {
    match net {
        Net::V4 { net, prefix, .. } => Cond::Net {
            end,
            addr: std::net::Ipv4Addr::from(net).into(),
            prefix,
        },
        Net::V6 { net, prefix, .. } => Cond::Net {
            end,
            addr: std::net::Ipv6Addr::from(net).into(),
            prefix,
        },
    }
}

/// Whether the kernel's test of `net` is exactly the filter's. An IPv4 network: both
/// compare IPv4 sockets and IPv4-mapped addresses of IPv6 sockets. An IPv6 network: the
/// kernel also matches the mapped addresses inside it, which the filter compares as IPv4
/// (and so never with an IPv6 network), unless the network misses `::ffff:0:0/96`.
fn exact(net: Net) -> bool {
    const MAPPED: u128 = 0xffff << 32;
    match net {
        Net::V4 { .. } => true,
        Net::V6 { net, mask, prefix } => prefix > 96 || MAPPED & mask != net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(expr: &str) -> Selection {
        Filter::parse(expr).unwrap().selection()
    }

    const L: u32 = 1 << 10;

    #[test]
    fn states_protocols_and_families() {
        assert!(sel("").is_everything());
        assert!(sel("proc:nginx pid:1 user:0 cmd:x").is_everything());
        let s = sel("state:listen,tw");
        assert_eq!(s.tcp_states, L | 1 << 6);
        assert_eq!(s.udp_states, L | 1 << 6);
        // syn-recv is both kernel states (request sockets are NEW_SYN_RECV).
        assert_eq!(sel("state:syn-recv").tcp_states, 1 << 3 | 1 << 12);
        assert_eq!(sel("!tw").tcp_states, !(1 << 6));
        assert_eq!(sel("est !est").tcp_states, 0);
        let s = sel("listening");
        assert_eq!((s.tcp_states, s.udp_states), (L, 1 << 7));
        let s = sel("!listening");
        assert_eq!((s.tcp_states, s.udp_states), (!L, u32::MAX));
        let s = sel("tcp v6");
        assert!(s.tcp && !s.udp && !s.v4 && s.v6);
        let s = sel("!tcp !v6");
        assert!(!s.tcp && s.udp && s.v4 && !s.v6);
        assert!(s.clauses.is_empty());
    }

    #[test]
    fn ports_and_addresses_become_clauses() {
        let s = sel("lport:443 !port:22,8000-8100");
        assert_eq!(
            s.clauses,
            [
                Clause {
                    negated: false,
                    any: vec![Cond::Port {
                        end: End::Local,
                        lo: 443,
                        hi: 443
                    }],
                },
                Clause {
                    negated: true,
                    any: vec![
                        Cond::Port {
                            end: End::Local,
                            lo: 22,
                            hi: 22
                        },
                        Cond::Port {
                            end: End::Remote,
                            lo: 22,
                            hi: 22
                        },
                        Cond::Port {
                            end: End::Local,
                            lo: 8000,
                            hi: 8100
                        },
                        Cond::Port {
                            end: End::Remote,
                            lo: 8000,
                            hi: 8100
                        },
                    ],
                },
            ]
        );
        assert!(sel("port:0-65535").clauses.is_empty());
        assert!(sel("!port:0-65535").clauses.is_empty());
        let s = sel("raddr:10.0.0.0/8,::ffff:127.0.0.1");
        assert_eq!(
            s.clauses[0].any,
            [
                Cond::Net {
                    end: End::Remote,
                    addr: "10.0.0.0".parse().unwrap(),
                    prefix: 8
                },
                Cond::Net {
                    end: End::Remote,
                    addr: "127.0.0.1".parse().unwrap(),
                    prefix: 32
                },
            ]
        );
        // IPv6 networks: positive always; negated only when they miss the mapped range.
        assert_eq!(sel("addr:::/0").clauses.len(), 1);
        assert_eq!(sel("!addr:::/0").clauses.len(), 0);
        assert_eq!(sel("!addr:::ffff:0:0/95").clauses.len(), 0);
        assert_eq!(sel("!laddr:::1").clauses.len(), 1);
        assert_eq!(sel("!laddr:fe80::/10").clauses.len(), 1);
        assert_eq!(sel("!laddr:fe80::/10,::/0").clauses.len(), 0);
        assert_eq!(sel("!laddr:10.0.0.0/8").clauses.len(), 1);
    }
}
