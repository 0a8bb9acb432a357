//! `tiermail-node bench`: SMTP, POP3 and IMAP throughput of a real node
//! process on loopback, next to Postfix's `smtp-sink` (which stores nothing:
//! the ceiling, not a peer) and Dovecot (a peer serving a copy of the same
//! Maildir over IMAP; see [`imap`]).
//!
//! This is a tool at the binary's edge, not node service code: it spawns
//! processes and reads the wall clock ([`Instant`]). It prints figures and
//! asserts nothing.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

mod imap;
pub mod ldap;
pub mod proxy;

const ACCOUNT: &str = "bench@example.com";
const PASSWORD: &str = "bench-password";
const SENDER: &str = "sender@bench.example";
/// Body line length before CRLF (RFC 5322 allows up to 998).
const BODY_LINE: usize = 76;
/// How long a child process gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The node's shutdown grace period in the generated config.
const SHUTDOWN_GRACE_SECS: u64 = 10;
/// Longest wait for any one reply before a session is given up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many failure replies to print per target.
const FAILURE_SAMPLES: usize = 5;

/// Options of `tiermail-node bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Messages to send to each target.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Concurrent SMTP connections (also the POP3 concurrency); each SMTP
    /// connection is reused for its share of the messages.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Size of each message in bytes, headers included.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    size: usize,
    /// POP3 sessions (USER/PASS, STAT, RETR 1, QUIT) run after the SMTP load.
    #[arg(long, default_value_t = 1000)]
    pop3_sessions: usize,
    /// IMAP sessions (LOGIN, SELECT INBOX, FETCH 1:10 BODY.PEEK[], LOGOUT),
    /// `--connections` at a time, against the node and then Dovecot; 0 skips
    /// the IMAP phase.
    #[arg(long, default_value_t = 500)]
    imap_sessions: usize,
    /// Messages of `--size` bytes delivered by SMTP into the IMAP account's
    /// INBOX before the IMAP phase (also what `FETCH 1:*` reads).
    #[arg(long, value_name = "MESSAGES", default_value_t = 1000)]
    imap_mailbox: usize,
    /// Skip the IMAP comparison with Dovecot.
    #[arg(long)]
    no_dovecot: bool,
}

