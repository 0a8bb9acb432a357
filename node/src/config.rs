//! The node's TOML configuration: one file per node, parsed strictly (unknown
//! keys are errors) and validated as a whole, so `check-config` can report
//! every problem at once with file, line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use proxies::{DEFAULT_CONNECT_TIMEOUT_SECS, Proxies, ProxyConfig};

use crate::directory::password;
use crate::directory::settings::{self, DirectorySection, DirectorySettings, UserMapKind, UserMapSection};
use crate::store::AccountId;

/// Longest command line accepted (SMTP, POP3), CRLF included. RFC 5321
/// requires at least 512; SMTP AUTH initial responses need more.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 4096;
/// Largest message accepted over SMTP (advertised with SIZE).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;
/// Most recipients in one SMTP transaction (RFC 5321 section 4.5.3.1.8).
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
/// A session idle this long is closed (RFC 5321 suggests 5 minutes).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
/// On shutdown, in-flight sessions get this long to finish.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
/// Concurrent logged-in IMAP plus POP3 sessions one account may hold.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 20;

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    /// The data directory, resolved against the config file's directory.
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Local domains, lower case.
    pub domains: Vec<String>,
    /// Local accounts by address, with their stored password hash.
    pub accounts: BTreeMap<AccountId, String>,
    pub smtp: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    /// LDAP connectors (`[[directory]]`), resolved: defaults applied, CA
    /// files read.
    pub directories: Vec<DirectorySettings>,
    /// User maps (`[[user_map]]`); local-file paths are relative to
    /// `config_dir`.
    pub user_maps: Vec<UserMapSection>,
    /// The config file's directory.
    pub config_dir: PathBuf,
    /// The user map the back-end services authenticate through (an LDAP
    /// kind); `None`: the local accounts.
    pub backend_auth_map: Option<String>,
    pub proxies: Proxies,
    /// `[hosts]`: names user maps use for back-ends, and their addresses.
    pub hosts: BTreeMap<String, String>,
}

/// Protocol limits shared by the line-based services.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_line_length: usize,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub idle_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub max_sessions_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
        }
    }
}

impl Limits {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

// The file as written. Spanned fields are the ones validation may reject.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node: RawNode,
    limits: Option<Spanned<Limits>>,
    #[serde(default, rename = "domain")]
    domains: Vec<RawDomain>,
    #[serde(default, rename = "account")]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    backend: RawBackend,
    #[serde(default, rename = "directory")]
    directories: Vec<DirectorySection>,
    #[serde(default, rename = "user_map")]
    user_maps: Vec<UserMapSection>,
    #[serde(default)]
    proxy: proxies::RawProxies,
    /// Host names in user maps (an LDAP `mailHost` of `node-a`) → addresses.
    #[serde(default)]
    hosts: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    data_dir: Spanned<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    address: Spanned<String>,
    password: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    smtp: Option<RawService>,
    pop3: Option<RawService>,
    imap: Option<RawService>,
    /// Authenticate back-end logins through this `[[user_map]]` (an LDAP kind).
    auth_map: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    listen: Spanned<String>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `account[1].address`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one file; Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }])),
        }
    }

    /// Parses and validates config text; `path` names the file in errors and
    /// anchors a relative `data_dir`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let mut report = Report { file: path, text, errors: Vec::new() };
        let raw: RawConfig = match toml::Deserializer::parse(text)
            .map_err(|e| (String::new(), e))
            .and_then(|de| serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.into_inner())))
        {
            Ok(raw) => raw,
            Err((key, e)) => {
                // Spanned<T> shows up as a private path segment; hide it.
                let key =
                    key.replace(".$__serde_spanned_private_value", "").replace("$__serde_spanned_private_value.", "");
                let key = if key == "." { String::new() } else { key };
                report.at(e.span(), &key, e.message().trim_end().to_string());
                return Err(ConfigErrors(report.errors));
            }
        };
        let config = report.validate(raw);
        report.errors.sort_by_key(|e| e.line);
        if report.errors.is_empty() { Ok(config) } else { Err(ConfigErrors(report.errors)) }
    }

    /// Whether `domain` (lower case) is one of this node's local domains.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }
}

