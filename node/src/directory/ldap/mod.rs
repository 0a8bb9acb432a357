//! The LDAP connector (seed "LDAP connector configuration"): finds user
//! entries and checks passwords against one directory, OpenLDAP or Active
//! Directory, across an ordered list of servers.
//!
//! Everything here sits above [`ops::LdapOps`], so the same code runs with
//! ldap3 in a real process and over the simulated network. Failures fail
//! closed: a directory that cannot answer gives `Unavailable` (a temporary
//! "try again"), never an accepted login and never "no such user".
//!
//! seeds: LDAP Authentication (LDAP Password reads userPassword through a
//! privileged bind and compares locally; LDAP Bind binds as the user; a
//! user without the password attribute can never log in).

pub mod dn;
pub mod filter;
pub mod groups;
pub mod ldap3_ops;
pub mod ops;
mod pool;
pub mod seam_ops;
pub mod tls;

use std::fmt;
use std::sync::Arc;

use tracing::{debug, warn};

use crate::directory::password;
use crate::directory::settings::{DirectorySettings, ServerType};
pub use ops::{BindResult, Entry, LdapConn, LdapError, LdapOps, Scope, Search};
use pool::{Answer, Op, Pool, Servers};
pub use tls::TlsSettings;

/// Why the directory could not answer: unreachable, timed out, or it
/// answered with an error. Temporary by nature; never a pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory {directory} unavailable: {reason}")]
pub struct Unavailable {
    pub directory: String,
    pub reason: String,
}

/// The answer to "who is this user?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one entry matched (userPassword never included).
    Found(Entry),
    /// No entry matched, or more than one did (an ambiguous login is nobody).
    NotFound,
    Unavailable(Unavailable),
}

/// The answer to a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The password is right; the user's entry (without userPassword).
    Accepted(Entry),
    /// Wrong password, unknown or ambiguous user, no usable password, or a
    /// disabled account: a permanent "authentication failed".
    Rejected,
    /// The directory could not decide: a temporary failure.
    Unavailable(Unavailable),
}

/// How passwords are checked (seed "Mapping Setup": LDAP Password, LDAP Bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Read userPassword with the service account, verify it here.
    Password,
    /// Find the entry with the service account, then bind as its DN on a
    /// separate connection (search-then-bind).
    Bind,
}

/// An LDAP connector. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    settings: DirectorySettings,
    /// Connections bound as the service account: every search.
    service: Pool,
    /// Connections used only to bind as users, never to search.
    binder: Pool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

/// Attributes that say an account may not log in, requested with every
/// authentication search: AD's userAccountControl (bit 2 = disabled) and
/// OpenLDAP ppolicy's pwdAccountLockedTime. Checking them matters in LDAP
/// Password mode, where the server's own checks are bypassed.
const ACCOUNT_STATE_ATTRS: [&str; 2] = ["userAccountControl", "pwdAccountLockedTime"];
const USER_PASSWORD: &str = "userPassword";

impl Connector {
    pub fn new(settings: DirectorySettings, ops: Arc<dyn LdapOps>) -> Self {
        let servers =
            Arc::new(Servers::new(&settings.name, &settings.urls, settings.tls.clone(), settings.retry_dead_after));
        let service =
            Pool::new(ops.clone(), servers.clone(), settings.bind.clone(), settings.timeout, settings.pool_size);
        let binder = Pool::new(ops, servers, None, settings.timeout, settings.pool_size);
        Self { inner: Arc::new(Inner { settings, service, binder }) }
    }

    pub fn settings(&self) -> &DirectorySettings {
        &self.inner.settings
    }

    pub fn server_type(&self) -> ServerType {
        self.inner.settings.server_type
    }

