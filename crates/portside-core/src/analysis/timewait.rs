//! TIME_WAIT analysis: who closed first, where the TIME_WAIT sockets point, and how much of
//! the kernel's ephemeral port range each destination uses.
//!
//! The side that closes a TCP connection first keeps it in TIME_WAIT for 60 s. TIME_WAIT on
//! a port with a listener means the server closed first (harmless but memory); on a port
//! without one it means we were the client, and each socket holds an ephemeral port: toward
//! one destination (source address, remote address:port) the kernel has only
//! `ip_local_port_range` ports, after which `connect()` fails with EADDRNOTAVAIL.

use foldhash::{HashMap, HashMapExt};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use crate::analysis::insight::Insight;
use crate::analysis::ports::top_counts;
use crate::model::{Proto, Snapshot, TcpState};
use crate::source::sysctl::KernelSettings;

/// TIME_WAIT sockets split by who closed first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWaitSplit {
    /// On a local port with a listener: the server closed first.
    pub server_side: u32,
    /// On a local port without a listener: we were the client and closed first.
    pub client_side: u32,
}

impl TimeWaitSplit {
    pub fn total(&self) -> u32 {
        self.server_side + self.client_side
    }
}

/// Where outbound connections go: the source address and the remote endpoint. Each
/// destination has its own pool of ephemeral ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
}

/// Hashes the addresses as two or three machine words (the derived impl feeds the hasher
/// every octet with length prefixes); it runs once per outbound socket per tick.
impl Hash for Destination {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match (self.local_ip, self.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                h.write_u64(u64::from(l.to_bits()) << 32 | u64::from(r.to_bits()));
            }
            (l, r) => {
                h.write_u128(v6_bits(l));
                h.write_u128(v6_bits(r));
            }
        }
        h.write_u16(self.remote.port());
    }
}

fn v6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// Ephemeral ports used toward one destination, against the size of the kernel's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphemeralUse {
    pub destination: Destination,
    /// TCP sockets toward the destination, any state, whose local port is in the ephemeral
    /// range and has no listener: exactly the distinct local ports in use (one per 4-tuple).
    pub used: u32,
    /// Ports in `ip_local_port_range`.
    pub range_size: u32,
}

impl EphemeralUse {
    /// `used` in percent of the range; `None` for an empty range.
    pub fn percent(&self) -> Option<f64> {
        (self.range_size > 0).then(|| 100.0 * f64::from(self.used) / f64::from(self.range_size))
    }
}

/// Number of ports in an inclusive range `(low, high)`; 0 if `high < low`.
pub fn range_size((low, high): (u16, u16)) -> u32 {
    if high < low {
        0
    } else {
        u32::from(high) - u32::from(low) + 1
    }
}

/// TIME_WAIT on one local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortTimeWait {
    pub port: u16,
    pub count: u32,
    /// The port has a listener: these are server-side TIME_WAIT.
    pub listening: bool,
}

/// Everything the TIME_WAIT panel and `--once --group` print, for one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWaitReport {
    /// TCP sockets in TIME_WAIT.
    pub total: u32,
    pub split: TimeWaitSplit,
    /// Local ports with the most TIME_WAIT, most first.
    pub by_local_port: Vec<PortTimeWait>,
    /// Remote addresses with the most TIME_WAIT, most first.
    pub by_remote_addr: Vec<(IpAddr, u32)>,
    /// Remote address:port pairs with the most TIME_WAIT, most first.
    pub by_remote: Vec<(SocketAddr, u32)>,
    /// Destinations using the most ephemeral ports (all states), most first.
    pub ephemeral: Vec<EphemeralUse>,
    /// The kernel's ephemeral range the percentages refer to, inclusive.
    pub ephemeral_range: (u16, u16),
}

