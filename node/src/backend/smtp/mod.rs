//! The back-end SMTP service (RFC 5321): receives mail for local accounts
//! and delivers it to their Maildirs. 250 after DATA means every accepted
//! recipient's copy is on stable storage. Unauthenticated clients may only
//! send to local recipients (no open relay); this node has no outbound
//! queue yet, so mail for other domains is refused even after AUTH.

pub(crate) mod data;
pub(crate) mod exchange;
pub(crate) mod reply;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Request;
use tracing::{debug, info, warn};

use super::Context;
use crate::connection::{Connection, ReadError};
use crate::directory::{AUTH_FAILURE_DELAY, AuthOutcome, Recipient};
use crate::server::Protocol;
use crate::store::AccountId;
use reply::{MAX_ERRORS, Reply};

/// A Received field (RFC 5321 4.4) for a message from `peer`, which
/// introduced itself as `helo`, taken in by `by`.
pub(crate) fn received(
    helo: Option<&str>,
    peer: SocketAddr,
    by: &str,
    authenticated: bool,
    clock: &crate::clock::Clock,
) -> String {
    let secs = i64::try_from(clock.since_unix_epoch().as_secs()).unwrap_or(0);
    let date = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S +0000");
    let with = if authenticated { "ESMTPA" } else { "ESMTP" };
    let helo = helo.unwrap_or("unknown").replace(['\r', '\n'], "");
    format!("Received: from {helo} ([{}])\r\n\tby {by} (tiermail) with {with};\r\n\t{date}\r\n", peer.ip())
}

/// The SMTP service of one node.
pub struct Smtp {
    ctx: Arc<Context>,
}

impl Smtp {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

impl Protocol for Smtp {
    const NAME: &'static str = "smtp";

    fn idle_timeout(&self) -> Duration {
        self.ctx.limits.idle_timeout()
    }

    async fn session(self: Arc<Self>, conn: Connection, peer: SocketAddr) {
        let mut session = Session {
            ctx: self.ctx.clone(),
            conn,
            peer,
            helo: None,
            user: None,
            from: None,
            rcpts: Vec::new(),
            errors: 0,
        };
        match session.run().await {
            Ok(()) | Err(ReadError::Closed) => debug!("session ended"),
            Err(e) => debug!(error = %e, "session ended"),
        }
        session.conn.close().await;
    }
}

struct Session {
    ctx: Arc<Context>,
    conn: Connection,
    peer: SocketAddr,
    helo: Option<String>,
    user: Option<AccountId>,
    /// The envelope sender once MAIL was accepted (`Some("")` for `<>`).
    from: Option<String>,
    rcpts: Vec<AccountId>,
    errors: u32,
}

impl Session {
    async fn run(&mut self) -> Result<(), ReadError> {
        let greeting = format!("{} ESMTP tiermail ready", self.ctx.hostname);
        self.send(Reply::new(220, "", &greeting)).await?;
        loop {
            let line = match self.conn.read_command(self.ctx.limits.max_line_length).await {
                Ok(line) => line,
                Err(ReadError::TooLong) => {
                    self.error(Reply::new(500, "5.5.2", "Line too long")).await?;
                    continue;
                }
                Err(ReadError::TimedOut) => {
                    return self.send(Reply::new(421, "4.4.2", "Idle timeout, closing connection")).await;
                }
                Err(ReadError::ShuttingDown) => {
                    return self.send(Reply::new(421, "4.3.2", "Service shutting down, try again later")).await;
                }
                Err(e) => return Err(e),
            };
            let mut bytes = line.bytes;
            bytes.extend_from_slice(b"\r\n");
            let request = Request::parse(&mut bytes.iter()).map(|r| r.into_owned());
            match request {
                Ok(Request::Quit) => {
                    return self.send(Reply::new(221, "2.0.0", "Bye")).await;
                }
                Ok(Request::Rcpt { to }) => {
                    let address = reply::qualify_postmaster(to.address, &bytes, self.ctx.accounts.domains());
                    self.rcpt(address).await?
                }
                Ok(request) => self.command(request).await?,
                Err(e) => self.error(Reply::parse_error(&e)).await?,
            }
        }
    }

