//! The directory layer's shared test table: every case runs against any
//! [`LdapOps`] implementation (ldap3, the seam client) and any server
//! loaded with fixtures/directory.ldif (OpenLDAP slapd, the embedded
//! server, over real or simulated sockets). Included by
//! node/tests/ldap_slapd.rs and sim/tests/ldap_connector.rs.
//!
//! Time only through tokio::time, so the same cases run in simulated time.
#![allow(dead_code)] // each including test file uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiermail_node::directory::ldap::{
    AuthMode, Authentication, BindResult, Connector, Entry, LdapConn, LdapError, LdapOps, Lookup, Search, TlsSettings,
};
use tiermail_node::directory::settings::{DirectorySettings, ServerType, UserMapSection};
use tiermail_node::directory::usermap::{AuthResult, Route, UserMap};
use tiermail_node::net::BoxFuture;
use tokio::time::Instant;

pub const BASE: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "admin-secret";
pub const MAIL_USERS: &str = "cn=mail-users,ou=groups,dc=example,dc=com";
/// uid, password, mailHost; one password scheme each (see the fixture).
pub const USERS: [(&str, &str, &str); 16] = [
    ("alice", "wonderland", "node-a"),
    ("bob", "builder", "node-b"),
    ("carol", "carol-pw", "node-c"),
    ("dave", "dave-pw", "node-a"),
    ("erin", "erin-pw", "node-b"),
    ("frank", "frank-pw", "node-z"),
    ("gina", "tiermail-Pa55", "node-c"),
    ("hank", "tiermail-Pa55", "node-a"),
    ("ivan", "tiermail-Pa55", "node-b"),
    ("judy", "tiermail-Pa55", "node-c"),
    ("kate", "tiermail-Pa55", "node-a"),
    ("liam", "tiermail-Pa55", "node-b"),
    ("mona", "tiermail-Pa55", "node-c"),
    ("nick", "tiermail-Pa55", "node-a"),
    ("jsmith", "jsmith-pw", "node-a"),
    ("rosa", "rosa-pw", "node-b"),
];
/// Users whose scheme ({PLAIN}, PBKDF2) slapd cannot check in a bind.
pub const NOT_FOR_SLAPD_BINDS: [&str; 2] = ["gina", "nick"];
/// Per-attempt timeout and dead-server back-off used by the cases.
pub const TIMEOUT: Duration = Duration::from_secs(1);
pub const BACKOFF: Duration = Duration::from_secs(1);
/// Logins that try to change the filter's shape.
pub const INJECTIONS: [&str; 7] = ["*)(uid=*", "*", "alice)(|(uid=*", "*)(|(objectClass=*", "al*", "\\2a", "alice\0"];

pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// Stops and starts the directory server under test.
pub trait ServerControl: Send + Sync {
    fn stop(&self) -> BoxFuture<'_, ()>;
    fn start(&self) -> BoxFuture<'_, ()>;
}

/// What a table run talks to.
pub struct Target {
    pub ops: Arc<dyn LdapOps>,
    /// The fixture directory.
    pub live: String,
    /// A URL where nothing listens (connections refused).
    pub dead: String,
    /// A URL that accepts connections and never answers.
    pub hang: String,
    pub control: Box<dyn ServerControl>,
    /// Whether the server checks every fixture scheme in a bind (ours
    /// does; slapd lacks {PLAIN} and PBKDF2).
    pub binds_every_scheme: bool,
}

type Case = for<'a> fn(&'a Target) -> BoxFuture<'a, ()>;

