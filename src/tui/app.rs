//! UI state with no terminal: `update(Event)` folds events in, `apply(Action)` handles keys
//! in one `match`, and `sync()` recomputes the derived tables whose inputs changed.

mod actions;
mod panels;
mod tables;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crossterm::event::Event as TermEvent;
use ratatui::layout::Rect;

use std::sync::Arc;

use portside_core::engine::Tick;

use crate::analysis::alerts::{Alert, FiredAlert};
use crate::analysis::filter::{Filter, FilterError};
use crate::analysis::group::{Grouper, PortGroup};
use crate::analysis::insight::Insight;
use crate::analysis::sides::Listening;
use crate::model::{Proto, Snapshot, TcpState};
use crate::source::sysctl::{HostInfo, KernelSettings};
use crate::tui::event::Event;
use crate::tui::input::LineInput;
use crate::tui::keys::{KeyMap, Mode};
use crate::tui::layout::{self, Regions};
use crate::tui::nav::Nav;
use crate::tui::sort::{GroupColumn, SocketColumn, Sort};
use crate::tui::theme::Theme;

pub use panels::{Panel, Panels};
pub use tables::SockKey;

/// How the app starts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub interval: Duration,
    pub host: HostInfo,
    pub numeric: bool,
    pub theme: Theme,
    /// The starting filter, as typed on the command line.
    pub filter_text: String,
    /// Parses a filter expression (the command line's parser, with its name lookups).
    pub parse_filter: fn(&str) -> Result<Filter, FilterError>,
    /// The screen size.
    pub area: Rect,
    /// Alert rules the engine checks on every tick (the defaults with the user's
    /// `--alert`s); the app only hands them to the engine.
    pub alerts: Vec<Alert>,
    /// The key bindings (defaults, preset and the config file's).
    pub keymap: KeyMap,
}

/// The two main views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One row per (protocol, local port) with counts per state.
    Ports,
    /// One row per socket.
    Connections,
}

/// The connections of one port, opened with Enter.
#[derive(Debug, Clone)]
pub struct Drill {
    pub proto: Proto,
    pub port: u16,
    pub nav: Nav,
    pub sort: Sort<SocketColumn>,
    /// Indexes into `snapshot.sockets` of the port's sockets that match the filter.
    pub rows: Vec<u32>,
    /// Summary of those sockets (listeners, queues, owners); `None` when there are none.
    pub summary: Option<PortGroup>,
}

/// The open `/` prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub input: LineInput,
    /// Why the text does not parse; the last valid filter stays applied meanwhile.
    pub error: Option<FilterError>,
    /// A note about the last edit (a paste cut to the prompt's limit), shown like an error.
    pub note: Option<String>,
    before: (String, Filter),
}

/// Why the app wants to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuitReason {
    Key,
    Signal(i32),
    InputFailed(String),
}

/// Derived tables whose inputs changed since they were computed.
#[derive(Debug, Clone, Copy)]
struct Stale {
    groups: bool,
    conns: bool,
    drill: bool,
}

impl Stale {
    const ALL: Stale = Stale {
        groups: true,
        conns: true,
        drill: true,
    };
}

/// The whole UI state. Render functions read it; only `update`/`apply` change it.
pub struct App {
    pub(crate) host: HostInfo,
    pub(crate) interval: Duration,
    pub(crate) theme: Theme,
    pub(crate) keymap: KeyMap,
    parse_filter: fn(&str) -> Result<Filter, FilterError>,
    /// The engine's tick on screen: read-only input (host totals and history, the
    /// filter-scoped insight, reports and alerts).
    pub(crate) tick: Arc<Tick>,
    /// The tick's host-wide snapshot (shared with it).
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) has_sample: bool,
    /// The newest tick not yet applied, with its arrival time (applied in `sync`, so a
    /// burst costs one regroup).
    incoming: Option<(Arc<Tick>, Instant)>,
    /// The newest tick received while paused, and how many arrived. The engine goes on
    /// (history and rates keep recording); the picture freezes until resumed.
    held: Option<(Arc<Tick>, Instant)>,
    pub(crate) held_count: u32,
    /// When the snapshot on screen was applied: ages on screen are its ages plus the time
    /// since.
    applied_at: Instant,
    /// The rules handed to the engine at start.
    rules: Vec<Alert>,
    /// A filter the engine has not been told about yet.
    scope_request: Option<(Filter, String)>,
    pub(crate) panels: Panels,
    /// Local ports with a listener in the snapshot on screen (names client sockets' services).
    pub(crate) listening: Listening,
    /// The time of the last event: ages on screen are measured to it.
    pub(crate) now: Instant,
    pub(crate) last_error: Option<String>,
    pub(crate) area: Rect,
    pub(crate) view: View,
    pub(crate) drill: Option<Drill>,
    pub(crate) help: bool,
    pub(crate) paused: bool,
    pub(crate) numeric: bool,
    quit: Option<QuitReason>,
    pub(crate) filter: Filter,
    pub(crate) filter_text: String,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) ports_nav: Nav,
    pub(crate) ports_sort: Sort<GroupColumn>,
    pub(crate) conns_nav: Nav,
    pub(crate) conns_sort: Sort<SocketColumn>,
    grouper: Grouper,
    /// Port groups of the filtered snapshot, sorted.
    pub(crate) groups: Vec<PortGroup>,
    /// Indexes into `snapshot.sockets` of the filtered sockets, sorted.
    pub(crate) conn_rows: Vec<u32>,
    /// Sockets per state in the whole snapshot (the header's counts).
    pub(crate) state_totals: [u32; TcpState::COUNT],
    /// States seen at least once this session: they keep their column once they have one.
    sticky: [bool; TcpState::COUNT],
    /// The grouped view's state columns, most important first.
    pub(crate) state_columns: Vec<TcpState>,
    stale: Stale,
    anchors: tables::Anchors,
}

