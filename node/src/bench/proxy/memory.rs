//! What a proxy spends per idle logged-in connection: the resident memory
//! (VmRSS) of its process and its children (nginx's workers) with N clients
//! logged in through it, minus its idle baseline, over N. Also the file
//! descriptor limit those N connections need (two each in the proxy).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::imap_load::{ImapSession, Login};
use crate::bench::spawn_progress;

/// Pause before each RSS reading: connections settle, freed memory returns.
const SETTLE: Duration = Duration::from_secs(1);
/// Logins in flight while connections are opened.
const OPEN_CONCURRENCY: usize = 32;
/// Longest a single idle login may take before the level is given up.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// RLIMIT_NOFILE; `u64::MAX` stands for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FdLimit {
    pub(super) soft: u64,
    pub(super) hard: u64,
}

/// Raises this process's RLIMIT_NOFILE (children inherit it) towards
/// `want`: past the hard limit if allowed (root with CAP_SYS_RESOURCE),
/// else up to it. Returns the limit now in force.
pub(super) fn raise_fd_limit(want: u64) -> anyhow::Result<FdLimit> {
    let current = fd_limit()?;
    if current.soft >= want {
        return Ok(current);
    }
    if current.hard < want && set_fd_limit(want, want) {
        return fd_limit();
    }
    if current.soft < current.hard && !set_fd_limit(current.hard, current.hard) {
        eprintln!("bench-proxy: warning: could not raise RLIMIT_NOFILE; staying at {}", current.soft);
    }
    fd_limit()
}

fn set_fd_limit(soft: u64, hard: u64) -> bool {
    // On Linux rlim_t is u64 and RLIM_INFINITY is u64::MAX, FdLimit's "unlimited".
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads a valid, initialised rlimit struct.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

fn fd_limit() -> anyhow::Result<FdLimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    Ok(FdLimit { soft: limit.rlim_cur, hard: limit.rlim_max })
}

/// VmRSS in KiB, from /proc/PID/status text.
fn vm_rss_kib(status: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = value.split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// The parent pid, from /proc/PID/stat text (the command name, in
/// parentheses, may itself hold spaces and parentheses).
fn parent_pid(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    fields.next()?; // state
    fields.next()?.parse().ok()
}

/// The processes whose parent is `pid`.
pub(super) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|s| parent_pid(&s) == Some(pid))
        })
        .collect()
}

/// VmRSS of `pid` plus its children's, in KiB.
fn tree_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for p in std::iter::once(pid).chain(children_of(pid)) {
        let path = format!("/proc/{p}/status");
        match std::fs::read_to_string(&path) {
            Ok(status) => total += vm_rss_kib(&status).with_context(|| format!("no VmRSS in {path}"))?,
            // A child may exit between the listing and the read.
            Err(_) if p != pid => {}
            Err(e) => bail!("cannot read {path}: {e}"),
        }
    }
    Ok(total)
}

/// A proxy to hold connections through, and who logs in.
pub(super) struct Held<'a> {
    pub(super) addr: SocketAddr,
    pub(super) pid: u32,
    pub(super) accounts: &'a [String],
    pub(super) password: &'static str,
}

/// RSS with `reached` connections logged in, for a level of `target`.
pub(super) struct IdleLevel {
    pub(super) target: usize,
    pub(super) reached: usize,
    pub(super) rss_kib: u64,
    /// Why fewer than `target` connections could be opened.
    pub(super) error: Option<String>,
}

/// One proxy's memory phase: its idle RSS, then each level.
pub(super) struct MemoryRun {
    pub(super) baseline_kib: u64,
    pub(super) levels: Vec<IdleLevel>,
}

impl IdleLevel {
    /// RSS growth per connection over `baseline`, in KiB.
    pub(super) fn per_connection_kib(&self, baseline_kib: u64) -> Option<f64> {
        (self.reached > 0).then(|| (self.rss_kib as f64 - baseline_kib as f64) / self.reached as f64)
    }
}

