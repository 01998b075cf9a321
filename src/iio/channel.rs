// SPDX-License-Identifier: GPL-2.0

//! IIO channel descriptions (`struct iio_chan_spec`) and the values that
//! channel attributes read and write.

use crate::bindings;
use kernel::ffi;
use kernel::{prelude::*, str::CStr};

/// Kind of channel (`enum iio_chan_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChanType {
    /// A voltage input or output.
    Voltage,
    /// The soft timestamp channel.
    Timestamp,
}

/// Channel attribute selector (`enum iio_chan_info_enum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChanInfo {
    /// `raw`
    Raw,
    /// `scale`
    Scale,
    /// `sampling_frequency`
    SampFreq,
}

impl ChanInfo {
    const fn bit(self) -> u32 {
        match self {
            ChanInfo::Raw => bindings::iio_chan_info_enum_IIO_CHAN_INFO_RAW,
            ChanInfo::Scale => bindings::iio_chan_info_enum_IIO_CHAN_INFO_SCALE,
            ChanInfo::SampFreq => bindings::iio_chan_info_enum_IIO_CHAN_INFO_SAMP_FREQ,
        }
    }

    pub(crate) fn from_raw(mask: ffi::c_long) -> Option<Self> {
        [ChanInfo::Raw, ChanInfo::Scale, ChanInfo::SampFreq]
            .into_iter()
            .find(|i| i.bit() as ffi::c_long == mask)
    }

    fn mask(infos: &[ChanInfo]) -> ffi::c_ulong {
        infos.iter().fold(0, |m, i| m | (1 << i.bit()))
    }
}

/// Value of a channel attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// An integer (`IIO_VAL_INT`).
    Int(i32),
    /// `num / 2^shift` (`IIO_VAL_FRACTIONAL_LOG2`).
    FractionalLog2(i32, i32),
}

impl Value {
    pub(crate) fn into_raw(self, val: &mut i32, val2: &mut i32) -> i32 {
        match self {
            Value::Int(v) => {
                *val = v;
                bindings::IIO_VAL_INT as i32
            }
            Value::FractionalLog2(num, shift) => {
                *val = num;
                *val2 = shift;
                bindings::IIO_VAL_FRACTIONAL_LOG2 as i32
            }
        }
    }
}

/// Values a channel attribute accepts, for its `_available` file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Available {
    /// Integers `[min, step, max]` (`IIO_AVAIL_RANGE` of `IIO_VAL_INT`).
    IntRange(&'static [i32; 3]),
}

/// How widely an extended attribute is shared (`enum iio_shared_by`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shared {
    /// One device-wide attribute, named without a channel prefix.
    All,
}

/// An extended attribute: the driver's `read_ext` / `write_ext` receive
/// its `id`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtInfo {
    /// Attribute name.
    pub(crate) name: &'static CStr,
    /// Sharing.
    pub(crate) shared: Shared,
    /// Identifier passed back to the driver.
    pub(crate) id: usize,
    /// Whether userspace may write it.
    pub(crate) writable: bool,
}

/// Scan element format of a channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanType {
    /// Index of the channel in a scan.
    pub(crate) index: i32,
    /// `b's'` (signed) or `b'u'` (unsigned).
    pub(crate) sign: u8,
    /// Significant bits.
    pub(crate) realbits: u8,
    /// Bits of storage.
    pub(crate) storagebits: u8,
}

/// Builder for a channel description.
#[derive(Clone, Debug)]
pub(crate) struct ChanSpec {
    pub(crate) kind: ChanType,
    pub(crate) output: bool,
    pub(crate) channel: Option<i32>,
    pub(crate) scan: Option<ScanType>,
    pub(crate) separate: &'static [ChanInfo],
    pub(crate) shared_by_type: &'static [ChanInfo],
    pub(crate) shared_by_all: &'static [ChanInfo],
    pub(crate) shared_by_all_available: &'static [ChanInfo],
    pub(crate) ext_info: &'static [ExtInfo],
}

impl ChanSpec {
    /// A channel of `kind` with no attributes yet.
    pub(crate) const fn new(kind: ChanType) -> Self {
        Self {
            kind,
            output: false,
            channel: None,
            scan: None,
            separate: &[],
            shared_by_type: &[],
            shared_by_all: &[],
            shared_by_all_available: &[],
            ext_info: &[],
        }
    }

    /// Makes it an output channel (`out_voltage...`).
    pub(crate) const fn output(mut self) -> Self {
        self.output = true;
        self
    }

    /// Numbers the channel (`in_voltage<N>_...`).
    pub(crate) const fn indexed(mut self, channel: i32) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Makes it a scan element.
    pub(crate) const fn scan(mut self, scan: ScanType) -> Self {
        self.scan = Some(scan);
        self
    }

    /// Attributes of its own.
    pub(crate) const fn separate(mut self, infos: &'static [ChanInfo]) -> Self {
        self.separate = infos;
        self
    }

