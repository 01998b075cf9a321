// SPDX-License-Identifier: GPL-2.0

//! The IIO buffer of the virtual converters.
//!
//! One block engine ([`crate::engine::queue::Engine`], where the modes and
//! block states are documented) carries every data path; the front-ends
//! are in files of their own:
//!
//! - [`fileio`]: read() and write() on `/dev/iio:deviceN`, with kernel
//!   blocks;
//! - [`seed`]: the seed API on `/dev/iio:deviceN-dmabuf0` (ALLOC, ENQUEUE
//!   with our own fences);
//! - [`mainline`]: the IIO core's DMABUF hooks (ATTACH, DETACH, ENQUEUE
//!   with the core's fences).
//!
//! This file holds the state they share, the hardware's side
//! ([`BlockBuffer::transfer`]) and the IIO glue.

mod block;
mod fileio;
mod mainline;
pub(crate) mod seed;

use crate::{
    dma::{
        block::DeviceTable,
        buf::MemoryAccount,
        engine::{DmaTarget, FifoChannel},
        fence::{FenceContext, SignallingSection},
        pages::KernelBlock,
    },
    engine::{
        pattern::{Pattern, Repeating},
        queue::{
            Abort, Block, Chunk, Direction, Engine, EngineSlots, Entry, Head, Outcome, Refusal,
            GRAVE_BLOCKS, MAX_BLOCKS,
        },
        scan::{ScanLayout, NUM_CHANNELS},
        span::{ByteSink, ByteSource},
    },
    iio::buffer::{Attachment, Buffer, BufferOps, CoreFence, QueueHeld},
};
use block::DmabufBlock;
use kernel::{
    device::Device,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, new_spinlock_irq, Arc, Mutex, SpinLockIrq},
    uaccess::{UserSliceReader, UserSliceWriter},
};

pub(crate) use mainline::AttachedDmabuf;

/// The engine's rings live in `KVec`s allocated with the buffer.
struct KernelSlots;

impl EngineSlots<KernelBlock, DmabufBlock> for KernelSlots {
    type Queued = KVec<Option<Entry<KernelBlock, DmabufBlock>>>;
    type Fileio = KVec<Option<Block<KernelBlock>>>;
    type Graveyard = KVec<Option<(Entry<KernelBlock, DmabufBlock>, Abort)>>;
}

/// `n` empty slots for a ring.
fn slots<T>(n: usize) -> Result<KVec<Option<T>>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(None, GFP_KERNEL)?;
    }
    Ok(v)
}

/// What the `queue` lock protects.
struct Queue {
    engine: Engine<KernelBlock, DmabufBlock, KernelSlots>,
    /// Number of the last seed fence. Taken with the submit, under this
    /// lock, so that our fences signal in seqno order.
    seqno: u64,
}

/// The buffer implementation (`iio::buffer::BufferOps`).
///
/// Lock order: the DMABUF's reservation lock, then the buffer's queue
/// mutex (the IIO core takes them so around a mainline ENQUEUE), then
/// `queue`. `fileio` is taken before all of them.
#[pin_data]
pub(crate) struct BlockBuffer {
    /// The block engine. IRQs off: the poll path takes it. Held for list
    /// operations only, never while data moves or anything is freed or
    /// signalled.
    #[pin]
    queue: SpinLockIrq<Queue>,
    /// Serialises read(), write() and enable: a reader or writer holds a
    /// block out of the engine while it copies, and write() and enable
    /// allocate blocks outside `queue` before they install them. Disable
    /// does not take it: a block held across it is freed when given back.
    #[pin]
    fileio: Mutex<()>,
    /// The timeline of the seed API's fences.
    fences: FenceContext,
    /// Memory of the seed API's blocks.
    account: Arc<MemoryAccount>,
    /// The device DMABUFs are attached to (mainline API).
    dma_dev: ARef<Device>,
    /// The same device when it is a DMA channel's: seed blocks are then
    /// mapped for it at ENQUEUE.
    channel_dev: Option<ARef<Device>>,
    /// Another driver's device, whose channels the IIO core lays out
    /// (`crate::export`); `None` for our converters.
    foreign: Option<Arc<crate::export::Foreign>>,
}

