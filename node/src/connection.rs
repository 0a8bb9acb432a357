//! Session plumbing shared by the line protocols (SMTP, POP3, IMAP): reading
//! lines with a length limit and an idle timeout, buffered writing that
//! flushes whenever the session is about to wait for the peer (so pipelined
//! replies go out in one packet), and a shutdown signal that interrupts a
//! session only while it waits for its next command.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};

use crate::net::Stream;
use crate::shutdown::Shutdown;

/// Why no line was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection (possibly mid-line; the partial line
    /// is discarded).
    #[error("connection closed by peer")]
    Closed,
    #[error("idle timeout")]
    TimedOut,
    /// The line exceeded the limit; it was read to its end and discarded,
    /// so the next read starts at the next line.
    #[error("line too long")]
    TooLong,
    /// The node is shutting down (only from [`Connection::read_command`]).
    #[error("shutting down")]
    ShuttingDown,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// One line read from the peer, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// Whether the line ended in CRLF (false: a bare LF).
    pub crlf: bool,
}

/// A buffered connection to one client.
pub struct Connection {
    reader: BufReader<ReadHalf<Stream>>,
    writer: BufWriter<WriteHalf<Stream>>,
    idle_timeout: Duration,
    shutdown: Shutdown,
}

impl Connection {
    pub fn new(stream: Stream, idle_timeout: Duration, shutdown: Shutdown) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self { reader: BufReader::new(read), writer: BufWriter::new(write), idle_timeout, shutdown }
    }

    /// Reads the next command line; returns `ShuttingDown` instead if the
    /// node starts shutting down while the session waits between commands.
    pub async fn read_command(&mut self, limit: usize) -> Result<Line, ReadError> {
        if self.shutdown.is_shutdown() && self.reader.buffer().is_empty() {
            return Err(ReadError::ShuttingDown);
        }
        let between_commands = self.reader.buffer().is_empty();
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            line = self.read_line(limit) => line,
            _ = shutdown.recv(), if between_commands => Err(ReadError::ShuttingDown),
        }
    }

    /// Reads one line of at most `limit` bytes (terminator excluded).
    /// Not interrupted by shutdown: use it inside a transaction (SMTP DATA).
    pub async fn read_line(&mut self, limit: usize) -> Result<Line, ReadError> {
        let timeout = self.idle_timeout;
        match tokio::time::timeout(timeout, self.read_line_inner(limit)).await {
            Ok(result) => result,
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    async fn read_line_inner(&mut self, limit: usize) -> Result<Line, ReadError> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            if self.reader.buffer().is_empty() {
                self.writer.flush().await?;
            }
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Err(ReadError::Closed);
            }
            let (chunk, done) = match memchr_newline(available) {
                Some(pos) => (&available[..=pos], true),
                None => (available, false),
            };
            let used = chunk.len();
            if !too_long {
                if line.len() + used > limit + 2 {
                    too_long = true;
                    line.clear();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if too_long {
            return Err(ReadError::TooLong);
        }
        line.pop(); // '\n'
        let crlf = line.last() == Some(&b'\r');
        if crlf {
            line.pop();
        }
        if line.len() > limit {
            return Err(ReadError::TooLong);
        }
        Ok(Line { bytes: line, crlf })
    }

    /// Reads whatever bytes are available (at least one), for protocols
    /// that frame input themselves (IMAP literals). `between_commands`
    /// makes the read give way to shutdown, like [`Self::read_command`].
    pub async fn read_chunk(&mut self, between_commands: bool) -> Result<Vec<u8>, ReadError> {
        if between_commands && self.shutdown.is_shutdown() && self.reader.buffer().is_empty() {
            return Err(ReadError::ShuttingDown);
        }
        let idle = between_commands && self.reader.buffer().is_empty();
        let mut shutdown = self.shutdown.clone();
        let timeout = self.idle_timeout;
        let read = async {
            if self.reader.buffer().is_empty() {
                self.writer.flush().await?;
            }
            let chunk = self.reader.fill_buf().await?.to_vec();
            self.reader.consume(chunk.len());
            if chunk.is_empty() { Err(ReadError::Closed) } else { Ok(chunk) }
        };
        tokio::select! {
            result = tokio::time::timeout(timeout, read) => result.unwrap_or(Err(ReadError::TimedOut)),
            _ = shutdown.recv(), if idle => Err(ReadError::ShuttingDown),
        }
    }

    /// Queues bytes for the peer; they go out at the next flush or when the
    /// session next waits for input.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    /// Reads exactly `n` bytes (an IMAP literal), within the idle timeout.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let mut data = vec![0u8; n];
        let timeout = self.idle_timeout;
        self.writer.flush().await?;
        match tokio::time::timeout(timeout, tokio::io::AsyncReadExt::read_exact(&mut self.reader, &mut data)).await {
            Ok(Ok(_)) => Ok(data),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ReadError::Closed),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    /// Hands the connection to a byte relay (a proxy after login): flushes
    /// what is queued and returns the bytes already read from the peer but
    /// not yet used, with the whole stream.
    pub async fn into_stream(mut self) -> io::Result<(Vec<u8>, Stream)> {
        self.writer.flush().await?;
        let pending = self.reader.buffer().to_vec();
        let read = self.reader.into_inner();
        let write = self.writer.into_inner();
        Ok((pending, read.unsplit(write)))
    }

    /// Flushes and closes the write side.
    pub async fn close(mut self) {
        let _ = self.writer.flush().await;
        let _ = self.writer.shutdown().await;
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn connection_with(input: &'static [u8]) -> (Connection, tokio::io::DuplexStream) {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs.write_all(input).await.unwrap();
        let (trigger, shutdown) = Shutdown::new();
        std::mem::forget(trigger);
        (Connection::new(Box::new(ours), Duration::from_secs(5), shutdown), theirs)
    }

    #[tokio::test]
    async fn reads_crlf_and_bare_lf_lines() {
        let (mut conn, _peer) = connection_with(b"HELO a\r\nNOOP\nQUIT\r\n").await;
        assert_eq!(conn.read_line(100).await.unwrap(), Line { bytes: b"HELO a".to_vec(), crlf: true });
        assert_eq!(conn.read_line(100).await.unwrap(), Line { bytes: b"NOOP".to_vec(), crlf: false });
        assert_eq!(conn.read_line(100).await.unwrap().bytes, b"QUIT");
    }

    #[tokio::test]
    async fn an_over_long_line_is_skipped_whole_and_the_next_line_is_intact() {
        let (mut conn, _peer) = connection_with(b"0123456789ABCDEF\r\nNOOP\r\n").await;
        assert!(matches!(conn.read_line(8).await, Err(ReadError::TooLong)));
        assert_eq!(conn.read_line(8).await.unwrap().bytes, b"NOOP");
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_accepted() {
        let (mut conn, _peer) = connection_with(b"12345678\r\n123456789\r\n").await;
        assert_eq!(conn.read_line(8).await.unwrap().bytes, b"12345678");
        assert!(matches!(conn.read_line(8).await, Err(ReadError::TooLong)));
    }

    #[tokio::test]
    async fn eof_mid_line_is_closed() {
        let (mut conn, peer) = connection_with(b"HELO a").await;
        drop(peer);
        assert!(matches!(conn.read_line(100).await, Err(ReadError::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out() {
        let (mut conn, _peer) = connection_with(b"").await;
        assert!(matches!(conn.read_line(100).await, Err(ReadError::TimedOut)));
    }

    #[tokio::test]
    async fn shutdown_interrupts_only_between_commands() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (trigger, shutdown) = Shutdown::new();
        let mut conn = Connection::new(Box::new(ours), Duration::from_secs(5), shutdown);
        theirs.write_all(b"NOOP\r\nRSET\r\n").await.unwrap();
        assert_eq!(conn.read_command(100).await.unwrap().bytes, b"NOOP");
        trigger.shut_down();
        // A command already received is still served...
        assert_eq!(conn.read_command(100).await.unwrap().bytes, b"RSET");
        // ...then the session is told to stop.
        assert!(matches!(conn.read_command(100).await, Err(ReadError::ShuttingDown)));
    }
}
