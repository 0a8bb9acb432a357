//! `tiermail-node bench-ldap`: route lookups/s and logins/s of our LDAP
//! user-map code (`UserMap` over `Ldap3Ops`, kind `ldap-password`) against a
//! real OpenLDAP slapd, with the result cache off and on, next to a raw
//! ldap3 search loop (slapd's own pace, without our code).
//!
//! A tool at the binary's edge: it spawns slapd and reads the wall clock.
//! It prints figures and asserts nothing about them.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use ldap3::{LdapConnAsync, SearchOptions};
use tiermail_node::directory::ldap::Connector;
use tiermail_node::directory::ldap::ldap3_ops::Ldap3Ops;
use tiermail_node::directory::settings::{
    DEFAULT_NEGATIVE_TTL_SECS, DEFAULT_OPENLDAP_PATTERN, DEFAULT_POOL_SIZE, DEFAULT_POSITIVE_TTL_SECS,
    DirectorySettings, ServerType, UserMapSection,
};
use tiermail_node::directory::usermap::{AuthResult, Route, UserMap};
use tiermail_node::net::BoxFuture;

use super::{ChildGuard, FAILURE_SAMPLES, find_program, free_ports, wait_for_port};

/// The fixture directory, compiled in: a shipped binary has no repository.
const FIXTURE_LDIF: &str = include_str!("../../../fixtures/directory.ldif");
const PEOPLE: &str = "ou=people,dc=example,dc=com";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
const ADMIN_PASSWORD: &str = "admin-secret";
/// Route lookups cycle through every fixture entry and one unknown login
/// (a negative answer), with the host each must map to.
const LOOKUPS: [(&str, Option<&str>); 8] = [
    ("alice@example.com", Some("node-a")),
    ("bob@example.com", Some("node-b")),
    ("carol@example.com", Some("node-c")),
    ("dave@example.com", Some("node-a")),
    ("erin@example.com", Some("node-b")),
    ("frank@example.com", Some("node-z")),
    ("mallory@example.com", Some("node-c")),
    ("nobody@example.com", None),
];
/// One fixture user per userPassword scheme: (login, password, scheme).
const LOGINS: [(&str, &str, &str); 5] = [
    ("alice@example.com", "wonderland", "{SSHA}"),
    ("bob@example.com", "builder", "{CRYPT}$6$"),
    ("carol@example.com", "carol-pw", "clear text"),
    ("dave@example.com", "dave-pw", "{SSHA512}"),
    ("erin@example.com", "erin-pw", "{ARGON2}id"),
];
/// Bounds of `--pool-size`, as `[[directory]] pool_size` allows.
const MAX_POOL_SIZE: usize = 256;
/// Linux's USER_HZ: the unit of CPU times in /proc/PID/stat.
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// Options of `tiermail-node bench-ldap`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Client tasks issuing operations at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds per phase; a login phase shares them evenly among the five
    /// password schemes.
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Operations per phase instead of a duration (shared the same way).
    #[arg(long, conflicts_with = "duration_secs")]
    operations: Option<u64>,
    /// `pool_size` of the generated `[[directory]]`: bound connections to
    /// slapd, and the most operations in flight.
    #[arg(long, default_value_t = DEFAULT_POOL_SIZE)]
    pool_size: usize,
}

/// Runs the bench; errors are printed, not panicked. Fails if slapd is
/// missing or any operation failed.
pub fn main(args: Args) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init().ok();
    match run(&args) {
        Ok(report) => {
            report.print(&args);
            let failed = report.rows.iter().map(|r| r.errors).sum::<u64>();
            if failed == 0 {
                return ExitCode::SUCCESS;
            }
            eprintln!("tiermail-node bench-ldap: {failed} operations failed (see the errors column)");
        }
        Err(e) => eprintln!("tiermail-node bench-ldap: {e:#}"),
    }
    ExitCode::FAILURE
}

/// How long a phase (or one run) goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    Time(Duration),
    Ops(u64),
}

