// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions over the C IIO API: devices, channels, buffers and
//! configfs software-device types.
//!
//! This is the module's only layer with `unsafe` code for IIO; the driver
//! logic above it is safe Rust.

pub(crate) mod buffer;
pub(crate) mod channel;
pub(crate) mod device;
pub(crate) mod sw_device;
