//! The engine's own thread: one tick per interval (measured start to start: a tick slower
//! than the interval is followed at once by the next), each delivered as an `Arc<Tick>`;
//! control messages (a new filter) re-derive the last tick at once, between samples.
//! Errors and panics in a tick become [`EngineEvent::Error`] and sampling goes on.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::analysis::alerts::Alert;
use crate::analysis::filter::Filter;
use crate::engine::cancel::Cancel;
use crate::engine::{Engine, Tick};

/// What the engine thread delivers.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// A new tick: a new sample, or the last sample re-derived for a new filter.
    Tick(Arc<Tick>),
    /// A tick failed (the source's error or a panic); the next one is tried on schedule.
    Error(String),
}

/// What a consumer can tell the running engine.
#[derive(Debug, Clone)]
pub enum Control {
    /// Scope the analysis to `filter` (its text as typed, for display) and re-derive the
    /// last sample at once.
    SetFilter { filter: Filter, text: String },
    /// Replace the alert rules; takes effect from the next tick.
    SetAlerts(Vec<Alert>),
    /// Internal: wakes the thread when cancelled.
    #[doc(hidden)]
    Wake,
}

/// The running engine thread: send it [`Control`]s; dropping the handle stops it.
#[derive(Debug)]
pub struct EngineHandle {
    control: Sender<Control>,
    thread: JoinHandle<()>,
}

impl EngineHandle {
    /// Scope the analysis to `filter`; a re-derived tick follows at once.
    pub fn set_filter(&self, filter: Filter, text: String) {
        let _ = self.control.send(Control::SetFilter { filter, text });
    }

    /// A sender for [`Control`] messages, for a thread other than the handle's owner.
    pub fn control(&self) -> Sender<Control> {
        self.control.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stop the thread (it ends after the tick in progress, if any) and wait for it.
    pub fn join(self) {
        let EngineHandle { control, thread } = self;
        drop(control);
        let _ = thread.join();
    }
}

/// Runs `engine` on its own thread every `interval`, handing each event to `deliver`
/// until it returns `false`, `cancel` is cancelled or every [`EngineHandle`] sender is
/// dropped. The first tick starts at once.
pub fn spawn(
    engine: Engine,
    interval: Duration,
    cancel: Cancel,
    deliver: impl FnMut(EngineEvent) -> bool + Send + 'static,
) -> io::Result<EngineHandle> {
    let (control, inbox) = mpsc::channel();
    let waker = control.clone();
    cancel.on_cancel(move || {
        let _ = waker.send(Control::Wake);
    });
    let thread = thread::Builder::new()
        .name("engine".into())
        .spawn(move || run(engine, interval, &cancel, &inbox, deliver))?;
    Ok(EngineHandle { control, thread })
}

fn run(
    mut engine: Engine,
    interval: Duration,
    cancel: &Cancel,
    inbox: &Receiver<Control>,
    mut deliver: impl FnMut(EngineEvent) -> bool,
) {
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let event = guarded(&mut engine, |e| e.tick().map(Some).map_err(|e| e.0));
        if cancel.is_cancelled() || !deliver(event) {
            return;
        }
        let next = started + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let first = match inbox.recv_timeout(wait) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if cancel.is_cancelled() {
                return;
            }
            // A burst of filter changes (typing in a prompt) costs one re-derivation.
            let mut filter = None;
            for c in std::iter::once(first).chain(inbox.try_iter()) {
                match c {
                    Control::SetFilter { filter: f, text } => filter = Some((f, text)),
                    Control::SetAlerts(rules) => engine.set_alerts(rules),
                    Control::Wake => {}
                }
            }
            if let Some((f, text)) = filter {
                let event = guarded(&mut engine, |e| Ok(e.set_filter(f, text)));
                let event = match event {
                    EngineEvent::Tick(t) => Some(EngineEvent::Tick(t)),
                    EngineEvent::Error(e) if !e.is_empty() => Some(EngineEvent::Error(e)),
                    EngineEvent::Error(_) => None,
                };
                if let Some(event) = event
                    && !deliver(event)
                {
                    return;
                }
            }
        }
    }
}

/// Runs one engine step; an error or a panic becomes an error event (after a panic the
/// source starts afresh). `Ok(None)` (nothing to re-derive yet) is an empty error.
fn guarded(
    engine: &mut Engine,
    step: impl FnOnce(&mut Engine) -> Result<Option<Arc<Tick>>, String>,
) -> EngineEvent {
    let step = |e: &mut Engine| step(e);
    match panic::catch_unwind(AssertUnwindSafe(|| step(engine))) {
        Ok(Ok(Some(tick))) => EngineEvent::Tick(tick),
        Ok(Ok(None)) => EngineEvent::Error(String::new()),
        Ok(Err(e)) => EngineEvent::Error(e),
        Err(payload) => {
            engine.recover();
            EngineEvent::Error(format!("sampler panicked: {}", panic_message(&*payload)))
        }
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}
