//! Password schemes: checks a password against a stored hash (an LDAP
//! `userPassword` value or a local account's hash) and makes new hashes for
//! the `tiermail-node hash-password` command.
//!
//! Formats are those written by OpenLDAP `slappasswd` (with its pw-sha2,
//! argon2 and pw-pbkdf2 modules), Dovecot `doveadm pw`, `openssl passwd`,
//! 389-ds and passlib. A stored value is parsed and its cost checked in full
//! before any hashing, so a bad value fails the same way whatever the
//! password (config loading relies on this: it verifies every account
//! against "" to reject unusable hashes early).
//!
//! seeds: LDAP Password user map — clear text, plain text in base64,
//! encrypted hashes.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use base64::Engine as _;
use base64::alphabet::{self, Alphabet};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use md5::Md5;
use sha_crypt::ShaCrypt;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

mod decoy;
#[cfg(test)]
pub use decoy::record;
pub use decoy::{Decoy, Work, work_of};

/// Longest stored value we parse; real hashes are well under 300 bytes.
const MAX_STORED_LEN: usize = 1024;
/// Longer passwords never verify: MD5-crypt and SHA-crypt cost grows with
/// rounds × password length (SHA-crypt's with its square too).
const MAX_PASSWORD_LEN: usize = 1024;
/// PBKDF2 iterations allowed; more would let one directory entry pin a CPU.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// SHA-crypt rounds allowed: above passlib's default (656,000), far below
/// crypt(3)'s limit of 999,999,999.
const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;
/// bcrypt cost allowed (2^16 rounds, a few seconds of CPU).
const MAX_BCRYPT_COST: u32 = 16;
/// Argon2 memory per verification in KiB (256 MiB); the tools' defaults
/// are 4–64 MiB.
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Argon2 memory × passes in KiB: bounds time as the memory cap bounds space.
const MAX_ARGON2_WORK_KIB: u64 = 1024 * 1024;

/// Why a stored value cannot be used. Messages name the scheme but never
/// carry the stored value or the password: they end up in logs.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The `{NAME}` or `$id$` prefix names no scheme we support.
    #[error("unknown password scheme `{scheme}`")]
    UnknownScheme { scheme: String },
    /// The scheme is known but the value does not follow its format, or its
    /// cost parameters exceed our limits.
    #[error("malformed {scheme} password hash: {reason}")]
    Malformed { scheme: &'static str, reason: String },
}

fn malformed(scheme: &'static str, reason: impl Into<String>) -> PasswordError {
    PasswordError::Malformed { scheme, reason: reason.into() }
}

/// Checks `password` against a stored hash in one of the supported schemes.
/// Ok(true) = match, Ok(false) = wrong password, Err = the stored value is unusable
/// (unknown scheme or malformed), which callers treat as an authentication failure.
pub fn verify(stored: &str, password: &str) -> Result<bool, PasswordError> {
    let parsed = parse(stored)?;
    #[cfg(test)]
    record::verified(stored);
    if password.len() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    parsed.check(password.as_bytes())
}

/// Checks that a stored value is usable without hashing anything: for
/// config loading, where verifying every account would cost a full hash each.
pub fn validate(stored: &str) -> Result<(), PasswordError> {
    parse(stored).map(drop)
}

/// Schemes `hash` can produce (for the `tiermail-node hash-password` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssha256,
    Ssha512,
    Sha512Crypt,
    Argon2id,
}

impl Scheme {
    /// Every scheme, in the order the command's help lists them.
    pub const ALL: [Scheme; 4] = [Scheme::Ssha256, Scheme::Ssha512, Scheme::Sha512Crypt, Scheme::Argon2id];

    /// The name the command line accepts (case-insensitively).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Argon2id => "ARGON2ID",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheme name the command line does not know; the message lists the valid ones.
#[derive(Debug, thiserror::Error)]
#[error("unknown password scheme `{name}`; valid schemes are {}", valid_scheme_names())]
pub struct UnknownSchemeName {
    name: String,
}

fn valid_scheme_names() -> String {
    let names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
    names.join(", ")
}

impl FromStr for Scheme {
    type Err = UnknownSchemeName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSchemeName { name: s.to_owned() })
    }
}

/// Hashes `password` with `scheme` using the caller's salt bytes (the caller supplies
/// randomness; this module never reads an RNG or the clock). Output must verify with `verify`.
///
/// The prefixes are the ones OpenLDAP accepts (`{CRYPT}`, `{ARGON2}` with its
/// argon2 module), so the value also works when pasted into a directory.
/// Passwords over 1024 bytes hash but never verify.
pub fn hash(scheme: Scheme, password: &str, salt: &[u8; 16]) -> String {
    let pw = password.as_bytes();
    match scheme {
        Scheme::Ssha256 => salted_digest("{SSHA256}", Alg::Sha256, pw, salt),
        Scheme::Ssha512 => salted_digest("{SSHA512}", Alg::Sha512, pw, salt),
        Scheme::Sha512Crypt => {
            // 12 bytes encode to exactly 16 salt characters, the most crypt(3)
            // reads; a longer salt string would not compare equal there.
            let hashed = ShaCrypt::SHA512
                .hash_password_with_salt(pw, &salt[..12])
                .expect("SHA-crypt accepts any 12-byte salt with default rounds");
            format!("{{CRYPT}}{hashed}")
        }
        Scheme::Argon2id => {
            // The crate's defaults are OWASP's minimum (19 MiB, 2 passes).
            let argon2 = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::DEFAULT);
            let hashed = argon2
                .hash_password_with_salt(pw, salt)
                .expect("Argon2 accepts a 16-byte salt with default parameters");
            format!("{{ARGON2}}{hashed}")
        }
    }
}

fn salted_digest(prefix: &str, alg: Alg, pw: &[u8], salt: &[u8]) -> String {
    let mut blob = alg.digest(&[pw, salt]);
    blob.extend_from_slice(salt);
    format!("{prefix}{}", base64::engine::general_purpose::STANDARD.encode(blob))
}

/// Standard base64, lenient about padding and trailing bits as OpenLDAP is.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// passlib's "adapted base64" used by PBKDF2 hashes: '.' instead of '+', no padding.
const AB64: GeneralPurpose = GeneralPurpose::new(
    &match Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./") {
        Ok(alphabet) => alphabet,
        Err(_) => panic!("the adapted base64 alphabet is valid"),
    },
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The 64 characters of crypt(3)'s own base64, in value order.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Message digests used by the `{SHA}`-style and PBKDF2 schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Alg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Alg {
    /// The `{NAME}` of the unsalted digest scheme (`{SHA}`, `{SHA256}`, ...).
    fn digest_name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Sha1 => "SHA",
            Alg::Sha256 => "SHA256",
            Alg::Sha384 => "SHA384",
            Alg::Sha512 => "SHA512",
        }
    }

    fn len(self) -> usize {
        match self {
            Alg::Md5 => 16,
            Alg::Sha1 => 20,
            Alg::Sha256 => 32,
            Alg::Sha384 => 48,
            Alg::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for part in parts {
                d.update(part);
            }
            d.finalize().to_vec()
        }
        match self {
            Alg::Md5 => run::<Md5>(parts),
            Alg::Sha1 => run::<Sha1>(parts),
            Alg::Sha256 => run::<Sha256>(parts),
            Alg::Sha384 => run::<Sha384>(parts),
            Alg::Sha512 => run::<Sha512>(parts),
        }
    }

    fn pbkdf2(self, pw: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            Alg::Md5 => pbkdf2::pbkdf2_hmac::<Md5>(pw, salt, rounds, out),
            Alg::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt, rounds, out),
            Alg::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, rounds, out),
            Alg::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(pw, salt, rounds, out),
            Alg::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(pw, salt, rounds, out),
        }
    }
}

