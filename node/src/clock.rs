//! Wall-clock time for message dates and Maildir names, derived from the
//! runtime's clock so that turmoil controls it in simulation.
//! The epoch is read once at the binary's edge (or fixed by the simulator);
//! nothing else in the node reads the system clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall-clock time = an epoch + elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: SystemTime,
    elapsed: Elapsed,
}

#[derive(Debug, Clone, Copy)]
enum Elapsed {
    /// Time since `start` on the tokio clock: a real process.
    Since(Instant),
    /// The simulated world's elapsed time. A host's tokio clock starts over
    /// when the simulator restarts the host; the world's does not, so every
    /// host and every restart share one timeline and dates (Received,
    /// INTERNALDATE, UIDVALIDITY) never go backwards.
    Simulation,
}

impl Clock {
    /// A clock that reads `epoch` now. Call inside the runtime so `start`
    /// is on the right clock.
    pub fn starting_at(epoch: SystemTime) -> Self {
        Self { epoch, elapsed: Elapsed::Since(Instant::now()) }
    }

    /// A clock on the simulation's one timeline: `epoch` is when the
    /// simulation (not this host) started. Outside a simulated host it
    /// reads `epoch`.
    pub fn simulated(epoch: SystemTime) -> Self {
        Self { epoch, elapsed: Elapsed::Simulation }
    }

    /// The current wall-clock time.
    pub fn now(&self) -> SystemTime {
        self.epoch
            + match self.elapsed {
                Elapsed::Since(start) => start.elapsed(),
                Elapsed::Simulation => turmoil::sim_elapsed().unwrap_or_default(),
            }
    }

    /// Time since the Unix epoch (zero if the epoch is before 1970).
    pub fn since_unix_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}
