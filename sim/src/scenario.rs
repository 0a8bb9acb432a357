//! Scenario files (`scenarios/*.toml`): a topology, a workload, a fault
//! schedule and the expected outcome, parsed with errors that name the file
//! and key. The same types describe chaos runs, whose schedules are
//! generated instead of written.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::history::OpKind;

/// Largest scenario file read (they are a few hundred bytes).
pub const MAX_SCENARIO_BYTES: usize = 256 * 1024;
/// Most faults in one schedule.
pub const MAX_FAULTS: usize = 200;
/// Most nodes of each kind.
pub const MAX_HOSTS: usize = 16;
/// Most client hosts.
pub const MAX_CLIENTS: usize = 64;
/// Longest fault or quiet phase.
pub const MAX_PHASE_SECS: f64 = 3600.0;

/// A whole run: what `tiermail-sim run` and `chaos` execute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seeds the simulator and every client (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Length of the fault phase in simulated seconds (default 60).
    #[serde(default = "default_duration")]
    pub duration_secs: f64,
    /// The quiet phase after it: faults healed, every client must get each
    /// kind of operation through within this long (default 60).
    #[serde(default = "default_quiet")]
    pub quiet_secs: f64,
    #[serde(default)]
    pub topology: Topology,
    #[serde(default)]
    pub workload: Workload,
    /// The fault schedule.
    #[serde(default, rename = "fault")]
    pub faults: Vec<ScheduledFault>,
    #[serde(default)]
    pub expect: Expect,
}

fn default_seed() -> u64 {
    1
}
fn default_duration() -> f64 {
    60.0
}
fn default_quiet() -> f64 {
    60.0
}

/// One-tier or two-tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutKind {
    #[default]
    OneTier,
    TwoTier,
}

impl LayoutKind {
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::OneTier => "one-tier",
            LayoutKind::TwoTier => "two-tier",
        }
    }
}

/// Where proxies authenticate (seed "LDAP Authentication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyAuth {
    /// At the proxy and again at the back-end.
    #[default]
    Proxy,
    /// At the back-end only (needed for the failover address: the
    /// directory does not know the failover back-end's local users).
    Backend,
}

/// The hosts of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default)]
    pub layout: LayoutKind,
    /// One-tier: nodes node-a, node-b, ... (default 3).
    #[serde(default = "three")]
    pub nodes: usize,
    /// Two-tier: front-ends fe-1, ... (default 2).
    #[serde(default = "two")]
    pub front_ends: usize,
    /// Two-tier: back-ends be-1, ... (default 2); the directory's mailHost
    /// node-a, node-b, node-c map onto them in turn.
    #[serde(default = "two")]
    pub back_ends: usize,
    /// A back-end host `failover` holding a local account the directory
    /// does not know (zoe@example.com), the IMAP and POP3 proxies'
    /// failover address.
    #[serde(default)]
    pub failover: bool,
    #[serde(default)]
    pub proxy_auth: ProxyAuth,
    /// Directory hosts ldap-1, ...; every node lists them in order (default 1).
    #[serde(default = "one")]
    pub directories: usize,
    /// The user maps' stale-on-failure window, seconds (0: off): while the
    /// directory cannot answer, answers cached within it are still used.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_on_failure_secs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn three() -> usize {
    3
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            layout: LayoutKind::OneTier,
            nodes: 3,
            front_ends: 2,
            back_ends: 2,
            failover: false,
            proxy_auth: ProxyAuth::Proxy,
            directories: 1,
            stale_on_failure_secs: 0,
        }
    }
}

/// The clients and what they do.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Client hosts client-1, ... (default 3).
    #[serde(default = "three")]
    pub clients: usize,
    /// Relative weights of the operations (default: every kind).
    #[serde(default = "default_mix")]
    pub mix: BTreeMap<OpKind, u32>,
    /// Pause between a client's operations, milliseconds [min, max]
    /// (default [100, 2000]).
    #[serde(default = "default_think")]
    pub think_ms: [u64; 2],
}

fn default_mix() -> BTreeMap<OpKind, u32> {
    BTreeMap::from([
        (OpKind::Deliver, 4),
        (OpKind::DeliverMany, 3),
        (OpKind::Append, 2),
        (OpKind::ImapRead, 2),
        (OpKind::Pop3Read, 2),
        (OpKind::Pop3Delete, 2),
        (OpKind::Idle, 1),
        (OpKind::BadLogin, 3),
        (OpKind::RelayProbe, 1),
    ])
}

