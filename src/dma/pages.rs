// SPDX-License-Identifier: GPL-2.0

//! Kernel memory a DMA channel reaches: zeroed vmalloc'ed pages, their
//! scatter-gather tables mapped for a device, and the fileio path's
//! blocks made of them.

use super::{
    device::raw_device,
    engine::{sync_segments, DmaTarget, Segment},
};
use crate::bindings;
use core::{
    ops::{Deref, DerefMut},
    ptr::NonNull,
};
use kernel::{
    device::Device, error::to_result, ffi, prelude::*, scatterlist::SGTable, sync::aref::ARef,
    types::Opaque,
};

const PAGE: usize = kernel::page::PAGE_SIZE;

/// Zeroed vmalloc'ed memory, a whole number of pages (userspace may map
/// them), with the list of its pages. Freed on drop.
///
/// # Invariants
///
/// `vaddr` is a `vmalloc_user` allocation of `size` bytes (at most
/// `c_int::MAX`, what the cache maintenance calls take) owned by this
/// value, and `pages` lists its pages.
pub(crate) struct VmallocPages {
    vaddr: NonNull<u8>,
    size: usize,
    pages: KVec<*mut bindings::page>,
}

// SAFETY: Kernel memory, not tied to a thread; its owners serialise
// access to the bytes.
unsafe impl Send for VmallocPages {}
// SAFETY: Shared references only read the address and the page list.
unsafe impl Sync for VmallocPages {}

impl VmallocPages {
    /// Allocates `size` zeroed bytes (a non-zero multiple of the page size).
    pub(super) fn new(size: usize) -> Result<Self> {
        if size == 0 || size % PAGE != 0 || ffi::c_int::try_from(size).is_err() {
            return Err(EINVAL);
        }
        let mut pages = KVec::with_capacity(size / PAGE, GFP_KERNEL)?;
        // SAFETY: No requirement; the memory is zeroed.
        let vaddr =
            NonNull::new(unsafe { bindings::iio_dmabuf_helper_vmalloc_user(size as ffi::c_ulong) })
                .ok_or(ENOMEM)?
                .cast::<u8>();
        for i in 0..size / PAGE {
            // SAFETY: Inside the allocation; capacity reserved above.
            let page = unsafe {
                bindings::iio_dmabuf_helper_vmalloc_to_page(vaddr.as_ptr().add(i * PAGE).cast())
            };
            let _ = pages.push_within_capacity(page);
        }
        // INVARIANT: Allocated and listed above.
        Ok(Self { vaddr, size, pages })
    }

    /// Start of the memory, valid while `self` lives.
    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.vaddr.as_ptr()
    }

    /// Bytes allocated.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A new scatter-gather table of the pages, mapped for `dev` with
    /// `dir`. Undone by [`unmap_pages`].
    ///
    /// # Safety
    ///
    /// The table must be unmapped before `self` is dropped; `dev` must be
    /// a live device.
    pub(super) unsafe fn map(
        &self,
        dev: *mut bindings::device,
        dir: bindings::dma_data_direction,
    ) -> Result<*mut bindings::sg_table> {
        // SAFETY: Our pages, freed only after the caller unmapped them.
        unsafe { map_pages(&self.pages, self.size, dev, dir) }
    }

    /// Cache maintenance of the vmap alias the CPU uses, over bytes
    /// `offset..offset + len`: what the CPU wrote through it is written
    /// back (before a device reads), or what it cached is dropped (after
    /// a device wrote).
    pub(super) fn sync_alias(&self, offset: usize, len: usize, invalidate: bool) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(EINVAL);
        }
        // SAFETY: Inside our allocation (checked above).
        let start = unsafe { self.vaddr.as_ptr().add(offset) };
        // SAFETY: `len` bytes from `start` are inside (checked above), at
        // most `size`, hence in range of `c_int` (type invariant).
        unsafe { Self::alias_op(start, len as ffi::c_int, invalidate) };
        Ok(())
    }

    /// As [`Self::sync_alias`] over the whole memory (cannot fail).
    pub(super) fn sync_alias_all(&self, invalidate: bool) {
        // SAFETY: Our whole mapping, whose `size` is in range of `c_int`
        // (type invariant).
        unsafe { Self::alias_op(self.vaddr.as_ptr(), self.size as ffi::c_int, invalidate) };
    }

    /// Flushes or invalidates `len` bytes of a vmap mapping from `start`.
    ///
    /// # Safety
    ///
    /// The range is inside a live vmap mapping.
    unsafe fn alias_op(start: *mut u8, len: ffi::c_int, invalidate: bool) {
        // SAFETY: Per the function's safety requirement.
        unsafe {
            if invalidate {
                bindings::iio_dmabuf_helper_invalidate_kernel_vmap_range(start.cast(), len);
            } else {
                bindings::iio_dmabuf_helper_flush_kernel_vmap_range(start.cast(), len);
            }
        }
    }
}