/// Runs the bench; errors are printed, not panicked.
pub fn main(args: BenchArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiermail-node bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.connections == 0 {
        bail!("--messages and --connections must be at least 1");
    }
    if args.imap_sessions > 0 && args.imap_mailbox == 0 {
        bail!("--imap-mailbox must be at least 1 (or --imap-sessions 0 to skip IMAP)");
    }
    let min = min_message_size();
    if args.size < min {
        bail!("--size must be at least {min} bytes (the generated headers)");
    }
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let dir = tempfile::Builder::new().prefix("tiermail-bench-").tempdir().context("cannot create a temp dir")?;
    let [smtp_port, pop3_port, imap_port, sink_port, dovecot_port] = free_ports()?;

    eprintln!("bench: starting tiermail-node, data in {} (set TMPDIR to bench another disk)", dir.path().display());
    let ports = NodePorts { smtp: smtp_port, pop3: pop3_port, imap: imap_port };
    let mut node = NodeProcess::start(&exe, dir.path(), args, ports)?;
    let sink = match find_program("smtp-sink") {
        None => {
            println!("smtp-sink not found: comparison with smtp-sink skipped (install the Debian package postfix)");
            None
        }
        Some(path) => match SinkProcess::start(&path, dir.path(), sink_port) {
            Ok(sink) => Some(sink),
            Err(e) => {
                println!("smtp-sink did not start, comparison skipped: {e:#}");
                None
            }
        },
    };

    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let load = SmtpLoad { rcpt: ACCOUNT, messages: args.messages, size: args.size, connections: args.connections };
    let ours = runtime.block_on(smtp_load("tiermail-node", node.smtp, &load));
    let ceiling = sink.as_ref().map(|s| runtime.block_on(smtp_load("smtp-sink", s.addr, &load)));
    drop(sink);
    let pop3 = (args.pop3_sessions > 0).then(|| runtime.block_on(pop3_load(node.pop3, args)));
    // The IMAP phase stops the node itself (Dovecot must read a quiescent
    // Maildir); otherwise it is stopped here.
    let (imap, stopped) = if args.imap_sessions > 0 {
        imap::phase(&runtime, args, &mut node, dir.path(), dovecot_port)
    } else {
        (None, node.stop())
    };

    let build = if cfg!(debug_assertions) { "debug build: figures not representative" } else { "release build" };
    println!();
    println!(
        "tiermail bench: {} messages x {} B over {} connections ({build})",
        args.messages, args.size, args.connections
    );
    println!("{:<20} {:>9} {:>8} {:>8} {:>8} {:>7}", "target", "msgs/s", "MB/s", "p50 ms", "p99 ms", "failed");
    println!("{}", ours.row("tiermail-node", args.size));
    if let Some(c) = &ceiling {
        println!("{}", c.row("smtp-sink (ceiling)", args.size));
        if c.msgs_per_sec() > 0.0 {
            println!("ratio tiermail/smtp-sink: {:.2}", ours.msgs_per_sec() / c.msgs_per_sec());
        }
    }
    match &pop3 {
        Some(p) => println!(
            "POP3 login+STAT+RETR+QUIT: {} sessions over {} connections, {:.1} sessions/s, {} failed{}",
            args.pop3_sessions,
            args.connections.min(args.pop3_sessions),
            p.ok as f64 / p.wall.as_secs_f64(),
            p.failed,
            match (p.stat_count, p.retr_bytes) {
                (Some(n), Some(b)) => format!(" (mailbox: {n} messages; RETR 1: {b} bytes)"),
                _ => String::new(),
            }
        ),
        None => println!("POP3: skipped (--pop3-sessions 0)"),
    }
    println!("(MB = 10^6 bytes of message data; wall time includes connect, EHLO and QUIT)");
    for (name, failures, samples) in [("tiermail-node", ours.failed, &ours.samples)]
        .into_iter()
        .chain(ceiling.as_ref().map(|c| ("smtp-sink", c.failed, &c.samples)))
        .chain(pop3.as_ref().map(|p| ("POP3", p.failed, &p.samples)))
    {
        if failures > 0 {
            println!("{name}: {failures} failed; first: {}", samples.join(" | "));
        }
    }
    match &imap {
        Some(report) => {
            println!();
            report.print(args);
        }
        None if args.imap_sessions == 0 => println!("IMAP: skipped (--imap-sessions 0)"),
        None => {}
    }
    if let Err(e) = stopped {
        println!("warning: {e:#}");
    }
    Ok(())
}

/// Ports that were free a moment ago (all bound at once, so distinct).
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("cannot bind a loopback port")?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

