// SPDX-License-Identifier: GPL-2.0

//! Where a repeating input's scans sit in a converter's FIFO, for the DMA
//! to copy any run of them with no CPU work per scan.

/// One period of the scans from number 0, then as many again as one copy
/// moves at most: a copy of up to [`Pattern::piece`] bytes from the
/// offset of its first scan's phase ends inside the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Scans in a period.
    period: u64,
    scan_bytes: usize,
    /// Bytes of the pattern: a period plus `piece`.
    len: usize,
    /// Most bytes one copy moves (whole scans).
    piece: usize,
}

impl Pattern {
    /// The pattern of an input repeating after `period` scans of
    /// `scan_bytes`, in a FIFO of `capacity` bytes: `None` unless a period
    /// and one more scan fit.
    pub fn new(period: u64, scan_bytes: usize, capacity: usize) -> Option<Self> {
        let period_bytes = usize::try_from(period).ok()?.checked_mul(scan_bytes)?;
        let room = capacity.checked_sub(period_bytes)?;
        let piece = room.checked_div(scan_bytes)?.checked_mul(scan_bytes)?;
        (period > 0 && piece > 0).then_some(Self {
            period,
            scan_bytes,
            len: period_bytes + piece,
            piece,
        })
    }

    /// Bytes to write into the FIFO: the scans numbered from 0.
    pub fn bytes(&self) -> usize {
        self.len
    }

    /// Most bytes one copy moves.
    pub fn piece(&self) -> usize {
        self.piece
    }

    /// Offset in the FIFO of the scan `done` bytes after scan number
    /// `first`: the same scan within the first period.
    pub fn offset_of(&self, first: u64, done: usize) -> usize {
        let scans = done.checked_div(self.scan_bytes).unwrap_or(0) as u64;
        // Below `period`, whose bytes the pattern holds (see `new`).
        let phase = first
            .wrapping_add(scans)
            .checked_rem(self.period)
            .unwrap_or(0);
        phase as usize * self.scan_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn fits_a_period_and_a_piece_or_nothing() {
        let p = Pattern::new(1 << 16, 8, MIB).unwrap();
        assert_eq!((p.bytes(), p.piece()), (MIB, MIB / 2));
        let p = Pattern::new(1 << 16, 6, MIB).unwrap();
        assert_eq!(p.piece() % 6, 0);
        assert!(p.bytes() <= MIB && MIB - p.bytes() < 6);
        assert_eq!(Pattern::new(1 << 16, 16, MIB), None);
        assert_eq!(Pattern::new(1 << 16, 8, (1 << 16) * 8), None);
        assert_eq!(Pattern::new(0, 8, MIB), None);
        assert_eq!(Pattern::new(1000, 0, MIB), None);
        assert!(Pattern::new(u64::MAX, 8, MIB).is_none());
    }

    #[test]
    fn every_copy_starts_at_its_phase_and_ends_inside() {
        for (period, scan) in [(1u64 << 16, 2usize), (1 << 16, 6), (1 << 16, 8), (1000, 8)] {
            let p = Pattern::new(period, scan, MIB).unwrap();
            for first in [0, 1, period - 1, period, 5 * period + 3, u64::MAX - 2] {
                for done in [0, scan, p.piece(), 7 * p.piece()] {
                    let at = p.offset_of(first, done);
                    let n = first.wrapping_add((done / scan) as u64);
                    assert_eq!(at, (n % period) as usize * scan);
                    assert!(at + p.piece() <= p.bytes());
                }
            }
        }
    }
}
