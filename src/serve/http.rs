//! A small HTTP/1.x server for `/metrics` on std sockets, one thread: a `poll(2)` loop over
//! the listener and at most [`MAX_CONNECTIONS`] non-blocking connections, each with a
//! deadline (request head within [`REQUEST_DEADLINE`], response within
//! [`RESPONSE_DEADLINE`]). No keep-alive: each scrape is one connection.
//!
//! A silent or trickling client (slowloris) or one that stops reading costs one slot in the
//! poll set until its deadline, never a thread; one that disconnects mid-response is
//! dropped. The body is the bytes encoded once per tick, shared by `Arc`, so 100 parallel
//! scrapes cost 100 memory copies into socket buffers (tests/serve.rs). Why not an async
//! runtime: this loop is all that serving prebuilt bytes needs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::serve::published::Published;

/// Open connections at once; beyond this a new client gets 503 at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send its request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take the response.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

struct Conn {
    stream: TcpStream,
    deadline: Instant,
    state: State,
}

enum State {
    Reading(Vec<u8>),
    Writing {
        head: Vec<u8>,
        body: Option<Arc<Vec<u8>>>,
        sent: usize,
    },
}

/// Serve `published` on `listener` until the process ends.
pub fn serve(listener: &TcpListener, published: &Published) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut conns: Vec<Conn> = Vec::with_capacity(MAX_CONNECTIONS);
    let mut ready: Vec<PollFlags> = Vec::with_capacity(MAX_CONNECTIONS + 1);
    loop {
        let now = Instant::now();
        let wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(60));
        ready.clear();
        {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(conns.len() + 1);
            fds.push(PollFd::new(listener, PollFlags::IN));
            for c in &conns {
                let interest = match c.state {
                    State::Reading(_) => PollFlags::IN,
                    State::Writing { .. } => PollFlags::OUT,
                };
                fds.push(PollFd::new(&c.stream, interest));
            }
            let timeout = Timespec::try_from(wait + Duration::from_millis(1)).unwrap_or(Timespec {
                tv_sec: 60,
                tv_nsec: 0,
            });
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            ready.extend(fds.iter().map(PollFd::revents));
        }
        // Connections first (their indexes match `ready`), then new ones.
        let now = Instant::now();
        let mut flags = ready[1..].iter();
        conns.retain_mut(|c| {
            let f = flags.next().copied().unwrap_or_else(PollFlags::empty);
            (f.is_empty() || advance(c, published)) && now < c.deadline
        });
        if !ready[0].is_empty() {
            accept_all(listener, &mut conns);
        }
    }
}

fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if conns.len() >= MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                    refuse_busy(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                conns.push(Conn {
                    stream,
                    deadline: Instant::now() + REQUEST_DEADLINE,
                    state: State::Reading(Vec::new()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of file descriptors, or a connection reset before accept: back off.
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
    );
}

/// Read or write what the socket allows now; `false` when the connection is done or dead.
fn advance(conn: &mut Conn, published: &Published) -> bool {
    match &mut conn.state {
        State::Reading(head) => {
            let mut buf = [0u8; 2048];
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        head.extend_from_slice(&buf[..n]);
                        if let Some(request) = complete(head) {
                            let (head, body) = response(request, published);
                            conn.state = State::Writing {
                                head,
                                body,
                                sent: 0,
                            };
                            conn.deadline = Instant::now() + RESPONSE_DEADLINE;
                            return advance(conn, published);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
        }
        State::Writing { head, body, sent } => loop {
            let body_bytes: &[u8] = body.as_deref().map_or(&[], Vec::as_slice);
            let (chunk, offset) = if *sent < head.len() {
                (&head[..], *sent)
            } else {
                (body_bytes, *sent - head.len())
            };
            if offset >= chunk.len() {
                let _ = conn.stream.shutdown(Shutdown::Write);
                return false;
            }
            match conn.stream.write(&chunk[offset..]) {
                Ok(0) => return false,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The client went away mid-response.
                Err(_) => return false,
            }
        },
    }
}

/// The request, once its head is complete (or too large to be one).
fn complete(head: &[u8]) -> Option<Request> {
    if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
        Some(parse(head))
    } else if head.len() > MAX_HEAD {
        Some(Request::TooLarge)
    } else {
        None
    }
}

fn response(request: Request, published: &Published) -> (Vec<u8>, Option<Arc<Vec<u8>>>) {
    const INDEX: &[u8] = b"<html><head><title>portside exporter</title></head><body><h1>portside exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";
    let (status, content_type, body, head_only): (&str, &str, Arc<Vec<u8>>, bool) = match request {
        Request::Metrics { head_only } => (
            "200 OK",
            crate::exporter::CONTENT_TYPE,
            published.body(),
            head_only,
        ),
        Request::Index { head_only } => (
            "200 OK",
            "text/html; charset=utf-8",
            Arc::new(INDEX.to_vec()),
            head_only,
        ),
        Request::NotFound => (
            "404 Not Found",
            "text/plain",
            Arc::new(b"not found: try /metrics\n".to_vec()),
            false,
        ),
        Request::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            Arc::new(b"only GET and HEAD\n".to_vec()),
            false,
        ),
        Request::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            Arc::new(b"request head too large\n".to_vec()),
            false,
        ),
        Request::Bad => (
            "400 Bad Request",
            "text/plain",
            Arc::new(b"bad request\n".to_vec()),
            false,
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), (!head_only).then_some(body))
}

/// What the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Metrics { head_only: bool },
    Index { head_only: bool },
    NotFound,
    MethodNotAllowed,
    TooLarge,
    Bad,
}

fn parse(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Request::Bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::MethodNotAllowed,
    };
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" => Request::Metrics { head_only },
        "/" => Request::Index { head_only },
        _ => Request::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let p = |s: &str| parse(s.as_bytes());
        assert_eq!(
            p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head_only: false }
        );
        assert_eq!(
            p("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics { head_only: false }
        );
        assert_eq!(
            p("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head_only: true }
        );
        assert_eq!(
            p("GET / HTTP/1.1\r\n\r\n"),
            Request::Index { head_only: false }
        );
        assert_eq!(p("GET /x HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            p("POST /metrics HTTP/1.1\r\n\r\n"),
            Request::MethodNotAllowed
        );
        assert_eq!(p("GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Request::Bad);
        assert_eq!(
            parse(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']),
            Request::Bad
        );
    }
}
