//! The embedded LDAP server through real sockets (the `ldap3` client,
//! OpenLDAP's ldapsearch/ldapwhoami) and through turmoil's (a minimal
//! client on ldap3_proto's codec), serving the fixture directory.
//!
//! ldapsearch and ldapwhoami come from Debian's ldap-utils. On a machine
//! without them those tests say so and pass, unless TIERMAIL_REQUIRE_PEERS
//! is set.

use std::collections::HashSet;
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3::exop::{WhoAmI, WhoAmIResp};
use ldap3::{Ldap, LdapConnAsync, Scope, SearchEntry, SearchOptions, ldap_escape};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapFilter, LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope, SaslCredentials,
};
use tiermail_node::net::{Net, SimNet, Stream, TokioNet};
use tiermail_node::shutdown::{Shutdown, ShutdownTrigger};
use tiermail_sim::ldap_server::{
    Counters, Directory, DirectoryControl, FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PASSWORD, Mode, ServerConfig, serve,
};
use tiermail_sim::trace;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const ALICE: &str = "uid=alice,ou=people,dc=example,dc=com";
const USERS: [(&str, &str, &str); 6] = [
    ("alice", "wonderland", "node-a"),
    ("bob", "builder", "node-b"),
    ("carol", "carol-pw", "node-c"),
    ("dave", "dave-pw", "node-a"),
    ("erin", "erin-pw", "node-b"),
    ("frank", "frank-pw", "node-z"),
];

fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// A server on 127.0.0.1 with real sockets (it stops when dropped, as the trigger goes).
struct RealServer {
    addr: String,
    control: DirectoryControl,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl RealServer {
    async fn start(config: ServerConfig) -> Self {
        let listener = TokioNet.bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let control = DirectoryControl::new();
        let (trigger, shutdown) = Shutdown::new();
        let directory = Arc::new(Directory::fixture());
        let task = tokio::spawn(serve(listener, directory, config, control.clone(), shutdown));
        Self { addr, control, trigger, task }
    }

    async fn ldap(&self) -> Ldap {
        let (conn, ldap) = LdapConnAsync::new(&format!("ldap://{}", self.addr)).await.expect("connect");
        ldap3::drive!(conn);
        ldap
    }

    async fn stop(self) {
        self.trigger.shut_down();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("serve returns").unwrap();
    }
}

async fn search(ldap: &mut Ldap, base: &str, filter: &str, attrs: &[&str]) -> (Vec<SearchEntry>, u32) {
    let result = ldap.search(base, Scope::Subtree, filter, attrs.to_vec()).await.expect("search runs");
    let entries = result.0.into_iter().map(SearchEntry::construct).collect();
    (entries, result.1.rc)
}

#[tokio::test]
async fn every_user_binds_with_their_password_only_whatever_the_scheme() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    for (uid, password, _) in USERS {
        assert_eq!(ldap.simple_bind(&user_dn(uid), password).await.unwrap().rc, 0, "{uid}");
        assert_eq!(ldap.simple_bind(&user_dn(uid), "wrong").await.unwrap().rc, 49, "{uid} with a wrong password");
    }
    assert_eq!(ldap.simple_bind(ALICE, "Wonderland").await.unwrap().rc, 49, "passwords are case-sensitive");
    assert_eq!(ldap.simple_bind("UID=Alice, OU=People, DC=Example, DC=Com", "wonderland").await.unwrap().rc, 0);
    ldap.unbind().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn failed_binds_are_indistinguishable() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let mallory = user_dn("mallory");
    let attempts = [
        (mallory.as_str(), "anything"),
        ("uid=nobody,ou=people,dc=example,dc=com", "wonderland"),
        ("uid=alice,ou=nowhere,dc=example,dc=com", "wonderland"),
        (FIXTURE_ADMIN_DN, "wrong"),
        (ALICE, "wrong"),
        ("not a dn", "wonderland"),
        ("", "wonderland"),
    ];
    for (dn, password) in attempts {
        let result = ldap.simple_bind(dn, password).await.unwrap();
        assert_eq!((result.rc, result.matched.as_str(), result.text.as_str()), (49, "", ""), "{dn}");
    }
    // A DN without a password is an "unauthenticated bind" (RFC 4513): refused, never a login.
    assert_eq!(ldap.simple_bind(&user_dn("mallory"), "").await.unwrap().rc, 53);
    assert_eq!(ldap.simple_bind(ALICE, "").await.unwrap().rc, 53);
    server.stop().await;
}

