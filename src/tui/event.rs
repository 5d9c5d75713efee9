//! The one channel into the UI thread: input, engine ticks, sample errors, clock and
//! signals, and the threads that feed it (terminal input, signals). The engine's thread is
//! `portside_core::engine::spawn`.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossterm::event;

use crate::tui::terminal::panic_message;
pub use portside_core::engine::Cancel;
use portside_core::engine::Tick;

/// Everything the UI thread reacts to.
#[derive(Debug)]
pub enum Event {
    /// A key press, mouse event or resize.
    Input(event::Event),
    /// A new tick from the engine thread (a new sample, or the last one re-derived for
    /// a new filter): read-only, shared.
    Tick(Arc<Tick>),
    /// A sample failed; the UI keeps the last good tick and shows this.
    SampleError(String),
    /// Time passed (ages on screen move on even with a long interval).
    Clock,
    /// A signal that ends a process by default arrived (SIGTERM, SIGHUP, SIGUSR1, ...; see
    /// `terminal::signals`), or the terminal hung up: restore the terminal and leave.
    Signal(i32),
    /// Reading the terminal failed (e.g. it went away): leave with this error.
    InputFailed(String),
}

/// How long the input thread blocks before checking for cancellation: bounds the time
/// quitting waits for this thread, which must stop reading before the shell gets the tty.
const INPUT_POLL: Duration = Duration::from_millis(25);
/// How often a [`Event::Clock`] is sent.
const TICK: Duration = Duration::from_secs(1);

/// Reads terminal events and sends them, plus a clock event every second, until cancelled or
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
                    Event::Clock
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
