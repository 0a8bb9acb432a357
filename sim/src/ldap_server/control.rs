//! The simulator's handle on a running directory server: switch it into a
//! fault mode (down, hung, slow, failing) and back, and read how many
//! operations it served, for tests and "sometimes" assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How the server behaves; changes apply at once, to new and open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Serve normally.
    #[default]
    Normal,
    /// Close new connections as soon as they are accepted and drop open ones.
    Down,
    /// Accept and read requests but never answer them.
    Hang,
    /// Answer every request only after this delay (simulated time).
    Slow(Duration),
    /// Answer every request with `unavailable` (52), a temporary error.
    Error,
}

/// A cheap, cloneable handle shared by the server and whoever injects faults.
/// Keep it outside a turmoil host's closure so it survives a bounce.
#[derive(Debug, Clone)]
pub struct DirectoryControl {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mode: watch::Sender<Mode>,
    counters: Cells,
}

/// What the server has done since its control handle was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted (including ones closed at once).
    pub connections: u64,
    /// Connections closed at once: mode Down or the connection cap.
    pub refused: u64,
    /// Successful binds with a DN and password (anonymous binds not counted).
    pub binds_ok: u64,
    /// Failed binds (answered invalidCredentials).
    pub binds_failed: u64,
    /// Searches answered (whatever the result).
    pub searches: u64,
    /// Compares answered.
    pub compares: u64,
    /// Requests answered with an injected error (mode Error).
    pub faulted: u64,
}

#[derive(Debug, Default)]
struct Cells {
    connections: AtomicU64,
    refused: AtomicU64,
    binds_ok: AtomicU64,
    binds_failed: AtomicU64,
    searches: AtomicU64,
    compares: AtomicU64,
    faulted: AtomicU64,
}

/// The counters the server bumps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Counter {
    Connection,
    Refused,
    BindOk,
    BindFailed,
    Search,
    Compare,
    Faulted,
}

impl Default for DirectoryControl {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectoryControl {
    pub fn new() -> Self {
        let (mode, _) = watch::channel(Mode::Normal);
        Self { inner: Arc::new(Inner { mode, counters: Cells::default() }) }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.inner.mode.borrow()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let c = &self.inner.counters;
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        Counters {
            connections: get(&c.connections),
            refused: get(&c.refused),
            binds_ok: get(&c.binds_ok),
            binds_failed: get(&c.binds_failed),
            searches: get(&c.searches),
            compares: get(&c.compares),
            faulted: get(&c.faulted),
        }
    }

    pub(super) fn count(&self, counter: Counter) {
        let c = &self.inner.counters;
        let cell = match counter {
            Counter::Connection => &c.connections,
            Counter::Refused => &c.refused,
            Counter::BindOk => &c.binds_ok,
            Counter::BindFailed => &c.binds_failed,
            Counter::Search => &c.searches,
            Counter::Compare => &c.compares,
            Counter::Faulted => &c.faulted,
        };
        cell.fetch_add(1, Ordering::Relaxed);
    }

    /// Follows mode changes (for sessions that must drop when it goes Down).
    pub(super) fn subscribe(&self) -> watch::Receiver<Mode> {
        self.inner.mode.subscribe()
    }
}
