// SPDX-License-Identifier: GPL-2.0

//! The block queue: the state machine between userspace and the virtual
//! DMA engine.
//!
//! A block is a piece of memory the hardware fills with whole scans.
//! Blocks wait in the [`HardwareQueue`] in submission order; the hardware
//! fills the one at the head and completes it when full. What happens to a
//! completed block depends on who submitted it: the fileio path keeps it
//! for read() ([`FileioQueue`]), the DMABUF paths signal its fence.

use core::ops::DerefMut;

/// Most blocks a queue holds at once.
pub const MAX_BLOCKS: usize = 32;

/// A fixed-capacity FIFO that never allocates (usable with IRQs off).
pub struct Ring<T, const N: usize> {
    slots: [Option<T>; N],
    head: usize,
    len: usize,
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self {
            slots: [const { None }; N],
            head: 0,
            len: 0,
        }
    }
}

impl<T, const N: usize> Ring<T, N> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring is empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends at the tail, or hands the element back when full.
    pub fn push_back(&mut self, value: T) -> Result<(), T> {
        if self.len == N {
            return Err(value);
        }
        self.slots[(self.head + self.len) % N] = Some(value);
        self.len += 1;
        Ok(())
    }

    /// Puts an element back at the head, or hands it back when full.
    pub fn push_front(&mut self, value: T) -> Result<(), T> {
        if self.len == N {
            return Err(value);
        }
        self.head = (self.head + N - 1) % N;
        self.slots[self.head] = Some(value);
        self.len += 1;
        Ok(())
    }

    /// Removes the head.
    pub fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        value
    }

    /// The head, mutably.
    pub fn front_mut(&mut self) -> Option<&mut T> {
        if self.len == 0 {
            return None;
        }
        self.slots[self.head].as_mut()
    }

    /// Iterates from head to tail.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).filter_map(move |i| self.slots[(self.head + i) % N].as_ref())
    }
}

/// A block of memory in the queue, with its progress.
#[derive(Debug)]
pub struct Block<D> {
    /// The memory (a kernel allocation, or later a DMABUF's pages).
    pub data: D,
    /// Bytes the hardware is to fill: a whole number of scans.
    pub size: usize,
    /// Bytes the hardware has filled.
    pub filled: usize,
    /// Bytes a reader has consumed (fileio only).
    pub consumed: usize,
}

impl<D> Block<D> {
    /// A block to fill `size` bytes of.
    pub fn new(data: D, size: usize) -> Self {
        Self {
            data,
            size,
            filled: 0,
            consumed: 0,
        }
    }

    fn reset(&mut self) {
        self.filled = 0;
        self.consumed = 0;
    }
}

/// Blocks waiting for the hardware, the head being the one it fills.
pub struct HardwareQueue<D> {
    pending: Ring<Block<D>, MAX_BLOCKS>,
}

impl<D> Default for HardwareQueue<D> {
    fn default() -> Self {
        Self {
            pending: Ring::default(),
        }
    }
}

impl<D: DerefMut<Target = [u8]>> HardwareQueue<D> {
    /// Queues a block for the hardware; a full queue hands it back.
    pub fn submit(&mut self, block: Block<D>) -> Result<(), Block<D>> {
        self.pending.push_back(block)
    }

    /// Number of blocks waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no block waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The hardware produced `count` scans of `scan_bytes` bytes, numbered
    /// from `first`: `fill` writes them into the head blocks, `complete`
    /// receives each block that became full. Returns the number of scans
    /// dropped for lack of a block (an overrun).
    pub fn produce(
        &mut self,
        mut first: u64,
        mut count: u64,
        scan_bytes: usize,
        mut fill: impl FnMut(&mut [u8], u64),
        mut complete: impl FnMut(Block<D>),
    ) -> u64 {
        if scan_bytes == 0 {
            return 0;
        }
        while count > 0 {
            let Some(block) = self.pending.front_mut() else {
                return count;
            };
            let room = (block.size.min(block.data.len()) - block.filled) / scan_bytes;
            let n = (room as u64).min(count);
            let end = block.filled + n as usize * scan_bytes;
            fill(&mut block.data[block.filled..end], first);
            block.filled = end;
            first += n;
            count -= n;
            if block.filled + scan_bytes > block.size.min(block.data.len()) {
                if let Some(done) = self.pending.pop_front() {
                    complete(done);
                }
            }
        }
        0
    }

    /// Completes the head block early if `ready` says so (a partly filled
    /// block that already holds what the consumer waits for).
    pub fn complete_head_if(&mut self, ready: impl FnOnce(&Block<D>) -> bool) -> Option<Block<D>> {
        match self.pending.front_mut() {
            Some(head) if ready(head) => self.pending.pop_front(),
            _ => None,
        }
    }

