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

/// A map from `u64` ids. `dense[i]` holds key `base + i`; `retain` moves `base`
/// past a forgotten prefix, so a map whose old entries are dropped gives their
/// slots back. Invariant: every key in `sparse` is at least `base + dense.len()`
/// and every key in `early` is below `base`, so iterating `early`, `dense`, then
/// `sparse` is in key order.
pub struct IdMap<T> {
    base: u64,
    dense: Vec<Option<T>>,
    sparse: BTreeMap<u64, T>,
    /// Keys that came after `retain` moved `base` past them (rare: a late entry
    /// about a forgotten id).
    early: BTreeMap<u64, T>,
    len: usize,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap {
            base: 0,
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            early: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> IdMap<T> {
    /// One past the last key of the dense range.
    fn dense_end(&self) -> u64 {
        self.base + self.dense.len() as u64
    }

    /// The dense slot of `key`, if it has one.
    fn slot(&self, key: u64) -> Option<usize> {
        let in_range = key >= self.base && key < self.dense_end();
        in_range.then(|| (key - self.base) as usize)
    }

    /// The ordered map that holds `key` when it has no dense slot.
    fn outside(&mut self, key: u64) -> &mut BTreeMap<u64, T> {
        if key < self.base {
            &mut self.early
        } else {
            &mut self.sparse
        }
    }

    pub fn get(&self, key: u64) -> Option<&T> {
        if let Some(slot) = self.slot(key) {
            return self.dense[slot].as_ref();
        }
        if key < self.base {
            return self.early.get(&key);
        }
        self.sparse.get(&key)
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        if let Some(slot) = self.slot(key) {
            return self.dense[slot].as_mut();
        }
        self.outside(key).get_mut(&key)
    }

    /// The value for `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> T) -> &mut T {
        let ahead = key >= self.dense_end();
        if ahead && key - self.base < 2 * self.len as u64 + SLACK {
            self.grow_dense(key - self.base + 1);
        }
        if let Some(slot) = self.slot(key) {
            let slot = &mut self.dense[slot];
            if slot.is_none() {
                *slot = Some(make());
                self.len += 1;
            }
            return slot.as_mut().expect("just filled");
        }
        let absent = !self.outside(key).contains_key(&key);
        self.len += usize::from(absent);
        self.outside(key).entry(key).or_insert_with(make)
    }

    /// Extends the dense vector to `new_len` slots, moving the sparse entries
    /// it now covers into it (keeping the invariant).
    fn grow_dense(&mut self, new_len: u64) {
        assert!(
            new_len > self.dense.len() as u64,
            "the dense range only grows"
        );
        let kept = self.sparse.split_off(&(self.base + new_len));
        let covered = std::mem::replace(&mut self.sparse, kept);
        self.dense.resize_with(new_len as usize, || None);
        for (key, value) in covered {
            let slot = self
                .slot(key)
                .expect("a covered key lies in the dense range");
            self.dense[slot] = Some(value);
        }
        assert!(self.sparse.keys().all(|key| *key >= self.dense_end()));
    }

    /// Keeps only the entries `keep` accepts, and gives back the dense slots of
    /// a forgotten prefix: the dense range then starts where the rest of it is
    /// at least half full.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &mut T) -> bool) {
        let base = self.base;
        for (offset, slot) in self.dense.iter_mut().enumerate() {
            let key = base + offset as u64;
            if slot.as_mut().is_some_and(|value| !keep(key, value)) {
                *slot = None;
            }
        }
        self.early.retain(|key, value| keep(*key, value));
        self.sparse.retain(|key, value| keep(*key, value));
        // The dense range restarts at the longest suffix that is at least half
        // full; the few kept entries before it (a command never answered, say)
        // move to `early`, so that they do not pin the forgotten slots.
        let slots = self.dense.len();
        let mut kept_after = 0;
        let mut cut = slots;
        for index in (0..slots).rev() {
            kept_after += usize::from(self.dense[index].is_some());
            if 2 * kept_after >= slots - index {
                cut = index;
            }
        }
        for (offset, slot) in self.dense.drain(..cut).enumerate() {
            if let Some(value) = slot {
                self.early.insert(base + offset as u64, value);
            }
        }
        self.base += cut as u64;
        let dense_len = self.dense.iter().filter(|slot| slot.is_some()).count();
        self.len = dense_len + self.early.len() + self.sparse.len();
        assert!(self.early.keys().all(|key| *key < self.base));
        assert!(self.sparse.keys().all(|key| *key >= self.dense_end()));
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let base = self.base;
        let dense = self.dense.iter().enumerate();
        let dense = dense.filter_map(move |(offset, value)| {
            let value = value.as_ref()?;
            Some((base + offset as u64, value))
        });
        let early = self.early.iter().map(|(key, value)| (*key, value));
        let sparse = self.sparse.iter().map(|(key, value)| (*key, value));
        early.chain(dense).chain(sparse)
    }

