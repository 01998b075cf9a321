// SPDX-License-Identifier: GPL-2.0

//! iio_dmabuf: virtual IIO converters with a zero-copy DMABUF interface.
//!
//! Layout: `iio` holds the safe abstractions over the C IIO API (the only
//! `unsafe` code), `engine` the pure logic shared with host unit tests,
//! and `adc` the virtual ADC driver built on both.

use kernel::prelude::*;

mod adc;
mod bindings;
// Also the crate root of the host unit tests (Cargo.toml), where its API is
// public.
#[allow(unreachable_pub)]
mod engine;
mod iio;

module! {
    type: IioDmabufModule,
    name: "iio_dmabuf",
    authors: ["The iio_dmabuf developers"],
    description: "Virtual IIO converters with a zero-copy DMABUF interface",
    license: "GPL",
}

struct IioDmabufModule {
    _adc_type: Pin<KBox<iio::sw_device::Registration<adc::AdcType>>>,
}

impl kernel::Module for IioDmabufModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let adc_type = KBox::pin_init(
            iio::sw_device::Registration::new(c"dmabuf_adc", module),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _adc_type: adc_type,
        })
    }
}
