//! A bounded cache of directory answers with separate lifetimes for
//! positive answers (a route, an accepted login) and negative ones (not in
//! the map, a rejected password). Directory failures are never cached.
//!
//! Stale-on-failure: while the directory is unavailable, a positive answer
//! may be served for a bounded time past its TTL. What that trades away: a
//! moved account is routed to its old host, a changed password keeps
//! working in its old form, and a disabled or deleted account keeps logging
//! in, until the window ends. A login is served stale only with the exact
//! password that last succeeded; nothing negative is ever served stale.
//!
//! Logins are cached under `(user, SHA-256(salt || password))`, never the
//! password itself. The salt is random per process (the caller supplies
//! it: node code has no randomness of its own) and never leaves memory, so
//! the digests cannot be looked up in precomputed tables; someone who can
//! read the process memory could still test guesses against them, which is
//! why entries expire and the cache is bounded. Set `positive_ttl_secs = 0`
//! to keep no trace of passwords at all.
//!
//! Time is tokio's (simulated in turmoil, pausable in tests).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::settings::CacheSection;

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached<V> {
    Positive(V),
    Negative,
}

/// Cache key for a login: the user and a salted digest of the password.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CredentialKey {
    user: String,
    digest: [u8; 32],
}

impl CredentialKey {
    /// `salt` must be random per process and kept secret.
    pub fn new(salt: &[u8; 32], user: &str, password: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(password.as_bytes());
        Self { user: user.to_string(), digest: hasher.finalize().into() }
    }
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialKey").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Answers by key, bounded in number; the oldest are evicted first.
pub struct Cache<K, V> {
    positive_ttl: Duration,
    negative_ttl: Duration,
    stale: Duration,
    max_entries: usize,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    entries: BTreeMap<K, Slot<V>>,
    /// Insertion order, oldest first: (stored, sequence) → key.
    by_age: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
}

struct Slot<V> {
    value: Cached<V>,
    stored: Instant,
    seq: u64,
}

impl<K: Ord + Clone, V: Clone> Cache<K, V> {
    pub fn new(settings: &CacheSection) -> Self {
        Self {
            positive_ttl: settings.positive_ttl(),
            negative_ttl: settings.negative_ttl(),
            stale: settings.stale_on_failure(),
            max_entries: settings.max_entries,
            state: Mutex::new(State { entries: BTreeMap::new(), by_age: BTreeMap::new(), next_seq: 0 }),
        }
    }

    /// A cached answer still within its TTL.
    pub fn fresh(&self, key: &K) -> Option<Cached<V>> {
        let state = self.lock();
        let slot = state.entries.get(key)?;
        let ttl = match slot.value {
            Cached::Positive(_) => self.positive_ttl,
            Cached::Negative => self.negative_ttl,
        };
        (slot.stored.elapsed() < ttl).then(|| slot.value.clone())
    }

    /// A positive answer within TTL + the stale-on-failure window, for use
    /// only while the directory is unavailable.
    pub fn stale(&self, key: &K) -> Option<V> {
        if self.stale.is_zero() {
            return None;
        }
        let state = self.lock();
        match state.entries.get(key) {
            Some(Slot { value: Cached::Positive(v), stored, .. })
                if stored.elapsed() < self.positive_ttl + self.stale =>
            {
                Some(v.clone())
            }
            _ => None,
        }
    }

    pub fn put_positive(&self, key: K, value: V) {
        if !self.positive_ttl.is_zero() {
            self.put(key, Cached::Positive(value));
        }
    }

    pub fn put_negative(&self, key: K) {
        if !self.negative_ttl.is_zero() {
            self.put(key, Cached::Negative);
        }
    }

    /// Forgets one key (a positive answer the directory now contradicts).
    pub fn remove(&self, key: &K) {
        let mut state = self.lock();
        if let Some(slot) = state.entries.remove(key) {
            state.by_age.remove(&(slot.stored, slot.seq));
        }
    }

