//! User maps (seed "Mapping Setup"): where a user's mailbox lives, and for
//! the LDAP kinds whether their password is right. A map is a local file
//! (`user host[:port]` lines, see [`super::local_map`]), or one LDAP
//! connector with one base DN, one search pattern and the attribute naming
//! the back-end host. Answers are cached (see [`super::cache`]).
//!
//! Local-file maps read their file through std::fs at the binary's edge;
//! simulations use LDAP maps only.

use std::path::Path;

use tracing::{error, info, warn};

use super::cache::{Cache, Cached, CredentialKey};
use super::ldap::filter::{Login, Pattern, PatternError};
use super::ldap::{AuthMode, Authentication, Connector, Entry, Lookup, Unavailable};
use super::local_map::{LocalMapFile, MapError};
use super::settings::{
    DEFAULT_AD_PATTERN, DEFAULT_ADDRESS_ATTRIBUTE, DEFAULT_HOST_ATTRIBUTE, DEFAULT_OPENLDAP_PATTERN, ServerType,
    UserMapKind, UserMapSection,
};

/// Where a user's sessions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The back-end host holding the account; the port when the map names
    /// one or the map has a `default_port` (else the service's own).
    Mapped { host: String, port: Option<u16> },
    /// The map does not know the user (the service's failover address).
    NotInMap,
    /// The map cannot answer now: a temporary failure.
    Unavailable(Unavailable),
}

/// What the map knows of a user, whatever name or alias found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// The back-end host holding the mailbox, and its port when the map
    /// names one (None: the entry names no host, not in the map for routing).
    pub host: Option<(String, Option<u16>)>,
    /// The canonical address that names the mailbox (the entry's
    /// `address_attribute`, lower-cased; a local-file map's own key). None
    /// when the entry has none.
    pub address: Option<String>,
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The normalised login (`user@domain`, or the bare user).
    pub login: String,
    /// The user's directory entry.
    pub dn: String,
    /// The user's back-end host, found in the same search (None: the entry
    /// names no host, so the user is not in the map for routing).
    pub host: Option<(String, Option<u16>)>,
    /// The user's canonical address, as in [`MapEntry::address`].
    pub address: Option<String>,
}

/// The answer to a login through a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Accepted(Identity),
    /// Permanent "authentication failed" (wrong password, unknown user, ...).
    Rejected,
    /// Temporary "try again": the directory could not decide.
    Unavailable(Unavailable),
}

/// One `[[user_map]]`, ready to answer.
pub struct UserMap {
    name: String,
    default_domain: Option<String>,
    default_port: Option<u16>,
    source: Source,
}

enum Source {
    LocalFile(LocalMapFile),
    Ldap(Box<LdapMap>),
}

struct LdapMap {
    connector: Connector,
    mode: AuthMode,
    base_dn: String,
    pattern: Pattern,
    host_attribute: String,
    address_attribute: String,
    required_group: Option<String>,
    routes: Cache<String, MapEntry>,
    logins: Cache<CredentialKey, Identity>,
    salt: [u8; 32],
}

impl UserMap {
    /// A local-file map reading `path` (already resolved against the config
    /// file's directory). A missing or broken file is an error here.
    pub fn local_file(
        section: &UserMapSection,
        path: &Path,
        node_domains: &[String],
    ) -> Result<UserMap, Vec<MapError>> {
        Ok(UserMap {
            name: section.name.get_ref().clone(),
            default_domain: default_domain(section, node_domains),
            default_port: section.default_port.as_ref().map(|p| *p.get_ref()),
            source: Source::LocalFile(LocalMapFile::load(path)?),
        })
    }

