// SPDX-License-Identifier: GPL-2.0

//! DMABUF memory handed to a device by an ENQUEUE.
//!
//! The memory is shared: userspace maps it, other devices may use it. The
//! DMABUF protocol (fences, and the queue that owns the block meanwhile)
//! keeps the other users out while the device works on it, but userspace
//! can break that protocol. So no reference (`&[u8]`, `&mut [u8]`) is ever
//! made over the memory: words move in and out only through the raw
//! accessors of [`SharedSpan`], like a DMA engine's reads and writes.

use super::{
    buf::{DmaBuf, KernelMapping},
    device::raw_device,
    engine::{DmaTarget, Segment},
};
use crate::{
    bindings,
    engine::span::{low_bytes, scans_fit, widen, ByteSink, ByteSource},
};
use core::marker::PhantomData;
use kernel::{device::Device, ffi, prelude::*, scatterlist::SGTable, sync::Arc};

/// A scatter-gather table of a block's memory, DMA-mapped for one device:
/// the IIO core's mapping of an attachment (mainline), or the module's own
/// mapping of one of its blocks (seed).
///
/// # Invariants
///
/// `sgt` is mapped for `dev` with `dir`, and stays so while the
/// [`DeviceBlock`] that holds this value is in use by the hardware (until
/// its fence signals).
pub(crate) struct DeviceTable {
    sgt: *mut bindings::sg_table,
    dev: *mut bindings::device,
    dir: bindings::dma_data_direction,
}

impl DeviceTable {
    /// # Safety
    ///
    /// `sgt` must be mapped for `dev` with `dir` and stay so until the
    /// fence of the block this table is given to signals.
    pub(crate) unsafe fn new(
        sgt: *mut bindings::sg_table,
        dev: *mut bindings::device,
        dir: bindings::dma_data_direction,
    ) -> Self {
        // INVARIANT: Per the function's safety requirement.
        Self { sgt, dev, dir }
    }
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
    /// The memory as a DMA channel reaches it, if mapped for one.
    table: Option<DeviceTable>,
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
            table: None,
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
            table: None,
        })
    }

    /// The same block, which a DMA channel reaches through `table`.
    pub(crate) fn with_table(mut self, table: Option<DeviceTable>) -> Self {
        self.table = table;
        self
    }

    /// Whether a channel of `dev` can move this block's data.
    pub(crate) fn mapped_for(&self, dev: &Device) -> bool {
        self.table
            .as_ref()
            .is_some_and(|t| t.dev == raw_device(dev))
    }

    /// Identifies the memory (two ENQUEUEs of one DMABUF have the same key).
    pub(crate) fn key(&self) -> usize {
        self.start as usize
    }

    /// The device writes the `len` bytes at `offset` with `fill`, which
    /// stores straight into the memory through a [`SharedSpan`] (no
    /// staging copy).
    pub(crate) fn fill_with(
        &mut self,
        offset: usize,
        len: usize,
        fill: impl FnOnce(&mut SharedSpan<'_>),
    ) -> Result {
        let mut span = self.span(offset, len)?;
        fill(&mut span);
        if let Memory::Ours { .. } = self.memory {
            // The CPU wrote through the kernel's alias of pages userspace
            // maps too: write it back for the other alias.
            // SAFETY: Inside our block's kernel mapping (checked by `span`).
            unsafe {
                bindings::iio_dmabuf_helper_flush_kernel_vmap_range(
                    self.start.add(offset).cast(),
                    len as ffi::c_int,
                )
            };
        }
        Ok(())
    }

    /// The device reads the `len` bytes at `offset` with `read`, which
    /// loads straight from the memory through a [`SharedSpan`].
    pub(crate) fn read_with(
        &mut self,
        offset: usize,
        len: usize,
        read: impl FnOnce(&SharedSpan<'_>),
    ) -> Result {
        if let Memory::Ours { .. } = self.memory {
            // What userspace wrote through its alias must be seen here
            // (bounds checked first).
            self.span(offset, len)?;
            // SAFETY: Inside our block's kernel mapping (checked above).
            unsafe {
                bindings::iio_dmabuf_helper_invalidate_kernel_vmap_range(
                    self.start.add(offset).cast(),
                    len as ffi::c_int,
                )
            };
        }
        read(&self.span(offset, len)?);
        Ok(())
    }

    fn span(&mut self, offset: usize, len: usize) -> Result<SharedSpan<'_>> {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        // INVARIANT: In bounds (checked above, type invariant); the span
        // borrows `self` mutably, which makes it the only kernel user.
        Ok(SharedSpan {
            // SAFETY: `offset <= self.len`: inside the mapping.
            start: unsafe { self.start.add(offset) },
            len,
            _block: PhantomData,
        })
    }
}

