//! Deliberate bugs, compiled only with the `sim-bugs` feature, for the
//! simulator's self-tests: a checker that never fires proves nothing, so
//! tiermail-sim's tests switch one of these on and require chaos to catch
//! it. Only `cargo test -p tiermail-sim --features sim-bugs --test
//! self_test` enables the feature (tiermail-sim's `sim-bugs`, not a
//! dev-dependency feature, which cargo would unify into every build that
//! includes the tests), and a `tiermail-node` binary built with it refuses
//! to start ([`crate::DELIBERATE_BUGS`]).
//!
//! The switch is per thread: a turmoil simulation runs every host on the
//! thread that runs it, so a bug switched on for one test's simulation
//! cannot leak into another test running beside it.

use std::cell::{Cell, RefCell};

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The disk skips fsync: deliveries are acknowledged before they are
    /// durable, so a crash loses acknowledged mail.
    AckBeforeFsync,
    /// A login the directory cannot check is accepted instead of failing
    /// temporarily.
    AuthPassesWhenDirectoryErrors,
    /// A user map hands out the route of the previous lookup (a cache keyed
    /// by the wrong thing): sessions go to another user's back-end, which
    /// takes them (as back-ends did before they checked a user's home).
    StaleRoute,
    /// The UID list's appends skip fsync: a crash forgets UIDs that clients
    /// saw, and they are handed out again.
    UidListNotSynced,
    /// POP3 QUIT answers +OK without removing the messages marked deleted.
    DeletedButKept,
    /// A POP3 session cut before QUIT still removes what it marked deleted.
    DeleteWithoutQuit,
    /// The SMTP proxy, when a back-end fails after accepting recipients,
    /// starts the transaction over on the next recipient's back-end (the
    /// accepted recipients' copies are lost when DATA gets 250).
    RestartTransactionElsewhere,
    /// The SMTP proxy accepts foreign recipients from unauthenticated
    /// clients (an open relay, in its RCPT answer).
    RelayForeignRecipients,
}

thread_local! {
    static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
    static LAST_ROUTE: RefCell<Option<(String, Option<u16>)>> = const { RefCell::new(None) };
}

/// Switches `bug` on (or all bugs off) for this thread.
pub fn set(bug: Option<Bug>) {
    ACTIVE.with(|a| a.set(bug));
    LAST_ROUTE.with(|last| last.borrow_mut().take());
}

/// Whether `bug` is switched on for this thread.
pub fn active(bug: Bug) -> bool {
    ACTIVE.with(|a| a.get()) == Some(bug)
}

/// [`Bug::StaleRoute`]: remembers this route and returns the previous one
/// (this one, the first time).
pub fn swap_route(host: String, port: Option<u16>) -> (String, Option<u16>) {
    LAST_ROUTE.with(|last| last.borrow_mut().replace((host.clone(), port))).unwrap_or((host, port))
}