/// A stored value after parsing and cost checks; `check` only hashes.
enum Stored<'a> {
    Clear(Cow<'a, [u8]>),
    /// `{SHA}`-style: digest of password + salt (salt empty when unsalted).
    Digest {
        alg: Alg,
        digest: Vec<u8>,
        salt: Vec<u8>,
    },
    Pbkdf2 {
        alg: Alg,
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Md5Crypt {
        salt: &'a [u8],
        hash: &'a [u8],
    },
    /// A `$5$`/`$6$` string whose rounds were checked.
    ShaCrypt(&'a str),
    /// A `$2?$` string whose cost was checked.
    Bcrypt(&'a str),
    Argon2(Box<PasswordHash>),
}

impl Stored<'_> {
    fn check(&self, pw: &[u8]) -> Result<bool, PasswordError> {
        match self {
            Stored::Clear(clear) => Ok(clear.as_ref().ct_eq(pw).into()),
            Stored::Digest { alg, digest, salt } => Ok(alg.digest(&[pw, salt]).ct_eq(digest).into()),
            Stored::Pbkdf2 { alg, rounds, salt, hash } => {
                let mut out = vec![0; hash.len()];
                alg.pbkdf2(pw, salt, *rounds, &mut out);
                Ok(out.ct_eq(hash).into())
            }
            Stored::Md5Crypt { salt, hash } => Ok(md5_crypt(pw, salt).ct_eq(hash).into()),
            Stored::ShaCrypt(s) => match ShaCrypt::default().verify_password(pw, *s) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(malformed("SHA-CRYPT", e.to_string())),
            },
            Stored::Bcrypt(s) => bcrypt::verify(pw, s).map_err(|e| malformed("BCRYPT", e.to_string())),
            Stored::Argon2(h) => match Argon2::default().verify_password(pw, h.as_ref()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(malformed("ARGON2", e.to_string())),
            },
        }
    }
}

/// Brace scheme names we accept, upper case; each has an arm in `parse_braced`.
#[rustfmt::skip]
const BRACED: &[&str] = &[
    "CLEARTEXT", "CLEAR", "PLAIN", "PLAIN.B64",
    "SHA", "SHA1", "SSHA", "SHA256", "SSHA256", "SHA384", "SSHA384", "SHA512", "SSHA512",
    "MD5", "LDAP-MD5", "SMD5",
    "CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT",
    "ARGON2", "ARGON2I", "ARGON2ID",
    "PBKDF2", "PBKDF2-SHA1", "PBKDF2-SHA256", "PBKDF2-SHA512",
];

fn check_len(stored: &str, scheme: &'static str) -> Result<(), PasswordError> {
    if stored.len() > MAX_STORED_LEN {
        return Err(malformed(scheme, format!("longer than {MAX_STORED_LEN} bytes")));
    }
    Ok(())
}

fn parse(stored: &str) -> Result<Stored<'_>, PasswordError> {
    // Like OpenLDAP, a leading '{' always means a scheme: an unknown or
    // mistyped one must fail rather than fall back to clear text, where the
    // hash string itself would become the password.
    if let Some(rest) = stored.strip_prefix('{') {
        let Some((name, payload)) = rest.split_once('}') else {
            return Err(PasswordError::UnknownScheme { scheme: "{ without }".into() });
        };
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !valid {
            return Err(PasswordError::UnknownScheme { scheme: "{invalid name}".into() });
        }
        let Some(&scheme) = BRACED.iter().find(|n| n.eq_ignore_ascii_case(name)) else {
            return Err(PasswordError::UnknownScheme { scheme: name.to_owned() });
        };
        check_len(stored, scheme)?;
        return parse_braced(scheme, payload);
    }
    if modular_id(stored).is_some() {
        return parse_modular(stored);
    }
    check_len(stored, "CLEARTEXT")?;
    clear_text("CLEARTEXT", Cow::Borrowed(stored.as_bytes()))
}

/// An empty stored password never authenticates (as in Dovecot): it is far
/// more likely a missing value than a deliberate empty password.
fn clear_text<'a>(scheme: &'static str, clear: Cow<'a, [u8]>) -> Result<Stored<'a>, PasswordError> {
    if clear.is_empty() {
        return Err(malformed(scheme, "an empty password never authenticates"));
    }
    Ok(Stored::Clear(clear))
}

fn parse_braced<'a>(scheme: &'static str, payload: &'a str) -> Result<Stored<'a>, PasswordError> {
    let digest = |alg, salted| parse_digest(scheme, alg, salted, payload);
    match scheme {
        "CLEARTEXT" | "CLEAR" => clear_text(scheme, Cow::Borrowed(payload.as_bytes())),
        // This project's convention (from its spec): {PLAIN} is base64 of the
        // clear text. Dovecot's {PLAIN} is raw clear text; its name for ours
        // is {PLAIN.B64}.
        "PLAIN" | "PLAIN.B64" => match B64.decode(payload) {
            Ok(clear) => clear_text(scheme, Cow::Owned(clear)),
            Err(_) => Err(malformed(scheme, "payload is not valid base64")),
        },
        "SHA" | "SHA1" => digest(Alg::Sha1, false),
        "SSHA" => digest(Alg::Sha1, true),
        "SHA256" => digest(Alg::Sha256, false),
        "SSHA256" => digest(Alg::Sha256, true),
        "SHA384" => digest(Alg::Sha384, false),
        "SSHA384" => digest(Alg::Sha384, true),
        "SHA512" => digest(Alg::Sha512, false),
        "SSHA512" => digest(Alg::Sha512, true),
        "MD5" | "LDAP-MD5" => digest(Alg::Md5, false),
        "SMD5" => digest(Alg::Md5, true),
        // Dovecot's *-CRYPT names, like {CRYPT}, hand the payload to crypt(3),
        // which picks the algorithm from the payload's own $id$.
        "CRYPT" | "MD5-CRYPT" | "SHA256-CRYPT" | "SHA512-CRYPT" | "BLF-CRYPT" => {
            if modular_id(payload).is_some() {
                parse_modular(payload)
            } else if is_des_crypt(payload) {
                // Traditional DES crypt (13 chars) and BSDi extended DES
                // ('_' + 19 chars): 56-bit, 8-character passwords; not worth
                // carrying a DES implementation for. Rehash such accounts.
                Err(malformed(scheme, "DES crypt is not supported"))
            } else {
                Err(malformed(scheme, "payload is not a crypt(3) $id$ string"))
            }
        }
        "ARGON2" | "ARGON2I" | "ARGON2ID" if payload.starts_with("$argon2") => parse_modular(payload),
        "ARGON2" | "ARGON2I" | "ARGON2ID" => Err(malformed(scheme, "payload is not a $argon2 PHC string")),
        // Dovecot's own {PBKDF2} format starts with "$1$"; 389-ds and
        // OpenLDAP's start with the iteration count.
        "PBKDF2" if payload.starts_with("$1$") => parse_dovecot_pbkdf2(&payload[3..]),
        "PBKDF2" | "PBKDF2-SHA1" => parse_pbkdf2(scheme, Alg::Sha1, payload),
        "PBKDF2-SHA256" => parse_pbkdf2(scheme, Alg::Sha256, payload),
        "PBKDF2-SHA512" => parse_pbkdf2(scheme, Alg::Sha512, payload),
        _ => Err(PasswordError::UnknownScheme { scheme: scheme.to_owned() }),
    }
}

