//! Who the node's users are: authentication and recipient lookup. For now
//! the node's local accounts from its config; the LDAP connector and user
//! maps plug in behind the same answers.

pub mod cache;
pub mod ldap;
pub mod local_map;
pub mod password;
pub mod settings;
pub mod usermap;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Config, parse_address};
use crate::store::AccountId;

/// How long a failed login is held before it is answered, to slow down
/// password guessing (Dovecot waits 2 s by default).
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// The result of checking a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are right; the session belongs to this mailbox.
    Accepted(AccountId),
    /// Wrong password, unknown user or an unusable stored hash: a permanent
    /// "authentication failed", indistinguishable to the client.
    Rejected,
    /// The directory could not decide (down, timing out): a temporary
    /// failure, never a pass (DESIGN invariant 3).
    Unavailable,
    /// The credentials are right but the user's mailbox is on another node
    /// (a back-end's answer; DESIGN invariant 10): a temporary failure,
    /// since a proxy would have sent them home.
    NotHere,
}

/// What a recipient address means to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account.
    Local(AccountId),
    /// A local domain but no such account.
    UnknownLocal,
    /// Not one of this node's domains.
    Foreign,
    /// Not a usable address.
    Invalid,
    /// The directory could not say (SMTP 451 4.4.3, never a 5xx).
    Unavailable,
    /// A local user whose mailbox is on another node (a back-end's answer;
    /// SMTP 451, never a 5xx: a proxy would have sent the mail there).
    NotHere,
}

/// The node's local accounts.
#[derive(Debug, Clone)]
pub struct LocalAccounts {
    domains: Vec<String>,
    accounts: BTreeMap<AccountId, String>,
    /// Checked for logins naming no account, so they cost what a wrong
    /// password costs (see [`password::Decoy`]).
    decoy: String,
}

impl LocalAccounts {
    pub fn from_config(config: &Config) -> Self {
        let decoy = password::Decoy::imitating(config.accounts.values().map(String::as_str)).stored();
        Self { domains: config.domains.clone(), accounts: config.accounts.clone(), decoy }
    }

    /// The node's mail domains, the first one primary.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Checks a login. `login` is `user@domain`, or a bare `user` when the
    /// node has exactly one domain.
    pub fn authenticate(&self, login: &str, password: &str) -> AuthOutcome {
        match self.normalise_login(login).and_then(|id| self.accounts.get_key_value(&id)) {
            Some((id, stored)) if password::verify(stored, password).unwrap_or(false) => {
                AuthOutcome::Accepted(id.clone())
            }
            Some(_) => AuthOutcome::Rejected,
            None => {
                // No account: as slow as a wrong password, so logins
                // cannot tell who exists.
                let _ = password::verify(&self.decoy, password);
                AuthOutcome::Rejected
            }
        }
    }

    /// Classifies an SMTP recipient address.
    pub fn recipient(&self, address: &str) -> Recipient {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Recipient::Invalid;
        };
        let domain = domain.to_ascii_lowercase();
        if !self.domains.contains(&domain) {
            return Recipient::Foreign;
        }
        match parse_address(address) {
            Some(id) if self.accounts.contains_key(&id) => Recipient::Local(id),
            _ => Recipient::UnknownLocal,
        }
    }

    /// `user@domain` as given, or a bare `user` in the node's only domain.
    pub fn normalise_login(&self, login: &str) -> Option<AccountId> {
        let login = login.trim();
        if login.contains('@') {
            parse_address(login)
        } else if let [domain] = self.domains.as_slice() {
            parse_address(&format!("{login}@{domain}"))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn accounts() -> LocalAccounts {
        accounts_with("wonderland")
    }

    /// alice@example.com with this stored password.
    fn accounts_with(password: &str) -> LocalAccounts {
        let text = format!(
            "[node]\nname = \"n\"\ndata_dir = \"d\"\n[[domain]]\nname = \"example.com\"\n\
             [[account]]\naddress = \"alice@example.com\"\npassword = \"{password}\"\n\
             [backend.smtp]\nlisten = \"127.0.0.1:25\"\n"
        );
        LocalAccounts::from_config(&Config::parse(Path::new("n.toml"), &text).unwrap())
    }

    #[test]
    fn logins_are_normalised() {
        let a = accounts();
        let alice = parse_address("alice@example.com").unwrap();
        assert_eq!(a.authenticate("alice@example.com", "wonderland"), AuthOutcome::Accepted(alice.clone()));
        assert_eq!(a.authenticate(" ALICE@Example.com ", "wonderland"), AuthOutcome::Accepted(alice.clone()));
        assert_eq!(a.authenticate("alice", "wonderland"), AuthOutcome::Accepted(alice));
    }

    #[test]
    fn wrong_password_unknown_user_and_injection_are_rejected_alike() {
        let a = accounts();
        for (login, pw) in [("alice", "wrong"), ("bob", "wonderland"), ("*", "wonderland"), ("alice", "")] {
            assert_eq!(a.authenticate(login, pw), AuthOutcome::Rejected, "{login}");
        }
    }

    #[test]
    fn unknown_users_cost_a_verification_like_a_wrong_password() {
        let a = accounts_with("{SSHA}WAsKoNfKTtZszc4V/39TEKtcDm5ag9K7");
        assert!(matches!(a.authenticate("alice", "wonderland"), AuthOutcome::Accepted(_)));
        password::record::take();
        assert_eq!(a.authenticate("alice", "wrong"), AuthOutcome::Rejected);
        let wrong_password = password::record::take();
        assert_eq!(wrong_password.len(), 1, "one hash checked");
        for login in ["bob", "bob@example.com", "*", "alice@elsewhere.test"] {
            assert_eq!(a.authenticate(login, "wonderland"), AuthOutcome::Rejected, "{login}");
            assert_eq!(password::record::take(), wrong_password, "{login}: same scheme and cost as a real check");
        }
    }

    #[test]
    fn recipients_are_classified() {
        let a = accounts();
        assert!(matches!(a.recipient("Alice@EXAMPLE.com"), Recipient::Local(_)));
        assert_eq!(a.recipient("carol@example.com"), Recipient::UnknownLocal);
        assert_eq!(a.recipient("carol@elsewhere.org"), Recipient::Foreign);
        assert_eq!(a.recipient("postmaster"), Recipient::Invalid);
    }
}
