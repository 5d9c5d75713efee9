//! Command-line arguments (clap derive) and their validation into one `Config`, over the
//! settings of the config file (`config`).

pub mod completions;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::analysis::alerts::{Alert, AlertError};
use crate::analysis::filter::Filter;
use crate::analysis::group::Grouping;
use crate::analysis::printable::quoted;
use crate::config::{ConfigChoice, Flags, Pair, Settings, ThemeChoice};
use crate::model::Query;
use crate::output::Format;
use crate::source::sampler::SamplerConfig;
use crate::tui::keys::KeyMap;
use crate::tui::theme::Theme;

pub use completions::{FILTER_WORDS, Shell, write_completions, write_man};

/// Live socket monitor: who listens where, grouped by local port and TCP state.
///
/// On a terminal, portside opens a live view. Piped, or with --once, it prints
/// one snapshot (like `ss -tanup`, with owners, services and port classes).
#[derive(Debug, Parser)]
#[command(name = "portside", version = crate::VERSION, about, long_about = None)]
#[command(
    after_help = "FILTER terms are ANDed; `!` negates a term; `a,b` is a list; `a-b` a range:\n  \
    port:443  lport:8000-8100  rport:5432  state:tw,est  proc:nginx  pid:123\n  \
    user:www-data  addr:10.0.0.0/8  laddr:127.0.0.1  raddr:::1  tcp  udp  v4  v6\n  \
    reach:loopback,private,public,all (where a listener can be reached from)\n  \
    A bare number is a port, a bare state name a state: `portside 443 !listen`"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read settings from FILE instead of ~/.config/portside/config.toml
    #[arg(long, value_name = "FILE", env = "PORTSIDE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Read no config file: defaults and flags only
    #[arg(long, global = true)]
    pub no_config: bool,

    /// Print one snapshot and exit
    #[arg(long)]
    pub once: bool,

    /// Group by service: inbound per listening port, outbound per remote service port and
    /// program, with counts per state
    #[arg(long)]
    pub group: bool,

    /// Group by raw local port instead (one row per client port too); also the live view's
    /// starting grouping (key `b` toggles it)
    #[arg(long)]
    pub local_ports: bool,

    /// Output format of --once and --count [default: table]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Time between samples: 500ms, 2s, 1m; 0 samples back to back [default: 1s]
    #[arg(long, value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Option<Duration>,

    /// Print N snapshots, one every --interval, then exit
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true)]
    pub count: Option<u64>,

    /// TCP sockets only
    #[arg(short = 't', long)]
    pub tcp: bool,

    /// UDP sockets only
    #[arg(short = 'u', long)]
    pub udp: bool,

    /// IPv4 only
    #[arg(short = '4', long)]
    pub ipv4: bool,

    /// IPv6 only
    #[arg(short = '6', long)]
    pub ipv6: bool,

    /// Listening sockets only
    #[arg(short = 'l', long)]
    pub listening: bool,

    /// Numeric ports: no service names
    #[arg(short = 'n', long)]
    pub numeric: bool,

    /// Read /proc/net/{tcp,udp}{,6} instead of netlink sock_diag (for diagnosis)
    #[arg(long)]
    pub proc_net: bool,

    /// Do not look up the processes that own sockets (faster, no /proc walk)
    #[arg(long)]
    pub no_owners: bool,

    /// Alert when a threshold is crossed, e.g. `time_wait>5000`, `:443 close_wait>100`,
    /// `accept_queue>80%`, `ephemeral>70%` (repeatable; replaces the default of that kind)
    #[arg(long, value_name = "EXPR")]
    pub alert: Vec<String>,

    /// Colours of the live view: default, light, high-contrast, monochrome, or a theme file
    #[arg(long, value_name = "THEME", value_parser = completions::theme_parser(), hide_possible_values = true)]
    pub theme: Option<String>,

    /// Filter expression, e.g. `port:443 state:est` (same language as the `/` prompt)
    #[arg(value_name = "FILTER", value_parser = completions::filter_parser(), hide_possible_values = true)]
    pub filter: Vec<String>,
}

