// SPDX-License-Identifier: GPL-2.0

//! Sample clock of a virtual converter: how many scans are due at a given
//! time, and when each scan was (nominally) taken.
//!
//! The pacing model (documented in `Documentation/iio/dmabuf_adc.rst`):
//! scan `n` is due at `start + floor(n * 10^9 / f)` ns. An hrtimer ticks
//! every sample period, but no faster than [`MIN_TICK_NS`], and queues the
//! engine's run. A run takes the scans due and not yet moved (the
//! backlog), at most [`CHUNK_BYTES`] of them, and queues itself again
//! while a backlog remains: a late run catches up on every block due, in
//! bounded chunks, so pacing never caps the throughput and no run hogs a
//! CPU. The converter's FIFO holds [`FIFO_BYTES`] of backlog: when the
//! engine falls further behind than that (the machine cannot move data
//! at the rate), the oldest scans are lost, as in hardware.

/// Lowest sampling frequency, in Hz.
pub const MIN_FREQUENCY: u32 = 1;
/// Highest sampling frequency, in Hz: the rate of today's fast converters
/// (500 MSPS).
pub const MAX_FREQUENCY: u32 = 500_000_000;
/// Shortest period between two completions of the virtual DMA engine:
/// like real hardware it moves data in bursts, not scan by scan.
pub const MIN_TICK_NS: u64 = 1_000_000;
/// Most bytes one engine run moves: then it yields the CPU and runs again.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Backlog the converter's FIFO holds before it loses the oldest scans.
pub const FIFO_BYTES: usize = 256 << 20;

use core::num::NonZeroU64;

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Checks a sampling frequency written by userspace.
pub fn valid_frequency(hz: i64) -> Option<u32> {
    if (i64::from(MIN_FREQUENCY)..=i64::from(MAX_FREQUENCY)).contains(&hz) {
        Some(hz as u32)
    } else {
        None
    }
}

/// A running sample clock: scans are numbered from 0 at `start`.
#[derive(Clone, Copy, Debug)]
pub struct ScanClock {
    // Non-zero by type: divisions need no panic path (objtool does not
    // know every Rust panic function to be noreturn).
    freq: NonZeroU64,
    start_ns: u64,
    issued: u64,
}

impl ScanClock {
    /// A clock at `freq` Hz started at monotonic time `start_ns`.
    pub fn new(freq: u32, start_ns: u64) -> Self {
        Self {
            freq: NonZeroU64::new(u64::from(freq)).unwrap_or(NonZeroU64::MIN),
            start_ns,
            issued: 0,
        }
    }

    /// Number of scans the clock has ticked by `now_ns` since start.
    pub fn ticks_at(&self, now_ns: u64) -> u64 {
        let elapsed = now_ns.saturating_sub(self.start_ns);
        // Split to avoid overflowing 64 bits for long runs at high rates.
        let freq = self.freq.get();
        (elapsed / NSEC_PER_SEC) * freq + (elapsed % NSEC_PER_SEC) * freq / NSEC_PER_SEC
    }

    /// Takes the scans due at `now_ns` and not yet issued: first the
    /// oldest beyond `fifo` scans of backlog, which are lost, then at most
    /// `chunk` to move now. Marks both issued.
    pub fn take_due(&mut self, now_ns: u64, chunk: u64, fifo: u64) -> Due {
        let backlog = self.ticks_at(now_ns).saturating_sub(self.issued);
        let lost = backlog.saturating_sub(fifo);
        let first = self.issued + lost;
        let count = (backlog - lost).min(chunk);
        self.issued = first + count;
        Due {
            lost,
            first,
            count,
            more: backlog - lost > count,
        }
    }

    /// Marks every scan due at `now_ns` issued, and returns how many were
    /// not yet (they are lost: no block was there to take them).
    pub fn drop_due(&mut self, now_ns: u64) -> u64 {
        let ticks = self.ticks_at(now_ns);
        let lost = ticks.saturating_sub(self.issued);
        self.issued += lost;
        lost
    }

    /// Timestamps of the scans from number `first` on, scan 0 being
    /// stamped `base`.
    pub fn stamps(&self, first: u64, base: i64) -> Stamps {
        let freq = self.freq.get();
        let (whole, part) = (first / self.freq, first % self.freq);
        // `part < freq <= MAX_FREQUENCY`: the product fits 64 bits.
        let offset = whole * NSEC_PER_SEC + part * NSEC_PER_SEC / freq;
        Stamps {
            next: base.wrapping_add(offset as i64),
            remainder: part * NSEC_PER_SEC % freq,
            step: (NSEC_PER_SEC / freq) as i64,
            step_remainder: NSEC_PER_SEC % freq,
            freq,
        }
    }

    /// Time offset, in ns from start, of scan number `scan` (the
    /// reference [`Stamps`] is tested against).
    #[cfg(test)]
    pub fn offset_of(&self, scan: u64) -> u64 {
        (scan / self.freq) * NSEC_PER_SEC + (scan % self.freq) * NSEC_PER_SEC / self.freq
    }

    /// Delay until the next completion: one sample period, but no shorter
    /// than [`MIN_TICK_NS`].
    pub fn tick_ns(&self) -> u64 {
        (NSEC_PER_SEC / self.freq).max(MIN_TICK_NS)
    }
}

