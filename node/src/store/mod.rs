//! The durable mail store: one Maildir per account under the node's data
//! directory (`<data_dir>/<domain>/<user>/`), all disk access through the
//! [`Disk`] seam. Every call that changes a mailbox returns only after the
//! change is on stable storage; that is what lets SMTP answer 250.

pub mod disk;
pub mod flags;
pub mod maildir;
pub mod uidlist;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
pub use disk::{Disk, RealDisk, SimDisk};
pub use flags::Flags;
use maildir::Maildir;
pub use maildir::MessageEntry;

/// Names one account's mailbox: `user@domain`, already validated by the
/// config (lower case, no path separators), so it maps safely to a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxId {
    pub user: String,
    pub domain: String,
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

/// A store operation that failed; always a temporary condition for clients
/// (SMTP 451, POP3 -ERR [SYS/TEMP]): the store never half-acknowledges.
#[derive(Debug, thiserror::Error)]
#[error("mailbox {mailbox}: {op}: {source}")]
pub struct StoreError {
    pub mailbox: MailboxId,
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

/// A point-in-time listing of a mailbox.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: Vec<MessageEntry>,
}

/// The node's mail store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    disk: Arc<dyn Disk>,
    root: PathBuf,
    /// Unique per node; part of every Maildir file name.
    host: String,
    clock: Clock,
    /// Loaded mailboxes. `None` = must be (re)loaded from disk, which is
    /// also the state after any failed operation, so a half-done change is
    /// never trusted from memory.
    mailboxes: Mutex<BTreeMap<MailboxId, Arc<Mutex<Option<Maildir>>>>>,
}

impl Store {
    pub fn new(disk: Arc<dyn Disk>, root: PathBuf, host: &str, clock: Clock) -> Self {
        let host = host.replace(['/', ':', ','], "_");
        Self { inner: Arc::new(Inner { disk, root, host, clock, mailboxes: Mutex::new(BTreeMap::new()) }) }
    }

    /// Delivers `data` to one mailbox; returns its UID once durable.
    pub async fn deliver(&self, mailbox: &MailboxId, data: Arc<Vec<u8>>) -> Result<u32, StoreError> {
        self.with_mailbox(mailbox, "deliver", move |inner, md| {
            md.deliver(&*inner.disk, &data, &inner.host, inner.clock.since_unix_epoch())
        })
        .await
    }

    /// Lists the mailbox as it is on disk now (rescanning for changes made
    /// by other programs).
    pub async fn snapshot(&self, mailbox: &MailboxId) -> Result<Snapshot, StoreError> {
        self.reload(mailbox);
        self.with_mailbox(mailbox, "list", |inner, md| {
            Ok(Snapshot {
                uid_validity: md.uid_validity(),
                uid_next: md.uid_next(),
                messages: md.entries(&*inner.disk)?,
            })
        })
        .await
    }

    /// Reads one message.
    pub async fn read(&self, mailbox: &MailboxId, uid: u32) -> Result<Vec<u8>, StoreError> {
        self.with_mailbox(mailbox, "read", move |inner, md| md.read(&*inner.disk, uid)).await
    }

    /// Replaces one message's flags, durably.
    pub async fn set_flags(&self, mailbox: &MailboxId, uid: u32, flags: Flags) -> Result<(), StoreError> {
        self.with_mailbox(mailbox, "set flags", move |inner, md| md.set_flags(&*inner.disk, uid, flags)).await
    }

    /// Removes messages, durably.
    pub async fn expunge(&self, mailbox: &MailboxId, uids: Vec<u32>) -> Result<(), StoreError> {
        self.with_mailbox(mailbox, "expunge", move |inner, md| md.expunge(&*inner.disk, &uids)).await
    }

    fn slot(&self, mailbox: &MailboxId) -> Arc<Mutex<Option<Maildir>>> {
        let mut map = self.inner.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(mailbox.clone()).or_default().clone()
    }

    /// Forgets the cached state so the next operation rescans the disk.
    fn reload(&self, mailbox: &MailboxId) {
        *self.slot(mailbox).lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs `op` on the loaded mailbox under its lock, off the async worker
    /// threads when the disk blocks. A failed op drops the cached state.
    async fn with_mailbox<T: Send + 'static>(
        &self,
        mailbox: &MailboxId,
        op: &'static str,
        f: impl FnOnce(&Inner, &mut Maildir) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = self.slot(mailbox);
        let inner = self.inner.clone();
        let id = mailbox.clone();
        let job = move || -> io::Result<T> {
            let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                let root = inner.root.join(&id.domain).join(&id.user);
                *guard = Some(Maildir::open(&*inner.disk, &root, inner.clock.since_unix_epoch())?);
            }
            let result = f(&inner, guard.as_mut().expect("loaded above"));
            if result.is_err() {
                *guard = None;
            }
            result
        };
        let result = if self.inner.disk.blocks() {
            tokio::task::spawn_blocking(job)
                .await
                .unwrap_or_else(|e| Err(io::Error::other(format!("store task failed: {e}"))))
        } else {
            job()
        };
        result.map_err(|source| StoreError { mailbox: mailbox.clone(), op, source })
    }
}