    /// An LDAP map on `connector` (the section's `directory`). `salt` keys
    /// the login cache: random per process, supplied by the binary's edge.
    pub fn ldap(
        section: &UserMapSection,
        connector: Connector,
        node_domains: &[String],
        salt: [u8; 32],
    ) -> Result<UserMap, PatternError> {
        let mode = match section.kind.get_ref() {
            UserMapKind::LdapBind => AuthMode::Bind,
            _ => AuthMode::Password,
        };
        let default_pattern = match connector.server_type() {
            ServerType::OpenLdap => DEFAULT_OPENLDAP_PATTERN,
            ServerType::ActiveDirectory => DEFAULT_AD_PATTERN,
        };
        let pattern = Pattern::parse(section.search_pattern.as_ref().map_or(default_pattern, |p| p.get_ref()))?;
        let base_dn = section
            .base_dn
            .as_ref()
            .map_or_else(|| connector.settings().account_base_dn.clone(), |b| b.get_ref().clone());
        let ldap = LdapMap {
            mode,
            base_dn,
            pattern,
            host_attribute: section.host_attribute.as_ref().map_or(DEFAULT_HOST_ATTRIBUTE, |a| a.get_ref()).to_string(),
            address_attribute: section
                .address_attribute
                .as_ref()
                .map_or(DEFAULT_ADDRESS_ATTRIBUTE, |a| a.get_ref())
                .to_string(),
            required_group: section.required_group.as_ref().map(|g| g.get_ref().clone()),
            routes: Cache::new(&section.cache),
            logins: Cache::new(&section.cache),
            salt,
            connector,
        };
        Ok(UserMap {
            name: section.name.get_ref().clone(),
            default_domain: default_domain(section, node_domains),
            default_port: section.default_port.as_ref().map(|p| *p.get_ref()),
            source: Source::Ldap(Box::new(ldap)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this map can check passwords (the LDAP kinds).
    pub fn can_authenticate(&self) -> bool {
        matches!(self.source, Source::Ldap(_))
    }

    /// Re-reads a local file now, or forgets cached LDAP answers (SIGHUP).
    pub fn reload(&self) {
        match &self.source {
            Source::LocalFile(file) => file.reload(),
            Source::Ldap(ldap) => {
                ldap.routes.clear();
                ldap.logins.clear();
                info!(map = %self.name, "user map cache cleared");
            }
        }
    }

    /// Where `user`'s sessions go.
    pub async fn lookup(&self, user: &str) -> Route {
        let route = self.find_route(user).await;
        #[cfg(feature = "sim-bugs")]
        if let Route::Mapped { host, port } = &route
            && crate::bugs::active(crate::bugs::Bug::StaleRoute)
        {
            let (host, port) = crate::bugs::swap_route(host.clone(), *port);
            return Route::Mapped { host, port };
        }
        route
    }

    async fn find_route(&self, user: &str) -> Route {
        match self.resolve(user).await {
            Ok(Some(MapEntry { host: Some((host, port)), .. })) => Route::Mapped { host, port },
            Ok(_) => Route::NotInMap,
            Err(e) => Route::Unavailable(e),
        }
    }

    /// What the map knows of `user` (a login, address or alias): None when
    /// it matches nobody; an error when the map cannot answer now.
    pub async fn resolve(&self, user: &str) -> Result<Option<MapEntry>, Unavailable> {
        let Some(login) = Login::normalise(user, self.default_domain.as_deref()) else {
            return Ok(None);
        };
        let key = login.address();
        let ldap = match &self.source {
            Source::LocalFile(file) => {
                return Ok(file.lookup(&key).map(|(host, port)| MapEntry {
                    host: Some((host, port.or(self.default_port))),
                    address: Some(key),
                }));
            }
            Source::Ldap(ldap) => ldap,
        };
        match ldap.routes.fresh(&key) {
            Some(Cached::Positive(entry)) => return Ok(Some(entry)),
            Some(Cached::Negative) => return Ok(None),
            None => {}
        }
        let filter = ldap.pattern.substitute(&login);
        let attrs = [ldap.host_attribute.as_str(), ldap.address_attribute.as_str()];
        let found = match ldap.connector.find_one(&ldap.base_dn, &filter, &attrs).await {
            Lookup::Found(entry) => self.admitted(ldap, &entry).await.map(|ok| ok.then_some(entry)),
            Lookup::NotFound => Ok(None),
            Lookup::Unavailable(e) => Err(e),
        };
        match found {
            Ok(Some(entry)) => {
                let entry = self.map_entry(ldap, &entry);
                ldap.routes.put_positive(key, entry.clone());
                Ok(Some(entry))
            }
            Ok(None) => {
                ldap.routes.put_negative(key);
                Ok(None)
            }
            // Only a user with a home is served stale, never a "not here".
            Err(e) => match ldap.routes.stale(&key) {
                Some(entry) if entry.host.is_some() => {
                    warn!(map = %self.name, user = %key, "directory unavailable; serving a stale route");
                    Ok(Some(entry))
                }
                _ => Err(e),
            },
        }
    }

    /// Checks `user`'s password (LDAP kinds; a local-file map rejects).
    pub async fn authenticate(&self, user: &str, password: &str) -> AuthResult {
        let ldap = match &self.source {
            Source::Ldap(ldap) => ldap,
            Source::LocalFile(_) => {
                error!(map = %self.name, "a local-file user map holds no passwords; login rejected");
                return AuthResult::Rejected;
            }
        };
        let Some(login) = Login::normalise(user, self.default_domain.as_deref()) else {
            return AuthResult::Rejected;
        };
        if password.is_empty() {
            return AuthResult::Rejected;
        }
        let address = login.address();
        let key = CredentialKey::new(&ldap.salt, &address, password);
        match ldap.logins.fresh(&key) {
            Some(Cached::Positive(identity)) => return AuthResult::Accepted(identity),
            Some(Cached::Negative) => return AuthResult::Rejected,
            None => {}
        }
        let filter = ldap.pattern.substitute(&login);
        let attrs = [ldap.host_attribute.as_str(), ldap.address_attribute.as_str()];
        let outcome = match ldap.connector.authenticate(ldap.mode, &ldap.base_dn, &filter, &attrs, password).await {
            Authentication::Accepted(entry) => self.admitted(ldap, &entry).await.map(|ok| ok.then_some(entry)),
            Authentication::Rejected => Ok(None),
            Authentication::Unavailable(e) => Err(e),
        };
        match outcome {
            Ok(Some(entry)) => {
                let found = self.map_entry(ldap, &entry);
                let identity = Identity {
                    login: address.clone(),
                    dn: entry.dn,
                    host: found.host.clone(),
                    address: found.address.clone(),
                };
                ldap.routes.put_positive(address, found);
                ldap.logins.put_positive(key, identity.clone());
                AuthResult::Accepted(identity)
            }
            Ok(None) => {
                ldap.logins.put_negative(key);
                AuthResult::Rejected
            }
            Err(e) => match ldap.logins.stale(&key) {
                Some(identity) => {
                    warn!(map = %self.name, user = %address, "directory unavailable; accepting a recently verified login");
                    AuthResult::Accepted(identity)
                }
                #[cfg(feature = "sim-bugs")]
                None if crate::bugs::active(crate::bugs::Bug::AuthPassesWhenDirectoryErrors) => {
                    AuthResult::Accepted(Identity { login: address, dn: String::new(), host: None, address: None })
                }
                None => AuthResult::Unavailable(e),
            },
        }
    }

    /// Whether the entry passes the map's `required_group`.
    async fn admitted(&self, ldap: &LdapMap, entry: &Entry) -> Result<bool, Unavailable> {
        match &ldap.required_group {
            None => Ok(true),
            Some(group) => ldap.connector.is_member(&entry.dn, group).await,
        }
    }

    fn map_entry(&self, ldap: &LdapMap, entry: &Entry) -> MapEntry {
        let address = entry.first_str(&ldap.address_attribute).map(|a| a.trim().to_lowercase());
        MapEntry { host: self.host_of(ldap, entry), address }
    }

    /// The entry's back-end host; None (logged) when missing or unusable.
    fn host_of(&self, ldap: &LdapMap, entry: &Entry) -> Option<(String, Option<u16>)> {
        let value = entry.first_str(&ldap.host_attribute)?;
        match parse_host(value) {
            Some((host, port)) => Some((host, port.or(self.default_port))),
            None => {
                warn!(map = %self.name, dn = %entry.dn, value, "unusable {} value; user treated as not in the map", ldap.host_attribute);
                None
            }
        }
    }
}

fn default_domain(section: &UserMapSection, node_domains: &[String]) -> Option<String> {
    match (&section.default_domain, node_domains) {
        (Some(d), _) => Some(d.get_ref().to_ascii_lowercase()),
        (None, [only]) => Some(only.clone()),
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
pub fn parse_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(port(p)?)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match value.split_once(':') {
            Some((host, p)) if !p.contains(':') => (host, Some(port(p)?)),
            _ => (value, None),
        }
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    ok.then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ldap::{BindResult, LdapConn, LdapError, LdapOps, Search, TlsSettings};
    use crate::directory::settings::DirectorySettings;
    use crate::net::BoxFuture;
    use std::sync::{Arc, Mutex};

    const JOHN: &str = "CN=Doe\\, John,OU=Staff,DC=corp,DC=example";

    /// A scripted Active Directory: John is found by sAMAccountName or
    /// userPrincipalName, binds with "pw", and is in two groups through
    /// the in-chain rule. Records every filter.
    #[derive(Default)]
    struct FakeAd {
        filters: Arc<Mutex<Vec<String>>>,
    }

    struct FakeConn(Arc<Mutex<Vec<String>>>);

    impl LdapOps for FakeAd {
        fn connect<'a>(
            &'a self,
            _: &'a str,
            _: &'a TlsSettings,
        ) -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>> {
            Box::pin(async move { Ok(Box::new(FakeConn(self.filters.clone())) as Box<dyn LdapConn>) })
        }
    }

    impl LdapConn for FakeConn {
        fn simple_bind<'a>(&'a mut self, dn: &'a str, pw: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>> {
            let ok = (dn == "CN=svc,DC=corp,DC=example" && pw == "svc") || (dn == JOHN && pw == "pw");
            Box::pin(async move { Ok(if ok { BindResult::Ok } else { BindResult::InvalidCredentials }) })
        }

        fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>> {
            self.0.lock().unwrap().push(search.filter.to_string());
            let f = search.filter;
            let mut found = Vec::new();
            if f.contains("(sAMAccountName=jdoe)") || f.contains("(userPrincipalName=jdoe@corp.example)") {
                let mut john = Entry { dn: JOHN.into(), ..Entry::default() };
                john.push("mailHost", [b"node-b:1143".to_vec()]);
                john.push("userAccountControl", [b"512".to_vec()]);
                found.push(john);
            } else if f.contains(":1.2.840.113556.1.4.1941:=") {
                for g in ["CN=Mail,OU=Groups,DC=corp,DC=example", "CN=All,OU=Groups,DC=corp,DC=example"] {
                    found.push(Entry { dn: g.into(), ..Entry::default() });
                }
            }
            Box::pin(async move { Ok(found) })
        }

        fn unbind(self: Box<Self>) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn active_directory_maps_by_account_name_and_resolves_groups_in_chain() {
        let ops = Arc::new(FakeAd::default());
        let filters = ops.filters.clone();
        let mut settings =
            DirectorySettings::new("ad", ServerType::ActiveDirectory, &["ldap://dc1"], "DC=corp,DC=example");
        settings.bind = Some(("CN=svc,DC=corp,DC=example".into(), "svc".into()));
        let connector = Connector::new(settings, ops);
        let section = UserMapSection::from_toml(
            "name = \"ad\"\nkind = \"ldap-bind\"\ndirectory = \"ad\"\nrequired_group = \"cn=mail,ou=groups,dc=corp,dc=example\"",
        )
        .unwrap();
        let map = UserMap::ldap(&section, connector.clone(), &["corp.example".into()], [0; 32]).unwrap();

        assert_eq!(map.lookup("JDoe").await, Route::Mapped { host: "node-b".into(), port: Some(1143) });
        assert!(matches!(map.authenticate("jdoe@corp.example", "pw").await, AuthResult::Accepted(_)));
        assert_eq!(map.authenticate("jdoe@corp.example", "wrong").await, AuthResult::Rejected);
        assert_eq!(map.lookup("someone-else").await, Route::NotInMap);
        let filters = filters.lock().unwrap().clone();
        assert_eq!(filters[0], "(&(objectClass=user)(|(sAMAccountName=jdoe)(userPrincipalName=jdoe@corp.example)))");
        assert_eq!(
            filters[1],
            "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Doe\\5c, John,OU=Staff,DC=corp,DC=example))",
            "one search resolves nesting; the DN is escaped"
        );
        assert_eq!(connector.groups_of(JOHN).await.unwrap().len(), 2);
    }

    fn local_section(extra: &str) -> UserMapSection {
        UserMapSection::from_toml(&format!("name = \"file\"\nkind = \"local-file\"\npath = \"users.map\"\n{extra}"))
            .unwrap()
    }

    fn touch(path: &Path, text: &str, mtime_secs: u64) {
        std::fs::write(path, text).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime_secs);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn local_file_maps_route_and_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.map");
        touch(&path, "# users\nalice@example.com node-a\nbob@example.com node-b:1143\n", 1_000);
        let map = UserMap::local_file(&local_section("default_port = 143"), &path, &["example.com".into()]).unwrap();
        assert_eq!(map.lookup(" Alice ").await, Route::Mapped { host: "node-a".into(), port: Some(143) });
        assert_eq!(map.lookup("bob@example.com").await, Route::Mapped { host: "node-b".into(), port: Some(1143) });
        assert_eq!(map.lookup("carol").await, Route::NotInMap);
        assert_eq!(map.lookup("*").await, Route::NotInMap);
        assert!(!map.can_authenticate());
        assert_eq!(map.authenticate("alice", "anything").await, AuthResult::Rejected);

        touch(&path, "alice@example.com node-c\n", 2_000);
        let before = Route::Mapped { host: "node-a".into(), port: Some(143) };
        assert_eq!(map.lookup("alice").await, before, "the file is looked at no more than once a second");
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(
            map.lookup("alice").await,
            Route::Mapped { host: "node-c".into(), port: Some(143) },
            "mtime changed"
        );

        touch(&path, "alice@example.com node-a\n", 3_000);
        map.reload();
        assert_eq!(
            map.lookup("alice").await,
            Route::Mapped { host: "node-a".into(), port: Some(143) },
            "explicit reload"
        );
    }

    #[test]
    fn a_broken_local_file_is_refused_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.map");
        std::fs::write(&path, "alice node-a\nbob\ncarol node-c:99999\n").unwrap();
        let Err(errors) = UserMap::local_file(&local_section(""), &path, &[]) else { panic!("accepted a broken file") };
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        assert!(errors[0].to_string().starts_with(&format!("{}:2: ", path.display())), "{}", errors[0]);
    }

    #[test]
    fn host_values_are_parsed() {
        assert_eq!(parse_host("node-a"), Some(("node-a".into(), None)));
        assert_eq!(parse_host(" node-b:1430 "), Some(("node-b".into(), Some(1430))));
        assert_eq!(parse_host("[::1]:143"), Some(("::1".into(), Some(143))));
        assert_eq!(parse_host("fe80::1"), Some(("fe80::1".into(), None)));
        for bad in ["", "node:0", "node:x", "a/b", "[::1", "[::1]x"] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }
}
