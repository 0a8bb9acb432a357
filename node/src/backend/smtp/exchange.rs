//! The parts of an SMTP session that the back-end and the SMTP proxy share
//! word for word: reading the DATA content, and the AUTH exchange.

use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

use super::data::{DataReceiver, DataStep};
use super::reply::Reply;
use crate::connection::{Connection, ReadError};
use crate::sasl::{self, Credentials, SaslError};

/// Reads the message after 354 up to the final dot, with `header` (trace
/// fields) in front. `Ok(None)`: it exceeded `max` bytes (read to its end
/// all the same, so the session stays in step).
pub(crate) async fn read_message(
    conn: &mut Connection,
    max: u64,
    header: Vec<u8>,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut receiver = DataReceiver::new(max, header);
    // A line longer than the whole size budget is a size violation, not a
    // protocol error.
    let line_limit = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(2);
    loop {
        match conn.read_line(line_limit).await {
            Ok(line) => {
                if receiver.line(&line.bytes, line.crlf) == DataStep::Done {
                    return Ok(receiver.finish());
                }
            }
            Err(ReadError::TooLong) => receiver.reject_size(),
            Err(e) => return Err(e),
        }
    }
}

/// Why AUTH did not yield credentials (the client is told, the session goes on).
#[derive(Debug)]
pub(crate) enum AuthError {
    Unsupported,
    Sasl(SaslError),
}

impl AuthError {
    pub(crate) fn reply(&self) -> Reply {
        match self {
            AuthError::Unsupported => Reply::new(504, "5.5.4", "Unrecognized authentication type"),
            AuthError::Sasl(SaslError::Cancelled) => Reply::new(501, "5.0.0", "Authentication cancelled"),
            AuthError::Sasl(e) => Reply::new(501, "5.5.2", &format!("Cannot decode response: {e}")),
        }
    }
}

/// Runs AUTH PLAIN or LOGIN (RFC 4954) up to the credentials, sending the
/// 334 challenges itself.
pub(crate) async fn credentials(
    conn: &mut Connection,
    mechanism: u64,
    initial: &str,
    limit: usize,
) -> Result<Result<Credentials, AuthError>, ReadError> {
    let first = |challenge: &'static [u8]| (initial.is_empty(), challenge);
    let step = async |conn: &mut Connection,
                      (ask, challenge): (bool, &[u8])|
           -> Result<Result<Vec<u8>, SaslError>, ReadError> {
        if !ask {
            return Ok(sasl::decode_response(initial.as_bytes()));
        }
        conn.write(Reply::new(334, "", &sasl::encode(challenge)).to_string().as_bytes()).await?;
        Ok(sasl::decode_response(&conn.read_line(limit).await?.bytes))
    };
    Ok(match mechanism {
        AUTH_PLAIN => step(conn, first(b"")).await?.and_then(|r| sasl::plain(&r)).map_err(AuthError::Sasl),
        AUTH_LOGIN => {
            let login = match step(conn, first(b"Username:")).await?.and_then(|u| sasl::login_step(&u)) {
                Ok(login) => login,
                Err(e) => return Ok(Err(AuthError::Sasl(e))),
            };
            let password = step(conn, (true, b"Password:")).await?.and_then(|p| sasl::login_step(&p));
            password.map(|password| Credentials { login, password }).map_err(AuthError::Sasl)
        }
        _ => Err(AuthError::Unsupported),
    })
}
