//! Proxies routing by user map across real node processes on 127.0.0.x:
//! a one-tier cluster (every node runs proxies and back-end) and a two-tier
//! one (proxy front-ends, back-ends, a failover back-end).

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;

const SMTP_BE: u16 = 2525;
const POP3_BE: u16 = 1100;
const IMAP_BE: u16 = 1430;
const SMTP_PX: u16 = 1025;
const POP3_PX: u16 = 1110;
const IMAP_PX: u16 = 1143;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A node config: back-end services and/or proxies, hosting `accounts`.
fn node_config(
    name: &str,
    ip: &str,
    backend: bool,
    proxies: bool,
    accounts: &[&str],
    map: &Path,
    failover: Option<&str>,
) -> String {
    let mut text =
        format!("[node]\nname = \"{name}\"\ndata_dir = \"DATA_DIR\"\n\n[[domain]]\nname = \"example.com\"\n");
    for user in accounts {
        text += &format!("\n[[account]]\naddress = \"{user}@example.com\"\npassword = \"pw-{user}\"\n");
    }
    if backend {
        text += &format!(
            "\n[backend.smtp]\nlisten = \"{ip}:{SMTP_BE}\"\n[backend.pop3]\nlisten = \"{ip}:{POP3_BE}\"\n[backend.imap]\nlisten = \"{ip}:{IMAP_BE}\"\n"
        );
    }
    if proxies {
        let failover = |port: u16| failover.map(|ip| format!("failover = \"{ip}:{port}\"\n")).unwrap_or_default();
        text += &format!(
            "\n[[user_map]]\nname = \"cluster\"\nkind = \"local-file\"\npath = \"{}\"\n\
             \n[proxy.smtp]\nlisten = \"{ip}:{SMTP_PX}\"\nuser_map = \"cluster\"\nbackend_port = {SMTP_BE}\n\
             \n[proxy.imap]\nlisten = \"{ip}:{IMAP_PX}\"\nuser_map = \"cluster\"\nbackend_port = {IMAP_BE}\n{}\
             \n[proxy.pop3]\nlisten = \"{ip}:{POP3_PX}\"\nuser_map = \"cluster\"\nbackend_port = {POP3_BE}\n{}",
            map.display(),
            failover(IMAP_BE),
            failover(POP3_BE),
        );
    }
    text
}

fn start(
    dir: &Path,
    name: &str,
    ip: &str,
    backend: bool,
    proxies: bool,
    accounts: &[&str],
    failover: Option<&str>,
) -> NodeProcess {
    let config = node_config(name, ip, backend, proxies, accounts, &dir.join("users.map"), failover);
    let mut wait = Vec::new();
    if backend {
        wait.extend([addr(ip, SMTP_BE), addr(ip, POP3_BE), addr(ip, IMAP_BE)]);
    }
    if proxies {
        wait.extend([addr(ip, SMTP_PX), addr(ip, POP3_PX), addr(ip, IMAP_PX)]);
    }
    NodeProcess::from_config(dir, name, &config, wait)
}

fn imap_session(proxy: SocketAddr, user: &str, password: &str) -> (LineClient, String) {
    let mut c = LineClient::connect(proxy);
    assert!(c.line().starts_with("* OK"));
    c.send(format!("l LOGIN \"{user}@example.com\" \"{password}\"\r\n").as_bytes());
    let mut reply = String::new();
    loop {
        let line = c.line();
        reply.push_str(&line);
        if line.starts_with("l ") || line.is_empty() {
            return (c, reply);
        }
    }
}

fn imap_tagged(c: &mut LineClient, tag: &str, command: &str) -> String {
    c.send(format!("{tag} {command}\r\n").as_bytes());
    c.until_tagged(tag)
}

