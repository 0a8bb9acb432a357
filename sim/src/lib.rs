//! tiermail-sim: runs tiermail nodes inside deterministic turmoil
//! simulations, with the client workloads that drive them.

pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod invariants;
pub mod ldap_server;
pub mod report;
pub mod run;
pub mod scenario;
pub mod trace;
pub mod workload;
pub mod world;
