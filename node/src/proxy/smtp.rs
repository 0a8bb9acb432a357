//! The SMTP proxy in the seed's "routing" state: each recipient is looked
//! up in the user map and the message goes to the back-end that holds it.
//! Unmapped recipients follow normal relay policy (local domain → 550,
//! other domains from unauthenticated clients → 554: no open relay). A
//! directory that cannot answer gives 451 4.4.3, never a 5xx.
//!
//! One back-end per transaction. SMTP has one reply to DATA for the whole
//! transaction, so a message split over two back-ends could be stored by
//! one and refused by the other with no correct answer left: 250 loses the
//! refused copies, 4xx makes the retry duplicate the stored ones. Instead,
//! a recipient on a different back-end than the transaction's first one is
//! answered `452 4.5.3` (RFC 5321 4.5.3.1.10); every client then sends the
//! message to those recipients in a following transaction. The reply to
//! DATA is the one back-end's reply, so each copy is stored exactly once.
//!
//! A back-end that fails after it accepted recipients takes the whole
//! transaction down with it: every later RCPT and the DATA get a 4xx, so
//! the client resends the message to everyone. Starting over on another
//! back-end would answer DATA with 250 for recipients whose copies died
//! with the first one.
//!
//! Only permanent (5xx) replies count toward the error limit: the proxy's
//! own 452 and 451 are flow control and outages, not client misbehaviour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{MAIL_BODY_8BITMIME, Request};
use tracing::{debug, info, warn};

use super::{ProxyAuth, ProxyContext, Route};
use crate::backend::pop3::dot_stuff;
use crate::backend::smtp::exchange;
use crate::backend::smtp::received;
use crate::backend::smtp::reply::{MAX_ERRORS, Reply, ehlo, qualify_postmaster};
use crate::clock::Clock;
use crate::connection::{Connection, ReadError};
use crate::directory::AUTH_FAILURE_DELAY;
use crate::server::Protocol;

/// The SMTP proxy service.
pub struct SmtpProxy {
    ctx: Arc<ProxyContext>,
    /// The node's local domains: unmapped recipients there do not exist.
    domains: Vec<String>,
    hostname: String,
    clock: Clock,
}

impl SmtpProxy {
    pub fn new(ctx: Arc<ProxyContext>, domains: Vec<String>, hostname: String, clock: Clock) -> Self {
        Self { ctx, domains, hostname, clock }
    }
}

impl Protocol for SmtpProxy {
    const NAME: &'static str = "smtp-proxy";

    fn idle_timeout(&self) -> Duration {
        self.ctx.limits.idle_timeout()
    }

    async fn session(self: Arc<Self>, conn: Connection, peer: SocketAddr) {
        let mut session =
            Session { proxy: self.clone(), conn, peer, helo: None, authenticated: false, tx: None, errors: 0 };
        if let Err(e) = session.run().await {
            debug!(error = %e, "session ended");
        }
        if let Some(tx) = session.tx.take() {
            tx.backend.close().await;
        }
        session.conn.close().await;
    }
}

/// An open transaction: the back-end it goes to and what it has accepted.
struct Transaction {
    target: String,
    backend: Connection,
    from: String,
    rcpts: Vec<String>,
    /// The back-end failed after accepting `rcpts`: their copies cannot be
    /// stored any more, so the transaction can only end in a 4xx.
    failed: bool,
}

struct Session {
    proxy: Arc<SmtpProxy>,
    conn: Connection,
    peer: SocketAddr,
    helo: Option<String>,
    authenticated: bool,
    tx: Option<Transaction>,
    errors: u32,
}

/// What MAIL said, until the first recipient opens the back-end side.
struct Sender {
    address: String,
    eight_bit: bool,
}

