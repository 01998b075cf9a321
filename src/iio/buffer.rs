// SPDX-License-Identifier: GPL-2.0

//! IIO buffers implemented in Rust (`struct iio_buffer` +
//! `iio_buffer_access_funcs`).

use crate::bindings;
use crate::dma::{
    block::DeviceTable,
    buf::{KernelMapping, LockedMapping},
    fence::Signalled,
};
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::ffi;
use kernel::{
    build_error,
    device::Device,
    error::{from_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

/// Direction of a buffer's data (the engine's type: the block state
/// machine depends on it).
pub(crate) use crate::engine::queue::Direction;

/// What a buffer implementation provides. The IIO core serialises
/// `enable`/`disable` and the parameter changes under the device lock.
///
/// Optional callbacks (`#[vtable]`): read() for input buffers, write() for
/// output buffers, and the mainline DMABUF API (ATTACH, DETACH, ENQUEUE on
/// the buffer's file descriptor; the core creates the fences), which is
/// offered only when all four `*_dmabuf`/`dma_device` hooks are there:
/// without them the core refuses ATTACH (`EPERM`).
#[vtable]
pub(crate) trait BufferOps: Send + Sync + Sized + 'static {
    /// What the buffer keeps per attached DMABUF (`()` without DMABUF
    /// support).
    type Attached: Send + Sync + 'static;

    /// A DMABUF is being attached (its reservation lock is held).
    fn attach_dmabuf(_buf: &Buffer<Self>, _attachment: &Attachment<'_>) -> Result<Self::Attached> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A DMABUF is detached, after every fence of its enqueues signalled.
    fn detach_dmabuf(_buf: &Buffer<Self>, _attached: Self::Attached) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Queues `bytes_used` bytes of an attached DMABUF with the core's
    /// `fence`; `table` is the core's mapping of it for
    /// [`BufferOps::dma_device`]. Runs in a fence-signalling section with
    /// the queue lock held: no allocation, no sleeping lock. On error the
    /// core signals the fence, so the buffer must not keep it.
    fn enqueue_dmabuf(
        _queue: &QueueHeld<'_, Self>,
        _attached: &Self::Attached,
        _fence: &CoreFence,
        _table: Option<DeviceTable>,
        _bytes_used: usize,
        _cyclic: bool,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device DMABUFs are attached to, for DMA mapping.
    fn dma_device(_buf: &Buffer<Self>) -> &Device {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Copies whole scans into `out`; returns the bytes written, 0 if none
    /// are ready.
    fn read(_buf: &Buffer<Self>, _out: &mut UserSliceWriter) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Scans ready for reading.
    fn data_available(_buf: &Buffer<Self>) -> usize {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Takes whole scans from `input` (output buffers); returns the bytes
    /// taken, 0 if there is no room.
    fn write(_buf: &Buffer<Self>, _input: &mut UserSliceReader) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Whether write() would take data now (non-zero when it would).
    fn space_available(_buf: &Buffer<Self>) -> usize {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The buffer is being enabled.
    fn enable(buf: &Buffer<Self>) -> Result;

    /// The buffer is being disabled.
    fn disable(buf: &Buffer<Self>) -> Result;
}

/// A reference-counted IIO buffer with Rust data `T`.
///
/// # Invariants
///
/// `base` is initialised by `iio_buffer_init` with `access` pointing to
/// `Adapter::<T>::ACCESS`; the allocation is a leaked `KBox<Self>` freed by
/// the `release` callback when the kref drops to zero.
#[repr(C)]
#[pin_data]
pub(crate) struct Buffer<T> {
    #[pin]
    base: Opaque<bindings::iio_buffer>,
    /// The lock of `lock_queue`/`unlock_queue`: the core holds it around
    /// ENQUEUE; Rust code takes it with [`Buffer::lock_queue`].
    #[pin]
    queue_lock: Opaque<bindings::mutex>,
    /// Set, under `queue_lock`, before the device unregisters (which frees
    /// the core's scan mask).
    unregistered: AtomicBool,
    #[pin]
    data: T,
    /// The module stays loaded while the buffer exists: its callbacks are
    /// module code. Dropped last (fields drop in order).
    _pin: ModulePin,
}

/// Keeps this module loaded until dropped, and has the VFS release that
/// hold after the dropping code returned: an internal file whose fops this
/// module owns, put with `fput` (which defers the final put). So no module
/// code runs after the last reference of the module is gone.
///
/// # Invariants
///
/// `file` is a file made by `iio_dmabuf_helper_pin_module` of which this
/// value owns the only reference.
struct ModulePin {
    file: NonNull<bindings::file>,
}

// SAFETY: A file reference may be put from any thread.
unsafe impl Send for ModulePin {}
// SAFETY: Shared references do nothing with the file.
unsafe impl Sync for ModulePin {}

impl ModulePin {
    fn new() -> Result<Self> {
        // SAFETY: No requirement; a new file, or an error pointer.
        let file =
            kernel::error::from_err_ptr(unsafe { bindings::iio_dmabuf_helper_pin_module() })?;
        // INVARIANT: A new file, its reference ours.
        Ok(Self {
            // SAFETY: Not an error pointer, hence not NULL.
            file: unsafe { NonNull::new_unchecked(file) },
        })
    }
}

impl Drop for ModulePin {
    fn drop(&mut self) {
        // SAFETY: The reference this value owns (type invariant).
        unsafe { bindings::iio_dmabuf_helper_unpin_module(self.file.as_ptr()) };
    }
}

// SAFETY: The C part is protected by the IIO core's locks and its kref;
// `T` is `Send + Sync`.
unsafe impl<T: Send + Sync> Send for Buffer<T> {}
// SAFETY: As above.
unsafe impl<T: Send + Sync> Sync for Buffer<T> {}

// SAFETY: `iio_buffer_get`/`iio_buffer_put` manage the buffer's kref, and
// the last put frees it through `release`.
unsafe impl<T: BufferOps> AlwaysRefCounted for Buffer<T> {
    fn inc_ref(&self) {
        // SAFETY: `self` is alive, hence its kref is non-zero.
        unsafe { bindings::iio_buffer_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe { bindings::iio_buffer_put(obj.as_ref().as_raw()) };
    }
}

impl<T: BufferOps> Buffer<T> {
    /// Allocates a buffer of `length` scans.
    pub(crate) fn new(
        data: impl PinInit<T, Error>,
        direction: Direction,
        length: u32,
    ) -> Result<ARef<Self>> {
        let dir = match direction {
            Direction::In => bindings::iio_buffer_direction_IIO_BUFFER_DIRECTION_IN,
            Direction::Out => bindings::iio_buffer_direction_IIO_BUFFER_DIRECTION_OUT,
        };
        let boxed = KBox::pin_init(
            try_pin_init!(Self {
                base <- Opaque::ffi_init(move |base: *mut bindings::iio_buffer| {
                    // SAFETY: `base` is valid for writes; `iio_buffer_init`
                    // initialises the lists, kref (to 1) and lock, and the
                    // other fields are set right after.
                    unsafe {
                        base.write_bytes(0, 1);
                        bindings::iio_buffer_init(base);
                        (*base).access = &Adapter::<T>::ACCESS;
                        (*base).direction = dir;
                        (*base).length = length;
                    }
                }),
                queue_lock <- Opaque::ffi_init(|lock: *mut bindings::mutex| {
                    // SAFETY: `lock` is valid for writes and pinned; one
                    // static lock class for every buffer queue.
                    unsafe {
                        bindings::__mutex_init(
                            lock,
                            c"iio_dmabuf::queue_lock".as_char_ptr(),
                            kernel::static_lock_class!().as_ptr(),
                        )
                    }
                }),
                unregistered: AtomicBool::new(false),
                data <- data,
                _pin: ModulePin::new()?,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: Leaked here, freed by `release` (never moved: stays pinned).
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // SAFETY: The kref starts at 1, owned by the returned `ARef`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(ptr)) })
    }

    /// The buffer whose `base` is `raw`.
    ///
    /// # Safety
    ///
    /// `raw` must be the `base` of a `Buffer<T>` alive during `'a`.
    pub(crate) unsafe fn from_raw<'a>(raw: *mut bindings::iio_buffer) -> &'a Self {
        // SAFETY: Per the function's safety requirement.
        unsafe { Adapter::<T>::from_raw(raw) }
    }

    /// The implementation's data.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::iio_buffer {
        self.base.get()
    }

    /// Length in scans, as set through sysfs.
    pub(crate) fn length(&self) -> usize {
        // SAFETY: `base` is valid; the core writes it under the device
        // lock, which callers of `enable` hold.
        unsafe { (*self.as_raw()).length as usize }
    }

    /// Watermark in scans.
    pub(crate) fn watermark(&self) -> usize {
        // SAFETY: As in `length`.
        unsafe { (*self.as_raw()).watermark as usize }
    }

    /// Bytes per scan, for the current channel selection.
    pub(crate) fn bytes_per_datum(&self) -> usize {
        // SAFETY: As in `length`.
        unsafe { (*self.as_raw()).bytes_per_datum }
    }

    /// Direction of the data.
    pub(crate) fn direction(&self) -> Direction {
        // SAFETY: `base` is valid; the direction never changes.
        if unsafe { (*self.as_raw()).direction }
            == bindings::iio_buffer_direction_IIO_BUFFER_DIRECTION_OUT
        {
            Direction::Out
        } else {
            Direction::In
        }
    }

    /// Whether the timestamp is part of a scan.
    pub(crate) fn scan_timestamp(&self) -> bool {
        // SAFETY: As in `length`.
        unsafe { (*self.as_raw()).scan_timestamp }
    }

    /// Takes the queue lock (the one the core holds around ENQUEUE).
    pub(crate) fn lock_queue(&self) -> QueueGuard<'_, T> {
        // SAFETY: Initialised in `new`; unlocked by the guard.
        unsafe { bindings::mutex_lock(self.queue_lock.get()) };
        QueueGuard {
            held: QueueHeld { buf: self },
        }
    }

    /// Called by the device registration before it unregisters.
    pub(crate) fn mark_unregistered(&self) {
        let _queue = self.lock_queue();
        self.unregistered.store(true, Ordering::Relaxed);
    }

    /// Wakes readers and pollers waiting on the buffer.
    pub(crate) fn wake(&self) {
        // SAFETY: `base` is valid; waking is allowed in any context.
        unsafe { bindings::iio_dmabuf_helper_buffer_wake(self.as_raw()) };
    }
}

/// Proof that a buffer's queue lock is held.
pub(crate) struct QueueHeld<'a, T> {
    buf: &'a Buffer<T>,
}

impl<T: BufferOps> QueueHeld<'_, T> {
    /// The buffer.
    pub(crate) fn buffer(&self) -> &Buffer<T> {
        self.buf
    }

    /// The selected channels: bit `i` for scan index `i` (first 64 only);
    /// `ENODEV` once the device is unregistered.
    pub(crate) fn scan_mask(&self) -> Result<u64> {
        if self.buf.unregistered.load(Ordering::Relaxed) {
            return Err(ENODEV);
        }
        // SAFETY: `base` is valid, and the device still registered: it
        // marks the buffer under this held lock before it unregisters and
        // frees the mask. Bits change under the core's lock; a racy read
        // gives the old or the new selection.
        Ok(unsafe {
            let mask = (*self.buf.as_raw()).scan_mask;
            if mask.is_null() {
                0
            } else {
                *mask as u64
            }
        })
    }
}

/// Holds a buffer's queue lock (see [`Buffer::lock_queue`]).
pub(crate) struct QueueGuard<'a, T> {
    held: QueueHeld<'a, T>,
}

impl<'a, T> core::ops::Deref for QueueGuard<'a, T> {
    type Target = QueueHeld<'a, T>;

    fn deref(&self) -> &QueueHeld<'a, T> {
        &self.held
    }
}

impl<T> Drop for QueueGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Locked by `lock_queue`, which made this guard.
        unsafe { bindings::mutex_unlock(self.held.buf.queue_lock.get()) };
    }
}

/// A DMABUF being attached by the IIO core.
pub(crate) struct Attachment<'a> {
    raw: *mut bindings::dma_buf_attachment,
    _p: PhantomData<&'a ()>,
}

impl<'a> Attachment<'a> {
    /// Maps the DMABUF into the kernel (the core holds its reservation
    /// lock while attaching, hence a [`LockedMapping`]).
    pub(crate) fn map_kernel(&self) -> Result<LockedMapping<'a>> {
        // SAFETY: `raw` is the live attachment the core passed, whose
        // DMABUF's reservation lock it holds during `'a` (the attach call).
        unsafe { KernelMapping::new_locked((*self.raw).dmabuf) }
    }
}

