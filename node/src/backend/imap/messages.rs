//! Selected-state commands: CHECK, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE,
//! SEARCH, FETCH, STORE, COPY, MOVE (RFC 3501 6.4, UIDPLUS, MOVE).

use std::num::NonZeroU32;

use chrono::{DateTime, FixedOffset};
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::flag::{StoreResponse, StoreType};
use imap_codec::imap_types::response::Status;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::flags::from_imap;
use super::folders::folder_name;
use super::search::{Bounds, Candidate, matches_all, needs_content};
use super::selected::flags_fetch;
use super::session::{Kind, Session, status};
use crate::store::Flags;

impl Session {
    pub(super) async fn selected_command(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Status<'static> {
        match body {
            CommandBody::Check => status(tag, Kind::Ok, None, "CHECK completed"),
            CommandBody::Close => {
                if self.selected.as_ref().is_some_and(|s| !s.read_only) {
                    self.expunge_deleted(None).await.ok();
                }
                self.selected = None;
                status(tag, Kind::Ok, None, "CLOSE completed")
            }
            CommandBody::Unselect => {
                self.selected = None;
                status(tag, Kind::Ok, None, "UNSELECT completed")
            }
            CommandBody::Expunge => self.expunge(tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(tag, Some(sequence_set)).await,
            CommandBody::Search { charset, criteria, uid } => self.search(tag, charset, criteria.as_ref(), uid).await,
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, .. } => {
                self.fetch(tag, &sequence_set, macro_or_item_names, uid).await
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid, .. } => {
                self.store_flags(tag, &sequence_set, kind, response, from_imap(&flags), uid).await
            }
            CommandBody::Copy { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &folder_name(&mailbox), uid, false).await
            }
            CommandBody::Move { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &folder_name(&mailbox), uid, true).await
            }
            body => status(tag, Kind::Bad, None, &format!("{} is not supported", body.name())),
        }
    }

    /// The messages a command's set names, or a BAD for sequence numbers
    /// beyond the folder (UIDs that do not exist are simply skipped).
    pub(super) fn targets(
        &self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        by_uid: bool,
    ) -> Result<Vec<usize>, Status<'static>> {
        let selected = self.selected.as_ref().expect("selected state");
        if !by_uid && !selected.sequence_numbers_valid(set) {
            return Err(status(tag, Kind::Bad, None, "Invalid message sequence number"));
        }
        Ok(selected.resolve(set, by_uid))
    }

    fn read_only(&self, tag: &Tag<'static>) -> Option<Status<'static>> {
        self.selected
            .as_ref()
            .is_some_and(|s| s.read_only)
            .then(|| status(tag, Kind::No, Some(Code::ReadOnly), "Folder is read-only (EXAMINE)"))
    }

    async fn expunge(&mut self, tag: &Tag<'static>, only: Option<SequenceSet>) -> Status<'static> {
        if let Some(no) = self.read_only(tag) {
            return no;
        }
        match self.expunge_deleted(only).await {
            Ok(()) => status(tag, Kind::Ok, None, "EXPUNGE completed"),
            Err(e) => self.store_error(tag, &e),
        }
    }

    /// Removes the \Deleted messages (of `only`, by UID, if given); the
    /// EXPUNGE responses follow from the refresh after the command.
    async fn expunge_deleted(&mut self, only: Option<SequenceSet>) -> Result<(), crate::store::StoreError> {
        let selected = self.selected.as_ref().expect("selected state");
        let chosen = only.map(|set| selected.resolve(&set, true));
        let uids: Vec<u32> = selected
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| m.flags.contains(Flags::DELETED) && chosen.as_ref().is_none_or(|c| c.contains(i)))
            .map(|(_, m)| m.uid)
            .collect();
        if uids.is_empty() {
            return Ok(());
        }
        let account = self.account.clone().expect("authenticated");
        let folder = selected.folder.clone();
        self.ctx.store.expunge(&account, &folder, uids).await
    }

    async fn search(
        &mut self,
        tag: &Tag<'static>,
        charset: Option<Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Status<'static> {
        if let Some(charset) = charset {
            let name = charset.as_ref().to_ascii_uppercase();
            if name != "UTF-8" && name != "US-ASCII" {
                return Status::no(
                    Some(tag.clone()),
                    Some(Code::badcharset(vec![
                        Charset::try_from("UTF-8").expect("valid"),
                        Charset::try_from("US-ASCII").expect("valid"),
                    ])),
                    "Unsupported charset",
                )
                .expect("valid");
            }
        }
        let account = self.account.clone().expect("authenticated");
        let selected = self.selected.as_ref().expect("selected state");
        let content = criteria.iter().any(needs_content);
        let bounds = Bounds { max_seq: selected.exists(), max_uid: selected.messages.last().map_or(0, |m| m.uid) };
        let mut found = Vec::new();
        for (index, known) in selected.messages.iter().enumerate() {
            let raw = if content {
                match self.ctx.store.read(&account, &selected.folder, known.uid).await {
                    Ok(raw) => Some(raw),
                    Err(_) => continue, // expunged meanwhile
                }
            } else {
                None
            };
            let candidate = Candidate {
                seq: index as u32 + 1,
                uid: known.uid,
                flags: known.flags,
                keywords: &[],
                recent: known.recent,
                internal_date: internal_date(known.internal_date),
                size: known.size.min(u32::MAX as u64) as u32,
                raw: raw.as_deref(),
            };
            if matches_all(criteria, &candidate, bounds) {
                found.push(NonZeroU32::new(if uid { known.uid } else { index as u32 + 1 }).expect("positive"));
            }
        }
        self.data(Data::Search(found));
        status(tag, Kind::Ok, None, "SEARCH completed")
    }

    async fn store_flags(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Flags,
        uid: bool,
    ) -> Status<'static> {
        if let Some(no) = self.read_only(tag) {
            return no;
        }
        let targets = match self.targets(tag, set, uid) {
            Ok(t) => t,
            Err(bad) => return bad,
        };
        let account = self.account.clone().expect("authenticated");
        let selected = self.selected.as_mut().expect("selected state");
        let changes: Vec<(u32, Flags)> = targets
            .iter()
            .map(|&i| {
                let old = selected.messages[i].flags;
                let new = match kind {
                    StoreType::Replace => flags,
                    StoreType::Add => old.union(flags),
                    StoreType::Remove => old.difference(flags),
                };
                (selected.messages[i].uid, new)
            })
            .collect();
        let folder = selected.folder.clone();
        if let Err(e) = self.ctx.store.set_flags(&account, &folder, changes.clone()).await {
            return self.store_error(tag, &e);
        }
        let selected = self.selected.as_mut().expect("selected state");
        let mut updates = Vec::new();
        for (&i, (_, new)) in targets.iter().zip(&changes) {
            selected.messages[i].flags = *new;
            if response == StoreResponse::Answer {
                updates.push(flags_fetch(i, &selected.messages[i], uid));
            }
        }
        for update in updates {
            self.data(update);
        }
        status(tag, Kind::Ok, None, "STORE completed")
    }

    async fn copy(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        to: &str,
        uid: bool,
        moving: bool,
    ) -> Status<'static> {
        if moving && let Some(no) = self.read_only(tag) {
            return no;
        }
        let targets = match self.targets(tag, set, uid) {
            Ok(t) => t,
            Err(bad) => return bad,
        };
        let account = self.account.clone().expect("authenticated");
        let selected = self.selected.as_ref().expect("selected state");
        let uids: Vec<u32> = targets.iter().map(|&i| selected.messages[i].uid).collect();
        let from = selected.folder.clone();
        if folder_missing(&self.ctx.store, &account, to).await {
            return status(tag, Kind::No, Some(Code::TryCreate), "No such folder");
        }
        // Both are all or nothing in the store: a NO leaves no copies.
        let result = if moving {
            self.ctx.store.move_messages(&account, &from, to, uids).await
        } else {
            self.ctx.store.copy(&account, &from, to, uids).await
        };
        let (validity, pairs) = match result {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, &e),
        };
        let code = copy_uid(validity, &pairs);
        if moving {
            // MOVE reports COPYUID untagged, before the EXPUNGEs (RFC 6851).
            if let Some(code) = code {
                self.enqueue_untagged_status(Status::ok(None, Some(code), "Moved").expect("valid"));
            }
            return status(tag, Kind::Ok, None, "MOVE completed");
        }
        status(tag, Kind::Ok, code, "COPY completed")
    }
}

async fn folder_missing(store: &crate::store::Store, account: &crate::store::AccountId, folder: &str) -> bool {
    matches!(store.view(account, folder).await, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// COPYUID for UIDPLUS, when anything was copied.
fn copy_uid(validity: u32, pairs: &[(u32, u32)]) -> Option<Code<'static>> {
    let set = |uids: Vec<UidElement>| Vec1::try_from(uids).ok().map(UidSet);
    let source = pairs.iter().filter_map(|(s, _)| NonZeroU32::new(*s).map(UidElement::Single)).collect();
    let destination = pairs.iter().filter_map(|(_, d)| NonZeroU32::new(*d).map(UidElement::Single)).collect();
    Some(Code::CopyUid {
        uid_validity: NonZeroU32::new(validity)?,
        source: set(source)?,
        destination: set(destination)?,
    })
}

/// A stored internal date as the date-time SEARCH compares.
pub fn internal_date(unix: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default().fixed_offset()
}
