//! Front-end proxies (seeds: "Front-end services setup", "The IMAP and POP3
//! Proxies", "LDAP Authentication"): they read the login, ask the user map
//! where the account lives, log in to that back-end and then relay bytes.
//!
//! Unlike stalwartlabs/proxy, whose router fails open (directory error →
//! default destination), ours fails CLOSED: a directory that cannot answer
//! gives the client a temporary error, never a route it did not earn.

pub mod backends;
pub mod imap;
pub mod pop3;
pub mod router;
pub mod smtp;
pub mod splice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use tracing::{debug, info};

use crate::connection::{Connection, Line, ReadError};
use crate::directory::AuthOutcome;
use crate::net::BoxFuture;
use crate::server::Protocol;

/// Where the user map sends a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The account lives on this back-end host; the port may be missing
    /// (the service's back-end port is used then).
    Mapped { host: String, port: Option<u16> },
    /// The map does not know the user: the service's failover address.
    NotInMap,
    /// The map could not answer now (directory down, timeout).
    Unavailable,
}

/// Proxy-side authentication's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAuth {
    Accepted,
    Rejected,
    /// The directory could not decide: a temporary failure, never a pass.
    Unavailable,
}

impl From<AuthOutcome> for ProxyAuth {
    fn from(outcome: AuthOutcome) -> Self {
        match outcome {
            AuthOutcome::Accepted(_) => ProxyAuth::Accepted,
            AuthOutcome::Rejected => ProxyAuth::Rejected,
            AuthOutcome::Unavailable | AuthOutcome::NotHere => ProxyAuth::Unavailable,
        }
    }
}

/// The user map and authenticator a proxy service uses.
pub trait Router: Send + Sync + 'static {
    fn route<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Route>;
    fn authenticate<'a>(&'a self, login: &'a str, password: &'a str) -> BoxFuture<'a, ProxyAuth>;
}

/// Where authentication happens (seed "LDAP Authentication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthAt {
    /// At the proxy (through the directory), then again at the back-end.
    Proxy,
    /// Only at the back-end.
    Backend,
}

/// One proxy service's settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    pub auth_at: AuthAt,
    /// The back-end port used when the map names only a host.
    pub backend_port: u16,
    /// Where users the map does not know go ("host:port"); none = refuse.
    pub failover: Option<String>,
    /// The wait for a connection and for the back-end's greeting: a healthy
    /// back-end greets at once, so a silent one is hung.
    pub connect_timeout: Duration,
    /// The wait for each later answer (login, RCPT), which may include the
    /// back-end's own directory lookups.
    pub login_timeout: Duration,
    /// This node's own proxy listen addresses: a route to one of them is a
    /// loop and is refused.
    pub own_proxies: Vec<SocketAddr>,
    /// Back-end names the map may use (`node-a`) → their addresses.
    pub hosts: std::collections::BTreeMap<String, String>,
}

/// What every proxy session shares.
pub struct ProxyContext {
    pub settings: ProxySettings,
    pub router: Arc<dyn Router>,
    pub backends: backends::Backends,
    pub limits: crate::config::Limits,
    pub shutdown: crate::shutdown::Shutdown,
}

/// Why a login could not be relayed; each maps to one answer per protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong password or unknown user, decided by the proxy or the back-end.
    AuthFailed,
    /// The directory could not answer.
    DirectoryUnavailable,
    /// The back-end is down, refused, timed out or its breaker is open.
    BackendUnavailable,
    /// The map points back at a proxy port of this node.
    Loop,
    /// Not in the map and no failover address configured.
    NoRoute,
}

