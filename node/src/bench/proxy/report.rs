//! What `bench-proxy` measured, and its printed tables.

use super::imap_load::{FETCH_ROUNDS, FetchRun, SessionsRun};
use super::memory::MemoryRun;
use super::{Args, MESSAGE_SIZE};
use crate::bench::percentile;

/// What became of the nginx comparison; `T` is the running process, `()`
/// once it has stopped.
pub(super) enum Peer<T> {
    Ran(T),
    Skipped(String),
    Failed(String),
}

impl<T> Peer<T> {
    pub(super) fn without_process(self) -> Peer<()> {
        match self {
            Peer::Ran(_) => Peer::Ran(()),
            Peer::Skipped(why) => Peer::Skipped(why),
            Peer::Failed(why) => Peer::Failed(why),
        }
    }
}

/// The flags the figures depend on.
pub(super) struct Settings {
    connections: usize,
    sessions: usize,
    mailbox: usize,
}

impl Settings {
    pub(super) fn of(args: &Args) -> Self {
        Settings { connections: args.connections.min(args.sessions), sessions: args.sessions, mailbox: args.mailbox }
    }
}

/// The figures of one path: direct, our proxy, nginx.
pub(super) struct PathRun {
    pub(super) label: String,
    pub(super) sessions: SessionsRun,
    pub(super) fetch: Result<FetchRun, String>,
}

impl PathRun {
    fn sessions_per_sec(&self) -> Option<f64> {
        let s = &self.sessions;
        (s.ok > 0).then(|| s.ok as f64 / s.wall.as_secs_f64())
    }

    fn fetch_mb_per_sec(&self) -> Option<f64> {
        self.fetch.as_ref().ok().map(|f| f.bytes as f64 / 1e6 / f.fastest.as_secs_f64())
    }

    fn row(&self) -> String {
        let mut sorted = self.sessions.latencies.clone();
        sorted.sort_unstable();
        let ms = |p| percentile(&sorted, p).map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0));
        let rate = self.sessions_per_sec().map_or("-".into(), |r| format!("{r:.1}"));
        let mb = self.fetch_mb_per_sec().map_or("-".into(), |r| format!("{r:.1}"));
        format!("{:<22} {rate:>10} {:>8} {:>8} {:>7} {mb:>11}", self.label, ms(50.0), ms(99.0), self.sessions.failed)
    }
}

/// Everything one run measured, printed once at the end.
pub(super) struct Report {
    pub(super) args: Settings,
    /// Direct first, then our proxy, then nginx if it ran.
    pub(super) paths: Vec<PathRun>,
    pub(super) nginx: Peer<()>,
    /// Logins nginx asked the bench's auth_http responder about.
    pub(super) auth_requests: Option<usize>,
    /// Per proxy: its label and idle-connection figures.
    pub(super) memory: Vec<(String, Result<MemoryRun, String>)>,
    /// Why the idle levels are lower than asked.
    pub(super) idle_note: Option<String>,
    pub(super) warnings: Vec<String>,
}

/// a / b, when both are known and b is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn shown(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

impl Report {
    pub(super) fn print(&self) {
        let Settings { connections, sessions, mailbox } = self.args;
        let build = if cfg!(debug_assertions) { "debug build: figures not representative" } else { "release build" };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!();
        println!(
            "tiermail bench-proxy ({build}; {cpus} CPUs shared by the client, back-end, proxies and anything else running)"
        );
        println!(
            "sessions: {sessions} x LOGIN + SELECT INBOX + LOGOUT over {connections} connections per path (in rounds, paths in turn); \
             fetch: FETCH 1:* BODY.PEEK[] of {mailbox} x {MESSAGE_SIZE} B, fastest of {FETCH_ROUNDS} in one session"
        );
        println!(
            "{:<22} {:>10} {:>8} {:>8} {:>7} {:>11}",
            "path", "sessions/s", "p50 ms", "p99 ms", "failed", "fetch MB/s"
        );
        for path in &self.paths {
            println!("{}", path.row());
        }
        match &self.nginx {
            Peer::Ran(()) => println!(
                "(nginx: {} auth_http requests answered by the bench, every login sent to the back-end, which checks \
                 the password, as with our proxy's auth = \"backend\"; default proxy buffers)",
                self.auth_requests.unwrap_or(0)
            ),
            Peer::Skipped(why) => println!("nginx comparison skipped: {why}"),
            Peer::Failed(why) => println!("nginx did not start, comparison skipped: {why}"),
        }
        let pairs = [(1, 0, "tiermail-proxy/direct"), (2, 0, "nginx/direct"), (1, 2, "tiermail-proxy/nginx")];
        for (a, b, name) in pairs {
            let (Some(a), Some(b)) = (self.paths.get(a), self.paths.get(b)) else { continue };
            let sessions = ratio(a.sessions_per_sec(), b.sessions_per_sec());
            let fetch = ratio(a.fetch_mb_per_sec(), b.fetch_mb_per_sec());
            println!("ratio {name}: sessions/s {}, fetch MB/s {}", shown(sessions), shown(fetch));
        }
        for path in &self.paths {
            if path.sessions.failed > 0 {
                println!(
                    "{}: {} sessions failed; first: {}",
                    path.label,
                    path.sessions.failed,
                    path.sessions.samples.join(" | ")
                );
            }
            if let Err(e) = &path.fetch {
                println!("{}: fetch failed: {e}", path.label);
            }
        }
        self.print_memory();
        for warning in &self.warnings {
            println!("warning: {warning}");
        }
    }

    fn print_memory(&self) {
        if self.memory.is_empty() {
            return;
        }
        println!();
        println!("memory per idle logged-in connection: (RSS with N connections - idle RSS) / N");
        println!("{:<32} {:>9} {:>7} {:>9} {:>10}", "proxy", "idle MiB", "N", "RSS MiB", "KiB/conn");
        let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
        for (label, run) in &self.memory {
            let run = match run {
                Ok(run) => run,
                Err(e) => {
                    println!("{label}: memory phase failed: {e}");
                    continue;
                }
            };
            for level in &run.levels {
                let per = shown(level.per_connection_kib(run.baseline_kib));
                println!(
                    "{label:<32} {:>9} {:>7} {:>9} {per:>10}",
                    mib(run.baseline_kib),
                    level.reached,
                    mib(level.rss_kib)
                );
            }
            for level in run.levels.iter().filter(|l| l.error.is_some()) {
                let why = level.error.as_deref().unwrap_or_default();
                println!("{label}: stopped at {} of {} connections: {why}", level.reached, level.target);
            }
        }
        if let [(_, Ok(ours)), (_, Ok(nginx))] = &self.memory[..] {
            for (a, b) in ours.levels.iter().zip(&nginx.levels).filter(|(a, b)| a.reached == b.reached) {
                let r = ratio(a.per_connection_kib(ours.baseline_kib), b.per_connection_kib(nginx.baseline_kib));
                println!("ratio tiermail-proxy/nginx KiB per connection at N={}: {}", a.reached, shown(r));
            }
        }
        if let Some(note) = &self.idle_note {
            println!("note: {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_need_both_figures_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(3.0), None), None);
        assert_eq!(shown(Some(0.456)), "0.46");
        assert_eq!(shown(None), "-");
    }
}
