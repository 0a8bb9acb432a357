//! The durable mail store: one Maildir++ tree per account under the node's
//! data directory (`<data_dir>/<domain>/<user>/`), all disk access through
//! the [`Disk`] seam. Every call that changes a folder returns only after
//! the change is on stable storage; that is what lets SMTP answer 250 and
//! IMAP answer OK. Every change also bumps the folder's change counter, so
//! other sessions (IMAP IDLE) learn about it at once.

pub mod disk;
pub mod flags;
pub mod folder;
pub mod maildir;
pub mod uidlist;
pub mod uidvalidity;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tracing::warn;

use crate::clock::Clock;
pub use disk::{Disk, RealDisk, SimDisk};
pub use flags::Flags;
pub use maildir::MessageEntry;
use maildir::{Maildir, NewMessage};

/// Names one account: `user@domain`, already validated by the config
/// (lower case, no path separators), so it maps safely to a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId {
    pub user: String,
    pub domain: String,
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

/// A store operation that failed. The store never half-acknowledges: a
/// failed change is undone by the store itself (see `maildir`), so it did
/// not happen and a retry does not duplicate.
#[derive(Debug, thiserror::Error)]
#[error("{account} {folder}: {op}: {source}")]
pub struct StoreError {
    pub account: AccountId,
    pub folder: String,
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

impl StoreError {
    /// `NotFound` (no such folder or message), `AlreadyExists`,
    /// `InvalidInput` (bad folder name) are the caller's doing; anything
    /// else is a temporary server-side failure.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// A point-in-time listing of a folder.
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

type FolderKey = (AccountId, String);

struct Inner {
    disk: Arc<dyn Disk>,
    root: PathBuf,
    /// Unique per node; part of every Maildir file name.
    host: String,
    clock: Clock,
    folders: Mutex<BTreeMap<FolderKey, Arc<Slot>>>,
    /// Serialises the accounts' UIDVALIDITY counters (rarely taken).
    validity: Mutex<()>,
}

impl Inner {
    /// The account's next UIDVALIDITY (see [`uidvalidity`]).
    fn next_validity(&self, account_root: &Path) -> io::Result<u32> {
        let _serial = self.validity.lock().unwrap_or_else(|e| e.into_inner());
        uidvalidity::next(&*self.disk, account_root, self.clock.since_unix_epoch())
    }

    /// Opens (creating if need be) the Maildir of `folder`.
    fn open(&self, account_root: &Path, folder: &str) -> io::Result<Maildir> {
        let new_validity = || self.next_validity(account_root);
        let dir = folder::dir(account_root, folder);
        Maildir::open(&*self.disk, &dir, &self.host, self.clock.since_unix_epoch(), &new_validity)
    }
}

/// One folder's in-memory state.
struct Slot {
    /// `None` = must be (re)loaded from disk, which is also the state after
    /// any failed operation, so a half-done change is never trusted.
    maildir: Mutex<Option<Maildir>>,
    /// Bumped after every change that other sessions should see.
    changes: watch::Sender<u64>,
}

impl Store {
    pub fn new(disk: Arc<dyn Disk>, root: PathBuf, host: &str, clock: Clock) -> Self {
        let host = host.replace(['/', ':', ',', '.'], "_");
        let folders = Mutex::new(BTreeMap::new());
        Self { inner: Arc::new(Inner { disk, root, host, clock, folders, validity: Mutex::new(()) }) }
    }

    /// Delivers `data` to an account's INBOX; returns its UID once durable.
    pub async fn deliver(&self, account: &AccountId, data: Arc<Vec<u8>>) -> Result<u32, StoreError> {
        self.append(account, "INBOX", data, Flags::default(), None).await.map(|(_, uid)| uid)
    }

