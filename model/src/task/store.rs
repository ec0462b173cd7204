//! The local key-value store a task reads, and the writes it asks for. Ordered
//! (BTreeMap) so that iterating or hashing a store is deterministic.
//!
//! A value is kept as the bytes its changelog record carries, and, when the
//! task wrote it in this process, also as the typed value it encoded. A read
//! of a value the task wrote itself then clones that value instead of decoding
//! the bytes again: the decode was about a twentieth of a simulated command.
//! Bytes still cross every topic (the changelog carries them, and a restored
//! store holds only bytes, decoded at each read), and debug builds check at
//! every read that the bytes decode to the kept value, so a codec that does
//! not round-trip a store value still fails the tests.

use crate::codec::{decode, encode, DecodeError, WireMessage};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A value as the task wrote it, before encoding.
type Decoded = Arc<dyn Any + Send + Sync>;

/// One write to a task's store; `None` deletes the key. The driver also
/// appends it to the task's changelog topic.
#[derive(Clone)]
pub struct StoreWrite {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    /// The typed value `value` encodes, when the writer had one.
    decoded: Option<Decoded>,
}

impl StoreWrite {
    /// A write of raw bytes (`None` deletes the key): a changelog record, a
    /// counter, an undo.
    pub fn new(key: Vec<u8>, value: Option<Vec<u8>>) -> StoreWrite {
        StoreWrite {
            key,
            value,
            decoded: None,
        }
    }

    /// A write of a typed value: its encoding, and the value itself for reads
    /// in this process.
    pub fn typed<T: WireMessage + Clone + Send + Sync + 'static>(
        key: Vec<u8>,
        value: &T,
    ) -> StoreWrite {
        StoreWrite {
            key,
            value: Some(encode(value)),
            decoded: Some(Arc::new(value.clone())),
        }
    }
}

/// Writes are equal when their keys and bytes are: the kept value is a cache.
impl PartialEq for StoreWrite {
    fn eq(&self, other: &StoreWrite) -> bool {
        self.key == other.key && self.value == other.value
    }
}

impl Eq for StoreWrite {}

impl fmt::Debug for StoreWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreWrite")
            .field("key", &self.key)
            .field("value", &self.value)
            .finish()
    }
}

#[derive(Clone)]
struct Stored {
    bytes: Vec<u8>,
    decoded: Option<Decoded>,
}

#[derive(Clone, Default)]
pub struct KvStore {
    entries: BTreeMap<Vec<u8>, Stored>,
}

