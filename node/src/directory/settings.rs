//! The `[[directory]]` (LDAP connector) and `[[user_map]]` config sections,
//! as written in the node's TOML file, and their validation. The doc
//! comments on each key are the reference for operators.
//!
//! seeds: LDAP connector configuration (server type, timeout, account and
//! group base DN), Mapping Setup (kinds, one connector, one base DN, one
//! search pattern per map).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ldap::filter::Pattern;
use super::ldap::tls::{TlsSettings, TrustedCa};

/// Default lookup timeout: one attempt against one server (connect, service
/// bind and the operation) must finish within it.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Default number of bound service connections kept per connector (also
/// the most concurrent operations per connector).
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Default time a server that failed is skipped before it is tried again.
pub const DEFAULT_RETRY_DEAD_AFTER_SECS: u64 = 30;
/// Default attribute naming the user's back-end host.
pub const DEFAULT_HOST_ATTRIBUTE: &str = "mailHost";
/// Default attribute holding the user's canonical address, which names
/// their mailbox whatever they logged in or received mail as.
pub const DEFAULT_ADDRESS_ATTRIBUTE: &str = "mail";
/// Default search pattern for OpenLDAP directories: the uid (in any
/// domain), the canonical address, or an alias in mailLocalAddress.
pub const DEFAULT_OPENLDAP_PATTERN: &str = "(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%e)(mailLocalAddress=%e)))";
/// Default search pattern for Active Directory: sAMAccountName is the bare
/// user name, userPrincipalName the `user@domain` form.
pub const DEFAULT_AD_PATTERN: &str = "(&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%e)))";
/// Default time a found route or accepted login is reused.
pub const DEFAULT_POSITIVE_TTL_SECS: u64 = 60;
/// Default time "not in the map" or "wrong password" is reused.
pub const DEFAULT_NEGATIVE_TTL_SECS: u64 = 10;
/// Default stale-on-failure window: off.
pub const DEFAULT_STALE_ON_FAILURE_SECS: u64 = 0;
/// Default bound on cached results per user map.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;

const MAX_TIMEOUT_SECS: u64 = 300;
const MAX_POOL_SIZE: usize = 256;

/// The kind of directory server; decides how groups nest and which search
/// pattern is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerType {
    /// OpenLDAP (or any RFC 4519 directory): groups are groupOfNames /
    /// groupOfUniqueNames, nesting is resolved by the client.
    #[serde(rename = "openldap")]
    OpenLdap,
    /// Microsoft Active Directory: nesting is resolved by the server through
    /// the LDAP_MATCHING_RULE_IN_CHAIN rule (1.2.840.113556.1.4.1941).
    ActiveDirectory,
}

