//! Decoy hashes, against user enumeration by timing: a login with no hash
//! to check (unknown user, disabled account, no usable password) is checked
//! against a decoy of the same scheme and cost as real ones, so it takes as
//! long as a wrong password. The fixed failure delay alone does not hide
//! the hash time: it is added to both.
//!
//! A decoy keeps a stored value's scheme and cost parameters (rounds,
//! memory, salt and digest lengths) with a fixed salt and an all-zero hash:
//! no password is expected to match it, and callers discard the answer.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::{AB64, Alg, PasswordError, Stored, parse};

/// What checking a password against a stored value costs: its scheme and
/// cost parameters, without its salt or hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Work(Kind);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Clear { len: usize },
    Digest { alg: Alg, salt_len: usize },
    Pbkdf2 { alg: Alg, rounds: u32, salt_len: usize },
    Md5Crypt { salt_len: usize },
    ShaCrypt { id: &'static str, rounds: u32, salt_len: usize },
    Bcrypt { variant: String, cost: u32 },
    Argon2 { algorithm: String, version: u32, m: u32, t: u32, p: u32, out_len: usize },
}

/// SHA-crypt's rounds when the value names none.
const SHA_CRYPT_DEFAULT_ROUNDS: u32 = 5000;

/// The work of checking a password against `stored` (parsed and cost-checked
/// as [`super::verify`] does, without hashing).
pub fn work_of(stored: &str) -> Result<Work, PasswordError> {
    Ok(Work(match parse(stored)? {
        Stored::Clear(clear) => Kind::Clear { len: clear.len() },
        Stored::Digest { alg, salt, .. } => Kind::Digest { alg, salt_len: salt.len() },
        Stored::Pbkdf2 { alg, rounds, salt, .. } => Kind::Pbkdf2 { alg, rounds, salt_len: salt.len() },
        Stored::Md5Crypt { salt, .. } => Kind::Md5Crypt { salt_len: salt.len() },
        Stored::ShaCrypt(s) => {
            // parse_sha_crypt checked the shape: $id$[rounds=N$]salt$hash.
            let id = if s.starts_with("$5$") { "5" } else { "6" };
            let fields: Vec<&str> = s[3..].split('$').collect();
            let (rounds, salt) = match fields.as_slice() {
                [rounds, salt, _] => (rounds.trim_start_matches("rounds=").parse().unwrap_or(0), *salt),
                [salt, _] => (SHA_CRYPT_DEFAULT_ROUNDS, *salt),
                _ => (SHA_CRYPT_DEFAULT_ROUNDS, ""),
            };
            Kind::ShaCrypt { id, rounds, salt_len: salt.len().min(16) }
        }
        Stored::Bcrypt(s) => Kind::Bcrypt { variant: s[1..3].to_owned(), cost: s[4..6].parse().unwrap_or(0) },
        Stored::Argon2(h) => {
            let params = argon2::Params::try_from(h.as_ref()).map_err(|e| super::malformed("ARGON2", e.to_string()))?;
            Kind::Argon2 {
                algorithm: h.algorithm.as_str().to_owned(),
                version: h.version.unwrap_or(0x13),
                m: params.m_cost(),
                t: params.t_cost(),
                p: params.p_cost(),
                out_len: h.hash.as_ref().map_or(32, |o| o.len()),
            }
        }
    }))
}

