// SPDX-License-Identifier: GPL-2.0

//! The mainline DMABUF front-end: the IIO core's ATTACH, DETACH and
//! ENQUEUE hooks (Linux 6.11's API, on the buffer's file descriptor). The
//! core makes the fences, waits for other users' fences, and holds the
//! DMABUF's reservation lock while it attaches.

use super::{
    block::{Completion, DmabufBlock},
    complete, reap_fileio, refusal, BlockBuffer,
};
use crate::{
    dma::{
        block::{DeviceBlock, DeviceTable},
        buf::KernelMapping,
    },
    engine::queue::Block,
    iio::buffer::{Attachment, Buffer, CoreFence, QueueHeld},
};
use kernel::{
    prelude::*,
    sync::{Arc, UniqueArc},
};

/// What the buffer keeps of a DMABUF attached through the mainline API.
pub(crate) struct AttachedDmabuf {
    /// Shared with the blocks queued from it: the last one to go unmaps.
    map: Arc<KernelMapping>,
}

/// ATTACH: the buffer turns (or stays) a DMABUF buffer, then maps the
/// DMABUF for the virtual hardware. The core holds the DMABUF's
/// reservation lock: nothing here may unmap with the unlocked call.
pub(super) fn attach(
    buf: &Buffer<BlockBuffer>,
    attachment: &Attachment<'_>,
) -> Result<AttachedDmabuf> {
    let this = buf.data();
    // Everything fallible that holds no mapping comes first.
    let slot = UniqueArc::<KernelMapping>::new_uninit(GFP_KERNEL)?;
    let joined = this.queue.lock().engine.attach();
    // Fileio blocks of a disabled buffer go. DMABUF blocks another path
    // removed are not completed here: the last of them to go would unmap
    // its DMABUF under its reservation lock, inside the one held now.
    reap_fileio(this);
    joined.map_err(refusal)?;
    let map = match attachment.map_kernel() {
        Ok(map) => map,
        Err(e) => {
            this.queue.lock().engine.detach();
            return Err(e);
        }
    };
    // Nothing can fail from here on: the lock-held unmapping path is not
    // needed any more.
    Ok(AttachedDmabuf {
        map: slot.write(map.unlocked()).into(),
    })
}

/// DETACH (once every fence of the attachment signalled).
pub(super) fn detach(buf: &Buffer<BlockBuffer>, attached: AttachedDmabuf) {
    buf.data().queue.lock().engine.detach();
    // Unmapped here (or by the last block of it still being finished).
    drop(attached);
}

/// ENQUEUE: queues `bytes_used` bytes of an attached DMABUF with the
/// core's fence. Inside the core's fence signalling section, with the
/// buffer's queue mutex held: no allocation, and nothing dropped that
/// could be a last reference.
pub(super) fn enqueue(
    queue: &QueueHeld<'_, BlockBuffer>,
    attached: &AttachedDmabuf,
    fence: &CoreFence,
    table: Option<DeviceTable>,
    bytes_used: usize,
    cyclic: bool,
) -> Result {
    // The core checked `bytes_used` against the DMABUF's size, and
    // refuses CYCLIC on input buffers.
    let scan_bytes = BlockBuffer::scan_bytes_held(queue)?;
    if scan_bytes == 0 || bytes_used % scan_bytes != 0 {
        return Err(EINVAL);
    }
    let this = queue.buffer().data();
    let mut q = this.queue.lock();
    // Checked before the block holds the core's fence: a refused block
    // must leave the fence to the core.
    q.engine
        .can_submit_key(attached.map.key(), cyclic)
        .map_err(refusal)?;
    // An `Arc` clone and a fence reference: no allocation.
    let memory = DeviceBlock::mapped(attached.map.clone(), bytes_used)?.with_table(table);
    let block = Block::new(
        DmabufBlock::new(memory, Completion::Mainline(fence.accept()), None),
        bytes_used,
    );
    // Checked under the same lock above: cannot be refused. Were it, the
    // block's fence is ours now: it signals the error, and the core must
    // not signal it again, hence `Ok`.
    let refused = q
        .engine
        .submit_dmabuf(if cyclic { block.cyclic() } else { block })
        .err();
    drop(q);
    if let Some((r, block)) = refused {
        complete(block, Some(refusal(r)));
    }
    Ok(())
}
