//! Invariant 8 on what clients saw: per mailbox and UIDVALIDITY, a UID
//! never names two different messages, a message keeps its UID, and a
//! message that appears for the first time never has a UID at or below one
//! a finished read already saw (UIDs are handed out in increasing order and
//! never reused).

use std::collections::BTreeMap;

use super::{Invariant, Violation};
use crate::history::{Op, Record};

/// Checks every (UIDVALIDITY, UID, id) the reads observed.
pub fn check(record: &Record, flag: &dyn Fn(Invariant, String, Option<&Op>) -> Violation) -> Vec<Violation> {
    let mut out = Vec::new();
    // (user, validity, uid) → (id, the op that first saw it)
    let mut named: BTreeMap<(String, u32, u32), (&str, &Op)> = BTreeMap::new();
    // (user, validity, id) → its UID
    let mut uid_of: BTreeMap<(String, u32, &str), u32> = BTreeMap::new();
    let mut ops: Vec<&Op> = record.ops.iter().filter(|o| !o.uids.is_empty()).collect();
    ops.sort_by_key(|o| (o.start, o.end));
    for op in &ops {
        let user = op.users.first().map(|u| u.to_ascii_lowercase()).unwrap_or_default();
        for (validity, uid, id) in &op.uids {
            match named.get(&(user.clone(), *validity, *uid)) {
                Some((other, first)) if *other != id => {
                    let detail = format!(
                        "UID {uid} (UIDVALIDITY {validity}) of {user} named {other} (seen by {} at {:.3}s) and now {id}",
                        first.client,
                        first.end.as_secs_f64()
                    );
                    out.push(flag(Invariant::UidsStable, detail, Some(op)));
                }
                Some(_) => {}
                None => {
                    // A newcomer: every read that ended before this one
                    // began saw only lower UIDs, unless it saw this id.
                    let mut earlier = named.iter().filter(|((u, v, _), (other, seen_by))| {
                        *u == user && v == validity && seen_by.end < op.start && *other != id
                    });
                    if let Some(((_, _, higher), (other, _))) = earlier.rfind(|((_, _, u), _)| u >= uid) {
                        let detail = format!(
                            "{id} of {user} appeared with UID {uid} (UIDVALIDITY {validity}) after {other} had been seen with UID {higher}"
                        );
                        out.push(flag(Invariant::UidsStable, detail, Some(op)));
                    }
                }
            }
        }
        for (validity, uid, id) in &op.uids {
            named.entry((user.clone(), *validity, *uid)).or_insert((id.as_str(), op));
            let first = *uid_of.entry((user.clone(), *validity, id.as_str())).or_insert(*uid);
            if first != *uid {
                let detail = format!("{id} of {user} had UID {first} and now {uid} (UIDVALIDITY {validity})");
                out.push(flag(Invariant::UidsStable, detail, Some(op)));
            }
        }
    }
    out
}