#[test]
fn one_tier_any_node_reaches_the_users_home_node() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.map"),
        "# user            home node\nbob@example.com 127.0.0.21\ncarol@example.com 127.0.0.22\nalice@example.com 127.0.0.23\n",
    )
    .unwrap();
    let _a = start(dir.path(), "node-a", "127.0.0.21", true, true, &["bob"], None);
    let _b = start(dir.path(), "node-b", "127.0.0.22", true, true, &["carol"], None);
    let c = start(dir.path(), "node-c", "127.0.0.23", true, true, &["alice"], None);

    // Delivered through node-b's SMTP proxy to alice, whose home is node-c.
    let body = b"Subject: across the cluster\r\n\r\nfrom node-b to node-c\r\n";
    let reply = smtp_deliver(addr("127.0.0.22", SMTP_PX), "alice@example.com", body);
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(std::fs::read_dir(c.maildir("alice").join("new")).unwrap().count(), 1, "stored on node-c");

    // Read through node-a's IMAP proxy...
    let (mut imap, login) = imap_session(addr("127.0.0.21", IMAP_PX), "alice", "pw-alice");
    assert!(login.contains("l OK"), "{login}");
    assert!(imap_tagged(&mut imap, "s", "SELECT INBOX").contains("* 1 EXISTS"));
    let fetched = imap_tagged(&mut imap, "f", "FETCH 1 BODY.PEEK[]");
    assert!(fetched.contains("from node-b to node-c"), "{fetched}");
    imap_tagged(&mut imap, "q", "LOGOUT");

    // ...and through node-a's POP3 proxy.
    let mut pop = LineClient::connect(addr("127.0.0.21", POP3_PX));
    assert!(pop.line().starts_with("+OK"));
    assert!(pop.cmd("USER alice@example.com").starts_with("+OK"));
    assert!(pop.cmd("PASS pw-alice").starts_with("+OK"));
    assert!(pop.cmd("RETR 1").starts_with("+OK"));
    assert!(pop.multiline().ends_with(body));
    assert!(pop.cmd("QUIT").starts_with("+OK"));

    // One back-end per transaction: a recipient elsewhere is deferred (452).
    let mut smtp = LineClient::connect(addr("127.0.0.21", SMTP_PX));
    smtp.reply();
    smtp.cmd("EHLO client.test");
    smtp.cmd("MAIL FROM:<x@remote.test>");
    assert!(smtp.cmd("RCPT TO:<alice@example.com>").starts_with("250"));
    assert!(smtp.cmd("RCPT TO:<bob@example.com>").starts_with("452 4.5.3"));
    assert!(smtp.cmd("RCPT TO:<nobody@example.com>").starts_with("550 5.1.1"), "unmapped local recipient");
    assert!(smtp.cmd("RCPT TO:<victim@elsewhere.test>").starts_with("554 5.7.1"), "no open relay through the proxy");

    // Open-relay probe through every node's SMTP proxy.
    for ip in ["127.0.0.21", "127.0.0.22", "127.0.0.23"] {
        let reply = smtp_rcpt_reply(addr(ip, SMTP_PX), "victim@elsewhere.test");
        assert!(reply.starts_with("554 5.7.1"), "{ip}: {reply}");
    }
}

#[test]
fn failed_logins_look_the_same_whoever_decides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.map"), "alice@example.com 127.0.0.24\n").unwrap();
    let _n = start(dir.path(), "node-d", "127.0.0.24", true, true, &["alice"], None);
    let proxy = addr("127.0.0.24", IMAP_PX);
    let wrong_password = imap_session(proxy, "alice", "nope").1;
    let injection = imap_session(proxy, "*)(uid=*", "x").1;
    let unknown = imap_session(proxy, "mallory", "x").1;
    assert_eq!(wrong_password, "l NO [AUTHENTICATIONFAILED] Authentication failed\r\n");
    assert_eq!(injection, wrong_password, "an injection attempt reads like a wrong password");
    assert_eq!(unknown, wrong_password, "an unknown user reads like a wrong password");
}

