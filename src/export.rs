// SPDX-License-Identifier: GPL-2.0

//! The buffer exported to other IIO drivers (issue 10 §3): the Rust side
//! of `include/linux/iio/iio-dmabuf.h`, whose exported C entry points are
//! in `export.c`.
//!
//! Another driver's device gets the same [`BlockBuffer`] as our
//! converters (fileio, the seed char device, the mainline DMABUF API),
//! with a dmaengine memcpy channel and its FIFO when the machine has one
//! (the CPU moves the data otherwise). The driver paces the transfers
//! itself ([`iio_dmabuf_export_transfer`]); its `fill`/`take` callbacks
//! stand for the hardware on the FIFO's side. The scan size is the IIO
//! core's, for any channel layout: the storage bytes of each scan index
//! are read once, as the device registers (an IIO bus notifier), and the
//! size of the channels selected is computed from them and the core's
//! scan mask under the buffer's queue lock, as our converters compute
//! theirs (`BlockBuffer::scan_layout_held`). Nothing on that path takes
//! a sleeping lock of the IIO core: the mainline ENQUEUE runs in the
//! core's fence signalling section.

use crate::{
    bindings,
    buffer::{seed::DmabufChannel, BlockBuffer, Hardware},
    chardev,
    dma::{
        device::DmaDevice,
        engine::{Channel, FifoChannel},
    },
    engine::{
        queue::{Chunk, Direction},
        span::{ByteSink, ByteSource},
    },
    iio::buffer::{Buffer, QueueHeld},
};
use core::ptr::NonNull;
use kernel::{
    device::Device,
    ffi, new_mutex, new_spinlock,
    prelude::*,
    str::{CStr, CString},
    sync::{aref::ARef, Arc, Mutex, SpinLock},
};

/// Buffer length of a new device, in scans (as the converters').
const DEFAULT_LENGTH: u32 = 4096;
/// Bytes of the DMA FIFO (as the converters').
const DMA_FIFO_BYTES: usize = 1 << 20;
/// Bytes of the CPU's bounce buffer, for DMABUF memory moved without a
/// channel (the callbacks take contiguous memory).
const BOUNCE_BYTES: usize = 64 << 10;

/// Scan indexes a foreign device may have (the bits of the first word of
/// the IIO core's scan mask).
const MASK_BITS: usize = 64;

/// The scan layout of a foreign device's channels, known from its
/// registration.
struct Layout {
    /// Registered and not unregistered yet: the IIO core's scan mask
    /// exists. Changed under the buffer's queue lock, which the readers of
    /// the mask hold.
    live: bool,
    /// Storage bytes of each scan index (0: no channel), or `None` if the
    /// device has more than [`MASK_BITS`] scan indexes.
    bytes: Option<[u16; MASK_BITS]>,
    /// Storage bytes of the timestamp.
    timestamp: u16,
}

impl Layout {
    /// Bytes of a scan of the channels in `mask` (and the timestamp if
    /// `timestamp`), laid out as `iio_compute_scan_bytes()` does: each
    /// element aligned to its size, the scan to its largest element's.
    fn scan_bytes(&self, mask: u64, timestamp: bool) -> Result<usize> {
        let bytes = self.bytes.as_ref().ok_or(EINVAL)?;
        let ts = timestamp.then_some(self.timestamp);
        let mut size = 0usize;
        let mut largest = 0usize;
        let channels = bytes
            .iter()
            .enumerate()
            .filter(|&(i, _)| mask.wrapping_shr(i as u32) & 1 != 0)
            .map(|(_, &b)| b);
        let selected = Iterator::chain(channels, ts);
        for b in selected {
            // At most 64 + 1 elements of at most 255 * 31 bytes each: no
            // overflow.
            let length = usize::from(b);
            if length == 0 {
                return Err(EINVAL);
            }
            size = align(size, length).wrapping_add(length);
            largest = largest.max(length);
        }
        Ok(if largest == 0 {
            0
        } else {
            align(size, largest)
        })
    }
}

/// The kernel's `ALIGN(x, a)` (a power of two there; any `a` here gives
/// the same result as the core's for the same arguments).
fn align(x: usize, a: usize) -> usize {
    let mask = a.wrapping_sub(1);
    x.wrapping_add(mask) & !mask
}

