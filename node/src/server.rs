//! The accept loop every service shares: accept, give each connection its
//! own task and tracing span, stop accepting on shutdown, and let the node
//! wait for every session to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{Instrument, info, warn};

use crate::connection::Connection;
use crate::net::Listener;
use crate::shutdown::Shutdown;

/// A line protocol served on a listener.
pub trait Protocol: Send + Sync + 'static {
    /// Short name for logs ("smtp", "pop3").
    const NAME: &'static str;

    /// Serves one client until it quits, times out or the node shuts down.
    fn session(self: Arc<Self>, conn: Connection, peer: SocketAddr) -> impl Future<Output = ()> + Send;

    /// The idle timeout for this protocol's sessions.
    fn idle_timeout(&self) -> Duration;
}

/// Accepts connections until shutdown, then waits for in-flight sessions
/// (at most `grace`; stragglers are dropped).
pub async fn serve<P: Protocol>(listener: Box<dyn Listener>, protocol: Arc<P>, shutdown: Shutdown, grace: Duration) {
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    info!(service = P::NAME, listen = %local, "listening");
    let mut sessions = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = Connection::new(stream, protocol.idle_timeout(), shutdown.clone());
                    let span = tracing::info_span!("session", proto = P::NAME, %peer, user = tracing::field::Empty);
                    sessions.spawn(protocol.clone().session(conn, peer).instrument(span));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off, keep serving.
                    warn!(service = P::NAME, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    info!(service = P::NAME, sessions = sessions.len(), "stopped accepting; waiting for sessions");
    let drained = tokio::time::timeout(grace, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(service = P::NAME, sessions = sessions.len(), "grace period over; dropping sessions");
        sessions.abort_all();
    }
}