/// What an engine run takes from the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Scans lost before `first`: the FIFO overflowed.
    pub lost: u64,
    /// Number of the first scan to move now.
    pub first: u64,
    /// Scans to move now.
    pub count: u64,
    /// More scans are due: the run should go again.
    pub more: bool,
}

/// The timestamps of consecutive scans, `base + floor(n * 10^9 / f)`,
/// with no division per scan.
#[derive(Clone, Copy, Debug)]
pub struct Stamps {
    next: i64,
    /// `(n * 10^9) mod f` for the next scan `n`.
    remainder: u64,
    step: i64,
    step_remainder: u64,
    freq: u64,
}

impl Stamps {
    /// The timestamp of the next scan.
    #[inline(always)]
    pub fn next_stamp(&mut self) -> i64 {
        let stamp = self.next;
        // Wrapping arithmetic: no overflow check in this hot path, and
        // none needed (both remainders are below `freq`, itself below
        // 2^32).
        self.next = self.next.wrapping_add(self.step);
        self.remainder = self.remainder.wrapping_add(self.step_remainder);
        if self.remainder >= self.freq {
            self.remainder = self.remainder.wrapping_sub(self.freq);
            self.next = self.next.wrapping_add(1);
        }
        stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_bounds() {
        assert_eq!(valid_frequency(0), None);
        assert_eq!(valid_frequency(-5), None);
        assert_eq!(valid_frequency(1), Some(1));
        assert_eq!(valid_frequency(1_000_001), Some(1_000_001));
        assert_eq!(valid_frequency(500_000_000), Some(500_000_000));
        assert_eq!(valid_frequency(500_000_001), None);
        assert_eq!(valid_frequency(i64::from(u32::MAX) + 1), None);
    }

    #[test]
    fn due_scans_follow_time() {
        let all = |c: &mut ScanClock, now| {
            let d = c.take_due(now, u64::MAX, u64::MAX);
            (d.first, d.count)
        };
        let mut c = ScanClock::new(1000, 5_000);
        assert_eq!(all(&mut c, 5_000), (0, 0));
        assert_eq!(all(&mut c, 5_000 + 999_999), (0, 0));
        assert_eq!(all(&mut c, 5_000 + 1_000_000), (0, 1));
        assert_eq!(all(&mut c, 5_000 + 10_500_000), (1, 9));
        assert_eq!(all(&mut c, 5_000 + 10_500_000), (10, 0));
        // Long run at the highest rate: no overflow, exact count.
        let mut c = ScanClock::new(MAX_FREQUENCY, 0);
        let hours = 1000 * 3600 * NSEC_PER_SEC;
        assert_eq!(all(&mut c, hours).1, 1000 * 3600 * MAX_FREQUENCY as u64);
    }

    fn due(lost: u64, first: u64, count: u64, more: bool) -> Due {
        Due {
            lost,
            first,
            count,
            more,
        }
    }

    #[test]
    fn chunks_and_fifo() {
        let mut c = ScanClock::new(1_000_000, 0);
        // 1 ms due: 1000 scans, taken 300 at a time.
        let d = c.take_due(1_000_000, 300, 10_000);
        assert_eq!(d, due(0, 0, 300, true));
        let d = c.take_due(1_000_000, 300, 10_000);
        assert_eq!(d, due(0, 300, 300, true));
        let d = c.take_due(1_000_000, 1000, 10_000);
        assert_eq!(d, due(0, 600, 400, false));
        // 20 ms late with a FIFO of 10000 scans: the oldest 10000 are lost.
        let d = c.take_due(21_000_000, 4000, 10_000);
        assert_eq!(d, due(10_000, 11_000, 4000, true));
        let d = c.take_due(21_000_000, 100_000, 10_000);
        assert_eq!(d, due(0, 15_000, 6000, false));
        // No block: everything due is dropped at once.
        assert_eq!(c.drop_due(22_000_000), 1000);
        assert_eq!(c.take_due(22_000_000, 10, 10).count, 0);
    }

    #[test]
    fn stamps_are_exact() {
        for freq in [
            1,
            3,
            7,
            1000,
            999_983,
            1_000_000,
            300_000_000,
            MAX_FREQUENCY,
        ] {
            let c = ScanClock::new(freq, 0);
            for first in [
                0u64,
                1,
                2,
                999,
                u64::from(freq) - 1,
                5 * u64::from(freq) + 3,
            ] {
                let mut s = c.stamps(first, -7);
                for n in first..first + 2500 {
                    assert_eq!(s.next_stamp(), c.offset_of(n) as i64 - 7, "f={freq} n={n}");
                }
            }
        }
    }

    #[test]
    fn offsets_and_ticks() {
        let c = ScanClock::new(3, 0);
        assert_eq!(c.offset_of(0), 0);
        assert_eq!(c.offset_of(1), 333_333_333);
        assert_eq!(c.offset_of(3), NSEC_PER_SEC);
        assert_eq!(c.tick_ns(), 333_333_333);
        assert_eq!(ScanClock::new(100_000, 0).tick_ns(), MIN_TICK_NS);
    }
}
