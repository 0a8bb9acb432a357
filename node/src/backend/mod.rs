//! The back-end mail services: they hold the mail (SMTP delivery into the
//! store, POP3 and IMAP access to it).

pub mod pop3;
pub mod smtp;

use crate::clock::Clock;
use crate::config::Limits;
use crate::directory::LocalAccounts;
use crate::store::Store;

/// What every back-end session needs, shared by all sessions of a node.
pub struct Context {
    /// The name the node gives itself in greetings and trace headers.
    pub hostname: String,
    pub limits: Limits,
    pub accounts: LocalAccounts,
    pub store: Store,
    pub clock: Clock,
}