impl Drop for VmallocPages {
    fn drop(&mut self) {
        // SAFETY: Our allocation (type invariant); its owners unmapped
        // every table of it first (`map`'s requirement).
        unsafe { bindings::iio_dmabuf_helper_vfree(self.vaddr.as_ptr().cast()) };
    }
}

/// A new scatter-gather table of `pages` (`size` bytes), mapped for `dev`
/// with `dir`. Undone by [`unmap_pages`].
///
/// # Safety
///
/// `pages` must be pages of memory that stays allocated until
/// [`unmap_pages`] was called on the table; `dev` a live device.
unsafe fn map_pages(
    pages: &[*mut bindings::page],
    size: usize,
    dev: *mut bindings::device,
    dir: bindings::dma_data_direction,
) -> Result<*mut bindings::sg_table> {
    let sgt = KBox::<Opaque<bindings::sg_table>>::new_uninit(GFP_KERNEL)?;
    let sgt = KBox::into_raw(sgt).cast::<bindings::sg_table>();
    let free = |sgt: *mut bindings::sg_table| {
        // SAFETY: Allocated above as a KBox and not shared.
        drop(unsafe { KBox::from_raw(sgt.cast::<Opaque<bindings::sg_table>>()) })
    };
    // SAFETY: `sgt` is writable memory for a table, `pages` lists `size`
    // bytes of pages (the caller's).
    let ret = unsafe {
        bindings::iio_dmabuf_helper_sg_alloc_table_from_pages(
            sgt,
            pages.as_ptr().cast_mut(),
            pages.len() as u32,
            size as ffi::c_ulong,
            dev,
        )
    };
    if let Err(e) = to_result(ret) {
        free(sgt);
        return Err(e);
    }
    // SAFETY: A valid table of the caller's pages; `dev` is live.
    let ret = unsafe { bindings::iio_dmabuf_helper_dma_map_sgtable(dev, sgt, dir) };
    if let Err(e) = to_result(ret) {
        // SAFETY: Allocated by sg_alloc_table_from_pages above.
        unsafe { bindings::sg_free_table(sgt) };
        free(sgt);
        return Err(e);
    }
    Ok(sgt)
}

/// Unmaps and frees a table [`map_pages`] made.
///
/// # Safety
///
/// `sgt` must come from [`map_pages`] with the same `dev` and `dir`, and
/// no device may use it any more.
pub(super) unsafe fn unmap_pages(
    dev: *mut bindings::device,
    sgt: *mut bindings::sg_table,
    dir: bindings::dma_data_direction,
) {
    // SAFETY: Per the function's requirements.
    unsafe {
        bindings::iio_dmabuf_helper_dma_unmap_sgtable(dev, sgt, dir);
        bindings::sg_free_table(sgt);
        drop(KBox::from_raw(sgt.cast::<Opaque<bindings::sg_table>>()));
    }
}

/// A block of the fileio path: kernel memory the CPU copies to and from
/// userspace, which a DMA channel fills (input) or drains (output) when
/// the block is mapped for the channel's device.
///
/// The CPU and the channel take turns, as the block engine hands the
/// block out: [`DmaTarget::sync_for_device`] gives the range a transfer
/// moves to the channel and [`DmaTarget::sync_for_cpu`] takes it back,
/// each with the cache maintenance of the vmap alias the CPU uses and of
/// the mapping.
///
/// # Invariants
///
/// `len <= memory.size()`; `table` (if any) maps `memory`'s pages for
/// its device with `DMA_BIDIRECTIONAL`, and is this value's.
pub(crate) struct KernelBlock {
    memory: VmallocPages,
    len: usize,
    table: Option<(ARef<Device>, *mut bindings::sg_table)>,
    /// The error of the DMA that last moved this block's data, reported
    /// by the read() or write() that takes the block next.
    error: Option<Error>,
}

