// SPDX-License-Identifier: GPL-2.0

//! DMABUFs: references to any `struct dma_buf`, and the exporter of the
//! blocks this module allocates (vmalloc memory userspace can map, that
//! devices can import through an sg_table, and the kernel can vmap).

use super::{
    fence::{Dependency, Fence},
    pages::VmallocPages,
};
use crate::bindings;
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};
use kernel::{
    device::Device,
    error::{from_err_ptr, from_result, to_result},
    ffi, new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex},
};

/// How a fence uses the buffer it is added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FenceUsage {
    /// The device writes the buffer (input).
    Write,
    /// The device reads the buffer (output).
    Read,
}

impl FenceUsage {
    fn raw(self) -> bindings::dma_resv_usage {
        match self {
            FenceUsage::Write => bindings::dma_resv_usage_DMA_RESV_USAGE_WRITE,
            FenceUsage::Read => bindings::dma_resv_usage_DMA_RESV_USAGE_READ,
        }
    }
}

/// A reference to a DMABUF, ours or anybody's.
///
/// # Invariants
///
/// `ptr` is a live `dma_buf` and this value owns one file reference to it.
pub(crate) struct DmaBuf {
    ptr: NonNull<bindings::dma_buf>,
}

// SAFETY: A dma_buf reference may be used and dropped from any thread
// (dma_buf_put defers to a work item in interrupt context).
unsafe impl Send for DmaBuf {}
// SAFETY: Shared references only read immutable fields.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// The DMABUF behind file descriptor `fd`: `EBADF` if `fd` is not
    /// open, `EINVAL` if it is not a DMABUF.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: No requirement; the result is a new reference or an error.
        let ptr = from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
        // INVARIANT: `dma_buf_get` returned a new reference.
        Ok(Self {
            // SAFETY: Not an error pointer, hence not NULL.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        })
    }

    fn as_raw(&self) -> *mut bindings::dma_buf {
        self.ptr.as_ptr()
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: Valid by the type invariant; `size` never changes.
        unsafe { (*self.as_raw()).size }
    }

    /// The block's memory, if this module exported the DMABUF.
    pub(crate) fn block(&self) -> Option<&BlockMemory> {
        // SAFETY: Valid by the type invariant; `ops` and `priv` never change.
        let (ops, private) = unsafe { ((*self.as_raw()).ops, (*self.as_raw()).priv_) };
        if !core::ptr::eq(ops, &BLOCK_OPS) {
            return None;
        }
        // SAFETY: Our DMABUFs carry a `BlockMemory` in `priv`, freed only
        // by `release`, which cannot run while this reference lives.
        Some(unsafe { &*private.cast::<BlockMemory>() })
    }

    /// Locks the DMABUF's reservation object: waits interruptibly, or
    /// fails with `EBUSY` at once when `nonblock` (as the IIO core's
    /// mainline ENQUEUE does).
    pub(crate) fn lock_resv(&self, nonblock: bool) -> Result<ResvGuard<'_>> {
        // SAFETY: Valid by the type invariant; every DMABUF has a resv.
        let resv = unsafe { (*self.as_raw()).resv };
        if nonblock {
            // SAFETY: `resv` is valid while the DMABUF is.
            if !unsafe { bindings::iio_dmabuf_helper_dma_resv_trylock(resv) } {
                return Err(EBUSY);
            }
        } else {
            // SAFETY: `resv` is valid while the DMABUF is.
            to_result(unsafe { bindings::iio_dmabuf_helper_dma_resv_lock_interruptible(resv) })?;
        }
        // INVARIANT: Locked above.
        Ok(ResvGuard {
            resv,
            reserved: false,
            _dmabuf: PhantomData,
        })
    }

    /// Installs a new file descriptor (O_CLOEXEC) for the DMABUF; the
    /// descriptor takes over this reference.
    pub(crate) fn into_fd(self) -> Result<i32> {
        // SAFETY: Valid by the type invariant.
        let fd = unsafe { bindings::dma_buf_fd(self.as_raw(), bindings::O_CLOEXEC as i32) };
        to_result(fd)?;
        // The reference now belongs to the file descriptor.
        core::mem::forget(self);
        Ok(fd)
    }
}

