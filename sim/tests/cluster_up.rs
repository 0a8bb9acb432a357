//! `tiermail-sim cluster up` with real processes: every account gets mail
//! through a node other than its home and reads it back (IMAP and POP3,
//! python's smtplib/imaplib/poplib) through yet another; `cluster kill` /
//! `start`, `cluster ldap down|up`, a taken port, a clean stop.
//!
//! Needs the node binary: `cargo build -p tiermail-node` (same target dir
//! and profile). Each test uses its own 127.0.0.x range, away from the
//! fixtures' (.11-.13, .21-.24) and a developer's running cluster.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SIM: &str = env!("CARGO_BIN_EXE_tiermail-sim");

fn sim() -> Command {
    let node = Path::new(SIM).with_file_name("tiermail-node");
    assert!(node.is_file(), "{} missing: run `cargo build -p tiermail-node` before these tests", node.display());
    Command::new(SIM)
}

/// A running `cluster up`; SIGTERMed on drop.
struct Up {
    child: Child,
    dir: tempfile::TempDir,
    state: Value,
}

impl Up {
    fn start(args: &[&str]) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(dir.path().join("up.out")).unwrap();
        let err = std::fs::File::create(dir.path().join("up.err")).unwrap();
        let child =
            sim().args(["cluster", "up", "--dir"]).arg(dir.path()).args(args).stdout(out).stderr(err).spawn().unwrap();
        let mut up = Up { child, dir, state: Value::Null };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(state) = up.read_state()
                && state["up_pid"] == up.child.id()
            {
                up.state = state;
                return up;
            }
            if let Some(status) = up.child.try_wait().unwrap() {
                panic!("cluster up exited ({status}):\n{}", up.output());
            }
            assert!(Instant::now() < deadline, "cluster up not ready:\n{}", up.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn read_state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path().join("cluster.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn output(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.path().join(f)).unwrap_or_default();
        format!("--- stdout\n{}--- stderr\n{}", read("up.out"), read("up.err"))
    }

    fn node(&self, name: &str) -> &Value {
        self.state["nodes"].as_array().unwrap().iter().find(|n| n["name"] == name).unwrap()
    }

    fn addr(&self, node: &str, service: &str) -> SocketAddr {
        self.node(node)["services"][service].as_str().unwrap().parse().unwrap()
    }

    fn pids(&self) -> Vec<u32> {
        let state = self.read_state().unwrap();
        state["nodes"].as_array().unwrap().iter().map(|n| n["pid"].as_u64().unwrap() as u32).collect()
    }

    /// `tiermail-sim cluster ARGS --dir DIR`, which must succeed.
    fn cluster(&self, args: &[&str]) -> String {
        let out = sim().arg("cluster").args(args).arg("--dir").arg(self.path()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "cluster {args:?}: {text}\n{}", self.output());
        text
    }

    /// Mail to every account through a non-home node, read back through another.
    fn round_trip(&self, tag: &str) {
        let out = Command::new("python3")
            .args(["-c", ROUND_TRIP])
            .arg(self.path().join("cluster.json"))
            .arg(tag)
            .output()
            .expect("python3");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "round trip failed:\n{text}\n{}", self.output());
        let accounts = self.state["accounts"].as_array().unwrap().iter().filter(|a| !a["password"].is_null()).count();
        assert!(accounts >= 5, "{:?}", self.state["accounts"]);
        assert_eq!(text.matches("ok ").count(), accounts, "{text}");
        eprint!("{text}");
    }

    /// SIGTERM; `up` must exit 0 and leave no node behind.
    fn stop(mut self) {
        let pids = self.pids();
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "cluster up did not stop:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}\n{}", self.output());
        // The nodes were `up`'s children and are reaped; give /proc a moment.
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
        assert!(left.is_empty(), "node processes left: {left:?}");
    }

    fn report_figures(&self) {
        let rss: Vec<String> = self.state["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let pid = n["pid"].as_u64().unwrap();
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: ?").to_owned();
                format!(
                    "{} {}",
                    n["name"].as_str().unwrap(),
                    rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
                )
            })
            .collect();
        eprintln!(
            "FIGURES {}: ready in {} ms; idle RSS {}",
            self.state["layout"],
            self.state["ready_ms"],
            rss.join(", ")
        );
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), libc::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with(['Z', 'X'])))
}

/// The tagged reply to an IMAP LOGIN (and SELECT INBOX's EXISTS line when it succeeds).
fn imap_login(addr: SocketAddr, user: &str, password: &str) -> String {
    let mut c = BufReader::new(TcpStream::connect(addr).unwrap());
    c.get_ref().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut line = String::new();
    c.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    let mut reply = String::new();
    for (tag, cmd) in [("l", format!("LOGIN \"{user}\" \"{password}\"")), ("s", "SELECT INBOX".to_owned())] {
        c.get_mut().write_all(format!("{tag} {cmd}\r\n").as_bytes()).unwrap();
        loop {
            line.clear();
            if c.read_line(&mut line).unwrap() == 0 {
                return reply;
            }
            if line.starts_with(&format!("{tag} ")) || line.contains(" EXISTS") {
                reply.push_str(&line);
            }
            if line.starts_with(&format!("{tag} ")) {
                break;
            }
        }
        if !reply.contains("l OK") {
            return reply;
        }
    }
    reply
}

