//! Self-tests of the checkers: a node with a deliberate bug (tiermail-node's
//! `sim-bugs` feature, enabled only for these tests) must be caught by
//! chaos within a bounded number of seeds, and the failing seed must replay
//! to the same violation with the same trace hash.

use tiermail_node::bugs::{self, Bug};
use tiermail_sim::chaos;
use tiermail_sim::invariants::Invariant;
use tiermail_sim::run;
use tiermail_sim::scenario::LayoutKind;

/// One chaos seed with `bug` on (set afresh: a bug may keep state).
fn run_seed(seed: u64, layout: LayoutKind, bug: Option<Bug>) -> run::RunResult {
    bugs::set(bug);
    let result = run::run(&format!("seed {seed}"), &chaos::scenario(seed, layout), false);
    bugs::set(None);
    result
}

/// Runs chaos seeds 1..=max_seeds with `bug` on until one breaks `invariant`.
fn caught_within(bug: Bug, layout: LayoutKind, invariant: Invariant, max_seeds: u64) {
    let found = (1..=max_seeds).find_map(|seed| {
        let result = run_seed(seed, layout, Some(bug));
        result.violations.iter().any(|v| v.invariant == invariant).then_some((seed, result))
    });
    let Some((seed, first)) = found else {
        panic!("{bug:?} was not caught as {invariant} within {max_seeds} {} seeds", layout.name());
    };
    let replay = run_seed(seed, layout, Some(bug));
    assert_eq!(replay.trace_hash, first.trace_hash, "{bug:?}: seed {seed} did not replay to the same trace");
    assert_eq!(replay.violations, first.violations, "{bug:?}: seed {seed} did not replay to the same violations");
    // And without the bug the same seed is clean.
    let clean = run_seed(seed, layout, None);
    assert!(clean.violations.is_empty(), "seed {seed} fails even without {bug:?}: {:?}", clean.violations);
}

#[test]
fn ack_before_fsync_is_caught_as_lost_mail() {
    caught_within(Bug::AckBeforeFsync, LayoutKind::OneTier, Invariant::AckedNotLost, 5);
}

#[test]
fn auth_passing_when_the_directory_errors_is_caught() {
    caught_within(Bug::AuthPassesWhenDirectoryErrors, LayoutKind::OneTier, Invariant::AuthRequired, 30);
}

#[test]
fn a_stale_route_is_caught_as_misrouted_mail() {
    caught_within(Bug::StaleRoute, LayoutKind::OneTier, Invariant::Routing, 10);
}

#[test]
fn stale_routes_are_caught_in_two_tier_too() {
    caught_within(Bug::StaleRoute, LayoutKind::TwoTier, Invariant::Routing, 10);
}
