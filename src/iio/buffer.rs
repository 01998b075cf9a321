// SPDX-License-Identifier: GPL-2.0

//! IIO buffers implemented in Rust (`struct iio_buffer` +
//! `iio_buffer_access_funcs`).

use crate::bindings;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::ffi;
use kernel::{
    error::from_result,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

/// Direction of a buffer's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Device to userspace.
    In,
}

/// What a buffer implementation provides. The IIO core serialises
/// `enable`/`disable` and the parameter changes under the device lock.
pub(crate) trait BufferOps: Send + Sync + Sized + 'static {
    /// Copies whole scans into `out`; returns the bytes written, 0 if none
    /// are ready.
    fn read(buf: &Buffer<Self>, out: &mut UserSliceWriter) -> Result<usize>;

    /// Scans ready for reading.
    fn data_available(buf: &Buffer<Self>) -> usize;

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
    #[pin]
    data: T,
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
                data <- data,
            }),
            GFP_KERNEL,
        )?;
        // The release callback is module code: pin the module until then.
        // SAFETY: Calling a helper with no requirements.
        unsafe { bindings::iio_dmabuf_helper_module_get() };
        // SAFETY: Leaked here, freed by `release` (never moved: stays pinned).
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // SAFETY: The kref starts at 1, owned by the returned `ARef`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(ptr)) })
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

    /// The selected channels: bit `i` for scan index `i` (first 64 only).
    ///
    /// # Safety
    ///
    /// The device the buffer is attached to must be registered, and stay
    /// so during the call: the core frees the mask when it unregisters.
    pub(crate) unsafe fn scan_mask(&self) -> u64 {
        // SAFETY: `base` is valid; the mask is allocated while the device
        // is registered (the caller's guarantee). Bits change under the
        // core's lock, a racy read gives the old or the new selection.
        unsafe {
            let mask = (*self.as_raw()).scan_mask;
            if mask.is_null() {
                0
            } else {
                *mask as u64
            }
        }
    }

    /// Whether the timestamp is part of a scan.
    pub(crate) fn scan_timestamp(&self) -> bool {
        // SAFETY: As in `length`.
        unsafe { (*self.as_raw()).scan_timestamp }
    }

    /// Wakes readers and pollers waiting on the buffer.
    pub(crate) fn wake(&self) {
        // SAFETY: `base` is valid; waking is allowed in any context.
        unsafe { bindings::iio_dmabuf_helper_buffer_wake(self.as_raw()) };
    }
}

struct Adapter<T>(PhantomData<T>);

impl<T: BufferOps> Adapter<T> {
    const ACCESS: bindings::iio_buffer_access_funcs = bindings::iio_buffer_access_funcs {
        read: Some(Self::read),
        data_available: Some(Self::data_available),
        set_bytes_per_datum: Some(Self::set_bytes_per_datum),
        set_length: Some(Self::set_length),
        enable: Some(Self::enable),
        disable: Some(Self::disable),
        release: Some(Self::release),
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
    /// Called by the IIO core once, when the last reference is dropped.
    unsafe extern "C" fn release(buffer: *mut bindings::iio_buffer) {
        // SAFETY: By the type invariant of `Buffer`, this is a leaked
        // `KBox<Buffer<T>>` and nobody references it any more.
        drop(unsafe { KBox::from_raw(buffer.cast::<Buffer<T>>()) });
        // SAFETY: Balances the `module_get` of `Buffer::new`. Nothing of this
        // module runs after this tail call but the return.
        unsafe { bindings::iio_dmabuf_helper_module_put() };
    }
}
