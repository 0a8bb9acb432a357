//! Placeholder: `tiermail-node bench-proxy` (being written).

/// Options of `tiermail-node bench-proxy`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> std::process::ExitCode {
    eprintln!("tiermail-node bench-proxy: not written yet");
    std::process::ExitCode::FAILURE
}
