//! `tiermail-node bench-proxy`: one tiermail IMAP back-end on loopback,
//! reached three ways in one run — directly, through our IMAP proxy (a
//! second node running only `[proxy.imap]`) and through nginx's mail proxy
//! (its `auth_http` answered by [`auth_http`] in this process):
//! - LOGIN + SELECT INBOX + LOGOUT sessions/s with p50/p99 latency;
//! - `FETCH 1:* BODY.PEEK[]` throughput over a mailbox filled by SMTP;
//! - each proxy's resident memory per idle logged-in connection.
//!
//! Like `bench`, a tool at the binary's edge: it spawns processes, reads the
//! wall clock and /proc, prints figures and asserts nothing.

mod auth_http;
mod imap_load;
mod memory;
mod processes;
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::{ACCOUNT, PASSWORD, SmtpLoad, free_ports, smtp_load};
use auth_http::AuthHttp;
use imap_load::Login;
use memory::FdLimit;
use processes::{Launcher, Nginx, NodeChild};
use report::{Peer, Report};

/// Size of each message in the mailbox, headers included.
const MESSAGE_SIZE: usize = 4096;
/// Idle connections per account: the back-end caps sessions per account.
const IDLE_PER_ACCOUNT: usize = 500;
/// File descriptors a proxy process needs besides two per proxied
/// connection: listeners, logs, epoll, logins in flight (nginx's auth_http).
const FD_RESERVE: u64 = 100;

/// Options of `tiermail-node bench-proxy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Concurrent client connections for the sessions load (and the mailbox fill).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// LOGIN + SELECT INBOX + LOGOUT sessions per path.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Messages of 4 KiB delivered by SMTP before the run; `FETCH 1:*` reads them all.
    #[arg(long, value_name = "MESSAGES", default_value_t = 500)]
    mailbox: usize,
    /// Idle logged-in connections held through each proxy for the memory
    /// figures, as increasing levels; 0 skips the memory phase.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', default_values_t = [1000, 10000])]
    idle: Vec<usize>,
    /// Skip the comparison with nginx.
    #[arg(long)]
    no_nginx: bool,
}

impl Args {
    /// The idle levels, ascending; an error names the bad flag.
    fn check(&self) -> anyhow::Result<Vec<usize>> {
        if self.connections == 0 || self.sessions == 0 || self.mailbox == 0 {
            bail!("--connections, --sessions and --mailbox must be at least 1");
        }
        if self.idle == [0] {
            return Ok(Vec::new());
        }
        if self.idle.contains(&0) {
            bail!("--idle: 0 alone skips the memory phase; otherwise every level must be at least 1");
        }
        let mut levels = self.idle.clone();
        levels.sort_unstable();
        levels.dedup();
        Ok(levels)
    }
}