impl Clone for DmaBuf {
    fn clone(&self) -> Self {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::iio_dmabuf_helper_get_dma_buf(self.as_raw()) };
        // INVARIANT: The clone owns the new reference.
        Self { ptr: self.ptr }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: This value owns a reference.
        unsafe { bindings::dma_buf_put(self.as_raw()) };
    }
}

/// A DMABUF's reservation object, locked.
///
/// # Invariants
///
/// `resv` is the reservation object of a DMABUF that outlives `'a`, locked
/// by this value; `reserved` says a fence slot was reserved under this
/// lock.
pub(crate) struct ResvGuard<'a> {
    resv: *mut bindings::dma_resv,
    reserved: bool,
    _dmabuf: PhantomData<&'a DmaBuf>,
}

impl ResvGuard<'_> {
    /// Reserves room for one more fence, so that [`Self::add_fence`]
    /// cannot fail.
    pub(crate) fn reserve_fence(&mut self) -> Result {
        // SAFETY: Locked, by the type invariant.
        to_result(unsafe { bindings::dma_resv_reserve_fences(self.resv, 1) })?;
        self.reserved = true;
        Ok(())
    }

    /// What a new user with `usage` must wait for: the fences of `usage`
    /// and stronger (`Write`: the writers; `Read`: everybody).
    pub(crate) fn dependency(&self, usage: FenceUsage) -> Result<Option<Dependency>> {
        // SAFETY: Live (locked) reservation object.
        unsafe { Dependency::on_fences(self.resv, usage.raw()) }
    }

    /// Adds `fence` in the slot [`Self::reserve_fence`] reserved.
    pub(crate) fn add_fence(&mut self, fence: &Fence, usage: FenceUsage) -> Result {
        if !self.reserved {
            return Err(EINVAL);
        }
        self.reserved = false;
        // SAFETY: Locked, a slot reserved, the fence valid (the resv takes
        // its own reference).
        unsafe { bindings::dma_resv_add_fence(self.resv, fence.as_raw(), usage.raw()) };
        Ok(())
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Locked by this value (type invariant).
        unsafe { bindings::iio_dmabuf_helper_dma_resv_unlock(self.resv) };
    }
}

/// A kernel virtual mapping of a DMABUF's memory (any exporter's), made
/// with `dma_buf_vmap`; unmapped on drop.
///
/// # Invariants
///
/// `map` is a system-memory mapping of `dmabuf` made by `dma_buf_vmap`.
pub(crate) struct KernelMapping {
    dmabuf: DmaBuf,
    map: bindings::iosys_map,
}

// SAFETY: The mapping is plain kernel memory, usable from any thread.
unsafe impl Send for KernelMapping {}
// SAFETY: Shared references only read the mapping's address.
unsafe impl Sync for KernelMapping {}

