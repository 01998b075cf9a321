// SPDX-License-Identifier: GPL-2.0

//! The block queue: the state machine between userspace and the virtual
//! DMA engine.
//!
//! A block is a piece of memory the hardware transfers whole scans into
//! (an ADC) or out of (a DAC). Blocks wait in the [`HardwareQueue`] in
//! submission order; the hardware works on the one at the head and
//! completes it when done. What happens to a completed block depends on
//! who submitted it: the fileio paths recycle it ([`FileioQueue`] for
//! read(), [`FileioOutQueue`] for write()), the DMABUF paths signal its
//! fence.

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
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).filter_map(move |i| self.slots[(self.head + i) % N].as_ref())
    }
}

/// The memory of a block, as the hardware sees it.
pub trait Transfer: DerefMut<Target = [u8]> {
    /// Whether the hardware may access the memory yet (for instance, a
    /// fence it depends on has signalled). The head block not being ready
    /// stalls the hardware, as an empty queue does.
    fn ready(&self) -> bool {
        true
    }
}

/// A block of memory in the queue, with its progress.
#[derive(Debug)]
pub struct Block<D> {
    /// The memory (a kernel allocation, or a DMABUF's).
    pub data: D,
    /// Bytes the hardware is to transfer: a whole number of scans.
    pub size: usize,
    /// Bytes the hardware has transferred.
    pub filled: usize,
    /// Bytes a reader has consumed (fileio input only).
    pub consumed: usize,
    /// Repeat the block until another one is queued (output only).
    pub cyclic: bool,
    /// Completed passes over a cyclic block.
    pub passes: u64,
}

impl<D> Block<D> {
    /// A block to transfer `size` bytes of.
    pub fn new(data: D, size: usize) -> Self {
        Self {
            data,
            size,
            filled: 0,
            consumed: 0,
            cyclic: false,
            passes: 0,
        }
    }

    /// A block the hardware repeats until another one is queued.
    pub fn cyclic(mut self) -> Self {
        self.cyclic = true;
        self
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

/// What [`HardwareQueue::produce`] hands the transfer function: scans
/// numbered from `first`, and whether they start a repeated pass over a
/// cyclic block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Number of the first scan (in the hardware's count).
    pub first: u64,
    /// The chunk starts a new pass over a cyclic block.
    pub repeat: bool,
}

impl<D: Transfer> HardwareQueue<D> {
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

