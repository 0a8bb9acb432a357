//! Every failure point of a change is undone: after a failed deliver,
//! COPY or MOVE, reopening the folder shows exactly what was there before
//! (so the client's retry does not duplicate), and `tmp/` holds no junk.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::faulty_disk::{FaultyDisk, OPS, Op};
use super::*;

type Faulty = Arc<FaultyDisk<RealDisk>>;

fn alice() -> AccountId {
    AccountId { user: "alice".into(), domain: "example.com".into() }
}

fn clock() -> Clock {
    Clock::starting_at(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
}

fn faulty_store(dir: &Path) -> (Faulty, Store) {
    let disk = Arc::new(FaultyDisk::new(RealDisk));
    (disk.clone(), Store::new(disk, dir.to_path_buf(), "test", clock()))
}

/// A new store on the same directory: every folder is opened afresh.
fn reopened(dir: &Path) -> Store {
    Store::new(Arc::new(RealDisk), dir.to_path_buf(), "test", clock())
}

async fn bodies(store: &Store, folder: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in store.snapshot(&alice(), folder).await.unwrap().messages {
        out.push(String::from_utf8(store.read(&alice(), folder, m.uid).await.unwrap()).unwrap());
    }
    out
}

/// Files left in the `tmp/` of INBOX and of the folders named.
fn tmp_junk(dir: &Path, folders: &[&str]) -> Vec<String> {
    let root = dir.join("example.com/alice");
    let mut out = Vec::new();
    for name in folders {
        let tmp = folder::dir(&root, name).join("tmp");
        for file in RealDisk.list_files(&tmp).unwrap() {
            // The account's own small files (subscriptions) are not messages.
            if *name != "INBOX"
                || file.chars().next().is_some_and(|c| c.is_ascii_digit())
                || file.starts_with("tiermail")
            {
                out.push(format!("{name}/tmp/{file}"));
            }
        }
    }
    out
}

fn message(text: &str) -> Arc<Vec<u8>> {
    Arc::new(format!("Subject: {text}\r\n\r\n{text}\r\n").into_bytes())
}

fn text_of(body: &str) -> &str {
    body.trim_end().rsplit('\n').next().unwrap_or_default()
}

/// How many calls of each kind `operation` makes on a clean disk, so the
/// tests can fail each one in turn.
async fn calls_of<F, Fut>(setup: impl AsyncFn(&Store), operation: F) -> Vec<(Op, usize)>
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let dir = tempfile::tempdir().unwrap();
    let (disk, store) = faulty_store(dir.path());
    setup(&store).await;
    disk.disarm();
    operation(store).await.unwrap();
    OPS.iter().map(|op| (*op, disk.calls(*op))).filter(|(_, n)| *n > 0).collect()
}

#[tokio::test]
async fn failed_delivery_is_undone_so_the_retry_does_not_duplicate() {
    let setup = async |store: &Store| {
        store.deliver(&alice(), message("first")).await.unwrap();
    };
    let deliver = |store: Store| async move { store.deliver(&alice(), message("second")).await.map(|_| ()) };
    let points = calls_of(setup, deliver).await;
    assert!(points.iter().any(|(op, _)| *op == Op::AppendSynced), "{points:?}");
    for (op, count) in points {
        for nth in 1..=count {
            let dir = tempfile::tempdir().unwrap();
            let (disk, store) = faulty_store(dir.path());
            setup(&store).await;
            disk.arm(op, nth);
            let result = deliver(store.clone()).await;
            let at = format!("{op:?} #{nth}");
            assert!(disk.fired(), "{at}: the failure point is reached");
            disk.disarm();
            assert!(result.is_err(), "{at}: the failure must reach the client");
            let again = reopened(dir.path());
            let texts: Vec<String> = bodies(&again, "INBOX").await.iter().map(|b| text_of(b).to_string()).collect();
            assert_eq!(texts, ["first"], "{at}: a failed delivery leaves nothing");
            assert_eq!(tmp_junk(dir.path(), &["INBOX"]), Vec::<String>::new(), "{at}: tmp/ is swept");
            again.deliver(&alice(), message("second")).await.unwrap();
            let texts: Vec<String> =
                bodies(&reopened(dir.path()), "INBOX").await.iter().map(|b| text_of(b).to_string()).collect();
            assert_eq!(texts, ["first", "second"], "{at}: the retry stores it once");
        }
    }
}

async fn three_in_inbox(store: &Store) -> Vec<u32> {
    let mut uids = Vec::new();
    for text in ["m1", "m2", "m3"] {
        uids.push(store.deliver(&alice(), message(text)).await.unwrap());
    }
    store.set_flags(&alice(), "INBOX", vec![(uids[1], Flags::SEEN)]).await.unwrap();
    uids
}