/// The errno of an engine refusal.
fn refusal(r: Refusal) -> Error {
    match r {
        Refusal::Removed => ENODEV,
        Refusal::Busy => EBUSY,
        Refusal::AlreadyQueued => EPERM,
        Refusal::Full => ENOSPC,
        Refusal::Invalid => EINVAL,
    }
}

/// The error a DMABUF block's fence gets when it is aborted.
fn abort_errno(abort: Abort) -> Error {
    match abort {
        Abort::Disabled | Abort::Closed => ECANCELED,
        Abort::Removed => ENODEV,
    }
}

/// Takes the blocks the engine removed out, one at a time, and frees them
/// (fileio) or completes them with an error (DMABUF: a dependency's, else
/// that of a DMA that failed on it, else the abort's), with no lock held. Every path that removes blocks calls it.
fn reap(this: &BlockBuffer) {
    loop {
        let dead = this.queue.lock().engine.reap();
        match dead {
            None => break,
            // A kernel block: freed here.
            Some((Entry::Fileio(_), _)) => {}
            Some((Entry::Dmabuf(block), abort)) => {
                let error = block
                    .data
                    .dependency_error()
                    .or(block.data.dma_error())
                    .unwrap_or(abort_errno(abort));
                complete(block, Some(error));
            }
        }
    }
}

/// Frees the removed fileio blocks, with no lock held, and leaves removed
/// DMABUF blocks to the [`reap`] of whoever removed them: for paths under
/// a DMABUF's reservation lock (dropping a DMABUF block may unmap another
/// DMABUF, which takes that one's).
fn reap_fileio(this: &BlockBuffer) {
    loop {
        // A statement of its own: the lock is dropped before the block.
        let block = this.queue.lock().engine.reap_fileio();
        if block.is_none() {
            break;
        }
    }
}

/// Completes one DMABUF block (with `error` if any), then drops it.
fn complete(mut block: Block<DmabufBlock>, error: Option<Error>) {
    {
        let _signalling = SignallingSection::begin();
        block.data.signal(error);
    }
    drop(block);
}

/// The converter's side of a transfer.
pub(crate) trait Hardware {
    /// Fills `out` with the scans numbered from `chunk.first` (input).
    fn fill<S: ByteSink + ?Sized>(&mut self, out: &mut S, chunk: Chunk);
    /// Takes the scans of `data` (output).
    fn check<S: ByteSource + ?Sized>(&mut self, data: &S, chunk: Chunk);
    /// Scans due did not reach the converter (their DMA failed): the
    /// next ones taken start afresh.
    fn interrupted(&mut self) {}
    /// Input whose scans repeat (and carry nothing that does not, such
    /// as a timestamp): its FIFO holds a period of them once, and the DMA
    /// copies every scan from there with no CPU work per scan.
    fn repeating(&self) -> Option<Repeating> {
        None
    }
}

impl BlockBuffer {
    /// A buffer whose DMABUFs are mapped for `dma_dev`, the device of
    /// the converter's DMA channel when `channel` (else the module's faux
    /// device: the CPU moves the data).
    pub(crate) fn new(
        dma_dev: ARef<Device>,
        direction: Direction,
        channel: bool,
    ) -> Result<impl PinInit<Self, Error>> {
        Self::build(dma_dev, direction, channel, None)
    }

    fn build(
        dma_dev: ARef<Device>,
        direction: Direction,
        channel: bool,
        foreign: Option<Arc<crate::export::Foreign>>,
    ) -> Result<impl PinInit<Self, Error>> {
        let channel_dev = channel.then(|| dma_dev.clone());
        let account = Arc::new(MemoryAccount::new(), GFP_KERNEL)?;
        let engine = Engine::new(
            direction,
            slots(MAX_BLOCKS)?,
            slots(MAX_BLOCKS)?,
            slots(GRAVE_BLOCKS)?,
        );
        Ok(try_pin_init!(Self {
            queue <- new_spinlock_irq!(Queue { engine, seqno: 0 },
                "BlockBuffer::queue"
            ),
            fileio <- new_mutex!((), "BlockBuffer::fileio"),
            fences: FenceContext::new(),
            account,
            dma_dev,
            channel_dev,
            foreign,
        }))
    }

