//! The IMAP phase of `tiermail-node bench`. One account's INBOX is filled
//! with `--imap-mailbox` messages by SMTP through the node; then, against the
//! node and afterwards against Dovecot:
//! - sessions/s: `--imap-sessions` sessions of LOGIN, SELECT INBOX,
//!   `FETCH 1:10 BODY.PEEK[]` and LOGOUT, `--connections` at a time;
//! - fetch-all: one session's `FETCH 1:* BODY.PEEK[]` over the whole
//!   mailbox, in MB/s of message bytes received.
//!
//! Dovecot serves a copy of the node's Maildir, made after the node has
//! stopped (so the files are quiescent and Dovecot's index files stay out of
//! ours), owned by `nobody` as Dovecot will not serve mail as root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    BenchArgs, FAILURE_SAMPLES, NodeProcess, PASSWORD, REPLY_TIMEOUT, SmtpLoad, SmtpRun, is_root, percentile, read_log,
    smtp_load, spawn_progress, terminate, wait_for_port,
};

/// The account whose INBOX both IMAP servers read.
pub(super) const ACCOUNT: &str = "imap-bench@example.com";
/// Its Maildir: `<data_dir>/<domain>/<local part>/`.
const MAILDIR: [&str; 2] = ["example.com", "imap-bench"];
/// Messages fetched per session (fewer if the mailbox is smaller).
const SESSION_FETCH: usize = 10;
/// Where Debian's dovecot-core installs the server.
const DOVECOT: &str = "/usr/sbin/dovecot";
/// Dovecot refuses to serve mail as root ("userdb returned 0 as uid").
const MAIL_UID: u32 = 65534;
/// Lines of Dovecot's log shown when its sessions fail.
const LOG_TAIL: usize = 10;

/// Runs the phase on a running node, stops the node (the result of that is
/// returned beside the report), then runs it on Dovecot unless skipped.
pub(super) fn phase(
    runtime: &tokio::runtime::Runtime,
    args: &BenchArgs,
    node: &mut NodeProcess,
    dir: &Path,
    dovecot_port: u16,
) -> (Option<Report>, anyhow::Result<()>) {
    let load = SmtpLoad { rcpt: ACCOUNT, messages: args.imap_mailbox, size: args.size, connections: args.connections };
    let fill = runtime.block_on(smtp_load("IMAP mailbox fill", node.smtp, &load));
    let ours = runtime.block_on(measure("tiermail-node", node.imap, args));
    let stopped = node.stop();
    let source = MAILDIR.iter().fold(node.data_dir.clone(), |path, part| path.join(part));
    let peer = if args.no_dovecot {
        Peer::Skipped("--no-dovecot".into())
    } else if !Path::new(DOVECOT).is_file() {
        Peer::Skipped(format!("{DOVECOT} not found (install the Debian package dovecot-imapd)"))
    } else if !is_root() {
        Peer::Skipped("Dovecot's own users (dovecot, dovenull, nobody) need this bench to run as root".into())
    } else {
        match Dovecot::start(Path::new(DOVECOT), dir, &source, dovecot_port) {
            Err(e) => Peer::Failed(format!("{e:#}")),
            Ok(mut dovecot) => {
                let run = runtime.block_on(measure("dovecot", dovecot.addr(), args));
                let log = (run.sessions.failed > 0 || run.fetch_all.is_err()).then(|| dovecot.log_tail());
                if let Err(e) = dovecot.stop() {
                    eprintln!("bench: warning: {e:#}");
                }
                Peer::Ran { label: dovecot.label.clone(), run, log }
            }
        }
    };
    (Some(Report { fill, ours, peer }), stopped)
}

/// Everything the IMAP phase measured.
pub(super) struct Report {
    fill: SmtpRun,
    ours: TargetRun,
    peer: Peer,
}

enum Peer {
    Skipped(String),
    Failed(String),
    Ran { label: String, run: TargetRun, log: Option<String> },
}

