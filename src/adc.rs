// SPDX-License-Identifier: GPL-2.0

//! The virtual ADC: a configfs-created IIO device whose "hardware" is an
//! hrtimer-paced DMA engine filling the blocks of its buffer with scans of
//! a waveform, at the configured sampling frequency.
//!
//! Safe Rust only: the C interfaces are behind `crate::iio`.

use crate::{
    engine::{
        pacing::{self, ScanClock},
        queue::{Block, FileioGeometry, FileioQueue, MAX_BLOCKS},
        scan::{ScanLayout, NUM_CHANNELS, TIMESTAMP_INDEX},
        waveform::{fill_scans, Waveform},
    },
    iio::{
        buffer::{Buffer, BufferOps, Direction},
        channel::{
            Available, ChanInfo, ChanSpec, ChanType, Channel, ExtInfo, ScanType, Shared, Value,
        },
        device::{Device, Driver, Registration},
        sw_device::SwDeviceType,
    },
};
use core::fmt::Write;
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    str::{CStr, Formatter},
    sync::{aref::ARef, new_mutex, new_spinlock_irq, Arc, ArcBorrow, Mutex, SpinLockIrq},
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Instant, Monotonic,
    },
    uaccess::UserSliceWriter,
};

/// Sampling frequency of a new device, in Hz.
const DEFAULT_FREQUENCY: u32 = 10_000;
/// Buffer length of a new device, in scans.
const DEFAULT_LENGTH: u32 = 4096;

static FREQUENCY_RANGE: [i32; 3] = [
    pacing::MIN_FREQUENCY as i32,
    1,
    pacing::MAX_FREQUENCY as i32,
];

// Identifiers of the device-wide extended attributes.
const ATTR_WAVEFORM: usize = 0;
const ATTR_WAVEFORM_AVAILABLE: usize = 1;
const ATTR_OVERRUNS: usize = 2;

static DEVICE_ATTRS: [ExtInfo; 3] = [
    ExtInfo {
        name: c"waveform",
        shared: Shared::All,
        id: ATTR_WAVEFORM,
        writable: true,
    },
    ExtInfo {
        name: c"waveform_available",
        shared: Shared::All,
        id: ATTR_WAVEFORM_AVAILABLE,
        writable: false,
    },
    ExtInfo {
        name: c"overruns",
        shared: Shared::All,
        id: ATTR_OVERRUNS,
        writable: false,
    },
];

const fn voltage_channel(n: i32) -> ChanSpec {
    ChanSpec::new(ChanType::Voltage)
        .indexed(n)
        .scan(ScanType {
            index: n,
            sign: b's',
            realbits: 16,
            storagebits: 16,
        })
        .separate(&[ChanInfo::Raw])
        .shared_by_type(&[ChanInfo::Scale])
}

/// Four voltage channels, then the timestamp; device-wide attributes hang
/// off channel 0.
fn channels() -> [ChanSpec; NUM_CHANNELS + 1] {
    [
        voltage_channel(0)
            .shared_by_all(&[ChanInfo::SampFreq], &[ChanInfo::SampFreq])
            .ext_info(&DEVICE_ATTRS),
        voltage_channel(1),
        voltage_channel(2),
        voltage_channel(3),
        ChanSpec::new(ChanType::Timestamp).scan(ScanType {
            index: TIMESTAMP_INDEX as i32,
            sign: b's',
            realbits: 64,
            storagebits: 64,
        }),
    ]
}

/// The buffer of the read() path: blocks of kernel memory going round
/// between the virtual hardware and the reader.
#[pin_data]
pub(crate) struct FileioBuffer {
    #[pin]
    queue: SpinLockIrq<FileioQueue<KVVec<u8>>>,
    /// Serialises readers, and readers against re-allocation.
    #[pin]
    reader: Mutex<()>,
}

impl FileioBuffer {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            queue <- new_spinlock_irq!(FileioQueue::default(), "FileioBuffer::queue"),
            reader <- new_mutex!((), "FileioBuffer::reader"),
        })
    }
}

