//! Helpers for tests against a real `tiermail-node` process on loopback.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "wonderland";

/// A node process with its own data directory and ports.
pub struct NodeProcess {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp: SocketAddr,
    pub pop3: SocketAddr,
    pub imap: SocketAddr,
    /// Addresses that must accept connections before the node counts as up.
    wait_for: Vec<SocketAddr>,
    child: Option<Child>,
}

/// A free loopback port (bound, then released for the node to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl NodeProcess {
    /// Writes a config for alice@ and bob@example.com and starts the node.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (smtp, pop3, imap) = (free_port(), free_port(), free_port());
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[node]
name = "node-test"
data_dir = "data"

[limits]
max_line_length = 1000
max_message_size = 100000
idle_timeout_secs = 30
shutdown_grace_secs = 10
max_sessions_per_user = 4

[[domain]]
name = "example.com"

[[account]]
address = "alice@example.com"
password = "{PASSWORD}"

[[account]]
address = "bob@example.com"
password = "{PASSWORD}"

[[account]]
address = "postmaster@example.com"
password = "{PASSWORD}"

[backend.smtp]
listen = "127.0.0.1:{smtp}"

[backend.pop3]
listen = "127.0.0.1:{pop3}"

[backend.imap]
listen = "127.0.0.1:{imap}"
"#
            ),
        )
        .unwrap();
        let mut node = NodeProcess {
            dir,
            config,
            smtp: ([127, 0, 0, 1], smtp).into(),
            pop3: ([127, 0, 0, 1], pop3).into(),
            imap: ([127, 0, 0, 1], imap).into(),
            wait_for: Vec::new(),
            child: None,
        };
        node.spawn();
        node
    }

    /// A node from config text written into `dir` (shared with other nodes
    /// of a cluster test); up once every address in `wait_for` accepts.
    pub fn from_config(dir: &Path, name: &str, config: &str, wait_for: Vec<SocketAddr>) -> Self {
        let own = tempfile::tempdir_in(dir).unwrap();
        let path = own.path().join(format!("{name}.toml"));
        std::fs::write(&path, config.replace("DATA_DIR", &own.path().join("data").display().to_string())).unwrap();
        let unused: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut node =
            NodeProcess { dir: own, config: path, smtp: unused, pop3: unused, imap: unused, wait_for, child: None };
        node.spawn();
        node
    }

    /// The Maildir of one account.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("data/example.com").join(user)
    }

    /// (Re)starts the process and waits until both ports accept.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("node.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tiermail-node"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tiermail-node");
        self.child = Some(child);
        let addrs =
            if self.wait_for.is_empty() { vec![self.smtp, self.pop3, self.imap] } else { self.wait_for.clone() };
        for addr in addrs {
            wait_for_port(addr, self);
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, without waiting.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (after `terminate`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("node did not exit within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn wait_for_port(addr: SocketAddr, node: &mut NodeProcess) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(node.is_running(), "node exited at start; log:\n{}", node.log());
        assert!(Instant::now() < deadline, "node not listening on {addr}; log:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line-oriented test client: send raw bytes, read replies.
pub struct LineClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineClient {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends one line (CRLF added) and returns the full reply (all lines of
    /// a multi-line SMTP reply, or one POP3 status line).
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads one reply: SMTP continuation lines (`250-`) are joined.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            out.push_str(&line);
            let bytes = line.as_bytes();
            if !(bytes.len() > 3 && bytes[3] == b'-' && bytes[..3].iter().all(u8::is_ascii_digit)) {
                return out;
            }
        }
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads IMAP lines up to the one tagged `tag`; returns them all.
    pub fn until_tagged(&mut self, tag: &str) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed; got so far:\n{out}");
            out.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return out;
            }
        }
    }

    /// Reads a POP3 multi-line body up to the final dot (dot-unstuffed).
    pub fn multiline(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader.read_until(b'\n', &mut line).unwrap();
            assert!(!line.is_empty(), "connection closed inside a multi-line reply");
            if line == b".\r\n" {
                return out;
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
    }

    /// True if the server closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }

    pub fn shutdown(self) {
        self.writer.shutdown(std::net::Shutdown::Both).ok();
    }
}

/// An SMTP session up to the 354 after DATA, for one recipient.
pub fn smtp_start_data(addr: SocketAddr, to: &str) -> LineClient {
    let mut c = LineClient::connect(addr);
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO test.client").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<sender@remote.test>").starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<{to}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c
}

/// A full SMTP transaction; returns the reply to the final dot.
pub fn smtp_deliver(addr: SocketAddr, to: &str, message: &[u8]) -> String {
    let mut c = smtp_start_data(addr, to);
    c.send(message);
    let reply = c.cmd(".");
    c.cmd("QUIT");
    reply
}

/// Logs in over POP3 and returns the client in TRANSACTION state.
pub fn pop3_login(addr: SocketAddr, user: &str) -> LineClient {
    let mut c = LineClient::connect(addr);
    assert!(c.line().starts_with("+OK"));
    assert!(c.cmd(&format!("USER {user}")).starts_with("+OK"));
    let reply = c.cmd(&format!("PASS {PASSWORD}"));
    assert!(reply.starts_with("+OK"), "{reply}");
    c
}

/// UIDL listing: (number, unique id).
pub fn pop3_uidl(c: &mut LineClient) -> Vec<(u32, String)> {
    assert!(c.cmd("UIDL").starts_with("+OK"));
    String::from_utf8(c.multiline())
        .unwrap()
        .lines()
        .map(|l| {
            let (n, id) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), id.to_string())
        })
        .collect()
}

/// The repository root (for fixtures and the python clients).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}
