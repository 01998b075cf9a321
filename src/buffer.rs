// SPDX-License-Identifier: GPL-2.0

//! The IIO buffer of the virtual converters: one block queue engine that
//! carries either the fileio path's kernel blocks (read()) or userspace
//! DMABUF blocks, from the seed API (ALLOC/ENQUEUE on the buffer's char
//! device) or the mainline API (ATTACH/ENQUEUE on the buffer's file
//! descriptor, through the IIO core). Fileio and DMABUF are exclusive:
//! see `Documentation/iio/dmabuf_api.rst`.

use crate::{
    bindings,
    dma::{
        buf::{export_block, DmaBuf, FenceUsage, KernelMapping, MemoryAccount},
        device::raw_device,
        fence::{Dependency, Fence, FenceContext, SignallingSection},
    },
    engine::{
        queue::{
            Block, Chunk, FileioGeometry, FileioOutQueue, FileioQueue, HardwareQueue, Ring,
            Transfer, MAX_BLOCKS,
        },
        scan::{ScanLayout, NUM_CHANNELS},
    },
    iio::buffer::{Attachment, Buffer, BufferOps, CoreFence, Direction, DoneFence, QueueHeld},
};
use core::{
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{
    device::Device,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, new_spinlock_irq, Arc, Mutex, SpinLockIrq},
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// How a queued DMABUF block reports its completion.
enum Completion {
    /// Seed API: our own fence, and a reference that keeps our block.
    Seed { _dmabuf: DmaBuf, fence: Fence },
    /// Mainline API: the IIO core's fence.
    Mainline(DoneFence),
}

/// A userspace DMABUF block in the hardware queue.
///
/// # Invariants
///
/// `data` points to `bytes_used` bytes of the DMABUF's memory, kept alive
/// by `completion` (seed: the DMABUF reference; mainline: the core keeps
/// the attachment, and so our kernel mapping, until the fence is done).
/// A seed block is queued at most once per buffer.
pub(crate) struct QueuedBlock {
    completion: Completion,
    data: *mut u8,
    bytes_used: usize,
    /// Fences of other users the hardware must wait for (seed API; the
    /// core waits synchronously in the mainline ENQUEUE).
    dependency: Option<Dependency>,
}

impl Transfer for QueuedBlock {
    fn ready(&self) -> bool {
        self.dependency
            .as_ref()
            .is_none_or(|d| d.outcome().is_some())
    }
}

impl QueuedBlock {
    /// The error of a dependency that failed: the block must not be used.
    fn failed_dependency(&self) -> Option<Error> {
        self.dependency.as_ref()?.outcome()?.err()
    }
}

impl Transfer for KVVec<u8> {}

// SAFETY: The raw pointer is to memory owned by `dmabuf`, not to anything
// thread-local.
unsafe impl Send for QueuedBlock {}

impl QueuedBlock {
    /// Ends the block's trip: signals the fence (with `error` if any) and
    /// drops the queue's reference.
    fn complete(self, error: Option<Error>) {
        match self.completion {
            Completion::Seed { fence, .. } => fence.signal(error),
            Completion::Mainline(fence) => fence.signal(error),
        }
    }

    /// Whether this is a seed block of the DMABUF `memory` points to.
    fn is_seed_block_at(&self, memory: *mut u8) -> bool {
        matches!(self.completion, Completion::Seed { .. }) && self.data == memory
    }
}

impl Deref for QueuedBlock {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: By the type invariant the memory is alive. Only the queue
        // that owns `self` accesses it through `self`; another device's
        // queue may hold the same DMABUF, but the fences order them: a
        // block is used only once the fences it depends on signalled (seed:
        // `dependency`; mainline: the core waits before queueing). Userspace
        // could still write through a mapping against the protocol; like a
        // device's DMA, that can garble the data, nothing else.
        unsafe { core::slice::from_raw_parts(self.data, self.bytes_used) }
    }
}

