//! Faults applied to a running simulation and healed again: crash and
//! restart, partitions (one-way too), directory outages, latency, message
//! loss, disk faults. Every fault applied bumps a counter, so a run proves
//! which fault classes actually fired ("sometimes" assertions).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tiermail_node::store::Disk;

use crate::ldap_server::{DirectoryControl, Mode};
use crate::scenario::{DirectoryFault, DiskFault, Fault};

/// How slow a "slow" directory is: beyond the nodes' 2 s lookup timeout.
pub const SLOW_DIRECTORY: Duration = Duration::from_secs(8);
/// turmoil's default maximum message latency, restored when a latency
/// fault heals.
pub const DEFAULT_MAX_LATENCY: Duration = Duration::from_millis(100);

/// A disk that can be told to refuse writes (read-only or full), wrapping
/// the simulated disk. Reads always work.
pub struct FaultyDisk<D> {
    pub inner: D,
    pub control: DiskControl,
}

/// The switch shared by a [`FaultyDisk`] and the fault schedule.
#[derive(Debug, Clone, Default)]
pub struct DiskControl(Arc<AtomicU8>);

impl DiskControl {
    pub fn set(&self, fault: Option<DiskFault>) {
        let v = match fault {
            None => 0,
            Some(DiskFault::ReadOnly) => 1,
            Some(DiskFault::Full) => 2,
        };
        self.0.store(v, Ordering::Relaxed);
    }

    fn check(&self) -> io::Result<()> {
        match self.0.load(Ordering::Relaxed) {
            0 => Ok(()),
            1 => Err(io::Error::from_raw_os_error(libc::EROFS)),
            _ => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
        }
    }
}

impl<D: Disk> Disk for FaultyDisk<D> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if !self.inner.exists(path) {
            self.control.check()?;
        }
        self.inner.create_dir_all(path)
    }
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.control.check()?;
        self.inner.write_synced(path, data)
    }
    fn append_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.control.check()?;
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
        self.control.check()?;
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.control.check()?;
        self.inner.remove_file(path)
    }
    fn list_files(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_files(path)
    }
    fn list_dirs(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dirs(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.control.check()?;
        self.inner.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn blocks(&self) -> bool {
        self.inner.blocks()
    }
}

/// The simulator's handles on the hosts faults act on.
pub struct Controls {
    /// Every host of the simulation.
    pub hosts: Vec<String>,
    pub directories: BTreeMap<String, DirectoryControl>,
    pub disks: BTreeMap<String, DiskControl>,
}

/// Counts of faults applied, by class.
pub type Fired = BTreeMap<String, u64>;

/// Applies `fault` to the simulation. `partitions` are the partition
/// faults in force (a crash must leave them in force).
pub fn apply(sim: &mut turmoil::Sim<'_>, controls: &Controls, fault: &Fault, partitions: &[&Fault], fired: &mut Fired) {
    match fault {
        Fault::Crash { host } => crash(sim, controls, host, partitions),
        Fault::Freeze { host } => {
            for other in controls.hosts.iter().filter(|h| *h != host) {
                sim.hold(host.as_str(), other.as_str());
            }
        }
        Fault::Partition { a, b, oneway: false } => sim.partition(a.as_str(), b.as_str()),
        Fault::Partition { a, b, oneway: true } => sim.partition_oneway(a.as_str(), b.as_str()),
        Fault::Directory { host, mode } => {
            let mode = match mode {
                DirectoryFault::Down => Mode::Down,
                DirectoryFault::Hang => Mode::Hang,
                DirectoryFault::Slow => Mode::Slow(SLOW_DIRECTORY),
                DirectoryFault::Error => Mode::Error,
            };
            if let Some(control) = controls.directories.get(host) {
                control.set_mode(mode);
            }
        }
        Fault::Latency { a, b, ms } => sim.set_link_latency(a.as_str(), b.as_str(), Duration::from_millis(*ms)),
        Fault::Loss { a, b, rate } => sim.set_link_fail_rate(a.as_str(), b.as_str(), *rate),
        Fault::Disk { host, mode } => {
            if let Some(control) = controls.disks.get(host) {
                control.set(Some(*mode));
            }
        }
    }
    *fired.entry(fault.class()).or_default() += 1;
}

/// Crashes `host` like a power cut: it sends nothing more. turmoil would
/// otherwise send a FIN for every socket the crash drops, in the order
/// tokio drops the host's tasks, which follows process-global task ids:
/// a second run in the same process would see them in another order. So
/// the host is cut off while it crashes (its farewells are lost, as they
/// would be), then reconnected; peers learn of the crash when they next
/// send (RST from the restarted host) or time out. Teardown events are
/// left out of the event log for the same reason.
pub fn crash(sim: &mut turmoil::Sim<'_>, controls: &Controls, host: &str, partitions: &[&Fault]) {
    let others: Vec<&str> = controls.hosts.iter().map(String::as_str).filter(|h| *h != host).collect();
    for other in &others {
        sim.partition(host, *other);
    }
    crate::trace::uncaptured(|| sim.crash(host));
    for other in &others {
        sim.repair(host, *other);
    }
    for fault in partitions {
        match fault {
            Fault::Partition { a, b, oneway: false } => sim.partition(a.as_str(), b.as_str()),
            Fault::Partition { a, b, oneway: true } => sim.partition_oneway(a.as_str(), b.as_str()),
            _ => {}
        }
    }
}

/// Undoes `fault`.
pub fn heal(sim: &mut turmoil::Sim<'_>, controls: &Controls, fault: &Fault) {
    match fault {
        Fault::Crash { host } => sim.bounce(host.as_str()),
        Fault::Freeze { host } => {
            for other in controls.hosts.iter().filter(|h| *h != host) {
                sim.release(host.as_str(), other.as_str());
            }
        }
        Fault::Partition { a, b, oneway: false } => sim.repair(a.as_str(), b.as_str()),
        Fault::Partition { a, b, oneway: true } => sim.repair_oneway(a.as_str(), b.as_str()),
        Fault::Directory { host, .. } => {
            if let Some(control) = controls.directories.get(host) {
                control.set_mode(Mode::Normal);
            }
        }
        Fault::Latency { a, b, .. } => {
            sim.set_link_latency(a.as_str(), b.as_str(), Duration::ZERO);
            sim.set_link_max_message_latency(a.as_str(), b.as_str(), DEFAULT_MAX_LATENCY);
        }
        Fault::Loss { a, b, .. } => {
            sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.0);
            sim.repair(a.as_str(), b.as_str());
        }
        Fault::Disk { host, .. } => {
            if let Some(control) = controls.disks.get(host) {
                control.set(None);
            }
        }
    }
}
