//! The router a proxy service gets from the config: a user map for routes,
//! the node's directory for proxy-side authentication.

use std::sync::Arc;

use super::{ProxyAuth, Route, Router};
use crate::directory::LocalAccounts;
use crate::directory::local_map::LocalMapFile;
use crate::net::BoxFuture;

/// Routes by a local-file map; authenticates against the node's accounts.
pub struct FileMapRouter {
    pub map: Arc<LocalMapFile>,
    pub accounts: Arc<LocalAccounts>,
}

impl Router for FileMapRouter {
    fn route<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Route> {
        Box::pin(async move {
            let key = self.accounts.normalise_login(login).map_or_else(|| login.to_string(), |id| id.to_string());
            match self.map.lookup(&key) {
                Some((host, port)) => Route::Mapped { host, port },
                None => Route::NotInMap,
            }
        })
    }

    fn authenticate<'a>(&'a self, login: &'a str, password: &'a str) -> BoxFuture<'a, ProxyAuth> {
        Box::pin(async move { self.accounts.authenticate(login, password).into() })
    }
}
