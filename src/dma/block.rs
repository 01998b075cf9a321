// SPDX-License-Identifier: GPL-2.0

//! DMABUF memory handed to a device by an ENQUEUE.
//!
//! The memory is shared: userspace maps it, other devices may use it. The
//! DMABUF protocol (fences, and the queue that owns the block meanwhile)
//! keeps the other users out while the device works on it, but userspace
//! can break that protocol. So no reference (`&[u8]`, `&mut [u8]`) is ever
//! made over the memory: bytes move in and out only through the copy
//! primitives below, like a DMA engine's reads and writes.

use super::buf::{DmaBuf, KernelMapping};
use crate::bindings;
use kernel::{ffi, prelude::*, sync::Arc};

/// Copies `src` into shared memory at `dst`.
///
/// # Safety
///
/// `dst` must be valid for writes of `src.len()` bytes, and the caller
/// must own the device side of that range: no other kernel user accesses
/// it meanwhile (userspace or another device that does anyway, against the
/// fences, can only garble the bytes).
unsafe fn copy_to_shared(dst: *mut u8, src: &[u8]) {
    // SAFETY: Per the requirements; a raw copy makes no reference to the
    // destination.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// Copies shared memory at `src` into `dst`.
///
/// # Safety
///
/// `src` must be valid for reads of `dst.len()` bytes, and the caller must
/// own the device side of that range (see [`copy_to_shared`]).
unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    // SAFETY: Per the requirements; a raw copy makes no reference to the
    // source.
    unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
}

enum Memory {
    /// A block this module exported (seed ALLOC), with the reference that
    /// keeps it.
    Ours { _dmabuf: DmaBuf },
    /// Any exporter's DMABUF, mapped when it was attached (mainline).
    Mapped { _map: Arc<KernelMapping> },
}

/// `len` bytes of a DMABUF a device transfers, kept alive by this value.
///
/// # Invariants
///
/// `start` points to at least `len` bytes of the memory `memory` keeps
/// mapped in the kernel. Each `DeviceBlock` is made for one ENQUEUE, and
/// its owner (the block queue) is the only kernel user of the memory's
/// device side until the ENQUEUE's fence signals.
pub(crate) struct DeviceBlock {
    memory: Memory,
    start: *mut u8,
    len: usize,
}

// SAFETY: The memory is not tied to a thread; `memory` is `Send`.
unsafe impl Send for DeviceBlock {}

impl DeviceBlock {
    /// The first `len` bytes of one of our exported blocks: `EINVAL` if
    /// `dmabuf` is not ours or is smaller.
    pub(crate) fn ours(dmabuf: DmaBuf, len: usize) -> Result<Self> {
        let start = dmabuf.block().ok_or(EINVAL)?.as_ptr();
        if len > dmabuf.size() {
            return Err(EINVAL);
        }
        // INVARIANT: Our block's memory is vmalloc'ed for the DMABUF's
        // whole size, freed only once the last reference (one is ours) goes.
        Ok(Self {
            memory: Memory::Ours { _dmabuf: dmabuf },
            start,
            len,
        })
    }

    /// The first `len` bytes of an attached DMABUF's kernel mapping.
    pub(crate) fn mapped(map: Arc<KernelMapping>, len: usize) -> Result<Self> {
        if len > map.len() {
            return Err(EINVAL);
        }
        // INVARIANT: The mapping covers the DMABUF's size and stays while
        // the `Arc` does.
        Ok(Self {
            start: map.as_ptr(),
            memory: Memory::Mapped { _map: map },
            len,
        })
    }

    /// Identifies the memory (two ENQUEUEs of one DMABUF have the same key).
    pub(crate) fn key(&self) -> usize {
        self.start as usize
    }

    /// The device writes `src` at `offset`.
    pub(crate) fn write_at(&mut self, offset: usize, src: &[u8]) -> Result {
        let end = offset.checked_add(src.len()).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        // SAFETY: In bounds (checked above, type invariant); `&mut self`
        // and the type invariant make this the only kernel user.
        unsafe { copy_to_shared(self.start.add(offset), src) };
        if let Memory::Ours { .. } = self.memory {
            // The CPU wrote through the kernel's alias of pages userspace
            // maps too: write it back for the other alias.
            // SAFETY: Inside our block's kernel mapping.
            unsafe {
                bindings::iio_dmabuf_helper_flush_kernel_vmap_range(
                    self.start.add(offset).cast(),
                    src.len() as ffi::c_int,
                )
            };
        }
        Ok(())
    }

    /// The device reads `dst.len()` bytes at `offset`.
    pub(crate) fn read_at(&mut self, offset: usize, dst: &mut [u8]) -> Result {
        let end = offset.checked_add(dst.len()).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        if let Memory::Ours { .. } = self.memory {
            // What userspace wrote through its alias must be seen here.
            // SAFETY: Inside our block's kernel mapping.
            unsafe {
                bindings::iio_dmabuf_helper_invalidate_kernel_vmap_range(
                    self.start.add(offset).cast(),
                    dst.len() as ffi::c_int,
                )
            };
        }
        // SAFETY: As in `write_at`.
        unsafe { copy_from_shared(self.start.add(offset), dst) };
        Ok(())
    }
}
