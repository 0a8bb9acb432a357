//! The event log of a simulation: every tracing event from every host,
//! stamped with simulated time, captured as text. Two runs with the same
//! seed must produce the same log; its hash is the run's trace hash.

use std::cell::RefCell;
use std::io;
use std::sync::Once;

use sha2::{Digest, Sha256};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

thread_local! {
    /// The log of the run in progress on this thread, if any.
    static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Captures the tracing output of a closure (a whole simulation run; turmoil
/// runs every host on the calling thread).
///
/// The subscriber is global and installed once: a scoped (thread-local)
/// subscriber would race with other threads over tracing's per-callsite
/// interest cache, and an event first seen on a thread without a subscriber
/// could then go missing from a run, breaking determinism. Events from
/// threads that are not capturing are dropped.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{Layer, filter};
        // turmoil's own events are left out: it logs the sockets a crashed
        // host unbinds in the order tokio drops its tasks, which follows
        // process-global task ids, so a second run in one process would
        // log them in another order.
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(|| ThreadCapture)
            .with_timer(SimTime)
            .with_ansi(false)
            .with_filter(filter::filter_fn(|meta| {
                meta.target() != "turmoil" && *meta.level() <= tracing::Level::DEBUG
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("tiermail-sim: a global tracing subscriber already exists; event logs will be empty");
        }
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = f();
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (result, String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs `f` without capturing its events (for tearing a simulation down:
/// turmoil logs each socket it unbinds while dropping hosts, in hash-map
/// order, which differs from run to run).
pub fn uncaptured<T>(f: impl FnOnce() -> T) -> T {
    let log = CAPTURE.with(|c| c.borrow_mut().take());
    let result = f();
    CAPTURE.with(|c| *c.borrow_mut() = log);
    result
}

/// A short stable hash of a log, for one-line reports.
pub fn hash(log: &str) -> String {
    let digest = Sha256::digest(log.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes into this thread's capture buffer, if one is active.
struct ThreadCapture;

impl io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(log) = c.borrow_mut().as_mut() {
                log.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Simulated time since the start of the run, instead of the wall clock.
struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.6}s", t.as_secs_f64()),
            None => write!(w, "{:>11}", "-"),
        }
    }
}
