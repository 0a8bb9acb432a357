//! The IMAP back-end inside a turmoil simulation, driven by async-imap over
//! the seam: login, select, IDLE woken by an SMTP delivery (lettre), fetch.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use tiermail_node::net::{Net, SimNet};
use tiermail_node::{Config, Env, Node};
use tiermail_sim::workload::smtp;

const CONFIG: &str = r#"
[node]
name = "node-a"
data_dir = "/data"
[[domain]]
name = "example.com"
[[account]]
address = "alice@example.com"
password = "wonderland"
[backend.smtp]
listen = "0.0.0.0:25"
[backend.imap]
listen = "0.0.0.0:143"
"#;

/// What the IMAP client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Simulated time from the delivery's 250 to IDLE's wake-up.
    wake_delay: Option<Duration>,
    body: Option<Vec<u8>>,
}

#[test]
fn idle_wakes_on_delivery_and_fetch_reads_it_in_simulation() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let delivered_at = Arc::new(Mutex::new(None));
    let mut sim = turmoil::Builder::new().rng_seed(11).simulation_duration(Duration::from_secs(120)).build();
    sim.host("node", || async {
        let config = Config::parse(Path::new("node-a.toml"), CONFIG)?;
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        Node::start(config, Env::simulated(epoch, [7; 32])).await?.run().await;
        Ok(())
    });
    let (out, when) = (seen.clone(), delivered_at.clone());
    sim.client("reader", async move {
        let stream = SimNet.connect("node:143").await?;
        let mut client = async_imap::Client::new(stream);
        client.read_response().await?.expect("greeting");
        let mut session = client.login("alice@example.com", "wonderland").await.map_err(|(e, _)| e)?;
        let mailbox = session.select("INBOX").await?;
        assert_eq!(mailbox.exists, 0);
        let mut idle = session.idle();
        idle.init().await?;
        let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(60));
        let response = wait.await?;
        assert!(matches!(response, async_imap::extensions::idle::IdleResponse::NewData(_)), "{response:?}");
        let woke = tokio::time::Instant::now();
        let mut session = idle.done().await?;
        let delivered: tokio::time::Instant = when.lock().unwrap().expect("delivered before the wake-up");
        let messages: Vec<_> = session.fetch("1", "BODY[]").await?.try_collect().await?;
        let body = messages[0].body().expect("BODY[]").to_vec();
        *out.lock().unwrap() = Seen { wake_delay: Some(woke - delivered), body: Some(body) };
        session.logout().await?;
        Ok(())
    });
    let when = delivered_at.clone();
    sim.client("sender", async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let reply =
            smtp::send(&SimNet, "node:25", "bob@remote.test", &["alice@example.com"], b"Subject: ping\r\n\r\nwake up")
                .await?;
        assert!(reply.is_positive());
        *when.lock().unwrap() = Some(tokio::time::Instant::now());
        Ok(())
    });
    sim.run().expect("simulation");
    let seen = seen.lock().unwrap();
    let body = seen.body.as_deref().expect("the reader fetched the message");
    assert!(body.ends_with(b"Subject: ping\r\n\r\nwake up\r\n"), "{}", String::from_utf8_lossy(body));
    let delay = seen.wake_delay.expect("woke");
    // Simulated time: deterministic, so this is a property, not a timing test.
    assert!(delay < Duration::from_secs(1), "IDLE woke {delay:?} after the 250");
}
