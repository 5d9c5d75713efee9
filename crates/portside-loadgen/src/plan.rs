//! The socket mix and how it is split over server and client processes: pure arithmetic,
//! so the layout (ports, addresses, who connects where) is decided once and tested.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Named sizes: 1k-100k from the scale issue (total sockets, mixed 1% listen, 60%
/// established, 30% `TIME_WAIT`, 9% `CLOSE_WAIT`); 1m from the engine issue (3,000
/// listeners, 600k established, 300k `TIME_WAIT`, 45k `CLOSE_WAIT`, 48 processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    #[value(name = "1k")]
    K1,
    #[value(name = "10k")]
    K10,
    #[value(name = "100k")]
    K100,
    #[value(name = "1m")]
    M1,
}

impl Preset {
    pub fn mix(self) -> Mix {
        match self {
            Preset::K1 => Mix::of_total(1_000),
            Preset::K10 => Mix::of_total(10_000),
            Preset::K100 => Mix::of_total(100_000),
            Preset::M1 => Mix {
                listen: 3_000,
                established: 600_000,
                time_wait: 300_000,
                close_wait: 45_000,
            },
        }
    }

    /// Fewest holder processes: 1m spreads its ~950k fds over 48 (24 servers, 24 clients,
    /// each under 15,000 fds), as measured in the engine issue; the others over 5.
    pub fn min_processes(self) -> u32 {
        match self {
            Preset::M1 => 48,
            _ => 5,
        }
    }
}

/// How many sockets of each kind the namespace should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub listen: u32,
    /// ESTABLISHED sockets, both ends counted: `established / 2` connected pairs.
    pub established: u32,
    pub time_wait: u32,
    /// `CLOSE_WAIT` sockets (server ends whose client closed; the client end is gone).
    pub close_wait: u32,
}

impl Mix {
    /// The issue's proportions for `total` sockets; established rounded down to pairs.
    pub fn of_total(total: u32) -> Mix {
        let listen = (total / 100).max(1);
        let established = (total * 60 / 100) & !1;
        let time_wait = total * 30 / 100;
        let close_wait = total.saturating_sub(listen + established + time_wait);
        Mix {
            listen,
            established,
            time_wait,
            close_wait,
        }
    }

    pub fn pairs(&self) -> u32 {
        self.established / 2
    }

    pub fn total(&self) -> u32 {
        self.listen + self.established + self.time_wait + self.close_wait
    }
}

/// Well-known ports given to each server's first listener: the "hot" ports that receive
/// half of that server's connections, so the grouped view has a realistic skew.
const HOT_PORTS: [u16; 8] = [443, 80, 5432, 8080, 6379, 3306, 22, 25];
/// Other listeners take ports from here up, below the ephemeral range (32768).
const PORT_BASE: u16 = 20_000;
/// Most listeners the layout supports (ports 20000..32000).
pub const MAX_LISTEN: u32 = 12_000;
/// Explicit source ports (`Role::unique_source`): 61000..65500, above the ephemeral range.
const UNIQUE_PORT_BASE: u16 = 61_000;
const UNIQUE_PORTS: u16 = 4_500;
/// File descriptors a worker keeps free for stdio, pipes and epoll.
const FD_SLACK: u64 = 200;

/// One listening socket and the server process that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub server: u32,
}

impl Listener {
    /// The address a client connects to (a wildcard listener is reached on loopback).
    pub fn target(&self) -> SocketAddr {
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.addr.port())
    }
}

/// What a client connection is for, encoded in the second octet of its IPv4 source address
/// so the server knows what to do with it without reading a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Held open by both sides (ESTABLISHED), or closed by the client only (`CLOSE_WAIT`).
    Hold = 1,
    /// Closed at once by the server: becomes `TIME_WAIT` on whichever side closes first.
    TimeWait = 2,
    /// Churn: the server closes when the client does.
    Churn = 3,
    /// Closed by the client only, so the server's end stays in `CLOSE_WAIT`.
    CloseWait = 4,
}

impl Role {
    /// The role of a peer address as the server sees it; IPv6 peers (`::1`) only hold.
    pub fn of_peer(peer: IpAddr) -> Role {
        match peer {
            IpAddr::V4(v4) => match v4.octets()[1] {
                2 => Role::TimeWait,
                3 => Role::Churn,
                4 => Role::CloseWait,
                _ => Role::Hold,
            },
            IpAddr::V6(_) => Role::Hold,
        }
    }

    /// The `n`th explicit source of `client` for this role: an address and port not used
    /// again for over a million connections, ports above the ephemeral range so they never
    /// meet a connect-time choice. For connections whose client end vanishes while the
    /// server's lives on (`CLOSE_WAIT`, server-side `TIME_WAIT`): the kernel would otherwise
    /// hand the same 4-tuple to a later connect, and the server's end would be reset.
    pub fn unique_source(self, client: u32, n: u64) -> SocketAddr {
        let ip = self.source(client, n / u64::from(UNIQUE_PORTS));
        SocketAddr::new(ip, UNIQUE_PORT_BASE + (n % u64::from(UNIQUE_PORTS)) as u16)
    }

