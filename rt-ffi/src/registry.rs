//! Generational ids for I/O registrations.
//!
//! An id packs a slot index (low 32 bits, +1 so 0 is never valid) and the
//! slot's generation (high 32 bits). Removing an entry bumps the
//! generation, so a stale id never names a newer entry: it gets
//! `RT_ENOENT`.

use std::sync::Mutex;

/// A slab of entries addressed by generational 64-bit ids.
pub(crate) struct Registry<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
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
            }),
        }
    }

    /// Stores `value`; returns its id.
    pub(crate) fn insert(&self, value: T) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                inner.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                (inner.slots.len() - 1) as u32
            }
        };
        let slot = &mut inner.slots[index as usize];
        slot.value = Some(value);
        (u64::from(slot.generation) << 32) | u64::from(index + 1)
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_are_refused() {
        let r = Registry::new();
        let a = r.insert(1);
        assert_eq!(r.get(a), Some(1));
        assert_eq!(r.remove(a), Some(1));
        assert_eq!(r.remove(a), None);
        let b = r.insert(2); // reuses the slot, new generation
        assert_ne!(a, b);
        assert_eq!(r.get(a), None);
        assert_eq!(r.get(b), Some(2));
        assert_eq!(r.get(0), None);
        assert_eq!(r.get(u64::MAX), None);
    }
}