    /// Adds a message to a folder with flags and an optional internal date;
    /// returns (UIDVALIDITY, UID) once durable.
    pub async fn append(
        &self,
        account: &AccountId,
        folder: &str,
        data: Arc<Vec<u8>>,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        self.change(account, folder, "append", move |inner, md| {
            let uid =
                md.append(&*inner.disk, &data, flags, internal_date, &inner.host, inner.clock.since_unix_epoch())?;
            Ok((md.uid_validity(), uid))
        })
        .await
    }

    /// Lists the folder as it is on disk now, picking up changes made by
    /// other programs (Dovecot, mutt).
    pub async fn snapshot(&self, account: &AccountId, folder: &str) -> Result<Snapshot, StoreError> {
        if let Ok(name) = folder::normalise(folder) {
            *self.slot(account, &name).maildir.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.view(account, folder).await
    }

    /// Lists the folder from memory (loading it if needed): cheap enough
    /// for every IMAP NOOP.
    pub async fn view(&self, account: &AccountId, folder: &str) -> Result<Snapshot, StoreError> {
        self.with_folder(account, folder, "list", |inner, md| {
            Ok(Snapshot {
                uid_validity: md.uid_validity(),
                uid_next: md.uid_next(),
                messages: md.entries(&*inner.disk)?,
            })
        })
        .await
    }

    /// Reads one message.
    pub async fn read(&self, account: &AccountId, folder: &str, uid: u32) -> Result<Vec<u8>, StoreError> {
        self.with_folder(account, folder, "read", move |inner, md| md.read(&*inner.disk, uid)).await
    }

    /// Replaces the flags of several messages, durably.
    pub async fn set_flags(
        &self,
        account: &AccountId,
        folder: &str,
        changes: Vec<(u32, Flags)>,
    ) -> Result<(), StoreError> {
        self.change(account, folder, "set flags", move |inner, md| {
            changes.iter().try_for_each(|(uid, flags)| md.set_flags(&*inner.disk, *uid, *flags))
        })
        .await
    }

    /// Removes messages, durably; their UIDs are never handed out again.
    pub async fn expunge(&self, account: &AccountId, folder: &str, uids: Vec<u32>) -> Result<(), StoreError> {
        self.change(account, folder, "expunge", move |inner, md| md.expunge(&*inner.disk, &uids)).await
    }

    /// Marks every \Recent message as seen by a session; returns their UIDs.
    pub async fn claim_recent(&self, account: &AccountId, folder: &str) -> Result<Vec<u32>, StoreError> {
        self.with_folder(account, folder, "claim recent", |inner, md| md.claim_recent(&*inner.disk)).await
    }

    /// Copies messages (bytes, flags, internal date) to another folder, all
    /// or none (RFC 3501 6.4.7); returns the destination's UIDVALIDITY and
    /// (source UID, new UID) pairs. The messages are read into memory
    /// first, so the target is committed in one step without holding the
    /// source's lock (two crossing COPYs cannot deadlock).
    pub async fn copy(
        &self,
        account: &AccountId,
        from: &str,
        to: &str,
        uids: Vec<u32>,
    ) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let source = self.view(account, from).await?;
        let mut originals = Vec::new();
        for entry in source.messages.iter().filter(|m| uids.contains(&m.uid)) {
            let data = self.read(account, from, entry.uid).await?;
            originals.push((entry.uid, data, entry.flags, entry.internal_date));
        }
        self.change(account, to, "copy", move |inner, md| {
            let messages: Vec<NewMessage<'_>> = originals
                .iter()
                .map(|(_, data, flags, date)| NewMessage { data, flags: *flags, internal_date: Some(*date) })
                .collect();
            let new = if messages.is_empty() {
                Vec::new()
            } else {
                md.append_all(&*inner.disk, &messages, &inner.host, inner.clock.since_unix_epoch())?
            };
            Ok((md.uid_validity(), originals.iter().map(|(uid, ..)| *uid).zip(new).collect()))
        })
        .await
    }

