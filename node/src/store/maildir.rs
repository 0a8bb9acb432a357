//! One Maildir (`tmp/`, `new/`, `cur/` plus the UID list), read and written
//! through the [`Disk`] seam. Synchronous: the async [`super::Store`] runs
//! these calls on a blocking thread for the real disk, inline in simulation.
//!
//! Delivery follows the Maildir protocol so Dovecot and mutt read our
//! mailboxes as their own: write `tmp/<name>` and fsync it, rename it into
//! `new/`, fsync `new/`, append the UID line and fsync it; only then is the
//! message acknowledged. Flags live in the file name (`cur/<name>:2,FS`).
//!
//! The UID list is the commit point. A message is in the folder once its
//! line is in the list: one appended line for one message, an atomic
//! rewrite of the list for several (COPY), so a crash commits all or none.
//! Every failure before the commit is undone (files placed in `new/` or
//! `cur/` removed, `tmp/` files deleted), so the client's retry does not
//! duplicate. What an undo cannot remove, or a crash leaves behind, is
//! recognised on the next open: a file named by this node (`U<uid>.<host>,`)
//! whose UID is at or past the list's UIDNEXT was never committed, and it
//! is deleted rather than adopted as a foreign delivery. Our `tmp/` files
//! carry a `tiermail.` prefix and are swept on open (the folder is locked,
//! so none is in flight); other programs' `tmp/` files after 36 hours, the
//! Maildir rule. What is accepted when the disk also refuses the undo: if
//! the commit's fsync fails after its line was written and the file cannot
//! be removed, the message stays (a retry may add a second copy), because
//! dropping a line that may already be durable could lose a message; an
//! uncommitted file that cannot be removed stays invisible until a later
//! message commits its UID, and is then adopted. Either way a duplicate,
//! never a loss.
//!
//! Expunge is undoable too: files are first renamed into `tmp/`, the list
//! is rewritten without them (the commit), and only then deleted, so a
//! failed MOVE can put the source back as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::disk::Disk;
use super::flags::Flags;
use super::uidlist::{self, UidList};

/// Where one message's file currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    /// Base name, as recorded in the UID list.
    base: String,
    /// `None`: in `new/`; `Some(flags)`: in `cur/` with those flags.
    cur: Option<Flags>,
}

impl Location {
    /// `new` or `cur`.
    fn dir(&self) -> &'static str {
        if self.cur.is_some() { "cur" } else { "new" }
    }

    fn relative_path(&self) -> String {
        match self.cur {
            None => format!("new/{}", self.base),
            Some(flags) => format!("cur/{}:2,{}", self.base, flags.to_maildir_info()),
        }
    }
}

/// A message as listed in a mailbox snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    pub uid: u32,
    pub size: u64,
    pub flags: Flags,
    /// Still in `new/`: no IMAP session has seen it yet (IMAP \Recent).
    pub recent: bool,
    /// IMAP INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// Path relative to the Maildir, valid until the next flag change.
    pub path: String,
}

/// A message to add: its bytes, flags (`Some` flags put it straight into
/// `cur/`, as IMAP APPEND does) and an internal date other than now.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub data: &'a [u8],
    pub flags: Flags,
    pub internal_date: Option<i64>,
}

/// The prefix of this store's own files in `tmp/`, swept on open.
const TMP_PREFIX: &str = "tiermail.";
/// Other programs' `tmp/` files older than this are abandoned (Maildir).
const STALE_TMP: Duration = Duration::from_secs(36 * 3600);

/// The loaded state of one Maildir.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    list: UidList,
    files: BTreeMap<u32, Location>,
}

