//! The router a proxy service gets from the config: its user map for
//! routes, and for proxy-side authentication the map itself (LDAP kinds)
//! or else the node's local accounts (SMTP submission at a proxy).

use std::sync::Arc;

use super::{ProxyAuth, Route, Router};
use crate::directory::LocalAccounts;
use crate::directory::usermap::{self, AuthResult, UserMap};
use crate::net::BoxFuture;

/// Routes by a `[[user_map]]`.
pub struct MapRouter {
    pub map: Arc<UserMap>,
    pub accounts: Arc<LocalAccounts>,
}

impl Router for MapRouter {
    fn route<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Route> {
        Box::pin(async move {
            match self.map.lookup(login).await {
                usermap::Route::Mapped { host, port } => Route::Mapped { host, port },
                usermap::Route::NotInMap => Route::NotInMap,
                usermap::Route::Unavailable(why) => {
                    tracing::warn!(map = self.map.name(), reason = ?why, "user map unavailable");
                    Route::Unavailable
                }
            }
        })
    }

    fn authenticate<'a>(&'a self, login: &'a str, password: &'a str) -> BoxFuture<'a, ProxyAuth> {
        Box::pin(async move {
            if !self.map.can_authenticate() {
                return self.accounts.authenticate(login, password).into();
            }
            match self.map.authenticate(login, password).await {
                AuthResult::Accepted(_) => ProxyAuth::Accepted,
                AuthResult::Rejected => ProxyAuth::Rejected,
                AuthResult::Unavailable(_) => ProxyAuth::Unavailable,
            }
        })
    }
}
