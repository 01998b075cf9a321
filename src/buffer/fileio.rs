// SPDX-License-Identifier: GPL-2.0

//! The fileio front-end: read() (input) and write() (output) on
//! `/dev/iio:deviceN`, with kernel blocks that go round between the
//! hardware and the reader or writer, and the enable that sets them up.

use super::{reap, refusal, BlockBuffer, KernelBlock};
use crate::{
    engine::queue::{Block, FileioGeometry, Mode, Plan},
    iio::buffer::Buffer,
};
use kernel::{
    prelude::*,
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// Longest buffer, in scans: the fileio blocks of a buffer hold at most
/// `MAX_LENGTH` scans (64 MiB with every channel and the timestamp). A
/// longer `length` fails the enable, or a DAC's first write(), with
/// `EINVAL`.
pub(crate) const MAX_LENGTH: usize = 1 << 22;

/// Allocates zeroed fileio blocks for the buffer's length and watermark
/// (see [`FileioGeometry`]), mapped for the DMA channel's device if the
/// converter has one. Large: no allocation-failure warning, the caller
/// gets `ENOMEM`.
fn allocate(buf: &Buffer<BlockBuffer>, scan_bytes: usize) -> Result<KVec<Block<KernelBlock>>> {
    if buf.length() > MAX_LENGTH || scan_bytes == 0 {
        return Err(EINVAL);
    }
    let geometry = FileioGeometry::new(buf.length(), buf.watermark()).ok_or(EINVAL)?;
    let block_bytes = geometry.block_scans.checked_mul(scan_bytes).ok_or(EINVAL)?;
    let mut blocks = KVec::with_capacity(geometry.blocks, GFP_KERNEL)?;
    for _ in 0..geometry.blocks {
        let data = KernelBlock::new(block_bytes, buf.data().channel_dev.as_deref())?;
        blocks.push(Block::new(data, block_bytes), GFP_KERNEL)?;
    }
    Ok(blocks)
}

/// read(): copies whole scans from the filled blocks.
pub(super) fn read(buf: &Buffer<BlockBuffer>, out: &mut UserSliceWriter) -> Result<usize> {
    let scan_bytes = buf.bytes_per_datum();
    if scan_bytes == 0 || out.len() < scan_bytes {
        return Err(EINVAL);
    }
    let this = buf.data();
    let _reader = this.fileio.lock();
    let mut total = 0;
    while out.len() >= scan_bytes {
        let taken = this.queue.lock().engine.take_for_read();
        let mut block = match taken {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(r) if total == 0 => return Err(refusal(r)),
            Err(_) => break,
        };
        if let Some(e) = block.data.take_error() {
            // The DMA that filled it failed: its scans are dropped, the
            // reader is told (after what it got before).
            let rest = block.filled - block.consumed;
            let unused = this.queue.lock().engine.return_after_read(block, rest);
            // Freed (if the buffer dropped it meanwhile) after the lock.
            drop(unused);
            if total == 0 {
                return Err(e);
            }
            break;
        }
        let start = block.consumed;
        let n = (block.filled - start).min(out.len() / scan_bytes * scan_bytes);
        // Copy outside the spinlock: this may fault and sleep.
        let copied = out.write_slice(&block.data[start..start + n]);
        let consumed = if copied.is_ok() { n } else { 0 };
        let unused = this.queue.lock().engine.return_after_read(block, consumed);
        // A block the buffer dropped meanwhile is freed here.
        drop(unused);
        match copied {
            Ok(()) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// write(): fills free blocks with whole scans and queues them. The first
/// write() before an enable makes the blocks, for the channels selected
/// then; a write() after the selection changed remakes them (data not
/// played yet is dropped, as the IIO core's kfifo does).
pub(super) fn write(buf: &Buffer<BlockBuffer>, input: &mut UserSliceReader) -> Result<usize> {
    // Data may be written before the enable that sets bytes_per_datum.
    let scan_bytes = BlockBuffer::scan_bytes(buf)?;
    // Whole scans only: the core calls again with what is left of a
    // write, so a fraction refused late would follow scans taken early.
    if scan_bytes == 0 || input.len() < scan_bytes || input.len() % scan_bytes != 0 {
        return Err(EINVAL);
    }
    let this = buf.data();
    let _writer = this.fileio.lock();
    let plan = this.queue.lock().engine.plan_write(scan_bytes);
    if plan.map_err(refusal)? == Plan::NeedBlocks {
        let mut fresh = allocate(buf, scan_bytes)?;
        let mut fresh = fresh.drain_all();
        let installed = this
            .queue
            .lock()
            .engine
            .install_out_blocks(&mut fresh, scan_bytes);
        // Blocks of the old layout, and fresh ones not taken, go here.
        drop(fresh);
        reap(this);
        installed.map_err(refusal)?;
    }
    let mut total = 0;
    while input.len() >= scan_bytes {
        let taken = this.queue.lock().engine.take_for_write(scan_bytes);
        let mut block = match taken {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(r) if total == 0 => return Err(refusal(r)),
            Err(_) => break,
        };
        if let Some(e) = block.data.take_error() {
            // The DMA that played it last failed: the writer is told
            // (after what it wrote before), the block is free again.
            let unused = this.queue.lock().engine.submit_written(block, 0);
            // Freed (if the buffer dropped it meanwhile) after the lock.
            drop(unused);
            if total == 0 {
                return Err(e);
            }
            break;
        }
        // Blocks are made for this scan size: at least one scan fits.
        let n = block.data.len().min(input.len()) / scan_bytes * scan_bytes;
        // Copy outside the spinlock: this may fault and sleep.
        let copied = input.read_slice(&mut block.data[..n]);
        let taken = if copied.is_ok() { n } else { 0 };
        let unused = this.queue.lock().engine.submit_written(block, taken);
        drop(unused);
        match copied {
            Ok(()) if n > 0 => total += n,
            Ok(()) => return Err(EINVAL),
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// Whether write() would take data now (non-zero when it would).
pub(super) fn space_available(buf: &Buffer<BlockBuffer>) -> usize {
    let q = buf.data().queue.lock();
    // Outside a fileio session (no blocks yet, or refused), write() runs
    // and tells.
    let writable = q.engine.has_space() || !matches!(q.engine.mode(), Mode::Fileio { .. });
    usize::from(writable)
}

/// The buffer is enabled: a DMABUF session if DMABUF users exist, else a
/// fileio session with new blocks (or, for output, the blocks write()
/// filled before).
pub(super) fn enable(buf: &Buffer<BlockBuffer>) -> Result {
    let this = buf.data();
    let _fileio = this.fileio.lock();
    let scan_bytes = buf.bytes_per_datum();
    let flush_bytes = buf.watermark().saturating_mul(scan_bytes);
    let mut plan = this
        .queue
        .lock()
        .engine
        .plan_enable(scan_bytes)
        .map_err(refusal)?;
    // At most twice: a commit given blocks never asks for more.
    loop {
        let mut blocks = match plan {
            Plan::Ready => None,
            Plan::NeedBlocks => Some(allocate(buf, scan_bytes)?),
        };
        let mut fresh = blocks.as_mut().map(|b| b.drain_all());
        // Re-checked under the lock: DMABUF users may have come or gone.
        let committed = this
            .queue
            .lock()
            .engine
            .enable(fresh.as_mut(), scan_bytes, flush_bytes);
        // Blocks replaced, and fresh ones not taken, go here.
        drop(fresh);
        drop(blocks);
        reap(this);
        plan = committed.map_err(refusal)?;
        if plan == Plan::Ready {
            return Ok(());
        }
    }
}
