//! SMTP delivery with lettre over any seam stream. lettre accepts a
//! caller-supplied tokio stream at connection level; this adapts ours.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tiermail_node::net::{Net, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::smtp_dialogue::SmtpDialogue;

/// A seam stream as lettre's `AsyncTokioStream`.
#[derive(Debug)]
struct LettreStream {
    inner: Stream,
    peer: SocketAddr,
}

impl AsyncRead for LettreStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LettreStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for LettreStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// Why a delivery did not get its 250.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("bad envelope: {0}")]
    Envelope(String),
}

/// Delivers one raw message over a fresh SMTP connection to `addr`
/// ("host:port"), returning the server's reply to DATA.
pub async fn send(net: &dyn Net, addr: &str, from: &str, to: &[&str], message: &[u8]) -> Result<Response, SendError> {
    let stream = net.connect(addr).await.map_err(|source| SendError::Connect { addr: addr.to_string(), source })?;
    // lettre only reports the peer address in errors; an unspecified one will do.
    let peer = SocketAddr::from(([0, 0, 0, 0], 0));
    let client = ClientId::Domain("client.test".into());
    let mut conn =
        AsyncSmtpConnection::connect_with_transport(Box::new(LettreStream { inner: stream, peer }), &client).await?;
    let parse = |a: &str| a.parse().map_err(|e| SendError::Envelope(format!("{a}: {e}")));
    let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(Some(parse(from)?), recipients).map_err(|e| SendError::Envelope(e.to_string()))?;
    let response = conn.send(&envelope, message).await?;
    // The reply to DATA decided the delivery; a failed QUIT changes nothing.
    let _ = conn.quit().await;
    Ok(response)
}

/// Opens an SMTP session to `addr`, says EHLO and tries AUTH PLAIN with
/// `user` and `password`; returns the reply code to AUTH (235 = accepted).
pub async fn auth_plain(net: &dyn Net, addr: &str, user: &str, password: &str) -> io::Result<u16> {
    use base64::Engine;
    let mut session = match SmtpDialogue::open(net.connect(addr).await?).await? {
        Ok(session) => session,
        Err(unwelcoming) => return Ok(unwelcoming.code),
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    let code = session.command(&format!("AUTH PLAIN {token}")).await?.code;
    session.quit().await;
    Ok(code)
}