/// `name` on PATH, or in the sbin directories Postfix installs to.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Waits until `addr` accepts, or the child exits, or the timeout passes.
fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start ({status}); its log:\n{}", read_log(log));
        }
        if Instant::now() > deadline {
            bail!("{what} did not start listening on {addr} within {START_TIMEOUT:?}; its log:\n{}", read_log(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// A child process killed (SIGKILL) if still running when dropped.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The loopback ports of the node's services.
#[derive(Clone, Copy)]
struct NodePorts {
    smtp: u16,
    pop3: u16,
    imap: u16,
}

/// The tiermail node under test, as a child process of this one.
struct NodeProcess {
    child: ChildGuard,
    log: PathBuf,
    /// Where the node keeps its Maildirs (`<data_dir>/<domain>/<user>/`).
    data_dir: PathBuf,
    smtp: SocketAddr,
    pop3: SocketAddr,
    imap: SocketAddr,
}

impl NodeProcess {
    fn start(exe: &Path, dir: &Path, args: &BenchArgs, ports: NodePorts) -> anyhow::Result<Self> {
        let config = dir.join("node.toml");
        let text = node_config(args, ports);
        // Check it here first: a config error is clearer than a child's exit.
        tiermail_node::Config::parse(&config, &text)
            .map_err(|e| anyhow::anyhow!("generated config is invalid:\n{e}"))?;
        std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
        let log = dir.join("node.log");
        let log_file = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let mut node = NodeProcess {
            child: ChildGuard(Some(child)),
            log,
            data_dir: dir.join("data"),
            smtp: SocketAddr::from(([127, 0, 0, 1], ports.smtp)),
            pop3: SocketAddr::from(([127, 0, 0, 1], ports.pop3)),
            imap: SocketAddr::from(([127, 0, 0, 1], ports.imap)),
        };
        let child = node.child.0.as_mut().expect("just started");
        for addr in [node.smtp, node.pop3, node.imap] {
            wait_for_port(addr, child, "node", &node.log)?;
        }
        Ok(node)
    }

    /// SIGTERM, then waits for the drain; SIGKILL if it takes too long.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.0.take() else { return Ok(()) };
        eprintln!("bench: stopping the node (SIGTERM)");
        let status = terminate(&mut child, "the node", Duration::from_secs(SHUTDOWN_GRACE_SECS + 5))?;
        if !status.success() {
            bail!("the node exited with {status} after SIGTERM; its log:\n{}", read_log(&self.log));
        }
        Ok(())
    }
}

/// SIGTERM, then waits up to `grace` for the exit; SIGKILL (and an error)
/// if the signal cannot be sent or the grace passes.
fn terminate(child: &mut Child, what: &str, grace: Duration) -> anyhow::Result<ExitStatus> {
    let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    if !sent.is_ok_and(|s| s.success()) {
        child.kill().ok();
        child.wait().ok();
        bail!("could not send SIGTERM to {what}; killed it");
    }
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            bail!("{what} did not exit within {grace:?} of SIGTERM; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn node_config(args: &BenchArgs, ports: NodePorts) -> String {
    let NodePorts { smtp: smtp_port, pop3: pop3_port, imap: imap_port } = ports;
    let imap_account = imap::ACCOUNT;
    // Room for the trace headers the node adds at delivery.
    let max_message_size = args.size as u64 + 64 * 1024;
    // The per-account session cap is not what is measured: room for every
    // connection and for sessions still closing (Dovecot gets the same
    // 1000 per user and IP).
    let max_sessions_per_user = (2 * args.connections).max(1000);
    format!(
        r#"# Generated by `tiermail-node bench`.
[node]
name = "bench"
data_dir = "data"

[limits]
max_message_size = {max_message_size}
idle_timeout_secs = 300
shutdown_grace_secs = {SHUTDOWN_GRACE_SECS}
max_sessions_per_user = {max_sessions_per_user}

[[domain]]
name = "example.com"

[[account]]
address = "{ACCOUNT}"
password = "{PASSWORD}"

[[account]]
address = "{imap_account}"
password = "{PASSWORD}"

[backend.smtp]
listen = "127.0.0.1:{smtp_port}"

[backend.pop3]
listen = "127.0.0.1:{pop3_port}"

[backend.imap]
listen = "127.0.0.1:{imap_port}"
"#
    )
}

/// Postfix's smtp-sink: accepts and discards every message.
struct SinkProcess {
    _child: ChildGuard,
    addr: SocketAddr,
}

impl SinkProcess {
    fn start(program: &Path, dir: &Path, port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("smtp-sink.log");
        let log_file = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(program);
        command.arg("-c");
        // smtp-sink refuses to run as root without a user to switch to.
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(addr.to_string())
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let mut guard = ChildGuard(Some(child));
        wait_for_port(addr, guard.0.as_mut().expect("just started"), "smtp-sink", &log)?;
        Ok(SinkProcess { _child: guard, addr })
    }
}

/// Whether this process runs as root (the owner of /proc/self is our
/// effective uid).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The fixed-width headers of message `seq`; `pad` lengthens the subject.
fn headers(seq: usize, pad: &str) -> String {
    format!(
        "From: <{SENDER}>\r\nTo: <{ACCOUNT}>\r\nSubject: tiermail bench message {seq:010}{pad}\r\n\
         Message-ID: <{seq:010}@bench.example>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n"
    )
}

/// The smallest message [`build_message`] can make.
fn min_message_size() -> usize {
    headers(0, "").len()
}

/// Message `seq`, exactly `size` bytes (at least [`min_message_size`]):
/// headers, a blank line, then lines of letters. Every line ends in CRLF
/// and is at most 998 bytes before it; none starts with '.', so no
/// dot-stuffing is needed.
fn build_message(seq: usize, size: usize) -> Vec<u8> {
    let mut out = headers(seq, "").into_bytes();
    // A body of one byte cannot be whole CRLF lines: move it into a header.
    if size.checked_sub(out.len()) == Some(1) {
        out = headers(seq, "+").into_bytes();
    }
    let mut rest = size.saturating_sub(out.len());
    out.reserve(rest);
    let mut letter = 0;
    while rest > 0 {
        let mut line = rest.min(BODY_LINE + 2);
        if rest - line == 1 {
            line -= 1; // never leave a single byte for the last line
        }
        for _ in 0..line - 2 {
            out.push(b'a' + (letter % 26) as u8);
            letter += 1;
        }
        out.extend_from_slice(b"\r\n");
        rest -= line;
    }
    out
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One side of a line-based client connection.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Client { reader: BufReader::new(reader), writer, line: Vec::new() })
    }

    /// One line, CRLF stripped, as text.
    async fn read_line(&mut self) -> anyhow::Result<String> {
        self.line.clear();
        let n = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_until(b'\n', &mut self.line))
            .await
            .map_err(|_| anyhow::anyhow!("no reply within {REPLY_TIMEOUT:?}"))??;
        if n == 0 {
            bail!("connection closed by the server");
        }
        let end = self.line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(&self.line);
        Ok(String::from_utf8_lossy(end).into_owned())
    }

    /// An SMTP reply (all its lines): the code and the last line.
    async fn smtp_reply(&mut self) -> anyhow::Result<(u16, String)> {
        loop {
            let line = self.read_line().await?;
            let code = line.get(..3).and_then(|c| c.parse().ok());
            let Some(code) = code else { bail!("malformed SMTP reply {line:?}") };
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, line));
            }
        }
    }

    async fn send(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(data).await.context("write")
    }

    async fn smtp(&mut self, command: &str) -> anyhow::Result<(u16, String)> {
        self.send(command.as_bytes()).await?;
        self.smtp_reply().await
    }

    /// A POP3 command whose reply must be +OK; returns the status line.
    async fn pop3_ok(&mut self, command: &str, shown: &str) -> anyhow::Result<String> {
        self.send(command.as_bytes()).await?;
        let line = self.read_line().await?;
        if !line.starts_with("+OK") {
            bail!("{shown}: {line}");
        }
        Ok(line)
    }
}

