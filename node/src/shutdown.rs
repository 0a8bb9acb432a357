//! Graceful shutdown, after mini-redis: one trigger, many listeners. Accept
//! loops stop accepting; sessions stop at their next command boundary.

use tokio::sync::watch;

/// Starts the shutdown of everything holding a matching [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Tells a task that the node is shutting down.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until shutdown starts (returns at once if it already has, or
    /// if the trigger was dropped).
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|down| *down).await;
    }
}

impl ShutdownTrigger {
    pub fn shut_down(&self) {
        self.0.send_replace(true);
    }
}
