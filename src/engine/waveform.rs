// SPDX-License-Identifier: GPL-2.0

//! Waveforms of the virtual converters, in integer arithmetic (no FPU in
//! the kernel). `Ramp` is exactly checkable by a reader: see
//! `Documentation/iio/dmabuf_adc.rst`.

use super::{
    pacing::Stamps,
    scan::{ScanLayout, NUM_CHANNELS},
    span::{ByteSink, ByteSource},
};

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

    /// Scans after which every channel repeats: `sample(n + period(), c)
    /// == sample(n, c)`.
    pub fn period(self) -> u64 {
        match self {
            Waveform::Ramp => 1 << 16,
            Waveform::Sine => SINE_PERIOD,
        }
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

/// The samples of consecutive ramp scans as the scan holds them: the
/// enabled channels are contiguous from byte 0 (each is 2 bytes, aligned
/// to 2), so they form one little-endian word. The next scan's word is
/// this one plus 1 in every lane, as long as no lane wraps from 0xffff:
/// scans come in segments of consecutive words, with no per-lane work per
/// scan.
struct RampWords {
    /// Channel number of each lane.
    lanes: [u16; NUM_CHANNELS],
    count: usize,
    /// 1 in every lane.
    inc: u64,
    /// The next scan.
    scan: u64,
}

impl RampWords {
    fn new(layout: &ScanLayout, scan: u64) -> Self {
        let mut lanes = [0; NUM_CHANNELS];
        let mut count = 0;
        for (c, offset) in layout.channel_offset.iter().enumerate() {
            if offset.is_some() {
                lanes[count] = c as u16;
                count += 1;
            }
        }
        let inc = (0..count).fold(0, |inc, lane| inc | 1 << (16 * lane));
        Self {
            lanes,
            count,
            inc,
            scan,
        }
    }

    /// The word of the next scan, and how many scans (at most `max`) from
    /// it on follow by adding [`Self::inc`]; moves past them.
    fn segment(&mut self, max: usize) -> (u64, usize) {
        let mut word = 0;
        let mut len = max;
        for (lane, &c) in self.lanes.iter().take(self.count).enumerate() {
            let v = (self.scan as u16).wrapping_add(c);
            word |= u64::from(v) << (16 * lane);
            len = len.min(usize::from(0xffff - v) + 1);
        }
        self.scan = self.scan.wrapping_add(len as u64);
        (word, len)
    }
}

/// Whole scans of `scan_bytes` in `len` bytes (no division panic path:
/// objtool does not know every Rust panic function to be noreturn).
#[inline(always)]
fn whole_scans(len: usize, scan_bytes: usize) -> usize {
    len.checked_div(scan_bytes).unwrap_or(0)
}

/// Writes the whole scans that fit in `out`, the first being scan number
/// `first_scan`, following `layout`; `stamps` gives their timestamps. The
/// ramp is written a word per scan (the fast path); padding is not
/// written.
pub fn fill_scans<S: ByteSink + ?Sized>(
    out: &mut S,
    layout: &ScanLayout,
    waveform: Waveform,
    first_scan: u64,
    stamps: &mut Stamps,
) {
    match (waveform, layout.channel_offset.iter().flatten().count()) {
        (_, _) if layout.is_empty() => {}
        (Waveform::Ramp, 0) => fill_ramp::<0, S>(out, layout, first_scan, stamps),
        (Waveform::Ramp, 1) => fill_ramp::<2, S>(out, layout, first_scan, stamps),
        (Waveform::Ramp, 2) => fill_ramp::<4, S>(out, layout, first_scan, stamps),
        (Waveform::Ramp, 3) => fill_ramp::<6, S>(out, layout, first_scan, stamps),
        (Waveform::Ramp, _) => fill_ramp::<8, S>(out, layout, first_scan, stamps),
        (Waveform::Sine, _) => fill_each(out, layout, waveform, first_scan, stamps),
    }
}

/// The ramp, `B` bytes of samples per scan: per segment of consecutive
/// words, one run of word stores, then one of stamp stores (two short
/// loops keep their state in registers, where one long one spills it).
fn fill_ramp<const B: usize, S: ByteSink + ?Sized>(
    out: &mut S,
    layout: &ScanLayout,
    first_scan: u64,
    stamps: &mut Stamps,
) {
    let scan_bytes = layout.scan_bytes;
    let scans = whole_scans(out.size(), scan_bytes);
    let mut words = RampWords::new(layout, first_scan);
    let inc = words.inc;
    // Without samples (a timestamp alone) there are no words to store.
    let mut done = if B == 0 { scans } else { 0 };
    while done < scans {
        let (word, len) = words.segment(scans - done);
        let at = done * scan_bytes;
        store_words::<B, S>(out, at, len, scan_bytes, word, inc);
        done += len;
    }
    if let Some(stamp_at) = layout.timestamp_offset {
        store_stamps(out, stamp_at, scans, scan_bytes, stamps);
    }
}

// The two loops are functions of their own: their few values then stay in
// registers, where inlined into the caller some were spilled to the stack
// (a load per scan, which costs more than the store under TCG).

/// `count` ramp words from `word`, `inc` apart, `stride` bytes apart.
#[inline(never)]
fn store_words<const B: usize, S: ByteSink + ?Sized>(
    out: &mut S,
    at: usize,
    count: usize,
    stride: usize,
    mut word: u64,
    inc: u64,
) {
    out.put_scans::<B>(at, count, stride, || {
        let w = word;
        word = word.wrapping_add(inc);
        w
    });
}

/// `count` timestamps, `stride` bytes apart from byte `at`.
#[inline(never)]
fn store_stamps<S: ByteSink + ?Sized>(
    out: &mut S,
    at: usize,
    count: usize,
    stride: usize,
    stamps: &mut Stamps,
) {
    // A local copy: no store back through `stamps` per scan. The stamp's
    // bytes are 8 little-endian ones: a word's.
    let mut local = *stamps;
    out.put_scans::<8>(at, count, stride, || local.next_stamp() as u64);
    *stamps = local;
}

/// Any waveform, sample by sample.
fn fill_each<S: ByteSink + ?Sized>(
    out: &mut S,
    layout: &ScanLayout,
    waveform: Waveform,
    first_scan: u64,
    stamps: &mut Stamps,
) {
    let scan_bytes = layout.scan_bytes;
    for i in 0..whole_scans(out.size(), scan_bytes) {
        let (scan, at) = (first_scan + i as u64, i * scan_bytes);
        for (c, offset) in layout.channel_offset.iter().enumerate() {
            if let Some(offset) = offset {
                out.put::<2>(at + offset, waveform.sample(scan, c).to_le_bytes());
            }
        }
        if let Some(ts) = layout.timestamp_offset {
            out.put::<8>(at + ts, stamps.next_stamp().to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacing::ScanClock;

    #[test]
    fn waveforms_repeat_after_their_period() {
        for w in Waveform::ALL {
            let p = w.period();
            for n in [0, 1, 999, p - 1, p, 3 * p + 17, u64::from(u32::MAX)] {
                for c in 0..NUM_CHANNELS {
                    assert_eq!(w.sample(n, c), w.sample(n + p, c), "{} {n} {c}", w.name());
                }
            }
        }
    }

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
        let mut stamps = ScanClock::new(10_000_000, 0).stamps(10, 0);
        fill_scans(&mut buf[..], &layout, Waveform::Ramp, 10, &mut stamps);
        for (i, scan) in buf.chunks_exact(16).enumerate() {
            let n = 10 + i as u64;
            assert_eq!(i16::from_le_bytes([scan[0], scan[1]]), n as i16);
            assert_eq!(i16::from_le_bytes([scan[2], scan[3]]), n as i16 + 2);
            let ts = i64::from_le_bytes(scan[8..16].try_into().unwrap());
            assert_eq!(ts, n as i64 * 100);
        }
    }

    /// The reference: every sample from `Waveform::sample`, every
    /// timestamp from `ScanClock::offset_of`.
    fn reference(
        layout: &ScanLayout,
        w: Waveform,
        first: u64,
        scans: usize,
        clock: &ScanClock,
    ) -> Vec<u8> {
        let mut buf = vec![0xa5u8; scans * layout.scan_bytes];
        for (i, scan) in buf.chunks_exact_mut(layout.scan_bytes).enumerate() {
            let n = first + i as u64;
            for c in 0..NUM_CHANNELS {
                if let Some(at) = layout.channel_offset[c] {
                    scan[at..at + 2].copy_from_slice(&w.sample(n, c).to_le_bytes());
                }
            }
            if let Some(at) = layout.timestamp_offset {
                let ts = 1_000 + clock.offset_of(n) as i64;
                scan[at..at + 8].copy_from_slice(&ts.to_le_bytes());
            }
        }
        buf
    }

    #[test]
    fn every_mask_and_waveform_is_exact() {
        let clock = ScanClock::new(999_983, 0);
        for mask in 0..16 {
            for ts in [false, true] {
                let layout = ScanLayout::new(mask, ts);
                if layout.is_empty() {
                    continue;
                }
                for w in Waveform::ALL {
                    // Across the ramp's wrap, from odd places.
                    for first in [0u64, 65_530, 65_533, 131_071, 7] {
                        let scans = 300;
                        let want = reference(&layout, w, first, scans, &clock);
                        let tail = layout.scan_bytes - 1;
                        let mut got = vec![0xa5u8; want.len() + tail];
                        let mut stamps = clock.stamps(first, 1_000);
                        fill_scans(&mut got[..], &layout, w, first, &mut stamps);
                        assert_eq!(
                            &got[..want.len()],
                            &want[..],
                            "mask {mask:#x} ts {ts} {w:?} first {first}"
                        );
                        // Only whole scans: the tail is untouched.
                        assert!(got[want.len()..].iter().all(|&b| b == 0xa5));
                    }
                }
            }
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
    pub fn check<S: ByteSource + ?Sized>(&mut self, data: &S, layout: &ScanLayout) {
        match layout.channel_offset.iter().flatten().count() {
            _ if layout.is_empty() => {}
            // Nothing to check: no sample, no expectation.
            0 => {
                self.consumed += whole_scans(data.size(), layout.scan_bytes) as u64;
                self.expected = None;
            }
            1 => self.check_words::<2, S>(data, layout),
            2 => self.check_words::<4, S>(data, layout),
            3 => self.check_words::<6, S>(data, layout),
            _ => self.check_words::<8, S>(data, layout),
        }
    }

    /// Compares each scan's `B` bytes of samples with the expected ramp
    /// word; a scan that differs (or the first one, with no expectation)
    /// is looked at lane by lane.
    fn check_words<const B: usize, S: ByteSource + ?Sized>(
        &mut self,
        data: &S,
        layout: &ScanLayout,
    ) {
        let scan_bytes = layout.scan_bytes;
        let scans = whole_scans(data.size(), scan_bytes);
        let mut i = 0;
        while i < scans {
            if let Some(expected) = self.expected {
                let mut words = RampWords::new(layout, u64::from(expected));
                let inc = words.inc;
                let start = i;
                while i < scans {
                    let (mut word, len) = words.segment(scans - i);
                    let matched = data.match_scans::<B>(i * scan_bytes, len, scan_bytes, || {
                        let w = word;
                        word = word.wrapping_add(inc);
                        w
                    });
                    i += matched;
                    if matched < len {
                        break;
                    }
                }
                let matched = i - start;
                self.consumed += matched as u64;
                self.expected = Some(expected.wrapping_add(matched as u16));
                if i == scans {
                    break;
                }
            }
            self.check_one(data, i * scan_bytes, layout);
            i += 1;
        }
        // The outputs hold the last scan played.
        if let Some(last) = scans.checked_sub(1) {
            for (c, offset) in layout.channel_offset.iter().enumerate() {
                if let Some(offset) = offset {
                    self.last[c] = i16::from_le_bytes(data.get::<2>(last * scan_bytes + offset));
                }
            }
        }
    }

    /// Checks the scan at byte `at`, lane by lane.
    fn check_one<S: ByteSource + ?Sized>(&mut self, data: &S, at: usize, layout: &ScanLayout) {
        let mut n = None;
        let mut consistent = true;
        for (c, offset) in layout.channel_offset.iter().enumerate() {
            let Some(offset) = offset else {
                continue;
            };
            let v = u16::from_le_bytes(data.get::<2>(at + offset));
            let this_n = v.wrapping_sub(c as u16);
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

#[cfg(test)]
mod checker_tests {
    use super::*;
    use crate::pacing::ScanClock;

    fn ramp(first: u64, scans: usize, layout: &ScanLayout) -> Vec<u8> {
        let mut buf = vec![0u8; scans * layout.scan_bytes];
        let mut stamps = ScanClock::new(1, 0).stamps(first, 0);
        fill_scans(&mut buf[..], layout, Waveform::Ramp, first, &mut stamps);
        buf
    }

    #[test]
    fn accepts_a_continuous_ramp_across_calls() {
        let layout = ScanLayout::new(0b1111, true);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 10, &layout)[..], &layout);
        c.check(&ramp(10, 65536, &layout)[..], &layout);
        assert_eq!(c.consumed, 65546);
        assert_eq!(c.mismatches, 0);
        assert_eq!(c.last, [9, 10, 11, 12]);
    }

    #[test]
    fn restart_keeps_the_outputs_only() {
        let layout = ScanLayout::new(0b1111, false);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 4, &layout)[..], &layout);
        c.check(&ramp(9, 1, &layout)[..], &layout);
        c.restart();
        assert_eq!((c.consumed, c.mismatches), (0, 0));
        assert_eq!(c.last, [9, 10, 11, 12]);
        // No expectation left from before.
        c.check(&ramp(100, 2, &layout)[..], &layout);
        assert_eq!(c.mismatches, 0);
    }

    #[test]
    fn counts_gaps_repeats_and_corruption() {
        let layout = ScanLayout::new(0b0101, false);
        let mut c = RampChecker::default();
        c.check(&ramp(0, 4, &layout)[..], &layout);
        // A lost scan: 4 missing.
        c.check(&ramp(5, 2, &layout)[..], &layout);
        assert_eq!(c.mismatches, 1);
        // A repeated block without resync.
        c.check(&ramp(5, 2, &layout)[..], &layout);
        assert_eq!(c.mismatches, 2);
        // With a resync (cyclic pass), a repeat is fine.
        c.resync();
        c.check(&ramp(5, 2, &layout)[..], &layout);
        assert_eq!(c.mismatches, 2);
        // A corrupted sample.
        let mut bad = ramp(7, 3, &layout);
        bad[layout.scan_bytes + 2] ^= 1;
        c.check(&bad[..], &layout);
        assert_eq!(c.mismatches, 3);
        assert_eq!(c.consumed, 13);
    }

    /// The checker scan by scan, as it was before the word fast path.
    fn reference_check(c: &mut RampChecker, data: &[u8], layout: &ScanLayout) {
        for at in (0..data.len() / layout.scan_bytes).map(|i| i * layout.scan_bytes) {
            c.check_one(data, at, layout);
            for (ch, offset) in layout.channel_offset.iter().enumerate() {
                if let Some(o) = offset {
                    c.last[ch] = i16::from_le_bytes([data[at + o], data[at + o + 1]]);
                }
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_the_reference() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for mask in 1..16 {
            for ts in [false, true] {
                let layout = ScanLayout::new(mask, ts);
                let (mut fast, mut slow) = (RampChecker::default(), RampChecker::default());
                let mut next = 65_000u64;
                for _ in 0..200 {
                    let scans = (rand() % 40) as usize;
                    let mut data = ramp(next, scans, &layout);
                    match rand() % 6 {
                        // Corrupt a byte, skip scans, repeat, or resync.
                        0 if !data.is_empty() => {
                            let i = (rand() as usize) % data.len();
                            data[i] ^= 1 << (rand() % 8);
                        }
                        1 => next += rand() % 5,
                        2 => next = next.saturating_sub(rand() % 3),
                        3 => {
                            fast.resync();
                            slow.resync();
                        }
                        _ => {}
                    }
                    fast.check(&data[..], &layout);
                    reference_check(&mut slow, &data, &layout);
                    assert_eq!(fast, slow, "mask {mask:#x} ts {ts}");
                    next += scans as u64;
                }
                assert!(slow.mismatches > 0 && slow.consumed > 1000);
            }
        }
    }
}