/// Results of one SMTP load run.
#[derive(Default)]
struct SmtpRun {
    wall: Duration,
    ok: usize,
    failed: usize,
    samples: Vec<String>,
    /// MAIL to the final 250, per accepted message.
    latencies: Vec<Duration>,
}

impl SmtpRun {
    fn msgs_per_sec(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }

    fn fail(&mut self, n: usize, why: String) {
        self.failed += n;
        if self.samples.len() < FAILURE_SAMPLES {
            self.samples.push(why);
        }
    }

    fn merge(&mut self, other: SmtpRun) {
        self.ok += other.ok;
        self.failed += other.failed;
        for s in other.samples {
            if self.samples.len() < FAILURE_SAMPLES {
                self.samples.push(s);
            }
        }
        self.latencies.extend(other.latencies);
    }

    fn row(&self, name: &str, size: usize) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let ms = |p| percentile(&sorted, p).map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0));
        let mb = self.ok as f64 * size as f64 / 1e6 / self.wall.as_secs_f64();
        format!("{name:<20} {:>9.1} {mb:>8.2} {:>8} {:>8} {:>7}", self.msgs_per_sec(), ms(50.0), ms(99.0), self.failed)
    }
}

/// What one SMTP load sends.
struct SmtpLoad {
    rcpt: &'static str,
    messages: usize,
    size: usize,
    connections: usize,
}