/// What the transfers use, one at a time.
struct HwSide {
    dma: Option<FifoChannel>,
    bounce: KVVec<u8>,
}

/// Another driver's IIO device, as its buffer knows it.
///
/// # Invariants
///
/// `ops` points to the driver's callbacks, valid until the driver's
/// device releases the export (`dev` is then `None`, and no transfer
/// runs); `dev`, while `Some`, is the IIO device the buffer is attached
/// to.
#[pin_data]
pub(crate) struct Foreign {
    ops: *const bindings::iio_dmabuf_hw_ops,
    /// The IIO device, until the export is released.
    #[pin]
    dev: Mutex<Option<NonNull<bindings::iio_dev>>>,
    #[pin]
    hw: Mutex<HwSide>,
    /// The scan layout; a leaf lock (taken in the mainline ENQUEUE, inside
    /// the IIO core's fence signalling section).
    #[pin]
    layout: SpinLock<Layout>,
}

// SAFETY: The raw pointers are used under the mutexes, from any thread,
// as the C API allows.
unsafe impl Send for Foreign {}
// SAFETY: As above.
unsafe impl Sync for Foreign {}

impl Foreign {
    /// Bytes of a scan with the channels selected now, as the IIO core
    /// lays them out; `ENODEV` unless the device is registered. Reads the
    /// core's scan mask, under the queue lock `queue` holds.
    pub(crate) fn scan_bytes_held(&self, queue: &QueueHeld<'_, BlockBuffer>) -> Result<usize> {
        let layout = self.layout.lock();
        if !layout.live {
            return Err(ENODEV);
        }
        layout.scan_bytes(queue.scan_mask()?, queue.buffer().scan_timestamp())
    }

    /// Whether the device is being unregistered (the IIO core's
    /// callbacks only: `disable`, which the core calls after it deleted
    /// the device).
    pub(crate) fn removing(&self) -> bool {
        !self.layout.lock().live
    }

    /// The driver's hardware produced or wants `n` scans from `first`.
    fn transfer(
        &self,
        buf: &Buffer<BlockBuffer>,
        indio_dev: *mut bindings::iio_dev,
        first: u64,
        n: usize,
    ) -> Result<u64> {
        let scan_bytes = buf.bytes_per_datum();
        let mut hw = self.hw.lock();
        if self.dev.lock().is_none() {
            return Err(ENODEV);
        }
        let HwSide { dma, bounce } = &mut *hw;
        if scan_bytes > bounce.len() {
            *bounce = KVVec::from_elem(0, scan_bytes, GFP_KERNEL)?;
        }
        // SAFETY: Valid while `dev` is `Some`, checked under `hw`, which
        // the release takes before it clears `dev`.
        let ops = unsafe { &*self.ops };
        let mut side = Side {
            ops,
            indio_dev,
            scan_bytes,
            bounce,
        };
        let (completed, lost) =
            BlockBuffer::transfer(buf, first, n as u64, scan_bytes, &mut side, dma.as_mut());
        drop(hw);
        if completed > 0 {
            buf.wake();
        }
        Ok(lost)
    }
}

/// The driver's callbacks, as the buffer's hardware.
struct Side<'a> {
    ops: &'a bindings::iio_dmabuf_hw_ops,
    indio_dev: *mut bindings::iio_dev,
    scan_bytes: usize,
    /// At least one scan.
    bounce: &'a mut KVVec<u8>,
}

