//! UI state with no terminal: `update(Event)` folds events in, `apply(Action)` handles keys
//! in one `match`, and `sync()` recomputes the derived tables whose inputs changed.

mod tables;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use crate::analysis::filter::{Filter, FilterError};
use crate::analysis::group::{Grouper, PortGroup};
use crate::model::{Proto, Snapshot, TcpState};
use crate::source::sysctl::HostInfo;
use crate::tui::event::Event;
use crate::tui::input::LineInput;
use crate::tui::keys::{Action, KeyMap, Mode};
use crate::tui::layout::{self, Regions};
use crate::tui::nav::Nav;
use crate::tui::seen::SeenMap;
use crate::tui::service::Listening;
use crate::tui::sort::{self, GroupColumn, SocketColumn, Sort};
use crate::tui::theme::Theme;

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
    keymap: KeyMap,
    parse_filter: fn(&str) -> Result<Filter, FilterError>,
    /// The snapshot on screen.
    pub(crate) snapshot: Box<Snapshot>,
    pub(crate) has_sample: bool,
    /// The newest snapshot not yet applied, with its arrival time (applied in `sync`, so a
    /// burst costs one regroup).
    incoming: Option<(Box<Snapshot>, Instant)>,
    /// The newest snapshot received while paused, and how many arrived.
    held: Option<(Box<Snapshot>, Instant)>,
    pub(crate) held_count: u32,
    pub(crate) seen: SeenMap,
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
        let mut app = App {
            host: options.host,
            interval: options.interval,
            theme: options.theme,
            keymap: KeyMap::default(),
            parse_filter: options.parse_filter,
            snapshot: Box::new(Snapshot::empty()),
            has_sample: false,
            incoming: None,
            held: None,
            held_count: 0,
            seen: SeenMap::default(),
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
        let status = u16::from(self.last_error.is_some()) + u16::from(self.not_root());
        let footer = 1 + self.prompt_error_lines(area.width);
        layout::regions(area, status, footer)
    }

    /// Lines the prompt's error message takes above the input line: wrapped, at most two.
    pub fn prompt_error_lines(&self, width: u16) -> u16 {
        match self.prompt.as_ref().and_then(|p| p.error.as_ref()) {
            None => 0,
            Some(e) => {
                let len = e.to_string().chars().count();
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
                if let (Mode::Normal, Some(action)) = (self.mode(), mouse_action(mouse)) {
                    self.apply(action);
                }
            }
            Event::Input(TermEvent::Resize(w, h)) => {
                self.area = Rect::new(0, 0, w, h);
                self.clamp_navs();
            }
            Event::Input(_) | Event::Tick => {}
            Event::Snapshot(snapshot) => {
                if self.paused {
                    self.held = Some((snapshot, now));
                    self.held_count += 1;
                } else {
                    self.incoming = Some((snapshot, now));
                }
                self.last_error = None;
            }
            Event::SampleError(e) => self.last_error = Some(e),
            Event::Signal(sig) => self.quit = Some(QuitReason::Signal(sig)),
            Event::InputFailed(e) => self.quit = Some(QuitReason::InputFailed(e)),
        }
    }

    /// Does what an action asks; the one place keys and mouse turn into state changes.
    pub fn apply(&mut self, action: Action) {
        self.sync();
        let page = self.page();
        let page_step = page.cast_signed();
        match action {
            Action::Quit => self.quit = Some(QuitReason::Key),
            Action::Up => self.move_selection(|nav, len| nav.move_by(-1, len, page)),
            Action::Down => self.move_selection(|nav, len| nav.move_by(1, len, page)),
            Action::ScrollUp => self.move_selection(|nav, len| nav.move_by(-3, len, page)),
            Action::ScrollDown => self.move_selection(|nav, len| nav.move_by(3, len, page)),
            Action::PageUp => self.move_selection(|nav, len| nav.move_by(-page_step, len, page)),
            Action::PageDown => self.move_selection(|nav, len| nav.move_by(page_step, len, page)),
            Action::Top => self.move_selection(|nav, len| nav.select(0, len, page)),
            Action::Bottom => {
                self.move_selection(|nav, len| nav.select(len.saturating_sub(1), len, page))
            }
            Action::ClickRow(y) => self.click(y, page),
            Action::DrillDown => self.drill_down(),
            Action::Back => self.drill = None,
            Action::SwitchView => {
                self.drill = None;
                self.view = match self.view {
                    View::Ports => View::Connections,
                    View::Connections => View::Ports,
                };
            }
            Action::CycleSort | Action::ReverseSort => {
                self.change_sort(action == Action::CycleSort)
            }
            Action::OpenFilter => {
                self.prompt = Some(Prompt {
                    input: LineInput::new(&self.filter_text),
                    error: None,
                    before: (self.filter_text.clone(), self.filter.clone()),
                });
            }
            Action::ClearFilter => self.set_filter(String::new(), Filter::default()),
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    if let Some(held) = self.held.take() {
                        self.incoming = Some(held);
                    }
                    self.held_count = 0;
                }
            }
            Action::ToggleNumeric => self.numeric = !self.numeric,
            Action::ToggleHelp => self.help = !self.help,
            Action::CloseHelp => self.help = false,
            Action::PromptAccept => {
                if self.prompt.as_ref().is_some_and(|p| p.error.is_none()) {
                    self.prompt = None;
                }
            }
            Action::PromptCancel => {
                if let Some(prompt) = self.prompt.take() {
                    let (text, filter) = prompt.before;
                    self.set_filter(text, filter);
                }
            }
            Action::PromptBackspace
            | Action::PromptDelete
            | Action::PromptLeft
            | Action::PromptRight
            | Action::PromptHome
            | Action::PromptEnd
            | Action::PromptClear
            | Action::PromptInsert(_) => self.edit_prompt(action),
        }
        self.sync();
    }

    /// Applies the newest snapshot and recomputes the derived tables the current view
    /// needs and whose inputs changed; keeps each table's selection on the same row.
    pub fn sync(&mut self) {
        if let Some((snapshot, arrived)) = self.incoming.take() {
            self.apply_snapshot(snapshot, arrived);
        }
        self.refresh_tables();
        self.clamp_navs();
        self.remember_selection();
    }

    fn apply_snapshot(&mut self, snapshot: Box<Snapshot>, arrived: Instant) {
        self.seen.update(&snapshot, arrived);
        self.listening = Listening::of(&snapshot);
        self.snapshot = snapshot;
        self.has_sample = true;
        self.state_totals = [0; TcpState::COUNT];
        for s in &self.snapshot.sockets {
            self.state_totals[s.state.index()] += 1;
        }
        self.update_state_columns();
        self.stale = Stale::ALL;
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
        self.filter_text = text;
        self.filter = filter;
        self.stale = Stale::ALL;
    }

    /// Edits the prompt's text; the filter follows as long as the text parses.
    fn edit_prompt(&mut self, action: Action) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let input = &mut prompt.input;
        match action {
            Action::PromptBackspace => input.backspace(),
            Action::PromptDelete => input.delete(),
            Action::PromptLeft => input.left(),
            Action::PromptRight => input.right(),
            Action::PromptHome => input.home(),
            Action::PromptEnd => input.end(),
            Action::PromptClear => input.clear(),
            Action::PromptInsert(c) => input.insert(c),
            _ => return,
        }
        let text = input.text().to_string();
        let parsed = (self.parse_filter)(&text);
        prompt.error = parsed.as_ref().err().cloned();
        if let Ok(filter) = parsed
            && text != self.filter_text
        {
            self.set_filter(text, filter);
        }
    }

    fn change_sort(&mut self, cycle: bool) {
        if let Some(drill) = self.drill.as_mut() {
            sort_step(&mut drill.sort, sort::DRILL_COLUMNS, cycle);
            self.stale.drill = true;
            return;
        }
        match self.view {
            View::Ports => {
                let columns = sort::group_columns(&self.state_columns);
                sort_step(&mut self.ports_sort, &columns, cycle);
                self.stale.groups = true;
            }
            View::Connections => {
                sort_step(&mut self.conns_sort, sort::CONNECTION_COLUMNS, cycle);
                self.stale.conns = true;
            }
        }
    }

    fn drill_down(&mut self) {
        if self.drill.is_some() {
            return;
        }
        let target = match self.view {
            View::Ports => self
                .groups
                .get(self.ports_nav.selected)
                .map(|g| (g.proto, g.port)),
            View::Connections => self
                .conn_rows
                .get(self.conns_nav.selected)
                .and_then(|&i| self.snapshot.sockets.get(i as usize))
                .map(|s| (s.proto, s.local.port())),
        };
        if let Some((proto, port)) = target {
            self.drill = Some(Drill {
                proto,
                port,
                nav: Nav::default(),
                sort: Sort::default(),
                rows: Vec::new(),
                summary: None,
            });
            self.stale.drill = true;
        }
    }

    fn click(&mut self, y: u16, page: usize) {
        let Some(rows) = self.regions().map(|r| r.rows) else {
            return;
        };
        if (rows.y..rows.bottom()).contains(&y) {
            let line = usize::from(y - rows.y);
            self.move_selection(|nav, len| {
                if nav.offset + line < len {
                    nav.select(nav.offset + line, len, page);
                }
            });
        }
    }

    /// Runs `f` on the visible table's navigation with its row count.
    fn move_selection(&mut self, f: impl FnOnce(&mut Nav, usize)) {
        if let Some(drill) = self.drill.as_mut() {
            f(&mut drill.nav, drill.rows.len());
        } else {
            match self.view {
                View::Ports => f(&mut self.ports_nav, self.groups.len()),
                View::Connections => f(&mut self.conns_nav, self.conn_rows.len()),
            }
        }
    }

    fn clamp_navs(&mut self) {
        let page = self.page();
        self.ports_nav.clamp(self.groups.len(), page);
        self.conns_nav.clamp(self.conn_rows.len(), page);
        if let Some(d) = self.drill.as_mut() {
            d.nav.clamp(d.rows.len(), page);
        }
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

fn sort_step<C: sort::Column>(sort: &mut Sort<C>, columns: &[C], cycle: bool) {
    if cycle {
        sort.cycle(columns);
    } else {
        sort.reverse = !sort.reverse;
    }
}

/// The wheel scrolls, a left click selects.
fn mouse_action(mouse: MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::ScrollUp),
        MouseEventKind::ScrollDown => Some(Action::ScrollDown),
        MouseEventKind::Down(MouseButton::Left) => Some(Action::ClickRow(mouse.row)),
        _ => None,
    }
}
