//! The TIME_WAIT (`w`) and listener (`L`) panels: which one is open, and the listener
//! panel's selection. Their reports come ready-made with each engine tick (filter-scoped).

use crate::analysis::listeners::{ListenerKey, ListenerRow};
use crate::analysis::timewait::TimeWaitReport;
use crate::model::Proto;
use crate::tui::app::{App, Drill};
use crate::tui::nav::Nav;
use crate::tui::sort::Sort;

/// A panel drawn over the table area; the header and footer stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Who closed first, where TIME_WAIT points, ephemeral ports, kernel settings.
    TimeWait,
    /// One row per listening socket: accept queue, states, churn, peers.
    Listeners,
}

/// The open panel and the listener panel's selection.
#[derive(Debug, Default)]
pub struct Panels {
    pub open: Option<Panel>,
    pub nav: Nav,
    /// The selected listener, kept across ticks.
    anchor: Option<ListenerKey>,
    /// A tick arrived since the selection was placed.
    pub(super) stale: bool,
}

impl App {
    /// Opens `panel`, or closes it when it is already open.
    pub(super) fn toggle_panel(&mut self, panel: Panel) {
        if self.panels.open == Some(panel) {
            self.panels.open = None;
        } else {
            self.panels.open = Some(panel);
            self.panels.stale = true;
        }
    }

    /// The TIME_WAIT report of the tick on screen; `None` before the first sample.
    pub fn timewait_report(&self) -> Option<&TimeWaitReport> {
        self.has_sample.then_some(&self.tick.scope.time_wait)
    }

    /// The listener rows of the tick on screen.
    pub fn listener_rows(&self) -> &[ListenerRow] {
        &self.tick.scope.listeners
    }

    /// After a new tick, puts the listener selection back on its listener.
    pub(super) fn refresh_panel(&mut self) {
        if self.panels.open != Some(Panel::Listeners) || !self.panels.stale {
            return;
        }
        self.panels.stale = false;
        if let Some(key) = self.panels.anchor
            && let Some(i) = self
                .listener_rows()
                .iter()
                .position(|l| l.listener.key() == key)
        {
            self.panels.nav.selected = i;
        }
    }

    /// Keeps the listener selection in range and remembers it by identity.
    pub(super) fn clamp_panel(&mut self) {
        if self.panels.open != Some(Panel::Listeners) || self.panels.stale {
            return;
        }
        let page = self.panel_page();
        let len = self.listener_rows().len();
        self.panels.nav.clamp(len, page);
        self.panels.anchor = self
            .listener_rows()
            .get(self.panels.nav.selected)
            .map(|l| l.listener.key());
    }

    /// Rows of the listener table on screen.
    pub(super) fn panel_page(&self) -> usize {
        self.regions().map_or(1, |r| {
            usize::from(crate::tui::listeners::table_rows(r.body()).height).max(1)
        })
    }

    /// Enter in the listener panel: the connections of the selected listener's port.
    pub(super) fn drill_into_listener(&mut self) {
        let Some(line) = self.listener_rows().get(self.panels.nav.selected) else {
            return;
        };
        self.drill = Some(Drill {
            proto: Proto::Tcp,
            port: line.listener.local.port(),
            nav: Nav::default(),
            sort: Sort::default(),
            rows: Vec::new(),
            summary: None,
        });
        self.stale.drill = true;
        self.panels.open = None;
    }

