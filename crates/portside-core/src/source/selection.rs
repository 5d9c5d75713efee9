//! Kernel-side selection: which sockets a dump asks the kernel for, as `ss` does with its
//! state mask and `inet_diag` bytecode, so a narrow question at a million sockets does not copy
//! a million sockets out of the kernel.
//!
//! A selection is always a superset of what the caller finally shows: the caller still
//! applies its whole filter to the sample. Whatever the kernel cannot express (owners, a
//! negation it cannot evaluate exactly) is simply left out of the selection.

pub mod bytecode;

use std::net::IpAddr;

use crate::model::{Family, Proto};

/// Which end of a socket a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Local,
    Remote,
}

/// One condition the kernel evaluates per socket (`inet_diag` bytecode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// The port at `end` is in `lo..=hi` (never the full range 0-65535).
    Port { end: End, lo: u16, hi: u16 },
    /// The address at `end` is in `addr/prefix`. The kernel compares an IPv4 network with
    /// IPv4 sockets and with the IPv4-mapped addresses of IPv6 sockets; an IPv6 network
    /// with IPv6 sockets only (mapped addresses included).
    Net { end: End, addr: IpAddr, prefix: u8 },
}

/// Some condition of `any` holds; when `negated`, none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub negated: bool,
    pub any: Vec<Cond>,
}

/// What to ask the kernel for: tables, states per protocol, and clauses that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tcp: bool,
    pub udp: bool,
    pub v4: bool,
    pub v6: bool,
    /// Kernel state bits (`1 << state`, as `TcpState::mask_bit`) of TCP sockets to dump.
    pub tcp_states: u32,
    /// The same for UDP (unconnected sockets are CLOSE, connected ones ESTABLISHED).
    pub udp_states: u32,
    pub clauses: Vec<Clause>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection::everything()
    }
}

impl Selection {
    /// Every socket: no restriction.
    pub fn everything() -> Selection {
        Selection {
            tcp: true,
            udp: true,
            v4: true,
            v6: true,
            tcp_states: u32::MAX,
            udp_states: u32::MAX,
            clauses: Vec::new(),
        }
    }

    /// Whether this selection leaves out nothing.
    pub fn is_everything(&self) -> bool {
        *self == Selection::everything()
    }

    /// Whether a table is selected at all.
    pub fn has_table(&self, proto: Proto, family: Family) -> bool {
        let p = match proto {
            Proto::Tcp => self.tcp,
            Proto::Udp => self.udp,
        };
        let f = match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        };
        p && f && self.states(proto) != 0
    }

    /// The kernel state bits selected for `proto`.
    pub fn states(&self, proto: Proto) -> u32 {
        match proto {
            Proto::Tcp => self.tcp_states,
            Proto::Udp => self.udp_states,
        }
    }

    /// The clauses as bytecode; `None` when there are none, or when they do not fit in one
    /// request (the kernel's jump offsets are 16 bits), so the caller filters them itself.
    pub fn bytecode(&self) -> Option<bytecode::Bytecode> {
        bytecode::compile(&self.clauses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_selects_every_table() {
        let s = Selection::everything();
        assert!(s.is_everything());
        assert!(s.has_table(Proto::Udp, Family::V6));
        assert_eq!(s.bytecode(), None);
        let none = Selection {
            udp_states: 0,
            v4: false,
            ..Selection::everything()
        };
        assert!(!none.is_everything());
        assert!(!none.has_table(Proto::Udp, Family::V6));
        assert!(!none.has_table(Proto::Tcp, Family::V4));
        assert!(none.has_table(Proto::Tcp, Family::V6));
    }
}
