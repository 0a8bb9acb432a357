//! One Maildir (`tmp/`, `new/`, `cur/` plus the UID list), read and written
//! through the [`Disk`] seam. Synchronous: the async [`super::Store`] runs
//! these calls on a blocking thread for the real disk, inline in simulation.
//!
//! Delivery follows the Maildir protocol so Dovecot and mutt read our
//! mailboxes as their own: write `tmp/<name>` and fsync it, rename it into
//! `new/`, fsync `new/`, append the UID line and fsync it; only then is the
//! message acknowledged. Flags live in the file name (`cur/<name>:2,FS`).

use std::collections::BTreeMap;
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
    pub fn open(disk: &dyn Disk, root: &Path, now: Duration) -> io::Result<Self> {
        ensure_dirs(disk, root)?;
        let list_path = root.join(uidlist::FILE_NAME);
        let mut list = if disk.exists(&list_path) {
            UidList::parse(&disk.read(&list_path)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", list_path.display())))?
        } else {
            UidList::new(now.as_secs().clamp(1, u32::MAX as u64) as u32)
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
        let mut maildir = Self { root: root.to_path_buf(), list, files };
        // Files nobody listed yet (delivered by another program) get UIDs in
        // name order, which is delivery order for Maildir names.
        let newcomers: Vec<_> = on_disk.into_iter().collect();
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

    /// Adds one message durably, with flags (`Some` puts it straight into
    /// `cur/`, as IMAP APPEND does) and an internal date other than now.
    pub fn append(
        &mut self,
        disk: &dyn Disk,
        data: &[u8],
        flags: Flags,
        internal_date: Option<i64>,
        host: &str,
        now: Duration,
    ) -> io::Result<u32> {
        let uid = self.list.uid_next;
        let base = format!("{}.M{}U{uid}.{host},S={}", now.as_secs(), now.subsec_micros(), data.len());
        let location = Location { base: base.clone(), cur: (flags != Flags::default()).then_some(flags) };
        let tmp = self.root.join("tmp").join(&base);
        disk.write_synced(&tmp, data)?;
        let target_dir = if location.cur.is_some() { "cur" } else { "new" };
        disk.rename(&tmp, &self.root.join(location.relative_path()))?;
        disk.sync_dir(&self.root.join(target_dir))?;
        let line = uidlist::entry_line(uid, &base, internal_date);
        disk.append_synced(&self.root.join(uidlist::FILE_NAME), line.as_bytes())?;
        self.list.uid_next += 1;
        self.list.entries.insert(uid, base);
        if let Some(date) = internal_date {
            self.list.dates.insert(uid, date);
        }
        self.files.insert(uid, location);
        Ok(uid)
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
    pub fn expunge(&mut self, disk: &dyn Disk, uids: &[u32]) -> io::Result<()> {
        let mut touched = (false, false);
        for uid in uids {
            let Some(location) = self.files.get(uid) else { continue };
            match disk.remove_file(&self.root.join(location.relative_path())) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if location.cur.is_some() {
                touched.1 = true
            } else {
                touched.0 = true
            }
            self.files.remove(uid);
            self.list.entries.remove(uid);
            self.list.dates.remove(uid);
        }
        if touched.0 {
            disk.sync_dir(&self.root.join("new"))?;
        }
        if touched.1 {
            disk.sync_dir(&self.root.join("cur"))?;
        }
        self.rewrite_list(disk)
    }

    /// Replaces the UID list atomically (write a temporary file, rename).
    fn rewrite_list(&mut self, disk: &dyn Disk) -> io::Result<()> {
        let tmp = self.root.join("tmp").join(uidlist::FILE_NAME);
        disk.write_synced(&tmp, self.list.render().as_bytes())?;
        disk.rename(&tmp, &self.root.join(uidlist::FILE_NAME))?;
        disk.sync_dir(&self.root)?;
        self.list.needs_rewrite = false;
        Ok(())
    }
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
mod tests {
    use super::*;
    use crate::store::disk::RealDisk;

    fn open(root: &Path) -> Maildir {
        Maildir::open(&RealDisk, root, Duration::from_secs(1_700_000_000)).unwrap()
    }

    #[test]
    fn uids_survive_reopen_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("example.com/alice");
        let mut md = open(&root);
        let now = Duration::from_secs(1_700_000_001);
        let a = md.deliver(&RealDisk, b"A\r\n", "h", now).unwrap();
        let b = md.deliver(&RealDisk, b"BB\r\n", "h", now).unwrap();
        assert_eq!((a, b), (1, 2));
        md.expunge(&RealDisk, &[b]).unwrap();
        let mut md = open(&root);
        assert_eq!(md.uid_validity(), 1_700_000_000);
        let uids: Vec<_> = md.entries(&RealDisk).unwrap().iter().map(|e| e.uid).collect();
        assert_eq!(uids, [1]);
        assert_eq!(md.deliver(&RealDisk, b"C\r\n", "h", now).unwrap(), 3);
        assert_eq!(md.read(&RealDisk, 1).unwrap(), b"A\r\n");
    }

    #[test]
    fn flags_are_kept_in_the_file_name_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = open(dir.path());
        let uid = md.deliver(&RealDisk, b"x\r\n", "h", Duration::from_secs(5)).unwrap();
        let flags = Flags::parse_maildir_info("FS");
        md.set_flags(&RealDisk, uid, flags).unwrap();
        let names = RealDisk.list_files(&dir.path().join("cur")).unwrap();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(":2,FS"), "{names:?}");
        let md = open(dir.path());
        let entry = &md.entries(&RealDisk).unwrap()[0];
        assert_eq!((entry.uid, entry.flags, entry.size), (uid, flags, 3));
    }

    #[test]
    fn foreign_files_get_uids_and_vanished_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = open(dir.path());
        let now = Duration::from_secs(5);
        md.deliver(&RealDisk, b"one\r\n", "h", now).unwrap();
        let two = md.deliver(&RealDisk, b"two\r\n", "h", now).unwrap();
        // Another program (mutt, Dovecot) delivers one and deletes another.
        RealDisk.write_synced(&dir.path().join("cur/999.foreign:2,S"), b"hello").unwrap();
        let path = dir.path().join(&md.entries(&RealDisk).unwrap()[1].path);
        RealDisk.remove_file(&path).unwrap();
        let md = open(dir.path());
        let entries = md.entries(&RealDisk).unwrap();
        let uids: Vec<_> = entries.iter().map(|e| e.uid).collect();
        assert_eq!(uids, [1, two + 1]);
        assert_eq!(entries[1].size, 5);
        assert!(entries[1].flags.contains(Flags::SEEN));
    }

    #[test]
    fn append_keeps_flags_and_internal_date_and_claim_recent_moves_to_cur() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = open(dir.path());
        let now = Duration::from_secs(1_800_000_000);
        let a = md.append(&RealDisk, b"a\r\n", Flags::SEEN, Some(1_600_000_000), "h", now).unwrap();
        let b = md.deliver(&RealDisk, b"b\r\n", "h", now).unwrap();
        let md2 = open(dir.path());
        let entries = md2.entries(&RealDisk).unwrap();
        assert_eq!(
            (entries[0].uid, entries[0].flags, entries[0].internal_date, entries[0].recent),
            (a, Flags::SEEN, 1_600_000_000, false)
        );
        assert_eq!((entries[1].uid, entries[1].internal_date, entries[1].recent), (b, 1_800_000_000, true));
        assert_eq!(md.claim_recent(&RealDisk).unwrap(), [b]);
        assert!(open(dir.path()).entries(&RealDisk).unwrap().iter().all(|e| !e.recent));
    }

    #[test]
    fn torn_uid_list_tail_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = open(dir.path());
        md.deliver(&RealDisk, b"one\r\n", "h", Duration::from_secs(5)).unwrap();
        RealDisk.append_synced(&dir.path().join(uidlist::FILE_NAME), b"2 half-writ").unwrap();
        let mut md = open(dir.path());
        // UID 2 was never acknowledged (its line is torn), so it may be handed out.
        assert_eq!(md.deliver(&RealDisk, b"two\r\n", "h", Duration::from_secs(6)).unwrap(), 2);
        let text = String::from_utf8(RealDisk.read(&dir.path().join(uidlist::FILE_NAME)).unwrap()).unwrap();
        assert!(!text.contains("half-writ"), "{text}");
        assert_eq!(open(dir.path()).entries(&RealDisk).unwrap().len(), 2);
    }
}
