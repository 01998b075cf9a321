// SPDX-License-Identifier: GPL-2.0

//! The virtual ADC: a configfs-created IIO device whose "hardware" is an
//! hrtimer-paced DMA engine filling the blocks of its buffer with scans of
//! a waveform, at the configured sampling frequency.
//!
//! Safe Rust only: the C interfaces are behind `crate::iio`.

use crate::{
    buffer::BlockBuffer,
    chardev,
    dma::device::DmaDevice,
    engine::{
        pacing::{self, ScanClock},
        scan::{ScanLayout, NUM_CHANNELS, TIMESTAMP_INDEX},
        waveform::{fill_scans, Waveform},
    },
    iio::{
        buffer::{Buffer, Direction},
        channel::{
            Available, ChanInfo, ChanSpec, ChanType, Channel, ExtInfo, ScanType, Shared, Value,
        },
        device::{Device, Driver, Registration},
        sw_device::SwDeviceType,
    },
    seed_api::DmabufChannel,
    work,
};
use core::fmt::Write;
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    str::{CStr, CString, Formatter},
    sync::{aref::ARef, new_mutex, new_spinlock_irq, Arc, ArcBorrow, Mutex, SpinLockIrq},
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Instant, Monotonic,
    },
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
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
    #[pin]
    work: Work<Adc>,
    buffer: ARef<Buffer<BlockBuffer>>,
    created: Instant<Monotonic>,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Adc {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl Adc {
    fn new(buffer: ARef<Buffer<BlockBuffer>>) -> impl PinInit<Self, Error> {
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
            work <- new_work!("Adc::work"),
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
        // A queued engine run finds no run and returns.
        work::flush(&self.work);
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

    /// The sample clock's tick: the DMA engine's work runs in process
    /// context (like a threaded interrupt handler), because completing a
    /// DMABUF block drops file references.
    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        let tick = match this.hw.lock().run.as_ref() {
            Some(run) => run.clock.tick_ns(),
            None => return HrTimerRestart::NoRestart,
        };
        // Already queued is fine: that run will take all due scans.
        let _ = workqueue::system_highpri().enqueue(Arc::<Self>::from(this));
        ctx.forward_now(Delta::from_nanos(tick as i64));
        HrTimerRestart::Restart
    }
}

impl_has_work! {
    impl HasWork<Self> for Adc { self.work }
}

impl WorkItem for Adc {
    type Pointer = Arc<Self>;

    /// Moves the scans due by now into the buffer's blocks.
    fn run(this: Arc<Self>) {
        let mut hw = this.hw.lock();
        let Some(run) = hw.run.as_mut() else {
            return;
        };
        let now = run.started.elapsed().as_nanos().max(0) as u64;
        let (first, count) = run.clock.take_due(now);
        let clock = run.clock;
        let (layout, waveform, base) = (run.layout, run.waveform, run.timestamp_base);
        drop(hw);
        let timestamp_of = |scan| base + clock.offset_of(scan) as i64;
        let (completed, dropped) =
            this.buffer
                .data()
                .produce(first, count, layout.scan_bytes, |out, first| {
                    fill_scans(out, &layout, waveform, first, timestamp_of)
                });
        this.hw.lock().overruns += dropped;
        if completed > 0 {
            this.buffer.wake();
        }
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
        let layout = BlockBuffer::scan_layout(buffer)?;
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

/// One `dmabuf_adc` configfs directory: the IIO device and the char
/// device of its buffer.
pub(crate) struct AdcInstance {
    // Fields drop in order: the char device node goes before the IIO
    // device it hangs off.
    _chardev: Pin<KBox<chardev::Registration<DmabufChannel>>>,
    _iio: Registration<AdcDriver>,
    _dma_dev: DmaDevice,
    buffer: ARef<Buffer<BlockBuffer>>,
}

impl Drop for AdcInstance {
    fn drop(&mut self) {
        // Before anything is torn down: DMABUF users get ENODEV and every
        // queued fence signals.
        BlockBuffer::kill(&self.buffer);
    }
}

/// The configfs type `dmabuf_adc`.
pub(crate) struct AdcType;

impl SwDeviceType for AdcType {
    type Instance = AdcInstance;

    fn probe(name: &CStr) -> Result<Self::Instance> {
        let dma_dev = DmaDevice::new(&CString::try_from_fmt(fmt!("dmabuf_adc.{name}"))?)?;
        let buffer = Buffer::new(
            BlockBuffer::new(dma_dev.reference())?,
            Direction::In,
            DEFAULT_LENGTH,
        )?;
        let adc = Arc::pin_init(Adc::new(buffer.clone()), GFP_KERNEL)?;
        let driver = Arc::new(AdcDriver { adc }, GFP_KERNEL)?;
        let iio = Registration::new(name, Some(&dma_dev), &channels(), driver, &buffer)?;
        let node = CString::try_from_fmt(fmt!("{}-dmabuf0", iio.dev_name()))?;
        let channel = Arc::new(DmabufChannel::new(buffer.clone()), GFP_KERNEL)?;
        // SAFETY: The IIO device outlives the char device: `_chardev`
        // drops first.
        let chardev = KBox::pin_init(
            unsafe { chardev::Registration::new(node, iio.device_ptr(), 0o600, channel) },
            GFP_KERNEL,
        )?;
        Ok(AdcInstance {
            _chardev: chardev,
            _iio: iio,
            _dma_dev: dma_dev,
            buffer,
        })
    }
}