impl DerefMut for QueuedBlock {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: As in `deref`; `&mut self` makes this the only user.
        unsafe { core::slice::from_raw_parts_mut(self.data, self.bytes_used) }
    }
}

/// Which path feeds the hardware during one enabled period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    Fileio,
    Dmabuf,
}

struct Queues {
    fileio: FileioQueue<KVVec<u8>>,
    fileio_out: FileioOutQueue<KVVec<u8>>,
    /// `fileio_out` holds its blocks (allocated by the first write() or
    /// the enable, whichever comes first).
    out_allocated: bool,
    dmabuf: HardwareQueue<QueuedBlock>,
    /// Set while the buffer is enabled.
    session: Option<Session>,
    /// The DMABUF char device is open.
    dmabuf_open: bool,
    /// DMABUFs attached through the mainline API.
    attached: usize,
    /// The device was removed.
    dead: bool,
}

/// Completed or cancelled DMABUF blocks, finished outside the queue lock,
/// each with its error if any.
type Finished = Ring<(QueuedBlock, Option<Error>), MAX_BLOCKS>;

fn finish_all(finished: &mut Finished) {
    let _signalling = SignallingSection::begin();
    while let Some((block, error)) = finished.pop_front() {
        block.complete(error);
    }
}

impl Queues {
    /// Whether a DMABUF user exists (then read() is refused).
    fn dmabuf_in_use(&self) -> bool {
        self.dmabuf_open || self.attached > 0 || self.session == Some(Session::Dmabuf)
    }
}

/// Allocates the zeroed kernel blocks of the fileio path for the buffer's
/// length and watermark (see [`FileioGeometry`]).
fn fileio_blocks(buf: &Buffer<BlockBuffer>, scan_bytes: usize) -> Result<KVec<Block<KVVec<u8>>>> {
    let geometry = FileioGeometry::new(buf.length(), buf.watermark()).ok_or(EINVAL)?;
    if scan_bytes == 0 {
        return Err(EINVAL);
    }
    let block_bytes = geometry.block_scans.checked_mul(scan_bytes).ok_or(EINVAL)?;
    let mut blocks = KVec::with_capacity(geometry.blocks, GFP_KERNEL)?;
    for _ in 0..geometry.blocks {
        let data = KVVec::from_elem(0u8, block_bytes, GFP_KERNEL)?;
        blocks.push(Block::new(data, block_bytes), GFP_KERNEL)?;
    }
    Ok(blocks)
}

/// The buffer implementation (`iio::buffer::BufferOps`).
///
/// Lock order: the buffer's queue lock (held by the IIO core around a
/// mainline ENQUEUE, and here by the paths that cancel blocks), then
/// `queues`.
#[pin_data]
pub(crate) struct BlockBuffer {
    #[pin]
    queues: SpinLockIrq<Queues>,
    /// Serialises readers, and readers against re-allocation.
    #[pin]
    reader: Mutex<()>,
    fences: FenceContext,
    seqno: AtomicU64,
    account: Arc<MemoryAccount>,
    /// The device DMABUFs are attached to (mainline API).
    dma_dev: ARef<Device>,
}

/// What the buffer keeps of a DMABUF attached through the mainline API.
pub(crate) struct AttachedDmabuf {
    map: KernelMapping,
}

/// `IIO_BUFFER_DMABUF_CYCLIC`
const IIO_BUFFER_DMABUF_CYCLIC: u32 = 1;

/// A DMABUF enqueue request (`struct iio_dmabuf`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EnqueueRequest {
    pub(crate) fd: u32,
    pub(crate) flags: u32,
    pub(crate) bytes_used: u64,
}

