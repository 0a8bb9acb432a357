//! The back-end mail services: they hold the mail (SMTP delivery into the
//! store, POP3 and IMAP access to it).

pub mod imap;
pub mod pop3;
pub mod smtp;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Limits;
use crate::directory::{AuthOutcome, LocalAccounts};
use crate::store::Store;

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
}

impl Context {
    /// Checks a login; password hashing runs off the async workers when
    /// the node runs for real.
    pub async fn authenticate(&self, login: &str, password: &str) -> AuthOutcome {
        if !self.offload_cpu {
            return self.accounts.authenticate(login, password);
        }
        let (accounts, login, password) = (self.accounts.clone(), login.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || accounts.authenticate(&login, &password))
            .await
            .unwrap_or(AuthOutcome::Rejected)
    }
}