    /// Attributes shared with the channels of the same type.
    pub(crate) const fn shared_by_type(mut self, infos: &'static [ChanInfo]) -> Self {
        self.shared_by_type = infos;
        self
    }

    /// Device-wide attributes, and those of them with an `_available` file.
    pub(crate) const fn shared_by_all(
        mut self,
        infos: &'static [ChanInfo],
        available: &'static [ChanInfo],
    ) -> Self {
        self.shared_by_all = infos;
        self.shared_by_all_available = available;
        self
    }

    /// Extended attributes.
    pub(crate) const fn ext_info(mut self, ext: &'static [ExtInfo]) -> Self {
        self.ext_info = ext;
        self
    }
}

/// The channel an attribute callback is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Channel {
    /// Its number (`in_voltage<N>`), 0 when not indexed.
    pub(crate) number: i32,
}

impl Channel {
    /// # Safety
    ///
    /// `chan` must point to a valid `iio_chan_spec`.
    pub(crate) unsafe fn from_raw(chan: *const bindings::iio_chan_spec) -> Self {
        // SAFETY: Valid per the function's safety requirement.
        let chan = unsafe { &*chan };
        Self {
            number: chan.channel,
        }
    }
}

/// C callback reading an extended attribute.
pub(crate) type ExtReadFn = unsafe extern "C" fn(
    *mut bindings::iio_dev,
    usize,
    *const bindings::iio_chan_spec,
    *mut ffi::c_char,
) -> isize;

/// C callback writing an extended attribute.
pub(crate) type ExtWriteFn = unsafe extern "C" fn(
    *mut bindings::iio_dev,
    usize,
    *const bindings::iio_chan_spec,
    *const ffi::c_char,
    usize,
) -> isize;

/// The C tables built from [`ChanSpec`]s; they must outlive the
/// registration of the device that points to them.
pub(crate) struct ChannelTables {
    pub(crate) specs: KVec<bindings::iio_chan_spec>,
    // Pointed to by `specs`: kept alive, never read from Rust.
    _ext: KVec<KVec<bindings::iio_chan_spec_ext_info>>,
}

impl ChannelTables {
    pub(crate) fn new(
        channels: &[ChanSpec],
        ext_read: ExtReadFn,
        ext_write: ExtWriteFn,
    ) -> Result<Self> {
        let mut specs = KVec::with_capacity(channels.len(), GFP_KERNEL)?;
        let mut ext_tables = KVec::with_capacity(channels.len(), GFP_KERNEL)?;
        for c in channels {
            let mut spec = bindings::iio_chan_spec {
                type_: match c.kind {
                    ChanType::Voltage => bindings::iio_chan_type_IIO_VOLTAGE,
                    ChanType::Timestamp => bindings::iio_chan_type_IIO_TIMESTAMP,
                },
                channel: c.channel.unwrap_or(0),
                scan_index: -1,
                info_mask_separate: ChanInfo::mask(c.separate),
                info_mask_shared_by_type: ChanInfo::mask(c.shared_by_type),
                info_mask_shared_by_all: ChanInfo::mask(c.shared_by_all),
                info_mask_shared_by_all_available: ChanInfo::mask(c.shared_by_all_available),
                ..Default::default()
            };
            if c.channel.is_some() {
                spec.set_indexed(1);
            }
            if c.output {
                spec.set_output(1);
            }
            if let Some(s) = c.scan {
                spec.scan_index = s.index;
                let scan_type = bindings::iio_scan_type {
                    __bindgen_anon_1: bindings::iio_scan_type__bindgen_ty_1 {
                        sign: s.sign as ffi::c_char,
                    },
                    realbits: s.realbits,
                    storagebits: s.storagebits,
                    shift: 0,
                    repeat: 0,
                    endianness: bindings::iio_endian_IIO_LE,
                };
                // SAFETY: `scan_type` is the union member in use when
                // `has_ext_scan_type` is 0, as here.
                unsafe { *spec.__bindgen_anon_1.scan_type.as_mut() = scan_type };
            }
            if !c.ext_info.is_empty() {
                // One more, zeroed, entry terminates the table.
                let mut ext = KVec::with_capacity(c.ext_info.len() + 1, GFP_KERNEL)?;
                for e in c.ext_info {
                    ext.push(
                        bindings::iio_chan_spec_ext_info {
                            name: e.name.as_char_ptr(),
                            shared: match e.shared {
                                Shared::All => bindings::iio_shared_by_IIO_SHARED_BY_ALL,
                            },
                            read: Some(ext_read),
                            write: if e.writable { Some(ext_write) } else { None },
                            private: e.id,
                        },
                        GFP_KERNEL,
                    )?;
                }
                ext.push(bindings::iio_chan_spec_ext_info::default(), GFP_KERNEL)?;
                // The heap buffer does not move when `ext` is moved below.
                spec.ext_info = ext.as_ptr();
                ext_tables.push(ext, GFP_KERNEL)?;
            }
            specs.push(spec, GFP_KERNEL)?;
        }
        Ok(Self {
            specs,
            _ext: ext_tables,
        })
    }
}