    /// The hardware transferred `count` scans of `scan_bytes` bytes,
    /// numbered from `first`: `transfer` moves them into (or out of) the
    /// head blocks, `complete` receives each block that is done. A cyclic
    /// block starts over while no other block waits. Returns the number
    /// of scans that found no ready block (an overrun, or an underrun).
    pub fn produce(
        &mut self,
        mut first: u64,
        mut count: u64,
        scan_bytes: usize,
        mut transfer: impl FnMut(&mut [u8], Chunk),
        mut complete: impl FnMut(Block<D>),
    ) -> u64 {
        if scan_bytes == 0 {
            return 0;
        }
        while count > 0 {
            let waiting = self.pending.len();
            let Some(block) = self.pending.front_mut().filter(|b| b.data.ready()) else {
                return count;
            };
            let size = block.size.min(block.data.len());
            let room = (size - block.filled) / scan_bytes;
            let n = (room as u64).min(count);
            if n > 0 {
                let end = block.filled + n as usize * scan_bytes;
                let repeat = block.filled == 0 && block.passes > 0;
                transfer(&mut block.data[block.filled..end], Chunk { first, repeat });
                block.filled = end;
                first += n;
                count -= n;
            }
            if block.filled + scan_bytes > size {
                if block.cyclic && waiting == 1 && block.filled > 0 {
                    block.filled = 0;
                    block.passes += 1;
                } else if let Some(done) = self.pending.pop_front() {
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

    /// Whether a waiting block satisfies `pred`.
    pub fn any(&self, pred: impl Fn(&Block<D>) -> bool) -> bool {
        self.pending.iter().any(pred)
    }

    /// The head block, if any.
    pub fn front(&mut self) -> Option<&mut Block<D>> {
        self.pending.front_mut()
    }

    /// Removes the head block.
    pub fn pop(&mut self) -> Option<Block<D>> {
        self.pending.pop_front()
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

impl<D: Transfer> FileioQueue<D> {
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
        fill: impl FnMut(&mut [u8], Chunk),
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

/// The fileio side of an output buffer: the writer fills free blocks and
/// hands them to the hardware, which gives them back once consumed.
pub struct FileioOutQueue<D> {
    /// Blocks the hardware consumes.
    pub hardware: HardwareQueue<D>,
    free: Ring<Block<D>, MAX_BLOCKS>,
}

impl<D> Default for FileioOutQueue<D> {
    fn default() -> Self {
        Self {
            hardware: HardwareQueue::default(),
            free: Ring::default(),
        }
    }
}

impl<D: Transfer> FileioOutQueue<D> {
    /// Adds an empty block to write into.
    pub fn add_free(&mut self, mut block: Block<D>) {
        block.reset();
        let _ = self.free.push_back(block);
    }

    /// Whether a block is free for writing.
    pub fn has_space(&self) -> bool {
        !self.free.is_empty()
    }

    /// Takes a free block to write into.
    pub fn take_for_write(&mut self) -> Option<Block<D>> {
        self.free.pop_front()
    }

    /// Queues a block the writer put `bytes` into for the hardware (or
    /// puts it back, when empty).
    pub fn submit_written(&mut self, mut block: Block<D>, bytes: usize) {
        if bytes == 0 {
            let _ = self.free.push_front(block);
            return;
        }
        block.size = bytes;
        block.filled = 0;
        let _ = self.hardware.submit(block);
    }

    /// The hardware consumed scans (see [`HardwareQueue::produce`]);
    /// consumed blocks become free again. Returns how many blocks were
    /// freed and how many scans found no data (an underrun).
    pub fn consume(
        &mut self,
        first: u64,
        count: u64,
        scan_bytes: usize,
        check: impl FnMut(&mut [u8], Chunk),
    ) -> (usize, u64) {
        let free = &mut self.free;
        let mut freed = 0;
        let underrun = self
            .hardware
            .produce(first, count, scan_bytes, check, |mut block| {
                block.reset();
                freed += 1;
                // There are never more than MAX_BLOCKS blocks in all.
                let _ = free.push_back(block);
            });
        (freed, underrun)
    }

    /// Takes every block out of the queue, in no particular order.
    pub fn drain_all(&mut self) -> impl Iterator<Item = Block<D>> + '_ {
        let free = &mut self.free;
        let hardware = &mut self.hardware;
        core::iter::from_fn(move || free.pop_front().or_else(|| hardware.pending.pop_front()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Transfer for Vec<u8> {}

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
        let mut fill = |out: &mut [u8], chunk: Chunk| {
            for (i, s) in out.chunks_exact_mut(2).enumerate() {
                s.copy_from_slice(&((chunk.first + i as u64) as u16).to_le_bytes());
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
    fn cyclic_block_repeats_until_another_is_queued() {
        let mut q = HardwareQueue::default();
        q.submit(block(4).cyclic()).unwrap();
        let mut chunks = Vec::new();
        let mut done = Vec::new();
        // 5 scans over a 2-scan cyclic block: passes 0, 1, and half of 2.
        assert_eq!(
            q.produce(0, 5, 2, |_, c| chunks.push(c), |b| done.push(b)),
            0
        );
        assert!(done.is_empty());
        assert_eq!(
            chunks[0],
            Chunk {
                first: 0,
                repeat: false
            }
        );
        assert_eq!(
            chunks[1],
            Chunk {
                first: 2,
                repeat: true
            }
        );
        assert_eq!(
            chunks[2],
            Chunk {
                first: 4,
                repeat: true
            }
        );
        // Another block arrives: the cyclic one completes after its pass.
        q.submit(block(4)).unwrap();
        assert_eq!(q.produce(5, 2, 2, |_, _| {}, |b| done.push(b)), 0);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].passes, 2);
        assert!(done[0].cyclic);
    }

    #[derive(Debug)]
    struct Gated(Vec<u8>, bool);

    impl core::ops::Deref for Gated {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            &self.0
        }
    }

    impl core::ops::DerefMut for Gated {
        fn deref_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
    }

    impl Transfer for Gated {
        fn ready(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn unready_head_stalls_the_hardware() {
        let mut q = HardwareQueue::default();
        q.submit(Block::new(Gated(vec![0; 4], false), 4)).unwrap();
        assert_eq!(q.produce(0, 3, 2, |_, _| panic!(), |_| panic!()), 3);
        q.front().unwrap().data.1 = true;
        let mut n = 0;
        assert_eq!(q.produce(3, 2, 2, |_, _| {}, |_| n += 1), 0);
        assert_eq!(n, 1);
    }

    #[test]
    fn fileio_out_round_trip() {
        let mut q = FileioOutQueue::default();
        q.add_free(block(8));
        q.add_free(block(8));
        let b = q.take_for_write().unwrap();
        q.submit_written(b, 4);
        assert!(q.has_space());
        let b = q.take_for_write().unwrap();
        assert!(!q.has_space());
        q.submit_written(b, 0);
        assert!(q.has_space());
        let mut seen = Vec::new();
        // 3 scans of 2 bytes: the 4-byte block is consumed, one underrun.
        assert_eq!(
            q.consume(0, 3, 2, |d, c| seen.push((d.len(), c.first))),
            (1, 1)
        );
        assert_eq!(seen, vec![(4, 0)]);
        assert_eq!(q.drain_all().count(), 2);
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
