//! The `tiermail-sim` binary end to end: `run`, `chaos`, `replay` with a
//! report, and clear errors for bad input.

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiermail-sim"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run tiermail-sim")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn run_prints_one_line_per_scenario_with_its_trace_hash() {
    let out = sim(&["run", "--check-determinism", "scenarios/one-tier-happy-path.toml"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let line = all.lines().find(|l| l.contains("one-tier-happy-path")).expect("a line for the scenario");
    assert!(line.starts_with("ok "), "{line}");
    let hash = line.rsplit(' ').next().unwrap();
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
}

#[test]
fn replay_writes_a_report_and_repeats_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.html");
    let out = sim(&["replay", "3", "--layout", "two-tier", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&report).expect("report written");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && html.contains("fe-1"), "{html:.300}");
    let again = sim(&["replay", "3", "--layout", "two-tier"]);
    let hash =
        |o: &Output| text(o).lines().next().unwrap_or_default().rsplit(' ').next().unwrap_or_default().to_owned();
    assert_eq!(hash(&out), hash(&again), "the same seed, two processes");
}

#[test]
fn chaos_runs_seeds_and_summarises() {
    let out = sim(&["chaos", "--seeds", "2", "--start", "7", "--layout", "one-tier"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("2 seeds (one-tier)") && all.contains("0 with violations"), "{all}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[topology]\nlayout = \"one-tier\"\n[[fault]]\nat = 1.0\nkind = \"crash\"\nhost = \"be-9\"\n")
        .unwrap();
    let out = sim(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let all = text(&out);
    assert!(all.contains("bad.toml") && all.contains("no host \"be-9\""), "{all}");
    let out = sim(&["chaos", "--seeds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--seeds 0"), "{}", text(&out));
}
