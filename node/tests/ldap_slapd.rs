//! The LDAP connector against a real OpenLDAP slapd, through both LDAP
//! client implementations (ldap3, and the seam client over real sockets),
//! with the shared test table (node/tests/ldap/table.rs).
//!
//! slapd comes from Debian's slapd package. Without it these tests say so
//! and pass, unless TIERMAIL_REQUIRE_PEERS is set.

#[path = "ldap/slapd.rs"]
mod slapd;
#[path = "ldap/table.rs"]
mod table;

use std::sync::Arc;

use slapd::Slapd;
use table::{ADMIN_DN, PEOPLE, ServerControl, Target};
use tiermail_node::directory::ldap::ldap3_ops::Ldap3Ops;
use tiermail_node::directory::ldap::seam_ops::SeamOps;
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
