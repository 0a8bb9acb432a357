//! The account's UIDVALIDITY counter (`tiermail-uidvalidity` in the account
//! root, like Dovecot's `dovecot-uidvalidity`): the last value handed out.
//!
//! RFC 3501 2.3.1.1: when a name's UIDs start over (DELETE then CREATE,
//! RENAME onto it), its UIDVALIDITY must be greater than before, or clients
//! show cached messages for the wrong UIDs. The creation second alone
//! repeats within a second, and the clock may step back across a restart
//! (or in simulation), so each new value is `max(now, last + 1)`, with
//! `last` kept durably per account: strictly increasing for every name of
//! the account, whatever the clock does.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::disk::Disk;
use super::folder;
use super::uidlist::{self, UidList};

/// The counter's file name in the account root.
pub const FILE_NAME: &str = "tiermail-uidvalidity";

/// Hands out the account's next UIDVALIDITY, durably, before anything uses
/// it. The caller serialises calls for one account.
pub fn next(disk: &dyn Disk, account_root: &Path, now: Duration) -> io::Result<u32> {
    let path = account_root.join(FILE_NAME);
    let recorded = match disk.read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().parse::<u32>().ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    // No (readable) counter yet: an account from before it existed, or a
    // damaged file. Start above every value its folders carry.
    let last = match recorded {
        Some(last) => last,
        None => highest_in_use(disk, account_root)?,
    };
    let next = last
        .checked_add(1)
        .ok_or_else(|| io::Error::other(format!("{}: UIDVALIDITY exhausted", path.display())))?
        .max(now.as_secs().min(u32::MAX as u64) as u32);
    let tmp = account_root.join("tmp").join(FILE_NAME);
    disk.write_synced(&tmp, format!("{next}\n").as_bytes())?;
    disk.rename(&tmp, &path)?;
    disk.sync_dir(account_root)?;
    Ok(next)
}

/// The highest UIDVALIDITY in the account's UID lists (0 if none).
fn highest_in_use(disk: &dyn Disk, account_root: &Path) -> io::Result<u32> {
    let mut dirs = vec![account_root.to_path_buf()];
    if disk.exists(account_root) {
        for name in disk.list_dirs(account_root)? {
            if let Some(folder) = folder::from_dir_name(&name) {
                dirs.push(folder::dir(account_root, &folder));
            }
        }
    }
    let mut highest = 0;
    for dir in dirs {
        if let Ok(bytes) = disk.read(&dir.join(uidlist::FILE_NAME))
            && let Ok(list) = UidList::parse(&bytes)
        {
            highest = highest.max(list.uid_validity);
        }
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::disk::RealDisk;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        dir
    }

    #[test]
    fn values_grow_within_a_second_and_when_the_clock_goes_back() {
        let dir = setup();
        let now = Duration::from_secs(1_700_000_000);
        let a = next(&RealDisk, dir.path(), now).unwrap();
        let b = next(&RealDisk, dir.path(), now).unwrap();
        let c = next(&RealDisk, dir.path(), now - Duration::from_secs(3600)).unwrap();
        assert_eq!((a, b, c), (1_700_000_000, 1_700_000_001, 1_700_000_002));
        assert_eq!(next(&RealDisk, dir.path(), now + Duration::from_secs(10)).unwrap(), 1_700_000_010);
    }

    #[test]
    fn a_missing_counter_starts_above_the_folders_in_use() {
        let dir = setup();
        let mut list = UidList::new(1_800_000_000);
        list.uid_next = 3;
        std::fs::create_dir_all(dir.path().join(".Work")).unwrap();
        std::fs::write(dir.path().join(".Work").join(uidlist::FILE_NAME), list.render()).unwrap();
        assert_eq!(next(&RealDisk, dir.path(), Duration::from_secs(5)).unwrap(), 1_800_000_001);
    }
}