    /// Takes every waiting block out (the hardware stopped).
    pub fn drain(&mut self) -> impl Iterator<Item = Block<D>> + '_ {
        core::iter::from_fn(move || self.pending.pop_front())
    }
}

/// How the fileio path splits a buffer of `length` scans into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileioGeometry {
    /// Number of blocks.
    pub blocks: usize,
    /// Scans per block.
    pub block_scans: usize,
}

impl FileioGeometry {
    /// Blocks hold `watermark` scans (so a reader waiting for the watermark
    /// is woken as soon as it is reached) but at least `length /
    /// MAX_BLOCKS`, and there are at least two when `length` allows
    /// (double buffering). `None` for an empty buffer.
    pub fn new(length: usize, watermark: usize) -> Option<Self> {
        if length == 0 {
            return None;
        }
        let block_scans = watermark
            .clamp(1, (length / 2).max(1))
            .max(length.div_ceil(MAX_BLOCKS));
        Some(Self {
            blocks: (length / block_scans).max(1),
            block_scans,
        })
    }
}

/// The fileio side of a buffer: blocks go round between the hardware and
/// the reader.
pub struct FileioQueue<D> {
    /// Blocks the hardware fills.
    pub hardware: HardwareQueue<D>,
    done: Ring<Block<D>, MAX_BLOCKS>,
    available: usize,
    flush_bytes: usize,
}

impl<D> Default for FileioQueue<D> {
    fn default() -> Self {
        Self {
            hardware: HardwareQueue::default(),
            done: Ring::default(),
            available: 0,
            flush_bytes: usize::MAX,
        }
    }
}

impl<D: DerefMut<Target = [u8]>> FileioQueue<D> {
    /// Bytes ready for read().
    pub fn available(&self) -> usize {
        self.available
    }

    /// Makes [`FileioQueue::produce`] also hand over a partly filled block
    /// once it holds `bytes` (the watermark): like a DMA engine flushing
    /// on a timeout, so that a reader waiting for the watermark does not
    /// wait for a whole block at low rates.
    pub fn set_flush_threshold(&mut self, bytes: usize) {
        self.flush_bytes = bytes.max(1);
    }

    /// The hardware produced scans (see [`HardwareQueue::produce`]):
    /// completed blocks are kept for the reader. Returns how many blocks
    /// completed and how many scans were dropped.
    pub fn produce(
        &mut self,
        first: u64,
        count: u64,
        scan_bytes: usize,
        fill: impl FnMut(&mut [u8], u64),
    ) -> (usize, u64) {
        let (done, available) = (&mut self.done, &mut self.available);
        let mut completed = 0;
        let mut keep = |block: Block<D>| {
            *available += block.filled - block.consumed;
            completed += 1;
            // There are never more than MAX_BLOCKS blocks in all.
            let _ = done.push_back(block);
        };
        let dropped = self
            .hardware
            .produce(first, count, scan_bytes, fill, &mut keep);
        let flush_bytes = self.flush_bytes;
        if let Some(block) = self.hardware.complete_head_if(|b| b.filled >= flush_bytes) {
            keep(block);
        }
        (completed, dropped)
    }

    /// Takes the oldest completed block for reading.
    pub fn take_for_read(&mut self) -> Option<Block<D>> {
        self.done.pop_front()
    }

    /// Returns a block after the reader consumed `bytes` more of it: a
    /// fully read block goes back to the hardware, a partly read one stays
    /// first in line.
    pub fn return_after_read(&mut self, mut block: Block<D>, bytes: usize) {
        self.available -= bytes;
        block.consumed += bytes;
        if block.consumed >= block.filled {
            block.reset();
            let _ = self.hardware.submit(block);
        } else {
            let _ = self.done.push_front(block);
        }
    }