/// One `[[directory]]`: an LDAP connector.
///
/// ```toml
/// [[directory]]
/// name = "corp"
/// server_type = "openldap"          # or "active-directory"
/// urls = ["ldap://ldap1:389", "ldaps://ldap2:636"]
/// bind_dn = "cn=tiermail,dc=example,dc=com"
/// bind_password = "secret"
/// account_base_dn = "ou=people,dc=example,dc=com"
/// group_base_dn = "ou=groups,dc=example,dc=com"
/// tls_ca_file = "ldap-ca.pem"       # else the system's trust store
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    /// Name user maps refer to. Required, unique.
    pub name: Spanned<String>,
    /// `"openldap"` or `"active-directory"`. Required.
    pub server_type: ServerType,
    /// Servers in order of preference: `ldap://host[:port]` (port 389) or
    /// `ldaps://host[:port]` (port 636, the certificate checked against
    /// `tls_ca_file` or the system's trust store). The first live one is
    /// used; a server that fails or times out is skipped for
    /// `retry_dead_after_secs`. Required, not empty.
    pub urls: Spanned<Vec<Spanned<String>>>,
    /// Upgrade `ldap://` connections with StartTLS. Default false. Only the
    /// real-process client does TLS; simulations use plain `ldap://`.
    pub starttls: Option<Spanned<bool>>,
    /// The CA certificates (PEM, one or more) the servers' certificates
    /// must chain to, for `ldaps://` and StartTLS; relative to the config
    /// file. Default: the system's trust store. A server whose certificate
    /// does not verify, or does not name the host of its URL, is
    /// unavailable (a temporary failure), never used without TLS.
    pub tls_ca_file: Option<Spanned<PathBuf>>,
    /// The service account's DN, used for every search (and to read
    /// `userPassword` in LDAP Password maps, which needs a privileged
    /// account). Absent: searches run anonymously.
    pub bind_dn: Option<Spanned<String>>,
    /// The service account's password. Required with `bind_dn`.
    pub bind_password: Option<Spanned<String>>,
    /// Time one attempt against one server may take (connect, service bind,
    /// the operation), in seconds. Default 5; 1 to 300. A lookup that fails
    /// over tries each server at most once.
    pub timeout_secs: Option<Spanned<u64>>,
    /// Top of the tree holding user entries; the default base DN of user
    /// maps on this directory. Required.
    pub account_base_dn: Spanned<String>,
    /// Top of the tree holding groups (for `required_group`). Default: the
    /// account base DN.
    pub group_base_dn: Option<Spanned<String>>,
    /// Bound service connections kept open (and the most operations in
    /// flight) per server set. Default 4; 1 to 256.
    pub pool_size: Option<Spanned<usize>>,
    /// Seconds a failed server is skipped before it is tried again. Default
    /// 30. When every server is marked failed they are all tried anyway.
    pub retry_dead_after_secs: Option<u64>,
}

impl fmt::Debug for DirectorySection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectorySection")
            .field("name", self.name.get_ref())
            .field("server_type", &self.server_type)
            .field("urls", &self.urls.get_ref().iter().map(|u| u.get_ref()).collect::<Vec<_>>())
            .field("bind_dn", &self.bind_dn.as_ref().map(|d| d.get_ref()))
            .field("bind_password", &self.bind_password.as_ref().map(|_| "********"))
            .field("tls_ca_file", &self.tls_ca_file.as_ref().map(|p| p.get_ref()))
            .finish_non_exhaustive()
    }
}

/// What a user map is backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserMapKind {
    /// A `user host[:port]` file (see `directory::local_map`). Cannot
    /// authenticate.
    LocalFile,
    /// An LDAP search; passwords are checked here against the entry's
    /// `userPassword`, read through the service account.
    LdapPassword,
    /// An LDAP search; passwords are checked by binding as the entry's DN
    /// (works with Active Directory, which never reveals passwords).
    LdapBind,
}

/// One `[[user_map]]`: where a user's back-end host is found, and (LDAP
/// kinds) how their password is checked.
///
/// ```toml
/// [[user_map]]
/// name = "users"
/// kind = "ldap-bind"
/// directory = "corp"
/// search_pattern = "(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%e)))"
/// [user_map.cache]
/// positive_ttl_secs = 60
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMapSection {
    /// Name the proxies refer to. Required, unique.
    pub name: Spanned<String>,
    /// `"local-file"`, `"ldap-password"` or `"ldap-bind"`. Required.
    pub kind: Spanned<UserMapKind>,
    /// The `[[directory]]` to search (LDAP kinds only; required there).
    pub directory: Option<Spanned<String>>,
    /// The map file (local-file only; required there), relative to the
    /// config file.
    pub path: Option<Spanned<PathBuf>>,
    /// Where to search (LDAP kinds). Default: the directory's
    /// `account_base_dn`.
    pub base_dn: Option<Spanned<String>>,
    /// The search filter (LDAP kinds), with the login substituted:
    /// `%u` the user part, `%d` the domain (empty for a bare login with no
    /// default domain), `%e` the full login (`user@domain`, or the bare
    /// user), `%%` a literal `%`. Every substituted value is escaped
    /// (RFC 4515), so a login of `*)(uid=*` matches nobody. Must use `%u`
    /// or `%e`. Default: `(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%e)(mailLocalAddress=%e)))`
    /// for OpenLDAP, `(&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%e)))`
    /// for Active Directory. Exactly one entry must match; more than one is
    /// treated as no match (and logged). Every name the pattern matches is
    /// the same user: `uid=%u` matches in any domain, so with the default
    /// `alice@any.tld` is alice (and uses her mailbox).
    pub search_pattern: Option<Spanned<String>>,
    /// The attribute holding the user's canonical address (LDAP kinds),
    /// which names the mailbox on the back-end whatever name or alias was
    /// used. Default `mail`; with several values, the first. A back-end
    /// refuses (temporarily) a user whose entry has no usable value.
    pub address_attribute: Option<Spanned<String>>,
    /// The attribute holding the user's back-end host, as `host` or
    /// `host:port` (LDAP kinds). Default `mailHost`. An entry without it is
    /// "not in the map".
    pub host_attribute: Option<Spanned<String>>,
    /// Port used when the map names only a host. Default: none (the proxy
    /// uses its service's back-end port).
    pub default_port: Option<Spanned<u16>>,
    /// Domain given to a bare login (`alice` → `alice@example.com`) before
    /// lookup. Default: the node's domain when it has exactly one.
    pub default_domain: Option<Spanned<String>>,
    /// Only members of this group (directly or through nested groups) are in
    /// the map (LDAP kinds; seed "LDAP Introduction": users needing LDAP
    /// authentication sit in one group). Default: no restriction.
    pub required_group: Option<Spanned<String>>,
    /// Result cache; see [`CacheSection`].
    #[serde(default)]
    pub cache: CacheSection,
}

