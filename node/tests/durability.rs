//! Acknowledged mail survives kill -9: 250 after DATA means on disk.

mod common;

use common::*;

#[test]
fn kill_9_right_after_250_keeps_every_message_with_its_uid() {
    let mut node = NodeProcess::start();
    let first = b"Subject: first\r\n\r\nbefore the crash\r\n";
    assert!(smtp_deliver(node.smtp, "alice@example.com", first).starts_with("250 "));
    let mut pop = pop3_login(node.pop3, "alice@example.com");
    let before = pop3_uidl(&mut pop);
    pop.cmd("QUIT");
    assert_eq!(before.len(), 1);

    // Ten more, and SIGKILL the moment the last 250 arrives.
    let bodies: Vec<Vec<u8>> =
        (0..10).map(|i| format!("Subject: m{i}\r\n\r\nmessage {i} {}\r\n", "x".repeat(i * 100)).into_bytes()).collect();
    for body in &bodies {
        let reply = smtp_deliver(node.smtp, "alice@example.com", body);
        assert!(reply.starts_with("250 "), "{reply}");
    }
    node.kill9();
    node.spawn();

    let mut pop = pop3_login(node.pop3, "alice@example.com");
    let after = pop3_uidl(&mut pop);
    assert_eq!(after.len(), 11, "every acknowledged message is back: {after:?}\n{}", node.log());
    assert_eq!(after[0], before[0], "the first message kept its UIDL");
    // UIDL is UID then UIDVALIDITY: UIDs 1..=11 in delivery order, one UIDVALIDITY.
    let validity = &before[0].1[8..];
    for (i, (n, id)) in after.iter().enumerate() {
        assert_eq!((*n, id.as_str()), (i as u32 + 1, format!("{:08X}{validity}", i + 1).as_str()));
    }
    for (i, body) in bodies.iter().enumerate() {
        assert!(pop.cmd(&format!("RETR {}", i + 2)).starts_with("+OK"));
        let message = pop.multiline();
        assert!(message.ends_with(body), "message {} differs after restart", i + 2);
    }
    pop.cmd("QUIT");
}

#[test]
fn deletions_at_quit_survive_kill_9_and_uids_are_not_reused() {
    let mut node = NodeProcess::start();
    for i in 0..3 {
        smtp_deliver(node.smtp, "bob@example.com", format!("Subject: {i}\r\n\r\n{i}\r\n").as_bytes());
    }
    let mut pop = pop3_login(node.pop3, "bob@example.com");
    assert!(pop.cmd("DELE 3").starts_with("+OK"));
    assert!(pop.cmd("QUIT").starts_with("+OK"));
    node.kill9();
    node.spawn();
    smtp_deliver(node.smtp, "bob@example.com", b"Subject: 4\r\n\r\nafter\r\n");
    let mut pop = pop3_login(node.pop3, "bob@example.com");
    let uids: Vec<String> = pop3_uidl(&mut pop).into_iter().map(|(_, id)| id[..8].to_string()).collect();
    assert_eq!(uids, ["00000001", "00000002", "00000004"], "UID 3 was expunged and must not come back");
}
