//! Node processes: finding the binary, checking ports, spawning, waiting
//! until a node's ports accept.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a node may take until all its ports accept.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The `tiermail-node` binary next to this one.
pub fn node_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let node = exe.with_file_name("tiermail-node");
    if !node.is_file() {
        bail!(
            "{} not found: build it first with `cargo build -p tiermail-node` (same profile as tiermail-sim)",
            node.display()
        );
    }
    Ok(node)
}

/// Fails, naming the address and what it is for, if any is already taken.
pub fn check_free(addresses: &[(String, SocketAddr)]) -> Result<()> {
    for (what, addr) in addresses {
        if let Err(e) = TcpListener::bind(addr) {
            bail!(
                "cannot start the cluster: {addr} ({what}) is not available: {e}. Is another cluster or mail \
                 server running? Stop it, or choose other addresses with --ip-base / --ldap"
            );
        }
    }
    Ok(())
}

/// Starts `tiermail-node --config CONFIG`, output appended to `log`. The
/// child gets its own process group (a terminal's Ctrl-C reaches only
/// `cluster up`, which stops nodes in order) and, when `tie_to_parent`,
/// SIGTERM if its parent dies.
pub fn spawn(binary: &Path, config: &Path, log: &Path, tie_to_parent: bool) -> Result<Child> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config").arg(config).env("NO_COLOR", "1").stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    if tie_to_parent {
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().with_context(|| format!("cannot start {}", binary.display()))
}

/// Waits until every address accepts a connection. `exited` is polled
/// between attempts: Some(reason) means the node died and waiting stops.
pub fn wait_ready(
    name: &str,
    addresses: &[SocketAddr],
    log: &Path,
    deadline: Instant,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    for addr in addresses {
        loop {
            if TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Some(reason) = exited() {
                bail!(
                    "node {name} {reason} before {addr} accepted; last lines of {}:\n{}",
                    log.display(),
                    tail(log, 15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {name}: {addr} did not accept within {} s; last lines of {}:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log.display(),
                    tail(log, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// The last `n` lines of a file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| format!("  | {l}\n")).collect()
}

/// Resident set size of a process in KiB (Linux /proc).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = check_free(&[("node-x SMTP proxy".into(), addr)]).unwrap_err().to_string();
        assert!(err.contains(&addr.to_string()) && err.contains("node-x SMTP proxy"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), "1\n2\n3\n").unwrap();
        assert_eq!(tail(tmp.path(), 2), "  | 2\n  | 3\n");
    }
}
