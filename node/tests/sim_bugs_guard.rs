//! A tiermail-node binary built with the `sim-bugs` feature (deliberate
//! bugs for tiermail-sim's self-tests) refuses to run, whatever it is
//! asked to do. Under plain `cargo test` this checks that the normal binary
//! runs; CI also runs it with the feature on:
//! `cargo test -p tiermail-node --features sim-bugs --test sim_bugs_guard`.

mod common;

use std::process::Command;

#[test]
fn a_node_built_with_deliberate_bugs_refuses_to_start() {
    let config = common::repo_root().join("fixtures/node-a.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tiermail-node")).arg("check-config").arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "sim-bugs") {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("built with the `sim-bugs` feature") && stderr.contains("rebuild"), "{stderr}");
        assert!(out.stdout.is_empty(), "did nothing else");
    } else {
        assert!(out.status.success(), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).ends_with(": OK\n"));
    }
}