/// Every case, in order; each leaves the server running.
pub const CASES: [(&str, Case); 10] = [
    ("password_mode_checks_every_scheme", |t| Box::pin(password_mode_checks_every_scheme(t))),
    ("bind_mode_searches_then_binds", |t| Box::pin(bind_mode_searches_then_binds(t))),
    ("users_map_to_their_back_end", |t| Box::pin(users_map_to_their_back_end(t))),
    ("injected_logins_match_nobody", |t| Box::pin(injected_logins_match_nobody(t))),
    ("nested_groups_and_cycles", |t| Box::pin(nested_groups_and_cycles(t))),
    ("first_url_dead_second_used_dead_retried", |t| Box::pin(first_url_dead_second_used_dead_retried(t))),
    ("directory_down_is_unavailable_then_recovers", |t| Box::pin(directory_down_is_unavailable_then_recovers(t))),
    ("hung_server_times_out", |t| Box::pin(hung_server_times_out(t))),
    ("cache_answers_and_expires", |t| Box::pin(cache_answers_and_expires(t))),
    ("stale_on_failure_serves_recent_successes_only", |t| Box::pin(stale_on_failure(t))),
];

/// Runs every case; a failure names its case.
pub async fn run_all(target: &Target) {
    for (name, case) in CASES {
        eprintln!("case {name}");
        case(target).await;
    }
}

pub fn settings(urls: &[&str]) -> DirectorySettings {
    let mut s = DirectorySettings::new("fixture", ServerType::OpenLdap, urls, PEOPLE);
    s.bind = Some((ADMIN_DN.into(), ADMIN_PASSWORD.into()));
    s.group_base_dn = GROUPS.into();
    s.timeout = TIMEOUT;
    s.retry_dead_after = BACKOFF;
    s.pool_size = 2;
    s
}

pub fn connector(target: &Target) -> Connector {
    Connector::new(settings(&[&target.live]), target.ops.clone())
}

/// A user map section from TOML lines (name, directory and kind given).
pub fn map_section(kind: &str, extra: &str) -> UserMapSection {
    let text = format!("name = \"m\"\nkind = \"{kind}\"\ndirectory = \"fixture\"\n{extra}");
    UserMapSection::from_toml(&text).expect("user map section")
}

pub fn user_map(connector: &Connector, kind: &str, extra: &str) -> UserMap {
    let domains = ["example.com".to_string()];
    UserMap::ldap(&map_section(kind, extra), connector.clone(), &domains, [7; 32]).expect("valid map")
}

fn uid_filter(uid: &str) -> String {
    format!("(uid={})", tiermail_node::directory::ldap::filter::escape(uid))
}

fn mapped(host: &str, port: Option<u16>) -> Route {
    Route::Mapped { host: host.into(), port }
}

async fn password_mode_checks_every_scheme(t: &Target) {
    check_every_scheme(t, AuthMode::Password).await;
}

async fn bind_mode_searches_then_binds(t: &Target) {
    check_every_scheme(t, AuthMode::Bind).await;
}