impl Budget {
    /// This budget shared evenly by `runs` runs.
    fn share(self, runs: u32) -> Budget {
        match self {
            Budget::Time(d) => Budget::Time(d / runs.max(1)),
            Budget::Ops(n) => Budget::Ops(n.div_ceil(u64::from(runs.max(1)))),
        }
    }
}

/// The phase budget, or what is wrong with the flags.
fn validate(args: &Args) -> Result<Budget, String> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if !(1..=MAX_POOL_SIZE).contains(&args.pool_size) {
        return Err(format!("--pool-size must be between 1 and {MAX_POOL_SIZE}"));
    }
    match args.operations {
        Some(0) => Err("--operations must be at least 1".into()),
        Some(n) => Ok(Budget::Ops(n)),
        None if args.duration_secs == 0 => Err("--duration-secs must be at least 1".into()),
        None => Ok(Budget::Time(Duration::from_secs(args.duration_secs))),
    }
}

/// Latencies in nanoseconds, log-linear: exact below 64 ns, then 32
/// buckets per power of two, so a percentile is at most 1/32 high. A cached
/// run does millions of operations, too many to keep one by one.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; Self::bucket(u64::MAX) + 1], total: 0, max: 0 }
    }
}

impl Histogram {
    fn bucket(ns: u64) -> usize {
        let shift = (64 - ns.leading_zeros()).saturating_sub(6); // keeps the top 6 bits
        (u64::from(shift) * 32 + (ns >> shift)) as usize
    }

    /// The highest value that falls in `bucket`.
    fn highest(bucket: usize) -> u64 {
        let (shift, top) = ((bucket / 32).saturating_sub(1), (bucket % 32 + 32) as u128);
        if bucket < 64 { bucket as u64 } else { u64::try_from(((top + 1) << shift) - 1).unwrap_or(u64::MAX) }
    }

    fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::bucket(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Nearest-rank percentile, as its bucket's highest value (never above
    /// the largest sample).
    fn percentile(&self, p: f64) -> Option<Duration> {
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64; // none when empty
        let mut seen = 0;
        let bucket = self.counts.iter().position(|&c| {
            seen += c;
            seen >= rank
        })?;
        Some(Duration::from_nanos(Self::highest(bucket).min(self.max)))
    }
}

/// One measured run.
#[derive(Default)]
struct Run {
    name: String,
    wall: Duration,
    latencies: Histogram,
    errors: u64,
    samples: Vec<String>,
    /// CPU time used by this process and by slapd during the run.
    cpu: [Option<Duration>; 2],
}

impl Run {
    fn fail(&mut self, why: String) {
        self.errors += 1;
        if self.samples.len() < FAILURE_SAMPLES {
            self.samples.push(why);
        }
    }

    fn ops_per_sec(&self) -> f64 {
        self.latencies.total as f64 / self.wall.as_secs_f64()
    }
}

/// One operation: (task, operation number) → Ok, or why it failed.
type Op = Arc<dyn Fn(usize, u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Runs `op` from `tasks` tasks until the budget is spent.
async fn drive(tasks: usize, budget: Budget, op: &Op) -> Run {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (deadline, limit) = match budget {
        Budget::Time(d) => (Some(start + d), u64::MAX),
        Budget::Ops(n) => (None, n),
    };
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (op, next) = (op.clone(), next.clone());
        set.spawn(async move {
            let mut run = Run::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let begun = Instant::now();
                if i >= limit || deadline.is_some_and(|d| begun >= d) {
                    return run;
                }
                match op(task, i).await {
                    Ok(()) => run.latencies.record(begun.elapsed()),
                    Err(why) => run.fail(why),
                }
                // A cached answer never waits: let the other tasks run.
                tokio::task::yield_now().await;
            }
        });
    }
    let mut total = Run::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(run) => {
                total.latencies.merge(&run.latencies);
                total.errors += run.errors;
                total.samples.extend(run.samples);
                total.samples.truncate(FAILURE_SAMPLES);
            }
            Err(e) => total.fail(format!("client task failed: {e}")),
        }
    }
    total.wall = start.elapsed();
    total
}

