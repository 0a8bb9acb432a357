//! The "Local File" user map (seed "Mapping Setup"): one `user host[:port]`
//! per line, `#` comments and blank lines allowed. The file is read at the
//! binary's edge with std::fs (simulations use LDAP maps), re-read when its
//! modification time changes (checked at most once a second) or on SIGHUP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{info, warn};

/// Most lines a map file may have, and the longest line.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_LINE: usize = 1024;
/// How often the file's mtime is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A parsed map: user → (host, optional port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalMap {
    entries: BTreeMap<String, (String, Option<u16>)>,
}

/// A problem on one line of a map file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MapError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl LocalMap {
    /// Parses map text; every bad line is reported.
    pub fn parse(file: &str, text: &str) -> Result<LocalMap, Vec<MapError>> {
        let mut entries = BTreeMap::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let error = |message: String| MapError { file: file.to_string(), line: i + 1, message };
            if raw.len() > MAX_LINE {
                errors.push(error(format!("line longer than {MAX_LINE} bytes")));
                continue;
            }
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [user, target] = fields[..] else {
                errors.push(error(format!("expected `user host[:port]`, got {line:?}")));
                continue;
            };
            let (host, port) = match target.rsplit_once(':') {
                Some((host, port)) => match port.parse::<u16>() {
                    Ok(p) if p > 0 => (host, Some(p)),
                    _ => {
                        errors.push(error(format!("bad port in {target:?}")));
                        continue;
                    }
                },
                None => (target, None),
            };
            if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
                errors.push(error(format!("bad host {host:?}")));
                continue;
            }
            let user = user.to_ascii_lowercase();
            if entries.insert(user.clone(), (host.to_string(), port)).is_some() {
                errors.push(error(format!("{user} is mapped twice")));
            }
            if entries.len() > MAX_ENTRIES {
                errors.push(error(format!("more than {MAX_ENTRIES} entries")));
                break;
            }
        }
        if errors.is_empty() { Ok(LocalMap { entries }) } else { Err(errors) }
    }

    /// The host (and port) a user (lower-cased) is mapped to.
    pub fn lookup(&self, user: &str) -> Option<(String, Option<u16>)> {
        self.entries.get(&user.trim().to_ascii_lowercase()).cloned()
    }
}

/// A map file kept up to date with its file.
#[derive(Debug)]
pub struct LocalMapFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    map: LocalMap,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl LocalMapFile {
    /// Loads the file; a missing or broken file is an error at startup.
    pub fn load(path: &Path) -> Result<Self, Vec<MapError>> {
        let (map, modified) = read(path)?;
        Ok(Self { path: path.to_path_buf(), state: Mutex::new(State { map, modified, checked: Some(Instant::now()) }) })
    }

    /// Looks a user up, re-reading the file first if it changed. A file
    /// that became unreadable or broken keeps the last good map (logged).
    pub fn lookup(&self, user: &str) -> Option<(String, Option<u16>)> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.is_none_or(|t| t.elapsed() >= CHECK_EVERY) {
            state.checked = Some(Instant::now());
            let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if modified != state.modified {
                self.reload_into(&mut state);
            }
        }
        state.map.lookup(user)
    }

    /// Re-reads the file now (SIGHUP).
    pub fn reload(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_into(&mut state);
    }

    fn reload_into(&self, state: &mut State) {
        match read(&self.path) {
            Ok((map, modified)) => {
                info!(path = %self.path.display(), "user map reloaded");
                state.map = map;
                state.modified = modified;
            }
            Err(errors) => {
                for e in errors {
                    warn!("{e}; keeping the previous map");
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<(LocalMap, Option<SystemTime>), Vec<MapError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![MapError { file: name.clone(), line: 0, message: format!("cannot read: {e}") }])?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((LocalMap::parse(&name, &text)?, modified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_users_hosts_ports_and_comments() {
        let map = LocalMap::parse("m", "# cluster\nalice@example.com node-a\n\nBob@Example.com 127.0.0.3:1430 # bob\n")
            .unwrap();
        assert_eq!(map.lookup("ALICE@example.com"), Some(("node-a".into(), None)));
        assert_eq!(map.lookup("bob@example.com"), Some(("127.0.0.3".into(), Some(1430))));
        assert_eq!(map.lookup("carol@example.com"), None);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let errors =
            LocalMap::parse("users.map", "a@x node-a\nb@x\nc@x host:0\nd@x bad/host\na@x node-b\n").unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "users.map:2: expected `user host[:port]`, got \"b@x\"",
                "users.map:3: bad port in \"host:0\"",
                "users.map:4: bad host \"bad/host\"",
                "users.map:5: a@x is mapped twice",
            ]
        );
    }

    #[tokio::test]
    async fn changes_to_the_file_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.map");
        std::fs::write(&path, "alice@example.com node-a\n").unwrap();
        let file = LocalMapFile::load(&path).unwrap();
        assert_eq!(file.lookup("alice@example.com").unwrap().0, "node-a");
        std::fs::write(&path, "alice@example.com node-b\n").unwrap();
        file.reload();
        assert_eq!(file.lookup("alice@example.com").unwrap().0, "node-b");
        std::fs::write(&path, "broken line here\n").unwrap();
        file.reload();
        assert_eq!(file.lookup("alice@example.com").unwrap().0, "node-b", "a broken file keeps the last good map");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = LocalMap::parse("m", &text);
        }
    }
}
