//! Chaos draws a topology per seed (and whether the user maps keep
//! stale answers while the directory is down): the draws cover every kind the
//! strategy offers, and every kind replays exactly (same seed, same trace
//! hash) — the topology is part of the seed, not of the command line.

use std::collections::BTreeSet;

use tiermail_sim::chaos;
use tiermail_sim::run;
use tiermail_sim::scenario::{LayoutKind, ProxyAuth};

#[test]
fn drawn_topologies_cover_every_kind() {
    let one: Vec<_> = (1..=60).map(|seed| chaos::topology(seed, LayoutKind::OneTier)).collect();
    let two: Vec<_> = (1..=60).map(|seed| chaos::topology(seed, LayoutKind::TwoTier)).collect();
    let nodes: BTreeSet<usize> = one.iter().map(|t| t.nodes).collect();
    assert_eq!(nodes, BTreeSet::from([1, 2, 3, 4, 5]));
    let front_ends: BTreeSet<usize> = two.iter().map(|t| t.front_ends).collect();
    assert_eq!(front_ends, BTreeSet::from([1, 2, 3]));
    let back_ends: BTreeSet<usize> = two.iter().map(|t| t.back_ends).collect();
    assert_eq!(back_ends, BTreeSet::from([1, 2, 3, 4]));
    let all = || one.iter().chain(&two);
    assert_eq!(all().map(|t| t.directories).collect::<BTreeSet<_>>(), BTreeSet::from([1, 2, 3]));
    assert!(all().any(|t| t.proxy_auth == ProxyAuth::Proxy) && all().any(|t| t.proxy_auth == ProxyAuth::Backend));
    assert!(two.iter().any(|t| t.failover) && two.iter().any(|t| !t.failover));
    assert!(two.iter().filter(|t| t.failover).all(|t| t.proxy_auth == ProxyAuth::Backend));
    let stale: BTreeSet<u64> = all().map(|t| t.stale_on_failure_secs).collect();
    assert_eq!(stale, BTreeSet::from([0, 30]), "stale-on-failure cache off and on");
    assert_eq!(chaos::topology(7, LayoutKind::TwoTier), chaos::topology(7, LayoutKind::TwoTier));
}

#[test]
fn every_drawn_topology_kind_replays_exactly() {
    // The first seeds whose draws differ in every dimension between them.
    let mut kinds = BTreeSet::new();
    for layout in [LayoutKind::OneTier, LayoutKind::TwoTier] {
        for seed in 1..=40 {
            let t = chaos::topology(seed, layout);
            let kind = (
                layout.name(),
                t.nodes.min(2),
                t.back_ends.min(2),
                t.failover,
                t.proxy_auth == ProxyAuth::Proxy,
                t.directories > 1,
                t.stale_on_failure_secs > 0,
            );
            if !kinds.insert(kind) {
                continue;
            }
            let scenario = chaos::scenario(seed, layout);
            let first = run::run("first", &scenario, false);
            let second = run::run("second", &scenario, false);
            assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}: {}", scenario.description);
        }
    }
    assert!(kinds.len() >= 8, "only {} kinds drawn", kinds.len());
}
