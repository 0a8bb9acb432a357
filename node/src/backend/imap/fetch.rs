//! FETCH (RFC 3501 6.4.5): builds each message's data items from the store
//! entry and, when an item needs it, the parsed message. Reading a body
//! section without PEEK sets \Seen, and the new FLAGS go out in the same
//! FETCH response.

use std::num::NonZeroU32;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName};
use imap_codec::imap_types::response::{Data, Status};
use imap_codec::imap_types::sequence::SequenceSet;
use tracing::warn;

use super::flags::fetch_flags;
use super::message::{Message, nstring, partial};
use super::messages::internal_date;
use super::session::{Kind, Session, status};
use crate::store::Flags;

impl Session {
    pub(super) async fn fetch(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        uid: bool,
    ) -> Status<'static> {
        let mut names = match names {
            MacroOrMessageDataItemNames::Macro(m) => m.expand().into_iter().map(IntoStatic::into_static).collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        };
        if names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }))
        {
            return status(tag, Kind::Bad, None, "BINARY is not supported");
        }
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        let targets = match self.targets(tag, set, uid) {
            Ok(t) => t,
            Err(bad) => return bad,
        };
        let needs_message = names.iter().any(|n| {
            !matches!(
                n,
                MessageDataItemName::Uid
                    | MessageDataItemName::Flags
                    | MessageDataItemName::InternalDate
                    | MessageDataItemName::Rfc822Size
            )
        });
        let sets_seen = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let account = self.account.clone().expect("authenticated");
        for index in targets {
            let selected = self.selected.as_ref().expect("selected state");
            let known = selected.messages[index].clone();
            let folder = selected.folder.clone();
            let raw = if needs_message {
                match self.ctx.store.read(&account, &folder, known.uid).await {
                    Ok(raw) => Some(raw),
                    Err(e) => {
                        // Expunged by another session; it is reported later.
                        warn!(error = %e, uid = known.uid, "cannot read message for FETCH");
                        continue;
                    }
                }
            } else {
                None
            };
            let mut flags = known.flags;
            let mut flags_changed = false;
            if sets_seen && !selected.read_only && !flags.contains(Flags::SEEN) {
                flags = flags.union(Flags::SEEN);
                if self.ctx.store.set_flags(&account, &folder, vec![(known.uid, flags)]).await.is_ok() {
                    self.selected.as_mut().expect("selected state").messages[index].flags = flags;
                    flags_changed = true;
                }
            }
            let message = raw.as_deref().map(Message::parse);
            let mut items = Vec::with_capacity(names.len() + 1);
            for name in &names {
                items.push(match name {
                    MessageDataItemName::Uid => MessageDataItem::Uid(NonZeroU32::new(known.uid).expect("positive")),
                    MessageDataItemName::Flags => MessageDataItem::Flags(fetch_flags(flags, known.recent)),
                    MessageDataItemName::InternalDate => {
                        MessageDataItem::InternalDate(DateTime::unvalidated(internal_date(known.internal_date)))
                    }
                    MessageDataItemName::Rfc822Size => {
                        MessageDataItem::Rfc822Size(known.size.min(u32::MAX as u64) as u32)
                    }
                    _ => {
                        let Some(message) = message.as_ref() else { continue };
                        content_item(message, name)
                    }
                });
            }
            if flags_changed && !names.contains(&MessageDataItemName::Flags) {
                items.push(MessageDataItem::Flags(fetch_flags(flags, known.recent)));
            }
            if let Ok(items) = Vec1::try_from(items) {
                self.data(Data::Fetch { seq: NonZeroU32::new(index as u32 + 1).expect("positive"), items });
            }
        }
        status(tag, Kind::Ok, None, "FETCH completed")
    }
}

/// An item that needs the message itself.
fn content_item(message: &Message<'_>, name: &MessageDataItemName<'static>) -> MessageDataItem<'static> {
    match name {
        MessageDataItemName::Envelope => MessageDataItem::Envelope(message.envelope()),
        MessageDataItemName::Body => MessageDataItem::Body(message.body_structure(false)),
        MessageDataItemName::BodyStructure => MessageDataItem::BodyStructure(message.body_structure(true)),
        MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(nstring(Some(message.section(None).as_slice()))),
        MessageDataItemName::Rfc822Header => MessageDataItem::Rfc822Header(nstring(Some(message.header_bytes()))),
        MessageDataItemName::Rfc822Text => MessageDataItem::Rfc822Text(nstring(Some(message.text_bytes()))),
        MessageDataItemName::BodyExt { section, partial: range, .. } => {
            let bytes = message.section(section.as_ref());
            let (origin, data) = match range {
                Some((start, length)) => (Some(*start), partial(&bytes, *start, *length).to_vec()),
                None => (None, bytes),
            };
            MessageDataItem::BodyExt { section: section.clone(), origin, data: nstring(Some(&data)) }
        }
        // Handled by the caller; never reaches here.
        _ => MessageDataItem::Rfc822Size(message.rfc822_size()),
    }
}