impl UserMapSection {
    /// One section from TOML text (the keys of one `[[user_map]]`), for
    /// tests and embedders; call [`validate`] before use.
    pub fn from_toml(text: &str) -> Result<UserMapSection, toml::de::Error> {
        toml::from_str(text)
    }
}

/// `[user_map.cache]`: how long directory answers are reused.
///
/// Stale-on-failure trades freshness for availability: while the directory
/// is unreachable, a route or login that succeeded within the window keeps
/// working, so a moved account is routed to its old host, a changed
/// password keeps its old value, and a disabled or deleted account keeps
/// logging in, until the window ends. Only the exact password that last
/// succeeded is accepted from the cache; a wrong password is never accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Seconds a found route or accepted login is reused. Default 60; 0
    /// turns caching of successes off.
    pub positive_ttl_secs: u64,
    /// Seconds "not in the map" or a rejected password is reused. Default
    /// 10; 0 turns it off. Directory failures are never cached.
    pub negative_ttl_secs: u64,
    /// While the directory is unavailable, serve successes up to this many
    /// seconds past their TTL. Default 0 (off).
    pub stale_on_failure_secs: u64,
    /// Most cached results per map; the oldest go first. Default 10000.
    pub max_entries: usize,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            positive_ttl_secs: DEFAULT_POSITIVE_TTL_SECS,
            negative_ttl_secs: DEFAULT_NEGATIVE_TTL_SECS,
            stale_on_failure_secs: DEFAULT_STALE_ON_FAILURE_SECS,
            max_entries: DEFAULT_CACHE_MAX_ENTRIES,
        }
    }
}

impl CacheSection {
    pub fn positive_ttl(&self) -> Duration {
        Duration::from_secs(self.positive_ttl_secs)
    }
    pub fn negative_ttl(&self) -> Duration {
        Duration::from_secs(self.negative_ttl_secs)
    }
    pub fn stale_on_failure(&self) -> Duration {
        Duration::from_secs(self.stale_on_failure_secs)
    }
}

/// One problem in the directory or user map sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// Byte range in the config text, when the problem has a place.
    pub span: Option<Range<usize>>,
    /// Dotted key, e.g. `directory[0].urls[1]`.
    pub key: String,
    pub message: String,
}