impl Work {
    /// A stored value of this scheme and cost that nobody's password is
    /// expected to match.
    pub fn decoy(&self) -> String {
        let dots = |n: usize| ".".repeat(n);
        match &self.0 {
            Kind::Clear { len } => format!("{{CLEARTEXT}}{}", "\u{7f}".repeat((*len).max(1))),
            Kind::Digest { alg, salt_len } => {
                let mut blob = vec![0u8; alg.len()];
                blob.extend(std::iter::repeat_n(0x5a, *salt_len));
                let name = alg.digest_name();
                let salted = if *salt_len > 0 { "S" } else { "" };
                format!("{{{salted}{name}}}{}", STANDARD.encode(blob))
            }
            Kind::Pbkdf2 { alg, rounds, salt_len } => format!(
                "{{PBKDF2-{}}}{rounds}${}${}",
                pbkdf2_name(*alg),
                AB64.encode(vec![0x5a; *salt_len]),
                AB64.encode(vec![0u8; alg.len()])
            ),
            Kind::Md5Crypt { salt_len } => format!("$1${}${}", dots(*salt_len), dots(22)),
            Kind::ShaCrypt { id, rounds, salt_len } => {
                let len = if *id == "5" { 43 } else { 86 };
                format!("${id}$rounds={rounds}${}${}", dots((*salt_len).max(1)), dots(len))
            }
            Kind::Bcrypt { variant, cost } => format!("${variant}${cost:02}${}", dots(53)),
            Kind::Argon2 { algorithm, version, m, t, p, out_len } => format!(
                "${algorithm}$v={version}$m={m},t={t},p={p}${}${}",
                STANDARD_NO_PAD.encode([0x5a; 16]),
                STANDARD_NO_PAD.encode(vec![0u8; *out_len])
            ),
        }
    }
}

/// The digest in a `{PBKDF2-NAME}` (parse gives PBKDF2 only these three).
fn pbkdf2_name(alg: Alg) -> &'static str {
    match alg {
        Alg::Sha1 => "SHA1",
        Alg::Sha256 => "SHA256",
        _ => "SHA512",
    }
}

/// The decoy a node checks logins without a hash against. It follows the
/// real hashes it is shown ([`Decoy::learn`]), so its cost stays that of
/// the hashes the directory actually holds.
#[derive(Debug)]
pub struct Decoy {
    stored: Mutex<String>,
}

/// The decoy before any real hash is seen: SHA-512 crypt at its default
/// rounds, what `tiermail-node hash-password` writes.
fn default_work() -> Work {
    Work(Kind::ShaCrypt { id: "6", rounds: SHA_CRYPT_DEFAULT_ROUNDS, salt_len: 16 })
}

impl Default for Decoy {
    fn default() -> Self {
        Decoy { stored: Mutex::new(default_work().decoy()) }
    }
}

impl Decoy {
    /// A decoy of the most common work among `hashes` (ties: the first);
    /// unusable values are ignored.
    pub fn imitating<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Decoy {
        let mut counts: BTreeMap<Work, (usize, usize)> = BTreeMap::new();
        for (i, work) in hashes.into_iter().filter_map(|h| work_of(h).ok()).enumerate() {
            counts.entry(work).or_insert((0, i)).0 += 1;
        }
        let most = counts.into_iter().max_by_key(|(_, (n, first))| (*n, std::cmp::Reverse(*first)));
        let work = most.map_or_else(default_work, |(work, _)| work);
        Decoy { stored: Mutex::new(work.decoy()) }
    }

    /// Takes on the work of a real stored value about to be checked.
    pub fn learn(&self, stored: &str) {
        if let Ok(work) = work_of(stored) {
            let decoy = work.decoy();
            let mut current = self.stored.lock().unwrap_or_else(|e| e.into_inner());
            if *current != decoy {
                *current = decoy;
            }
        }
    }

