//! The interactive terminal UI: connections grouped by local port and TCP state, with a
//! connections view, drill-down, filter prompt, sort and help; per-state and per-port
//! history, the TIME_WAIT and listener panels, and firing alerts in the header.
//!
//! Threads: the engine (`portside_core::engine`: sample, analysis, alerts, one
//! `Arc<Tick>` per interval), terminal input and signal forwarding (`event`) all send into
//! one channel; this thread folds events into the [`app::App`] and draws, and sends the
//! user's filter to the engine, which re-derives the last tick for it at once. It never
//! waits on a sample, and quitting does not wait for one either.

pub mod app;
mod chart;
mod connections;
mod drill;
pub mod event;
mod footer;
mod format;
mod grid;
mod grouped;
mod header;
mod help;
mod input;
pub mod keys;
pub mod layout;
mod listeners;
mod nav;
mod panel;
#[cfg(test)]
mod panel_tests;
mod prompt;
pub mod render;
#[cfg(test)]
mod screen_tests;
mod sort;
pub mod synthetic;
pub mod terminal;
#[cfg(test)]
mod testing;
pub mod theme;
#[cfg(test)]
mod theme_tests;
mod timewait;

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::layout::Rect;

use crate::analysis::filter::Filter;
use crate::source::sampler::SamplerConfig;
use crate::source::sysctl;
use app::{App, AppOptions, QuitReason};
use event::{Cancel, Event, SignalForwarder};
use portside_core::engine::{
    self, Engine, EngineConfig, EngineEvent, EngineHandle, KernelSource, SnapshotSource,
};
use theme::Theme;

/// What the command line hands to the TUI.
#[derive(Debug, Clone)]
pub struct TuiConfig {
    pub sampler: SamplerConfig,
    pub interval: Duration,
    /// Starting filter expression from the command line, already validated.
    pub filter: String,
    /// Start without service names (`-n`); `n` toggles.
    pub numeric: bool,
    /// Alert rules: the defaults with the command line's `--alert`s applied.
    pub alerts: Vec<crate::analysis::alerts::Alert>,
    pub theme: Theme,
    pub keymap: keys::KeyMap,
}

/// The TUI ended because of a signal (any that ends a process by default) or a hang-up of
/// its terminal (SIGHUP); the terminal is restored. The caller exits with 128 + signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("terminated by signal {0}")]
pub struct Terminated(pub i32);

/// Shortest interval the TUI samples at: `--interval 0` would redraw as fast as a core can
/// sample, which nobody can read.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Runs the UI until `q`, Ctrl-C or a signal. Restores the terminal on every way out.
/// Returns [`Terminated`] when a signal ended it.
pub fn run(config: TuiConfig) -> anyhow::Result<()> {
    let source = KernelSource::new(config.sampler.clone());
    run_with(config, source)
}

