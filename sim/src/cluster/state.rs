//! DIR's shared state: `cluster.json` (written by `cluster up`, updated by
//! `cluster kill` / `start` under a lock), `ldap.mode` (written by
//! `cluster ldap`, polled by `up`) and `ldap.applied` (written by `up` once
//! the mode is in effect, awaited by `cluster ldap`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const CLUSTER_JSON: &str = "cluster.json";
pub const LDAP_MODE: &str = "ldap.mode";
pub const LDAP_APPLIED: &str = "ldap.applied";
const LOCK: &str = "cluster.lock";

/// What a node is doing, as recorded in cluster.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Running,
    /// Stopped by `cluster kill`: `up` does not restart it, even with --restart.
    Stopped,
    /// `cluster start` asked `up` to start it.
    StartRequested,
    /// Died on its own (reported by `up`).
    Dead,
    /// `up` has shut down.
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub role: String,
    pub pid: u32,
    pub status: Status,
    pub config: PathBuf,
    pub log: PathBuf,
    /// smtp_proxy, imap_proxy, pop3_proxy, smtp_backend, imap_backend, pop3_backend → ip:port.
    pub services: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountState {
    pub user: String,
    pub password: Option<String>,
    pub home: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    /// The directory's URL.
    pub directory: String,
    /// Whether `cluster up` serves it (else it is external, and `cluster
    /// ldap down|up` cannot act on it).
    #[serde(default = "yes")]
    pub directory_embedded: bool,
    /// Whether the nodes read that directory (they do: routing and passwords).
    pub nodes_use_directory: bool,
    pub layout: String,
    /// The `cluster up` process.
    pub up_pid: u32,
    /// Milliseconds from `cluster up` starting to every port accepting.
    pub ready_ms: u64,
    pub nodes: Vec<NodeState>,
    pub accounts: Vec<AccountState>,
    /// Directory users the cluster does not serve, with the reason.
    pub unserved: BTreeMap<String, String>,
}

impl ClusterState {
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    pub fn read(dir: &Path) -> Result<ClusterState> {
        let path = dir.join(CLUSTER_JSON);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} (is `tiermail-sim cluster up` running there?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a cluster state file", path.display()))
    }

    /// Writes atomically (temp file, then rename).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CLUSTER_JSON);
        let tmp = dir.join(format!(".{CLUSTER_JSON}.{}", std::process::id()));
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads, lets `change` edit, writes back, all under DIR's lock.
    pub fn update<T>(dir: &Path, change: impl FnOnce(&mut ClusterState) -> Result<T>) -> Result<T> {
        let _lock = Lock::take(dir)?;
        let mut state = ClusterState::read(dir)?;
        let out = change(&mut state)?;
        state.write(dir)?;
        Ok(out)
    }
}

/// An exclusive flock on DIR/cluster.lock, released on drop.
pub struct Lock(File);

impl Lock {
    pub fn take(dir: &Path) -> Result<Lock> {
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as in `take`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The directory mode `cluster ldap` asks for: "up" or "down".
pub fn read_ldap_mode(dir: &Path) -> Option<String> {
    read_word(dir, LDAP_MODE)
}

pub fn write_ldap_mode(dir: &Path, mode: &str) -> Result<()> {
    write_word(dir, LDAP_MODE, mode)
}

/// The directory mode in effect, as `up` last applied it.
pub fn read_ldap_applied(dir: &Path) -> Option<String> {
    read_word(dir, LDAP_APPLIED)
}

pub fn write_ldap_applied(dir: &Path, mode: &str) -> Result<()> {
    write_word(dir, LDAP_APPLIED, mode)
}

fn read_word(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_owned())
}

/// Replaces DIR/`name` at once (a reader never sees half a word).
fn write_word(dir: &Path, name: &str, word: &str) -> Result<()> {
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, format!("{word}\n"))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("cannot write {name}"))
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        // SAFETY: signal 0 only checks that the process exists.
        Err(_) => unsafe { libc::kill(pid as libc::pid_t, 0) == 0 },
    }
}

/// Sends `signal` to `pid`; false if there is no such process.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) with a positive pid touches no memory.
    pid != 0 && unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// serde default for state files written before `directory_embedded` existed.
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_updates_under_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let state = ClusterState {
            directory_embedded: true,
            directory: "ldap://127.0.0.1:3389".into(),
            nodes_use_directory: false,
            layout: "one-tier".into(),
            up_pid: 1,
            ready_ms: 5,
            nodes: vec![NodeState {
                name: "node-a".into(),
                role: "proxy+backend".into(),
                pid: 7,
                status: Status::Running,
                config: "a.toml".into(),
                log: "a.log".into(),
                services: BTreeMap::from([("smtp_proxy".into(), "127.0.0.11:1025".into())]),
            }],
            accounts: vec![],
            unserved: BTreeMap::new(),
        };
        state.write(tmp.path()).unwrap();
        ClusterState::update(tmp.path(), |s| {
            s.node_mut("node-a").unwrap().status = Status::Stopped;
            Ok(())
        })
        .unwrap();
        let back = ClusterState::read(tmp.path()).unwrap();
        assert_eq!(back.node("node-a").unwrap().status, Status::Stopped);
        let text = std::fs::read_to_string(tmp.path().join(CLUSTER_JSON)).unwrap();
        assert!(text.contains("\"status\": \"stopped\""), "{text}");
        assert!(alive(std::process::id()));
        write_ldap_mode(tmp.path(), "down").unwrap();
        assert_eq!(read_ldap_mode(tmp.path()).as_deref(), Some("down"));
    }
}
