// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions over dma-fence and over exporting and importing
//! DMABUFs: the DMA-side counterpart of `crate::iio`.

pub(crate) mod block;
pub(crate) mod buf;
pub(crate) mod device;
pub(crate) mod engine;
pub(crate) mod fence;
pub(crate) mod pages;
