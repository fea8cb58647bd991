//! `Chunked`: a growable array whose elements never move.

use std::ops::{Index, IndexMut};

/// Elements in the first chunk (a power of two); chunk `k` holds
/// `FIRST << k`.
const FIRST: usize = 64;
const FIRST_LOG2: u32 = FIRST.trailing_zeros();

/// A growable array stored in chunks that double in size (64, 128, 256,
/// ... elements). Pushing never copies or remaps what is already stored,
/// so its cost stays flat: a `Vec` of millions of entries stalls for
/// milliseconds each time it doubles (the timer wheel's slab and the C
/// timer table use this instead). A small array wastes little; a large one
/// sits in large chunks. Indexing costs a bit scan and one more load than
/// a `Vec`'s.
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Chunk and offset of `index`.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    // Chunk k covers [FIRST * (2^k - 1), FIRST * (2^(k+1) - 1)): shifted by
    // FIRST, the index's top bit names the chunk.
    let j = index + FIRST;
    let top = usize::BITS - 1 - j.leading_zeros();
    ((top - FIRST_LOG2) as usize, j - (1 << top))
}

impl<T> Chunked<T> {
    /// An empty array (allocates nothing).
    pub const fn new() -> Chunked<T> {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`; returns its index.
    pub fn push(&mut self, value: T) -> usize {
        let index = self.len;
        let (chunk, _) = locate(index);
        if chunk == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(FIRST << chunk));
        }
        // Never reallocates: each chunk is made with room for its share.
        debug_assert!(self.chunks[chunk].len() < self.chunks[chunk].capacity());
        self.chunks[chunk].push(value);
        self.len += 1;
        index
    }

    /// The element at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&T> {
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get(offset)
    }

    /// The element at `index`, mutably, if any.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (chunk, offset) = locate(index);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }

    /// Iterates in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Iterates mutably in index order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked::new()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    #[track_caller]
    fn index(&self, index: usize) -> &T {
        assert!(
            index < self.len,
            "index {index} out of range for {}",
            self.len
        );
        let (chunk, offset) = locate(index);
        &self.chunks[chunk][offset]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    #[track_caller]
    fn index_mut(&mut self, index: usize) -> &mut T {
        assert!(
            index < self.len,
            "index {index} out of range for {}",
            self.len
        );
        let (chunk, offset) = locate(index);
        &mut self.chunks[chunk][offset]
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_double_and_indexes_map_one_to_one() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST - 1), (0, FIRST - 1));
        assert_eq!(locate(FIRST), (1, 0));
        assert_eq!(locate(3 * FIRST - 1), (1, 2 * FIRST - 1));
        assert_eq!(locate(3 * FIRST), (2, 0));
        assert_eq!(locate(7 * FIRST), (3, 0));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn indexing_past_the_end_panics() {
        let mut c = Chunked::new();
        c.push(1u8);
        let _ = c[1];
    }

    #[test]
    fn elements_stay_put_across_chunks() {
        let n = 20 * FIRST + 5;
        let mut c = Chunked::new();
        assert!(c.is_empty());
        for i in 0..n {
            assert_eq!(c.push(i), i);
        }
        assert_eq!(c.len(), n);
        let first: *const usize = &c[0];
        for i in 0..n {
            assert_eq!(c[i], i);
            c.push(i);
        }
        assert!(std::ptr::eq(first, &c[0]), "an element moved");
        c[FIRST] = 7;
        *c.get_mut(FIRST + 1).unwrap() = 8;
        assert_eq!((c[FIRST], c[FIRST + 1], c[n]), (7, 8, 0));
        assert_eq!(c.get(2 * n), None);
        assert_eq!(c.iter().count(), 2 * n);
        assert_eq!(c.iter_mut().map(|v| *v).nth(n - 1), Some(n - 1));
    }
}
