// SPDX-License-Identifier: GPL-2.0

//! Waveforms of the virtual converters, in integer arithmetic (no FPU in
//! the kernel). `Ramp` is exactly checkable by a reader: see
//! `Documentation/iio/dmabuf_adc.rst`.

use super::scan::{ScanLayout, NUM_CHANNELS};

/// Period of the sine waveform, in scans.
pub const SINE_PERIOD: u64 = 1000;
/// Peak amplitude of the sine waveform, in raw codes.
pub const SINE_AMPLITUDE: i64 = 30000;

/// The signal a virtual converter produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waveform {
    /// Channel `c` of scan `n` is `(n + c) mod 2^16`.
    Ramp,
    /// A sine of period [`SINE_PERIOD`] scans, channel `c` shifted by `c`
    /// quarter periods.
    Sine,
}

impl Waveform {
    /// All waveforms, in the order `waveform_available` lists them.
    pub const ALL: [Waveform; 2] = [Waveform::Ramp, Waveform::Sine];

    /// The sysfs name.
    pub fn name(self) -> &'static str {
        match self {
            Waveform::Ramp => "ramp",
            Waveform::Sine => "sine",
        }
    }

    /// Parses a sysfs value (a trailing newline is allowed).
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        Self::ALL.into_iter().find(|w| w.name().as_bytes() == text)
    }

    /// The raw code of channel `channel` in scan `scan`.
    pub fn sample(self, scan: u64, channel: usize) -> i16 {
        match self {
            Waveform::Ramp => scan.wrapping_add(channel as u64) as u16 as i16,
            Waveform::Sine => {
                let phase = (scan + channel as u64 * SINE_PERIOD / 4) % SINE_PERIOD;
                sine(phase, SINE_PERIOD)
            }
        }
    }
}

/// `SINE_AMPLITUDE * sin(2 pi phase / period)`, by Bhaskara I's
/// approximation (error below 0.2% of full scale).
fn sine(phase: u64, period: u64) -> i16 {
    // Position within the half period, scaled to 0..=180 "degrees" in
    // fixed point with 1/1000 degree resolution.
    let half = period / 2;
    let (pos, sign) = if phase < half {
        (phase, 1)
    } else {
        (phase - half, -1)
    };
    let d = (pos as i64 * 180_000) / half as i64;
    let x = d * (180_000 - d);
    let num = 4 * x;
    let den = 40_500_000_000 - x;
    (sign * SINE_AMPLITUDE * num / den) as i16
}

