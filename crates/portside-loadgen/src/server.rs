//! A server worker: holds its share of the listeners and accepts everything that arrives.
//! What it does with a connection depends on the peer's source address (see `Role`):
//! hold it (ESTABLISHED, or `CLOSE_WAIT` once the client closes), close it at once
//! (`TIME_WAIT`), or close it when the client does (churn).

use std::collections::HashMap;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::plan::Role;
use crate::protocol::Report;
use crate::sys::{self, Epoll, HANGUP, READABLE};
use crate::worker::{self, Control, STDIN, WorkerArgs};

/// Accept queue length; the kernel caps it at the namespace's `net.core.somaxconn` (4096).
const BACKLOG: i32 = 4096;
/// Token of the command pipe in the epoll set; listeners use their index, churn
/// connections `CHURN_BASE + n`.
const STDIN_TOKEN: u64 = u64::MAX;
const CHURN_BASE: u64 = 1 << 32;
/// Accepts per listener per wake-up, so one busy port cannot starve the others.
const ACCEPT_BURST: usize = 512;
/// How often a changed `held` count is reported.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// Run server `args.index` until stdin closes or its lifetime ends.
pub fn run(args: &WorkerArgs) -> Result<(), String> {
    worker::setup().map_err(|e| format!("setup: {e}"))?;
    let plan = args.plan()?;
    let deadline = args.deadline();
    let mut listeners = Vec::new();
    for l in plan.listeners_of(args.index) {
        let listener =
            sys::listen(l.addr, BACKLOG).map_err(|e| format!("listen {}: {e}", l.addr))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listen {}: {e}", l.addr))?;
        listeners.push(listener);
    }
    let mut epoll = Epoll::new(1024).map_err(|e| format!("epoll: {e}"))?;
    for (i, l) in listeners.iter().enumerate() {
        epoll
            .add(l.as_raw_fd(), i as u64, READABLE)
            .map_err(|e| format!("epoll: {e}"))?;
    }
    epoll
        .add(STDIN, STDIN_TOKEN, READABLE | HANGUP)
        .map_err(|e| format!("epoll on the command pipe: {e}"))?;
    worker::report(&Report::Listening(listeners.len() as u32)).map_err(|e| e.to_string())?;

    let mut state = State::default();
    let mut control = Control::new();
    let mut last_report = (0u32, Instant::now());
    let mut ready = Vec::with_capacity(1024);
    while !control.closed && Instant::now() < deadline {
        ready.clear();
        ready.extend(
            epoll
                .wait(REPORT_EVERY)
                .map_err(|e| format!("epoll: {e}"))?,
        );
        for &(token, _) in &ready {
            if token == STDIN_TOKEN {
                // Servers take no commands; reading notices EOF (the coordinator's "stop").
                control.read()?;
            } else if token >= CHURN_BASE {
                state.churn.remove(&token);
            } else if let Some(l) = listeners.get(token as usize) {
                state.accept_from(l, &epoll)?;
            }
        }
        let held = state.held.len() as u32;
        if held != last_report.0 && last_report.1.elapsed() >= REPORT_EVERY {
            worker::report(&Report::Held(held)).map_err(|e| e.to_string())?;
            last_report = (held, Instant::now());
        }
    }
    Ok(())
}

/// The connections a server keeps.
#[derive(Default)]
struct State {
    held: Vec<TcpStream>,
    churn: HashMap<u64, TcpStream>,
    next_churn: u64,
    /// Whether "too many open files" was already reported (once is enough).
    warned_fd_limit: bool,
}

impl State {
    /// Accept what is queued on `listener` (bounded burst) and sort each by role.
    fn accept_from(&mut self, listener: &TcpListener, epoll: &Epoll) -> Result<(), String> {
        for _ in 0..ACCEPT_BURST {
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                    if !self.warned_fd_limit {
                        self.warned_fd_limit = true;
                        eprintln!("portside-loadgen server: open-file limit reached");
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(format!("accept: {e}")),
            };
            match Role::of_peer(peer.ip()) {
                Role::Hold | Role::CloseWait => self.held.push(stream),
                Role::TimeWait => drop(stream),
                Role::Churn => {
                    let token = CHURN_BASE + self.next_churn;
                    self.next_churn += 1;
                    epoll
                        .add(stream.as_raw_fd(), token, READABLE | HANGUP)
                        .map_err(|e| format!("epoll: {e}"))?;
                    self.churn.insert(token, stream);
                }
            }
        }
        Ok(())
    }
}
