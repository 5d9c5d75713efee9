//! The one channel into the UI thread: input, snapshots, sample errors, ticks and signals,
//! and the threads that feed it (terminal input, signals). The sampler's thread is in
//! `sampler_thread.rs`.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossterm::event;

use crate::model::Snapshot;
use crate::source::sysctl::{KernelSettings, ListenStats};
use crate::tui::terminal::panic_message;

/// One sample: the socket snapshot and the host figures read right after it, on the
/// sampler's thread (no `/proc` reads on the UI thread).
#[derive(Debug)]
pub struct Sample {
    pub snapshot: Box<Snapshot>,
    /// `/proc/net/netstat` ListenOverflows / ListenDrops; `None` when unreadable.
    pub listen_stats: Option<ListenStats>,
    /// The sysctls the TIME_WAIT panel explains; `None` when the source has none.
    pub settings: Option<KernelSettings>,
}

impl Sample {
    /// A sample of a snapshot alone (no counters, no settings).
    pub fn of(snapshot: Snapshot) -> Sample {
        Sample {
            snapshot: Box::new(snapshot),
            listen_stats: None,
            settings: None,
        }
    }
}

/// Everything the UI thread reacts to.
#[derive(Debug)]
pub enum Event {
    /// A key press, mouse event or resize.
    Input(event::Event),
    /// A new sample, moved from the sampler thread.
    Sample(Sample),
    /// A sample failed; the UI keeps the last good snapshot and shows this.
    SampleError(String),
    /// Time passed (ages on screen move on even with a long interval).
    Tick,
    /// A signal that ends a process by default arrived (SIGTERM, SIGHUP, SIGUSR1, ...; see
    /// `terminal::signals`), or the terminal hung up: restore the terminal and leave.
    Signal(i32),
    /// Reading the terminal failed (e.g. it went away): leave with this error.
    InputFailed(String),
}

/// A flag threads sleep on: `cancel()` wakes every sleeper at once, so quitting never
/// waits for an interval to run out.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<(Mutex<bool>, Condvar)>);

impl Cancel {
    pub fn cancel(&self) {
        let (flag, cond) = &*self.0;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `d` or until cancelled; returns whether it was cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let (flag, cond) = &*self.0;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = cond
            .wait_timeout_while(guard, d, |cancelled| !*cancelled)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// How long the input thread blocks before checking for cancellation: bounds the time
/// quitting waits for this thread, which must stop reading before the shell gets the tty.
const INPUT_POLL: Duration = Duration::from_millis(25);
/// How often a [`Event::Tick`] is sent.
const TICK: Duration = Duration::from_secs(1);

/// Reads terminal events and sends them, plus a tick every second, until cancelled or
/// the UI is gone.
pub fn spawn_input(tx: Sender<Event>, cancel: Cancel) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name("input".into()).spawn(move || {
        let failed = tx.clone();
        let read = panic::catch_unwind(AssertUnwindSafe(|| read_input(&tx, &cancel)));
        if let Err(payload) = read {
            let msg = format!("input thread panicked: {}", panic_message(&*payload));
            let _ = failed.send(Event::InputFailed(msg));
        }
    })
}

/// The input loop: stops when cancelled, when the UI is gone, or after reporting a
/// terminal read error.
fn read_input(tx: &Sender<Event>, cancel: &Cancel) {
    let mut last_tick = Instant::now();
    while !cancel.is_cancelled() {
        let event =
            match event::poll(INPUT_POLL).and_then(|ready| ready.then(event::read).transpose()) {
                Ok(Some(ev)) => Event::Input(ev),
                Ok(None) if last_tick.elapsed() >= TICK => {
                    last_tick = Instant::now();
                    Event::Tick
                }
                Ok(None) => continue,
                // The terminal went away: that is a hang-up (the kernel's SIGHUP may not
                // have arrived yet), ended like one.
                Err(e) if crate::tui::terminal::is_gone(&e) => {
                    let _ = tx.send(Event::Signal(signal_hook::consts::SIGHUP));
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Event::InputFailed(e.to_string()));
                    return;
                }
            };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// Signal delivery through `signal-hook`'s iterator (a self-pipe written by the handler,
/// read by a thread that forwards each signal as an [`Event::Signal`]).
pub struct SignalForwarder {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalForwarder {
    pub fn spawn(tx: Sender<Event>) -> io::Result<SignalForwarder> {
        let mut signals =
            signal_hook::iterator::Signals::new(crate::tui::terminal::signals::forwarded())?;
        let handle = signals.handle();
        let thread = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Event::Signal(sig)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SignalForwarder {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for SignalForwarder {
    /// Stops the thread; its `Signals` unregisters our handlers when dropped.
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_long_sleep_at_once() {
        let cancel = Cancel::default();
        let sleeper = {
            let cancel = cancel.clone();
            thread::spawn(move || {
                let t = Instant::now();
                (cancel.sleep(Duration::from_secs(30)), t.elapsed())
            })
        };
        thread::sleep(Duration::from_millis(20));
        cancel.cancel();
        let (cancelled, took) = sleeper.join().unwrap();
        assert!(cancelled);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(cancel.sleep(Duration::from_secs(30)));
    }

    #[test]
    fn sleep_without_cancel_times_out() {
        let cancel = Cancel::default();
        assert!(!cancel.sleep(Duration::from_millis(10)));
        assert!(!cancel.is_cancelled());
    }
}
