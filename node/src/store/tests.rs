use super::*;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

fn account(user: &str) -> AccountId {
    AccountId { user: user.into(), domain: "example.com".into() }
}

fn real_store(dir: &Path) -> Store {
    Store::new(Arc::new(RealDisk), dir.to_path_buf(), "test", Clock::starting_at(SystemTime::UNIX_EPOCH))
}

#[tokio::test]
async fn new_accounts_get_special_use_folders_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let alice = account("alice");
    assert_eq!(store.folders(&alice).await.unwrap(), ["INBOX", "Drafts", "Junk", "Sent", "Trash"]);
    assert_eq!(store.subscriptions(&alice).await.unwrap(), ["INBOX", "Drafts", "Junk", "Sent", "Trash"]);
    assert!(dir.path().join("example.com/alice/.Sent/maildirfolder").exists());
}

#[tokio::test]
async fn folders_are_created_renamed_with_children_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let alice = account("alice");
    store.create_folder(&alice, "Work").await.unwrap();
    store.create_folder(&alice, "Work.2024").await.unwrap();
    assert_eq!(store.create_folder(&alice, "Work").await.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    store.append(&alice, "Work.2024", Arc::new(b"x\r\n".to_vec()), Flags::SEEN, None).await.unwrap();
    store.rename_folder(&alice, "Work", "Jobs").await.unwrap();
    let folders = store.folders(&alice).await.unwrap();
    assert!(folders.contains(&"Jobs".to_string()) && folders.contains(&"Jobs.2024".to_string()), "{folders:?}");
    assert!(!folders.iter().any(|f| f.starts_with("Work")));
    assert_eq!(store.view(&alice, "Jobs.2024").await.unwrap().messages.len(), 1);
    store.delete_folder(&alice, "Jobs.2024").await.unwrap();
    assert_eq!(store.view(&alice, "Jobs.2024").await.unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(store.delete_folder(&alice, "INBOX").await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(store.view(&alice, "../../etc").await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn copy_keeps_bytes_flags_and_date_and_changes_wake_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let alice = account("alice");
    let uid = store.deliver(&alice, Arc::new(b"hello\r\n".to_vec())).await.unwrap();
    store.set_flags(&alice, "INBOX", vec![(uid, Flags::FLAGGED)]).await.unwrap();
    let mut trash = store.watch(&alice, "Trash");
    let (validity, pairs) = store.copy(&alice, "INBOX", "Trash", vec![uid]).await.unwrap();
    assert!(trash.has_changed().unwrap(), "the copy must wake Trash's watchers");
    trash.mark_unchanged();
    let copied = store.view(&alice, "Trash").await.unwrap();
    assert_eq!(copied.uid_validity, validity);
    assert_eq!(pairs, [(uid, copied.messages[0].uid)]);
    assert_eq!(copied.messages[0].flags, Flags::FLAGGED);
    let original = store.view(&alice, "INBOX").await.unwrap();
    assert_eq!(copied.messages[0].internal_date, original.messages[0].internal_date);
    assert_eq!(store.read(&alice, "Trash", pairs[0].1).await.unwrap(), b"hello\r\n");
}

#[tokio::test]
async fn subscriptions_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = real_store(dir.path());
    let bob = account("bob");
    store.set_subscribed(&bob, "Junk", false).await.unwrap();
    store.set_subscribed(&bob, "Nowhere", true).await.unwrap();
    let again = real_store(dir.path());
    assert_eq!(again.subscriptions(&bob).await.unwrap(), ["Drafts", "INBOX", "Nowhere", "Sent", "Trash"]);
}

/// On turmoil's simulated disk, a crash loses what was not synced, but
/// never a message whose delivery returned.
#[test]
fn simulated_crash_keeps_every_acknowledged_delivery() {
    let acked: Arc<Mutex<Vec<u32>>> = Arc::default();
    type Listing = Vec<(u32, Vec<u8>)>;
    let after_restart: Arc<Mutex<Option<Listing>>> = Arc::default();
    let boots = Arc::new(Mutex::new(0));
    let mut sim = turmoil::Builder::new().simulation_duration(Duration::from_secs(30)).build();
    let (log, seen) = (acked.clone(), after_restart.clone());
    sim.host("node", move || {
        let (log, seen, boots) = (log.clone(), seen.clone(), boots.clone());
        async move {
            let store = Store::new(
                Arc::new(SimDisk),
                PathBuf::from("/data"),
                "node",
                Clock::starting_at(SystemTime::UNIX_EPOCH),
            );
            let alice = account("alice");
            let boot = {
                let mut b = boots.lock().unwrap();
                *b += 1;
                *b
            };
            if boot == 1 {
                for i in 0..20u32 {
                    let uid = store.deliver(&alice, Arc::new(format!("m{i}\r\n").into_bytes())).await?;
                    log.lock().unwrap().push(uid);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } else {
                let mut found = Vec::new();
                for m in store.snapshot(&alice, "INBOX").await?.messages {
                    found.push((m.uid, store.read(&alice, "INBOX", m.uid).await?));
                }
                *seen.lock().unwrap() = Some(found);
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    sim.client("until-crash", async {
        tokio::time::sleep(Duration::from_millis(105)).await;
        Ok(())
    });
    sim.run().unwrap();
    let before_crash = acked.lock().unwrap().clone();
    assert!(!before_crash.is_empty() && before_crash.len() < 20, "the crash lands mid-run: {before_crash:?}");
    sim.crash("node");
    sim.bounce("node");
    sim.client("after-restart", async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    });
    sim.run().unwrap();
    let found = after_restart.lock().unwrap().clone().expect("the node restarted and listed INBOX");
    let uids: Vec<u32> = found.iter().map(|(uid, _)| *uid).collect();
    assert_eq!(uids, before_crash, "exactly the acknowledged deliveries survive");
    for (i, (_, bytes)) in found.iter().enumerate() {
        assert_eq!(bytes, format!("m{i}\r\n").as_bytes());
    }
}

/// RFC 3501 2.3.1.1: a name's UIDVALIDITY must grow whenever its UIDs
/// start over, even within one second, after a restart, and with a clock
/// that went backwards.
#[tokio::test]
async fn uid_validity_grows_for_a_name_across_delete_create_rename_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let at = |secs: u64| Clock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    let store = Store::new(Arc::new(RealDisk), dir.path().to_path_buf(), "test", at(1_700_000_000));
    let alice = account("alice");
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut check = async |store: &Store, name: &str| {
        let validity = store.view(&alice, name).await.unwrap().uid_validity;
        if let Some(before) = seen.insert(name.to_string(), validity) {
            assert!(validity > before, "{name}: UIDVALIDITY {validity} after {before}");
        }
    };
    store.create_folder(&alice, "Work").await.unwrap();
    store.create_folder(&alice, "Work.2024").await.unwrap();
    check(&store, "Work").await;
    check(&store, "Work.2024").await;
    store.delete_folder(&alice, "Work.2024").await.unwrap();
    store.create_folder(&alice, "Work.2024").await.unwrap();
    check(&store, "Work.2024").await;
    store.create_folder(&alice, "Jobs").await.unwrap();
    check(&store, "Jobs").await;
    store.delete_folder(&alice, "Jobs").await.unwrap();
    // Jobs (and Jobs.2024) now name Work's messages: new UIDVALIDITYs.
    store.rename_folder(&alice, "Work", "Jobs").await.unwrap();
    check(&store, "Jobs").await;
    check(&store, "Jobs.2024").await;
    store.create_folder(&alice, "Work").await.unwrap();
    check(&store, "Work").await;
    // After a restart with a clock that went back an hour.
    let store = Store::new(Arc::new(RealDisk), dir.path().to_path_buf(), "test", at(1_699_996_400));
    store.delete_folder(&alice, "Work").await.unwrap();
    store.create_folder(&alice, "Work").await.unwrap();
    check(&store, "Work").await;
    store.delete_folder(&alice, "Jobs.2024").await.unwrap();
    store.rename_folder(&alice, "Work", "Jobs.2024").await.unwrap();
    check(&store, "Jobs.2024").await;
}