/// What to do instead of watching sockets.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write or show the config file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a completion script for SHELL: put it where your shell loads completions
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff): `portside man | man -l -`
    Man,
    /// Record the sockets to FILE (an SQL database), headless, until stopped (Ctrl-C, SIGTERM) or
    /// --duration ends
    Record(RecordArgs),
    /// Print the state recorded in FILE at a moment, as --once printed it then
    Replay(ReplayArgs),
    /// Serve Prometheus metrics over HTTP (headless): `portside serve --listen 127.0.0.1:9632`
    Serve(crate::serve::ServeArgs),
}

/// `portside record FILE ...`
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// The recording (created, or continued when it exists)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Time between samples: 500ms, 2s, 1m [default: the config file's, else 1s]
    #[arg(long, value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Option<Duration>,

    /// Stop after this long, e.g. 30s, 8h [default: until stopped]
    #[arg(long, value_parser = crate::record::when::parse_retention)]
    pub duration: Option<Duration>,

    /// Drop the oldest ticks to keep the file's data under SIZE, e.g. 500M, 2G
    #[arg(long, value_name = "SIZE", value_parser = crate::record::when::parse_size, default_value = "1G")]
    pub max_size: u64,

    /// Drop ticks older than this, e.g. 12h, 7d
    #[arg(long, value_name = "AGE", value_parser = crate::record::when::parse_retention, default_value = "7d")]
    pub retention: Duration,

    /// Do not look up the processes that own sockets
    #[arg(long)]
    pub no_owners: bool,

    /// Alert rule recorded when it fires (as --alert of the live view; repeatable)
    #[arg(long, value_name = "EXPR")]
    pub alert: Vec<String>,

    /// Record only the sockets matching FILTER (host totals count every socket)
    #[arg(value_name = "FILTER", value_parser = completions::filter_parser(), hide_possible_values = true)]
    pub filter: Vec<String>,
}

/// `portside replay FILE --at TIME --once ...`
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A recording made by `portside record`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The moment: RFC 3339 (2026-11-30T03:12:00Z), local clock time (03:12), or back
    /// from the end (-10m)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: String,

    /// Print the moment and exit (the only replay this build has)
    #[arg(long)]
    pub once: bool,

    /// One row per protocol and local port, with counts per state
    #[arg(long)]
    pub group: bool,

    /// Output format [default: table]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Numeric ports: no service names
    #[arg(short = 'n', long)]
    pub numeric: bool,

    /// Show only the sockets matching FILTER
    #[arg(value_name = "FILTER", value_parser = completions::filter_parser(), hide_possible_values = true)]
    pub filter: Vec<String>,
}

impl RecordArgs {
    /// The settings these arguments give, to lay over the config file's.
    pub fn flags(&self) -> Result<Flags, UsageError> {
        Ok(Flags {
            interval: self.interval,
            no_owners: self.no_owners,
            filter: (!self.filter.is_empty()).then(|| self.filter.join(" ")),
            alerts: parse_alerts(&self.alert)?,
            ..Flags::default()
        })
    }
}

impl ReplayArgs {
    pub fn flags(&self) -> Flags {
        Flags {
            format: self.format,
            numeric: self.numeric,
            group: self.group,
            filter: (!self.filter.is_empty()).then(|| self.filter.join(" ")),
            ..Flags::default()
        }
    }
}

fn parse_alerts(exprs: &[String]) -> Result<Vec<Alert>, UsageError> {
    exprs
        .iter()
        .map(|e| Alert::parse(e))
        .collect::<Result<Vec<_>, AlertError>>()
        .map_err(|e| UsageError(e.to_string()))
}

/// `portside config ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented config file with every setting at its default
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Print the effective settings and where each came from (default, file, flag)
    Show,
}