/// Stores are equal when they hold the same keys and bytes.
impl PartialEq for KvStore {
    fn eq(&self, other: &KvStore) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for KvStore {}

impl fmt::Debug for KvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|stored| stored.bytes.as_slice())
    }

    /// Reads a typed value: the one the task wrote, or else the bytes decoded.
    /// A value that does not decode means the store was corrupted by this
    /// crate itself, since only tasks write it.
    pub fn get_typed<T>(&self, key: &[u8]) -> Option<T>
    where
        T: WireMessage + Clone + PartialEq + fmt::Debug + 'static,
    {
        let stored = self.entries.get(key)?;
        let decode_bytes = || {
            decode::<T>(&stored.bytes).unwrap_or_else(|error: DecodeError| {
                panic!("store value under {key:?} does not decode: {error}")
            })
        };
        let kept = stored
            .decoded
            .as_ref()
            .and_then(|decoded| decoded.downcast_ref::<T>());
        Some(match kept {
            Some(value) => {
                debug_assert_eq!(
                    &decode_bytes(),
                    value,
                    "a store value under {key:?} does not decode to what was written"
                );
                value.clone()
            }
            None => decode_bytes(),
        })
    }

    pub fn apply(&mut self, write: &StoreWrite) {
        match &write.value {
            Some(value) => {
                let stored = Stored {
                    bytes: value.clone(),
                    decoded: write.decoded.clone(),
                };
                self.entries.insert(write.key.clone(), stored);
            }
            None => {
                self.entries.remove(&write.key);
            }
        }
    }

    pub fn apply_all(&mut self, writes: &[StoreWrite]) {
        writes.iter().for_each(|write| self.apply(write));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(key, stored)| (key.as_slice(), stored.bytes.as_slice()))
    }

    /// Rebuilds a store by replaying changelog writes in order.
    pub fn from_changelog<'a>(writes: impl IntoIterator<Item = &'a StoreWrite>) -> KvStore {
        let mut store = KvStore::new();
        writes.into_iter().for_each(|write| store.apply(write));
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &[u8], value: Option<&[u8]>) -> StoreWrite {
        StoreWrite::new(key.to_vec(), value.map(<[u8]>::to_vec))
    }

    /// The size counts live keys: an overwrite adds nothing, a tombstone removes one.
    #[test]
    fn len_counts_live_keys() {
        let mut store = KvStore::new();
        assert!(store.is_empty());
        store.apply_all(&[write(b"a", Some(b"1")), write(b"b", Some(b"2"))]);
        assert_eq!(store.len(), 2);
        store.apply(&write(b"a", Some(b"3")));
        assert_eq!(store.len(), 2);
        store.apply(&write(b"b", None));
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
        assert_eq!(store.get(b"a"), Some(b"3".as_slice()));
    }

    /// Iteration yields every live entry once, in key order (the order a
    /// restore reports accounts in and a hash of the store sees).
    #[test]
    fn iter_yields_live_entries_in_key_order() {
        let mut store = KvStore::new();
        store.apply_all(&[
            write(b"b", Some(b"2")),
            write(b"a", Some(b"1")),
            write(b"c", Some(b"3")),
            write(b"c", None),
        ]);
        let entries: Vec<(&[u8], &[u8])> = store.iter().collect();
        assert_eq!(
            entries,
            vec![
                (b"a".as_slice(), b"1".as_slice()),
                (b"b".as_slice(), b"2".as_slice())
            ]
        );
    }

    /// A value the task wrote is read back as written; the same bytes without
    /// the kept value (a restored store) decode to it; equality sees bytes only.
    #[test]
    fn a_typed_read_returns_the_written_value_restored_or_not() {
        use crate::ids::AccountId;
        use crate::Account;
        let mut account = Account::empty(AccountId(7));
        account.balance_minor = 12;
        let written = StoreWrite::typed(b"acct/7".to_vec(), &account);
        let mut kept = KvStore::new();
        kept.apply(&written);
        let restored =
            KvStore::from_changelog([&StoreWrite::new(written.key.clone(), written.value.clone())]);
        assert_eq!(kept.get_typed::<Account>(b"acct/7"), Some(account.clone()));
        assert_eq!(restored.get_typed::<Account>(b"acct/7"), Some(account));
        assert_eq!(kept, restored);
        assert_eq!(kept.get_typed::<Account>(b"acct/8"), None);
    }

    /// Two writes are equal exactly when their keys and bytes are (the kept
    /// value is only a cache); two stores exactly when their entries are. The
    /// debug forms show keys and bytes.
    #[test]
    fn equality_and_debug_see_keys_and_bytes() {
        let a1 = write(b"a", Some(b"1"));
        assert_eq!(a1, write(b"a", Some(b"1")));
        assert_ne!(a1, write(b"b", Some(b"1")), "another key");
        assert_ne!(a1, write(b"a", Some(b"2")), "other bytes");
        assert_ne!(a1, write(b"a", None), "a tombstone");
        let one = KvStore::from_changelog([&a1]);
        let other = KvStore::from_changelog([&write(b"a", Some(b"2"))]);
        assert_eq!(one, KvStore::from_changelog([&write(b"a", Some(b"1"))]));
        assert_ne!(one, other);
        assert_ne!(one, KvStore::new());
        let write_shown = format!("{a1:?}");
        assert!(
            write_shown.contains("StoreWrite") && write_shown.contains("[49]"),
            "{write_shown}"
        );
        assert_eq!(format!("{one:?}"), "{[97]: [49]}");
    }

    /// Debug builds check the kept value against its bytes at every read, so a
    /// value whose encoding does not decode back to it is caught.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "does not decode to what was written")]
    fn a_kept_value_that_its_bytes_do_not_decode_to_is_caught() {
        use crate::ids::AccountId;
        use crate::Account;
        let account = Account::empty(AccountId(7));
        let mut other = account.clone();
        other.balance_minor = 1;
        let mut write = StoreWrite::typed(b"acct/7".to_vec(), &account);
        write.value = Some(encode(&other));
        let mut store = KvStore::new();
        store.apply(&write);
        let _ = store.get_typed::<Account>(b"acct/7");
    }
}