#[test]
fn two_tier_front_ends_route_to_back_ends_and_unmapped_users_to_failover() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.map"), "alice@example.com 127.0.0.33\nbob@example.com 127.0.0.34\n").unwrap();
    let failover = Some("127.0.0.35");
    let _fe1 = start(dir.path(), "fe-1", "127.0.0.31", false, true, &[], failover);
    let _fe2 = start(dir.path(), "fe-2", "127.0.0.32", false, true, &[], failover);
    let _be1 = start(dir.path(), "be-1", "127.0.0.33", true, false, &["alice"], None);
    let mut be2 = start(dir.path(), "be-2", "127.0.0.34", true, false, &["bob"], None);
    let _be3 = start(dir.path(), "be-3", "127.0.0.35", true, false, &["dave"], None);

    for (front, user) in [("127.0.0.31", "alice"), ("127.0.0.32", "bob"), ("127.0.0.32", "alice")] {
        let body = format!("Subject: via {front}\r\n\r\nfor {user}\r\n");
        let reply = smtp_deliver(addr(front, SMTP_PX), &format!("{user}@example.com"), body.as_bytes());
        assert!(reply.starts_with("250 "), "{front} {user}: {reply}");
        let other_front = if front.ends_with(".31") { "127.0.0.32" } else { "127.0.0.31" };
        let (mut imap, login) = imap_session(addr(other_front, IMAP_PX), user, &format!("pw-{user}"));
        assert!(login.contains("l OK"), "{login}");
        imap_tagged(&mut imap, "s", "SELECT INBOX");
        let search = imap_tagged(&mut imap, "f", &format!("SEARCH SUBJECT \"via {front}\""));
        assert!(search.starts_with("* SEARCH "), "{search}");
    }

    // dave is in no map: the failover back-end (be-3) holds him.
    let (_imap, login) = imap_session(addr("127.0.0.31", IMAP_PX), "dave", "pw-dave");
    assert!(login.contains("l OK"), "failover address: {login}");

    // A back-end killed mid-session: the relayed session ends cleanly (the
    // proxy closes it), other users' sessions carry on.
    let (mut bob_session, login) = imap_session(addr("127.0.0.31", IMAP_PX), "bob", "pw-bob");
    assert!(login.contains("l OK"), "{login}");
    let (mut alice_session, login) = imap_session(addr("127.0.0.31", IMAP_PX), "alice", "pw-alice");
    assert!(login.contains("l OK"), "{login}");
    imap_tagged(&mut bob_session, "s", "SELECT INBOX");
    be2.kill9();
    bob_session.send(b"n NOOP\r\n");
    assert!(bob_session.is_closed(), "a dead back-end closes the relayed session instead of hanging it");
    assert!(imap_tagged(&mut alice_session, "n", "NOOP").contains("n OK"), "alice's session is unaffected");

    // A back-end down: its users get a temporary error, others are served.
    let (_c, login) = imap_session(addr("127.0.0.31", IMAP_PX), "bob", "pw-bob");
    assert_eq!(login, "l NO [UNAVAILABLE] Mail server unavailable, try again later\r\n");
    let mut pop = LineClient::connect(addr("127.0.0.32", POP3_PX));
    pop.line();
    pop.cmd("USER bob@example.com");
    assert!(pop.cmd("PASS pw-bob").starts_with("-ERR [SYS/TEMP]"));
    let (_c, login) = imap_session(addr("127.0.0.31", IMAP_PX), "alice", "pw-alice");
    assert!(login.contains("l OK"));
    let reply = smtp_rcpt_reply(addr("127.0.0.31", SMTP_PX), "bob@example.com");
    assert!(reply.starts_with("451 4.4.1"), "{reply}");
    be2.spawn();
    let (_c, login) = imap_session(addr("127.0.0.32", IMAP_PX), "bob", "pw-bob");
    assert!(login.contains("l OK"), "bob is back with his mail: {login}");
}

/// The reply to RCPT for one recipient.
fn smtp_rcpt_reply(proxy: SocketAddr, to: &str) -> String {
    let mut c = LineClient::connect(proxy);
    c.reply();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<x@remote.test>");
    c.cmd(&format!("RCPT TO:<{to}>"))
}