async fn texts(store: &Store, folder: &str) -> Vec<String> {
    let mut out: Vec<String> = bodies(store, folder).await.iter().map(|b| text_of(b).to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn failed_copy_leaves_nothing_in_the_target() {
    let setup = async |store: &Store| {
        three_in_inbox(store).await;
    };
    let copy = |store: Store| async move { store.copy(&alice(), "INBOX", "Trash", vec![1, 2, 3]).await.map(|_| ()) };
    let points = calls_of(setup, copy).await;
    for (op, count) in points {
        for nth in 1..=count {
            let dir = tempfile::tempdir().unwrap();
            let (disk, store) = faulty_store(dir.path());
            setup(&store).await;
            disk.arm(op, nth);
            let result = copy(store.clone()).await;
            let at = format!("{op:?} #{nth}");
            assert!(disk.fired(), "{at}: the failure point is reached");
            disk.disarm();
            assert!(result.is_err(), "{at}: the failure must reach the client");
            let again = reopened(dir.path());
            assert_eq!(texts(&again, "Trash").await, Vec::<String>::new(), "{at}: COPY is all or nothing");
            assert_eq!(texts(&again, "INBOX").await, ["m1", "m2", "m3"], "{at}: the source is untouched");
            assert_eq!(tmp_junk(dir.path(), &["INBOX", "Trash"]), Vec::<String>::new(), "{at}: tmp/ is swept");
            again.copy(&alice(), "INBOX", "Trash", vec![1, 2, 3]).await.unwrap();
            assert_eq!(texts(&reopened(dir.path()), "Trash").await, ["m1", "m2", "m3"], "{at}: the retry copies once");
        }
    }
}

#[tokio::test]
async fn failed_move_leaves_every_message_where_it_was() {
    let setup = async |store: &Store| {
        three_in_inbox(store).await;
    };
    let move_all =
        |store: Store| async move { store.move_messages(&alice(), "INBOX", "Trash", vec![1, 2, 3]).await.map(|_| ()) };
    let points = calls_of(setup, move_all).await;
    assert!(points.iter().any(|(op, _)| *op == Op::RemoveFile), "{points:?}");
    for (op, count) in points {
        for nth in 1..=count {
            let dir = tempfile::tempdir().unwrap();
            let (disk, store) = faulty_store(dir.path());
            setup(&store).await;
            disk.arm(op, nth);
            let result = move_all(store.clone()).await;
            let at = format!("{op:?} #{nth}");
            assert!(disk.fired(), "{at}: the failure point is reached");
            disk.disarm();
            let again = reopened(dir.path());
            let (inbox, trash) = (texts(&again, "INBOX").await, texts(&again, "Trash").await);
            if result.is_ok() {
                // A failure after the commit that does not matter (cleanup).
                assert_eq!((inbox.len(), trash.len()), (0, 3), "{at}: an OK MOVE moved everything");
            } else {
                assert_eq!(inbox, ["m1", "m2", "m3"], "{at}: MOVE is all or nothing (source)");
                assert_eq!(trash, Vec::<String>::new(), "{at}: MOVE is all or nothing (target)");
            }
            assert_eq!(tmp_junk(dir.path(), &["INBOX", "Trash"]), Vec::<String>::new(), "{at}: tmp/ is swept");
        }
    }
}

/// When the undo fails too (the disk refuses removals), the message may
/// stay, but once at most, and nothing acknowledged is lost.
#[tokio::test]
async fn failed_undo_never_loses_or_doubles_a_message() {
    let deliver = |store: Store| async move { store.deliver(&alice(), message("second")).await.map(|_| ()) };
    for op in [Op::Rename, Op::SyncDir, Op::AppendSynced] {
        let dir = tempfile::tempdir().unwrap();
        let (disk, store) = faulty_store(dir.path());
        store.deliver(&alice(), message("first")).await.unwrap();
        disk.arm_stuck(op, 1, &[Op::RemoveFile, Op::Rename, Op::SyncDir]);
        assert!(deliver(store.clone()).await.is_err(), "{op:?}");
        disk.disarm();
        let texts = texts(&reopened(dir.path()), "INBOX").await;
        assert!(texts == ["first"] || texts == ["first", "second"], "{op:?}: {texts:?}");
    }
}

/// The sweep of `tmp/` is housekeeping: a disk that refuses removals (full,
/// read-only) must not stop the folder from being read.
#[tokio::test]
async fn a_disk_refusing_removals_still_serves_a_folder_with_tmp_junk() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, store) = faulty_store(dir.path());
    store.deliver(&alice(), message("first")).await.unwrap();
    let junk = dir.path().join("example.com/alice/tmp/tiermail.1.M1U9.test,S=3");
    RealDisk.write_synced(&junk, b"abc").unwrap();
    disk.arm_stuck(Op::RemoveFile, 1, &[Op::RemoveFile]);
    let texts: Vec<String> = bodies(&store, "INBOX").await.iter().map(|b| text_of(b).to_string()).collect();
    assert_eq!(texts, ["first"]);
    disk.disarm();
    bodies(&store, "INBOX").await;
    assert!(!junk.exists(), "swept once the disk allows it");
}