/// A parsed `ldap://` or `ldaps://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUrl {
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl LdapUrl {
    /// Parses `ldap[s]://host[:port][/]`; IPv6 hosts in brackets.
    pub fn parse(url: &str) -> Result<LdapUrl, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("ldap://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("ldaps://") {
            (true, rest)
        } else {
            return Err(format!("{url:?} is not an ldap:// or ldaps:// URL"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_ok {
            return Err(format!("{url:?}: bad host (a DN, filter or path does not belong in a connector URL)"));
        }
        let port = match port {
            None => {
                if tls {
                    636
                } else {
                    389
                }
            }
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{url:?}: bad port"))?,
        };
        Ok(LdapUrl { tls, host: host.to_string(), port })
    }

    /// `host:port` for connecting (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", if self.tls { "ldaps" } else { "ldap" }, self.authority())
    }
}

/// Checks the sections together (user maps name directories). Returns
/// every problem; empty means valid.
pub fn validate(dirs: &[DirectorySection], maps: &[UserMapSection]) -> Vec<SettingsError> {
    let mut errors = Vec::new();
    let mut err = |span: Option<Range<usize>>, key: String, message: String| {
        errors.push(SettingsError { span, key, message });
    };
    let mut names: Vec<&str> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let key = |k: &str| format!("directory[{i}].{k}");
        let name = d.name.get_ref().as_str();
        if !is_name(name) {
            err(Some(d.name.span()), key("name"), "must be letters, digits, '.', '-' or '_'".into());
        } else if names.contains(&name) {
            err(Some(d.name.span()), key("name"), format!("directory {name:?} is defined twice"));
        }
        names.push(name);
        if d.urls.get_ref().is_empty() {
            err(Some(d.urls.span()), key("urls"), "needs at least one server URL".into());
        }
        for (j, url) in d.urls.get_ref().iter().enumerate() {
            match LdapUrl::parse(url.get_ref()) {
                Err(message) => err(Some(url.span()), key(&format!("urls[{j}]")), message),
                Ok(parsed) if parsed.tls && d.starttls.as_ref().is_some_and(|s| *s.get_ref()) => err(
                    d.starttls.as_ref().map(|s| s.span()),
                    key("starttls"),
                    format!("{url} is already TLS; StartTLS applies to ldap:// URLs", url = url.get_ref()),
                ),
                Ok(_) => {}
            }
        }
        let starttls = d.starttls.as_ref().is_some_and(|s| *s.get_ref());
        if let Some(ca) = &d.tls_ca_file
            && !starttls
            && !d.urls.get_ref().iter().any(|u| LdapUrl::parse(u.get_ref()).is_ok_and(|u| u.tls))
        {
            let message = "no server uses TLS: tls_ca_file needs an ldaps:// URL or starttls = true";
            err(Some(ca.span()), key("tls_ca_file"), message.into());
        }
        match (&d.bind_dn, &d.bind_password) {
            (Some(dn), _) if !is_dn(dn.get_ref()) => {
                err(Some(dn.span()), key("bind_dn"), format!("{:?} is not a DN", dn.get_ref()))
            }
            (Some(dn), None) => err(Some(dn.span()), key("bind_password"), "bind_dn needs a bind_password".into()),
            (None, Some(pw)) => err(Some(pw.span()), key("bind_dn"), "bind_password without bind_dn".into()),
            (Some(_), Some(pw)) if pw.get_ref().is_empty() => err(
                Some(pw.span()),
                key("bind_password"),
                "must not be empty (an empty password is an anonymous bind)".into(),
            ),
            _ => {}
        }
        if let Some(t) = &d.timeout_secs
            && !(1..=MAX_TIMEOUT_SECS).contains(t.get_ref())
        {
            err(Some(t.span()), key("timeout_secs"), format!("must be between 1 and {MAX_TIMEOUT_SECS}"));
        }
        if let Some(p) = &d.pool_size
            && !(1..=MAX_POOL_SIZE).contains(p.get_ref())
        {
            err(Some(p.span()), key("pool_size"), format!("must be between 1 and {MAX_POOL_SIZE}"));
        }
        for (k, dn) in [("account_base_dn", Some(&d.account_base_dn)), ("group_base_dn", d.group_base_dn.as_ref())] {
            if let Some(dn) = dn
                && !is_dn(dn.get_ref())
            {
                err(Some(dn.span()), key(k), format!("{:?} is not a DN", dn.get_ref()));
            }
        }
    }

    let mut map_names: Vec<&str> = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let key = |k: &str| format!("user_map[{i}].{k}");
        let name = m.name.get_ref().as_str();
        if !is_name(name) {
            err(Some(m.name.span()), key("name"), "must be letters, digits, '.', '-' or '_'".into());
        } else if map_names.contains(&name) {
            err(Some(m.name.span()), key("name"), format!("user map {name:?} is defined twice"));
        }
        map_names.push(name);
        let ldap = *m.kind.get_ref() != UserMapKind::LocalFile;
        let misplaced = if ldap {
            vec![("path", m.path.as_ref().map(|p| p.span()))]
        } else {
            vec![
                ("directory", m.directory.as_ref().map(|s| s.span())),
                ("base_dn", m.base_dn.as_ref().map(|s| s.span())),
                ("search_pattern", m.search_pattern.as_ref().map(|s| s.span())),
                ("host_attribute", m.host_attribute.as_ref().map(|s| s.span())),
                ("address_attribute", m.address_attribute.as_ref().map(|s| s.span())),
                ("required_group", m.required_group.as_ref().map(|s| s.span())),
            ]
        };
        let kind = if ldap { "an LDAP map" } else { "a local-file map" };
        for (k, span) in misplaced {
            if let Some(span) = span {
                err(Some(span), key(k), format!("{k} does not apply to {kind}"));
            }
        }
        if !ldap {
            if m.path.as_ref().is_none_or(|p| p.get_ref().as_os_str().is_empty()) {
                err(Some(m.kind.span()), key("path"), "a local-file map needs a path".into());
            }
        } else {
            match &m.directory {
                None => err(Some(m.kind.span()), key("directory"), "an LDAP map needs a directory".into()),
                Some(d) if !dirs.iter().any(|x| x.name.get_ref() == d.get_ref()) => {
                    err(Some(d.span()), key("directory"), format!("no [[directory]] named {:?}", d.get_ref()))
                }
                Some(_) => {}
            }
            if let Some(p) = &m.search_pattern
                && let Err(e) = Pattern::parse(p.get_ref())
            {
                err(Some(p.span()), key("search_pattern"), e.to_string());
            }
            for (k, attribute) in [("host_attribute", &m.host_attribute), ("address_attribute", &m.address_attribute)] {
                if let Some(a) = attribute
                    && !is_attribute(a.get_ref())
                {
                    err(Some(a.span()), key(k), format!("{:?} is not an attribute name", a.get_ref()));
                }
            }
            for (k, dn) in [("base_dn", m.base_dn.as_ref()), ("required_group", m.required_group.as_ref())] {
                if let Some(dn) = dn
                    && !is_dn(dn.get_ref())
                {
                    err(Some(dn.span()), key(k), format!("{:?} is not a DN", dn.get_ref()));
                }
            }
        }
        if let Some(p) = &m.default_port
            && *p.get_ref() == 0
        {
            err(Some(p.span()), key("default_port"), "must be between 1 and 65535".into());
        }
        if let Some(d) = &m.default_domain
            && !is_domain(d.get_ref())
        {
            err(Some(d.span()), key("default_domain"), format!("{:?} is not a domain name", d.get_ref()));
        }
        let cache = &m.cache;
        if cache.stale_on_failure_secs > 0 && cache.positive_ttl_secs == 0 {
            let message = "stale_on_failure_secs needs positive_ttl_secs > 0 (nothing is cached to serve)";
            err(Some(m.name.span()), key("cache.stale_on_failure_secs"), message.into());
        }
        if cache.max_entries == 0 && (cache.positive_ttl_secs > 0 || cache.negative_ttl_secs > 0) {
            err(Some(m.name.span()), key("cache.max_entries"), "must be greater than 0 while caching is on".into());
        }
    }
    errors
}

