//! The invariants of DESIGN.md, checked on a run's history and on the final
//! state of every store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::history::{Op, OpKind, Outcome, Record};
use crate::run::Stores;
use crate::scenario::Workload;
use crate::workload::client::LIVENESS_KINDS;
use crate::world::Plan;

mod uids;

/// Which invariant a violation breaks (DESIGN.md numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// 1. An acknowledged message is never lost.
    AckedNotLost,
    /// 2. No duplicate delivery.
    NoDuplicate,
    /// 2b. No mail appears that no client sent to that mailbox.
    NoPhantom,
    /// 3. No session without authentication.
    AuthRequired,
    /// 4. No open relay.
    NoOpenRelay,
    /// 5. Mail lands on the node the map names.
    Routing,
    /// 6. Legitimate operations fail only temporarily (outages included).
    TemporaryErrors,
    /// 7. After faults heal, every client's next operation succeeds in time.
    Liveness,
    /// 8. Per mailbox and UIDVALIDITY, UIDs are unique and increasing.
    UidsStable,
    /// 9. A message deleted for good (POP3 DELE + QUIT +OK) never comes back.
    DeletionExact,
}

impl Invariant {
    pub const ALL: [Invariant; 10] = [
        Invariant::AckedNotLost,
        Invariant::NoDuplicate,
        Invariant::NoPhantom,
        Invariant::AuthRequired,
        Invariant::NoOpenRelay,
        Invariant::Routing,
        Invariant::TemporaryErrors,
        Invariant::Liveness,
        Invariant::UidsStable,
        Invariant::DeletionExact,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::AckedNotLost => "acked-not-lost",
            Invariant::NoDuplicate => "no-duplicate",
            Invariant::NoPhantom => "no-phantom",
            Invariant::AuthRequired => "auth-required",
            Invariant::NoOpenRelay => "no-open-relay",
            Invariant::Routing => "routing",
            Invariant::TemporaryErrors => "temporary-errors",
            Invariant::Liveness => "liveness",
            Invariant::UidsStable => "uids-stable",
            Invariant::DeletionExact => "deletion-exact",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
    /// When it was observed, if a single operation shows it.
    pub at: Option<Duration>,
    /// The hosts involved (client, proxy, back-end).
    pub hosts: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)?;
        if let Some(at) = self.at {
            write!(f, " (at {:.3}s)", at.as_secs_f64())?;
        }
        Ok(())
    }
}

/// Operations a legitimate user runs: they may fail temporarily, never
/// permanently.
pub const LEGITIMATE: [OpKind; 7] = [
    OpKind::Deliver,
    OpKind::DeliverMany,
    OpKind::Append,
    OpKind::ImapRead,
    OpKind::Pop3Read,
    OpKind::Pop3Delete,
    OpKind::Idle,
];
/// Operations that report the ids they saw in a mailbox.
const READS: [OpKind; 3] = [OpKind::ImapRead, OpKind::Pop3Read, OpKind::Pop3Delete];

/// What a sent id was meant for.
struct Sent<'a> {
    users: Vec<String>,
    op: &'a Op,
}

/// Invariant 8 once more, with each mailbox as the store reopens it after
/// the final crash ([`crate::reopen`]) as the last read.
pub fn check_reopened(record: &Record, reopened: Vec<Op>) -> Vec<Violation> {
    let mut all = record.clone();
    all.ops.extend(reopened);
    let flag = |invariant, detail: String, op: Option<&Op>| Violation {
        invariant,
        detail,
        at: op.map(|o| o.end),
        hosts: op.map(|o| vec![o.client.clone(), o.via.clone()]).unwrap_or_default(),
    };
    let reopened = |v: &Violation| v.hosts.first().is_some_and(|c| c == crate::reopen::REOPEN_CLIENT);
    // What the clients' own reads show is reported by `check` already.
    uids::check(&all, &flag).into_iter().filter(reopened).collect()
}