impl Hardware for Side<'_> {
    fn fill<S: ByteSink + ?Sized>(&mut self, out: &mut S, chunk: Chunk) {
        let Some(fill) = self.ops.fill else {
            return;
        };
        let Some(scans) = out.size().checked_div(self.scan_bytes) else {
            return;
        };
        if let Some(bytes) = out.as_bytes_mut() {
            // SAFETY: `scans` scans fit in `bytes`, which the callback may
            // write during the call.
            unsafe {
                fill(
                    self.indio_dev,
                    bytes.as_mut_ptr().cast(),
                    chunk.first,
                    scans,
                )
            };
            return;
        }
        // DMABUF memory, staged in the bounce buffer (at least one scan).
        let mut staged = Staging::new(self.bounce.as_mut_slice(), self.scan_bytes, scans);
        while let Some((at, k, bytes)) = staged.next() {
            let first = chunk.first.wrapping_add(at as u64);
            // SAFETY: `k` scans fit in `bytes`, which the callback may
            // write during the call.
            unsafe { fill(self.indio_dev, bytes.as_mut_ptr().cast(), first, k) };
            put_bytes(out, at.wrapping_mul(self.scan_bytes), bytes);
        }
    }

    fn check<S: ByteSource + ?Sized>(&mut self, data: &S, chunk: Chunk) {
        let Some(take) = self.ops.take else {
            return;
        };
        let Some(scans) = data.size().checked_div(self.scan_bytes) else {
            return;
        };
        if let Some(bytes) = data.as_bytes() {
            // SAFETY: `scans` scans fit in `bytes`, which the callback may
            // read during the call.
            unsafe { take(self.indio_dev, bytes.as_ptr().cast(), chunk.first, scans) };
            return;
        }
        let mut staged = Staging::new(self.bounce.as_mut_slice(), self.scan_bytes, scans);
        while let Some((at, k, bytes)) = staged.next() {
            get_bytes(data, at.wrapping_mul(self.scan_bytes), bytes);
            let first = chunk.first.wrapping_add(at as u64);
            // SAFETY: `k` scans fit in `bytes`, which the callback may
            // read during the call.
            unsafe { take(self.indio_dev, bytes.as_ptr().cast(), first, k) };
        }
    }
}

/// `scans` scans in pieces of at most a bounce buffer.
struct Staging<'a> {
    bounce: &'a mut [u8],
    scan_bytes: usize,
    scans: usize,
    /// Scans handed out so far.
    done: usize,
}

impl<'a> Staging<'a> {
    fn new(bounce: &'a mut [u8], scan_bytes: usize, scans: usize) -> Self {
        Self {
            bounce,
            scan_bytes,
            scans,
            done: 0,
        }
    }

    /// The next piece: its first scan (from 0), its number of scans and
    /// their bytes in the bounce buffer; `None` after the last one (or at
    /// once if not one scan fits the bounce buffer).
    fn next(&mut self) -> Option<(usize, usize, &mut [u8])> {
        let per = self.bounce.len().checked_div(self.scan_bytes)?;
        let k = self.scans.checked_sub(self.done)?.min(per);
        if k == 0 {
            return None;
        }
        let at = self.done;
        self.done = at.checked_add(k)?;
        let bytes = self.bounce.get_mut(..k.checked_mul(self.scan_bytes)?)?;
        Some((at, k, bytes))
    }
}