/// Checks each section's `tls_ca_file` (relative to `config_dir`) and
/// resolves the sections into what the connectors run with. Run after
/// [`validate`]; problems come back the same way.
pub fn resolve(dirs: &[DirectorySection], config_dir: &Path) -> Result<Vec<DirectorySettings>, Vec<SettingsError>> {
    let mut resolved = Vec::new();
    let mut errors = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        match DirectorySettings::load(d, config_dir) {
            Ok(settings) => resolved.push(settings),
            Err(message) => errors.push(SettingsError {
                span: d.tls_ca_file.as_ref().map(|p| p.span()),
                key: format!("directory[{i}].tls_ca_file"),
                message,
            }),
        }
    }
    if errors.is_empty() { Ok(resolved) } else { Err(errors) }
}

/// The resolved settings of one connector (defaults applied); what
/// [`super::ldap::Connector`] runs with.
#[derive(Clone)]
pub struct DirectorySettings {
    pub name: String,
    pub server_type: ServerType,
    pub urls: Vec<String>,
    pub tls: TlsSettings,
    /// Service account (DN, password); None = anonymous.
    pub bind: Option<(String, String)>,
    pub timeout: Duration,
    pub account_base_dn: String,
    pub group_base_dn: String,
    pub pool_size: usize,
    pub retry_dead_after: Duration,
}

