//! Where a listening socket can be reached from, judged by its bind address alone:
//! `loopback` (127.0.0.0/8, `::1`), `all` interfaces (0.0.0.0, `::`), or the class of the
//! one address it is bound to: `private` (RFC 1918, IPv6 ULA `fc00::/7`, link-local) or
//! `public`.
//!
//! A listening program is an open door; this says which doors face where. It says nothing
//! about firewall rules (portside does not read them): `public` means "bound where a
//! packet from outside could arrive if nothing filters it", not "exposed".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reach of a bind address, narrowest first (so `max` is the widest of several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    Loopback,
    Private,
    Public,
    /// The wildcard address: every interface, present and future.
    All,
}

impl Reach {
    pub const ALL: [Reach; 4] = [Reach::Loopback, Reach::Private, Reach::Public, Reach::All];

    /// The reach of a socket bound to `ip`. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn of(ip: IpAddr) -> Reach {
        match ip {
            IpAddr::V4(v4) => of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => of_v4(v4),
                None => of_v6(v6),
            },
        }
    }

    /// The widest reach of several bind addresses; `None` for none.
    pub fn widest(ips: impl IntoIterator<Item = IpAddr>) -> Option<Reach> {
        ips.into_iter().map(Reach::of).max()
    }

    /// The machine name: JSON, CSV and the `reach:` filter (`all`, not `all interfaces`).
    pub fn name(self) -> &'static str {
        match self {
            Reach::Loopback => "loopback",
            Reach::Private => "private",
            Reach::Public => "public",
            Reach::All => "all",
        }
    }

    /// The name for people: tables and the live view.
    pub fn label(self) -> &'static str {
        match self {
            Reach::All => "all interfaces",
            r => r.name(),
        }
    }

    /// A `reach:` value, any case: a name, `all-interfaces`, `any` or `lo`.
    pub fn parse(text: &str) -> Option<Reach> {
        let t = text.to_ascii_lowercase();
        match t.as_str() {
            "loopback" | "lo" | "local" => Some(Reach::Loopback),
            "private" => Some(Reach::Private),
            "public" => Some(Reach::Public),
            "all" | "all-interfaces" | "any" | "wildcard" => Some(Reach::All),
            _ => None,
        }
    }
}

fn of_v4(ip: Ipv4Addr) -> Reach {
    if ip.is_unspecified() {
        Reach::All
    } else if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_private() || ip.is_link_local() {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn of_v6(ip: Ipv6Addr) -> Reach {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Reach::All
    } else if ip.is_loopback() {
        Reach::Loopback
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 {
        // Unique local fc00::/7, link-local fe80::/10.
        Reach::Private
    } else {
        Reach::Public
    }
}

/// Whether this host has a public address in each family (IPv4, IPv6), from its
/// interfaces' addresses: decides which listeners are reachable on a public address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicAddrs {
    pub v4: bool,
    pub v6: bool,
}

impl PublicAddrs {
    /// From the addresses of the host's interfaces.
    pub fn of(addrs: impl IntoIterator<Item = IpAddr>) -> PublicAddrs {
        let mut out = PublicAddrs::default();
        for ip in addrs {
            if Reach::of(ip) == Reach::Public {
                match ip {
                    IpAddr::V4(_) => out.v4 = true,
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => out.v4 = true,
                    IpAddr::V6(_) => out.v6 = true,
                }
            }
        }
        out
    }

    /// Whether a listener bound to `ip` answers on one of the host's public addresses:
    /// bound to a public address, or to the wildcard of a family that has one (`::`
    /// counts both families: by default an IPv6 wildcard socket also takes IPv4).
    pub fn reachable(self, ip: IpAddr) -> bool {
        match Reach::of(ip) {
            Reach::Public => true,
            Reach::All => match ip {
                IpAddr::V4(_) => self.v4,
                IpAddr::V6(_) => self.v4 || self.v6,
            },
            Reach::Loopback | Reach::Private => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(s: &str) -> Reach {
        Reach::of(s.parse().unwrap())
    }

    #[test]
    fn classes_of_bind_addresses() {
        for (ip, want) in [
            ("127.0.0.1", Reach::Loopback),
            ("127.5.6.7", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("0.0.0.0", Reach::All),
            ("::", Reach::All),
            ("10.1.2.3", Reach::Private),
            ("172.16.0.1", Reach::Private),
            ("172.31.255.255", Reach::Private),
            ("192.168.1.1", Reach::Private),
            ("169.254.3.4", Reach::Private),
            ("fd00::1", Reach::Private),
            ("fc12::1", Reach::Private),
            ("fe80::1", Reach::Private),
            ("::ffff:10.0.0.1", Reach::Private),
            ("172.32.0.1", Reach::Public),
            ("8.8.8.8", Reach::Public),
            ("100.64.0.1", Reach::Public),
            ("2001:db8::1", Reach::Public),
            ("fec0::1", Reach::Public),
        ] {
            assert_eq!(reach(ip), want, "{ip}");
        }
    }

    #[test]
    fn widest_and_names() {
        let ips = ["127.0.0.1", "::1", "10.0.0.1"].map(|s| s.parse().unwrap());
        assert_eq!(Reach::widest(ips), Some(Reach::Private));
        assert_eq!(Reach::widest([]), None);
        for r in Reach::ALL {
            assert_eq!(Reach::parse(r.name()), Some(r));
            assert_eq!(Reach::parse(&r.name().to_uppercase()), Some(r));
        }
        assert_eq!(Reach::parse("all-interfaces"), Some(Reach::All));
        assert_eq!(Reach::All.label(), "all interfaces");
        assert_eq!(Reach::parse("everywhere"), None);
    }

    #[test]
    fn public_reachability_follows_the_host_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let private_only = PublicAddrs::of([ip("10.0.0.2"), ip("127.0.0.1"), ip("fe80::1")]);
        assert_eq!(private_only, PublicAddrs::default());
        assert!(!private_only.reachable(ip("0.0.0.0")));
        assert!(!private_only.reachable(ip("::")));
        assert!(private_only.reachable(ip("203.0.113.7")));
        let v4 = PublicAddrs::of([ip("203.0.113.7")]);
        assert!(v4.reachable(ip("0.0.0.0")) && v4.reachable(ip("::")));
        assert!(!v4.reachable(ip("127.0.0.1")) && !v4.reachable(ip("10.0.0.2")));
        let v6 = PublicAddrs::of([ip("2001:db8::7")]);
        assert!(!v6.reachable(ip("0.0.0.0")) && v6.reachable(ip("::")));
    }
}
