//! The `auth_http` service nginx's mail proxy asks before each login. This
//! one sends every login to the bench's back-end and leaves the password to
//! it, as `auth = "backend"` does for our proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request accepted (nginx sends a dozen short headers).
const MAX_REQUEST: usize = 16 * 1024;
/// How long a request may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The responder, serving until dropped.
pub(super) struct AuthHttp {
    pub(super) addr: SocketAddr,
    /// Requests received so far.
    pub(super) served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthHttp {
    /// Listens on a free loopback port, served by the runtime entered.
    pub(super) fn start(backend: SocketAddr) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind the auth_http responder")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let answer: Arc<[u8]> = auth_response(backend).into_bytes().into();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors and the like: nginx retries the login.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (answer, counter) = (answer.clone(), counter.clone());
                tokio::spawn(async move {
                    tokio::time::timeout(REQUEST_TIMEOUT, serve(stream, &answer, &counter)).await.ok();
                });
            }
        });
        Ok(AuthHttp { addr, served, task })
    }
}

impl Drop for AuthHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request's head, counts it, answers, closes (HTTP/1.0).
async fn serve(mut stream: TcpStream, answer: &[u8], served: &AtomicUsize) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || request.len() + n > MAX_REQUEST {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    served.fetch_add(1, Ordering::Relaxed);
    stream.write_all(answer).await?;
    stream.shutdown().await
}

/// The answer to every request: log in at `backend`.
fn auth_response(backend: SocketAddr) -> String {
    format!(
        "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: {}\r\nAuth-Port: {}\r\n\r\n",
        backend.ip(),
        backend.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_what_nginx_expects() {
        let backend = SocketAddr::from(([127, 0, 0, 1], 1430));
        let answer = auth_response(backend);
        let (head, rest) = answer.split_once("\r\n\r\n").expect("a blank line ends the head");
        assert_eq!(rest, "", "no body");
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines, ["HTTP/1.0 200 OK", "Auth-Status: OK", "Auth-Server: 127.0.0.1", "Auth-Port: 1430"]);
    }

    /// The request nginx 1.22 sends, split over two writes.
    #[tokio::test]
    async fn a_request_from_nginx_gets_the_answer() {
        let backend = SocketAddr::from(([127, 0, 0, 1], 1430));
        let auth = AuthHttp::start(backend).unwrap();
        let mut client = TcpStream::connect(auth.addr).await.unwrap();
        client.write_all(b"GET /auth HTTP/1.0\r\nHost: localhost\r\nAuth-Method: plain\r\n").await.unwrap();
        client
            .write_all(b"Auth-User: bench@example.com\r\nAuth-Pass: pw\r\nAuth-Protocol: imap\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, auth_response(backend));
        assert_eq!(auth.served.load(Ordering::Relaxed), 1);
    }
}
