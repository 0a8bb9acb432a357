//! A simulated client host: picks operations from the workload mix, runs
//! them through the proxies with real client libraries (lettre, async-imap,
//! our POP3 client) and records each with its outcome in the history.
//!
//! Every message a client sends carries a header `X-Sim-Id: <client>-<n>`,
//! unique in the run; clients never resend an id, so the same id twice in
//! one mailbox is a duplicate the nodes made.

use std::rc::Rc;
use std::time::Duration;

use futures::TryStreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiermail_node::net::{Net, SimNet};

use super::pop3::{Pop3Client, Pop3Error};
use super::smtp::{self, SendError};
use crate::cluster::layout::{IMAP_PROXY, POP3_PROXY, SMTP_PROXY};
use crate::history::{History, Op, OpKind, Outcome};
use crate::scenario::Workload;
use crate::world::Plan;

mod deliver_many;
mod pop3_delete;

/// An operation that has not finished by then counts as unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// The header carrying a message's id.
pub const ID_HEADER: &str = "X-Sim-Id";
/// Operations every client must get through in the quiet phase (liveness),
/// if the mix has them.
pub const LIVENESS_KINDS: [OpKind; 4] = [OpKind::Deliver, OpKind::Append, OpKind::ImapRead, OpKind::Pop3Read];
/// Pause between liveness retries.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// One client host's state.
pub struct Client {
    pub name: String,
    pub plan: Rc<Plan>,
    pub history: History,
    rng: StdRng,
    next_id: u64,
    mix: Vec<(OpKind, u32)>,
    think_ms: [u64; 2],
}

/// What an operation is about, decided before it runs (so a timed-out
/// operation is still recorded with its ids).
struct Intent {
    kind: OpKind,
    via: String,
    users: Vec<String>,
    sent: Vec<String>,
}

impl Client {
    pub fn new(name: String, plan: Rc<Plan>, workload: &Workload, history: History, seed: u64) -> Client {
        let mix = workload.mix.iter().filter(|(_, w)| **w > 0).map(|(k, w)| (*k, *w)).collect();
        let think_ms = workload.think_ms;
        Client { name, plan, history, rng: StdRng::seed_from_u64(seed), next_id: 0, mix, think_ms }
    }

