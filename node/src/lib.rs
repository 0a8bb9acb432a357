//! tiermail-node: the back-end mail services of a tiermail cluster node
//! (SMTP, POP3; IMAP and the proxies follow), on a durable Maildir store,
//! written once against the network and disk seams so the same code runs in
//! a real process and inside the deterministic simulator.

pub mod backend;
#[cfg(feature = "sim-bugs")]
pub mod bugs;
pub mod clock;
pub mod config;
pub mod connection;
pub mod directory;
pub mod net;
pub mod node;
pub mod proxy;
pub mod sasl;
pub mod server;
pub mod shutdown;
pub mod store;

pub use config::Config;
pub use node::{Env, Node, StartError};

/// Whether this build contains the deliberate bugs of the `sim-bugs`
/// feature. The binary refuses to run then: such a build exists only for
/// tiermail-sim's self-tests, and cargo unifies the feature into a node
/// binary built alongside them (`--all-features`, or tiermail-sim's
/// `sim-bugs` feature in a workspace build).
pub const DELIBERATE_BUGS: bool = cfg!(feature = "sim-bugs");
