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
    /// What LDAP Password mode checks when there is no hash to check.
    decoy: password::Decoy,
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
        Self { inner: Arc::new(Inner { settings, service, binder, decoy: password::Decoy::default() }) }
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
        // Unknown, ambiguous and disabled users are refused, in Password
        // mode only after as much hashing as a wrong password costs.
        let mut entry = match self.search(&search).await.map(<[Entry; 1]>::try_from) {
            Err(e) => return Authentication::Unavailable(e),
            Ok(Ok([entry])) if !is_disabled(&entry) => Some(entry),
            Ok(_) => None,
        };
        let accepted = match (mode, &mut entry) {
            (AuthMode::Password, entry) => {
                let stored = entry.as_mut().and_then(|e| e.attrs.remove(&USER_PASSWORD.to_ascii_lowercase()));
                Ok(self.verify(stored.unwrap_or_default(), password).await)
            }
            (AuthMode::Bind, Some(entry)) => self.bind_as(&entry.dn, password).await,
            (AuthMode::Bind, None) => Ok(false),
        };
        match (accepted, entry) {
            (Ok(true), Some(entry)) => Authentication::Accepted(entry),
            (Ok(_), _) => Authentication::Rejected,
            (Err(e), _) => Authentication::Unavailable(e),
        }
    }

    /// Whether any usable stored value accepts `password`; with none, the
    /// decoy is checked instead (and the answer is no), so a user without
    /// a password costs the same time as a wrong password.
    async fn verify(&self, stored: Vec<Vec<u8>>, password: &str) -> bool {
        let usable: Vec<String> = stored
            .into_iter()
            .filter_map(|value| match String::from_utf8(value) {
                Ok(value) => Some(value),
                Err(_) => {
                    warn!("userPassword value is not UTF-8; ignored");
                    None
                }
            })
            .filter(|value| match password::validate(value) {
                Ok(()) => true,
                Err(e) => {
                    warn!(error = %e, "unusable userPassword value");
                    false
                }
            })
            .collect();
        match usable.first() {
            Some(real) => {
                self.inner.decoy.learn(real);
                verify_off_the_runtime(usable, password).await
            }
            None => {
                verify_off_the_runtime(vec![self.inner.decoy.stored()], password).await;
                false
            }
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
async fn verify_off_the_runtime(stored: Vec<String>, password: &str) -> bool {
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

/// Whether any stored value accepts `password`. Values that are not a
/// known scheme never match (logged, without the value).
fn verify_any(stored: &[String], password: &str) -> bool {
    let mut accepted = false;
    for value in stored {
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
    use crate::net::BoxFuture;

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

    #[tokio::test]
    async fn any_stored_value_may_match_and_garbage_never_does() {
        let c = people();
        let stored = || vec![b"{SSHA}broken".to_vec(), vec![0xff, 0xfe], b"secret".to_vec()];
        assert!(c.verify(stored(), "secret").await);
        assert!(!c.verify(stored(), "Secret").await);
        assert!(!c.verify(Vec::new(), "secret").await);
        assert!(!c.verify(vec![c.inner.decoy.stored().into_bytes()], "secret").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_node_checks_hashes_on_the_blocking_pool() {
        let stored = vec![password::hash(password::Scheme::Ssha512, "secret", &[7; 16])];
        assert!(verify_off_the_runtime(stored.clone(), "secret").await);
        assert!(!verify_off_the_runtime(stored, "wrong").await);
    }

    /// A directory with alice (a salted SHA-512 hash), pat (disabled) and
    /// mallory (no password); anyone else is unknown.
    struct People;
    struct PeopleConn;

    impl LdapOps for People {
        fn connect<'a>(
            &'a self,
            _: &'a str,
            _: &'a TlsSettings,
        ) -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>> {
            Box::pin(async { Ok(Box::new(PeopleConn) as Box<dyn LdapConn>) })
        }
    }

    impl LdapConn for PeopleConn {
        fn simple_bind<'a>(&'a mut self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>> {
            Box::pin(async { Ok(BindResult::Ok) })
        }

        fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>> {
            let hash = password::hash(password::Scheme::Ssha512, "secret", &[7; 16]);
            let uid = search.filter.trim_start_matches("(uid=").trim_end_matches(')').to_owned();
            let mut entry = Entry { dn: format!("uid={uid},dc=example"), ..Entry::default() };
            match uid.as_str() {
                "alice" => entry.push("userPassword", [hash.into_bytes()]),
                "pat" => {
                    entry.push("userPassword", [hash.into_bytes()]);
                    entry.push("pwdAccountLockedTime", [b"000001010000Z".to_vec()]);
                }
                "mallory" => {}
                _ => return Box::pin(async { Ok(Vec::new()) }),
            }
            Box::pin(async move { Ok(vec![entry]) })
        }

        fn unbind(self: Box<Self>) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    fn people() -> Connector {
        let mut settings = DirectorySettings::new("d", ServerType::OpenLdap, &["ldap://d"], "dc=example");
        settings.bind = Some(("cn=admin".into(), "pw".into()));
        Connector::new(settings, Arc::new(People))
    }

    #[tokio::test]
    async fn unknown_disabled_and_passwordless_logins_cost_a_verification_like_a_wrong_password() {
        let c = people();
        let login = |filter: &'static str, pw: &'static str| {
            let c = c.clone();
            async move { c.authenticate(AuthMode::Password, "dc=example", filter, &[], pw).await }
        };
        assert!(matches!(login("(uid=alice)", "secret").await, Authentication::Accepted(_)));
        password::record::take();
        assert_eq!(login("(uid=alice)", "wrong").await, Authentication::Rejected);
        let wrong_password = password::record::take();
        assert_eq!(wrong_password.len(), 1, "one hash checked");
        for (filter, pw) in [("(uid=nobody)", "secret"), ("(uid=pat)", "secret"), ("(uid=mallory)", "secret")] {
            assert_eq!(login(filter, pw).await, Authentication::Rejected, "{filter}");
            assert_eq!(password::record::take(), wrong_password, "{filter}: same scheme and cost as a real check");
        }
    }

    #[tokio::test]
    async fn a_current_thread_runtime_checks_them_in_place() {
        let stored = vec!["secret".to_owned()];
        assert!(verify_off_the_runtime(stored.clone(), "secret").await);
        assert!(!verify_off_the_runtime(stored, "wrong").await);
    }
}
