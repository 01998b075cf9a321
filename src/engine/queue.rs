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
//! Every operation that removes blocks moves them to the engine's
//! graveyard; the caller takes them out one at a time with
//! [`Engine::reap`] once it dropped its lock, and frees them or signals
//! their fences then. (One at a time: a set of blocks is too big to move
//! around on a kernel stack.) Nothing is dropped here, and nothing is
//! silently lost: an operation that cannot find room fails.

use core::{marker::PhantomData, ops::DerefMut};

/// Most blocks a queue holds at once.
pub const MAX_BLOCKS: usize = 32;

/// Where a ring keeps its slots: memory the caller allocated (a `KVec` in
/// the kernel), so that no ring, nor the engine, is ever built or moved on
/// a kernel stack.
pub trait Slots<T>: DerefMut<Target = [Option<T>]> {}

impl<T, S: DerefMut<Target = [Option<T>]>> Slots<T> for S {}

/// A fixed-capacity FIFO that never allocates (usable with IRQs off).
/// Its capacity is the number of slots it was given.
pub struct Ring<T, S: Slots<T>> {
    slots: S,
    head: usize,
    len: usize,
    _elements: PhantomData<T>,
}

impl<T, S: Slots<T>> Ring<T, S> {
    /// An empty ring over `slots` (what they held is dropped).
    pub fn new(mut slots: S) -> Self {
        slots.iter_mut().for_each(|s| *s = None);
        Self {
            slots,
            head: 0,
            len: 0,
            _elements: PhantomData,
        }
    }

    /// Most elements it holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of the `i`-th element (`i <= capacity`). No division: a
    /// run-time divisor would bring a panic path objtool does not know.
    fn slot(&self, i: usize) -> usize {
        let at = self.head.wrapping_add(i);
        if at >= self.capacity() {
            at.wrapping_sub(self.capacity())
        } else {
            at
        }
    }

    /// Appends at the tail, or hands the element back when full.
    pub fn push_back(&mut self, value: T) -> Result<(), T> {
        if self.len == self.capacity() {
            return Err(value);
        }
        let i = self.slot(self.len);
        self.slots[i] = Some(value);
        self.len += 1;
        Ok(())
    }

    /// Puts an element back at the head, or hands it back when full.
    pub fn push_front(&mut self, value: T) -> Result<(), T> {
        if self.len == self.capacity() {
            return Err(value);
        }
        self.head = self.slot(self.capacity().wrapping_sub(1));
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
        self.head = self.slot(1);
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
        (0..self.len).filter_map(move |i| self.slots[self.slot(i)].as_ref())
    }

    /// Takes elements from `source` while there is room (no more).
    pub fn fill_from(&mut self, source: &mut impl Iterator<Item = T>) {
        while self.len < self.capacity() {
            let Some(v) = source.next() else { break };
            let i = self.slot(self.len);
            self.slots[i] = Some(v);
            self.len += 1;
        }
    }

    /// Moves elements from the head into `dst`, mapped by `f`, while `dst`
    /// has room; the others stay.
    pub fn drain_into<U, D: Slots<U>>(&mut self, dst: &mut Ring<U, D>, mut f: impl FnMut(T) -> U) {
        while self.len > 0 && dst.len < dst.capacity() {
            if let Some(v) = self.pop_front() {
                let i = dst.slot(dst.len);
                dst.slots[i] = Some(f(v));
                dst.len += 1;
            }
        }
    }

    /// Moves the elements that satisfy `pred` into `dst`, mapped by `f`,
    /// while `dst` has room; the others stay, in order.
    pub fn drain_matching_into<U, D: Slots<U>>(
        &mut self,
        dst: &mut Ring<U, D>,
        mut pred: impl FnMut(&T) -> bool,
        mut f: impl FnMut(T) -> U,
    ) {
        for _ in 0..self.len {
            let Some(v) = self.pop_front() else { break };
            if pred(&v) && dst.len < dst.capacity() {
                let i = dst.slot(dst.len);
                dst.slots[i] = Some(f(v));
                dst.len += 1;
            } else {
                // Room: it was just taken out.
                let i = self.slot(self.len);
                self.slots[i] = Some(v);
                self.len += 1;
            }
        }
    }
    /// Removes the first element `take` accepts (it returns what it keeps
    /// of it, or hands the element back); the others stay, in order.
    pub fn take_first<U>(&mut self, mut take: impl FnMut(T) -> Result<U, T>) -> Option<U> {
        let mut taken = None;
        for _ in 0..self.len {
            let Some(v) = self.pop_front() else { break };
            let v = if taken.is_none() {
                match take(v) {
                    Ok(u) => {
                        taken = Some(u);
                        continue;
                    }
                    Err(v) => v,
                }
            } else {
                v
            };
            // Room: it was just taken out.
            let i = self.slot(self.len);
            self.slots[i] = Some(v);
            self.len += 1;
        }
        taken
    }
}

