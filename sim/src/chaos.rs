//! Chaos: random fault schedules drawn from proptest strategies, one per
//! seed, each run checked against the invariants; a failing schedule is
//! shrunk by delta debugging on its fault list to the fewest faults that
//! still break the same invariant.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use crate::invariants::Invariant;
use crate::run::{self, RunResult};
use crate::scenario::{
    DirectoryFault, DiskFault, Fault, LayoutKind, ProxyAuth, Scenario, ScheduledFault, Topology, Workload,
};
use crate::world::Plan;

/// Fault phase of a chaos run, simulated seconds.
pub const CHAOS_DURATION: f64 = 40.0;
/// Quiet phase of a chaos run.
pub const CHAOS_QUIET: f64 = 60.0;
/// Most faults in one random schedule.
pub const MAX_CHAOS_FAULTS: usize = 6;

/// What a chaos run of at least [`SOMETIMES_MIN_SEEDS`] seeds must have
/// seen at least once: every fault class, and clients meeting temporary
/// errors and broken sessions. A class that never fires means the
/// schedules stopped exercising it.
pub const SOMETIMES: [&str; 14] = [
    "fault-crash",
    "fault-freeze",
    "fault-partition",
    "fault-partition-oneway",
    "fault-directory-down",
    "fault-directory-hang",
    "fault-directory-slow",
    "fault-directory-error",
    "fault-latency",
    "fault-loss",
    "fault-disk-full",
    "fault-disk-read-only",
    "ops-temporary",
    "ops-unknown",
];
/// Fewer seeds than this may miss a class by chance.
pub const SOMETIMES_MIN_SEEDS: u64 = 50;

/// The topology chaos runs for `seed` in a layout, drawn from the seed (a
/// stream of its own, so the fault schedule does not depend on it):
/// one-tier with 1-5 nodes, or two-tier with 1-3 front-ends, 1-4
/// back-ends and a failover back-end or not; authentication at the proxy
/// or at the back-end (the back-end only, with a failover back-end, whose
/// local users the directory cannot check); 1-3 directory servers.
pub fn topology(seed: u64, layout: LayoutKind) -> Topology {
    let mut runner = TestRunner::new_with_rng(Config::default(), stream(b"topology", seed));
    let auth = || select(vec![ProxyAuth::Proxy, ProxyAuth::Backend]);
    let stale = || select(vec![0u64, 30]);
    let drawn = match layout {
        LayoutKind::OneTier => (1usize..=5, auth(), 1usize..=3, stale())
            .prop_map(move |(nodes, proxy_auth, directories, stale_on_failure_secs)| Topology {
                layout,
                nodes,
                proxy_auth,
                directories,
                stale_on_failure_secs,
                ..Topology::default()
            })
            .boxed(),
        LayoutKind::TwoTier => (1usize..=3, 1usize..=4, any::<bool>(), auth(), 1usize..=3, stale())
            .prop_map(move |(front_ends, back_ends, failover, proxy_auth, directories, stale_on_failure_secs)| {
                Topology {
                    layout,
                    front_ends,
                    back_ends,
                    failover,
                    proxy_auth: if failover { ProxyAuth::Backend } else { proxy_auth },
                    directories,
                    stale_on_failure_secs,
                    ..Topology::default()
                }
            })
            .boxed(),
    };
    drawn.new_tree(&mut runner).map(|tree| tree.current()).unwrap_or_default()
}

/// One line naming a topology, for chaos reports and replays.
pub fn describe(t: &Topology) -> String {
    let hosts = match t.layout {
        LayoutKind::OneTier => format!("{} node(s)", t.nodes),
        LayoutKind::TwoTier => format!(
            "{} front-end(s), {} back-end(s){}",
            t.front_ends,
            t.back_ends,
            if t.failover { " + failover" } else { "" }
        ),
    };
    let auth = match t.proxy_auth {
        ProxyAuth::Proxy => "auth at proxy and back-end",
        ProxyAuth::Backend => "auth at back-end",
    };
    let stale = match t.stale_on_failure_secs {
        0 => String::new(),
        n => format!(", stale-on-failure {n} s"),
    };
    format!("{}: {hosts}, {auth}, {} directory server(s){stale}", t.layout.name(), t.directories)
}

/// The scenario chaos runs for `seed`: a topology, a fault schedule over
/// its hosts, both drawn from the seed; a fixed workload.
pub fn scenario(seed: u64, layout: LayoutKind) -> Scenario {
    let topology = topology(seed, layout);
    let workload = Workload { clients: 3, ..Workload::default() };
    let plan = Plan::new(&topology);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng(seed));
    let faults = schedule(&plan, workload.clients).new_tree(&mut runner).map(|tree| tree.current()).unwrap_or_default();
    Scenario {
        description: format!("chaos seed {seed} ({})", describe(&topology)),
        seed,
        duration_secs: CHAOS_DURATION,
        quiet_secs: CHAOS_QUIET,
        topology,
        workload,
        faults,
        expect: Default::default(),
    }
}

