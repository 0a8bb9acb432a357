//! The `deliver-many` operation: one SMTP session through a proxy with a
//! transaction to several recipients on different back-ends, some unknown,
//! some foreign, driven like Postfix or smtplib's `sendmail()`: a refused
//! RCPT does not stop the transaction, recipients answered 452 ("on
//! another server") go in a following transaction of the same session, and
//! the RCPTs are either pipelined or sent one by one by a slow client
//! (which widens the window for a back-end to die mid-transaction).
//!
//! Each transaction is one history entry: its users are the recipients
//! that got 250, so "acknowledged never lost" holds every one of them to
//! DATA's 250. A known user refused permanently, or a foreign address
//! accepted, is recorded as an entry of its own for the invariants to flag.

use rand::seq::SliceRandom;

use super::*;
use crate::workload::smtp_dialogue::{SmtpDialogue, SmtpReply};

/// Most transactions one operation takes to get its deferred recipients
/// through.
const MAX_TRANSACTIONS: usize = 4;
/// Most directory users in one transaction.
const MAX_KNOWN: usize = 6;
/// Longest pause of a slow client between two RCPTs...
const MAX_RCPT_PAUSE_MS: u64 = 300;
/// ...except for the odd stall (a congested link), long enough for a
/// back-end to crash and restart in between: the proxy then meets a reset
/// connection, not a silent one.
const RCPT_STALL_MS: [u64; 2] = [1000, 3000];

/// What the directory says about a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// A user the directory routes: must be accepted (or deferred).
    User,
    /// In a local domain, unknown: must be refused.
    UnknownLocal,
    /// In a domain nobody here serves: an unauthenticated client must be
    /// refused (no open relay).
    Foreign,
}

/// How one transaction went, built up as it goes so that a session that
/// breaks half-way still records what was accepted and sent.
#[derive(Default)]
struct Transaction {
    accepted: Vec<String>,
    deferred: Vec<(String, Known)>,
    refused_users: Vec<(String, SmtpReply)>,
    relayed: Vec<String>,
    /// DATA was sent: the message may be stored whatever the answer.
    data_sent: bool,
}

impl Client {
    /// Runs the operation, records one entry per transaction (and per
    /// misbehaviour) and returns the last transaction's outcome.
    pub(super) async fn deliver_many(&mut self, via: String, quiet: bool) -> Outcome {
        let mut pending = self.pick_recipients();
        let pipelined = self.rng.random_bool(0.5);
        let start = now();
        let opened = tokio::time::timeout(OP_TIMEOUT, async {
            let stream = SimNet
                .connect(&format!("{via}:{SMTP_PROXY}"))
                .await
                .map_err(|e| Outcome::Temporary(format!("connect: {e}")))?;
            match SmtpDialogue::open(stream).await {
                Ok(Ok(session)) => Ok(session),
                Ok(Err(reply)) => Err(reply_outcome(&reply)),
                Err(e) => Err(Outcome::Unknown(format!("greeting: {e}"))),
            }
        })
        .await
        .unwrap_or_else(|_| Err(Outcome::Unknown("no greeting in time".into())));
        let mut session = match opened {
            Ok(session) => session,
            Err(outcome) => {
                let users = pending.iter().filter(|(_, k)| *k == Known::User).map(|(a, _)| a.clone()).collect();
                self.record(OpKind::DeliverMany, &via, users, Vec::new(), start, outcome.clone(), quiet);
                return outcome;
            }
        };
        let mut last = Outcome::Ok;
        for _ in 0..MAX_TRANSACTIONS {
            if !pending.iter().any(|(_, k)| *k == Known::User) {
                break;
            }
            let id = self.new_id();
            let start = now();
            let mut tx = Transaction::default();
            let run = self.transaction(&mut session, &pending, &id, pipelined, &mut tx);
            last = tokio::time::timeout(OP_TIMEOUT, run)
                .await
                .unwrap_or_else(|_| Outcome::Unknown(format!("no answer within {}s", OP_TIMEOUT.as_secs())));
            let sent = if tx.data_sent { vec![id] } else { Vec::new() };
            self.record(OpKind::DeliverMany, &via, tx.accepted, sent, start, last.clone(), quiet);
            for (user, reply) in tx.refused_users {
                let refused = Outcome::Permanent(format!("RCPT {user}: {}", reply.text));
                self.record(OpKind::DeliverMany, &via, vec![user], Vec::new(), start, refused, quiet);
            }
            for address in tx.relayed {
                self.record(OpKind::RelayProbe, &via, vec![address], Vec::new(), start, Outcome::Ok, quiet);
            }
            if matches!(last, Outcome::Unknown(_)) {
                return last;
            }
            pending = tx.deferred;
        }
        // A proxy that died silently would never answer QUIT.
        let _ = tokio::time::timeout(OP_TIMEOUT, session.quit()).await;
        last
    }

