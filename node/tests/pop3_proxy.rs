//! The POP3 proxy's login dialogue against a real node process: what it
//! forwards to the back-end as `USER`/`PASS` lines, and the RFC 5034
//! initial response of `AUTH PLAIN`. One node runs the back-end and the
//! proxy; users the map does not know go to the failover address, its own
//! back-end, so any login name reaches a back-end. Each test has its own
//! address (127.0.0.71, .72), as tests run side by side.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use std::net::SocketAddr;

const POP3_BE: u16 = 1100;
const POP3_PX: u16 = 1110;
/// Long enough that `AUTH PLAIN <initial response>` is about 100 octets.
const LONG_PASSWORD: &str = "correct-horse-battery-staple-and-then-some-more-words";

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// Back-end POP3 and the POP3 proxy on one node; alice has a long password.
fn start(dir: &std::path::Path, ip: &str) -> NodeProcess {
    std::fs::write(dir.join("users.map"), format!("alice@example.com {ip}\n")).unwrap();
    let config = format!(
        "[node]\nname = \"pop3-proxy-test\"\ndata_dir = \"DATA_DIR\"\n\
         \n[[domain]]\nname = \"example.com\"\n\
         \n[[account]]\naddress = \"alice@example.com\"\npassword = \"{LONG_PASSWORD}\"\n\
         \n[backend.pop3]\nlisten = \"{ip}:{POP3_BE}\"\n\
         \n[[user_map]]\nname = \"cluster\"\nkind = \"local-file\"\npath = \"{}\"\n\
         \n[proxy.pop3]\nlisten = \"{ip}:{POP3_PX}\"\nuser_map = \"cluster\"\nbackend_port = {POP3_BE}\n\
         failover = \"{ip}:{POP3_BE}\"\n",
        dir.join("users.map").display()
    );
    NodeProcess::from_config(dir, "pop3-proxy-test", &config, vec![addr(ip, POP3_BE), addr(ip, POP3_PX)])
}

/// The reply to `AUTH PLAIN <base64 of NUL login NUL password>`.
fn auth_plain(to: SocketAddr, login: &str, password: &str) -> String {
    let mut c = LineClient::connect(to);
    assert!(c.line().starts_with("+OK"));
    let initial = STANDARD.encode(format!("\0{login}\0{password}"));
    c.cmd(&format!("AUTH PLAIN {initial}"))
}

#[test]
fn pop3_proxy_refuses_credentials_with_line_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let ip = "127.0.0.71";
    let node = start(dir.path(), ip);
    // Forwarded as is, the login would become two lines at the back-end,
    // `USER alice@example.com` and `NOOP`, whose +OK the proxy would take
    // for the answer to `PASS wrong`: a login without the password.
    for (login, password) in [
        ("alice@example.com\r\nNOOP", "wrong"),
        ("alice@example.com\nNOOP", "wrong"),
        ("alice@example.com", "wrong\r\nNOOP"),
        ("alice@example.com\rNOOP", "wrong"),
    ] {
        let reply = auth_plain(addr(ip, POP3_PX), login, password);
        assert!(reply.starts_with("-ERR "), "{login:?} / {password:?} got: {reply}\nnode log:\n{}", node.log());
        assert!(!reply.contains("[SYS/TEMP]"), "a malformed login is not a temporary failure: {reply}");
    }
    // The back-end refuses them too, also when asked directly.
    let reply = auth_plain(addr(ip, POP3_BE), "alice@example.com\r\nNOOP", "wrong");
    assert!(reply.starts_with("-ERR "), "{reply}");
    // The same account with its password still logs in through the proxy.
    let reply = auth_plain(addr(ip, POP3_PX), "alice@example.com", LONG_PASSWORD);
    assert!(reply.starts_with("+OK"), "{reply}\nnode log:\n{}", node.log());
}

#[test]
fn pop3_auth_plain_initial_response_may_be_255_octets() {
    let dir = tempfile::tempdir().unwrap();
    let ip = "127.0.0.72";
    let node = start(dir.path(), ip);
    let initial = STANDARD.encode(format!("\0alice@example.com\0{LONG_PASSWORD}"));
    assert!(initial.len() > 40, "longer than RFC 2449's 40-octet argument");
    for (service, to) in [("proxy", addr(ip, POP3_PX)), ("back-end", addr(ip, POP3_BE))] {
        let reply = auth_plain(to, "alice@example.com", LONG_PASSWORD);
        assert!(reply.starts_with("+OK"), "{service}: {reply}\nnode log:\n{}", node.log());
    }
    // Beyond RFC 5034's 255 octets: a clear error naming the limit, and the
    // session goes on (the client may send AUTH PLAIN without it).
    let mut c = LineClient::connect(addr(ip, POP3_PX));
    c.line();
    let too_long = STANDARD.encode(format!("\0alice@example.com\0{}", "x".repeat(200)));
    assert!(too_long.len() > 255);
    let reply = c.cmd(&format!("AUTH PLAIN {too_long}"));
    assert!(reply.starts_with("-ERR ") && reply.contains("255"), "{reply}");
    assert!(c.cmd("AUTH PLAIN").starts_with("+ "));
    let reply = c.cmd(&initial);
    assert!(reply.starts_with("+OK"), "{reply}");
}