/// What to do, decided once from the arguments and whether stdout is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The interactive terminal UI.
    Tui,
    /// Print `count` snapshots (1 for `--once`), `interval` apart.
    Print { count: u64 },
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub group: bool,
    pub grouping: Grouping,
    pub format: Format,
    pub interval: Duration,
    pub numeric: bool,
    pub filter: Filter,
    /// The filter as typed (the TUI's starting prompt text).
    pub filter_text: String,
    pub sampler: SamplerConfig,
    /// Alert rules: defaults, with the file's and `--alert` replacing those of the same
    /// kind and scope.
    pub alerts: Vec<Alert>,
    pub theme: Theme,
    pub keymap: KeyMap,
}

/// A bad argument: the message names the bad part. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Cli {
    /// Which config file the flags ask for.
    pub fn config_choice(&self) -> ConfigChoice {
        match (&self.config, self.no_config) {
            (_, true) => ConfigChoice::None,
            (Some(path), false) => ConfigChoice::Given(path.clone()),
            (None, false) => ConfigChoice::Default,
        }
    }

    /// The settings the flags give, to lay over the config file's.
    pub fn flags(&self) -> Result<Flags, UsageError> {
        let alerts = parse_alerts(&self.alert)?;
        // Neither flag of a pair means both, as in ss.
        let pair = |a: bool, b: bool| {
            (a || b).then_some(Pair {
                first: a,
                second: b,
            })
        };
        Ok(Flags {
            interval: self.interval,
            format: self.format,
            numeric: self.numeric,
            no_owners: self.no_owners,
            group: self.group,
            protocols: pair(self.tcp, self.udp),
            families: pair(self.ipv4, self.ipv6),
            listening: self.listening,
            filter: (!self.filter.is_empty()).then(|| self.filter.join(" ")),
            alerts,
            theme: self
                .theme
                .as_deref()
                .map(|t| ThemeChoice::parse(t, std::path::Path::new("")))
                .transpose()
                .map_err(|e| UsageError(format!("--theme: {e}")))?,
        })
    }

    /// Validates the arguments over `settings` into a `Config`; `stdout_is_tty` decides
    /// between TUI and print.
    pub fn into_config(
        self,
        settings: &Settings,
        stdout_is_tty: bool,
    ) -> Result<Config, UsageError> {
        let filter_text = settings.filter.value.clone();
        let filter = Filter::parse_system(&filter_text).map_err(|e| UsageError(e.to_string()))?;
        let theme = settings
            .load_theme()
            .map_err(|e| UsageError(e.to_string()))?;
        if settings.format.value == Format::Prometheus && self.count.is_some_and(|n| n > 1) {
            return Err(UsageError(
                "--format prometheus prints one exposition: use --once (or `portside serve`)"
                    .into(),
            ));
        }
        let mode = if self.once {
            Mode::Print { count: 1 }
        } else if let Some(count) = self.count {
            Mode::Print { count }
        } else if stdout_is_tty {
            Mode::Tui
        } else {
            Mode::Print { count: 1 }
        };
        let query = Query {
            tcp: settings.protocols.value.first,
            udp: settings.protocols.value.second,
            v4: settings.families.value.first,
            v6: settings.families.value.second,
            listening_only: settings.listening.value,
        };
        Ok(Config {
            mode,
            group: settings.group.value,
            grouping: if self.local_ports {
                Grouping::LocalPorts
            } else {
                Grouping::Services
            },
            format: settings.format.value,
            interval: settings.interval.value,
            numeric: settings.numeric.value,
            filter,
            filter_text,
            alerts: settings.alerts.value.clone(),
            theme,
            keymap: settings.keymap(),
            sampler: SamplerConfig {
                query,
                proc_root: PathBuf::from("/proc"),
                force_proc_net: self.proc_net,
                resolve_owners: settings.owners.value,
                // The printed modes add the filter's kernel-side part (app.rs); the live
                // view's filter changes at run time and its header is host-wide.
                ..SamplerConfig::default()
            },
        })
    }
}

