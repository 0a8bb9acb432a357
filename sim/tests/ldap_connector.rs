//! The LDAP connector against the embedded directory server: the shared
//! test table (node/tests/ldap/table.rs) over real sockets with both
//! client implementations, and inside turmoil simulations with the seam
//! client, where a second directory host, partitions and a tarpit show
//! failover and fail-closed behaviour deterministically.

#[path = "../../node/tests/ldap/table.rs"]
mod table;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use table::{PEOPLE, ServerControl, Target};
use tiermail_node::directory::ldap::ldap3_ops::Ldap3Ops;
use tiermail_node::directory::ldap::seam_ops::SeamOps;
use tiermail_node::directory::ldap::{Connector, LdapOps, Lookup};
use tiermail_node::directory::usermap::{AuthResult, Route};
use tiermail_node::net::{BoxFuture, Net, SimNet, TokioNet};
use tiermail_node::shutdown::Shutdown;
use tiermail_sim::ldap_server::{Directory, DirectoryControl, Mode, ServerConfig, serve};
use tiermail_sim::trace;

/// Fault injection through the server's control handle: Down refuses new
/// connections and drops open ones, like a stopped server.
struct ModeControl(DirectoryControl);

impl ServerControl for ModeControl {
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.0.set_mode(Mode::Down) })
    }
    fn start(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.0.set_mode(Mode::Normal) })
    }
}

/// Serves the fixture on `addr` through `net` until the runtime ends.
async fn embedded_server(net: &dyn Net, addr: &str, control: DirectoryControl) -> String {
    let listener = net.bind(addr.parse().unwrap()).await.expect("bind");
    let local = listener.local_addr().unwrap().to_string();
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        serve(listener, Arc::new(Directory::fixture()), ServerConfig::fixture(), control, shutdown).await;
        drop(trigger);
    });
    local
}

/// Accepts connections on `addr` and never answers.
async fn tarpit(net: &dyn Net, addr: &str) -> String {
    let listener = net.bind(addr.parse().unwrap()).await.expect("bind");
    let local = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    local
}