/// Runs the bench; errors are printed, not panicked.
pub fn main(args: Args) -> ExitCode {
    match Launcher::this_binary().and_then(|launcher| run(&args, &launcher)) {
        Ok(report) => {
            report.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tiermail-node bench-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Idle levels a proxy process can hold within `limit` (two descriptors per
/// proxied connection), and why some were lowered.
fn cap_levels(levels: &[usize], limit: FdLimit) -> (Vec<usize>, Option<String>) {
    let max = (limit.soft.saturating_sub(FD_RESERVE) / 2) as usize;
    let mut capped: Vec<usize> = levels.iter().map(|&n| n.min(max)).filter(|&n| n > 0).collect();
    capped.dedup();
    let Some(&highest) = levels.last().filter(|&&n| n > max) else { return (capped, None) };
    let hard = if limit.hard == u64::MAX { "unlimited".to_string() } else { limit.hard.to_string() };
    let note = format!(
        "{highest} idle connections need about {} file descriptors in each proxy process (one to the client, one \
         to the back-end, plus {FD_RESERVE} spare) but RLIMIT_NOFILE is {} (hard limit {hard}; raising the hard \
         limit needs root with CAP_SYS_RESOURCE): the highest level measured is {max}",
        2 * highest as u64 + FD_RESERVE,
        limit.soft
    );
    (capped, Some(note))
}

/// The accounts idle connections log in as, `IDLE_PER_ACCOUNT` each.
fn idle_accounts(levels: &[usize]) -> Vec<String> {
    let most = levels.last().copied().unwrap_or(0);
    (0..most.div_ceil(IDLE_PER_ACCOUNT)).map(|i| format!("idle-{i}@example.com")).collect()
}

/// nginx in front of `backend` with its auth_http responder (which needs
/// a tokio runtime entered), or why the comparison will not run.
fn start_nginx(
    dir: &std::path::Path,
    backend: SocketAddr,
    listen: SocketAddr,
    fd_limit: FdLimit,
) -> anyhow::Result<(Option<AuthHttp>, Peer<Nginx>)> {
    let binary = match processes::find_nginx() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("bench-proxy: nginx comparison skipped: {why}");
            return Ok((None, Peer::Skipped(why)));
        }
    };
    let auth = AuthHttp::start(backend)?;
    eprintln!("bench-proxy: starting nginx (auth_http on {})", auth.addr);
    match Nginx::start(&binary, dir, listen, auth.addr, fd_limit.soft) {
        Ok(nginx) => Ok((Some(auth), Peer::Ran(nginx))),
        Err(e) => {
            eprintln!("bench-proxy: nginx did not start: {e:#}");
            Ok((Some(auth), Peer::Failed(format!("{e:#}"))))
        }
    }
}

/// Starts the processes, runs every phase, stops the processes; what is
/// started is stopped on every exit path by its drop guard.
fn run(args: &Args, launcher: &Launcher) -> anyhow::Result<Report> {
    let levels = args.check()?;
    let want = levels.last().map_or(0, |&n| 2 * n as u64 + FD_RESERVE);
    let fd_limit = memory::raise_fd_limit(want)?;
    let (levels, idle_note) = cap_levels(&levels, fd_limit);
    if let Some(note) = &idle_note {
        eprintln!("bench-proxy: {note}");
    }
    let dir = tempfile::Builder::new().prefix("tiermail-bench-proxy-").tempdir().context("cannot create a temp dir")?;
    let [smtp_port, imap_port, proxy_port, nginx_port] = free_ports()?;
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (smtp, backend, proxy_addr, nginx_addr) =
        (loopback(smtp_port), loopback(imap_port), loopback(proxy_port), loopback(nginx_port));
    let idle_accounts = idle_accounts(&levels);
    let max_sessions = (2 * IDLE_PER_ACCOUNT).max(2 * args.connections + 16);

    eprintln!("bench-proxy: starting the back-end node, data in {}", dir.path().display());
    let config = processes::backend_config(smtp, backend, &idle_accounts, max_sessions);
    let mut backend_node = NodeChild::start(launcher, dir.path(), "backend", &config, &[], &[smtp, backend])?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let fill = SmtpLoad { rcpt: ACCOUNT, messages: args.mailbox, size: MESSAGE_SIZE, connections: args.connections };
    let filled = runtime.block_on(smtp_load("mailbox fill", smtp, &fill));
    if filled.failed > 0 {
        bail!(
            "mailbox fill: {} of {} messages failed; first: {}",
            filled.failed,
            args.mailbox,
            filled.samples.join(" | ")
        );
    }

    eprintln!("bench-proxy: starting our IMAP proxy");
    let users = processes::user_map(ACCOUNT, &idle_accounts, backend);
    let config = processes::proxy_config(proxy_addr, backend.port());
    let mut proxy = NodeChild::start(launcher, dir.path(), "proxy", &config, &[("users.map", &users)], &[proxy_addr])?;

    let (auth, mut nginx) = if args.no_nginx {
        (None, Peer::Skipped("--no-nginx".into()))
    } else {
        let _entered = runtime.enter();
        start_nginx(dir.path(), backend, nginx_addr, fd_limit)?
    };

    let main_login = Login { user: ACCOUNT.to_string(), password: PASSWORD };
    let mut targets = vec![("direct".to_string(), backend), ("tiermail proxy".to_string(), proxy_addr)];
    if let Peer::Ran(n) = &nginx {
        targets.push((n.label.clone(), n.addr));
    }
    let paths = runtime.block_on(imap_load::measure(targets, &main_login, args));

    let mut memory = Vec::new();
    if !levels.is_empty() {
        let mut proxies = vec![("tiermail proxy".to_string(), proxy_addr, proxy.pid())];
        if let Peer::Ran(n) = &nginx {
            proxies.push((format!("{} (master + worker)", n.label), n.addr, n.pid()));
        }
        for (label, addr, pid) in proxies {
            let held = memory::Held { addr, pid, accounts: &idle_accounts, password: PASSWORD };
            let run = runtime.block_on(memory::idle_memory(&label, &held, &levels));
            memory.push((label, run.map_err(|e| format!("{e:#}"))));
        }
    }

    let mut warnings = Vec::new();
    if let Peer::Ran(n) = &mut nginx {
        warnings.extend(n.stop().err().map(|e| format!("{e:#}")));
        if paths.last().is_some_and(|p| p.sessions.failed > 0 || p.fetch.is_err()) {
            warnings.push(format!("nginx's error log ends with:\n{}", n.log_tail()));
        }
    }
    for node in [&mut proxy, &mut backend_node] {
        warnings.extend(node.stop().err().map(|e| format!("{e:#}")));
    }
    let nginx = nginx.without_process();
    let auth_requests = auth.map(|a| a.served.load(std::sync::atomic::Ordering::Relaxed));
    Ok(Report { args: report::Settings::of(args), paths, nginx, auth_requests, memory, idle_note, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(idle: &[usize]) -> Args {
        Args { connections: 8, sessions: 10, mailbox: 10, idle: idle.to_vec(), no_nginx: true }
    }

    #[test]
    fn bad_flags_are_refused_with_their_names() {
        let zero = Args { sessions: 0, ..args(&[10]) };
        assert!(zero.check().unwrap_err().to_string().contains("--sessions"));
        assert!(args(&[10, 0]).check().unwrap_err().to_string().contains("--idle"));
        assert_eq!(args(&[0]).check().unwrap(), Vec::<usize>::new(), "0 alone skips the memory phase");
        assert_eq!(args(&[10000, 1000, 1000]).check().unwrap(), vec![1000, 10000]);
    }

    #[test]
    fn idle_levels_beyond_the_fd_limit_are_lowered_and_explained() {
        let limit = FdLimit { soft: 20000, hard: 20000 };
        let (levels, note) = cap_levels(&[1000, 10000], limit);
        assert_eq!(levels, vec![1000, 9950]);
        let note = note.expect("explained");
        assert!(note.contains("10000 idle connections need about 20100"), "{note}");
        assert!(note.contains("highest level measured is 9950"), "{note}");
        assert_eq!(cap_levels(&[50], limit), (vec![50], None));
        let tiny = FdLimit { soft: 1024, hard: 1024 };
        assert_eq!(cap_levels(&[1000, 10000], tiny).0, vec![462], "both levels lowered to one");
    }

    #[test]
    fn idle_accounts_hold_at_most_their_share() {
        assert_eq!(idle_accounts(&[]), Vec::<String>::new());
        assert_eq!(idle_accounts(&[50]), vec!["idle-0@example.com"]);
        assert_eq!(idle_accounts(&[1000, 9950]).len(), 20);
    }

    /// Runs the whole bench with tiny numbers: back-end, our proxy and
    /// (when installed) nginx, every figure present and no session failed.
    #[test]
    fn smoke_run_with_tiny_numbers() {
        let args = Args { connections: 4, sessions: 20, mailbox: 20, idle: vec![50], no_nginx: false };
        let report = run(&args, &processes::tests::launcher()).expect("the bench runs");
        report.print();
        for path in &report.paths {
            assert_eq!(
                (path.sessions.ok, path.sessions.failed),
                (20, 0),
                "{}: {:?}",
                path.label,
                path.sessions.samples
            );
            let fetch = path.fetch.as_ref().unwrap_or_else(|e| panic!("{}: fetch failed: {e}", path.label));
            assert!(fetch.bytes >= (20 * MESSAGE_SIZE) as u64, "{}", path.label);
        }
        for (label, run) in &report.memory {
            let run = run.as_ref().unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(run.levels[0].reached, 50, "{label}: {:?}", run.levels[0].error);
        }
        let required = std::env::var("TIERMAIL_REQUIRE_PEERS").is_ok();
        match &report.nginx {
            Peer::Ran(()) => assert_eq!((report.paths.len(), report.memory.len()), (3, 2)),
            Peer::Skipped(why) => assert!(!required, "nginx is required (TIERMAIL_REQUIRE_PEERS is set): {why}"),
            Peer::Failed(why) => assert!(!required, "nginx did not start: {why}"),
        }
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }
}
