//! The IMAP load one path gets: sessions of LOGIN, SELECT INBOX and LOGOUT
//! at a fixed concurrency, then one session's `FETCH 1:* BODY.PEEK[]`
//! repeated. [`ImapSession`] is also what the memory phase holds open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncReadExt;

use super::Args;
use super::report::PathRun;
use crate::bench::imap::{literal_size, untagged_number};
use crate::bench::{Client, FAILURE_SAMPLES, REPLY_TIMEOUT};

/// Timed `FETCH 1:*` per path, after one untimed warm-up.
pub(super) const FETCH_ROUNDS: usize = 5;
/// The sessions load is split into this many rounds, paths taking turns.
const SESSION_ROUNDS: usize = 5;
/// Untimed sessions per path first: cold caches and lazily built state
/// (the node's UID lists, nginx's pools) stay out of the figures.
const WARMUP_SESSIONS: usize = 3;

/// An account to log in as.
pub(super) struct Login {
    pub(super) user: String,
    pub(super) password: &'static str,
}

/// Results of the sessions load.
#[derive(Default)]
pub(super) struct SessionsRun {
    pub(super) wall: Duration,
    pub(super) ok: usize,
    pub(super) failed: usize,
    pub(super) samples: Vec<String>,
    /// Connect to LOGOUT's tagged OK, per successful session.
    pub(super) latencies: Vec<Duration>,
}

impl SessionsRun {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.samples.len() < FAILURE_SAMPLES {
            self.samples.push(why);
        }
    }

    /// Adds another run's sessions (and its wall time: runs are sequential).
    fn merge(&mut self, other: SessionsRun) {
        self.wall += other.wall;
        self.ok += other.ok;
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        for why in other.samples {
            if self.samples.len() < FAILURE_SAMPLES {
                self.samples.push(why);
            }
        }
    }
}

/// The timed fetches of one path.
pub(super) struct FetchRun {
    /// Message bytes one fetch receives (the literals of BODY[]).
    pub(super) bytes: u64,
    /// The fastest round: the least disturbed by whatever else the shared
    /// CPUs run.
    pub(super) fastest: Duration,
}

/// Warm-up sessions on every path, the sessions load in
/// [`SESSION_ROUNDS`] rounds taking the paths in turn (so a neighbour's
/// burst on the shared CPUs hits them alike), then each path's fetches.
pub(super) async fn measure(targets: Vec<(String, SocketAddr)>, login: &Login, args: &Args) -> Vec<PathRun> {
    for (_, addr) in &targets {
        for _ in 0..WARMUP_SESSIONS {
            session(*addr, login).await.ok();
        }
    }
    let login = Arc::new(Login { user: login.user.clone(), password: login.password });
    let mut runs: Vec<SessionsRun> = targets.iter().map(|_| SessionsRun::default()).collect();
    let rounds = SESSION_ROUNDS.min(args.sessions);
    for round in 0..rounds {
        let share = args.sessions * (round + 1) / rounds - args.sessions * round / rounds;
        eprintln!(
            "bench-proxy: sessions round {}/{rounds}: {share} per path over {} connections",
            round + 1,
            args.connections.min(share)
        );
        for ((_, addr), run) in targets.iter().zip(&mut runs) {
            run.merge(sessions_load(*addr, &login, share, args.connections).await);
        }
    }
    let mut paths = Vec::new();
    for ((label, addr), sessions) in targets.into_iter().zip(runs) {
        eprintln!("bench-proxy: {label}: FETCH 1:* BODY.PEEK[], fastest of {FETCH_ROUNDS}");
        let fetch = fetch_rounds(addr, &login, args.mailbox).await.map_err(|e| format!("{e:#}"));
        paths.push(PathRun { label, sessions, fetch });
    }
    paths
}

