//! `portside serve` arguments: self-contained, so the subcommand moves as one piece.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Args;

use crate::cli::parse_interval;
use crate::exporter::Limits;

/// The default port: 9632, marked free in the Prometheus wiki's "Default port
/// allocations" list when we read it (README: "Prometheus").
pub const DEFAULT_PORT: u16 = 9632;

/// Serve socket metrics to Prometheus on /metrics (headless)
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve on; beyond loopback only when given, e.g. 0.0.0.0:9632
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9632", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Time between samples; scrapes are served the last sample's values
    #[arg(long, default_value = "15s", value_parser = parse_serve_interval)]
    pub interval: Duration,

    /// Ports with series of their own, per direction; the rest sum into port="other"
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_max_ports)]
    pub max_ports: usize,

    /// Outbound destinations whose ephemeral-port use is exported
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_top_destinations)]
    pub top_destinations: usize,

    /// Do not look up the processes that own sockets (cheaper; no owner coverage)
    #[arg(long)]
    pub no_owners: bool,
}

impl ServeArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_ports: self.max_ports,
            top_destinations: self.top_destinations,
        }
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`. A bare `:PORT` is refused: it would mean
/// every interface, which must be asked for by name (`0.0.0.0:PORT`, `[::]:PORT`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if t.starts_with(':') {
        return Err(format!(
            "invalid listen address '{s}': give the address too, e.g. 127.0.0.1{t} (loopback) or 0.0.0.0{t} (every interface)"
        ));
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid listen address '{s}': bad port '{port}'"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if t.parse::<IpAddr>().is_ok() || !t.contains(':') {
        return Err(format!(
            "invalid listen address '{s}': expected ADDRESS:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}"
        ));
    }
    // A host name other than localhost would make the bound address depend on DNS.
    match t.to_socket_addrs() {
        Ok(_) => Err(format!(
            "invalid listen address '{s}': give an IP address, not a host name"
        )),
        Err(_) => Err(format!(
            "invalid listen address '{s}': expected ADDRESS:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}"
        )),
    }
}

fn parse_serve_interval(s: &str) -> Result<Duration, String> {
    let d = parse_interval(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!(
            "invalid interval '{s}': the exporter samples at most every 100ms"
        ));
    }
    Ok(d)
}

fn parse_max_ports(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid --max-ports '{s}': expected a whole number from 1 to 10000"
        )),
    }
}

fn parse_top_destinations(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err(format!(
            "invalid --top-destinations '{s}': expected a whole number from 0 to 1000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:9632").unwrap(),
            "127.0.0.1:9632".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen("localhost:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:9632").unwrap(),
            "0.0.0.0:9632".parse().unwrap()
        );
        for bad in [
            ":9632",
            "127.0.0.1",
            "1.2.3.4:99999",
            "nope",
            "localhost:x",
            "",
        ] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn limits_and_intervals() {
        assert_eq!(parse_max_ports("100"), Ok(100));
        for bad in ["0", "-1", "x", "10001"] {
            assert!(
                parse_max_ports(bad)
                    .unwrap_err()
                    .contains(&format!("'{bad}'"))
            );
        }
        assert_eq!(parse_top_destinations("0"), Ok(0));
        assert!(parse_top_destinations("1001").is_err());
        assert_eq!(parse_serve_interval("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_serve_interval("10ms").unwrap_err().contains("'10ms'"));
    }
}
