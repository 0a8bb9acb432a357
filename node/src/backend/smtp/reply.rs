//! SMTP replies, and the one place where a parse error becomes a reply code.

use std::fmt;

/// After this many permanent (5xx) replies in one session, the client is
/// dropped with 421.
pub const MAX_ERRORS: u32 = 20;

/// `RCPT TO:<postmaster>` without a domain names the postmaster of the
/// server's first domain; RFC 5321 4.5.1 requires it to be accepted.
/// smtp-proto reports it as an empty address (as it does `<>`, which is
/// no valid forward-path), so the command line tells the two apart.
pub fn qualify_postmaster(address: String, line: &[u8], domains: &[String]) -> String {
    let named = line.windows(12).any(|w| w.eq_ignore_ascii_case(b"<postmaster>"));
    match domains.first() {
        Some(domain) if address.is_empty() && named => format!("postmaster@{domain}"),
        _ => address,
    }
}

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Lines of text; each gets the enhanced status code (RFC 3463) if set.
    lines: Vec<String>,
    enhanced: &'static str,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: &str) -> Self {
        Self { code, lines: vec![text.to_string()], enhanced }
    }

    /// A reply received from another server, passed on as it came.
    pub fn raw(text: &str) -> Self {
        let code = text.get(..3).and_then(|c| c.parse().ok()).filter(|c| (200..600).contains(c)).unwrap_or(451);
        let lines = text.split("\r\n").map(|l| l.get(4..).unwrap_or("").to_string()).collect();
        Self { code, lines, enhanced: "" }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// A 5xx: the client's doing. Only these count toward [`MAX_ERRORS`];
    /// 4xx replies are the server's trouble or flow control.
    pub fn is_permanent_failure(&self) -> bool {
        self.code >= 500
    }

    /// Maps a command the parser rejected to its reply.
    pub fn parse_error(error: &smtp_proto::Error) -> Self {
        use smtp_proto::Error;
        match error {
            Error::UnknownCommand => Reply::new(500, "5.5.2", "Syntax error, command unrecognized"),
            Error::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
            Error::InvalidRecipientAddress => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            Error::SyntaxError { syntax } => Reply::new(501, "5.5.4", &format!("Syntax: {syntax}")),
            Error::InvalidParameter { param } => Reply::new(501, "5.5.4", &format!("Invalid parameter {param}")),
            Error::UnsupportedParameter { param } => {
                let param: String = param.chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
                Reply::new(555, "5.5.4", &format!("Unsupported parameter {param}"))
            }
            Error::ResponseTooLong => Reply::new(500, "5.5.2", "Line too long"),
            Error::NeedsMoreData { .. } | Error::InvalidResponse { .. } => {
                Reply::new(500, "5.5.2", "Syntax error, command unrecognized")
            }
        }
    }
}

/// The EHLO reply: the extensions this service implements.
pub fn ehlo(hostname: &str, max_size: u64) -> Reply {
    let lines = [
        hostname.to_string(),
        "PIPELINING".into(),
        format!("SIZE {max_size}"),
        "8BITMIME".into(),
        "ENHANCEDSTATUSCODES".into(),
        "AUTH PLAIN LOGIN".into(),
    ];
    Reply { code: 250, lines: lines.to_vec(), enhanced: "" }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len() - 1;
        for (i, text) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // EHLO keywords carry no enhanced code; other replies do.
            if self.enhanced.is_empty() {
                write!(f, "{}{sep}{text}\r\n", self.code)?;
            } else {
                write!(f, "{}{sep}{} {text}\r\n", self.code, self.enhanced)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_single_and_multi_line_replies() {
        assert_eq!(Reply::new(250, "2.1.0", "Ok").to_string(), "250 2.1.0 Ok\r\n");
        assert_eq!(Reply::new(354, "", "Go ahead").to_string(), "354 Go ahead\r\n");
        assert_eq!(Reply::raw("550 5.1.1 No such user").to_string(), "550 5.1.1 No such user\r\n");
        assert_eq!(Reply::raw("250-a\r\n250 b").to_string(), "250-a\r\n250 b\r\n");
        assert_eq!(Reply::raw("garbage").code, 451);
        assert!(Reply::new(550, "5.1.1", "x").is_permanent_failure());
        assert!(!Reply::new(452, "4.5.3", "x").is_permanent_failure());
        insta::assert_snapshot!(ehlo("mx.example.com", 1000).to_string());
    }

    #[test]
    fn bare_postmaster_is_the_first_domains() {
        let domains = vec!["example.com".to_string(), "example.org".to_string()];
        let q = |line: &str| {
            let bytes = format!("{line}\r\n").into_bytes();
            let Ok(smtp_proto::Request::Rcpt { to }) = smtp_proto::Request::parse(&mut bytes.iter()) else {
                panic!("{line} is a RCPT")
            };
            qualify_postmaster(to.address.to_string(), line.as_bytes(), &domains)
        };
        assert_eq!(q("RCPT TO:<PostMaster>"), "postmaster@example.com");
        assert_eq!(q("RCPT TO:<postmaster@example.org>"), "postmaster@example.org");
        assert_eq!(q("RCPT TO:<>"), "", "a null forward-path stays invalid");
        assert_eq!(qualify_postmaster(String::new(), b"RCPT TO:<postmaster>", &[]), "");
    }
}
