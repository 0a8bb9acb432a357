//! The selected folder as one session knows it: message sequence numbers,
//! UIDs and flags, and how to bring that view up to date with the store
//! (new mail → EXISTS, flag changes → FETCH, removals → EXPUNGE), which is
//! how two sessions on one folder see each other's changes (RFC 3501 5.2).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use tokio::sync::watch;

use super::flags::fetch_flags;
use super::search::in_sequence_set;
use crate::store::{Flags, Snapshot};

/// One message as the session last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub uid: u32,
    pub flags: Flags,
    /// \Recent for this session (it was in new/ when the session saw it).
    pub recent: bool,
    pub internal_date: i64,
    pub size: u64,
}

/// The selected folder.
pub struct Selected {
    pub folder: String,
    pub read_only: bool,
    pub uid_validity: u32,
    pub uid_next: u32,
    /// Index = message sequence number - 1.
    pub messages: Vec<Known>,
    /// Wakes when the store changes this folder.
    pub changes: watch::Receiver<u64>,
}

impl Selected {
    pub fn new(
        folder: String,
        read_only: bool,
        snapshot: Snapshot,
        recent: &[u32],
        changes: watch::Receiver<u64>,
    ) -> Self {
        let messages = snapshot
            .messages
            .iter()
            .map(|m| Known {
                uid: m.uid,
                flags: m.flags,
                recent: recent.contains(&m.uid),
                internal_date: m.internal_date,
                size: m.size,
            })
            .collect();
        Self { folder, read_only, uid_validity: snapshot.uid_validity, uid_next: snapshot.uid_next, messages, changes }
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn recent(&self) -> u32 {
        self.messages.iter().filter(|m| m.recent).count() as u32
    }

    /// Brings the view up to date and returns the untagged responses that
    /// tell the client. With `allow_expunge` false (during FETCH, STORE,
    /// SEARCH by sequence number, RFC 3501 7.4.1) removals are held back and
    /// stay in the view until a later command may report them.
    pub fn refresh(&mut self, snapshot: &Snapshot, recent: &[u32], allow_expunge: bool) -> Vec<Data<'static>> {
        let mut out = Vec::new();
        let current: BTreeMap<u32, (Flags, i64, u64)> =
            snapshot.messages.iter().map(|m| (m.uid, (m.flags, m.internal_date, m.size))).collect();
        if allow_expunge {
            // Descending, so each EXPUNGE's number is still valid when sent.
            for index in (0..self.messages.len()).rev() {
                if !current.contains_key(&self.messages[index].uid) {
                    self.messages.remove(index);
                    out.push(Data::Expunge(NonZeroU32::new(index as u32 + 1).expect("index + 1 > 0")));
                }
            }
        }
        for (index, known) in self.messages.iter_mut().enumerate() {
            if let Some((flags, _, _)) = current.get(&known.uid)
                && *flags != known.flags
            {
                known.flags = *flags;
                out.push(flags_fetch(index, known, false));
            }
        }
        let highest = self.messages.iter().map(|m| m.uid).max().unwrap_or(0);
        let before = self.messages.len();
        for (uid, (flags, internal_date, size)) in current.range(highest + 1..) {
            let recent = recent.contains(uid);
            self.messages.push(Known { uid: *uid, flags: *flags, recent, internal_date: *internal_date, size: *size });
        }
        if self.messages.len() != before || out.iter().any(|d| matches!(d, Data::Expunge(_))) {
            out.push(Data::Exists(self.exists()));
            if self.messages.len() != before {
                out.push(Data::Recent(self.recent()));
            }
        }
        self.uid_next = snapshot.uid_next;
        out
    }

    /// Indexes (0-based) of the messages a sequence set names, ascending
    /// and without duplicates. UIDs that do not exist are ignored; `*` is
    /// the last message (RFC 3501 6.4.8).
    pub fn resolve(&self, set: &SequenceSet, by_uid: bool) -> Vec<usize> {
        let Some(last) = self.messages.last() else { return Vec::new() };
        let largest = if by_uid { last.uid } else { self.exists() };
        (0..self.messages.len())
            .filter(|&i| in_sequence_set(set, if by_uid { self.messages[i].uid } else { i as u32 + 1 }, largest))
            .collect()
    }

