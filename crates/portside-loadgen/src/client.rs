//! A client worker: opens its share of the held connections, closes its share of the
//! `CLOSE_WAIT` ones, then serves commands: `TIME_WAIT` batches and churn.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::plan::{Plan, Role};
use crate::protocol::{Command, Report};
use crate::sys::{self, ConnectOpts, Epoll, HANGUP, READABLE};
use crate::worker::{self, Control, STDIN, WorkerArgs};

/// Bound on one connect whose SYN the peer's full queue dropped (it is retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TRIES: u32 = 3;
/// CLOSE_WAIT connections are half-closed in batches before their final close.
const CW_BATCH: usize = 256;
/// Server-closes-first `TIME_WAIT` connections wait in batches for the server's FIN.
const TW_BATCH: usize = 128;
/// Wait for the server's FIN before closing anyway.
const FIN_WAIT: Duration = Duration::from_secs(2);
/// Longest a `tw N` command may run; whatever was made by then is reported.
const TW_TIME_LIMIT: Duration = Duration::from_secs(120);
/// A churn connection lives this long before the client closes it.
const CHURN_LIFETIME: Duration = Duration::from_secs(1);
/// Most churn connections opened per tick, whatever the rate.
const CHURN_BURST: u32 = 2_000;
const TICK: Duration = Duration::from_millis(50);

/// Run client `args.index` until stdin closes or its lifetime ends.
pub fn run(args: &WorkerArgs) -> Result<(), String> {
    worker::setup().map_err(|e| format!("setup: {e}"))?;
    let plan = args.plan()?;
    let deadline = args.deadline();
    let mut client = Client {
        plan,
        index: args.index,
        held: Vec::new(),
        tw_made: 0,
        churn: Churn::default(),
    };
    let close_wait = client.build()?;
    worker::report(&Report::Built {
        established: client.held.len() as u32,
        close_wait,
    })
    .map_err(|e| e.to_string())?;

    let mut epoll = Epoll::new(4).map_err(|e| format!("epoll: {e}"))?;
    epoll
        .add(STDIN, 0, READABLE | HANGUP)
        .map_err(|e| format!("epoll on the command pipe: {e}"))?;
    let mut control = Control::new();
    while !control.closed && Instant::now() < deadline {
        let readable = epoll.wait(TICK).map_err(|e| format!("epoll: {e}"))?.count() > 0;
        if readable {
            for command in control.read()? {
                match command {
                    Command::TimeWait(n) => {
                        let made = client.make_time_wait(n)?;
                        worker::report(&Report::TwDone { made }).map_err(|e| e.to_string())?;
                    }
                    Command::Churn(rate) => client.churn.rate = rate,
                }
            }
        }
        client.churn_tick()?;
    }
    Ok(())
}

struct Client {
    plan: Plan,
    index: u32,
    held: Vec<TcpStream>,
    /// `TIME_WAIT` connections made so far: picks targets and source addresses.
    tw_made: u64,
    churn: Churn,
}

/// Open-and-close traffic: `rate` connections per second, each closed after a second.
#[derive(Default)]
struct Churn {
    rate: f64,
    /// Fractional connections owed from earlier ticks.
    owed: f64,
    last: Option<Instant>,
    open: VecDeque<(Instant, TcpStream)>,
    made: u64,
}