    /// The `n`th IPv4 source address of `client` for this role: 127.role.(client+1).(1..=250),
    /// so no one address carries more than a few hundred connections of the ephemeral range.
    pub fn source(self, client: u32, n: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(
            127,
            self as u8,
            (client % 250 + 1) as u8,
            (n % 250 + 1) as u8,
        ))
    }
}

/// The whole layout: which process holds what, and where connection `k` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mix: Mix,
    pub servers: u32,
    pub clients: u32,
    pub listeners: Vec<Listener>,
    /// Indexes into `listeners` per server, so `target` is O(1) per connection.
    by_server: Vec<Vec<usize>>,
}

impl Plan {
    /// Split `mix` over processes so none holds more than `fd_limit` minus some slack;
    /// at least `min_processes` in all (the owner join should have several to visit).
    pub fn new(
        mix: Mix,
        fd_limit: u64,
        min_processes: u32,
        clients: Option<u32>,
    ) -> Result<Plan, String> {
        let budget = fd_limit.saturating_sub(FD_SLACK).min(15_000);
        if budget < 100 {
            return Err(format!("open-file limit {fd_limit} is too low"));
        }
        let server_fds = u64::from(mix.listen + mix.pairs() + mix.close_wait);
        let servers = server_fds.div_ceil(budget).max(1) as u32;
        // Client ends of CLOSE_WAIT pairs are closed at once: clients hold only the pairs.
        let needed_clients = u64::from(mix.pairs()).div_ceil(budget).max(1) as u32;
        let clients = match clients {
            Some(c) if c < needed_clients => {
                return Err(format!(
                    "{c} client processes cannot hold {} connections under the open-file limit {fd_limit}; need {needed_clients}",
                    mix.pairs()
                ));
            }
            Some(c) => c,
            None => needed_clients
                .max(min_processes.saturating_sub(servers))
                .max(1),
        };
        Plan::layout(mix, servers, clients)
    }

    /// The layout for a given number of server and client processes (workers rebuild the
    /// coordinator's plan from these numbers).
    pub fn layout(mix: Mix, servers: u32, clients: u32) -> Result<Plan, String> {
        if servers == 0 || clients == 0 {
            return Err("at least one server and one client process are needed".into());
        }
        if mix.listen == 0 {
            return Err("at least one listening socket is needed".into());
        }
        if mix.listen > MAX_LISTEN {
            return Err(format!(
                "at most {MAX_LISTEN} listening sockets (got {})",
                mix.listen
            ));
        }
        if mix.listen < servers {
            return Err(format!(
                "{servers} server processes need at least {servers} listening sockets"
            ));
        }
        if servers > 250 || clients > 250 {
            return Err("too many processes for the address layout (max 250 each)".into());
        }
        let listeners: Vec<Listener> = (0..mix.listen)
            .map(|i| Listener {
                addr: listener_addr(i, servers),
                server: i % servers,
            })
            .collect();
        let mut by_server = vec![Vec::new(); servers as usize];
        for (i, l) in listeners.iter().enumerate() {
            by_server[l.server as usize].push(i);
        }
        Ok(Plan {
            mix,
            servers,
            clients,
            listeners,
            by_server,
        })
    }

    /// Listeners held by server `s`, in order (its first one is its hot port).
    pub fn listeners_of(&self, s: u32) -> impl Iterator<Item = &Listener> + '_ {
        self.by_server
            .get(s as usize)
            .into_iter()
            .flatten()
            .map(|&i| &self.listeners[i])
    }

    /// Where connection `k` (counted over all clients) goes: servers in turn, and within a
    /// server, every other connection to its hot port and the rest round-robin.
    pub fn target(&self, k: u64) -> SocketAddr {
        let s = (k % u64::from(self.servers)) as usize;
        let round = k / u64::from(self.servers);
        let own = &self.by_server[s];
        let idx = if round.is_multiple_of(2) {
            0
        } else {
            ((round / 2) % own.len() as u64) as usize
        };
        self.listeners[own[idx]].target()
    }

    /// An IPv4 listener for connection `k` (`TIME_WAIT` and churn need IPv4 sources).
    pub fn target_v4(&self, k: u64) -> SocketAddr {
        (0..64)
            .map(|i| self.target(k + i * u64::from(self.servers)))
            .find(SocketAddr::is_ipv4)
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, HOT_PORTS[0])))
    }

    /// The half-open range of global connection indexes client `c` owns among `n`.
    pub fn share(n: u32, parts: u32, c: u32) -> std::ops::Range<u64> {
        let (n, parts, c) = (u64::from(n), u64::from(parts), u64::from(c));
        (n * c / parts)..(n * (c + 1) / parts)
    }
}

