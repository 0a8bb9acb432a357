//! The narrow set of LDAP operations the connector needs, as a trait: the
//! ldap3 crate cannot run over a caller-supplied stream (DESIGN "The
//! seam"), so everything that matters sits above this trait, implemented
//! by ldap3 for real processes ([`super::ldap3_ops`]) and by a small client
//! on ldap3_proto's codec over the network seam ([`super::seam_ops`]).

use std::collections::BTreeMap;
use std::fmt;

use super::tls::TlsSettings;
use crate::net::BoxFuture;

/// Opens connections to directory servers.
pub trait LdapOps: Send + Sync {
    /// Connects to `url` (`ldap://host:port`, or `ldaps://` where the
    /// implementation does TLS); `tls.starttls` upgrades an `ldap://`
    /// connection, `tls.ca` says whom to trust. Not bound yet: the session
    /// is anonymous.
    fn connect<'a>(&'a self, url: &'a str, tls: &'a TlsSettings)
    -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>>;
}

/// One open connection. Operations run one at a time; a connection that
/// returned a connection-level error ([`LdapError::breaks_connection`]) is
/// dropped by the caller.
pub trait LdapConn: Send {
    /// Simple bind. A wrong DN or password is `Ok(BindResult::InvalidCredentials)`;
    /// any other refusal is `Err(LdapError::Code)`.
    fn simple_bind<'a>(&'a mut self, dn: &'a str, password: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>>;
    /// Searches; `filter` is RFC 4515 text. A result of sizeLimitExceeded
    /// returns the entries received; any other non-success code is an error.
    fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>>;
    /// Says goodbye (unbind) and closes, without waiting for anything.
    fn unbind(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// How far below the base a search looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

/// One search request.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    pub base: &'a str,
    pub scope: Scope,
    pub filter: &'a str,
    /// Attributes wanted; `["1.1"]` for none (DNs only).
    pub attrs: &'a [&'a str],
    /// Most entries the server should return; 0 = no limit.
    pub size_limit: i32,
}

/// The outcome of a bind the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindResult {
    Ok,
    /// invalidCredentials (49): wrong password, unknown DN, or an account
    /// the server refuses (locked, disabled).
    InvalidCredentials,
}

/// A search result entry. Attribute names are lower-cased; values are raw
/// bytes (userPassword may not be UTF-8).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The values of `attr` (any case).
    pub fn values(&self, attr: &str) -> &[Vec<u8>] {
        self.attrs.get(&attr.to_ascii_lowercase()).map_or(&[], Vec::as_slice)
    }

    /// The first value of `attr` as text, if it is UTF-8.
    pub fn first_str(&self, attr: &str) -> Option<&str> {
        self.values(attr).first().and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Adds values under the lower-cased name.
    pub fn push(&mut self, attr: &str, values: impl IntoIterator<Item = Vec<u8>>) {
        self.attrs.entry(attr.to_ascii_lowercase()).or_default().extend(values);
    }
}

// Never prints userPassword values: entries end up in logs.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        map.entry(&"dn", &self.dn);
        for (name, values) in &self.attrs {
            if name == "userpassword" {
                map.entry(name, &format_args!("[{} hidden]", values.len()));
            } else {
                let shown: Vec<_> = values.iter().map(|v| String::from_utf8_lossy(v)).collect();
                map.entry(name, &shown);
            }
        }
        map.finish()
    }
}

/// Why an operation failed. Everything but [`LdapError::Code`] means the
/// connection is unusable; `Code` is an answer from a working server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    /// The server could not be reached (refused, no route, name unknown,
    /// TLS handshake failed, certificate not trusted).
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The operation did not finish in time.
    #[error("timed out")]
    Timeout,
    /// The connection broke or the server sent something we cannot read.
    #[error("connection lost: {0}")]
    Connection(String),
    /// The URL cannot be used by this implementation.
    #[error("unusable URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The server answered with a result code other than success.
    #[error("result code {code} ({}){}", code_name(*code), if message.is_empty() { String::new() } else { format!(": {message}") })]
    Code { code: u32, message: String },
}

impl LdapError {
    /// Whether the connection must be dropped (it is not worth reusing).
    pub fn breaks_connection(&self) -> bool {
        !matches!(self, LdapError::Code { .. })
    }

    /// Whether the server should be skipped for a while: it could not be
    /// reached, hangs, or says it is unavailable or busy.
    pub fn server_is_down(&self) -> bool {
        match self {
            LdapError::Unreachable { .. } | LdapError::Timeout | LdapError::Connection(_) => true,
            LdapError::Code { code, .. } => matches!(code, 51 | 52),
            LdapError::BadUrl { .. } => false,
        }
    }
}

/// Names of the result codes worth naming in a log line (RFC 4511 A.2).
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        87 => "filterError (client side)",
        _ => "unknown",
    }
}
