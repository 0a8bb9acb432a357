//! Client workloads: real client libraries (lettre) and small protocol
//! clients driving nodes over the network seam, real or simulated.

pub mod client;
pub mod pop3;
pub mod smtp;
pub mod smtp_dialogue;