/// The shipped one-tier fixtures, as a newcomer would run them (data dirs
/// moved into a temp dir): mail for alice (home node-a) sent through
/// node-b, read through node-c, with the README's password.
#[test]
fn the_shipped_one_tier_fixtures_work() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo_root().join("fixtures/one-tier");
    let mut nodes = Vec::new();
    for (name, ip) in [("node-a", "127.0.0.11"), ("node-b", "127.0.0.12"), ("node-c", "127.0.0.13")] {
        let text = std::fs::read_to_string(fixtures.join(format!("{name}.toml"))).unwrap();
        let text = text
            .replace(&format!("\"../../var/one-tier/{name}\""), "\"DATA_DIR\"")
            .replace("path = \"users.map\"", &format!("path = \"{}\"", fixtures.join("users.map").display()));
        let wait = [SMTP_BE, POP3_BE, IMAP_BE, SMTP_PX, POP3_PX, IMAP_PX].map(|p| addr(ip, p)).to_vec();
        nodes.push(NodeProcess::from_config(dir.path(), name, &text, wait));
    }
    let body = b"Subject: fixture tour\r\n\r\nhello alice\r\n";
    assert!(smtp_deliver(addr("127.0.0.12", SMTP_PX), "alice@example.com", body).starts_with("250 "));
    let mut c = LineClient::connect(addr("127.0.0.13", IMAP_PX));
    c.line();
    assert!(imap_tagged(&mut c, "l", "LOGIN alice@example.com wonderland").contains("l OK"));
    assert!(imap_tagged(&mut c, "s", "SELECT INBOX").contains("* 1 EXISTS"));
    assert!(imap_tagged(&mut c, "f", "FETCH 1 BODY[TEXT]").contains("hello alice"));
}

/// After login the IMAP proxy relays byte for byte: the scripted session
/// (every command, literals, IDLE) reads the same through the proxy as
/// straight to a back-end, from the first command after LOGIN on.
#[test]
fn the_imap_proxy_is_byte_transparent_after_login() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.map"), "alice@example.com 127.0.0.27\n").unwrap();
    let _direct = start(dir.path(), "node-f", "127.0.0.26", true, true, &["alice"], None);
    let _proxied = start(dir.path(), "node-g", "127.0.0.27", true, true, &["alice"], None);
    let transcript = |addr: SocketAddr| {
        let out = std::process::Command::new("python3")
            .arg(repo_root().join("tests/clients/imap_transcript.py"))
            .args([addr.port().to_string(), "alice@example.com".into(), "pw-alice".into()])
            .env("TIERMAIL_IMAP_HOST", addr.ip().to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let text = String::from_utf8(out.stdout).unwrap();
        let start = text.find("C: a5 NOOP").expect("the session got past LOGIN");
        text[start..].to_string()
    };
    let direct = transcript(addr("127.0.0.26", IMAP_BE));
    let proxied = transcript(addr("127.0.0.26", IMAP_PX));
    assert!(direct.contains("S: z1 OK LOGOUT completed"));
    assert_eq!(proxied, direct);
}

/// Messages in a Maildir (new/ and cur/).
fn stored(node: &NodeProcess, user: &str) -> usize {
    ["new", "cur"].iter().map(|d| std::fs::read_dir(node.maildir(user).join(d)).map_or(0, |r| r.count())).sum()
}

