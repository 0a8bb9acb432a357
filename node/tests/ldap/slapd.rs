//! A real OpenLDAP slapd for tests: config generated into a temp dir (mdb,
//! the fixture LDIF loaded with slapadd, pw-sha2 and argon2 modules so
//! every fixture scheme binds, the PEERS.md ACL: only the root DN reads
//! userPassword), started on a free loopback port, killed on drop.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";

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
    child: Mutex<Option<Child>>,
}

impl Slapd {
    /// Loads fixtures/directory.ldif into a fresh database and starts.
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path())).unwrap();
        let ldif = repo_root().join("fixtures/directory.ldif");
        let out = Command::new(SLAPADD).arg("-f").arg(&conf).arg("-l").arg(&ldif).output().expect("run slapadd");
        assert!(out.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
        let slapd = Slapd { dir, port: free_port(), child: Mutex::new(None) };
        slapd.spawn();
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts slapd again on the same port and data (after `stop`).
    pub fn spawn(&self) {
        let mut slot = self.child.lock().unwrap();
        assert!(slot.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log =
                std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("slapd.log")).unwrap();
            let mut child = Command::new(SLAPD)
                .arg("-h")
                .arg(format!("ldap://127.0.0.1:{}/", self.port))
                .arg("-f")
                .arg(self.dir.path().join("slapd.conf"))
                .arg("-d")
                .arg("0")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start slapd");
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
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
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-secret
directory {dir}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"#
    )
}