    /// Moves messages to another folder (RFC 6851), all or none: a copy,
    /// then an expunge from the source; if that fails (and has put the
    /// source back), the copies of what is still in the source are
    /// removed. Returns what [`Self::copy`] returns.
    pub async fn move_messages(
        &self,
        account: &AccountId,
        from: &str,
        to: &str,
        uids: Vec<u32>,
    ) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let (validity, pairs) = self.copy(account, from, to, uids).await?;
        let moved: Vec<u32> = pairs.iter().map(|(source, _)| *source).collect();
        if moved.is_empty() {
            return Ok((validity, pairs));
        }
        let Err(e) = self.expunge(account, from, moved).await else { return Ok((validity, pairs)) };
        // Unless the source can be read back, keep the copies: a duplicate
        // is better than a lost message.
        if let Ok(source) = self.snapshot(account, from).await {
            let copies: Vec<u32> = pairs
                .iter()
                .filter(|(s, _)| source.messages.iter().any(|m| m.uid == *s))
                .map(|(_, copy)| *copy)
                .collect();
            if let Err(undo) = self.expunge(account, to, copies).await {
                warn!(error = %undo, "cannot remove the copies of a failed MOVE");
            }
        }
        Err(e)
    }

    /// Subscribes to a folder's change counter.
    pub fn watch(&self, account: &AccountId, folder: &str) -> watch::Receiver<u64> {
        let name = folder::normalise(folder).unwrap_or_else(|_| folder.to_string());
        self.slot(account, &name).changes.subscribe()
    }

    /// Every folder of an account, INBOX first, then by name.
    pub async fn folders(&self, account: &AccountId) -> Result<Vec<String>, StoreError> {
        self.account_op(account, "INBOX", "list folders", |inner, root| {
            let mut names: Vec<String> =
                inner.disk.list_dirs(root)?.iter().filter_map(|d| folder::from_dir_name(d)).collect();
            names.insert(0, "INBOX".into());
            Ok(names)
        })
        .await
    }

