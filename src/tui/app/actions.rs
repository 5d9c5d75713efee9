//! Actions: the one `match` that turns keys and mouse into state changes, and its helpers.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use crate::analysis::filter::Filter;
use crate::tui::app::{App, Drill, Panel, Prompt, QuitReason, View};
use crate::tui::input::LineInput;
use crate::tui::keys::Action;
use crate::tui::nav::Nav;
use crate::tui::sort::{self, Sort};

impl App {
    /// Does what an action asks; the one place keys and mouse turn into state changes.
    pub fn apply(&mut self, action: Action) {
        self.sync();
        let page = if self.panels.open == Some(Panel::Listeners) {
            self.panel_page()
        } else {
            self.page()
        };
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
                self.move_selection(|nav, len| nav.select(len.saturating_sub(1), len, page));
            }
            Action::ClickRow(y) => self.click(y, page),
            Action::DrillDown => match self.panels.open {
                Some(Panel::Listeners) => self.drill_into_listener(),
                Some(Panel::TimeWait) => {}
                None => self.drill_down(),
            },
            Action::Back => {
                if self.panels.open.take().is_none() {
                    self.drill = None;
                }
            }
            Action::TimeWaitPanel => self.toggle_panel(Panel::TimeWait),
            Action::ListenerPanel => self.toggle_panel(Panel::Listeners),
            Action::SwitchView => {
                self.panels.open = None;
                self.drill = None;
                self.view = match self.view {
                    View::Ports => View::Connections,
                    View::Connections => View::Ports,
                };
            }
            Action::CycleSort | Action::ReverseSort => {
                self.change_sort(action == Action::CycleSort);
            }
            Action::OpenFilter => {
                self.prompt = Some(Prompt {
                    input: LineInput::new(&self.filter_text),
                    error: None,
                    note: None,
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

    /// A bracketed paste into the prompt: inserted as typed, line breaks and other control
    /// characters as spaces, cut at the prompt's limit with a note saying so.
    pub(crate) fn paste(&mut self, text: &str) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let offered = cleaned.chars().count();
        let taken = prompt.input.insert_str(&cleaned);
        prompt.note = (taken < offered).then(|| {
            format!(
                "pasted text cut: the filter is at most {} characters ({taken} of {offered} pasted)",
                LineInput::MAX_CHARS
            )
        });
        self.reparse_prompt();
    }

    /// Edits the prompt's text; the filter follows as long as the text parses.
    fn edit_prompt(&mut self, action: Action) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let input = &mut prompt.input;
        prompt.note = None;
        match action {
            Action::PromptBackspace => input.backspace(),
            Action::PromptDelete => input.delete(),
            Action::PromptLeft => input.left(),
            Action::PromptRight => input.right(),
            Action::PromptHome => input.home(),
            Action::PromptEnd => input.end(),
            Action::PromptClear => input.clear(),
            Action::PromptInsert(c) => {
                if !input.insert(c) {
                    prompt.note = Some(format!(
                        "the filter is at most {} characters",
                        LineInput::MAX_CHARS
                    ));
                }
            }
            _ => return,
        }
        self.reparse_prompt();
    }

    /// The filter follows the prompt's text as long as it parses.
    fn reparse_prompt(&mut self) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let text = prompt.input.text().to_string();
        let parsed = (self.parse_filter)(&text);
        prompt.error = parsed.as_ref().err().cloned();
        if let Ok(filter) = parsed
            && text != self.filter_text
        {
            self.set_filter(text, filter);
        }
    }

    fn change_sort(&mut self, cycle: bool) {
        if self.panels.open.is_some() {
            return;
        }
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
        match self.panels.open {
            Some(Panel::Listeners) => return self.click_listener(y),
            Some(Panel::TimeWait) => return,
            None => {}
        }
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

    /// Runs `f` on the visible table's navigation with its row count; the TIME_WAIT panel
    /// has no selection. Page moves in the listener panel go by its own page.
    fn move_selection(&mut self, f: impl FnOnce(&mut Nav, usize)) {
        match self.panels.open {
            Some(Panel::Listeners) => {
                let len = self.listener_rows().len();
                f(&mut self.panels.nav, len);
                return;
            }
            Some(Panel::TimeWait) => return,
            None => {}
        }
        if let Some(drill) = self.drill.as_mut() {
            f(&mut drill.nav, drill.rows.len());
        } else {
            match self.view {
                View::Ports => f(&mut self.ports_nav, self.groups.len()),
                View::Connections => f(&mut self.conns_nav, self.conn_rows.len()),
            }
        }
    }

    pub(super) fn clamp_navs(&mut self) {
        let page = self.page();
        self.ports_nav.clamp(self.groups.len(), page);
        self.conns_nav.clamp(self.conn_rows.len(), page);
        if let Some(d) = self.drill.as_mut() {
            d.nav.clamp(d.rows.len(), page);
        }
    }
}

fn sort_step<C: sort::Column>(sort: &mut Sort<C>, columns: &[C], cycle: bool) {
    if cycle {
        sort.cycle(columns);
    } else {
        sort.reverse = !sort.reverse;
    }
}

/// The wheel scrolls, a left click selects.
pub(super) fn mouse_action(mouse: MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::ScrollUp),
        MouseEventKind::ScrollDown => Some(Action::ScrollDown),
        MouseEventKind::Down(MouseButton::Left) => Some(Action::ClickRow(mouse.row)),
        _ => None,
    }
}
