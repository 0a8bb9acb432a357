//! The answers to one connection's requests: simple bind, search, compare
//! and WhoAmI; anything else is refused with the right response type.
//! Pure (messages in, messages out); I/O, fault modes and timeouts live in
//! `connection.rs`.
//!
//! Access follows the usual slapd setup (`access to attrs=userPassword by
//! anonymous auth by * none`; the service DN sees everything): only the
//! admin reads, filters on or compares `userPassword`.

use std::sync::Arc;

use ldap3_proto::DisconnectionNotice;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapBindResponse, LdapCompareRequest, LdapExtendedResponse, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};
use tiermail_node::directory::password;
use tracing::debug;

use super::Shared;
use super::control::Counter;
use super::directory::{Dn, Entry, attribute_key};
use super::filter::{self, is_secret, values_equal};

/// The WhoAmI extended operation (RFC 4532).
pub const WHOAMI_OID: &str = "1.3.6.1.4.1.4203.1.11.3";

/// What the connection does after a request.
#[derive(Debug)]
pub(super) enum Reply {
    /// Send these messages (possibly none) and read the next request.
    Send(Vec<LdapMsg>),
    /// Send this notice, if any, and close the connection.
    Close(Option<LdapMsg>),
}

/// Who the connection is bound as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Anonymous,
    Admin,
    /// A directory entry, by its DN as the directory writes it.
    User(String),
}

/// One connection's protocol state.
pub(super) struct Session {
    shared: Arc<Shared>,
    identity: Identity,
}