/// Listener `i`: the first `servers` take hot well-known ports; every tenth is IPv6 on
/// `::1`, every third IPv4 wildcard, the rest on 127.0.0.1.
fn listener_addr(i: u32, servers: u32) -> SocketAddr {
    let port = if (i as usize) < HOT_PORTS.len() && i < servers {
        HOT_PORTS[i as usize]
    } else {
        PORT_BASE + i as u16
    };
    let ip = if i >= servers && i % 10 == 9 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else if i.is_multiple_of(3) {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_issue_mix() {
        let m = Preset::K100.mix();
        assert_eq!(
            (m.listen, m.established, m.time_wait, m.close_wait),
            (1_000, 60_000, 30_000, 9_000)
        );
        let m = Preset::K1.mix();
        assert_eq!(
            (m.listen, m.established, m.time_wait, m.close_wait),
            (10, 600, 300, 90)
        );
        assert_eq!(Mix::of_total(1_001).established % 2, 0);
        assert_eq!(Mix::of_total(10_000).total(), 10_000);
    }

    #[test]
    fn million_preset_spreads_over_48_processes() {
        let mix = Preset::M1.mix();
        assert_eq!(mix.total(), 948_000);
        let plan = Plan::new(mix, 20_000, Preset::M1.min_processes(), None).unwrap();
        assert_eq!((plan.servers, plan.clients), (24, 24));
        let per_server = u64::from(mix.listen + mix.pairs() + mix.close_wait).div_ceil(24);
        assert!(per_server < 20_000 - FD_SLACK, "{per_server}");
        assert!(u64::from(mix.pairs()).div_ceil(24) < 20_000 - FD_SLACK);
    }

    #[test]
    fn processes_stay_under_the_fd_limit() {
        let plan = Plan::new(Mix::of_total(100_000), 20_000, 5, None).unwrap();
        assert_eq!((plan.servers, plan.clients), (3, 2));
        let per_server = (1_000 + 30_000 + 9_000_u64).div_ceil(3);
        assert!(per_server < 20_000 - FD_SLACK);
        let small = Plan::new(Mix::of_total(1_000), 20_000, 5, None).unwrap();
        assert_eq!((small.servers, small.clients), (1, 4));
        assert!(Plan::new(Mix::of_total(100_000), 20_000, 5, Some(1)).is_err());
        assert!(Plan::new(Mix::of_total(1_000), 50, 5, None).is_err());
    }

    #[test]
    fn connections_spread_evenly_over_servers_with_hot_ports() {
        let plan = Plan::new(Mix::of_total(100_000), 20_000, 5, None).unwrap();
        let mut per_server = [0u32; 3];
        let mut hot = 0;
        for k in 0..30_000 {
            let t = plan.target(k);
            let l = plan.listeners.iter().find(|l| l.target() == t).unwrap();
            per_server[l.server as usize] += 1;
            hot += u32::from(t.port() < 10_000);
        }
        assert_eq!(per_server, [10_000; 3]);
        assert!(
            hot >= 15_000,
            "half the connections go to hot ports, got {hot}"
        );
        assert_eq!(plan.listeners[0].addr.port(), 443);
        assert!(plan.listeners.iter().any(|l| l.addr.is_ipv6()));
        assert!(plan.target_v4(9).is_ipv4());
    }

    #[test]
    fn listener_ports_are_unique_and_below_the_ephemeral_range() {
        let plan = Plan::new(
            Mix {
                listen: MAX_LISTEN,
                ..Mix::of_total(1_000)
            },
            20_000,
            5,
            None,
        )
        .unwrap();
        let mut ports: Vec<u16> = plan.listeners.iter().map(|l| l.addr.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), MAX_LISTEN as usize);
        assert!(ports.iter().all(|&p| p < 32_768));
    }

    #[test]
    fn roles_round_trip_through_source_addresses() {
        for role in [Role::Hold, Role::TimeWait, Role::Churn, Role::CloseWait] {
            assert_eq!(Role::of_peer(role.source(3, 1_000)), role);
        }
        assert_eq!(Role::of_peer(IpAddr::V6(Ipv6Addr::LOCALHOST)), Role::Hold);
        assert_eq!(
            Role::TimeWait.source(0, 0),
            IpAddr::V4(Ipv4Addr::new(127, 2, 1, 1))
        );
    }

    #[test]
    fn unique_sources_are_unique_and_outside_the_ephemeral_range() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..20_000 {
            let a = Role::CloseWait.unique_source(1, n);
            assert!(a.port() > 60_999, "{a}");
            assert!(seen.insert(a), "{a} repeats");
        }
    }

    #[test]
    fn shares_cover_the_range_exactly() {
        let parts: Vec<_> = (0..3).map(|c| Plan::share(10, 3, c)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }
}