    /// The decoy value, to check a password against and ignore the answer.
    pub fn stored(&self) -> String {
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Test instrumentation: the work of every verification this thread ran.
#[cfg(test)]
pub mod record {
    use std::cell::RefCell;

    use super::Work;

    thread_local! {
        static VERIFIED: RefCell<Vec<Work>> = const { RefCell::new(Vec::new()) };
    }

    pub(in crate::directory::password) fn verified(stored: &str) {
        if let Ok(work) = super::work_of(stored) {
            VERIFIED.with(|v| v.borrow_mut().push(work));
        }
    }

    /// The verifications run on this thread since the last call.
    pub fn take() -> Vec<Work> {
        VERIFIED.with(|v| std::mem::take(&mut *v.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::password::verify;

    /// Stored values of every supported kind, and what their decoys keep.
    const VECTORS: [(&str, &str); 11] = [
        ("secret", "{CLEARTEXT}"),
        ("{SSHA}WAsKoNfKTtZszc4V/39TEKtcDm5ag9K7", "{SSHA}"),
        ("{SHA}HkyzyQqcsaIlMojQSpm9I7y+qJo=", "{SHA}"),
        ("{SMD5}rHQZpMU3T2VX7uIgYtswVDbjDJM=", "{SMD5}"),
        (
            "{PBKDF2-SHA256}1000$6z3n3JtzrjWG8H4vRWhNyQ$AmoqnO3l9uX4/PH4XxnZ4.vOagJKYRz/OyaltpTdpWY",
            "{PBKDF2-SHA256}1000$",
        ),
        ("{CRYPT}$1$1aMfept1$5nfWit8RyfQvdBFHuseAV/", "$1$........$"),
        ("{CRYPT}$5$q7OAe04xwFNRLgFM$MoO7j.MIUsHZ/xN1pxLQy66pCI5NVO2myOfzAKatSE8", "$5$rounds=5000$"),
        ("{CRYPT}$2y$05$Q2Vs0l7fqB20b/Zmwu3NPe63t8DOrx5wazsOfyfwA58HPP9xIgAQq", "$2y$05$"),
        (
            "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$dGllcm1haWwtZml4dHVyZQ$EgTVFDn5XAMwZeOgt0PTaO2bjjAUQca+nhOI7aBabJY",
            "$argon2id$v=19$m=19456,t=2,p=1$",
        ),
        (
            "{SSHA512}QJKljBKSClFGsGWhh7YJPUG26u0GwKbxG5fttNZTmSECmLnSM5tfi0j7Gz7ZlmZVSmlx/ZDxh45PC3hRrgKKbXRpZXJtYWlsLWZpeHR1cmU=",
            "{SSHA512}",
        ),
        ("{PLAIN}dGllcm1haWwtUGE1NQ==", "{CLEARTEXT}"),
    ];

    #[test]
    fn decoys_keep_the_scheme_and_cost_of_what_they_imitate() {
        let sha512 = format!("$6$rounds=10000$abcdefgh${}", "a".repeat(86));
        for (stored, prefix) in VECTORS.into_iter().chain([(sha512.as_str(), "$6$rounds=10000$........$")]) {
            let work = work_of(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            let decoy = work.decoy();
            assert!(decoy.starts_with(prefix), "{stored}: {decoy}");
            assert_eq!(work_of(&decoy).unwrap(), work, "{stored}: the decoy costs the same");
            for password in ["", "secret", "tiermail-Pa55", "wonderland"] {
                assert!(!verify(&decoy, password).unwrap(), "{stored}: the decoy accepted {password:?}");
            }
        }
    }

    #[test]
    fn a_decoy_follows_the_hashes_it_sees() {
        let decoy = Decoy::default();
        assert!(decoy.stored().starts_with("$6$rounds=5000$"), "{}", decoy.stored());
        decoy.learn("{CRYPT}$2y$05$Q2Vs0l7fqB20b/Zmwu3NPe63t8DOrx5wazsOfyfwA58HPP9xIgAQq");
        assert!(decoy.stored().starts_with("$2y$05$"));
        decoy.learn("{UNKNOWN}x");
        assert!(decoy.stored().starts_with("$2y$05$"), "unusable values teach nothing");
        let common = Decoy::imitating(["{SHA}HkyzyQqcsaIlMojQSpm9I7y+qJo=", "secret", "public", "{BAD}"]);
        assert!(common.stored().starts_with("{CLEARTEXT}"), "{}", common.stored());
        assert!(Decoy::imitating([]).stored().starts_with("$6$"));
    }
}
