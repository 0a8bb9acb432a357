//! Unmodified real clients against a real node process: python's smtplib
//! and poplib, swaks, curl's pop3://.
//!
//! swaks and curl come from Debian packages that `.ci/run` installs. On a
//! machine without them these two tests say so and pass, unless
//! TIERMAIL_REQUIRE_PEERS=1 (set by CI) makes a missing peer a failure.

mod common;

use common::*;
use std::process::Command;

fn have(tool: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("TIERMAIL_REQUIRE_PEERS").is_err(), "{tool} is required (TIERMAIL_REQUIRE_PEERS is set)");
        eprintln!("SKIPPED: {tool} is not installed (apt-get install {tool})");
    }
    found
}

#[test]
fn python_smtplib_and_poplib_round_trip() {
    let node = NodeProcess::start();
    let script = repo_root().join("tests/clients/smtplib_poplib_roundtrip.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(node.smtp.port().to_string())
        .arg(node.pop3.port().to_string())
        .arg("alice@example.com")
        .arg(PASSWORD)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}\nnode log:\n{}", String::from_utf8_lossy(&out.stderr), node.log());
    assert!(stdout.contains("OK: 2 delivered"), "{stdout}");
}

#[test]
fn swaks_delivers_with_and_without_auth() {
    if !have("swaks") {
        return;
    }
    let node = NodeProcess::start();
    let server = node.smtp.to_string();
    let plain = Command::new("swaks")
        .args(["--server", &server, "--to", "bob@example.com", "--from", "a@remote.test", "--body", "via swaks"])
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stdout));
    let auth = Command::new("swaks")
        .args(["--server", &server, "--to", "bob@example.com", "--from", "alice@example.com"])
        .args(["--auth", "LOGIN", "--auth-user", "alice@example.com", "--auth-password", PASSWORD])
        .args(["--body", "authenticated"])
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&auth.stdout);
    assert!(auth.status.success() && transcript.contains("235 2.7.0"), "{transcript}");
    let relay = Command::new("swaks")
        .args(["--server", &server, "--to", "victim@elsewhere.test", "--from", "a@remote.test"])
        .output()
        .unwrap();
    assert!(!relay.status.success());
    assert!(String::from_utf8_lossy(&relay.stdout).contains("554 5.7.1"), "relay must be denied");
    let mut pop = pop3_login(node.pop3, "bob@example.com");
    assert!(pop.cmd("STAT").starts_with("+OK 2 "));
}

#[test]
fn curl_reads_over_pop3() {
    if !have("curl") {
        return;
    }
    let node = NodeProcess::start();
    let body = b"Subject: for curl\r\n\r\ncurl can read this\r\n";
    assert!(smtp_deliver(node.smtp, "alice@example.com", body).starts_with("250 "));
    let user = format!("alice@example.com:{PASSWORD}");
    let list = Command::new("curl").args(["-sS", "-u", &user, &format!("pop3://{}/", node.pop3)]).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("1 "), "LIST via curl");
    let retr = Command::new("curl").args(["-sS", "-u", &user, &format!("pop3://{}/1", node.pop3)]).output().unwrap();
    assert!(retr.status.success());
    assert!(retr.stdout.ends_with(body), "{}", String::from_utf8_lossy(&retr.stdout));
}
