//! The back-end POP3 service (RFC 1939, RFC 2449 CAPA and response codes,
//! RFC 5034 AUTH PLAIN). A session works on the mailbox as it was at login;
//! DELE only marks, and the marked messages are removed durably at QUIT.
//! A session that ends any other way removes nothing.

pub mod command;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{Context, SessionSlot};
use crate::connection::{Connection, ReadError};
use crate::directory::{AUTH_FAILURE_DELAY, AuthOutcome};
use crate::sasl;
use crate::server::Protocol;
use crate::store::{AccountId, Snapshot};
use command::{Command, parse};

/// After this many rejected commands in one session, the client is dropped.
const MAX_ERRORS: u32 = 20;

const CAPABILITIES: &str = "+OK Capability list follows\r\nUSER\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN\r\nIMPLEMENTATION tiermail\r\n.\r\n";

/// The POP3 service of one node.
pub struct Pop3 {
    ctx: Arc<Context>,
}

impl Pop3 {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

impl Protocol for Pop3 {
    const NAME: &'static str = "pop3";

    fn idle_timeout(&self) -> Duration {
        self.ctx.limits.idle_timeout()
    }

    async fn session(self: Arc<Self>, conn: Connection, _peer: SocketAddr) {
        let mut session = Session { ctx: self.ctx.clone(), conn, user_given: None, open: None, errors: 0 };
        match session.run().await {
            Ok(()) | Err(ReadError::Closed) => debug!("session ended"),
            Err(e) => debug!(error = %e, "session ended"),
        }
        session.conn.close().await;
    }
}

/// The mailbox a logged-in session works on.
struct Maildrop {
    /// Counts against the per-account session limit while logged in.
    _slot: SessionSlot,
    mailbox: AccountId,
    snapshot: Snapshot,
    deleted: Vec<bool>,
}

struct Session {
    ctx: Arc<Context>,
    conn: Connection,
    /// The name from USER, waiting for PASS.
    user_given: Option<String>,
    open: Option<Maildrop>,
    errors: u32,
}

impl Session {
    async fn run(&mut self) -> Result<(), ReadError> {
        self.send("+OK tiermail POP3 ready\r\n").await?;
        loop {
            let line = match self.conn.read_command(self.ctx.limits.max_line_length).await {
                Ok(line) => line,
                Err(ReadError::TooLong) => {
                    self.error("-ERR Line too long\r\n").await?;
                    continue;
                }
                Err(ReadError::TimedOut) => return self.send("-ERR Idle timeout, closing connection\r\n").await,
                Err(ReadError::ShuttingDown) => {
                    return self.send("-ERR [SYS/TEMP] Server shutting down, try again later\r\n").await;
                }
                Err(e) => {
                    #[cfg(feature = "sim-bugs")]
                    if crate::bugs::active(crate::bugs::Bug::DeleteWithoutQuit) {
                        let _ = self.quit().await;
                    }
                    return Err(e);
                }
            };
            match parse(&line.bytes) {
                Ok(Command::Quit) => return self.quit().await,
                Ok(command) if self.open.is_some() => self.transaction(command).await?,
                Ok(command) => self.authorization(command).await?,
                Err(e) => self.error(&format!("-ERR {e}\r\n")).await?,
            }
        }
    }

    async fn authorization(&mut self, command: Command) -> Result<(), ReadError> {
        match command {
            Command::Capa => self.send(CAPABILITIES).await,
            Command::Noop => self.send("+OK\r\n").await,
            Command::User(name) => {
                self.user_given = Some(name);
                self.send("+OK\r\n").await
            }
            Command::Pass(password) => match self.user_given.take() {
                Some(login) => self.login(&login, &password).await,
                None => self.error("-ERR USER first\r\n").await,
            },
            Command::AuthList => self.send("+OK\r\nPLAIN\r\n.\r\n").await,
            Command::Auth { mechanism, initial } if mechanism == "PLAIN" => {
                let response = match initial {
                    Some(initial) => sasl::decode_response(initial.as_bytes()),
                    None => {
                        self.send("+ \r\n").await?;
                        let line = self.conn.read_line(self.ctx.limits.max_line_length).await?;
                        sasl::decode_response(&line.bytes)
                    }
                };
                match response.and_then(|r| sasl::plain(&r)) {
                    Ok(c) => self.login(&c.login, &c.password).await,
                    Err(e) => self.error(&format!("-ERR {e}\r\n")).await,
                }
            }
            Command::Auth { .. } => self.error("-ERR Unsupported authentication mechanism\r\n").await,
            _ => self.error("-ERR Not logged in\r\n").await,
        }
    }