/// A run after a warm-up of `warm` operations (pool connections open,
/// cache filled), which must not fail.
async fn measure(name: String, tasks: usize, warm: usize, budget: Budget, op: Op, slapd: u32) -> anyhow::Result<Run> {
    let warm = drive(tasks, Budget::Ops(warm as u64), &op).await;
    if warm.errors > 0 {
        bail!("{name}: the warm-up failed: {}", warm.samples.join(" | "));
    }
    let pids = ["self".to_string(), slapd.to_string()];
    let before = pids.clone().map(|p| cpu_time(&p));
    let run = drive(tasks, budget, &op).await;
    let after = pids.map(|p| cpu_time(&p));
    Ok(Run { name, cpu: [0, 1].map(|k| after[k]?.checked_sub(before[k]?)), ..run })
}

/// User + system CPU time of a process (`self` or a PID), from /proc.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th, stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SEC))
}

fn lookup_op(map: Arc<UserMap>) -> Op {
    Arc::new(move |_, i| {
        let map = map.clone();
        Box::pin(async move {
            let (login, want) = LOOKUPS[i as usize % LOOKUPS.len()];
            match (map.lookup(login).await, want) {
                (Route::Mapped { host, .. }, Some(want)) if host == want => Ok(()),
                (Route::NotInMap, None) => Ok(()),
                (Route::Unavailable(e), _) => Err(format!("lookup {login}: {e}")),
                (route, _) => Err(format!("lookup {login}: unexpected {route:?}")),
            }
        })
    })
}

fn login_op(map: Arc<UserMap>, login: &'static str, password: &'static str) -> Op {
    Arc::new(move |_, _| {
        let map = map.clone();
        Box::pin(async move {
            match map.authenticate(login, password).await {
                AuthResult::Accepted(_) => Ok(()),
                AuthResult::Rejected => Err(format!("login {login}: rejected with the right password")),
                AuthResult::Unavailable(e) => Err(format!("login {login}: {e}")),
            }
        })
    })
}

/// The same searches as [`lookup_op`] sends, straight through ldap3 on
/// one connection per task: slapd's pace without our code.
fn raw_search_op(conns: Vec<ldap3::Ldap>) -> Op {
    let conns = Arc::new(conns);
    Arc::new(move |task, i| {
        let mut ldap = conns[task].clone();
        Box::pin(async move {
            let (login, want) = LOOKUPS[i as usize % LOOKUPS.len()];
            let user = login.split('@').next().unwrap_or(login);
            let filter = DEFAULT_OPENLDAP_PATTERN.replace("%u", user).replace("%e", login);
            let found = ldap
                .with_search_options(SearchOptions::new().sizelimit(2))
                .search(PEOPLE, ldap3::Scope::Subtree, &filter, ["mailHost"])
                .await
                .and_then(|r| r.success());
            match found {
                Ok((entries, _)) if entries.len() == usize::from(want.is_some()) => Ok(()),
                Ok((entries, _)) => Err(format!("search {filter}: {} entries", entries.len())),
                Err(e) => Err(format!("search {filter}: {e}")),
            }
        })
    })
}

/// An `ldap-password` map on slapd; cache off = both TTLs 0.
fn user_map(url: &str, pool_size: usize, cache: bool) -> anyhow::Result<Arc<UserMap>> {
    let mut settings = DirectorySettings::new("slapd", ServerType::OpenLdap, &[url], PEOPLE);
    settings.bind = Some((ADMIN_DN.into(), ADMIN_PASSWORD.into()));
    settings.pool_size = pool_size;
    let connector = Connector::new(settings, Arc::new(Ldap3Ops));
    let ttls = if cache { "" } else { "[cache]\npositive_ttl_secs = 0\nnegative_ttl_secs = 0\n" };
    let section = format!("name = \"bench\"\nkind = \"ldap-password\"\ndirectory = \"slapd\"\n{ttls}");
    let section = UserMapSection::from_toml(&section).context("the generated [[user_map]]")?;
    let mut salt = [0u8; 32];
    rand::fill(&mut salt);
    Ok(Arc::new(UserMap::ldap(&section, connector, &["example.com".into()], salt)?))
}

