//! Proxies and back-ends on an LDAP directory (a real OpenLDAP slapd with
//! the fixture directory): routing by `mailHost`, authentication at the
//! proxy and again at the back-end, and temporary errors on every service
//! while the directory is down, with recovery and no restart.

mod common;
#[path = "ldap/slapd.rs"]
mod slapd;

use common::*;
use std::net::SocketAddr;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// The directory and user map every node of this test shares.
fn directory(url: &str) -> String {
    format!(
        r#"
[hosts]
node-a = "127.0.0.51"

[[directory]]
name = "fixture"
server_type = "openldap"
urls = ["{url}"]
bind_dn = "cn=admin,dc=example,dc=com"
bind_password = "admin-secret"
account_base_dn = "ou=people,dc=example,dc=com"
timeout_secs = 2

[[user_map]]
name = "ldap"
kind = "ldap-password"
directory = "fixture"
[user_map.cache]
positive_ttl_secs = 0
negative_ttl_secs = 0
"#
    )
}

fn login(proxy: SocketAddr, user: &str, password: &str) -> String {
    let mut c = LineClient::connect(proxy);
    c.line();
    c.cmd(&format!("l LOGIN {user}@example.com {password}"))
}

#[test]
fn ldap_routes_and_authenticates_and_an_outage_gives_temporary_errors() {
    if !slapd::available() {
        return;
    }
    let ldap = slapd::Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = format!(
        "[node]\nname = \"node-a\"\ndata_dir = \"DATA_DIR\"\n[[domain]]\nname = \"example.com\"\n{}\
         [backend]\nauth_map = \"ldap\"\n[backend.smtp]\nlisten = \"127.0.0.51:2525\"\n\
         [backend.pop3]\nlisten = \"127.0.0.51:1100\"\n[backend.imap]\nlisten = \"127.0.0.51:1430\"\n",
        directory(&ldap.url())
    );
    let front = format!(
        "[node]\nname = \"fe\"\ndata_dir = \"DATA_DIR\"\n[[domain]]\nname = \"example.com\"\n{}\
         [proxy.smtp]\nlisten = \"127.0.0.52:1025\"\nuser_map = \"ldap\"\nbackend_port = 2525\n\
         [proxy.imap]\nlisten = \"127.0.0.52:1143\"\nuser_map = \"ldap\"\nauth = \"proxy\"\nbackend_port = 1430\n\
         [proxy.pop3]\nlisten = \"127.0.0.52:1110\"\nuser_map = \"ldap\"\nauth = \"proxy\"\nbackend_port = 1100\n",
        directory(&ldap.url())
    );
    let be = NodeProcess::from_config(
        dir.path(),
        "node-a",
        &backend,
        vec![addr("127.0.0.51", 2525), addr("127.0.0.51", 1100), addr("127.0.0.51", 1430)],
    );
    let fe = NodeProcess::from_config(
        dir.path(),
        "fe",
        &front,
        vec![addr("127.0.0.52", 1025), addr("127.0.0.52", 1110), addr("127.0.0.52", 1143)],
    );
    let (smtp, imap, pop3) = (addr("127.0.0.52", 1025), addr("127.0.0.52", 1143), addr("127.0.0.52", 1110));

    // alice's mailHost is node-a: delivered there, read back through the proxy.
    let reply = smtp_deliver(smtp, "alice@example.com", b"Subject: ldap\r\n\r\nrouted by mailHost\r\n");
    assert!(reply.starts_with("250 "), "{reply}\nfe:\n{}\nbe:\n{}", fe.log(), be.log());
    assert!(login(imap, "alice", "wonderland").starts_with("l OK"), "{}", fe.log());
    assert_eq!(login(imap, "alice", "nope"), "l NO [AUTHENTICATIONFAILED] Authentication failed\r\n");
    assert_eq!(login(imap, "mallory", "x"), "l NO [AUTHENTICATIONFAILED] Authentication failed\r\n");

    // The directory goes away: temporary errors everywhere, never a 5xx.
    ldap.stop();
    assert_eq!(login(imap, "alice", "wonderland"), "l NO [UNAVAILABLE] Directory unavailable, try again later\r\n");
    let mut p = LineClient::connect(pop3);
    p.line();
    p.cmd("USER alice@example.com");
    assert!(p.cmd("PASS wonderland").starts_with("-ERR [SYS/TEMP]"));
    let mut s = LineClient::connect(smtp);
    s.reply();
    s.cmd("EHLO client.test");
    s.cmd("MAIL FROM:<x@remote.test>");
    assert!(s.cmd("RCPT TO:<alice@example.com>").starts_with("451 4.4.3"));

    // Back again: works without restarting anything.
    ldap.spawn();
    assert!(login(imap, "alice", "wonderland").starts_with("l OK"), "{}", fe.log());
    let mut p = LineClient::connect(pop3);
    p.line();
    p.cmd("USER alice@example.com");
    assert!(p.cmd("PASS wonderland").starts_with("+OK"));
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
}