impl<T, S: Slots<T>> Iterator for Ring<T, S> {
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

/// Room of the graveyard: every block the engine can hold at once.
pub const GRAVE_BLOCKS: usize = 2 * MAX_BLOCKS;

/// The memory of an engine's rings, allocated by its owner: the queue and
/// the fileio side take [`MAX_BLOCKS`] slots, the graveyard
/// [`GRAVE_BLOCKS`].
pub trait EngineSlots<F, D> {
    /// Slots of the hardware queue.
    type Queued: Slots<Entry<F, D>>;
    /// Slots of the fileio side.
    type Fileio: Slots<Block<F>>;
    /// Slots of the graveyard.
    type Graveyard: Slots<(Entry<F, D>, Abort)>;
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
/// - Blocks in `graveyard` belong to no mode: only [`Engine::reap`] takes
///   them out.
/// - At most one cyclic block, and then it is the only DMABUF block.
pub struct Engine<F, D, M: EngineSlots<F, D>> {
    direction: Direction,
    mode: Mode,
    queued: Ring<Entry<F, D>, M::Queued>,
    active: Option<ActiveBlock>,
    /// Fileio blocks off the hardware: filled ones for the reader (input),
    /// free ones for the writer (output).
    fileio: Ring<Block<F>, M::Fileio>,
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
    /// Removed blocks, with why, waiting for [`Engine::reap`].
    graveyard: Ring<(Entry<F, D>, Abort), M::Graveyard>,
    /// A cyclic block another block ended: it never completes, it ends
    /// with the next abort (as mainline's, which has no completion).
    parked: Option<Block<D>>,
}

impl<F, D: DmabufPayload, M: EngineSlots<F, D>> Engine<F, D, M> {
    /// An idle buffer of `direction`, with its rings' memory (see
    /// [`EngineSlots`]).
    pub fn new(
        direction: Direction,
        queued: M::Queued,
        fileio: M::Fileio,
        graveyard: M::Graveyard,
    ) -> Self {
        Self {
            direction,
            mode: Mode::Idle,
            queued: Ring::new(queued),
            active: None,
            fileio: Ring::new(fileio),
            checked_out: 0,
            available: 0,
            flush_bytes: usize::MAX,
            fileio_scan_bytes: 0,
            generation: 0,
            graveyard: Ring::new(graveyard),
            parked: None,
        }
    }

    /// Takes out one removed block, with why it was removed: to be freed
    /// (fileio) or completed with the abort's error (DMABUF), with no lock
    /// held. After a removal, whatever did not fit the graveyard is taken
    /// from where it was.
    pub fn reap(&mut self) -> Option<(Entry<F, D>, Abort)> {
        if let Some(dead) = self.graveyard.pop_front() {
            return Some(dead);
        }
        if self.mode != Mode::Dead {
            return None;
        }
        if let Some(block) = self.parked.take() {
            return Some((Entry::Dmabuf(block), Abort::Removed));
        }
        if let Some(entry) = self.queued.pop_front() {
            return Some((entry, Abort::Removed));
        }
        Some((Entry::Fileio(self.fileio.pop_front()?), Abort::Removed))
    }

    /// Takes out one removed fileio block, to be freed with no lock held;
    /// removed DMABUF blocks stay for the [`Self::reap`] of whoever removed
    /// them. For callers under a lock that completing a DMABUF block could
    /// take again.
    pub fn reap_fileio(&mut self) -> Option<Block<F>> {
        self.graveyard.take_first(|dead| match dead {
            (Entry::Fileio(block), _) => Ok(block),
            other => Err(other),
        })
    }

    /// Whether the graveyard has room for every block of the queue and the
    /// fileio side, so that they can be removed at once.
    fn room_to_bury_all(&self) -> bool {
        self.graveyard.len() + self.queued.len() + self.fileio.len() <= self.graveyard.capacity()
    }

    /// Moves every waiting DMABUF block, and a parked cyclic one, to the
    /// graveyard, with `abort`.
    fn bury_queued(&mut self, abort: Abort) {
        self.bury_parked(abort);
        self.queued.drain_into(&mut self.graveyard, |e| (e, abort));
    }

