// SPDX-License-Identifier: GPL-2.0

//! The virtual converters: configfs-created IIO devices whose "hardware"
//! is an hrtimer-paced DMA engine. The ADC fills the blocks of its buffer
//! with scans of a waveform at the sampling frequency; the DAC consumes
//! blocks at that rate and checks them against the ramp.
//!
//! Backend, chosen at creation: with a dmaengine memcpy channel (the
//! `backend` attribute names it), DMABUF blocks move through the
//! channel's FIFO; without one (`cpu`), the CPU moves every block's data.
//!
//! Safe Rust only: the C interfaces are behind `crate::iio` and
//! `crate::dma`.

use crate::{
    buffer::{seed::DmabufChannel, BlockBuffer, Hardware},
    chardev,
    dma::{device::DmaDevice, engine::FifoChannel},
    engine::{
        pacing::{self, ScanClock},
        pattern::Repeating,
        queue::{Chunk, Direction},
        scan::{ScanLayout, NUM_CHANNELS, TIMESTAMP_INDEX},
        span::{ByteSink, ByteSource},
        waveform::{fill_scans, RampChecker, Waveform},
    },
    iio::{
        buffer::Buffer,
        channel::{
            Available, ChanInfo, ChanSpec, ChanType, Channel, ExtInfo, ScanType, Shared, Value,
        },
        device::{Device, Driver, Registration},
        sw_device::SwDeviceType,
    },
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

/// Which converter a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Input: fills blocks with a waveform.
    Adc,
    /// Output: consumes blocks and checks them against the ramp.
    Dac,
}

impl Role {
    fn direction(self) -> Direction {
        match self {
            Role::Adc => Direction::In,
            Role::Dac => Direction::Out,
        }
    }
}

// Identifiers of the device-wide extended attributes.
const ATTR_WAVEFORM: usize = 0;
const ATTR_WAVEFORM_AVAILABLE: usize = 1;
const ATTR_OVERRUNS: usize = 2;
const ATTR_SCANS_CONSUMED: usize = 3;
const ATTR_MISMATCHES: usize = 4;
const ATTR_UNDERRUNS: usize = 5;
const ATTR_BACKEND: usize = 6;

/// Bytes of a DMA backend's FIFO (coherent memory of the channel's
/// device).
const DMA_FIFO_BYTES: usize = 1 << 20;

const fn counter(name: &'static CStr, id: usize) -> ExtInfo {
    ExtInfo {
        name,
        shared: Shared::All,
        id,
        writable: false,
    }
}

static DAC_ATTRS: [ExtInfo; 4] = [
    counter(c"scans_consumed", ATTR_SCANS_CONSUMED),
    counter(c"mismatches", ATTR_MISMATCHES),
    counter(c"underruns", ATTR_UNDERRUNS),
    counter(c"backend", ATTR_BACKEND),
];

static ADC_ATTRS: [ExtInfo; 4] = [
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
    counter(c"overruns", ATTR_OVERRUNS),
    counter(c"backend", ATTR_BACKEND),
];

const fn voltage_channel(n: i32, role: Role) -> ChanSpec {
    let spec = ChanSpec::new(ChanType::Voltage);
    let spec = match role {
        Role::Adc => spec,
        Role::Dac => spec.output(),
    };
    spec.indexed(n)
        .scan(ScanType {
            index: n,
            sign: b's',
            realbits: 16,
            storagebits: 16,
        })
        .separate(&[ChanInfo::Raw])
        .shared_by_type(&[ChanInfo::Scale])
}