async fn real_target(ops: Arc<dyn LdapOps>) -> Target {
    let control = DirectoryControl::new();
    let live = embedded_server(&TokioNet, "127.0.0.1:0", control.clone()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    Target {
        ops,
        live: format!("ldap://{live}"),
        dead: format!("ldap://{closed}"),
        hang: format!("ldap://{}", tarpit(&TokioNet, "127.0.0.1:0").await),
        control: Box::new(ModeControl(control)),
        binds_every_scheme: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_with_ldap3_against_the_embedded_server() {
    table::run_all(&real_target(Arc::new(Ldap3Ops)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_with_seam_client_against_the_embedded_server() {
    table::run_all(&real_target(Arc::new(SeamOps::new(Arc::new(TokioNet)))).await).await;
}

/// A simulation with directory hosts `ldap` (and `ldap2`) serving the
/// fixture, a `tarpit` host, and `client` running `script`. Returns the
/// event log.
fn simulate<F, Fut>(seed: u64, controls: [DirectoryControl; 2], script: F) -> String
where
    F: FnOnce() -> Fut + 'static,
    Fut: std::future::Future<Output = turmoil::Result> + 'static,
{
    let ((), events) = trace::capture(|| {
        let mut sim = turmoil::Builder::new().rng_seed(seed).simulation_duration(Duration::from_secs(600)).build();
        for (host, control) in ["ldap", "ldap2"].into_iter().zip(controls) {
            sim.host(host, move || {
                let control = control.clone();
                async move {
                    embedded_server(&SimNet, "0.0.0.0:389", control).await;
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
        }
        sim.host("tarpit", || async {
            tarpit(&SimNet, "0.0.0.0:389").await;
            std::future::pending::<()>().await;
            Ok(())
        });
        sim.client("client", script());
        sim.run().expect("simulation");
    });
    events
}

#[test]
fn table_in_simulation() {
    let control = DirectoryControl::new();
    let server = control.clone();
    simulate(3, [control, DirectoryControl::new()], move || async move {
        let target = Target {
            ops: Arc::new(SeamOps::new(Arc::new(SimNet))),
            live: "ldap://ldap:389".into(),
            dead: "ldap://tarpit:1389".into(),
            hang: "ldap://tarpit:389".into(),
            control: Box::new(ModeControl(server)),
            binds_every_scheme: true,
        };
        table::run_all(&target).await;
        Ok(())
    });
}

/// What the client saw in the failover walk, step by step.
type Log = Arc<Mutex<Vec<String>>>;

async fn failover_walk(log: Log, ldap: DirectoryControl) -> turmoil::Result {
    let note = |s: String| log.lock().unwrap().push(s);
    let ops = Arc::new(SeamOps::new(Arc::new(SimNet)));
    let connector = Connector::new(table::settings(&["ldap://ldap:389", "ldap://ldap2:389"]), ops);
    let map = table::user_map(&connector, "ldap-bind", "[cache]\npositive_ttl_secs = 0\nnegative_ttl_secs = 0");
    let started = tokio::time::Instant::now();
    let step = async |what: &str| {
        let route = map.lookup("alice").await;
        let auth = map.authenticate("bob", "builder").await;
        let auth = match auth {
            AuthResult::Accepted(id) => format!("accepted {}", id.login),
            AuthResult::Rejected => "rejected".into(),
            AuthResult::Unavailable(_) => "unavailable".into(),
        };
        let route = match route {
            Route::Mapped { host, .. } => format!("mapped {host}"),
            Route::NotInMap => "not in map".into(),
            Route::Unavailable(_) => "unavailable".into(),
        };
        note(format!("{what}: {route}, {auth}, at {}s", started.elapsed().as_secs()));
    };
    step("both up").await;
    turmoil::partition("client", "ldap");
    step("ldap partitioned").await;
    step("ldap still partitioned").await;
    turmoil::partition("client", "ldap2");
    step("both partitioned").await;
    turmoil::repair("client", "ldap2");
    step("ldap2 repaired").await;
    turmoil::repair("client", "ldap");
    tokio::time::sleep(table::BACKOFF).await;
    let before = ldap.counters().searches;
    step("ldap repaired, back-off over").await;
    note(format!("traffic back on ldap: {}", ldap.counters().searches > before));
    let found = connector.find_one(PEOPLE, "(uid=erin)", &["mailHost"]).await;
    note(format!("erin: {:?}", matches!(found, Lookup::Found(_))));
    Ok(())
}

#[test]
fn failover_between_directory_hosts_and_partitions() {
    let controls = [DirectoryControl::new(), DirectoryControl::new()];
    let run = |seed| {
        let log: Log = Arc::default();
        let script_log = log.clone();
        let ldap = controls[0].clone();
        let events = simulate(seed, controls.clone(), move || failover_walk(script_log, ldap));
        let observed = log.lock().unwrap().clone();
        (observed, events)
    };
    let (observed, events) = run(9);
    let expected = [
        "both up: mapped node-a, accepted bob@example.com, at 0s",
        // The pooled connection to `ldap` goes silent: one timeout (1 s),
        // then `ldap2`; the idle bind connection to `ldap` is not tried.
        "ldap partitioned: mapped node-a, accepted bob@example.com, at 1s",
        "ldap still partitioned: mapped node-a, accepted bob@example.com, at 1s",
        // Now `ldap2` times out once; connects across a partition fail at once.
        "both partitioned: unavailable, unavailable, at 2s",
        "ldap2 repaired: mapped node-a, accepted bob@example.com, at 2s",
        "ldap repaired, back-off over: mapped node-a, accepted bob@example.com, at 3s",
        "traffic back on ldap: true",
        "erin: true",
    ];
    assert_eq!(observed, expected);
    let ldap2 = controls[1].counters();
    assert!(ldap2.searches > 0 && ldap2.binds_ok > 0, "the second host served: {ldap2:?}");
    let (again, events_again) = run(9);
    assert_eq!(again, observed, "same seed, same observations");
    assert_eq!(events, events_again, "same seed, same event log");
}

/// An Active Directory-shaped tree: accounts found by sAMAccountName or
/// userPrincipalName, userAccountControl 514 = disabled; Jane is in Team A,
/// inside Staff, inside Mail Users (member and memberOf both set, as AD
/// keeps them).
const AD_LDIF: &str = "\
dn: DC=corp,DC=example
objectClass: domain
dc: corp

dn: OU=Staff,DC=corp,DC=example
objectClass: organizationalUnit
ou: Staff

dn: CN=Smith\\, Jane,OU=Staff,DC=corp,DC=example
objectClass: user
cn: Smith, Jane
sAMAccountName: jsmith
userPrincipalName: jsmith@corp.example
userAccountControl: 512
mailHost: node-a
userPassword: jane-pw
memberOf: CN=Team A,OU=Groups,DC=corp,DC=example

dn: CN=Old Timer,OU=Staff,DC=corp,DC=example
objectClass: user
cn: Old Timer
sAMAccountName: otimer
userPrincipalName: otimer@corp.example
userAccountControl: 514
mailHost: node-b
userPassword: old-pw

dn: OU=Groups,DC=corp,DC=example
objectClass: organizationalUnit
ou: Groups

dn: CN=Mail Users,OU=Groups,DC=corp,DC=example
objectClass: group
cn: Mail Users
member: CN=Staff,OU=Groups,DC=corp,DC=example

dn: CN=Staff,OU=Groups,DC=corp,DC=example
objectClass: group
cn: Staff
member: CN=Team A,OU=Groups,DC=corp,DC=example
memberOf: CN=Mail Users,OU=Groups,DC=corp,DC=example

dn: CN=Team A,OU=Groups,DC=corp,DC=example
objectClass: group
cn: Team A
member: CN=Smith\\, Jane,OU=Staff,DC=corp,DC=example
memberOf: CN=Staff,OU=Groups,DC=corp,DC=example
";

#[tokio::test]
async fn active_directory_accounts_by_account_name_or_principal_name() {
    let listener = TokioNet.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let (_trigger, shutdown) = Shutdown::new();
    let directory = Arc::new(Directory::from_ldif(AD_LDIF).expect("AD-shaped LDIF"));
    let config = ServerConfig::new("CN=svc,DC=corp,DC=example", "svc-pw");
    tokio::spawn(serve(listener, directory, config, DirectoryControl::new(), shutdown));

    for ops in [Arc::new(Ldap3Ops) as Arc<dyn LdapOps>, Arc::new(SeamOps::new(Arc::new(TokioNet)))] {
        let mut settings = table::settings(&[&url]);
        settings.server_type = tiermail_node::directory::settings::ServerType::ActiveDirectory;
        settings.account_base_dn = "DC=corp,DC=example".into();
        settings.bind = Some(("CN=svc,DC=corp,DC=example".into(), "svc-pw".into()));
        settings.group_base_dn = "OU=Groups,DC=corp,DC=example".into();
        let connector = Connector::new(settings, ops);
        for kind in ["ldap-bind", "ldap-password"] {
            let map = table::user_map(&connector, kind, "default_domain = \"corp.example\"");
            let jane = Route::Mapped { host: "node-a".into(), port: None };
            assert_eq!(map.lookup("jsmith").await, jane, "{kind}: by sAMAccountName");
            assert_eq!(map.lookup("JSmith@Corp.Example").await, jane, "{kind}: by userPrincipalName");
            let AuthResult::Accepted(id) = map.authenticate("jsmith", "jane-pw").await else { panic!("{kind}") };
            assert_eq!(id.dn, "CN=Smith\\, Jane,OU=Staff,DC=corp,DC=example");
            assert_eq!(map.authenticate("jsmith", "wrong").await, AuthResult::Rejected, "{kind}");
            let disabled = map.authenticate("otimer", "old-pw").await;
            assert_eq!(disabled, AuthResult::Rejected, "{kind}: a disabled account, right password");
        }
        // Nested groups through LDAP_MATCHING_RULE_IN_CHAIN, resolved by the server.
        let jane = "CN=Smith\\, Jane,OU=Staff,DC=corp,DC=example";
        let mut groups = connector.groups_of(jane).await.expect("directory up");
        groups.sort();
        assert_eq!(
            groups,
            [
                "CN=Mail Users,OU=Groups,DC=corp,DC=example",
                "CN=Staff,OU=Groups,DC=corp,DC=example",
                "CN=Team A,OU=Groups,DC=corp,DC=example"
            ]
        );
        assert!(connector.is_member(jane, "cn=mail users,ou=groups,dc=corp,dc=example").await.unwrap());
        let old = "CN=Old Timer,OU=Staff,DC=corp,DC=example";
        assert!(!connector.is_member(old, "CN=Mail Users,OU=Groups,DC=corp,DC=example").await.unwrap());
    }
}