impl BufferOps for FileioBuffer {
    fn read(buf: &Buffer<Self>, out: &mut UserSliceWriter) -> Result<usize> {
        let scan_bytes = buf.bytes_per_datum();
        if scan_bytes == 0 || out.len() < scan_bytes {
            return Err(EINVAL);
        }
        let this = buf.data();
        let _reader = this.reader.lock();
        let mut total = 0;
        while out.len() >= scan_bytes {
            let Some(block) = this.queue.lock().take_for_read() else {
                break;
            };
            let start = block.consumed;
            let n = (block.filled - start).min(out.len() / scan_bytes * scan_bytes);
            // Copy outside the spinlock: this may fault and sleep.
            let copied = out.write_slice(&block.data[start..start + n]);
            let consumed = if copied.is_ok() { n } else { 0 };
            this.queue.lock().return_after_read(block, consumed);
            match copied {
                Ok(()) => total += n,
                Err(e) if total == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(total)
    }

    fn data_available(buf: &Buffer<Self>) -> usize {
        // The core counts in scans (it compares with the watermark).
        let bytes = buf.data().queue.lock().available();
        bytes.checked_div(buf.bytes_per_datum()).unwrap_or(0)
    }

    fn enable(buf: &Buffer<Self>) -> Result {
        let geometry = FileioGeometry::new(buf.length(), buf.watermark()).ok_or(EINVAL)?;
        let scan_bytes = buf.bytes_per_datum();
        if scan_bytes == 0 {
            return Err(EINVAL);
        }
        let block_bytes = geometry.block_scans.checked_mul(scan_bytes).ok_or(EINVAL)?;
        let mut fresh = KVec::with_capacity(geometry.blocks, GFP_KERNEL)?;
        for _ in 0..geometry.blocks {
            let data = KVVec::from_elem(0u8, block_bytes, GFP_KERNEL)?;
            fresh.push(Block::new(data, block_bytes), GFP_KERNEL)?;
        }
        // Old blocks are freed after the spinlock is released.
        let mut old = KVec::with_capacity(MAX_BLOCKS, GFP_KERNEL)?;
        let this = buf.data();
        let _reader = this.reader.lock();
        let mut queue = this.queue.lock();
        for block in queue.drain_all() {
            // Capacity is MAX_BLOCKS, the most the queue holds.
            let _ = old.push_within_capacity(block);
        }
        queue.set_flush_threshold(buf.watermark().saturating_mul(scan_bytes));
        while let Some(block) = fresh.pop() {
            // At most MAX_BLOCKS by construction of the geometry.
            let _ = queue.hardware.submit(block);
        }
        Ok(())
    }

    fn disable(_buf: &Buffer<Self>) -> Result {
        // Completed blocks stay readable: the IIO core lets readers drain
        // a disabled buffer.
        Ok(())
    }
}

/// One acquisition, from buffer enable to disable.
struct Run {
    clock: ScanClock,
    started: Instant<Monotonic>,
    layout: ScanLayout,
    waveform: Waveform,
    /// Device timestamp of scan 0.
    timestamp_base: i64,
}

struct HwState {
    frequency: u32,
    waveform: Waveform,
    run: Option<Run>,
    overruns: u64,
}

/// The virtual hardware.
#[pin_data]
pub(crate) struct Adc {
    #[pin]
    timer: HrTimer<Adc>,
    #[pin]
    hw: SpinLockIrq<HwState>,
    #[pin]
    timer_handle: Mutex<Option<ArcHrTimerHandle<Adc>>>,
    buffer: ARef<Buffer<FileioBuffer>>,
    created: Instant<Monotonic>,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Adc {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl Adc {
    fn new(buffer: ARef<Buffer<FileioBuffer>>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            timer <- HrTimer::new(),
            hw <- new_spinlock_irq!(
                HwState {
                    frequency: DEFAULT_FREQUENCY,
                    waveform: Waveform::Ramp,
                    run: None,
                    overruns: 0,
                },
                "Adc::hw"
            ),
            timer_handle <- new_mutex!(None, "Adc::timer_handle"),
            buffer,
            created: Instant::now(),
        })
    }

    fn start_run(self: &Arc<Self>, layout: ScanLayout, timestamp_base: i64) {
        let tick = {
            let mut hw = self.hw.lock();
            let clock = ScanClock::new(hw.frequency, 0);
            hw.run = Some(Run {
                clock,
                started: Instant::now(),
                layout,
                waveform: hw.waveform,
                timestamp_base,
            });
            clock.tick_ns()
        };
        let handle = self.clone().start(Delta::from_nanos(tick as i64));
        *self.timer_handle.lock() = Some(handle);
    }

    fn stop_run(&self) {
        self.hw.lock().run = None;
        // Dropping the handle cancels the timer and waits for a running
        // callback; it also drops the timer's reference to `self`.
        let handle = self.timer_handle.lock().take();
        drop(handle);
    }

    /// The raw code channel `channel` would read now.
    fn sample_now(&self, channel: usize) -> i16 {
        let hw = self.hw.lock();
        let elapsed = self.created.elapsed().as_nanos().max(0) as u64;
        let scan = ScanClock::new(hw.frequency, 0).ticks_at(elapsed);
        hw.waveform.sample(scan, channel)
    }
}

impl HrTimerCallback for Adc {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        let mut hw = this.hw.lock();
        let Some(run) = hw.run.as_mut() else {
            return HrTimerRestart::NoRestart;
        };
        let now = run.started.elapsed().as_nanos().max(0) as u64;
        let (first, count) = run.clock.take_due(now);
        let clock = run.clock;
        let (layout, waveform, base) = (run.layout, run.waveform, run.timestamp_base);
        let tick = clock.tick_ns();
        let timestamp_of = |scan| base + clock.offset_of(scan) as i64;
        let (completed, dropped) = this.buffer.data().queue.lock().produce(
            first,
            count,
            layout.scan_bytes,
            |out, first| fill_scans(out, &layout, waveform, first, timestamp_of),
        );
        hw.overruns += dropped;
        drop(hw);
        if completed > 0 {
            this.buffer.wake();
        }
        ctx.forward_now(Delta::from_nanos(tick as i64));
        HrTimerRestart::Restart
    }
}

/// The IIO driver of one virtual ADC.
pub(crate) struct AdcDriver {
    adc: Arc<Adc>,
}

impl Drop for AdcDriver {
    fn drop(&mut self) {
        // Normally already stopped by the core disabling the buffer.
        self.adc.stop_run();
    }
}

impl Driver for AdcDriver {
    fn read_raw(&self, _dev: &Device, chan: Channel, info: ChanInfo) -> Result<Value> {
        match info {
            ChanInfo::Raw => {
                let channel = usize::try_from(chan.number).map_err(|_| EINVAL)?;
                Ok(Value::Int(self.adc.sample_now(channel).into()))
            }
            // Full scale +-10 V over 16 bits: 20000 mV / 2^16.
            ChanInfo::Scale => Ok(Value::FractionalLog2(10000, 15)),
            ChanInfo::SampFreq => Ok(Value::Int(self.adc.hw.lock().frequency as i32)),
        }
    }