impl Session {
    async fn run(&mut self) -> Result<(), ReadError> {
        let greeting = format!("220 {} ESMTP tiermail proxy ready\r\n", self.proxy.hostname);
        self.conn.write(greeting.as_bytes()).await?;
        let mut sender: Option<Sender> = None;
        loop {
            let line = match self.conn.read_command(self.proxy.ctx.limits.max_line_length).await {
                Ok(line) => line,
                Err(ReadError::TooLong) => {
                    self.reply(Reply::new(500, "5.5.2", "Line too long")).await?;
                    continue;
                }
                Err(ReadError::ShuttingDown) => {
                    return self.reply(Reply::new(421, "4.3.2", "Service shutting down, try again later")).await;
                }
                Err(ReadError::TimedOut) => return self.reply(Reply::new(421, "4.4.2", "Idle timeout")).await,
                Err(e) => return Err(e),
            };
            let mut bytes = line.bytes;
            bytes.extend_from_slice(b"\r\n");
            let reply = match Request::parse(&mut bytes.iter()).map(|r| r.into_owned()) {
                Ok(Request::Quit) => return self.reply(Reply::new(221, "2.0.0", "Bye")).await,
                Ok(Request::Ehlo { host }) | Ok(Request::Helo { host }) => {
                    self.reset(&mut sender).await;
                    self.helo = Some(host);
                    ehlo(&self.proxy.hostname, self.proxy.ctx.limits.max_message_size)
                }
                Ok(Request::Mail { from }) => {
                    if self.helo.is_none() {
                        Reply::new(503, "5.5.1", "Send EHLO or HELO first")
                    } else if sender.is_some() {
                        Reply::new(503, "5.5.1", "Sender already given")
                    } else if from.size as u64 > self.proxy.ctx.limits.max_message_size {
                        Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size")
                    } else {
                        let eight_bit = from.flags & MAIL_BODY_8BITMIME != 0;
                        sender = Some(Sender { address: from.address, eight_bit });
                        Reply::new(250, "2.1.0", "Ok")
                    }
                }
                Ok(Request::Rcpt { to }) => match &sender {
                    None => Reply::new(503, "5.5.1", "Need MAIL before RCPT"),
                    Some(s) => {
                        let address = qualify_postmaster(to.address, &bytes, &self.proxy.domains);
                        self.rcpt(s, address).await
                    }
                },
                Ok(Request::Data) => {
                    let reply = self.data().await?;
                    self.reset(&mut sender).await;
                    reply
                }
                Ok(Request::Rset) => {
                    self.reset(&mut sender).await;
                    Reply::new(250, "2.0.0", "Ok")
                }
                Ok(Request::Noop { .. }) => Reply::new(250, "2.0.0", "Ok"),
                Ok(Request::Vrfy { .. }) => {
                    Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
                }
                Ok(Request::Auth { mechanism, initial_response }) => {
                    self.auth(mechanism, initial_response, sender.is_some()).await?
                }
                Ok(_) => Reply::new(502, "5.5.1", "Command not implemented"),
                Err(e) => Reply::parse_error(&e),
            };
            if reply.is_permanent_failure() {
                self.errors += 1;
            }
            self.reply(reply).await?;
            if self.errors >= MAX_ERRORS {
                return self.reply(Reply::new(421, "4.7.0", "Too many errors, closing connection")).await;
            }
        }
    }

