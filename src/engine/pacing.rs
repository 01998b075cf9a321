// SPDX-License-Identifier: GPL-2.0

//! Sample clock of a virtual converter: how many scans are due at a given
//! time, and when each scan was (nominally) taken.

/// Lowest sampling frequency, in Hz.
pub const MIN_FREQUENCY: u32 = 1;
/// Highest sampling frequency, in Hz.
pub const MAX_FREQUENCY: u32 = 1_000_000;
/// Shortest period between two completions of the virtual DMA engine:
/// like real hardware it moves data in bursts, not scan by scan.
pub const MIN_TICK_NS: u64 = 1_000_000;

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

    /// Scans due at `now_ns` and not yet issued: returns the number of the
    /// first one and their count, and marks them issued.
    pub fn take_due(&mut self, now_ns: u64) -> (u64, u64) {
        let first = self.issued;
        let ticks = self.ticks_at(now_ns);
        let count = ticks.saturating_sub(first);
        self.issued = first + count;
        (first, count)
    }

    /// Time offset, in ns from start, of scan number `scan`.
    pub fn offset_of(&self, scan: u64) -> u64 {
        (scan / self.freq) * NSEC_PER_SEC + (scan % self.freq) * NSEC_PER_SEC / self.freq
    }

    /// Delay until the next completion: one sample period, but no shorter
    /// than [`MIN_TICK_NS`].
    pub fn tick_ns(&self) -> u64 {
        (NSEC_PER_SEC / self.freq).max(MIN_TICK_NS)
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
        assert_eq!(valid_frequency(1_000_000), Some(1_000_000));
        assert_eq!(valid_frequency(1_000_001), None);
    }

    #[test]
    fn due_scans_follow_time() {
        let mut c = ScanClock::new(1000, 5_000);
        assert_eq!(c.take_due(5_000), (0, 0));
        assert_eq!(c.take_due(5_000 + 999_999), (0, 0));
        assert_eq!(c.take_due(5_000 + 1_000_000), (0, 1));
        assert_eq!(c.take_due(5_000 + 10_500_000), (1, 9));
        assert_eq!(c.take_due(5_000 + 10_500_000), (10, 0));
        // Long run at the highest rate: no overflow, exact count.
        let mut c = ScanClock::new(MAX_FREQUENCY, 0);
        let hours = 1000 * 3600 * NSEC_PER_SEC;
        assert_eq!(c.take_due(hours).1, 1000 * 3600 * MAX_FREQUENCY as u64);
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
