// SPDX-License-Identifier: GPL-2.0

//! iio_dmabuf: virtual IIO converters with a zero-copy DMABUF interface.
//!
//! Layout: `iio`, `dma`, `chardev` and `work` hold the safe abstractions
//! over C APIs (the only `unsafe` code); `engine` the pure logic shared
//! with host unit tests (the block state machine among it); `buffer` and
//! `converter` the driver (the IIO buffer with its fileio, seed and
//! mainline front-ends; the virtual ADC and DAC) built on both.

use kernel::prelude::*;

mod bindings;
mod buffer;
mod chardev;
mod converter;
mod dma;
// Also the crate root of the host unit tests (Cargo.toml), where its API is
// public.
#[allow(unreachable_pub)]
mod engine;
mod export;
mod iio;
mod work;

module! {
    type: IioDmabufModule,
    name: "iio_dmabuf",
    authors: ["The iio_dmabuf developers"],
    description: "Virtual IIO converters with a zero-copy DMABUF interface",
    license: "GPL",
}

/// `THIS_MODULE`, for C structures that name their owner.
pub(crate) const THIS_MODULE_PTR: *mut kernel::bindings::module =
    kernel::module::this_module::<IioDmabufModule>().as_ptr();

/// The `dmabuf_max_bytes` module parameter (declared in `helpers.c`: Rust
/// module parameters cannot be changed at run time through sysfs).
pub(crate) fn dmabuf_max_bytes() -> usize {
    // SAFETY: No requirement.
    let bytes = unsafe { bindings::iio_dmabuf_helper_dmabuf_max_bytes() };
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

struct IioDmabufModule {
    // Fields drop in order: the device types go before the DMA device
    // their instances use.
    _adc_type: Pin<KBox<iio::sw_device::Registration<converter::AdcType>>>,
    _dac_type: Pin<KBox<iio::sw_device::Registration<converter::DacType>>>,
    _dma_dev: dma::device::DmaDevice,
    _faults: dma::engine::FaultInjection,
}

impl kernel::Module for IioDmabufModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let dma_dev = dma::device::DmaDevice::new(c"iio_dmabuf")?;
        Ok(Self {
            _adc_type: KBox::pin_init(
                iio::sw_device::Registration::new(c"dmabuf_adc", module),
                GFP_KERNEL,
            )?,
            _dac_type: KBox::pin_init(
                iio::sw_device::Registration::new(c"dmabuf_dac", module),
                GFP_KERNEL,
            )?,
            _dma_dev: dma_dev,
            _faults: dma::engine::FaultInjection::register(),
        })
    }
}
