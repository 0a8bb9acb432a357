//! How long a proxy waits for a back-end, and when it stops trying one: a
//! back-end that accepts but never greets (hung) trips the breaker, a node
//! that comes back is used again within a probe interval, and a back-end
//! whose login answer takes longer than the connect timeout (its own
//! directory check) is waited for.
//!
//! The hung and slow back-ends are small scripted TCP servers in this file:
//! real back-ends cannot be told to hang or to be slow on purpose.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const IMAP_PX: u16 = 1143;
const POP3_PX: u16 = 1110;
const IMAP_BE: u16 = 1430;
const POP3_BE: u16 = 1100;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A proxy-only node: the map sends each user to `homes`' address, the
/// greeting must come within one second (`connect_timeout_secs = 1`).
fn proxy_node(dir: &std::path::Path, ip: &str, homes: &[(&str, &str)]) -> NodeProcess {
    let map: String = homes.iter().map(|(user, ip)| format!("{user}@example.com {ip}\n")).collect();
    std::fs::write(dir.join("users.map"), map).unwrap();
    let config = format!(
        "[node]\nname = \"px\"\ndata_dir = \"DATA_DIR\"\n[[domain]]\nname = \"example.com\"\n\
         [[user_map]]\nname = \"m\"\nkind = \"local-file\"\npath = \"{}\"\n\
         [proxy.imap]\nlisten = \"{ip}:{IMAP_PX}\"\nuser_map = \"m\"\nbackend_port = {IMAP_BE}\nconnect_timeout_secs = 1\n\
         [proxy.pop3]\nlisten = \"{ip}:{POP3_PX}\"\nuser_map = \"m\"\nbackend_port = {POP3_BE}\nconnect_timeout_secs = 1\n",
        dir.join("users.map").display()
    );
    NodeProcess::from_config(dir, "px", &config, vec![addr(ip, IMAP_PX), addr(ip, POP3_PX)])
}

/// The tagged answer to an IMAP LOGIN through the proxy.
fn imap_login(proxy: &str, user: &str, password: &str) -> String {
    let mut c = LineClient::connect(addr(proxy, IMAP_PX));
    assert!(c.line().starts_with("* OK"));
    c.send(format!("l LOGIN {user}@example.com {password}\r\n").as_bytes());
    loop {
        let line = c.line();
        if line.starts_with("l ") || line.is_empty() {
            return line;
        }
    }
}

/// Accepts connections on `at`, counts them, and serves each with `serve`
/// on its own thread.
fn scripted_backend(at: SocketAddr, serve: fn(TcpStream)) -> Arc<AtomicUsize> {
    let listener = TcpListener::bind(at).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || serve(stream));
        }
    });
    accepted
}

/// Hung: accepts and never says a word.
fn hung(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(60));
    drop(stream);
}

/// Greets and answers ID at once, but takes 2 s (twice the proxy's connect
/// timeout) to accept the LOGIN, as a back-end on a slow directory does.
fn slow_imap_login(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    out.write_all(b"* OK slow back-end ready\r\n").unwrap();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        let tag = line.split(' ').next().unwrap_or("*").to_string();
        if line.contains(" LOGIN ") {
            std::thread::sleep(Duration::from_secs(2));
            out.write_all(format!("{tag} OK LOGIN completed\r\n").as_bytes()).unwrap();
        } else {
            out.write_all(format!("{tag} OK done\r\n").as_bytes()).unwrap();
        }
        line.clear();
    }
}

/// The POP3 version: PASS is answered after 2 s.
fn slow_pop3_login(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    out.write_all(b"+OK slow back-end ready\r\n").unwrap();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line.starts_with("PASS ") {
            std::thread::sleep(Duration::from_secs(2));
            out.write_all(b"+OK logged in\r\n").unwrap();
        } else {
            out.write_all(b"+OK\r\n").unwrap();
        }
        line.clear();
    }
}

#[test]
fn a_backend_that_accepts_but_never_greets_trips_the_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let accepted = scripted_backend(addr("127.0.0.61", IMAP_BE), hung);
    let _proxy = proxy_node(dir.path(), "127.0.0.65", &[("alice", "127.0.0.61")]);
    for attempt in 1..=5 {
        let answer = imap_login("127.0.0.65", "alice", "pw");
        assert!(answer.starts_with("l NO [UNAVAILABLE]"), "attempt {attempt}: {answer}");
    }
    // Three greetings timed out; the next two logins, well within the probe
    // interval, were answered without another connection to the hung node.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn a_node_that_comes_back_is_used_again_within_a_probe_interval() {
    let dir = tempfile::tempdir().unwrap();
    let backend_config = format!(
        "[node]\nname = \"be\"\ndata_dir = \"DATA_DIR\"\n[[domain]]\nname = \"example.com\"\n\
         [[account]]\naddress = \"bob@example.com\"\npassword = \"{PASSWORD}\"\n\
         [backend.imap]\nlisten = \"127.0.0.63:{IMAP_BE}\"\n"
    );
    let mut backend = NodeProcess::from_config(dir.path(), "be", &backend_config, vec![addr("127.0.0.63", IMAP_BE)]);
    let proxy = proxy_node(dir.path(), "127.0.0.66", &[("bob", "127.0.0.63")]);
    assert!(imap_login("127.0.0.66", "bob", PASSWORD).starts_with("l OK"));
    backend.kill9();
    for _ in 0..3 {
        assert!(imap_login("127.0.0.66", "bob", PASSWORD).starts_with("l NO [UNAVAILABLE]"));
    }
    assert!(proxy.log().contains("back-end breaker open"), "{}", proxy.log());
    backend.spawn();
    std::thread::sleep(Duration::from_millis(1200));
    let answer = imap_login("127.0.0.66", "bob", PASSWORD);
    assert!(answer.starts_with("l OK"), "the first login after a probe interval goes through: {answer}");
}

#[test]
fn a_login_slower_than_the_connect_timeout_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    scripted_backend(addr("127.0.0.64", IMAP_BE), slow_imap_login);
    scripted_backend(addr("127.0.0.64", POP3_BE), slow_pop3_login);
    let _proxy = proxy_node(dir.path(), "127.0.0.67", &[("carol", "127.0.0.64")]);
    let answer = imap_login("127.0.0.67", "carol", "pw");
    assert!(answer.starts_with("l OK"), "{answer}");
    let mut pop = LineClient::connect(addr("127.0.0.67", POP3_PX));
    assert!(pop.line().starts_with("+OK"));
    assert!(pop.cmd("USER carol@example.com").starts_with("+OK"));
    let answer = pop.cmd("PASS pw");
    assert!(answer.starts_with("+OK"), "{answer}");
}