    /// One MAIL, RCPT..., DATA (or RSET when nobody was accepted).
    async fn transaction(
        &mut self,
        session: &mut SmtpDialogue,
        recipients: &[(String, Known)],
        id: &str,
        pipelined: bool,
        tx: &mut Transaction,
    ) -> Outcome {
        let broken = |e: std::io::Error| Outcome::Unknown(format!("session broke: {e}"));
        let mail = match session.command("MAIL FROM:<sim@remote.test>").await {
            Ok(reply) => reply,
            Err(e) => return broken(e),
        };
        if !mail.is_positive() {
            return reply_outcome(&mail);
        }
        let lines: Vec<String> = recipients.iter().map(|(a, _)| format!("RCPT TO:<{a}>")).collect();
        let replies = if pipelined {
            match session.pipelined(&lines).await {
                Ok(replies) => replies,
                Err(e) => return broken(e),
            }
        } else {
            let mut replies = Vec::new();
            for line in &lines {
                let pause = if self.rng.random_bool(0.1) {
                    self.rng.random_range(RCPT_STALL_MS[0]..=RCPT_STALL_MS[1])
                } else {
                    self.rng.random_range(0..=MAX_RCPT_PAUSE_MS)
                };
                let pause = Duration::from_millis(pause);
                tokio::time::sleep(pause).await;
                match session.command(line).await {
                    Ok(reply) => replies.push(reply),
                    Err(e) => return broken(e),
                }
            }
            replies
        };
        let mut temporary = None;
        for ((address, known), reply) in recipients.iter().zip(replies) {
            match (known, reply.code) {
                (Known::User, 200..=299) => tx.accepted.push(address.clone()),
                (Known::User, 452) => tx.deferred.push((address.clone(), *known)),
                (Known::User, 400..=499) => temporary = Some(reply),
                (Known::User, _) => tx.refused_users.push((address.clone(), reply)),
                (Known::Foreign, 200..=299) => tx.relayed.push(address.clone()),
                (Known::UnknownLocal | Known::Foreign, _) => {}
            }
        }
        if tx.accepted.is_empty() {
            let _ = session.command("RSET").await;
            return temporary.map_or_else(|| Outcome::Temporary("no recipient accepted".into()), |r| reply_outcome(&r));
        }
        let message = message(id, &tx.accepted.join(", "));
        tx.data_sent = true;
        match session.data(&message).await {
            Ok(reply) if reply.is_positive() => Outcome::Ok,
            Ok(reply) => reply_outcome(&reply),
            Err(e) => broken(e),
        }
    }

    /// Two to six directory users (any homes), sometimes an unknown local
    /// address and a foreign one, in random order.
    fn pick_recipients(&mut self) -> Vec<(String, Known)> {
        let mut routed: Vec<String> =
            self.plan.users.iter().filter(|u| u.in_directory).map(|u| u.address.clone()).collect();
        routed.shuffle(&mut self.rng);
        let n = self.rng.random_range(2..=MAX_KNOWN.min(routed.len()).max(2));
        let mut out: Vec<(String, Known)> = routed.into_iter().take(n).map(|a| (a, Known::User)).collect();
        if self.rng.random_bool(0.3) {
            out.push((format!("nobody-{}@example.com", self.rng.random_range(0..100)), Known::UnknownLocal));
        }
        if self.rng.random_bool(0.2) {
            out.push(("victim@foreign.test".into(), Known::Foreign));
        }
        out.shuffle(&mut self.rng);
        out
    }
}

fn reply_outcome(reply: &SmtpReply) -> Outcome {
    if reply.is_temporary() { Outcome::Temporary(reply.text.clone()) } else { Outcome::Permanent(reply.text.clone()) }
}