/// Connect with retries: a full accept queue drops the SYN, the retry gets through.
fn connect(
    to: SocketAddr,
    source: Option<SocketAddr>,
    linger2: Option<i32>,
) -> Result<TcpStream, String> {
    let opts = ConnectOpts {
        source,
        linger2,
        timeout: Some(CONNECT_TIMEOUT),
    };
    let mut last = None;
    for _ in 0..CONNECT_TRIES {
        match sys::connect(to, opts) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let e = last.map_or_else(|| "no attempt".to_owned(), |e| e.to_string());
    Err(format!("connect {to} from {source:?}: {e}"))
}

impl Client {
    /// The source for connection `n` of `role` to `to` (IPv6 listeners are only on `::1`).
    fn source(&self, role: Role, to: SocketAddr, n: u64) -> Option<SocketAddr> {
        to.is_ipv4()
            .then(|| SocketAddr::new(role.source(self.index, n), 0))
    }

    /// Open the held connections and the `CLOSE_WAIT` ones; returns how many were closed.
    fn build(&mut self) -> Result<u32, String> {
        let mix = self.plan.mix;
        let clients = self.plan.clients;
        for k in Plan::share(mix.pairs(), clients, self.index) {
            let to = self.plan.target(k);
            let stream = connect(to, self.source(Role::Hold, to, k), None)?;
            self.held.push(stream);
        }
        let mut closed = 0;
        let mut half_closed = Vec::with_capacity(CW_BATCH);
        for (n, j) in Plan::share(mix.close_wait, clients, self.index).enumerate() {
            // IPv4 only: the unique source ports need an address of their own per client.
            let to = self.plan.target_v4(u64::from(mix.pairs()) + j);
            let source = Some(Role::CloseWait.unique_source(self.index, n as u64));
            // The server keeps its end (CLOSE_WAIT); ours, orphaned in FIN_WAIT2, is
            // gone after one second instead of the default 60.
            let stream = connect(to, source, Some(1))?;
            stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown {to}: {e}"))?;
            half_closed.push(stream);
            if half_closed.len() == CW_BATCH {
                close_in_fin_wait2(&mut half_closed);
            }
            closed += 1;
        }
        close_in_fin_wait2(&mut half_closed);
        Ok(closed)
    }

    /// Make `n` `TIME_WAIT` sockets: half closed by the client first (`TIME_WAIT` on our side),
    /// half by the server first (`TIME_WAIT` on the server's listening port).
    fn make_time_wait(&mut self, n: u32) -> Result<u32, String> {
        let started = Instant::now();
        let mut made = 0;
        let mut waiting: Vec<TcpStream> = Vec::with_capacity(TW_BATCH);
        while made < n && started.elapsed() < TW_TIME_LIMIT {
            let k = self.tw_made;
            self.tw_made += 1;
            let to = self
                .plan
                .target_v4(k * u64::from(self.plan.clients) + u64::from(self.index));
            if k.is_multiple_of(2) {
                let stream = connect(to, self.source(Role::TimeWait, to, k), None)?;
                drop(stream);
            } else {
                let source = Role::TimeWait.unique_source(self.index, k / 2);
                waiting.push(connect(to, Some(source), None)?);
                if waiting.len() == TW_BATCH {
                    close_after_fin(&mut waiting);
                }
            }
            made += 1;
        }
        close_after_fin(&mut waiting);
        Ok(made)
    }

    /// Open what the churn rate owes since the last tick; close those older than a second.
    fn churn_tick(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let elapsed = self.churn.last.map_or(Duration::ZERO, |t| now - t);
        self.churn.last = Some(now);
        while self
            .churn
            .open
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= CHURN_LIFETIME)
        {
            self.churn.open.pop_front();
        }
        if self.churn.rate <= 0.0 {
            self.churn.owed = 0.0;
            return Ok(());
        }
        self.churn.owed += self.churn.rate * elapsed.as_secs_f64();
        let due = (self.churn.owed.floor() as u32).min(CHURN_BURST);
        self.churn.owed -= f64::from(due);
        self.churn.owed = self.churn.owed.min(f64::from(CHURN_BURST));
        for _ in 0..due {
            let n = self.churn.made;
            self.churn.made += 1;
            let to = self
                .plan
                .target_v4(n * u64::from(self.plan.clients) + u64::from(self.index));
            let stream = connect(to, self.source(Role::Churn, to, n), None)?;
            self.churn.open.push_back((now, stream));
        }
        Ok(())
    }
}

/// Close half-closed sockets once the server has acked their FIN (state `FIN_WAIT2`, bounded
/// wait). Closed earlier, an ACK that arrives while `close()` still holds the socket leaves
/// a full socket whose short `TCP_LINGER2` ends in a RST, killing the server's `CLOSE_WAIT` end;
/// closed in `FIN_WAIT2`, it becomes a timewait entry that expires silently.
fn close_in_fin_wait2(sockets: &mut Vec<TcpStream>) {
    let until = Instant::now() + FIN_WAIT;
    while Instant::now() < until
        && sockets
            .iter()
            .any(|s| sys::tcp_state(s).is_ok_and(|st| st != sys::FIN_WAIT2))
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    sockets.clear();
}

/// Wait (bounded) until the server has closed each connection, then close ours: the
/// server closed first, so `TIME_WAIT` lands on its side.
fn close_after_fin(waiting: &mut Vec<TcpStream>) {
    let until = Instant::now() + FIN_WAIT;
    let mut buf = [0u8; 64];
    for mut stream in waiting.drain(..) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            continue;
        }
        // EOF (0) is the server's FIN; a timeout or error just closes early.
        let _ = read_until_eof(&mut stream, &mut buf);
    }
}

fn read_until_eof(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    for _ in 0..16 {
        if stream.read(buf)? == 0 {
            return Ok(());
        }
    }
    Ok(())
}