impl KernelMapping {
    /// Maps `dmabuf` into the kernel, under its reservation lock: the
    /// mapping is then unmapped under that lock too if dropped before
    /// [`LockedMapping::unlocked`] lets it go.
    ///
    /// # Safety
    ///
    /// `dmabuf` must be a live DMABUF whose reservation lock the caller
    /// holds for `'a`.
    pub(crate) unsafe fn new_locked<'a>(
        dmabuf: *mut bindings::dma_buf,
    ) -> Result<LockedMapping<'a>> {
        // SAFETY: Live per the requirement: take our own reference.
        unsafe { bindings::iio_dmabuf_helper_get_dma_buf(dmabuf) };
        let dmabuf = DmaBuf {
            // SAFETY: Non-null: a live DMABUF.
            ptr: unsafe { NonNull::new_unchecked(dmabuf) },
        };
        let mut map = bindings::iosys_map::default();
        // SAFETY: The reservation lock is held per the requirement.
        to_result(unsafe { bindings::dma_buf_vmap(dmabuf.as_raw(), &mut map) })?;
        if map.is_iomem {
            // Scans are written with plain stores: not for I/O memory.
            // SAFETY: Mapped just above, the lock still held.
            unsafe { bindings::dma_buf_vunmap(dmabuf.as_raw(), &mut map) };
            return Err(EOPNOTSUPP);
        }
        // INVARIANT: Mapped above, system memory; the lock is held for
        // `'a` per the requirement.
        Ok(LockedMapping {
            mapping: core::mem::ManuallyDrop::new(Self { dmabuf, map }),
            _locked: PhantomData,
        })
    }

    /// Start of the mapping, `len()` bytes.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        // SAFETY: `vaddr` is the union member in use (not I/O memory).
        unsafe { self.map.__bindgen_anon_1.vaddr.cast() }
    }

    /// Identifies the memory (the key of the blocks queued from it).
    pub(crate) fn key(&self) -> usize {
        self.as_ptr() as usize
    }

    /// Size of the mapping (the DMABUF's size).
    pub(crate) fn len(&self) -> usize {
        self.dmabuf.size()
    }
}

impl Drop for KernelMapping {
    fn drop(&mut self) {
        // SAFETY: Mapped by `new_locked`, by the type invariant.
        unsafe { bindings::dma_buf_vunmap_unlocked(self.dmabuf.as_raw(), &mut self.map) };
    }
}

/// A [`KernelMapping`] made while the DMABUF's reservation lock is held
/// (the IIO core attaches under it): dropping it unmaps with the lock
/// held, where [`KernelMapping`]'s drop would take the lock again.
///
/// # Invariants
///
/// The reservation lock of `mapping`'s DMABUF is held for `'a`.
pub(crate) struct LockedMapping<'a> {
    mapping: core::mem::ManuallyDrop<KernelMapping>,
    _locked: PhantomData<&'a ()>,
}

impl LockedMapping<'_> {
    /// The mapping, to be dropped once the lock is released.
    pub(crate) fn unlocked(mut self) -> KernelMapping {
        // SAFETY: Taken once: `self` is forgotten right after.
        let mapping = unsafe { core::mem::ManuallyDrop::take(&mut self.mapping) };
        core::mem::forget(self);
        mapping
    }
}

impl Drop for LockedMapping<'_> {
    fn drop(&mut self) {
        // SAFETY: Dropped once, here.
        let mut m = unsafe { core::mem::ManuallyDrop::take(&mut self.mapping) };
        // SAFETY: Mapped by `dma_buf_vmap`; the lock is held (type
        // invariant), as the locked variant requires.
        unsafe { bindings::dma_buf_vunmap(m.dmabuf.as_raw(), &mut m.map) };
        // The DMABUF reference goes, not the mapping again.
        // SAFETY: Moved out once; `m` is forgotten right after, so its own
        // drop (which would unmap again) never runs.
        let dmabuf = unsafe { core::ptr::read(&m.dmabuf) };
        core::mem::forget(m);
        drop(dmabuf);
    }
}

/// Bytes of block memory charged to one owner (an IIO buffer), against a
/// limit.
pub(crate) struct MemoryAccount {
    used: AtomicUsize,
}

impl MemoryAccount {
    pub(crate) fn new() -> Self {
        Self {
            used: AtomicUsize::new(0),
        }
    }

    /// Charges `bytes`, unless that would exceed `limit`: `ENOMEM`.
    fn charge(&self, bytes: usize, limit: usize) -> Result {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map(|_| ())
            .map_err(|_| ENOMEM)
    }