/// Writes `count` consecutive scans, the first being scan number
/// `first_scan`, into `out` following `layout`. `timestamp_of` gives the
/// timestamp of a scan number.
pub fn fill_scans(
    out: &mut [u8],
    layout: &ScanLayout,
    waveform: Waveform,
    first_scan: u64,
    timestamp_of: impl Fn(u64) -> i64,
) {
    if layout.is_empty() {
        return;
    }
    for (i, scan_bytes) in out.chunks_exact_mut(layout.scan_bytes).enumerate() {
        let scan = first_scan + i as u64;
        for c in 0..NUM_CHANNELS {
            if let Some(at) = layout.channel_offset[c] {
                let v = waveform.sample(scan, c).to_le_bytes();
                scan_bytes[at..at + 2].copy_from_slice(&v);
            }
        }
        if let Some(at) = layout.timestamp_offset {
            scan_bytes[at..at + 8].copy_from_slice(&timestamp_of(scan).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_wraps() {
        assert_eq!(Waveform::Ramp.sample(0, 0), 0);
        assert_eq!(Waveform::Ramp.sample(5, 3), 8);
        assert_eq!(Waveform::Ramp.sample(65535, 1), 0);
        assert_eq!(Waveform::Ramp.sample(32767, 0), i16::MAX);
        assert_eq!(Waveform::Ramp.sample(32768, 0), i16::MIN);
    }

    #[test]
    fn sine_shape() {
        assert_eq!(Waveform::Sine.sample(0, 0), 0);
        let peak = Waveform::Sine.sample(SINE_PERIOD / 4, 0) as i64;
        assert!((peak - SINE_AMPLITUDE).abs() < 100, "{peak}");
        let trough = Waveform::Sine.sample(3 * SINE_PERIOD / 4, 0) as i64;
        assert!((trough + SINE_AMPLITUDE).abs() < 100, "{trough}");
        // Channel 1 is a quarter period ahead: its first sample is the peak.
        assert_eq!(Waveform::Sine.sample(0, 1) as i64, peak);
        for n in 0..SINE_PERIOD {
            let exact = (SINE_AMPLITUDE as f64)
                * (2.0 * core::f64::consts::PI * n as f64 / SINE_PERIOD as f64).sin();
            let got = Waveform::Sine.sample(n, 0) as f64;
            assert!((got - exact).abs() < 0.002 * 65536.0, "n={n} {got} {exact}");
        }
    }

    #[test]
    fn parse_names() {
        assert_eq!(Waveform::parse(b"ramp\n"), Some(Waveform::Ramp));
        assert_eq!(Waveform::parse(b"sine"), Some(Waveform::Sine));
        assert_eq!(Waveform::parse(b"square"), None);
        assert_eq!(Waveform::parse(b""), None);
        assert_eq!(Waveform::parse(b"ramp\n\n"), None);
    }

    #[test]
    fn fill_layout_and_ramp() {
        let layout = ScanLayout::new(0b0101, true);
        let mut buf = [0u8; 48];
        fill_scans(&mut buf, &layout, Waveform::Ramp, 10, |n| n as i64 * 100);
        for (i, scan) in buf.chunks_exact(16).enumerate() {
            let n = 10 + i as u64;
            assert_eq!(i16::from_le_bytes([scan[0], scan[1]]), n as i16);
            assert_eq!(i16::from_le_bytes([scan[2], scan[3]]), n as i16 + 2);
            let ts = i64::from_le_bytes(scan[8..16].try_into().unwrap());
            assert_eq!(ts, n as i64 * 100);
        }
    }
}

/// Checks scans against the ramp, as the virtual DAC consumes them: each
/// scan must hold `n + c` on every enabled channel `c`, and `n` must follow
/// the previous scan's. The check starts over (resyncs) after a gap the
/// DAC knows of: an underrun, or a new pass over a cyclic block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RampChecker {
    expected: Option<u16>,
    /// Scans checked.
    pub consumed: u64,
    /// Scans that broke the ramp.
    pub mismatches: u64,
    /// Last sample of each channel.
    pub last: [i16; NUM_CHANNELS],
}

impl RampChecker {
    /// Starts a new run: counters and expectation cleared, the outputs
    /// kept (they hold the last code until a scan is played on them).
    pub fn restart(&mut self) {
        *self = Self {
            last: self.last,
            ..Self::default()
        };
    }

    /// Forgets the expected next scan: the next one starts a new ramp.
    pub fn resync(&mut self) {
        self.expected = None;
    }

    /// Checks the whole scans of `data`, laid out as `layout`.
    pub fn check(&mut self, data: &[u8], layout: &ScanLayout) {
        if layout.is_empty() {
            return;
        }
        for scan in data.chunks_exact(layout.scan_bytes) {
            let mut n = None;
            let mut consistent = true;
            for c in 0..NUM_CHANNELS {
                let Some(at) = layout.channel_offset[c] else {
                    continue;
                };
                let v = i16::from_le_bytes([scan[at], scan[at + 1]]);
                self.last[c] = v;
                let this_n = (v as u16).wrapping_sub(c as u16);
                match n {
                    None => n = Some(this_n),
                    Some(m) if m != this_n => consistent = false,
                    Some(_) => {}
                }
            }
            let follows = match (self.expected, n) {
                (Some(e), Some(n)) => e == n,
                _ => true,
            };
            if !consistent || !follows {
                self.mismatches += 1;
            }
            self.expected = n.map(|n| n.wrapping_add(1));
            self.consumed += 1;
        }
    }
}

#[cfg(test)]
mod checker_tests {
    use super::*;

    fn ramp(first: u64, scans: usize, layout: &ScanLayout) -> Vec<u8> {
        let mut buf = vec![0u8; scans * layout.scan_bytes];
        fill_scans(&mut buf, layout, Waveform::Ramp, first, |_| 0);
        buf
    }

    #[test]
    fn accepts_a_continuous_ramp_across_calls() {
        let layout = ScanLayout::new(0b1111, true);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 10, &layout), &layout);
        c.check(&ramp(10, 65536, &layout), &layout);
        assert_eq!(c.consumed, 65546);
        assert_eq!(c.mismatches, 0);
        assert_eq!(c.last, [9, 10, 11, 12]);
    }

    #[test]
    fn restart_keeps_the_outputs_only() {
        let layout = ScanLayout::new(0b1111, false);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 4, &layout), &layout);
        c.check(&ramp(9, 1, &layout), &layout);
        c.restart();
        assert_eq!((c.consumed, c.mismatches), (0, 0));
        assert_eq!(c.last, [9, 10, 11, 12]);
        // No expectation left from before.
        c.check(&ramp(100, 2, &layout), &layout);
        assert_eq!(c.mismatches, 0);
    }

    #[test]
    fn counts_gaps_repeats_and_corruption() {
        let layout = ScanLayout::new(0b0101, false);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 4, &layout), &layout);
        // A lost scan: 4 missing.
        c.check(&ramp(5, 2, &layout), &layout);
        assert_eq!(c.mismatches, 1);
        // A repeated block without resync.
        c.check(&ramp(5, 2, &layout), &layout);
        assert_eq!(c.mismatches, 2);
        // With a resync (cyclic pass), a repeat is fine.
        c.resync();
        c.check(&ramp(5, 2, &layout), &layout);
        assert_eq!(c.mismatches, 2);
        // A corrupted sample.
        let mut bad = ramp(7, 3, &layout);
        bad[layout.scan_bytes + 2] ^= 1;
        c.check(&bad, &layout);
        assert_eq!(c.mismatches, 3);
        assert_eq!(c.consumed, 13);
    }
}
