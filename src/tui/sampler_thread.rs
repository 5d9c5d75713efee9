//! The sampler's own thread: one sample per interval, each moved to the UI as an owned
//! snapshot. The UI never waits on a sample; the sleep between samples is cancellable.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::source::sampler::{Sampler, SamplerConfig};
use crate::tui::event::{Cancel, Event};
use crate::tui::terminal::panic_message;

/// Starts sampling every `interval` (measured start to start; a sample slower than the
/// interval is followed at once by the next). The sampler is built on the thread, and
/// rebuilt after a failure to build, so a broken source shows as an error line in the UI.
pub fn spawn(
    config: SamplerConfig,
    interval: Duration,
    tx: Sender<Event>,
    cancel: Cancel,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("sampler".into())
        .spawn(move || run(&config, interval, &tx, &cancel))
}

fn run(config: &SamplerConfig, interval: Duration, tx: &Sender<Event>, cancel: &Cancel) {
    let mut sampler: Option<Sampler> = None;
    while !cancel.is_cancelled() {
        let started = Instant::now();
        // A panic in the sampler becomes an error line; the sampler is rebuilt next tick.
        let event = panic::catch_unwind(AssertUnwindSafe(|| tick(config, &mut sampler)))
            .unwrap_or_else(|payload| {
                sampler = None;
                Event::SampleError(format!("sampler panicked: {}", panic_message(&*payload)))
            });
        if cancel.is_cancelled() || tx.send(event).is_err() {
            return;
        }
        if cancel.sleep(interval.saturating_sub(started.elapsed())) {
            return;
        }
    }
}

/// One sample, building the sampler first if needed.
fn tick(config: &SamplerConfig, sampler: &mut Option<Sampler>) -> Event {
    if sampler.is_none() {
        match Sampler::new(config.clone()) {
            Ok(s) => *sampler = Some(s),
            Err(e) => return Event::SampleError(format!("cannot start sampling: {e}")),
        }
    }
    match sampler.as_mut() {
        Some(s) => sample(s),
        None => Event::SampleError("no sampler".into()),
    }
}

fn sample(sampler: &mut Sampler) -> Event {
    match sampler.sample() {
        Ok(snapshot) => Event::Snapshot(Box::new(snapshot)),
        Err(e) => Event::SampleError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn sends_snapshots_until_cancelled() {
        let (tx, rx) = mpsc::channel();
        let cancel = Cancel::default();
        let handle = spawn(
            SamplerConfig::default(),
            Duration::from_millis(5),
            tx,
            cancel.clone(),
        )
        .unwrap();
        for _ in 0..2 {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                Event::Snapshot(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        cancel.cancel();
        handle.join().unwrap();
    }

    #[test]
    fn quits_at_once_during_a_long_interval() {
        let (tx, rx) = mpsc::channel();
        let cancel = Cancel::default();
        let handle = spawn(SamplerConfig::default(), Duration::from_secs(3600), tx, cancel.clone()).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let t = Instant::now();
        cancel.cancel();
        handle.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
