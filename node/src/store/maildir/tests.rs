//! The Maildir on the real disk: UIDs, flags, foreign files, torn lists, tmp/.

use super::*;
use crate::store::disk::RealDisk;

fn open(root: &Path) -> Maildir {
    Maildir::open(&RealDisk, root, "h", Duration::from_secs(1_700_000_000), &|| Ok(1_700_000_000)).unwrap()
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

#[test]
fn opening_sweeps_our_tmp_leftovers_and_stale_foreign_ones() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path());
    let tmp = dir.path().join("tmp");
    // Opened at 1_700_000_000: 36 hours before is 1_699_870_400.
    for name in ["tiermail.1.M1U1.h,S=3", "tiermail-uidlist", "1699870000.M1P9.other,S=3", "1699990000.M1P9.other,S=3"]
    {
        RealDisk.write_synced(&tmp.join(name), b"abc").unwrap();
    }
    open(dir.path());
    assert_eq!(
        RealDisk.list_files(&tmp).unwrap(),
        ["1699990000.M1P9.other,S=3"],
        "a fresh foreign delivery may be in flight"
    );
}

#[test]
fn our_uncommitted_files_are_deleted_and_foreign_ones_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let mut md = open(dir.path());
    md.deliver(&RealDisk, b"one\r\n", "h", Duration::from_secs(5)).unwrap();
    // A crash between the rename into new/ and the UID line: ours, UID 2.
    RealDisk.write_synced(&dir.path().join("new/6.M0U2.h,S=5"), b"two\r\n").unwrap();
    // Another program's delivery, and a name like ours from another host.
    RealDisk.write_synced(&dir.path().join("new/7.M0P1.h,S=5"), b"3rd\r\n").unwrap();
    RealDisk.write_synced(&dir.path().join("new/8.M0U3.hx,S=5"), b"4th\r\n").unwrap();
    let md = open(dir.path());
    let bodies: Vec<Vec<u8>> =
        md.entries(&RealDisk).unwrap().iter().map(|e| md.read(&RealDisk, e.uid).unwrap()).collect();
    assert_eq!(bodies, [&b"one\r\n"[..], b"3rd\r\n", b"4th\r\n"]);
    assert!(!dir.path().join("new/6.M0U2.h,S=5").exists());
}
