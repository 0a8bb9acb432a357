//! Authenticated-state commands: folders (SELECT, EXAMINE, LIST, LSUB,
//! STATUS, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE), APPEND,
//! NAMESPACE and ENABLE; selected-state commands go on to `messages.rs`.

use std::io;
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{Atom, IString, QuotedChar, Tag};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::namespace::{Namespace, Namespaces};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Status};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use tracing::warn;

use super::flags::{all_flags, from_imap, permanent_flags};
use super::selected::Selected;
use super::session::{Kind, Session, code, status};
use crate::store::{StoreError, folder};

/// The folder name a client's mailbox argument stands for.
pub fn folder_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

/// The mailbox argument for a folder name in responses.
fn mailbox(name: &str) -> Mailbox<'static> {
    Mailbox::try_from(name.to_string()).unwrap_or(Mailbox::Inbox)
}

impl Session {
    pub(super) async fn authenticated(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Status<'static> {
        match body {
            CommandBody::Select { mailbox, .. } => self.select(tag, &folder_name(&mailbox), false).await,
            CommandBody::Examine { mailbox, .. } => self.select(tag, &folder_name(&mailbox), true).await,
            CommandBody::List { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, false).await
            }
            CommandBody::Lsub { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, true).await
            }
            CommandBody::Status { mailbox, item_names } => {
                self.status_command(tag, &folder_name(&mailbox), &item_names).await
            }
            CommandBody::Create { mailbox } => {
                let name = folder_name(&mailbox);
                let name = name.trim_end_matches(folder::DELIMITER);
                let account = self.account.clone().expect("authenticated");
                self.store_result(tag, self.ctx.store.create_folder(&account, name).await, "CREATE completed")
            }
            CommandBody::Delete { mailbox } => {
                let name = folder_name(&mailbox);
                if self.selected.as_ref().is_some_and(|s| s.folder == name) {
                    self.selected = None;
                }
                let account = self.account.clone().expect("authenticated");
                self.store_result(tag, self.ctx.store.delete_folder(&account, &name).await, "DELETE completed")
            }
            CommandBody::Rename { from, to } => {
                let account = self.account.clone().expect("authenticated");
                let result = self.ctx.store.rename_folder(&account, &folder_name(&from), &folder_name(&to)).await;
                self.store_result(tag, result, "RENAME completed")
            }
            CommandBody::Subscribe { mailbox } => {
                let account = self.account.clone().expect("authenticated");
                let result = self.ctx.store.set_subscribed(&account, &folder_name(&mailbox), true).await;
                self.store_result(tag, result, "SUBSCRIBE completed")
            }
            CommandBody::Unsubscribe { mailbox } => {
                let account = self.account.clone().expect("authenticated");
                let result = self.ctx.store.set_subscribed(&account, &folder_name(&mailbox), false).await;
                self.store_result(tag, result, "UNSUBSCRIBE completed")
            }
            CommandBody::Append { mailbox, flags, date, message } => {
                let data = match message {
                    LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
                    LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
                };
                let date = date.map(|d| d.as_ref().timestamp());
                self.append(tag, &folder_name(&mailbox), data, from_imap(&flags), date).await
            }
            CommandBody::Namespace => {
                let personal = Namespaces::from(vec![Namespace {
                    prefix: IString::try_from("").expect("valid"),
                    delimiter: Some(QuotedChar::try_from(folder::DELIMITER).expect("valid")),
                    extensions: vec![],
                }]);
                self.data(Data::Namespace { personal, other: Namespaces::default(), shared: Namespaces::default() });
                status(tag, Kind::Ok, None, "NAMESPACE completed")
            }
            CommandBody::Enable { .. } => {
                // Nothing this server offers needs enabling.
                self.data(Data::Enabled { capabilities: vec![] });
                status(tag, Kind::Ok, None, "ENABLE completed")
            }
            body if self.selected.is_some() => self.selected_command(tag, body).await,
            body => status(tag, Kind::Bad, None, &format!("{} needs a selected folder", body.name())),
        }
    }

    /// Maps a store result to OK or to the right NO.
    pub(super) fn store_result<T>(
        &mut self,
        tag: &Tag<'static>,
        result: Result<T, StoreError>,
        done: &str,
    ) -> Status<'static> {
        match result {
            Ok(_) => status(tag, Kind::Ok, None, done),
            Err(e) => self.store_error(tag, &e),
        }
    }

    pub(super) fn store_error(&mut self, tag: &Tag<'static>, e: &StoreError) -> Status<'static> {
        let text = e.source.to_string();
        match e.kind() {
            io::ErrorKind::NotFound => status(tag, Kind::No, Some(code("NONEXISTENT")), &text),
            io::ErrorKind::AlreadyExists => status(tag, Kind::No, Some(code("ALREADYEXISTS")), &text),
            io::ErrorKind::InvalidInput => status(tag, Kind::No, Some(code("CANNOT")), &text),
            _ => {
                warn!(error = %e, "store failure");
                status(tag, Kind::No, Some(code("UNAVAILABLE")), "Mail store unavailable; try again later")
            }
        }
    }

    async fn select(&mut self, tag: &Tag<'static>, name: &str, read_only: bool) -> Status<'static> {
        // A failed SELECT still closes the previous selection (RFC 3501 6.3.1).
        self.selected = None;
        let account = self.account.clone().expect("authenticated");
        let snapshot = match self.ctx.store.snapshot(&account, name).await {
            Ok(s) => s,
            Err(e) => return self.store_error(tag, &e),
        };
        let recent = if read_only {
            snapshot.messages.iter().filter(|m| m.recent).map(|m| m.uid).collect()
        } else {
            self.ctx.store.claim_recent(&account, name).await.unwrap_or_default()
        };
        let folder = folder::normalise(name).unwrap_or_else(|_| name.to_string());
        let changes = self.ctx.store.watch(&account, &folder);
        let selected = Selected::new(folder, read_only, snapshot, &recent, changes);
        self.data(Data::Flags(all_flags()));
        self.data(Data::Exists(selected.exists()));
        self.data(Data::Recent(selected.recent()));
        let unseen = selected.messages.iter().position(|m| !m.flags.contains(crate::store::Flags::SEEN));
        let mut codes = vec![Code::PermanentFlags(if read_only { vec![] } else { permanent_flags() })];
        if let Some(first) = unseen {
            codes.push(Code::Unseen(NonZeroU32::new(first as u32 + 1).expect("positive")));
        }
        codes.push(Code::UidValidity(NonZeroU32::new(selected.uid_validity).unwrap_or(NonZeroU32::MIN)));
        codes.push(Code::UidNext(NonZeroU32::new(selected.uid_next).unwrap_or(NonZeroU32::MIN)));
        for c in codes {
            self.server_ok_untagged(c);
        }
        self.selected = Some(selected);
        if read_only {
            status(tag, Kind::Ok, Some(Code::ReadOnly), "EXAMINE completed")
        } else {
            status(tag, Kind::Ok, Some(Code::ReadWrite), "SELECT completed")
        }
    }

    fn server_ok_untagged(&mut self, code: Code<'static>) {
        let status = Status::ok(None, Some(code), "Ok").expect("valid");
        self.enqueue_untagged_status(status);
    }

    async fn list(
        &mut self,
        tag: &Tag<'static>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        subscribed_only: bool,
    ) -> Status<'static> {
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let done = if subscribed_only { "LSUB completed" } else { "LIST completed" };
        let delimiter = Some(QuotedChar::try_from(folder::DELIMITER).expect("valid"));
        if pattern.is_empty() && !subscribed_only {
            // The hierarchy delimiter query (RFC 3501 6.3.8).
            self.data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter,
                mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
            });
            return status(tag, Kind::Ok, None, done);
        }
        let account = self.account.clone().expect("authenticated");
        let folders = match self.ctx.store.folders(&account).await {
            Ok(f) => f,
            Err(e) => return self.store_error(tag, &e),
        };
        let names = if subscribed_only {
            match self.ctx.store.subscriptions(&account).await {
                Ok(s) => s,
                Err(e) => return self.store_error(tag, &e),
            }
        } else {
            folders.clone()
        };
        let full_pattern = format!("{reference}{pattern}");
        for name in names.iter().filter(|n| wildcard_match(&full_pattern, n)) {
            let mut items = Vec::new();
            if !subscribed_only {
                let prefix = format!("{name}{}", folder::DELIMITER);
                let children = folders.iter().any(|f| f.starts_with(&prefix));
                items.push(attribute(if children { "HasChildren" } else { "HasNoChildren" }));
                if let Some((_, special)) = folder::SPECIAL_USE.iter().find(|(n, _)| n == name) {
                    items.push(attribute(special.trim_start_matches('\\')));
                }
            } else if !folders.contains(name) {
                items.push(FlagNameAttribute::Noselect);
            }
            let data = if subscribed_only {
                Data::Lsub { items, delimiter, mailbox: mailbox(name) }
            } else {
                Data::List { items, delimiter, mailbox: mailbox(name) }
            };
            self.data(data);
        }
        status(tag, Kind::Ok, None, done)
    }

    async fn status_command(
        &mut self,
        tag: &Tag<'static>,
        name: &str,
        items: &[StatusDataItemName],
    ) -> Status<'static> {
        let account = self.account.clone().expect("authenticated");
        let snapshot = match self.ctx.store.view(&account, name).await {
            Ok(s) => s,
            Err(e) => return self.store_error(tag, &e),
        };
        let count =
            |f: &dyn Fn(&crate::store::MessageEntry) -> bool| snapshot.messages.iter().filter(|m| f(m)).count() as u32;
        let mut out = Vec::new();
        for item in items.iter() {
            out.push(match item {
                StatusDataItemName::Messages => StatusDataItem::Messages(snapshot.messages.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(count(&|m| m.recent)),
                StatusDataItemName::UidNext => {
                    StatusDataItem::UidNext(NonZeroU32::new(snapshot.uid_next).unwrap_or(NonZeroU32::MIN))
                }
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(NonZeroU32::new(snapshot.uid_validity).unwrap_or(NonZeroU32::MIN))
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen(count(&|m| !m.flags.contains(crate::store::Flags::SEEN)))
                }
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|m| m.flags.contains(crate::store::Flags::DELETED)))
                }
                _ => return status(tag, Kind::Bad, None, "Unsupported STATUS item"),
            });
        }
        self.data(Data::Status { mailbox: mailbox(name), items: out.into() });
        status(tag, Kind::Ok, None, "STATUS completed")
    }

    async fn append(
        &mut self,
        tag: &Tag<'static>,
        name: &str,
        data: Vec<u8>,
        flags: crate::store::Flags,
        date: Option<i64>,
    ) -> Status<'static> {
        if data.len() as u64 > self.ctx.limits.max_message_size {
            return status(tag, Kind::No, Some(Code::TooBig), "Message too large");
        }
        let account = self.account.clone().expect("authenticated");
        match self.ctx.store.append(&account, name, Arc::new(data), flags, date).await {
            Ok((validity, uid)) => {
                let code = Code::AppendUid {
                    uid_validity: NonZeroU32::new(validity).unwrap_or(NonZeroU32::MIN),
                    uid: NonZeroU32::new(uid).expect("UIDs are positive"),
                };
                status(tag, Kind::Ok, Some(code), "APPEND completed")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                status(tag, Kind::No, Some(Code::TryCreate), "No such folder; create it first")
            }
            Err(e) => self.store_error(tag, &e),
        }
    }
}

