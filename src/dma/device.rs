// SPDX-License-Identifier: GPL-2.0

//! A `struct device` for DMA mapping: configfs-created IIO devices have no
//! parent, so each virtual converter gets a faux device of its own, with a
//! 64-bit DMA mask, as the device that imports DMABUFs.

use crate::bindings;
use kernel::{device::Device, faux, prelude::*, str::CStr, sync::aref::ARef};

/// A faux device usable for DMA mappings.
pub(crate) struct DmaDevice {
    faux: faux::Registration,
}

impl DmaDevice {
    /// Creates `/sys/devices/faux/<name>` with a 64-bit DMA mask.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        let faux = faux::Registration::new(name, None)?;
        let this = Self { faux };
        // SAFETY: A registered device; the helper points its `dma_mask` at
        // its own `coherent_dma_mask` and sets both.
        kernel::error::to_result(unsafe {
            bindings::iio_dmabuf_helper_dma_coerce_mask_64(this.as_raw())
        })?;
        Ok(this)
    }

    /// The generic device.
    pub(crate) fn device(&self) -> &Device {
        let dev: &Device<kernel::device::Bound> = self.faux.as_ref().as_ref();
        dev
    }

    /// A reference that keeps the `struct device` alive (DMA mappings of
    /// attachments may outlive the registration).
    pub(crate) fn reference(&self) -> ARef<Device> {
        self.device().into()
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        raw_device(self.device())
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
