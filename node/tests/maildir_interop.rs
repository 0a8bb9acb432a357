//! Our Maildir is a real Maildir: Dovecot serves what we delivered, and we
//! still serve it after Dovecot has moved files into `cur/` with its flags
//! and added its own index and UID list files.
//!
//! Dovecot (`dovecot-imapd`) comes from the Debian package `.ci/run`
//! installs. Without it this test says so and passes, unless
//! TIERMAIL_REQUIRE_PEERS=1 (set by CI) makes a missing peer a failure.

mod common;

use common::*;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Dovecot lives in /usr/sbin, which a non-root PATH may lack.
fn dovecot() -> Option<PathBuf> {
    let out = Command::new("sh").arg("-c").arg("command -v dovecot || command -v /usr/sbin/dovecot").output().unwrap();
    if !out.status.success() {
        assert!(
            std::env::var("TIERMAIL_REQUIRE_PEERS").is_err(),
            "dovecot is required (TIERMAIL_REQUIRE_PEERS is set)"
        );
        eprintln!("SKIPPED: dovecot is not installed (apt-get install dovecot-imapd)");
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

/// Dovecot refuses mail processes with uid 0 ("userdb returned 0 as uid"),
/// so the mail is served as `nobody`, which owns the Maildir for the test.
const MAIL_UID: u32 = 65534;

/// A `dovecot -F` process serving one Maildir over IMAP on loopback.
struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Dovecot {
    fn start(binary: &Path, maildir: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The auth process runs as `dovecot` and must reach the passwd-file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("passwd"), format!("alice@example.com:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            r#"
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
# The users the Debian package created for Dovecot's own processes.
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {MAIL_UID}
mail_location = maildir:{maildir}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"#,
            maildir = maildir.display()
        );
        std::fs::write(dir.path().join("dovecot.conf"), config).unwrap();
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(dir.path().join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let mut dovecot = Dovecot { dir, port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = dovecot.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "dovecot exited at start ({exited:?}); log:\n{}", dovecot.log());
            assert!(Instant::now() < deadline, "dovecot not listening on {port}; log:\n{}", dovecot.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        dovecot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// SIGTERM: the master stops its imap, auth and login processes first.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok();
        child.wait().ok();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The message with SMTP dot-stuffing applied (RFC 5321 section 4.5.2).
fn dot_stuffed(message: &str) -> String {
    message.split_inclusive("\r\n").map(|l| if l.starts_with('.') { format!(".{l}") } else { l.to_string() }).collect()
}

/// Every file under the Maildir, relative, for failure messages.
fn listing(root: &Path) -> Vec<String> {
    let out = Command::new("find").arg(root).arg("-mindepth").arg("1").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches(&*root.to_string_lossy()).to_string())
        .collect()
}

#[test]
fn dovecot_reads_our_maildir() {
    let Some(binary) = dovecot() else { return };
    let mut node = NodeProcess::start();
    let head = "From: sender@remote.test\r\nTo: alice@example.com\r\nSubject: interop";
    let messages = [
        format!("{head} one\r\n\r\nBody one.\r\n.A line starting with a dot\r\n..and one with two\r\n"),
        format!("{head} two\r\n\r\nBody two, expunged over POP3.\r\n"),
        format!("{head} three\r\n\r\nBody three.\r\n"),
    ];
    for message in &messages {
        let reply = smtp_deliver(node.smtp, "alice@example.com", dot_stuffed(message).as_bytes());
        assert!(reply.starts_with("250 "), "{reply}");
    }
    // POP3 expunges "two": Dovecot must see the other two only.
    let mut pop = pop3_login(node.pop3, "alice@example.com");
    assert!(pop.cmd("DELE 2").starts_with("+OK"));
    assert!(pop.cmd("QUIT").starts_with("+OK"));
    let mut pop = pop3_login(node.pop3, "alice@example.com");
    let uidl_before = pop3_uidl(&mut pop);
    pop.cmd("QUIT");
    assert_eq!(uidl_before.len(), 2, "{uidl_before:?}");
    node.kill9();
    let kept = [messages[0].as_bytes(), messages[2].as_bytes()];

    // Hand the Maildir to the mail uid Dovecot runs as; let it traverse to it.
    let maildir = node.maildir("alice");
    let status = Command::new("chown").arg("-R").arg(format!("{MAIL_UID}:{MAIL_UID}")).arg(&maildir).status().unwrap();
    assert!(status.success(), "chown the Maildir (this test must run as root)");
    std::fs::set_permissions(node.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();

    let mut dovecot = Dovecot::start(&binary, &maildir);
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/clients/dovecot_check.py"))
        .args([&dovecot.port.to_string(), "alice@example.com", PASSWORD, "2"])
        .arg(out_dir.path())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nfiles: {:#?}\ndovecot log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        listing(&maildir),
        dovecot.log()
    );
    for (i, sent) in kept.iter().enumerate() {
        let fetched = std::fs::read(out_dir.path().join(format!("{}.eml", i + 1))).unwrap();
        assert!(fetched.starts_with(b"Return-Path: <sender@remote.test>\r\nReceived: "), "{fetched:?}");
        assert!(fetched.ends_with(sent), "Dovecot's message {} differs:\n{}", i + 1, String::from_utf8_lossy(&fetched));
    }
    dovecot.stop();
    let files = listing(&maildir);
    assert!(files.iter().any(|f| f.starts_with("/cur/") && f.ends_with(":2,S")), "Dovecot set \\Seen: {files:#?}");

    // Back to us: same two messages, same UIDLs, same bytes.
    node.spawn();
    let mut pop = pop3_login(node.pop3, "alice@example.com");
    let uidl_after = pop3_uidl(&mut pop);
    assert_eq!(uidl_after, uidl_before, "files after Dovecot: {files:#?}\nnode log:\n{}", node.log());
    for (i, sent) in kept.iter().enumerate() {
        let reply = pop.cmd(&format!("RETR {}", i + 1));
        assert!(reply.starts_with("+OK"), "{reply}\nfiles after Dovecot: {files:#?}\nnode log:\n{}", node.log());
        assert!(pop.multiline().ends_with(sent), "message {} differs after Dovecot", i + 1);
    }
    pop.cmd("QUIT");
}
