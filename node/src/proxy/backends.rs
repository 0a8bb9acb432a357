//! Connections to back-ends, with a connect timeout and a circuit breaker
//! per back-end. A back-end fails when the connection is refused or times
//! out, or when it accepts but then misbehaves or stays silent through the
//! greeting or the login (a hung process): the proxies report those. After
//! [`FAILURES_TO_OPEN`] failures in a row the breaker opens and the
//! back-end is not tried, except for one probe every [`PROBE_INTERVAL`]
//! (half-open): the first login after the back-end comes back goes
//! through, and a completed exchange closes the breaker again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::net::{Net, Stream};

pub const FAILURES_TO_OPEN: u32 = 3;
/// While open, one attempt per interval is let through as a probe.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    /// Failures since the last completed exchange.
    failures: u32,
    /// Open: attempts before this instant are refused without trying.
    closed_until: Option<Instant>,
}

/// Connects to back-ends through the network seam.
#[derive(Clone)]
pub struct Backends {
    net: Arc<dyn Net>,
    timeout: Duration,
    health: Arc<Mutex<BTreeMap<String, Health>>>,
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectError {
    #[error("back-end {0} failed repeatedly; only a probe per {PROBE_INTERVAL:?} is let through")]
    BreakerOpen(String),
    #[error("back-end {0}: {1}")]
    Failed(String, String),
}

impl Backends {
    pub fn new(net: Arc<dyn Net>, timeout: Duration) -> Self {
        Self { net, timeout, health: Arc::default() }
    }

    /// Connects to `target` ("host:port") unless its breaker is open and
    /// this is not the probe's turn. A connection is not yet a success:
    /// the caller reports how the exchange on it went.
    pub async fn connect(&self, target: &str) -> Result<Stream, ConnectError> {
        {
            let now = Instant::now();
            let mut health = self.health();
            if let Some(entry) = health.get_mut(target)
                && let Some(until) = entry.closed_until
            {
                if now < until {
                    return Err(ConnectError::BreakerOpen(target.to_string()));
                }
                // This attempt is the probe; others wait until it is over
                // (it reports) or could have timed out.
                entry.closed_until = Some(now + self.timeout.max(PROBE_INTERVAL));
            }
        }
        let result = match tokio::time::timeout(self.timeout, self.net.connect(target)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no connection within {:?}", self.timeout),
        };
        self.report_failure(target);
        Err(ConnectError::Failed(target.to_string(), result))
    }

    /// Reports a back-end that failed after accepting: closed, garbage, or
    /// silent through the greeting or login.
    pub fn report_failure(&self, target: &str) {
        let mut health = self.health();
        let entry = health.entry(target.to_string()).or_default();
        entry.failures += 1;
        if entry.failures >= FAILURES_TO_OPEN {
            if entry.closed_until.is_none() {
                warn!(backend = target, failures = entry.failures, "back-end breaker open");
            }
            entry.closed_until = Some(Instant::now() + PROBE_INTERVAL);
        }
    }

    /// Reports a completed exchange (greeting and an answer to the login or
    /// the transaction): the back-end is alive, its breaker closes.
    pub fn report_success(&self, target: &str) {
        let mut health = self.health();
        if let Some(entry) = health.remove(target)
            && entry.closed_until.is_some()
        {
            info!(backend = target, "back-end breaker closed");
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Health>> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TokioNet;

    /// A loopback address nobody listens on: connections are refused at once.
    fn dead_target() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("127.0.0.1:{port}")
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_backend_opens_the_breaker_and_a_probe_goes_through_a_second_later() {
        let target = dead_target();
        let backends = Backends::new(Arc::new(TokioNet), Duration::from_secs(1));
        for _ in 0..3 {
            assert!(matches!(backends.connect(&target).await, Err(ConnectError::Failed(..))));
        }
        assert!(matches!(backends.connect(&target).await, Err(ConnectError::BreakerOpen(_))));
        // The node comes back: its users wait about a second, not a fixed
        // open period.
        tokio::time::advance(Duration::from_millis(1001)).await;
        let listener = std::net::TcpListener::bind(&target).unwrap();
        assert!(backends.connect(&target).await.is_ok(), "half-open: the probe goes through");
        drop(listener);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_accepts_but_never_answers_opens_the_breaker() {
        // The kernel accepts into the backlog; nothing ever answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let backends = Backends::new(Arc::new(TokioNet), Duration::from_secs(1));
        for _ in 0..3 {
            assert!(backends.connect(&target).await.is_ok());
            backends.report_failure(&target); // the greeting timed out
        }
        assert!(matches!(backends.connect(&target).await, Err(ConnectError::BreakerOpen(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_at_a_time_and_a_completed_exchange_closes_the_breaker() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let backends = Backends::new(Arc::new(TokioNet), Duration::from_secs(5));
        for _ in 0..FAILURES_TO_OPEN {
            backends.report_failure(&target);
        }
        tokio::time::advance(PROBE_INTERVAL).await;
        assert!(backends.connect(&target).await.is_ok(), "the probe");
        assert!(matches!(backends.connect(&target).await, Err(ConnectError::BreakerOpen(_))), "while it runs");
        backends.report_success(&target);
        for _ in 0..5 {
            assert!(backends.connect(&target).await.is_ok(), "closed again");
        }
    }
}