/// Reads the baseline, then for each level opens connections up to it
/// (keeping the earlier ones), lets them settle and reads the RSS. Stops
/// at the first level that cannot be reached; closes everything at the end.
pub(super) async fn idle_memory(label: &str, held: &Held<'_>, levels: &[usize]) -> anyhow::Result<MemoryRun> {
    tokio::time::sleep(SETTLE).await;
    let baseline_kib = tree_rss_kib(held.pid)?;
    let mut open: Vec<ImapSession> = Vec::new();
    let mut run = MemoryRun { baseline_kib, levels: Vec::new() };
    for &target in levels {
        eprintln!("bench-proxy: {label}: opening idle logged-in connections up to {target}");
        let error = open_up_to(held, &mut open, target).await.err().map(|e| format!("{e:#}"));
        tokio::time::sleep(SETTLE).await;
        let rss_kib = tree_rss_kib(held.pid)?;
        let stop = error.is_some();
        run.levels.push(IdleLevel { target, reached: open.len(), rss_kib, error });
        if stop {
            break;
        }
    }
    drop(open);
    // The proxy and the back-end close their sides before the next proxy.
    tokio::time::sleep(SETTLE).await;
    Ok(run)
}

/// Logs in more connections until `open` holds `target`; an error (the
/// first failure) leaves the ones that did log in.
async fn open_up_to(held: &Held<'_>, open: &mut Vec<ImapSession>, target: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(open.len()));
    let done = Arc::new(AtomicUsize::new(open.len()));
    let failed = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress("bench-proxy", "idle connections", done.clone(), target);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..OPEN_CONCURRENCY {
        let (next, done, failed, addr) = (next.clone(), done.clone(), failed.clone(), held.addr);
        let accounts: Arc<[String]> = held.accounts.into();
        let password = held.password;
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= target || failed.load(Ordering::Relaxed) {
                    return (mine, None);
                }
                let login = Login { user: accounts[i % accounts.len()].clone(), password };
                match tokio::time::timeout(LOGIN_TIMEOUT, ImapSession::login(addr, &login)).await {
                    Ok(Ok(session)) => mine.push(session),
                    Ok(Err(e)) => return (mine, Some(format!("login {} failed: {e:#}", i + 1))),
                    Err(_) => return (mine, Some(format!("login {} took over {LOGIN_TIMEOUT:?}", i + 1))),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (sessions, error) = joined.unwrap_or_else(|e| (Vec::new(), Some(format!("client task failed: {e}"))));
        open.extend(sessions);
        if error.is_some() {
            failed.store(true, Ordering::Relaxed);
            first_error = first_error.or(error);
        }
    }
    progress.abort();
    match first_error {
        Some(e) => bail!("{} of {target} connections logged in; {e}", open.len()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_comes_from_the_vmrss_line() {
        let status = "Name:\tnginx\nVmPeak:\t   12000 kB\nVmRSS:\t    4321 kB\nRssAnon:\t 1000 kB\n";
        assert_eq!(vm_rss_kib(status), Some(4321));
        assert_eq!(vm_rss_kib("Name:\tkthreadd\nState:\tS (sleeping)\n"), None, "kernel threads have none");
        assert_eq!(vm_rss_kib("VmRSS:\t12 MB\n"), None, "unknown unit");
    }

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_pid("4242 (nginx) S 4241 4241 1 0 -1"), Some(4241));
        assert_eq!(parent_pid("77 (a (b) c) R 1 77 77 0"), Some(1));
        assert_eq!(parent_pid("77 nginx S 1"), None);
    }

    #[test]
    fn fd_limits_round_trip_through_setrlimit() {
        let now = fd_limit().unwrap();
        assert!(now.soft <= now.hard && now.soft > 0, "{now:?}");
        // Setting what is already in force always succeeds.
        assert!(set_fd_limit(now.soft, now.hard));
        assert_eq!(fd_limit().unwrap(), now);
        assert_eq!(libc::RLIM_INFINITY, u64::MAX, "FdLimit's unlimited");
    }

    #[test]
    fn per_connection_memory_is_growth_over_the_baseline() {
        let level = |reached, rss_kib| IdleLevel { target: 1000, reached, rss_kib, error: None };
        assert_eq!(level(1000, 30_000).per_connection_kib(10_000), Some(20.0));
        assert_eq!(level(0, 10_000).per_connection_kib(10_000), None);
        assert_eq!(level(100, 9_900).per_connection_kib(10_000), Some(-1.0), "a shrink shows as such");
    }

    #[test]
    fn this_process_has_an_rss_and_an_fd_limit() {
        assert!(tree_rss_kib(std::process::id()).unwrap() > 0);
        assert!(fd_limit().unwrap().soft > 0);
    }
}