fn is_des_crypt(payload: &str) -> bool {
    let crypt64 = |s: &str| s.bytes().all(|b| CRYPT64.contains(&b));
    (payload.len() == 13 && crypt64(payload))
        || (payload.len() == 20 && payload.starts_with('_') && crypt64(&payload[1..]))
}

/// The `id` of a `$id$...` string (crypt(3), PHC or passlib), if it is one.
fn modular_id(s: &str) -> Option<&str> {
    let (id, _) = s.strip_prefix('$')?.split_once('$')?;
    let valid = !id.is_empty()
        && id.len() <= 32
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(id)
}

fn parse_modular(s: &str) -> Result<Stored<'_>, PasswordError> {
    let id = modular_id(s).unwrap_or_default();
    let scheme = match id {
        "1" => "MD5-CRYPT",
        "5" => "SHA256-CRYPT",
        "6" => "SHA512-CRYPT",
        "2a" | "2b" | "2y" => "BCRYPT",
        "argon2i" | "argon2d" | "argon2id" => "ARGON2",
        "pbkdf2" => "PBKDF2",
        "pbkdf2-sha256" => "PBKDF2-SHA256",
        "pbkdf2-sha512" => "PBKDF2-SHA512",
        _ => {
            return Err(PasswordError::UnknownScheme { scheme: format!("${id}$") });
        }
    };
    check_len(s, scheme)?;
    let rest = &s[id.len() + 2..];
    match id {
        "1" => parse_md5_crypt(rest),
        "5" | "6" => parse_sha_crypt(scheme, id, s, rest),
        "2a" | "2b" | "2y" => parse_bcrypt(s),
        "pbkdf2" => parse_pbkdf2(scheme, Alg::Sha1, rest),
        "pbkdf2-sha256" => parse_pbkdf2(scheme, Alg::Sha256, rest),
        "pbkdf2-sha512" => parse_pbkdf2(scheme, Alg::Sha512, rest),
        _ => parse_argon2(s),
    }
}

/// `{SHA}`-style: base64 of digest (+ salt, whatever remains after the digest).
fn parse_digest(scheme: &'static str, alg: Alg, salted: bool, payload: &str) -> Result<Stored<'static>, PasswordError> {
    let mut blob = B64.decode(payload).map_err(|_| malformed(scheme, "payload is not valid base64"))?;
    let n = alg.len();
    if salted && blob.len() <= n {
        return Err(malformed(scheme, format!("{} bytes is too short for a {n}-byte digest and a salt", blob.len())));
    }
    if !salted && blob.len() != n {
        return Err(malformed(scheme, format!("digest is {} bytes, expected {n}", blob.len())));
    }
    let salt = blob.split_off(n);
    Ok(Stored::Digest { alg, digest: blob, salt })
}

fn parse_rounds(scheme: &'static str, text: &str, max: u32) -> Result<u32, PasswordError> {
    let rounds: u32 = text.parse().map_err(|_| malformed(scheme, "iteration count is not a number"))?;
    if rounds == 0 || rounds > max {
        return Err(malformed(scheme, format!("iteration count {rounds} is outside 1..={max}")));
    }
    Ok(rounds)
}

/// `<iterations>$<ab64 salt>$<ab64 hash>`: OpenLDAP pw-pbkdf2, 389-ds and
/// passlib (after passlib's `$pbkdf2-sha256$` prefix).
fn parse_pbkdf2(scheme: &'static str, alg: Alg, rest: &str) -> Result<Stored<'static>, PasswordError> {
    let mut parts = rest.split('$');
    let (Some(rounds), Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(scheme, "expected <iterations>$<salt>$<hash>"));
    };
    let rounds = parse_rounds(scheme, rounds, MAX_PBKDF2_ITERATIONS)?;
    let decode = |field: &str, what: &str| {
        AB64.decode(field).map_err(|_| malformed(scheme, format!("{what} is not valid adapted base64")))
    };
    let salt = decode(salt, "salt")?;
    let hash = decode(hash, "hash")?;
    if hash.len() != alg.len() {
        return Err(malformed(scheme, format!("hash is {} bytes, expected {}", hash.len(), alg.len())));
    }
    Ok(Stored::Pbkdf2 { alg, rounds, salt, hash })
}

/// Dovecot `{PBKDF2}$1$<salt>$<rounds>$<hex sha1>`; the salt string is used as is.
fn parse_dovecot_pbkdf2(rest: &str) -> Result<Stored<'static>, PasswordError> {
    const SCHEME: &str = "PBKDF2";
    let mut parts = rest.split('$');
    let (Some(salt), Some(rounds), Some(hex), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(SCHEME, "expected $1$<salt>$<rounds>$<hex hash>"));
    };
    let rounds = parse_rounds(SCHEME, rounds, MAX_PBKDF2_ITERATIONS)?;
    let hash = decode_hex(hex)
        .filter(|h| h.len() == Alg::Sha1.len())
        .ok_or_else(|| malformed(SCHEME, "hash is not 40 hex digits"))?;
    Ok(Stored::Pbkdf2 { alg: Alg::Sha1, rounds, salt: salt.as_bytes().to_vec(), hash })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    hex.as_bytes().chunks(2).map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)).collect()
}

/// `$1$<salt, up to 8>$<22 crypt64 chars>` (after the `$1$`).
fn parse_md5_crypt(rest: &str) -> Result<Stored<'_>, PasswordError> {
    const SCHEME: &str = "MD5-CRYPT";
    let (salt, hash) = rest.split_once('$').ok_or_else(|| malformed(SCHEME, "missing hash"))?;
    if salt.len() > 8 {
        return Err(malformed(SCHEME, "salt is longer than 8 characters"));
    }
    if hash.len() != 22 || !hash.bytes().all(|b| CRYPT64.contains(&b)) {
        return Err(malformed(SCHEME, "hash is not 22 crypt base64 characters"));
    }
    Ok(Stored::Md5Crypt { salt: salt.as_bytes(), hash: hash.as_bytes() })
}