    /// Creates a folder (and, Maildir++ style, nothing for its parents:
    /// hierarchy is in the name).
    pub async fn create_folder(&self, account: &AccountId, name: &str) -> Result<(), StoreError> {
        let name = self.checked(account, name, "create")?;
        self.account_op(account, &name.clone(), "create", move |inner, root| {
            let dir = folder::dir(root, &name);
            if name == "INBOX" || inner.disk.exists(&dir.join("cur")) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "folder already exists"));
            }
            create_maildir(inner, root, &name)
        })
        .await
    }

    /// Deletes a folder and its messages (not INBOX).
    pub async fn delete_folder(&self, account: &AccountId, name: &str) -> Result<(), StoreError> {
        let name = self.checked(account, name, "delete")?;
        let result = self
            .account_op(account, &name.clone(), "delete", move |inner, root| {
                if name == "INBOX" {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "INBOX cannot be deleted"));
                }
                let dir = folder::dir(root, &name);
                if !inner.disk.exists(&dir.join("cur")) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
                }
                remove_maildir(&*inner.disk, &dir)?;
                inner.disk.sync_dir(root)
            })
            .await;
        self.forget(account);
        result
    }

    /// Renames a folder and the folders below it. The new names stand for
    /// other messages than before, so each renamed folder first gets a new
    /// UIDVALIDITY (under its lock; a crash before the rename leaves only a
    /// harmless change of UIDVALIDITY).
    pub async fn rename_folder(&self, account: &AccountId, from: &str, to: &str) -> Result<(), StoreError> {
        let (from, to) = (self.checked(account, from, "rename")?, self.checked(account, to, "rename")?);
        let source = from.clone();
        let renames = self
            .account_op(account, &source, "rename", move |inner, root| {
                if from == "INBOX" || to == "INBOX" {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "renaming INBOX is not supported"));
                }
                if !inner.disk.exists(&folder::dir(root, &from).join("cur")) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
                }
                if inner.disk.exists(&folder::dir(root, &to).join("cur")) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "target folder exists"));
                }
                let prefix = format!("{from}{}", folder::DELIMITER);
                let mut renames = Vec::new();
                for dir_name in inner.disk.list_dirs(root)? {
                    let Some(name) = folder::from_dir_name(&dir_name) else { continue };
                    if name == from {
                        renames.push((name, to.clone()));
                    } else if let Some(rest) = name.strip_prefix(&prefix) {
                        let renamed = format!("{to}{}{rest}", folder::DELIMITER);
                        renames.push((name, renamed));
                    }
                }
                Ok(renames)
            })
            .await?;
        let root = self.account_root(account);
        for (name, _) in &renames {
            let root = root.clone();
            self.change(account, name, "rename", move |inner, md| {
                md.renew_uid_validity(&*inner.disk, inner.next_validity(&root)?)
            })
            .await?;
        }
        let result = self
            .account_op(account, &source, "rename", move |inner, root| {
                for (name, renamed) in renames {
                    inner.disk.rename(&folder::dir(root, &name), &folder::dir(root, &renamed))?;
                }
                inner.disk.sync_dir(root)
            })
            .await;
        self.forget(account);
        result
    }

    /// The account's subscribed folder names.
    pub async fn subscriptions(&self, account: &AccountId) -> Result<Vec<String>, StoreError> {
        self.account_op(account, "INBOX", "read subscriptions", |inner, root| read_subscriptions(&*inner.disk, root))
            .await
    }

    /// Subscribes to or unsubscribes from a folder name (which need not exist).
    pub async fn set_subscribed(&self, account: &AccountId, name: &str, subscribed: bool) -> Result<(), StoreError> {
        let name = self.checked(account, name, "subscribe")?;
        self.account_op(account, "INBOX", "write subscriptions", move |inner, root| {
            let mut names = read_subscriptions(&*inner.disk, root)?;
            names.retain(|n| *n != name);
            if subscribed {
                names.push(name.clone());
                names.sort();
            }
            let text: String = names.iter().map(|n| format!("{n}\n")).collect();
            let tmp = root.join("tmp").join(SUBSCRIPTIONS);
            inner.disk.write_synced(&tmp, text.as_bytes())?;
            inner.disk.rename(&tmp, &root.join(SUBSCRIPTIONS))?;
            inner.disk.sync_dir(root)
        })
        .await
    }

    fn checked(&self, account: &AccountId, name: &str, op: &'static str) -> Result<String, StoreError> {
        folder::normalise(name).map_err(|source| self.error(account, name, op, source))
    }

    fn error(&self, account: &AccountId, folder: &str, op: &'static str, source: io::Error) -> StoreError {
        StoreError { account: account.clone(), folder: folder.to_string(), op, source }
    }

    fn account_root(&self, account: &AccountId) -> PathBuf {
        self.inner.root.join(&account.domain).join(&account.user)
    }

    fn slot(&self, account: &AccountId, folder: &str) -> Arc<Slot> {
        let mut map = self.inner.folders.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((account.clone(), folder.to_string()))
            .or_insert_with(|| Arc::new(Slot { maildir: Mutex::new(None), changes: watch::Sender::new(0) }))
            .clone()
    }

    /// Drops the cached state of an account's folders (after renames and
    /// deletes), waking their watchers so sessions notice.
    fn forget(&self, account: &AccountId) {
        let map = self.inner.folders.lock().unwrap_or_else(|e| e.into_inner());
        for ((a, _), slot) in map.iter() {
            if a == account {
                *slot.maildir.lock().unwrap_or_else(|e| e.into_inner()) = None;
                slot.changes.send_modify(|n| *n += 1);
            }
        }
    }

    /// Like [`Self::with_folder`], then tells watchers the folder changed.
    async fn change<T: Send + 'static>(
        &self,
        account: &AccountId,
        folder: &str,
        op: &'static str,
        f: impl FnOnce(&Inner, &mut Maildir) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let result = self.with_folder(account, folder, op, f).await;
        if let Ok(name) = folder::normalise(folder) {
            self.slot(account, &name).changes.send_modify(|n| *n += 1);
        }
        result
    }

    /// Runs `f` on the loaded folder under its lock, off the async worker
    /// threads when the disk blocks. A failed op drops the cached state.
    /// A new account (no INBOX yet) is created on first use, with its
    /// special-use folders; other folders must exist.
    async fn with_folder<T: Send + 'static>(
        &self,
        account: &AccountId,
        folder: &str,
        op: &'static str,
        f: impl FnOnce(&Inner, &mut Maildir) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let name = self.checked(account, folder, op)?;
        let slot = self.slot(account, &name);
        let root = self.account_root(account);
        let job = move |inner: &Inner| -> io::Result<T> {
            let mut guard = slot.maildir.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                let dir = folder::dir(&root, &name);
                if !inner.disk.exists(&root.join(uidlist::FILE_NAME)) {
                    create_account(inner, &root)?;
                }
                if name != "INBOX" && !inner.disk.exists(&dir.join("cur")) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
                }
                *guard = Some(inner.open(&root, &name)?);
            }
            let result = f(inner, guard.as_mut().expect("loaded above"));
            if result.is_err() {
                *guard = None;
            }
            result
        };
        self.run(job).await.map_err(|source| self.error(account, folder, op, source))
    }

    /// Runs an account-level operation (folder list, create, delete).
    async fn account_op<T: Send + 'static>(
        &self,
        account: &AccountId,
        folder: &str,
        op: &'static str,
        f: impl FnOnce(&Inner, &Path) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let root = self.account_root(account);
        let job = move |inner: &Inner| -> io::Result<T> {
            if !inner.disk.exists(&root.join(uidlist::FILE_NAME)) {
                create_account(inner, &root)?;
            }
            f(inner, &root)
        };
        self.run(job).await.map_err(|source| self.error(account, folder, op, source))
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        if self.inner.disk.blocks() {
            tokio::task::spawn_blocking(move || job(&inner))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(format!("store task failed: {e}"))))
        } else {
            job(&inner)
        }
    }
}