/// Issue 12, item 1, with smtplib exactly as reproduced: RCPT alice (home
/// node-a) → 250; node-a killed; RCPT dave (node-a) → 4xx; RCPT bob (node-b);
/// DATA. DATA may only get 250 if alice, who got 250, has her copy; since
/// node-a is gone it must get a 4xx, so the client retries everyone.
#[test]
fn smtp_proxy_never_acknowledges_data_when_an_accepted_recipients_backend_died() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.map"),
        "alice@example.com 127.0.0.41\ndave@example.com 127.0.0.41\nbob@example.com 127.0.0.42\n",
    )
    .unwrap();
    let mut a = start(dir.path(), "node-a", "127.0.0.41", true, true, &["alice", "dave"], None);
    let b = start(dir.path(), "node-b", "127.0.0.42", true, true, &["bob"], None);

    let mut client = std::process::Command::new("python3")
        .arg(repo_root().join("tests/clients/smtp_backend_lost_mid_transaction.py"))
        .args(["127.0.0.42", &SMTP_PX.to_string(), "alice@example.com", "dave@example.com", "bob@example.com"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "RCPT alice@example.com 250");
    a.kill9();
    std::io::Write::write_all(client.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(client.wait().unwrap().success(), "{rest}");
    let data = rest.lines().find_map(|l| l.strip_prefix("DATA ")).expect("DATA was sent");
    assert!(rest.lines().any(|l| l.starts_with("RCPT dave@example.com 4")), "{rest}");
    assert!(data.starts_with('4'), "DATA must not be acknowledged while alice's copy cannot be stored:\n{rest}");
    assert_eq!(stored(&b, "bob"), 0, "nothing delivered from a transaction answered 4xx");

    // The client retries (smtplib's sendmail, then the deferred recipient):
    // everyone ends up with exactly one copy.
    a.spawn();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import smtplib, sys\n\
             s = smtplib.SMTP('127.0.0.42', int(sys.argv[1]), timeout=30)\n\
             todo = ['alice@example.com', 'dave@example.com', 'bob@example.com']\n\
             while todo:\n\
             \x20   refused = s.sendmail('sender@remote.test', todo, b'Subject: retry\\r\\n\\r\\nagain\\r\\n')\n\
             \x20   todo = [r for r, (code, _) in refused.items() if 400 <= code < 500]\n\
             s.quit()\n",
        )
        .arg(SMTP_PX.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((stored(&a, "alice"), stored(&a, "dave"), stored(&b, "bob")), (1, 1, 1));
}

/// Issue 12, item 2: the proxy's own "452 4.5.3 recipient on another server"
/// is flow control, not a client error: a message to 30 recipients over
/// three back-ends is delivered in three transactions of one session.
#[test]
fn smtp_proxy_delivers_to_thirty_recipients_over_three_backends_in_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.43", "127.0.0.44", "127.0.0.45"];
    let users: Vec<String> = (0..30).map(|n| format!("u{n:02}")).collect();
    let map: String = users.iter().enumerate().map(|(n, u)| format!("{u}@example.com {}\n", ips[n % 3])).collect();
    std::fs::write(dir.path().join("users.map"), map).unwrap();
    let nodes: Vec<NodeProcess> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let homed: Vec<&str> = users.iter().skip(i).step_by(3).map(String::as_str).collect();
            start(dir.path(), &format!("node-{i}"), ip, true, true, &homed, None)
        })
        .collect();
    let mut smtp = LineClient::connect(addr(ips[0], SMTP_PX));
    smtp.reply();
    smtp.cmd("EHLO client.test");
    let mut todo = users.clone();
    for transaction in 1..=3 {
        assert!(smtp.cmd("MAIL FROM:<x@remote.test>").starts_with("250"));
        let mut deferred = Vec::new();
        for user in &todo {
            let reply = smtp.cmd(&format!("RCPT TO:<{user}@example.com>"));
            match &reply[..3] {
                "250" => {}
                "452" => deferred.push(user.clone()),
                _ => panic!("transaction {transaction}, {user}: {reply}"),
            }
        }
        assert_eq!(todo.len() - deferred.len(), 10, "one back-end's ten recipients per transaction");
        assert!(smtp.cmd("DATA").starts_with("354"));
        let reply = smtp.cmd("Subject: to thirty\r\n\r\nhello\r\n.");
        assert!(reply.starts_with("250"), "transaction {transaction}: {reply}");
        todo = deferred;
    }
    assert!(todo.is_empty());
    for (n, user) in users.iter().enumerate() {
        assert_eq!(stored(&nodes[n % 3], user), 1, "{user}");
    }
}
