//! One simulation run: a scenario becomes a turmoil world, the fault
//! schedule is applied as simulated time passes, every fault heals when the
//! quiet phase starts, the clients prove liveness, then every back-end is
//! crashed (unsynced writes vanish) and its store is read back for the
//! invariant checkers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tiermail_node::shutdown::Shutdown;
use tiermail_node::store::SimDisk;
use tiermail_node::{Config, Env, Node};
use turmoil::fs::FsHandle;

use crate::faults::{self, Controls, DiskControl, FaultyDisk, Fired};
use crate::history::{History, Outcome, Record};
use crate::invariants::{self, Violation};
use crate::ldap_server::{Directory, DirectoryControl, ServerConfig};
use crate::reopen;
use crate::scenario::{Fault, Scenario};
use crate::trace;
use crate::workload::client::{Client, OP_TIMEOUT};
use crate::world::{LDAP_PORT, Plan};

/// Wall-clock time at the start of every simulation (2026-09-21).
pub const EPOCH_SECS: u64 = 1_790_000_000;
/// How far simulated time moves per simulator step. turmoil's default is
/// 1 ms; every step polls every host, so most of a run's cost is steps in
/// which nothing happens. 5 ms keeps timers and latencies meaningful (LDAP
/// timeouts are seconds, link latency up to 100 ms) at a fifth of the steps.
const TICK: Duration = Duration::from_millis(5);
/// Extra simulated time after the quiet phase before a run counts as hung.
const HANG_SLACK: Duration = Duration::from_secs(60);
/// How long the simulated service manager waits before starting a node
/// that failed to start.
const RESTART_DELAY: Duration = Duration::from_secs(5);
/// Where simulated nodes keep their data.
const DATA_DIR: &str = "/data";

/// Mailbox contents after the run: (host, address) → message ids, one
/// entry per stored message.
pub type Stores = BTreeMap<(String, String), Vec<String>>;

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub name: String,
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Scenario expectations not met (expected errors, counters).
    pub unmet: Vec<String>,
    pub sim_time: Duration,
    pub wall_time: Duration,
    /// Hash of the event log and the history: equal for equal seeds.
    pub trace_hash: String,
    /// The event log, when asked for.
    pub log: Option<String>,
    /// Faults applied by class, directory operations, operations by outcome.
    pub counters: BTreeMap<String, u64>,
    pub record: Record,
    /// Lanes for reports: nodes, directories, clients.
    pub hosts: Vec<String>,
    pub quiet_from: Duration,
    pub stores: Stores,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.unmet.is_empty()
    }
}

/// Runs `scenario` (named `name` in reports); keeps the event log if asked.
pub fn run(name: &str, scenario: &Scenario, keep_log: bool) -> RunResult {
    let wall = Instant::now();
    let (outcome, log) = trace::capture(|| simulate(scenario));
    let mut result = outcome;
    result.name = name.to_owned();
    let record_json = serde_json::to_string(&result.record).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(log.as_bytes());
    hasher.update(record_json.as_bytes());
    result.trace_hash = hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
    result.wall_time = wall.elapsed();
    if keep_log {
        result.log = Some(log);
    }
    result
}

/// Runs a scenario twice and reports the first difference between the two
/// event logs, if any.
pub fn check_determinism(name: &str, scenario: &Scenario) -> Result<RunResult, String> {
    let first = run(name, scenario, true);
    let second = run(name, scenario, true);
    if first.trace_hash == second.trace_hash {
        return Ok(first);
    }
    let (a, b) = (first.log.as_deref().unwrap_or(""), second.log.as_deref().unwrap_or(""));
    let diverged = a.lines().zip(b.lines()).enumerate().find(|(_, (x, y))| x != y);
    Err(match diverged {
        Some((n, (x, y))) => format!(
            "seed {}: trace hashes {} and {} differ; first divergence at log line {}:\n  run 1: {x}\n  run 2: {y}",
            scenario.seed,
            first.trace_hash,
            second.trace_hash,
            n + 1
        ),
        None => format!(
            "seed {}: trace hashes {} and {} differ (logs equal for {} lines; histories differ)",
            scenario.seed,
            first.trace_hash,
            second.trace_hash,
            a.lines().count().min(b.lines().count())
        ),
    })
}

/// One step of the fault schedule.
#[derive(Debug, Clone)]
struct Step {
    at: Duration,
    heal: bool,
    fault: usize,
}

