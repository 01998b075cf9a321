// SPDX-License-Identifier: GPL-2.0

//! Layout of one scan in the buffer, following the IIO rules: enabled
//! channels in scan-index order, each aligned to its own size, and the whole
//! scan padded to the alignment of its largest element.

/// Number of voltage channels of the virtual converters.
pub const NUM_CHANNELS: usize = 4;
/// Bytes of one voltage sample (`le:s16/16>>0`).
pub const SAMPLE_BYTES: usize = 2;
/// Bytes of the timestamp (`le:s64/64>>0`).
pub const TIMESTAMP_BYTES: usize = 8;
/// Scan index of the timestamp channel.
pub const TIMESTAMP_INDEX: usize = NUM_CHANNELS;

/// Where each enabled element sits inside a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLayout {
    /// Byte offset of each voltage channel, `None` when disabled.
    pub channel_offset: [Option<usize>; NUM_CHANNELS],
    /// Byte offset of the timestamp, `None` when disabled.
    pub timestamp_offset: Option<usize>,
    /// Total bytes of one scan.
    pub scan_bytes: usize,
}

const fn align_up(value: usize, align: usize) -> usize {
    value.div_ceil(align) * align
}

impl ScanLayout {
    /// Computes the layout for a channel mask (bit `c` = voltage channel `c`)
    /// and the timestamp flag.
    pub fn new(channel_mask: u32, timestamp: bool) -> Self {
        let mut channel_offset = [None; NUM_CHANNELS];
        let mut bytes = 0;
        let mut largest = 1;
        for (c, offset) in channel_offset.iter_mut().enumerate() {
            if channel_mask & (1 << c) != 0 {
                bytes = align_up(bytes, SAMPLE_BYTES);
                *offset = Some(bytes);
                bytes += SAMPLE_BYTES;
                largest = largest.max(SAMPLE_BYTES);
            }
        }
        let timestamp_offset = if timestamp {
            bytes = align_up(bytes, TIMESTAMP_BYTES);
            let at = bytes;
            bytes += TIMESTAMP_BYTES;
            largest = largest.max(TIMESTAMP_BYTES);
            Some(at)
        } else {
            None
        };
        Self {
            channel_offset,
            timestamp_offset,
            scan_bytes: align_up(bytes, largest),
        }
    }

    /// Whether no element at all is enabled.
    pub fn is_empty(&self) -> bool {
        self.scan_bytes == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_channels_with_timestamp() {
        let l = ScanLayout::new(0b1111, true);
        assert_eq!(l.channel_offset, [Some(0), Some(2), Some(4), Some(6)]);
        assert_eq!(l.timestamp_offset, Some(8));
        assert_eq!(l.scan_bytes, 16);
    }

    #[test]
    fn subsets() {
        let l = ScanLayout::new(0b1010, false);
        assert_eq!(l.channel_offset, [None, Some(0), None, Some(2)]);
        assert_eq!(l.scan_bytes, 4);

        let l = ScanLayout::new(0b0100, true);
        assert_eq!(l.channel_offset[2], Some(0));
        assert_eq!(l.timestamp_offset, Some(8));
        assert_eq!(l.scan_bytes, 16);

        let l = ScanLayout::new(0b0001, false);
        assert_eq!(l.scan_bytes, 2);

        let l = ScanLayout::new(0b0111, false);
        assert_eq!(l.scan_bytes, 6);

        let l = ScanLayout::new(0, true);
        assert_eq!(l.timestamp_offset, Some(0));
        assert_eq!(l.scan_bytes, 8);

        assert!(ScanLayout::new(0, false).is_empty());
    }
}
