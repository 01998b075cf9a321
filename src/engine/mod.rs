// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the module: no kernel API, only `core`.
//!
//! Everything here is compiled twice: into the kernel module, and on the
//! host by `cargo test` (see `Cargo.toml`), where its unit tests run.

pub mod pacing;
pub mod pattern;
pub mod queue;
pub mod scan;
pub mod span;
pub mod waveform;