fn simulate(scenario: &Scenario) -> RunResult {
    let plan = Rc::new(Plan::new(&scenario.topology));
    let history = History::default();
    let quiet_from = scenario.duration();
    let deadline = quiet_from + scenario.quiet();
    let limit = deadline + OP_TIMEOUT + HANG_SLACK;
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS);
    let mut sim = turmoil::Builder::new()
        .rng_seed(scenario.seed)
        .epoch(epoch)
        .simulation_duration(limit)
        .max_message_latency(faults::DEFAULT_MAX_LATENCY)
        .tick_duration(TICK)
        .build();
    let clients = plan.clients(scenario.workload.clients);
    let mut hosts: Vec<String> = plan.nodes.iter().map(|n| n.name.clone()).collect();
    hosts.extend(plan.directories.iter().cloned());
    hosts.extend(clients.iter().cloned());
    let mut controls = Controls { hosts: hosts.clone(), directories: BTreeMap::new(), disks: BTreeMap::new() };
    for name in &plan.directories {
        let control = DirectoryControl::new();
        controls.directories.insert(name.clone(), control.clone());
        sim.host(name.as_str(), move || directory_host(control.clone()));
    }
    let filesystems: Rc<RefCell<BTreeMap<String, FsHandle>>> = Rc::default();
    for (i, node) in plan.nodes.iter().enumerate() {
        let disk = DiskControl::default();
        controls.disks.insert(node.name.clone(), disk.clone());
        let text = Rc::new(plan.node_config(node));
        let name = node.name.clone();
        let salt = derive(scenario.seed, &format!("salt/{i}"));
        let fs = filesystems.clone();
        sim.host(node.name.as_str(), move || {
            node_host(name.clone(), text.clone(), disk.clone(), epoch, salt, fs.clone())
        });
    }
    for (i, name) in clients.iter().enumerate() {
        let seed = u64::from_le_bytes(derive(scenario.seed, &format!("client/{i}"))[..8].try_into().unwrap());
        let client = Client::new(name.clone(), plan.clone(), &scenario.workload, history.clone(), seed);
        sim.client(name.as_str(), async move {
            client.run(quiet_from, deadline).await;
            Ok(())
        });
    }
    let (fired, run_error) = drive(&mut sim, scenario, &controls, &history);
    let sim_time = sim.elapsed();
    // The end of the run: every back-end loses what it has not synced.
    for node in plan.backends() {
        faults::crash(&mut sim, &controls, node, &[]);
    }
    let (stores, reopened) = reopen::read_stores(&filesystems.borrow(), Path::new(DATA_DIR), sim_time);
    trace::uncaptured(|| drop(sim));
    let record = history.snapshot();
    let mut violations = invariants::check(&plan, &scenario.workload, &record, &stores);
    violations.extend(invariants::check_reopened(&record, reopened));
    if let Some(error) = run_error {
        violations.push(Violation {
            invariant: invariants::Invariant::Liveness,
            detail: error,
            at: Some(sim_time),
            hosts: Vec::new(),
        });
    }
    let counters = counters(&fired, &controls, &record, &stores);
    let unmet = unmet(scenario, &counters, &record);
    RunResult {
        name: String::new(),
        seed: scenario.seed,
        violations,
        unmet,
        sim_time,
        wall_time: Duration::ZERO,
        trace_hash: String::new(),
        log: None,
        counters,
        record,
        hosts,
        quiet_from,
        stores,
    }
}

/// Steps the simulation, applying and healing faults on time. Returns the
/// faults fired and why the run ended early, if it did.
fn drive(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    controls: &Controls,
    history: &History,
) -> (Fired, Option<String>) {
    let quiet_from = scenario.duration();
    let mut steps = Vec::new();
    for (i, f) in scenario.faults.iter().enumerate() {
        let at = Duration::from_secs_f64(f.at);
        let until = f.for_secs.map(|d| at + Duration::from_secs_f64(d)).unwrap_or(quiet_from).min(quiet_from);
        steps.push(Step { at, heal: false, fault: i });
        steps.push(Step { at: until.max(at), heal: true, fault: i });
    }
    steps.sort_by_key(|s| (s.at, s.heal, s.fault));
    let mut steps = steps.into_iter().peekable();
    let mut fired = Fired::new();
    // How many applied, unhealed faults hold each target (overlapping
    // faults on one target heal when the last one ends).
    let mut holding: BTreeMap<String, usize> = BTreeMap::new();
    let mut marks: BTreeMap<usize, usize> = BTreeMap::new();
    loop {
        let now = sim.elapsed();
        while let Some(step) = steps.next_if(|s| s.at <= now) {
            let fault = &scenario.faults[step.fault].fault;
            let key = target_key(fault);
            if step.heal {
                let count = holding.entry(key).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    faults::heal(sim, controls, fault);
                }
                if let Some(mark) = marks.remove(&step.fault) {
                    history.healed(mark, now);
                }
            } else {
                *holding.entry(key).or_default() += 1;
                let partitions: Vec<&Fault> = marks
                    .keys()
                    .map(|i| &scenario.faults[*i].fault)
                    .filter(|f| matches!(f, Fault::Partition { .. }))
                    .collect();
                faults::apply(sim, controls, fault, &partitions, &mut fired);
                tracing::info!(fault = %fault, "fault applied");
                let hosts = fault.hosts().into_iter().map(str::to_owned).collect();
                marks.insert(step.fault, history.fault(now, hosts, fault.to_string()));
            }
        }
        match sim.step() {
            Ok(true) => return (fired, None),
            Ok(false) => {}
            Err(e) => return (fired, Some(format!("the run did not finish: {e}"))),
        }
    }
}