    async fn login(&mut self, login: &str, password: &str) -> Result<(), ReadError> {
        let mailbox = match self.ctx.authenticate(login, password).await {
            AuthOutcome::Accepted(id) => id,
            AuthOutcome::Rejected => {
                info!(%login, "authentication failed");
                tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                return self.error("-ERR [AUTH] Authentication failed\r\n").await;
            }
            AuthOutcome::Unavailable => {
                return self.send("-ERR [SYS/TEMP] Directory unavailable, try again later\r\n").await;
            }
            AuthOutcome::NotHere => {
                return self.send("-ERR [SYS/TEMP] Your mailbox is not on this server, try again later\r\n").await;
            }
        };
        let Some(slot) = self.ctx.claim_session(&mailbox) else {
            info!(%mailbox, "session limit reached");
            return self.send("-ERR [IN-USE] Too many sessions for this user; close one\r\n").await;
        };
        tracing::Span::current().record("user", tracing::field::display(&mailbox));
        match self.ctx.store.snapshot(&mailbox, "INBOX").await {
            Ok(snapshot) => {
                info!(messages = snapshot.messages.len(), "logged in");
                let deleted = vec![false; snapshot.messages.len()];
                self.open = Some(Maildrop { _slot: slot, mailbox, snapshot, deleted });
                self.send("+OK Logged in\r\n").await
            }
            Err(e) => {
                warn!(error = %e, "cannot open mailbox");
                self.send("-ERR [SYS/TEMP] Mailbox unavailable, try again later\r\n").await
            }
        }
    }

