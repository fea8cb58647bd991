//! The write buffer of a stream transport: the bytes `write` could not send
//! at once, as a queue of chunks sent with one gather write per readiness.

use super::sys;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

/// Small writes are appended to the last chunk while it stays under this
/// size, so that many small writes cost one gather entry, not one each.
const COALESCE: usize = 16 * 1024;

/// The pending bytes, in order.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already sent.
    head: usize,
    /// Bytes pending (all chunks minus `head`).
    len: usize,
}

impl WriteBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data` (copied).
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        match self.chunks.back_mut() {
            Some(last) if last.len() + data.len() <= COALESCE => last.extend_from_slice(data),
            _ => self.chunks.push_back(data.to_vec()),
        }
    }

    /// Drops everything pending.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }

    /// Sends as much as the socket takes in one gather write; the bytes sent
    /// leave the buffer. Returns the count sent.
    pub fn send_to(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = if self.chunks.len() == 1 {
            sys::send(fd, &self.chunks[0][self.head..])?
        } else {
            let mut slices: [&[u8]; sys::MAX_IOVECS] = [&[]; sys::MAX_IOVECS];
            let mut count = 0;
            for (i, c) in self.chunks.iter().take(sys::MAX_IOVECS).enumerate() {
                slices[i] = if i == 0 { &c[self.head..] } else { c };
                count += 1;
            }
            sys::send_vectored(fd, &slices[..count])?
        };
        self.consume(n);
        Ok(n)
    }

    /// Drops the first `n` pending bytes.
    pub fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let front = self.chunks.front().expect("len counts the chunks' bytes");
            let left = front.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.chunks.pop_front();
        }
        if self.len == 0 {
            self.chunks.clear();
            self.head = 0;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn push_coalesces_and_consume_walks_chunks() {
        let mut b = WriteBuffer::new();
        b.push(b"abc");
        b.push(b"def");
        assert_eq!(b.chunks.len(), 1);
        b.push(&vec![7u8; COALESCE]);
        assert_eq!(b.chunks.len(), 2);
        assert_eq!(b.len(), 6 + COALESCE);
        b.consume(4);
        assert_eq!(b.head, 4);
        b.consume(2);
        assert_eq!(b.chunks.len(), 1);
        assert_eq!(b.head, 0);
        b.consume(COALESCE);
        assert!(b.is_empty());
        assert!(b.chunks.is_empty());
    }
}
