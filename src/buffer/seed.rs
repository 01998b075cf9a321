// SPDX-License-Identifier: GPL-2.0

//! The DMABUF API of the original proposal, on the buffer's char device
//! `/dev/iio:deviceN-dmabufM`: ALLOC a block, ENQUEUE it (seed number
//! 0x93 or mainline's 0x94). The uAPI is `include/uapi/linux/iio_dmabuf.h`.
//!
//! An ENQUEUE publishes its own fence on the DMABUF's reservation object.
//! It takes the reservation lock first (the order the IIO core uses), so
//! two ENQUEUEs of one block are serialised, and makes the fence under the
//! engine's lock together with the submit: the fence exists only for a
//! block the engine accepted, and fences signal in seqno order.

use super::{
    block::{Completion, DmabufBlock},
    reap, refusal, BlockBuffer,
};
use crate::{
    chardev::CharDevice,
    dma::{
        block::DeviceBlock,
        buf::{export_block, DmaBuf, FenceUsage},
        fence::FenceSlot,
    },
    engine::queue::{Block, Direction},
    iio::buffer::Buffer,
};
use kernel::{
    fs::File,
    ioctl::_IOW,
    prelude::*,
    sync::{aref::ARef, ArcBorrow},
    uaccess::{UserPtr, UserSlice},
};

/// `struct iio_dmabuf_alloc_req`
#[derive(Clone, Copy)]
struct AllocReq {
    size: u64,
    resv: u64,
}

/// `struct iio_dmabuf`
#[derive(Clone, Copy)]
struct IioDmabuf {
    fd: u32,
    flags: u32,
    bytes_used: u64,
}

// The uAPI structs are packed C layouts of plain integers (no padding):
// read field by field, in order, as the user wrote them.
const ALLOC: u32 = _IOW::<[u64; 2]>(b'i' as u32, 0x92);
const SEED_ENQUEUE: u32 = _IOW::<[u64; 2]>(b'i' as u32, 0x93);
const ENQUEUE: u32 = _IOW::<[u64; 2]>(b'i' as u32, 0x94);

/// `IIO_BUFFER_DMABUF_CYCLIC`
const IIO_BUFFER_DMABUF_CYCLIC: u32 = 1;

impl AllocReq {
    fn read(arg: usize) -> Result<Self> {
        let mut r = UserSlice::new(UserPtr::from_addr(arg), 16).reader();
        Ok(Self {
            size: r.read::<u64>()?,
            resv: r.read::<u64>()?,
        })
    }
}

impl IioDmabuf {
    fn read(arg: usize) -> Result<Self> {
        let mut r = UserSlice::new(UserPtr::from_addr(arg), 16).reader();
        Ok(Self {
            fd: r.read::<u32>()?,
            flags: r.read::<u32>()?,
            bytes_used: r.read::<u64>()?,
        })
    }
}

/// The char device of one IIO buffer.
pub(crate) struct DmabufChannel {
    buffer: ARef<Buffer<BlockBuffer>>,
}

impl DmabufChannel {
    pub(crate) fn new(buffer: ARef<Buffer<BlockBuffer>>) -> Self {
        Self { buffer }
    }
}

impl CharDevice for DmabufChannel {
    /// One opener at a time, never with an enabled fileio buffer.
    fn open(this: ArcBorrow<'_, Self>) -> Result {
        let buffer = this.buffer.data();
        let opened = buffer.queue.lock().engine.open_chardev();
        // Fileio blocks of a disabled buffer go.
        reap(buffer);
        opened.map_err(refusal)
    }

    /// The blocks this char device queued complete with `ECANCELED`;
    /// those of mainline users stay.
    fn release(this: ArcBorrow<'_, Self>) {
        let buffer = this.buffer.data();
        buffer.queue.lock().engine.close_chardev();
        reap(buffer);
    }