impl Report {
    pub(super) fn print(&self, args: &BenchArgs) {
        let connections = args.connections.min(args.imap_sessions);
        println!(
            "IMAP: {} messages x {} B; {} sessions of LOGIN+SELECT+FETCH 1:{} BODY.PEEK[]+LOGOUT \
             over {connections} connections",
            args.imap_mailbox,
            args.size,
            args.imap_sessions,
            SESSION_FETCH.min(args.imap_mailbox)
        );
        println!(
            "{:<20} {:>10} {:>8} {:>8} {:>7} {:>14}",
            "target", "sessions/s", "p50 ms", "p99 ms", "failed", "fetch-all MB/s"
        );
        println!("{}", self.ours.row("tiermail-node"));
        match &self.peer {
            Peer::Skipped(why) => println!("dovecot: comparison skipped: {why}"),
            Peer::Failed(why) => println!("dovecot: did not start, comparison skipped: {why}"),
            Peer::Ran { label, run, .. } => {
                println!("{}", run.row(label));
                let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                    _ => "-".into(),
                };
                println!(
                    "ratio tiermail/dovecot: sessions {}, fetch {}",
                    ratio(self.ours.sessions.per_sec(), run.sessions.per_sec()),
                    ratio(self.ours.fetch_mb_per_sec(), run.fetch_mb_per_sec())
                );
            }
        }
        let mut fetched = vec![("the node", &self.ours)];
        if let Peer::Ran { run, .. } = &self.peer {
            fetched.push(("Dovecot", run));
        }
        let fetched: Vec<String> = fetched
            .into_iter()
            .filter_map(|(name, run)| {
                let f = run.fetch_all.as_ref().ok()?;
                Some(format!(
                    "{} messages, {:.3} MB from {name} in {:.3} s",
                    f.messages,
                    f.bytes as f64 / 1e6,
                    f.wall.as_secs_f64()
                ))
            })
            .collect();
        if !fetched.is_empty() {
            println!(
                "(fetch-all: one session's FETCH 1:* BODY.PEEK[], timed from the command to its tagged OK: {}; \
                 each target had one untimed warm-up session first)",
                fetched.join(", ")
            );
        }
        if let Peer::Ran { .. } = &self.peer {
            println!(
                "(Dovecot: a copy of the node's Maildir, login processes in high-performance mode, imap processes \
                 reused, no auth penalty)"
            );
        }
        if self.fill.failed > 0 {
            println!(
                "IMAP mailbox fill: {} of {} messages failed; first: {}",
                self.fill.failed,
                args.imap_mailbox,
                self.fill.samples.join(" | ")
            );
        }
        let mut targets = vec![("tiermail-node", &self.ours, None)];
        if let Peer::Ran { label, run, log } = &self.peer {
            targets.push((label.as_str(), run, log.as_deref()));
        }
        for (name, run, log) in targets {
            if let Err(e) = &run.warmup {
                println!("{name}: IMAP warm-up session failed: {e}");
            }
            if run.sessions.failed > 0 {
                println!(
                    "{name}: {} IMAP sessions failed; first: {}",
                    run.sessions.failed,
                    run.sessions.samples.join(" | ")
                );
            }
            if let Err(e) = &run.fetch_all {
                println!("{name}: IMAP fetch-all failed: {e}");
            }
            if let Some(log) = log {
                println!("{name}: last lines of its log:\n{log}");
            }
        }
    }
}

/// The IMAP figures of one target.
struct TargetRun {
    warmup: Result<(), String>,
    sessions: SessionsRun,
    fetch_all: Result<FetchAll, String>,
}

impl TargetRun {
    fn fetch_mb_per_sec(&self) -> Option<f64> {
        self.fetch_all.as_ref().ok().map(|f| f.bytes as f64 / 1e6 / f.wall.as_secs_f64())
    }

    fn row(&self, name: &str) -> String {
        let s = &self.sessions;
        let mut sorted = s.latencies.clone();
        sorted.sort_unstable();
        let ms = |p| percentile(&sorted, p).map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0));
        let per_sec = s.per_sec().map_or("-".into(), |r| format!("{r:.1}"));
        let mb = self.fetch_mb_per_sec().map_or("-".into(), |r| format!("{r:.2}"));
        format!("{name:<20} {per_sec:>10} {:>8} {:>8} {:>7} {mb:>14}", ms(50.0), ms(99.0), s.failed)
    }
}

/// Results of the sessions load.
#[derive(Default)]
struct SessionsRun {
    wall: Duration,
    ok: usize,
    failed: usize,
    samples: Vec<String>,
    /// Connect to the LOGOUT's tagged OK, per successful session.
    latencies: Vec<Duration>,
}

