//! tiermail-sim: runs tiermail nodes inside deterministic turmoil
//! simulations, with the client workloads that drive them.

pub mod cluster;
pub mod ldap_server;
pub mod trace;
pub mod workload;