impl Session {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, identity: Identity::Anonymous }
    }

    /// Answers one request.
    pub(super) fn handle(&mut self, msg: LdapMsg) -> Reply {
        let LdapMsg { msgid, op, ctrl: _ } = msg;
        let reply = |op| Reply::Send(vec![LdapMsg::new(msgid, op)]);
        match op {
            LdapOp::BindRequest(req) => {
                reply(LdapOp::BindResponse(LdapBindResponse { res: self.bind(&req), saslcreds: None }))
            }
            LdapOp::SearchRequest(req) => Reply::Send(self.search(msgid, &req)),
            LdapOp::CompareRequest(req) => reply(LdapOp::CompareResult(self.compare(&req))),
            LdapOp::ExtendedRequest(req) if req.name == WHOAMI_OID => {
                let authzid = match &self.identity {
                    Identity::Anonymous => String::new(),
                    Identity::Admin => format!("dn:{}", self.shared.config.admin_dn),
                    Identity::User(dn) => format!("dn:{dn}"),
                };
                reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: result(LdapResultCode::Success, ""),
                    name: None,
                    value: Some(authzid.into_bytes()),
                }))
            }
            // RFC 4511 §4.12: an unrecognised extended operation gets protocolError.
            op @ LdapOp::ExtendedRequest(_) => {
                refuse(msgid, &op, LdapResultCode::ProtocolError, "unsupported extended operation")
            }
            op => refuse(msgid, &op, LdapResultCode::UnwillingToPerform, "the directory is read-only"),
        }
    }

    fn bind(&mut self, req: &LdapBindRequest) -> LdapResult {
        // A bind, successful or not, first makes the connection anonymous.
        self.identity = Identity::Anonymous;
        if req.version != 3 {
            return result(LdapResultCode::ProtocolError, "only LDAPv3 is supported");
        }
        let LdapBindCred::Simple(password) = &req.cred else {
            return result(LdapResultCode::AuthMethodNotSupported, "only simple bind is supported");
        };
        if req.dn.is_empty() && password.is_empty() {
            return result(LdapResultCode::Success, "");
        }
        if !req.dn.is_empty() && password.is_empty() {
            // RFC 4513 §5.1.2: an "unauthenticated bind" must not pass for a login.
            return result(LdapResultCode::UnwillingToPerform, "unauthenticated bind (DN with no password) disallowed");
        }
        match self.authenticate(&req.dn, password) {
            Some(identity) => {
                debug!(dn = %req.dn, "bind succeeded");
                self.identity = identity;
                self.shared.control.count(Counter::BindOk);
                result(LdapResultCode::Success, "")
            }
            None => {
                // Wrong password, no such entry, no userPassword, unusable
                // hash: one answer, so a client cannot tell them apart.
                debug!(dn = %req.dn, "bind failed");
                self.shared.control.count(Counter::BindFailed);
                result(LdapResultCode::InvalidCredentials, "")
            }
        }
    }

    fn authenticate(&self, dn: &str, pw: &str) -> Option<Identity> {
        let dn = Dn::parse(dn).ok()?;
        let verify =
            |stored: &[u8]| std::str::from_utf8(stored).is_ok_and(|s| password::verify(s, pw).unwrap_or(false));
        if self.shared.admin_dn.as_ref() == Some(&dn) {
            return verify(self.shared.config.admin_password.as_bytes()).then_some(Identity::Admin);
        }
        let entry = self.shared.directory.lookup(&dn)?;
        let stored = entry.attribute("userPassword")?;
        stored.values.iter().any(|v| verify(v)).then(|| Identity::User(entry.dn().to_owned()))
    }

    fn may_read(&self) -> bool {
        self.identity != Identity::Anonymous || self.shared.config.allow_anonymous_search
    }

    fn search(&self, msgid: i32, req: &LdapSearchRequest) -> Vec<LdapMsg> {
        self.shared.control.count(Counter::Search);
        let done = |res| LdapMsg::new(msgid, LdapOp::SearchResultDone(res));
        if !self.may_read() {
            return vec![done(result(LdapResultCode::InsufficentAccessRights, "anonymous search is disabled"))];
        }
        let Ok(base) = Dn::parse(&req.base) else {
            return vec![done(result(LdapResultCode::InvalidDNSyntax, "invalid base DN"))];
        };
        let directory = &self.shared.directory;
        let root_dse;
        let candidates: Vec<&Entry> = if base.is_root() {
            // Base scope on "" is the root DSE; wider scopes search the whole tree.
            match req.scope {
                LdapSearchScope::Base => {
                    root_dse = self.root_dse();
                    vec![&root_dse]
                }
                LdapSearchScope::OneLevel => directory.suffix().into_iter().collect(),
                LdapSearchScope::Subtree | LdapSearchScope::Children => directory.entries().iter().collect(),
            }
        } else if directory.contains(&base) {
            directory.entries().iter().filter(|e| in_scope(e.norm(), &base, &req.scope)).collect()
        } else {
            return vec![done(LdapResult {
                matcheddn: self.matched_dn(&base),
                ..result(LdapResultCode::NoSuchObject, "")
            })];
        };
        let admin = self.identity == Identity::Admin;
        let limit = usize::try_from(req.sizelimit).ok().filter(|&n| n > 0).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for entry in candidates.into_iter().filter(|e| filter::matches(&req.filter, e, admin, directory)) {
            if out.len() == limit {
                out.push(done(result(LdapResultCode::SizeLimitExceeded, "")));
                return out;
            }
            let attributes = select(entry, &req.attrs, req.typesonly, admin);
            let entry = LdapSearchResultEntry { dn: entry.dn().to_owned(), attributes };
            out.push(LdapMsg::new(msgid, LdapOp::SearchResultEntry(entry)));
        }
        out.push(done(result(LdapResultCode::Success, "")));
        out
    }

    /// The DN of the closest existing ancestor of a missing base.
    fn matched_dn(&self, missing: &Dn) -> String {
        std::iter::successors(missing.parent(), Dn::parent)
            .find_map(|dn| self.shared.directory.lookup(&dn))
            .map(|e| e.dn().to_owned())
            .unwrap_or_default()
    }

    fn root_dse(&self) -> Entry {
        let mut dse = Entry::new(String::new(), Dn::default());
        dse.add_value("objectClass", b"top".to_vec());
        if let Some(suffix) = self.shared.directory.suffix() {
            dse.add_value("namingContexts", suffix.dn().as_bytes().to_vec());
        }
        dse.add_value("supportedLDAPVersion", b"3".to_vec());
        dse.add_value("supportedExtension", WHOAMI_OID.as_bytes().to_vec());
        dse.add_value("vendorName", b"tiermail".to_vec());
        dse
    }

    fn compare(&self, req: &LdapCompareRequest) -> LdapResult {
        self.shared.control.count(Counter::Compare);
        if !self.may_read() {
            return result(LdapResultCode::InsufficentAccessRights, "anonymous access is disabled");
        }
        let Ok(dn) = Dn::parse(&req.dn) else {
            return result(LdapResultCode::InvalidDNSyntax, "invalid DN");
        };
        let Some(entry) = self.shared.directory.lookup(&dn) else {
            return result(LdapResultCode::NoSuchObject, "");
        };
        let key = attribute_key(&req.atype);
        if is_secret(&key) && self.identity != Identity::Admin {
            return result(LdapResultCode::InsufficentAccessRights, "");
        }
        match entry.attribute(&key) {
            None => result(LdapResultCode::NoSuchAttribute, ""),
            Some(attr) if attr.values.iter().any(|v| values_equal(&key, v, &req.val)) => {
                result(LdapResultCode::CompareTrue, "")
            }
            Some(_) => result(LdapResultCode::CompareFalse, ""),
        }
    }
}