/// What a fault holds: overlapping faults on one target nest.
fn target_key(fault: &Fault) -> String {
    match fault {
        Fault::Crash { host } => format!("host {host}"),
        Fault::Freeze { host } => format!("freeze {host}"),
        Fault::Partition { a, b, oneway } => format!("partition {a} {b} {oneway}"),
        Fault::Directory { host, .. } => format!("directory {host}"),
        Fault::Latency { a, b, .. } => format!("latency {}", pair(a, b)),
        Fault::Loss { a, b, .. } => format!("loss {}", pair(a, b)),
        Fault::Disk { host, .. } => format!("disk {host}"),
    }
}

fn pair(a: &str, b: &str) -> String {
    if a < b { format!("{a} {b}") } else { format!("{b} {a}") }
}

/// 32 bytes derived from the run's seed and a purpose.
fn derive(seed: u64, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.finalize().into()
}

async fn directory_host(control: DirectoryControl) -> turmoil::Result {
    let net = tiermail_node::net::SimNet;
    let listener = tiermail_node::net::Net::bind(&net, ([0, 0, 0, 0], LDAP_PORT).into()).await?;
    let (_trigger, shutdown) = Shutdown::new();
    crate::ldap_server::serve(listener, Arc::new(Directory::fixture()), ServerConfig::fixture(), control, shutdown)
        .await;
    Ok(())
}

async fn node_host(
    name: String,
    config: Rc<String>,
    disk: DiskControl,
    epoch: SystemTime,
    salt: [u8; 32],
    filesystems: Rc<RefCell<BTreeMap<String, FsHandle>>>,
) -> turmoil::Result {
    // Captured here: only a running host has a current filesystem.
    filesystems.borrow_mut().insert(name.clone(), FsHandle::current());
    let config = Config::parse(Path::new(&format!("{name}.toml")), &config)?;
    let mut env = Env::simulated(epoch, salt);
    env.disk = Arc::new(FaultyDisk { inner: SimDisk, control: disk });
    // Like a service manager (systemd's Restart=on-failure): a node that
    // cannot start (a full disk, say) is started again a little later.
    loop {
        match Node::start(config.clone(), env.clone()).await {
            Ok(node) => {
                node.run().await;
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "node failed to start; restarting in {}s", RESTART_DELAY.as_secs());
                tokio::time::sleep(RESTART_DELAY).await;
            }
        }
    }
}

fn counters(fired: &Fired, controls: &Controls, record: &Record, stores: &Stores) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (class, n) in fired {
        out.insert(format!("fault-{class}"), *n);
    }
    for (host, control) in &controls.directories {
        let c = control.counters();
        out.insert(format!("{host}-binds"), c.binds_ok + c.binds_failed);
        out.insert(format!("{host}-searches"), c.searches);
        out.insert(format!("{host}-refused"), c.refused);
        out.insert(format!("{host}-faulted"), c.faulted);
    }
    for op in &record.ops {
        *out.entry(format!("ops-{}", op.outcome.class())).or_default() += 1;
        *out.entry("ids-seen".into()).or_default() += op.seen.len() as u64;
    }
    for ((host, _), ids) in stores {
        *out.entry(format!("{host}-stored")).or_default() += ids.len() as u64;
    }
    out
}

/// The scenario's expectations that the run did not meet.
fn unmet(scenario: &Scenario, counters: &BTreeMap<String, u64>, record: &Record) -> Vec<String> {
    let mut out = Vec::new();
    for f in &scenario.faults {
        let key = format!("fault-{}", f.fault.class());
        if counters.get(&key).copied().unwrap_or(0) == 0 {
            out.push(format!("fault {} never fired", f.fault));
        }
    }
    if scenario.expect.temporary_errors {
        let legit = crate::invariants::LEGITIMATE;
        let seen = record.ops.iter().any(|op| legit.contains(&op.kind) && matches!(op.outcome, Outcome::Temporary(_)));
        if !seen {
            out.push("expected some operation to fail temporarily; none did".into());
        }
    }
    for name in &scenario.expect.nonzero {
        if counters.get(name).copied().unwrap_or(0) == 0 {
            out.push(format!("expected counter {name} above 0"));
        }
    }
    out
}