impl TimeWaitReport {
    /// Build the report, keeping the `top` largest of each breakdown. `snapshot` must be
    /// the one last passed to `insight.update`; the over-time series is
    /// `insight.history().state_series(Proto::Tcp, TcpState::TimeWait)`.
    pub fn build(insight: &Insight, snapshot: &Snapshot, top: usize) -> TimeWaitReport {
        let tw = insight.count(Proto::Tcp, TcpState::TimeWait) as usize;
        let mut by_addr: HashMap<IpAddr, u32> = HashMap::with_capacity(tw.min(4096));
        let mut by_remote: HashMap<SocketAddr, u32> = HashMap::with_capacity(tw);
        for s in &snapshot.sockets {
            if s.proto == Proto::Tcp && s.state == TcpState::TimeWait {
                *by_addr.entry(s.remote.ip()).or_default() += 1;
                *by_remote.entry(s.remote).or_default() += 1;
            }
        }
        let tw_ports = insight
            .ports()
            .rows()
            .iter()
            .filter(|r| r.key.proto == Proto::Tcp && r.count(TcpState::TimeWait) > 0)
            .map(|r| (r.key.port, r.count(TcpState::TimeWait)));
        let by_local_port = top_counts(tw_ports, top)
            .into_iter()
            .map(|(port, count)| PortTimeWait {
                port,
                count,
                listening: insight.listening().contains(Proto::Tcp, port),
            })
            .collect();
        let split = insight.time_wait();
        TimeWaitReport {
            total: split.total(),
            split,
            by_local_port,
            by_remote_addr: top_counts(by_addr.into_iter(), top),
            by_remote: top_counts(by_remote.into_iter(), top),
            ephemeral: insight.ephemeral_top(top),
            ephemeral_range: insight.ephemeral_range(),
        }
    }
}

