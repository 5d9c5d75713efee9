//! What every worker process shares: its arguments, the stdin command reader, the
//! report writer, and the setup that ties its life to the coordinator's.

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::plan::{Mix, Plan};
use crate::protocol::{Command, Report};
use crate::sys;

/// Arguments of the hidden `worker` subcommand: enough to rebuild the coordinator's plan.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub index: u32,
    #[arg(long)]
    pub listen: u32,
    #[arg(long)]
    pub established: u32,
    #[arg(long)]
    pub time_wait: u32,
    #[arg(long)]
    pub close_wait: u32,
    #[arg(long)]
    pub servers: u32,
    #[arg(long)]
    pub clients: u32,
    /// Exit by itself after this many seconds even if the coordinator never says stop.
    #[arg(long)]
    pub lifetime_secs: u64,
}

impl WorkerArgs {
    /// The arguments that make a worker of `plan` with this `index`.
    pub fn for_plan(plan: &Plan, index: u32, lifetime: Duration) -> WorkerArgs {
        WorkerArgs {
            index,
            listen: plan.mix.listen,
            established: plan.mix.established,
            time_wait: plan.mix.time_wait,
            close_wait: plan.mix.close_wait,
            servers: plan.servers,
            clients: plan.clients,
            lifetime_secs: lifetime.as_secs().max(1),
        }
    }

    /// The same arguments as command-line words.
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--index", self.index),
            ("--listen", self.listen),
            ("--established", self.established),
            ("--time-wait", self.time_wait),
            ("--close-wait", self.close_wait),
            ("--servers", self.servers),
            ("--clients", self.clients),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v.to_string()])
        .chain(["--lifetime-secs".to_owned(), self.lifetime_secs.to_string()])
        .collect()
    }

    pub fn plan(&self) -> Result<Plan, String> {
        let mix = Mix {
            listen: self.listen,
            established: self.established,
            time_wait: self.time_wait,
            close_wait: self.close_wait,
        };
        Plan::layout(mix, self.servers, self.clients)
    }

    /// When this worker must be gone at the latest.
    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.lifetime_secs)
    }
}

/// Tie this worker to the coordinator: die with it, leave Ctrl-C to it, use every fd allowed.
pub fn setup() -> io::Result<()> {
    sys::die_with_parent(libc::SIGKILL)?;
    sys::ignore_signal(libc::SIGINT);
    sys::raise_nofile()?;
    Ok(())
}

/// Send one report line to the coordinator. A closed pipe means the coordinator is gone.
pub fn report(r: &Report) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{r}")?;
    out.flush()
}

/// Stdin as a stream of commands, read only when epoll says it is readable.
pub struct Control {
    buf: Vec<u8>,
    pub closed: bool,
}

/// The fd epoll watches for commands.
pub const STDIN: RawFd = 0;

impl Control {
    pub fn new() -> Control {
        Control {
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Read what is available (one read: epoll said it will not block) and return the
    /// complete command lines; EOF sets `closed`.
    pub fn read(&mut self) -> Result<Vec<Command>, String> {
        let mut chunk = [0u8; 4096];
        // Raw read(2), not `io::stdin()`: its buffer could hold a line epoll never reports.
        // SAFETY: `chunk` is writable for its whole length; fd 0 outlives the call.
        let n = unsafe { libc::read(STDIN, chunk.as_mut_ptr().cast(), chunk.len()) };
        match usize::try_from(n) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(format!("reading commands: {e}"));
                }
            }
        }
        self.take_lines()
    }

    fn take_lines(&mut self) -> Result<Vec<Command>, String> {
        let mut commands = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if !line.trim().is_empty() {
                commands.push(Command::parse(line.trim())?);
            }
        }
        Ok(commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: WorkerArgs,
    }

    #[test]
    fn worker_args_round_trip_through_the_command_line() {
        let plan = Plan::new(Mix::of_total(10_000), 20_000, 5, None).unwrap();
        let args = WorkerArgs::for_plan(&plan, 2, Duration::from_secs(90));
        let words = std::iter::once("w".to_owned()).chain(args.to_args());
        let back = Wrap::try_parse_from(words).unwrap().args;
        assert_eq!(back.plan().unwrap(), plan);
        assert_eq!((back.index, back.lifetime_secs), (2, 90));
    }

    #[test]
    fn control_splits_lines_and_keeps_partial_ones() {
        let mut c = Control::new();
        c.buf.extend_from_slice(b"tw 5\nchurn 2\n\nchu");
        assert_eq!(
            c.take_lines().unwrap(),
            vec![Command::TimeWait(5), Command::Churn(2.0)]
        );
        c.buf.extend_from_slice(b"rn 0\n");
        assert_eq!(c.take_lines().unwrap(), vec![Command::Churn(0.0)]);
        c.buf.extend_from_slice(b"bogus\n");
        assert!(c.take_lines().is_err());
    }
}