#[tokio::test]
async fn search_finds_each_users_home_node() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let (entries, rc) = search(&mut ldap, PEOPLE, "(uid=alice)", &["mailHost"]).await;
    assert_eq!(rc, 0);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].dn, ALICE);
    assert_eq!(entries[0].attrs["mailHost"], ["node-a"]);
    for (uid, _, node) in USERS {
        let (entries, _) = search(&mut ldap, PEOPLE, &format!("(mail={uid}@EXAMPLE.com)"), &["mailHost"]).await;
        assert_eq!(entries[0].attrs["mailHost"], [node], "{uid}");
    }
    server.stop().await;
}

#[tokio::test]
async fn user_password_is_visible_to_the_admin_only() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let has_password = |entries: &[SearchEntry]| entries[0].attrs.contains_key("userPassword");
    for attrs in [vec![], vec!["*"], vec!["userPassword", "uid"]] {
        let (entries, _) = search(&mut ldap, PEOPLE, "(uid=alice)", &attrs).await;
        assert!(!has_password(&entries), "anonymous, attrs {attrs:?}");
    }
    // Nor can a filter or a compare probe it.
    assert!(search(&mut ldap, PEOPLE, "(userPassword=*)", &[]).await.0.is_empty());
    assert!(search(&mut ldap, PEOPLE, "(userPassword=carol-pw)", &[]).await.0.is_empty());
    assert_eq!(ldap.compare(&user_dn("carol"), "userPassword", "carol-pw").await.unwrap().0.rc, 50);

    ldap.simple_bind(&user_dn("bob"), "builder").await.unwrap().success().unwrap();
    assert!(!has_password(&search(&mut ldap, PEOPLE, "(uid=alice)", &[]).await.0), "as bob");

    ldap.simple_bind(FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let (entries, _) = search(&mut ldap, PEOPLE, "(uid=alice)", &[]).await;
    assert_eq!(entries[0].attrs["userPassword"], ["{SSHA}WAsKoNfKTtZszc4V/39TEKtcDm5ag9K7"]);
    assert_eq!(search(&mut ldap, PEOPLE, "(userPassword=*)", &["1.1"]).await.0.len(), 18, "all but mallory");
    assert!(ldap.compare(&user_dn("carol"), "userPassword", "carol-pw").await.unwrap().equal().unwrap());
    server.stop().await;
}

#[tokio::test]
async fn escaped_filter_injection_matches_nothing() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    assert_eq!(search(&mut ldap, PEOPLE, "(uid=*)", &["1.1"]).await.0.len(), 19, "unescaped: every user");
    for hostile in ["*", "*)(uid=*", "alice)(|(uid=*", "*)(objectClass=*))(|(uid=*", "alice\\", "\0"] {
        let filter = format!("(uid={})", ldap_escape(hostile));
        let (entries, rc) = search(&mut ldap, PEOPLE, &filter, &["1.1"]).await;
        assert_eq!((entries.len(), rc), (0, 0), "{filter}");
    }
    server.stop().await;
}

