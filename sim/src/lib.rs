//! tiermail-sim: runs tiermail nodes inside deterministic turmoil
//! simulations, with the client workloads that drive them.

// Exact replay (same seed, same trace) needs turmoil to seed tokio's own
// randomness, which it can only do with tokio_unstable. The repository's
// .cargo/config.toml sets it, but a RUSTFLAGS variable replaces that setting.
// rustdoc (documentation, doctests) gets no rustflags and runs no simulation.
#[cfg(not(any(tokio_unstable, doc, doctest)))]
compile_error!(
    "tiermail-sim must be built with `--cfg tokio_unstable`, or simulations do not replay exactly. \
     The repository's .cargo/config.toml sets it; a RUSTFLAGS environment variable overrides that file, \
     so keep it there: RUSTFLAGS=\"--cfg tokio_unstable <your flags>\" (or unset RUSTFLAGS)."
);

pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod invariants;
pub mod ldap_server;
pub mod reopen;
pub mod report;
pub mod run;
pub mod scenario;
#[cfg(feature = "sim-bugs")]
pub mod selftest;
pub mod trace;
pub mod workload;
pub mod world;