    /// Takes every block out of the queue, in no particular order.
    pub fn drain_all(&mut self) -> impl Iterator<Item = Block<D>> + '_ {
        self.available = 0;
        let done = &mut self.done;
        let hardware = &mut self.hardware;
        core::iter::from_fn(move || done.pop_front().or_else(|| hardware.pending.pop_front()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: usize) -> Block<Vec<u8>> {
        Block::new(vec![0; size], size)
    }

    #[test]
    fn ring_fifo_and_front() {
        let mut r: Ring<u32, 3> = Ring::default();
        assert!(r.pop_front().is_none());
        r.push_back(1).unwrap();
        r.push_back(2).unwrap();
        r.push_front(0).unwrap();
        assert_eq!(r.push_back(9), Err(9));
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(r.pop_front(), Some(0));
        r.push_back(3).unwrap();
        *r.front_mut().unwrap() = 10;
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![10, 2, 3]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn produce_fills_in_order_and_counts_overruns() {
        let mut q = HardwareQueue::default();
        q.submit(block(8)).unwrap();
        q.submit(block(8)).unwrap();
        let mut completed = Vec::new();
        let mut fill = |out: &mut [u8], first: u64| {
            for (i, s) in out.chunks_exact_mut(2).enumerate() {
                s.copy_from_slice(&((first + i as u64) as u16).to_le_bytes());
            }
        };
        // 3 scans: block 0 not full yet.
        assert_eq!(q.produce(0, 3, 2, &mut fill, |b| completed.push(b)), 0);
        assert!(completed.is_empty());
        // 6 more: block 0 and 1 complete, one scan dropped.
        assert_eq!(q.produce(3, 6, 2, &mut fill, |b| completed.push(b)), 1);
        assert_eq!(completed.len(), 2);
        assert_eq!(completed[0].data, vec![0, 0, 1, 0, 2, 0, 3, 0]);
        assert_eq!(completed[1].data, vec![4, 0, 5, 0, 6, 0, 7, 0]);
        assert!(q.is_empty());
        assert_eq!(q.produce(9, 5, 2, &mut fill, |_| panic!()), 5);
    }

    #[test]
    fn produce_completes_partial_scan_tail() {
        // A block whose size is not a multiple of the scan completes when no
        // further whole scan fits.
        let mut q = HardwareQueue::default();
        q.submit(block(7)).unwrap();
        let mut n = 0;
        assert_eq!(q.produce(0, 3, 2, |_, _| {}, |b| n += b.filled), 0);
        assert_eq!(n, 6);
    }

    #[test]
    fn queue_rejects_beyond_capacity() {
        let mut q = HardwareQueue::default();
        for _ in 0..MAX_BLOCKS {
            q.submit(block(2)).unwrap();
        }
        assert!(q.submit(block(2)).is_err());
        assert_eq!(q.drain().count(), MAX_BLOCKS);
        assert!(q.is_empty());
    }

    #[test]
    fn geometry() {
        assert_eq!(FileioGeometry::new(0, 1), None);
        let g = FileioGeometry::new(4096, 1).unwrap();
        assert_eq!(
            g,
            FileioGeometry {
                blocks: 32,
                block_scans: 128
            }
        );
        let g = FileioGeometry::new(4096, 500).unwrap();
        assert_eq!(
            g,
            FileioGeometry {
                blocks: 8,
                block_scans: 500
            }
        );
        let g = FileioGeometry::new(4096, 4096).unwrap();
        assert_eq!(
            g,
            FileioGeometry {
                blocks: 2,
                block_scans: 2048
            }
        );
        let g = FileioGeometry::new(1, 1).unwrap();
        assert_eq!(
            g,
            FileioGeometry {
                blocks: 1,
                block_scans: 1
            }
        );
        let g = FileioGeometry::new(65536, 4096).unwrap();
        assert_eq!(
            g,
            FileioGeometry {
                blocks: 16,
                block_scans: 4096
            }
        );
    }

    #[test]
    fn fileio_flushes_partial_block_at_threshold() {
        let mut q = FileioQueue::default();
        q.hardware.submit(block(8)).unwrap();
        q.hardware.submit(block(8)).unwrap();
        // Without a threshold only full blocks complete.
        assert_eq!(q.produce(0, 1, 2, |_, _| {}), (0, 0));
        q.set_flush_threshold(4);
        assert_eq!(q.produce(1, 1, 2, |_, _| {}), (1, 0));
        assert_eq!(q.available(), 4);
        // The next block starts empty: below the threshold, kept.
        assert_eq!(q.produce(2, 1, 2, |_, _| {}), (0, 0));
        let b = q.take_for_read().unwrap();
        assert_eq!((b.filled, b.size), (4, 8));
        q.return_after_read(b, 4);
        assert_eq!(q.available(), 0);
    }

    #[test]
    fn fileio_round_trip() {
        let mut q = FileioQueue::default();
        q.hardware.submit(block(4)).unwrap();
        q.hardware.submit(block(4)).unwrap();
        assert_eq!(q.produce(0, 3, 2, |_, _| {}), (1, 0));
        assert_eq!(q.available(), 4);
        // Read 2 bytes: the block stays first in line.
        let b = q.take_for_read().unwrap();
        q.return_after_read(b, 2);
        assert_eq!(q.available(), 2);
        assert_eq!(q.hardware.len(), 1);
        // Read the rest: the block returns to the hardware.
        let b = q.take_for_read().unwrap();
        assert_eq!(b.consumed, 2);
        q.return_after_read(b, 2);
        assert_eq!(q.available(), 0);
        assert_eq!(q.hardware.len(), 2);
        assert!(q.take_for_read().is_none());
        assert_eq!(q.drain_all().count(), 2);
    }
}
