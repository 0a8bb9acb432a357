//! The back-end mail services: they hold the mail (SMTP delivery into the
//! store, POP3 and IMAP access to it).

pub mod home;
pub mod imap;
pub mod pop3;
pub mod smtp;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::{error, warn};

use crate::clock::Clock;
use crate::config::{Limits, parse_address};
use crate::directory::usermap::{AuthResult, UserMap};
use crate::directory::{AuthOutcome, LocalAccounts, Recipient};
use crate::store::{AccountId, Store};
use home::OwnNames;

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
    /// checked in this LDAP user map instead of the local accounts, and
    /// served only when the map homes them here.
    pub auth_map: Option<Arc<UserMap>>,
    /// The map hosts that mean this node (see [`home`]).
    pub own_names: OwnNames,
}

/// Why a user the map knows is not served here.
enum NotServed {
    /// The map homes them on another node, or on none.
    Elsewhere,
    /// Their entry has no usable canonical address to name a mailbox.
    NoAddress,
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
    /// What an SMTP recipient means here. With an auth map: a user the map
    /// homes here, under their canonical address; else a config account.
    pub async fn recipient(&self, address: &str) -> Recipient {
        let Some(map) = &self.auth_map else { return self.accounts.recipient(address) };
        match self.accounts.recipient(address) {
            Recipient::Local(_) | Recipient::UnknownLocal => match map.resolve(address).await {
                // No host: not in the map, as the proxies see it.
                Ok(Some(entry)) if entry.host.is_some() => {
                    match self.home_mailbox(address, entry.host.as_ref(), entry.address.as_deref()) {
                        Ok(account) => Recipient::Local(account),
                        Err(NotServed::Elsewhere) => Recipient::NotHere,
                        Err(NotServed::NoAddress) => Recipient::Unavailable,
                    }
                }
                Ok(_) => Recipient::UnknownLocal,
                Err(_) => Recipient::Unavailable,
            },
            other => other,
        }
    }

    /// The mailbox of a user the map found under `user`, named after their
    /// canonical `address`, if `host` (the map's home for them) is this
    /// node. Refusals are logged.
    fn home_mailbox(
        &self,
        user: &str,
        host: Option<&(String, Option<u16>)>,
        address: Option<&str>,
    ) -> Result<AccountId, NotServed> {
        let home = host.map(|(h, _)| h.as_str());
        // The checker's self-test needs misrouted mail to land somewhere.
        #[cfg(feature = "sim-bugs")]
        let home = if crate::bugs::active(crate::bugs::Bug::StaleRoute) { Some(self.hostname.as_str()) } else { home };
        if !home.is_some_and(|h| self.own_names.contains(h)) {
            warn!(%user, home = home.unwrap_or("(none)"), "user's mailbox is not on this server; refused");
            return Err(NotServed::Elsewhere);
        }
        match address.and_then(parse_address) {
            Some(account) => Ok(account),
            None => {
                error!(%user, address, "the user's entry has no usable canonical address; refused");
                Err(NotServed::NoAddress)
            }
        }
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
                #[cfg(feature = "sim-bugs")]
                AuthResult::Accepted(identity)
                    if identity.dn.is_empty()
                        && crate::bugs::active(crate::bugs::Bug::AuthPassesWhenDirectoryErrors) =>
                {
                    self.accounts.normalise_login(login).map_or(AuthOutcome::Rejected, AuthOutcome::Accepted)
                }
                AuthResult::Accepted(identity) => {
                    match self.home_mailbox(login, identity.host.as_ref(), identity.address.as_deref()) {
                        Ok(account) => AuthOutcome::Accepted(account),
                        Err(NotServed::Elsewhere) => AuthOutcome::NotHere,
                        Err(NotServed::NoAddress) => AuthOutcome::Unavailable,
                    }
                }
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