impl SessionsRun {
    fn per_sec(&self) -> Option<f64> {
        (self.ok > 0).then(|| self.ok as f64 / self.wall.as_secs_f64())
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.samples.len() < FAILURE_SAMPLES {
            self.samples.push(why);
        }
    }
}

/// One fetch-all run.
struct FetchAll {
    wall: Duration,
    messages: usize,
    bytes: u64,
}

/// Warm-up session, sessions load, fetch-all.
async fn measure(name: &'static str, addr: std::net::SocketAddr, args: &BenchArgs) -> TargetRun {
    // The first SELECT may build or read indexes (Dovecot) or the UID list
    // (the node) from cold: keep it out of the figures.
    let warmup = session(addr).await.map(drop).map_err(|e| format!("{e:#}"));
    let sessions = sessions_load(name, addr, args).await;
    eprintln!("bench: {name}: IMAP FETCH 1:* BODY.PEEK[] in one session");
    let fetch_all = fetch_all(addr).await.map_err(|e| format!("{e:#}"));
    TargetRun { warmup, sessions, fetch_all }
}

/// `args.imap_sessions` sessions, `args.connections` at a time.
async fn sessions_load(name: &'static str, addr: std::net::SocketAddr, args: &BenchArgs) -> SessionsRun {
    let total = args.imap_sessions;
    eprintln!("bench: {name}: {total} IMAP sessions over {} connections", args.connections);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = spawn_progress(name, "IMAP sessions", done.clone(), total);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections.min(total) {
        let (next, done) = (next.clone(), done.clone());
        tasks.spawn(async move {
            let mut run = SessionsRun::default();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let began = Instant::now();
                match session(addr).await {
                    Ok(_) => {
                        run.ok += 1;
                        run.latencies.push(began.elapsed());
                    }
                    Err(e) => run.fail(format!("{e:#}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            run
        });
    }
    let mut total_run = SessionsRun::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(run) => {
                total_run.ok += run.ok;
                total_run.failed += run.failed;
                total_run.latencies.extend(run.latencies);
                for s in run.samples {
                    if total_run.samples.len() < FAILURE_SAMPLES {
                        total_run.samples.push(s);
                    }
                }
            }
            Err(e) => total_run.fail(format!("client task failed: {e}")),
        }
    }
    total_run.wall = start.elapsed();
    progress.abort();
    eprintln!("bench: {name}: IMAP sessions done in {:.2} s", total_run.wall.as_secs_f64());
    total_run
}

/// LOGIN, SELECT INBOX, `FETCH 1:10 BODY.PEEK[]`, LOGOUT: the message
/// data fetched.
async fn session(addr: std::net::SocketAddr) -> anyhow::Result<Fetched> {
    let mut client = ImapClient::login(addr).await?;
    let exists = client.select().await?;
    let fetched = client.fetch("c", &format!("1:{}", exists.min(SESSION_FETCH)), exists.min(SESSION_FETCH)).await?;
    client.command("d", "LOGOUT", |_| Ok(())).await?;
    Ok(fetched)
}

/// `FETCH 1:* BODY.PEEK[]` after LOGIN and SELECT; only the FETCH is timed.
async fn fetch_all(addr: std::net::SocketAddr) -> anyhow::Result<FetchAll> {
    let mut client = ImapClient::login(addr).await?;
    let exists = client.select().await?;
    let start = Instant::now();
    let fetched = client.fetch("c", "1:*", exists).await?;
    let wall = start.elapsed();
    client.command("d", "LOGOUT", |_| Ok(())).await?;
    Ok(FetchAll { wall, messages: fetched.messages, bytes: fetched.bytes })
}

/// What a FETCH of BODY.PEEK[] returned.
struct Fetched {
    messages: usize,
    bytes: u64,
}

/// A minimal IMAP client: tagged commands, untagged responses with their
/// literals counted, not kept.
struct ImapClient {
    stream: TcpStream,
    reader: ResponseReader,
    chunk: Vec<u8>,
}

impl ImapClient {
    /// Connects, reads the greeting and logs in as [`ACCOUNT`].
    async fn login(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut client = ImapClient { stream, reader: ResponseReader::default(), chunk: vec![0; 64 * 1024] };
        let greeting = client.response().await?;
        if !greeting.text.starts_with("* OK") {
            bail!("greeting: {}", greeting.text);
        }
        client.command("a", &format!("LOGIN {} {}", quoted(ACCOUNT), quoted(PASSWORD)), |_| Ok(())).await?;
        Ok(client)
    }

    /// SELECT INBOX: the number of messages (at least one).
    async fn select(&mut self) -> anyhow::Result<usize> {
        let mut exists = None;
        self.command("b", "SELECT INBOX", |r| {
            if let Some(n) = untagged_number(&r.text, "EXISTS") {
                exists = Some(n);
            }
            Ok(())
        })
        .await?;
        match exists {
            None => bail!("SELECT INBOX: no EXISTS response"),
            Some(0) => bail!("SELECT INBOX: the mailbox is empty"),
            Some(n) => Ok(n),
        }
    }

    /// `FETCH <set> BODY.PEEK[]`, which must return `want` messages, each
    /// with its body as a literal.
    async fn fetch(&mut self, tag: &str, set: &str, want: usize) -> anyhow::Result<Fetched> {
        let mut fetched = Fetched { messages: 0, bytes: 0 };
        self.command(tag, &format!("FETCH {set} BODY.PEEK[]"), |r| {
            if untagged_number(&r.text, "FETCH").is_some() {
                if r.literals.is_empty() {
                    bail!("FETCH response without a literal: {}", r.text);
                }
                fetched.messages += 1;
                fetched.bytes += r.literals.iter().sum::<usize>() as u64;
            }
            Ok(())
        })
        .await?;
        if fetched.messages != want {
            bail!("FETCH {set}: {} FETCH responses, expected {want}", fetched.messages);
        }
        Ok(fetched)
    }

    /// Sends `tag command`, passes each untagged response to `each`, and
    /// returns when the tagged response comes: Ok on OK, an error otherwise.
    async fn command(
        &mut self,
        tag: &str,
        command: &str,
        mut each: impl FnMut(&Response) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream.write_all(format!("{tag} {command}\r\n").as_bytes()).await.context("write")?;
        let verb = command.split(' ').next().unwrap_or(command);
        loop {
            let response = self.response().await.with_context(|| verb.to_owned())?;
            match response.text.strip_prefix(tag).and_then(|t| t.strip_prefix(' ')) {
                Some(status) if status.starts_with("OK") => return Ok(()),
                Some(_) => bail!("{verb}: {}", response.text),
                None => each(&response).with_context(|| verb.to_owned())?,
            }
        }
    }

    async fn response(&mut self) -> anyhow::Result<Response> {
        loop {
            if let Some(response) = self.reader.next_response() {
                return Ok(response);
            }
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read(&mut self.chunk))
                .await
                .map_err(|_| anyhow::anyhow!("no reply within {REPLY_TIMEOUT:?}"))?
                .context("read")?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            self.reader.push(&self.chunk[..n]);
        }
    }
}