/// Collects errors while validating one file.
struct Report<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Report<'_> {
    fn at(&mut self, span: Option<std::ops::Range<usize>>, key: &str, message: impl Into<String>) {
        let line = span.map(|s| self.text[..s.start.min(self.text.len())].matches('\n').count() + 1);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn validate(&mut self, raw: RawConfig) -> Config {
        let node_name = raw.node.name.get_ref().clone();
        if !is_token(&node_name) {
            self.at(Some(raw.node.name.span()), "node.name", "must be letters, digits, '.', '-' or '_'");
        }
        let data_dir = raw.node.data_dir.get_ref();
        if data_dir.as_os_str().is_empty() {
            self.at(Some(raw.node.data_dir.span()), "node.data_dir", "must not be empty");
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        let data_dir = base.join(data_dir);

        let limits = raw.limits.as_ref().map(|l| *l.get_ref()).unwrap_or_default();
        if let Some(spanned) = &raw.limits {
            self.check_limits(spanned);
        }

        let mut domains: Vec<String> = Vec::new();
        for (i, d) in raw.domains.iter().enumerate() {
            let name = d.name.get_ref().trim().to_ascii_lowercase();
            let key = format!("domain[{i}].name");
            if !is_domain(&name) {
                self.at(Some(d.name.span()), &key, format!("{:?} is not a domain name", d.name.get_ref()));
            } else if domains.contains(&name) {
                self.at(Some(d.name.span()), &key, format!("domain {name:?} is listed twice"));
            } else {
                domains.push(name);
            }
        }

        let mut accounts = BTreeMap::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            let key = format!("account[{i}].address");
            match parse_address(a.address.get_ref()) {
                None => self.at(
                    Some(a.address.span()),
                    &key,
                    format!("{:?} is not user@domain (user: letters, digits, '.', '-', '_', '+')", a.address.get_ref()),
                ),
                Some(id) if !domains.contains(&id.domain) => self.at(
                    Some(a.address.span()),
                    &key,
                    format!("domain {:?} is not a configured [[domain]]", id.domain),
                ),
                Some(id) if accounts.contains_key(&id) => {
                    self.at(Some(a.address.span()), &key, format!("account {id} is listed twice"))
                }
                Some(id) => {
                    if let Err(e) = password::validate(a.password.get_ref()) {
                        let key = format!("account[{i}].password");
                        self.at(Some(a.password.span()), &key, format!("unusable password hash: {e}"));
                    }
                    accounts.insert(id, a.password.get_ref().clone());
                }
            }
        }

        let services = [
            ("backend.smtp", raw.backend.smtp.as_ref()),
            ("backend.pop3", raw.backend.pop3.as_ref()),
            ("backend.imap", raw.backend.imap.as_ref()),
        ];
        let mut bound: Vec<(&str, SocketAddr)> = Vec::new();
        let mut addrs = Vec::new();
        for (name, service) in services {
            let addr = self.listen(&format!("{name}.listen"), service);
            if let (Some(addr), Some(service)) = (addr, service)
                && addr.port() != 0
            {
                if let Some((other, _)) = bound.iter().find(|(_, a)| *a == addr) {
                    let message = format!("{addr} is already used by {other}");
                    self.at(Some(service.listen.span()), &format!("{name}.listen"), message);
                }
                bound.push((name, addr));
            }
            addrs.push(addr);
        }
        let [smtp, pop3, imap] = addrs[..] else { unreachable!("three services") };
        self.directory_settings(&raw.directories, &raw.user_maps);
        let directories = settings::resolve(&raw.directories, base).unwrap_or_else(|errors| {
            errors.into_iter().for_each(|e| self.at(e.span, &e.key, e.message));
            Vec::new()
        });
        let proxies = self.proxies(&raw.proxy, &raw.user_maps);
        let backend_auth_map = raw.backend.auth_map.as_ref().map(|name| {
            match raw.user_maps.iter().find(|m| m.name.get_ref() == name.get_ref()) {
                None => self.at(
                    Some(name.span()),
                    "backend.auth_map",
                    format!("no [[user_map]] named {:?}", name.get_ref()),
                ),
                Some(m) if *m.kind.get_ref() == UserMapKind::LocalFile => self.at(
                    Some(name.span()),
                    "backend.auth_map",
                    "a local-file map holds no passwords: name an LDAP map",
                ),
                Some(_) => {}
            }
            name.get_ref().clone()
        });
        let backend_addrs: Vec<SocketAddr> = addrs.iter().flatten().copied().filter(|a| a.port() != 0).collect();
        for addr in proxies.listen_addrs().into_iter().filter(|a| a.port() != 0) {
            let others = proxies.listen_addrs().into_iter().filter(|a| *a == addr).count();
            if backend_addrs.contains(&addr) || others > 1 {
                self.at(None, "proxy", format!("{addr} is used by more than one service"));
            }
        }
        if services.iter().all(|(_, s)| s.is_none()) && proxies.listen_addrs().is_empty() {
            self.at(
                None,
                "backend",
                "no service configured: add [backend.smtp], [backend.pop3], [backend.imap] or a [proxy.*]",
            );
        }

        Config {
            node_name,
            data_dir,
            limits,
            domains,
            accounts,
            smtp,
            pop3,
            imap,
            directories,
            user_maps: raw.user_maps,
            config_dir: base.to_path_buf(),
            backend_auth_map,
            proxies,
            hosts: raw.hosts,
        }
    }

    fn check_limits(&mut self, limits: &Spanned<Limits>) {
        let l = limits.get_ref();
        let span = Some(limits.span());
        if !(512..=1024 * 1024).contains(&l.max_line_length) {
            self.at(span.clone(), "limits.max_line_length", "must be between 512 and 1048576 bytes");
        }
        if l.max_message_size == 0 {
            self.at(span.clone(), "limits.max_message_size", "must be greater than 0");
        }
        if l.max_recipients == 0 {
            self.at(span.clone(), "limits.max_recipients", "must be greater than 0");
        }
        if l.max_sessions_per_user == 0 {
            self.at(span.clone(), "limits.max_sessions_per_user", "must be greater than 0");
        }
        if l.idle_timeout_secs == 0 {
            self.at(span, "limits.idle_timeout_secs", "must be greater than 0");
        }
    }

    fn listen(&mut self, key: &str, service: Option<&RawService>) -> Option<SocketAddr> {
        let service = service?;
        match service.listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let msg = format!("{:?} is not an IP:port address", service.listen.get_ref());
                self.at(Some(service.listen.span()), key, msg);
                None
            }
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Parses and normalises `user@domain` (lower case, trimmed) into a
/// mailbox id whose parts are safe as path components.
pub fn parse_address(address: &str) -> Option<AccountId> {
    let address = address.trim().to_ascii_lowercase();
    let (user, domain) = address.rsplit_once('@')?;
    let user_ok = !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('.')
        && user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    (user_ok && is_domain(domain)).then(|| AccountId { user: user.to_string(), domain: domain.to_string() })
}

pub mod proxies;
#[cfg(test)]
mod tests;
