//! `portside serve`: a headless Prometheus exporter. One ticker thread samples every
//! `--interval` and publishes the encoded metrics; HTTP workers serve the last published
//! bytes, so a scrape never waits for a socket dump.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use crate::app::EXIT_USAGE;
use crate::source::sampler::SamplerConfig;

pub mod args;
pub mod http;
pub mod published;
pub mod ticker;

pub use args::ServeArgs;

use published::Published;
use ticker::Ticker;

/// Run the exporter; returns only on a start-up error (exit 2 for a bad or busy address).
pub fn main(args: &ServeArgs) -> ExitCode {
    let listener = match TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            crate::output::say(&format!(
                "portside: error: cannot listen on {}: {}",
                args.listen,
                bind_reason(&e)
            ));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = SamplerConfig {
        resolve_owners: !args.no_owners,
        ..SamplerConfig::default()
    };
    let mut ticker = match Ticker::new(config, args.limits()) {
        Ok(t) => t,
        Err(e) => {
            crate::output::say(&format!("portside: error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    // The first tick is taken before the first request is answered: no empty scrape.
    let (body, err) = ticker.tick();
    if let Some(err) = err {
        crate::output::say(&format!("portside: error: {err}"));
        return ExitCode::FAILURE;
    }
    let published = Arc::new(Published::new(body));
    if !rustix_is_root() && !args.no_owners {
        crate::output::say(
            "portside: note: not root: sockets of other users' processes count as owner \
             attribution=\"permission_denied\" (run as root or with CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH to see them)",
        );
    }
    let interval = args.interval;
    let p = Arc::clone(&published);
    if let Err(e) = thread::Builder::new()
        .name("ticker".into())
        .spawn(move || ticker::run(ticker, interval, &p))
    {
        crate::output::say(&format!("portside: error: cannot start the ticker: {e}"));
        return ExitCode::FAILURE;
    }
    let local = listener.local_addr().unwrap_or(args.listen);
    crate::output::say(&format!(
        "portside: serving http://{local}/metrics, sampling every {}",
        humantime::format_duration(interval)
    ));
    match http::serve(&listener, &published) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::output::say(&format!("portside: error: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "address already in use (pick another with --listen)".into()
        }
        std::io::ErrorKind::AddrNotAvailable => "no such local address".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need root)".into()
        }
        _ => e.to_string(),
    }
}

fn rustix_is_root() -> bool {
    rustix::process::geteuid().is_root()
}