    /// A buffer of another driver's device (see [`BlockBuffer::new`]).
    pub(crate) fn new_foreign(
        dma_dev: ARef<Device>,
        direction: Direction,
        channel: bool,
        foreign: Arc<crate::export::Foreign>,
    ) -> Result<impl PinInit<Self, Error>> {
        Self::build(dma_dev, direction, channel, Some(foreign))
    }

    /// The other driver's device, for a buffer made by `new_foreign`.
    pub(crate) fn foreign(&self) -> Option<&Arc<crate::export::Foreign>> {
        self.foreign.as_ref()
    }

    /// Bytes of a scan with the channels selected now (`ENODEV` once the
    /// device was removed).
    pub(crate) fn scan_bytes(buf: &Buffer<Self>) -> Result<usize> {
        Self::scan_bytes_held(&buf.lock_queue())
    }

    /// As [`BlockBuffer::scan_bytes`], the queue lock held (the mainline
    /// ENQUEUE: in the core's fence signalling section, where another
    /// driver's device reads the layout its registration cached).
    fn scan_bytes_held(queue: &QueueHeld<'_, Self>) -> Result<usize> {
        match &queue.buffer().data().foreign {
            Some(f) => f.scan_bytes_held(queue),
            None => Ok(Self::scan_layout_held(queue)?.scan_bytes),
        }
    }

    /// Layout of a scan with the channels selected now, unless the device
    /// was removed (`ENODEV`).
    pub(crate) fn scan_layout(buf: &Buffer<Self>) -> Result<ScanLayout> {
        Self::scan_layout_held(&buf.lock_queue())
    }

    fn scan_layout_held(queue: &QueueHeld<'_, Self>) -> Result<ScanLayout> {
        let channel_mask = queue.scan_mask()? & ((1 << NUM_CHANNELS) - 1);
        Ok(ScanLayout::new(
            channel_mask as u32,
            queue.buffer().scan_timestamp(),
        ))
    }

