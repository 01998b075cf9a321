// SPDX-License-Identifier: GPL-2.0

//! The block engine: one state machine for every data path of a buffer.
//!
//! # Buffer modes
//!
//! A buffer is used either by the fileio paths (read() or write() on the
//! IIO device, kernel blocks that go round between the hardware and the
//! reader or writer) or by DMABUF users (the seed char device, mainline
//! attachments), never both. [`Mode`] says which:
//!
//! ```text
//!            enable / first write()              open, attach
//!   Idle ───────────────────────────> Fileio   Idle ──────────> Dmabuf
//!    ^  <── disable (output)  ─────────┘         ^  <── last close/detach,
//!    │      (input keeps its blocks, disabled,   │      buffer disabled
//!    │       for readers to drain them)          │
//!    └─ open/attach on a disabled Fileio buffer: its blocks are released,
//!       the buffer turns Dmabuf (as the IIO DMA buffer frees fileio memory
//!       on attach). Open/attach while Fileio is enabled: `Busy`.
//!   any ── kill ──> Dead (final: every operation is refused with `Removed`)
//! ```
//!
//! `enabled` within a mode follows the IIO core's enable/disable.
//!
//! # Block states
//!
//! ```text
//!   queued ──take──> active ──give back──> queued (head again: partly done)
//!                      │                   done   (fileio: for the reader /
//!                      │                           writer; DMABUF: fence)
//!                      └── abort while active ──> dead: completes with the
//!                                                 abort's cause on return
//! ```
//!
//! *Queued* blocks wait in [`Engine`]'s queue in submission order. The
//! hardware takes the head out ([`Engine::take_for_hardware`]): it is then
//! *active*, moved with no lock held, and the engine only remembers its key
//! and whether it was aborted meanwhile. Giving it back
//! ([`Engine::give_back`]) makes it queued again (not finished), *done*, or
//! — when an abort came while it was active — *dead*, completed with the
//! abort's cause. A cyclic block (output, DMABUF) is never done: it repeats
//! until an abort.
//!
//! Every operation that removes blocks hands them to the caller inside a
//! [`Released`] value, so that they are freed, and their fences signalled,
//! after the caller dropped its lock. Nothing is dropped here, and nothing
//! is silently lost: an operation that cannot find room fails.

use core::mem;

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

    /// The head.
    pub fn front(&self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        self.slots[self.head].as_ref()
    }

    /// Iterates from head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).filter_map(move |i| self.slots[(self.head + i) % N].as_ref())
    }

    /// Iterates from head to tail, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let (head, len) = (self.head, self.len);
        let (tail, wrapped) = self.slots.split_at_mut(head);
        let first = wrapped.len().min(len);
        wrapped[..first]
            .iter_mut()
            .chain(tail[..len - first].iter_mut())
            .filter_map(Option::as_mut)
    }

    /// The same elements, each mapped by `f`, in order.
    pub fn map<U>(mut self, mut f: impl FnMut(T) -> U) -> Ring<U, N> {
        let mut out = Ring::default();
        while let Some(v) = self.pop_front() {
            out.slots[out.len] = Some(f(v));
            out.len += 1;
        }
        out
    }

    /// Moves the elements that satisfy `pred` into a new ring, in order;
    /// the others stay, in order. Cannot overflow: both rings have room
    /// for all of them.
    pub fn extract(&mut self, mut pred: impl FnMut(&T) -> bool) -> Self {
        let mut kept = Self::default();
        let mut taken = Self::default();
        while let Some(v) = self.pop_front() {
            let target = if pred(&v) { &mut taken } else { &mut kept };
            let i = (target.head + target.len) % N;
            target.slots[i] = Some(v);
            target.len += 1;
        }
        *self = kept;
        taken
    }
}

impl<T, const N: usize> Iterator for Ring<T, N> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.pop_front()
    }
}

/// What the hardware moves in one go: scans numbered from `first`, and
/// whether they start a repeated pass over a cyclic block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Number of the first scan (in the hardware's count).
    pub first: u64,
    /// The chunk starts a new pass over a cyclic block.
    pub repeat: bool,
}

/// Direction of a buffer's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Device to memory (an ADC).
    In,
    /// Memory to device (a DAC).
    Out,
}

/// Why the engine refuses an operation. The driver maps each to an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The device was removed (`ENODEV`).
    Removed,
    /// The other kind of user owns the buffer, the char device is open
    /// already, the block is with the hardware, or a cyclic block holds
    /// the output (`EBUSY`).
    Busy,
    /// The block is already waiting in the queue (`EPERM`, as mainline).
    AlreadyQueued,
    /// The queue is full (`ENOSPC`).
    Full,
    /// Not possible in this direction or mode (`EINVAL`).
    Invalid,
}

/// Why a block ends without being done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// The buffer was disabled (`ECANCELED`).
    Disabled,
    /// The char device that queued it was closed (`ECANCELED`).
    Closed,
    /// The device was removed (`ENODEV`).
    Removed,
}

/// Who queued a DMABUF block: closing the char device cancels its own
/// blocks only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The seed API (the buffer's char device).
    Seed,
    /// The mainline API (attachments on the buffer fd).
    Mainline,
}

/// Whether the hardware may use a DMABUF block yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Go.
    Ready,
    /// A fence it depends on has not signalled: the hardware stalls, as
    /// with an empty queue.
    Waiting,
    /// A fence it depends on failed: the block completes unused.
    Failed,
}