async fn check_every_scheme(t: &Target, mode: AuthMode) {
    let c = connector(t);
    for (uid, password, host) in USERS {
        if mode == AuthMode::Bind && !t.binds_every_scheme && NOT_FOR_SLAPD_BINDS.contains(&uid) {
            let outcome = c.authenticate(mode, PEOPLE, &uid_filter(uid), &[], password).await;
            assert_eq!(outcome, Authentication::Rejected, "{uid}: the server cannot check this scheme");
            continue;
        }
        match c.authenticate(mode, PEOPLE, &uid_filter(uid), &["mailHost"], password).await {
            Authentication::Accepted(entry) => {
                assert_eq!(entry.first_str("mailHost"), Some(host), "{mode:?} {uid}");
                assert!(entry.values("userPassword").is_empty(), "the hash never leaves the connector");
            }
            other => panic!("{mode:?} {uid}: {other:?}"),
        }
        let wrong = c.authenticate(mode, PEOPLE, &uid_filter(uid), &[], &format!("{password}x")).await;
        assert_eq!(wrong, Authentication::Rejected, "{mode:?} {uid} with a wrong password");
    }
    // pat is disabled (pwdAccountLockedTime): the right password is refused.
    for (uid, password) in
        [("mallory", "anything"), ("mallory", ""), ("nobody", "wonderland"), ("alice", ""), ("pat", "pat-pw")]
    {
        let outcome = c.authenticate(mode, PEOPLE, &uid_filter(uid), &[], password).await;
        assert_eq!(outcome, Authentication::Rejected, "{mode:?} {uid} {password:?}");
    }
    // More than one match is nobody, even with a right password.
    let everyone = "(objectClass=inetOrgPerson)";
    assert_eq!(c.authenticate(mode, PEOPLE, everyone, &[], "wonderland").await, Authentication::Rejected);
    let map = user_map(&c, if mode == AuthMode::Bind { "ldap-bind" } else { "ldap-password" }, "");
    let AuthResult::Accepted(identity) = map.authenticate(" Alice@Example.COM ", "wonderland").await else {
        panic!("alice through the map")
    };
    assert_eq!(identity.login, "alice@example.com");
    assert_eq!(identity.dn, user_dn("alice"));
    assert_eq!(identity.host, Some(("node-a".into(), None)));
    assert_eq!(identity.address.as_deref(), Some("alice@example.com"));
    assert!(map.authenticate("bob", "builder").await.is_accepted(), "a bare login gets the domain");
    assert_eq!(map.authenticate("bob", "wrong").await, AuthResult::Rejected);
}

trait Accepted {
    fn is_accepted(&self) -> bool;
}
impl Accepted for AuthResult {
    fn is_accepted(&self) -> bool {
        matches!(self, AuthResult::Accepted(_))
    }
}

async fn users_map_to_their_back_end(t: &Target) {
    let c = connector(t);
    let map = user_map(&c, "ldap-password", "");
    for (uid, _, host) in USERS {
        assert_eq!(map.lookup(&format!("{uid}@example.com")).await, mapped(host, None), "{uid}");
    }
    assert_eq!(map.lookup("MALLORY").await, mapped("node-c", None), "no password, still routed");
    // Every name of a user finds the one entry and its canonical address.
    for name in ["jsmith", "JSmith@example.com", "john.smith@example.com", "jsmith@other.test"] {
        let entry = map.resolve(name).await.unwrap().unwrap_or_else(|| panic!("{name}"));
        assert_eq!(entry.address.as_deref(), Some("john.smith@example.com"), "{name}");
    }
    for name in ["rosa", "sales@example.com", "SALES@example.com"] {
        let entry = map.resolve(name).await.unwrap().unwrap_or_else(|| panic!("{name}"));
        assert_eq!((entry.address.as_deref(), entry.host), (Some("rosa@example.com"), Some(("node-b".into(), None))));
    }
    assert_eq!(map.resolve("sales@other.test").await.unwrap(), None, "an alias is one address, not a uid");
    // oscar has no mailHost: a valid login that no back-end holds.
    assert_eq!(map.lookup("oscar").await, Route::NotInMap);
    let AuthResult::Accepted(oscar) = map.authenticate("oscar", "oscar-pw").await else { panic!("oscar logs in") };
    assert_eq!(oscar.host, None);
    assert_eq!(map.lookup("nobody@example.com").await, Route::NotInMap);
    assert_eq!(map.lookup("").await, Route::NotInMap);
    let with_port = user_map(&c, "ldap-bind", "default_port = 1143\nsearch_pattern = \"(mail=%e)\"");
    assert_eq!(with_port.lookup("dave").await, mapped("node-a", Some(1143)));
    let no_host = user_map(&c, "ldap-bind", "host_attribute = \"roomNumber\"");
    assert_eq!(no_host.lookup("alice").await, Route::NotInMap, "an entry without the host attribute");
    let found = c.find_one(PEOPLE, "(uid=alice)", &["userPassword", "mail"]).await;
    let Lookup::Found(entry) = found else { panic!("{found:?}") };
    assert!(entry.values("userPassword").is_empty(), "lookups never return the hash");
    assert_eq!(c.find_one(PEOPLE, "(mail=*)", &[]).await, Lookup::NotFound, "ambiguous is nobody");
}