impl BlockBuffer {
    pub(crate) fn new(dma_dev: ARef<Device>) -> Result<impl PinInit<Self, Error>> {
        let account = Arc::new(MemoryAccount::new(), GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            queues <- new_spinlock_irq!(
                Queues {
                    fileio: FileioQueue::default(),
                    fileio_out: FileioOutQueue::default(),
                    out_allocated: false,
                    dmabuf: HardwareQueue::default(),
                    session: None,
                    dmabuf_open: false,
                    attached: 0,
                    dead: false,
                },
                "BlockBuffer::queues"
            ),
            reader <- new_mutex!((), "BlockBuffer::reader"),
            fences: FenceContext::new(),
            seqno: AtomicU64::new(0),
            account,
            dma_dev,
        }))
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
    /// `transfer` moves them into (ADC) or out of (DAC) the blocks of the
    /// current session. Returns the number of completed blocks and of
    /// scans that found no ready block. Process context: completing a
    /// DMABUF block drops a file reference.
    pub(crate) fn transfer(
        buf: &Buffer<Self>,
        first: u64,
        count: u64,
        scan_bytes: usize,
        transfer: impl FnMut(&mut [u8], Chunk),
    ) -> (usize, u64) {
        let this = buf.data();
        let mut finished = Finished::default();
        let result = {
            let mut q = this.queues.lock();
            match (q.session, buf.direction()) {
                (Some(Session::Fileio), Direction::In) => {
                    q.fileio.produce(first, count, scan_bytes, transfer)
                }
                (Some(Session::Fileio), Direction::Out) => {
                    q.fileio_out.consume(first, count, scan_bytes, transfer)
                }
                (Some(Session::Dmabuf), _) => {
                    // A block whose dependency failed completes with the
                    // same error, unused.
                    while let Some(e) = q.dmabuf.front().and_then(|b| b.data.failed_dependency()) {
                        if let Some(block) = q.dmabuf.pop() {
                            let _ = finished.push_back((block.data, Some(e)));
                        }
                    }
                    let mut done = 0;
                    let stalled = q
                        .dmabuf
                        .produce(first, count, scan_bytes, transfer, |block| {
                            done += 1;
                            // At most MAX_BLOCKS can be queued.
                            let _ = finished.push_back((block.data, None));
                        });
                    (done, stalled)
                }
                (None, _) => (0, 0),
            }
        };
        finish_all(&mut finished);
        result
    }

    /// Completes every queued DMABUF block with `error`.
    fn cancel_dmabufs(&self, error: Error) {
        let mut finished = Finished::default();
        for block in self.queues.lock().dmabuf.drain() {
            let _ = finished.push_back((block.data, Some(error)));
        }
        finish_all(&mut finished);
    }

    /// The device is going away: no more DMABUF use, queued blocks
    /// complete with `ENODEV`.
    pub(crate) fn kill(buf: &Buffer<Self>) {
        let _queue = buf.lock_queue();
        let this = buf.data();
        this.queues.lock().dead = true;
        this.cancel_dmabufs(ENODEV);
    }

    /// The DMABUF char device is being opened: exclusive with itself and
    /// with an enabled fileio session.
    pub(crate) fn open_dmabuf(&self) -> Result {
        let mut q = self.queues.lock();
        if q.dead {
            return Err(ENODEV);
        }
        if q.dmabuf_open || q.session == Some(Session::Fileio) {
            return Err(EBUSY);
        }
        q.dmabuf_open = true;
        Ok(())
    }

    /// The DMABUF char device was closed: its queued blocks complete with
    /// `ECANCELED`.
    pub(crate) fn close_dmabuf(buf: &Buffer<Self>) {
        let _queue = buf.lock_queue();
        let this = buf.data();
        this.queues.lock().dmabuf_open = false;
        this.cancel_dmabufs(ECANCELED);
    }

    /// ALLOC: a new zeroed DMABUF block of `size` bytes, charged to this
    /// buffer within `limit` bytes in all.
    pub(crate) fn alloc_dmabuf(&self, size: u64, limit: usize) -> Result<DmaBuf> {
        if self.queues.lock().dead {
            return Err(ENODEV);
        }
        export_block(size.try_into().map_err(|_| EINVAL)?, &self.account, limit)
    }

    /// ENQUEUE: queues a block of ours for the hardware, with a new fence
    /// on its reservation object.
    pub(crate) fn enqueue_dmabuf(buf: &Buffer<Self>, req: EnqueueRequest) -> Result {
        let this = buf.data();
        let output = buf.direction() == Direction::Out;
        let cyclic = match req.flags {
            0 => false,
            // Repeating a block only makes sense for output.
            IIO_BUFFER_DMABUF_CYCLIC if output => true,
            _ => return Err(EINVAL),
        };
        let dmabuf = DmaBuf::from_fd(req.fd.try_into().map_err(|_| EBADF)?)?;
        let memory = dmabuf.block().ok_or(EINVAL)?;
        let bytes_used = usize::try_from(req.bytes_used).map_err(|_| EINVAL)?;
        // The scan size of the channels enabled now (the core updates
        // bytes_per_datum only when it enables the buffer).
        let scan_bytes = Self::scan_layout(buf)?.scan_bytes;
        if bytes_used == 0
            || bytes_used > dmabuf.size()
            || scan_bytes == 0
            || bytes_used % scan_bytes != 0
        {
            return Err(EINVAL);
        }
        this.check_room()?;
        if this
            .queues
            .lock()
            .dmabuf
            .any(|b| b.data.is_seed_block_at(memory.as_ptr()))
        {
            return Err(EBUSY);
        }
        // Implicit synchronisation: the device reads (DAC) after the
        // writers are done, writes (ADC) after everybody is. Taken before
        // our own fence joins the reservation object.
        let (usage, wait_for) = if output {
            (FenceUsage::Read, FenceUsage::Write)
        } else {
            (FenceUsage::Write, FenceUsage::Read)
        };
        let prepared = dmabuf.dependency(wait_for).and_then(|dependency| {
            let seqno = this.seqno.fetch_add(1, Ordering::Relaxed) + 1;
            Ok((dependency, Fence::new(&this.fences, seqno)?))
        });
        let (dependency, fence) = prepared?;
        if let Err(e) = dmabuf.add_fence(&fence, usage) {
            // Never published: signal it anyway, every fence must be.
            fence.signal(Some(e));
            return Err(e);
        }
        // INVARIANT: Ours (checked by `block()`), alive while referenced.
        let block = QueuedBlock {
            data: memory.as_ptr(),
            completion: Completion::Seed {
                _dmabuf: dmabuf,
                fence,
            },
            bytes_used,
            dependency,
        };
        let block = Block::new(block, bytes_used);
        this.submit_dmabuf(if cyclic { block.cyclic() } else { block })
    }

    /// Gives an output buffer its fileio blocks, once per enabled period.
    /// Called with the `reader` lock held.
    fn allocate_out_blocks(&self, buf: &Buffer<Self>, scan_bytes: usize) -> Result {
        if self.queues.lock().out_allocated {
            return Ok(());
        }
        let mut fresh = fileio_blocks(buf, scan_bytes)?;
        let mut q = self.queues.lock();
        while let Some(block) = fresh.pop() {
            q.fileio_out.add_free(block);
        }
        q.out_allocated = true;
        Ok(())
    }

    /// Fails early when an ENQUEUE could not be queued.
    fn check_room(&self) -> Result {
        let q = self.queues.lock();
        if q.dead {
            Err(ENODEV)
        } else if q.dmabuf.len() >= MAX_BLOCKS {
            Err(ENOSPC)
        } else {
            Ok(())
        }
    }

    /// Queues a block whose fence is published: if that fails after all
    /// (a racing ENQUEUE or removal), the fence signals the error.
    fn submit_dmabuf(&self, block: Block<QueuedBlock>) -> Result {
        let refused = {
            let mut q = self.queues.lock();
            if q.dead {
                Err((block, ENODEV))
            } else if q.dmabuf.any(|b| b.data.is_seed_block_at(block.data.data)) {
                // A racing ENQUEUE of the same block won.
                Err((block, EBUSY))
            } else {
                q.dmabuf.submit(block).map_err(|block| (block, ENOSPC))
            }
        };
        refused.map_err(|(block, e)| {
            let _signalling = SignallingSection::begin();
            block.data.complete(Some(e));
            e
        })
    }
}