/// `$5$`/`$6$[rounds=N$]<salt>$<hash>`; checks rounds before sha-crypt sees it.
fn parse_sha_crypt<'a>(
    scheme: &'static str,
    id: &str,
    whole: &'a str,
    rest: &str,
) -> Result<Stored<'a>, PasswordError> {
    let fields: Vec<&str> = rest.split('$').collect();
    let (salt, hash) = match fields.as_slice() {
        [rounds, salt, hash] => {
            let Some(rounds) = rounds.strip_prefix("rounds=") else {
                return Err(malformed(scheme, "expected [rounds=N$]<salt>$<hash>"));
            };
            let rounds = parse_rounds(scheme, rounds, MAX_SHA_CRYPT_ROUNDS)?;
            if rounds < 1000 {
                return Err(malformed(scheme, "rounds below crypt(3)'s minimum of 1000"));
            }
            (salt, hash)
        }
        [salt, hash] => (salt, hash),
        _ => return Err(malformed(scheme, "expected [rounds=N$]<salt>$<hash>")),
    };
    // crypt(3) allows any salt byte but '$'; every tool writes crypt base64,
    // and the sha-crypt crate accepts little more.
    let salt_ok = |b: u8| b.is_ascii_alphanumeric() || b"./+=,-".contains(&b);
    if salt.is_empty() || !salt.bytes().all(salt_ok) {
        return Err(malformed(scheme, "salt is empty or has unsupported characters"));
    }
    let expected = if id == "5" { 43 } else { 86 };
    if hash.len() != expected || !hash.bytes().all(|b| CRYPT64.contains(&b)) {
        return Err(malformed(scheme, format!("hash is not {expected} crypt base64 characters")));
    }
    Ok(Stored::ShaCrypt(whole))
}

/// `$2b$NN$<53 chars>`; checks the cost before bcrypt sees it.
fn parse_bcrypt(s: &str) -> Result<Stored<'_>, PasswordError> {
    const SCHEME: &str = "BCRYPT";
    let bytes = s.as_bytes();
    if bytes.len() != 60 || bytes[6] != b'$' {
        return Err(malformed(SCHEME, "expected $2b$NN$ and 53 characters"));
    }
    if !bytes[7..].iter().all(|b| CRYPT64.contains(b)) {
        return Err(malformed(SCHEME, "salt and hash are not bcrypt base64"));
    }
    let (tens, ones) = (bytes[4], bytes[5]);
    if !tens.is_ascii_digit() || !ones.is_ascii_digit() {
        return Err(malformed(SCHEME, "cost is not two digits"));
    }
    let cost = u32::from(tens - b'0') * 10 + u32::from(ones - b'0');
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(malformed(SCHEME, format!("cost {cost} is outside 4..={MAX_BCRYPT_COST}")));
    }
    // The crate's own parser checks the base64 without hashing.
    s.parse::<bcrypt::HashParts>().map_err(|e| malformed(SCHEME, e.to_string()))?;
    Ok(Stored::Bcrypt(s))
}

/// `$argon2{i,d,id}$[v=N$]m=..,t=..,p=..$<salt>$<hash>`; checks memory and passes.
fn parse_argon2(s: &str) -> Result<Stored<'_>, PasswordError> {
    const SCHEME: &str = "ARGON2";
    let mut parsed = PasswordHash::new(s).map_err(|e| malformed(SCHEME, e.to_string()))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(malformed(SCHEME, "missing salt or hash"));
    }
    let params = argon2::Params::try_from(&parsed).map_err(|e| malformed(SCHEME, e.to_string()))?;
    let (m, t) = (params.m_cost(), params.t_cost());
    if m > MAX_ARGON2_MEMORY_KIB || u64::from(m) * u64::from(t) > MAX_ARGON2_WORK_KIB {
        return Err(malformed(
            SCHEME,
            format!("m={m},t={t} exceeds the limits (m <= {MAX_ARGON2_MEMORY_KIB}, m*t <= {MAX_ARGON2_WORK_KIB})"),
        ));
    }
    // Hashes from before Argon2 1.3 carry no "v=" field and mean version 0x10
    // (as in the reference implementation and passlib).
    if parsed.version.is_none() {
        parsed.version = Some(0x10);
    }
    Ok(Stored::Argon2(Box::new(parsed)))
}