impl App {
    /// A new app showing an empty snapshot until the first sample arrives. Fails when the
    /// starting filter does not parse.
    pub fn new(options: AppOptions, now: Instant) -> Result<App, FilterError> {
        let filter = (options.parse_filter)(&options.filter_text)?;
        let tick = Arc::new(Tick::empty(filter.clone(), options.filter_text.clone()));
        let mut app = App {
            host: options.host,
            interval: options.interval,
            theme: options.theme,
            keymap: options.keymap,
            parse_filter: options.parse_filter,
            snapshot: Arc::clone(&tick.snapshot),
            tick,
            has_sample: false,
            incoming: None,
            held: None,
            held_count: 0,
            applied_at: now,
            rules: options.alerts,
            scope_request: None,
            panels: Panels::default(),
            listening: Listening::default(),
            now,
            last_error: None,
            area: options.area,
            view: View::Ports,
            drill: None,
            help: false,
            paused: false,
            numeric: options.numeric,
            quit: None,
            filter,
            filter_text: options.filter_text,
            prompt: None,
            ports_nav: Nav::default(),
            ports_sort: Sort::default(),
            conns_nav: Nav::default(),
            conns_sort: Sort::default(),
            grouper: Grouper::new(),
            groups: Vec::new(),
            conn_rows: Vec::new(),
            state_totals: [0; TcpState::COUNT],
            sticky: [false; TcpState::COUNT],
            state_columns: Vec::new(),
            stale: Stale::ALL,
            anchors: tables::Anchors::default(),
        };
        app.update_state_columns();
        app.sync();
        Ok(app)
    }

    /// Why the app should stop, once it should.
    pub fn quit_reason(&self) -> Option<&QuitReason> {
        self.quit.as_ref()
    }

    /// Which key table applies now.
    pub fn mode(&self) -> Mode {
        if self.help {
            Mode::Help
        } else if self.prompt.is_some() {
            Mode::Prompt
        } else {
            Mode::Normal
        }
    }

    /// Screen regions for the current size and status lines; `None` when too small.
    pub fn regions(&self) -> Option<Regions> {
        self.regions_in(self.area)
    }

    /// Screen regions for a screen of size `area`.
    pub fn regions_in(&self, area: Rect) -> Option<Regions> {
        let status = u16::from(self.last_error.is_some())
            + u16::from(self.not_root())
            + u16::from(!self.fired().is_empty());
        let footer = 1 + self.prompt_error_lines(area.width);
        layout::regions(area, status, footer)
    }

    /// Lines the prompt's error message takes above the input line: wrapped, at most two.
    pub fn prompt_error_lines(&self, width: u16) -> u16 {
        let message = self
            .prompt
            .as_ref()
            .and_then(|p| p.error.as_ref().map(ToString::to_string).or(p.note.clone()));
        match message {
            None => 0,
            Some(e) => {
                let len = e.chars().count();
                if len > usize::from(width.max(1)) {
                    2
                } else {
                    1
                }
            }
        }
    }

    /// Whether the header shows the "run as root" note.
    pub fn not_root(&self) -> bool {
        self.has_sample && !self.snapshot.privileged
    }

    /// Rows that fit in the table.
    fn page(&self) -> usize {
        self.regions()
            .map_or(1, |r| usize::from(r.rows.height).max(1))
    }