fn rng(seed: u64) -> TestRng {
    stream(b"chaos", seed)
}

/// A random stream of its own per purpose and seed.
fn stream(purpose: &[u8], seed: u64) -> TestRng {
    let digest: [u8; 32] = Sha256::new().chain_update(purpose).chain_update(seed.to_le_bytes()).finalize().into();
    TestRng::from_seed(RngAlgorithm::ChaCha, &digest)
}

/// Random fault schedules over `plan`'s hosts.
pub fn schedule(plan: &Plan, clients: usize) -> impl Strategy<Value = Vec<ScheduledFault>> {
    let nodes: Vec<String> = plan.nodes.iter().map(|n| n.name.clone()).collect();
    let backends: Vec<String> = plan.backends().into_iter().map(str::to_owned).collect();
    let proxies: Vec<String> = plan.proxies().into_iter().map(str::to_owned).collect();
    let directories = plan.directories.clone();
    let clients = plan.clients(clients);
    let mut servers = nodes.clone();
    servers.extend(directories.iter().cloned());
    let link = {
        // A link between two servers, or a client and a proxy.
        let servers = servers.clone();
        let server_pair = (select(servers.clone()), select(servers)).prop_filter("two hosts", |(a, b)| a != b);
        let client_pair = (select(clients), select(proxies));
        prop_oneof![3 => server_pair, 1 => client_pair]
    };
    let fault = prop_oneof![
        3 => select(nodes.clone()).prop_map(|host| Fault::Crash { host }),
        1 => select(nodes).prop_map(|host| Fault::Freeze { host }),
        2 => (link.clone(), any::<bool>()).prop_map(|((a, b), oneway)| Fault::Partition { a, b, oneway }),
        3 => (select(directories), select(vec![
            DirectoryFault::Down,
            DirectoryFault::Hang,
            DirectoryFault::Slow,
            DirectoryFault::Error,
        ]))
            .prop_map(|(host, mode)| Fault::Directory { host, mode }),
        1 => (link.clone(), 200u64..4000).prop_map(|((a, b), ms)| Fault::Latency { a, b, ms }),
        1 => (link, 1u32..50).prop_map(|((a, b), permille)| Fault::Loss { a, b, rate: f64::from(permille) / 1000.0 }),
        1 => (select(backends), select(vec![DiskFault::ReadOnly, DiskFault::Full]))
            .prop_map(|(host, mode)| Fault::Disk { host, mode }),
    ];
    let scheduled = (0u32..(CHAOS_DURATION as u32 * 10), 10u32..200, fault).prop_map(|(at, length, fault)| {
        ScheduledFault { at: f64::from(at) / 10.0, for_secs: Some(f64::from(length) / 10.0), fault }
    });
    proptest::collection::vec(scheduled, 0..=MAX_CHAOS_FAULTS)
}

fn select<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> proptest::sample::Select<T> {
    proptest::sample::select(items)
}

/// The first invariant a run breaks.
pub fn first_broken(result: &RunResult) -> Option<Invariant> {
    result.violations.first().map(|v| v.invariant)
}

/// Removes faults from a failing scenario while it still breaks
/// `invariant` (delta debugging: halves first, then single faults).
/// `progress` is told about each trial run.
pub fn shrink(failing: &Scenario, invariant: Invariant, mut progress: impl FnMut(usize)) -> Scenario {
    let mut best = failing.clone();
    let mut trials = 0;
    let mut still_fails = |candidate: &Scenario| {
        trials += 1;
        progress(trials);
        let result = run::run("shrink", candidate, false);
        result.violations.iter().any(|v| v.invariant == invariant)
    };
    let mut chunk = best.faults.len().div_ceil(2).max(1);
    loop {
        let mut removed = false;
        let mut start = 0;
        while start < best.faults.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.faults.len());
            candidate.faults.drain(start..end);
            if still_fails(&candidate) {
                best = candidate;
                removed = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed {
            chunk = (chunk / 2).max(1);
        }
    }
    best.description = format!("{} shrunk to {} fault(s) breaking {invariant}", failing.description, best.faults.len());
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_a_function_of_the_seed() {
        for layout in [LayoutKind::OneTier, LayoutKind::TwoTier] {
            assert_eq!(scenario(7, layout), scenario(7, layout));
            let distinct: std::collections::BTreeSet<String> =
                (1..40).map(|s| format!("{:?}", scenario(s, layout).faults)).collect();
            assert!(distinct.len() > 30, "seeds should give different schedules: {}", distinct.len());
        }
    }

    #[test]
    fn random_schedules_are_valid_scenarios() {
        for seed in 1..200 {
            for layout in [LayoutKind::OneTier, LayoutKind::TwoTier] {
                let s = scenario(seed, layout);
                let text = s.to_toml();
                let back = Scenario::parse(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
                assert_eq!(back, s, "seed {seed} does not round-trip through TOML");
            }
        }
    }
}