/// What the engine needs to know of a DMABUF block's payload.
pub trait DmabufPayload {
    /// Identifies the memory: a second ENQUEUE of the same key while the
    /// first is queued or active is refused.
    fn key(&self) -> usize;
    /// Who queued it.
    fn owner(&self) -> Owner;
    /// Whether the hardware may use it.
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

/// A block of memory with its progress.
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
    /// Repeat the block until aborted (output, DMABUF only).
    pub cyclic: bool,
    /// Completed passes over a cyclic block.
    pub passes: u64,
    /// Fileio: the set of blocks this one belongs to (see
    /// [`Engine::take_for_read`]).
    generation: u64,
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
            generation: 0,
        }
    }

    /// A block the hardware repeats until aborted.
    pub fn cyclic(mut self) -> Self {
        self.cyclic = true;
        self
    }

    fn reset(&mut self) {
        self.filled = 0;
        self.consumed = 0;
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

/// A block in the hardware queue: one kind at a time, as the mode says.
#[derive(Debug)]
pub enum Entry<F, D> {
    /// A kernel block of the fileio path.
    Fileio(Block<F>),
    /// A DMABUF block.
    Dmabuf(Block<D>),
}

/// Who uses the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nobody: no blocks.
    Idle,
    /// read() or write(): kernel blocks circulate.
    Fileio {
        /// Between enable and disable.
        enabled: bool,
    },
    /// DMABUF users exist, or existed when the buffer was enabled.
    Dmabuf {
        /// Between enable and disable.
        enabled: bool,
        /// The seed char device is open.
        chardev: bool,
        /// Mainline attachments.
        attachments: usize,
    },
    /// The device was removed.
    Dead,
}

/// What the active block's owner must know when it gives the block back.
#[derive(Clone, Copy, Debug)]
struct ActiveBlock {
    /// `None` for a fileio block.
    key: Option<usize>,
    owner: Option<Owner>,
    cyclic: bool,
    abort: Option<Abort>,
}

/// Blocks an operation removed, to be freed (fileio) or completed with
/// `abort` (DMABUF) by the caller once it dropped its lock.
pub struct Released<F, D> {
    /// Blocks that were waiting for the hardware.
    pub queued: Ring<Entry<F, D>, MAX_BLOCKS>,
    /// Fileio blocks that were with the reader or writer side.
    pub fileio: Ring<Block<F>, MAX_BLOCKS>,
    /// Why the DMABUF blocks end.
    pub abort: Abort,
}

impl<F, D> Released<F, D> {
    fn new(abort: Abort) -> Self {
        Self {
            queued: Ring::default(),
            fileio: Ring::default(),
            abort,
        }
    }

    /// Whether nothing was released.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.fileio.is_empty()
    }
}

/// What [`Engine::plan_enable`] and [`Engine::plan_write`] tell the caller
/// to do before it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to prepare.
    Ready,
    /// Allocate fileio blocks for this scan size (outside the lock), then
    /// commit with them.
    NeedBlocks,
}

/// What the hardware found at the head of the queue.
pub enum Head<F, D> {
    /// Nothing ready: the scans due are lost (overrun or underrun).
    Stalled,
    /// A block to move data for; give it back with [`Engine::give_back`].
    Active(Entry<F, D>),
    /// A DMABUF block whose dependency failed: complete it with
    /// [`Abort::DependencyFailed`].
    Failed(Block<D>),
}

/// What became of a block given back by the hardware.
pub enum Outcome<F, D> {
    /// Not finished: queued again, at the head.
    Requeued,
    /// A fileio block is done: the reader (input) or writer (output) may
    /// take it.
    Ready,
    /// A DMABUF block is done: signal its fence.
    Done(Block<D>),
    /// The block was aborted while active: free it, or complete it with
    /// the cause.
    Dead(Entry<F, D>, Abort),
}

/// One buffer's blocks and users. See the module documentation.
///
/// # Invariants
///
/// - `queued` holds only `Entry::Fileio` in `Mode::Fileio`, only
///   `Entry::Dmabuf` in `Mode::Dmabuf`, nothing in `Idle` and `Dead`.
/// - `fileio` is empty unless the mode is `Fileio`.
/// - `queued.len() + active.is_some() <= MAX_BLOCKS`.
/// - At most one cyclic block, and then it is the only DMABUF block.
pub struct Engine<F, D> {
    direction: Direction,
    mode: Mode,
    queued: Ring<Entry<F, D>, MAX_BLOCKS>,
    active: Option<ActiveBlock>,
    /// Fileio blocks off the hardware: filled ones for the reader (input),
    /// free ones for the writer (output).
    fileio: Ring<Block<F>, MAX_BLOCKS>,
    /// Fileio blocks out with a reader or writer.
    checked_out: usize,
    /// Bytes ready for read() (input).
    available: usize,
    /// A partly filled input block goes to the reader at this many bytes.
    flush_bytes: usize,
    /// Scan size the fileio blocks were made for.
    fileio_scan_bytes: usize,
    /// Changes whenever the fileio blocks are released: a block a reader
    /// or writer held across that comes back to be freed.
    generation: u64,
}