    /// Moves a parked cyclic block to the graveyard (where a removal
    /// leaves it if full, [`Self::reap`] finds it).
    fn bury_parked(&mut self, abort: Abort) {
        if let Some(block) = self.parked.take() {
            if let Err((Entry::Dmabuf(block), _)) =
                self.graveyard.push_back((Entry::Dmabuf(block), abort))
            {
                self.parked = Some(block);
            }
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

    /// Moves every block to the graveyard (what does not fit stays, for a
    /// dead buffer's [`Self::reap`]); the active one ends when given back.
    fn bury_all(&mut self, abort: Abort) {
        self.bury_queued(abort);
        self.fileio
            .drain_into(&mut self.graveyard, |b| (Entry::Fileio(b), abort));
        self.available = 0;
        self.fileio_scan_bytes = 0;
        self.checked_out = 0;
        self.generation = self.generation.wrapping_add(1);
        if let Some(active) = self.active.as_mut() {
            active.abort.get_or_insert(abort);
        }
    }

    /// A DMABUF user arrives: from `Idle` or a disabled `Fileio` buffer
    /// (whose blocks are released), the buffer turns `Dmabuf`.
    fn dmabuf_user(&mut self, chardev: bool) -> Result<(), Refusal> {
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
                return Ok(());
            }
            Mode::Idle | Mode::Fileio { enabled: false } => {}
        }
        if !self.room_to_bury_all() {
            return Err(Refusal::Busy);
        }
        self.bury_all(Abort::Disabled);
        self.mode = Mode::Dmabuf {
            enabled: false,
            chardev,
            attachments: usize::from(!chardev),
        };
        Ok(())
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
    pub fn open_chardev(&mut self) -> Result<(), Refusal> {
        self.dmabuf_user(true)
    }

    /// The seed char device was closed: the blocks it queued end with
    /// [`Abort::Closed`], the others stay.
    pub fn close_chardev(&mut self) {
        if let Mode::Dmabuf { chardev, .. } = &mut self.mode {
            *chardev = false;
            // Room: the graveyard takes a whole queue (see `check_key`).
            self.queued.drain_matching_into(
                &mut self.graveyard,
                |e| matches!(e, Entry::Dmabuf(b) if b.data.owner() == Owner::Seed),
                |e| (e, Abort::Closed),
            );
            if self
                .parked
                .as_ref()
                .is_some_and(|b| b.data.owner() == Owner::Seed)
            {
                self.bury_parked(Abort::Closed);
            }
            if let Some(active) = self.active.as_mut() {
                if active.owner == Some(Owner::Seed) {
                    active.abort.get_or_insert(Abort::Closed);
                }
            }
            self.settle();
        }
    }

    /// A DMABUF is being attached (mainline API).
    pub fn attach(&mut self) -> Result<(), Refusal> {
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
    /// blocks are then left to the caller); otherwise a fileio session with
    /// the blocks already there (output, see [`Self::plan_enable`]) or the
    /// ones taken from `fresh`. `flush_bytes` is the input watermark in
    /// bytes.
    ///
    /// `fresh` is `None` when [`Self::plan_enable`] said [`Plan::Ready`].
    /// If blocks are needed by now (the DMABUF users left, or took the
    /// written output blocks, since that plan), nothing is committed and
    /// the answer is [`Plan::NeedBlocks`]: allocate and commit again.
    /// [`Plan::Ready`] means enabled.
    pub fn enable(
        &mut self,
        fresh: Option<&mut impl Iterator<Item = Block<F>>>,
        scan_bytes: usize,
        flush_bytes: usize,
    ) -> Result<Plan, Refusal> {
        if let Mode::Dmabuf { enabled, .. } = &mut self.mode {
            *enabled = true;
            return Ok(Plan::Ready);
        }
        if self.plan_enable(scan_bytes)? == Plan::NeedBlocks {
            let Some(fresh) = fresh else {
                return Ok(Plan::NeedBlocks);
            };
            if !self.room_to_bury_all() {
                return Err(Refusal::Busy);
            }
            // Old blocks (input data not drained, or output written for
            // another layout) go.
            self.bury_all(Abort::Disabled);
            self.install(fresh);
            if self.queued.is_empty() && self.fileio.is_empty() {
                return Err(Refusal::Invalid);
            }
            self.fileio_scan_bytes = scan_bytes;
        }
        self.flush_bytes = flush_bytes.max(1);
        self.mode = Mode::Fileio { enabled: true };
        Ok(Plan::Ready)
    }

    /// Takes new fileio blocks from `fresh`, as many as a ring holds:
    /// input blocks all wait for the hardware, output blocks are free for
    /// the writer.
    fn install(&mut self, fresh: &mut impl Iterator<Item = Block<F>>) {
        match self.direction {
            Direction::In => self
                .queued
                .fill_from(&mut fresh.by_ref().map(Entry::Fileio)),
            Direction::Out => self.fileio.fill_from(fresh),
        }
    }

    /// The buffer is disabled. Input keeps its fileio blocks for readers to
    /// drain; output drops the data not played yet. DMABUF blocks end with
    /// [`Abort::Disabled`]. Never refused: what the graveyard cannot take
    /// now stays queued, for the next disable or removal.
    pub fn disable(&mut self) {
        match &mut self.mode {
            Mode::Fileio { enabled } if self.direction == Direction::In => *enabled = false,
            Mode::Fileio { .. } => {
                self.bury_all(Abort::Disabled);
                self.mode = Mode::Idle;
            }
            Mode::Dmabuf { enabled, .. } => {
                *enabled = false;
                self.bury_queued(Abort::Disabled);
                if let Some(active) = self.active.as_mut() {
                    active.abort.get_or_insert(Abort::Disabled);
                }
                self.settle();
            }
            Mode::Idle | Mode::Dead => {}
        }
    }

    /// The device is being removed: every block goes, for good.
    pub fn kill(&mut self) {
        self.bury_all(Abort::Removed);
        self.mode = Mode::Dead;
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
        if self.parked.as_ref().is_some_and(|b| b.data.key() == key) {
            return Some(Refusal::Busy);
        }
        let mut cyclic_queued = self.active.is_some_and(|a| a.cyclic) || self.parked.is_some();
        for (i, e) in self.queued.iter().enumerate() {
            if let Entry::Dmabuf(b) = e {
                if b.data.key() == key {
                    // The head the hardware has started on is active
                    // between two of its runs too.
                    let started = i == 0 && (b.filled > 0 || b.passes > 0);
                    return Some(if started {
                        Refusal::Busy
                    } else {
                        Refusal::AlreadyQueued
                    });
                }
                cyclic_queued |= b.cyclic;
            }
        }
        if cyclic && self.direction != Direction::Out {
            return Some(Refusal::Invalid);
        }
        // One cyclic block at a time, until it is aborted (as mainline).
        if cyclic && cyclic_queued {
            return Some(Refusal::Busy);
        }
        if self.queued.len() + usize::from(self.active.is_some()) >= self.queued.capacity() {
            return Some(Refusal::Full);
        }
        // Room for the whole queue in the graveyard, for a disable.
        let parked = usize::from(self.parked.is_some());
        if self.graveyard.len() + self.queued.len() + parked >= self.graveyard.capacity() {
            return Some(Refusal::Busy);
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
            if let Entry::Dmabuf(mut b) = entry {
                b.filled = 0;
                b.passes += 1;
                // Another block ends the repetition after this pass; the
                // cyclic block stays with the hardware until an abort.
                if !self.queued.is_empty() {
                    self.parked = Some(b);
                    return Outcome::Requeued;
                }
                entry = Entry::Dmabuf(b);
            }
        }
        // A partly filled input block goes to the reader early only when
        // that makes the watermark reachable: otherwise blocks fill whole,
        // and the buffer holds its length whatever the watermark.
        let flush = !finished
            && self.direction == Direction::In
            && matches!(entry, Entry::Fileio(_))
            && self.available < self.flush_bytes
            && self.available + filled >= self.flush_bytes;
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
    /// taken from `fresh`; blocks of another layout go.
    pub fn install_out_blocks(
        &mut self,
        fresh: &mut impl Iterator<Item = Block<F>>,
        scan_bytes: usize,
    ) -> Result<(), Refusal> {
        match self.plan_write(scan_bytes)? {
            Plan::Ready => return Err(Refusal::Busy),
            Plan::NeedBlocks if !self.room_to_bury_all() => return Err(Refusal::Busy),
            Plan::NeedBlocks => {}
        }
        self.bury_all(Abort::Disabled);
        self.install(fresh);
        self.fileio_scan_bytes = scan_bytes;
        self.mode = Mode::Fileio { enabled: false };
        Ok(())
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

    struct VecSlots;

    impl<F, D> EngineSlots<F, D> for VecSlots {
        type Queued = Vec<Option<Entry<F, D>>>;
        type Fileio = Vec<Option<Block<F>>>;
        type Graveyard = Vec<Option<(Entry<F, D>, Abort)>>;
    }

    fn slots<T>(n: usize) -> Vec<Option<T>> {
        (0..n).map(|_| None).collect()
    }

    type E = Engine<Vec<u8>, Buf, VecSlots>;

    fn engine(direction: Direction) -> E {
        E::new(
            direction,
            slots(MAX_BLOCKS),
            slots(MAX_BLOCKS),
            slots(GRAVE_BLOCKS),
        )
    }

    fn ring<T>(n: usize) -> Ring<T, Vec<Option<T>>> {
        Ring::new(slots(n))
    }

    fn buf(key: usize, owner: Owner, size: usize) -> Block<Buf> {
        let ready = Readiness::Ready;
        Block::new(Buf { key, owner, ready }, size)
    }

    fn seed(key: usize, size: usize) -> Block<Buf> {
        buf(key, Owner::Seed, size)
    }

    fn mainline(key: usize, size: usize) -> Block<Buf> {
        buf(key, Owner::Mainline, size)
    }

    type Blocks = std::vec::IntoIter<Block<Vec<u8>>>;

    fn kernel_blocks(n: usize, size: usize) -> Blocks {
        (0..n)
            .map(|_| Block::new(vec![0; size], size))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Everything removed so far: (DMABUF keys, fileio blocks, aborts).
    fn reap(e: &mut E) -> (Vec<usize>, usize, Vec<Abort>) {
        let (mut keys, mut fileio, mut aborts) = (Vec::new(), 0, Vec::new());
        while let Some((entry, abort)) = e.reap() {
            match entry {
                Entry::Dmabuf(b) => keys.push(b.data.key),
                Entry::Fileio(_) => fileio += 1,
            }
            aborts.push(abort);
        }
        (keys, fileio, aborts)
    }

    /// Runs the hardware over `bytes` of the head block.
    fn run(e: &mut E, bytes: usize, scan: usize) -> Outcome<Vec<u8>, Buf> {
        match e.take_for_hardware() {
            Head::Active(entry) => e.give_back(entry, bytes, scan),
            _ => panic!("no ready block"),
        }
    }

    fn refused(r: Result<(), (Refusal, Block<Buf>)>) -> Option<Refusal> {
        r.err().map(|(r, _)| r)
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
    fn ring_fifo_front_extract_and_moves() {
        let mut r = ring::<u32>(4);
        assert!(r.pop_front().is_none());
        r.push_back(1).unwrap();
        r.push_back(2).unwrap();
        r.push_front(0).unwrap();
        r.push_back(3).unwrap();
        assert_eq!(r.push_back(9), Err(9));
        let mut odd = ring::<u32>(4);
        r.drain_matching_into(&mut odd, |v| v % 2 == 1, |v| v * 10);
        assert_eq!(odd.collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![0, 2]);
        // Wrapped around the end of the slots.
        let mut w = ring::<u32>(3);
        for v in 1..4 {
            w.push_back(v).unwrap();
        }
        w.pop_front();
        w.push_back(4).unwrap();
        // Moves stop when the destination is full; the rest stays.
        let mut small = ring::<u32>(2);
        w.drain_into(&mut small, |v| v * 2);
        assert_eq!(small.iter().copied().collect::<Vec<_>>(), vec![4, 6]);
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), vec![4]);
        let mut source = vec![7, 8, 9].into_iter();
        let mut three = ring::<u32>(3);
        three.push_back(1).unwrap();
        three.fill_from(&mut source);
        assert_eq!(three.collect::<Vec<_>>(), vec![1, 7, 8]);
        assert_eq!(source.next(), Some(9));
    }

    #[test]
    fn fileio_input_round_trip_and_drain_after_disable() {
        let mut e = engine(Direction::In);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(0, 8)), 2, 4),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 8)), 2, usize::MAX),
            Ok(Plan::Ready)
        );
        assert!(matches!(run(&mut e, 6, 2), Outcome::Requeued));
        assert_eq!(e.available(), 0);
        assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        assert_eq!(e.available(), 8);
        e.disable();
        assert!(e.reap().is_none());
        // Disabled input: still readable, and no more hardware.
        let b = e.take_for_read().unwrap().unwrap();
        assert_eq!(b.filled, 8);
        assert!(e.return_after_read(b, 8).is_none());
        assert_eq!(e.available(), 0);
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn fileio_input_flushes_at_the_watermark() {
        let mut e = engine(Direction::In);
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 8)), 2, 4),
            Ok(Plan::Ready)
        );
        assert!(matches!(run(&mut e, 2, 2), Outcome::Requeued));
        assert_eq!(e.available(), 0);
        assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        assert_eq!(e.available(), 4);
        let b = e.take_for_read().unwrap().unwrap();
        assert_eq!((b.filled, b.size), (4, 8));
    }

    #[test]
    fn flushing_for_the_watermark_does_not_shrink_the_buffer() {
        // Watermark 1 scan: the first scan is handed over at once; with
        // it unread, later blocks fill whole.
        let mut e = engine(Direction::In);
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(4, 8)), 2, 2),
            Ok(Plan::Ready)
        );
        assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        for _ in 0..3 {
            for _ in 0..3 {
                assert!(matches!(run(&mut e, 2, 2), Outcome::Requeued));
            }
            assert!(matches!(run(&mut e, 2, 2), Outcome::Ready));
        }
        assert_eq!(e.available(), 2 + 3 * 8);
    }

    #[test]
    fn enable_takes_no_more_blocks_than_a_ring_holds() {
        let mut e = engine(Direction::In);
        let mut fresh = kernel_blocks(MAX_BLOCKS + 3, 4);
        assert_eq!(e.enable(Some(&mut fresh), 2, 4), Ok(Plan::Ready));
        assert_eq!(fresh.len(), 3);
    }

    #[test]
    fn dmabuf_user_and_fileio_exclude_each_other() {
        let mut e = engine(Direction::In);
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 8)), 2, 8),
            Ok(Plan::Ready)
        );
        assert_eq!(e.open_chardev(), Err(Refusal::Busy));
        assert_eq!(e.attach(), Err(Refusal::Busy));
        let _ = run(&mut e, 8, 2);
        e.disable();
        // Attach on a disabled fileio buffer releases its blocks; a reader
        // that held one gets it back to free.
        let b = e.take_for_read().unwrap().unwrap();
        e.attach().unwrap();
        assert_eq!(reap(&mut e), (vec![], 1, vec![Abort::Disabled]));
        assert!(e.return_after_read(b, 8).is_some());
        assert!(matches!(e.take_for_read(), Err(Refusal::Busy)));
        e.open_chardev().unwrap();
        assert_eq!(e.open_chardev(), Err(Refusal::Busy));
    }

    #[test]
    fn enable_after_a_dmabuf_user_came_leaves_fresh_blocks() {
        // Defect: an enable allocated, then a DMABUF user came meanwhile.
        let mut e = engine(Direction::Out);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        e.open_chardev().unwrap();
        let mut fresh = kernel_blocks(3, 8);
        assert_eq!(e.enable(Some(&mut fresh), 2, 8), Ok(Plan::Ready));
        assert_eq!(fresh.len(), 3);
        assert!(e.enabled());
        assert!(e.dmabuf_in_use());
        assert!(matches!(e.take_for_write(2), Err(Refusal::Busy)));
    }

    #[test]
    fn enable_planned_ready_needs_blocks_once_the_dmabuf_user_left() {
        let mut e = engine(Direction::In);
        e.attach().unwrap();
        assert_eq!(e.plan_enable(2), Ok(Plan::Ready));
        // The last DMABUF user leaves between the plan and the commit.
        e.detach();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::NeedBlocks));
        assert!(!e.enabled());
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 8)), 2, 4),
            Ok(Plan::Ready)
        );
        assert!(e.enabled());
        // Output written before the enable, taken by a DMABUF user that
        // came and went since the plan.
        let mut e = engine(Direction::Out);
        e.install_out_blocks(&mut kernel_blocks(2, 4), 2).unwrap();
        assert_eq!(e.plan_enable(2), Ok(Plan::Ready));
        e.attach().unwrap();
        e.detach();
        assert_eq!(reap(&mut e).1, 2);
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::NeedBlocks));
        assert!(!e.enabled());
    }

    #[test]
    fn output_written_before_enable_plays_unless_layout_changed() {
        let mut e = engine(Direction::Out);
        assert_eq!(e.plan_write(2), Ok(Plan::NeedBlocks));
        e.install_out_blocks(&mut kernel_blocks(2, 4), 2).unwrap();
        let b = e.take_for_write(2).unwrap().unwrap();
        assert!(e.submit_written(b, 4).is_none());
        assert_eq!(e.plan_enable(2), Ok(Plan::Ready));
        // The layout grew: the written data was for another one.
        assert_eq!(e.plan_write(16), Ok(Plan::NeedBlocks));
        assert!(matches!(e.take_for_write(16), Ok(None)));
        e.install_out_blocks(&mut kernel_blocks(2, 16), 16).unwrap();
        assert_eq!(reap(&mut e).1, 2);
        assert_eq!(e.plan_enable(16), Ok(Plan::Ready));
        assert_eq!(e.enable(None::<&mut Blocks>, 16, 16), Ok(Plan::Ready));
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn output_disable_drops_unplayed_data_and_late_writer_blocks() {
        let mut e = engine(Direction::Out);
        e.install_out_blocks(&mut kernel_blocks(2, 4), 2).unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        let held = e.take_for_write(2).unwrap().unwrap();
        let b = e.take_for_write(2).unwrap().unwrap();
        assert!(e.submit_written(b, 4).is_none());
        e.disable();
        assert_eq!(reap(&mut e).1, 1);
        assert_eq!(e.mode(), Mode::Idle);
        // A writer that held a block across the disable gets it back to free.
        assert!(e.submit_written(held, 4).is_some());
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn reader_holding_a_block_across_re_enable_gives_it_back_to_free() {
        let mut e = engine(Direction::In);
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 4)), 2, 4),
            Ok(Plan::Ready)
        );
        let _ = run(&mut e, 4, 2);
        let held = e.take_for_read().unwrap().unwrap();
        e.disable();
        assert_eq!(
            e.enable(Some(&mut kernel_blocks(2, 4)), 2, 4),
            Ok(Plan::Ready)
        );
        assert_eq!(reap(&mut e).1, 1);
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
        let mut e = engine(Direction::In);
        e.open_chardev().unwrap();
        e.submit_dmabuf(seed(1, 8)).ok().unwrap();
        assert_eq!(
            refused(e.submit_dmabuf(seed(1, 8))),
            Some(Refusal::AlreadyQueued)
        );
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 8), Ok(Plan::Ready));
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        assert_eq!(refused(e.submit_dmabuf(seed(1, 8))), Some(Refusal::Busy));
        // Partly done, back at the head: still the hardware's.
        assert!(matches!(e.give_back(entry, 4, 2), Outcome::Requeued));
        assert_eq!(refused(e.submit_dmabuf(seed(1, 8))), Some(Refusal::Busy));
        assert!(matches!(run(&mut e, 4, 2), Outcome::Done(_)));
        e.submit_dmabuf(seed(1, 8)).ok().unwrap();
    }

    #[test]
    fn queue_room_counts_the_active_block_and_the_graveyard() {
        let mut e = engine(Direction::In);
        e.attach().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 8), Ok(Plan::Ready));
        for k in 0..MAX_BLOCKS {
            e.submit_dmabuf(mainline(k, 8)).ok().unwrap();
        }
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        assert_eq!(
            refused(e.submit_dmabuf(mainline(99, 8))),
            Some(Refusal::Full)
        );
        assert!(matches!(e.give_back(entry, 2, 2), Outcome::Requeued));
        // Two full queues disabled and not reaped yet: no third one.
        e.disable();
        for k in 0..MAX_BLOCKS {
            e.submit_dmabuf(mainline(100 + k, 8)).ok().unwrap();
        }
        e.disable();
        assert_eq!(
            refused(e.submit_dmabuf(mainline(999, 8))),
            Some(Refusal::Busy)
        );
        assert_eq!(reap(&mut e).0.len(), 2 * MAX_BLOCKS);
        e.submit_dmabuf(mainline(999, 8)).ok().unwrap();
    }

    #[test]
    fn ring_take_first_keeps_the_order() {
        let mut r = ring::<u32>(4);
        for v in [1, 2, 3, 4] {
            r.push_back(v).unwrap();
        }
        let even = |v: u32| {
            if v.is_multiple_of(2) {
                Ok(v * 10)
            } else {
                Err(v)
            }
        };
        assert_eq!(r.take_first(even), Some(20));
        assert_eq!(r.take_first(even), Some(40));
        assert_eq!(r.take_first(even), None);
        assert_eq!(r.collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn reaping_fileio_blocks_leaves_dmabuf_ones() {
        let mut e = engine(Direction::In);
        e.open_chardev().unwrap();
        e.submit_dmabuf(seed(1, 8)).ok().unwrap();
        e.close_chardev();
        assert_eq!(e.mode(), Mode::Idle);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
        e.enable(Some(&mut kernel_blocks(2, 8)), 2, usize::MAX)
            .unwrap();
        e.disable();
        // The fileio blocks of the disabled input go behind the seed block.
        e.attach().unwrap();
        assert!(e.reap_fileio().is_some());
        assert!(e.reap_fileio().is_some());
        assert!(e.reap_fileio().is_none());
        assert_eq!(reap(&mut e), (vec![1], 0, vec![Abort::Closed]));
    }

    #[test]
    fn close_cancels_own_blocks_only() {
        let mut e = engine(Direction::In);
        e.open_chardev().unwrap();
        e.attach().unwrap();
        e.submit_dmabuf(mainline(1, 8)).ok().unwrap();
        e.submit_dmabuf(seed(2, 8)).ok().unwrap();
        e.submit_dmabuf(mainline(3, 8)).ok().unwrap();
        e.close_chardev();
        assert_eq!(reap(&mut e), (vec![2], 0, vec![Abort::Closed]));
        assert!(e.dmabuf_in_use());
        e.disable();
        assert_eq!(reap(&mut e).0, vec![1, 3]);
        e.detach();
        assert_eq!(e.mode(), Mode::Idle);
    }

    #[test]
    fn abort_while_active_completes_on_give_back() {
        let mut e = engine(Direction::In);
        e.open_chardev().unwrap();
        e.submit_dmabuf(seed(7, 8)).ok().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 8), Ok(Plan::Ready));
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        e.kill();
        assert!(e.reap().is_none());
        assert!(matches!(
            e.give_back(entry, 8, 2),
            Outcome::Dead(_, Abort::Removed)
        ));
        assert_eq!(e.open_chardev(), Err(Refusal::Removed));
        assert_eq!(refused(e.submit_dmabuf(seed(1, 8))), Some(Refusal::Removed));
    }

    #[test]
    fn closing_the_char_device_aborts_its_active_block_only() {
        let mut e = engine(Direction::In);
        e.open_chardev().unwrap();
        e.attach().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 8), Ok(Plan::Ready));
        e.submit_dmabuf(mainline(1, 8)).ok().unwrap();
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        e.close_chardev();
        assert!(matches!(e.give_back(entry, 8, 2), Outcome::Done(_)));
        e.open_chardev().unwrap();
        e.submit_dmabuf(seed(2, 8)).ok().unwrap();
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        e.close_chardev();
        assert!(matches!(
            e.give_back(entry, 8, 2),
            Outcome::Dead(_, Abort::Closed)
        ));
    }

    #[test]
    fn kill_buries_what_fits_and_reaps_the_rest() {
        let mut e = engine(Direction::In);
        e.attach().unwrap();
        for round in 0..2 {
            for k in 0..MAX_BLOCKS {
                e.submit_dmabuf(mainline(round * 100 + k, 8)).ok().unwrap();
            }
            e.disable();
        }
        // The graveyard is full: no more blocks come in until reaped.
        assert_eq!(
            refused(e.submit_dmabuf(mainline(1000, 8))),
            Some(Refusal::Busy)
        );
        e.kill();
        assert_eq!(reap(&mut e).0.len(), 2 * MAX_BLOCKS);
        assert!(e.reap().is_none());
    }

    #[test]
    fn a_block_after_a_cyclic_one_ends_its_repetition_not_its_fence() {
        let mut e = engine(Direction::Out);
        e.open_chardev().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        e.submit_dmabuf(seed(1, 4).cyclic()).ok().unwrap();
        assert!(matches!(run(&mut e, 4, 2), Outcome::Requeued));
        e.submit_dmabuf(seed(2, 4)).ok().unwrap();
        // The pass in progress ends; the cyclic block is parked, not done.
        assert!(matches!(run(&mut e, 4, 2), Outcome::Requeued));
        assert_eq!(refused(e.submit_dmabuf(seed(1, 4))), Some(Refusal::Busy));
        assert_eq!(
            refused(e.submit_dmabuf(seed(3, 4).cyclic())),
            Some(Refusal::Busy)
        );
        let Head::Active(Entry::Dmabuf(b)) = e.take_for_hardware() else {
            panic!()
        };
        assert_eq!(b.data.key, 2);
        assert!(matches!(
            e.give_back(Entry::Dmabuf(b), 4, 2),
            Outcome::Done(_)
        ));
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
        // Closing the char device ends it.
        e.close_chardev();
        assert_eq!(reap(&mut e), (vec![1], 0, vec![Abort::Closed]));
        e.open_chardev().unwrap();
        e.submit_dmabuf(seed(3, 4).cyclic()).ok().unwrap();
    }

    #[test]
    fn cyclic_block_repeats_until_abort_and_excludes_others() {
        let mut e = engine(Direction::Out);
        e.attach().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        let mut input = engine(Direction::In);
        input.attach().unwrap();
        assert_eq!(input.can_submit_key(1, true), Err(Refusal::Invalid));
        e.submit_dmabuf(mainline(1, 4).cyclic()).ok().unwrap();
        for _ in 0..3 {
            assert!(matches!(run(&mut e, 4, 2), Outcome::Requeued));
        }
        assert_eq!(
            refused(e.submit_dmabuf(mainline(2, 4).cyclic())),
            Some(Refusal::Busy)
        );
        e.disable();
        let Some((Entry::Dmabuf(b), Abort::Disabled)) = e.reap() else {
            panic!()
        };
        assert_eq!(b.passes, 3);
        // A cyclic block may follow others, but not another cyclic one.
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        e.submit_dmabuf(mainline(3, 4)).ok().unwrap();
        e.submit_dmabuf(mainline(4, 4).cyclic()).ok().unwrap();
        assert_eq!(
            refused(e.submit_dmabuf(mainline(5, 4).cyclic())),
            Some(Refusal::Busy)
        );
        assert!(matches!(run(&mut e, 4, 2), Outcome::Done(_)));
        let Head::Active(entry) = e.take_for_hardware() else {
            panic!()
        };
        // The cyclic block is active: still one only.
        assert_eq!(
            refused(e.submit_dmabuf(mainline(5, 4).cyclic())),
            Some(Refusal::Busy)
        );
        assert!(matches!(e.give_back(entry, 4, 2), Outcome::Requeued));
    }

    #[test]
    fn unready_head_stalls_and_failed_head_completes() {
        let mut e = engine(Direction::Out);
        e.open_chardev().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        let mut b = seed(1, 4);
        b.data.ready = Readiness::Waiting;
        e.submit_dmabuf(b).ok().unwrap();
        assert!(matches!(e.take_for_hardware(), Head::Stalled));
        let mut e2 = engine(Direction::Out);
        e2.open_chardev().unwrap();
        assert_eq!(e2.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        let mut b = seed(2, 4);
        b.data.ready = Readiness::Failed;
        e2.submit_dmabuf(b).ok().unwrap();
        assert!(matches!(e2.take_for_hardware(), Head::Failed(_)));
        assert!(matches!(e2.take_for_hardware(), Head::Stalled));
    }

    #[test]
    fn mode_settles_to_idle_when_the_last_user_leaves() {
        let mut e = engine(Direction::In);
        e.attach().unwrap();
        e.attach().unwrap();
        e.open_chardev().unwrap();
        assert_eq!(e.enable(None::<&mut Blocks>, 2, 4), Ok(Plan::Ready));
        e.detach();
        e.detach();
        e.close_chardev();
        assert!(e.dmabuf_in_use());
        e.disable();
        assert_eq!(e.mode(), Mode::Idle);
        assert_eq!(e.plan_enable(2), Ok(Plan::NeedBlocks));
    }
}