    /// Forgets everything (on reload).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.by_age.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, key: K, value: Cached<V>) {
        if self.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        let longest = self.negative_ttl.max(self.positive_ttl + self.stale);
        let mut state = self.lock();
        if let Some(old) = state.entries.remove(&key) {
            state.by_age.remove(&(old.stored, old.seq));
        }
        // Drop what can no longer be served, then the oldest while full.
        while let Some((&(stored, seq), _)) = state.by_age.first_key_value() {
            let expired = now.saturating_duration_since(stored) >= longest;
            if !expired && state.entries.len() < self.max_entries {
                break;
            }
            if let Some(old_key) = state.by_age.remove(&(stored, seq)) {
                state.entries.remove(&old_key);
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.by_age.insert((now, seq), key.clone());
        state.entries.insert(key, Slot { value, stored: now, seq });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(positive: u64, negative: u64, stale: u64, max: usize) -> Cache<String, u32> {
        let settings = CacheSection {
            positive_ttl_secs: positive,
            negative_ttl_secs: negative,
            stale_on_failure_secs: stale,
            max_entries: max,
        };
        Cache::new(&settings)
    }

    async fn advance(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn positive_and_negative_answers_expire_separately() {
        let c = cache(60, 10, 0, 100);
        c.put_positive("alice".into(), 1);
        c.put_negative("nobody".into());
        assert_eq!(c.fresh(&"alice".into()), Some(Cached::Positive(1)));
        assert_eq!(c.fresh(&"nobody".into()), Some(Cached::Negative));
        advance(10).await;
        assert_eq!(c.fresh(&"nobody".into()), None, "negative TTL is 10 s");
        assert_eq!(c.fresh(&"alice".into()), Some(Cached::Positive(1)));
        advance(50).await;
        assert_eq!(c.fresh(&"alice".into()), None, "positive TTL is 60 s");
    }

    #[tokio::test(start_paused = true)]
    async fn stale_answers_are_bounded_and_off_by_default() {
        let c = cache(60, 10, 30, 100);
        c.put_positive("alice".into(), 1);
        c.put_negative("nobody".into());
        advance(70).await;
        assert_eq!(c.fresh(&"alice".into()), None);
        assert_eq!(c.stale(&"alice".into()), Some(1), "within TTL + 30 s");
        assert_eq!(c.stale(&"nobody".into()), None, "negative answers are never served stale");
        advance(20).await;
        assert_eq!(c.stale(&"alice".into()), None, "the window ends at TTL + 30 s");

        let off = cache(60, 10, 0, 100);
        off.put_positive("alice".into(), 1);
        advance(61).await;
        assert_eq!(off.stale(&"alice".into()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttls_cache_nothing() {
        let c = cache(0, 0, 0, 100);
        c.put_positive("alice".into(), 1);
        c.put_negative("bob".into());
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_entries_are_evicted_when_full() {
        let c = cache(60, 10, 0, 3);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            c.put_positive(name.to_string(), i as u32);
            advance(1).await;
        }
        c.put_positive("a".into(), 10); // refreshed: now the newest
        c.put_positive("d".into(), 3);
        assert_eq!(c.len(), 3);
        assert_eq!(c.fresh(&"b".into()), None, "b was the oldest");
        assert_eq!(c.fresh(&"a".into()), Some(Cached::Positive(10)));
        advance(61).await;
        c.put_positive("e".into(), 4);
        assert_eq!(c.len(), 1, "expired entries are dropped on insert");
    }

    #[test]
    fn credential_keys_hide_the_password_and_depend_on_the_salt() {
        let key = CredentialKey::new(&[1; 32], "alice@example.com", "wonderland");
        assert_eq!(key, CredentialKey::new(&[1; 32], "alice@example.com", "wonderland"));
        assert_ne!(key, CredentialKey::new(&[2; 32], "alice@example.com", "wonderland"));
        assert_ne!(key, CredentialKey::new(&[1; 32], "alice@example.com", "Wonderland"));
        assert!(!format!("{key:?}").contains("wonderland"));
    }
}