/// Sends `load.messages` messages over `load.connections` connections.
async fn smtp_load(name: &'static str, addr: SocketAddr, load: &SmtpLoad) -> SmtpRun {
    let &SmtpLoad { rcpt, messages, size, connections } = load;
    eprintln!("bench: {name}: sending {messages} messages to {rcpt} over {connections} connections");
    let done = Arc::new(AtomicUsize::new(0));
    let progress = spawn_progress(name, "messages", done.clone(), messages);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let range = c * messages / connections..(c + 1) * messages / connections;
        if !range.is_empty() {
            tasks.spawn(smtp_connection(addr, rcpt, range, size, done.clone()));
        }
    }
    let mut total = SmtpRun::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(run) => total.merge(run),
            Err(e) => total.fail(0, format!("client task failed: {e}")),
        }
    }
    total.wall = start.elapsed();
    progress.abort();
    eprintln!("bench: {name}: done in {:.2} s", total.wall.as_secs_f64());
    total
}

/// One connection's share: EHLO, the messages, QUIT.
async fn smtp_connection(
    addr: SocketAddr,
    rcpt: &'static str,
    messages: Range<usize>,
    size: usize,
    done: Arc<AtomicUsize>,
) -> SmtpRun {
    let mut run = SmtpRun::default();
    let total = messages.len();
    let mut client = match smtp_open(addr).await {
        Ok(client) => client,
        Err(e) => {
            run.fail(total, format!("session setup: {e:#}"));
            return run;
        }
    };
    for seq in messages {
        let mut message = build_message(seq, size);
        message.extend_from_slice(b".\r\n");
        match smtp_transaction(&mut client, rcpt, &message).await {
            Ok(Ok(latency)) => {
                run.ok += 1;
                run.latencies.push(latency);
            }
            Ok(Err(refused)) => run.fail(1, refused),
            Err(e) => {
                // The connection is gone: this and the rest of its share fail.
                run.fail(total - run.ok - run.failed, format!("connection lost: {e:#}"));
                return run;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    client.smtp("QUIT\r\n").await.ok();
    run
}

async fn smtp_open(addr: SocketAddr) -> anyhow::Result<Client> {
    let mut client = Client::connect(addr).await?;
    let (code, line) = client.smtp_reply().await?;
    if code != 220 {
        bail!("greeting: {line}");
    }
    let (code, line) = client.smtp("EHLO bench.example\r\n").await?;
    if code != 250 {
        bail!("EHLO: {line}");
    }
    Ok(client)
}

/// MAIL, RCPT, DATA, the message: Ok(Ok(latency)) on 250, Ok(Err(reply)) if
/// refused (after RSET), Err if the connection failed.
async fn smtp_transaction(client: &mut Client, rcpt: &str, message: &[u8]) -> anyhow::Result<Result<Duration, String>> {
    let start = Instant::now();
    for (command, want) in
        [(format!("MAIL FROM:<{SENDER}>\r\n"), 250), (format!("RCPT TO:<{rcpt}>\r\n"), 250), ("DATA\r\n".into(), 354)]
    {
        let (code, line) = client.smtp(&command).await?;
        if code != want {
            client.smtp("RSET\r\n").await?;
            return Ok(Err(format!("{}: {line}", command.trim_end())));
        }
    }
    client.send(message).await?;
    let (code, line) = client.smtp_reply().await?;
    if code != 250 {
        return Ok(Err(format!("end of data: {line}")));
    }
    Ok(Ok(start.elapsed()))
}

/// Prints `done/total` to stderr every few seconds until aborted.
fn spawn_progress(
    name: &'static str,
    unit: &'static str,
    done: Arc<AtomicUsize>,
    total: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(3);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            eprintln!("bench: {name}: {}/{total} {unit}", done.load(Ordering::Relaxed));
        }
    })
}

