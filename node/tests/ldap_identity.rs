//! One identity, one home (DESIGN invariant 10), on real processes and a
//! real OpenLDAP slapd with the fixture directory: a back-end serves only
//! the users the directory homes on it, and a user has one mailbox, named
//! after the entry's `mail`, whatever name or alias they log in or receive
//! mail with.

mod common;
#[path = "ldap/slapd.rs"]
mod slapd;

use common::*;
use std::net::SocketAddr;
use std::path::Path;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A back-end named `name` on `ip`, checking logins and recipients in the
/// directory at `url`; `hosts` is its `[hosts]` table.
fn backend(dir: &Path, name: &str, ip: &str, url: &str, hosts: &str) -> NodeProcess {
    let config = format!(
        r#"
[node]
name = "{name}"
data_dir = "DATA_DIR"
[[domain]]
name = "example.com"
[hosts]
{hosts}
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
[backend]
auth_map = "ldap"
[backend.smtp]
listen = "{ip}:2525"
[backend.pop3]
listen = "{ip}:1100"
[backend.imap]
listen = "{ip}:1430"
"#
    );
    NodeProcess::from_config(dir, name, &config, vec![addr(ip, 2525), addr(ip, 1100), addr(ip, 1430)])
}

fn imap_login(ip: &str, user: &str, password: &str) -> String {
    let mut c = LineClient::connect(addr(ip, 1430));
    c.line();
    c.cmd(&format!("a LOGIN {user} {password}"))
}

/// USER/PASS; the reply to PASS and, when logged in, the one to STAT.
fn pop3(ip: &str, user: &str, password: &str) -> (String, Option<String>) {
    let mut c = LineClient::connect(addr(ip, 1100));
    c.line();
    c.cmd(&format!("USER {user}"));
    let pass = c.cmd(&format!("PASS {password}"));
    let stat = pass.starts_with("+OK").then(|| c.cmd("STAT"));
    c.cmd("QUIT");
    (pass, stat)
}

fn rcpt(ip: &str, to: &str) -> String {
    let mut s = LineClient::connect(addr(ip, 2525));
    s.reply();
    s.cmd("EHLO client.test");
    s.cmd("MAIL FROM:<x@remote.test>");
    s.cmd(&format!("RCPT TO:<{to}>"))
}

