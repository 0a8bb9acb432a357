//! A [`Disk`] for tests that fails the Nth call of one kind, the way a
//! real disk does: a failed write leaves a partial file behind, a failed
//! append has written its line but not synced it. Everything else is
//! passed to the wrapped disk. Counting calls of a clean run first lets a
//! test visit every failure point of an operation.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use super::disk::Disk;

/// The operations a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    WriteSynced,
    AppendSynced,
    Rename,
    SyncDir,
    RemoveFile,
}

pub const OPS: [Op; 5] = [Op::WriteSynced, Op::AppendSynced, Op::Rename, Op::SyncDir, Op::RemoveFile];

#[derive(Default)]
struct State {
    calls: BTreeMap<Op, usize>,
    /// Fail the call of this kind whose number (since arming) is this.
    armed: Option<(Op, usize)>,
    /// Once the armed call failed, fail every later call of these kinds
    /// too (a disk that went bad stays bad, so undo steps fail as well).
    stuck: Vec<Op>,
    failed: bool,
}

pub struct FaultyDisk<D: Disk> {
    inner: D,
    state: Mutex<State>,
}

impl<D: Disk> FaultyDisk<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, state: Mutex::default() }
    }

    /// Fails the `nth` (1-based) call of `op` from now on.
    pub fn arm(&self, op: Op, nth: usize) {
        let mut s = self.state.lock().unwrap();
        *s = State { armed: Some((op, nth)), ..State::default() };
    }

    /// Like [`Self::arm`], and after that failure every call of `stuck` fails.
    pub fn arm_stuck(&self, op: Op, nth: usize, stuck: &[Op]) {
        self.arm(op, nth);
        self.state.lock().unwrap().stuck = stuck.to_vec();
    }

    /// Stops failing and resets the counters.
    pub fn disarm(&self) {
        *self.state.lock().unwrap() = State::default();
    }

    /// Calls of `op` since the last arm/disarm.
    pub fn calls(&self, op: Op) -> usize {
        self.state.lock().unwrap().calls.get(&op).copied().unwrap_or(0)
    }

    /// Whether the armed fault has fired.
    pub fn fired(&self) -> bool {
        self.state.lock().unwrap().failed
    }

    fn should_fail(&self, op: Op) -> bool {
        let mut s = self.state.lock().unwrap();
        let n = {
            let n = s.calls.entry(op).or_default();
            *n += 1;
            *n
        };
        if s.failed && s.stuck.contains(&op) {
            return true;
        }
        if s.armed == Some((op, n)) {
            s.failed = true;
            return true;
        }
        false
    }
}

fn injected(op: Op, path: &Path) -> io::Error {
    io::Error::other(format!("injected {op:?} failure on {}", path.display()))
}

impl<D: Disk> Disk for FaultyDisk<D> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.should_fail(Op::WriteSynced) {
            // Out of space half-way: the partial file stays.
            self.inner.write_synced(path, &data[..data.len() / 2])?;
            return Err(injected(Op::WriteSynced, path));
        }
        self.inner.write_synced(path, data)
    }

    fn append_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.should_fail(Op::AppendSynced) {
            // Written, but the fsync failed: the worst case for an undo.
            self.inner.append_synced(path, data)?;
            return Err(injected(Op::AppendSynced, path));
        }
        self.inner.append_synced(path, data)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.should_fail(Op::Rename) {
            return Err(injected(Op::Rename, from));
        }
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        if self.should_fail(Op::RemoveFile) {
            return Err(injected(Op::RemoveFile, path));
        }
        self.inner.remove_file(path)
    }

    fn list_files(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_files(path)
    }

    fn list_dirs(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dirs(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.should_fail(Op::SyncDir) {
            return Err(injected(Op::SyncDir, path));
        }
        self.inner.sync_dir(path)
    }

    fn blocks(&self) -> bool {
        self.inner.blocks()
    }
}