    fn ioctl(this: ArcBorrow<'_, Self>, file: &File, cmd: u32, arg: usize) -> Result<i32> {
        let nonblock = file.flags() & kernel::bindings::O_NONBLOCK != 0;
        match cmd {
            ALLOC => {
                let req = AllocReq::read(arg)?;
                if req.resv != 0 {
                    return Err(EINVAL);
                }
                alloc(&this.buffer, req.size)?.into_fd()
            }
            ENQUEUE | SEED_ENQUEUE => {
                let req = IioDmabuf::read(arg)?;
                enqueue(&this.buffer, req, nonblock)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// ALLOC: a new zeroed DMABUF block of `size` bytes, charged to this
/// buffer within the `dmabuf_max_bytes` limit.
fn alloc(buf: &Buffer<BlockBuffer>, size: u64) -> Result<DmaBuf> {
    let this = buf.data();
    if this.queue.lock().engine.mode() == crate::engine::queue::Mode::Dead {
        return Err(ENODEV);
    }
    let size = size.try_into().map_err(|_| EINVAL)?;
    export_block(size, &this.account, crate::dmabuf_max_bytes())
}

/// ENQUEUE: queues one of our blocks for the hardware, with a new fence on
/// its reservation object. With `nonblock`, a contended reservation lock
/// fails with `EBUSY` (the fences the block depends on are waited for
/// asynchronously either way).
fn enqueue(buf: &Buffer<BlockBuffer>, req: IioDmabuf, nonblock: bool) -> Result {
    let this = buf.data();
    let output = buf.direction() == Direction::Out;
    let cyclic = match req.flags {
        0 => false,
        // Repeating a block only makes sense for output.
        IIO_BUFFER_DMABUF_CYCLIC if output => true,
        _ => return Err(EINVAL),
    };
    let dmabuf = DmaBuf::from_fd(req.fd.try_into().map_err(|_| EBADF)?)?;
    let bytes_used = usize::try_from(req.bytes_used).map_err(|_| EINVAL)?;
    // The scan size of the channels enabled now (the core updates
    // bytes_per_datum only when it enables the buffer).
    let scan_bytes = BlockBuffer::scan_bytes(buf)?;
    if bytes_used == 0
        || bytes_used > dmabuf.size()
        || scan_bytes == 0
        || bytes_used % scan_bytes != 0
    {
        return Err(EINVAL);
    }
    // `EINVAL` unless the block is ours.
    let memory = DeviceBlock::ours(dmabuf.clone(), bytes_used)?;
    // With a DMA channel, the block is mapped for its device (once per
    // block and device, kept until the block is freed).
    let table = match (&this.channel_dev, dmabuf.block()) {
        (Some(dev), Some(block)) => Some(block.map_for(dev)?),
        _ => None,
    };
    let memory = memory.with_table(table);
    // Implicit synchronisation: the device reads (DAC) after the writers
    // are done, writes (ADC) after everybody is.
    let (usage, wait_for) = if output {
        (FenceUsage::Read, FenceUsage::Write)
    } else {
        (FenceUsage::Write, FenceUsage::Read)
    };
    let slot = FenceSlot::new()?;
    let mut resv = dmabuf.lock_resv(nonblock)?;
    resv.reserve_fence()?;
    // Taken before our own fence joins the reservation object.
    let dependency = resv.dependency(wait_for)?;
    let fence = {
        let mut q = this.queue.lock();
        q.engine
            .can_submit_key(memory.key(), cyclic)
            .map_err(refusal)?;
        q.seqno += 1;
        let fence = slot.init(&this.fences, q.seqno);
        let block = Block::new(
            DmabufBlock::new(memory, Completion::Seed(fence.clone()), dependency),
            bytes_used,
        );
        // Checked under the same lock above: cannot be refused. Were it,
        // the block's fence signals the error (after the lock is dropped).
        if let Err((r, block)) = q
            .engine
            .submit_dmabuf(if cyclic { block.cyclic() } else { block })
        {
            drop(q);
            super::complete(block, Some(refusal(r)));
            return Err(refusal(r));
        }
        fence
    };
    // Published while the reservation lock is still held since the
    // dependency was taken: nobody saw the block idle meanwhile.
    resv.add_fence(&fence, usage)
}