async fn injected_logins_match_nobody(t: &Target) {
    let c = connector(t);
    let maps = [
        user_map(&c, "ldap-password", ""),
        user_map(&c, "ldap-bind", ""),
        user_map(&c, "ldap-bind", "search_pattern = \"(uid=%u)\""),
    ];
    for map in &maps {
        for login in INJECTIONS {
            assert_eq!(map.lookup(login).await, Route::NotInMap, "{login:?}");
            for password in ["wonderland", "builder", "carol-pw"] {
                assert_eq!(map.authenticate(login, password).await, AuthResult::Rejected, "{login:?}");
            }
        }
    }
}

async fn nested_groups_and_cycles(t: &Target) {
    let c = connector(t);
    let groups = |dn: String| {
        let c = c.clone();
        async move {
            let mut g: Vec<String> = c.groups_of(&dn).await.expect("groups").iter().map(|g| g.to_lowercase()).collect();
            g.sort();
            g
        }
    };
    assert_eq!(groups(user_dn("alice")).await, [MAIL_USERS]);
    assert_eq!(groups(user_dn("carol")).await, [MAIL_USERS, "cn=staff,ou=groups,dc=example,dc=com"]);
    let three_deep = [MAIL_USERS, "cn=staff,ou=groups,dc=example,dc=com", "cn=team,ou=groups,dc=example,dc=com"];
    assert_eq!(groups(user_dn("hank")).await, three_deep, "team inside staff inside mail-users");
    assert!(c.is_member(&user_dn("hank"), MAIL_USERS).await.unwrap());
    assert_eq!(groups(user_dn("erin")).await, Vec::<String>::new());
    assert!(c.is_member(&user_dn("bob"), MAIL_USERS).await.unwrap(), "member value spelled differently");
    assert!(c.is_member(&user_dn("dave"), "CN=Mail-Users, OU=Groups, DC=example, DC=com").await.unwrap());
    assert!(!c.is_member(&user_dn("erin"), MAIL_USERS).await.unwrap());
    let cycle = groups("cn=loop-a,ou=groups,dc=example,dc=com".into()).await;
    assert_eq!(cycle, ["cn=loop-b,ou=groups,dc=example,dc=com"], "the cycle ends");

    let map = user_map(&c, "ldap-password", &format!("required_group = \"{MAIL_USERS}\""));
    assert!(map.authenticate("carol", "carol-pw").await.is_accepted(), "member through staff");
    assert_eq!(map.authenticate("erin", "erin-pw").await, AuthResult::Rejected, "not in the group");
    assert_eq!(map.lookup("erin").await, Route::NotInMap);
    assert_eq!(map.lookup("dave").await, mapped("node-a", None));
}

/// Wraps an implementation and records what the connector asks of it.
pub struct CountingOps {
    inner: Arc<dyn LdapOps>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl CountingOps {
    pub fn new(inner: Arc<dyn LdapOps>) -> Arc<Self> {
        Arc::new(Self { inner, log: Arc::default() })
    }

    /// Takes the log so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl LdapOps for CountingOps {
    fn connect<'a>(
        &'a self,
        url: &'a str,
        tls: &'a TlsSettings,
    ) -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(format!("connect {url}"));
            let inner = self.inner.connect(url, tls).await?;
            Ok(Box::new(CountingConn { inner, log: self.log.clone() }) as Box<dyn LdapConn>)
        })
    }
}

struct CountingConn {
    inner: Box<dyn LdapConn>,
    log: Arc<Mutex<Vec<String>>>,
}