/// A range of a [`DeviceBlock`]'s shared memory, as the device sees it:
/// words are stored and loaded through raw accessors, never through a
/// reference to the memory.
///
/// # Invariants
///
/// `start` is valid for reads and writes of `len` bytes, and the span's
/// owner is the only kernel user of them while it lives (it borrows its
/// [`DeviceBlock`] mutably).
pub(crate) struct SharedSpan<'a> {
    start: *mut u8,
    len: usize,
    _block: PhantomData<&'a mut DeviceBlock>,
}

impl SharedSpan<'_> {
    #[inline(always)]
    fn fits(&self, at: usize, n: usize) -> bool {
        at.checked_add(n).is_some_and(|end| end <= self.len)
    }
}

impl ByteSink for SharedSpan<'_> {
    fn size(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        // Callers stay in bounds; a store that would not is not made.
        if !self.fits(at, N) {
            return;
        }
        // SAFETY: `at + N <= len` (checked above) and the type invariant;
        // an unaligned raw store makes no reference to the memory.
        unsafe { self.start.add(at).cast::<[u8; N]>().write_unaligned(bytes) };
    }

    #[inline(always)]
    fn put_scans<const B: usize>(
        &mut self,
        at: usize,
        count: usize,
        stride: usize,
        mut next: impl FnMut() -> u64,
    ) {
        if !scans_fit(self.len, at, count, stride, B) {
            return;
        }
        let mut scan = self.start.wrapping_add(at);
        for _ in 0..count {
            // SAFETY: Every scan's `B` bytes from `at` are in the span
            // (checked above), which the type invariant makes ours alone;
            // an unaligned raw store.
            unsafe { scan.cast::<[u8; B]>().write_unaligned(low_bytes(next())) };
            scan = scan.wrapping_add(stride);
        }
    }
}

impl ByteSource for SharedSpan<'_> {
    fn size(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        // Callers stay in bounds; a load that would not reads zeros.
        if !self.fits(at, N) {
            return [0; N];
        }
        // SAFETY: As in `put`.
        unsafe { self.start.add(at).cast::<[u8; N]>().read_unaligned() }
    }

    #[inline(always)]
    fn match_scans<const B: usize>(
        &self,
        at: usize,
        count: usize,
        stride: usize,
        mut next: impl FnMut() -> u64,
    ) -> usize {
        if !scans_fit(self.len, at, count, stride, B) {
            return 0;
        }
        let mut scan = self.start.wrapping_add(at);
        for matched in 0..count {
            // SAFETY: Every scan's first `B` bytes are in the span (checked
            // above); an unaligned raw load.
            let word = widen(unsafe { scan.cast::<[u8; B]>().read_unaligned() });
            if word != next() {
                return matched;
            }
            scan = scan.wrapping_add(stride);
        }
        count
    }
}

// SAFETY: The segments come from the table, which is mapped for `dev`
// (checked) and covers the block's memory (type invariant of
// `DeviceTable`); `offset + len` is checked against the block's length,
// and the owner of the `DeviceBlock` (the block queue) is its only kernel
// user while it is borrowed mutably (type invariant).
unsafe impl DmaTarget for DeviceBlock {
    fn segments(
        &mut self,
        dev: &Device,
        offset: usize,
        len: usize,
        each: &mut dyn FnMut(Segment) -> Result,
    ) -> Result {
        let table = self.table.as_ref().ok_or(EINVAL)?;
        if table.dev != raw_device(dev) || offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: Mapped and unchanged while the block is in use (type
        // invariant of `DeviceTable`).
        let sgt = unsafe { SGTable::from_raw(table.sgt) };
        each_segment(sgt, offset, len, each)
    }

    fn direction(&self) -> bindings::dma_data_direction {
        self.table
            .as_ref()
            .map_or(bindings::dma_data_direction::DMA_BIDIRECTIONAL, |t| t.dir)
    }
}

/// Calls `each` with the segments of `sgt`'s DMA addresses that cover
/// bytes `offset..offset + len` of its memory, in order (`EINVAL` if the
/// table is shorter).
pub(super) fn each_segment(
    sgt: &SGTable,
    offset: usize,
    len: usize,
    each: &mut dyn FnMut(Segment) -> Result,
) -> Result {
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    let mut pos = 0usize;
    for entry in sgt.iter() {
        if pos >= end {
            break;
        }
        let entry_len = usize::try_from(entry.dma_len()).map_err(|_| EINVAL)?;
        let entry_end = pos.saturating_add(entry_len);
        let from = pos.max(offset);
        let to = entry_end.min(end);
        if from < to {
            each(Segment {
                addr: entry.dma_address() + (from - pos) as bindings::dma_addr_t,
                len: to - from,
            })?;
        }
        pos = entry_end;
    }
    if pos < end {
        return Err(EINVAL);
    }
    Ok(())
}
