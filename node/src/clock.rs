//! Wall-clock time for message dates and Maildir names, derived from the
//! runtime's monotonic clock so that turmoil controls it in simulation.
//! The epoch is read once at the binary's edge (or fixed by the simulator);
//! nothing else in the node reads the system clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall-clock time = a fixed epoch + time elapsed on the tokio clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: SystemTime,
    start: Instant,
}

impl Clock {
    /// A clock that reads `epoch` now. Call inside the runtime (in
    /// simulation, inside the host) so `start` is on the right clock.
    pub fn starting_at(epoch: SystemTime) -> Self {
        Self { epoch, start: Instant::now() }
    }

    /// The current wall-clock time.
    pub fn now(&self) -> SystemTime {
        self.epoch + self.start.elapsed()
    }

    /// Time since the Unix epoch (zero if the epoch is before 1970).
    pub fn since_unix_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}