fn default_think() -> [u64; 2] {
    [100, 2000]
}

impl Default for Workload {
    fn default() -> Self {
        Workload { clients: 3, mix: default_mix(), think_ms: default_think() }
    }
}

/// A fault at a time, healed after `for_secs` (or when the quiet phase
/// starts). (serde cannot deny unknown fields next to a flattened enum;
/// [`check_fault_keys`] does.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledFault {
    /// Simulated seconds from the start.
    pub at: f64,
    /// How long it lasts; absent = until the quiet phase.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_secs: Option<f64>,
    #[serde(flatten)]
    pub fault: Fault,
}

/// What can go wrong.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The host's software stops and its unsynced writes are lost; healing
    /// restarts it.
    Crash { host: String },
    /// The host stops answering without going away, like a process under
    /// SIGSTOP or a machine swapping itself to death: every message to or
    /// from it is held (connects and sessions hang) and delivered when the
    /// fault heals. Peers can only time out.
    Freeze { host: String },
    /// No traffic between `a` and `b` (from `a` to `b` only if `oneway`).
    Partition {
        a: String,
        b: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        oneway: bool,
    },
    /// The directory host misbehaves.
    Directory { host: String, mode: DirectoryFault },
    /// Every message between `a` and `b` takes `ms` milliseconds.
    Latency { a: String, b: String, ms: u64 },
    /// The link between `a` and `b` breaks at random (turmoil's message
    /// loss: a lost segment breaks the TCP connections on the link).
    Loss { a: String, b: String, rate: f64 },
    /// The host's disk refuses writes.
    Disk { host: String, mode: DiskFault },
}

/// Directory misbehaviour (the embedded server's fault modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectoryFault {
    /// Refuses connections and drops open ones.
    Down,
    /// Accepts and reads but never answers.
    Hang,
    /// Answers after 8 s (beyond the nodes' 2 s lookup timeout).
    Slow,
    /// Answers every request with `unavailable`.
    Error,
}

/// Disk misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFault {
    /// Writes fail with EROFS.
    ReadOnly,
    /// Writes fail with ENOSPC.
    Full,
}

impl Fault {
    /// The fault's class, for counters: crash, partition, directory-down, ...
    pub fn class(&self) -> String {
        match self {
            Fault::Crash { .. } => "crash".into(),
            Fault::Freeze { .. } => "freeze".into(),
            Fault::Partition { oneway: false, .. } => "partition".into(),
            Fault::Partition { oneway: true, .. } => "partition-oneway".into(),
            Fault::Directory { mode, .. } => format!("directory-{}", kebab(mode)),
            Fault::Latency { .. } => "latency".into(),
            Fault::Loss { .. } => "loss".into(),
            Fault::Disk { mode, .. } => format!("disk-{}", kebab(mode)),
        }
    }

    /// The hosts it names.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Fault::Crash { host }
            | Fault::Freeze { host }
            | Fault::Directory { host, .. }
            | Fault::Disk { host, .. } => {
                vec![host]
            }
            Fault::Partition { a, b, .. } | Fault::Latency { a, b, .. } | Fault::Loss { a, b, .. } => vec![a, b],
        }
    }
}

fn kebab<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { host } => write!(f, "crash {host}"),
            Fault::Freeze { host } => write!(f, "freeze {host}"),
            Fault::Partition { a, b, oneway: false } => write!(f, "partition {a} <-> {b}"),
            Fault::Partition { a, b, oneway: true } => write!(f, "partition {a} -> {b}"),
            Fault::Directory { host, mode } => write!(f, "directory {host} {}", kebab(mode)),
            Fault::Latency { a, b, ms } => write!(f, "latency {a} <-> {b} {ms} ms"),
            Fault::Loss { a, b, rate } => write!(f, "loss {a} <-> {b} rate {rate}"),
            Fault::Disk { host, mode } => write!(f, "disk {host} {}", kebab(mode)),
        }
    }
}

/// What a scenario expects beyond the invariants (always checked).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Some legitimate operation must have failed temporarily (proves the
    /// fault was visible to clients, and answered as temporary).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporary_errors: bool,
    /// Counters (see the run report) that must be non-zero, e.g.
    /// "ldap-2-binds" when the second directory must have been used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nonzero: Vec<String>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub message: String,
}

