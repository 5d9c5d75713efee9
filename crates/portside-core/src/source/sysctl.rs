//! Kernel settings that explain socket behaviour (ephemeral ports, `TIME_WAIT` tuning, accept
//! queue limits), listen-queue overflow counters and host identity.
//!
//! Everything is read under an injected proc root (normally `/proc`); the parsers are pure
//! functions over `&str`. Malformed content is an error naming the file, never a panic.

use std::path::Path;
use std::str::FromStr;

use super::SourceError;

/// The kernel's default `net.ipv4.ip_local_port_range`, used when it cannot be read.
pub const DEFAULT_EPHEMERAL_RANGE: (u16, u16) = (32768, 60999);

const PORT_RANGE: &str = "sys/net/ipv4/ip_local_port_range";
const FIN_TIMEOUT: &str = "sys/net/ipv4/tcp_fin_timeout";
const TW_REUSE: &str = "sys/net/ipv4/tcp_tw_reuse";
const MAX_TW_BUCKETS: &str = "sys/net/ipv4/tcp_max_tw_buckets";
const SOMAXCONN: &str = "sys/net/core/somaxconn";
const NETSTAT: &str = "net/netstat";
const HOSTNAME: &str = "sys/kernel/hostname";
const OSRELEASE: &str = "sys/kernel/osrelease";

/// The sysctls that shape socket behaviour; a setting that cannot be read is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSettings {
    /// `net.ipv4.ip_local_port_range`, inclusive; [`DEFAULT_EPHEMERAL_RANGE`] when unreadable.
    pub ephemeral_range: (u16, u16),
    /// `net.ipv4.tcp_fin_timeout`: seconds an orphaned connection stays in `FIN_WAIT2`.
    pub tcp_fin_timeout: Option<u32>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only.
    pub tcp_tw_reuse: Option<u32>,
    /// `net.ipv4.tcp_max_tw_buckets`: `TIME_WAIT` sockets kept before the kernel drops them.
    pub tcp_max_tw_buckets: Option<u64>,
    /// `net.core.somaxconn`: the cap on any listen backlog.
    pub somaxconn: Option<u32>,
}

impl KernelSettings {
    /// Reads every setting; missing or malformed files give `None` (the range falls back to
    /// the kernel default 32768-60999) so a partial `/proc` still yields what it has.
    pub fn read(proc_root: &Path) -> KernelSettings {
        KernelSettings {
            ephemeral_range: ephemeral_range(proc_root).unwrap_or(DEFAULT_EPHEMERAL_RANGE),
            tcp_fin_timeout: read_value(proc_root, FIN_TIMEOUT).ok(),
            tcp_tw_reuse: read_value(proc_root, TW_REUSE).ok(),
            tcp_max_tw_buckets: read_value(proc_root, MAX_TW_BUCKETS).ok(),
            somaxconn: read_value(proc_root, SOMAXCONN).ok(),
        }
    }
}

/// Counters of connections a full accept queue turned away (`/proc/net/netstat` `TcpExt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// `ListenOverflows`: SYNs or ACKs dropped because an accept queue was full.
    pub listen_overflows: u64,
    /// `ListenDrops`: every drop at a listener, overflows included.
    pub listen_drops: u64,
}

/// Which host the snapshot describes; a field that cannot be read is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Whether the host's interfaces have public addresses (filled by the caller from
    /// [`interfaces::addresses`](crate::source::interfaces::addresses)).
    pub public: crate::analysis::reach::PublicAddrs,
}

/// The ephemeral port range from `sys/net/ipv4/ip_local_port_range` under `proc_root`.
pub fn ephemeral_range(proc_root: &Path) -> Result<(u16, u16), SourceError> {
    let path = proc_root.join(PORT_RANGE);
    let text = read_text(&path)?;
    parse_port_range(&text).map_err(|msg| SourceError::Parse { path, line: 1, msg })
}

/// Parses `ip_local_port_range` content (`"32768\t60999\n"`): two ports, low <= high.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let mut fields = text.split_whitespace();
    let (Some(low), Some(high), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(format!("expected two ports, found {:?}", text.trim()));
    };
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port {s:?}"));
    let (low, high) = (port(low)?, port(high)?);
    if low > high {
        return Err(format!("range {low}-{high} is reversed"));
    }
    Ok((low, high))
}

/// Listen overflow counters from `net/netstat` under `proc_root`.
pub fn listen_stats(proc_root: &Path) -> Result<ListenStats, SourceError> {
    let path = proc_root.join(NETSTAT);
    let text = read_text(&path)?;
    parse_netstat_at(&text).map_err(|(line, msg)| SourceError::Parse { path, line, msg })
}

/// Parses `/proc/net/netstat` text: the `TcpExt` header line names the values on the next line.
pub fn parse_netstat(text: &str) -> Result<ListenStats, String> {
    parse_netstat_at(text).map_err(|(line, msg)| match line {
        0 => msg,
        _ => format!("line {line}: {msg}"),
    })
}