/// Account trees under a node's data directory, as `domain/user`.
fn mailboxes(node: &NodeProcess) -> Vec<String> {
    let data = node.maildir("x").parent().unwrap().parent().unwrap().to_path_buf();
    let mut out = Vec::new();
    for domain in std::fs::read_dir(&data).into_iter().flatten().flatten().filter(|e| e.path().is_dir()) {
        for user in std::fs::read_dir(domain.path()).unwrap().flatten() {
            out.push(format!("{}/{}", domain.file_name().to_string_lossy(), user.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

#[test]
fn backend_refuses_logins_and_mail_for_users_homed_elsewhere() {
    if !slapd::available() {
        return;
    }
    let ldap = slapd::Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let hosts = "node-a = \"127.0.0.53\"\nnode-b = \"127.0.0.54\"";
    let a = backend(dir.path(), "node-a", "127.0.0.53", &ldap.url(), hosts);
    let b = backend(dir.path(), "node-b", "127.0.0.54", &ldap.url(), hosts);

    // alice lives on node-a: node-b answers "not here", temporarily, on
    // every service, and keeps nothing of hers.
    let login = imap_login("127.0.0.54", "alice@example.com", "wonderland");
    assert!(login.starts_with("a NO [UNAVAILABLE] ") && login.contains("not on this server"), "{login}");
    let (pass, _) = pop3("127.0.0.54", "alice@example.com", "wonderland");
    assert!(pass.starts_with("-ERR [SYS/TEMP] ") && pass.contains("not on this server"), "{pass}");
    let reply = rcpt("127.0.0.54", "alice@example.com");
    assert!(reply.starts_with("451 4.") && reply.contains("not on this server"), "{reply}");
    assert!(!b.maildir("alice").exists(), "node-b made a mailbox for alice");
    let log = b.log();
    assert!(log.contains("WARN") && log.contains("alice@example.com") && log.contains("node-a"), "{log}");
    // A wrong password is still just a failed login, wherever asked.
    let wrong = imap_login("127.0.0.54", "alice@example.com", "nope");
    assert!(wrong.starts_with("a NO [AUTHENTICATIONFAILED]"), "{wrong}");

    // Her home serves her; node-b serves its own users.
    assert!(imap_login("127.0.0.53", "alice@example.com", "wonderland").starts_with("a OK"), "{}", a.log());
    assert!(pop3("127.0.0.53", "alice", "wonderland").0.starts_with("+OK"));
    assert!(rcpt("127.0.0.53", "alice@example.com").starts_with("250 "));
    assert!(imap_login("127.0.0.54", "bob", "builder").starts_with("a OK"), "{}", b.log());
    assert!(rcpt("127.0.0.54", "bob@example.com").starts_with("250 "));
    // frank's mailHost names no node of ours: not here either.
    assert!(rcpt("127.0.0.53", "frank@example.com").starts_with("451 4."));
}

#[test]
fn one_identity_one_mailbox_whatever_name_is_used() {
    if !slapd::available() {
        return;
    }
    let ldap = slapd::Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    // This back-end is home to node-a's users (its name) and node-b's (its
    // [hosts] entry names its address).
    let node = backend(dir.path(), "node-a", "127.0.0.55", &ldap.url(), "node-b = \"127.0.0.55\"");
    let ip = "127.0.0.55";

    // jsmith's mail is john.smith@example.com; rosa's alias is sales@.
    for to in ["john.smith@example.com", "jsmith@example.com", "sales@example.com", "rosa@example.com"] {
        let accepted = rcpt(ip, to);
        assert!(accepted.starts_with("250 "), "{to}: {accepted}");
        let reply = smtp_deliver(addr(ip, 2525), to, format!("Subject: to {to}\r\n\r\nhi\r\n").as_bytes());
        assert!(reply.starts_with("250 "), "{to}: {reply}\n{}", node.log());
    }
    for (login, password) in [
        ("jsmith", "jsmith-pw"),
        ("john.smith@example.com", "jsmith-pw"),
        ("JSmith@Example.com", "jsmith-pw"),
        ("rosa", "rosa-pw"),
        ("sales@example.com", "rosa-pw"),
    ] {
        let (pass, stat) = pop3(ip, login, password);
        assert!(pass.starts_with("+OK"), "{login}: {pass}\n{}", node.log());
        assert!(stat.as_deref().unwrap_or("").starts_with("+OK 2 "), "{login}: both messages in one mailbox: {stat:?}");
    }
    assert_eq!(mailboxes(&node), ["example.com/john.smith", "example.com/rosa"]);
}

#[test]
fn a_login_in_any_domain_matching_the_uid_uses_that_users_own_mailbox() {
    if !slapd::available() {
        return;
    }
    let ldap = slapd::Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let node = backend(dir.path(), "node-a", "127.0.0.56", &ldap.url(), "");
    // The default pattern matches uid=%u whatever the domain: alice@any.tld
    // with alice's password is alice, and opens her own INBOX.
    let mut c = LineClient::connect(addr("127.0.0.56", 1430));
    c.line();
    let login = c.cmd("a LOGIN alice@any.tld wonderland");
    assert!(login.starts_with("a OK"), "{login}\n{}", node.log());
    c.send(b"b SELECT INBOX\r\n");
    let select = std::iter::repeat_with(|| c.line()).find(|l| l.starts_with("b ") || l.is_empty()).unwrap();
    assert!(select.starts_with("b OK"), "{select}");
    c.cmd("c LOGOUT");
    assert_eq!(mailboxes(&node), ["example.com/alice"], "no account tree for any.tld");
}