/// [`run`] with another snapshot source (a synthetic one in demos); `config.sampler` only
/// locates `/proc` for the host name.
pub fn run_with(config: TuiConfig, source: impl SnapshotSource) -> anyhow::Result<()> {
    pin_mmap_threshold();
    let TuiConfig {
        sampler,
        interval,
        filter,
        numeric,
        alerts,
        theme,
        keymap,
    } = config;
    let interval = interval.max(MIN_INTERVAL);
    let (width, height) = crossterm::terminal::size().context("cannot read the terminal size")?;
    let options = AppOptions {
        interval,
        host: sysctl::host_info(&sampler.proc_root),
        numeric,
        theme,
        filter_text: filter,
        parse_filter: Filter::parse_system,
        area: Rect::new(0, 0, width, height),
        alerts,
        keymap,
    };
    let mut app = App::new(options, Instant::now()).context("bad filter")?;
    let engine = Engine::new(
        source,
        EngineConfig {
            alerts: app.alert_rules().to_vec(),
            filter: app.filter.clone(),
            filter_text: app.filter_text.clone(),
            ..EngineConfig::default()
        },
    );
    let (tx, rx) = mpsc::channel();
    let cancel = Cancel::default();
    let signals = SignalForwarder::spawn(tx.clone()).context("cannot install signal handlers")?;
    let mut term = terminal::enter().context("cannot set up the terminal")?;
    let result = (|| {
        // Not joined on the way out: a slow sample must not delay quitting. It sees the
        // cancel flag and ends after its current sample.
        let ticks = tx.clone();
        let engine = engine::spawn(engine, interval, cancel.clone(), move |event| {
            let event = match event {
                EngineEvent::Tick(tick) => Event::Tick(tick),
                EngineEvent::Error(e) => Event::SampleError(e),
            };
            ticks.send(event).is_ok()
        })?;
        let input = event::spawn_input(tx, cancel.clone())?;
        let result = event_loop(&mut term, &mut app, &rx, &engine);
        cancel.cancel();
        // Joined (within one 25 ms poll) so it stops reading before the shell gets the tty,
        // but with a bound: on a hung-up terminal crossterm's poll spins on `read() == 0`
        // and never returns, and a blocked join would keep the process alive forever
        // (seen with a killed tmux session). The process exits soon after, ending it.
        join_within(input, INPUT_JOIN_LIMIT);
        result
    })();
    cancel.cancel();
    let restored = terminal::restore().context("cannot restore the terminal");
    drop(signals);
    // A terminal that hung up cannot be restored, nor shown an error: leave as SIGHUP does.
    if app.quit_reason() == Some(&QuitReason::Signal(signal_hook::consts::SIGHUP)) {
        // ratatui's `Terminal` shows the cursor on drop and reports a failure with
        // `eprintln!`, which panics on a dead stderr (exit 101): not dropped here.
        std::mem::forget(term);
        return Err(Terminated(signal_hook::consts::SIGHUP).into());
    }
    result?;
    restored?;
    match app.quit_reason() {
        Some(QuitReason::Signal(sig)) => Err(Terminated(*sig).into()),
        Some(QuitReason::InputFailed(e)) => {
            Err(anyhow::anyhow!("reading the terminal failed: {e}"))
        }
        Some(QuitReason::Key) | None => Ok(()),
    }
}

/// Keep glibc from raising its mmap threshold. Every tick a 100k-socket snapshot (~10 MB)
/// is built on the sampler thread and freed on the UI thread; after the first such free
/// glibc's dynamic threshold grows past that size and later snapshots come from arena
/// heaps, which fragment and do not shrink. A fixed threshold keeps big buffers mmapped,
/// returned to the kernel when freed. Peak RSS of the live view at 100k: see BENCHMARKS.md.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before the threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// How long quitting waits for the input thread to stop reading the terminal.
const INPUT_JOIN_LIMIT: Duration = Duration::from_millis(250);

/// Join `thread` if it finishes within `limit`; otherwise leave it running.
fn join_within(thread: std::thread::JoinHandle<()>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if thread.is_finished() {
        let _ = thread.join();
    }
}

/// Draws, waits for an event, folds in every event already queued (one redraw per burst
/// of wheel events or ticks), hands a changed filter to the engine, until the app wants
/// to quit.
fn event_loop(
    term: &mut terminal::Term,
    app: &mut App,
    rx: &Receiver<Event>,
    engine: &EngineHandle,
) -> anyhow::Result<()> {
    loop {
        if let Some((filter, text)) = app.take_scope_request() {
            engine.set_filter(filter, text);
        }
        app.sync();
        match term.draw(|frame| render::render(frame, app)) {
            Ok(_) => {}
            // Drawing on a terminal that went away: a hang-up.
            Err(e) if terminal::is_gone(&e) => {
                app.update(Event::Signal(signal_hook::consts::SIGHUP), Instant::now());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let event = rx.recv().context("all event sources stopped")?;
        app.update(event, Instant::now());
        while app.quit_reason().is_none()
            && let Ok(event) = rx.try_recv()
        {
            app.update(event, Instant::now());
        }
        if app.quit_reason().is_some() {
            return Ok(());
        }
    }
}