#[tokio::test]
async fn substring_presence_and_boolean_filters() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let count = async |ldap: &mut Ldap, filter: &str| search(ldap, PEOPLE, filter, &["1.1"]).await.0.len();
    assert_eq!(count(&mut ldap, "(mailHost=*)").await, 18, "all but oscar");
    assert_eq!(count(&mut ldap, "(mail=*@example.com)").await, 19);
    assert_eq!(count(&mut ldap, "(uid=a*)").await, 1);
    assert_eq!(count(&mut ldap, "(cn=*BUILD*)").await, 1);
    assert_eq!(count(&mut ldap, "(cn=c*ol*s*er)").await, 1);
    assert_eq!(count(&mut ldap, "(&(objectClass=inetOrgPerson)(mailHost=node-a))").await, 6);
    assert_eq!(count(&mut ldap, "(|(mailHost=node-b)(mailHost=node-z))").await, 7);
    assert_eq!(count(&mut ldap, "(&(uid=*)(!(mailHost=node-a)))").await, 13);
    assert_eq!(count(&mut ldap, "(uid>=e)").await, 15, "erin and everyone after");
    assert_eq!(count(&mut ldap, "(uid<=b)").await, 1);
    assert_eq!(count(&mut ldap, "(uid~=ALICE)").await, 1);
    assert_eq!(count(&mut ldap, "(telephoneNumber=*)").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn size_limit_scopes_and_missing_base() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let options = SearchOptions::new().sizelimit(2);
    let result = ldap.with_search_options(options).search(PEOPLE, Scope::Subtree, "(uid=*)", vec!["1.1"]).await;
    let result = result.unwrap();
    assert_eq!((result.0.len(), result.1.rc), (2, 4), "two entries, then sizeLimitExceeded");

    let scoped = async |ldap: &mut Ldap, base: &str, scope| {
        let result = ldap.search(base, scope, "(objectClass=*)", vec!["1.1"]).await.unwrap();
        (result.0.len(), result.1.rc)
    };
    assert_eq!(scoped(&mut ldap, "dc=example,dc=com", Scope::Base).await, (1, 0));
    assert_eq!(scoped(&mut ldap, "dc=example,dc=com", Scope::OneLevel).await, (2, 0));
    assert_eq!(scoped(&mut ldap, "dc=example,dc=com", Scope::Subtree).await, (27, 0));
    assert_eq!(scoped(&mut ldap, PEOPLE, Scope::OneLevel).await, (19, 0));

    let missing = ldap.search("ou=nowhere,dc=example,dc=com", Scope::Subtree, "(uid=*)", vec!["1.1"]).await;
    let missing = missing.unwrap().1;
    assert_eq!((missing.rc, missing.matched.as_str()), (32, "dc=example,dc=com"));
    let bad = ldap.search("not a dn", Scope::Subtree, "(uid=*)", vec!["1.1"]).await.unwrap().1;
    assert_eq!(bad.rc, 34);
    server.stop().await;
}

#[tokio::test]
async fn attribute_selection_and_types_only() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let names = async |ldap: &mut Ldap, attrs: &[&str]| {
        let mut names: Vec<String> =
            search(ldap, PEOPLE, "(uid=bob)", attrs).await.0[0].attrs.keys().cloned().collect();
        names.sort();
        names
    };
    assert!(names(&mut ldap, &["1.1"]).await.is_empty());
    assert_eq!(names(&mut ldap, &["MAILHOST"]).await, ["mailHost"]);
    assert_eq!(names(&mut ldap, &["commonName", "mail"]).await, ["cn", "mail"]);
    let all = names(&mut ldap, &[]).await;
    assert_eq!(all, names(&mut ldap, &["*"]).await);
    assert_eq!(all, ["cn", "mail", "mailHost", "mailLocalAddress", "objectClass", "sn", "uid"]);

    let options = SearchOptions::new().typesonly(true);
    let result = ldap.with_search_options(options).search(PEOPLE, Scope::Subtree, "(uid=bob)", vec!["mail"]).await;
    let entry = SearchEntry::construct(result.unwrap().0.remove(0));
    assert_eq!(entry.attrs["mail"], Vec::<String>::new());
    server.stop().await;
}

#[tokio::test]
async fn group_members_match_by_normalised_dn() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    let groups = "ou=groups,dc=example,dc=com";
    let member_of = async |ldap: &mut Ldap, dn: &str| {
        let filter = format!("(&(objectClass=groupOfNames)(member={}))", ldap_escape(dn));
        let mut cns: Vec<String> =
            search(ldap, groups, &filter, &["cn"]).await.0.into_iter().map(|e| e.attrs["cn"][0].clone()).collect();
        cns.sort();
        cns
    };
    // The fixture writes bob's member value as "uid=Bob, ou=People, ...".
    assert_eq!(member_of(&mut ldap, &user_dn("bob")).await, ["mail-users"]);
    assert_eq!(member_of(&mut ldap, &user_dn("carol")).await, ["staff"]);
    assert_eq!(member_of(&mut ldap, "cn=staff,ou=groups,dc=example,dc=com").await, ["mail-users"]);
    assert_eq!(member_of(&mut ldap, "cn=loop-a,ou=groups,dc=example,dc=com").await, ["loop-b"]);
    assert_eq!(member_of(&mut ldap, "cn=loop-b,ou=groups,dc=example,dc=com").await, ["loop-a"]);
    server.stop().await;
}

