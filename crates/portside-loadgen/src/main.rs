//! portside-loadgen: builds a chosen mix of TCP sockets (listening, established, `TIME_WAIT`,
//! `CLOSE_WAIT`) inside a network namespace it creates, for portside's scale tests and
//! benchmarks. Loopback only; every loop bounded; the namespace is removed on exit.
//!
//! ```text
//! portside-loadgen --preset 10k --hold 300s            # prints READY ..., holds, tears down
//! portside-loadgen --preset 10k -- ss -tan             # runs the command inside once READY
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod census;
mod client;
mod coordinator;
mod fleet;
mod netns;
mod plan;
mod protocol;
mod render_bench;
mod server;
mod sys;
mod worker;

use plan::{Mix, Plan, Preset};

/// Longest `--hold`: every run ends by itself.
const MAX_HOLD: Duration = Duration::from_secs(4 * 3600);
/// Fewest processes holding sockets, as on the anchor machine (70k sockets held by 5).
const MIN_PROCESSES: u32 = 5;

/// Build a socket mix in a private network namespace (needs root), print a READY line
/// with the real counts, keep it up, and remove everything afterwards.
///
/// `TIME_WAIT` is topped up as it expires. SIGUSR1 starts churn, SIGUSR2 pauses it.
/// SIGINT/SIGTERM/SIGHUP tear down cleanly. A command after `--` runs inside the
/// namespace once READY, with `PORTSIDE_NETNS`, `PORTSIDE_LOADGEN_PID` and
/// `PORTSIDE_LOADGEN_READY` set; its exit code becomes ours.
#[derive(Debug, Parser)]
#[command(
    name = "portside-loadgen",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,

    /// Socket mix: 1k|10k|100k (1% listen, 60% established, 30% `TIME_WAIT`, 9% `CLOSE_WAIT`), or 1m (3k listen, 600k established, 300k `TIME_WAIT`, 45k `CLOSE_WAIT`)
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Listening sockets (overrides the preset's)
    #[arg(long)]
    listen: Option<u32>,
    /// ESTABLISHED sockets, both ends counted (overrides the preset's)
    #[arg(long)]
    established: Option<u32>,
    /// `TIME_WAIT` sockets, kept topped up (overrides the preset's)
    #[arg(long)]
    time_wait: Option<u32>,
    /// `CLOSE_WAIT` sockets (overrides the preset's)
    #[arg(long)]
    close_wait: Option<u32>,
    /// Client processes (default: enough for the open-file limit, 5 processes at least)
    #[arg(long)]
    clients: Option<u32>,
    /// How long to hold the load, or the longest the command may run (max 4h)
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    hold: Duration,
    /// Give up if building takes longer
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    build_timeout: Duration,
    /// Connections opened and closed per second, e.g. `200/s`
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    churn: f64,
    /// Start with churn paused until SIGUSR1
    #[arg(long)]
    churn_paused: bool,
    /// Progress messages on stderr
    #[arg(short, long)]
    verbose: bool,
    /// Command to run inside the namespace once READY
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Delete namespaces left behind by runs that were killed with SIGKILL
    Cleanup,
    /// Time building and rendering one TUI frame from a large snapshot (`TestBackend`)
    RenderBench(render_bench::Args),
    /// Internal: one worker process (started by the coordinator)
    #[command(hide = true)]
    Worker {
        #[arg(value_parser = ["server", "client"])]
        kind: String,
        #[command(flatten)]
        args: worker::WorkerArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.sub {
        Some(Sub::Worker { kind, args }) => {
            let r = if kind == "server" {
                server::run(args)
            } else {
                client::run(args)
            };
            if let Err(msg) = &r {
                // Tell the coordinator (it reports it); stdout may be gone already.
                let _ = worker::report(&protocol::Report::Failed(msg.clone()));
            }
            r.map(|()| 0)
        }
        Some(Sub::Cleanup) => cleanup(),
        Some(Sub::RenderBench(args)) => render_bench::run(args).map(|()| 0),
        None => options(&cli).and_then(|o| coordinator::run(&o)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("portside-loadgen: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn cleanup() -> Result<u8, String> {
    if !sys::is_root() {
        return Err("needs root to delete network namespaces".into());
    }
    for name in netns::cleanup_stale().map_err(|e| e.to_string())? {
        println!("removed {name}");
    }
    Ok(0)
}

/// The validated options of a coordinator run.
fn options(cli: &Cli) -> Result<coordinator::Options, String> {
    let explicit = [cli.listen, cli.established, cli.time_wait, cli.close_wait];
    if cli.preset.is_none() && explicit.iter().any(Option::is_none) {
        return Err(
            "give --preset 1k|10k|100k|1m, or all of --listen --established --time-wait --close-wait"
                .into(),
        );
    }
    let base = cli.preset.map_or(
        Mix {
            listen: 0,
            established: 0,
            time_wait: 0,
            close_wait: 0,
        },
        Preset::mix,
    );
    let mix = Mix {
        listen: cli.listen.unwrap_or(base.listen),
        established: cli.established.map_or(base.established, |e| e & !1),
        time_wait: cli.time_wait.unwrap_or(base.time_wait),
        close_wait: cli.close_wait.unwrap_or(base.close_wait),
    };
    if cli.hold > MAX_HOLD || cli.build_timeout > MAX_HOLD {
        return Err(format!(
            "--hold and --build-timeout are at most {}s",
            MAX_HOLD.as_secs()
        ));
    }
    // Probe the limit the workers will raise themselves to.
    let fd_limit = sys::raise_nofile().map_err(|e| format!("open-file limit: {e}"))?;
    let min_processes = cli.preset.map_or(MIN_PROCESSES, Preset::min_processes);
    let plan = Plan::new(mix, fd_limit, min_processes, cli.clients)?;
    Ok(coordinator::Options {
        plan,
        hold: cli.hold,
        build_timeout: cli.build_timeout,
        churn: cli.churn,
        churn_paused: cli.churn_paused,
        command: cli.command.clone(),
        verbose: cli.verbose,
    })
}

/// `300s`, `5m`, `1h`, `500ms`, or bare seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: e.g. 300s, 5m, 500ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("bad duration unit in {s:?}: use ms, s, m or h")),
    }
}

/// `200/s` or `200`: connections per second, at most 20000.
fn parse_rate(s: &str) -> Result<f64, String> {
    let num = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match num.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=20_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "bad rate {s:?}: a number of connections per second, 0 to 20000, e.g. 200/s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates_parse_with_or_without_per_second() {
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("1e9").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn command_after_double_dash_is_kept_whole() {
        let cli = Cli::try_parse_from(["lg", "--preset", "1k", "--", "ss", "-tan"]).unwrap();
        assert_eq!(cli.command, vec!["ss", "-tan"]);
        assert_eq!(cli.preset, Some(Preset::K1));
    }

    #[test]
    fn counts_override_the_preset() {
        let cli = Cli::try_parse_from(["lg", "--preset", "1k", "--established", "41"]).unwrap();
        let o = options(&cli).unwrap();
        assert_eq!(o.plan.mix.established, 40);
        assert_eq!(o.plan.mix.listen, 10);
        let bare = Cli::try_parse_from(["lg", "--listen", "3"]).unwrap();
        assert!(options(&bare).unwrap_err().contains("--preset"));
    }
}
