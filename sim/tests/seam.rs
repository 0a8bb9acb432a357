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
