//! The local key-value store a task reads, and the writes it asks for. Ordered
//! (BTreeMap) so that iterating or hashing a store is deterministic.

use crate::codec::{decode, DecodeError, WireMessage};
use std::collections::BTreeMap;

/// One write to a task's store; `None` deletes the key. The driver also
/// appends it to the task's changelog topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreWrite {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Reads and decodes a typed value. A value that does not decode means the
    /// store was corrupted by this crate itself, since only tasks write it.
    pub fn get_typed<T: WireMessage>(&self, key: &[u8]) -> Option<T> {
        self.get(key).map(|bytes| {
            decode::<T>(bytes).unwrap_or_else(|error: DecodeError| {
                panic!("store value under {key:?} does not decode: {error}")
            })
        })
    }

    pub fn apply(&mut self, write: &StoreWrite) {
        match &write.value {
            Some(value) => {
                self.entries.insert(write.key.clone(), value.clone());
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
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
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
        StoreWrite {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
        }
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
}
