//! SASL mechanisms the line protocols share (RFC 4616 PLAIN, and the
//! de-facto LOGIN): decoding only; the protocols drive the exchanges.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Credentials a client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("login", &self.login).finish_non_exhaustive()
    }
}

/// Why a SASL response was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed credentials (not UTF-8, or not user NUL password)")]
    Malformed,
    #[error("authorization identity differs from the login (proxy authorization is not supported)")]
    AuthzId,
    #[error("exchange cancelled by the client")]
    Cancelled,
    #[error("credentials must not contain CR, LF or NUL")]
    LineBreak,
}

/// Refuses text with CR, LF or NUL: credentials end up in the line
/// protocols' command lines (a proxy logs in to the back-end with `USER`
/// and `PASS`), where a line break would smuggle in a second command.
pub fn line_safe(text: &str) -> Result<&str, SaslError> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) { Err(SaslError::LineBreak) } else { Ok(text) }
}

/// Decodes one base64 client response line (`*` cancels, RFC 4954).
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_ascii();
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    if line == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Decodes a PLAIN response: `[authzid] NUL authcid NUL passwd`.
pub fn plain(response: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = response.split(|&b| b == 0);
    let (Some(authz), Some(login), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    let (authz, login, password) = (text(authz)?, text(login)?, text(password)?);
    if login.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(&login) {
        return Err(SaslError::AuthzId);
    }
    line_safe(&login)?;
    line_safe(&password)?;
    Ok(Credentials { login, password })
}

/// IMAP LOGIN's user name and password, which must be UTF-8 and line-safe.
/// Never repaired: a lossy conversion would make every invalid byte U+FFFD
/// and so let one password stand for many.
pub fn login_credentials(login: &[u8], password: &[u8]) -> Result<Credentials, SaslError> {
    Ok(Credentials { login: login_step(login)?, password: login_step(password)? })
}

/// Decodes one LOGIN step (user name or password) as UTF-8.
pub fn login_step(response: &[u8]) -> Result<String, SaslError> {
    let text = String::from_utf8(response.to_vec()).map_err(|_| SaslError::Malformed)?;
    line_safe(&text)?;
    Ok(text)
}

/// Base64 for server challenges.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_with_and_without_authzid() {
        let c = plain(b"\0alice@example.com\0secret").unwrap();
        assert_eq!((c.login.as_str(), c.password.as_str()), ("alice@example.com", "secret"));
        assert!(plain(b"alice@example.com\0alice@example.com\0pw").is_ok());
        assert_eq!(plain(b"bob\0alice\0pw"), Err(SaslError::AuthzId));
        assert_eq!(plain(b"alice\0pw"), Err(SaslError::Malformed));
        assert_eq!(plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(plain(b"\0a\0b\0c"), Err(SaslError::Malformed));
    }

    #[test]
    fn credentials_with_line_breaks_or_nul_are_refused() {
        assert_eq!(plain(b"\0alice@example.com\r\nNOOP\0pw"), Err(SaslError::LineBreak));
        assert_eq!(plain(b"\0alice@example.com\0pw\nDELE 1"), Err(SaslError::LineBreak));
        assert_eq!(plain(b"\0alice@example.com\0pw\r"), Err(SaslError::LineBreak));
        assert_eq!(login_step(b"alice\r\nQUIT"), Err(SaslError::LineBreak));
        assert_eq!(login_step(b"pw\0"), Err(SaslError::LineBreak));
        assert_eq!(line_safe("pass with spaces and \u{e9}"), Ok("pass with spaces and \u{e9}"));
    }

    #[test]
    fn responses_decode_or_cancel() {
        assert_eq!(decode_response(b"AGEAYg==").unwrap(), b"\0a\0b");
        assert_eq!(decode_response(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response(b"!!"), Err(SaslError::Base64));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials { login: "a".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