    /// Folds one event in, at time `now`.
    pub fn update(&mut self, event: Event, now: Instant) {
        self.now = now;
        match event {
            Event::Input(TermEvent::Key(key)) => {
                if let Some(action) = self.keymap.action(self.mode(), key) {
                    self.apply(action);
                }
            }
            Event::Input(TermEvent::Mouse(mouse)) => {
                if let (Mode::Normal, Some(action)) = (self.mode(), actions::mouse_action(mouse)) {
                    self.apply(action);
                }
            }
            Event::Input(TermEvent::Paste(text)) => {
                if self.mode() == Mode::Prompt {
                    self.paste(&text);
                }
            }
            Event::Input(TermEvent::Resize(w, h)) => {
                self.area = Rect::new(0, 0, w, h);
                // The TIME_WAIT report keeps as many rows as the screen is tall.
                self.panels.stale = true;
                self.clamp_navs();
            }
            Event::Input(_) | Event::Clock => {}
            Event::Tick(tick) => {
                // Paused, a re-derivation of the sample on screen (a new filter) still
                // applies: it is the same picture, described for the new filter.
                if self.paused && tick.sample != self.tick.sample {
                    self.held = Some((tick, now));
                    self.held_count += 1;
                } else {
                    self.incoming = Some((tick, now));
                }
                self.last_error = None;
            }
            Event::SampleError(e) => self.last_error = Some(e),
            Event::Signal(sig) => self.quit = Some(QuitReason::Signal(sig)),
            Event::InputFailed(e) => self.quit = Some(QuitReason::InputFailed(e)),
        }
    }

    /// Applies the newest snapshot and recomputes the derived tables the current view
    /// needs and whose inputs changed; keeps each table's selection on the same row.
    pub fn sync(&mut self) {
        if let Some((tick, arrived)) = self.incoming.take() {
            self.apply_tick(tick, arrived);
        }
        self.refresh_tables();
        self.refresh_panel();
        self.clamp_navs();
        self.clamp_panel();
        self.remember_selection();
    }

    /// Puts a tick on screen. Everything the engine derived is read, not recomputed;
    /// the tables (groups, rows) are rebuilt in `sync` as their views need them.
    fn apply_tick(&mut self, tick: Arc<Tick>, arrived: Instant) {
        if tick.sample != self.tick.sample {
            self.applied_at = arrived;
            self.listening = Listening::of(&tick.snapshot);
            self.snapshot = Arc::clone(&tick.snapshot);
        }
        self.has_sample = tick.sample > 0;
        for state in TcpState::ALL {
            self.state_totals[state.index()] = tick.totals.state(state);
        }
        self.tick = tick;
        self.panels.stale = true;
        self.update_state_columns();
        self.stale = Stale::ALL;
    }

    /// The insight of the sockets the filter selects (the host's without a filter):
    /// panels, port trends and listener queues.
    pub(crate) fn insight(&self) -> &Insight {
        &self.tick.scope.insight
    }

    /// How long socket `index` of the snapshot on screen has been seen, at `now`, and
    /// whether it was there at the first sample (its real age is then at least that).
    pub(crate) fn age(&self, index: usize) -> Option<(Duration, bool)> {
        let seen = self.host_insight().connections().seen(index)?;
        let at_sample = self
            .snapshot
            .taken_at
            .duration_since(seen.since)
            .unwrap_or_default();
        Some((
            at_sample + self.now.saturating_duration_since(self.applied_at),
            seen.at_start,
        ))
    }

    /// The insight of every socket: the header's history.
    pub(crate) fn host_insight(&self) -> &Insight {
        &self.tick.host
    }

    /// Alerts firing on the tick on screen (filter-scoped), most severe first.
    pub(crate) fn fired(&self) -> &[FiredAlert] {
        &self.tick.scope.alerts
    }

    /// The newest kernel settings the engine had.
    pub(crate) fn settings(&self) -> Option<&KernelSettings> {
        self.tick.settings.as_ref()
    }

    /// The alert rules the engine should check.
    pub fn alert_rules(&self) -> &[Alert] {
        &self.rules
    }

    /// The filter the engine must scope to, once after each change.
    pub fn take_scope_request(&mut self) -> Option<(Filter, String)> {
        self.scope_request.take()
    }

    /// Sticky state columns: LISTEN and ESTAB always, others once seen, by importance.
    fn update_state_columns(&mut self) {
        for state in TcpState::ALL {
            if self.state_totals[state.index()] > 0 {
                self.sticky[state.index()] = true;
            }
        }
        self.sticky[TcpState::Listen.index()] = true;
        self.sticky[TcpState::Established.index()] = true;
        self.state_columns = STATE_PRIORITY
            .iter()
            .copied()
            .filter(|s| self.sticky[s.index()])
            .collect();
    }

    fn set_filter(&mut self, text: String, filter: Filter) {
        if filter != self.filter || text != self.filter_text {
            self.scope_request = Some((filter.clone(), text.clone()));
        }
        self.filter_text = text;
        self.filter = filter;
        self.stale = Stale::ALL;
    }
}

/// State columns by importance: the first ones keep their column on a narrow screen.
pub const STATE_PRIORITY: [TcpState; TcpState::COUNT] = [
    TcpState::Listen,
    TcpState::Established,
    TcpState::TimeWait,
    TcpState::CloseWait,
    TcpState::Close,
    TcpState::SynRecv,
    TcpState::SynSent,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::LastAck,
    TcpState::Closing,
    TcpState::NewSynRecv,
    TcpState::BoundInactive,
];