impl LdapConn for CountingConn {
    fn simple_bind<'a>(&'a mut self, dn: &'a str, password: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>> {
        self.log.lock().unwrap().push(format!("bind {dn}"));
        self.inner.simple_bind(dn, password)
    }

    fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>> {
        self.log.lock().unwrap().push(format!("search {}", search.filter));
        self.inner.search(search)
    }

    fn unbind(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.inner.unbind()
    }
}

fn connects(log: &[String]) -> Vec<&str> {
    log.iter().filter_map(|l| l.strip_prefix("connect ")).collect()
}

async fn first_url_dead_second_used_dead_retried(t: &Target) {
    let ops = CountingOps::new(t.ops.clone());
    let c = Connector::new(settings(&[&t.dead, &t.live]), ops.clone());
    let alice = uid_filter("alice");
    assert!(matches!(c.find_one(PEOPLE, &alice, &[]).await, Lookup::Found(_)));
    assert_eq!(connects(&ops.take()), [t.dead.as_str(), t.live.as_str()], "dead one first, then the next");

    // Within the back-off the dead server is skipped: a user bind needs a
    // new connection, which goes straight to the live server.
    let bound = c.authenticate(AuthMode::Bind, PEOPLE, &alice, &[], "wonderland").await;
    assert!(matches!(bound, Authentication::Accepted(_)), "{bound:?}");
    assert_eq!(connects(&ops.take()), [t.live.as_str()]);

    // After the back-off the preferred server is tried again.
    tokio::time::sleep(BACKOFF + Duration::from_millis(100)).await;
    assert!(matches!(c.find_one(PEOPLE, &alice, &[]).await, Lookup::Found(_)));
    assert_eq!(connects(&ops.take()), [t.dead.as_str(), t.live.as_str()]);
}

async fn directory_down_is_unavailable_then_recovers(t: &Target) {
    let c = connector(t);
    let no_cache = "[cache]\npositive_ttl_secs = 0\nnegative_ttl_secs = 0";
    let password_map = user_map(&c, "ldap-password", no_cache);
    let bind_map = user_map(&c, "ldap-bind", no_cache);
    assert_eq!(password_map.lookup("alice").await, mapped("node-a", None));
    assert!(bind_map.authenticate("alice", "wonderland").await.is_accepted());

    t.control.stop().await;
    for map in [&password_map, &bind_map] {
        assert!(matches!(map.lookup("alice").await, Route::Unavailable(_)), "never NotInMap while down");
        assert!(matches!(map.lookup("nobody").await, Route::Unavailable(_)));
        for password in ["wonderland", "wrong"] {
            let outcome = map.authenticate("alice", password).await;
            assert!(matches!(outcome, AuthResult::Unavailable(_)), "never Rejected nor Accepted: {outcome:?}");
        }
    }
    assert!(c.groups_of(&user_dn("carol")).await.is_err());

    t.control.start().await;
    // The same connector and maps recover by themselves.
    assert_eq!(password_map.lookup("alice").await, mapped("node-a", None));
    assert!(bind_map.authenticate("alice", "wonderland").await.is_accepted());
    assert_eq!(bind_map.authenticate("alice", "wrong").await, AuthResult::Rejected);
}

async fn hung_server_times_out(t: &Target) {
    let c = Connector::new(settings(&[&t.hang]), t.ops.clone());
    let started = Instant::now();
    let outcome = c.find_one(PEOPLE, "(uid=alice)", &[]).await;
    let took = started.elapsed();
    assert!(matches!(outcome, Lookup::Unavailable(_)), "{outcome:?}");
    assert!(took >= TIMEOUT && took < TIMEOUT * 2, "answered after {took:?}");

    let map = user_map(&c, "ldap-bind", "");
    assert!(matches!(map.authenticate("alice", "wonderland").await, AuthResult::Unavailable(_)));

    // A hung first server costs one timeout, then the next one answers.
    let c = Connector::new(settings(&[&t.hang, &t.live]), t.ops.clone());
    let started = Instant::now();
    assert!(matches!(c.find_one(PEOPLE, "(uid=alice)", &[]).await, Lookup::Found(_)));
    assert!(started.elapsed() < TIMEOUT * 2, "took {:?}", started.elapsed());
    let started = Instant::now();
    assert!(matches!(c.find_one(PEOPLE, "(uid=bob)", &[]).await, Lookup::Found(_)));
    assert!(started.elapsed() < TIMEOUT, "the hung server is skipped during the back-off");
}

