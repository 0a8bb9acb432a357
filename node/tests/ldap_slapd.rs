//! The LDAP connector against a real OpenLDAP slapd, through both LDAP
//! client implementations (ldap3, and the seam client over real sockets),
//! with the shared test table (node/tests/ldap/table.rs); then TLS
//! (ldaps://, StartTLS, `tls_ca_file`) with ldap3.
//!
//! slapd comes from Debian's slapd package. Without it these tests say so
//! and pass, unless TIERMAIL_REQUIRE_PEERS is set.

#[path = "ldap/slapd.rs"]
mod slapd;
#[path = "ldap/table.rs"]
mod table;

use std::path::Path;
use std::sync::Arc;

use slapd::Slapd;
use table::{ADMIN_DN, PEOPLE, ServerControl, Target};
use tiermail_node::Config;
use tiermail_node::directory::ldap::ldap3_ops::Ldap3Ops;
use tiermail_node::directory::ldap::seam_ops::SeamOps;
use tiermail_node::directory::ldap::tls::{TlsSettings, TrustedCa};
use tiermail_node::directory::ldap::{AuthMode, Authentication, Connector, LdapOps, Lookup};
use tiermail_node::net::{BoxFuture, TokioNet};
use tokio::net::TcpListener;

struct SlapdControl(Arc<Slapd>);

impl ServerControl for SlapdControl {
    fn stop(&self) -> BoxFuture<'_, ()> {
        let slapd = self.0.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || slapd.stop()).await.unwrap() })
    }
    fn start(&self) -> BoxFuture<'_, ()> {
        let slapd = self.0.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || slapd.spawn()).await.unwrap() })
    }
}

/// A listener that accepts connections and never says a word.
async fn tarpit() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