/// Whether stdout is a terminal (decides TUI vs printed output).
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// Shortest non-zero interval: anything shorter is a typo, not a sampling rate.
pub const INTERVAL_MIN: Duration = Duration::from_millis(10);
/// Longest interval: one day.
pub const INTERVAL_MAX: Duration = Duration::from_secs(86_400);

/// `500ms`, `2s`, `1m30s`, `1.5s`, `0`; a bare number is seconds. 0 (back to back) or
/// [`INTERVAL_MIN`] to [`INTERVAL_MAX`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = |why: &str| format!("invalid duration {}: {why}", quoted(s));
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|_| bad("too long"))?
        }
        Ok(secs) if secs < 0.0 => return Err(bad("must not be negative")),
        Ok(_) => return Err(bad("expected e.g. 500ms, 2s, 1m")),
        Err(_) => humantime::parse_duration(t).map_err(|_| {
            bad(if t.starts_with('-') {
                "must not be negative"
            } else {
                "expected e.g. 500ms, 2s, 1m"
            })
        })?,
    };
    if d.is_zero() || (INTERVAL_MIN..=INTERVAL_MAX).contains(&d) {
        Ok(d)
    } else {
        Err(bad("must be 0 (back to back) or from 10ms to 1 day"))
    }
}

fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(format!("invalid count {}: must be at least 1", quoted(s))),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "invalid count {}: expected a whole number >= 1",
            quoted(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("1m30s"), Ok(Duration::from_secs(90)));
        for bad in ["abc", "-1s", "-1", "1x", "", "inf", "NaN"] {
            let e = parse_interval(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
        // 0, or 10ms to one day (issue 16: 0.0000001s and 500000y were accepted).
        assert_eq!(parse_interval("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_interval("1day"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("0s"), Ok(Duration::ZERO));
        for bad in [
            "0.0000001s",
            "0.0000001",
            "9ms",
            "500000y",
            "1day 1s",
            "1e300",
        ] {
            let e = parse_interval(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("0").unwrap_err().contains("'0'"));
        assert!(parse_count("-2").unwrap_err().contains("'-2'"));
        assert!(parse_count("x").unwrap_err().contains("'x'"));
    }

    fn config(args: &[&str], tty: bool) -> Config {
        let cli =
            Cli::try_parse_from(std::iter::once("portside").chain(args.iter().copied())).unwrap();
        let settings = Settings::layer(None, &cli.flags().unwrap(), false).unwrap();
        cli.into_config(&settings, tty).unwrap()
    }

    #[test]
    fn mode_follows_terminal_and_flags() {
        assert_eq!(config(&[], true).mode, Mode::Tui);
        assert_eq!(config(&[], false).mode, Mode::Print { count: 1 });
        assert_eq!(config(&["--once"], true).mode, Mode::Print { count: 1 });
        assert_eq!(
            config(&["--count", "3"], true).mode,
            Mode::Print { count: 3 }
        );
    }

    #[test]
    fn protocol_and_family_flags() {
        let q = config(&["-t", "-4"], false).sampler.query;
        assert!(q.tcp && !q.udp && q.v4 && !q.v6 && !q.listening_only);
        let q = config(&["-tu", "-l"], false).sampler.query;
        assert!(q.tcp && q.udp && q.v4 && q.v6 && q.listening_only);
    }

    #[test]
    fn filter_knows_users_and_services() {
        let f = Filter::parse_system("user:root port:https").unwrap();
        assert!(!f.is_empty());
        let e = Filter::parse_system("user:no-such-user-here").unwrap_err();
        assert!(e.to_string().contains("no-such-user-here"), "{e}");
    }

    #[test]
    fn filter_words_are_joined() {
        assert_eq!(
            config(&["port:443", "state:est"], false).filter_text,
            "port:443 state:est"
        );
    }
}
