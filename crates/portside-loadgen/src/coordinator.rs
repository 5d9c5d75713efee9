//! The coordinator: creates the namespace, starts the workers, builds the mix, prints
//! READY, keeps `TIME_WAIT` topped up and churn going, optionally runs a command inside,
//! and tears everything down on exit, timeout, error or signal.

use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::census::{self, Census};
use crate::fleet::{Fleet, Kind};
use crate::netns::{self, Netns};
use crate::plan::Plan;
use crate::protocol::Command as WorkerCommand;
use crate::sys;
use crate::worker::WorkerArgs;

/// What to build and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    pub plan: Plan,
    /// How long to hold the load (or the longest the command may run).
    pub hold: Duration,
    pub build_timeout: Duration,
    /// Connections opened and closed per second, over all clients.
    pub churn: f64,
    /// Start with churn paused (SIGUSR1 starts it, SIGUSR2 pauses it).
    pub churn_paused: bool,
    /// A command to run inside the namespace once READY; empty to just hold.
    pub command: Vec<String>,
    pub verbose: bool,
}

/// The signals the coordinator listens for.
struct Signals {
    /// The number of the last stop signal (SIGINT, SIGTERM, SIGHUP); 0 while none came.
    stop: Arc<AtomicUsize>,
    churn_on: Arc<AtomicBool>,
    churn_off: Arc<AtomicBool>,
}

impl Signals {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != 0
    }

    fn register() -> io::Result<Signals> {
        let s = Signals {
            stop: Arc::default(),
            churn_on: Arc::default(),
            churn_off: Arc::default(),
        };
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            signal_hook::flag::register_usize(sig, Arc::clone(&s.stop), sig as usize)?;
        }
        signal_hook::flag::register(libc::SIGUSR1, Arc::clone(&s.churn_on))?;
        signal_hook::flag::register(libc::SIGUSR2, Arc::clone(&s.churn_off))?;
        Ok(s)
    }
}

/// How the hold phase ended.
enum End {
    CommandDone(ExitStatus),
    HoldElapsed,
    /// Stopped by this signal.
    Interrupted(usize),
}

/// Exit code when `--hold` ends a still-running command (as `timeout(1)` does).
const EXIT_TIMEOUT: u8 = 124;
/// How often the `TIME_WAIT` count is checked against the target.
const TOPUP_EVERY: Duration = Duration::from_millis(250);
/// Longest wait for transient states (`FIN_WAIT2`, `LAST_ACK`) to clear before READY.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

fn log(opts: &Options, msg: &str) {
    if opts.verbose {
        eprintln!("portside-loadgen: {msg}");
    }
}