    /// Runs a search with the service account (failover, timeout, pool).
    pub async fn search(&self, search: &Search<'_>) -> Result<Vec<Entry>, Unavailable> {
        match self.inner.service.run(Op::Search(search)).await {
            Ok(Answer::Entries(entries)) => Ok(entries),
            Ok(Answer::Bind(_)) => Err(self.unavailable("unexpected answer")),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// Finds the one entry `filter` matches under `base` (subtree).
    pub async fn find_one(&self, base: &str, filter: &str, attrs: &[&str]) -> Lookup {
        let search = Search { base, scope: Scope::Subtree, filter, attrs, size_limit: 2 };
        match self.search(&search).await {
            Err(e) => Lookup::Unavailable(e),
            Ok(entries) => match <[Entry; 1]>::try_from(entries) {
                Ok([mut entry]) => {
                    entry.attrs.remove(&USER_PASSWORD.to_ascii_lowercase());
                    Lookup::Found(entry)
                }
                Err(entries) if entries.is_empty() => Lookup::NotFound,
                Err(_) => {
                    warn!(directory = %self.inner.settings.name, %base, %filter, "more than one entry matches; treated as none");
                    Lookup::NotFound
                }
            },
        }
    }

    /// Checks `password` for the one entry `filter` matches under `base`;
    /// `attrs` are returned with an accepted entry.
    pub async fn authenticate(
        &self,
        mode: AuthMode,
        base: &str,
        filter: &str,
        attrs: &[&str],
        password: &str,
    ) -> Authentication {
        if password.is_empty() {
            // An empty password is an unauthenticated bind (RFC 4513
            // 5.1.2): servers answer success. Never let it near a bind.
            return Authentication::Rejected;
        }
        let mut wanted: Vec<&str> = attrs.to_vec();
        wanted.extend(ACCOUNT_STATE_ATTRS);
        if mode == AuthMode::Password {
            wanted.push(USER_PASSWORD);
        }
        let search = Search { base, scope: Scope::Subtree, filter, attrs: &wanted, size_limit: 2 };
        let mut entry = match self.search(&search).await.map(<[Entry; 1]>::try_from) {
            Err(e) => return Authentication::Unavailable(e),
            Ok(Ok([entry])) => entry,
            Ok(Err(_)) => return Authentication::Rejected,
        };
        if is_disabled(&entry) {
            return Authentication::Rejected;
        }
        let stored = entry.attrs.remove(&USER_PASSWORD.to_ascii_lowercase()).unwrap_or_default();
        let accepted = match mode {
            AuthMode::Password => Ok(verify_off_the_runtime(stored, password).await),
            AuthMode::Bind => self.bind_as(&entry.dn, password).await,
        };
        match accepted {
            Ok(true) => Authentication::Accepted(entry),
            Ok(false) => Authentication::Rejected,
            Err(e) => Authentication::Unavailable(e),
        }
    }

    /// Binds as `dn` on a connection that is never used for searches.
    async fn bind_as(&self, dn: &str, password: &str) -> Result<bool, Unavailable> {
        match self.inner.binder.run(Op::Bind { dn, password }).await {
            Ok(Answer::Bind(BindResult::Ok)) => Ok(true),
            Ok(Answer::Bind(BindResult::InvalidCredentials)) => Ok(false),
            Ok(Answer::Entries(_)) => Err(self.unavailable("unexpected answer")),
            // The server refused these credentials for a reason of its own
            // (inappropriateAuthentication, insufficientAccessRights,
            // unwillingToPerform: e.g. a locked or expired account).
            Err(LdapError::Code { code: 48 | 50 | 53, .. }) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    fn unavailable(&self, reason: impl fmt::Display) -> Unavailable {
        let unavailable = Unavailable { directory: self.inner.settings.name.clone(), reason: reason.to_string() };
        // The pool logs servers going down and coming back; per request, debug.
        debug!(directory = %unavailable.directory, reason = %unavailable.reason, "directory unavailable");
        unavailable
    }
}

/// [`verify_any`] where it does not stall other sessions: a hash can take
/// tens of milliseconds (Argon2, SHA-512 crypt), so on a multi-threaded
/// runtime (a real node) it runs on the blocking pool. On a current-thread
/// runtime (the simulator, where everything must stay on one thread to stay
/// deterministic) it runs in place.
async fn verify_off_the_runtime(stored: Vec<Vec<u8>>, password: &str) -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
        return verify_any(&stored, password);
    }
    let password = password.to_owned();
    match tokio::task::spawn_blocking(move || verify_any(&stored, &password)).await {
        Ok(accepted) => accepted,
        Err(e) => {
            warn!(error = %e, "password check failed; login rejected");
            false
        }
    }
}

/// Whether any stored value accepts `password`. Values that are not UTF-8
/// or not a known scheme never match (logged, without the value).
fn verify_any(stored: &[Vec<u8>], password: &str) -> bool {
    let mut accepted = false;
    for value in stored {
        let Ok(value) = std::str::from_utf8(value) else {
            warn!("userPassword value is not UTF-8; ignored");
            continue;
        };
        match password::verify(value, password) {
            // No early exit: every value costs its hash either way.
            Ok(ok) => accepted |= ok,
            Err(e) => warn!(error = %e, "unusable userPassword value"),
        }
    }
    accepted
}

fn is_disabled(entry: &Entry) -> bool {
    let uac_disabled =
        entry.first_str("userAccountControl").and_then(|v| v.trim().parse::<u32>().ok()).is_some_and(|v| v & 2 != 0);
    uac_disabled || !entry.values("pwdAccountLockedTime").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_accounts_are_recognised() {
        let mut entry = Entry { dn: "uid=x".into(), ..Entry::default() };
        assert!(!is_disabled(&entry));
        entry.push("userAccountControl", [b"512".to_vec()]);
        assert!(!is_disabled(&entry));
        entry.attrs.clear();
        entry.push("userAccountControl", [b"514".to_vec()]);
        assert!(is_disabled(&entry));
        entry.attrs.clear();
        entry.push("pwdAccountLockedTime", [b"000001010000Z".to_vec()]);
        assert!(is_disabled(&entry));
    }

    #[test]
    fn any_stored_value_may_match_and_garbage_never_does() {
        let stored = vec![b"{SSHA}broken".to_vec(), vec![0xff, 0xfe], b"secret".to_vec()];
        assert!(verify_any(&stored, "secret"));
        assert!(!verify_any(&stored, "Secret"));
        assert!(!verify_any(&[], "secret"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_node_checks_hashes_on_the_blocking_pool() {
        let stored = vec![password::hash(password::Scheme::Ssha512, "secret", &[7; 16]).into_bytes()];
        assert!(verify_off_the_runtime(stored.clone(), "secret").await);
        assert!(!verify_off_the_runtime(stored, "wrong").await);
    }

    #[tokio::test]
    async fn a_current_thread_runtime_checks_them_in_place() {
        let stored = vec![b"secret".to_vec()];
        assert!(verify_off_the_runtime(stored.clone(), "secret").await);
        assert!(!verify_off_the_runtime(stored, "wrong").await);
    }
}
