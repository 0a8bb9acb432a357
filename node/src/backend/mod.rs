//! The back-end mail services: they hold the mail (SMTP delivery into the
//! store, POP3 and IMAP access to it).

pub mod imap;
pub mod pop3;
pub mod smtp;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::config::Limits;
use crate::directory::usermap::{AuthResult, Route, UserMap};
use crate::directory::{AuthOutcome, LocalAccounts, Recipient};
use crate::store::{AccountId, Store};

/// What every back-end session needs, shared by all sessions of a node.
pub struct Context {
    /// The name the node gives itself in greetings and trace headers.
    pub hostname: String,
    pub limits: Limits,
    pub accounts: Arc<LocalAccounts>,
    pub store: Store,
    pub clock: Clock,
    /// See [`crate::node::Env::offload_cpu`].
    pub offload_cpu: bool,
    /// Logged-in IMAP and POP3 sessions per account.
    pub sessions: Arc<Mutex<BTreeMap<AccountId, usize>>>,
    /// When set (`[backend] auth_map`), logins and local recipients are
    /// checked in this LDAP user map instead of the local accounts.
    pub auth_map: Option<Arc<UserMap>>,
}

/// A logged-in session's place in the per-account count; freed on drop.
#[derive(Debug)]
pub struct SessionSlot {
    account: AccountId,
    sessions: Arc<Mutex<BTreeMap<AccountId, usize>>>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

impl Context {
    /// What an SMTP recipient means here: a local account (in the auth map
    /// when there is one, else in the config), or not.
    pub async fn recipient(&self, address: &str) -> Recipient {
        let Some(map) = &self.auth_map else { return self.accounts.recipient(address) };
        match self.accounts.recipient(address) {
            Recipient::Local(_) | Recipient::UnknownLocal => match map.lookup(address).await {
                Route::Mapped { .. } => self.account_of(address).map_or(Recipient::Invalid, Recipient::Local),
                Route::NotInMap => Recipient::UnknownLocal,
                Route::Unavailable(_) => Recipient::Unavailable,
            },
            other => other,
        }
    }

    /// The mailbox of a login or address (bare logins in the only domain).
    fn account_of(&self, login: &str) -> Option<AccountId> {
        self.accounts.normalise_login(login)
    }

    /// Takes one of the account's session slots, or `None` when it already
    /// has `limits.max_sessions_per_user` sessions.
    pub fn claim_session(&self, account: &AccountId) -> Option<SessionSlot> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(account.clone()).or_default();
        if *n >= self.limits.max_sessions_per_user {
            return None;
        }
        *n += 1;
        Some(SessionSlot { account: account.clone(), sessions: self.sessions.clone() })
    }

    /// Checks a login; password hashing runs off the async workers when
    /// the node runs for real.
    pub async fn authenticate(&self, login: &str, password: &str) -> AuthOutcome {
        if let Some(map) = &self.auth_map {
            return match map.authenticate(login, password).await {
                AuthResult::Accepted(identity) => match self.account_of(&identity.login) {
                    Some(account) => AuthOutcome::Accepted(account),
                    None => AuthOutcome::Rejected,
                },
                AuthResult::Rejected => AuthOutcome::Rejected,
                AuthResult::Unavailable(_) => AuthOutcome::Unavailable,
            };
        }
        if !self.offload_cpu {
            return self.accounts.authenticate(login, password);
        }
        let (accounts, login, password) = (self.accounts.clone(), login.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || accounts.authenticate(&login, &password))
            .await
            .unwrap_or(AuthOutcome::Rejected)
    }
}