    async fn command(&mut self, request: Request<String>) -> Result<(), ReadError> {
        match request {
            Request::Ehlo { host } => {
                self.reset();
                self.helo = Some(host);
                let reply = reply::ehlo(&self.ctx.hostname, self.ctx.limits.max_message_size);
                self.send(reply).await
            }
            Request::Helo { host } => {
                self.reset();
                self.helo = Some(host);
                let text = self.ctx.hostname.clone();
                self.send(Reply::new(250, "", &text)).await
            }
            Request::Lhlo { .. } => self.error(Reply::new(500, "5.5.1", "LHLO is for LMTP")).await,
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to.address).await,
            Request::Data => self.data().await,
            Request::Rset => {
                self.reset();
                self.send(Reply::new(250, "2.0.0", "Ok")).await
            }
            Request::Noop { .. } => self.send(Reply::new(250, "2.0.0", "Ok")).await,
            Request::Vrfy { .. } => {
                self.send(Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"))
                    .await
            }
            Request::Expn { .. } => self.error(Reply::new(502, "5.5.1", "EXPN not supported")).await,
            Request::Help { .. } => self.send(Reply::new(214, "2.0.0", "See RFC 5321")).await,
            Request::Auth { mechanism, initial_response } => self.auth(mechanism, initial_response).await,
            Request::StartTls => self.error(Reply::new(502, "5.5.1", "STARTTLS not available")).await,
            Request::Bdat { .. } => self.error(Reply::new(502, "5.5.1", "BDAT not supported")).await,
            _ => self.error(Reply::new(502, "5.5.1", "Command not implemented")).await,
        }
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>) -> Result<(), ReadError> {
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Send EHLO or HELO first")).await;
        }
        if self.from.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Sender already given")).await;
        }
        if from.size as u64 > self.ctx.limits.max_message_size {
            return self.error(Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size")).await;
        }
        self.from = Some(from.address);
        self.send(Reply::new(250, "2.1.0", "Ok")).await
    }

