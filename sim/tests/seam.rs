//! The seam, proven both ways: the same SMTP + POP3 services and the same
//! client code run inside a turmoil simulation and over real loopback TCP.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tiermail_node::net::{Net, SimNet, TokioNet};
use tiermail_node::{Config, Env, Node};
use tiermail_sim::trace;
use tiermail_sim::workload::pop3::Pop3Client;
use tiermail_sim::workload::smtp;

/// lettre ends the data with CRLF . CRLF itself, so the message as stored
/// is this plus a final CRLF.
const MESSAGE: &[u8] =
    b"From: bob@elsewhere.org\r\nTo: alice@example.com\r\nSubject: seam\r\n\r\nHello through the seam.\r\n.leading dot";

fn config(data_dir: &str, ip: &str, smtp: u16, pop3: u16) -> Config {
    let text = format!(
        r#"
[node]
name = "node-a"
data_dir = "{data_dir}"
[[domain]]
name = "example.com"
[[account]]
address = "alice@example.com"
password = "wonderland"
[backend.smtp]
listen = "{ip}:{smtp}"
[backend.pop3]
listen = "{ip}:{pop3}"
"#
    );
    Config::parse(Path::new("node-a.toml"), &text).expect("valid config")
}

/// Delivers MESSAGE over SMTP (lettre) and reads it back over POP3.
async fn deliver_and_read_back(net: &dyn Net, smtp_addr: &str, pop3_addr: &str) -> Vec<u8> {
    let reply =
        smtp::send(net, smtp_addr, "bob@elsewhere.org", &["alice@example.com"], MESSAGE).await.expect("SMTP delivery");
    assert!(reply.is_positive(), "{reply:?}");
    let mut pop = Pop3Client::new(net.connect(pop3_addr).await.expect("POP3 connect")).await.expect("greeting");
    pop.login("alice@example.com", "wonderland").await.expect("login");
    assert_eq!(pop.stat().await.expect("STAT").0, 1);
    let message = pop.retr(1).await.expect("RETR");
    pop.quit().await.expect("QUIT");
    message
}

fn assert_is_message_with_trace_headers(retrieved: &[u8]) {
    let text = String::from_utf8_lossy(retrieved);
    assert!(text.starts_with("Return-Path: <bob@elsewhere.org>\r\nReceived: from "), "{text}");
    let body = &retrieved[retrieved.len() - MESSAGE.len() - 2..];
    assert_eq!(body, [MESSAGE, b"\r\n"].concat(), "body changed in transit:\n{text}");
}

/// One simulated run: a node host and a client host. Returns what the
/// client read back and the run's event log.
fn simulate(seed: u64) -> (Vec<u8>, String) {
    let (retrieved, log) = trace::capture(|| {
        let mut sim = turmoil::Builder::new().rng_seed(seed).simulation_duration(Duration::from_secs(60)).build();
        sim.host("node", || async {
            let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
            let node = Node::start(config("/data", "0.0.0.0", 25, 110), Env::simulated(epoch, [7; 32])).await?;
            node.run().await;
            Ok(())
        });
        let out = Arc::new(Mutex::new(None));
        let slot = out.clone();
        sim.client("client", async move {
            let message = deliver_and_read_back(&SimNet, "node:25", "node:110").await;
            *slot.lock().unwrap() = Some(message);
            Ok(())
        });
        sim.run().expect("simulation");
        out.lock().unwrap().take().expect("client finished")
    });
    (retrieved, log)
}

#[test]
fn smtp_then_pop3_in_simulation_is_deterministic() {
    let (first, log1) = simulate(7);
    assert_is_message_with_trace_headers(&first);
    let (second, log2) = simulate(7);
    assert_eq!(first, second);
    assert!(log1.contains("delivered"), "the log should record the delivery:\n{log1}");
    assert_eq!(log1, log2, "same seed, different event logs");
}

#[tokio::test]
async fn smtp_then_pop3_over_real_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir.path().display().to_string(), "127.0.0.1", 0, 0);
    let node = Node::start(config, Env::real(SystemTime::now(), [1; 32])).await.expect("node starts");
    let (smtp_addr, pop3_addr) = (node.smtp_addr().unwrap().to_string(), node.pop3_addr().unwrap().to_string());
    let retrieved = deliver_and_read_back(&TokioNet, &smtp_addr, &pop3_addr).await;
    assert_is_message_with_trace_headers(&retrieved);
    node.shutdown().await;
}

/// Simulated wall-clock time at the start of the run below.
const EPOCH_SECS: u64 = 1_790_000_000;

/// The time of day (seconds) of a message's Received date.
fn received_time_of_day(message: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(message);
    let received = text.split("\r\n\r\n").next().unwrap().split("Received:").nth(1).expect("a Received field");
    let date = received.split(";\r\n\t").nth(1).expect("a date after ';'");
    let time = date.split(' ').nth(4).expect("HH:MM:SS");
    time.split(':').map(|part| part.parse::<u64>().expect("a number")).fold(0, |secs, n| secs * 60 + n)
}

/// A node crashed and restarted mid-run keeps the world's one timeline:
/// each message's Received date is the simulated time it arrived at, so
/// dates (and INTERNALDATE, UIDVALIDITY, Maildir names) never go backwards.
#[test]
fn simulated_dates_never_go_backwards_across_a_node_restart() {
    let mut sim = turmoil::Builder::new().rng_seed(3).simulation_duration(Duration::from_secs(120)).build();
    sim.host("node", || async {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS);
        Node::start(config("/data", "0.0.0.0", 25, 110), Env::simulated(epoch, [7; 32])).await?.run().await;
        Ok(())
    });
    let out = Arc::new(Mutex::new(Vec::new()));
    let slot = out.clone();
    sim.client("client", async move {
        let (start, mut sent_at) = (tokio::time::Instant::now(), Vec::new());
        // The node restarts at 20 s: one message before, one after.
        for (at, subject) in [(10, "before"), (25, "after")] {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            let now = turmoil::sim_elapsed().unwrap();
            let message = format!("Subject: {subject}\r\n\r\nbody\r\n");
            let reply = smtp::send(&SimNet, "node:25", "bob@elsewhere.org", &["alice@example.com"], message.as_bytes())
                .await
                .expect("SMTP delivery");
            assert!(reply.is_positive(), "{reply:?}");
            sent_at.push(now);
        }
        let mut pop = Pop3Client::new(SimNet.connect("node:110").await?).await?;
        pop.login("alice@example.com", "wonderland").await?;
        let mut read = Vec::new();
        for (n, at) in (1..).zip(sent_at) {
            read.push((at, pop.retr(n).await?));
        }
        pop.quit().await?;
        *slot.lock().unwrap() = read;
        Ok(())
    });
    let mut restarted = false;
    while !sim.step().expect("simulation") {
        if !restarted && sim.elapsed() >= Duration::from_secs(20) {
            sim.crash("node");
            sim.bounce("node");
            restarted = true;
        }
    }
    let read = out.lock().unwrap().clone();
    assert_eq!(read.len(), 2);
    let mut previous = 0;
    for (sent_at, message) in read {
        let dated = received_time_of_day(&message);
        let expected = (EPOCH_SECS + sent_at.as_secs()) % 86_400;
        assert!(
            dated.abs_diff(expected) <= 2,
            "sent at {sent_at:?} of simulated time, dated {dated} s into the day, expected about {expected}:\n{}",
            String::from_utf8_lossy(&message)
        );
        assert!(dated >= previous, "a date went backwards:\n{}", String::from_utf8_lossy(&message));
        previous = dated;
    }
}