fn in_scope(dn: &Dn, base: &Dn, scope: &LdapSearchScope) -> bool {
    match scope {
        LdapSearchScope::Base => dn == base,
        LdapSearchScope::OneLevel => dn.is_child_of(base),
        LdapSearchScope::Subtree => dn == base || dn.is_descendant_of(base),
        LdapSearchScope::Children => dn.is_descendant_of(base),
    }
}

/// The attributes a search returns: none requested or `*` = all user
/// attributes, `1.1` alone = none, else those named; secrets only to the admin.
fn select(entry: &Entry, requested: &[String], types_only: bool, admin: bool) -> Vec<LdapPartialAttribute> {
    let all = requested.is_empty() || requested.iter().any(|a| a == "*");
    let named: Vec<String> =
        requested.iter().filter(|a| !matches!(a.as_str(), "*" | "+" | "1.1")).map(|a| attribute_key(a)).collect();
    entry
        .attributes()
        .iter()
        .filter(|a| all || named.contains(&a.key))
        .filter(|a| admin || !is_secret(&a.key))
        .map(|a| LdapPartialAttribute {
            atype: a.name.clone(),
            vals: if types_only { Vec::new() } else { a.values.clone() },
        })
        .collect()
}

pub(super) fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult { code, matcheddn: String::new(), message: message.to_owned(), referral: Vec::new() }
}

/// A Notice of Disconnection (RFC 4511 §4.4.1), sent before closing.
pub(super) fn disconnect(code: LdapResultCode, message: &str) -> LdapMsg {
    DisconnectionNotice::gen_response(code, message)
}

/// Refuses request `op` with `code`, in the response type the request
/// expects; unbind closes, abandon gets no answer, a non-request is a
/// protocol error that ends the connection.
pub(super) fn refuse(msgid: i32, op: &LdapOp, code: LdapResultCode, message: &str) -> Reply {
    let res = result(code, message);
    let op = match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse { res, saslcreds: None }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse { res, name: None, value: None }),
        LdapOp::UnbindRequest => return Reply::Close(None),
        LdapOp::AbandonRequest(_) => return Reply::Send(Vec::new()),
        _ => return Reply::Close(Some(disconnect(LdapResultCode::ProtocolError, "expected a request"))),
    };
    Reply::Send(vec![LdapMsg::new(msgid, op)])
}
