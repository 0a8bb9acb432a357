//! A raw SMTP client over any seam stream that carries on after a refused
//! RCPT, as Postfix, Exim and smtplib's `sendmail()` do (lettre stops at
//! the first), and can pipeline its RCPTs (RFC 2920).

use std::io;

use tiermail_node::net::Stream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Longest reply line accepted from a server.
const MAX_LINE: u64 = 4096;

/// One SMTP reply: its code and its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub text: String,
}

impl SmtpReply {
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

/// An open SMTP session.
pub struct SmtpDialogue {
    conn: BufReader<Stream>,
}

impl SmtpDialogue {
    /// Reads the greeting and says EHLO; an unwelcoming server's reply is
    /// returned as the error's text.
    pub async fn open(stream: Stream) -> io::Result<Result<Self, SmtpReply>> {
        let mut session = Self { conn: BufReader::new(stream) };
        let greeting = session.reply().await?;
        if greeting.code != 220 {
            return Ok(Err(greeting));
        }
        let ehlo = session.command("EHLO client.test").await?;
        if ehlo.code != 250 {
            return Ok(Err(ehlo));
        }
        Ok(Ok(session))
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> io::Result<SmtpReply> {
        self.conn.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// Sends every line in one write, then reads one reply per line.
    pub async fn pipelined(&mut self, lines: &[String]) -> io::Result<Vec<SmtpReply>> {
        let batch: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        self.conn.get_mut().write_all(batch.as_bytes()).await?;
        let mut replies = Vec::with_capacity(lines.len());
        for _ in lines {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }

    /// DATA, then (after 354) the dot-stuffed message and the final dot;
    /// returns the reply that decides the transaction.
    pub async fn data(&mut self, message: &[u8]) -> io::Result<SmtpReply> {
        let go = self.command("DATA").await?;
        if go.code != 354 {
            return Ok(go);
        }
        let mut body = Vec::with_capacity(message.len() + 8);
        for line in message.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                body.push(b'.');
            }
            body.extend_from_slice(line);
        }
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        self.conn.get_mut().write_all(&body).await?;
        self.reply().await
    }

    /// QUIT; the session is over whatever the answer.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn reply(&mut self) -> io::Result<SmtpReply> {
        loop {
            let mut line = String::new();
            let n = (&mut self.conn).take(MAX_LINE).read_line(&mut line).await?;
            let code = line.get(..3).and_then(|c| c.parse().ok());
            match (n, code, line.as_bytes().get(3)) {
                (0, ..) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")),
                (_, Some(code), Some(b' ' | b'\r' | b'\n')) => {
                    return Ok(SmtpReply { code, text: line.trim_end().to_string() });
                }
                (_, Some(_), Some(b'-')) => continue,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {line:?}"))),
            }
        }
    }
}