// SAFETY: Kernel memory and a table of it, not tied to a thread; `&mut`
// serialises their use.
unsafe impl Send for KernelBlock {}
// SAFETY: Shared references only read the memory.
unsafe impl Sync for KernelBlock {}

const DIR: bindings::dma_data_direction = bindings::dma_data_direction::DMA_BIDIRECTIONAL;

impl KernelBlock {
    /// `len` zeroed bytes, mapped for `dev` if given (the device of the
    /// DMA channel that moves the data).
    pub(crate) fn new(len: usize, dev: Option<&Device>) -> Result<Self> {
        let size = len.checked_next_multiple_of(PAGE).ok_or(EINVAL)?;
        // INVARIANT: `len <= size`; mapped below.
        let mut block = Self {
            memory: VmallocPages::new(size)?,
            len,
            table: None,
            error: None,
        };
        if let Some(dev) = dev {
            // SAFETY: Unmapped before the memory is freed (drop); `dev` is
            // live.
            let sgt = unsafe { block.memory.map(raw_device(dev), DIR) }?;
            block.table = Some((dev.into(), sgt));
        }
        Ok(block)
    }

    /// Whether a channel of `dev` can move this block's data.
    pub(crate) fn mapped_for(&self, dev: &Device) -> bool {
        self.table
            .as_ref()
            .is_some_and(|(d, _)| raw_device(d) == raw_device(dev))
    }

    /// Records the error of the DMA that moved the block's data.
    pub(crate) fn set_error(&mut self, error: Error) {
        self.error = Some(error);
    }

    /// The error of the last DMA, once.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl Deref for KernelBlock {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of our memory (type invariant); the channel
        // writes them only while the block is borrowed mutably.
        unsafe { core::slice::from_raw_parts(self.memory.as_ptr(), self.len) }
    }
}

impl DerefMut for KernelBlock {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: As in `deref`, borrowed mutably.
        unsafe { core::slice::from_raw_parts_mut(self.memory.as_ptr(), self.len) }
    }
}

// SAFETY: The segments come from our table, mapped for `dev` (checked),
// over our whole allocation; `offset + len <= len` is checked; the memory
// is ours alone while we are borrowed mutably.
unsafe impl DmaTarget for KernelBlock {
    fn segments(
        &mut self,
        dev: &Device,
        offset: usize,
        len: usize,
        each: &mut dyn FnMut(Segment) -> Result,
    ) -> Result {
        let (_, sgt) = self.table.as_ref().ok_or(EINVAL)?;
        if !self.mapped_for(dev) || offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: Mapped until we are dropped (type invariant).
        let sgt = unsafe { SGTable::from_raw(*sgt) };
        super::block::each_segment(sgt, offset, len, each)
    }

    fn direction(&self) -> bindings::dma_data_direction {
        DIR
    }

    fn sync_for_device(&mut self, dev: &Device, offset: usize, len: usize) -> Result {
        self.alias_range(offset, len, false)?;
        sync_segments(self, dev, offset, len, false)
    }

    fn sync_for_cpu(&mut self, dev: &Device, offset: usize, len: usize) -> Result {
        sync_segments(self, dev, offset, len, true)?;
        self.alias_range(offset, len, true)
    }
}

impl KernelBlock {
    /// Cache maintenance of the vmap alias over bytes `offset..offset +
    /// len` of the block (see [`VmallocPages::sync_alias`]).
    fn alias_range(&self, offset: usize, len: usize, invalidate: bool) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(EINVAL);
        }
        self.memory.sync_alias(offset, len, invalidate)
    }
}

impl Drop for KernelBlock {
    fn drop(&mut self) {
        if let Some((dev, sgt)) = self.table.take() {
            // SAFETY: Made by `map_pages` for `dev` with `DIR`; the block
            // is not in a transfer (we own it).
            unsafe { unmap_pages(raw_device(&dev), sgt, DIR) };
        }
        // The memory is freed next, with the fields.
    }
}