impl BufferOps for BlockBuffer {
    type Attached = AttachedDmabuf;

    fn read(buf: &Buffer<Self>, out: &mut UserSliceWriter) -> Result<usize> {
        let scan_bytes = buf.bytes_per_datum();
        if scan_bytes == 0 || out.len() < scan_bytes {
            return Err(EINVAL);
        }
        let this = buf.data();
        let _reader = this.reader.lock();
        {
            if this.queues.lock().dmabuf_in_use() {
                return Err(EBUSY);
            }
        }
        let mut total = 0;
        while out.len() >= scan_bytes {
            let Some(block) = this.queues.lock().fileio.take_for_read() else {
                break;
            };
            let start = block.consumed;
            let n = (block.filled - start).min(out.len() / scan_bytes * scan_bytes);
            // Copy outside the spinlock: this may fault and sleep.
            let copied = out.write_slice(&block.data[start..start + n]);
            let consumed = if copied.is_ok() { n } else { 0 };
            this.queues.lock().fileio.return_after_read(block, consumed);
            match copied {
                Ok(()) => total += n,
                Err(e) if total == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(total)
    }

    fn data_available(buf: &Buffer<Self>) -> usize {
        // The core counts in scans (it compares with the watermark).
        let bytes = buf.data().queues.lock().fileio.available();
        bytes.checked_div(buf.bytes_per_datum()).unwrap_or(0)
    }

    fn write(buf: &Buffer<Self>, input: &mut UserSliceReader) -> Result<usize> {
        // Data may be written before the enable that sets bytes_per_datum.
        let scan_bytes = Self::scan_layout(buf)?.scan_bytes;
        if scan_bytes == 0 || input.len() < scan_bytes {
            return Err(EINVAL);
        }
        let this = buf.data();
        let _writer = this.reader.lock();
        if this.queues.lock().dmabuf_in_use() {
            return Err(EBUSY);
        }
        this.allocate_out_blocks(buf, scan_bytes)?;
        let mut total = 0;
        while input.len() >= scan_bytes {
            let Some(mut block) = this.queues.lock().fileio_out.take_for_write() else {
                break;
            };
            let n = block.data.len().min(input.len()) / scan_bytes * scan_bytes;
            // Copy outside the spinlock: this may fault and sleep.
            let copied = input.read_slice(&mut block.data[..n]);
            let taken = if copied.is_ok() { n } else { 0 };
            this.queues.lock().fileio_out.submit_written(block, taken);
            match copied {
                Ok(()) => total += n,
                Err(e) if total == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(total)
    }

    fn space_available(buf: &Buffer<Self>) -> usize {
        let q = buf.data().queues.lock();
        // Not allocated yet, or refused: let write() run and tell.
        let writable = !q.out_allocated || q.fileio_out.has_space() || q.dmabuf_in_use();
        usize::from(writable)
    }

    fn enable(buf: &Buffer<Self>) -> Result {
        let this = buf.data();
        let _reader = this.reader.lock();
        if buf.direction() == Direction::Out {
            let dmabuf = this.queues.lock().dmabuf_in_use();
            if !dmabuf {
                // Unless write() already did.
                this.allocate_out_blocks(buf, buf.bytes_per_datum())?;
            }
            this.queues.lock().session = Some(if dmabuf {
                Session::Dmabuf
            } else {
                Session::Fileio
            });
            return Ok(());
        }
        {
            let mut q = this.queues.lock();
            if q.dmabuf_in_use() {
                q.session = Some(Session::Dmabuf);
                return Ok(());
            }
        }
        let scan_bytes = buf.bytes_per_datum();
        let mut fresh = fileio_blocks(buf, scan_bytes)?;
        // Old blocks are freed after the spinlock is released.
        let mut old = KVec::with_capacity(MAX_BLOCKS, GFP_KERNEL)?;
        let mut q = this.queues.lock();
        if q.dmabuf_in_use() {
            // A DMABUF user came meanwhile: DMABUF it is.
            q.session = Some(Session::Dmabuf);
            return Ok(());
        }
        for block in q.fileio.drain_all() {
            // Capacity is MAX_BLOCKS, the most the queue holds.
            let _ = old.push_within_capacity(block);
        }
        q.fileio
            .set_flush_threshold(buf.watermark().saturating_mul(scan_bytes));
        while let Some(block) = fresh.pop() {
            // At most MAX_BLOCKS by construction of the geometry.
            let _ = q.fileio.hardware.submit(block);
        }
        q.session = Some(Session::Fileio);
        Ok(())
    }

    fn disable(buf: &Buffer<Self>) -> Result {
        // Fileio blocks stay readable: the IIO core lets readers drain a
        // disabled buffer. DMABUF blocks in flight complete with an error.
        let _queue = buf.lock_queue();
        let this = buf.data();
        // Data written but not played is dropped with the blocks, after the
        // spinlock is released (and without allocating: disable must not
        // fail).
        let mut old: Ring<Block<KVVec<u8>>, MAX_BLOCKS> = Ring::default();
        {
            let mut q = this.queues.lock();
            q.session = None;
            if buf.direction() == Direction::Out {
                q.out_allocated = false;
                for block in q.fileio_out.drain_all() {
                    // The queue never holds more than MAX_BLOCKS.
                    let _ = old.push_back(block);
                }
            }
        }
        this.cancel_dmabufs(ECANCELED);
        drop(old);
        Ok(())
    }

    fn attach_dmabuf(buf: &Buffer<Self>, attachment: &Attachment<'_>) -> Result<AttachedDmabuf> {
        {
            let q = buf.data().queues.lock();
            if q.dead {
                return Err(ENODEV);
            }
            if q.session == Some(Session::Fileio) {
                return Err(EBUSY);
            }
        }
        let map = attachment.map_kernel()?;
        let mut q = buf.data().queues.lock();
        if q.session == Some(Session::Fileio) {
            return Err(EBUSY);
        }
        q.attached += 1;
        Ok(AttachedDmabuf { map })
    }

    fn detach_dmabuf(buf: &Buffer<Self>, attached: AttachedDmabuf) {
        buf.data().queues.lock().attached -= 1;
        drop(attached);
    }

    fn enqueue_dmabuf(
        queue: &QueueHeld<'_, Self>,
        attached: &AttachedDmabuf,
        fence: &CoreFence,
        bytes_used: usize,
        cyclic: bool,
    ) -> Result {
        // The core checked `bytes_used` against the DMABUF's size, and
        // refuses CYCLIC on input buffers.
        let scan_bytes = Self::scan_layout_held(queue)?.scan_bytes;
        if scan_bytes == 0 || bytes_used % scan_bytes != 0 {
            return Err(EINVAL);
        }
        let bytes_used = bytes_used.min(attached.map.len());
        let mut q = queue.buffer().data().queues.lock();
        if q.dead {
            return Err(ENODEV);
        }
        if q.dmabuf.len() >= MAX_BLOCKS {
            return Err(ENOSPC);
        }
        // INVARIANT: The core keeps the attachment, hence `map`, until the
        // fence is done.
        let block = QueuedBlock {
            data: attached.map.as_ptr(),
            completion: Completion::Mainline(fence.accept()),
            bytes_used,
            dependency: None,
        };
        let block = Block::new(block, bytes_used);
        // Room was checked under the same lock.
        let _ = q.dmabuf.submit(if cyclic { block.cyclic() } else { block });
        Ok(())
    }

    fn dma_device(buf: &Buffer<Self>) -> *mut bindings::device {
        raw_device(&buf.data().dma_dev)
    }
}
