// SPDX-License-Identifier: GPL-2.0

//! The memory a converter's hardware writes scans into or reads them from.
//!
//! Kernel blocks are plain byte slices. DMABUF memory is shared with
//! userspace and other devices, so no slice is ever made over it: the
//! kernel side implements these traits with raw accessors
//! (`crate::dma::block::SharedSpan`), and the waveform code is written
//! once, against the traits.
//!
//! The `*_scans` methods are the hot paths: one bounds check for a run of
//! scans, then a tight loop of word stores or loads.

/// Whether `count` scans `stride` bytes apart from byte `at`, each using
/// its first `used` bytes, fit in `size` bytes. A scan takes room: a
/// `stride` of 0 fits nothing.
#[inline(always)]
pub fn scans_fit(size: usize, at: usize, count: usize, stride: usize, used: usize) -> bool {
    let Some(last) = count.checked_sub(1) else {
        return true;
    };
    last.checked_mul(stride)
        .and_then(|offset| offset.checked_add(at))
        .and_then(|start| start.checked_add(used))
        .is_some_and(|end| stride > 0 && used <= stride && end <= size)
}

/// The low `B` bytes of `word`, little-endian.
#[inline(always)]
pub fn low_bytes<const B: usize>(word: u64) -> [u8; B] {
    let mut bytes = [0; B];
    bytes.copy_from_slice(&word.to_le_bytes()[..B]);
    bytes
}

/// `B` little-endian bytes as a word.
#[inline(always)]
pub fn widen<const B: usize>(bytes: [u8; B]) -> u64 {
    let mut all = [0; 8];
    all[..B].copy_from_slice(&bytes);
    u64::from_le_bytes(all)
}

/// The first `B` bytes of `scan` (which holds them) as a word.
#[inline(always)]
fn load<const B: usize>(scan: &[u8]) -> u64 {
    widen::<B>(scan[..B].try_into().unwrap_or([0; B]))
}

/// Memory the hardware writes.
pub trait ByteSink {
    /// Bytes of the span.
    fn size(&self) -> usize;

    /// The span as one byte slice, when it is one (kernel memory).
    fn as_bytes_mut(&mut self) -> Option<&mut [u8]> {
        None
    }

    /// Stores `bytes` at byte `at`. Callers stay in bounds.
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]);

    /// Stores `count` words `stride` bytes apart from byte `at`: the low
    /// `B` bytes of each word `next` gives (samples, or 8 for a stamp).
    /// Stores nothing unless they all fit.
    fn put_scans<const B: usize>(
        &mut self,
        at: usize,
        count: usize,
        stride: usize,
        next: impl FnMut() -> u64,
    );
}

/// Memory the hardware reads.
pub trait ByteSource {
    /// Bytes of the span.
    fn size(&self) -> usize;

    /// The span as one byte slice, when it is one (kernel memory).
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }

    /// Loads the `N` bytes at byte `at`. Callers stay in bounds.
    fn get<const N: usize>(&self, at: usize) -> [u8; N];

    /// Compares the first `B` bytes of up to `count` scans `stride` bytes
    /// apart from byte `at` with the words `next` gives: returns how many
    /// matched before the first that did not (0 if they do not all fit).
    fn match_scans<const B: usize>(
        &self,
        at: usize,
        count: usize,
        stride: usize,
        next: impl FnMut() -> u64,
    ) -> usize;
}

impl ByteSink for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn as_bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(self)
    }

    #[inline(always)]
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        self[at..at + N].copy_from_slice(&bytes);
    }

    #[inline(always)]
    fn put_scans<const B: usize>(
        &mut self,
        at: usize,
        count: usize,
        stride: usize,
        mut next: impl FnMut() -> u64,
    ) {
        if count == 0 || !scans_fit(self.len(), at, count, stride, B) {
            return;
        }
        // Whole strides but the last scan's, which may end after its `B`
        // bytes: exact chunks let the compiler drop the per-scan checks.
        let (body, last) = self[at..].split_at_mut((count - 1) * stride);
        for scan in body.chunks_exact_mut(stride) {
            scan[..B].copy_from_slice(&low_bytes::<B>(next()));
        }
        last[..B].copy_from_slice(&low_bytes::<B>(next()));
    }
}

impl ByteSource for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }

    #[inline(always)]
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut bytes = [0; N];
        bytes.copy_from_slice(&self[at..at + N]);
        bytes
    }

    #[inline(always)]
    fn match_scans<const B: usize>(
        &self,
        at: usize,
        count: usize,
        stride: usize,
        mut next: impl FnMut() -> u64,
    ) -> usize {
        if count == 0 || !scans_fit(self.len(), at, count, stride, B) {
            return 0;
        }
        let (body, last) = self[at..].split_at((count - 1) * stride);
        let matched = body
            .chunks_exact(stride)
            .take_while(|scan| load::<B>(scan) == next())
            .count();
        if matched == count - 1 && load::<B>(last) == next() {
            count
        } else {
            matched
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit() {
        assert!(scans_fit(0, 0, 0, 16, 16));
        assert!(scans_fit(32, 0, 2, 16, 16));
        assert!(!scans_fit(31, 0, 2, 16, 16));
        assert!(scans_fit(30, 0, 2, 16, 14));
        assert!(!scans_fit(64, 0, 2, 8, 16));
        assert!(!scans_fit(usize::MAX, 1, usize::MAX, 16, 16));
        assert!(!scans_fit(usize::MAX, usize::MAX, 1, 16, 1));
        // A stride of 0 fits no scan, even of no bytes.
        assert!(!scans_fit(64, 0, 1, 0, 0));
        assert!(!scans_fit(64, 0, 2, 0, 0));
    }

    #[test]
    fn stride_zero_moves_nothing() {
        let mut buf = [7u8; 16];
        buf[..].put_scans::<0>(0, 2, 0, || 1);
        buf[..].put_scans::<2>(0, 1, 0, || 1);
        assert_eq!(buf, [7u8; 16]);
        assert_eq!(buf[..].match_scans::<0>(0, 2, 0, || 0), 0);
    }

    #[test]
    fn runs_of_scans() {
        let mut buf = [0u8; 40];
        let mut n = 0u64;
        buf[..].put_scans::<2>(4, 3, 12, || {
            n += 1;
            n
        });
        let mut n = 0i64;
        buf[..].put_scans::<8>(8, 3, 12, || {
            n -= 1;
            n as u64
        });
        assert_eq!(&buf[4..6], &[1, 0]);
        assert_eq!(&buf[8..16], &(-1i64).to_le_bytes());
        assert_eq!(&buf[16..18], &[2, 0]);
        assert_eq!(&buf[28..30], &[3, 0]);
        assert_eq!(&buf[32..40], &(-3i64).to_le_bytes());
        // One more would not fit: nothing at all is stored.
        let before = buf;
        buf[..].put_scans::<2>(4, 4, 12, || 9);
        buf[..].put_scans::<8>(8, 4, 12, || 9);
        assert_eq!(buf, before);
        let mut k = 0;
        let matched = buf[..].match_scans::<2>(4, 3, 12, || {
            k += 1;
            if k == 3 {
                7
            } else {
                k
            }
        });
        assert_eq!(matched, 2);
    }
}