/// [`parse_netstat`] with the 1-based line of the error kept apart (0: the whole text).
fn parse_netstat_at(text: &str) -> Result<ListenStats, (usize, String)> {
    let mut lines = (1..).zip(text.lines());
    while let Some((header_no, header)) = lines.next() {
        let Some(names) = header.strip_prefix("TcpExt:") else {
            continue;
        };
        let Some((values_no, values)) = lines.next() else {
            return Err((header_no, "TcpExt header without a value line".into()));
        };
        let Some(values) = values.strip_prefix("TcpExt:") else {
            return Err((values_no, "expected the TcpExt value line".into()));
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            let msg = format!("{} TcpExt names but {} values", names.len(), values.len());
            return Err((values_no, msg));
        }
        let field = |name: &str| -> Result<u64, (usize, String)> {
            let (_, value) = names
                .iter()
                .zip(&values)
                .find(|(n, _)| **n == name)
                .ok_or_else(|| (header_no, format!("no TcpExt field {name}")))?;
            value
                .parse()
                .map_err(|_| (values_no, format!("bad {name} value {value:?}")))
        };
        return Ok(ListenStats {
            listen_overflows: field("ListenOverflows")?,
            listen_drops: field("ListenDrops")?,
        });
    }
    Err((0, "no TcpExt section".into()))
}

/// Hostname and kernel release from `sys/kernel` under `proc_root`; unreadable is empty.
pub fn host_info(proc_root: &Path) -> HostInfo {
    let read = |rel: &str| {
        read_text(&proc_root.join(rel)).map_or_else(|_| String::new(), |t| t.trim().to_owned())
    };
    HostInfo {
        hostname: read(HOSTNAME),
        kernel: read(OSRELEASE),
        public: crate::analysis::reach::PublicAddrs::default(),
    }
}

