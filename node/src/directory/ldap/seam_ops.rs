//! [`LdapOps`] over tiermail's network seam with ldap3_proto's codec: the
//! directory client inside simulations (turmoil sockets), and usable over
//! real sockets too. Plain `ldap://` only (no TLS on the seam yet).
//! Deterministic: message ids come from a per-connection counter, nothing
//! reads a clock, nothing is random.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchScope,
};
use tokio_util::codec::Framed;

use super::filter;
use super::ops::{BindResult, Entry, LdapConn, LdapError, LdapOps, Scope, Search};
use super::tls::TlsSettings;
use crate::directory::settings::LdapUrl;
use crate::net::{BoxFuture, Net, Stream};

/// Largest response message accepted (one search entry, one result).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Most entries one search may return before the connection is dropped.
const MAX_ENTRIES: usize = 100_000;

/// Connects through a [`Net`] (real or simulated sockets).
#[derive(Clone)]
pub struct SeamOps {
    net: Arc<dyn Net>,
}

impl SeamOps {
    pub fn new(net: Arc<dyn Net>) -> Self {
        Self { net }
    }
}

impl LdapOps for SeamOps {
    fn connect<'a>(
        &'a self,
        url: &'a str,
        tls: &'a TlsSettings,
    ) -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>> {
        Box::pin(async move {
            let bad = |reason: &str| LdapError::BadUrl { url: url.to_string(), reason: reason.to_string() };
            let parsed = LdapUrl::parse(url).map_err(|e| bad(&e))?;
            if parsed.tls || tls.starttls {
                return Err(bad("TLS is not available over the network seam; use ldap:// without starttls"));
            }
            let stream = self
                .net
                .connect(&parsed.authority())
                .await
                .map_err(|e| LdapError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
            let framed = Framed::new(stream, LdapCodec::new(Some(MAX_MESSAGE), None));
            Ok(Box::new(SeamConn { framed, next_id: 1 }) as Box<dyn LdapConn>)
        })
    }
}

struct SeamConn {
    framed: Framed<Stream, LdapCodec>,
    next_id: i32,
}

impl SeamConn {
    async fn send(&mut self, op: LdapOp) -> Result<i32, LdapError> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.framed.send(LdapMsg::new(id, op)).await.map_err(|e| LdapError::Connection(e.to_string()))?;
        Ok(id)
    }

    /// The next message answering `id`; others (a late answer to an
    /// abandoned request) are skipped.
    async fn receive(&mut self, id: i32) -> Result<LdapOp, LdapError> {
        loop {
            let msg = match self.framed.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return Err(LdapError::Connection(e.to_string())),
                None => return Err(LdapError::Connection("closed by the server".into())),
            };
            if msg.msgid == 0 {
                // Notice of disconnection (RFC 4511 4.4.1).
                return Err(LdapError::Connection(format!("server disconnected: {:?}", msg.op)));
            }
            if msg.msgid == id {
                return Ok(msg.op);
            }
        }
    }
}

fn code(result: &LdapResult) -> u32 {
    result.code.clone() as i64 as u32
}

fn unexpected(op: &LdapOp) -> LdapError {
    let name = format!("{op:?}");
    LdapError::Connection(format!("unexpected response {}", name.split(['(', ' ']).next().unwrap_or("?")))
}

impl LdapConn for SeamConn {
    fn simple_bind<'a>(&'a mut self, dn: &'a str, password: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>> {
        Box::pin(async move {
            let request = LdapBindRequest { version: 3, dn: dn.into(), cred: LdapBindCred::Simple(password.into()) };
            let id = self.send(LdapOp::BindRequest(request)).await?;
            match self.receive(id).await? {
                LdapOp::BindResponse(response) => match response.res.code {
                    LdapResultCode::Success => Ok(BindResult::Ok),
                    LdapResultCode::InvalidCredentials => Ok(BindResult::InvalidCredentials),
                    _ => Err(LdapError::Code { code: code(&response.res), message: response.res.message }),
                },
                other => Err(unexpected(&other)),
            }
        })
    }

    fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>> {
        Box::pin(async move {
            // A filter we cannot parse is our own bug or a bad pattern: the
            // server never sees it, as ldap3 would not send it either.
            let filter = filter::parse(search.filter)
                .map_err(|e| LdapError::Code { code: 87, message: format!("bad filter: {e}") })?;
            let request = LdapSearchRequest {
                base: search.base.into(),
                scope: match search.scope {
                    Scope::Base => LdapSearchScope::Base,
                    Scope::OneLevel => LdapSearchScope::OneLevel,
                    Scope::Subtree => LdapSearchScope::Subtree,
                },
                aliases: LdapDerefAliases::Never,
                sizelimit: search.size_limit,
                timelimit: 0,
                typesonly: false,
                filter,
                attrs: search.attrs.iter().map(|a| a.to_string()).collect(),
            };
            let id = self.send(LdapOp::SearchRequest(request)).await?;
            let mut entries = Vec::new();
            loop {
                match self.receive(id).await? {
                    LdapOp::SearchResultEntry(found) => {
                        if entries.len() >= MAX_ENTRIES {
                            return Err(LdapError::Connection(format!("more than {MAX_ENTRIES} entries")));
                        }
                        let mut entry = Entry { dn: found.dn, ..Entry::default() };
                        for attr in found.attributes {
                            entry.push(&attr.atype, attr.vals);
                        }
                        entries.push(entry);
                    }
                    LdapOp::SearchResultReference(_) => {} // referrals are not chased
                    LdapOp::SearchResultDone(done) => {
                        return match done.code {
                            LdapResultCode::Success | LdapResultCode::SizeLimitExceeded => Ok(entries),
                            _ => Err(LdapError::Code { code: code(&done), message: done.message }),
                        };
                    }
                    other => return Err(unexpected(&other)),
                }
            }
        })
    }

    fn unbind(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if self.send(LdapOp::UnbindRequest).await.is_ok() {
                let _ = self.framed.close().await;
            }
        })
    }
}