impl ProxyContext {
    /// The "host:port" of the back-end for a login.
    pub async fn backend_for(&self, login: &str) -> Result<String, Refusal> {
        let target = match self.router.route(login).await {
            Route::Mapped { host, port } => self.target_of(host, port),
            Route::NotInMap => self.settings.failover.clone().ok_or(Refusal::NoRoute)?,
            Route::Unavailable => return Err(Refusal::DirectoryUnavailable),
        };
        if let Ok(addr) = target.parse::<SocketAddr>()
            && self.settings.own_proxies.contains(&addr)
        {
            tracing::error!(%login, %target, "the user map routes to a proxy port of this node; refusing the loop");
            return Err(Refusal::Loop);
        }
        Ok(target)
    }

    /// "host:port" of a mapped back-end: map names resolved through
    /// `[hosts]`, the service's back-end port when the map gives none.
    pub fn target_of(&self, host: String, port: Option<u16>) -> String {
        let host = self.settings.hosts.get(&host).cloned().unwrap_or(host);
        format!("{host}:{}", port.unwrap_or(self.settings.backend_port))
    }

    /// Everything a login proxy does before speaking the back-end's protocol:
    /// proxy-side authentication if configured, routing, connecting. A
    /// refused password and a user no map knows both come back as
    /// `AuthFailed` after the same delay, so users cannot be enumerated.
    pub async fn connect_for(&self, login: &str, password: &str) -> Result<(Connection, String), Refusal> {
        let routed = match self.check_at_proxy(login, password).await {
            Ok(()) => self.backend_for(login).await,
            Err(refusal) => Err(refusal),
        };
        let target = match routed {
            Ok(target) => target,
            Err(Refusal::AuthFailed | Refusal::NoRoute) => {
                tokio::time::sleep(crate::directory::AUTH_FAILURE_DELAY).await;
                return Err(Refusal::AuthFailed);
            }
            Err(refusal) => return Err(refusal),
        };
        let stream = self.backends.connect(&target).await.map_err(|e| {
            tracing::warn!(error = %e, "back-end unreachable");
            Refusal::BackendUnavailable
        })?;
        Ok((Connection::new(stream, self.settings.login_timeout, self.shutdown.clone()), target))
    }

    /// Reads a back-end's greeting line, within the connect timeout.
    pub async fn greeting(&self, backend: &mut Connection) -> Result<Line, ReadError> {
        match tokio::time::timeout(self.settings.connect_timeout, backend.read_line(64 * 1024)).await {
            Ok(line) => line,
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    /// Proxy-side authentication when configured.
    pub async fn check_at_proxy(&self, login: &str, password: &str) -> Result<(), Refusal> {
        if self.settings.auth_at == AuthAt::Backend {
            return Ok(());
        }
        match self.router.authenticate(login, password).await {
            ProxyAuth::Accepted => Ok(()),
            ProxyAuth::Rejected => Err(Refusal::AuthFailed),
            ProxyAuth::Unavailable => Err(Refusal::DirectoryUnavailable),
        }
    }
}

/// A proxy that serves the dialogue up to login itself, then relays
/// (IMAP, POP3). Implementing it makes the service a [`Protocol`].
pub trait LoginProxy: Send + Sync + 'static {
    const NAME: &'static str;

    fn context(&self) -> &ProxyContext;

    /// Serves the client until it logs in (returns the logged-in back-end
    /// connection and its address) or leaves (`None`).
    fn pre_auth(
        &self,
        conn: &mut Connection,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Option<(Connection, String)>, ReadError>> + Send;
}

impl<P: LoginProxy> Protocol for P {
    const NAME: &'static str = P::NAME;

    fn idle_timeout(&self) -> Duration {
        self.context().limits.idle_timeout()
    }

    async fn session(self: Arc<Self>, mut conn: Connection, peer: SocketAddr) {
        match self.pre_auth(&mut conn, peer).await {
            Ok(Some((backend, target))) => {
                info!(backend = %target, "relaying");
                splice::relay(conn, backend).await;
            }
            Ok(None) => conn.close().await,
            Err(e) => {
                debug!(error = %e, "session ended");
                conn.close().await;
            }
        }
    }
}