    /// Whether every number of a sequence-number set exists (a BAD otherwise).
    pub fn sequence_numbers_valid(&self, set: &SequenceSet) -> bool {
        set.0.as_ref().iter().all(|seq| {
            let ok = |s: &SeqOrUid| match s {
                SeqOrUid::Value(v) => v.get() <= self.exists(),
                SeqOrUid::Asterisk => self.exists() > 0,
            };
            match seq {
                Sequence::Single(s) => ok(s),
                Sequence::Range(a, b) => ok(a) && ok(b),
            }
        })
    }
}

/// `* n FETCH (FLAGS (...) [UID u])`.
pub fn flags_fetch(index: usize, known: &Known, with_uid: bool) -> Data<'static> {
    let mut items = vec![MessageDataItem::Flags(fetch_flags(known.flags, known.recent))];
    if with_uid {
        items.push(MessageDataItem::Uid(NonZeroU32::new(known.uid).expect("UIDs are positive")));
    }
    Data::Fetch {
        seq: NonZeroU32::new(index as u32 + 1).expect("index + 1 > 0"),
        items: Vec1::try_from(items).expect("at least FLAGS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageEntry;

    fn snapshot(uids: &[(u32, Flags)]) -> Snapshot {
        Snapshot {
            uid_validity: 1,
            uid_next: uids.iter().map(|u| u.0).max().unwrap_or(0) + 1,
            messages: uids
                .iter()
                .map(|(uid, flags)| MessageEntry {
                    uid: *uid,
                    size: 10,
                    flags: *flags,
                    recent: false,
                    internal_date: 0,
                    path: String::new(),
                })
                .collect(),
        }
    }

    fn selected(uids: &[u32]) -> Selected {
        let (_tx, rx) = watch::channel(0);
        let s = snapshot(&uids.iter().map(|u| (*u, Flags::default())).collect::<Vec<_>>());
        Selected::new("INBOX".into(), false, s, &[], rx)
    }

    #[test]
    fn expunges_are_reported_highest_first_then_exists() {
        let mut sel = selected(&[1, 2, 3, 4, 5]);
        let out = sel.refresh(&snapshot(&[(1, Flags::default()), (4, Flags::default())]), &[], true);
        let n = |i: u32| NonZeroU32::new(i).unwrap();
        assert_eq!(out, vec![Data::Expunge(n(5)), Data::Expunge(n(3)), Data::Expunge(n(2)), Data::Exists(2)]);
        assert_eq!(sel.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn held_back_expunges_keep_numbers_stable() {
        let mut sel = selected(&[1, 2, 3]);
        let out =
            sel.refresh(&snapshot(&[(1, Flags::default()), (3, Flags::SEEN), (7, Flags::default())]), &[7], false);
        assert_eq!(sel.exists(), 4, "2 stays until it may be expunged, 7 is new");
        assert!(out.contains(&Data::Exists(4)) && out.contains(&Data::Recent(1)));
        assert!(matches!(out[0], Data::Fetch { seq, .. } if seq.get() == 3), "{out:?}");
    }

    #[test]
    fn sequence_sets_resolve_by_number_and_by_uid() {
        let sel = selected(&[3, 5, 9, 12]);
        let set = |s: &str| SequenceSet::try_from(s).unwrap();
        assert_eq!(sel.resolve(&set("2:*"), false), [1, 2, 3]);
        assert_eq!(sel.resolve(&set("4:2"), false), [1, 2, 3]);
        assert_eq!(sel.resolve(&set("5:10"), true), [1, 2]);
        assert_eq!(sel.resolve(&set("13:*"), true), [3], "n:* always includes the last UID");
        assert_eq!(sel.resolve(&set("1,1,2"), false), [0, 1]);
        assert!(sel.sequence_numbers_valid(&set("1:4")));
        assert!(!sel.sequence_numbers_valid(&set("5")));
    }
}
