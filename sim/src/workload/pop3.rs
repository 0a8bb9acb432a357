//! A small POP3 client (RFC 1939) over any seam stream: what the simulator's
//! workloads use to read mail back.

use tiermail_node::net::Stream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

/// Longest line accepted from a server.
const MAX_LINE: usize = 64 * 1024;

/// What went wrong talking to a POP3 server.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered -ERR with this text.
    #[error("server said -ERR {0}")]
    Err(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// One POP3 connection.
pub struct Pop3Client {
    reader: BufReader<ReadHalf<Stream>>,
    writer: WriteHalf<Stream>,
}

impl Pop3Client {
    /// Wraps a connected stream and reads the greeting.
    pub async fn new(stream: Stream) -> Result<Self, Pop3Error> {
        let (r, w) = tokio::io::split(stream);
        let mut client = Self { reader: BufReader::new(r), writer: w };
        client.status().await?;
        Ok(client)
    }

    /// USER/PASS login.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        self.command(&format!("USER {user}")).await?;
        self.command(&format!("PASS {password}")).await.map(drop)
    }

    /// STAT: (message count, total octets).
    pub async fn stat(&mut self) -> Result<(usize, u64), Pop3Error> {
        let text = self.command("STAT").await?;
        let mut parts = text.split_whitespace();
        let parse = |p: Option<&str>| {
            p.and_then(|v| v.parse().ok()).ok_or_else(|| Pop3Error::Protocol(format!("bad STAT: {text}")))
        };
        Ok((parse(parts.next())? as usize, parse(parts.next())?))
    }

    /// UIDL: (message number, unique id) for every message.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL").await?;
        let body = self.multiline().await?;
        String::from_utf8_lossy(&body)
            .lines()
            .map(|l| {
                let (n, id) = l.split_once(' ').ok_or_else(|| Pop3Error::Protocol(format!("bad UIDL line {l:?}")))?;
                Ok((n.parse().map_err(|_| Pop3Error::Protocol(format!("bad UIDL number {n:?}")))?, id.to_string()))
            })
            .collect()
    }

    /// RETR: the message's bytes, dot-unstuffed.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>, Pop3Error> {
        self.command(&format!("RETR {n}")).await?;
        self.multiline().await
    }

    /// TOP: the message's header and its first `lines` body lines.
    pub async fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>, Pop3Error> {
        self.command(&format!("TOP {n} {lines}")).await?;
        self.multiline().await
    }

    pub async fn dele(&mut self, n: u32) -> Result<(), Pop3Error> {
        self.command(&format!("DELE {n}")).await.map(drop)
    }

    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT").await.map(drop)
    }

    /// Sends one command and returns the text after +OK.
    pub async fn command(&mut self, line: &str) -> Result<String, Pop3Error> {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await?;
        self.writer.flush().await?;
        self.status().await
    }

    async fn status(&mut self) -> Result<String, Pop3Error> {
        let line = self.line().await?;
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if let Some(rest) = text.strip_prefix("+OK") {
            Ok(rest.trim_start().to_string())
        } else if let Some(rest) = text.strip_prefix("-ERR") {
            Err(Pop3Error::Err(rest.trim_start().to_string()))
        } else {
            Err(Pop3Error::Protocol(format!("unexpected status line {text:?}")))
        }
    }

    async fn multiline(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let mut out = Vec::new();
        loop {
            let line = self.line().await?;
            if line == b".\r\n" {
                return Ok(out);
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
    }

    async fn line(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let mut line = Vec::new();
        let n = (&mut self.reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(Pop3Error::Protocol("connection closed".into()));
        }
        if !line.ends_with(b"\n") {
            return Err(Pop3Error::Protocol("line too long or truncated".into()));
        }
        Ok(line)
    }
}
