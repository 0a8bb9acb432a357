//! The IMAP back-end against a real node process, with real clients: a raw
//! scripted session (snapshot), python's imaplib, curl's imap://, two
//! concurrent sessions, and kill -9 after APPEND.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn python(script: &str, args: &[String]) -> String {
    let out = Command::new("python3").arg(repo_root().join("tests/clients").join(script)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn every_command_in_one_scripted_session() {
    let node = NodeProcess::start();
    let transcript =
        python("imap_transcript.py", &[node.imap.port().to_string(), "alice@example.com".into(), PASSWORD.into()]);
    insta::assert_snapshot!(transcript);
}

#[test]
fn python_imaplib_reads_what_smtp_delivered() {
    let node = NodeProcess::start();
    let body = b"Subject: via smtp\r\n\r\nread me with imaplib\r\n";
    assert!(smtp_deliver(node.smtp, "bob@example.com", body).starts_with("250 "));
    let script = format!(
        r#"
import imaplib
m = imaplib.IMAP4("127.0.0.1", {port})
m.login("bob@example.com", "{PASSWORD}")
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"1"], data
typ, data = m.fetch("1", "(BODY[])")
assert data[0][1].endswith({body:?}.encode()), data
typ, data = m.fetch("1", "(FLAGS)")
assert b"\\Seen" in data[0], data
m.logout()
print("ok")
"#,
        port = node.imap.port(),
        body = String::from_utf8_lossy(body),
    );
    let out = Command::new("python3").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn curl_fetches_over_imap() {
    let node = NodeProcess::start();
    let body = b"Subject: for curl\r\n\r\ncurl reads IMAP\r\n";
    assert!(smtp_deliver(node.smtp, "alice@example.com", body).starts_with("250 "));
    let user = format!("alice@example.com:{PASSWORD}");
    let out = Command::new("curl")
        .args(["-sS", "-u", &user, &format!("imap://{}/INBOX;UID=1", node.imap)])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.ends_with(body), "{}", String::from_utf8_lossy(&out.stdout));
    let out = Command::new("curl")
        .args(["-sS", "-u", &user, &format!("imap://{}/INBOX", node.imap), "-X", "SEARCH ALL"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "* SEARCH 1");
}

/// A raw IMAP client for the concurrency tests.
fn imap_login(node: &NodeProcess) -> LineClient {
    let mut c = LineClient::connect(node.imap);
    assert!(c.line().starts_with("* OK"));
    let reply = imap_cmd(&mut c, "l", &format!("LOGIN alice@example.com {PASSWORD}"));
    assert!(reply.ends_with("l OK [CAPABILITY IMAP4REV1 LITERAL+ SASL-IR IDLE ID NAMESPACE UIDPLUS MOVE ENABLE UNSELECT SPECIAL-USE CHILDREN] Logged in\r\n"), "{reply}");
    c
}

/// Sends a tagged command and returns all lines up to the tagged reply.
fn imap_cmd(c: &mut LineClient, tag: &str, command: &str) -> String {
    c.send(format!("{tag} {command}\r\n").as_bytes());
    c.until_tagged(tag)
}

#[test]
fn delivery_wakes_idle_and_changes_reach_the_other_session() {
    let node = NodeProcess::start();
    let mut idler = imap_login(&node);
    assert!(imap_cmd(&mut idler, "s", "SELECT INBOX").contains("* 0 EXISTS"));
    idler.send(b"i IDLE\r\n");
    assert!(idler.line().starts_with("+ "));

    let started = std::time::Instant::now();
    assert!(smtp_deliver(node.smtp, "alice@example.com", b"Subject: wake up\r\n\r\n!\r\n").starts_with("250 "));
    assert_eq!(idler.line(), "* 1 EXISTS\r\n", "IDLE must report the delivery");
    eprintln!("IDLE woke {:?} after the SMTP transaction started", started.elapsed());
    assert_eq!(idler.line(), "* 1 RECENT\r\n");
    idler.send(b"DONE\r\n");
    assert_eq!(idler.line(), "i OK IDLE terminated\r\n");

    // A second session flags and expunges; the first sees both.
    let mut other = imap_login(&node);
    imap_cmd(&mut other, "s", "SELECT INBOX");
    assert!(imap_cmd(&mut other, "f", "STORE 1 +FLAGS (\\Flagged)").contains("FLAGS (\\Flagged)"));
    let noop = imap_cmd(&mut idler, "n", "NOOP");
    assert!(noop.contains("* 1 FETCH (FLAGS (\\Flagged \\Recent))"), "{noop}");
    imap_cmd(&mut other, "d", "STORE 1 +FLAGS (\\Deleted)");
    assert!(imap_cmd(&mut other, "e", "EXPUNGE").contains("* 1 EXPUNGE"));
    let noop = imap_cmd(&mut idler, "n2", "NOOP");
    assert!(noop.contains("* 1 EXPUNGE\r\n* 0 EXISTS\r\n"), "{noop}");
    // No EXPUNGE while answering FETCH by sequence number (RFC 3501 7.4.1).
    assert!(smtp_deliver(node.smtp, "alice@example.com", b"Subject: 2\r\n\r\n2\r\n").starts_with("250 "));
    assert!(imap_cmd(&mut other, "n", "NOOP").contains("* 1 EXISTS"));
    assert!(imap_cmd(&mut idler, "n3", "NOOP").contains("* 1 EXISTS"));
    imap_cmd(&mut idler, "d2", "STORE 1 +FLAGS (\\Deleted)");
    imap_cmd(&mut idler, "e2", "EXPUNGE");
    let fetch = imap_cmd(&mut other, "f2", "FETCH 1 FLAGS");
    assert!(!fetch.contains("EXPUNGE"), "{fetch}");
    assert!(imap_cmd(&mut other, "n2", "NOOP").contains("* 1 EXPUNGE"));
}

#[test]
fn kill_9_after_append_ok_keeps_message_uid_and_flags() {
    let mut node = NodeProcess::start();
    let mut c = imap_login(&node);
    let message = "Subject: appended\r\n\r\ndurable\r\n";
    c.send(format!("a APPEND Drafts (\\Draft \\Seen) {{{}+}}\r\n{message}\r\n", message.len()).as_bytes());
    let reply = c.line();
    assert!(reply.starts_with("a OK [APPENDUID "), "{reply}");
    let uid: u32 = reply.split_whitespace().nth(4).unwrap().trim_end_matches(']').parse().unwrap();
    imap_cmd(&mut c, "s", "SELECT INBOX");
    node.kill9();
    node.spawn();
    let mut c = imap_login(&node);
    imap_cmd(&mut c, "s", "SELECT Drafts");
    let fetch = imap_cmd(&mut c, "f", "UID FETCH 1:* (FLAGS BODY.PEEK[])");
    assert!(fetch.contains(&format!("UID {uid} FLAGS (\\Seen \\Draft)")), "{fetch}");
    assert!(fetch.contains(message), "{fetch}");
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    let node = NodeProcess::start();
    let script = format!(
        r#"
import imaplib, base64
m = imaplib.IMAP4("127.0.0.1", {port})
typ, data = m.authenticate("PLAIN", lambda _: b"\0alice@example.com\0{PASSWORD}")
assert typ == "OK", data
m.logout()
m = imaplib.IMAP4("127.0.0.1", {port})
try:
    m.authenticate("PLAIN", lambda _: b"\0alice@example.com\0wrong")
    raise SystemExit("a wrong password was accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
"#,
        port = node.imap.port()
    );
    let out = Command::new("python3").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // SASL-IR: the response on the command line.
    let mut c = LineClient::connect(node.imap);
    c.line();
    let ir = "AGFsaWNlQGV4YW1wbGUuY29tAHdvbmRlcmxhbmQ="; // \0alice@example.com\0wonderland
    assert!(imap_cmd(&mut c, "a", &format!("AUTHENTICATE PLAIN {ir}")).contains("a OK"));
}

#[test]
fn limits_answer_clearly_and_the_session_goes_on() {
    let node = NodeProcess::start();
    // Per-user sessions: the node allows 4 (tests' config).
    let mut sessions: Vec<LineClient> = (0..4).map(|_| imap_login(&node)).collect();
    let mut fifth = LineClient::connect(node.imap);
    fifth.line();
    let refused = imap_cmd(&mut fifth, "l", &format!("LOGIN alice@example.com {PASSWORD}"));
    assert!(refused.starts_with("l NO [LIMIT] Too many sessions"), "{refused}");
    assert!(imap_cmd(&mut sessions[0], "q", "LOGOUT").contains("q OK"));
    drop(sessions.remove(0));
    std::thread::sleep(Duration::from_millis(200));
    assert!(imap_cmd(&mut fifth, "l2", &format!("LOGIN alice@example.com {PASSWORD}")).contains("l2 OK"));
    // A literal over the message size limit (100000 in the tests' config).
    let c = &mut sessions[0];
    c.send(b"a APPEND INBOX {200000}\r\n");
    let reply = c.line();
    assert!(reply.starts_with("a BAD Literal too large: the limit is 100000 bytes"), "{reply}");
    assert!(imap_cmd(c, "n", "NOOP").contains("n OK"), "the session goes on");
    // An over-long command line.
    let long = format!("x LIST \"\" \"{}\"", "a".repeat(300_000));
    let reply = imap_cmd(c, "x", &long[2..]);
    assert!(reply.contains("x BAD"), "{}", &reply[..reply.len().min(200)]);
    assert!(imap_cmd(c, "n2", "NOOP").contains("n2 OK"));
}

/// Sends `prefix{n}` + CRLF, waits for the continuation, then the literal's
/// bytes, `suffix` and CRLF; returns every line up to the tagged reply.
fn imap_literal_cmd(c: &mut LineClient, tag: &str, prefix: &str, literal: &[u8], suffix: &str) -> String {
    c.send(format!("{tag} {prefix}{{{}}}\r\n", literal.len()).as_bytes());
    let go_ahead = c.line();
    assert!(go_ahead.starts_with("+ "), "{go_ahead}");
    c.send(literal);
    c.send(format!("{suffix}\r\n").as_bytes());
    c.until_tagged(tag)
}

#[test]
fn non_ascii_mailbox_names_are_refused_and_the_session_goes_on() {
    let node = NodeProcess::start();
    let mut c = imap_login(&node);
    let name = "é/x".as_bytes(); // 4 bytes: é is two
    for (tag, prefix, suffix) in [
        ("c", "CREATE ", ""),
        ("s", "SELECT ", ""),
        ("e", "EXAMINE ", ""),
        ("t", "STATUS ", " (MESSAGES)"),
        ("a", "APPEND ", " {3+}\r\nhi!"),
        ("u", "SUBSCRIBE ", ""),
        ("n", "UNSUBSCRIBE ", ""),
        ("d", "DELETE ", ""),
        ("r", "RENAME Work ", ""),
    ] {
        let reply = imap_literal_cmd(&mut c, tag, prefix, name, suffix);
        let last = reply.lines().last().unwrap_or_default().to_string();
        assert!(last.starts_with(&format!("{tag} NO")) || last.starts_with(&format!("{tag} BAD")), "{prefix}: {reply}");
        assert!(reply.is_ascii(), "{prefix}: reply text must be 7-bit: {reply:?}");
        assert!(imap_cmd(&mut c, "z", "NOOP").contains("z OK"), "{prefix}: the session goes on");
    }
}

/// The `UIDVALIDITY n` of a STATUS reply.
fn status_uid_validity(c: &mut LineClient, tag: &str, folder: &str) -> u64 {
    let reply = imap_cmd(c, tag, &format!("STATUS {folder} (UIDVALIDITY)"));
    let at = reply.find("UIDVALIDITY ").unwrap_or_else(|| panic!("{reply}")) + "UIDVALIDITY ".len();
    reply[at..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn a_recreated_or_renamed_mailbox_gets_a_greater_uidvalidity() {
    let node = NodeProcess::start();
    let mut c = imap_login(&node);
    assert!(imap_cmd(&mut c, "c1", "CREATE Work").contains("c1 OK"));
    let first = status_uid_validity(&mut c, "s1", "Work");
    assert!(imap_cmd(&mut c, "d1", "DELETE Work").contains("d1 OK"));
    assert!(imap_cmd(&mut c, "c2", "CREATE Work").contains("c2 OK"));
    let second = status_uid_validity(&mut c, "s2", "Work");
    assert!(second > first, "DELETE + CREATE: {second} after {first}");
    assert!(imap_cmd(&mut c, "c3", "CREATE Old").contains("c3 OK"));
    assert!(imap_cmd(&mut c, "d2", "DELETE Work").contains("d2 OK"));
    assert!(imap_cmd(&mut c, "r", "RENAME Old Work").contains("r OK"));
    let third = status_uid_validity(&mut c, "s3", "Work");
    assert!(third > second, "RENAME onto the name: {third} after {second}");
}