/// Reads a whole file, the error naming it.
fn read_text(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a one-value sysctl file (`"60\n"`) under `proc_root`.
fn read_value<T: FromStr>(proc_root: &Path, rel: &str) -> Result<T, SourceError> {
    let path = proc_root.join(rel);
    let text = read_text(&path)?;
    text.trim().parse().map_err(|_| SourceError::Parse {
        msg: format!("expected one number, found {:?}", text.trim()),
        path,
        line: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysctl/proc")
    }

    /// A fake proc root holding the given files.
    fn fake_proc(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// Input and the expected parse (a port pair or the error message).
    type RangeCase = (&'static str, Result<(u16, u16), &'static str>);

    #[test]
    fn port_range_parses() {
        let cases: &[RangeCase] = &[
            ("32768\t60999\n", Ok((32768, 60999))),
            ("1024 65535", Ok((1024, 65535))),
            ("  5000   5000  \n", Ok((5000, 5000))),
            ("60999\t32768\n", Err("range 60999-32768 is reversed")),
            ("32768\n", Err("expected two ports, found \"32768\"")),
            ("", Err("expected two ports, found \"\"")),
            ("1 2 3", Err("expected two ports, found \"1 2 3\"")),
            ("32768\t70000\n", Err("bad port \"70000\"")),
            ("-1\t5\n", Err("bad port \"-1\"")),
            ("a b", Err("bad port \"a\"")),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_port_range(text),
                want.map_err(str::to_owned),
                "{text:?}"
            );
        }
    }

    #[test]
    fn netstat_parses_tcpext_pair() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPTimeouts\n\
                    TcpExt: 1 17 19 4\n\
                    IpExt: InNoRoutes ListenDrops\n\
                    IpExt: 0 99\n";
        let want = ListenStats {
            listen_overflows: 17,
            listen_drops: 19,
        };
        assert_eq!(parse_netstat(text), Ok(want));
        // Another section first, with the same field name, does not confuse it.
        let text =
            "IpExt: ListenDrops\nIpExt: 99\nTcpExt: ListenDrops ListenOverflows\nTcpExt: 8 9\n";
        let want = ListenStats {
            listen_overflows: 9,
            listen_drops: 8,
        };
        assert_eq!(parse_netstat(text), Ok(want));
    }

    #[test]
    fn netstat_errors_name_the_line() {
        let cases = [
            ("", "no TcpExt section"),
            ("IpExt: A\nIpExt: 1\n", "no TcpExt section"),
            (
                "TcpExt: ListenOverflows ListenDrops\n",
                "line 1: TcpExt header without a value line",
            ),
            (
                "TcpExt: ListenOverflows ListenDrops\nIpExt: 1 2\n",
                "line 2: expected the TcpExt value line",
            ),
            (
                "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n",
                "line 2: 2 TcpExt names but 1 values",
            ),
            (
                "TcpExt: ListenOverflows X\nTcpExt: 1 2\n",
                "line 1: no TcpExt field ListenDrops",
            ),
            (
                "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 -2\n",
                "line 2: bad ListenDrops value \"-2\"",
            ),
            (
                "TcpExt: ListenOverflows ListenDrops\nTcpExt: x 2\n",
                "line 2: bad ListenOverflows value \"x\"",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_netstat(text), Err(want.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn fixture_tree_reads_every_setting() {
        let root = fixture();
        let want = KernelSettings {
            ephemeral_range: (20000, 45000),
            tcp_fin_timeout: Some(30),
            tcp_tw_reuse: Some(2),
            tcp_max_tw_buckets: Some(262_144),
            somaxconn: Some(4096),
        };
        assert_eq!(KernelSettings::read(&root), want);
        assert_eq!(ephemeral_range(&root).unwrap(), (20000, 45000));
        let stats = listen_stats(&root).unwrap();
        assert_eq!((stats.listen_overflows, stats.listen_drops), (1234, 5678));
        let host = host_info(&root);
        assert_eq!(host.hostname, "fixture-host");
        assert_eq!(host.kernel, "6.18.0-portside");
    }

    #[test]
    fn missing_files_give_defaults() {
        let root = fake_proc(&[]);
        let want = KernelSettings {
            ephemeral_range: DEFAULT_EPHEMERAL_RANGE,
            tcp_fin_timeout: None,
            tcp_tw_reuse: None,
            tcp_max_tw_buckets: None,
            somaxconn: None,
        };
        assert_eq!(KernelSettings::read(root.path()), want);
        assert_eq!(host_info(root.path()), HostInfo::default());
        let err = ephemeral_range(root.path()).unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }), "{err}");
        assert!(err.to_string().contains("ip_local_port_range"), "{err}");
        let err = listen_stats(root.path()).unwrap_err();
        assert!(err.to_string().contains("net/netstat"), "{err}");
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let root = fake_proc(&[
            (PORT_RANGE, "32768\n"),
            (FIN_TIMEOUT, "sixty\n"),
            (TW_REUSE, "\n"),
            (MAX_TW_BUCKETS, "-5\n"),
            (SOMAXCONN, "4096 4096\n"),
            (NETSTAT, "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n"),
        ]);
        let settings = KernelSettings::read(root.path());
        assert_eq!(settings.ephemeral_range, DEFAULT_EPHEMERAL_RANGE);
        assert_eq!(
            (
                settings.tcp_fin_timeout,
                settings.tcp_tw_reuse,
                settings.somaxconn
            ),
            (None, None, None)
        );
        assert_eq!(settings.tcp_max_tw_buckets, None);
        let err = ephemeral_range(root.path()).unwrap_err().to_string();
        let path = root.path().join(PORT_RANGE);
        assert_eq!(
            err,
            format!("{}:1: expected two ports, found \"32768\"", path.display())
        );
        let err = listen_stats(root.path()).unwrap_err().to_string();
        let path = root.path().join(NETSTAT);
        assert_eq!(
            err,
            format!("{}:2: 2 TcpExt names but 1 values", path.display())
        );
        let err = read_value::<u32>(root.path(), FIN_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tcp_fin_timeout:1: expected one number"),
            "{err}"
        );
    }

    #[test]
    fn binary_garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/net/ipv4")).unwrap();
        std::fs::write(dir.path().join(PORT_RANGE), b"\xff\xfe\0\x01").unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join(NETSTAT), b"TcpExt: \xff\n").unwrap();
        assert!(ephemeral_range(dir.path()).is_err());
        assert!(listen_stats(dir.path()).is_err());
        assert_eq!(
            KernelSettings::read(dir.path()).ephemeral_range,
            DEFAULT_EPHEMERAL_RANGE
        );
    }

    /// The command's trimmed stdout, or `None` (with the reason printed) when it cannot run.
    fn command_output(program: &str, args: &[&str]) -> Option<String> {
        match Command::new(program).args(args).output() {
            Ok(out) if out.status.success() => {
                Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
            }
            other => {
                let msg = format!("cannot run {program}: {other:?}");
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
                eprintln!("SKIPPED: {msg}");
                None
            }
        }
    }

    #[test]
    fn real_proc_matches_sysctl_and_uname() {
        let proc_root = Path::new("/proc");
        let range = ephemeral_range(proc_root).unwrap();
        if let Some(out) = command_output("sysctl", &["-n", "net.ipv4.ip_local_port_range"]) {
            assert_eq!(parse_port_range(&out), Ok(range), "sysctl said {out:?}");
        }
        if let Some(release) = command_output("uname", &["-r"]) {
            assert_eq!(host_info(proc_root).kernel, release);
        }
        let settings = KernelSettings::read(proc_root);
        assert_eq!(settings.ephemeral_range, range);
        assert!(settings.tcp_fin_timeout.is_some() && settings.somaxconn.is_some());
        listen_stats(proc_root).unwrap();
    }
}
