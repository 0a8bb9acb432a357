//! The disk seam: the Maildir store does all file work through [`Disk`].
//! [`RealDisk`] is `std::fs` with real fsyncs; [`SimDisk`] is turmoil's
//! simulated filesystem (feature `unstable-fs`), whose unsynced writes and
//! unsynced directory entries vanish when the simulation crashes the host.
//!
//! Why turmoil's filesystem rather than our own model: it already models the
//! POSIX rules the store depends on (a file's data is durable after
//! `fsync(file)`, its name only after `fsync(dir)`, a rename likewise), it is
//! wired into `Sim::crash`, and it offers capacity limits, I/O error rates and
//! latency that the simulator's disk faults can use. Both implementations are
//! generated from one macro over the two module paths, because turmoil's shim
//! mirrors `std::fs` call for call; the store cannot tell them apart.

use std::io;
use std::path::Path;

/// Filesystem operations the mail store needs, each with the durability it
/// promises spelled out.
pub trait Disk: Send + Sync + 'static {
    /// Creates `path` and its parents (not durable until the parent is synced).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates or truncates `path`, writes `data` and fsyncs the file's data.
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Appends `data` to `path` (created if missing) and fsyncs the file's data.
    fn append_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The length of a file in bytes.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Renames a file (durable once both parents are synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable once the parent is synced).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names of the regular files in a directory, sorted.
    fn list_files(&self, path: &Path) -> io::Result<Vec<String>>;
    /// The names of the subdirectories of a directory, sorted.
    fn list_dirs(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Removes an empty directory (durable once the parent is synced).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory, making the entries created, renamed or removed in
    /// it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Whether calls block the calling thread on real I/O, so async callers
    /// must move them off the runtime's worker threads.
    fn blocks(&self) -> bool;
}

macro_rules! fs_disk {
    ($(#[$doc:meta])* $name:ident, $fs:path, blocks = $blocks:expr, sync_dir = $sync_dir:expr) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $name;

        impl Disk for $name {
            fn create_dir_all(&self, path: &Path) -> io::Result<()> {
                use $fs as fs;
                fs::create_dir_all(path)
            }

            fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
                use $fs as fs;
                use std::io::Write;
                let mut file = fs::File::create(path)?;
                file.write_all(data)?;
                #[cfg(feature = "sim-bugs")]
                if crate::bugs::active(crate::bugs::Bug::AckBeforeFsync) {
                    return Ok(());
                }
                file.sync_all()
            }

            fn append_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
                use $fs as fs;
                use std::io::Write;
                let mut file = fs::OpenOptions::new().create(true).append(true).open(path)?;
                file.write_all(data)?;
                #[cfg(feature = "sim-bugs")]
                if crate::bugs::active(crate::bugs::Bug::AckBeforeFsync)
                    || crate::bugs::active(crate::bugs::Bug::UidListNotSynced)
                {
                    return Ok(());
                }
                file.sync_all()
            }

            fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
                use $fs as fs;
                fs::read(path)
            }

            fn len(&self, path: &Path) -> io::Result<u64> {
                use $fs as fs;
                Ok(fs::metadata(path)?.len())
            }

            fn exists(&self, path: &Path) -> bool {
                use $fs as fs;
                fs::metadata(path).is_ok()
            }

            fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
                use $fs as fs;
                fs::rename(from, to)
            }

            fn remove_file(&self, path: &Path) -> io::Result<()> {
                use $fs as fs;
                fs::remove_file(path)
            }

            fn list_files(&self, path: &Path) -> io::Result<Vec<String>> {
                use $fs as fs;
                let mut names = Vec::new();
                for entry in fs::read_dir(path)? {
                    let entry = entry?;
                    if entry.file_type()?.is_file() {
                        if let Ok(name) = entry.file_name().into_string() {
                            names.push(name);
                        }
                    }
                }
                names.sort();
                Ok(names)
            }

            fn list_dirs(&self, path: &Path) -> io::Result<Vec<String>> {
                use $fs as fs;
                let mut names = Vec::new();
                for entry in fs::read_dir(path)? {
                    let entry = entry?;
                    if entry.file_type()?.is_dir() {
                        if let Ok(name) = entry.file_name().into_string() {
                            names.push(name);
                        }
                    }
                }
                names.sort();
                Ok(names)
            }

            fn remove_dir(&self, path: &Path) -> io::Result<()> {
                use $fs as fs;
                fs::remove_dir(path)
            }

            fn sync_dir(&self, path: &Path) -> io::Result<()> {
                #[cfg(feature = "sim-bugs")]
                if crate::bugs::active(crate::bugs::Bug::AckBeforeFsync) {
                    return Ok(());
                }
                ($sync_dir)(path)
            }

            fn blocks(&self) -> bool {
                $blocks
            }
        }
    };
}

fs_disk!(
    /// The real filesystem, with real fsyncs.
    RealDisk,
    std::fs,
    blocks = true,
    sync_dir = |path: &Path| std::fs::File::open(path)?.sync_all()
);

fs_disk!(
    /// turmoil's simulated filesystem; only usable inside a turmoil host.
    SimDisk,
    turmoil::fs::shim::std::fs,
    blocks = false,
    sync_dir = |path: &Path| turmoil::fs::shim::std::fs::sync_dir(path)
);