    /// Every entry in key order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        let base = self.base;
        let dense = self.dense.iter_mut().enumerate();
        let dense = dense.filter_map(move |(offset, value)| {
            let value = value.as_mut()?;
            Some((base + offset as u64, value))
        });
        let early = self.early.iter_mut().map(|(key, value)| (*key, value));
        let sparse = self.sparse.iter_mut().map(|(key, value)| (*key, value));
        early.chain(dense).chain(sparse)
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

    /// Keeps only the commands `keep` accepts, giving back the memory of the
    /// others (a mid-run check forgets commands settled long ago).
    pub fn retain(&mut self, mut keep: impl FnMut(CommandId, &mut T) -> bool) {
        let mut len = 0;
        self.clients.retain(|client, commands| {
            commands.retain(|seq, value| keep(command_id(client, seq), value));
            len += commands.len();
            commands.len() > 0
        });
        self.len = len;
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

    /// Inserts and forgets keys in rounds, as a mid-run check does, against a
    /// `BTreeMap`: lookups, order and length agree, late keys below the dense
    /// range are found, and the forgotten prefix's slots are given back.
    #[test]
    fn retain_forgets_a_prefix_and_gives_its_slots_back() {
        let mut map = IdMap::default();
        let mut reference = BTreeMap::new();
        for round in 0..20u64 {
            for key in round * 1_000..(round + 1) * 1_000 {
                map.get_or_insert_with(key, || key);
                reference.insert(key, key);
            }
            // A late key far below the kept range, and a far sparse one.
            for key in [round, 1_000_000 + round] {
                map.get_or_insert_with(key, || key);
                reference.insert(key, key);
            }
            let horizon = round * 1_000;
            let keep = |key: u64| key >= horizon || key % 97 == 0;
            map.retain(|key, _| keep(key));
            reference.retain(|key, _| keep(*key));
            let listed: Vec<(u64, u64)> = map.iter().map(|(key, n)| (key, *n)).collect();
            let expected: Vec<(u64, u64)> = reference.clone().into_iter().collect();
            assert_eq!(listed, expected, "round {round}");
            assert_eq!(map.len(), reference.len());
            for probe in [horizon, horizon.saturating_sub(1), round, 97, 1_000_000] {
                assert_eq!(map.get(probe), reference.get(&probe), "key {probe}");
            }
        }
        for (_, value) in map.iter_mut() {
            *value += 1;
        }
        assert!(map.iter().all(|(key, n)| *n == key + 1));
        // The dense vector holds about the kept window (at least half full),
        // not the 20,000 keys ever seen.
        let slots = map.dense.len();
        assert!(
            slots <= 2 * map.len() + SLACK as usize,
            "{slots} dense slots"
        );
        assert!(slots <= 2_100, "{slots} dense slots");
    }

    #[test]
    fn a_command_map_forgets_what_retain_refuses() {
        let id = |client, seq| CommandId {
            client: ClientId(client),
            seq,
        };
        let mut map = CommandMap::default();
        for client in 0..3 {
            for seq in 0..100 {
                map.get_or_insert_with(id(client, seq), || seq);
            }
        }
        map.retain(|command, _| command.client != ClientId(1) && command.seq >= 50);
        assert_eq!(map.len(), 100);
        assert_eq!(map.get(&id(1, 70)), None);
        assert_eq!(map.get(&id(0, 49)), None);
        assert_eq!(map.get(&id(2, 50)), Some(&50));
        assert!(map.iter().all(|(command, _)| command.seq >= 50));
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