/// The subscriptions file in the account root, one folder per line.
const SUBSCRIPTIONS: &str = "subscriptions";

fn read_subscriptions(disk: &dyn Disk, root: &Path) -> io::Result<Vec<String>> {
    match disk.read(&root.join(SUBSCRIPTIONS)) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()).map(String::from).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A new account: INBOX plus the special-use folders, all subscribed.
fn create_account(inner: &Inner, root: &Path) -> io::Result<()> {
    let disk = &*inner.disk;
    inner.open(root, "INBOX")?;
    let mut subscribed = String::from("INBOX\n");
    for (name, _) in folder::SPECIAL_USE {
        if !disk.exists(&folder::dir(root, name).join("cur")) {
            create_maildir(inner, root, name)?;
        }
        subscribed.push_str(&format!("{name}\n"));
    }
    if !disk.exists(&root.join(SUBSCRIPTIONS)) {
        disk.write_synced(&root.join(SUBSCRIPTIONS), subscribed.as_bytes())?;
        disk.sync_dir(root)?;
    }
    Ok(())
}

/// Creates a Maildir++ subfolder durably.
fn create_maildir(inner: &Inner, root: &Path, name: &str) -> io::Result<()> {
    let dir = folder::dir(root, name);
    inner.open(root, name)?;
    inner.disk.write_synced(&dir.join(folder::MARKER_FILE), b"")?;
    inner.disk.sync_dir(&dir)
}

/// Removes a Maildir++ subfolder and everything in it.
fn remove_maildir(disk: &dyn Disk, dir: &Path) -> io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        let path = dir.join(sub);
        if disk.exists(&path) {
            for file in disk.list_files(&path)? {
                disk.remove_file(&path.join(file))?;
            }
            disk.remove_dir(&path)?;
        }
    }
    for file in disk.list_files(dir)? {
        disk.remove_file(&dir.join(file))?;
    }
    disk.remove_dir(dir)
}

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod faulty_disk;
#[cfg(test)]
mod tests;