impl Maildir {
    /// Opens the Maildir at `root`, creating it (durably) if missing, and
    /// reconciles the UID list with the files actually present: files that
    /// vanished are dropped, files delivered by others get new UIDs.
    /// `host` names this node's own files (see the module doc);
    /// `new_validity` gives the UIDVALIDITY for a new UID list.
    pub fn open(
        disk: &dyn Disk,
        root: &Path,
        host: &str,
        now: Duration,
        new_validity: &dyn Fn() -> io::Result<u32>,
    ) -> io::Result<Self> {
        ensure_dirs(disk, root)?;
        sweep_tmp(disk, &root.join("tmp"), now)?;
        let list_path = root.join(uidlist::FILE_NAME);
        let listed = disk.exists(&list_path);
        let mut list = if listed {
            UidList::parse(&disk.read(&list_path)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", list_path.display())))?
        } else {
            UidList::new(new_validity()?)
        };
        let mut on_disk: BTreeMap<String, Option<Flags>> = BTreeMap::new();
        for name in disk.list_files(&root.join("new"))? {
            on_disk.insert(name, None);
        }
        for name in disk.list_files(&root.join("cur"))? {
            let (base, flags) = Flags::split_maildir_name(&name);
            on_disk.insert(base.to_string(), Some(flags));
        }
        let mut files = BTreeMap::new();
        let before = list.entries.len();
        list.entries.retain(|uid, base| match on_disk.remove(base.as_str()) {
            Some(cur) => {
                files.insert(*uid, Location { base: base.clone(), cur });
                true
            }
            None => false,
        });
        list.needs_rewrite |= list.entries.len() != before;
        // Our own files past UIDNEXT were never committed: delete them
        // (should that fail, they stay invisible and are retried next time).
        let uid_next = list.uid_next;
        let (uncommitted, newcomers): (Vec<_>, Vec<_>) =
            on_disk.into_iter().partition(|(base, _)| listed && own_uid(base, host).is_some_and(|uid| uid >= uid_next));
        let mut touched = BTreeSet::new();
        for (base, cur) in uncommitted {
            let location = Location { base, cur };
            if disk.remove_file(&root.join(location.relative_path())).is_ok() {
                touched.insert(location.dir());
            }
        }
        for dir in touched {
            disk.sync_dir(&root.join(dir))?;
        }
        // Files nobody listed yet (delivered by another program) get UIDs in
        // name order, which is delivery order for Maildir names.
        let mut maildir = Self { root: root.to_path_buf(), list, files };
        if maildir.list.needs_rewrite {
            for (base, cur) in newcomers {
                maildir.assign_uid(base, cur);
            }
            maildir.rewrite_list(disk)?;
        } else {
            for (base, cur) in newcomers {
                let uid = maildir.assign_uid(base.clone(), cur);
                disk.append_synced(&list_path, uidlist::entry_line(uid, &base, None).as_bytes())?;
            }
        }
        Ok(maildir)
    }

    fn assign_uid(&mut self, base: String, cur: Option<Flags>) -> u32 {
        let uid = self.list.uid_next;
        self.list.uid_next += 1;
        self.list.entries.insert(uid, base.clone());
        self.files.insert(uid, Location { base, cur });
        uid
    }

    pub fn uid_validity(&self) -> u32 {
        self.list.uid_validity
    }

    pub fn uid_next(&self) -> u32 {
        self.list.uid_next
    }

    /// Delivers one message durably and returns its UID. `host` and `now`
    /// make the Maildir name unique (with the UID, which is never reused).
    pub fn deliver(&mut self, disk: &dyn Disk, data: &[u8], host: &str, now: Duration) -> io::Result<u32> {
        self.append(disk, data, Flags::default(), None, host, now)
    }

    /// Adds one message durably, with flags and an internal date.
    pub fn append(
        &mut self,
        disk: &dyn Disk,
        data: &[u8],
        flags: Flags,
        internal_date: Option<i64>,
        host: &str,
        now: Duration,
    ) -> io::Result<u32> {
        let uids = self.append_all(disk, &[NewMessage { data, flags, internal_date }], host, now)?;
        Ok(uids[0])
    }

    /// Adds messages durably, all or none (see the module doc), and returns
    /// their UIDs in order.
    pub fn append_all(
        &mut self,
        disk: &dyn Disk,
        messages: &[NewMessage<'_>],
        host: &str,
        now: Duration,
    ) -> io::Result<Vec<u32>> {
        let first = self.list.uid_next;
        let planned: Vec<(u32, Location)> = (first..)
            .zip(messages)
            .map(|(uid, m)| {
                let base = format!("{}.M{}U{uid}.{host},S={}", now.as_secs(), now.subsec_micros(), m.data.len());
                (uid, Location { base, cur: (m.flags != Flags::default()).then_some(m.flags) })
            })
            .collect();
        let mut list = self.list.clone();
        for ((uid, location), m) in planned.iter().zip(messages) {
            list.uid_next = uid + 1;
            list.entries.insert(*uid, location.base.clone());
            if let Some(date) = m.internal_date {
                list.dates.insert(*uid, date);
            }
        }
        let mut undo = Undo::default();
        if let Err(e) = self.place_and_commit(disk, messages, &planned, &list, &mut undo) {
            undo.roll_back(disk, &self.root);
            return Err(e);
        }
        self.list = list;
        let uids = planned.iter().map(|(uid, _)| *uid).collect();
        self.files.extend(planned);
        Ok(uids)
    }

    /// The steps of [`Self::append_all`], noting in `undo` what to take back.
    fn place_and_commit(
        &self,
        disk: &dyn Disk,
        messages: &[NewMessage<'_>],
        planned: &[(u32, Location)],
        list: &UidList,
        undo: &mut Undo,
    ) -> io::Result<()> {
        for ((_, location), m) in planned.iter().zip(messages) {
            let tmp = self.root.join("tmp").join(format!("{TMP_PREFIX}{}", location.base));
            undo.tmp.push(tmp.clone());
            disk.write_synced(&tmp, m.data)?;
        }
        let mut dirs = BTreeSet::new();
        for (tmp, (_, location)) in undo.tmp.clone().iter().zip(planned) {
            let target = self.root.join(location.relative_path());
            disk.rename(tmp, &target)?;
            undo.placed.push(target);
            dirs.insert(location.dir());
        }
        for dir in dirs {
            disk.sync_dir(&self.root.join(dir))?;
        }
        match planned {
            [(uid, location)] => {
                let line = uidlist::entry_line(*uid, &location.base, list.dates.get(uid).copied());
                disk.append_synced(&self.root.join(uidlist::FILE_NAME), line.as_bytes())
            }
            _ => write_list(disk, &self.root, list),
        }
    }

    /// Moves every message still in `new/` to `cur/` (a session saw them;
    /// they stop being \Recent) and returns their UIDs.
    pub fn claim_recent(&mut self, disk: &dyn Disk) -> io::Result<Vec<u32>> {
        let recent: Vec<u32> = self.files.iter().filter(|(_, l)| l.cur.is_none()).map(|(uid, _)| *uid).collect();
        for uid in &recent {
            self.set_flags(disk, *uid, Flags::default())?;
        }
        Ok(recent)
    }

    /// The internal date of a message: the appended date if one was given,
    /// else the delivery time at the front of the Maildir name.
    fn internal_date(&self, uid: u32, base: &str) -> i64 {
        self.list.dates.get(&uid).copied().or_else(|| base.split('.').next()?.parse().ok()).unwrap_or(0)
    }

    /// Every message, in UID order, with its size read from the disk.
    pub fn entries(&self, disk: &dyn Disk) -> io::Result<Vec<MessageEntry>> {
        let mut out = Vec::with_capacity(self.files.len());
        for (uid, location) in &self.files {
            let path = location.relative_path();
            let size = match size_from_name(&location.base) {
                Some(size) => size,
                None => disk.len(&self.root.join(&path))?,
            };
            out.push(MessageEntry {
                uid: *uid,
                size,
                flags: location.cur.unwrap_or_default(),
                recent: location.cur.is_none(),
                internal_date: self.internal_date(*uid, &location.base),
                path,
            });
        }
        Ok(out)
    }

    /// Reads one message's bytes.
    pub fn read(&self, disk: &dyn Disk, uid: u32) -> io::Result<Vec<u8>> {
        let location = self.files.get(&uid).ok_or_else(|| gone(uid))?;
        disk.read(&self.root.join(location.relative_path()))
    }

    /// Replaces a message's flags (moving it to `cur/`), durably.
    pub fn set_flags(&mut self, disk: &dyn Disk, uid: u32, flags: Flags) -> io::Result<()> {
        let location = self.files.get(&uid).ok_or_else(|| gone(uid))?;
        let from = location.relative_path();
        let moved = Location { base: location.base.clone(), cur: Some(flags) };
        let to = moved.relative_path();
        if from != to {
            disk.rename(&self.root.join(&from), &self.root.join(&to))?;
            disk.sync_dir(&self.root.join("cur"))?;
            if location.cur.is_none() {
                disk.sync_dir(&self.root.join("new"))?;
            }
        }
        self.files.insert(uid, moved);
        Ok(())
    }

    /// Removes messages durably; their UIDs are never handed out again.
    /// All or none: the files go to `tmp/` first and come back on failure.
    pub fn expunge(&mut self, disk: &dyn Disk, uids: &[u32]) -> io::Result<()> {
        let mut list = self.list.clone();
        let mut undo = Undo::default();
        let mut list_replaced = false;
        let result = (|| {
            let mut dirs = BTreeSet::new();
            for uid in uids {
                let Some(location) = self.files.get(uid) else { continue };
                let from = self.root.join(location.relative_path());
                let tmp = self.root.join("tmp").join(format!("{TMP_PREFIX}{}", location.base));
                match disk.rename(&from, &tmp) {
                    Ok(()) => undo.set_aside.push((from, tmp)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                dirs.insert(location.dir());
                list.entries.remove(uid);
                list.dates.remove(uid);
            }
            for dir in dirs {
                disk.sync_dir(&self.root.join(dir))?;
            }
            let tmp = self.root.join("tmp").join(uidlist::FILE_NAME);
            disk.write_synced(&tmp, list.render().as_bytes())?;
            disk.rename(&tmp, &self.root.join(uidlist::FILE_NAME))?;
            list_replaced = true;
            disk.sync_dir(&self.root)
        })();
        if let Err(e) = result {
            undo.roll_back(disk, &self.root);
            // The new list is in place but not durable: put the old one back,
            // or the returned files would look foreign and get new UIDs.
            if list_replaced {
                let _ = write_list(disk, &self.root, &self.list);
            }
            return Err(e);
        }
        self.list = list;
        for uid in uids {
            self.files.remove(uid);
        }
        // Committed; a file left in tmp/ is swept on the next open.
        for (_, tmp) in undo.set_aside {
            let _ = disk.remove_file(&tmp);
        }
        Ok(())
    }

    /// Gives the folder a new UIDVALIDITY (its name now stands for other
    /// messages: RENAME), durably; UIDs stay.
    pub fn renew_uid_validity(&mut self, disk: &dyn Disk, validity: u32) -> io::Result<()> {
        let mut list = self.list.clone();
        list.uid_validity = validity;
        write_list(disk, &self.root, &list)?;
        self.list = list;
        Ok(())
    }

    /// Replaces the UID list atomically (write a temporary file, rename).
    fn rewrite_list(&mut self, disk: &dyn Disk) -> io::Result<()> {
        write_list(disk, &self.root, &self.list)?;
        self.list.needs_rewrite = false;
        Ok(())
    }
}

/// What a failed change must take back, best effort: the undo of a failure
/// may fail too (see the module doc for what then remains).
#[derive(Default)]
struct Undo {
    /// Files written in `tmp/` (renamed away or not).
    tmp: Vec<PathBuf>,
    /// Files renamed into `new/` or `cur/`.
    placed: Vec<PathBuf>,
    /// Files moved from `new/` or `cur/` into `tmp/` (from, to).
    set_aside: Vec<(PathBuf, PathBuf)>,
}

impl Undo {
    fn roll_back(self, disk: &dyn Disk, root: &Path) {
        for path in self.placed.iter().rev() {
            let _ = disk.remove_file(path);
        }
        for path in &self.tmp {
            let _ = disk.remove_file(path);
        }
        for (from, tmp) in self.set_aside.iter().rev() {
            let _ = disk.rename(tmp, from);
        }
        if !self.placed.is_empty() || !self.set_aside.is_empty() {
            for dir in ["new", "cur"] {
                let _ = disk.sync_dir(&root.join(dir));
            }
        }
    }
}

/// Writes a UID list atomically (a temporary file, renamed over the list).
fn write_list(disk: &dyn Disk, root: &Path, list: &UidList) -> io::Result<()> {
    let tmp = root.join("tmp").join(uidlist::FILE_NAME);
    disk.write_synced(&tmp, list.render().as_bytes())?;
    disk.rename(&tmp, &root.join(uidlist::FILE_NAME))?;
    disk.sync_dir(root)
}

/// Deletes this store's leftovers in `tmp/` and other programs' files
/// older than [`STALE_TMP`] (their names start with the creation time).
fn sweep_tmp(disk: &dyn Disk, tmp: &Path, now: Duration) -> io::Result<()> {
    for name in disk.list_files(tmp)? {
        let created = name.split('.').next().and_then(|secs| secs.parse::<u64>().ok());
        let stale = created.is_some_and(|secs| secs.saturating_add(STALE_TMP.as_secs()) < now.as_secs());
        if name.starts_with(TMP_PREFIX) || name == uidlist::FILE_NAME || stale {
            // Best effort: a full or read-only disk must not stop reading.
            let _ = disk.remove_file(&tmp.join(&name));
        }
    }
    Ok(())
}

/// The UID in a name this node made (`<secs>.M<usecs>U<uid>.<host>,...`).
fn own_uid(base: &str, host: &str) -> Option<u32> {
    let mut parts = base.splitn(3, '.');
    let (_secs, unique, rest) = (parts.next()?, parts.next()?, parts.next()?);
    rest.strip_prefix(host)?.starts_with(',').then_some(())?;
    let (micros, uid) = unique.strip_prefix('M')?.split_once('U')?;
    micros.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
    uid.parse().ok()
}

/// Creates `tmp/`, `new/` and `cur/` if missing, syncing each new entry.
fn ensure_dirs(disk: &dyn Disk, root: &Path) -> io::Result<()> {
    if ["tmp", "new", "cur"].iter().all(|d| disk.exists(&root.join(d))) {
        return Ok(());
    }
    for dir in ["tmp", "new", "cur"] {
        disk.create_dir_all(&root.join(dir))?;
    }
    // Make the whole chain durable up to the data directory's parent.
    disk.sync_dir(root)?;
    let mut path = root;
    while let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        disk.sync_dir(parent)?;
        path = parent;
    }
    Ok(())
}

/// The size Dovecot-style names carry as `,S=<size>`.
fn size_from_name(base: &str) -> Option<u64> {
    base.split(',').find_map(|part| part.strip_prefix("S=")?.parse().ok())
}

fn gone(uid: u32) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("message UID {uid} is gone"))
}

#[cfg(test)]
mod tests;
