//! Folder names and where they live: Maildir++ as Dovecot lays it out.
//! INBOX is the account's Maildir itself; folder `Archive.2024` is the
//! Maildir `<account>/.Archive.2024/` ('.' is the hierarchy separator).

use std::io;
use std::path::{Path, PathBuf};

/// The IMAP hierarchy delimiter, and Maildir++'s.
pub const DELIMITER: char = '.';
/// Folders every new account gets, with their RFC 6154 special use.
pub const SPECIAL_USE: [(&str, &str); 4] =
    [("Drafts", "\\Drafts"), ("Junk", "\\Junk"), ("Sent", "\\Sent"), ("Trash", "\\Trash")];
/// Marks a Maildir++ subfolder (Dovecot and Courier create it).
pub const MARKER_FILE: &str = "maildirfolder";

/// Normalises a folder name: `INBOX` in any case becomes `INBOX`; other
/// names must be usable as one directory name. IMAP names are 7-bit
/// (RFC 3501 5.1.3: international names travel in modified UTF-7), so 8-bit
/// names are refused rather than stored under a name no client can send.
pub fn normalise(name: &str) -> io::Result<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    // The name comes from the client: escaped, so the message is 7-bit text.
    let bad = |why: &str| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("folder name \"{}\": {why}", name.escape_default()))
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("must be 1 to 255 bytes"));
    }
    if !name.is_ascii() {
        return Err(bad("must be 7-bit ASCII (modified UTF-7 for other characters)"));
    }
    if name.contains(['/', '\\']) || name.chars().any(|c| c.is_control()) {
        return Err(bad("must not contain '/', '\\\\' or control characters"));
    }
    if name.split(DELIMITER).any(|part| part.is_empty()) {
        return Err(bad("empty hierarchy level"));
    }
    if name.split(DELIMITER).next().is_some_and(|top| top.eq_ignore_ascii_case("INBOX")) {
        return Err(bad("folders below INBOX are not supported"));
    }
    Ok(name.to_string())
}

/// The Maildir directory of a (normalised) folder under an account root.
pub fn dir(account_root: &Path, folder: &str) -> PathBuf {
    if folder == "INBOX" { account_root.to_path_buf() } else { account_root.join(format!(".{folder}")) }
}

/// The folder a Maildir++ directory name stands for, if it is one.
pub fn from_dir_name(dir_name: &str) -> Option<String> {
    let name = dir_name.strip_prefix('.')?;
    normalise(name).ok().filter(|n| n != "INBOX")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_maildir_plus_plus() {
        let root = Path::new("/d/example.com/alice");
        assert_eq!(dir(root, &normalise("inbox").unwrap()), root);
        assert_eq!(dir(root, &normalise("Archive.2024").unwrap()), root.join(".Archive.2024"));
        assert_eq!(from_dir_name(".Archive.2024").as_deref(), Some("Archive.2024"));
        assert_eq!(from_dir_name("cur"), None);
    }

    #[test]
    fn unusable_names_are_refused() {
        for bad in ["", "a/b", "..", ".x", "x.", "a..b", "INBOX.sub", "tab\there", "../../etc", "é", "é/x"] {
            assert!(normalise(bad).is_err(), "{bad:?}");
        }
    }
}