#[tokio::test]
async fn compare_whoami_and_refused_writes() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    assert!(ldap.compare(ALICE, "mailHost", "NODE-A").await.unwrap().equal().unwrap());
    assert!(!ldap.compare(ALICE, "mailHost", "node-b").await.unwrap().equal().unwrap());
    assert_eq!(ldap.compare(ALICE, "telephoneNumber", "1").await.unwrap().0.rc, 16);
    assert_eq!(ldap.compare("uid=zed,dc=example,dc=com", "uid", "zed").await.unwrap().0.rc, 32);

    let whoami = async |ldap: &mut Ldap| {
        let (exop, _) = ldap.extended(WhoAmI).await.unwrap().success().unwrap();
        exop.parse::<WhoAmIResp>().authzid
    };
    assert_eq!(whoami(&mut ldap).await, "");
    ldap.simple_bind(ALICE, "wonderland").await.unwrap().success().unwrap();
    assert_eq!(whoami(&mut ldap).await, format!("dn:{ALICE}"));
    // A failed bind leaves the connection anonymous.
    assert_eq!(ldap.simple_bind(ALICE, "nope").await.unwrap().rc, 49);
    assert_eq!(whoami(&mut ldap).await, "");

    let add = ldap.add("uid=eve,ou=people,dc=example,dc=com", vec![("uid", HashSet::from(["eve"]))]).await;
    assert_eq!(add.unwrap().rc, 53);
    assert_eq!(ldap.delete(ALICE).await.unwrap().rc, 53);
    assert_eq!(search(&mut ldap, PEOPLE, "(uid=alice)", &["1.1"]).await.0.len(), 1, "still there");
    server.stop().await;
}

