//! The IMAP proxy: serves the not-authenticated state itself (CAPABILITY,
//! ID, NOOP, LOGOUT, LOGIN, AUTHENTICATE PLAIN), routes the login by user
//! map, tells the back-end who the client is (ID x-originating-ip/port and
//! a hop counter, as Dovecot does), logs in there and relays the session.

use std::net::SocketAddr;
use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::CommandBody;
use tracing::{info, warn};

use super::{LoginProxy, ProxyContext, Refusal};
use crate::connection::{Connection, ReadError};
use crate::sasl;

const CAPABILITY: &str = "IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID";
/// Hops a login may take through proxies before it is refused as a loop.
const DEFAULT_TTL: u32 = 5;
/// Literals before login carry names and passwords, never messages.
const MAX_PRE_AUTH_LITERAL: usize = 8 * 1024;

/// The IMAP proxy service.
pub struct ImapProxy {
    ctx: Arc<ProxyContext>,
}

impl ImapProxy {
    pub fn new(ctx: Arc<ProxyContext>) -> Self {
        Self { ctx }
    }
}

impl LoginProxy for ImapProxy {
    const NAME: &'static str = "imap-proxy";

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

impl ImapProxy {
    async fn serve_pre_auth(
        &self,
        conn: &mut Connection,
        peer: SocketAddr,
    ) -> Result<Option<(Connection, String)>, ReadError> {
        conn.write(format!("* OK [CAPABILITY {CAPABILITY}] tiermail IMAP proxy ready\r\n").as_bytes()).await?;
        let mut ttl = DEFAULT_TTL;
        let mut errors = 0;
        loop {
            let raw = match read_command(conn, self.ctx.limits.max_line_length).await {
                Ok(raw) => raw,
                Err(ReadError::TooLong) => {
                    conn.write(b"* BAD Command line too long\r\n").await?;
                    continue;
                }
                Err(ReadError::ShuttingDown) => {
                    conn.write(b"* BYE Proxy shutting down, reconnect later\r\n").await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let (tag, credentials) = match CommandCodec::default().decode(&raw) {
                Ok((_, command)) => {
                    let tag = command.tag.as_ref().to_string();
                    match command.body {
                        CommandBody::Capability => {
                            let text = format!("* CAPABILITY {CAPABILITY}\r\n{tag} OK CAPABILITY completed\r\n");
                            conn.write(text.as_bytes()).await?;
                            continue;
                        }
                        CommandBody::Noop => {
                            conn.write(format!("{tag} OK NOOP completed\r\n").as_bytes()).await?;
                            continue;
                        }
                        CommandBody::Logout => {
                            conn.write(format!("* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n").as_bytes())
                                .await?;
                            return Ok(None);
                        }
                        CommandBody::Id { parameters } => {
                            for (key, value) in parameters.iter().flatten() {
                                if key.as_ref().eq_ignore_ascii_case(b"x-proxy-ttl")
                                    && let Some(v) = value.0.as_ref()
                                    && let Ok(n) = String::from_utf8_lossy(v.as_ref()).parse::<u32>()
                                {
                                    ttl = ttl.min(n);
                                }
                            }
                            let text = format!("* ID (\"name\" \"tiermail-proxy\")\r\n{tag} OK ID completed\r\n");
                            conn.write(text.as_bytes()).await?;
                            continue;
                        }
                        CommandBody::Login { username, password } => {
                            (tag, sasl::login_credentials(username.as_ref(), password.declassify().as_ref()))
                        }
                        CommandBody::Authenticate { mechanism: AuthMechanism::Plain, initial_response } => {
                            let response = match initial_response {
                                Some(r) => Ok(r.declassify().to_vec()),
                                None => {
                                    conn.write(b"+ \r\n").await?;
                                    sasl::decode_response(&conn.read_line(self.ctx.limits.max_line_length).await?.bytes)
                                }
                            };
                            (tag, response.and_then(|r| sasl::plain(&r)))
                        }
                        CommandBody::Authenticate { .. } => {
                            conn.write(format!("{tag} NO Unsupported mechanism\r\n").as_bytes()).await?;
                            continue;
                        }
                        _ => {
                            conn.write(format!("{tag} BAD Log in first\r\n").as_bytes()).await?;
                            continue;
                        }
                    }
                }
                Err(_) => {
                    errors += 1;
                    let tag = raw.split(|b| *b == b' ').next().filter(|t| !t.is_empty() && t.len() < 64);
                    let tag = tag.map_or("*".into(), |t| String::from_utf8_lossy(t).into_owned());
                    conn.write(format!("{tag} BAD Error in IMAP command\r\n").as_bytes()).await?;
                    if errors >= 20 {
                        conn.write(b"* BYE Too many errors\r\n").await?;
                        return Ok(None);
                    }
                    continue;
                }
            };
            let credentials = match credentials {
                Ok(c) => c,
                Err(e) => {
                    conn.write(format!("{tag} BAD {e}\r\n").as_bytes()).await?;
                    continue;
                }
            };
            match self.login(&credentials, peer, ttl).await {
                Ok((backend, target, untagged, tagged_rest)) => {
                    tracing::Span::current().record("user", credentials.login.as_str());
                    conn.write(untagged.as_bytes()).await?;
                    conn.write(format!("{tag} {tagged_rest}\r\n").as_bytes()).await?;
                    return Ok(Some((backend, target)));
                }
                Err(refusal) => {
                    info!(login = %credentials.login, ?refusal, "login refused");
                    conn.write(format!("{tag} {}\r\n", answer(&refusal)).as_bytes()).await?;
                }
            }
        }
    }

    /// Authenticates (at the proxy if configured), routes, and logs in at
    /// the back-end. Returns the back-end connection, the back-end's
    /// untagged lines and the rest of its tagged OK line.
    async fn login(
        &self,
        credentials: &sasl::Credentials,
        peer: SocketAddr,
        ttl: u32,
    ) -> Result<(Connection, String, String, String), Refusal> {
        let (login, password) = (credentials.login.as_str(), credentials.password.as_str());
        if ttl == 0 {
            warn!(%login, "proxy hop limit reached: a routing loop");
            return Err(Refusal::Loop);
        }
        let (mut backend, target) = self.ctx.connect_for(login, password).await?;
        let answered = match self.ctx.greeting(&mut backend).await {
            Ok(greeting) if greeting.bytes.starts_with(b"* OK") => {
                backend_login(&mut backend, login, password, peer, ttl - 1).await
            }
            Ok(_) => Err(ReadError::Io(std::io::Error::other("unexpected greeting"))),
            Err(e) => Err(e),
        };
        if answered.is_ok() {
            self.ctx.backends.report_success(&target);
        }
        match answered {
            Ok(Ok((untagged, rest))) => Ok((backend, target.clone(), untagged, rest)),
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => {
                warn!(backend = %target, error = %e, "back-end failed during login");
                self.ctx.backends.report_failure(&target);
                Err(Refusal::BackendUnavailable)
            }
        }
    }
}

/// The back-end side of the login after its greeting: ID with the client's
/// address and the hop counter, then LOGIN. Returns the untagged lines and
/// the text after the tag of a successful LOGIN.
async fn backend_login(
    backend: &mut Connection,
    login: &str,
    password: &str,
    peer: SocketAddr,
    ttl: u32,
) -> Result<Result<(String, String), Refusal>, ReadError> {
    let id = format!(
        "p0 ID (\"x-originating-ip\" \"{}\" \"x-originating-port\" \"{}\" \"x-proxy-ttl\" \"{ttl}\")\r\n",
        peer.ip(),
        peer.port()
    );
    backend.write(id.as_bytes()).await?;
    read_until_tagged(backend, "p0").await?;
    backend.write(b"p1 LOGIN ").await?;
    send_astring(backend, login).await?;
    backend.write(b" ").await?;
    send_astring(backend, password).await?;
    backend.write(b"\r\n").await?;
    let (untagged, tagged) = read_until_tagged(backend, "p1").await?;
    let rest = tagged.strip_prefix("p1 ").unwrap_or(&tagged).to_string();
    if rest.starts_with("OK") {
        Ok(Ok((untagged, rest)))
    } else if rest.contains("[UNAVAILABLE]") || rest.contains("[LIMIT]") || rest.contains("[SERVERBUG]") {
        Ok(Err(Refusal::BackendUnavailable))
    } else {
        Ok(Err(Refusal::AuthFailed))
    }
}

/// A quoted string when the value allows one, else a synchronising literal.
async fn send_astring(backend: &mut Connection, value: &str) -> Result<(), ReadError> {
    let quotable = value.len() < 1024 && value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if quotable {
        backend.write(format!("\"{value}\"").as_bytes()).await?;
        return Ok(());
    }
    backend.write(format!("{{{}}}\r\n", value.len()).as_bytes()).await?;
    let cont = backend.read_line(64 * 1024).await?;
    if !cont.bytes.starts_with(b"+") {
        return Err(ReadError::Closed);
    }
    backend.write(value.as_bytes()).await?;
    Ok(())
}

/// Reads lines until the one tagged `tag`; returns (untagged lines, tagged line).
async fn read_until_tagged(backend: &mut Connection, tag: &str) -> Result<(String, String), ReadError> {
    let mut untagged = String::new();
    loop {
        let line = backend.read_line(64 * 1024).await?;
        let text = String::from_utf8_lossy(&line.bytes).into_owned();
        if text.starts_with(&format!("{tag} ")) {
            return Ok((untagged, text));
        }
        if text.starts_with("* ") && !text.starts_with("* ID ") {
            untagged.push_str(&text);
            untagged.push_str("\r\n");
        }
    }
}

/// Reads one command with its literals (answering `+` to synchronising
/// ones), as bytes for the codec.
async fn read_command(conn: &mut Connection, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut command = Vec::new();
    loop {
        let line = conn.read_command(limit).await?;
        command.extend_from_slice(&line.bytes);
        command.extend_from_slice(b"\r\n");
        let Some((size, sync)) = literal_announcement(&line.bytes) else { return Ok(command) };
        if size > MAX_PRE_AUTH_LITERAL {
            return Err(ReadError::TooLong);
        }
        if sync {
            conn.write(b"+ Ready for literal data\r\n").await?;
        }
        command.extend_from_slice(&conn.read_exact(size).await?);
    }
}

/// `{n}` or `{n+}` at the end of a line.
fn literal_announcement(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, sync) = match spec.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (spec, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().map(|n| (n, sync))
}

/// The tagged answer per refusal; a wrong password reads the same whoever
/// decided it.
fn answer(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::AuthFailed => "NO [AUTHENTICATIONFAILED] Authentication failed",
        Refusal::DirectoryUnavailable => "NO [UNAVAILABLE] Directory unavailable, try again later",
        Refusal::BackendUnavailable => "NO [UNAVAILABLE] Mail server unavailable, try again later",
        Refusal::Loop | Refusal::NoRoute => "NO [UNAVAILABLE] No route to this mailbox, try again later",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_announcement(b"a LOGIN {5}"), Some((5, true)));
        assert_eq!(literal_announcement(b"a LOGIN {12+}"), Some((12, false)));
        assert_eq!(literal_announcement(b"a LOGIN {}"), None);
        assert_eq!(literal_announcement(b"a LOGIN {x}"), None);
        assert_eq!(literal_announcement(b"a LOGIN alice"), None);
    }
}
