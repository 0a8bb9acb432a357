//! POP3 commands (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH): a pure parser,
//! one line in, one typed command out.

/// A parsed POP3 command. Message numbers are 1-based as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(String),
    Pass(String),
    /// AUTH with a mechanism name (upper-cased) and an optional initial response.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// AUTH without arguments: list mechanisms.
    AuthList,
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Top {
        msg: u32,
        lines: u32,
    },
    Dele(u32),
    Rset,
    Noop,
    Quit,
}

/// Why a line is not a command; the text goes after `-ERR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

/// RFC 2449: arguments are at most 40 octets; keywords 3-4 characters.
const MAX_ARG: usize = 40;
/// RFC 5034: AUTH's initial response is bounded by the 255-octet command
/// line, not by the 40-octet argument limit; ordinary PLAIN credentials
/// need more than 40.
pub const MAX_INITIAL_RESPONSE: usize = 255;

/// Parses one command line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("Command is not valid UTF-8"))?;
    if line.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::Syntax("Control characters in command"));
    }
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    // USER and PASS keep the raw rest of the line: passwords may contain spaces.
    match keyword.as_str() {
        "USER" => return Ok(Command::User(one_text(rest, "USER name")?)),
        "PASS" => return Ok(Command::Pass(one_text(rest, "PASS password")?)),
        _ => {}
    }
    if args.iter().any(|a| a.is_empty()) {
        return Err(ParseError::Syntax("Bad argument"));
    }
    for (i, arg) in args.iter().enumerate() {
        let initial_response = keyword == "AUTH" && i == 1;
        if initial_response && arg.len() > MAX_INITIAL_RESPONSE {
            return Err(ParseError::Syntax(
                "Initial response longer than 255 octets: send AUTH PLAIN alone and answer the + challenge",
            ));
        }
        if !initial_response && arg.len() > MAX_ARG {
            return Err(ParseError::Syntax("Bad argument"));
        }
    }
    let command = match (keyword.as_str(), args.as_slice()) {
        ("CAPA", []) => Command::Capa,
        ("AUTH", []) => Command::AuthList,
        ("AUTH", [mechanism]) => Command::Auth { mechanism: mechanism.to_ascii_uppercase(), initial: None },
        ("AUTH", [mechanism, initial]) => {
            Command::Auth { mechanism: mechanism.to_ascii_uppercase(), initial: Some(initial.to_string()) }
        }
        ("STAT", []) => Command::Stat,
        ("LIST", []) => Command::List(None),
        ("LIST", [n]) => Command::List(Some(number(n)?)),
        ("UIDL", []) => Command::Uidl(None),
        ("UIDL", [n]) => Command::Uidl(Some(number(n)?)),
        ("RETR", [n]) => Command::Retr(number(n)?),
        ("TOP", [n, lines]) => Command::Top { msg: number(n)?, lines: count(lines)? },
        ("DELE", [n]) => Command::Dele(number(n)?),
        ("RSET", []) => Command::Rset,
        ("NOOP", []) => Command::Noop,
        ("QUIT", []) => Command::Quit,
        ("CAPA" | "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP" | "QUIT" | "AUTH", _) => {
            return Err(ParseError::Syntax("Wrong number of arguments"));
        }
        _ => return Err(ParseError::Unknown),
    };
    Ok(command)
}

fn one_text(rest: Option<&str>, usage: &'static str) -> Result<String, ParseError> {
    match rest {
        Some(text) if !text.is_empty() && text.len() <= 255 => Ok(text.to_string()),
        _ => Err(ParseError::Syntax(usage)),
    }
}

fn number(arg: &str) -> Result<u32, ParseError> {
    match arg.parse::<u32>() {
        Ok(n) if n > 0 && arg.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ParseError::Syntax("Invalid message number")),
    }
}

fn count(arg: &str) -> Result<u32, ParseError> {
    match arg.parse::<u32>() {
        Ok(n) if arg.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ParseError::Syntax("Invalid line count")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_client_lines() {
        let table: &[(&[u8], Command)] = &[
            (b"CAPA", Command::Capa),
            (b"user alice@example.com", Command::User("alice@example.com".into())),
            (b"PASS pass with spaces", Command::Pass("pass with spaces".into())),
            (b"AUTH PLAIN AGEAYg==", Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGEAYg==".into()) }),
            (b"AUTH plain", Command::Auth { mechanism: "PLAIN".into(), initial: None }),
            (b"AUTH", Command::AuthList),
            (
                b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QtaG9yc2UtYmF0dGVyeS1zdGFwbGU=",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QtaG9yc2UtYmF0dGVyeS1zdGFwbGU=".into()),
                },
            ),
            (b"STAT", Command::Stat),
            (b"LIST", Command::List(None)),
            (b"LIST 2", Command::List(Some(2))),
            (b"uidl 1", Command::Uidl(Some(1))),
            (b"RETR 1", Command::Retr(1)),
            (b"TOP 1 0", Command::Top { msg: 1, lines: 0 }),
            (b"DELE 3", Command::Dele(3)),
            (b"RSET", Command::Rset),
            (b"NOOP", Command::Noop),
            (b"QUIT", Command::Quit),
        ];
        for (line, expected) in table {
            assert_eq!(&parse(line).unwrap(), expected, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn rejects_bad_lines_with_a_reason() {
        let table: &[(&[u8], &str)] = &[
            (b"XYZZY", "Unknown command"),
            (b"RETR", "Wrong number of arguments"),
            (b"RETR 0", "Invalid message number"),
            (b"RETR -1", "Invalid message number"),
            (b"RETR +1", "Invalid message number"),
            (b"RETR 99999999999", "Invalid message number"),
            (b"TOP 1", "Wrong number of arguments"),
            (b"LIST  1", "Bad argument"),
            (b"USER", "USER name"),
            (b"NO\0OP", "Control characters in command"),
            (b"\xff\xfe", "Command is not valid UTF-8"),
        ];
        for (line, reason) in table {
            assert_eq!(parse(line).unwrap_err().to_string(), *reason, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn auth_initial_response_is_bounded_by_255_octets_not_40() {
        let line = |initial: &str| format!("AUTH PLAIN {initial}").into_bytes();
        let at_limit = "A".repeat(MAX_INITIAL_RESPONSE);
        assert_eq!(
            parse(&line(&at_limit)),
            Ok(Command::Auth { mechanism: "PLAIN".into(), initial: Some(at_limit.clone()) })
        );
        let error = parse(&line(&format!("{at_limit}A"))).unwrap_err().to_string();
        assert!(error.starts_with("Initial response longer than 255 octets"), "{error}");
        // The mechanism name keeps RFC 2449's argument limit.
        assert_eq!(parse(format!("AUTH {}", "P".repeat(41)).as_bytes()), Err(ParseError::Syntax("Bad argument")));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&line);
        }
    }
}