    fn write_raw(
        &self,
        dev: &Device,
        _chan: Channel,
        info: ChanInfo,
        val: i32,
        val2: i32,
    ) -> Result {
        if info != ChanInfo::SampFreq || val2 != 0 {
            return Err(EINVAL);
        }
        let frequency = pacing::valid_frequency(val.into()).ok_or(EINVAL)?;
        let _direct = dev.claim_direct()?;
        self.adc.hw.lock().frequency = frequency;
        Ok(())
    }

    fn read_avail(&self, _chan: Channel, info: ChanInfo) -> Result<Available> {
        match info {
            ChanInfo::SampFreq => Ok(Available::IntRange(&FREQUENCY_RANGE)),
            _ => Err(EINVAL),
        }
    }

    fn read_ext(
        &self,
        _dev: &Device,
        id: usize,
        _chan: Channel,
        out: &mut Formatter<'_>,
    ) -> Result {
        let written = match id {
            ATTR_WAVEFORM => writeln!(out, "{}", self.adc.hw.lock().waveform.name()),
            ATTR_WAVEFORM_AVAILABLE => {
                for (i, w) in Waveform::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(out, "{sep}{}", w.name()).map_err(|_| EINVAL)?;
                }
                writeln!(out)
            }
            ATTR_OVERRUNS => writeln!(out, "{}", self.adc.hw.lock().overruns),
            _ => return Err(EINVAL),
        };
        written.map_err(|_| EINVAL)
    }

    fn write_ext(&self, dev: &Device, id: usize, _chan: Channel, input: &[u8]) -> Result {
        if id != ATTR_WAVEFORM {
            return Err(EINVAL);
        }
        let waveform = Waveform::parse(input).ok_or(EINVAL)?;
        let _direct = dev.claim_direct()?;
        self.adc.hw.lock().waveform = waveform;
        Ok(())
    }

    fn postenable(&self, dev: &Device) -> Result {
        let buffer = &self.adc.buffer;
        let channel_mask = (buffer.scan_mask() & ((1 << NUM_CHANNELS) - 1)) as u32;
        let layout = ScanLayout::new(channel_mask, buffer.scan_timestamp());
        if layout.scan_bytes != buffer.bytes_per_datum() {
            return Err(EINVAL);
        }
        self.adc.start_run(layout, dev.time_ns());
        Ok(())
    }

    fn predisable(&self, _dev: &Device) -> Result {
        self.adc.stop_run();
        Ok(())
    }
}

/// The configfs type `dmabuf_adc`.
pub(crate) struct AdcType;

impl SwDeviceType for AdcType {
    type Instance = Registration<AdcDriver>;

    fn probe(name: &CStr) -> Result<Self::Instance> {
        let buffer = Buffer::new(FileioBuffer::new(), Direction::In, DEFAULT_LENGTH)?;
        let adc = Arc::pin_init(Adc::new(buffer.clone()), GFP_KERNEL)?;
        let driver = Arc::new(AdcDriver { adc }, GFP_KERNEL)?;
        Registration::new(name, &channels(), driver, &buffer)
    }
}
