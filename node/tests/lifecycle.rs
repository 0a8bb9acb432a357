//! Process lifecycle: config checking from the command line, and graceful
//! shutdown on SIGTERM that finishes the transaction in flight.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn sigterm_lets_the_transaction_in_flight_finish_then_exits_0() {
    let mut node = NodeProcess::start();
    let mut c = smtp_start_data(node.smtp, "alice@example.com");
    c.send(b"Subject: in flight\r\n\r\nstarted before SIGTERM\r\n");
    node.terminate();
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused...
    assert!(std::net::TcpStream::connect(node.smtp).is_err(), "still accepting after SIGTERM");
    // ...but the open transaction completes, then the session is closed.
    assert!(c.cmd(".").starts_with("250 "), "{}", node.log());
    assert!(c.line().starts_with("421 4.3.2"));
    let status = node.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    assert!(node.log().contains("shut down cleanly"));
    let new = std::fs::read_dir(node.maildir("alice").join("new")).unwrap().count();
    assert_eq!(new, 1);
}

#[test]
fn check_config_accepts_every_shipped_fixture() {
    let fixtures = repo_root().join("fixtures");
    let dirs = [fixtures.clone(), fixtures.join("one-tier"), fixtures.join("two-tier")];
    let mut checked = 0;
    for entry in dirs.iter().flat_map(|d| std::fs::read_dir(d).unwrap()) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out =
                Command::new(env!("CARGO_BIN_EXE_tiermail-node")).arg("check-config").arg(&path).output().unwrap();
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).ends_with("OK\n"));
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "node-a, three one-tier and four two-tier configs");
}

#[test]
fn check_config_reports_a_broken_user_map_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.map"),
        "alice@example.com node-a
broken
",
    )
    .unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        "[node]\nname = \"n\"\ndata_dir = \"d\"\n[[user_map]]\nname = \"m\"\nkind = \"local-file\"\npath = \"users.map\"\n[proxy.imap]\nlisten = \"127.0.0.1:1143\"\nuser_map = \"m\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tiermail-node")).arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim_end().ends_with("users.map:2: expected `user host[:port]`, got \"broken\""), "{stderr}");
}

#[test]
fn check_config_reports_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[node]\nname = \"bad name\"\ndata_dir = \"d\"\n\n[[account]]\naddress = \"a@nowhere.test\"\npassword = \"x\"\n\n[backend.smtp]\nlisten = \"nope\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tiermail-node")).arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].ends_with("bad.toml:2: node.name: must be letters, digits, '.', '-' or '_'"), "{stderr}");
    assert!(lines[1].contains("bad.toml:6: account[0].address"), "{stderr}");
    assert!(lines[2].contains("bad.toml:10: backend.smtp.listen"), "{stderr}");
}

#[test]
fn a_port_in_use_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        format!("[node]\nname = \"n\"\ndata_dir = \"d\"\n[backend.smtp]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tiermail-node")).arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen for SMTP on 127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn the_readme_passwords_open_the_fixture_accounts() {
    use tiermail_node::directory::{AuthOutcome, LocalAccounts};
    let config = tiermail_node::Config::load(&repo_root().join("fixtures/node-a.toml")).unwrap();
    let accounts = LocalAccounts::from_config(&config);
    for (user, password) in [("alice@example.com", "wonderland"), ("bob@example.com", "builder")] {
        assert!(matches!(accounts.authenticate(user, password), AuthOutcome::Accepted(_)), "{user}");
        assert_eq!(accounts.authenticate(user, "wrong"), AuthOutcome::Rejected);
    }
}