/// MD5-crypt as defined by Poul-Henning Kamp's md5crypt (FreeBSD
/// lib/libcrypt/crypt-md5.c, 1994; algorithm also written out in passlib's
/// `md5_crypt` documentation). Returns the 22-character encoded hash.
/// Implemented here because the only Rust crate doing it (pwhash) has had
/// no release since 2021.
fn md5_crypt(pw: &[u8], salt: &[u8]) -> [u8; 22] {
    let alternate = Md5::new().chain_update(pw).chain_update(salt).chain_update(pw).finalize();
    let mut ctx = Md5::new().chain_update(pw).chain_update(b"$1$").chain_update(salt);
    for chunk in pw.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    // The original's "odd" quirk: a zero byte for each set bit of the
    // length, the password's first byte for each clear one.
    let mut len = pw.len();
    while len > 0 {
        ctx.update(if len & 1 == 1 { &[0u8][..] } else { &pw[..1] });
        len >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let odd = i % 2 == 1;
        let mut round = Md5::new();
        round.update(if odd { pw } else { &fin[..] });
        if i % 3 != 0 {
            round.update(salt);
        }
        if i % 7 != 0 {
            round.update(pw);
        }
        round.update(if odd { &fin[..] } else { pw });
        fin = round.finalize();
    }
    // Bytes are emitted in this order, three at a time, least significant
    // 6 bits first.
    const GROUPS: [[usize; 3]; 5] = [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]];
    let mut out = [0u8; 22];
    let mut pos = 0;
    let mut emit = |mut v: u32, n: usize| {
        for _ in 0..n {
            out[pos] = CRYPT64[(v & 0x3f) as usize];
            v >>= 6;
            pos += 1;
        }
    };
    for [a, b, c] in GROUPS {
        emit(u32::from(fin[a]) << 16 | u32::from(fin[b]) << 8 | u32::from(fin[c]), 4);
    }
    emit(u32::from(fin[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PW: &str = "tiermail-Pa55";

    /// (tool that produced it, stored value, password). Each must verify
    /// with its password and fail with that password plus "!".
    /// Tools: OpenLDAP slappasswd 2.5.13 (Debian 12; pw-sha2 and argon2
    /// modules via -o module-load), Dovecot doveadm pw 2.3.19.1, OpenSSL
    /// 3.0.19 `openssl passwd`, passlib 1.7.4 (argon2-cffi 25.1.0 backend),
    /// pyca bcrypt 5.0.0, coreutils base64.
    #[rustfmt::skip]
    const VECTORS: &[(&str, &str, &str)] = &[
        // clear text
        ("slappasswd -h {CLEARTEXT}", "tiermail-Pa55", PW),
        ("doveadm pw -s CLEAR", "{CLEAR}tiermail-Pa55", PW),
        ("passlib ldap_plaintext, prefixed by hand", "{CLEARTEXT}tiermail-Pa55", PW),
        ("printf %s tiermail-Pa55 | base64", "{PLAIN}dGllcm1haWwtUGE1NQ==", PW),
        // unsalted and salted digests
        ("slappasswd -h {SHA}", "{SHA}HkyzyQqcsaIlMojQSpm9I7y+qJo=", PW),
        ("doveadm pw -s SHA1", "{SHA1}HkyzyQqcsaIlMojQSpm9I7y+qJo=", PW),
        ("slappasswd -h {SSHA}", "{SSHA}Epr6Trybr2q2EP3SbymaltHhxFuf/O9s", PW),
        ("doveadm pw -s SSHA", "{SSHA}m+7dhPlwxunIBiO6VCdyFdZ+N6y2Hmik", PW),
        ("slappasswd -h {MD5}", "{MD5}BGUappRvzQNvvgCjzKJMhg==", PW),
        ("doveadm pw -s LDAP-MD5", "{LDAP-MD5}BGUappRvzQNvvgCjzKJMhg==", PW),
        ("slappasswd -h {SMD5}", "{SMD5}rHQZpMU3T2VX7uIgYtswVDbjDJM=", PW),
        ("doveadm pw -s SMD5", "{SMD5}z/kVhd8SeSNnKYYnN3aTntcEq9U=", PW),
        ("passlib ldap_salted_md5", "{SMD5}+tv6Ajb5OBPgonb612xe5e69d+4=", PW),
        ("slappasswd pw-sha2 -h {SHA256}", "{SHA256}69a8IHlfadItH4aI/XY5xkJyLpweth4CI1uE0NpDyK0=", PW),
        ("slappasswd pw-sha2 -h {SSHA256}", "{SSHA256}tbVRNROSN0N7AC+a0B1+AdTnh/Yq3VdeDzefTK8LKl1VS7JqvSg+cQ==", PW),
        ("doveadm pw -s SSHA256", "{SSHA256}3E0YxGfB+MYV13kzv7KzrbGMpH5lmOc/WQNYpQX2iZ2d2APe", PW),
        ("passlib ldap_salted_sha256", "{SSHA256}rFMr+YCRu/+OTjoni3iAqMDgy7swGzuEpkAxLxhg34p7rxViDAFgjA==", PW),
        ("slappasswd pw-sha2 -h {SHA384}", "{SHA384}4DEpe2frlMwL4Z8ubAfrwaZoaU/PZMdDHz5lDi1l43fw8S8gbe50cYK+xIEQPRXF", PW),
        ("slappasswd pw-sha2 -h {SSHA384}", "{SSHA384}NcGBzD7jLhHiMCyYRNdWhxjXcUT97xLxV3C/GrGJ0/lcvkK+PvD7pGVzpaOerpJR0kChHcIIM4w=", PW),
        ("slappasswd pw-sha2 -h {SHA512}", "{SHA512}l7H0neAxAhfTTUQdYxQKPFmSGJ0n+R/I6WgLvnMHcjflsuji2DwjcrnstslsZ+etOdI9udbhm1lPFi09h6NILA==", PW),
        ("slappasswd pw-sha2 -h {SSHA512}", "{SSHA512}DfHDvlLmAM5EDJCgdsUc20llgAuJn8Jm2omsZnIDZpUF6lSvj7fKRaAKtz2XVfhvc9OgIR6xL6sJdE/hy2+0uc3M6KB3XteK", PW),
        ("doveadm pw -s SSHA512", "{SSHA512}30yxOXZR6Lqm3v3OPAd+naIdhFbSYg2BivfGHdiQ2CVHQxwphxseK2ga6qXZewa2jx0fIhyj19NtuGU/bwi3zgx/Q+Y=", PW),
        ("passlib ldap_salted_sha512", "{SSHA512}J1omPO0R3UZmwepkhXlzOTzF9ub21uKYIp0LbDvnFtHa3F2FwLhAdnlGcfvUYQ2H5Ar05pOHMy9bDOZzY0nVqHPOmVPqnbP2", PW),
        // MD5-crypt
        ("slappasswd -h {CRYPT} -c '$1$%.8s'", "{CRYPT}$1$1aMfept1$5nfWit8RyfQvdBFHuseAV/", PW),
        ("openssl passwd -1", "$1$NxuxHvWR$UtRY9badyRJhsQAODeRZw.", PW),
        ("doveadm pw -s MD5-CRYPT", "{MD5-CRYPT}$1$Zi8eo0m4$Q0YotBWavefd4QdyTXr9e0", PW),
        ("passlib ldap_md5_crypt", "{CRYPT}$1$CU8Pcssr$IA3OfNPHqjaqoZng4ec1X1", PW),
        ("passlib md5_crypt", "$1$boVuWFQz$5p4rY4mZqpRQ6b3Ud9y450", PW),
        ("passlib md5_crypt", "$1$uUpakND7$brX9zybY4.3hJILGkls8E1", "pässwörd"),
        ("passlib md5_crypt, empty password", "$1$w6EH2vzj$kS2cRGTRj13rEzP6yBRyg.", ""),
        ("passlib md5_crypt, 100 x", "$1$o8VialCh$BqmwjRV7G8y7GuAW98deE1", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        // SHA256-crypt and SHA512-crypt
        ("slappasswd -h {CRYPT} -c '$5$%.16s'", "{CRYPT}$5$q7OAe04xwFNRLgFM$MoO7j.MIUsHZ/xN1pxLQy66pCI5NVO2myOfzAKatSE8", PW),
        ("openssl passwd -5", "$5$qzec.I1PnFTdmjCh$3TXXRP6h0spUHwLNDLN7mmtQQ2LZrc0nqZeXN1Qesx5", PW),
        ("doveadm pw -s SHA256-CRYPT", "{SHA256-CRYPT}$5$ftn.0yu9S4HEip3j$1ysJJBqEAc7l1NtcKg5l.ZHHG1wh4wcz3aKus/lTd7C", PW),
        ("passlib sha256_crypt rounds=1000", "$5$rounds=1000$LRjwDnoXpBuBXsdO$vx1xig0hq9qIr7YSJzN1QuQDLxxJkjK6MyFWKnvvW45", PW),
        ("slappasswd -h {CRYPT} -c '$6$%.16s'", "{CRYPT}$6$yYZ0cjKcqiMjPb4g$uZfI3bjn9wpB7E9IPgyemEgg4zwC0X.FAik6bIbp5EVVa0bv5RgRQWHRoweLDrsPnqsVazAlSrVeDuA15rywj/", PW),
        ("slappasswd -h {CRYPT} -c '$6$rounds=10000$%.16s'", "{CRYPT}$6$rounds=10000$89yZzpKUnNJItOt$eP6ZHIz.iOY/0qU7G6MKHDb.Y0iiizlxTDkaMURqJ/iDp/.4yCFGzv/BMqZehQV2EvWTV/hTaxAy3ZN7yzeys0", PW),
        ("openssl passwd -6", "$6$jtX/rPEtxiDG.BNm$ILd8kEoR1hvCNyMBMP.hqLmC7QRsRv2IuaSmhviULU89BGIEar1FKRA35kKOKiSQdhqK8UOI5gIkx8uBY5g80.", PW),
        ("openssl passwd -6", "$6$xFPP7gz2YjQ.VgrK$ENUOfWXsOEQjwIMSb/N8suP35eNnUIOuIrL89SEzM5/g9UgaiG3isWH6FflPb5vorj5RjRezArWHsJi8ChHUS/", "pässwörd"),
        ("doveadm pw -s SHA512-CRYPT", "{SHA512-CRYPT}$6$PtSybjOcnMXTwlNn$YlWyLLa/ncJxQzhoQNBvdJf5vqTOCeglLonXo8JIj7sl3beSled3GztR.sHvo2ifTFPSb8zhSLPSOsFlH26UD.", PW),
        ("passlib sha512_crypt rounds=1000", "$6$rounds=1000$B5g16b.hLVA4AaFE$jG9N3Uh1MobNvDeG0nNMF32KSE43MDiiGqmdS1QoNWQiC3HL/G6I4DKn6sa7yakTmdn5kr..vG7ZAeOKBCrZ10", PW),
        // bcrypt
        ("doveadm pw -s BLF-CRYPT -r 4", "{BLF-CRYPT}$2y$04$p4M8CTuAr8KnBnjLfgy6FuJLbkdiF6.HxtyprHyyJhExFpvQomOFK", PW),
        ("doveadm pw -s CRYPT", "{CRYPT}$2y$05$Q2Vs0l7fqB20b/Zmwu3NPe63t8DOrx5wazsOfyfwA58HPP9xIgAQq", PW),
        ("pyca bcrypt gensalt(4, b'2a')", "$2a$04$iILnp9hY07JNia/nvRNwHuk4vBt0rYq29dbC9N/JwUnhdGVON5n1S", PW),
        ("pyca bcrypt gensalt(4, b'2b')", "$2b$04$MIEEM3SHX6CT3mCa8niosOX1kNHV51vRI/hV4yNgLhEHCuDoccloS", PW),
        // Argon2
        ("slappasswd argon2 m=256 t=1", "{ARGON2}$argon2i$v=19$m=256,t=1,p=1$k6kzkHGWGbrCh0v8ej7cIA$SOb6E1c5mbr+JDN1hXSyjYfPjnIHPpqbGu2X3eTG/ZY", PW),
        ("slappasswd argon2 (defaults)", "{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$l3pJ4V+XKZ+af1D/4ZJLFw$ZJHeGIVRle66B6uhOjqisREka6a6FdCooeTfFVZq1pk", PW),
        ("doveadm pw -s ARGON2I", "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$uF9FrHbK7B0LOkh/1wklew$UKwqvmJtMpZY7hXQcyiWQxT/g7UqTNzDfhZosEsqv6A", PW),
        ("doveadm pw -s ARGON2ID", "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$fSxGPfFBBuRoIQRqFvMh4g$CnN7YNxBQcCcl/L8PIhml+RMt78cwfGTSs0xeH2AiEw", PW),
        ("passlib argon2 ID m=256 t=1", "$argon2id$v=19$m=256,t=1,p=1$2DsHYOxdaw1BqHWuFcK49w$SGke8ekbET+kWDFegdr8htHrwbJikQI/aGganjWcaCs", PW),
        ("passlib argon2 I m=256 t=2 p=2", "$argon2i$v=19$m=256,t=2,p=2$TEkJYUzJWas1xvgfQygFIA$lfbJq4i3DViToqGI4JBHcGQQvS5X1FhDHjOZJydiIUU", PW),
        ("passlib argon2 D m=256 t=1", "$argon2d$v=19$m=256,t=1,p=1$l1KqFaJUitEaAyAkBOBcyw$hs7PwrLzSCNO82oM8lXTmQ9ZNyPCs5VzNRxtZKwI/Ro", PW),
        ("argon2-cffi hash_secret version=16", "$argon2i$v=16$m=256,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$8QGYRZXDHnEUUgwh0BHrQAFXaJ4jZNS9PlTgt6n+BN0", PW),
        // the same with "v=16$" removed by hand: pre-1.3 strings had no version field
        ("argon2-cffi version=16, v= removed", "$argon2i$m=256,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$8QGYRZXDHnEUUgwh0BHrQAFXaJ4jZNS9PlTgt6n+BN0", PW),
        // PBKDF2
        ("passlib ldap_pbkdf2_sha1", "{PBKDF2}1000$mtM6J0TI2XvPWWtNSWkNoQ$8LmIeGOQHmRKkUVzmg6rq6iXatA", PW),
        ("passlib ldap_pbkdf2_sha1, renamed", "{PBKDF2-SHA1}1000$mtM6J0TI2XvPWWtNSWkNoQ$8LmIeGOQHmRKkUVzmg6rq6iXatA", PW),
        ("passlib ldap_pbkdf2_sha256", "{PBKDF2-SHA256}1000$6z3n3JtzrjWG8H4vRWhNyQ$AmoqnO3l9uX4/PH4XxnZ4.vOagJKYRz/OyaltpTdpWY", PW),
        ("passlib ldap_pbkdf2_sha512", "{PBKDF2-SHA512}1000$fw9B6D2n9P5/b23tHcMYIw$mMxFcZfBuetw0NFIjk0Mtcu1Z0m6kEP3Iz9Dwoq5oJxbf4T62l0NpEk1JqOcfhZ0MtKSkCBYJ89Br3sMbi6uIA", PW),
        ("passlib pbkdf2_sha1", "$pbkdf2$1000$FuJ8T2mNEaJ07j3nnDOGUA$x8IhHYzoNzX5QZlo0BkLlPHEF/U", PW),
        ("passlib pbkdf2_sha256", "$pbkdf2-sha256$1000$IIRQam0tZewdw3gvJYTwXg$3omkkKDe6RktHNhLU5VPyZlISUQVXQ30xVlvkOvr8GQ", PW),
        ("passlib pbkdf2_sha256", "$pbkdf2-sha256$1000$HGNszRljzBljzNk7ByDk/A$Or0iK5MXi3WB3ctd6W1I2mQSCy1EBhaoUOOKd.Ls1NU", "pässwörd"),
        ("passlib pbkdf2_sha512", "$pbkdf2-sha512$1000$ghCi1HrvPQcAYAwhJGQM4Q$UGMMi5ncnOunBmXfppoHklz6s3SsfWT0PMJBVCIrYIzt4gCrIx7O1TrGHwIF0mFFVY279.OSdPHWIEUexN2EOg", PW),
        ("doveadm pw -s PBKDF2 -r 1000", "{PBKDF2}$1$Spht0NpXd4/b5Cny$1000$3f9476ae4ebe1605a478ef3263c0daad500b2b06", PW),
        ("doveadm pw -s PBKDF2", "{PBKDF2}$1$zTsA9k/CpUVNNhko$5000$752c3375cdff2f06a24f11e1ccad4f93a9d0fef5", PW),
    ];

    fn check_vectors(filter: impl Fn(&str) -> bool) {
        let mut ran = 0;
        for &(tool, stored, pw) in VECTORS.iter().filter(|v| filter(v.1)) {
            assert!(matches!(verify(stored, pw), Ok(true)), "{tool}: {stored} should verify");
            let wrong = format!("{pw}!");
            assert!(matches!(verify(stored, &wrong), Ok(false)), "{tool}: {stored} accepted a wrong password");
            ran += 1;
        }
        assert!(ran > 0);
    }

    fn is_argon2(s: &str) -> bool {
        s.contains("$argon2")
    }

    // Split so the slow Argon2 vectors run in parallel with the rest.
    #[test]
    fn real_world_vectors_verify() {
        check_vectors(|s| !is_argon2(s));
    }

    #[test]
    fn real_world_argon2_vectors_verify() {
        check_vectors(is_argon2);
    }

    #[test]
    fn brace_scheme_names_are_case_insensitive() {
        assert!(matches!(verify("{ssha}Epr6Trybr2q2EP3SbymaltHhxFuf/O9s", PW), Ok(true)));
        assert!(matches!(verify("{Crypt}$1$NxuxHvWR$UtRY9badyRJhsQAODeRZw.", PW), Ok(true)));
        assert!(matches!(
            verify("{pbkdf2-sha256}1000$6z3n3JtzrjWG8H4vRWhNyQ$AmoqnO3l9uX4/PH4XxnZ4.vOagJKYRz/OyaltpTdpWY", PW),
            Ok(true)
        ));
    }

    /// Known answers for a fixed salt, cross-checked against Python hashlib
    /// (SSHA), `openssl passwd -6 -salt .2V6nEIJaR5WNeui` and passlib
    /// (SHA-crypt), and argon2-cffi hash_secret(m=19456, t=2, p=1).
    #[test]
    fn hash_matches_other_implementations() {
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        assert_eq!(
            hash(Scheme::Ssha256, PW, &salt),
            "{SSHA256}UBJ/2XFxjk/QLwN5+GrtaY9Gm/OIGts70hulAB90p3IAESIzRFVmd4iZqrvM3e7/"
        );
        assert_eq!(
            hash(Scheme::Ssha512, PW, &salt),
            "{SSHA512}VRU5Qv4tzh0NsMNhpIC2C3YsooqVXGXS5WtHgNFUENkDee4iVsXpdbXcILeXLNW/Y9L+qogR/6578dUq78pzUQARIjNEVWZ3iJmqu8zd7v8="
        );
        assert_eq!(
            hash(Scheme::Sha512Crypt, PW, &salt),
            "{CRYPT}$6$rounds=5000$.2V6nEIJaR5WNeui$lO3jQYrU6PszEElypnsOAypCSKfVFfgrsHp6gOzGchn/36SAF7mtKWkwwGJfYPZB7NTJUMYrCgRaREtZz4Y/H."
        );
        assert_eq!(
            hash(Scheme::Argon2id, PW, &salt),
            "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$ABEiM0RVZneImaq7zN3u/w$Vd018PjzsFvvas7Br//9U6YAQyljuZT84+MonUghr7o"
        );
    }

    #[test]
    fn every_scheme_round_trips() {
        let salt = [0x5a; 16];
        for scheme in Scheme::ALL {
            for pw in ["", "pässwörd", "a much longer password with spaces"] {
                let stored = hash(scheme, pw, &salt);
                assert!(matches!(verify(&stored, pw), Ok(true)), "{scheme}: {stored}");
                assert!(matches!(verify(&stored, "other"), Ok(false)), "{scheme}: {stored}");
            }
        }
    }

    #[test]
    fn hash_scheme_names_parse_in_any_case_and_errors_list_them() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.name().parse::<Scheme>().ok(), Some(scheme));
            assert_eq!(scheme.name().to_lowercase().parse::<Scheme>().ok(), Some(scheme));
        }
        let err = "md5".parse::<Scheme>().unwrap_err().to_string();
        for name in ["SSHA256", "SSHA512", "SHA512-CRYPT", "ARGON2ID"] {
            assert!(err.contains(name), "{err}");
        }
    }

    fn error_of(stored: &str) -> PasswordError {
        match verify(stored, PW) {
            Err(e) => {
                // Logs get this message: it must not leak the stored value.
                let shown = e.to_string();
                assert!(stored.is_empty() || !shown.contains(stored), "{shown}");
                assert!(!shown.contains(PW), "{shown}");
                e
            }
            Ok(ok) => panic!("{stored} gave Ok({ok}), expected an error"),
        }
    }

    fn assert_unknown(stored: &str, scheme: &str) {
        match error_of(stored) {
            PasswordError::UnknownScheme { scheme: s } => assert_eq!(s, scheme, "{stored}"),
            e => panic!("{stored}: {e}"),
        }
    }

    fn assert_malformed(stored: &str, reason_part: &str) {
        match error_of(stored) {
            PasswordError::Malformed { reason, .. } => {
                assert!(reason.contains(reason_part), "{stored}: {reason}");
            }
            e => panic!("{stored}: {e}"),
        }
    }

    #[test]
    fn unknown_schemes_are_reported_by_name() {
        assert_unknown("{NOPE}xyz", "NOPE");
        assert_unknown("{SCRAM-SHA-256}4096,abc", "SCRAM-SHA-256");
        assert_unknown("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", "$y$");
        assert_unknown("{CRYPT}$apr1$abc$def", "$apr1$");
        assert_unknown("$2x$05$Q2Vs0l7fqB20b/Zmwu3NPe63t8DOrx5wazsOfyfwA58HPP9xIgAQq", "$2x$");
        // a leading '{' never falls back to clear text
        assert_unknown("{SSHA Epr6Trybr2q2EP3SbymaltHhxFuf", "{ without }");
        assert_unknown("{s p a c e}abc", "{invalid name}");
        assert_unknown("{}abc", "{invalid name}");
    }

    #[test]
    fn malformed_values_are_rejected_without_leaking_them() {
        assert_malformed("{SSHA}not*base64", "base64");
        assert_malformed("{SHA}HkyzyQqcsaIlMojQSpm9I7y+", "expected 20");
        assert_malformed("{SSHA}HkyzyQqcsaIlMojQSpm9I7y+qJo=", "too short");
        assert_malformed("{SSHA512}J1omPO0R3UZmwepkhXlzOTzF9ub21uKYIp0LbDvnFtHa3F2FwLhA", "too short");
        assert_malformed("{PLAIN}tiermail-Pa55", "base64");
        assert_malformed("{CRYPT}HokdyVTOUtWIg", "DES crypt is not supported");
        assert_malformed("{CRYPT}not-a-crypt-string", "crypt(3)");
        assert_malformed("$1$NxuxHvWR$UtRY9badyRJhsQAODeRZw", "22");
        assert_malformed("$1$toolongsalt$UtRY9badyRJhsQAODeRZw.", "salt");
        assert_malformed("$6$jtX/rPEtxiDG.BNm$ILd8kEoR1hvCNyMBMP", "86");
        assert_malformed(
            "$6$rounds=999999999$jtX/rPEtxiDG.BNm$ILd8kEoR1hvCNyMBMP.hqLmC7QRsRv2IuaSmhviULU89BGIEar1FKRA35kKOKiSQdhqK8UOI5gIkx8uBY5g80.",
            "outside",
        );
        assert_malformed(
            "$6$rounds=10$jtX/rPEtxiDG.BNm$ILd8kEoR1hvCNyMBMP.hqLmC7QRsRv2IuaSmhviULU89BGIEar1FKRA35kKOKiSQdhqK8UOI5gIkx8uBY5g80.",
            "1000",
        );
        assert_malformed("$2b$31$MIEEM3SHX6CT3mCa8niosOX1kNHV51vRI/hV4yNgLhEHCuDoccloS", "cost 31");
        assert_malformed("$2b$04$MIEEM3SHX6CT3mCa8niosOX1kNHV51vRI", "53 characters");
        assert_malformed("$2b$04$MIEEM3SHX6CT3mCa8niosOX1kNHV51vRI/hV4yNgLhEHCuDoccloZ", "base64");
        assert_malformed(
            "{PBKDF2-SHA256}99999999$6z3n3JtzrjWG8H4vRWhNyQ$AmoqnO3l9uX4/PH4XxnZ4.vOagJKYRz/OyaltpTdpWY",
            "outside",
        );
        assert_malformed(
            "$pbkdf2-sha256$0$IIRQam0tZewdw3gvJYTwXg$3omkkKDe6RktHNhLU5VPyZlISUQVXQ30xVlvkOvr8GQ",
            "outside",
        );
        assert_malformed("$pbkdf2-sha256$1000$IIRQam0tZewdw3gvJYTwXg$3omkkKDe6RktHNhLU5VPyZlISUQVXQ", "expected 32");
        assert_malformed("{PBKDF2}1000$mtM6J0TI2XvPWWtNSWkNoQ", "expected <iterations>");
        assert_malformed("{PBKDF2}$1$Spht0NpXd4/b5Cny$1000$3f9476ae4ebe16", "hex");
        assert_malformed("{PBKDF2}$1$Spht0NpXd4/b5Cny$100000000$3f9476ae4ebe1605a478ef3263c0daad500b2b06", "outside");
        assert_malformed(
            "$argon2id$v=19$m=4194304,t=1,p=1$2DsHYOxdaw1BqHWuFcK49w$SGke8ekbET+kWDFegdr8htHrwbJikQI/aGganjWcaCs",
            "exceeds",
        );
        assert_malformed(
            "$argon2id$v=19$m=65536,t=100,p=1$2DsHYOxdaw1BqHWuFcK49w$SGke8ekbET+kWDFegdr8htHrwbJikQI/aGganjWcaCs",
            "exceeds",
        );
        assert_malformed("$argon2id$v=19$m=256,t=1,p=1$2DsHYOxdaw1BqHWuFcK49w", "missing");
        assert_malformed("{ARGON2}$6$abc$def", "PHC");
        let long = format!("{{SSHA}}{}", "A".repeat(2000));
        assert_malformed(&long, "longer than 1024");
        assert_malformed(&"x".repeat(1025), "longer than 1024");
    }

    #[test]
    fn malformed_values_fail_whatever_the_password() {
        // Config loading checks hashes by verifying against "" (or validate).
        for stored in ["{SSHA}!!", "$2b$99$x", "{PBKDF2}0$a$b", "{CRYPT}HokdyVTOUtWIg"] {
            assert!(validate(stored).is_err(), "{stored}");
            assert!(verify(stored, "").is_err(), "{stored}");
            assert!(verify(stored, &"p".repeat(5000)).is_err(), "{stored}");
        }
    }

    #[test]
    fn every_vector_validates() {
        for &(tool, stored, _) in VECTORS {
            assert!(validate(stored).is_ok(), "{tool}: {stored}");
        }
    }

    #[test]
    fn overlong_passwords_never_verify() {
        let long = "p".repeat(MAX_PASSWORD_LEN + 1);
        let stored = hash(Scheme::Ssha256, &long, &[1; 16]);
        assert!(matches!(verify(&stored, &long), Ok(false)));
        let fits = "p".repeat(MAX_PASSWORD_LEN);
        let stored = hash(Scheme::Sha512Crypt, &fits, &[1; 16]);
        assert!(matches!(verify(&stored, &fits), Ok(true)));
    }

    #[test]
    fn dollar_text_that_is_not_a_crypt_id_is_clear_text() {
        assert!(matches!(verify("$money", "$money"), Ok(true)));
        assert!(matches!(verify("$Big$Spender", "$Big$Spender"), Ok(true)));
    }

    #[test]
    fn empty_stored_passwords_never_authenticate() {
        for stored in ["", "{CLEARTEXT}", "{PLAIN}", "{plain}", "{Clear}"] {
            assert_malformed(stored, "empty password");
        }
    }

    /// Prefixes that reach each parser, so arbitrary tails exercise them.
    const PREFIXES: &[&str] = &[
        "",
        "{SSHA}",
        "{SHA512}",
        "{PLAIN}",
        "{CRYPT}",
        "{CRYPT}$1$",
        "$1$",
        "$5$",
        "$6$rounds=",
        "$6$",
        "$2b$",
        "$2y$0",
        "$argon2id$",
        "$argon2i$v=19$m=",
        "{ARGON2}$argon2d$",
        "{PBKDF2}",
        "{PBKDF2}$1$",
        "{PBKDF2-SHA512}1",
        "$pbkdf2-sha256$",
    ];

    proptest! {
        #[test]
        fn arbitrary_stored_values_never_panic(stored in ".{0,300}", pw in ".{0,20}") {
            let _ = verify(&stored, &pw);
        }

        // Small iteration counts and argon2 memory keep this fast even when
        // a tail happens to form a valid value.
        #[test]
        fn arbitrary_tails_after_known_prefixes_never_panic(
            prefix in proptest::sample::select(PREFIXES),
            tail in "[0-9]{0,3}(\\$|,|=|[a-zA-Z0-9./+]{0,60}){0,8}",
            pw in ".{0,20}",
        ) {
            let stored = format!("{prefix}{tail}");
            let _ = verify(&stored, &pw);
        }

        // Well-shaped values with arbitrary salts and hashes reach the
        // hashing code and the crates' own parsers.
        #[test]
        fn well_shaped_values_with_arbitrary_content_never_panic(
            stored in prop_oneof![
                "\\$1\\$([./0-9A-Za-z]{0,8}|[^$]{0,10})\\$[./0-9A-Za-z]{22}",
                "\\$[56]\\$(rounds=[0-9]{4}\\$)?([./0-9A-Za-z]{1,16}|[^$]{0,20})\\$[./0-9A-Za-z]{43}([./0-9A-Za-z]{43})?",
                "\\$2[aby]\\$0[4-5]\\$[./0-9A-Za-z]{53}",
                "\\$argon2(i|d|id)\\$(v=1[69]\\$)?m=[1-6][0-9],t=[12],p=[12](,keyid=[a-zA-Z0-9]{0,12})?\\$[a-zA-Z0-9+/]{0,30}\\$[a-zA-Z0-9+/]{0,90}",
                "\\{PBKDF2(-SHA256|-SHA512)?\\}[0-9]{1,3}\\$[a-zA-Z0-9./]{0,30}\\$[a-zA-Z0-9./]{0,90}",
                "\\{PBKDF2\\}\\$1\\$[^$]{0,20}\\$[0-9]{1,3}\\$[0-9a-fA-F]{0,44}",
                "\\{(S?SHA(256|384|512)?|S?MD5|PLAIN)\\}[a-zA-Z0-9+/=]{0,100}",
            ],
            pw in ".{0,20}",
        ) {
            let _ = verify(&stored, &pw);
        }
    }
}