    /// The client's life: random operations until `quiet_from`, then each
    /// liveness kind until it succeeds or `deadline` passes.
    pub async fn run(mut self, quiet_from: Duration, deadline: Duration) {
        while now() < quiet_from {
            let kind = self.pick_kind();
            self.op(kind, false).await;
            let [lo, hi] = self.think_ms;
            let pause = Duration::from_millis(self.rng.random_range(lo..=hi));
            tokio::time::sleep(pause).await;
        }
        if now() < quiet_from {
            tokio::time::sleep(quiet_from - now()).await;
        }
        let kinds: Vec<OpKind> =
            LIVENESS_KINDS.into_iter().filter(|k| self.mix.iter().any(|(m, w)| m == k && *w > 0)).collect();
        for kind in kinds {
            while self.op(kind, true).await != Outcome::Ok && now() < deadline {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    fn pick_kind(&mut self) -> OpKind {
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for (kind, weight) in &self.mix {
            if roll < *weight {
                return *kind;
            }
            roll -= weight;
        }
        self.mix[0].0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.name, self.next_id)
    }

    /// Runs one operation of `kind` and records it; returns its outcome.
    pub async fn op(&mut self, kind: OpKind, quiet: bool) -> Outcome {
        let start = now();
        let proxies = self.plan.proxies().into_iter().map(str::to_owned).collect::<Vec<_>>();
        let proxy = self.pick(&proxies).clone();
        match kind {
            OpKind::DeliverMany => return self.deliver_many(proxy, quiet).await,
            OpKind::Pop3Delete => return self.pop3_delete(proxy, quiet).await,
            _ => {}
        }
        let intent = self.intent(kind, proxy);
        let run = self.execute(&intent);
        let (outcome, observed) = match tokio::time::timeout(OP_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => (Outcome::Unknown(format!("no answer within {}s", OP_TIMEOUT.as_secs())), Observed::default()),
        };
        self.history.push(Op {
            client: self.name.clone(),
            kind,
            via: intent.via,
            users: intent.users,
            sent: intent.sent,
            seen: observed.seen,
            uids: observed.uids,
            removed: Vec::new(),
            start,
            end: now(),
            outcome: outcome.clone(),
            quiet,
        });
        outcome
    }

    /// Records an operation that a dedicated runner (deliver-many,
    /// pop3-delete) ran.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        kind: OpKind,
        via: &str,
        users: Vec<String>,
        sent: Vec<String>,
        start: Duration,
        outcome: Outcome,
        quiet: bool,
    ) {
        let (client, via) = (self.name.clone(), via.to_string());
        let (seen, uids, removed) = (Vec::new(), Vec::new(), Vec::new());
        let end = now();
        self.history.push(Op { client, kind, via, users, sent, seen, uids, removed, start, end, outcome, quiet });
    }

    fn intent(&mut self, kind: OpKind, proxy: String) -> Intent {
        let users = self.plan.users.clone();
        let user = self.pick(&users).clone();
        let mut intent = Intent { kind, via: proxy, users: vec![user.address.clone()], sent: Vec::new() };
        match kind {
            OpKind::Deliver => {
                // Recipients the directory routes (the SMTP proxy does not
                // use failover addresses), sometimes two on one back-end.
                let routed: Vec<_> = users.iter().filter(|u| u.in_directory).collect();
                let first = (*self.pick(&routed)).clone();
                intent.users = vec![first.address.clone()];
                let same_home: Vec<_> =
                    routed.iter().filter(|u| u.home == first.home && u.address != first.address).collect();
                if !same_home.is_empty() && self.rng.random_bool(0.3) {
                    intent.users.push(self.pick(&same_home).address.clone());
                }
                intent.sent.push(self.new_id());
            }
            OpKind::Append => intent.sent.push(self.new_id()),
            OpKind::BadLogin => {
                let login = match self.rng.random_range(0..4) {
                    0 => format!("{}\0wrong-{}", user.address, self.rng.random_range(0..1000)),
                    1 => "nobody@example.com\0whatever".to_owned(),
                    2 => "*)(uid=*\0x".to_owned(),
                    _ => "mallory@example.com\0mallory".to_owned(),
                };
                intent.users = vec![login];
            }
            OpKind::RelayProbe => intent.users = vec!["victim@foreign.test".to_owned()],
            OpKind::ImapRead | OpKind::Pop3Read | OpKind::Idle | OpKind::DeliverMany | OpKind::Pop3Delete => {}
        }
        intent
    }

    async fn execute(&mut self, intent: &Intent) -> (Outcome, Observed) {
        let via = intent.via.as_str();
        let password = |address: &str| self.plan.user(address).map(|u| u.password.clone()).unwrap_or_default();
        match intent.kind {
            OpKind::DeliverMany | OpKind::Pop3Delete => unreachable!("run by their own runners"),
            OpKind::Deliver => {
                let to: Vec<&str> = intent.users.iter().map(String::as_str).collect();
                let message = message(&intent.sent[0], &to.join(", "));
                (deliver(via, "sim@remote.test", &to, &message).await, Observed::default())
            }
            OpKind::RelayProbe => {
                let message = message("relay-probe", "victim@foreign.test");
                (deliver(via, "spammer@remote.test", &["victim@foreign.test"], &message).await, Observed::default())
            }
            OpKind::Append => {
                let user = &intent.users[0];
                let message = message(&intent.sent[0], user);
                (imap(via, user, &password(user), ImapTask::Append(message)).await.0, Observed::default())
            }
            OpKind::ImapRead => {
                let user = &intent.users[0];
                imap(via, user, &password(user), ImapTask::Read).await
            }
            OpKind::Idle => {
                let user = &intent.users[0];
                let wait = Duration::from_millis(self.rng.random_range(1000..8000));
                (imap(via, user, &password(user), ImapTask::Idle(wait)).await.0, Observed::default())
            }
            OpKind::Pop3Read => {
                let user = &intent.users[0];
                pop3_read(via, user, &password(user)).await
            }
            OpKind::BadLogin => {
                let (login, secret) = intent.users[0].split_once('\0').unwrap_or((&intent.users[0], ""));
                let outcome = match self.rng.random_range(0..3) {
                    0 => imap(via, login, secret, ImapTask::Read).await.0,
                    1 => pop3_read(via, login, secret).await.0,
                    _ => smtp_auth(via, login, secret).await,
                };
                (outcome, Observed::default())
            }
        }
    }
}

/// What a read saw: message ids, and (UIDVALIDITY, UID, id) where the
/// protocol tells (IMAP UID, POP3 UIDL).
#[derive(Debug, Default)]
pub struct Observed {
    pub seen: Vec<String>,
    pub uids: Vec<(u32, u32, String)>,
}

impl Observed {
    /// One POP3 message: its ids, and its UID and UIDVALIDITY from a UIDL
    /// value in Dovecot's `%08Xu%08Xv` form (other forms carry none).
    pub fn record_uidl(&mut self, unique: &str, ids: &[String]) {
        let hex = |s: Option<&str>| s.and_then(|h| u32::from_str_radix(h, 16).ok());
        let (uid, validity) = (hex(unique.get(..8)), hex(unique.get(8..)));
        if let (Some(uid), Some(validity), [id], 16) = (uid, validity, ids, unique.len()) {
            self.uids.push((validity, uid, id.clone()));
        }
        self.seen.extend(ids.iter().cloned());
    }
}

/// Simulated time since the start of the run.
pub fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// A small message carrying `id`.
pub fn message(id: &str, to: &str) -> Vec<u8> {
    format!(
        "From: sim@remote.test\r\nTo: {to}\r\nSubject: message {id}\r\nMessage-ID: <{id}@sim.test>\r\n\
         {ID_HEADER}: {id}\r\n\r\nThis is message {id}.\r\n"
    )
    .into_bytes()
}

/// The ids in a message or header block.
pub fn ids_in(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let prefix = format!("{}:", ID_HEADER.to_ascii_lowercase());
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
        .collect()
}

async fn deliver(via: &str, from: &str, to: &[&str], message: &[u8]) -> Outcome {
    match smtp::send(&SimNet, &format!("{via}:{SMTP_PROXY}"), from, to, message).await {
        Ok(reply) if reply.is_positive() => Outcome::Ok,
        Ok(reply) => Outcome::Permanent(format!("{reply:?}")),
        Err(SendError::Connect { source, .. }) => Outcome::Temporary(format!("connect: {source}")),
        Err(SendError::Smtp(e)) if e.is_transient() => Outcome::Temporary(e.to_string()),
        Err(SendError::Smtp(e)) if e.is_permanent() => Outcome::Permanent(e.to_string()),
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

enum ImapTask {
    Read,
    Append(Vec<u8>),
    Idle(Duration),
}

/// Logs in through the IMAP proxy at `via` and does `task`; returns the
/// outcome and, for reads, the ids seen in INBOX.
async fn imap(via: &str, user: &str, password: &str, task: ImapTask) -> (Outcome, Observed) {
    match imap_session(via, user, password, task).await {
        Ok(observed) => (Outcome::Ok, observed),
        Err(outcome) => (outcome, Observed::default()),
    }
}

async fn imap_session(via: &str, user: &str, password: &str, task: ImapTask) -> Result<Observed, Outcome> {
    let stream = SimNet
        .connect(&format!("{via}:{IMAP_PROXY}"))
        .await
        .map_err(|e| Outcome::Temporary(format!("connect: {e}")))?;
    let mut client = async_imap::Client::new(stream);
    match client.read_response().await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(Outcome::Unknown("closed before the greeting".into())),
        Err(e) => return Err(Outcome::Unknown(format!("greeting: {e}"))),
    }
    let mut session = client.login(user, password).await.map_err(|(e, _)| imap_outcome(e))?;
    let inbox = session.select("INBOX").await.map_err(imap_outcome)?;
    let mut observed = Observed::default();
    match task {
        ImapTask::Read if inbox.exists == 0 => {}
        ImapTask::Read => {
            let stream = session.fetch("1:*", "(UID RFC822.HEADER)").await.map_err(imap_outcome)?;
            let fetched: Vec<_> = stream.try_collect().await.map_err(imap_outcome)?;
            for fetch in fetched {
                let ids = ids_in(fetch.header().unwrap_or_default());
                if let (Some(validity), Some(uid), [id]) = (inbox.uid_validity, fetch.uid, ids.as_slice()) {
                    observed.uids.push((validity, uid, id.clone()));
                }
                observed.seen.extend(ids);
            }
        }
        ImapTask::Append(message) => session.append("INBOX", None, None, &message).await.map_err(imap_outcome)?,
        ImapTask::Idle(wait) => {
            let mut idle = session.idle();
            idle.init().await.map_err(imap_outcome)?;
            let (done, _stop) = idle.wait_with_timeout(wait);
            done.await.map_err(imap_outcome)?;
            session = idle.done().await.map_err(imap_outcome)?;
        }
    }
    session.logout().await.map_err(imap_outcome)?;
    Ok(observed)
}

/// Tagged NO with a temporary response code → temporary; other NO/BAD →
/// permanent; broken connections → unknown.
fn imap_outcome(e: async_imap::error::Error) -> Outcome {
    use async_imap::error::Error;
    match e {
        Error::No(text) => {
            let upper = text.to_ascii_uppercase();
            if ["UNAVAILABLE", "LIMIT", "INUSE", "SERVERBUG", "CONTACTADMIN"].iter().any(|c| upper.contains(c)) {
                Outcome::Temporary(text)
            } else {
                Outcome::Permanent(text)
            }
        }
        Error::Bad(text) => Outcome::Permanent(format!("BAD {text}")),
        other => Outcome::Unknown(other.to_string()),
    }
}

/// Logs in through the POP3 proxy at `via` and reads every message's id.
async fn pop3_read(via: &str, user: &str, password: &str) -> (Outcome, Observed) {
    let stream = match SimNet.connect(&format!("{via}:{POP3_PROXY}")).await {
        Ok(s) => s,
        Err(e) => return (Outcome::Temporary(format!("connect: {e}")), Observed::default()),
    };
    let session = async {
        let mut pop = Pop3Client::new(stream).await?;
        pop.login(user, password).await?;
        let mut observed = Observed::default();
        for (n, unique) in pop.uidl().await? {
            let ids = ids_in(&pop.top(n, 0).await?);
            observed.record_uidl(&unique, &ids);
        }
        pop.quit().await?;
        Ok::<_, Pop3Error>(observed)
    };
    match session.await {
        Ok(observed) => (Outcome::Ok, observed),
        Err(Pop3Error::Err(text)) if text.starts_with("[SYS/TEMP]") || text.starts_with("[IN-USE]") => {
            (Outcome::Temporary(text), Observed::default())
        }
        Err(Pop3Error::Err(text)) => (Outcome::Permanent(text), Observed::default()),
        Err(e) => (Outcome::Unknown(e.to_string()), Observed::default()),
    }
}

/// SMTP AUTH PLAIN at the SMTP proxy: 235 means the login was accepted.
async fn smtp_auth(via: &str, user: &str, password: &str) -> Outcome {
    match smtp::auth_plain(&SimNet, &format!("{via}:{SMTP_PROXY}"), user, password).await {
        Ok(code) if code < 300 => Outcome::Ok,
        Ok(code) if code < 500 => Outcome::Temporary(format!("AUTH answered {code}")),
        Ok(code) => Outcome::Permanent(format!("AUTH answered {code}")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Temporary(e.to_string()),
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_the_header_only() {
        let m = message("client-1-7", "alice@example.com");
        assert_eq!(ids_in(&m), ["client-1-7"]);
        assert!(ids_in(b"Subject: x\r\n\r\nX-Sim-Id: body-is-not-header\r\n").is_empty());
        assert_eq!(ids_in(b"x-sim-id:  a-1 \r\nX-SIM-ID: a-2\r\n"), ["a-1", "a-2"]);
    }
}