    /// The hardware transferred `count` scans numbered from `first`:
    /// `hw` moves them into (ADC) or out of (DAC) the blocks, one block at
    /// a time, with no lock held, straight into or out of the block's
    /// memory (DMABUF memory through its raw accessors), or, with a DMA
    /// channel `dma` and a DMABUF block mapped for it, through the
    /// channel's FIFO ([`dma_move`]). Returns the number of blocks
    /// completed and of scans that found no ready block. Process context:
    /// completing a DMABUF block drops file references, and DMA is waited
    /// for.
    pub(crate) fn transfer(
        buf: &Buffer<Self>,
        mut first: u64,
        mut count: u64,
        scan_bytes: usize,
        hw: &mut impl Hardware,
        mut dma: Option<&mut FifoChannel>,
    ) -> (usize, u64) {
        let this = buf.data();
        let input = buf.direction() == Direction::In;
        if scan_bytes == 0 {
            return (0, 0);
        }
        let mut completed = 0;
        while count > 0 {
            let head = this.queue.lock().engine.take_for_hardware();
            let mut entry = match head {
                Head::Stalled => break,
                Head::Failed(block) => {
                    let error = block.data.dependency_error();
                    complete(block, error.or(Some(EIO)));
                    completed += 1;
                    continue;
                }
                Head::Active(entry) => entry,
            };
            // Whole scans that fit, from where the block stands.
            let (size, filled, repeat) = match &entry {
                Entry::Fileio(b) => (b.size.min(b.data.len()), b.filled, false),
                Entry::Dmabuf(b) => (b.size, b.filled, b.filled == 0 && b.passes > 0),
            };
            let n = (((size - filled) / scan_bytes) as u64).min(count) as usize;
            let bytes = n * scan_bytes;
            match &mut entry {
                Entry::Fileio(b) => {
                    let chunk = Chunk { first, repeat };
                    let channel = dma
                        .as_deref_mut()
                        .filter(|d| b.data.mapped_for(d.channel().device()));
                    if let Some(channel) = channel {
                        let moved = dma_move(
                            channel,
                            &mut b.data,
                            filled,
                            bytes,
                            scan_bytes,
                            chunk,
                            input,
                            hw,
                        );
                        if let Err(e) = moved {
                            b.data.set_error(e);
                        }
                    } else {
                        let data = &mut b.data[filled..filled + bytes];
                        if input {
                            hw.fill(data, chunk);
                        } else {
                            hw.check(data, chunk);
                        }
                    }
                }
                Entry::Dmabuf(b) => {
                    let chunk = Chunk { first, repeat };
                    let memory = b.data.memory();
                    let channel = dma
                        .as_deref_mut()
                        .filter(|d| memory.mapped_for(d.channel().device()));
                    let moved = if let Some(channel) = channel {
                        dma_move(channel, memory, filled, bytes, scan_bytes, chunk, input, hw)
                    } else if input {
                        // In bounds: `n` scans fit in the block's size,
                        // which the ENQUEUE checked against the memory.
                        memory.fill_with(filled, bytes, |span| hw.fill(span, chunk))
                    } else {
                        memory.read_with(filled, bytes, |span| hw.check(span, chunk))
                    };
                    // Only DMA fails (in bounds otherwise, see above).
                    if let Err(e) = moved {
                        b.data.set_dma_error(e);
                    }
                }
            }
            first += n as u64;
            count -= n as u64;
            let outcome = this.queue.lock().engine.give_back(entry, bytes, scan_bytes);
            match outcome {
                Outcome::Requeued => {}
                Outcome::Ready => completed += 1,
                Outcome::Done(block) => {
                    // After its data moved: a DMA error fails the fence.
                    let error = block.data.dma_error();
                    complete(block, error);
                    completed += 1;
                }
                // Aborted while we moved its data: a fileio block is freed
                // here, a DMABUF block ends with the error of its DMA if
                // that failed, else with the abort's.
                Outcome::Dead(Entry::Fileio(_), _) => {}
                Outcome::Dead(Entry::Dmabuf(block), abort) => {
                    let error = block.data.dma_error().unwrap_or(abort_errno(abort));
                    complete(block, Some(error));
                }
            }
        }
        (completed, count)
    }

    /// The device is going away: no more use, every block ends (DMABUF
    /// blocks with `ENODEV`).
    ///
    /// (The hardware's DMA is synchronous: a block held by a transfer
    /// completes only after its DMA was waited for or terminated.)
    pub(crate) fn kill(buf: &Buffer<Self>) {
        let this = buf.data();
        this.queue.lock().engine.kill();
        reap(this);
    }
}

/// Moves `bytes` bytes (whole scans) at `offset` of a block mapped for
/// the channel through the channel's FIFO, at most a FIFO of them at a
/// time: the CPU fills the FIFO with the scans due and the channel copies
/// it into the block (input; a repeating input is copied from its
/// pattern instead, see [`dma_copy_pattern`]), or the channel copies the
/// block into the FIFO and the CPU checks it there (output). Waits for
/// each copy; fails with its error (`EIO`, `ETIMEDOUT`), the channel
/// terminated; an output that failed is [`Hardware::interrupted`].
#[allow(clippy::too_many_arguments)]
fn dma_move(
    dma: &mut FifoChannel,
    memory: &mut dyn DmaTarget,
    offset: usize,
    bytes: usize,
    scan_bytes: usize,
    chunk: Chunk,
    input: bool,
    hw: &mut impl Hardware,
) -> Result {
    if input {
        if let Some(pattern) = hw
            .repeating()
            .and_then(|input| Pattern::new(input, dma.capacity()))
            .filter(|p| p.input().scan_bytes() == scan_bytes)
        {
            return dma_copy_pattern(dma, memory, offset, bytes, chunk.first, pattern, hw);
        }
    }
    let most = dma.capacity() / scan_bytes * scan_bytes;
    if most == 0 {
        return Err(EINVAL);
    }
    let mut done = 0;
    while done < bytes {
        let n = (bytes - done).min(most);
        let piece = Chunk {
            first: chunk.first + (done / scan_bytes) as u64,
            repeat: chunk.repeat && done == 0,
        };
        if input {
            hw.fill(dma.fifo(n), piece);
            dma.transfer(memory, 0, offset + done, n, true)?;
        } else {
            if let Err(e) = dma.transfer(memory, 0, offset + done, n, false) {
                hw.interrupted();
                return Err(e);
            }
            hw.check(&*dma.fifo(n), piece);
        }
        done += n;
    }
    Ok(())
}

