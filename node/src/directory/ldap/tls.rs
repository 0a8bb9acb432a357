//! How a connector secures its connections (`[[directory]]` `starttls`,
//! `tls_ca_file`): handed to [`super::LdapOps::connect`]. ldap3 does the TLS
//! in real processes; the seam client has none and refuses it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// TLS for one connector's connections.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Upgrade `ldap://` connections with StartTLS (`ldaps://` URLs are TLS
    /// from the start either way).
    pub starttls: bool,
    /// The CAs server certificates must chain to; None: the system's trust
    /// store.
    pub ca: Option<TrustedCa>,
}

/// The certificates of a `tls_ca_file`, read once (at config load), each
/// checked to be a usable trust anchor.
#[derive(Clone)]
pub struct TrustedCa {
    /// Where they came from, for logs and errors.
    pub path: PathBuf,
    pub roots: Arc<RootCertStore>,
}

impl TrustedCa {
    /// Reads a PEM file holding one or more `CERTIFICATE` blocks (other
    /// blocks, e.g. a key, are skipped).
    pub fn load(path: &Path) -> Result<TrustedCa, String> {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {shown}: {e}"))?;
        let mut roots = RootCertStore::empty();
        for (n, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
            let cert = cert.map_err(|e| format!("CA file {shown}: certificate {}: bad PEM: {e}", n + 1))?;
            roots.add(cert).map_err(|e| format!("CA file {shown}: certificate {}: {e}", n + 1))?;
        }
        if roots.is_empty() {
            return Err(format!("no certificate in {shown} (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)"));
        }
        Ok(TrustedCa { path: path.to_path_buf(), roots: Arc::new(roots) })
    }
}

impl fmt::Debug for TrustedCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path.display(), self.roots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_ca() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/tls/test-ca.pem");
        std::fs::read_to_string(path).expect("fixtures/tls/test-ca.pem")
    }

    fn load(text: &str) -> Result<TrustedCa, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        TrustedCa::load(&path).map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn every_certificate_in_the_file_is_trusted_and_other_blocks_are_skipped() {
        let ca = fixture_ca();
        let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let trusted = load(&format!("# bundle\n{ca}{key}{ca}")).unwrap();
        assert_eq!(trusted.roots.len(), 2);
        assert!(format!("{trusted:?}").ends_with("ca.pem (2 certificates)"));
    }

    #[test]
    fn a_file_without_a_usable_certificate_is_refused() {
        let no_cert = "no certificate in DIR/ca.pem (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)";
        assert_eq!(load("").unwrap_err(), no_cert);
        assert_eq!(load("just text\n").unwrap_err(), no_cert);
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(load(garbage).unwrap_err().starts_with("CA file DIR/ca.pem: certificate 1: "), "{garbage}");
        let missing = TrustedCa::load(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(missing.starts_with("cannot read CA file /nonexistent/ca.pem: "), "{missing}");
    }
}