/// Four voltage channels, then the timestamp (the DAC ignores its bytes:
/// it keeps the scan layout the same as the ADC's, for zero-copy
/// loopback); device-wide attributes hang off channel 0.
fn channels(role: Role) -> [ChanSpec; NUM_CHANNELS + 1] {
    let attrs: &'static [ExtInfo] = match role {
        Role::Adc => &ADC_ATTRS,
        Role::Dac => &DAC_ATTRS,
    };
    [
        voltage_channel(0, role)
            .shared_by_all(&[ChanInfo::SampFreq], &[ChanInfo::SampFreq])
            .ext_info(attrs),
        voltage_channel(1, role),
        voltage_channel(2, role),
        voltage_channel(3, role),
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
    /// ADC: scans dropped for lack of a block, since creation.
    overruns: u64,
    /// DAC: scans that found no data, since the last enable.
    underruns: u64,
    /// DAC: what it consumed, since the last enable.
    checker: RampChecker,
}

impl HwState {
    /// `lost` scans found no block: overruns (ADC) or underruns (DAC, whose
    /// check starts over after the gap).
    fn count_lost(&mut self, role: Role, lost: u64) {
        if lost == 0 {
            return;
        }
        match role {
            Role::Adc => self.overruns += lost,
            Role::Dac => {
                self.checker.resync();
                self.underruns += lost;
            }
        }
    }
}

/// The virtual hardware of one converter.
#[pin_data]
pub(crate) struct Converter {
    role: Role,
    #[pin]
    timer: HrTimer<Converter>,
    #[pin]
    hw: SpinLockIrq<HwState>,
    #[pin]
    timer_handle: Mutex<Option<ArcHrTimerHandle<Converter>>>,
    #[pin]
    work: Work<Converter>,
    /// The DMA backend, if any: used by the work item (which waits for
    /// its transfers) and `stop_run`.
    #[pin]
    dma: Mutex<Option<FifoChannel>>,
    /// What `backend` shows: the channel's name, or `cpu`.
    backend: CString,
    buffer: ARef<Buffer<BlockBuffer>>,
    created: Instant<Monotonic>,
}

/// The ADC's hardware: writes the waveform.
struct Source {
    layout: ScanLayout,
    waveform: Waveform,
    clock: ScanClock,
    /// Device timestamp of scan 0.
    timestamp_base: i64,
}

impl Hardware for Source {
    fn fill<S: ByteSink + ?Sized>(&mut self, out: &mut S, chunk: Chunk) {
        let mut stamps = self.clock.stamps(chunk.first, self.timestamp_base);
        fill_scans(out, &self.layout, self.waveform, chunk.first, &mut stamps);
    }

    fn check<S: ByteSource + ?Sized>(&mut self, _data: &S, _chunk: Chunk) {}

    /// Samples repeat with the waveform; timestamps never do.
    fn repeating(&self) -> Option<Repeating> {
        Repeating::new(self.layout, self.waveform)
    }
}

/// The DAC's hardware: checks what it plays against the ramp.
struct Sink<'a> {
    layout: ScanLayout,
    checker: RampChecker,
    /// Where the counts are published, after each check: before the block
    /// checked completes, so that whoever sees its fence signalled reads
    /// counts that include it.
    hw: &'a SpinLockIrq<HwState>,
}

