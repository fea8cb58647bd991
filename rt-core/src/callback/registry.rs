//! Generational ids for fd watches, and an index by fd number.
//!
//! An id packs a slot index (low 32 bits, +1 so 0 is never valid) and the
//! slot's generation (high 32 bits). Removing an entry bumps the
//! generation, so a stale id never names a newer entry: it gets
//! `NotFound`.
//!
//! Each entry also has a key (the fd number); the index maps a key to the
//! entry inserted last with it, until that entry is removed.

use std::collections::HashMap;
use std::sync::Mutex;

/// A slab of entries addressed by generational 64-bit ids.
pub(crate) struct Registry<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Key -> slot index of the entry inserted last with that key.
    by_key: HashMap<i32, u32>,
}

struct Slot<T> {
    generation: u32,
    key: i32,
    value: Option<T>,
}

impl<T> Inner<T> {
    /// Drops `index` from the key index if it is the key's entry.
    fn unindex(&mut self, index: u32) {
        let key = self.slots[index as usize].key;
        if self.by_key.get(&key) == Some(&index) {
            self.by_key.remove(&key);
        }
    }
}

fn split(id: u64) -> Option<(usize, u32)> {
    let index = (id & 0xFFFF_FFFF) as u32;
    let index = index.checked_sub(1)? as usize;
    Some((index, (id >> 32) as u32))
}

impl<T: Clone> Registry<T> {
    pub(crate) fn new() -> Registry<T> {
        Registry {
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                free: Vec::new(),
                by_key: HashMap::new(),
            }),
        }
    }

    /// Stores `value` under `key` (it becomes the key's entry); returns
    /// its id.
    pub(crate) fn insert(&self, key: i32, value: T) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                inner.slots.push(Slot {
                    generation: 0,
                    key,
                    value: None,
                });
                (inner.slots.len() - 1) as u32
            }
        };
        let slot = &mut inner.slots[index as usize];
        slot.value = Some(value);
        slot.key = key;
        let id = (u64::from(slot.generation) << 32) | u64::from(index + 1);
        inner.by_key.insert(key, index);
        id
    }

    /// The entry last inserted with `key`, if it is still there.
    pub(crate) fn get_by_key(&self, key: i32) -> Option<T> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = *inner.by_key.get(&key)?;
        inner.slots[index as usize].value.clone()
    }

    /// The entry named by `id`, if it is still there.
    pub(crate) fn get(&self, id: u64) -> Option<T> {
        let (index, generation) = split(id)?;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = inner.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.clone()
    }

    /// Removes the entry named by `id`; `None` if stale.
    pub(crate) fn remove(&self, id: u64) -> Option<T> {
        let (index, generation) = split(id)?;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = inner.slots.get_mut(index)?;
        if slot.generation != generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        slot.generation = slot.generation.wrapping_add(1);
        inner.unindex(index as u32);
        inner.free.push(index as u32);
        value
    }

    /// Removes and returns every entry.
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut freed = Vec::new();
        for (i, slot) in inner.slots.iter_mut().enumerate() {
            if let Some(v) = slot.value.take() {
                slot.generation = slot.generation.wrapping_add(1);
                freed.push(i as u32);
                out.push(v);
            }
        }
        inner.free.extend(freed);
        inner.by_key.clear();
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_are_refused() {
        let r = Registry::new();
        let a = r.insert(7, 1);
        assert_eq!(r.get(a), Some(1));
        assert_eq!(r.remove(a), Some(1));
        assert_eq!(r.remove(a), None);
        let b = r.insert(7, 2); // reuses the slot, new generation
        assert_ne!(a, b);
        assert_eq!(r.get(a), None);
        assert_eq!(r.get(b), Some(2));
        assert_eq!(r.get(0), None);
        assert_eq!(r.get(u64::MAX), None);
    }

    #[test]
    fn the_key_names_the_last_entry_inserted_with_it() {
        let r = Registry::new();
        assert_eq!(r.get_by_key(3), None);
        let a = r.insert(3, "a");
        assert_eq!(r.get_by_key(3), Some("a"));
        let b = r.insert(3, "b"); // the same key again: b is its entry now
        assert_eq!(r.get_by_key(3), Some("b"));
        assert_eq!(r.remove(a), Some("a")); // a no longer indexed: b stays
        assert_eq!(r.get_by_key(3), Some("b"));
        let c = r.insert(4, "c"); // reuses a's slot under another key
        assert_eq!(r.get_by_key(4), Some("c"));
        assert_eq!(r.remove(b), Some("b"));
        assert_eq!(r.get_by_key(3), None);
        assert_eq!(r.get_by_key(4), Some("c"));
        assert_eq!(r.drain(), vec!["c"]);
        assert_eq!(r.get_by_key(4), None);
        let _ = c;
    }
}