/// Refuses keys a `[[fault]]` of its kind does not have (a typo would
/// otherwise be ignored silently).
fn check_fault_keys(text: &str) -> Result<(), String> {
    let Ok(table) = text.parse::<toml::Table>() else { return Ok(()) }; // the typed parse reports it
    let Some(faults) = table.get("fault").and_then(|f| f.as_array()) else { return Ok(()) };
    for (i, fault) in faults.iter().enumerate() {
        let Some(fault) = fault.as_table() else { continue };
        let kind = fault.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let own: &[&str] = match kind {
            "crash" => &["host"],
            "partition" => &["a", "b", "oneway"],
            "directory" | "disk" => &["host", "mode"],
            "latency" => &["a", "b", "ms"],
            "loss" => &["a", "b", "rate"],
            _ => continue, // the typed parse names the unknown kind
        };
        for key in fault.keys() {
            if !["at", "for", "kind"].contains(&key.as_str()) && !own.contains(&key.as_str()) {
                let mut allowed = vec!["at", "for", "kind"];
                allowed.extend(own);
                return Err(format!(
                    "key fault[{i}].{key}: a {kind} fault has no {key:?} (keys: {})",
                    allowed.join(", ")
                ));
            }
        }
    }
    Ok(())
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |message: String| ScenarioError { file: path.display().to_string(), message };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > MAX_SCENARIO_BYTES as u64 {
            return Err(err(format!("{} bytes; the limit is {MAX_SCENARIO_BYTES}", meta.len())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Scenario::parse(&text).map_err(err)
    }

    /// Parses and validates scenario text; the error names line and key.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        check_fault_keys(text)?;
        let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().to_owned();
            let line = inner
                .span()
                .map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1);
            match line {
                Some(line) => format!("line {line}, key {path}: {message}"),
                None => format!("key {path}: {message}"),
            }
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The hosts a fault may name in this topology.
    pub fn host_names(&self) -> Vec<String> {
        crate::world::Plan::new(&self.topology).all_hosts()
    }

    fn validate(&self) -> Result<(), String> {
        let t = &self.topology;
        let phase = |name: &str, v: f64| {
            if !(v.is_finite() && (0.0..=MAX_PHASE_SECS).contains(&v)) {
                return Err(format!("{name} = {v}: give 0 to {MAX_PHASE_SECS} seconds"));
            }
            Ok(())
        };
        phase("duration_secs", self.duration_secs)?;
        phase("quiet_secs", self.quiet_secs)?;
        let count = |name: &str, v: usize, min: usize| {
            if !(min..=MAX_HOSTS).contains(&v) {
                return Err(format!("{name} = {v}: give {min} to {MAX_HOSTS}"));
            }
            Ok(())
        };
        match t.layout {
            LayoutKind::OneTier => count("topology.nodes", t.nodes, 1)?,
            LayoutKind::TwoTier => {
                count("topology.front_ends", t.front_ends, 1)?;
                count("topology.back_ends", t.back_ends, 1)?;
            }
        }
        count("topology.directories", t.directories, 1)?;
        if !(1..=MAX_CLIENTS).contains(&self.workload.clients) {
            return Err(format!("workload.clients = {}: give 1 to {MAX_CLIENTS}", self.workload.clients));
        }
        if t.failover && t.proxy_auth == ProxyAuth::Proxy {
            return Err("topology.failover needs proxy_auth = \"backend\": the directory cannot authenticate \
                        the failover back-end's local users at the proxy"
                .into());
        }
        if self.workload.mix.values().all(|w| *w == 0) {
            return Err("workload.mix: give at least one operation a weight above 0".into());
        }
        let [lo, hi] = self.workload.think_ms;
        if lo > hi || hi > 600_000 {
            return Err(format!("workload.think_ms = [{lo}, {hi}]: give [min, max] with max <= 600000"));
        }
        if self.faults.len() > MAX_FAULTS {
            return Err(format!("{} faults; the limit is {MAX_FAULTS}", self.faults.len()));
        }
        let hosts = self.host_names();
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("fault[{i}] ({})", f.fault);
            if !(f.at.is_finite() && f.at >= 0.0 && f.at <= self.duration_secs) {
                return Err(format!("{at}: at = {} is outside the fault phase 0..{}", f.at, self.duration_secs));
            }
            if let Some(d) = f.for_secs
                && !(d.is_finite() && d > 0.0)
            {
                return Err(format!("{at}: for = {d}: give a positive number of seconds"));
            }
            for h in f.fault.hosts() {
                if !hosts.iter().any(|n| n == h) {
                    return Err(format!("{at}: no host {h:?} in this topology (hosts: {})", hosts.join(", ")));
                }
            }
            match &f.fault {
                Fault::Directory { host, .. } if !host.starts_with("ldap-") => {
                    return Err(format!("{at}: {host} is not a directory host"));
                }
                Fault::Disk { host, .. } | Fault::Crash { host } | Fault::Freeze { host }
                    if host.starts_with("ldap-") || host.starts_with("client-") =>
                {
                    return Err(format!("{at}: {host} is not a node"));
                }
                Fault::Partition { a, b, .. } | Fault::Latency { a, b, .. } | Fault::Loss { a, b, .. } if a == b => {
                    return Err(format!("{at}: a and b are the same host"));
                }
                Fault::Loss { rate, .. } if !(0.0..=1.0).contains(rate) => {
                    return Err(format!("{at}: rate = {rate}: give 0 to 1"));
                }
                Fault::Latency { ms, .. } if *ms > 600_000 => {
                    return Err(format!("{at}: ms = {ms}: at most 600000"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_secs)
    }

    pub fn quiet(&self) -> Duration {
        Duration::from_secs_f64(self.quiet_secs)
    }

    /// The scenario as TOML (for saving a shrunk chaos schedule).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn error(text: &str) -> String {
        Scenario::parse(text).expect_err("should be refused")
    }

    #[test]
    fn defaults_make_a_one_tier_run_without_faults() {
        let s = Scenario::parse("").unwrap();
        assert_eq!((s.seed, s.duration_secs, s.quiet_secs), (1, 60.0, 60.0));
        assert_eq!(s.topology, Topology::default());
        assert!(s.faults.is_empty());
    }

    #[test]
    fn errors_name_the_line_and_key() {
        assert_eq!(error("seed = 1\n[topology]\nnodez = 3\n").split(':').next(), Some("line 3, key topology.nodez"));
        assert!(error("[topology]\nlayout = \"three-tier\"\n").contains("three-tier"));
        let typo = error("[[fault]]\nat = 1.0\nkind = \"crash\"\nhots = \"node-a\"\n");
        assert!(typo.contains("fault[0].hots") && typo.contains("keys: at, for, kind, host"), "{typo}");
    }

    #[test]
    fn faults_must_name_hosts_of_the_topology() {
        let e = error("[[fault]]\nat = 1.0\nkind = \"crash\"\nhost = \"be-1\"\n");
        assert!(e.contains("no host \"be-1\"") && e.contains("node-a"), "{e}");
        let e = error("[[fault]]\nat = 1.0\nkind = \"crash\"\nhost = \"ldap-1\"\n");
        assert!(e.contains("not a node"), "{e}");
        let e = error("[[fault]]\nat = 1.0\nkind = \"directory\"\nhost = \"node-a\"\nmode = \"down\"\n");
        assert!(e.contains("not a directory host"), "{e}");
        let e = error("[[fault]]\nat = 99.0\nkind = \"crash\"\nhost = \"node-a\"\n");
        assert!(e.contains("outside the fault phase"), "{e}");
        let e = error("[[fault]]\nat = 1.0\nkind = \"loss\"\na = \"node-a\"\nb = \"node-b\"\nrate = 2.0\n");
        assert!(e.contains("give 0 to 1"), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        assert!(error("duration_secs = 1e9\n").contains("duration_secs"));
        assert!(error("[topology]\nnodes = 0\n").contains("topology.nodes"));
        assert!(error("[workload]\nclients = 1000\n").contains("workload.clients"));
        assert!(error("[workload]\nthink_ms = [5, 1]\n").contains("think_ms"));
        assert!(error("[workload]\nmix = { deliver = 0 }\n").contains("at least one"));
        let failover = error("[topology]\nlayout = \"two-tier\"\nfailover = true\n");
        assert!(failover.contains("proxy_auth"), "{failover}");
        let many = "[[fault]]\nat = 1.0\nkind = \"crash\"\nhost = \"node-a\"\n".repeat(MAX_FAULTS + 1);
        assert!(error(&many).contains("limit"));
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_refused_or_accepted_never_a_panic(text in "\\PC{0,300}") {
            let _ = Scenario::parse(&text);
        }

        #[test]
        fn mangled_scenarios_never_panic(cut in 0usize..400, junk in "[\\[\\]=\"a-z0-9. \n]{0,20}") {
            let text = include_str!("../../scenarios/directory-down-auth-never-passes.toml");
            let cut = text.char_indices().map(|(i, _)| i).find(|i| *i >= cut).unwrap_or(text.len());
            let _ = Scenario::parse(&format!("{}{junk}{}", &text[..cut], &text[cut..]));
        }
    }
}