impl Hardware for Sink<'_> {
    fn fill<S: ByteSink + ?Sized>(&mut self, _out: &mut S, _chunk: Chunk) {}

    fn check<S: ByteSource + ?Sized>(&mut self, data: &S, chunk: Chunk) {
        if chunk.repeat {
            self.checker.resync();
        }
        self.checker.check(data, &self.layout);
        self.hw.lock().checker = self.checker;
    }

    fn interrupted(&mut self) {
        // Scans were not played: the next one is no continuation.
        self.checker.resync();
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Converter {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl Converter {
    fn new(
        role: Role,
        buffer: ARef<Buffer<BlockBuffer>>,
        dma: Option<FifoChannel>,
        backend: CString,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            role,
            timer <- HrTimer::new(),
            hw <- new_spinlock_irq!(
                HwState {
                    frequency: DEFAULT_FREQUENCY,
                    waveform: Waveform::Ramp,
                    run: None,
                    overruns: 0,
                    underruns: 0,
                    checker: RampChecker::default(),
                },
                "Converter::hw"
            ),
            timer_handle <- new_mutex!(None, "Converter::timer_handle"),
            work <- new_work!("Converter::work"),
            dma <- new_mutex!(dma, "Converter::dma"),
            backend,
            buffer,
            created: Instant::now(),
        })
    }

    fn start_run(self: &Arc<Self>, layout: ScanLayout, timestamp_base: i64) {
        let tick = {
            let mut hw = self.hw.lock();
            let clock = ScanClock::new(hw.frequency, 0);
            if self.role == Role::Dac {
                hw.underruns = 0;
                // The outputs hold the code output last (docs), until a
                // scan is played on them.
                hw.checker.restart();
            }
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
        // Nothing is in flight (the work item waits for its transfers);
        // made sure of before the buffer's blocks end with their error.
        if let Some(dma) = Option::as_mut(&mut *self.dma.lock()) {
            dma.terminate();
        }
    }

    /// The raw code of `channel`: what the ADC would convert now, what
    /// the DAC outputs now (the last sample it played, or set directly).
    fn sample_now(&self, channel: usize) -> i16 {
        let hw = self.hw.lock();
        match self.role {
            Role::Adc => {
                let elapsed = self.created.elapsed().as_nanos().max(0) as u64;
                let scan = ScanClock::new(hw.frequency, 0).ticks_at(elapsed);
                hw.waveform.sample(scan, channel)
            }
            Role::Dac => hw.checker.last.get(channel).copied().unwrap_or(0),
        }
    }
}

impl HrTimerCallback for Converter {
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
    impl HasWork<Self> for Converter { self.work }
}

impl WorkItem for Converter {
    type Pointer = Arc<Self>;

    /// Moves the scans due by now into (ADC) or out of (DAC) the buffer's
    /// blocks, at most [`pacing::CHUNK_BYTES`] of them, and goes again
    /// while more are due (see `engine::pacing` for the model). The only
    /// writer of the DAC's checker: the work item never runs concurrently
    /// with itself.
    fn run(this: Arc<Self>) {
        let mut hw = this.hw.lock();
        let Some(run) = hw.run.as_mut() else {
            return;
        };
        let now = run.started.elapsed().as_nanos().max(0) as u64;
        let scan_bytes = run.layout.scan_bytes.max(1);
        let due = run.clock.take_due(
            now,
            (pacing::CHUNK_BYTES / scan_bytes) as u64,
            (pacing::FIFO_BYTES / scan_bytes) as u64,
        );
        let (clock, layout, waveform, base) =
            (run.clock, run.layout, run.waveform, run.timestamp_base);
        // Lost before the scans this run moves: counted before their
        // blocks complete, as the counts below and in `Sink`.
        hw.count_lost(this.role, due.lost);
        let checker = hw.checker;
        // Not held while blocks complete: that drops file references.
        drop(hw);
        let mut dma = this.dma.lock();
        let (completed, stalled) = match this.role {
            Role::Adc => {
                let mut source = Source {
                    layout,
                    waveform,
                    clock,
                    timestamp_base: base,
                };
                BlockBuffer::transfer(
                    &this.buffer,
                    due.first,
                    due.count,
                    layout.scan_bytes,
                    &mut source,
                    Option::as_mut(&mut *dma),
                )
            }
            Role::Dac => {
                let mut sink = Sink {
                    layout,
                    checker,
                    hw: &this.hw,
                };
                BlockBuffer::transfer(
                    &this.buffer,
                    due.first,
                    due.count,
                    layout.scan_bytes,
                    &mut sink,
                    Option::as_mut(&mut *dma),
                )
            }
        };
        drop(dma);
        let mut hw = this.hw.lock();
        // With no block to take them, the scans due meanwhile are lost
        // too: the converter does not wait for blocks.
        let mut lost = stalled;
        if stalled > 0 {
            if let Some(run) = hw.run.as_mut() {
                lost += run.clock.drop_due(now);
            }
        }
        // Queued under the lock: once `stop_run` cleared the run, no run
        // queues itself again, so its flush waits for the last one.
        // A backlog is left: go again after other work had its turn. (If
        // already queued, the reference comes back: dropped after unlock.)
        let _queued = (due.more && stalled == 0 && hw.run.is_some())
            .then(|| workqueue::system_highpri().enqueue(this.clone()));
        hw.count_lost(this.role, lost);
        drop(hw);
        if completed > 0 {
            // Readers (ADC) or writers (DAC) may proceed.
            this.buffer.wake();
        }
    }
}

/// The IIO driver of one virtual converter.
pub(crate) struct ConverterDriver {
    converter: Arc<Converter>,
}

impl Drop for ConverterDriver {
    fn drop(&mut self) {
        // Normally already stopped by the core disabling the buffer.
        self.converter.stop_run();
    }
}

impl Driver for ConverterDriver {
    fn read_raw(&self, _dev: &Device, chan: Channel, info: ChanInfo) -> Result<Value> {
        match info {
            ChanInfo::Raw => {
                let channel = usize::try_from(chan.number).map_err(|_| EINVAL)?;
                Ok(Value::Int(self.converter.sample_now(channel).into()))
            }
            // Full scale +-10 V over 16 bits: 20000 mV / 2^16.
            ChanInfo::Scale => Ok(Value::FractionalLog2(10000, 15)),
            ChanInfo::SampFreq => Ok(Value::Int(self.converter.hw.lock().frequency as i32)),
        }
    }

    fn write_raw(&self, dev: &Device, chan: Channel, info: ChanInfo, val: i32) -> Result {
        match (info, self.converter.role) {
            (ChanInfo::SampFreq, _) => {
                let frequency = pacing::valid_frequency(val.into()).ok_or(EINVAL)?;
                let _direct = dev.claim_direct()?;
                self.converter.hw.lock().frequency = frequency;
                Ok(())
            }
            // Direct mode: the DAC outputs the code until streaming starts.
            (ChanInfo::Raw, Role::Dac) => {
                let code = i16::try_from(val).map_err(|_| EINVAL)?;
                let channel = usize::try_from(chan.number).map_err(|_| EINVAL)?;
                let _direct = dev.claim_direct()?;
                let mut hw = self.converter.hw.lock();
                *hw.checker.last.get_mut(channel).ok_or(EINVAL)? = code;
                Ok(())
            }
            _ => Err(EINVAL),
        }
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
            ATTR_WAVEFORM => writeln!(out, "{}", self.converter.hw.lock().waveform.name()),
            ATTR_WAVEFORM_AVAILABLE => {
                for (i, w) in Waveform::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(out, "{sep}{}", w.name()).map_err(|_| EINVAL)?;
                }
                writeln!(out)
            }
            ATTR_OVERRUNS => writeln!(out, "{}", self.converter.hw.lock().overruns),
            ATTR_SCANS_CONSUMED => writeln!(out, "{}", self.converter.hw.lock().checker.consumed),
            ATTR_MISMATCHES => writeln!(out, "{}", self.converter.hw.lock().checker.mismatches),
            ATTR_UNDERRUNS => writeln!(out, "{}", self.converter.hw.lock().underruns),
            ATTR_BACKEND => writeln!(
                out,
                "{}",
                self.converter.backend.to_str().map_err(|_| EINVAL)?
            ),
            _ => return Err(EINVAL),
        };
        written.map_err(|_| EINVAL)
    }

    fn write_ext(&self, dev: &Device, id: usize, _chan: Channel, input: &[u8]) -> Result {
        if id != ATTR_WAVEFORM || self.converter.role != Role::Adc {
            return Err(EINVAL);
        }
        let waveform = Waveform::parse(input).ok_or(EINVAL)?;
        let _direct = dev.claim_direct()?;
        self.converter.hw.lock().waveform = waveform;
        Ok(())
    }

    fn postenable(&self, dev: &Device) -> Result {
        let buffer = &self.converter.buffer;
        let layout = BlockBuffer::scan_layout(buffer)?;
        if layout.scan_bytes != buffer.bytes_per_datum() {
            return Err(EINVAL);
        }
        self.converter.start_run(layout, dev.time_ns());
        Ok(())
    }

    fn predisable(&self, _dev: &Device) -> Result {
        self.converter.stop_run();
        Ok(())
    }
}

