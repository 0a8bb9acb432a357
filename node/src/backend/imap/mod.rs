//! The back-end IMAP service (IMAP4rev1, RFC 3501, with IDLE, ID, NAMESPACE,
//! UIDPLUS, MOVE, SPECIAL-USE, ENABLE, UNSELECT, CHILDREN, LITERAL+): the
//! session logic in `session`, `folders`, `messages`, `fetch`; pure helpers
//! for message structure and SEARCH in `message` and `search`.

mod fetch;
mod flags;
mod folders;
pub mod message;
mod messages;
pub mod search;
mod selected;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Context;
use crate::connection::Connection;
use crate::server::Protocol;

/// RFC 3501 5.4: the autologout timer must be at least 30 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The IMAP service of one node.
pub struct Imap {
    ctx: Arc<Context>,
}

impl Imap {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

impl Protocol for Imap {
    const NAME: &'static str = "imap";

    fn idle_timeout(&self) -> Duration {
        IDLE_TIMEOUT.max(self.ctx.limits.idle_timeout())
    }

    async fn session(self: Arc<Self>, conn: Connection, peer: SocketAddr) {
        session::Session::new(self.ctx.clone(), conn).run(peer).await;
    }
}