impl TimeWaitReport {
    /// What the kernel settings mean for this report, one sentence each: port reuse,
    /// the TIME_WAIT cap, and the lifetime `tcp_fin_timeout` is often mistaken for.
    pub fn kernel_notes(&self, k: &KernelSettings) -> Vec<String> {
        let mut notes = Vec::new();
        let client = self.split.client_side;
        match k.tcp_tw_reuse {
            Some(0) if client > 0 => notes.push(format!(
                "net.ipv4.tcp_tw_reuse=0: new outbound connections cannot reuse the ports of \
                 the {client} client-side TIME_WAIT sockets"
            )),
            Some(2)
                if self
                    .ephemeral
                    .iter()
                    .any(|u| !u.destination.remote.ip().is_loopback()) =>
            {
                notes.push(
                    "net.ipv4.tcp_tw_reuse=2: TIME_WAIT ports are reused toward loopback only"
                        .to_string(),
                );
            }
            _ => {}
        }
        if let Some(max) = k.tcp_max_tw_buckets
            && max > 0
            && u64::from(self.total) * 5 >= max * 4
        {
            notes.push(format!(
                "{} TIME_WAIT of net.ipv4.tcp_max_tw_buckets={max} ({:.0}%): past it the kernel \
                 destroys TIME_WAIT sockets early",
                self.total,
                100.0 * f64::from(self.total) / max as f64
            ));
        }
        if let Some(fin) = k.tcp_fin_timeout
            && self.total > 0
        {
            notes.push(format!(
                "TIME_WAIT lasts 60 s, fixed in the kernel; net.ipv4.tcp_fin_timeout={fin} only \
                 bounds FIN_WAIT2"
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{at, snapshot, tcp};
    use crate::model::Socket;

    fn from(local: &str, state: TcpState, remote: &str) -> Socket {
        let mut s = tcp(state, 0, remote);
        s.local = local.parse().unwrap();
        s
    }

    #[test]
    fn range_sizes() {
        assert_eq!(range_size((32768, 60999)), 28232);
        assert_eq!(range_size((1024, 65535)), 64512);
        assert_eq!(range_size((5000, 5000)), 1);
        assert_eq!(range_size((6000, 5000)), 0);
        let u = EphemeralUse {
            destination: Destination {
                local_ip: "127.0.0.1".parse().unwrap(),
                remote: "127.0.0.1:5432".parse().unwrap(),
            },
            used: 23004,
            range_size: 28232,
        };
        assert_eq!(format!("{:.0}", u.percent().unwrap()), "81");
        assert_eq!(EphemeralUse { range_size: 0, ..u }.percent(), None);
    }

    #[test]
    fn report_splits_sides_and_ranks_destinations() {
        let mut sockets = vec![
            from("0.0.0.0:80", TcpState::Listen, "0.0.0.0:0"),
            from("10.0.0.1:80", TcpState::TimeWait, "10.9.0.1:40000"),
            from("10.0.0.1:80", TcpState::TimeWait, "10.9.0.2:40000"),
            // Outbound to the database: two TIME_WAIT, one ESTAB, one outside the range.
            from("10.0.0.1:33000", TcpState::TimeWait, "10.5.0.5:5432"),
            from("10.0.0.1:33001", TcpState::TimeWait, "10.5.0.5:5432"),
            from("10.0.0.1:33002", TcpState::Established, "10.5.0.5:5432"),
            from("10.0.0.1:20000", TcpState::Established, "10.5.0.5:5432"),
            // Same destination from another source address: a separate pool.
            from("10.0.0.2:33000", TcpState::Established, "10.5.0.5:5432"),
        ];
        sockets.push(from("10.0.0.1:33003", TcpState::TimeWait, "10.5.0.6:443"));
        let mut snap = snapshot(at(0), sockets);
        snap.ephemeral_range = (33000, 33099); // 100 ports: percentages are counts
        let mut insight = Insight::default();
        insight.update(&mut snap);
        let r = TimeWaitReport::build(&insight, &snap, 2);

        assert_eq!(r.total, 5);
        assert_eq!(
            r.split,
            TimeWaitSplit {
                server_side: 2,
                client_side: 3
            }
        );
        assert_eq!(
            r.by_local_port,
            vec![
                PortTimeWait {
                    port: 80,
                    count: 2,
                    listening: true
                },
                PortTimeWait {
                    port: 33000,
                    count: 1,
                    listening: false
                },
            ]
        );
        assert_eq!(
            r.by_remote_addr,
            vec![
                ("10.5.0.5".parse().unwrap(), 2),
                ("10.5.0.6".parse().unwrap(), 1)
            ]
        );
        assert_eq!(r.by_remote[0], ("10.5.0.5:5432".parse().unwrap(), 2));
        assert_eq!(r.ephemeral.len(), 2);
        let db = r.ephemeral[0];
        assert_eq!(
            db.destination.local_ip,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(db.destination.remote, "10.5.0.5:5432".parse().unwrap());
        assert_eq!((db.used, db.range_size), (3, 100));
        assert_eq!(db.percent(), Some(3.0));
        assert_eq!(r.ephemeral_range, (33000, 33099));
    }

    #[test]
    fn kernel_notes_explain_the_settings() {
        let mut snap = snapshot(
            at(0),
            vec![
                from("10.0.0.1:40000", TcpState::TimeWait, "10.5.0.5:5432"),
                from("10.0.0.1:40001", TcpState::TimeWait, "10.5.0.5:5432"),
            ],
        );
        snap.ephemeral_range = (32768, 60999);
        let mut insight = Insight::default();
        insight.update(&mut snap);
        let r = TimeWaitReport::build(&insight, &snap, 5);
        let settings = KernelSettings {
            ephemeral_range: (32768, 60999),
            tcp_fin_timeout: Some(60),
            tcp_tw_reuse: Some(0),
            tcp_max_tw_buckets: Some(2),
            somaxconn: Some(4096),
        };
        assert_eq!(
            r.kernel_notes(&settings),
            [
                "net.ipv4.tcp_tw_reuse=0: new outbound connections cannot reuse the ports of \
                 the 2 client-side TIME_WAIT sockets",
                "2 TIME_WAIT of net.ipv4.tcp_max_tw_buckets=2 (100%): past it the kernel \
                 destroys TIME_WAIT sockets early",
                "TIME_WAIT lasts 60 s, fixed in the kernel; net.ipv4.tcp_fin_timeout=60 only \
                 bounds FIN_WAIT2",
            ]
        );
        let calm = KernelSettings {
            tcp_tw_reuse: Some(2),
            tcp_max_tw_buckets: Some(262_144),
            tcp_fin_timeout: None,
            ..settings
        };
        assert_eq!(
            r.kernel_notes(&calm),
            ["net.ipv4.tcp_tw_reuse=2: TIME_WAIT ports are reused toward loopback only"]
        );
    }
}