/// A fence the IIO core created for an ENQUEUE.
pub(crate) struct CoreFence {
    raw: *mut bindings::dma_fence,
}

impl CoreFence {
    /// Takes over the completion of the fence: the buffer must then
    /// signal it, exactly once, through [`DoneFence::signal`].
    pub(crate) fn accept(&self) -> DoneFence {
        // SAFETY: The core's fence is live during `enqueue_dmabuf`; our own
        // reference keeps it so until signalled.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_get(self.raw) };
        DoneFence { raw: self.raw }
    }
}

/// A core fence the buffer accepted: it must be signalled.
///
/// # Invariants
///
/// `raw` is an IIO core fence not signalled by the buffer yet, of which
/// this value holds a reference.
pub(crate) struct DoneFence {
    raw: *mut bindings::dma_fence,
}

// SAFETY: Fences are refcounted and internally locked.
unsafe impl Send for DoneFence {}

impl DoneFence {
    /// Reports the transfer done (with `error` if any) to the core, which
    /// signals the fence and releases what the ENQUEUE held. Our reference
    /// comes back, to be dropped outside the fence signalling section.
    pub(crate) fn signal(self, error: Option<Error>) -> Signalled<Self> {
        let ret = error.map_or(0, |e| e.to_errno());
        // SAFETY: By the type invariant, a core fence not signalled yet.
        unsafe { bindings::iio_buffer_signal_dmabuf_done(self.raw, ret) };
        Signalled::new(self)
    }
}

