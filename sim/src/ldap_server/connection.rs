//! One client connection: BER framing (ldap3_proto's codec, with a PDU
//! size cap), the idle timeout, shutdown between requests, and the fault
//! modes the simulator switches on. What to answer is `ops.rs`'s business.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapMsg, LdapResultCode};
use tiermail_node::net::Stream;
use tiermail_node::shutdown::Shutdown;
use tokio::sync::watch;
use tokio_util::codec::Framed;
use tracing::debug;

use super::Shared;
use super::control::{Counter, Mode};
use super::ops::{Reply, Session, disconnect, refuse};

/// Serves one connection until the client unbinds or leaves, it idles out,
/// the server shuts down or goes Down.
pub(super) async fn run(stream: Stream, shared: Arc<Shared>, mut shutdown: Shutdown) {
    let config = &shared.config;
    let mut framed = Framed::new(stream, LdapCodec::new(Some(config.max_pdu_size), None));
    let mut session = Session::new(shared.clone());
    let mut modes = shared.control.subscribe();
    loop {
        let next = tokio::select! {
            biased;
            _ = went_down(&mut modes) => return,
            _ = shutdown.recv() => return,
            next = tokio::time::timeout(config.idle_timeout, framed.next()) => next,
        };
        let msg = match next {
            Err(_) => {
                debug!("idle timeout");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                // Malformed BER, an unknown operation or an oversized PDU:
                // the stream cannot be resynchronised.
                debug!(error = %e, "protocol error");
                let notice = disconnect(LdapResultCode::ProtocolError, "malformed or oversized request");
                send(&mut framed, vec![notice], config.idle_timeout).await;
                return;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let Some(reply) = answer(&mut session, &shared, &mut modes, &mut shutdown, msg).await else {
            return;
        };
        match reply {
            Reply::Send(messages) => {
                if !send(&mut framed, messages, config.idle_timeout).await {
                    return;
                }
            }
            Reply::Close(notice) => {
                send(&mut framed, notice.into_iter().collect(), config.idle_timeout).await;
                return;
            }
        }
    }
}

/// Answers one request as the current fault mode dictates; None when the
/// connection must close at once (Down, or shutdown during a delay).
async fn answer(
    session: &mut Session,
    shared: &Shared,
    modes: &mut watch::Receiver<Mode>,
    shutdown: &mut Shutdown,
    msg: LdapMsg,
) -> Option<Reply> {
    let mode = *modes.borrow();
    match mode {
        Mode::Normal => Some(session.handle(msg)),
        Mode::Down => None,
        Mode::Hang => Some(hang(msg)),
        Mode::Error => Some(fail(shared, msg)),
        Mode::Slow(delay) => {
            tokio::select! {
                biased;
                _ = went_down(modes) => return None,
                _ = shutdown.recv() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            // The mode may have changed while this request waited.
            let mode = *modes.borrow();
            match mode {
                Mode::Down => None,
                Mode::Hang => Some(hang(msg)),
                Mode::Error => Some(fail(shared, msg)),
                Mode::Normal | Mode::Slow(_) => Some(session.handle(msg)),
            }
        }
    }
}

/// Mode Hang: the request is read and forgotten (an unbind still closes).
fn hang(msg: LdapMsg) -> Reply {
    match msg.op {
        ldap3_proto::proto::LdapOp::UnbindRequest => Reply::Close(None),
        _ => Reply::Send(Vec::new()),
    }
}

/// Mode Error: every request is refused with a temporary error.
fn fail(shared: &Shared, msg: LdapMsg) -> Reply {
    let reply = refuse(msg.msgid, &msg.op, LdapResultCode::Unavailable, "directory unavailable (injected fault)");
    if matches!(&reply, Reply::Send(m) if !m.is_empty()) {
        shared.control.count(Counter::Faulted);
    }
    reply
}

/// Resolves when the server goes Down (never if the control is gone).
async fn went_down(modes: &mut watch::Receiver<Mode>) {
    if modes.wait_for(|mode| *mode == Mode::Down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Writes `messages` in one flush; false if the client is gone or stopped
/// reading for a whole idle timeout.
async fn send(framed: &mut Framed<Stream, LdapCodec>, messages: Vec<LdapMsg>, timeout: Duration) -> bool {
    if messages.is_empty() {
        return true;
    }
    let write = async {
        for msg in messages {
            framed.feed(msg).await?;
        }
        framed.flush().await
    };
    matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(())))
}
