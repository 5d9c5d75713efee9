//! Draws the whole screen from the app state; one small function per region.
//!
//! ```text
//! ┌────────────────────────────────────────────────────────────┐
//! │ portside │ host kernel │ sockets, with a process │ timing  │ header.rs
//! │ LISTEN 3 ▁▂  SYN_RECV 0  ESTAB 12 ▃▅█  TIME_WAIT 4 ▁▁▂    │ (state sparklines)
//! │ [firing alert]  [sample error]  [not-root note]            │
//! │  Ports  Connections   12 ports, 40 sockets     sort: PORT▲ │ title (here)
//! │ PROTO PORT SERVICE CLASS PROCESS   LISTEN ESTAB ... Δ1m    │ grouped.rs |
//! │ rows: only the visible window is formatted                 │ connections.rs | drill.rs
//! │   (or a panel over title + columns + rows)                 │ timewait.rs | listeners.rs
//! │ [filter error]                                             │
//! │ filter: ...   ? help  q quit  / filter ...  (or the prompt)│ footer.rs | prompt.rs
//! └────────────────────────────────────────────────────────────┘
//!        help.rs draws its overlay on top when `?` is pressed
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::app::{App, Panel, View};
use crate::tui::layout::{MIN_HEIGHT, MIN_WIDTH};
use crate::tui::sort::{Column, GroupColumn, SocketColumn, Sort};
use crate::tui::theme::state_label;
use crate::tui::{connections, drill, footer, grouped, header, help, listeners, prompt, timewait};

/// Draws one frame. Reads the app only; call `App::sync` first.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let Some(r) = app.regions_in(area) else {
        too_small(frame, area, app);
        return;
    };
    header::render(frame, r.header, app);
    match (app.panels.open, &app.drill, app.view) {
        (Some(Panel::TimeWait), _, _) => timewait::render(frame, r.body(), app),
        (Some(Panel::Listeners), _, _) => listeners::render(frame, r.body(), app),
        (None, Some(d), _) => drill::render(frame, &r, app, d),
        (None, None, View::Ports) => grouped::render(frame, &r, app),
        (None, None, View::Connections) => connections::render(frame, &r, app),
    }
    match &app.prompt {
        Some(p) => prompt::render(frame, r.footer, app, p),
        None => footer::render(frame, r.footer, app),
    }
    if app.help {
        help::render(frame, area, app);
    }
}

fn too_small(frame: &mut Frame, area: Rect, app: &App) {
    let text = format!(
        "terminal too small: {}x{}, needs {MIN_WIDTH}x{MIN_HEIGHT}. q quits",
        area.width, area.height
    );
    frame.render_widget(
        Paragraph::new(Line::styled(text, app.theme.warning())).wrap(Wrap { trim: true }),
        area,
    );
}

/// The title line: `head` (the view tabs, or the drilled port), counts, and the sort on
/// the right when there is room for it.
pub fn title(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    head: Vec<Span<'static>>,
    stats: Vec<Span<'static>>,
    sort: &str,
) {
    let mut spans = head;
    spans.push(Span::raw("  "));
    spans.extend(stats);
    let left = Line::from(spans);
    let used = left.width();
    frame.render_widget(Paragraph::new(left), area);
    let sort = Line::styled(format!("sort: {sort} "), app.theme.dim());
    let sort_w = sort.width();
    if usize::from(area.width) > used + sort_w + 2 {
        let right = Rect {
            x: area.x + area.width - sort_w as u16,
            width: sort_w as u16,
            ..area
        };
        frame.render_widget(Paragraph::new(sort), right);
    }
}

/// The view tabs, the current one highlighted.
pub fn tabs(app: &App) -> Vec<Span<'static>> {
    let theme = app.theme;
    [
        (View::Ports, " Ports "),
        (View::Connections, " Connections "),
    ]
    .into_iter()
    .map(|(v, name)| {
        if v == app.view {
            Span::styled(name, theme.title().patch(theme.selected()))
        } else {
            Span::styled(name, theme.dim())
        }
    })
    .collect()
}

/// `Some(descending)` when `col` is the sort column.
pub fn sort_mark<C: Column>(sort: Sort<C>, col: C) -> Option<bool> {
    (sort.column == Some(col)).then(|| sort.descending())
}

fn arrow(descending: bool) -> &'static str {
    if descending { "▼" } else { "▲" }
}

/// The grouped view's sort, as the title shows it.
pub fn group_sort_name(sort: Sort<GroupColumn>) -> String {
    let name = match sort.column {
        None => "listening, busiest",
        Some(GroupColumn::Proto) => "PROTO",
        Some(GroupColumn::Port) => "PORT",
        Some(GroupColumn::Service) => "SERVICE",
        Some(GroupColumn::Class) => "CLASS",
        Some(GroupColumn::Process) => "PROCESS",
        Some(GroupColumn::State(s)) => state_label(s),
        Some(GroupColumn::Total) => "TOTAL",
    };
    format!("{name}{}", arrow(sort.descending()))
}

/// A socket table's sort, as the title shows it; `default` names the default order.
pub fn socket_sort_name(sort: Sort<SocketColumn>, default: &str) -> String {
    let name = match sort.column {
        None => default,
        Some(c) => socket_column_label(c),
    };
    format!("{name}{}", arrow(sort.descending()))
}

pub fn socket_column_label(c: SocketColumn) -> &'static str {
    match c {
        SocketColumn::Proto => "PROTO",
        SocketColumn::State => "STATE",
        SocketColumn::RecvQ => "RECV-Q",
        SocketColumn::SendQ => "SEND-Q",
        SocketColumn::Local => "LOCAL",
        SocketColumn::Peer => "PEER",
        SocketColumn::Service => "SERVICE",
        SocketColumn::Process => "PROCESS",
        SocketColumn::Seen => "SEEN",
    }
}

/// What an empty table says.
pub fn empty_message(app: &App) -> &'static str {
    if !app.has_sample {
        "waiting for the first sample…"
    } else if app.filter.is_empty() {
        "no sockets"
    } else {
        "no sockets match the filter"
    }
}