async fn target(ops: Arc<dyn LdapOps>) -> Option<(Target, Arc<Slapd>)> {
    if !slapd::available() {
        return None;
    }
    let slapd = Arc::new(tokio::task::spawn_blocking(Slapd::start).await.unwrap());
    let target = Target {
        ops,
        live: slapd.url(),
        dead: format!("ldap://127.0.0.1:{}", slapd::free_port()),
        hang: tarpit().await,
        control: Box::new(SlapdControl(slapd.clone())),
        binds_every_scheme: false,
    };
    Some((target, slapd))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_with_ldap3_against_slapd() {
    let Some((target, _slapd)) = target(Arc::new(Ldap3Ops)).await else { return };
    table::run_all(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_with_seam_client_against_slapd() {
    let Some((target, _slapd)) = target(Arc::new(SeamOps::new(Arc::new(TokioNet)))).await else { return };
    table::run_all(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_mode_needs_the_privileged_bind() {
    // Seed "LDAP Authentication": hashes are readable only through a
    // privileged bind; anonymously nobody can log in in Password mode,
    // while Bind mode still works.
    let Some((target, _slapd)) = target(Arc::new(Ldap3Ops)).await else { return };
    let mut settings = table::settings(&[&target.live]);
    settings.bind = None;
    let anonymous = Connector::new(settings, target.ops.clone());
    let outcome = anonymous.authenticate(AuthMode::Password, PEOPLE, "(uid=alice)", &[], "wonderland").await;
    assert_eq!(outcome, Authentication::Rejected);
    let outcome = anonymous.authenticate(AuthMode::Bind, PEOPLE, "(uid=alice)", &[], "wonderland").await;
    assert!(matches!(outcome, Authentication::Accepted(_)), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_service_password_is_unavailable_not_rejected() {
    let Some((target, _slapd)) = target(Arc::new(Ldap3Ops)).await else { return };
    let mut settings = table::settings(&[&target.live]);
    settings.bind = Some((ADMIN_DN.into(), "not-the-password".into()));
    let misconfigured = Connector::new(settings, target.ops.clone());
    assert!(matches!(misconfigured.find_one(PEOPLE, "(uid=alice)", &[]).await, Lookup::Unavailable(_)));
    let outcome = misconfigured.authenticate(AuthMode::Bind, PEOPLE, "(uid=alice)", &[], "wonderland").await;
    assert!(matches!(outcome, Authentication::Unavailable(_)), "{outcome:?}");
}

/// slapd with TLS; None (test skipped) without slapd.
async fn tls_slapd() -> Option<Slapd> {
    if !slapd::available() {
        return None;
    }
    Some(tokio::task::spawn_blocking(Slapd::start_tls).await.unwrap())
}

/// A connector on ldap3 for `url` (the fixture service account), trusting
/// `ca` (None: the system's trust store).
fn tls_connector(url: &str, starttls: bool, ca: Option<&Path>) -> Connector {
    let mut settings = table::settings(&[url]);
    settings.tls = TlsSettings { starttls, ca: ca.map(|path| TrustedCa::load(path).expect("CA file")) };
    Connector::new(settings, Arc::new(Ldap3Ops))
}

/// Alice is found and logs in both ways; a wrong password is rejected.
async fn lookup_and_login_work(connector: &Connector) {
    let lookup = connector.find_one(PEOPLE, "(uid=alice)", &["mailHost"]).await;
    let Lookup::Found(entry) = lookup else { panic!("alice not found: {lookup:?}") };
    assert_eq!(entry.first_str("mailHost"), Some("node-a"));
    for mode in [AuthMode::Password, AuthMode::Bind] {
        let outcome = connector.authenticate(mode, PEOPLE, "(uid=alice)", &[], "wonderland").await;
        assert!(matches!(outcome, Authentication::Accepted(_)), "{mode:?}: {outcome:?}");
        let outcome = connector.authenticate(mode, PEOPLE, "(uid=alice)", &[], "not-her-password").await;
        assert_eq!(outcome, Authentication::Rejected, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_with_the_configured_ca_looks_up_and_logs_in() {
    let Some(slapd) = tls_slapd().await else { return };
    lookup_and_login_work(&tls_connector(&slapd.ldaps_url(), false, Some(&slapd.ca_file()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_configured_ca_looks_up_and_logs_in() {
    let Some(slapd) = tls_slapd().await else { return };
    lookup_and_login_work(&tls_connector(&slapd.url(), true, Some(&slapd.ca_file()))).await;
    // This slapd refuses operations without TLS: the pass above was StartTLS.
    let plain = tls_connector(&slapd.url(), false, None);
    let lookup = plain.find_one(PEOPLE, "(uid=alice)", &[]).await;
    assert!(matches!(&lookup, Lookup::Unavailable(u) if u.reason.contains("confidentialityRequired")), "{lookup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_is_unavailable_never_a_pass() {
    let Some(slapd) = tls_slapd().await else { return };
    // The system's trust store, and a CA that did not sign the server's certificate.
    let other_ca = slapd::repo_root().join("fixtures/tls/test-ca.pem");
    for ca in [None, Some(other_ca.as_path())] {
        for (url, starttls) in [(slapd.ldaps_url(), false), (slapd.url(), true)] {
            let what = format!("{url} starttls={starttls} ca={ca:?}");
            let connector = tls_connector(&url, starttls, ca);
            let lookup = connector.find_one(PEOPLE, "(uid=alice)", &[]).await;
            let Lookup::Unavailable(unavailable) = lookup else { panic!("{what}: {lookup:?}") };
            assert!(unavailable.reason.contains("invalid peer certificate"), "{what}: {unavailable}");
            let outcome = connector.authenticate(AuthMode::Bind, PEOPLE, "(uid=alice)", &[], "wonderland").await;
            assert!(matches!(outcome, Authentication::Unavailable(_)), "{what}: {outcome:?}");
        }
    }
}

#[tokio::test]
async fn the_seam_client_refuses_tls_even_with_a_ca() {
    // Simulations have no TLS: a TLS setting must fail loudly, never fall
    // back to plain text.
    let ca = TrustedCa::load(&slapd::repo_root().join("fixtures/tls/test-ca.pem")).unwrap();
    for (url, starttls) in [("ldaps://127.0.0.1:1", false), ("ldap://127.0.0.1:1", true)] {
        let mut settings = table::settings(&[url]);
        settings.tls = TlsSettings { starttls, ca: Some(ca.clone()) };
        let connector = Connector::new(settings, Arc::new(SeamOps::new(Arc::new(TokioNet))));
        let lookup = connector.find_one(PEOPLE, "(uid=alice)", &[]).await;
        let refused = matches!(&lookup, Lookup::Unavailable(u) if u.reason.contains("TLS is not available"));
        assert!(refused, "{url} starttls={starttls}: {lookup:?}");
    }
}

/// A node config whose one directory names `tls_ca_file = ca` (line 12).
fn node_config_with_ca(ca: &str) -> String {
    format!(
        r#"[node]
name = "node-a"
data_dir = "data"
[backend.smtp]
listen = "127.0.0.1:2525"
[[directory]]
name = "corp"
server_type = "openldap"
urls = ["ldaps://ldap.example.com"]
account_base_dn = "ou=people,dc=example,dc=com"
# the CA that signs the directory's certificates
tls_ca_file = "{ca}"
"#
    )
}

#[test]
fn a_ca_file_resolves_against_the_config_file_and_bad_ones_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    std::fs::copy(slapd::repo_root().join("fixtures/tls/test-ca.pem"), dir.path().join("tls/ca.pem")).unwrap();
    let config = Config::parse(&file, &node_config_with_ca("tls/ca.pem")).expect("valid");
    let ca = config.directories[0].tls.ca.as_ref().expect("CA loaded");
    assert_eq!(ca.path, dir.path().join("tls/ca.pem"));

    std::fs::write(dir.path().join("key-only.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let d = dir.path().display();
    for (ca, message) in [
        ("missing.pem", format!("cannot read CA file {d}/missing.pem: No such file or directory (os error 2)")),
        ("tls", format!("cannot read CA file {d}/tls: Is a directory (os error 21)")),
        (
            "key-only.pem",
            format!("no certificate in {d}/key-only.pem (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)"),
        ),
    ] {
        let errors = Config::parse(&file, &node_config_with_ca(ca)).expect_err(ca).to_string();
        assert_eq!(errors, format!("{}:12: directory[0].tls_ca_file: {message}", file.display()));
    }
}
