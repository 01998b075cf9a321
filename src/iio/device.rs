// SPDX-License-Identifier: GPL-2.0

//! IIO devices (`struct iio_dev`): a driver trait and its registration.

use super::{
    buffer::{Buffer, BufferOps},
    channel::{Available, ChanInfo, ChanSpec, Channel, ChannelTables, Value},
};
use crate::{bindings, dma::device::raw_device};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::ffi;
use kernel::{
    error::{from_result, to_result},
    prelude::*,
    str::{CStr, CString, Formatter},
    sync::{aref::ARef, Arc},
};

/// Bytes sysfs gives a show callback.
const SYSFS_BUF_SIZE: usize = kernel::page::PAGE_SIZE;

/// A registered IIO device, as its callbacks see it.
///
/// # Invariants
///
/// `ptr` points to an `iio_dev` registered by a live [`Registration`].
pub(crate) struct Device {
    ptr: NonNull<bindings::iio_dev>,
}

impl Device {
    /// The current time in the device's chosen clock
    /// (`current_timestamp_clock`), in ns.
    pub(crate) fn time_ns(&self) -> i64 {
        // SAFETY: By the type invariant `ptr` is a valid `iio_dev`.
        unsafe { bindings::iio_get_time_ns(self.ptr.as_ptr()) }
    }

    /// Claims direct mode: fails with `EBUSY` while a buffer is enabled,
    /// and keeps the buffer from being enabled while the guard lives.
    pub(crate) fn claim_direct(&self) -> Result<DirectModeGuard<'_>> {
        // SAFETY: By the type invariant `ptr` is a valid `iio_dev`.
        if unsafe { bindings::iio_dmabuf_helper_claim_direct(self.ptr.as_ptr()) } {
            Ok(DirectModeGuard { dev: self })
        } else {
            Err(EBUSY)
        }
    }
}

/// Holds the device in direct mode (see [`Device::claim_direct`]).
pub(crate) struct DirectModeGuard<'a> {
    dev: &'a Device,
}

impl Drop for DirectModeGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: The guard exists only after a successful claim on this
        // valid device.
        unsafe { bindings::iio_dmabuf_helper_release_direct(self.dev.ptr.as_ptr()) };
    }
}

/// What an IIO driver implements. Callbacks run in process context and
/// may sleep.
pub(crate) trait Driver: Send + Sync + Sized + 'static {
    /// Reads a channel attribute.
    fn read_raw(&self, dev: &Device, chan: Channel, info: ChanInfo) -> Result<Value>;

    /// Writes a channel attribute: an integer (see `write_raw_get_fmt`).
    fn write_raw(&self, dev: &Device, chan: Channel, info: ChanInfo, val: i32) -> Result;

    /// What a channel attribute accepts.
    fn read_avail(&self, chan: Channel, info: ChanInfo) -> Result<Available>;

    /// Reads extended attribute `id` into `out`.
    fn read_ext(&self, dev: &Device, id: usize, chan: Channel, out: &mut Formatter<'_>) -> Result;

    /// Writes extended attribute `id`.
    fn write_ext(&self, dev: &Device, id: usize, chan: Channel, input: &[u8]) -> Result;

    /// The buffer was enabled: start acquisition.
    fn postenable(&self, dev: &Device) -> Result;

    /// The buffer is about to be disabled: stop acquisition.
    fn predisable(&self, dev: &Device) -> Result;
}

/// Gets the driver of a device from its private area.
///
/// # Safety
///
/// `indio_dev` must be registered by a live `Registration<D>`.
unsafe fn driver<'a, D: Driver>(indio_dev: *mut bindings::iio_dev) -> (&'a D, Device) {
    // SAFETY: The private area holds the `*const D` stored by
    // `Registration::new`, valid while the registration lives.
    let d = unsafe { &**bindings::iio_dmabuf_helper_iio_priv(indio_dev).cast::<*const D>() };
    // INVARIANT: Registered, per the safety requirement.
    let dev = Device {
        // SAFETY: Callers pass the non-null pointer the IIO core gave them.
        ptr: unsafe { NonNull::new_unchecked(indio_dev) },
    };
    (d, dev)
}

struct Adapter<D>(PhantomData<D>);