/// What the run measured.
struct Report {
    slapd: String,
    rows: Vec<Run>,
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let budget = validate(args).map_err(|e| anyhow!(e))?;
    let slapd = Slapd::start()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let rows = runtime.block_on(phases(args, budget, &slapd))?;
    Ok(Report { slapd: slapd.version.clone(), rows })
}

async fn phases(args: &Args, budget: Budget, slapd: &Slapd) -> anyhow::Result<Vec<Run>> {
    let (n, pid) = (args.concurrency, slapd.pid());
    let url = format!("ldap://127.0.0.1:{}", slapd.port);
    let maps = [user_map(&url, args.pool_size, false)?, user_map(&url, args.pool_size, true)?];
    let mut rows = Vec::new();
    for (phase, (map, cache)) in maps.iter().zip(["off", "on"]).enumerate() {
        eprintln!("bench-ldap: phase {}/5: route lookups, cache {cache}", phase + 1);
        let name = format!("lookup ({} logins), cache {cache}", LOOKUPS.len());
        rows.push(measure(name, n, n * LOOKUPS.len(), budget, lookup_op(map.clone()), pid).await?);
    }
    let share = budget.share(LOGINS.len() as u32);
    for (phase, (map, cache)) in maps.iter().zip(["off", "on"]).enumerate() {
        for (login, password, scheme) in LOGINS {
            eprintln!("bench-ldap: phase {}/5: logins, cache {cache}: {scheme} ({login})", phase + 3);
            let name = format!("login {scheme}, cache {cache}");
            rows.push(measure(name, n, n, share, login_op(map.clone(), login, password), pid).await?);
        }
    }
    let tasks = n.min(args.pool_size);
    eprintln!("bench-ldap: phase 5/5: raw ldap3 searches on {tasks} connections (baseline)");
    let mut conns = Vec::new();
    for _ in 0..tasks {
        let (conn, mut ldap) = LdapConnAsync::new(&url).await.context("raw ldap3 connection")?;
        tokio::spawn(async move { conn.drive().await.ok() });
        ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD).await.and_then(|r| r.success()).context("raw ldap3 bind")?;
        conns.push(ldap);
    }
    let name = format!("raw ldap3 search ({tasks} conns)");
    rows.push(measure(name, tasks, tasks * LOOKUPS.len(), budget, raw_search_op(conns), pid).await?);
    Ok(rows)
}

