//! A real OpenLDAP slapd for tests: config generated into a temp dir (mdb,
//! the fixture LDIF loaded with slapadd, pw-sha2 and argon2 modules so
//! every fixture scheme binds, the PEERS.md ACL: only the root DN reads
//! userPassword), started on a free loopback port, killed on drop.
//! [`Slapd::start_tls`] adds a throwaway CA and server certificate made
//! with the openssl CLI, StartTLS on the ldap:// port and an ldaps:// port.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";
pub const OPENSSL: &str = "/usr/bin/openssl";

/// Whether slapd is installed; if not, says so, unless
/// TIERMAIL_REQUIRE_PEERS is set, then fails.
pub fn available() -> bool {
    let found = Path::new(SLAPD).exists() && Path::new(SLAPADD).exists();
    if !found {
        assert!(std::env::var("TIERMAIL_REQUIRE_PEERS").is_err(), "slapd is required (TIERMAIL_REQUIRE_PEERS is set)");
        eprintln!("SKIPPED: slapd is not installed (apt-get install slapd ldap-utils)");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub struct Slapd {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The ldaps:// port, when started with TLS.
    pub tls_port: Option<u16>,
    child: Mutex<Option<Child>>,
}

impl Slapd {
    /// Loads fixtures/directory.ldif into a fresh database and starts.
    pub fn start() -> Slapd {
        Slapd::start_with(false)
    }

    /// Like [`Slapd::start`], with TLS: a certificate for 127.0.0.1 and
    /// localhost signed by a CA made for this run ([`Slapd::ca_file`]).
    /// Operations without TLS are refused (confidentialityRequired), so
    /// whatever works on the ldap:// port went through StartTLS.
    pub fn start_tls() -> Slapd {
        Slapd::start_with(true)
    }

    fn start_with(tls: bool) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let mut text = config(dir.path());
        if tls {
            make_certificates(dir.path());
            let d = dir.path().display();
            text = format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n\
                 security tls=1\n{text}"
            );
        }
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, text).unwrap();
        let ldif = repo_root().join("fixtures/directory.ldif");
        let out = Command::new(SLAPADD).arg("-f").arg(&conf).arg("-l").arg(&ldif).output().expect("run slapadd");
        assert!(out.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
        let slapd = Slapd { dir, port: free_port(), tls_port: tls.then(free_port), child: Mutex::new(None) };
        slapd.spawn();
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The ldaps:// URL (started with [`Slapd::start_tls`]).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.expect("started with TLS"))
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Starts slapd again on the same port and data (after `stop`).
    pub fn spawn(&self) {
        let mut slot = self.child.lock().unwrap();
        assert!(slot.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut listen = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(port) = self.tls_port {
            listen += &format!(" ldaps://127.0.0.1:{port}/");
        }
        let ports: Vec<u16> = [self.port].into_iter().chain(self.tls_port).collect();
        loop {
            let log =
                std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("slapd.log")).unwrap();
            let mut child = Command::new(SLAPD)
                .arg("-h")
                .arg(&listen)
                .arg("-f")
                .arg(self.dir.path().join("slapd.conf"))
                .arg("-d")
                .arg("0")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start slapd");
            while Instant::now() < deadline {
                if ports.iter().all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok()) {
                    *slot = Some(child);
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port not free yet after a stop: try again
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "slapd did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills slapd (SIGKILL: open connections just break).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost (P-256, valid
/// two days), made with the openssl CLI into `dir`: ca.pem, server.pem,
/// server.key.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new(OPENSSL).args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca = ["req", "-x509", "-subj", "/CN=tiermail test CA", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem"];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    openssl(&[&ca[..], &new_key, &ca_ext].concat());
    let csr = ["req", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"];
    openssl(&[&csr[..], &new_key].concat());
    let ext = "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = critical, CA:FALSE\n\
               keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n";
    std::fs::write(dir.join("server.ext"), ext).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

fn config(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/misc.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload pw-sha2
moduleload argon2
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-secret
directory {dir}/data
overlay ppolicy
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"#
    )
}
