// SPDX-License-Identifier: GPL-2.0

//! Where a repeating input's scans sit in a converter's FIFO, for the DMA
//! to copy any run of them with no CPU work per scan.

use super::{scan::ScanLayout, waveform::Waveform};

/// An input whose scans repeat: what makes its bytes. Two inputs equal
/// give the same bytes for every scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeating {
    layout: ScanLayout,
    waveform: Waveform,
}

impl Repeating {
    /// The input of `waveform` in `layout`, if its scans repeat: they
    /// carry samples, and no timestamp (timestamps never repeat).
    pub fn new(layout: ScanLayout, waveform: Waveform) -> Option<Self> {
        (layout.timestamp_offset.is_none() && !layout.is_empty())
            .then_some(Self { layout, waveform })
    }

    /// Bytes of a scan.
    pub fn scan_bytes(&self) -> usize {
        self.layout.scan_bytes
    }

    /// Scans after which the input repeats (the waveform's period).
    pub fn period(&self) -> u64 {
        self.waveform.period()
    }
}

/// One period of an input's scans from number 0, then as many again as
/// one copy moves at most: a copy of up to [`Pattern::piece`] bytes from
/// the offset of its first scan's phase ends inside the pattern. Patterns
/// equal hold the same bytes (the FIFO keeps the one it holds, and the CPU
/// writes it again only for another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    input: Repeating,
    /// Bytes of the pattern: a period plus `piece`.
    len: usize,
    /// Most bytes one copy moves (whole scans).
    piece: usize,
}

impl Pattern {
    /// The pattern of `input` in a FIFO of `capacity` bytes: `None` unless
    /// a period and one more scan fit.
    pub fn new(input: Repeating, capacity: usize) -> Option<Self> {
        let scan_bytes = input.scan_bytes();
        let period_bytes = usize::try_from(input.period())
            .ok()?
            .checked_mul(scan_bytes)?;
        let room = capacity.checked_sub(period_bytes)?;
        let piece = room.checked_div(scan_bytes)?.checked_mul(scan_bytes)?;
        (input.period() > 0 && piece > 0).then_some(Self {
            input,
            len: period_bytes + piece,
            piece,
        })
    }

    /// The input whose scans the pattern holds.
    pub fn input(&self) -> Repeating {
        self.input
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
        let scan_bytes = self.input.scan_bytes();
        let scans = done.checked_div(scan_bytes).unwrap_or(0) as u64;
        // Below the period, whose bytes the pattern holds (see `new`).
        let phase = first
            .wrapping_add(scans)
            .checked_rem(self.input.period())
            .unwrap_or(0);
        phase as usize * scan_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// `waveform` on the channels of `mask`, without timestamp.
    fn input(mask: u32, waveform: Waveform) -> Repeating {
        Repeating::new(ScanLayout::new(mask, false), waveform).unwrap()
    }

    /// The ramp on the channels of `mask`, without timestamp.
    fn ramp(mask: u32) -> Repeating {
        input(mask, Waveform::Ramp)
    }

    #[test]
    fn fits_a_period_and_a_piece_or_nothing() {
        // The ramp's period is 2^16 scans.
        let p = Pattern::new(ramp(0b1111), MIB).unwrap();
        assert_eq!((p.bytes(), p.piece()), (MIB, MIB / 2));
        let p = Pattern::new(ramp(0b0111), MIB).unwrap();
        assert_eq!(p.piece() % 6, 0);
        assert!(p.bytes() <= MIB && MIB - p.bytes() < 6);
        assert_eq!(Pattern::new(ramp(0b1111), (1 << 16) * 8), None);
    }

    #[test]
    fn only_samples_without_timestamp_repeat() {
        assert!(Repeating::new(ScanLayout::new(0b0001, true), Waveform::Ramp).is_none());
        assert!(Repeating::new(ScanLayout::new(0, true), Waveform::Sine).is_none());
        assert!(Repeating::new(ScanLayout::new(0, false), Waveform::Ramp).is_none());
        let r = input(0b0101, Waveform::Sine);
        assert_eq!((r.scan_bytes(), r.period()), (4, Waveform::Sine.period()));
    }

    #[test]
    fn every_copy_starts_at_its_phase_and_ends_inside() {
        for mask in [0b0001, 0b0111, 0b1111] {
            for waveform in Waveform::ALL {
                let input = input(mask, waveform);
                let (period, scan) = (input.period(), input.scan_bytes());
                let p = Pattern::new(input, MIB).unwrap();
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

    #[test]
    fn patterns_of_another_input_differ_even_at_the_same_length() {
        // 8- and 2-byte scans of the ramp both fill a MiB exactly.
        let (all, one) = (
            Pattern::new(ramp(0b1111), MIB).unwrap(),
            Pattern::new(ramp(0b0100), MIB).unwrap(),
        );
        assert_eq!(all.bytes(), one.bytes());
        assert_ne!(all, one);
        // Channels 0+1 and 2+3: the same scan size, other samples.
        assert_ne!(
            Pattern::new(ramp(0b0011), MIB),
            Pattern::new(ramp(0b1100), MIB)
        );
        assert_ne!(Pattern::new(input(0b1111, Waveform::Sine), MIB), Some(all));
        assert_eq!(Pattern::new(ramp(0b1111), MIB), Some(all));
    }
}