/// The input's scans numbered from `first` (`bytes` of them, whole
/// scans) copied by the channel into bytes from `offset` of `memory`,
/// from the FIFO's pattern: the CPU writes the pattern once (the first
/// time, for another input, or when something else used the FIFO) and no
/// scan after that, as a device that writes its samples to memory by DMA.
fn dma_copy_pattern(
    dma: &mut FifoChannel,
    memory: &mut dyn DmaTarget,
    offset: usize,
    bytes: usize,
    first: u64,
    pattern: Pattern,
    hw: &mut impl Hardware,
) -> Result {
    if dma.pattern() != Some(pattern) {
        let from_zero = Chunk {
            first: 0,
            repeat: false,
        };
        hw.fill(dma.fifo(pattern.bytes()), from_zero);
        dma.set_pattern(pattern);
    }
    let mut done = 0;
    while done < bytes {
        let n = (bytes - done).min(pattern.piece());
        let from = pattern.offset_of(first, done);
        dma.transfer(memory, from, offset + done, n, true)?;
        done += n;
    }
    Ok(())
}

#[vtable]
impl BufferOps for BlockBuffer {
    type Attached = AttachedDmabuf;

    fn read(buf: &Buffer<Self>, out: &mut UserSliceWriter) -> Result<usize> {
        fileio::read(buf, out)
    }

    fn data_available(buf: &Buffer<Self>) -> usize {
        // The core counts in scans (it compares with the watermark).
        let bytes = buf.data().queue.lock().engine.available();
        bytes.checked_div(buf.bytes_per_datum()).unwrap_or(0)
    }

    fn write(buf: &Buffer<Self>, input: &mut UserSliceReader) -> Result<usize> {
        fileio::write(buf, input)
    }

    fn space_available(buf: &Buffer<Self>) -> usize {
        fileio::space_available(buf)
    }

    fn enable(buf: &Buffer<Self>) -> Result {
        fileio::enable(buf)
    }

    fn disable(buf: &Buffer<Self>) -> Result {
        let this = buf.data();
        // Another driver's device disabled by its removal: the blocks end
        // as a removed device's do (our converters kill theirs before).
        if this.foreign.as_ref().is_some_and(|f| f.removing()) {
            Self::kill(buf);
            return Ok(());
        }
        this.queue.lock().engine.disable();
        reap(this);
        Ok(())
    }

    fn attach_dmabuf(buf: &Buffer<Self>, attachment: &Attachment<'_>) -> Result<AttachedDmabuf> {
        mainline::attach(buf, attachment)
    }

    fn detach_dmabuf(buf: &Buffer<Self>, attached: AttachedDmabuf) {
        mainline::detach(buf, attached)
    }

    fn enqueue_dmabuf(
        queue: &QueueHeld<'_, Self>,
        attached: &AttachedDmabuf,
        fence: &CoreFence,
        table: Option<DeviceTable>,
        bytes_used: usize,
        cyclic: bool,
    ) -> Result {
        mainline::enqueue(queue, attached, fence, table, bytes_used, cyclic)
    }

    fn dma_device(buf: &Buffer<Self>) -> &Device {
        &buf.data().dma_dev
    }
}