/// `total` sessions, `connections` at a time.
async fn sessions_load(addr: SocketAddr, login: &Arc<Login>, total: usize, connections: usize) -> SessionsRun {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.min(total) {
        let (next, login) = (next.clone(), login.clone());
        tasks.spawn(async move {
            let mut run = SessionsRun::default();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let began = Instant::now();
                match session(addr, &login).await {
                    Ok(()) => {
                        run.ok += 1;
                        run.latencies.push(began.elapsed());
                    }
                    Err(e) => run.fail(format!("{e:#}")),
                }
            }
            run
        });
    }
    let mut total_run = SessionsRun::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(run) => total_run.merge(run),
            Err(e) => total_run.fail(format!("client task failed: {e}")),
        }
    }
    total_run.wall = start.elapsed();
    total_run
}

async fn session(addr: SocketAddr, login: &Login) -> anyhow::Result<()> {
    let mut session = ImapSession::login(addr, login).await?;
    session.select_inbox().await?;
    session.logout().await
}

/// LOGIN, SELECT (which must show `mailbox` messages), a warm-up fetch,
/// then [`FETCH_ROUNDS`] timed ones, each returning the same bytes.
async fn fetch_rounds(addr: SocketAddr, login: &Login, mailbox: usize) -> anyhow::Result<FetchRun> {
    let mut session = ImapSession::login(addr, login).await?;
    let exists = session.select_inbox().await?;
    if exists != mailbox {
        bail!("SELECT INBOX: {exists} messages, expected the {mailbox} delivered");
    }
    let bytes = session.fetch_all(exists).await?;
    let mut fastest = Duration::MAX;
    for _ in 0..FETCH_ROUNDS {
        let start = Instant::now();
        let round = session.fetch_all(exists).await?;
        fastest = fastest.min(start.elapsed());
        if round != bytes {
            bail!("FETCH 1:* returned {bytes} bytes, then {round}");
        }
    }
    session.logout().await?;
    Ok(FetchRun { bytes, fastest })
}

/// A logged-in IMAP connection, on bench's line client: responses are read
/// line by line, literal bytes counted and dropped.
pub(super) struct ImapSession {
    client: Client,
    tags: u32,
}

/// One untagged response: its lines joined (literals left out) and the
/// bytes of its literals.
struct Untagged {
    text: String,
    literal_bytes: u64,
}

impl ImapSession {
    /// Connects, reads the greeting and logs in.
    pub(super) async fn login(addr: SocketAddr, login: &Login) -> anyhow::Result<Self> {
        let mut client = Client::connect(addr).await?;
        let greeting = client.read_line().await.context("greeting")?;
        if !greeting.starts_with("* OK") {
            bail!("greeting: {greeting}");
        }
        let mut session = ImapSession { client, tags: 0 };
        session.command(&format!("LOGIN \"{}\" \"{}\"", login.user, login.password), |_| Ok(())).await?;
        Ok(session)
    }

    /// SELECT INBOX: the number of messages.
    async fn select_inbox(&mut self) -> anyhow::Result<usize> {
        let mut exists = None;
        self.command("SELECT INBOX", |r| {
            exists = exists.or(untagged_number(&r.text, "EXISTS"));
            Ok(())
        })
        .await?;
        exists.context("SELECT INBOX: no EXISTS response")
    }

    /// `FETCH 1:* BODY.PEEK[]`, which must return `exists` messages each
    /// with a literal: the literal bytes.
    async fn fetch_all(&mut self, exists: usize) -> anyhow::Result<u64> {
        let (mut messages, mut bytes) = (0, 0);
        self.command("FETCH 1:* BODY.PEEK[]", |r| {
            if untagged_number(&r.text, "FETCH").is_some() {
                if r.literal_bytes == 0 {
                    bail!("FETCH response without a body: {}", r.text);
                }
                messages += 1;
                bytes += r.literal_bytes;
            }
            Ok(())
        })
        .await?;
        if messages != exists {
            bail!("FETCH 1:*: {messages} FETCH responses, expected {exists}");
        }
        Ok(bytes)
    }

    pub(super) async fn logout(mut self) -> anyhow::Result<()> {
        self.command("LOGOUT", |_| Ok(())).await
    }

