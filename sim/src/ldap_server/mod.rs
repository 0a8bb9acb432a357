//! The embedded LDAP server: a read-only LDAPv3 directory loaded from LDIF,
//! served over the network seam so the same code is the mini-cluster's
//! zero-setup directory (`tiermail-sim cluster up`, real sockets) and the
//! directory host inside simulations (turmoil sockets), where the
//! simulator can take it down, hang it, slow it or make it fail.
//!
//! seeds: LDAP Introduction (routing and authentication need the
//! directory), LDAP Authentication (userPassword readable only through a
//! privileged bind).
//!
//! Supported: simple bind, unbind, search (base/one/sub, every filter;
//! extensible match without a rule or with Active Directory's in-chain
//! rule 1.2.840.113556.1.4.1941; attribute selection, typesOnly,
//! sizeLimit), compare,
//! WhoAmI. Writes are refused (unwillingToPerform), SASL binds
//! (authMethodNotSupported); controls are ignored.

mod connection;
mod control;
mod directory;
mod filter;
mod ldif;
mod ops;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tiermail_node::net::Listener;
use tiermail_node::shutdown::Shutdown;
use tokio::task::JoinSet;
use tracing::{Instrument, info, warn};

pub use control::{Counters, DirectoryControl, Mode};
pub use directory::{Attribute, Directory, Dn, DnError, Entry};
pub use ldif::{LdifError, LdifProblem, MAX_LDIF_BYTES, MAX_VALUE_BYTES};
pub use ops::WHOAMI_OID;

use control::Counter;

/// The fixture directory (users alice..erin, frank, mallory on node-a..c),
/// documented in its header.
pub const FIXTURE_LDIF: &str = include_str!("../../../fixtures/directory.ldif");
/// The service account the fixture's header documents (not an entry).
pub const FIXTURE_ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const FIXTURE_ADMIN_PASSWORD: &str = "admin-secret";

/// Largest request accepted (1 MiB); a bigger one ends the connection.
pub const DEFAULT_MAX_PDU_SIZE: usize = 1024 * 1024;
/// A connection silent this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections beyond this many are closed as soon as they are accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the server authorises and limits clients.
#[derive(Clone)]
pub struct ServerConfig {
    /// The service account that may read `userPassword`; it need not be an
    /// entry (like slapd's rootdn).
    pub admin_dn: String,
    /// Its password: clear text or any scheme `password::verify` knows. An
    /// empty one disables the account.
    pub admin_password: String,
    /// Whether an anonymous session may search and compare.
    pub allow_anonymous_search: bool,
    /// Default [`DEFAULT_MAX_PDU_SIZE`].
    pub max_pdu_size: usize,
    /// Default [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

impl ServerConfig {
    /// A config with this service account and the defaults for the rest.
    pub fn new(admin_dn: impl Into<String>, admin_password: impl Into<String>) -> Self {
        Self {
            admin_dn: admin_dn.into(),
            admin_password: admin_password.into(),
            allow_anonymous_search: true,
            max_pdu_size: DEFAULT_MAX_PDU_SIZE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The service account of the fixture directory.
    pub fn fixture() -> Self {
        Self::new(FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PASSWORD)
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("admin_dn", &self.admin_dn)
            .field("admin_password", &"********")
            .field("allow_anonymous_search", &self.allow_anonymous_search)
            .field("max_pdu_size", &self.max_pdu_size)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Directory {
    /// The fixture directory (fixtures/directory.ldif, compiled in).
    pub fn fixture() -> Directory {
        Directory::from_ldif(FIXTURE_LDIF).expect("fixtures/directory.ldif is valid (tested)")
    }
}

/// What every connection of one server shares.
struct Shared {
    directory: Arc<Directory>,
    config: ServerConfig,
    /// `config.admin_dn` normalised; None if it is not a valid DN.
    admin_dn: Option<Dn>,
    control: DirectoryControl,
}

/// Serves `directory` on `listener` until `shutdown`, then waits briefly
/// for open connections (they stop at their next request boundary).
pub async fn serve(
    listener: Box<dyn Listener>,
    directory: Arc<Directory>,
    config: ServerConfig,
    control: DirectoryControl,
    shutdown: Shutdown,
) {
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    info!(service = "ldap", listen = %local, entries = directory.len(), "listening");
    let admin_dn = Dn::parse(&config.admin_dn).ok().filter(|dn| !dn.is_root());
    if admin_dn.is_none() {
        warn!(admin_dn = %config.admin_dn, "admin DN is not a valid DN; no session can read userPassword");
    }
    let shared = Arc::new(Shared { directory, config, admin_dn, control: control.clone() });
    let mut sessions = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    control.count(Counter::Connection);
                    while sessions.try_join_next().is_some() {}
                    if control.mode() == Mode::Down || sessions.len() >= shared.config.max_connections {
                        control.count(Counter::Refused);
                        drop(stream);
                        continue;
                    }
                    let span = tracing::info_span!("session", proto = "ldap", %peer);
                    sessions.spawn(connection::run(stream, shared.clone(), shutdown.clone()).instrument(span));
                }
                Err(e) => {
                    warn!(service = "ldap", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        sessions.abort_all();
    }
    info!(service = "ldap", "stopped");
}
