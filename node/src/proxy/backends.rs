//! Connections to back-ends, with a connect timeout and a simple circuit
//! breaker per back-end: after [`FAILURES_TO_OPEN`] consecutive failures
//! the back-end is not tried for [`OPEN_FOR`]; then one attempt is let
//! through, and a success closes the breaker again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::net::{Net, Stream};

pub const FAILURES_TO_OPEN: u32 = 3;
pub const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    failures: u32,
    open_until: Option<Instant>,
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
    #[error("back-end {0} failed repeatedly; not retried until its breaker closes")]
    BreakerOpen(String),
    #[error("back-end {0}: {1}")]
    Failed(String, String),
}

impl Backends {
    pub fn new(net: Arc<dyn Net>, timeout: Duration) -> Self {
        Self { net, timeout, health: Arc::default() }
    }

    /// Connects to `target` ("host:port") unless its breaker is open.
    pub async fn connect(&self, target: &str) -> Result<Stream, ConnectError> {
        let now = Instant::now();
        if let Some(until) = self.health().get(target).and_then(|h| h.open_until)
            && now < until
        {
            return Err(ConnectError::BreakerOpen(target.to_string()));
        }
        let result = match tokio::time::timeout(self.timeout, self.net.connect(target)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {:?}", self.timeout)),
        };
        let mut health = self.health();
        let entry = health.entry(target.to_string()).or_default();
        match result {
            Ok(stream) => {
                *entry = Health::default();
                Ok(stream)
            }
            Err(e) => {
                entry.failures += 1;
                if entry.failures >= FAILURES_TO_OPEN {
                    warn!(backend = target, failures = entry.failures, "back-end breaker open");
                    entry.open_until = Some(Instant::now() + OPEN_FOR);
                }
                Err(ConnectError::Failed(target.to_string(), e))
            }
        }
    }

    /// Reports a back-end that accepted but misbehaved (closed, garbage).
    pub fn report_failure(&self, target: &str) {
        let mut health = self.health();
        let entry = health.entry(target.to_string()).or_default();
        entry.failures += 1;
        if entry.failures >= FAILURES_TO_OPEN {
            entry.open_until = Some(Instant::now() + OPEN_FOR);
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

    #[tokio::test(start_paused = true)]
    async fn a_dead_backend_opens_the_breaker_then_gets_one_retry() {
        // A port nobody listens on: connections are refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let target = format!("127.0.0.1:{port}");
        let backends = Backends::new(Arc::new(TokioNet), Duration::from_secs(1));
        for _ in 0..FAILURES_TO_OPEN {
            assert!(matches!(backends.connect(&target).await, Err(ConnectError::Failed(..))));
        }
        assert!(matches!(backends.connect(&target).await, Err(ConnectError::BreakerOpen(_))));
        tokio::time::advance(OPEN_FOR + Duration::from_millis(1)).await;
        let listener = std::net::TcpListener::bind(&target).unwrap();
        assert!(backends.connect(&target).await.is_ok(), "half-open: one attempt goes through");
        drop(listener);
    }
}