    /// Sends a tagged command, hands each untagged response to `each` and
    /// returns at the tagged response: Ok on OK, an error otherwise.
    async fn command(
        &mut self,
        command: &str,
        mut each: impl FnMut(Untagged) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.tags += 1;
        let tag = format!("b{}", self.tags);
        let verb = command.split(' ').next().unwrap_or(command).to_string();
        self.client.send(format!("{tag} {command}\r\n").as_bytes()).await.with_context(|| verb.clone())?;
        loop {
            let response = self.response().await.with_context(|| verb.clone())?;
            match response.text.strip_prefix(tag.as_str()).and_then(|t| t.strip_prefix(' ')) {
                Some(status) if status.starts_with("OK") => return Ok(()),
                Some(_) => bail!("{verb}: {}", response.text),
                None => each(response).with_context(|| verb.clone())?,
            }
        }
    }

    async fn response(&mut self) -> anyhow::Result<Untagged> {
        let mut text = self.client.read_line().await?;
        let mut literal_bytes = 0;
        while let Some(size) = literal_size(text.as_bytes()).map(|n| n as u64) {
            let mut literal = (&mut self.client.reader).take(size);
            let skipped =
                tokio::time::timeout(REPLY_TIMEOUT, tokio::io::copy_buf(&mut literal, &mut tokio::io::sink()))
                    .await
                    .map_err(|_| anyhow::anyhow!("no reply within {REPLY_TIMEOUT:?}"))??;
            if skipped != size {
                bail!("connection closed inside a literal");
            }
            literal_bytes += size;
            text.push_str(&self.client.read_line().await?);
        }
        Ok(Untagged { text, literal_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_brace_numbers_ending_a_line() {
        let literal_size = |line: &str| literal_size(line.as_bytes());
        assert_eq!(literal_size("* 1 FETCH (BODY[] {4187}"), Some(4187));
        assert_eq!(literal_size("* 1 FETCH (BINARY[] ~{7}"), Some(7));
        assert_eq!(literal_size("* OK {12} later"), None);
        assert_eq!(literal_size("* OK {}"), None);
        assert_eq!(literal_size("* OK {1a}"), None);
        assert_eq!(literal_size("* OK {99999999999999999999999}"), None);
    }

    #[test]
    fn untagged_numbers_need_their_keyword() {
        assert_eq!(untagged_number("* 500 EXISTS", "EXISTS"), Some(500));
        assert_eq!(untagged_number("* 3 fetch (BODY[] {5})", "FETCH"), Some(3));
        assert_eq!(untagged_number("* OK [UIDNEXT 5]", "EXISTS"), None);
        assert_eq!(untagged_number("b1 OK 3 EXISTS", "EXISTS"), None);
    }

    /// A scripted server: a FETCH whose literal is split over writes, then
    /// the tagged OK; the session counts the bytes and both messages.
    #[tokio::test]
    async fn fetch_counts_literal_bytes_across_reads() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(read).lines();
            write.write_all(b"* OK ready\r\n").await.unwrap();
            let login = lines.next_line().await.unwrap().unwrap();
            assert_eq!(login, "b1 LOGIN \"u@example.com\" \"pw\"");
            write.write_all(b"b1 OK LOGIN done\r\n").await.unwrap();
            lines.next_line().await.unwrap().unwrap();
            for part in [&b"* 1 FETCH (BODY[] {10}\r\n0123"[..], b"456789)\r\n* 2 FETCH (BODY[] {3}\r\n{1})\r\n"] {
                write.write_all(part).await.unwrap();
                write.flush().await.unwrap();
            }
            write.write_all(b"b2 OK FETCH done\r\n").await.unwrap();
        });
        let login = Login { user: "u@example.com".into(), password: "pw" };
        let mut session = ImapSession::login(addr, &login).await.unwrap();
        assert_eq!(session.fetch_all(2).await.unwrap(), 13);
        server.await.unwrap();
    }
}
