//! The POP3 proxy: takes USER/PASS or AUTH PLAIN, routes by user map, logs
//! in to the back-end with the same credentials and relays the session.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{info, warn};

use super::{LoginProxy, ProxyContext, Refusal};
use crate::backend::pop3::command::{Command, parse};
use crate::connection::{Connection, ReadError};
use crate::sasl;

const CAPABILITIES: &str = "+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nTOP\r\nUIDL\r\nIMPLEMENTATION tiermail-proxy\r\n.\r\n";
const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed\r\n";

/// The POP3 proxy service.
pub struct Pop3Proxy {
    ctx: Arc<ProxyContext>,
}

impl Pop3Proxy {
    pub fn new(ctx: Arc<ProxyContext>) -> Self {
        Self { ctx }
    }
}

impl LoginProxy for Pop3Proxy {
    const NAME: &'static str = "pop3-proxy";

    fn context(&self) -> &ProxyContext {
        &self.ctx
    }

    async fn pre_auth(
        &self,
        conn: &mut Connection,
        peer: SocketAddr,
    ) -> Result<Option<(Connection, String)>, ReadError> {
        self.serve_pre_auth(conn, peer).await
    }
}

impl Pop3Proxy {
    /// Serves the AUTHORIZATION state; returns the logged-in back-end
    /// connection to relay to, or `None` when the client quit.
    async fn serve_pre_auth(
        &self,
        conn: &mut Connection,
        peer: SocketAddr,
    ) -> Result<Option<(Connection, String)>, ReadError> {
        conn.write(b"+OK tiermail POP3 proxy ready\r\n").await?;
        let limit = self.ctx.limits.max_line_length;
        let mut user: Option<String> = None;
        let mut errors = 0;
        loop {
            let line = match conn.read_command(limit).await {
                Ok(line) => line,
                Err(ReadError::TooLong) => {
                    conn.write(b"-ERR Line too long\r\n").await?;
                    continue;
                }
                Err(ReadError::ShuttingDown) => {
                    conn.write(b"-ERR [SYS/TEMP] Proxy shutting down, try again later\r\n").await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let credentials = match parse(&line.bytes) {
                Ok(Command::Capa) => {
                    conn.write(CAPABILITIES.as_bytes()).await?;
                    continue;
                }
                Ok(Command::Quit) => {
                    conn.write(b"+OK Bye\r\n").await?;
                    return Ok(None);
                }
                Ok(Command::User(name)) => {
                    user = Some(name);
                    conn.write(b"+OK\r\n").await?;
                    continue;
                }
                Ok(Command::Pass(password)) => match user.take() {
                    Some(login) => sasl::Credentials { login, password },
                    None => {
                        conn.write(b"-ERR USER first\r\n").await?;
                        continue;
                    }
                },
                Ok(Command::AuthList) => {
                    conn.write(b"+OK\r\nPLAIN\r\n.\r\n").await?;
                    continue;
                }
                Ok(Command::Auth { mechanism, initial }) if mechanism == "PLAIN" => {
                    let response = match initial {
                        Some(initial) => sasl::decode_response(initial.as_bytes()),
                        None => {
                            conn.write(b"+ \r\n").await?;
                            sasl::decode_response(&conn.read_line(limit).await?.bytes)
                        }
                    };
                    match response.and_then(|r| sasl::plain(&r)) {
                        Ok(credentials) => credentials,
                        Err(e) => {
                            conn.write(format!("-ERR {e}\r\n").as_bytes()).await?;
                            continue;
                        }
                    }
                }
                Ok(Command::Auth { .. }) => {
                    conn.write(b"-ERR Unsupported authentication mechanism\r\n").await?;
                    continue;
                }
                Ok(_) => {
                    conn.write(b"-ERR Not logged in\r\n").await?;
                    continue;
                }
                Err(e) => {
                    errors += 1;
                    conn.write(format!("-ERR {e}\r\n").as_bytes()).await?;
                    if errors >= 20 {
                        return Ok(None);
                    }
                    continue;
                }
            };
            match self.login(&credentials, peer).await {
                Ok((backend, target, reply)) => {
                    tracing::Span::current().record("user", credentials.login.as_str());
                    conn.write(reply.as_bytes()).await?;
                    return Ok(Some((backend, target)));
                }
                Err(refusal) => {
                    info!(login = %credentials.login, ?refusal, "login refused");
                    conn.write(answer(&refusal).as_bytes()).await?;
                }
            }
        }
    }

    /// Authenticates (at the proxy if configured), routes and logs in to
    /// the back-end; returns the back-end connection and its +OK line.
    async fn login(
        &self,
        credentials: &sasl::Credentials,
        _peer: SocketAddr,
    ) -> Result<(Connection, String, String), Refusal> {
        let (login, password) = (credentials.login.as_str(), credentials.password.as_str());
        // The parser and the SASL decoder refuse them already; checked again
        // here, where a line break would become a second back-end command.
        if sasl::line_safe(login).and(sasl::line_safe(password)).is_err() {
            return Err(Refusal::AuthFailed);
        }
        let (mut backend, target) = self.ctx.connect_for(login, password).await?;
        let exchange = async {
            let greeting = self.ctx.greeting(&mut backend).await?;
            if !greeting.bytes.starts_with(b"+OK") {
                return Err(ReadError::Io(std::io::Error::other("unexpected greeting")));
            }
            backend.write(format!("USER {login}\r\n").as_bytes()).await?;
            if !backend.read_line(1024).await?.bytes.starts_with(b"+OK") {
                return Ok(Err(Refusal::AuthFailed));
            }
            backend.write(format!("PASS {password}\r\n").as_bytes()).await?;
            let reply = backend.read_line(1024).await?;
            let text = String::from_utf8_lossy(&reply.bytes).into_owned();
            if text.starts_with("+OK") {
                Ok(Ok(format!("{text}\r\n")))
            } else if text.contains("[SYS/TEMP]") || text.contains("[IN-USE]") {
                Ok(Err(Refusal::BackendUnavailable))
            } else {
                Ok(Err(Refusal::AuthFailed))
            }
        };
        let answered = exchange.await;
        if answered.is_ok() {
            self.ctx.backends.report_success(&target);
        }
        match answered {
            Ok(Ok(reply)) => Ok((backend, target, reply)),
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => {
                warn!(backend = %target, error = %e, "back-end failed during login");
                self.ctx.backends.report_failure(&target);
                Err(Refusal::BackendUnavailable)
            }
        }
    }
}

/// The one answer per refusal; a wrong password reads the same whoever
/// decided it.
fn answer(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::AuthFailed => AUTH_FAILED,
        Refusal::DirectoryUnavailable => "-ERR [SYS/TEMP] Directory unavailable, try again later\r\n",
        Refusal::BackendUnavailable => "-ERR [SYS/TEMP] Mail server unavailable, try again later\r\n",
        Refusal::Loop | Refusal::NoRoute => "-ERR [SYS/TEMP] No route to this mailbox, try again later\r\n",
    }
}
