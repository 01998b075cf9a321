// SPDX-License-Identifier: GPL-2.0

//! The memory a converter's hardware writes scans into or reads them from.
//!
//! Kernel blocks are plain byte slices. DMABUF memory is shared with
//! userspace and other devices, so no slice is ever made over it: the
//! kernel side implements these traits with raw accessors
//! (`crate::dma::block::SharedSpan`), and the waveform code is written
//! once, against the traits.

/// Memory the hardware writes: whole little-endian words at byte offsets.
pub trait ByteSink {
    /// Bytes of the span.
    fn size(&self) -> usize;

    /// Stores `bytes` at byte `at`. Callers stay in bounds.
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]);
}

/// Memory the hardware reads.
pub trait ByteSource {
    /// Bytes of the span.
    fn size(&self) -> usize;

    /// Loads the `N` bytes at byte `at`. Callers stay in bounds.
    fn get<const N: usize>(&self, at: usize) -> [u8; N];
}

impl ByteSink for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        self[at..at + N].copy_from_slice(&bytes);
    }
}

impl ByteSource for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut bytes = [0; N];
        bytes.copy_from_slice(&self[at..at + N]);
        bytes
    }
}
