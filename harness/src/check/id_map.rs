//! Maps keyed by the ids of a history, fast for its common shape. Clients,
//! accounts and each client's commands are numbered 0, 1, 2, ... (or 1, 2, 3,
//! ...), so a vector indexed by the id holds them densely, and a lookup is an
//! index instead of a tree walk. Ids that would leave the vector mostly empty
//! (someone else's history, a fuzzed one) go to an ordered fallback map, so
//! memory stays within about twice the entries. The checkers keep state for
//! ~1e5-1e6 commands, and `BTreeMap` lookups were most of their cost.

use marlow_model::CommandId;
use std::collections::BTreeMap;

/// How many empty slots the dense vector may run ahead of twice its entries.
const SLACK: u64 = 64;

/// A map from `u64` ids. Invariant: every key in `sparse` is at least
/// `dense.len()`, so iterating `dense` then `sparse` is in key order.
pub struct IdMap<T> {
    dense: Vec<Option<T>>,
    sparse: BTreeMap<u64, T>,
    len: usize,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap {
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> IdMap<T> {
    pub fn get(&self, key: u64) -> Option<&T> {
        if key < self.dense.len() as u64 {
            return self.dense[key as usize].as_ref();
        }
        self.sparse.get(&key)
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        if key < self.dense.len() as u64 {
            return self.dense[key as usize].as_mut();
        }
        self.sparse.get_mut(&key)
    }

    /// The value for `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> T) -> &mut T {
        if key >= self.dense.len() as u64 && key < 2 * self.len as u64 + SLACK {
            self.grow_dense(key + 1);
        }
        if key < self.dense.len() as u64 {
            let slot = &mut self.dense[key as usize];
            if slot.is_none() {
                *slot = Some(make());
                self.len += 1;
            }
            return slot.as_mut().expect("just filled");
        }
        if !self.sparse.contains_key(&key) {
            self.len += 1;
        }
        self.sparse.entry(key).or_insert_with(make)
    }

    /// Extends the dense vector to `new_len` slots, moving the sparse entries
    /// it now covers into it (keeping the invariant).
    fn grow_dense(&mut self, new_len: u64) {
        let kept = self.sparse.split_off(&new_len);
        let covered = std::mem::replace(&mut self.sparse, kept);
        self.dense.resize_with(new_len as usize, || None);
        for (key, value) in covered {
            self.dense[key as usize] = Some(value);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let dense = self.dense.iter().enumerate();
        let dense = dense.filter_map(|(key, value)| Some((key as u64, value.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(key, value)| (*key, value)))
    }

    /// Every entry in key order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        let dense = self.dense.iter_mut().enumerate();
        let dense = dense.filter_map(|(key, value)| Some((key as u64, value.as_mut()?)));
        dense.chain(self.sparse.iter_mut().map(|(key, value)| (*key, value)))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, value)| value)
    }
}

/// A map from command ids: per client, per sequence number.
pub struct CommandMap<T> {
    clients: IdMap<IdMap<T>>,
    len: usize,
}

impl<T> Default for CommandMap<T> {
    fn default() -> Self {
        CommandMap {
            clients: IdMap::default(),
            len: 0,
        }
    }
}

impl<T> CommandMap<T> {
    pub fn get(&self, id: &CommandId) -> Option<&T> {
        self.clients.get(u64::from(id.client.0))?.get(id.seq)
    }

    pub fn get_mut(&mut self, id: &CommandId) -> Option<&mut T> {
        self.clients
            .get_mut(u64::from(id.client.0))?
            .get_mut(id.seq)
    }

    pub fn get_or_insert_with(&mut self, id: CommandId, make: impl FnOnce() -> T) -> &mut T {
        let commands = self
            .clients
            .get_or_insert_with(u64::from(id.client.0), IdMap::default);
        if commands.get(id.seq).is_none() {
            self.len += 1;
        }
        commands.get_or_insert_with(id.seq, make)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every entry in command id order.
    pub fn iter(&self) -> impl Iterator<Item = (CommandId, &T)> {
        self.clients.iter().flat_map(|(client, commands)| {
            commands
                .iter()
                .map(move |(seq, value)| (command_id(client, seq), value))
        })
    }

    /// Every entry in command id order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (CommandId, &mut T)> {
        self.clients.iter_mut().flat_map(|(client, commands)| {
            commands
                .iter_mut()
                .map(move |(seq, value)| (command_id(client, seq), value))
        })
    }
}

fn command_id(client: u64, seq: u64) -> CommandId {
    let client = u32::try_from(client).expect("client keys come from u32 client ids");
    CommandId {
        client: marlow_model::ClientId(client),
        seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlow_model::ClientId;

    /// Inserts keys into an `IdMap` and a `BTreeMap` alike and compares them.
    fn agrees_with_btreemap(keys: &[u64]) {
        let mut map = IdMap::default();
        let mut reference = BTreeMap::new();
        for (n, key) in keys.iter().enumerate() {
            *map.get_or_insert_with(*key, || n) += 100;
            *reference.entry(*key).or_insert(n) += 100;
            for probe in [*key, key + 1, key.saturating_sub(1)] {
                assert_eq!(map.get(probe), reference.get(&probe), "key {probe}");
            }
        }
        let listed: Vec<(u64, usize)> = map.iter().map(|(key, n)| (key, *n)).collect();
        let expected: Vec<(u64, usize)> = reference.clone().into_iter().collect();
        assert_eq!(listed, expected);
        assert_eq!(map.len(), reference.len());
        for key in reference.keys() {
            *map.get_mut(*key).expect("present") += 1;
        }
        assert!(map.iter().all(|(key, n)| *n == reference[&key] + 1));
    }

    #[test]
    fn dense_sparse_and_migrating_keys_behave_like_an_ordered_map() {
        agrees_with_btreemap(&[0, 1, 2, 3, 2, 1]);
        agrees_with_btreemap(&[5, 1, 9, 3, 70, 4]);
        // 500 lands sparse, then the dense range grows past it: still found.
        let mut keys = vec![500];
        keys.extend(0..600);
        agrees_with_btreemap(&keys);
        // Widely spaced ids stay sparse instead of allocating a huge vector.
        let spaced: Vec<u64> = (0..200).map(|n| n * 1_000_000).collect();
        agrees_with_btreemap(&spaced);
        let mut map = IdMap::default();
        for key in &spaced {
            map.get_or_insert_with(*key, || ());
        }
        assert!(map.dense.len() <= 2 * spaced.len() + SLACK as usize);
    }

    #[test]
    fn command_ids_iterate_in_order() {
        let id = |client, seq| CommandId {
            client: ClientId(client),
            seq,
        };
        let ids = [
            id(2, 5),
            id(1, 1),
            id(2, 6),
            id(2, 1),
            id(2, 5_000),
            id(1, 3),
            id(2, 0),
        ];
        let mut map = CommandMap::default();
        for (n, command) in ids.iter().enumerate() {
            map.get_or_insert_with(*command, || n);
            map.get_or_insert_with(*command, || 99);
        }
        let mut sorted = ids.to_vec();
        sorted.sort();
        let listed: Vec<CommandId> = map.iter().map(|(id, _)| id).collect();
        assert_eq!(listed, sorted);
        assert_eq!(map.len(), ids.len());
        assert_eq!(map.get(&id(2, 5_000)), Some(&4));
        assert_eq!(map.get(&id(3, 1)), None);
    }
}