impl Report {
    fn print(&self, args: &Args) {
        let build = if cfg!(debug_assertions) { "DEBUG build: figures not representative" } else { "release build" };
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!();
        println!("tiermail bench-ldap: {} on loopback, fixtures/directory.ldif; {build}", self.slapd);
        println!(
            "ldap-password user map, pool_size {}, {} client tasks, {cpus} CPUs shared by slapd and this process",
            args.pool_size, args.concurrency
        );
        let header = ["p50 µs", "p99 µs", "max µs", "errors", "cpu/op µs", "slapd/op"];
        println!("{:<34} {:>9} {:>10} {}", "run", "ops", "ops/s", header.map(|c| format!("{c:>9}")).join(" "));
        let us = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e6));
        for run in &self.rows {
            let h = &run.latencies;
            let per_op = |cpu: Option<Duration>| cpu.map(|c| c.div_f64((h.total + run.errors).max(1) as f64));
            let max = (h.total > 0).then(|| Duration::from_nanos(h.max));
            let (p50, p99) = (us(h.percentile(50.0)), us(h.percentile(99.0)));
            let cells = [p50, p99, us(max), run.errors.to_string(), us(per_op(run.cpu[0])), us(per_op(run.cpu[1]))];
            let cells = cells.map(|c| format!("{c:>9}")).join(" ");
            println!("{:<34} {:>9} {:>10.1} {cells}", run.name, h.total, run.ops_per_sec());
            if run.errors > 0 {
                println!("  {} failed; first: {}", run.errors, run.samples.join(" | "));
            }
        }
        let ratio = |a: &Run, b: &Run| {
            let r = b.ops_per_sec();
            if r > 0.0 { format!("{:.1}", a.ops_per_sec() / r) } else { "-".into() }
        };
        let (lookups, rest) = self.rows.split_at(2);
        let (logins, raw) = rest.split_at(2 * LOGINS.len());
        let mut cached = vec![format!("lookups {}x", ratio(&lookups[1], &lookups[0]))];
        for (i, (_, _, scheme)) in LOGINS.iter().enumerate() {
            cached.push(format!("login {scheme} {}x", ratio(&logins[i + LOGINS.len()], &logins[i])));
        }
        println!("ratio cached/uncached (ops/s): {}", cached.join(", "));
        println!("ratio ours/raw ldap3 (uncached lookups, ops/s): {}", ratio(&lookups[0], &raw[0]));
        println!(
            "notes:\n- cache on: default TTLs ({DEFAULT_POSITIVE_TTL_SECS} s positive, {DEFAULT_NEGATIVE_TTL_SECS} s \
             negative), warmed: every key cached, so the 100% hit-rate ceiling; cache off: TTLs 0\n\
             - lookups cycle over 8 logins (7 fixture entries, 1 unknown); raw ldap3 sends the same searches, one \
             task per connection: both have at most pool_size in flight\n\
             - logins are per userPassword scheme, not mixed: uncached, the local hash check ranges from ~0 (clear \
             text) to {{ARGON2}}'s deliberate tens of ms; the login phases split their time among the schemes\n\
             - cpu/op, slapd/op: CPU per operation of this process (our code + load generator) and of slapd (/proc, \
             10 ms ticks); latency includes waits for a pool connection and for a CPU"
        );
    }
}

/// slapd on a free loopback port with the fixture directory (config as in
/// node/tests/ldap/slapd.rs); killed and waited for, then its temp dir
/// removed, when dropped (field order).
struct Slapd {
    child: ChildGuard,
    port: u16,
    version: String,
    _dir: tempfile::TempDir,
}

impl Slapd {
    fn start() -> anyhow::Result<Slapd> {
        let missing = |p| anyhow!("{p} not found: install the Debian packages slapd and ldap-utils");
        let slapd = find_program("slapd").ok_or_else(|| missing("slapd"))?;
        let slapadd = find_program("slapadd").ok_or_else(|| missing("slapadd"))?;
        let dir =
            tempfile::Builder::new().prefix("tiermail-bench-ldap-").tempdir().context("cannot create a temp dir")?;
        let (conf, ldif, log) =
            (dir.path().join("slapd.conf"), dir.path().join("fixture.ldif"), dir.path().join("slapd.log"));
        std::fs::create_dir(dir.path().join("data"))?;
        std::fs::write(&conf, slapd_config(dir.path()))?;
        std::fs::write(&ldif, FIXTURE_LDIF)?;
        let out = Command::new(&slapadd).arg("-f").arg(&conf).arg("-l").arg(&ldif).output().context("run slapadd")?;
        if !out.status.success() {
            bail!("slapadd failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        let version = Command::new(&slapd).arg("-VV").output().ok().and_then(|out| {
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            Some(text.split_once("$OpenLDAP: ")?.1.split_once(" (")?.0.to_string())
        });
        let [port] = free_ports()?;
        eprintln!("bench-ldap: starting slapd on 127.0.0.1:{port}");
        let mut command = Command::new(&slapd);
        command.arg("-h").arg(format!("ldap://127.0.0.1:{port}/")).arg("-f").arg(&conf).args(["-d", "0"]);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(File::create(&log)?);
        let child = command.spawn().with_context(|| format!("cannot start {}", slapd.display()))?;
        let mut child = ChildGuard(Some(child));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, child.0.as_mut().expect("just started"), "slapd", &log)?;
        Ok(Slapd { child, port, version: version.unwrap_or_else(|| "slapd".into()), _dir: dir })
    }

    fn pid(&self) -> u32 {
        self.child.0.as_ref().map_or(0, |c| c.id())
    }
}

