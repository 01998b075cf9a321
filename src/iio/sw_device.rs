// SPDX-License-Identifier: GPL-2.0

//! IIO software device types: `mkdir /sys/kernel/config/iio/devices/TYPE/NAME`
//! creates an instance, `rmdir` removes it.

use crate::bindings;
use core::marker::PhantomData;
use kernel::ffi;
use kernel::{
    error::to_result,
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule, //
};

/// A kind of device userspace creates through configfs.
pub(crate) trait SwDeviceType: Sized + 'static {
    /// What one configfs directory owns; dropped on `rmdir`.
    type Instance: Send + 'static;

    /// Creates the instance named `name`.
    fn probe(name: &CStr) -> Result<Self::Instance>;
}

/// The allocation behind one configfs directory. `header` comes first so
/// that the type-erased release callback finds `free`.
#[repr(C)]
struct SwDevice<I> {
    header: Header,
    instance: Option<I>,
}

#[repr(C)]
struct Header {
    swd: bindings::iio_sw_device,
    free: unsafe fn(*mut Header),
}

/// Frees a `SwDevice<I>` given its header.
///
/// # Safety
///
/// `header` must come from `KBox::into_raw` of a `SwDevice<I>`, and be
/// unreferenced.
unsafe fn free_sw_device<I>(header: *mut Header) {
    // SAFETY: Per the function's safety requirement.
    drop(unsafe { KBox::from_raw(header.cast::<SwDevice<I>>()) });
}

/// Called by the C helper's configfs `release` of an instance's item, once
/// its last reference is gone (after `remove`).
///
/// # Safety
///
/// `swd` must be the `iio_sw_device` of a `Header` created by `probe`.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_swd_release(swd: *mut bindings::iio_sw_device) {
    let header = swd.cast::<Header>();
    // SAFETY: `swd` is the first field of the `repr(C)` `Header`, whose
    // `free` matches the allocation's type; the item is unreferenced.
    unsafe { ((*header).free)(header) };
}

struct Adapter<T>(PhantomData<T>);

impl<T: SwDeviceType> Adapter<T> {
    const OPS: bindings::iio_sw_device_ops = bindings::iio_sw_device_ops {
        probe: Some(Self::probe),
        remove: Some(Self::remove),
    };

    /// # Safety
    ///
    /// Called by the IIO sw-device core with a valid name string.
    unsafe extern "C" fn probe(name: *const ffi::c_char) -> *mut bindings::iio_sw_device {
        // SAFETY: The core passes the configfs directory's name.
        let name = unsafe { CStr::from_char_ptr(name) };
        let build = || -> Result<*mut bindings::iio_sw_device> {
            let instance = T::probe(name)?;
            let dev = KBox::new(
                SwDevice {
                    header: Header {
                        // SAFETY: All-zero is a valid, empty `iio_sw_device`.
                        swd: unsafe { core::mem::zeroed() },
                        free: free_sw_device::<T::Instance>,
                    },
                    instance: Some(instance),
                },
                GFP_KERNEL,
            )?;
            let raw = KBox::into_raw(dev);
            // SAFETY: `raw` is valid; initialising the configfs group makes
            // its release free the allocation (see `iio_dmabuf_swd_release`).
            let swd = unsafe { &raw mut (*raw).header.swd };
            // SAFETY: `swd` is valid and `name` a valid string.
            unsafe { bindings::iio_dmabuf_helper_swd_group_init(swd, name.as_char_ptr()) };
            Ok(swd)
        };
        match build() {
            Ok(swd) => swd,
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called by the IIO sw-device core on an instance created by `probe`.
    unsafe extern "C" fn remove(swd: *mut bindings::iio_sw_device) -> ffi::c_int {
        let dev = swd.cast::<SwDevice<T::Instance>>();
        // SAFETY: `swd` heads a `SwDevice<T::Instance>` made by `probe`,
        // alive until the configfs item's release; nothing else touches
        // `instance`. Dropping it tears the device down now.
        drop(unsafe { (*dev).instance.take() });
        0
    }
}

/// A registered software device type; dropping it unregisters it.
///
/// # Invariants
///
/// `dt` is registered with the IIO sw-device core while `self` lives.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: SwDeviceType> {
    #[pin]
    dt: Opaque<bindings::iio_sw_device_type>,
    _t: PhantomData<T>,
}

// SAFETY: The C side serialises registration; no Rust data is shared.
unsafe impl<T: SwDeviceType> Send for Registration<T> {}
// SAFETY: As above.
unsafe impl<T: SwDeviceType> Sync for Registration<T> {}

impl<T: SwDeviceType> Registration<T> {
    /// Registers the type `name` (the configfs directory under
    /// `iio/devices/`), owned by `module`.
    pub(crate) fn new(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            dt <- Opaque::try_ffi_init(move |dt: *mut bindings::iio_sw_device_type| {
                // SAFETY: `dt` is valid for writes and pinned; the core
                // links it into its list and creates the configfs group.
                unsafe {
                    dt.write(bindings::iio_sw_device_type {
                        name: name.as_char_ptr(),
                        owner: module.as_ptr(),
                        ops: &Adapter::<T>::OPS,
                        // SAFETY: All-zero is valid for the list and group,
                        // which registration initialises.
                        ..core::mem::zeroed()
                    });
                    to_result(bindings::iio_register_sw_device_type(dt))
                }
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: SwDeviceType> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered, by the type invariant. Instances pin the
        // module, so none exists when the module unloads.
        unsafe { bindings::iio_unregister_sw_device_type(self.dt.get()) };
    }
}