/// Run the whole life cycle; the exit code is the command's, or 0 after a plain hold.
pub fn run(opts: &Options) -> Result<u8, String> {
    if !sys::is_root() {
        return Err(
            "needs root: it creates its own network namespace (`ip netns add`) \
                    and adds sockets to it; run it with sudo"
                .into(),
        );
    }
    let signals =
        Signals::register().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    match netns::cleanup_stale() {
        Ok(removed) if !removed.is_empty() => {
            eprintln!(
                "portside-loadgen: removed stale namespaces: {}",
                removed.join(" ")
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("portside-loadgen: warning: stale namespace cleanup: {e}"),
    }
    let started = Instant::now();
    let name = format!("{}{}", netns::PREFIX, std::process::id());
    let mut ns = Netns::create(&name).map_err(|e| e.to_string())?;
    sys::enter_netns(&ns.path()).map_err(|e| format!("cannot enter namespace {name}: {e}"))?;
    // A connect may recycle a TIME_WAIT 4-tuple on loopback (tw_reuse=2): that would eat
    // the TIME_WAIT sockets we count. Only this namespace's setting changes.
    write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", "0")?;

    let mut fleet = Fleet::new();
    let census = build(opts, &mut fleet, &signals, started)?;
    let build_ms = started.elapsed().as_millis();
    let pids: Vec<String> = fleet.pids().iter().map(u32::to_string).collect();
    let ready = format!(
        "READY netns={name} pid={} {census} build_ms={build_ms} servers={} clients={} worker_pids={}",
        std::process::id(),
        opts.plan.servers,
        opts.plan.clients,
        pids.join(",")
    );
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{ready}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing READY: {e}"))?;
    }

    let mut child = match opts.command.split_first() {
        Some((program, args)) => Some(spawn_command(program, args, &name, &ready)?),
        None => None,
    };
    let end = hold(opts, &mut fleet, &signals, child.as_mut());
    if let Some(child) = child.as_mut() {
        stop_command(child);
    }
    fleet.shutdown();
    ns.delete()
        .map_err(|e| format!("cannot delete namespace {name}: {e}"))?;
    Ok(match end? {
        End::CommandDone(status) => status
            .code()
            .map_or_else(|| 128 + status.signal().unwrap_or(0) as u8, |c| c as u8),
        End::HoldElapsed if opts.command.is_empty() => 0,
        End::HoldElapsed => EXIT_TIMEOUT,
        // As a shell reports a process killed by the signal: 130 for Ctrl-C, 143 for SIGTERM.
        End::Interrupted(sig) => 128 + sig as u8,
    })
}

fn write_sysctl(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot set {path}: {e}"))
}

/// Start the workers and build the mix; returns the census taken once it settled.
fn build(
    opts: &Options,
    fleet: &mut Fleet,
    signals: &Signals,
    started: Instant,
) -> Result<Census, String> {
    let plan = &opts.plan;
    let deadline = started + opts.build_timeout;
    let lifetime = opts.build_timeout + opts.hold + Duration::from_secs(60);
    for s in 0..plan.servers {
        fleet.spawn(Kind::Server, &WorkerArgs::for_plan(plan, s, lifetime))?;
    }
    fleet.wait_until(
        "servers to listen",
        deadline,
        || signals.stopped(),
        |f| f.servers_ready(plan.servers),
    )?;
    log(
        opts,
        &format!(
            "{} listeners up after {:?}",
            plan.mix.listen,
            started.elapsed()
        ),
    );
    for c in 0..plan.clients {
        fleet.spawn(Kind::Client, &WorkerArgs::for_plan(plan, c, lifetime))?;
    }
    fleet.wait_until(
        "clients to connect",
        deadline,
        || signals.stopped(),
        |f| f.clients_built(plan.clients),
    )?;
    let expected = u64::from(plan.mix.pairs() + plan.mix.close_wait);
    fleet.wait_until(
        "servers to accept",
        deadline,
        || signals.stopped(),
        |f| f.server_held() >= expected,
    )?;
    log(
        opts,
        &format!("connections up after {:?}", started.elapsed()),
    );
    for round in 0..4 {
        // Count only once nothing is half closed: a FIN_WAIT2 end may still become TIME_WAIT.
        settle(signals)?;
        let have = Census::take().map_err(|e| e.to_string())?.time_wait;
        if have >= plan.mix.time_wait {
            break;
        }
        request_time_wait(fleet, plan, plan.mix.time_wait - have)?;
        fleet.wait_until(
            "TIME_WAIT batches",
            deadline,
            || signals.stopped(),
            |f| f.tw_pending == 0,
        )?;
        log(opts, &format!("TIME_WAIT round {round}: had {have}"));
    }
    settle(signals)?;
    Census::take().map_err(|e| e.to_string())
}

/// Wait (bounded) until no socket is in a transient state.
fn settle(signals: &Signals) -> Result<(), String> {
    let until = Instant::now() + SETTLE_LIMIT;
    while Instant::now() < until && !signals.stopped() {
        if Census::take().map_err(|e| e.to_string())?.other == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Ask the clients for `n` `TIME_WAIT` sockets in all, split evenly.
fn request_time_wait(fleet: &mut Fleet, plan: &Plan, n: u32) -> Result<(), String> {
    let sent = fleet.command_clients(|c| {
        let share = Plan::share(n, plan.clients, c);
        let k = (share.end - share.start) as u32;
        (k > 0).then_some(WorkerCommand::TimeWait(k))
    })?;
    fleet.tw_pending += sent;
    Ok(())
}

/// Tell every client its share of the churn rate.
fn set_churn(fleet: &mut Fleet, plan: &Plan, rate: f64) -> Result<(), String> {
    let per_client = rate / f64::from(plan.clients);
    fleet.command_clients(|_| Some(WorkerCommand::Churn(per_client)))?;
    Ok(())
}

/// Keep the load until the command ends, the hold time passes, or a signal arrives.
fn hold(
    opts: &Options,
    fleet: &mut Fleet,
    signals: &Signals,
    mut child: Option<&mut Child>,
) -> Result<End, String> {
    let plan = &opts.plan;
    let deadline = Instant::now() + opts.hold;
    let sockstat = Path::new("/proc/net/sockstat");
    let slack = (plan.mix.time_wait / 200).max(1);
    if opts.churn > 0.0 && !opts.churn_paused {
        set_churn(fleet, plan, opts.churn)?;
    }
    let mut next_topup = Instant::now();
    loop {
        let sig = signals.stop.load(Ordering::Relaxed);
        if sig != 0 {
            return Ok(End::Interrupted(sig));
        }
        if Instant::now() >= deadline {
            return Ok(End::HoldElapsed);
        }
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child
                .try_wait()
                .map_err(|e| format!("waiting for command: {e}"))?
        {
            return Ok(End::CommandDone(status));
        }
        if signals.churn_on.swap(false, Ordering::Relaxed) {
            log(opts, &format!("churn on: {}/s", opts.churn));
            set_churn(fleet, plan, opts.churn)?;
        }
        if signals.churn_off.swap(false, Ordering::Relaxed) {
            log(opts, "churn paused");
            set_churn(fleet, plan, 0.0)?;
        }
        fleet.pump(Duration::from_millis(50))?;
        if Instant::now() >= next_topup && fleet.tw_pending == 0 {
            next_topup = Instant::now() + TOPUP_EVERY;
            let tw = census::sockstat_tw(sockstat).map_err(|e| e.to_string())?;
            if tw + slack < plan.mix.time_wait {
                request_time_wait(fleet, plan, plan.mix.time_wait - tw)?;
            }
        }
    }
}

/// Start the user's command inside the namespace, told where it is by environment.
fn spawn_command(
    program: &str,
    args: &[String],
    netns: &str,
    ready: &str,
) -> Result<Child, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("PORTSIDE_NETNS", netns)
        .env("PORTSIDE_LOADGEN_PID", std::process::id().to_string())
        .env("PORTSIDE_LOADGEN_READY", ready);
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(|| sys::die_with_parent(libc::SIGTERM));
    }
    command
        .spawn()
        .map_err(|e| format!("cannot run {program:?}: {e}"))
}

/// Ask a still-running command to stop (SIGTERM), then kill it after a grace period.
fn stop_command(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