/// An IMAP quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `n` of an untagged `* n KEYWORD ...` response.
pub(super) fn untagged_number(text: &str, keyword: &str) -> Option<usize> {
    let mut words = text.split(' ');
    if words.next() != Some("*") {
        return None;
    }
    let n = words.next()?.parse().ok()?;
    words.next()?.eq_ignore_ascii_case(keyword).then_some(n)
}

/// One server response: its line text (literals left out, their `{n}`
/// markers kept) and the size of each literal, in order.
#[derive(Debug, Default, PartialEq)]
struct Response {
    text: String,
    literals: Vec<usize>,
}

/// Splits the bytes a server sends into [`Response`]s, whatever the read
/// boundaries: a response is lines joined by literals, a line ending in
/// `{n}` (or `~{n}`) being followed by exactly n bytes of literal. Literal
/// bytes are counted and dropped, so memory stays at one line.
#[derive(Default)]
struct ResponseReader {
    /// Received bytes; those before `pos` are consumed.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes from `pos` already searched for a line feed.
    searched: usize,
    /// Literal bytes still to skip before the response's next line.
    pending: usize,
    /// The response being read.
    current: Response,
}

impl ResponseReader {
    fn push(&mut self, mut data: &[u8]) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.buf.is_empty() {
            // Skip literal bytes without copying them.
            let skip = self.pending.min(data.len());
            self.pending -= skip;
            data = &data[skip..];
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete response, if all its bytes have been pushed.
    fn next_response(&mut self) -> Option<Response> {
        loop {
            let skip = self.pending.min(self.buf.len() - self.pos);
            self.pos += skip;
            self.pending -= skip;
            if self.pending > 0 {
                return None;
            }
            let rest = &self.buf[self.pos..];
            let Some(lf) = rest[self.searched..].iter().position(|&b| b == b'\n') else {
                self.searched = rest.len();
                return None;
            };
            let end = self.searched + lf;
            let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
            self.current.text.push_str(&String::from_utf8_lossy(line));
            let literal = literal_size(line);
            self.pos += end + 1;
            self.searched = 0;
            match literal {
                Some(n) => {
                    self.current.literals.push(n);
                    self.pending = n;
                }
                None => return Some(std::mem::take(&mut self.current)),
            }
        }
    }
}

/// n if the line (CRLF removed) ends with a literal's `{n}` or `~{n}`.
pub(super) fn literal_size(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A `dovecot -F` serving a copy of the node's Maildir over IMAP on
/// loopback; SIGTERM when dropped.
struct Dovecot {
    child: Option<Child>,
    log: PathBuf,
    port: u16,
    label: String,
}

impl Dovecot {
    /// Copies `source` to `<dir>/dovecot/maildir`, writes the config and
    /// starts Dovecot on `port`.
    fn start(binary: &Path, dir: &Path, source: &Path, port: u16) -> anyhow::Result<Self> {
        let home = dir.join("dovecot");
        fs::create_dir(&home).with_context(|| format!("cannot create {}", home.display()))?;
        // The mail processes (nobody) and auth (dovecot) must reach in.
        for path in [dir, &home] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o711))
                .with_context(|| format!("cannot chmod {}", path.display()))?;
        }
        let maildir = home.join("maildir");
        run(Command::new("cp").arg("-a").arg(source).arg(&maildir))?;
        run(Command::new("chown").arg("-R").arg(format!("{MAIL_UID}:{MAIL_UID}")).arg(&maildir))?;
        fs::write(home.join("passwd"), format!("{ACCOUNT}:{{PLAIN}}{PASSWORD}\n"))?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = home.join("dovecot.conf");
        fs::write(&config, dovecot_config(&home, &maildir, port, cpus))?;
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).split_whitespace().next().map(str::to_string));
        let label = format!("dovecot {}", version.as_deref().unwrap_or("(version unknown)"));
        let log = home.join("dovecot.log");
        let stderr = home.join("dovecot.stderr");
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        eprintln!("bench: starting {label} on a copy of the node's Maildir");
        let mut dovecot = Dovecot { child: Some(child), log, port, label };
        let addr = dovecot.addr();
        let child = dovecot.child.as_mut().expect("just started");
        if let Err(e) = wait_for_port(addr, child, "dovecot", &stderr) {
            bail!("{e:#}\ndovecot's log:\n{}", dovecot.log_tail());
        }
        Ok(dovecot)
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log_tail(&self) -> String {
        let log = read_log(&self.log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    /// SIGTERM: the master stops its login, imap and auth processes first.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        eprintln!("bench: stopping dovecot (SIGTERM)");
        terminate(&mut child, "dovecot", Duration::from_secs(10)).map(drop)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop().ok();
    }
}