async fn cache_answers_and_expires(t: &Target) {
    let ops = CountingOps::new(t.ops.clone());
    let c = Connector::new(settings(&[&t.live]), ops.clone());
    let map = user_map(&c, "ldap-password", "[cache]\npositive_ttl_secs = 3\nnegative_ttl_secs = 1");
    let searches = |log: Vec<String>| log.iter().filter(|l| l.starts_with("search")).count();

    assert_eq!(map.lookup("alice").await, mapped("node-a", None));
    assert_eq!(map.lookup("nobody").await, Route::NotInMap);
    assert!(map.authenticate("bob", "builder").await.is_accepted());
    assert_eq!(map.authenticate("bob", "wrong").await, AuthResult::Rejected);
    assert_eq!(searches(ops.take()), 4);

    assert_eq!(map.lookup("ALICE").await, mapped("node-a", None));
    assert_eq!(map.lookup("nobody").await, Route::NotInMap);
    assert!(map.authenticate("bob", "builder").await.is_accepted());
    assert_eq!(map.authenticate("bob", "wrong").await, AuthResult::Rejected);
    assert_eq!(map.lookup("bob").await, mapped("node-b", None), "a login also caches the route");
    assert_eq!(searches(ops.take()), 0, "all from the cache");
    assert_eq!(map.authenticate("bob", "another-wrong").await, AuthResult::Rejected);
    assert_eq!(searches(ops.take()), 1, "a different password is a different key");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(map.lookup("nobody").await, Route::NotInMap);
    assert_eq!(map.lookup("alice").await, mapped("node-a", None));
    assert_eq!(searches(ops.take()), 1, "negative answers expired, positive ones not yet");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(map.lookup("alice").await, mapped("node-a", None));
    assert_eq!(searches(ops.take()), 1, "positive answers expired");
    map.reload();
    assert!(map.authenticate("bob", "builder").await.is_accepted());
    assert_eq!(searches(ops.take()), 1, "reload forgets cached logins");
}

async fn stale_on_failure(t: &Target) {
    let c = connector(t);
    let cache = "[cache]\npositive_ttl_secs = 1\nnegative_ttl_secs = 1\nstale_on_failure_secs = 60";
    let map = user_map(&c, "ldap-bind", cache);
    let strict = user_map(&c, "ldap-bind", "[cache]\npositive_ttl_secs = 1");
    assert_eq!(map.lookup("alice").await, mapped("node-a", None));
    assert!(map.authenticate("alice", "wonderland").await.is_accepted());
    assert_eq!(map.authenticate("carol", "wrong").await, AuthResult::Rejected);
    assert!(strict.authenticate("alice", "wonderland").await.is_accepted());

    t.control.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(map.lookup("alice").await, mapped("node-a", None), "stale route while down");
    assert!(map.authenticate("alice", "wonderland").await.is_accepted(), "the password that last worked");
    let wrong = map.authenticate("alice", "guess").await;
    assert!(matches!(wrong, AuthResult::Unavailable(_)), "never a pass for another password: {wrong:?}");
    assert!(matches!(map.authenticate("carol", "wrong").await, AuthResult::Unavailable(_)), "negatives not stale");
    assert!(matches!(map.lookup("bob").await, Route::Unavailable(_)), "never cached");
    assert!(matches!(strict.authenticate("alice", "wonderland").await, AuthResult::Unavailable(_)), "off by default");
    t.control.start().await;
    assert!(map.authenticate("alice", "wonderland").await.is_accepted());
}
