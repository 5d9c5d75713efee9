//! IP networks (CIDR) of the `addr:` terms, with IPv4-mapped IPv6 compared as IPv4.

use std::fmt;
use std::net::IpAddr;

use super::value::number;

/// An IP network. IPv4-mapped IPv6 networks are stored as IPv4, and addresses are made
/// canonical before the test, so `127.0.0.0/8` also matches `::ffff:127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Net {
    V4 { net: u32, mask: u32, prefix: u8 },
    V6 { net: u128, mask: u128, prefix: u8 },
}

impl Net {
    fn v4(addr: u32, prefix: u8) -> Net {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Net::V4 {
            net: addr & mask,
            mask,
            prefix,
        }
    }

    fn v6(addr: u128, prefix: u8) -> Net {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        Net::V6 {
            net: addr & mask,
            mask,
            prefix,
        }
    }

    pub fn contains(self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Net::V4 { net, mask, .. }, IpAddr::V4(a)) => u32::from(a) & mask == net,
            (Net::V6 { net, mask, .. }, IpAddr::V6(a)) => u128::from(a) & mask == net,
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { net, prefix, .. } => {
                write!(f, "{}", std::net::Ipv4Addr::from(net))?;
                if prefix != 32 {
                    write!(f, "/{prefix}")?;
                }
            }
            Net::V6 { net, prefix, .. } => {
                write!(f, "{}", std::net::Ipv6Addr::from(net))?;
                if prefix != 128 {
                    write!(f, "/{prefix}")?;
                }
            }
        }
        Ok(())
    }
}

/// Parse `ip`, `ip/prefix`, `[v6]` or `[v6]/prefix`; host bits past the prefix are cleared.
pub(super) fn net(item: &str) -> Result<Net, String> {
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| format!("'{addr}' is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            match number(p, "prefix", 255) {
                Ok(n) if n <= u32::from(max) => n as u8,
                _ => {
                    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                    return Err(format!(
                        "prefix /{p} is out of range for {family} (0-{max})"
                    ));
                }
            }
        }
        Some(p) => return Err(format!("'/{p}' is not a prefix length")),
    };
    Ok(match ip {
        IpAddr::V4(a) => Net::v4(u32::from(a), prefix),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Net::v4(u32::from(v4), prefix - 96),
            _ => Net::v6(u128::from(a), prefix),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_v4_v6_and_mapped() {
        let n = net("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert_eq!(net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(net("10.1.2.3").unwrap().to_string(), "10.1.2.3");
        assert_eq!(net("::ffff:127.0.0.1").unwrap().to_string(), "127.0.0.1");
        assert_eq!(
            net("::ffff:127.0.0.0/104").unwrap().to_string(),
            "127.0.0.0/8"
        );
        assert_eq!(net("[::1]").unwrap().to_string(), "::1");
        assert_eq!(net("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        let v6 = net("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(net("::/0").unwrap().contains("::1".parse().unwrap()));
        assert!(!net("::1").unwrap().contains("127.0.0.1".parse().unwrap()));
        let bad = [
            ("10.0.0.0/33", "prefix /33 is out of range for IPv4 (0-32)"),
            ("::/129", "prefix /129 is out of range for IPv6 (0-128)"),
            (
                "::/99999999999",
                "prefix /99999999999 is out of range for IPv6 (0-128)",
            ),
            ("10.0.0.0/", "'/' is not a prefix length"),
            ("10.0.0.0/x", "'/x' is not a prefix length"),
            ("10.0.0.256", "'10.0.0.256' is not an IP address"),
            ("fe80::1%eth0", "'fe80::1%eth0' is not an IP address"),
        ];
        for (text, msg) in bad {
            assert_eq!(net(text), Err(msg.to_string()), "{text}");
        }
    }
}