    fn uncharge(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One device mapping of a block (an importer's `map_dma_buf`, or the
/// module's own for its DMA channel's device).
struct DeviceMapping {
    dev: *mut bindings::device,
    sgt: *mut bindings::sg_table,
    dir: bindings::dma_data_direction,
    /// Made by [`BlockMemory::map_for`], unmapped when the memory is
    /// freed: a reference on `dev` until then (the DMABUF may outlive the
    /// channel that made it).
    own: Option<ARef<Device>>,
}

/// The memory of a block exported by this module.
///
/// # Invariants
///
/// `memory.size()` bytes are charged to `account`.
#[pin_data(PinnedDrop)]
pub(crate) struct BlockMemory {
    memory: VmallocPages,
    account: Arc<MemoryAccount>,
    #[pin]
    mappings: Mutex<KVec<DeviceMapping>>,
}

// SAFETY: The memory is not tied to a thread; the mapping list (of raw
// device and table pointers) is locked.
unsafe impl Send for BlockMemory {}
// SAFETY: As above; shared access only reads immutable fields or locks.
unsafe impl Sync for BlockMemory {}

impl BlockMemory {
    /// Start of the memory: `size()` bytes, valid while the DMABUF lives.
    /// Devices access it as their queues and fences allow.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.memory.as_ptr()
    }

    /// Writes back what the CPU wrote through the kernel's own mapping.
    fn flush_kernel_alias(&self) {
        self.memory.sync_alias_all(false);
    }

    /// Drops what the CPU cached of the kernel's own mapping.
    fn invalidate_kernel_alias(&self) {
        self.memory.sync_alias_all(true);
    }

    /// A new table of the block's pages, mapped for `dev` (not listed).
    fn map_pages(
        &self,
        dev: *mut bindings::device,
        dir: bindings::dma_data_direction,
    ) -> Result<*mut bindings::sg_table> {
        // SAFETY: Our pages, unmapped before they are freed (drop, or an
        // importer's unmap before the release); `dev` is the caller's.
        unsafe { self.memory.map(dev, dir) }
    }

    /// The module's own mapping of the block for `dev` (the device of its
    /// DMA channel), made on first use and kept until the memory is freed.
    /// Synchronised by each copy for the range it moves (see
    /// [`super::engine::sync_segments`]), not by the CPU access callbacks.
    pub(crate) fn map_for(&self, dev: &Device) -> Result<super::block::DeviceTable> {
        let holder: ARef<Device> = dev.into();
        let dev = super::device::raw_device(dev);
        let dir = bindings::dma_data_direction::DMA_BIDIRECTIONAL;
        let mut mappings = self.mappings.lock();
        let found = mappings
            .iter()
            .find(|m| m.own.is_some() && m.dev == dev)
            .map(|m| m.sgt);
        let sgt = match found {
            Some(sgt) => sgt,
            None => {
                mappings.reserve(1, GFP_KERNEL)?;
                let sgt = self.map_pages(dev, dir)?;
                // Reserved above: cannot fail.
                let _ = mappings.push_within_capacity(DeviceMapping {
                    dev,
                    sgt,
                    dir,
                    own: Some(holder),
                });
                sgt
            }
        };
        // SAFETY: Mapped for `dev` with `dir`, unmapped only when this
        // memory is freed, after the last `DmaBuf` reference, which the
        // caller's block keeps.
        Ok(unsafe { super::block::DeviceTable::new(sgt, dev, dir) })
    }

    fn sync(&self, for_cpu: bool) {
        // Not our own mappings: each of the channel's copies syncs the
        // range it moves, and a whole sync of a bounce-buffered own
        // mapping would copy its stale bytes over what another device
        // wrote.
        for m in self.mappings.lock().iter().filter(|m| m.own.is_none()) {
            // SAFETY: Each recorded mapping is live until unmapped, which
            // removes it from the list under the same lock.
            unsafe {
                if for_cpu {
                    bindings::iio_dmabuf_helper_dma_sync_sgtable_for_cpu(m.dev, m.sgt, m.dir);
                } else {
                    bindings::iio_dmabuf_helper_dma_sync_sgtable_for_device(m.dev, m.sgt, m.dir);
                }
            }
        }
    }
}

#[pinned_drop]
impl PinnedDrop for BlockMemory {
    fn drop(self: Pin<&mut Self>) {
        // Our own mappings (importers unmapped theirs before the release).
        for m in self.mappings.lock().iter().filter(|m| m.own.is_some()) {
            // SAFETY: Mapped and allocated by `map_pages` for `m.dev`, which
            // `m.own` keeps alive; the DMABUF is released: no block uses
            // the table any more.
            unsafe { super::pages::unmap_pages(m.dev, m.sgt, m.dir) };
        }
        // Charged (type invariant); the memory is freed next, with the
        // fields (no mapping outlives the DMABUF, whose release drops this).
        self.account.uncharge(self.memory.size());
    }
}

/// Largest block, in bytes.
pub(crate) const MAX_BLOCK_SIZE: usize = 16 << 20;

/// Allocates a zeroed block of `size` bytes (rounded up to whole pages),
/// charged to `account` within `limit`, and exports it as a DMABUF.
pub(crate) fn export_block(
    size: usize,
    account: &Arc<MemoryAccount>,
    limit: usize,
) -> Result<DmaBuf> {
    const PAGE: usize = kernel::page::PAGE_SIZE;
    if size == 0 || size > MAX_BLOCK_SIZE {
        return Err(EINVAL);
    }
    let size = size.div_ceil(PAGE) * PAGE;
    account.charge(size, limit)?;
    let memory = match VmallocPages::new(size) {
        Ok(m) => m,
        Err(e) => {
            account.uncharge(size);
            return Err(e);
        }
    };
    // From here on the charge belongs to `BlockMemory`, whose drop
    // uncharges it (a failed initialisation frees the memory only).
    // INVARIANT: `size` bytes, charged above.
    let memory = KBox::pin_init(
        try_pin_init!(BlockMemory {
            memory,
            account: account.clone(),
            mappings <- new_mutex!(KVec::new(), "BlockMemory::mappings"),
        }),
        GFP_KERNEL,
    );
    let memory = match memory {
        Ok(m) => m,
        Err(e) => {
            account.uncharge(size);
            return Err(e);
        }
    };
    // SAFETY: Not moved out: `release` rebuilds the pinned box.
    let private = KBox::into_raw(unsafe { Pin::into_inner_unchecked(memory) });
    // SAFETY: `BLOCK_OPS` is static; on success the DMABUF owns `private`.
    let ptr =
        unsafe { bindings::iio_dmabuf_helper_dma_buf_export(&BLOCK_OPS, size, private.cast()) };
    match from_err_ptr(ptr) {
        // INVARIANT: A new DMABUF with its first reference.
        Ok(ptr) => Ok(DmaBuf {
            // SAFETY: Not an error pointer, hence not NULL.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        }),
        Err(e) => {
            // SAFETY: The export failed: `private` is still ours.
            drop(unsafe { KBox::from_raw(private) });
            Err(e)
        }
    }
}

/// # Safety
///
/// `dmabuf` must be a DMABUF exported by [`export_block`].
unsafe fn memory_of<'a>(dmabuf: *mut bindings::dma_buf) -> &'a BlockMemory {
    // SAFETY: Per the function's safety requirement.
    unsafe { &*(*dmabuf).priv_.cast::<BlockMemory>() }
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_map(
    attach: *mut bindings::dma_buf_attachment,
    dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    let map = || -> Result<*mut bindings::sg_table> {
        // SAFETY: The core passes a valid attachment of one of our DMABUFs.
        let (mem, dev) = unsafe { (memory_of((*attach).dmabuf), (*attach).dev) };
        let sgt = mem.map_pages(dev, dir)?;
        let recorded = mem.mappings.lock().push(
            DeviceMapping {
                dev,
                sgt,
                dir,
                own: None,
            },
            GFP_KERNEL,
        );
        if let Err(e) = recorded {
            // SAFETY: Mapped and allocated by `map_pages` just above.
            unsafe { super::pages::unmap_pages(dev, sgt, dir) };
            return Err(e.into());
        }
        Ok(sgt)
    };
    match map() {
        Ok(sgt) => sgt,
        Err(e) => e.to_ptr(),
    }
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_unmap(
    attach: *mut bindings::dma_buf_attachment,
    sgt: *mut bindings::sg_table,
    dir: bindings::dma_data_direction,
) {
    // SAFETY: The core passes an attachment of one of our DMABUFs and a
    // table `block_map` returned for it.
    let (mem, dev) = unsafe { (memory_of((*attach).dmabuf), (*attach).dev) };
    mem.mappings
        .lock()
        .retain(|m| m.own.is_some() || m.sgt != sgt);
    // SAFETY: Mapped and allocated by `block_map`, no longer listed.
    unsafe { super::pages::unmap_pages(dev, sgt, dir) };
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_release(dmabuf: *mut bindings::dma_buf) {
    // SAFETY: The last reference is gone: `priv` is ours to free, and it
    // is the pinned box made by `export_block`.
    drop(unsafe { Pin::new_unchecked(KBox::from_raw((*dmabuf).priv_.cast::<BlockMemory>())) });
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_begin_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    dir: bindings::dma_data_direction,
) -> ffi::c_int {
    // The core calls us before it waits for the fences: wait first, so
    // that the caches are invalidated after the devices are done. A CPU
    // that writes waits for every user, one that reads for the writers.
    let usage = if dir == bindings::dma_data_direction::DMA_FROM_DEVICE {
        bindings::dma_resv_usage_DMA_RESV_USAGE_WRITE
    } else {
        bindings::dma_resv_usage_DMA_RESV_USAGE_READ
    };
    // SAFETY: The core passes one of our live DMABUFs.
    let waited = unsafe {
        bindings::dma_resv_wait_timeout(
            (*dmabuf).resv,
            usage,
            true,
            ffi::c_long::MAX as ffi::c_ulong,
        )
    };
    if waited < 0 {
        return waited as ffi::c_int;
    }
    // SAFETY: One of our DMABUFs.
    let mem = unsafe { memory_of(dmabuf) };
    // Devices may have written: the CPU must not see stale cache lines,
    // through the mappings of the importers or our kernel alias.
    mem.sync(true);
    mem.invalidate_kernel_alias();
    0
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_end_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    dir: bindings::dma_data_direction,
) -> ffi::c_int {
    // Only a CPU that wrote has something to write back for the devices.
    if dir == bindings::dma_data_direction::DMA_FROM_DEVICE {
        return 0;
    }
    // SAFETY: The core passes one of our DMABUFs.
    let mem = unsafe { memory_of(dmabuf) };
    mem.flush_kernel_alias();
    mem.sync(false);
    0
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_mmap(
    dmabuf: *mut bindings::dma_buf,
    vma: *mut bindings::vm_area_struct,
) -> ffi::c_int {
    from_result(|| {
        // SAFETY: The core passes one of our DMABUFs and a new vma (it has
        // checked the range against the size); the helper checks again and
        // maps the vmalloc_user pages, which are refcounted by the vma.
        to_result(unsafe {
            bindings::iio_dmabuf_helper_remap_vmalloc_range(vma, memory_of(dmabuf).as_ptr().cast())
        })?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_vmap(
    dmabuf: *mut bindings::dma_buf,
    map: *mut bindings::iosys_map,
) -> ffi::c_int {
    // SAFETY: The core passes one of our DMABUFs and a map to fill; the
    // memory is already mapped in the kernel.
    unsafe {
        bindings::iio_dmabuf_helper_iosys_map_set_vaddr(map, memory_of(dmabuf).as_ptr().cast())
    };
    0
}

/// # Safety
///
/// Called by the dma-buf core on a DMABUF exported by [`export_block`].
unsafe extern "C" fn block_vunmap(_dmabuf: *mut bindings::dma_buf, _map: *mut bindings::iosys_map) {
}

static BLOCK_OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
    attach: None,
    detach: None,
    pin: None,
    unpin: None,
    map_dma_buf: Some(block_map),
    unmap_dma_buf: Some(block_unmap),
    release: Some(block_release),
    begin_cpu_access: Some(block_begin_cpu_access),
    end_cpu_access: Some(block_end_cpu_access),
    mmap: Some(block_mmap),
    vmap: Some(block_vmap),
    vunmap: Some(block_vunmap),
};