    /// Selects the listener shown at screen line `y`, if any.
    pub(super) fn click_listener(&mut self, y: u16) {
        let Some(rows) = self
            .regions()
            .map(|r| crate::tui::listeners::table_rows(r.body()))
        else {
            return;
        };
        if (rows.y..rows.bottom()).contains(&y) {
            let i = self.panels.nav.offset + usize::from(y - rows.y);
            let (len, page) = (self.listener_rows().len(), self.panel_page());
            if i < len {
                self.panels.nav.select(i, len, page);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{
        Event as TermEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
    };

    use super::*;
    use crate::analysis::alerts::{Alert, Severity};
    use crate::model::TcpState;
    use crate::tui::app::View;
    use crate::tui::event::Event;
    use crate::tui::synthetic::busy;
    use crate::tui::testing::{Rig, app, at, busy_app, empty_app, press};
    use portside_core::engine::Sample;

    fn selected_port(app: &App) -> u16 {
        app.listener_rows()[app.panels.nav.selected]
            .listener
            .local
            .port()
    }

    fn feed(app: &mut Rig, tick: u32) {
        app.feed(busy(tick), at(u64::from(tick)));
        app.sync();
    }

    #[test]
    fn keys_open_switch_and_close_panels() {
        let mut app = busy_app(3, 100, 30);
        press(&mut app, "w");
        assert_eq!(app.panels.open, Some(Panel::TimeWait));
        assert!(app.timewait_report().is_some(), "built on opening");
        press(&mut app, "w");
        assert_eq!(app.panels.open, None, "w again closes");
        press(&mut app, "w");
        press(&mut app, "L");
        assert_eq!(app.panels.open, Some(Panel::Listeners), "L switches");
        press(&mut app, "esc");
        assert_eq!(app.panels.open, None);
        // Over a drill-down, esc leaves the panel first, then the drill-down.
        press(&mut app, "enter");
        assert!(app.drill.is_some());
        press(&mut app, "L");
        press(&mut app, "esc");
        assert!(app.panels.open.is_none() && app.drill.is_some());
        press(&mut app, "esc");
        assert!(app.drill.is_none());
        // Tab leaves the panel for the other view; sort keys do nothing in a panel.
        press(&mut app, "w");
        let sort = app.ports_sort;
        press(&mut app, "s");
        press(&mut app, "r");
        assert_eq!(app.ports_sort, sort);
        press(&mut app, "tab");
        assert_eq!((app.panels.open, app.view), (None, View::Connections));
    }

    #[test]
    fn panels_show_the_reports_of_the_tick_on_screen() {
        let mut app = empty_app(100, 30, "");
        assert!(
            app.timewait_report().is_none(),
            "none before the first sample"
        );
        for tick in 0..=2 {
            app.feed(busy(tick), at(u64::from(tick)));
            app.sync();
        }
        press(&mut app, "w");
        let total = |app: &App| app.timewait_report().map(|r| r.total);
        assert_eq!(
            total(&app),
            Some(app.insight().count(Proto::Tcp, TcpState::TimeWait))
        );
        feed(&mut app, 3);
        assert_eq!(total(&app), Some(app.insight().time_wait().total()));
        assert_eq!(app.tick.sample, 4, "the newest tick");
        assert_eq!(app.listener_rows().len(), 7);
    }

    #[test]
    fn listener_selection_moves_and_follows_its_listener() {
        let mut app = busy_app(3, 100, 30);
        let ports_nav = app.ports_nav;
        press(&mut app, "L");
        let ports: Vec<u16> = app
            .listener_rows()
            .iter()
            .map(|l| l.listener.local.port())
            .collect();
        assert_eq!(ports, [22, 22, 80, 443, 443, 5432, 8080]);
        press(&mut app, "j");
        press(&mut app, "j");
        press(&mut app, "j");
        assert_eq!(selected_port(&app), 443);
        press(&mut app, "G");
        assert_eq!(selected_port(&app), 8080);
        press(&mut app, "k");
        assert_eq!(selected_port(&app), 5432);
        assert_eq!(app.ports_nav, ports_nav, "the ports table did not move");
        // sshd's listeners go away: the selection stays on 5432.
        let mut sample = busy(4);
        sample.snapshot.sockets.retain(|s| s.local.port() != 22);
        app.feed(sample, at(4));
        app.sync();
        assert_eq!(app.listener_rows().len(), 5);
        assert_eq!(selected_port(&app), 5432);
        // A click on the first row selects it.
        let rows = crate::tui::listeners::table_rows(app.regions().unwrap().body());
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 3,
            row: rows.y,
            modifiers: KeyModifiers::NONE,
        };
        app.update(Event::Input(TermEvent::Mouse(click)), at(4));
        assert_eq!(selected_port(&app), 80);
    }

    #[test]
    fn enter_opens_the_selected_listeners_connections() {
        let mut app = busy_app(3, 100, 30);
        press(&mut app, "L");
        press(&mut app, "G");
        press(&mut app, "enter");
        assert_eq!(app.panels.open, None);
        let drill = app.drill.as_ref().unwrap();
        assert_eq!((drill.proto, drill.port), (Proto::Tcp, 8080));
        // 1 listener + 18 CLOSE_WAIT after 3 ticks of 6.
        assert_eq!(drill.rows.len(), 19);
        // The TIME_WAIT panel has no selection: enter and arrows do nothing there.
        press(&mut app, "esc");
        press(&mut app, "w");
        press(&mut app, "j");
        press(&mut app, "enter");
        assert_eq!(app.panels.open, Some(Panel::TimeWait));
        assert!(app.drill.is_none());
    }

    #[test]
    fn samples_feed_history_rates_counters_and_alerts() {
        let mut app = busy_app(20, 100, 30);
        assert_eq!(app.insight().history().host().len(), 21);
        let rate = app.insight().listen_rate().unwrap();
        assert!((rate.overflows_per_sec - 39.0).abs() < 1e-9, "{rate:?}");
        assert_eq!(
            app.settings().copied(),
            Some(crate::tui::synthetic::busy_settings())
        );
        // Defaults: close_wait>100 on 8080, accept_queue>=90% on 8080, ephemeral>70% (81%).
        let kinds: Vec<String> = app.fired().iter().map(|f| f.alert.to_string()).collect();
        assert_eq!(
            kinds,
            [":* close_wait>100", "accept_queue>=90%", "ephemeral>70%"]
        );
        assert!(app.fired().iter().all(|f| f.severity == Severity::Warning));
        // Two ticks later the queue is full (100%): critical, and first.
        feed(&mut app, 21);
        feed(&mut app, 22);
        assert_eq!(app.fired()[0].severity, Severity::Critical);
        assert_eq!(app.fired()[0].alert.to_string(), "accept_queue>=90%");
    }

    #[test]
    fn user_rules_replace_what_fires() {
        let mut app = empty_app(100, 30, "");
        app.set_alerts(vec![Alert::parse(":5432 close_wait>1000").unwrap()]);
        app.feed(busy(20), at(0));
        app.sync();
        assert!(app.fired().is_empty());
        assert!(app.regions().unwrap().header.height == 2, "no alert line");
        app.set_alerts(vec![Alert::parse("time_wait>10").unwrap()]);
        app.feed(busy(21), at(1));
        app.sync();
        assert_eq!(app.fired().len(), 1);
        assert_eq!(app.regions().unwrap().header.height, 3, "one alert line");
    }

    #[test]
    fn paused_the_picture_freezes_while_the_engine_goes_on() {
        let mut app = busy_app(5, 100, 30);
        press(&mut app, "p");
        for tick in 6..9 {
            app.feed(busy(tick), at(u64::from(tick)));
            app.sync();
        }
        assert_eq!(
            app.insight().history().host().len(),
            6,
            "the tick on screen"
        );
        press(&mut app, "p");
        assert_eq!(
            app.insight().history().host().len(),
            9,
            "the newest held tick, with the history recorded meanwhile"
        );
        let newest = app.insight().taken_at().unwrap();
        assert_eq!(newest, busy(8).snapshot.taken_at);
    }

    #[test]
    fn a_sample_without_counters_keeps_the_last_settings() {
        let mut app = app(10);
        app.feed(busy(1), at(1));
        app.sync();
        app.feed(Sample::of(busy(2).snapshot), at(2));
        app.sync();
        assert_eq!(
            app.settings().copied(),
            Some(crate::tui::synthetic::busy_settings())
        );
    }
}

#[cfg(test)]
mod scope_tests {
    use crate::analysis::alerts::Alert;
    use crate::analysis::filter::Filter;
    use crate::model::TcpState;
    use crate::tui::synthetic::busy;
    use crate::tui::testing::{at, busy_app, press, type_text};

    #[test]
    fn a_new_filter_re_scopes_panels_and_alerts_at_once() {
        let mut app = busy_app(3, 120, 30);
        app.set_alerts(vec![
            Alert::parse("established>0").unwrap(),
            Alert::parse("time_wait>0").unwrap(),
        ]);
        app.feed(busy(4), at(4));
        app.sync();
        let host_tw = app.state_totals[TcpState::TimeWait.index()];
        assert_eq!(app.fired().len(), 2);
        press(&mut app, "/");
        type_text(&mut app, "state:tw");
        press(&mut app, "enter");
        assert_eq!(app.tick.sample, 5, "no new sample");
        assert_eq!(app.tick.scope.filter_text, "state:tw");
        let sample = busy(4).snapshot;
        let filter = Filter::parse("state:tw").unwrap();
        let expected = sample
            .sockets
            .iter()
            .filter(|s| filter.matches(s, &sample))
            .count();
        press(&mut app, "w");
        assert_eq!(app.timewait_report().unwrap().total as usize, expected);
        let fired: Vec<String> = app.fired().iter().map(|f| f.alert.to_string()).collect();
        assert_eq!(fired, ["time_wait>0"], "no ESTABLISHED in scope");
        assert_eq!(
            app.state_totals[TcpState::TimeWait.index()],
            host_tw,
            "the header stays host-wide"
        );
        assert!(app.state_totals[TcpState::Established.index()] > 0);
    }
}