impl<F, D: DmabufPayload> Engine<F, D> {
    /// An idle buffer of `direction`.
    pub fn new(direction: Direction) -> Self {
        Self {
            direction,
            mode: Mode::Idle,
            queued: Ring::default(),
            active: None,
            fileio: Ring::default(),
            checked_out: 0,
            available: 0,
            flush_bytes: usize::MAX,
            fileio_scan_bytes: 0,
            generation: 0,
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the buffer is enabled.
    pub fn enabled(&self) -> bool {
        matches!(
            self.mode,
            Mode::Fileio { enabled: true } | Mode::Dmabuf { enabled: true, .. }
        )
    }

    /// Takes every block out, into `released`.
    fn release_all(&mut self, released: &mut Released<F, D>) {
        released.queued = mem::take(&mut self.queued);
        released.fileio = mem::take(&mut self.fileio);
        self.available = 0;
        self.fileio_scan_bytes = 0;
        self.checked_out = 0;
        self.generation = self.generation.wrapping_add(1);
        if let Some(active) = self.active.as_mut() {
            active.abort.get_or_insert(released.abort);
        }
    }

    /// A DMABUF user arrives: from `Idle` or a disabled `Fileio` buffer
    /// (whose blocks are released), the buffer turns `Dmabuf`.
    fn dmabuf_user(&mut self, chardev: bool) -> Result<Released<F, D>, Refusal> {
        let mut released = Released::new(Abort::Disabled);
        match &mut self.mode {
            Mode::Dead => return Err(Refusal::Removed),
            Mode::Fileio { enabled: true } => return Err(Refusal::Busy),
            Mode::Dmabuf { chardev: open, .. } if chardev && *open => return Err(Refusal::Busy),
            Mode::Dmabuf {
                chardev: open,
                attachments,
                ..
            } => {
                if chardev {
                    *open = true;
                } else {
                    *attachments += 1;
                }
                return Ok(released);
            }
            Mode::Idle | Mode::Fileio { enabled: false } => {}
        }
        self.release_all(&mut released);
        self.mode = Mode::Dmabuf {
            enabled: false,
            chardev,
            attachments: usize::from(!chardev),
        };
        Ok(released)
    }

    /// The last DMABUF user left a disabled buffer: back to `Idle`.
    fn settle(&mut self) {
        if let Mode::Dmabuf {
            enabled: false,
            chardev: false,
            attachments: 0,
        } = self.mode
        {
            self.mode = Mode::Idle;
        }
    }

    /// The seed char device is being opened: one opener at a time, never
    /// with an enabled fileio buffer.
    pub fn open_chardev(&mut self) -> Result<Released<F, D>, Refusal> {
        self.dmabuf_user(true)
    }

    /// The seed char device was closed: the blocks it queued end with
    /// [`Abort::Closed`], the others stay.
    pub fn close_chardev(&mut self) -> Released<F, D> {
        let mut released = Released::new(Abort::Closed);
        if let Mode::Dmabuf { chardev, .. } = &mut self.mode {
            *chardev = false;
            released.queued = self
                .queued
                .extract(|e| matches!(e, Entry::Dmabuf(b) if b.data.owner() == Owner::Seed));
            if let Some(active) = self.active.as_mut() {
                if active.owner == Some(Owner::Seed) {
                    active.abort.get_or_insert(Abort::Closed);
                }
            }
            self.settle();
        }
        released
    }

    /// A DMABUF is being attached (mainline API).
    pub fn attach(&mut self) -> Result<Released<F, D>, Refusal> {
        self.dmabuf_user(false)
    }

    /// An attachment went away (after all its blocks completed).
    pub fn detach(&mut self) {
        if let Mode::Dmabuf { attachments, .. } = &mut self.mode {
            *attachments = attachments.saturating_sub(1);
            self.settle();
        }
    }

    /// First step of an enable with `scan_bytes` per scan: whether fileio
    /// blocks must be allocated first.
    pub fn plan_enable(&self, scan_bytes: usize) -> Result<Plan, Refusal> {
        match self.mode {
            Mode::Dead => Err(Refusal::Removed),
            Mode::Dmabuf { .. } => Ok(Plan::Ready),
            Mode::Fileio { enabled: true } => Err(Refusal::Busy),
            // Output blocks written before the enable are played, unless
            // the scan layout changed since.
            Mode::Fileio { enabled: false }
                if self.direction == Direction::Out && self.fileio_scan_bytes == scan_bytes =>
            {
                Ok(Plan::Ready)
            }
            Mode::Idle | Mode::Fileio { enabled: false } => Ok(Plan::NeedBlocks),
        }
    }

    /// Commits an enable: DMABUF users make it a DMABUF session (`fresh`
    /// blocks are then released unused); otherwise a fileio session with
    /// the blocks already there (output, see [`Self::plan_enable`]) or
    /// `fresh`. `flush_bytes` is the input watermark in bytes.
    pub fn enable(
        &mut self,
        fresh: Option<Ring<Block<F>, MAX_BLOCKS>>,
        scan_bytes: usize,
        flush_bytes: usize,
    ) -> Result<Released<F, D>, (Refusal, Released<F, D>)> {
        let mut released = Released::new(Abort::Disabled);
        let plan = self.plan_enable(scan_bytes);
        if let Mode::Dmabuf { enabled, .. } = &mut self.mode {
            *enabled = true;
            if let Some(fresh) = fresh {
                released.fileio = fresh;
            }
            return Ok(released);
        }
        let fresh = match (plan, fresh) {
            (Err(e), fresh) => {
                if let Some(fresh) = fresh {
                    released.fileio = fresh;
                }
                return Err((e, released));
            }
            (Ok(Plan::Ready), fresh) => {
                if let Some(fresh) = fresh {
                    released.fileio = fresh;
                }
                None
            }
            (Ok(Plan::NeedBlocks), None) => return Err((Refusal::Invalid, released)),
            (Ok(Plan::NeedBlocks), Some(fresh)) => Some(fresh),
        };
        if let Some(fresh) = fresh {
            // Old blocks (input data not drained, or output written for
            // another layout) go; the new ones all wait for the hardware.
            self.release_all(&mut released);
            match self.direction {
                // Input: the hardware fills them all.
                Direction::In => self.queued = fresh.map(Entry::Fileio),
                // Output: free for the writer.
                Direction::Out => self.fileio = fresh,
            }
            self.fileio_scan_bytes = scan_bytes;
        }
        self.flush_bytes = flush_bytes.max(1);
        self.mode = Mode::Fileio { enabled: true };
        Ok(released)
    }

    /// The buffer is disabled. Input keeps its fileio blocks for readers to
    /// drain; output drops the data not played yet. DMABUF blocks end with
    /// [`Abort::Disabled`].
    pub fn disable(&mut self) -> Released<F, D> {
        let mut released = Released::new(Abort::Disabled);
        match &mut self.mode {
            Mode::Fileio { enabled } if self.direction == Direction::In => *enabled = false,
            Mode::Fileio { .. } => {
                self.release_all(&mut released);
                self.mode = Mode::Idle;
            }
            Mode::Dmabuf { enabled, .. } => {
                *enabled = false;
                released.queued = mem::take(&mut self.queued);
                if let Some(active) = self.active.as_mut() {
                    active.abort.get_or_insert(Abort::Disabled);
                }
                self.settle();
            }
            Mode::Idle | Mode::Dead => {}
        }
        released
    }

    /// The device is being removed: every block goes, for good.
    pub fn kill(&mut self) -> Released<F, D> {
        let mut released = Released::new(Abort::Removed);
        self.release_all(&mut released);
        self.mode = Mode::Dead;
        released
    }

    /// Queues a DMABUF block (seed or mainline ENQUEUE).
    pub fn submit_dmabuf(&mut self, block: Block<D>) -> Result<(), (Refusal, Block<D>)> {
        let refusal = match self.mode {
            Mode::Dead => Some(Refusal::Removed),
            Mode::Dmabuf { .. } => None,
            _ => Some(Refusal::Busy),
        };
        if let Some(r) = refusal.or_else(|| self.check_dmabuf(&block)) {
            return Err((r, block));
        }
        self.queued
            .push_back(Entry::Dmabuf(block))
            .map_err(|e| match e {
                Entry::Dmabuf(b) => (Refusal::Full, b),
                Entry::Fileio(_) => unreachable_entry(),
            })
    }

    fn check_dmabuf(&self, block: &Block<D>) -> Option<Refusal> {
        self.check_key(block.data.key(), block.cyclic)
    }

    fn check_key(&self, key: usize, cyclic: bool) -> Option<Refusal> {
        if self.active.is_some_and(|a| a.key == Some(key)) {
            return Some(Refusal::Busy);
        }
        let mut cyclic_queued = self.active.is_some_and(|a| a.cyclic);
        for e in self.queued.iter() {
            if let Entry::Dmabuf(b) = e {
                if b.data.key() == key {
                    return Some(Refusal::AlreadyQueued);
                }
                cyclic_queued |= b.cyclic;
            }
        }
        if cyclic && self.direction != Direction::Out {
            return Some(Refusal::Invalid);
        }
        // One cyclic block holds the output until it is aborted: nothing
        // queued after it would ever play.
        if cyclic_queued {
            return Some(Refusal::Busy);
        }
        if self.queued.len() + usize::from(self.active.is_some()) >= MAX_BLOCKS {
            return Some(Refusal::Full);
        }
        None
    }

    /// Whether a DMABUF block with `key` could be queued now (the same
    /// checks as [`Self::submit_dmabuf`], for callers that must fail before
    /// they make the block's fence).
    pub fn can_submit_key(&self, key: usize, cyclic: bool) -> Result<(), Refusal> {
        match self.mode {
            Mode::Dead => Err(Refusal::Removed),
            Mode::Dmabuf { .. } => self.check_key(key, cyclic).map_or(Ok(()), Err),
            _ => Err(Refusal::Busy),
        }
    }

    /// Takes the head block for the hardware.
    pub fn take_for_hardware(&mut self) -> Head<F, D> {
        if self.active.is_some() || !self.enabled() {
            return Head::Stalled;
        }
        let active = match self.queued.front() {
            None => return Head::Stalled,
            Some(Entry::Fileio(_)) => ActiveBlock {
                key: None,
                owner: None,
                cyclic: false,
                abort: None,
            },
            Some(Entry::Dmabuf(b)) => match b.data.readiness() {
                Readiness::Waiting => return Head::Stalled,
                Readiness::Failed => {
                    return match self.queued.pop_front() {
                        Some(Entry::Dmabuf(b)) => Head::Failed(b),
                        _ => Head::Stalled,
                    }
                }
                Readiness::Ready => ActiveBlock {
                    key: Some(b.data.key()),
                    owner: Some(b.data.owner()),
                    cyclic: b.cyclic,
                    abort: None,
                },
            },
        };
        match self.queued.pop_front() {
            Some(entry) => {
                self.active = Some(active);
                Head::Active(entry)
            }
            None => Head::Stalled,
        }
    }

    /// The hardware gives back the block it took, after moving `bytes`
    /// more of it (whole scans of `scan_bytes`).
    pub fn give_back(
        &mut self,
        mut entry: Entry<F, D>,
        bytes: usize,
        scan_bytes: usize,
    ) -> Outcome<F, D> {
        let active = self.active.take();
        if let Some(abort) = active.and_then(|a| a.abort) {
            return Outcome::Dead(entry, abort);
        }
        let (filled, size, cyclic) = match &mut entry {
            Entry::Fileio(b) => {
                b.filled += bytes;
                (b.filled, b.size, false)
            }
            Entry::Dmabuf(b) => {
                b.filled += bytes;
                (b.filled, b.size, b.cyclic)
            }
        };
        let finished = scan_bytes == 0 || filled + scan_bytes > size;
        if finished && cyclic {
            if let Entry::Dmabuf(b) = &mut entry {
                b.filled = 0;
                b.passes += 1;
            }
        }
        let flush = !finished
            && self.direction == Direction::In
            && matches!(entry, Entry::Fileio(_))
            && filled >= self.flush_bytes;
        if (finished && !cyclic) || flush {
            return self.finish(entry);
        }
        // Room: it was taken from the queue, and submits count it.
        match self.queued.push_front(entry) {
            Ok(()) => Outcome::Requeued,
            Err(entry) => Outcome::Dead(entry, Abort::Disabled),
        }
    }

    fn finish(&mut self, entry: Entry<F, D>) -> Outcome<F, D> {
        match entry {
            Entry::Dmabuf(b) => Outcome::Done(b),
            Entry::Fileio(mut b) => {
                if self.direction == Direction::In {
                    self.available += b.filled - b.consumed;
                } else {
                    b.reset();
                }
                match self.fileio.push_back(b) {
                    Ok(()) => Outcome::Ready,
                    Err(b) => Outcome::Dead(Entry::Fileio(b), Abort::Disabled),
                }
            }
        }
    }

    /// Bytes ready for read().
    pub fn available(&self) -> usize {
        self.available
    }

    /// Whether a DMABUF user exists (then read() and write() are refused).
    #[cfg(test)]
    pub fn dmabuf_in_use(&self) -> bool {
        matches!(self.mode, Mode::Dmabuf { .. })
    }

    /// Takes the oldest filled block for read().
    pub fn take_for_read(&mut self) -> Result<Option<Block<F>>, Refusal> {
        match self.mode {
            Mode::Dead => Err(Refusal::Removed),
            Mode::Dmabuf { .. } => Err(Refusal::Busy),
            Mode::Idle => Ok(None),
            Mode::Fileio { .. } => Ok(self.check_out()),
        }
    }

    /// Takes the first fileio block off the hardware for a reader or
    /// writer, stamped with the current generation.
    fn check_out(&mut self) -> Option<Block<F>> {
        let mut block = self.fileio.pop_front()?;
        block.generation = self.generation;
        self.checked_out += 1;
        Some(block)
    }

    /// Whether a block a reader or writer held still belongs here.
    fn check_in(&mut self, block: &Block<F>) -> bool {
        if !matches!(self.mode, Mode::Fileio { .. }) || block.generation != self.generation {
            return false;
        }
        self.checked_out -= 1;
        true
    }

    /// Returns a block after read() consumed `bytes` more of it: a fully
    /// read block goes back to the hardware, a partly read one stays first
    /// in line. A block the buffer has no use for any more (removed or
    /// replaced meanwhile) comes back to be freed.
    pub fn return_after_read(&mut self, mut block: Block<F>, bytes: usize) -> Option<Block<F>> {
        if !self.check_in(&block) {
            return Some(block);
        }
        self.available = self.available.saturating_sub(bytes);
        block.consumed += bytes;
        if block.consumed >= block.filled {
            block.reset();
            self.queued
                .push_back(Entry::Fileio(block))
                .err()
                .map(|e| match e {
                    Entry::Fileio(b) => b,
                    Entry::Dmabuf(_) => unreachable_entry(),
                })
        } else {
            self.fileio.push_front(block).err()
        }
    }

    /// First step of a write() with `scan_bytes` per scan: whether blocks
    /// must be allocated. Blocks made for another scan size are released
    /// by the commit (the data in them was for another layout).
    pub fn plan_write(&self, scan_bytes: usize) -> Result<Plan, Refusal> {
        match self.mode {
            Mode::Dead => Err(Refusal::Removed),
            Mode::Dmabuf { .. } => Err(Refusal::Busy),
            _ if self.direction != Direction::Out => Err(Refusal::Invalid),
            Mode::Fileio { .. } if self.fileio_scan_bytes == scan_bytes => Ok(Plan::Ready),
            // The layout cannot change while enabled (the core forbids it).
            Mode::Fileio { enabled: true } => Err(Refusal::Invalid),
            Mode::Idle | Mode::Fileio { enabled: false } => Ok(Plan::NeedBlocks),
        }
    }

    /// Installs free output blocks for `scan_bytes` before the enable,
    /// releasing blocks of another layout.
    pub fn install_out_blocks(
        &mut self,
        fresh: Ring<Block<F>, MAX_BLOCKS>,
        scan_bytes: usize,
    ) -> Result<Released<F, D>, (Refusal, Released<F, D>)> {
        let mut released = Released::new(Abort::Disabled);
        let refusal = match self.plan_write(scan_bytes) {
            Ok(Plan::NeedBlocks) => None,
            Ok(Plan::Ready) => Some(Refusal::Busy),
            Err(e) => Some(e),
        };
        if let Some(e) = refusal {
            released.fileio = fresh;
            return Err((e, released));
        }
        self.release_all(&mut released);
        self.fileio = fresh;
        self.fileio_scan_bytes = scan_bytes;
        self.mode = Mode::Fileio { enabled: false };
        Ok(released)
    }

    /// Takes a free block to write into.
    pub fn take_for_write(&mut self, scan_bytes: usize) -> Result<Option<Block<F>>, Refusal> {
        match self.plan_write(scan_bytes)? {
            Plan::NeedBlocks => Ok(None),
            Plan::Ready => Ok(self.check_out()),
        }
    }

    /// Queues a block write() put `bytes` into (or puts it back, when
    /// empty). A block the buffer has no use for any more comes back to be
    /// freed.
    pub fn submit_written(&mut self, mut block: Block<F>, bytes: usize) -> Option<Block<F>> {
        if !self.check_in(&block) {
            return Some(block);
        }
        if bytes == 0 {
            return self.fileio.push_front(block).err();
        }
        block.size = bytes;
        block.filled = 0;
        self.queued
            .push_back(Entry::Fileio(block))
            .err()
            .map(|e| match e {
                Entry::Fileio(b) => b,
                Entry::Dmabuf(_) => unreachable_entry(),
            })
    }

    /// Whether write() would find a free block now.
    pub fn has_space(&self) -> bool {
        !self.fileio.is_empty()
    }
}

/// A refused push hands back the entry that was pushed: the same kind.
fn unreachable_entry() -> ! {
    unreachable!("a ring hands back the entry that was pushed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Buf {
        key: usize,
        owner: Owner,
        ready: Readiness,
    }

    impl DmabufPayload for Buf {
        fn key(&self) -> usize {
            self.key
        }
        fn owner(&self) -> Owner {
            self.owner
        }
        fn readiness(&self) -> Readiness {
            self.ready
        }
    }

    type E = Engine<Vec<u8>, Buf>;

    fn seed(key: usize, size: usize) -> Block<Buf> {
        Block::new(
            Buf {
                key,
                owner: Owner::Seed,
                ready: Readiness::Ready,
            },
            size,
        )
    }

    fn mainline(key: usize, size: usize) -> Block<Buf> {
        Block::new(
            Buf {
                key,
                owner: Owner::Mainline,
                ready: Readiness::Ready,
            },
            size,
        )
    }

    fn kernel_blocks(n: usize, size: usize) -> Ring<Block<Vec<u8>>, MAX_BLOCKS> {
        let mut r = Ring::default();
        for _ in 0..n {
            r.push_back(Block::new(vec![0; size], size)).unwrap();
        }
        r
    }

    /// Runs the hardware over `bytes` of the head block.
    fn run(e: &mut E, bytes: usize, scan: usize) -> Outcome<Vec<u8>, Buf> {
        match e.take_for_hardware() {
            Head::Active(entry) => e.give_back(entry, bytes, scan),
            _ => panic!("no ready block"),
        }
    }

    #[test]
    fn geometry() {
        let g = |l, w| FileioGeometry::new(l, w).map(|g| (g.blocks, g.block_scans));
        assert_eq!(g(0, 1), None);
        assert_eq!(g(4096, 1), Some((32, 128)));
        assert_eq!(g(4096, 500), Some((8, 500)));
        assert_eq!(g(4096, 4096), Some((2, 2048)));
        assert_eq!(g(1, 1), Some((1, 1)));
        assert_eq!(g(65536, 4096), Some((16, 4096)));
        // Never more blocks than a ring holds.
        assert_eq!(g(1 << 22, 1), Some((32, 1 << 17)));
    }

    #[test]
    fn ring_fifo_front_and_extract() {
        let mut r: Ring<u32, 4> = Ring::default();
        assert!(r.pop_front().is_none());
        r.push_back(1).unwrap();
        r.push_back(2).unwrap();
        r.push_front(0).unwrap();
        r.push_back(3).unwrap();
        assert_eq!(r.push_back(9), Err(9));
        r.iter_mut().for_each(|v| *v *= 10);
        let odd = r.extract(|v| v % 20 == 10);
        assert_eq!(odd.collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![0, 20]);
        // Wrapped around the end of the slots.
        let mut w: Ring<u32, 3> = Ring::default();
        for v in 0..3 {
            w.push_back(v).unwrap();
        }
        w.pop_front();
        w.push_back(3).unwrap();
        w.iter_mut().for_each(|v| *v += 1);
        assert_eq!(w.collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn fileio_input_round_trip_and_drain_after_disable() {
        let mut e = E::new(Direction::In);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        assert!(e.enable(None, 2, 4).is_err());
        e.enable(Some(kernel_blocks(2, 8)), 2, usize::MAX)
            .ok()
            .unwrap();
        assert!(matches!(run(&mut e, 6, 2), Outcome::Requeued));
        assert_eq!(e.available(), 0);
        assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        assert_eq!(e.available(), 8);
        assert!(e.disable().is_empty());
        // Disabled input: still readable, and no more hardware.
        let b = e.take_for_read().unwrap().unwrap();
        assert_eq!(b.filled, 8);
        assert!(e.return_after_read(b, 8).is_none());
        assert_eq!(e.available(), 0);
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn fileio_input_flushes_at_the_watermark() {
        let mut e = E::new(Direction::In);
        e.enable(Some(kernel_blocks(2, 8)), 2, 4).ok().unwrap();
        assert!(matches!(run(&mut e, 2, 2), Outcome::Requeued));
        assert_eq!(e.available(), 0);
        assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        assert_eq!(e.available(), 4);
        let b = e.take_for_read().unwrap().unwrap();
        assert_eq!((b.filled, b.size), (4, 8));
    }

    #[test]
    fn dmabuf_user_and_fileio_exclude_each_other() {
        let mut e = E::new(Direction::In);
        e.enable(Some(kernel_blocks(2, 8)), 2, 8).ok().unwrap();
        assert_eq!(e.open_chardev().err(), Some(Refusal::Busy));
        assert_eq!(e.attach().err(), Some(Refusal::Busy));
        let _ = run(&mut e, 8, 2);
        e.disable();
        // Attach on a disabled fileio buffer releases its blocks; a reader
        // that held one gets it back to free.
        let b = e.take_for_read().unwrap().unwrap();
        let released = e.attach().ok().unwrap();
        assert_eq!(released.queued.len() + released.fileio.len(), 1);
        assert!(e.return_after_read(b, 8).is_some());
        assert!(matches!(e.take_for_read(), Err(Refusal::Busy)));
        assert_eq!(e.open_chardev().ok().map(|r| r.is_empty()), Some(true));
        assert_eq!(e.open_chardev().err(), Some(Refusal::Busy));
    }

    #[test]
    fn enable_after_a_dmabuf_user_came_releases_fresh_blocks() {
        // Defect: an enable allocated, then a DMABUF user came meanwhile.
        let mut e = E::new(Direction::Out);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        e.open_chardev().ok().unwrap();
        let released = e.enable(Some(kernel_blocks(3, 8)), 2, 8).ok().unwrap();
        assert_eq!(released.fileio.len(), 3);
        assert!(e.enabled());
        assert!(e.dmabuf_in_use());
        assert!(matches!(e.take_for_write(2), Err(Refusal::Busy)));
    }

    #[test]
    fn output_written_before_enable_plays_unless_layout_changed() {
        let mut e = E::new(Direction::Out);
        assert_eq!(e.plan_write(2), Ok(Plan::NeedBlocks));
        e.install_out_blocks(kernel_blocks(2, 4), 2).ok().unwrap();
        let b = e.take_for_write(2).unwrap().unwrap();
        assert!(e.submit_written(b, 4).is_none());
        assert_eq!(e.plan_enable(2), Ok(Plan::Ready));
        // The layout grew: the written data was for another one.
        assert_eq!(e.plan_write(16), Ok(Plan::NeedBlocks));
        assert!(matches!(e.take_for_write(16), Ok(None)));
        let released = e.install_out_blocks(kernel_blocks(2, 16), 16).ok().unwrap();
        assert_eq!(released.queued.len() + released.fileio.len(), 2);
        assert_eq!(e.plan_enable(16), Ok(Plan::Ready));
        e.enable(None, 16, 16).ok().unwrap();
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn output_disable_drops_unplayed_data_and_late_writer_blocks() {
        let mut e = E::new(Direction::Out);
        e.install_out_blocks(kernel_blocks(2, 4), 2).ok().unwrap();
        e.enable(None, 2, 4).ok().unwrap();
        let held = e.take_for_write(2).unwrap().unwrap();
        let b = e.take_for_write(2).unwrap().unwrap();
        assert!(e.submit_written(b, 4).is_none());
        let released = e.disable();
        assert_eq!(released.queued.len(), 1);
        assert_eq!(e.mode(), Mode::Idle);
        // A writer that held a block across the disable gets it back to free.
        assert!(e.submit_written(held, 4).is_some());
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn reader_holding_a_block_across_re_enable_gives_it_back_to_free() {
        let mut e = E::new(Direction::In);
        e.enable(Some(kernel_blocks(2, 4)), 2, 4).ok().unwrap();
        let _ = run(&mut e, 4, 2);
        let held = e.take_for_read().unwrap().unwrap();
        e.disable();
        let released = e.enable(Some(kernel_blocks(2, 4)), 2, 4).ok().unwrap();
        assert_eq!(released.queued.len() + released.fileio.len(), 1);
        // The old block does not join the new set.
        assert!(e.return_after_read(held, 4).is_some());
        let mut n = 0;
        while let Head::Active(entry) = e.take_for_hardware() {
            n += 1;
            assert!(matches!(e.give_back(entry, 4, 2), Outcome::Ready));
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn re_enqueue_of_queued_or_active_block() {
        let mut e = E::new(Direction::In);
        e.open_chardev().ok().unwrap();
        e.submit_dmabuf(seed(1, 8)).ok().unwrap();
        assert_eq!(
            e.submit_dmabuf(seed(1, 8)).err().map(|x| x.0),
            Some(Refusal::AlreadyQueued)
        );
        e.enable(None, 2, 8).ok().unwrap();
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        assert_eq!(
            e.submit_dmabuf(seed(1, 8)).err().map(|x| x.0),
            Some(Refusal::Busy)
        );
        assert!(matches!(e.give_back(entry, 8, 2), Outcome::Done(_)));
        e.submit_dmabuf(seed(1, 8)).ok().unwrap();
    }

    #[test]
    fn queue_room_counts_the_active_block() {
        let mut e = E::new(Direction::In);
        e.attach().ok().unwrap();
        e.enable(None, 2, 8).ok().unwrap();
        for k in 0..MAX_BLOCKS {
            e.submit_dmabuf(mainline(k, 8)).ok().unwrap();
        }
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        assert_eq!(
            e.submit_dmabuf(mainline(99, 8)).err().map(|x| x.0),
            Some(Refusal::Full)
        );
        assert!(matches!(e.give_back(entry, 2, 2), Outcome::Requeued));
    }

    #[test]
    fn close_cancels_own_blocks_only() {
        let mut e = E::new(Direction::In);
        e.open_chardev().ok().unwrap();
        e.attach().ok().unwrap();
        e.submit_dmabuf(mainline(1, 8)).ok().unwrap();
        e.submit_dmabuf(seed(2, 8)).ok().unwrap();
        e.submit_dmabuf(mainline(3, 8)).ok().unwrap();
        let released = e.close_chardev();
        assert_eq!(released.abort, Abort::Closed);
        let keys: Vec<usize> = released
            .queued
            .map(|e| match e {
                Entry::Dmabuf(b) => b.data.key,
                Entry::Fileio(_) => panic!(),
            })
            .collect();
        assert_eq!(keys, vec![2]);
        assert!(e.dmabuf_in_use());
        let released = e.disable();
        assert_eq!(released.queued.len(), 2);
        e.detach();
        assert_eq!(e.mode(), Mode::Idle);
    }

    #[test]
    fn abort_while_active_completes_on_give_back() {
        let mut e = E::new(Direction::In);
        e.open_chardev().ok().unwrap();
        e.submit_dmabuf(seed(7, 8)).ok().unwrap();
        e.enable(None, 2, 8).ok().unwrap();
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        let released = e.kill();
        assert!(released.queued.is_empty());
        assert!(matches!(
            e.give_back(entry, 8, 2),
            Outcome::Dead(_, Abort::Removed)
        ));
        assert_eq!(e.open_chardev().err(), Some(Refusal::Removed));
        assert_eq!(
            e.submit_dmabuf(seed(1, 8)).err().map(|x| x.0),
            Some(Refusal::Removed)
        );
    }

    #[test]
    fn cyclic_block_repeats_until_abort_and_excludes_others() {
        let mut e = E::new(Direction::Out);
        e.attach().ok().unwrap();
        e.enable(None, 2, 4).ok().unwrap();
        let mut input = E::new(Direction::In);
        input.attach().ok().unwrap();
        assert_eq!(input.can_submit_key(1, true), Err(Refusal::Invalid));
        e.submit_dmabuf(mainline(1, 4).cyclic()).ok().unwrap();
        for _ in 0..3 {
            assert!(matches!(run(&mut e, 4, 2), Outcome::Requeued));
        }
        assert_eq!(
            e.submit_dmabuf(mainline(2, 4)).err().map(|x| x.0),
            Some(Refusal::Busy)
        );
        let released = e.disable();
        let Some(Entry::Dmabuf(b)) = released.queued.into_iter().next() else {
            panic!()
        };
        assert_eq!(b.passes, 3);
        // A cyclic block may follow others, but not another cyclic one.
        e.enable(None, 2, 4).ok().unwrap();
        e.submit_dmabuf(mainline(3, 4)).ok().unwrap();
        e.submit_dmabuf(mainline(4, 4).cyclic()).ok().unwrap();
        assert_eq!(
            e.submit_dmabuf(mainline(5, 4).cyclic()).err().map(|x| x.0),
            Some(Refusal::Busy)
        );
        assert!(matches!(run(&mut e, 4, 2), Outcome::Done(_)));
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        // The cyclic block is active: still one only.
        assert_eq!(
            e.submit_dmabuf(mainline(5, 4).cyclic()).err().map(|x| x.0),
            Some(Refusal::Busy)
        );
        assert!(matches!(e.give_back(entry, 4, 2), Outcome::Requeued));
    }

    #[test]
    fn unready_head_stalls_and_failed_head_completes() {
        let mut e = E::new(Direction::Out);
        e.open_chardev().ok().unwrap();
        e.enable(None, 2, 4).ok().unwrap();
        let mut b = seed(1, 4);
        b.data.ready = Readiness::Waiting;
        e.submit_dmabuf(b).ok().unwrap();
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
        let mut b = seed(2, 4);
        b.data.ready = Readiness::Failed;
        let mut e2 = E::new(Direction::Out);
        e2.open_chardev().ok().unwrap();
        e2.enable(None, 2, 4).ok().unwrap();
        e2.submit_dmabuf(b).ok().unwrap();
        assert!(matches!(e2.take_for_hardware(), Head::Failed(_)));
        assert!(matches!(e2.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn mode_settles_to_idle_when_the_last_user_leaves() {
        let mut e = E::new(Direction::In);
        e.attach().ok().unwrap();
        e.attach().ok().unwrap();
        e.open_chardev().ok().unwrap();
        e.enable(None, 2, 4).ok().unwrap();
        e.detach();
        e.detach();
        e.close_chardev();
        assert!(e.dmabuf_in_use());
        e.disable();
        assert_eq!(e.mode(), Mode::Idle);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
    }
}