/// Results of the POP3 run.
#[derive(Default)]
struct Pop3Run {
    wall: Duration,
    ok: usize,
    failed: usize,
    samples: Vec<String>,
    stat_count: Option<usize>,
    retr_bytes: Option<usize>,
}

/// `args.pop3_sessions` sessions, `args.connections` at a time.
async fn pop3_load(addr: SocketAddr, args: &BenchArgs) -> Pop3Run {
    let total = args.pop3_sessions;
    eprintln!("bench: POP3: {total} sessions over {} connections", args.connections);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = spawn_progress("POP3", "sessions", done.clone(), total);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections.min(total) {
        let (next, done) = (next.clone(), done.clone());
        tasks.spawn(async move {
            let mut run = Pop3Run::default();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                match pop3_session(addr).await {
                    Ok((count, bytes)) => {
                        run.ok += 1;
                        run.stat_count.get_or_insert(count);
                        run.retr_bytes.get_or_insert(bytes);
                    }
                    Err(e) => {
                        run.failed += 1;
                        if run.samples.len() < FAILURE_SAMPLES {
                            run.samples.push(format!("{e:#}"));
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            run
        });
    }
    let mut total_run = Pop3Run::default();
    while let Some(result) = tasks.join_next().await {
        let run = result.unwrap_or_else(|e| Pop3Run {
            failed: 1,
            samples: vec![format!("client task failed: {e}")],
            ..Pop3Run::default()
        });
        total_run.ok += run.ok;
        total_run.failed += run.failed;
        total_run.samples.extend(run.samples);
        total_run.samples.truncate(FAILURE_SAMPLES);
        total_run.stat_count = total_run.stat_count.or(run.stat_count);
        total_run.retr_bytes = total_run.retr_bytes.or(run.retr_bytes);
    }
    total_run.wall = start.elapsed();
    progress.abort();
    eprintln!("bench: POP3: done in {:.2} s", total_run.wall.as_secs_f64());
    total_run
}

/// USER/PASS, STAT, RETR 1, QUIT: the message count and the size of
/// message 1 (dot-stuffing undone, CRLFs counted).
async fn pop3_session(addr: SocketAddr) -> anyhow::Result<(usize, usize)> {
    let mut client = Client::connect(addr).await?;
    let greeting = client.read_line().await?;
    if !greeting.starts_with("+OK") {
        bail!("greeting: {greeting}");
    }
    client.pop3_ok(&format!("USER {ACCOUNT}\r\n"), "USER").await?;
    client.pop3_ok(&format!("PASS {PASSWORD}\r\n"), "PASS").await?;
    let stat = client.pop3_ok("STAT\r\n", "STAT").await?;
    let count: usize = stat.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    if count == 0 {
        bail!("STAT: {stat} (the mailbox is empty)");
    }
    client.pop3_ok("RETR 1\r\n", "RETR 1").await?;
    let mut bytes = 0;
    loop {
        let line = client.read_line().await?;
        if line == "." {
            break;
        }
        bytes += line.strip_prefix('.').unwrap_or(&line).len() + 2;
    }
    client.pop3_ok("QUIT\r\n", "QUIT").await?;
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_exact_size_and_valid_lines() {
        let min = min_message_size();
        for size in (min..min + 200).chain([1000, 4096, 4097, 65536]) {
            for seq in [0, 7, 123_456] {
                let m = build_message(seq, size);
                assert_eq!(m.len(), size, "size {size}");
                assert!(m.ends_with(b"\r\n"), "size {size}");
                let text = std::str::from_utf8(&m).unwrap();
                let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
                assert_eq!(lines.concat().len(), size);
                for line in &lines {
                    assert!(line.ends_with("\r\n"), "size {size}: {line:?}");
                    let body = &line[..line.len() - 2];
                    assert!(!body.contains(['\r', '\n']), "size {size}: bare CR or LF");
                    assert!(body.len() <= 998, "size {size}");
                    assert!(!body.starts_with('.'), "size {size}: would need dot-stuffing");
                }
                assert!(text.contains("\r\n\r\n"), "size {size}: no header/body separator");
            }
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&samples, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[Duration::from_millis(3)], 99.0), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