    /// Routes one recipient and, for the transaction's back-end, passes the
    /// RCPT on so the back-end's own verdict (unknown user) reaches the client.
    async fn rcpt(&mut self, sender: &Sender, address: String) -> Reply {
        let ctx = self.proxy.ctx.clone();
        if self.tx.as_ref().is_some_and(|tx| tx.failed) {
            return transaction_failed();
        }
        if self.tx.as_ref().is_some_and(|tx| tx.rcpts.len() >= ctx.limits.max_recipients) {
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        let target = match ctx.router.route(&address).await {
            Route::Mapped { host, port } => ctx.target_of(host, port),
            Route::Unavailable => return Reply::new(451, "4.4.3", "Directory unavailable, try again later"),
            Route::NotInMap => {
                let domain = address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
                return match domain {
                    None => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
                    Some(d) if self.proxy.domains.contains(&d) => Reply::new(550, "5.1.1", "No such user here"),
                    #[cfg(feature = "sim-bugs")]
                    Some(_) if crate::bugs::active(crate::bugs::Bug::RelayForeignRecipients) => {
                        Reply::new(250, "2.1.5", "Ok")
                    }
                    Some(_) if !self.authenticated => Reply::new(554, "5.7.1", "Relay access denied"),
                    Some(_) => Reply::new(550, "5.7.1", "This node does not relay mail to other domains yet"),
                };
            }
        };
        if let Some(tx) = &self.tx
            && tx.target != target
        {
            // See the module documentation: one back-end per transaction.
            return Reply::new(452, "4.5.3", "Recipient on another server: send it in a new transaction");
        }
        if self.tx.is_none() {
            match self.open_backend(&target, sender).await {
                Ok(tx) => self.tx = Some(tx),
                Err(reply) => return reply,
            }
        }
        let tx = self.tx.as_mut().expect("opened above");
        // The back-end's RCPT may wait on its directory: login_timeout, not
        // the longer wait for storing a message after DATA.
        let line = format!("RCPT TO:<{address}>");
        let rcpt = command(&mut tx.backend, &line);
        let answer = tokio::time::timeout(ctx.settings.login_timeout, rcpt).await.unwrap_or(Err(ReadError::TimedOut));
        match answer {
            Ok(reply) => {
                if reply.starts_with('2') {
                    tx.rcpts.push(address);
                }
                Reply::raw(&reply)
            }
            Err(e) => {
                warn!(backend = %tx.target, error = %e, accepted = tx.rcpts.len(), "back-end failed at RCPT");
                ctx.backends.report_failure(&target);
                #[cfg(feature = "sim-bugs")]
                let restart = crate::bugs::active(crate::bugs::Bug::RestartTransactionElsewhere);
                #[cfg(not(feature = "sim-bugs"))]
                let restart = false;
                if tx.rcpts.is_empty() || restart {
                    // Nothing accepted yet: the next recipient may start over.
                    if let Some(tx) = self.tx.take() {
                        tx.backend.close().await;
                    }
                    Reply::new(451, "4.4.1", "Mail server unavailable, try again later")
                } else {
                    tx.failed = true;
                    transaction_failed()
                }
            }
        }
    }

    /// Connects to the back-end and sends EHLO and MAIL.
    async fn open_backend(&self, target: &str, sender: &Sender) -> Result<Transaction, Reply> {
        let ctx = &self.proxy.ctx;
        let unavailable = || Reply::new(451, "4.4.1", "Mail server unavailable, try again later");
        let stream = ctx.backends.connect(target).await.map_err(|e| {
            warn!(error = %e, "back-end unreachable");
            unavailable()
        })?;
        // Storing a large message may take the back-end a while after DATA.
        let wait = ctx.settings.login_timeout.max(Duration::from_secs(30));
        let mut backend = Connection::new(stream, wait, ctx.shutdown.clone());
        let opened = async {
            let greeting = match tokio::time::timeout(ctx.settings.connect_timeout, read_reply(&mut backend)).await {
                Ok(greeting) => greeting?,
                Err(_) => return Err(ReadError::TimedOut),
            };
            let ehlo = command(&mut backend, &format!("EHLO {}", self.proxy.hostname)).await?;
            let body = if sender.eight_bit { " BODY=8BITMIME" } else { "" };
            let mail = command(&mut backend, &format!("MAIL FROM:<{}>{body}", sender.address)).await?;
            Ok::<_, ReadError>((greeting, ehlo, mail))
        };
        match opened.await {
            Ok((g, e, m)) if g.starts_with("220") && e.starts_with("250") && m.starts_with("250") => {
                ctx.backends.report_success(target);
                Ok(Transaction {
                    target: target.to_string(),
                    backend,
                    from: sender.address.clone(),
                    rcpts: Vec::new(),
                    failed: false,
                })
            }
            Ok((_, _, m)) if m.starts_with('5') || m.starts_with('4') => Err(Reply::raw(&m)),
            Ok(_) | Err(_) => {
                ctx.backends.report_failure(target);
                Err(unavailable())
            }
        }
    }

    /// Reads the message, then hands it to the transaction's back-end and
    /// answers with the back-end's reply.
    async fn data(&mut self) -> Result<Reply, ReadError> {
        let Some(tx) = self.tx.as_ref().filter(|tx| !tx.rcpts.is_empty()) else {
            return Ok(Reply::new(554, "5.5.1", "No valid recipients"));
        };
        if tx.failed {
            // Refused before 354 (RFC 5321 allows 451 here): no message is
            // read, none is stored, the client resends to every recipient.
            return Ok(transaction_failed());
        }
        let from = tx.from.clone();
        self.reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>")).await?;
        let max = self.proxy.ctx.limits.max_message_size;
        let trace =
            received(self.helo.as_deref(), self.peer, &self.proxy.hostname, self.authenticated, &self.proxy.clock);
        let Some(message) = exchange::read_message(&mut self.conn, max, trace.into_bytes()).await? else {
            return Ok(Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size"));
        };
        let tx = self.tx.as_mut().expect("checked above");
        let sent = async {
            let go = command(&mut tx.backend, "DATA").await?;
            if !go.starts_with("354") {
                return Ok::<_, ReadError>(go);
            }
            // DATA content is stuffed and terminated exactly like a POP3 RETR body.
            tx.backend.write(&dot_stuff(&message, None)).await?;
            read_reply(&mut tx.backend).await
        };
        match sent.await {
            Ok(reply) => {
                info!(backend = %tx.target, from = %from, rcpts = tx.rcpts.len(), reply = %reply.lines().last().unwrap_or(""), "relayed");
                Ok(Reply::raw(&reply))
            }
            Err(e) => {
                // The back-end vanished before answering the final dot: we
                // cannot know whether it stored the message. A 4xx may cause
                // a duplicate on retry; a 250 could lose mail. Duplication is
                // the lesser harm (RFC 5321 6.1: "mail should not be lost").
                warn!(backend = %tx.target, error = %e, "back-end lost during DATA");
                self.proxy.ctx.backends.report_failure(&tx.target);
                Ok(Reply::new(451, "4.4.1", "Mail server failed during delivery, try again later"))
            }
        }
    }

    async fn auth(&mut self, mechanism: u64, initial: String, in_transaction: bool) -> Result<Reply, ReadError> {
        if self.authenticated {
            return Ok(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if in_transaction {
            return Ok(Reply::new(503, "5.5.1", "AUTH not permitted during a mail transaction"));
        }
        let limit = self.proxy.ctx.limits.max_line_length;
        let credentials = match exchange::credentials(&mut self.conn, mechanism, &initial, limit).await? {
            Ok(c) => c,
            Err(e) => return Ok(e.reply()),
        };
        Ok(match self.proxy.ctx.router.authenticate(&credentials.login, &credentials.password).await {
            ProxyAuth::Accepted => {
                tracing::Span::current().record("user", credentials.login.as_str());
                self.authenticated = true;
                Reply::new(235, "2.7.0", "Authentication successful")
            }
            ProxyAuth::Rejected => {
                tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                Reply::new(535, "5.7.8", "Authentication credentials invalid")
            }
            ProxyAuth::Unavailable => Reply::new(454, "4.7.0", "Temporary authentication failure, try again later"),
        })
    }

    async fn reset(&mut self, sender: &mut Option<Sender>) {
        *sender = None;
        if let Some(mut tx) = self.tx.take() {
            // Keep nothing half-open at the back-end; a fresh connection per
            // transaction keeps the back-end side simple and stateless.
            let _ = command(&mut tx.backend, "QUIT").await;
            tx.backend.close().await;
        }
    }

    async fn reply(&mut self, reply: Reply) -> Result<(), ReadError> {
        self.conn.write(reply.to_string().as_bytes()).await?;
        Ok(())
    }
}

/// The answer to every command of a transaction whose back-end failed
/// after accepting recipients.
fn transaction_failed() -> Reply {
    Reply::new(451, "4.4.1", "Mail server failed during this transaction: send the message again later")
}

/// Sends one command to the back-end and reads its (possibly multi-line) reply.
async fn command(backend: &mut Connection, line: &str) -> Result<String, ReadError> {
    backend.write(format!("{line}\r\n").as_bytes()).await?;
    read_reply(backend).await
}

/// Reads one SMTP reply; lines joined with CRLF, without the final CRLF.
async fn read_reply(backend: &mut Connection) -> Result<String, ReadError> {
    let mut lines = Vec::new();
    loop {
        let line = backend.read_line(4096).await?;
        let text = String::from_utf8_lossy(&line.bytes).into_owned();
        let more = text.as_bytes().get(3) == Some(&b'-');
        lines.push(text);
        if !more {
            return Ok(lines.join("\r\n"));
        }
    }
}