    async fn rcpt(&mut self, address: String) -> Result<(), ReadError> {
        if self.from.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Need MAIL before RCPT")).await;
        }
        if self.rcpts.len() >= self.ctx.limits.max_recipients {
            return self.send(Reply::new(452, "4.5.3", "Too many recipients")).await;
        }
        let reply = match self.ctx.recipient(&address).await {
            Recipient::Local(id) => {
                if !self.rcpts.contains(&id) {
                    self.rcpts.push(id);
                }
                Reply::new(250, "2.1.5", "Ok")
            }
            Recipient::UnknownLocal => Reply::new(550, "5.1.1", "No such user here"),
            Recipient::Invalid => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            Recipient::Unavailable => Reply::new(451, "4.4.3", "Directory unavailable, try again later"),
            Recipient::NotHere => Reply::new(451, "4.2.0", "Mailbox is not on this server, try again later"),
            Recipient::Foreign if self.user.is_none() => Reply::new(554, "5.7.1", "Relay access denied"),
            Recipient::Foreign => Reply::new(550, "5.7.1", "This node does not relay mail to other domains yet"),
        };
        if reply.is_positive() {
            self.send(reply).await
        } else {
            info!(rcpt = %address, code = reply.code, "recipient refused");
            self.error(reply).await
        }
    }

    async fn data(&mut self) -> Result<(), ReadError> {
        if self.from.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Need MAIL command")).await;
        }
        if self.rcpts.is_empty() {
            return self.error(Reply::new(554, "5.5.1", "No valid recipients")).await;
        }
        self.send(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>")).await?;
        let header = self.trace_headers();
        let message = match exchange::read_message(&mut self.conn, self.ctx.limits.max_message_size, header).await {
            Ok(message) => message,
            Err(ReadError::TimedOut) => {
                self.reset();
                return self.send(Reply::new(421, "4.4.2", "Timeout during DATA, closing connection")).await;
            }
            Err(e) => {
                // The client vanished mid-DATA: nothing was delivered.
                warn!(error = %e, "client lost during DATA; message discarded");
                return Err(e);
            }
        };
        let reply = match message {
            None => Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size"),
            Some(message) => self.deliver(message).await,
        };
        self.reset();
        self.send(reply).await
    }

    /// Delivers to every recipient or to none: if one copy cannot be stored,
    /// the copies already stored are removed again before answering 451, so
    /// the client's retry neither loses nor duplicates mail.
    async fn deliver(&mut self, message: Vec<u8>) -> Reply {
        let message = Arc::new(message);
        let mut delivered: Vec<(AccountId, u32)> = Vec::new();
        for rcpt in &self.rcpts {
            match self.ctx.store.deliver(rcpt, message.clone()).await {
                Ok(uid) => delivered.push((rcpt.clone(), uid)),
                Err(e) => {
                    warn!(error = %e, "delivery failed; rolling back this transaction");
                    for (mailbox, uid) in delivered {
                        if let Err(e) = self.ctx.store.expunge(&mailbox, "INBOX", vec![uid]).await {
                            warn!(error = %e, %mailbox, uid, "rollback failed; a retry may duplicate this copy");
                        }
                    }
                    return Reply::new(451, "4.3.0", "Temporary failure storing the message, try again later");
                }
            }
        }
        let ids: Vec<String> = delivered.iter().map(|(m, uid)| format!("{m} uid {uid}")).collect();
        info!(from = self.from.as_deref().unwrap_or(""), size = message.len(), to = %ids.join(", "), "delivered");
        Reply::new(250, "2.0.0", &format!("Ok: delivered to {} mailbox(es)", delivered.len()))
    }

    /// The Return-Path and Received fields RFC 5321 (4.4) requires at final
    /// delivery.
    fn trace_headers(&self) -> Vec<u8> {
        let from = self.from.as_deref().unwrap_or("").replace(['\r', '\n', '>'], "");
        let received =
            received(self.helo.as_deref(), self.peer, &self.ctx.hostname, self.user.is_some(), &self.ctx.clock);
        format!("Return-Path: <{from}>\r\n{received}").into_bytes()
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> Result<(), ReadError> {
        if self.user.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Already authenticated")).await;
        }
        if self.from.is_some() {
            return self.error(Reply::new(503, "5.5.1", "AUTH not permitted during a mail transaction")).await;
        }
        let limit = self.ctx.limits.max_line_length;
        let credentials = match exchange::credentials(&mut self.conn, mechanism, &initial, limit).await? {
            Ok(c) => c,
            Err(e) => return self.error(e.reply()).await,
        };
        match self.ctx.authenticate(&credentials.login, &credentials.password).await {
            AuthOutcome::Accepted(id) => {
                tracing::Span::current().record("user", tracing::field::display(&id));
                info!("authenticated");
                self.user = Some(id);
                self.send(Reply::new(235, "2.7.0", "Authentication successful")).await
            }
            AuthOutcome::Rejected => {
                info!(login = %credentials.login, "authentication failed");
                tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                self.error(Reply::new(535, "5.7.8", "Authentication credentials invalid")).await
            }
            AuthOutcome::Unavailable => {
                self.send(Reply::new(454, "4.7.0", "Temporary authentication failure, try again later")).await
            }
            AuthOutcome::NotHere => {
                self.send(Reply::new(454, "4.7.0", "Your mailbox is not on this server, try again later")).await
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    async fn send(&mut self, reply: Reply) -> Result<(), ReadError> {
        self.conn.write(reply.to_string().as_bytes()).await?;
        Ok(())
    }

    /// Sends a negative reply and drops a client that keeps erring (only
    /// permanent failures count: a 4xx is the server's trouble).
    async fn error(&mut self, reply: Reply) -> Result<(), ReadError> {
        if reply.is_permanent_failure() {
            self.errors += 1;
        }
        self.send(reply).await?;
        if self.errors >= MAX_ERRORS {
            self.send(Reply::new(421, "4.7.0", "Too many errors, closing connection")).await?;
            return Err(ReadError::Closed);
        }
        Ok(())
    }
}