/// One configfs directory: the IIO device and the char device of its
/// buffer.
pub(crate) struct ConverterInstance {
    // Fields drop in order: the char device node goes before the IIO
    // device it hangs off.
    _chardev: Pin<KBox<chardev::Registration<DmabufChannel>>>,
    _iio: Registration<ConverterDriver>,
    buffer: ARef<Buffer<BlockBuffer>>,
}

impl Drop for ConverterInstance {
    fn drop(&mut self) {
        // Before anything is torn down: DMABUF users get ENODEV and every
        // queued fence signals.
        BlockBuffer::kill(&self.buffer);
    }
}

impl ConverterInstance {
    fn new(role: Role, name: &CStr) -> Result<Self> {
        let dma_dev = DmaDevice::shared()?;
        // A memcpy channel if the machine has a free one (`ENODEV`: none,
        // or no dmaengine) and room for its FIFO (`ENOMEM`: the channel
        // goes back): the DMA backend; else the CPU's.
        let fifo = match FifoChannel::new(DMA_FIFO_BYTES) {
            Ok(fifo) => Some(fifo),
            Err(e) if e == ENODEV || e == ENOMEM => None,
            Err(e) => return Err(e),
        };
        let backend = match &fifo {
            Some(f) => CString::try_from_fmt(fmt!("{}", f.channel().name()))?,
            None => CString::try_from_fmt(fmt!("cpu"))?,
        };
        // The core maps mainline attachments for the channel's device.
        let buffer_dev: ARef<kernel::device::Device> = match &fifo {
            Some(f) => f.channel().device().into(),
            None => dma_dev.clone(),
        };
        let buffer = Buffer::new(
            BlockBuffer::new(buffer_dev, role.direction(), fifo.is_some())?,
            role.direction(),
            DEFAULT_LENGTH,
        )?;
        let converter = Arc::pin_init(
            Converter::new(role, buffer.clone(), fifo, backend),
            GFP_KERNEL,
        )?;
        let driver = Arc::new(ConverterDriver { converter }, GFP_KERNEL)?;
        let iio = Registration::new(name, Some(&dma_dev), &channels(role), driver, &buffer)?;
        let node = CString::try_from_fmt(fmt!("{}-dmabuf0", iio.dev_name()))?;
        let channel = Arc::new(DmabufChannel::new(buffer.clone()), GFP_KERNEL)?;
        // `_chardev` drops first: the node goes before its parent.
        let chardev = KBox::pin_init(
            chardev::Registration::new(node, iio.device(), 0o600, channel),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _chardev: chardev,
            _iio: iio,
            buffer,
        })
    }
}

/// The configfs type `dmabuf_adc`.
pub(crate) struct AdcType;

impl SwDeviceType for AdcType {
    type Instance = ConverterInstance;

    fn probe(name: &CStr) -> Result<Self::Instance> {
        ConverterInstance::new(Role::Adc, name)
    }
}

/// The configfs type `dmabuf_dac`.
pub(crate) struct DacType;

impl SwDeviceType for DacType {
    type Instance = ConverterInstance;

    fn probe(name: &CStr) -> Result<Self::Instance> {
        ConverterInstance::new(Role::Dac, name)
    }
}
