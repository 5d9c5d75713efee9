//! The derived tables: port groups, the connections list, a drill-down's rows, each
//! recomputed only when stale and only while its view is on screen.

use std::net::SocketAddr;

use crate::model::{Proto, Socket};
use crate::tui::app::{App, View};
use crate::tui::sort;

/// A socket's identity across snapshots (state left out: it changes).
pub type SockKey = (Proto, SocketAddr, SocketAddr);

pub fn sock_key(s: &Socket) -> SockKey {
    (s.proto, s.local, s.remote)
}

/// The selected row of each table, by identity, so a new snapshot or sort keeps it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anchors {
    port: Option<(Proto, u16)>,
    conn: Option<SockKey>,
    drill: Option<SockKey>,
}

impl App {
    /// Recomputes the stale tables the screen needs now (none under a panel: they wait,
    /// stale, until it closes).
    pub(super) fn refresh_tables(&mut self) {
        if self.panels.open.is_some() {
            return;
        }
        if self.drill.is_some() && self.stale.drill {
            self.refresh_drill();
            self.stale.drill = false;
        }
        if self.drill.is_none() {
            match self.view {
                View::Ports if self.stale.groups => {
                    self.refresh_groups();
                    self.stale.groups = false;
                }
                View::Connections if self.stale.conns => {
                    self.refresh_conns();
                    self.stale.conns = false;
                }
                _ => {}
            }
        }
    }

    fn refresh_groups(&mut self) {
        self.grouper
            .group_into(&self.snapshot, &self.filter, &mut self.groups);
        sort::sort_groups(&mut self.groups, self.ports_sort, &self.snapshot);
        if let Some(key) = self.anchors.port
            && let Some(i) = self.groups.iter().position(|g| (g.proto, g.port) == key)
        {
            self.ports_nav.selected = i;
        }
    }

    /// Filters into the reused `conn_rows` (no reallocation once it has grown), then sorts.
    fn refresh_conns(&mut self) {
        let (snapshot, filter) = (&self.snapshot, &self.filter);
        self.conn_rows.clear();
        self.conn_rows.extend(
            (0u32..)
                .zip(&snapshot.sockets)
                .filter(|(_, s)| filter.is_empty() || filter.matches(s, snapshot))
                .map(|(i, _)| i),
        );
        sort::sort_sockets(
            &mut self.conn_rows,
            self.conns_sort,
            sort::default_socket_key,
            snapshot,
            self.tick.host.connections(),
            &self.listening,
        );
        if let Some(key) = self.anchors.conn
            && let Some(i) = self.find_row(&self.conn_rows, key)
        {
            self.conns_nav.selected = i;
        }
    }

    fn refresh_drill(&mut self) {
        let Some(mut drill) = self.drill.take() else {
            return;
        };
        let (snapshot, filter) = (&self.snapshot, &self.filter);
        drill.rows.clear();
        drill.rows.extend(
            (0u32..)
                .zip(&snapshot.sockets)
                .filter(|(_, s)| {
                    s.proto == drill.proto
                        && s.local.port() == drill.port
                        && (filter.is_empty() || filter.matches(s, snapshot))
                })
                .map(|(i, _)| i),
        );
        sort::sort_sockets(
            &mut drill.rows,
            drill.sort,
            sort::drill_socket_key,
            snapshot,
            self.tick.host.connections(),
            &self.listening,
        );
        let mut summary = Vec::with_capacity(1);
        let sockets = drill.rows.iter().map(|&i| &snapshot.sockets[i as usize]);
        self.grouper.group_sockets(snapshot, sockets, &mut summary);
        drill.summary = summary.pop();
        if let Some(key) = self.anchors.drill
            && let Some(i) = self.find_row(&drill.rows, key)
        {
            drill.nav.selected = i;
        }
        self.drill = Some(drill);
    }

    fn find_row(&self, rows: &[u32], key: SockKey) -> Option<usize> {
        rows.iter().position(|&i| {
            self.snapshot
                .sockets
                .get(i as usize)
                .is_some_and(|s| sock_key(s) == key)
        })
    }

    fn socket_at(&self, rows: &[u32], row: usize) -> Option<SockKey> {
        let i = *rows.get(row)?;
        self.snapshot.sockets.get(i as usize).map(sock_key)
    }

    /// Records the selected row of each fresh table (stale ones may point into an old
    /// snapshot, so they keep their anchor).
    pub(super) fn remember_selection(&mut self) {
        if !self.stale.groups {
            self.anchors.port = self
                .groups
                .get(self.ports_nav.selected)
                .map(|g| (g.proto, g.port));
        }
        if !self.stale.conns {
            self.anchors.conn = self.socket_at(&self.conn_rows, self.conns_nav.selected);
        }
        match &self.drill {
            Some(d) if !self.stale.drill => {
                self.anchors.drill = self.socket_at(&d.rows, d.nav.selected);
            }
            Some(_) => {}
            None => self.anchors.drill = None,
        }
    }
}
