//! After the final crash, every mailbox of every back-end is reopened
//! through the node's own store, as the node would on restart (UID list
//! reconciled with the files, uncommitted files dropped), and read back:
//! what the invariants call "stored" is what the store serves then, not
//! what files happen to lie on the disk. Each INBOX's (UIDVALIDITY, UID,
//! id) also go to the UID checker as one last read: a message must keep
//! the UID clients saw, and nothing may appear with a UID at or below one
//! they already saw.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::executor::block_on;
use tiermail_node::clock::Clock;
use tiermail_node::config::parse_address;
use tiermail_node::store::{Disk, SimDisk, Store};
use turmoil::fs::FsHandle;

use crate::history::{Op, OpKind, Outcome};
use crate::run::Stores;
use crate::workload::client::ids_in;

/// The client name of the reads made here.
pub const REOPEN_CLIENT: &str = "final-reopen";

/// Every mailbox's ids (all folders), and one read per INBOX at `end`.
/// The simulated disk never blocks, so every store call completes at once.
pub fn read_stores(filesystems: &BTreeMap<String, FsHandle>, data_dir: &Path, end: Duration) -> (Stores, Vec<Op>) {
    let mut stores = Stores::new();
    let mut reads = Vec::new();
    for (host, handle) in filesystems {
        let _guard = handle.enter();
        let clock = Clock::starting_at(SystemTime::UNIX_EPOCH + end);
        let store = Store::new(Arc::new(SimDisk), data_dir.to_path_buf(), host, clock);
        for domain in SimDisk.list_dirs(data_dir).unwrap_or_default() {
            for user in SimDisk.list_dirs(&data_dir.join(&domain)).unwrap_or_default() {
                let address = format!("{user}@{domain}");
                let Some(account) = parse_address(&address) else { continue };
                let mut ids = Vec::new();
                let mut uids = Vec::new();
                for folder in block_on(store.folders(&account)).unwrap_or_default() {
                    let Ok(snapshot) = block_on(store.snapshot(&account, &folder)) else { continue };
                    for entry in &snapshot.messages {
                        let Ok(bytes) = block_on(store.read(&account, &folder, entry.uid)) else { continue };
                        let found = ids_in(&bytes);
                        if let ("INBOX", [id]) = (folder.as_str(), found.as_slice()) {
                            uids.push((snapshot.uid_validity, entry.uid, id.clone()));
                        }
                        ids.extend(found);
                    }
                }
                reads.push(Op {
                    client: REOPEN_CLIENT.into(),
                    kind: OpKind::ImapRead,
                    via: host.clone(),
                    users: vec![address.clone()],
                    sent: Vec::new(),
                    seen: Vec::new(),
                    uids,
                    removed: Vec::new(),
                    start: end,
                    end,
                    outcome: Outcome::Ok,
                    quiet: true,
                });
                stores.insert((host.clone(), address), ids);
            }
        }
    }
    (stores, reads)
}
