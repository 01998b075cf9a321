// SPDX-License-Identifier: GPL-2.0

//! Where a repeating input's scans sit in a converter's FIFO, for the DMA
//! to copy any run of them with no CPU work per scan.

use super::{scan::ScanLayout, waveform::Waveform};

/// An input whose scans repeat: what makes its bytes. Two inputs equal
/// give the same bytes for every scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeating {
    /// The scans' layout (no timestamp: timestamps never repeat).
    pub layout: ScanLayout,
    /// The signal, whose period the scans repeat with.
    pub waveform: Waveform,
}

/// One period of an input's scans from number 0, then as many again as
/// one copy moves at most: a copy of up to [`Pattern::piece`] bytes from
/// the offset of its first scan's phase ends inside the pattern. Patterns
/// equal hold the same bytes (the FIFO keeps the one it holds, and the CPU
/// writes it again only for another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    input: Repeating,
    /// Scans in a period.
    period: u64,
    scan_bytes: usize,
    /// Bytes of the pattern: a period plus `piece`.
    len: usize,
    /// Most bytes one copy moves (whole scans).
    piece: usize,
}

impl Pattern {
    /// The pattern of `input` in a FIFO of `capacity` bytes: `None` unless
    /// a period and one more scan fit.
    pub fn new(input: Repeating, capacity: usize) -> Option<Self> {
        let period = input.waveform.period();
        let scan_bytes = input.layout.scan_bytes;
        let period_bytes = usize::try_from(period).ok()?.checked_mul(scan_bytes)?;
        let room = capacity.checked_sub(period_bytes)?;
        let piece = room.checked_div(scan_bytes)?.checked_mul(scan_bytes)?;
        (period > 0 && piece > 0 && input.layout.timestamp_offset.is_none()).then_some(Self {
            input,
            period,
            scan_bytes,
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

    /// The ramp on the channels of `mask`, without timestamp.
    fn ramp(mask: u32) -> Repeating {
        Repeating {
            layout: ScanLayout::new(mask, false),
            waveform: Waveform::Ramp,
        }
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
        assert_eq!(Pattern::new(ramp(0), MIB), None);
        let stamped = Repeating {
            layout: ScanLayout::new(0b0001, true),
            waveform: Waveform::Ramp,
        };
        assert_eq!(Pattern::new(stamped, MIB), None);
    }

    #[test]
    fn every_copy_starts_at_its_phase_and_ends_inside() {
        for mask in [0b0001, 0b0111, 0b1111] {
            for waveform in Waveform::ALL {
                let input = Repeating {
                    waveform,
                    ..ramp(mask)
                };
                let (period, scan) = (waveform.period(), input.layout.scan_bytes);
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
        let sine = Repeating {
            waveform: Waveform::Sine,
            ..ramp(0b1111)
        };
        assert_ne!(Pattern::new(sine, MIB), Some(all));
        assert_eq!(Pattern::new(ramp(0b1111), MIB), Some(all));
    }
}