impl Drop for DoneFence {
    fn drop(&mut self) {
        // SAFETY: This value holds a reference.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_put(self.raw) };
    }
}

struct Adapter<T>(PhantomData<T>);

impl<T: BufferOps> Adapter<T> {
    /// The mainline DMABUF hooks come together or not at all.
    const DMABUF: bool =
        T::HAS_ATTACH_DMABUF && T::HAS_DETACH_DMABUF && T::HAS_ENQUEUE_DMABUF && T::HAS_DMA_DEVICE;

    const ACCESS: bindings::iio_buffer_access_funcs = bindings::iio_buffer_access_funcs {
        read: if T::HAS_READ { Some(Self::read) } else { None },
        data_available: if T::HAS_DATA_AVAILABLE {
            Some(Self::data_available)
        } else {
            None
        },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        space_available: if T::HAS_SPACE_AVAILABLE {
            Some(Self::space_available)
        } else {
            None
        },
        set_bytes_per_datum: Some(Self::set_bytes_per_datum),
        set_length: Some(Self::set_length),
        enable: Some(Self::enable),
        disable: Some(Self::disable),
        release: Some(Self::release),
        attach_dmabuf: if Self::DMABUF {
            Some(Self::attach_dmabuf)
        } else {
            None
        },
        detach_dmabuf: if Self::DMABUF {
            Some(Self::detach_dmabuf)
        } else {
            None
        },
        enqueue_dmabuf: if Self::DMABUF {
            Some(Self::enqueue_dmabuf)
        } else {
            None
        },
        get_dma_dev: if Self::DMABUF {
            Some(Self::get_dma_dev)
        } else {
            None
        },
        lock_queue: Some(Self::lock_queue),
        unlock_queue: Some(Self::unlock_queue),
        modes: bindings::INDIO_BUFFER_HARDWARE,
        // SAFETY: All-zero (no callback) is valid for the remaining fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };

    /// # Safety
    ///
    /// `buffer` must be the `base` of a live `Buffer<T>`.
    unsafe fn from_raw<'a>(buffer: *mut bindings::iio_buffer) -> &'a Buffer<T> {
        // SAFETY: `base` is the first field of the `repr(C)` `Buffer<T>`.
        unsafe { &*buffer.cast::<Buffer<T>>() }
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`; `user` is a user pointer
    /// to `n` bytes.
    unsafe extern "C" fn read(
        buffer: *mut bindings::iio_buffer,
        n: usize,
        user: *mut ffi::c_char,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let buf = unsafe { Self::from_raw(buffer) };
            let mut out = UserSlice::new(UserPtr::from_ptr(user.cast()), n).writer();
            let bytes = T::read(buf, &mut out)?;
            Ok(bytes.try_into().unwrap_or(i32::MAX))
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`; `user` is a user pointer
    /// to `n` bytes.
    unsafe extern "C" fn write(
        buffer: *mut bindings::iio_buffer,
        n: usize,
        user: *const ffi::c_char,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let buf = unsafe { Self::from_raw(buffer) };
            let mut input = UserSlice::new(UserPtr::from_ptr(user.cast_mut().cast()), n).reader();
            let bytes = T::write(buf, &mut input)?;
            Ok(bytes.try_into().unwrap_or(i32::MAX))
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`.
    unsafe extern "C" fn space_available(buffer: *mut bindings::iio_buffer) -> usize {
        // SAFETY: Per this function's safety requirement.
        T::space_available(unsafe { Self::from_raw(buffer) })
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`.
    unsafe extern "C" fn data_available(buffer: *mut bindings::iio_buffer) -> usize {
        // SAFETY: Per this function's safety requirement.
        T::data_available(unsafe { Self::from_raw(buffer) })
    }

    /// # Safety
    ///
    /// Called by the IIO core, under the device lock, on a `Buffer<T>`.
    unsafe extern "C" fn set_bytes_per_datum(
        buffer: *mut bindings::iio_buffer,
        bpd: usize,
    ) -> ffi::c_int {
        // SAFETY: Valid, and the core serialises parameter changes.
        unsafe { (*buffer).bytes_per_datum = bpd };
        0
    }

    /// # Safety
    ///
    /// Called by the IIO core, under the device lock, on a `Buffer<T>`.
    unsafe extern "C" fn set_length(buffer: *mut bindings::iio_buffer, length: u32) -> ffi::c_int {
        // SAFETY: Valid, and the core serialises parameter changes.
        unsafe { (*buffer).length = length };
        0
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`.
    unsafe extern "C" fn enable(
        buffer: *mut bindings::iio_buffer,
        _indio_dev: *mut bindings::iio_dev,
    ) -> ffi::c_int {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        from_result(|| T::enable(buf).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`.
    unsafe extern "C" fn disable(
        buffer: *mut bindings::iio_buffer,
        _indio_dev: *mut bindings::iio_dev,
    ) -> ffi::c_int {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        from_result(|| T::disable(buf).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`, with the DMABUF's
    /// reservation lock held.
    unsafe extern "C" fn attach_dmabuf(
        buffer: *mut bindings::iio_buffer,
        attach: *mut bindings::dma_buf_attachment,
    ) -> *mut bindings::iio_dma_buffer_block {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        let attachment = Attachment {
            raw: attach,
            _p: PhantomData,
        };
        // The attachment holds a reference to the buffer: the core may
        // detach it after the buffer's last file and device are gone (it
        // releases attachments from a work item once their fences signal).
        // Allocated first: once `T` attached, nothing may fail (undoing it
        // would unmap under the reservation lock the core holds).
        let slot = match KBox::<(T::Attached, ARef<Buffer<T>>)>::new_uninit(GFP_KERNEL) {
            Ok(slot) => slot,
            Err(e) => return Error::from(e).to_ptr(),
        };
        match T::attach_dmabuf(buf, &attachment) {
            // The core keeps the pointer as an opaque cookie.
            Ok(a) => KBox::into_raw(slot.write((a, buf.into()))).cast(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called by the IIO core with a block `attach_dmabuf` returned, once.
    unsafe extern "C" fn detach_dmabuf(
        buffer: *mut bindings::iio_buffer,
        block: *mut bindings::iio_dma_buffer_block,
    ) {
        // SAFETY: `block` is the `KBox` made by `attach_dmabuf`, whose
        // buffer reference keeps `buffer` alive until dropped below.
        let (attached, pinned) = KBox::into_inner(unsafe {
            KBox::from_raw(block.cast::<(T::Attached, ARef<Buffer<T>>)>())
        });
        debug_assert!(core::ptr::eq(pinned.as_raw(), buffer));
        T::detach_dmabuf(&pinned, attached);
        // Possibly the last reference: nothing of the buffer is used after.
        drop(pinned);
    }

    /// # Safety
    ///
    /// Called by the IIO core with a block `attach_dmabuf` returned and the
    /// live fence of this ENQUEUE.
    unsafe extern "C" fn enqueue_dmabuf(
        buffer: *mut bindings::iio_buffer,
        block: *mut bindings::iio_dma_buffer_block,
        fence: *mut bindings::dma_fence,
        sgt: *mut bindings::sg_table,
        size: usize,
        cyclic: bool,
    ) -> ffi::c_int {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        // SAFETY: Attached (the `KBox` of `attach_dmabuf`), hence alive
        // until detached, which the core does once this ENQUEUE's fence is
        // done.
        let (attached, _) = unsafe { &*block.cast::<(T::Attached, ARef<Buffer<T>>)>() };
        let fence = CoreFence { raw: fence };
        // The core mapped the attachment at ATTACH for our DMA device, for
        // the buffer's direction, and unmaps it only once the last block
        // of it is done (its fence signalled).
        let dir = match buf.direction() {
            Direction::In => bindings::dma_data_direction::DMA_FROM_DEVICE,
            Direction::Out => bindings::dma_data_direction::DMA_TO_DEVICE,
        };
        let dev = crate::dma::device::raw_device(T::dma_device(buf));
        // SAFETY: As said above.
        let table = (!sgt.is_null()).then(|| unsafe { DeviceTable::new(sgt, dev, dir) });
        // The core calls this between `lock_queue` and `unlock_queue`.
        let queue = QueueHeld { buf };
        from_result(|| T::enqueue_dmabuf(&queue, attached, &fence, table, size, cyclic).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`.
    unsafe extern "C" fn get_dma_dev(buffer: *mut bindings::iio_buffer) -> *mut bindings::device {
        // SAFETY: Per this function's safety requirement.
        let dev = T::dma_device(unsafe { Self::from_raw(buffer) });
        // The core takes its own reference for the attachment.
        crate::dma::device::raw_device(dev)
    }

    /// # Safety
    ///
    /// Called by the IIO core on a `Buffer<T>`, balanced by `unlock_queue`.
    unsafe extern "C" fn lock_queue(buffer: *mut bindings::iio_buffer) {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        // The core unlocks through `unlock_queue`: no guard.
        core::mem::forget(buf.lock_queue());
    }

    /// # Safety
    ///
    /// Called by the IIO core after its `lock_queue`.
    unsafe extern "C" fn unlock_queue(buffer: *mut bindings::iio_buffer) {
        // SAFETY: Per this function's safety requirement.
        let buf = unsafe { Self::from_raw(buffer) };
        // SAFETY: Locked by the matching `lock_queue`.
        unsafe { bindings::mutex_unlock(buf.queue_lock.get()) };
    }

    /// # Safety
    ///
    /// Called by the IIO core once, when the last reference is dropped.
    unsafe extern "C" fn release(buffer: *mut bindings::iio_buffer) {
        // SAFETY: By the type invariant of `Buffer`, this is a leaked
        // `KBox<Buffer<T>>` and nobody references it any more. Its
        // `ModulePin` goes last: the module stays loaded until the VFS puts
        // the pin, after this returned.
        drop(unsafe { KBox::from_raw(buffer.cast::<Buffer<T>>()) });
    }
}
