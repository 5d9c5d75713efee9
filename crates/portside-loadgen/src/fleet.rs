//! The worker processes as the coordinator sees them: spawned from this binary inside the
//! namespace, commanded over stdin, heard over stdout (one reader thread each), and always
//! stopped and reaped, on success, error or signal alike.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{self, Report};
use crate::sys;
use crate::worker::WorkerArgs;

/// How long a worker gets to exit after its stdin closes, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

struct Worker {
    kind: Kind,
    index: u32,
    child: Child,
    stdin: Option<ChildStdin>,
}

enum Event {
    Report(usize, Report),
    Garbage(usize, String),
    Exited(usize),
}

/// All workers, plus what they last reported.
pub struct Fleet {
    workers: Vec<Worker>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// Per worker: listeners up (servers), connections held (servers), built (clients).
    pub listening: Vec<Option<u32>>,
    pub held: Vec<u32>,
    pub built: Vec<Option<(u32, u32)>>,
    /// `TIME_WAIT` batches asked for and not yet done.
    pub tw_pending: usize,
    pub tw_made: u64,
}

impl Fleet {
    pub fn new() -> Fleet {
        let (tx, rx) = mpsc::channel();
        Fleet {
            workers: Vec::new(),
            tx,
            rx,
            listening: Vec::new(),
            held: Vec::new(),
            built: Vec::new(),
            tw_pending: 0,
            tw_made: 0,
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.child.id()).collect()
    }

    /// Start a worker of `kind` running this same binary (the caller's thread is already
    /// in the namespace, so the child starts there).
    pub fn spawn(&mut self, kind: Kind, args: &WorkerArgs) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
        let mut command = Command::new(exe);
        command
            .arg("worker")
            .arg(kind.name())
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            command.pre_exec(|| sys::die_with_parent(libc::SIGKILL));
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {} worker: {e}", kind.name()))?;
        let id = self.workers.len();
        let stdout = child.stdout.take().ok_or("worker has no stdout pipe")?;
        let tx = self.tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = match Report::parse(&line) {
                    Ok(r) => Event::Report(id, r),
                    Err(e) => Event::Garbage(id, e),
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Exited(id));
        });
        self.workers.push(Worker {
            kind,
            index: args.index,
            stdin: child.stdin.take(),
            child,
        });
        self.listening.push(None);
        self.held.push(0);
        self.built.push(None);
        Ok(())
    }

    fn describe(&self, id: usize) -> String {
        self.workers.get(id).map_or_else(
            || format!("worker {id}"),
            |w| format!("{} {}", w.kind.name(), w.index),
        )
    }

    /// Handle what arrives within `timeout`. A failed or vanished worker is an error.
    pub fn pump(&mut self, timeout: Duration) -> Result<(), String> {
        let mut event = match self.rx.recv_timeout(timeout) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => return Err("worker channel closed".into()),
        };
        // Drain whatever else is queued, without waiting again.
        loop {
            self.handle(event)?;
            match self.rx.try_recv() {
                Ok(e) => event = e,
                Err(_) => return Ok(()),
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Report(id, Report::Listening(n)) => self.listening[id] = Some(n),
            Event::Report(id, Report::Held(n)) => self.held[id] = n,
            Event::Report(
                id,
                Report::Built {
                    established,
                    close_wait,
                },
            ) => {
                self.built[id] = Some((established, close_wait));
            }
            Event::Report(_, Report::TwDone { made }) => {
                self.tw_pending = self.tw_pending.saturating_sub(1);
                self.tw_made += u64::from(made);
            }
            Event::Report(id, Report::Failed(msg)) => {
                return Err(format!("{} failed: {msg}", self.describe(id)));
            }
            Event::Garbage(id, msg) => return Err(format!("{}: {msg}", self.describe(id))),
            Event::Exited(id) => return Err(format!("{} exited unexpectedly", self.describe(id))),
        }
        Ok(())
    }

    /// Pump until `done` holds; an error on timeout, on `stop`, or on a worker failure.
    pub fn wait_until(
        &mut self,
        what: &str,
        deadline: Instant,
        stopped: impl Fn() -> bool,
        done: impl Fn(&Fleet) -> bool,
    ) -> Result<(), String> {
        while !done(self) {
            if stopped() {
                return Err(format!("interrupted while waiting for {what}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("timed out waiting for {what}"));
            }
            self.pump(left.min(Duration::from_millis(200)))?;
        }
        Ok(())
    }

    /// Send a command line to every client worker, `commands(i)` for client `i`.
    pub fn command_clients(
        &mut self,
        commands: impl Fn(u32) -> Option<protocol::Command>,
    ) -> Result<usize, String> {
        let mut sent = 0;
        for w in &mut self.workers {
            if w.kind != Kind::Client {
                continue;
            }
            let Some(command) = commands(w.index) else {
                continue;
            };
            let stdin = w.stdin.as_mut().ok_or("worker stdin already closed")?;
            writeln!(stdin, "{command}")
                .and_then(|()| stdin.flush())
                .map_err(|e| format!("client {}: {e}", w.index))?;
            sent += 1;
        }
        Ok(sent)
    }

    pub fn servers_ready(&self, servers: u32) -> bool {
        self.count(Kind::Server, |id| self.listening[id].is_some()) == servers as usize
    }

    pub fn clients_built(&self, clients: u32) -> bool {
        self.count(Kind::Client, |id| self.built[id].is_some()) == clients as usize
    }

    pub fn server_held(&self) -> u64 {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.kind == Kind::Server)
            .map(|(id, _)| u64::from(self.held[id]))
            .sum()
    }

    fn count(&self, kind: Kind, pred: impl Fn(usize) -> bool) -> usize {
        self.workers
            .iter()
            .enumerate()
            .filter(|(id, w)| w.kind == kind && pred(*id))
            .count()
    }

    /// Close every worker's stdin (their signal to stop), wait briefly, kill stragglers.
    pub fn shutdown(&mut self) {
        for w in &mut self.workers {
            w.stdin = None;
        }
        let until = Instant::now() + EXIT_GRACE;
        for w in &mut self.workers {
            while Instant::now() < until {
                match w.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => thread::sleep(Duration::from_millis(20)),
                }
            }
            if !matches!(w.child.try_wait(), Ok(Some(_))) {
                let _ = w.child.kill();
            }
            let _ = w.child.wait();
        }
        self.workers.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown();
    }
}