impl fmt::Debug for DirectorySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectorySettings")
            .field("name", &self.name)
            .field("server_type", &self.server_type)
            .field("urls", &self.urls)
            .field("tls", &self.tls)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DirectorySettings {
    /// Settings with the defaults, for tests and embedders.
    pub fn new(name: &str, server_type: ServerType, urls: &[&str], account_base_dn: &str) -> Self {
        Self {
            name: name.to_string(),
            server_type,
            urls: urls.iter().map(|u| u.to_string()).collect(),
            tls: TlsSettings::default(),
            bind: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            account_base_dn: account_base_dn.to_string(),
            group_base_dn: account_base_dn.to_string(),
            pool_size: DEFAULT_POOL_SIZE,
            retry_dead_after: Duration::from_secs(DEFAULT_RETRY_DEAD_AFTER_SECS),
        }
    }

    /// Resolves one section: defaults applied, `tls_ca_file` read relative
    /// to `config_dir`. The error is the CA file's problem.
    pub fn load(d: &DirectorySection, config_dir: &Path) -> Result<Self, String> {
        let ca = match &d.tls_ca_file {
            None => None,
            Some(p) if p.get_ref().as_os_str().is_empty() => return Err("must name a PEM file".into()),
            Some(p) => Some(TrustedCa::load(&config_dir.join(p.get_ref()))?),
        };
        let account_base_dn = d.account_base_dn.get_ref().clone();
        Ok(Self {
            name: d.name.get_ref().clone(),
            server_type: d.server_type,
            urls: d.urls.get_ref().iter().map(|u| u.get_ref().clone()).collect(),
            tls: TlsSettings { starttls: d.starttls.as_ref().is_some_and(|s| *s.get_ref()), ca },
            bind: d.bind_dn.as_ref().map(|dn| {
                (dn.get_ref().clone(), d.bind_password.as_ref().map(|p| p.get_ref().clone()).unwrap_or_default())
            }),
            timeout: Duration::from_secs(d.timeout_secs.as_ref().map_or(DEFAULT_TIMEOUT_SECS, |t| *t.get_ref())),
            group_base_dn: d.group_base_dn.as_ref().map_or_else(|| account_base_dn.clone(), |g| g.get_ref().clone()),
            account_base_dn,
            pool_size: d.pool_size.as_ref().map_or(DEFAULT_POOL_SIZE, |p| *p.get_ref()),
            retry_dead_after: Duration::from_secs(d.retry_dead_after_secs.unwrap_or(DEFAULT_RETRY_DEAD_AFTER_SECS)),
        })
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A loose DN check: `attr=value` RDNs separated by commas. The server has
/// the final word; this catches a filter or URL pasted in the wrong key.
pub(crate) fn is_dn(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && !s.starts_with('(')
        && super::ldap::dn::split_rdns(s)
            .is_some_and(|rdns| rdns.iter().all(|rdn| rdn.split_once('=').is_some_and(|(a, _)| is_attribute(a.trim()))))
}

fn is_attribute(s: &str) -> bool {
    let descr = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests;
