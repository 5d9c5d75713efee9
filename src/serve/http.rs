//! A small HTTP/1.x server for `/metrics` on std sockets: a bounded pool of worker threads,
//! a bounded queue of accepted connections, and deadlines on reading the request and on
//! writing the response. No keep-alive: each scrape is one connection, so a client can hold
//! a worker for at most [`REQUEST_DEADLINE`] + [`RESPONSE_DEADLINE`].
//!
//! Why not an async runtime: a scrape is one memory copy of bytes encoded once per tick;
//! eight threads serve 100 parallel scrapes in milliseconds (tests/serve.rs), and a slow or
//! silent client costs one worker for a bounded time, never the process.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::serve::published::Published;

/// Worker threads answering requests.
pub const WORKERS: usize = 8;
/// Accepted connections waiting for a worker; beyond this a client gets 503 at once.
pub const QUEUE: usize = 128;
/// Time a client has to send its request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take the response.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Serve `published` on `listener` until the process ends.
pub fn serve(listener: &TcpListener, published: &Arc<Published>) -> io::Result<()> {
    let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) = mpsc::sync_channel(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for n in 0..WORKERS {
        let rx = Arc::clone(&rx);
        let published = Arc::clone(published);
        thread::Builder::new()
            .name(format!("http-{n}"))
            .spawn(move || worker(&rx, &published))?;
    }
    loop {
        match listener.accept() {
            Ok((stream, _)) => match tx.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(stream)) => refuse_busy(stream),
                Err(TrySendError::Disconnected(_)) => {
                    return Err(io::Error::other("every HTTP worker ended"));
                }
            },
            // Out of file descriptors, or a connection reset before accept: keep serving.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn worker(rx: &Mutex<Receiver<TcpStream>>, published: &Published) {
    loop {
        let stream = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(s) => s,
                Err(_) => return,
            }
        };
        // A client that vanishes mid-response is its own problem, not the server's.
        let _ = handle(stream, published);
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
    );
}

/// What the request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head_only: bool },
    Index { head_only: bool },
    NotFound,
    MethodNotAllowed,
    Bad,
}

fn handle(mut stream: TcpStream, published: &Published) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(head) = read_head(&mut stream)? else {
        return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", b"request head too large\n", false);
    };
    match parse(&head) {
        Request::Metrics { head_only } => {
            let body = published.body();
            respond(&mut stream, "200 OK", crate::exporter::CONTENT_TYPE, &body, head_only)
        }
        Request::Index { head_only } => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            b"<html><head><title>portside exporter</title></head><body><h1>portside exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
            head_only,
        ),
        Request::NotFound => respond(&mut stream, "404 Not Found", "text/plain", b"not found: try /metrics\n", false),
        Request::MethodNotAllowed => respond(&mut stream, "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n", false),
        Request::Bad => respond(&mut stream, "400 Bad Request", "text/plain", b"bad request\n", false),
    }
}

/// The request head (up to the blank line), read within [`REQUEST_DEADLINE`]; `None` when
/// it is larger than [`MAX_HEAD`]. A client that trickles bytes is cut at the deadline.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
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

/// Write the response within [`RESPONSE_DEADLINE`], in chunks, so a client reading slowly
/// cannot hold the worker longer.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let deadline = Instant::now() + RESPONSE_DEADLINE;
    write_by(stream, head.as_bytes(), deadline)?;
    if !head_only {
        write_by(stream, body, deadline)?;
    }
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn write_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    while !data.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        let n = stream.write(&data[..data.len().min(CHUNK)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let p = |s: &str| parse(s.as_bytes());
        assert_eq!(p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Request::Metrics { head_only: false });
        assert_eq!(p("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Request::Metrics { head_only: false });
        assert_eq!(p("HEAD /metrics HTTP/1.1\r\n\r\n"), Request::Metrics { head_only: true });
        assert_eq!(p("GET / HTTP/1.1\r\n\r\n"), Request::Index { head_only: false });
        assert_eq!(p("GET /x HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("POST /metrics HTTP/1.1\r\n\r\n"), Request::MethodNotAllowed);
        assert_eq!(p("GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Request::Bad);
        assert_eq!(parse(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']), Request::Bad);
    }
}
