//! [`LdapOps`] with the ldap3 crate, for real processes: `ldap://`,
//! `ldaps://` and StartTLS (rustls with ring; the `tls_ca_file` CAs, else
//! the system trust store). ldap3 opens its own sockets, so this cannot run
//! inside a simulation; [`super::seam_ops`] does.

use std::sync::Arc;

use ldap3::{LdapConnAsync, LdapConnSettings, SearchEntry, SearchOptions};
use rustls::ClientConfig;
use tokio::task::JoinHandle;

use super::ops::{BindResult, Entry, LdapConn, LdapError, LdapOps, Scope, Search};
use super::tls::TlsSettings;
use crate::net::BoxFuture;

/// Connects with ldap3.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ldap3Ops;

impl LdapOps for Ldap3Ops {
    fn connect<'a>(
        &'a self,
        url: &'a str,
        tls: &'a TlsSettings,
    ) -> BoxFuture<'a, Result<Box<dyn LdapConn>, LdapError>> {
        Box::pin(async move {
            let mut settings = LdapConnSettings::new().set_starttls(tls.starttls);
            if let Some(ca) = &tls.ca {
                // Without a config ldap3 builds one on the system trust store.
                // Built per connection: connections are pooled, so rarely.
                let config = ClientConfig::builder().with_root_certificates(ca.roots.clone()).with_no_client_auth();
                settings = settings.set_config(Arc::new(config));
            }
            let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await.map_err(|e| match e {
                ldap3::LdapError::UrlParsing { .. } | ldap3::LdapError::UnknownScheme(_) => {
                    LdapError::BadUrl { url: url.to_string(), reason: e.to_string() }
                }
                e => LdapError::Unreachable { url: url.to_string(), reason: e.to_string() },
            })?;
            // ldap3 multiplexes operations through a driver task; it ends
            // when the connection closes or the handle is dropped.
            let driver = tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(error = %e, "ldap connection ended");
                }
            });
            Ok(Box::new(Ldap3Conn { ldap, driver }) as Box<dyn LdapConn>)
        })
    }
}

struct Ldap3Conn {
    ldap: ldap3::Ldap,
    driver: JoinHandle<()>,
}

impl Drop for Ldap3Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn failed(e: ldap3::LdapError) -> LdapError {
    match e {
        ldap3::LdapError::FilterParsing => LdapError::Code { code: 87, message: "bad filter".into() },
        ldap3::LdapError::Timeout { .. } => LdapError::Timeout,
        e => LdapError::Connection(e.to_string()),
    }
}

impl LdapConn for Ldap3Conn {
    fn simple_bind<'a>(&'a mut self, dn: &'a str, password: &'a str) -> BoxFuture<'a, Result<BindResult, LdapError>> {
        Box::pin(async move {
            let result = self.ldap.simple_bind(dn, password).await.map_err(failed)?;
            match result.rc {
                0 => Ok(BindResult::Ok),
                49 => Ok(BindResult::InvalidCredentials),
                code => Err(LdapError::Code { code, message: result.text }),
            }
        })
    }

    fn search<'a>(&'a mut self, search: &'a Search<'a>) -> BoxFuture<'a, Result<Vec<Entry>, LdapError>> {
        Box::pin(async move {
            let scope = match search.scope {
                Scope::Base => ldap3::Scope::Base,
                Scope::OneLevel => ldap3::Scope::OneLevel,
                Scope::Subtree => ldap3::Scope::Subtree,
            };
            let result = self
                .ldap
                .with_search_options(SearchOptions::new().sizelimit(search.size_limit))
                .search(search.base, scope, search.filter, search.attrs)
                .await
                .map_err(failed)?;
            if !matches!(result.1.rc, 0 | 4) {
                return Err(LdapError::Code { code: result.1.rc, message: result.1.text });
            }
            Ok(result
                .0
                .into_iter()
                .map(|raw| {
                    let found = SearchEntry::construct(raw);
                    let mut entry = Entry { dn: found.dn, ..Entry::default() };
                    for (name, values) in found.attrs {
                        entry.push(&name, values.into_iter().map(String::into_bytes));
                    }
                    for (name, values) in found.bin_attrs {
                        entry.push(&name, values);
                    }
                    entry
                })
                .collect())
        })
    }

    fn unbind(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.ldap.unbind().await;
        })
    }
}