/// Stores `src` at byte `at` of `out` (in bounds: whole scans that fit).
fn put_bytes<S: ByteSink + ?Sized>(out: &mut S, at: usize, src: &[u8]) {
    let mut words = src.chunks_exact(8);
    let count = words.len();
    let tail = words.remainder();
    out.put_scans::<8>(at, count, 8, || {
        words
            .next()
            .and_then(|c| c.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    });
    let tail_at = at.wrapping_add(count.wrapping_mul(8));
    for (i, &b) in tail.iter().enumerate() {
        out.put::<1>(tail_at.wrapping_add(i), [b]);
    }
}

/// Loads `dst.len()` bytes at byte `at` of `data` (in bounds, as above).
fn get_bytes<S: ByteSource + ?Sized>(data: &S, at: usize, dst: &mut [u8]) {
    let mut words = dst.chunks_exact_mut(8);
    let mut pos = at;
    for word in &mut words {
        word.copy_from_slice(&data.get::<8>(pos));
        pos = pos.wrapping_add(8);
    }
    for byte in words.into_remainder() {
        *byte = data.get::<1>(pos)[0];
        pos = pos.wrapping_add(1);
    }
}

/// One export, owned by the driver's device (devm), released by
/// [`iio_dmabuf_export_release`].
struct Export {
    // Fields drop in order: the char device node goes first.
    _chardev: Pin<KBox<chardev::Registration<DmabufChannel>>>,
    buffer: ARef<Buffer<BlockBuffer>>,
    foreign: Arc<Foreign>,
    /// The IIO bus notifier of [`iio_dmabuf_export_registered`].
    watch: Option<Watch>,
}

impl Drop for Export {
    fn drop(&mut self) {
        drop(self.watch.take());
        // The scan mask is not read any more (a device whose registration
        // failed freed it without a notification).
        {
            let _queue = self.buffer.lock_queue();
            self.foreign.layout.lock().live = false;
        }
        // DMABUF users get ENODEV and every queued fence signals.
        BlockBuffer::kill(&self.buffer);
        // Waits for a transfer in progress; none starts after this.
        let mut hw = self.foreign.hw.lock();
        *self.foreign.dev.lock() = None;
        if let Some(mut dma) = hw.dma.take() {
            dma.terminate();
        }
    }
}

fn setup(
    dev: &Device,
    indio_dev: NonNull<bindings::iio_dev>,
    channel: Option<&CStr>,
    output: bool,
    ops: *const bindings::iio_dmabuf_hw_ops,
) -> Result<KBox<Export>> {
    let direction = if output {
        Direction::Out
    } else {
        Direction::In
    };
    let shared = DmaDevice::shared()?;
    // As the converters: any free memcpy channel, else the CPU; a channel
    // the driver names must be there.
    let fifo = match channel {
        None => match FifoChannel::new(DMA_FIFO_BYTES) {
            Ok(fifo) => Some(fifo),
            Err(e) if e == ENODEV || e == ENOMEM => None,
            Err(e) => return Err(e),
        },
        Some(name) => Some(FifoChannel::with_channel(
            Channel::request_named(dev, name)?,
            DMA_FIFO_BYTES,
        )?),
    };
    let buffer_dev: ARef<Device> = match &fifo {
        Some(f) => f.channel().device().into(),
        None => shared,
    };
    let has_channel = fifo.is_some();
    let bounce = KVVec::from_elem(0, BOUNCE_BYTES, GFP_KERNEL)?;
    let foreign = Arc::pin_init(
        try_pin_init!(Foreign {
            ops,
            dev <- new_mutex!(Some(indio_dev), "export::Foreign::dev"),
            hw <- new_mutex!(
                HwSide {
                    dma: fifo,
                    bounce,
                },
                "export::Foreign::hw"
            ),
            layout <- new_spinlock!(
                Layout {
                    live: false,
                    bytes: None,
                    timestamp: 0,
                },
                "export::Foreign::layout"
            ),
        }),
        GFP_KERNEL,
    )?;
    let buffer = Buffer::new(
        BlockBuffer::new_foreign(buffer_dev, direction, has_channel, foreign.clone())?,
        direction,
        DEFAULT_LENGTH,
    )?;
    // The buffer is attached to the device last, by `export.c`, once
    // nothing can fail: the core cannot detach a buffer again.
    // SAFETY: A live device and its buffer, both alive until the export
    // is released, which stops the watch first.
    let watch = NonNull::new(unsafe {
        bindings::iio_dmabuf_helper_export_watch(indio_dev.as_ptr(), buffer.as_raw())
    })
    .ok_or(ENOMEM)?;
    let watch = Watch(watch);
    // The IIO device is not registered yet: the seed API's node hangs off
    // the driver's device, with the IIO device's name (set at its
    // allocation).
    // SAFETY: The device's name lives as long as the device.
    let name = unsafe {
        CStr::from_char_ptr(bindings::iio_dmabuf_helper_dev_name(
            &raw mut (*indio_dev.as_ptr()).dev,
        ))
    };
    let node = CString::try_from_fmt(fmt!("{name}-dmabuf0"))?;
    let seed = Arc::new(DmabufChannel::new(buffer.clone()), GFP_KERNEL)?;
    let chardev = KBox::pin_init(
        chardev::Registration::new(node, dev, 0o600, seed),
        GFP_KERNEL,
    )?;
    Ok(KBox::new(
        Export {
            _chardev: chardev,
            buffer,
            foreign,
            watch: Some(watch),
        },
        GFP_KERNEL,
    )?)
}

/// The IIO bus notifier of an export, stopped when dropped.
struct Watch(NonNull<ffi::c_void>);

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: From `iio_dmabuf_helper_export_watch`, released once.
        unsafe { bindings::iio_dmabuf_helper_export_unwatch(self.0.as_ptr()) };
    }
}

