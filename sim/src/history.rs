//! What happened in a run, as the invariant checkers and the report see
//! it: every client operation with its outcome, every fault, in simulated
//! time. Recorded by the workloads and the fault schedule as the run goes.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// What a client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// SMTP delivery through an SMTP proxy (unauthenticated, local recipients).
    Deliver,
    /// One SMTP transaction of a session that sends to several recipients
    /// across back-ends and carries on after refused RCPTs (one entry per
    /// transaction; its users are the recipients that got 250).
    DeliverMany,
    /// IMAP APPEND to INBOX through an IMAP proxy.
    Append,
    /// IMAP login + SELECT INBOX + FETCH of every message's id.
    ImapRead,
    /// POP3 login + TOP of every message's header.
    Pop3Read,
    /// POP3 login, TOP of every message, DELE of a few, then QUIT — or the
    /// session is cut before QUIT, when nothing may be deleted.
    Pop3Delete,
    /// IMAP login + SELECT INBOX + IDLE until new mail or a few seconds.
    Idle,
    /// A login that must fail (wrong password, unknown user, injection,
    /// account without password), over IMAP, POP3 or SMTP AUTH.
    BadLogin,
    /// Unauthenticated SMTP to a foreign domain: must be refused.
    RelayProbe,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Deliver => "deliver",
            OpKind::DeliverMany => "deliver-many",
            OpKind::Append => "append",
            OpKind::ImapRead => "imap-read",
            OpKind::Pop3Read => "pop3-read",
            OpKind::Pop3Delete => "pop3-delete",
            OpKind::Idle => "idle",
            OpKind::BadLogin => "bad-login",
            OpKind::RelayProbe => "relay-probe",
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "class", content = "detail", rename_all = "kebab-case")]
pub enum Outcome {
    /// Done: the server acknowledged (250 after DATA, APPEND OK, a read
    /// completed; for a bad login or relay probe: the server ACCEPTED it).
    Ok,
    /// A temporary refusal (SMTP 4xx, IMAP NO [UNAVAILABLE], POP3
    /// -ERR [SYS/TEMP], connection refused): nothing was done.
    Temporary(String),
    /// A permanent refusal (SMTP 5xx, NO, -ERR [AUTH]).
    Permanent(String),
    /// Timed out or the connection broke mid-operation: the client cannot
    /// know whether it took effect.
    Unknown(String),
}

impl Outcome {
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Temporary(_) => "temporary",
            Outcome::Permanent(_) => "permanent",
            Outcome::Unknown(_) => "unknown",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Outcome::Ok => "",
            Outcome::Temporary(d) | Outcome::Permanent(d) | Outcome::Unknown(d) => d,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            other => write!(f, "{}: {}", other.class(), other.detail()),
        }
    }
}

/// One client operation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Op {
    /// The client host that ran it.
    pub client: String,
    pub kind: OpKind,
    /// The host it talked to (a proxy).
    pub via: String,
    /// The login or recipients it acted for.
    pub users: Vec<String>,
    /// Message ids it sent (deliver, append).
    pub sent: Vec<String>,
    /// Message ids it saw (reads).
    pub seen: Vec<String>,
    /// (UIDVALIDITY, UID, message id) of what it saw, where the protocol
    /// tells.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uids: Vec<(u32, u32, String)>,
    /// Message ids it removed (POP3 DELE committed by QUIT): gone for good
    /// if the outcome is ok, perhaps gone if it is unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    pub start: Duration,
    pub end: Duration,
    pub outcome: Outcome,
    /// Whether it ran in the quiet phase (faults healed).
    pub quiet: bool,
}

/// One fault applied to the world, or its healing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultMark {
    pub at: Duration,
    /// When it was healed (None: still active at the end of the fault phase).
    pub until: Option<Duration>,
    /// The hosts it touched.
    pub hosts: Vec<String>,
    /// Human-readable, e.g. "crash node-b" or "directory hang".
    pub label: String,
}

/// The run's record, shared by every client host (turmoil runs all hosts
/// on one thread, so `Rc<RefCell>` is enough and keeps order deterministic).
#[derive(Debug, Clone, Default)]
pub struct History {
    inner: Rc<RefCell<Record>>,
}

/// The plain data behind a [`History`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Record {
    pub ops: Vec<Op>,
    pub faults: Vec<FaultMark>,
}

impl History {
    pub fn push(&self, op: Op) {
        self.inner.borrow_mut().ops.push(op);
    }

    /// Records a fault; returns its index for [`History::healed`].
    pub fn fault(&self, at: Duration, hosts: Vec<String>, label: String) -> usize {
        let mut r = self.inner.borrow_mut();
        r.faults.push(FaultMark { at, until: None, hosts, label });
        r.faults.len() - 1
    }

    pub fn healed(&self, index: usize, at: Duration) {
        if let Some(f) = self.inner.borrow_mut().faults.get_mut(index) {
            f.until.get_or_insert(at);
        }
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Record {
        self.inner.borrow().clone()
    }
}