impl<D: Driver> Adapter<D> {
    const INFO: bindings::iio_info = bindings::iio_info {
        read_raw: Some(Self::read_raw),
        write_raw: Some(Self::write_raw),
        read_avail: Some(Self::read_avail),
        write_raw_get_fmt: Some(Self::write_raw_get_fmt),
        // SAFETY: All-zero (no callback) is valid for the remaining fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };

    const SETUP_OPS: bindings::iio_buffer_setup_ops = bindings::iio_buffer_setup_ops {
        preenable: None,
        postenable: Some(Self::postenable),
        predisable: Some(Self::predisable),
        postdisable: None,
        validate_scan_mask: None,
    };

    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn read_raw(
        indio_dev: *mut bindings::iio_dev,
        chan: *const bindings::iio_chan_spec,
        val: *mut ffi::c_int,
        val2: *mut ffi::c_int,
        mask: ffi::c_long,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let (d, dev) = unsafe { driver::<D>(indio_dev) };
            let info = ChanInfo::from_raw(mask).ok_or(EINVAL)?;
            // SAFETY: The core passes one of the device's channels.
            let chan = unsafe { Channel::from_raw(chan) };
            let value = d.read_raw(&dev, chan, info)?;
            // SAFETY: The core passes valid output pointers.
            Ok(value.into_raw(unsafe { &mut *val }, unsafe { &mut *val2 }))
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn write_raw(
        indio_dev: *mut bindings::iio_dev,
        chan: *const bindings::iio_chan_spec,
        val: ffi::c_int,
        // Always 0: integer attributes (`write_raw_get_fmt`).
        _val2: ffi::c_int,
        mask: ffi::c_long,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let (d, dev) = unsafe { driver::<D>(indio_dev) };
            let info = ChanInfo::from_raw(mask).ok_or(EINVAL)?;
            // SAFETY: The core passes one of the device's channels.
            let chan = unsafe { Channel::from_raw(chan) };
            d.write_raw(&dev, chan, info, val)?;
            Ok(0)
        })
    }

