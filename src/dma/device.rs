// SPDX-License-Identifier: GPL-2.0

//! The `struct device` DMABUFs are attached to and mapped for.
//! Configfs-created IIO devices have no parent, so the module creates one
//! faux device (`/sys/devices/faux/iio_dmabuf`) with a 64-bit DMA mask,
//! the DMA device and sysfs parent of every virtual converter.
//!
//! It lives as long as the module: an attachment's teardown can outlive
//! the converter that made it (the IIO core releases attachments from a
//! work item, after the fence signalled), and still uses the device.

use crate::bindings;
use kernel::{
    device::Device,
    faux,
    prelude::*,
    str::CStr,
    sync::{aref::ARef, global_lock},
};

global_lock! {
    /// A reference to the module's DMA device while it exists. The IIO
    /// software-device `probe` callback carries no context (it gets a name
    /// only), so the converters it creates find the device here.
    // SAFETY: Initialised by `DmaDevice::new`, in module init, before any
    // converter can be probed.
    unsafe(uninit) static SHARED: Mutex<Option<ARef<Device>>> = None;
}

/// The module's DMA device; dropping it (at module exit) removes it.
pub(crate) struct DmaDevice {
    faux: faux::Registration,
}

impl DmaDevice {
    /// Creates `/sys/devices/faux/<name>` with a 64-bit DMA mask and makes
    /// it the device [`DmaDevice::shared`] returns. Once per module load.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: Module init calls this once, before anything else uses
        // the lock.
        unsafe { SHARED.init() };
        let faux = faux::Registration::new(name, None)?;
        let this = Self { faux };
        // SAFETY: A registered device; the helper points its `dma_mask` at
        // its own `coherent_dma_mask` and sets both.
        kernel::error::to_result(unsafe {
            bindings::iio_dmabuf_helper_dma_coerce_mask_64(raw_device(this.device()))
        })?;
        *SHARED.lock() = Some(this.device().into());
        Ok(this)
    }

    fn device(&self) -> &Device {
        let dev: &Device<kernel::device::Bound> = self.faux.as_ref().as_ref();
        dev
    }

    /// A reference to the module's DMA device (`ENODEV` outside the
    /// module's lifetime).
    pub(crate) fn shared() -> Result<ARef<Device>> {
        SHARED.lock().clone().ok_or(ENODEV)
    }
}

impl Drop for DmaDevice {
    fn drop(&mut self) {
        // Our reference goes before the registration does.
        SHARED.lock().take();
    }
}

/// The C `struct device` behind a kernel crate `Device`.
pub(crate) fn raw_device(dev: &Device) -> *mut bindings::device {
    // `kernel::device::Device` is a transparent wrapper of the C struct
    // (its `as_raw` is private to the kernel crate).
    core::ptr::from_ref(dev)
        .cast::<bindings::device>()
        .cast_mut()
}