/// Whether the LDAP server answers an anonymous bind (false: it drops us).
fn ldap_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // BindRequest, message 1, version 3, empty name, simple empty password.
    let _ = s.write_all(&[0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]);
    let mut first = [0u8; 1];
    matches!(s.read(&mut first), Ok(1)) && first[0] == 0x30
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_tier_cluster_serves_every_account_across_nodes_and_survives_a_node_kill() {
    let up = Up::start(&["--ip-base", "127.0.0.140", "--ldap", "127.0.0.140:3389"]);
    up.report_figures();
    assert_eq!(up.state["directory"], "ldap://127.0.0.140:3389");
    let out = std::fs::read_to_string(up.path().join("up.out")).unwrap();
    assert!(
        out.contains("alice@example.com")
            && out.contains("wonderland")
            && out.contains("check passwords in the directory"),
        "{out}"
    );
    assert!(!up.state["accounts"].to_string().contains("frank"), "frank's mailHost names no node");
    up.round_trip("one-tier");

    // node-b (bob, erin) killed: its users get a temporary error, others are served.
    up.cluster(&["kill", "node-b"]);
    let via_a = up.addr("node-a", "imap_proxy");
    eventually("bob unavailable", || imap_login(via_a, "bob@example.com", "builder").contains("NO [UNAVAILABLE]"));
    assert!(imap_login(via_a, "erin@example.com", "erin-pw").contains("NO [UNAVAILABLE]"));
    assert!(imap_login(up.addr("node-c", "imap_proxy"), "alice@example.com", "wonderland").contains("l OK"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!alive(up.node("node-b")["pid"].as_u64().unwrap() as u32), "not restarted without --restart");

    // Started again: its mail is all there (one message each from the round trip).
    let started = up.cluster(&["start", "node-b"]);
    assert!(started.contains("started node-b"), "{started}");
    // The proxies' circuit breaker may hold node-b off for up to 10 s.
    let via_c = up.addr("node-c", "imap_proxy");
    let mut last = String::new();
    eventually("bob back", || {
        last = imap_login(via_c, "bob@example.com", "builder");
        last.contains("l OK")
    });
    assert!(last.contains("* 1 EXISTS"), "{last}");
    assert!(imap_login(via_c, "erin@example.com", "erin-pw").contains("* 1 EXISTS"));

    // The directory down and up again, without restarting anything.
    let ldap: SocketAddr = "127.0.0.140:3389".parse().unwrap();
    assert!(ldap_answers(ldap));
    up.cluster(&["ldap", "down"]);
    eventually("ldap down", || !ldap_answers(ldap));
    // Temporary errors once cached answers expire (5 s in generated configs), never a pass or a 5xx.
    let via_b = up.addr("node-b", "imap_proxy");
    eventually("directory down reaches the proxies", || {
        imap_login(via_b, "alice@example.com", "wonderland").contains("NO [UNAVAILABLE] Directory unavailable")
    });
    assert!(
        imap_login(via_b, "carol@example.com", "wrong").contains("NO [UNAVAILABLE]"),
        "no verdict without a directory"
    );
    up.cluster(&["ldap", "up"]);
    eventually("ldap up", || ldap_answers(ldap));
    eventually("logins work again without restarts", || {
        imap_login(via_b, "alice@example.com", "wonderland").contains("l OK")
    });
    up.stop();
}

/// `cluster ldap down|up` returns once the change is in effect: a login
/// right after it (no wait, and none of these users cached) sees it.
#[test]
fn cluster_ldap_down_and_up_are_in_effect_when_the_command_returns() {
    let up = Up::start(&["--ip-base", "127.0.0.180", "--ldap", "127.0.0.180:3389"]);
    let via_b = up.addr("node-b", "imap_proxy");
    // A login first, so node-b holds a connection the server must now refuse.
    assert!(imap_login(via_b, "bob@example.com", "builder").contains("l OK"));
    let said = up.cluster(&["ldap", "down"]);
    let login = imap_login(via_b, "alice@example.com", "wonderland");
    assert!(login.contains("NO [UNAVAILABLE]"), "the first login after `ldap down` returned: {login}");
    assert!(said.contains("is down: in effect"), "{said}");
    let said = up.cluster(&["ldap", "up"]);
    let login = imap_login(via_b, "carol@example.com", "carol-pw");
    assert!(login.contains("l OK"), "the first login after `ldap up` returned: {login}");
    assert!(said.contains("is up: in effect"), "{said}");
    up.stop();
}

#[test]
fn two_tier_cluster_serves_every_account_through_the_front_ends() {
    let up = Up::start(&["--layout", "two-tier", "--ip-base", "127.0.0.150", "--ldap", "127.0.0.150:3389"]);
    up.report_figures();
    assert_eq!(up.node("fe-1")["role"], "front-end");
    assert!(up.node("be-1")["services"].get("smtp_proxy").is_none());
    up.round_trip("two-tier");

    up.cluster(&["kill", "be-2"]);
    let fe1 = up.addr("fe-1", "imap_proxy");
    eventually("bob unavailable", || imap_login(fe1, "bob@example.com", "builder").contains("NO [UNAVAILABLE]"));
    assert!(imap_login(fe1, "alice@example.com", "wonderland").contains("l OK"));
    up.cluster(&["start", "be-2"]);
    let fe2 = up.addr("fe-2", "imap_proxy");
    eventually("carol back", || imap_login(fe2, "carol@example.com", "carol-pw").contains("* 1 EXISTS"));
    up.stop();
}

#[test]
fn a_taken_port_stops_cluster_up_with_the_address() {
    let _taken = TcpListener::bind("127.0.0.161:1025").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out: Output = sim()
        .args(["cluster", "up", "--ip-base", "127.0.0.160", "--ldap", "127.0.0.160:3389", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("127.0.0.161:1025") && stderr.contains("node-a smtp_proxy"), "{stderr}");
    assert!(!dir.path().join("cluster.json").exists());
}

/// argv: cluster.json, a tag. For each account: SMTP through a proxy of a
/// node other than its home, IMAP and POP3 through yet another; the stored
/// message must end with the sent bytes, after only trace fields.
const ROUND_TRIP: &str = r#"
import json, sys, smtplib, imaplib, poplib
state = json.load(open(sys.argv[1])); tag = sys.argv[2]
proxies = [n for n in state["nodes"] if "smtp_proxy" in n["services"]]
def hp(a):
    h, p = a.rsplit(":", 1); return h, int(p)
def trace_only(prefix):
    for line in prefix.split(b"\r\n"):
        if line and not (line.startswith((b"Return-Path:", b"Received:")) or line[:1] in (b" ", b"\t")):
            raise SystemExit(f"unexpected header before the message: {line!r}")
for acc in state["accounts"]:
    user, pw, home = acc["user"], acc["password"], acc["home"]
    if pw is None:  # a directory user whose password the fixture does not give the cluster
        continue
    send = next(n for n in proxies if n["name"] != home)
    read = next((n for n in proxies if n["name"] not in (home, send["name"])), None) or \
        next(n for n in proxies if n["name"] != send["name"])
    subject = f"{tag}-{user.split('@')[0]}"
    body = (f"From: tester@example.org\r\nTo: {user}\r\nSubject: {subject}\r\n\r\n"
            f"sent via {send['name']}, read via {read['name']}\r\n.a line with a leading dot\r\n\r\nbye\r\n").encode()
    with smtplib.SMTP(*hp(send["services"]["smtp_proxy"]), timeout=20) as s:
        s.sendmail("tester@example.org", [user], body)
    m = imaplib.IMAP4(*hp(read["services"]["imap_proxy"]), timeout=20)
    m.login(user, pw); m.select("INBOX")
    ids = m.search(None, "SUBJECT", subject)[1][0].split()
    assert len(ids) == 1, (user, ids)
    raw = m.fetch(ids[0], "(BODY.PEEK[])")[1][0][1]
    assert raw.endswith(body), (user, raw)
    trace_only(raw[:-len(body)])
    m.logout()
    p = poplib.POP3(*hp(read["services"]["pop3_proxy"]), timeout=20)
    p.user(user); p.pass_(pw)
    got = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(len(p.list()[1]))]
    assert sum(g.endswith(body) for g in got) == 1, (user, got)
    p.quit()
    print(f"ok {user} (home {home}): sent via {send['name']}, read via {read['name']} (IMAP and POP3)")
"#;

#[path = "../../node/tests/ldap/slapd.rs"]
mod slapd;

/// `--directory ldap://…`: the nodes use an external OpenLDAP (slapd with
/// the fixture directory) instead of the embedded server.
#[test]
fn cluster_up_on_an_external_openldap() {
    if !slapd::available() {
        return;
    }
    let ldap = slapd::Slapd::start();
    let url = ldap.url();
    let up = Up::start(&["--ip-base", "127.0.0.170", "--ldap", "127.0.0.170:3389", "--directory", &url]);
    assert_eq!(up.state["directory"], url.as_str());
    assert!(!ldap_answers("127.0.0.170:3389".parse().unwrap()), "no embedded server with an external directory");
    up.round_trip("external");
    let out = sim().args(["cluster", "ldap", "down", "--dir"]).arg(up.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("external directory"));
    up.stop();
}