/// mdb with the fixture's schemas; only the root DN (our service account)
/// reads userPassword (PEERS.md).
fn slapd_config(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/misc.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload pw-sha2
moduleload argon2
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "dc=example,dc=com"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {dir}/data
overlay ppolicy
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(concurrency: usize, duration_secs: u64, operations: Option<u64>, pool_size: usize) -> Args {
        Args { concurrency, duration_secs, operations, pool_size }
    }

    #[test]
    fn flags_are_validated_with_clear_errors() {
        assert_eq!(validate(&args(8, 5, None, 4)), Ok(Budget::Time(Duration::from_secs(5))));
        assert_eq!(validate(&args(8, 5, Some(100), 4)), Ok(Budget::Ops(100)));
        assert_eq!(validate(&args(0, 5, None, 4)), Err("--concurrency must be at least 1".into()));
        assert_eq!(validate(&args(8, 0, None, 4)), Err("--duration-secs must be at least 1".into()));
        assert_eq!(validate(&args(8, 5, Some(0), 4)), Err("--operations must be at least 1".into()));
        assert_eq!(validate(&args(8, 5, None, 0)), Err("--pool-size must be between 1 and 256".into()));
        assert_eq!(validate(&args(8, 5, None, 257)), Err("--pool-size must be between 1 and 256".into()));
    }

    #[test]
    fn a_phase_budget_is_shared_evenly_by_its_runs() {
        assert_eq!(Budget::Time(Duration::from_secs(5)).share(5), Budget::Time(Duration::from_secs(1)));
        assert_eq!(Budget::Ops(10).share(5), Budget::Ops(2));
        assert_eq!(Budget::Ops(11).share(5), Budget::Ops(3), "rounded up: every run does something");
        assert_eq!(Budget::Ops(1).share(5), Budget::Ops(1));
    }

    #[test]
    fn percentiles_are_nearest_rank_within_a_thirty_second() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        (1..=100).for_each(|ms| h.record(Duration::from_millis(ms)));
        for (p, want) in [(50.0, 50), (99.0, 99), (100.0, 100), (0.0, 1)] {
            let got = h.percentile(p).unwrap();
            let want = Duration::from_millis(want);
            assert!(got >= want && got <= want + want / 32, "p{p}: {got:?} for {want:?}");
        }
        assert_eq!(h.percentile(100.0), Some(Duration::from_millis(100)), "never above the largest sample");
        let mut small = Histogram::default();
        for ns in [3, 7, 63] {
            small.record(Duration::from_nanos(ns));
        }
        assert_eq!(small.percentile(50.0), Some(Duration::from_nanos(7)), "exact below 64 ns");
        small.merge(&h);
        assert_eq!((small.total, small.percentile(0.5)), (103, Some(Duration::from_nanos(3))));
    }

    #[test]
    fn every_value_falls_in_a_bucket_that_covers_it() {
        for ns in (0..5000).chain([u64::from(u32::MAX), u64::MAX / 3, u64::MAX]) {
            let b = Histogram::bucket(ns);
            assert!(Histogram::highest(b) >= ns && (b == 0 || Histogram::highest(b - 1) < ns), "{ns}");
        }
    }

    #[test]
    fn the_whole_bench_runs_against_slapd() {
        if find_program("slapd").is_none() {
            assert!(std::env::var("TIERMAIL_REQUIRE_PEERS").is_err(), "slapd is required (TIERMAIL_REQUIRE_PEERS)");
            eprintln!("SKIPPED: slapd is not installed (apt-get install slapd ldap-utils)");
            return;
        }
        let args = args(2, 1, Some(20), 2);
        let report = run(&args).unwrap();
        report.print(&args);
        assert_eq!(report.rows.len(), 13);
        assert!(report.rows[0].cpu.iter().all(Option::is_some), "CPU times are read from /proc");
        for row in &report.rows {
            assert_eq!(row.errors, 0, "{}: {:?}", row.name, row.samples);
            assert!(row.latencies.total > 0, "{}", row.name);
        }
    }
}
