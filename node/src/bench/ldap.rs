//! Placeholder: `tiermail-node bench-ldap` (being written).

/// Options of `tiermail-node bench-ldap`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> std::process::ExitCode {
    eprintln!("tiermail-node bench-ldap: not written yet");
    std::process::ExitCode::FAILURE
}