/// The IIO bus added (`added`) or deleted the device of an export's
/// buffer: its scan layout is read while the device registers, and the
/// scan mask, which the core frees after it deletes the device, is not
/// read from then on.
///
/// # Safety
///
/// `buffer` is the export's buffer and `indio_dev` its device, both alive
/// (the export stops the notifier before it releases them); called from
/// the device's registration (`added`) or unregistration.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_export_registered(
    buffer: *mut bindings::iio_buffer,
    indio_dev: *mut bindings::iio_dev,
    added: bool,
) {
    // SAFETY: Per the function's safety requirement.
    let buf = unsafe { Buffer::<BlockBuffer>::from_raw(buffer) };
    let Some(foreign) = buf.data().foreign() else {
        return;
    };
    let mut bytes = [0u16; MASK_BITS];
    let mut timestamp = 0u16;
    // SAFETY: A device registering: its channels and mask length are set;
    // `bytes` has room for `MASK_BITS` entries.
    let known = added
        && unsafe {
            bindings::iio_dmabuf_helper_export_storage(
                indio_dev,
                bytes.as_mut_ptr(),
                MASK_BITS as u32,
                &mut timestamp,
            )
        } == 0;
    let _queue = buf.lock_queue();
    let mut layout = foreign.layout.lock();
    layout.live = added;
    if added {
        layout.bytes = known.then_some(bytes);
        layout.timestamp = timestamp;
    }
}

/// `devm_iio_dmabuf_buffer_setup` (`export.c` checked the arguments and
/// adds the release action): the export's handle, or an error pointer.
///
/// # Safety
///
/// `dev` and `indio_dev` are live devices, `indio_dev` not registered and
/// without a buffer, freed after the handle is released; `channel` is NULL
/// or a C string; `ops` lives until the handle is released.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_export_setup(
    dev: *mut bindings::device,
    indio_dev: *mut bindings::iio_dev,
    channel: *const ffi::c_char,
    output: bool,
    ops: *const bindings::iio_dmabuf_hw_ops,
) -> *mut ffi::c_void {
    let Some(indio_dev) = NonNull::new(indio_dev) else {
        return EINVAL.to_ptr();
    };
    // SAFETY: Per the function's safety requirement.
    let dev = unsafe { Device::from_raw(dev) };
    // SAFETY: NULL or a C string, per the safety requirement.
    let channel = (!channel.is_null()).then(|| unsafe { CStr::from_char_ptr(channel) });
    match setup(dev, indio_dev, channel, output, ops) {
        Ok(export) => KBox::into_raw(export).cast(),
        Err(e) => e.to_ptr(),
    }
}

/// The buffer of an export, for `export.c` to attach to the device.
///
/// # Safety
///
/// `handle` comes from `iio_dmabuf_export_setup` and is not released.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_export_buffer(
    handle: *mut ffi::c_void,
) -> *mut bindings::iio_buffer {
    // SAFETY: Per the function's safety requirement.
    unsafe { (*handle.cast::<Export>()).buffer.as_raw() }
}

/// The devm release of an export.
///
/// # Safety
///
/// `handle` comes from `iio_dmabuf_export_setup`, released once.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_export_release(handle: *mut ffi::c_void) {
    // SAFETY: Per the function's safety requirement.
    drop(unsafe { KBox::from_raw(handle.cast::<Export>()) });
}

/// `iio_dmabuf_buffer_transfer`.
///
/// # Safety
///
/// `indio_dev` is a live device set up by `iio_dmabuf_export_setup`, whose
/// `buffer` (not NULL: `export.c` checked) is ours.
#[no_mangle]
unsafe extern "C" fn iio_dmabuf_export_transfer(
    indio_dev: *mut bindings::iio_dev,
    first: u64,
    n: usize,
) -> ffi::c_long {
    // SAFETY: Our buffer, which the device holds a reference to.
    let buf = unsafe { Buffer::<BlockBuffer>::from_raw((*indio_dev).buffer) };
    let Some(foreign) = buf.data().foreign() else {
        return EINVAL.to_errno() as ffi::c_long;
    };
    match foreign.transfer(buf, indio_dev, first, n) {
        Ok(lost) => lost.try_into().unwrap_or(ffi::c_long::MAX),
        Err(e) => e.to_errno() as ffi::c_long,
    }
}