    async fn transaction(&mut self, command: Command) -> Result<(), ReadError> {
        let drop = self.open.as_mut().expect("transaction state has a maildrop");
        let reply = match command {
            Command::Capa => CAPABILITIES.to_string(),
            Command::Noop => "+OK\r\n".into(),
            Command::Stat => {
                let (count, size) = drop.live().fold((0, 0), |(c, s), m| (c + 1, s + m.size));
                format!("+OK {count} {size}\r\n")
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(command, Command::Uidl(_));
                let mut out = String::from("+OK\r\n");
                for (i, m) in drop.snapshot.messages.iter().enumerate().filter(|(i, _)| !drop.deleted[*i]) {
                    let value = if uidl { unique_id(drop, m.uid) } else { m.size.to_string() };
                    out.push_str(&format!("{} {value}\r\n", i + 1));
                }
                out + ".\r\n"
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => match message(drop, n) {
                Ok(i) if matches!(command, Command::Uidl(_)) => {
                    format!("+OK {n} {}\r\n", unique_id(drop, drop.snapshot.messages[i].uid))
                }
                Ok(i) => format!("+OK {n} {}\r\n", drop.snapshot.messages[i].size),
                Err(e) => return self.error(e).await,
            },
            Command::Dele(n) => match message(drop, n) {
                Ok(i) => {
                    drop.deleted[i] = true;
                    format!("+OK Message {n} deleted\r\n")
                }
                Err(e) => return self.error(e).await,
            },
            Command::Rset => {
                drop.deleted.iter_mut().for_each(|d| *d = false);
                "+OK\r\n".into()
            }
            Command::Retr(n) => return self.retrieve(n, None).await,
            Command::Top { msg, lines } => return self.retrieve(msg, Some(lines)).await,
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::AuthList => {
                return self.error("-ERR Already logged in\r\n").await;
            }
            Command::Quit => unreachable!("handled by run"),
        };
        self.send(&reply).await
    }

    /// RETR (all lines) or TOP (headers and `body_lines` lines of body).
    async fn retrieve(&mut self, n: u32, body_lines: Option<u32>) -> Result<(), ReadError> {
        let drop = self.open.as_ref().expect("transaction state has a maildrop");
        let index = match message(drop, n) {
            Ok(i) => i,
            Err(e) => return self.error(e).await,
        };
        let entry = &drop.snapshot.messages[index];
        let data = match self.ctx.store.read(&drop.mailbox, "INBOX", entry.uid).await {
            Ok(data) => data,
            Err(e) => {
                warn!(error = %e, "cannot read message");
                return self.send("-ERR [SYS/TEMP] Message cannot be read now\r\n").await;
            }
        };
        let header = format!("+OK {} octets\r\n", entry.size);
        self.conn.write(header.as_bytes()).await?;
        self.conn.write(&dot_stuff(&data, body_lines)).await?;
        Ok(())
    }

    async fn quit(&mut self) -> Result<(), ReadError> {
        let Some(drop) = self.open.take() else {
            return self.send("+OK Bye\r\n").await;
        };
        let uids: Vec<u32> =
            drop.snapshot.messages.iter().zip(&drop.deleted).filter(|(_, del)| **del).map(|(m, _)| m.uid).collect();
        if uids.is_empty() {
            return self.send("+OK Bye\r\n").await;
        }
        let count = uids.len();
        #[cfg(feature = "sim-bugs")]
        let uids = if crate::bugs::active(crate::bugs::Bug::DeletedButKept) { Vec::new() } else { uids };
        match self.ctx.store.expunge(&drop.mailbox, "INBOX", uids).await {
            Ok(()) => {
                info!(deleted = count, "messages removed at QUIT");
                self.send(&format!("+OK Bye, {count} message(s) deleted\r\n")).await
            }
            Err(e) => {
                warn!(error = %e, "removing messages at QUIT failed");
                self.send("-ERR [SYS/TEMP] Some deleted messages were not removed\r\n").await
            }
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(text.as_bytes()).await?;
        Ok(())
    }

    async fn error(&mut self, text: &str) -> Result<(), ReadError> {
        self.errors += 1;
        self.send(text).await?;
        if self.errors >= MAX_ERRORS {
            self.send("-ERR Too many errors, closing connection\r\n").await?;
            return Err(ReadError::Closed);
        }
        Ok(())
    }
}

impl Maildrop {
    /// The messages not marked deleted.
    fn live(&self) -> impl Iterator<Item = &crate::store::MessageEntry> {
        self.snapshot.messages.iter().zip(&self.deleted).filter(|(_, del)| !**del).map(|(m, _)| m)
    }
}

/// The index of message `n` if it exists and is not marked deleted.
fn message(drop: &Maildrop, n: u32) -> Result<usize, &'static str> {
    let index = (n as usize).checked_sub(1).filter(|i| *i < drop.deleted.len());
    match index {
        None => Err("-ERR No such message\r\n"),
        Some(i) if drop.deleted[i] => Err("-ERR Message already deleted\r\n"),
        Some(i) => Ok(i),
    }
}

/// The UIDL unique id: UID and UIDVALIDITY, as Dovecot's `%08Xu%08Xv`.
fn unique_id(drop: &Maildrop, uid: u32) -> String {
    format!("{uid:08X}{:08X}", drop.snapshot.uid_validity)
}

/// A stored message (CRLF lines) as a POP3 multi-line response body:
/// lines starting with '.' doubled, a final CRLF ensured, then ".".
/// With `body_lines`, only the header and that many body lines (TOP).
pub(crate) fn dot_stuff(message: &[u8], body_lines: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut in_body = false;
    let mut body_left = body_lines;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if in_body {
            match body_left.as_mut() {
                Some(0) => break,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_top() {
        let msg = b"Subject: a\r\n\r\n.one\r\ntwo\r\nthree";
        assert_eq!(dot_stuff(msg, None), b"Subject: a\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n");
        assert_eq!(dot_stuff(msg, Some(1)), b"Subject: a\r\n\r\n..one\r\n.\r\n");
        assert_eq!(dot_stuff(msg, Some(0)), b"Subject: a\r\n\r\n.\r\n");
        assert_eq!(dot_stuff(b"", None), b".\r\n");
    }
}