fn attribute(name: &str) -> FlagNameAttribute<'static> {
    FlagNameAttribute::from(Atom::try_from(name.to_string()).expect("valid atom"))
}

/// LIST wildcards: `*` matches anything, `%` anything but the delimiter.
/// INBOX matches case-insensitively. One pass over the pattern, tracking
/// which prefixes of the name it can match: O(pattern × name), whatever
/// wildcards a client sends.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = if name == "INBOX" { pattern.to_ascii_uppercase() } else { pattern.to_string() };
    let name: Vec<char> = name.chars().collect();
    // matched[j]: the pattern read so far matches name[..j].
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for p in pattern.chars() {
        let mut next = vec![false; name.len() + 1];
        let mut open = false;
        for j in 0..=name.len() {
            next[j] = match p {
                '*' => {
                    open |= matched[j];
                    open
                }
                '%' => {
                    if j > 0 && name[j - 1] == folder::DELIMITER {
                        open = false;
                    }
                    open |= matched[j];
                    open
                }
                c => j > 0 && matched[j - 1] && name[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[name.len()]
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "Work.2024"));
        assert!(wildcard_match("%", "Work"));
        assert!(!wildcard_match("%", "Work.2024"));
        assert!(wildcard_match("Work.%", "Work.2024"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(!wildcard_match("Sent", "Sent.Old"));
        assert!(wildcard_match("*a*%b", "xaya.b"));
        assert!(!wildcard_match("%a%b", "xa.yb"));
        assert!(wildcard_match("W*k", "Work"));
    }

    /// A LIST pattern is client input: many wildcards against a long name
    /// must not take exponential time (the session, and in simulation the
    /// whole world, would stall).
    #[test]
    fn list_wildcards_do_not_backtrack_exponentially() {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pattern = format!("{}x", "*%".repeat(20));
            done.send(wildcard_match(&pattern, &"a.".repeat(30))).ok();
        });
        let matched = result.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(matched, Ok(false), "a 41-character pattern must be answered at once");
    }
}