    /// Every writable channel attribute of these drivers is an integer:
    /// the core then parses strictly (`kstrtoint`), so that "1.5", "-" or
    /// an empty line are refused rather than read as 0.
    ///
    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn write_raw_get_fmt(
        _indio_dev: *mut bindings::iio_dev,
        _chan: *const bindings::iio_chan_spec,
        _mask: ffi::c_long,
    ) -> ffi::c_int {
        bindings::IIO_VAL_INT as ffi::c_int
    }

    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn read_avail(
        indio_dev: *mut bindings::iio_dev,
        chan: *const bindings::iio_chan_spec,
        vals: *mut *const ffi::c_int,
        type_: *mut ffi::c_int,
        length: *mut ffi::c_int,
        mask: ffi::c_long,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let (d, _) = unsafe { driver::<D>(indio_dev) };
            let info = ChanInfo::from_raw(mask).ok_or(EINVAL)?;
            // SAFETY: The core passes one of the device's channels.
            let chan = unsafe { Channel::from_raw(chan) };
            match d.read_avail(chan, info)? {
                Available::IntRange(range) => {
                    // SAFETY: The core passes valid output pointers; `range`
                    // is 'static, as the core keeps using it.
                    unsafe {
                        *vals = range.as_ptr();
                        *type_ = bindings::IIO_VAL_INT as i32;
                        *length = 3;
                    }
                    Ok(bindings::iio_available_type_IIO_AVAIL_RANGE as i32)
                }
            }
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core for an attribute of a `Registration<D>`
    /// device; `buf` is a sysfs page.
    unsafe extern "C" fn read_ext(
        indio_dev: *mut bindings::iio_dev,
        private: usize,
        chan: *const bindings::iio_chan_spec,
        buf: *mut ffi::c_char,
    ) -> isize {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let (d, dev) = unsafe { driver::<D>(indio_dev) };
            // SAFETY: The core passes one of the device's channels.
            let chan = unsafe { Channel::from_raw(chan) };
            // SAFETY: sysfs gives show callbacks a page to write.
            let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), SYSFS_BUF_SIZE) };
            let mut out = Formatter::new(page);
            d.read_ext(&dev, private, chan, &mut out)?;
            Ok(out.bytes_written() as isize)
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core for an attribute of a `Registration<D>`
    /// device; `buf` holds `len` bytes.
    unsafe extern "C" fn write_ext(
        indio_dev: *mut bindings::iio_dev,
        private: usize,
        chan: *const bindings::iio_chan_spec,
        buf: *const ffi::c_char,
        len: usize,
    ) -> isize {
        from_result(|| {
            // SAFETY: Per this function's safety requirement.
            let (d, dev) = unsafe { driver::<D>(indio_dev) };
            // SAFETY: The core passes one of the device's channels.
            let chan = unsafe { Channel::from_raw(chan) };
            // SAFETY: sysfs passes `len` readable bytes.
            let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
            d.write_ext(&dev, private, chan, input)?;
            Ok(len as isize)
        })
    }

    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn postenable(indio_dev: *mut bindings::iio_dev) -> ffi::c_int {
        // SAFETY: Per this function's safety requirement.
        let (d, dev) = unsafe { driver::<D>(indio_dev) };
        from_result(|| d.postenable(&dev).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the IIO core on a device registered by `Registration<D>`.
    unsafe extern "C" fn predisable(indio_dev: *mut bindings::iio_dev) -> ffi::c_int {
        // SAFETY: Per this function's safety requirement.
        let (d, dev) = unsafe { driver::<D>(indio_dev) };
        from_result(|| d.predisable(&dev).map(|()| 0))
    }
}

/// A registered IIO device; dropping it unregisters the device.
///
/// # Invariants
///
/// `indio_dev` is allocated, registered, and its private area holds
/// `Arc::as_ptr(&self._driver)`.
pub(crate) struct Registration<D: Driver> {
    indio_dev: NonNull<bindings::iio_dev>,
    /// Marks the attached buffer unregistered (type-erased
    /// `Buffer::mark_unregistered`); the core keeps the buffer alive
    /// until `iio_device_free`.
    mark_buffer: (unsafe fn(*const ffi::c_void), *const ffi::c_void),
    // Pointed to by the device's private area.
    _driver: Arc<D>,
    _tables: ChannelTables,
    _name: CString,
}

// SAFETY: The registration only hands out shared access to `D`, which is
// `Send + Sync`; the C device is safe to unregister from any thread.
unsafe impl<D: Driver> Send for Registration<D> {}
// SAFETY: As above: `&Registration` gives only shared access.
unsafe impl<D: Driver> Sync for Registration<D> {}

impl<D: Driver> Registration<D> {
    /// Allocates and registers an IIO device named `name`, child of
    /// `parent`, with `channels`, driven by `driver`, with `buffer`
    /// attached as its buffer.
    pub(crate) fn new<B: BufferOps>(
        name: &CStr,
        parent: Option<&kernel::device::Device>,
        channels: &[ChanSpec],
        driver: Arc<D>,
        buffer: &ARef<Buffer<B>>,
    ) -> Result<Self> {
        let name = CString::try_from_fmt(fmt!("{name}"))?;
        let tables = ChannelTables::new(channels, Adapter::<D>::read_ext, Adapter::<D>::write_ext)?;
        let parent = parent.map_or(core::ptr::null_mut(), raw_device);
        // SAFETY: `parent` is NULL or a live device; the device core takes a
        // reference to it when the IIO device is added.
        let raw = unsafe { bindings::iio_device_alloc(parent, size_of::<*const D>() as i32) };
        let indio_dev = NonNull::new(raw).ok_or(ENOMEM)?;
        let ptr = indio_dev.as_ptr();
        // SAFETY: `ptr` was just allocated with room for one pointer in its
        // private area, and is not registered yet: we own every field.
        unsafe {
            *bindings::iio_dmabuf_helper_iio_priv(ptr).cast::<*const D>() = Arc::as_ptr(&driver);
            (*ptr).name = name.as_char_ptr();
            (*ptr).channels = tables.specs.as_ptr();
            (*ptr).num_channels = tables.specs.len() as i32;
            (*ptr).info = &Adapter::<D>::INFO;
            (*ptr).setup_ops = &Adapter::<D>::SETUP_OPS;
            (*ptr).modes = bindings::INDIO_BUFFER_HARDWARE as i32;
        }
        // SAFETY: `ptr` is a valid unregistered device, and the buffer is
        // alive; the core takes its own reference to it.
        let ret = to_result(unsafe { bindings::iio_device_attach_buffer(ptr, buffer.as_raw()) })
            .and_then(|()| {
                // SAFETY: The device is fully set up.
                to_result(unsafe { bindings::iio_dmabuf_helper_device_register(ptr) })
            });
        if let Err(e) = ret {
            // SAFETY: Allocated above and not registered.
            unsafe { bindings::iio_device_free(ptr) };
            return Err(e);
        }
        /// # Safety
        ///
        /// `buffer` must point to a live `Buffer<B>`.
        unsafe fn mark<B: BufferOps>(buffer: *const ffi::c_void) {
            // SAFETY: Per the function's safety requirement.
            unsafe { &*buffer.cast::<Buffer<B>>() }.mark_unregistered();
        }
        let buffer_ptr: *const Buffer<B> = &**buffer;
        // INVARIANT: Allocated and registered above, private area set.
        Ok(Self {
            indio_dev,
            mark_buffer: (mark::<B>, buffer_ptr.cast()),
            _driver: driver,
            _tables: tables,
            _name: name,
        })
    }
}

impl<D: Driver> Registration<D> {
    fn device_ptr(&self) -> *mut kernel::bindings::device {
        // SAFETY: Allocated, by the type invariant.
        unsafe { &raw mut (*self.indio_dev.as_ptr()).dev }
    }

    /// The `struct device` of the IIO device, e.g. as a parent.
    pub(crate) fn device(&self) -> &kernel::device::Device {
        // SAFETY: The IIO device's `struct device` is initialised and
        // alive while the registration is (type invariant).
        unsafe { kernel::device::Device::from_raw(self.device_ptr()) }
    }

    /// The device's name in sysfs and /dev, `iio:deviceN`.
    pub(crate) fn dev_name(&self) -> &CStr {
        // SAFETY: A registered device has a name, valid while it lives.
        unsafe { CStr::from_char_ptr(bindings::iio_dmabuf_helper_dev_name(self.device_ptr())) }
    }
}

impl<D: Driver> Drop for Registration<D> {
    fn drop(&mut self) {
        let (mark, buffer) = self.mark_buffer;
        // SAFETY: The core holds a reference to the attached buffer until
        // `iio_device_free` below.
        unsafe { mark(buffer) };
        // SAFETY: Registered, by the type invariant. Unregistering disables
        // the buffers and removes the attributes, so no callback uses the
        // driver, channels or name after this; open files only see a
        // device without `info` and get ENODEV.
        unsafe {
            bindings::iio_device_unregister(self.indio_dev.as_ptr());
            bindings::iio_device_free(self.indio_dev.as_ptr());
        }
    }
}