/// Runs a command to completion; an error unless it succeeds.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// Dovecot as a fast, plain IMAP server for one passwd-file user: login
/// processes in high-performance mode (`service_count = 0`, one per CPU),
/// imap processes reused (`service_count` > 1, ready in advance), failed
/// logins neither delayed nor penalised, no per-user connection cap in the
/// way.
fn dovecot_config(home: &Path, maildir: &Path, port: u16, cpus: usize) -> String {
    let (d, maildir) = (home.display(), maildir.display());
    format!(
        r#"# Generated by `tiermail-node bench`.
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
# The users Debian's package creates for Dovecot's own processes.
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {MAIL_UID}
mail_location = maildir:{maildir}
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {cpus}
}}
service imap {{
  service_count = 1000
  process_min_avail = {cpus}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server bytes with literals: a greeting, two FETCH responses (one of
    /// them with two literals, one empty) and a tagged OK.
    const STREAM: &[u8] = b"* OK [CAPABILITY IMAP4rev1] ready\r\n\
        * 1 FETCH (BODY[] {12}\r\nab\r\ncd}\r\n{3})\r\n\
        * 2 FETCH (BODY[HEADER] {0}\r\n BODY[] ~{5}\r\n\r\n\r\n\n)\r\n\
        c OK FETCH done\r\n";

    fn expected() -> Vec<Response> {
        let r = |text: &str, literals: &[usize]| Response { text: text.into(), literals: literals.to_vec() };
        vec![
            r("* OK [CAPABILITY IMAP4rev1] ready", &[]),
            r("* 1 FETCH (BODY[] {12})", &[12]),
            r("* 2 FETCH (BODY[HEADER] {0} BODY[] ~{5})", &[0, 5]),
            r("c OK FETCH done", &[]),
        ]
    }

    fn read_in_chunks(chunks: &[&[u8]]) -> Vec<Response> {
        let mut reader = ResponseReader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk);
            while let Some(r) = reader.next_response() {
                out.push(r);
            }
        }
        assert_eq!(reader.buf.len() - reader.pos, 0, "bytes left over");
        out
    }

    #[test]
    fn responses_are_whole_whatever_the_read_boundaries() {
        assert_eq!(read_in_chunks(&[STREAM]), expected());
        // Every split into two reads, then three around each literal.
        for i in 0..=STREAM.len() {
            assert_eq!(read_in_chunks(&[&STREAM[..i], &STREAM[i..]]), expected(), "split at {i}");
        }
        for i in 0..STREAM.len() {
            for j in i..=STREAM.len() {
                let chunks = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(read_in_chunks(&chunks), expected(), "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(read_in_chunks(&bytes), expected(), "one byte per read");
    }

    #[test]
    fn an_incomplete_response_waits_for_its_literal() {
        let mut reader = ResponseReader::default();
        reader.push(b"* 1 FETCH (BODY[] {10}\r\n0123");
        assert_eq!(reader.next_response(), None);
        reader.push(b"456789");
        assert_eq!(reader.next_response(), None, "the line after the literal is missing");
        reader.push(b")\r");
        assert_eq!(reader.next_response(), None, "no LF yet");
        reader.push(b"\n* 2 EXISTS\r\n");
        assert_eq!(
            reader.next_response(),
            Some(Response { text: "* 1 FETCH (BODY[] {10})".into(), literals: vec![10] })
        );
        assert_eq!(reader.next_response(), Some(Response { text: "* 2 EXISTS".into(), literals: vec![] }));
        assert_eq!(reader.next_response(), None);
    }

    #[test]
    fn only_a_brace_number_at_the_end_of_a_line_is_a_literal() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {4096}"), Some(4096));
        assert_eq!(literal_size(b"a LOGIN {0}"), Some(0));
        assert_eq!(literal_size(b"* 1 FETCH (BINARY[] ~{7}"), Some(7));
        assert_eq!(literal_size(b"* OK {12} later"), None);
        assert_eq!(literal_size(b"* OK \"}\""), None);
        assert_eq!(literal_size(b"* OK {}"), None);
        assert_eq!(literal_size(b"* OK {1a}"), None);
        assert_eq!(literal_size(b"* OK {99999999999999999999999}"), None, "overflow");
        assert_eq!(literal_size(b"}"), None);
    }

    #[test]
    fn untagged_numbers_need_their_keyword() {
        assert_eq!(untagged_number("* 1000 EXISTS", "EXISTS"), Some(1000));
        assert_eq!(untagged_number("* 3 fetch (BODY[] {5})", "FETCH"), Some(3));
        assert_eq!(untagged_number("* 0 RECENT", "EXISTS"), None);
        assert_eq!(untagged_number("* OK [UIDNEXT 5]", "EXISTS"), None);
        assert_eq!(untagged_number("b OK 3 EXISTS", "EXISTS"), None);
    }

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quoted("a@b.c"), "\"a@b.c\"");
        assert_eq!(quoted(r#"p"w\d"#), r#""p\"w\\d""#);
    }
}
