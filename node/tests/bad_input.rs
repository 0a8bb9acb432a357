//! Hostile and broken clients get the protocol's error or a clean close;
//! the node keeps serving others and never delivers a partial message.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn smtp_bad_lines_are_answered_and_the_session_goes_on() {
    let node = NodeProcess::start();
    let mut c = LineClient::connect(node.smtp);
    c.reply();
    c.cmd("EHLO test");
    let long = format!("MAIL FROM:<{}@example.com>", "a".repeat(5000));
    assert!(c.cmd(&long).starts_with("500 5.5.2"), "over-long line");
    c.send(b"\x00\x01\x02\xff\xfe garbage\r\n");
    assert!(c.reply().starts_with("500"), "garbage");
    c.send(b"NO\x00OP\r\n");
    assert!(c.reply().starts_with("500"), "NUL byte");
    assert!(c.cmd("RCPT TO:<alice@example.com>").starts_with("503"), "RCPT before MAIL");
    assert!(c.cmd("MAIL FROM:<x@remote.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<nobody@example.com>").starts_with("550 5.1.1"), "unknown local user");
    assert!(c.cmd("RCPT TO:<victim@elsewhere.org>").starts_with("554 5.7.1"), "no open relay");
    assert!(c.cmd("RCPT TO:<alice@example.com>").starts_with("250"));
    assert!(c.cmd("VRFY alice").starts_with("252"));
    assert!(c.cmd("QUIT").starts_with("221"));
}

/// RFC 5321 4.5.1: `RCPT TO:<postmaster>` without a domain must be
/// accepted; it is the postmaster of the node's first domain.
#[test]
fn smtp_rcpt_to_bare_postmaster_is_accepted() {
    let node = NodeProcess::start();
    let mut c = LineClient::connect(node.smtp);
    c.reply();
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<x@remote.test>").starts_with("250"));
    let reply = c.cmd("RCPT TO:<Postmaster>");
    assert!(reply.starts_with("250"), "{reply}");
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: abuse report\r\n\r\nhello\r\n.").starts_with("250"));
    assert_eq!(std::fs::read_dir(node.maildir("postmaster").join("new")).unwrap().count(), 1);
}

#[test]
fn smtp_client_vanishing_mid_data_delivers_nothing_and_others_are_served() {
    let node = NodeProcess::start();
    let mut c = smtp_start_data(node.smtp, "alice@example.com");
    c.send(b"Subject: half\r\n\r\nthis message never ends");
    c.shutdown();
    // Another client is served meanwhile and afterwards.
    assert!(smtp_deliver(node.smtp, "bob@example.com", b"Subject: ok\r\n\r\nfine\r\n").starts_with("250 "));
    std::thread::sleep(Duration::from_millis(200));
    let mut pop = pop3_login(node.pop3, "alice@example.com");
    assert_eq!(pop.cmd("STAT"), "+OK 0 0\r\n", "nothing partial was delivered");
    assert!(std::fs::read_dir(node.maildir("alice").join("new")).unwrap().next().is_none());
    assert!(std::fs::read_dir(node.maildir("alice").join("tmp")).unwrap().next().is_none());
}

#[test]
fn smtp_oversized_message_is_refused_after_the_final_dot() {
    let node = NodeProcess::start();
    // 120 lines of 900 bytes: over the node's 100000-byte limit.
    let lines = format!("Subject: big\r\n\r\n{}", format!("{}\r\n", "y".repeat(900)).repeat(120));
    let reply = smtp_deliver(node.smtp, "alice@example.com", lines.as_bytes());
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(smtp_deliver(node.smtp, "alice@example.com", b"Subject: small\r\n\r\nok\r\n").starts_with("250 "));
}

#[test]
fn pop3_bad_lines_are_answered_and_the_session_goes_on() {
    let node = NodeProcess::start();
    let mut c = LineClient::connect(node.pop3);
    c.line();
    assert!(c.cmd(&"A".repeat(3000)).starts_with("-ERR Line too long"));
    c.send(b"US\x00ER alice\r\n");
    assert!(c.reply().starts_with("-ERR"));
    c.send(b"\xff\xfe\xfd\r\n");
    assert!(c.reply().starts_with("-ERR"));
    assert!(c.cmd("STAT").starts_with("-ERR Not logged in"));
    assert!(c.cmd("USER alice@example.com").starts_with("+OK"));
    assert!(c.cmd("PASS wrong").starts_with("-ERR [AUTH]"));
    assert!(c.cmd("USER alice@example.com").starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    assert!(c.cmd("RETR 1").starts_with("-ERR No such message"));
    assert!(c.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn a_flood_of_errors_gets_the_client_dropped() {
    let node = NodeProcess::start();
    let mut c = LineClient::connect(node.smtp);
    c.reply();
    for _ in 0..19 {
        assert!(c.cmd("BOGUS").starts_with("500"));
    }
    let last = c.cmd("BOGUS");
    assert!(last.starts_with("500"), "{last}");
    assert!(c.line().starts_with("421 4.7.0"));
    assert!(c.is_closed());
}

/// IMAP LOGIN with bytes that are not UTF-8 is refused, not "repaired":
/// a lossy conversion would turn every invalid byte into U+FFFD, so `\xff`
/// would open an account whose password is "\u{FFFD}". Directly and
/// through the proxy.
#[test]
fn imap_login_with_invalid_utf8_is_refused_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.map"), "eve@example.com 127.0.0.81\n").unwrap();
    let config = format!(
        "[node]\nname = \"n\"\ndata_dir = \"DATA_DIR\"\n[[domain]]\nname = \"example.com\"\n\
         [[account]]\naddress = \"eve@example.com\"\npassword = \"\u{FFFD}\"\n\
         [backend.imap]\nlisten = \"127.0.0.81:1430\"\n\
         [[user_map]]\nname = \"m\"\nkind = \"local-file\"\npath = \"{}\"\n\
         [proxy.imap]\nlisten = \"127.0.0.81:1143\"\nuser_map = \"m\"\nbackend_port = 1430\n",
        dir.path().join("users.map").display()
    );
    let (direct, proxy) = ("127.0.0.81:1430".parse().unwrap(), "127.0.0.81:1143".parse().unwrap());
    let _node = NodeProcess::from_config(dir.path(), "n", &config, vec![direct, proxy]);
    for addr in [direct, proxy] {
        let mut c = LineClient::connect(addr);
        c.line();
        c.send(b"a LOGIN eve@example.com {1+}\r\n\xff\r\n");
        let answer = c.line();
        assert!(!answer.starts_with("a OK"), "{addr}: {answer}");
        c.send("b LOGIN eve@example.com {3+}\r\n\u{FFFD}\r\n".as_bytes());
        let answer = c.line();
        assert!(answer.starts_with("b OK"), "{addr}: the real password works: {answer}");
    }
}