/// Checks every invariant on a run's history and final stores.
pub fn check(plan: &Plan, workload: &Workload, record: &Record, stores: &Stores) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut sent: BTreeMap<&str, Sent<'_>> = BTreeMap::new();
    for op in &record.ops {
        for id in &op.sent {
            let users = op.users.iter().map(|u| u.to_ascii_lowercase()).collect();
            sent.insert(id, Sent { users, op });
        }
    }
    let flag = |invariant, detail: String, op: Option<&Op>| Violation {
        invariant,
        detail,
        at: op.map(|o| o.end),
        hosts: op.map(|o| vec![o.client.clone(), o.via.clone()]).unwrap_or_default(),
    };
    let home = |user: &str| plan.user(user).map(|u| u.home.clone());
    // (user, id) → when it was removed, and whether for good (QUIT +OK)
    // or perhaps (QUIT unanswered).
    let mut removed: BTreeMap<(String, &str), (Duration, bool)> = BTreeMap::new();
    for op in record.ops.iter().filter(|o| o.kind == OpKind::Pop3Delete) {
        let user = op.users.first().map(|u| u.to_ascii_lowercase()).unwrap_or_default();
        for id in &op.removed {
            removed.entry((user.clone(), id.as_str())).or_insert((op.end, op.outcome == Outcome::Ok));
        }
    }

    // 1. Acknowledged mail is on its recipients' home stores.
    for op in record.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if !matches!(op.kind, OpKind::Deliver | OpKind::DeliverMany | OpKind::Append) {
            continue;
        }
        for user in &op.users {
            let Some(home) = home(user) else { continue };
            let stored = stores.get(&(home.clone(), user.to_ascii_lowercase())).map(Vec::as_slice).unwrap_or(&[]);
            for id in &op.sent {
                if !stored.contains(id) && !removed.contains_key(&(user.to_ascii_lowercase(), id.as_str())) {
                    let detail = format!(
                        "{} {id} for {user} was acknowledged by {} but is not on {home} after the run",
                        op.kind.name(),
                        op.via
                    );
                    out.push(flag(Invariant::AckedNotLost, detail, Some(op)));
                }
            }
        }
    }

    // 2, 2b, 5. Every stored message: once, sent to that user, on the
    // user's home.
    for ((host, user), ids) in stores {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in ids {
            *counts.entry(id).or_default() += 1;
        }
        for (id, n) in counts {
            let origin = sent.get(id);
            if n > 1 {
                let detail = format!("{id} is stored {n} times in {user}'s mailbox on {host}");
                out.push(flag(Invariant::NoDuplicate, detail, origin.map(|s| s.op)));
            }
            match origin {
                None => out.push(flag(Invariant::NoPhantom, format!("{id} on {host} for {user}: never sent"), None)),
                Some(s) if !s.users.contains(user) => {
                    let detail = format!("{id} on {host} is in {user}'s mailbox; it was sent to {:?}", s.users);
                    out.push(flag(Invariant::NoPhantom, detail, Some(s.op)));
                }
                Some(s) if matches!(s.op.outcome, Outcome::Permanent(_)) => {
                    let detail = format!("{id} was refused ({}) yet is stored on {host} for {user}", s.op.outcome);
                    out.push(flag(Invariant::NoPhantom, detail, Some(s.op)));
                }
                Some(s) => {
                    if let Some(home) = home(user)
                        && home != *host
                    {
                        let detail = format!("{id} for {user} landed on {host}; the map says {home}");
                        out.push(flag(Invariant::Routing, detail, Some(s.op)));
                    }
                }
            }
        }
    }

    for op in &record.ops {
        // Reads show only mail sent to the reader, and never mail the
        // reader deleted for good before the read began.
        if READS.contains(&op.kind) {
            let reader = op.users.first().map(|u| u.to_ascii_lowercase()).unwrap_or_default();
            for id in &op.seen {
                if let Some((at, true)) = removed.get(&(reader.clone(), id.as_str()))
                    && *at < op.start
                {
                    let detail = format!(
                        "{} by {reader} through {} saw {id}, deleted for good at {:.3}s",
                        op.kind.name(),
                        op.via,
                        at.as_secs_f64()
                    );
                    out.push(flag(Invariant::DeletionExact, detail, Some(op)));
                }
            }
        }
        if READS.contains(&op.kind) && op.outcome == Outcome::Ok {
            let reader = op.users.first().map(|u| u.to_ascii_lowercase()).unwrap_or_default();
            for id in &op.seen {
                let meant = sent.get(id.as_str()).is_some_and(|s| s.users.contains(&reader));
                if !meant {
                    let detail =
                        format!("{} by {reader} through {} saw {id}, not sent to them", op.kind.name(), op.via);
                    out.push(flag(Invariant::NoPhantom, detail, Some(op)));
                }
            }
        }
        // 3, 4. Bad logins and relay attempts never succeed.
        if op.outcome == Outcome::Ok {
            match op.kind {
                OpKind::BadLogin => {
                    let login = op.users.first().and_then(|u| u.split('\0').next()).unwrap_or_default();
                    let detail = format!("a bad login as {login:?} through {} was accepted", op.via);
                    out.push(flag(Invariant::AuthRequired, detail, Some(op)));
                }
                OpKind::RelayProbe => {
                    let detail = format!("{} relayed unauthenticated mail to {:?}", op.via, op.users);
                    out.push(flag(Invariant::NoOpenRelay, detail, Some(op)));
                }
                _ => {}
            }
        }
        // 6. Legitimate operations never fail permanently.
        if LEGITIMATE.contains(&op.kind)
            && let Outcome::Permanent(why) = &op.outcome
        {
            let detail = format!("{} for {:?} through {} failed permanently: {why}", op.kind.name(), op.users, op.via);
            out.push(flag(Invariant::TemporaryErrors, detail, Some(op)));
        }
    }

    // 8. UIDs as clients saw them.
    out.extend(uids::check(record, &flag));

    // 9. What was deleted for good is not in the final store.
    for ((host, user), ids) in stores {
        for id in ids {
            if let Some((at, true)) = removed.get(&(user.clone(), id.as_str())) {
                let detail = format!(
                    "{id} was deleted for good at {:.3}s yet is in {user}'s mailbox on {host}",
                    at.as_secs_f64()
                );
                out.push(flag(Invariant::DeletionExact, detail, None));
            }
        }
    }

    // 7. Every client got each kind of operation through in the quiet phase.
    let clients: BTreeSet<&str> = record.ops.iter().map(|o| o.client.as_str()).collect();
    for client in clients {
        for kind in LIVENESS_KINDS {
            if workload.mix.get(&kind).copied().unwrap_or(0) == 0 {
                continue;
            }
            let quiet: Vec<&Op> =
                record.ops.iter().filter(|o| o.client == client && o.kind == kind && o.quiet).collect();
            if !quiet.iter().any(|o| o.outcome == Outcome::Ok) {
                let last = quiet.last().map(|o| o.outcome.to_string()).unwrap_or_else(|| "never tried".into());
                let detail = format!("{client}: no {} succeeded after the faults healed (last: {last})", kind.name());
                out.push(flag(Invariant::Liveness, detail, quiet.last().copied()));
            }
        }
    }
    out.sort_by_key(|v| (v.invariant, v.at));
    out
}