#[tokio::test]
async fn anonymous_search_can_be_disabled() {
    let config = ServerConfig { allow_anonymous_search: false, ..ServerConfig::fixture() };
    let server = RealServer::start(config).await;
    let mut ldap = server.ldap().await;
    assert_eq!(search(&mut ldap, PEOPLE, "(uid=alice)", &[]).await.1, 50);
    ldap.simple_bind(&user_dn("dave"), "dave-pw").await.unwrap().success().unwrap();
    assert_eq!(search(&mut ldap, PEOPLE, "(uid=alice)", &[]).await.0.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn counters_reflect_what_happened() {
    let server = RealServer::start(ServerConfig::fixture()).await;
    let mut ldap = server.ldap().await;
    ldap.simple_bind(ALICE, "wonderland").await.unwrap();
    ldap.simple_bind(ALICE, "bad").await.unwrap();
    ldap.simple_bind(&user_dn("mallory"), "bad").await.unwrap();
    ldap.simple_bind("", "").await.unwrap();
    search(&mut ldap, PEOPLE, "(uid=alice)", &[]).await;
    search(&mut ldap, "ou=nowhere,dc=example,dc=com", "(uid=alice)", &[]).await;
    ldap.compare(ALICE, "uid", "alice").await.unwrap();
    ldap.unbind().await.unwrap();
    let expected =
        Counters { connections: 1, binds_ok: 1, binds_failed: 2, searches: 2, compares: 1, ..Counters::default() };
    assert_eq!(server.control.counters(), expected);
    server.stop().await;
}

#[tokio::test]
async fn protocol_edge_cases_over_a_raw_connection() {
    let config = ServerConfig { max_pdu_size: 4096, ..ServerConfig::fixture() };
    let server = RealServer::start(config).await;
    let mut client = RawClient::connect(&TokioNet, &server.addr).await.unwrap();
    let bind = |version, cred| LdapOp::BindRequest(LdapBindRequest { version, dn: ALICE.into(), cred });
    let code = |ops: Vec<LdapOp>| match ops.last() {
        Some(LdapOp::BindResponse(r)) => r.res.code.clone(),
        other => panic!("{other:?}"),
    };
    let v2 = client.call(bind(2, LdapBindCred::Simple("wonderland".into()))).await.unwrap();
    assert_eq!(code(v2), LdapResultCode::ProtocolError);
    let sasl = LdapBindCred::SASL(SaslCredentials { mechanism: "PLAIN".into(), credentials: b"\0alice\0x".to_vec() });
    assert_eq!(code(client.call(bind(3, sasl)).await.unwrap()), LdapResultCode::AuthMethodNotSupported);
    let root = client.search("", LdapSearchScope::Base, LdapFilter::Present("objectClass".into())).await.unwrap();
    let naming = root.0[0].attributes.iter().find(|a| a.atype == "namingContexts").expect("root DSE");
    assert_eq!(naming.vals, [b"dc=example,dc=com".to_vec()]);
    // An oversized request gets a Notice of Disconnection and the connection closes.
    // (Over the cap but under twice it, so the server has read all of it
    // when it closes: no unread data, so no TCP reset racing the notice.)
    let huge = LdapFilter::Equality("cn".into(), "x".repeat(5000));
    let err = client.search(PEOPLE, LdapSearchScope::Subtree, huge).await.unwrap_err();
    assert!(err.to_string().contains("notice of disconnection"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn connection_cap_and_shutdown() {
    let config = ServerConfig { max_connections: 1, ..ServerConfig::fixture() };
    let server = RealServer::start(config).await;
    let mut first = RawClient::connect(&TokioNet, &server.addr).await.unwrap();
    assert_eq!(first.bind(ALICE, "wonderland").await.unwrap(), LdapResultCode::Success);
    let mut second = RawClient::connect(&TokioNet, &server.addr).await.unwrap();
    assert!(second.bind(ALICE, "wonderland").await.is_err(), "over the cap: closed at once");
    assert_eq!(server.control.counters().refused, 1);
    // Shutdown closes the idle first connection and serve returns.
    server.stop().await;
    assert!(first.bind(ALICE, "wonderland").await.is_err());
}

/// Whether an external tool is installed; a missing one fails the test
/// when TIERMAIL_REQUIRE_PEERS is set.
fn have(tool: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("TIERMAIL_REQUIRE_PEERS").is_err(), "{tool} is required (TIERMAIL_REQUIRE_PEERS is set)");
        eprintln!("SKIPPED: {tool} is not installed (apt-get install ldap-utils)");
    }
    found
}

/// Runs an OpenLDAP client tool (ignoring any ldap.conf) without blocking the server.
async fn openldap(tool: &str, args: Vec<String>) -> (i32, String, String) {
    let tool = tool.to_owned();
    let out = tokio::task::spawn_blocking(move || Command::new(tool).env("LDAPNOINIT", "1").args(args).output())
        .await
        .unwrap()
        .expect("tool runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn openldap_ldapsearch_and_ldapwhoami_interoperate() {
    if !have("ldapsearch") || !have("ldapwhoami") {
        return;
    }
    let server = RealServer::start(ServerConfig::fixture()).await;
    let args = |extra: &[&str]| {
        let mut args = vec!["-x".to_owned(), "-H".to_owned(), format!("ldap://{}", server.addr)];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let whoami = openldap("ldapwhoami", args(&["-D", ALICE, "-w", "wonderland"])).await;
    assert_eq!((whoami.0, whoami.1.trim()), (0, format!("dn:{ALICE}").as_str()), "{}", whoami.2);
    let anonymous = openldap("ldapwhoami", args(&[])).await;
    assert_eq!(anonymous.1.trim(), "anonymous");
    let wrong = openldap("ldapwhoami", args(&["-D", ALICE, "-w", "nope"])).await;
    assert_eq!(wrong.0, 49, "{}", wrong.2);
    assert!(wrong.2.contains("Invalid credentials (49)"), "{}", wrong.2);

    let found = openldap("ldapsearch", args(&["-LLL", "-b", PEOPLE, "(uid=alice)", "mailHost"])).await;
    assert_eq!((found.0, found.1.as_str()), (0, format!("dn: {ALICE}\nmailHost: node-a\n\n").as_str()), "{}", found.2);
    let anonymous = openldap("ldapsearch", args(&["-LLL", "-b", PEOPLE, "(uid=alice)"])).await;
    assert!(anonymous.1.contains("mailHost: node-a") && !anonymous.1.contains("userPassword"), "{}", anonymous.1);
    let admin = ["-D", FIXTURE_ADMIN_DN, "-w", FIXTURE_ADMIN_PASSWORD, "-LLL", "-b", PEOPLE, "(uid=alice)"];
    let admin = openldap("ldapsearch", args(&admin)).await;
    assert!(admin.1.contains("userPassword"), "{}", admin.1);
    let limited = openldap("ldapsearch", args(&["-LLL", "-z", "2", "-b", PEOPLE, "(uid=*)", "1.1"])).await;
    assert_eq!((limited.0, limited.1.matches("dn: ").count()), (4, 2), "{}", limited.2);
    let missing = openldap("ldapsearch", args(&["-b", "ou=nowhere,dc=example,dc=com", "(uid=*)"])).await;
    assert_eq!(missing.0, 32, "{}", missing.2);
    server.stop().await;
}

/// A minimal LDAP client on ldap3_proto's codec, over any stream of the seam
/// (ldap3 cannot run over a turmoil stream).
struct RawClient {
    framed: Framed<Stream, LdapCodec>,
    next_id: i32,
}

impl RawClient {
    async fn connect(net: &dyn Net, addr: &str) -> io::Result<Self> {
        Ok(Self { framed: Framed::new(net.connect(addr).await?, LdapCodec::default()), next_id: 1 })
    }

    /// Sends one request and reads its responses up to the final one.
    async fn call(&mut self, op: LdapOp) -> io::Result<Vec<LdapOp>> {
        let id = self.next_id;
        self.next_id += 1;
        self.framed.send(LdapMsg::new(id, op)).await?;
        let mut responses = Vec::new();
        loop {
            let msg = self.framed.next().await.ok_or(io::ErrorKind::UnexpectedEof)??;
            if msg.msgid == 0 {
                return Err(io::Error::other(format!("notice of disconnection: {:?}", msg.op)));
            }
            let last = !matches!(msg.op, LdapOp::SearchResultEntry(_) | LdapOp::SearchResultReference(_));
            responses.push(msg.op);
            if last {
                return Ok(responses);
            }
        }
    }

    async fn bind(&mut self, dn: &str, password: &str) -> io::Result<LdapResultCode> {
        let request = LdapBindRequest { version: 3, dn: dn.into(), cred: LdapBindCred::Simple(password.into()) };
        match self.call(LdapOp::BindRequest(request)).await?.pop() {
            Some(LdapOp::BindResponse(response)) => Ok(response.res.code),
            other => Err(io::Error::other(format!("unexpected response {other:?}"))),
        }
    }

    async fn search(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
    ) -> io::Result<(Vec<LdapSearchResultEntry>, LdapResultCode)> {
        let request = LdapSearchRequest {
            base: base.into(),
            scope,
            aliases: ldap3_proto::proto::LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: Vec::new(),
        };
        let mut entries = Vec::new();
        for op in self.call(LdapOp::SearchRequest(request)).await? {
            match op {
                LdapOp::SearchResultEntry(entry) => entries.push(entry),
                LdapOp::SearchResultDone(done) => return Ok((entries, done.code)),
                other => return Err(io::Error::other(format!("unexpected response {other:?}"))),
            }
        }
        Err(io::Error::other("search ended without SearchResultDone"))
    }
}

/// Looks up a user's home node over `client`.
async fn home_node(client: &mut RawClient, uid: &str) -> io::Result<Option<String>> {
    let filter = LdapFilter::Equality("uid".into(), uid.into());
    let (entries, _) = client.search(PEOPLE, LdapSearchScope::Subtree, filter).await?;
    let host = entries.first().and_then(|e| e.attributes.iter().find(|a| a.atype == "mailHost"));
    Ok(host.map(|a| String::from_utf8_lossy(&a.vals[0]).into_owned()))
}

/// What the simulated client observed, step by step.
type Log = Arc<Mutex<Vec<String>>>;

/// One simulation: an `ldap` host serving the fixture and a client that
/// walks the server through its fault modes. Returns the client's
/// observations, the server's counters and the run's event log.
fn simulate(seed: u64) -> (Vec<String>, Counters, String) {
    let control = DirectoryControl::new();
    let log: Log = Arc::default();
    let ((), events) = trace::capture(|| {
        let mut sim = turmoil::Builder::new().rng_seed(seed).simulation_duration(Duration::from_secs(600)).build();
        let directory = Arc::new(Directory::fixture());
        let server_control = control.clone();
        sim.host("ldap", move || {
            let (directory, control) = (directory.clone(), server_control.clone());
            async move {
                let (trigger, shutdown) = Shutdown::new();
                let listener = SimNet.bind("0.0.0.0:389".parse().unwrap()).await?;
                let config = ServerConfig { idle_timeout: Duration::from_secs(30), ..ServerConfig::fixture() };
                serve(listener, directory, config, control, shutdown).await;
                drop(trigger);
                Ok(())
            }
        });
        let (control, log) = (control.clone(), log.clone());
        sim.client("client", async move { fault_walk(&control, &log).await });
        sim.run().expect("simulation");
    });
    let observed = log.lock().unwrap().clone();
    (observed, control.counters(), events)
}

async fn fault_walk(control: &DirectoryControl, log: &Log) -> turmoil::Result {
    let note = |s: String| log.lock().unwrap().push(s);
    let patience = Duration::from_secs(5);

    let mut client = RawClient::connect(&SimNet, "ldap:389").await?;
    note(format!("bind alice: {:?}", client.bind(ALICE, "wonderland").await?));
    note(format!("bind alice wrong: {:?}", client.bind(ALICE, "nope").await?));
    note(format!("home of erin: {:?}", home_node(&mut client, "erin").await?));

    control.set_mode(Mode::Slow(Duration::from_secs(2)));
    let started = tokio::time::Instant::now();
    let code = client.bind(ALICE, "wonderland").await?;
    note(format!("slow bind: {code:?} after {}s", started.elapsed().as_secs()));

    control.set_mode(Mode::Error);
    note(format!("error-mode bind: {:?}", client.bind(ALICE, "wonderland").await?));
    let everything = LdapFilter::Present("objectClass".into());
    note(format!("error-mode search: {:?}", client.search(PEOPLE, LdapSearchScope::Subtree, everything).await?.1));

    control.set_mode(Mode::Hang);
    let hung = tokio::time::timeout(patience, client.bind(ALICE, "wonderland")).await;
    note(format!("hung bind timed out: {}", hung.is_err()));

    control.set_mode(Mode::Down);
    note(format!("open connection dropped: {}", client.bind(ALICE, "wonderland").await.is_err()));
    let refused = match RawClient::connect(&SimNet, "ldap:389").await {
        Ok(mut fresh) => {
            tokio::time::timeout(patience, fresh.bind(ALICE, "wonderland")).await.is_ok_and(|r| r.is_err())
        }
        Err(_) => true,
    };
    note(format!("new connection refused: {refused}"));

    control.set_mode(Mode::Normal);
    let mut client = RawClient::connect(&SimNet, "ldap:389").await?;
    note(format!("after recovery, bind bob: {:?}", client.bind(&user_dn("bob"), "builder").await?));
    note(format!("after recovery, home of bob: {:?}", home_node(&mut client, "bob").await?));

    tokio::time::sleep(Duration::from_secs(31)).await;
    note(format!("idle connection closed: {}", client.bind(ALICE, "wonderland").await.is_err()));
    Ok(())
}

#[test]
fn fault_modes_in_simulation() {
    let (observed, counters, _) = simulate(11);
    let expected = [
        "bind alice: Success",
        "bind alice wrong: InvalidCredentials",
        "home of erin: Some(\"node-b\")",
        "slow bind: Success after 2s",
        "error-mode bind: Unavailable",
        "error-mode search: Unavailable",
        "hung bind timed out: true",
        "open connection dropped: true",
        "new connection refused: true",
        "after recovery, bind bob: Success",
        "after recovery, home of bob: Some(\"node-b\")",
        "idle connection closed: true",
    ];
    assert_eq!(observed, expected);
    let expected =
        Counters { connections: 3, refused: 1, binds_ok: 3, binds_failed: 1, searches: 2, compares: 0, faulted: 2 };
    assert_eq!(counters, expected);
}

#[test]
fn simulation_is_deterministic() {
    let (first, _, log1) = simulate(5);
    let (second, _, log2) = simulate(5);
    assert_eq!(first, second);
    assert!(log1.contains("bind succeeded"), "the event log records binds:\n{log1}");
    assert_eq!(log1, log2, "same seed, different event logs");
}
