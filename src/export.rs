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
//! core's, for any channel layout.

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
    iio::buffer::Buffer,
};
use core::ptr::NonNull;
use kernel::{
    device::Device,
    ffi, new_mutex,
    prelude::*,
    str::{CStr, CString},
    sync::{aref::ARef, Arc, Mutex},
};

/// Buffer length of a new device, in scans (as the converters').
const DEFAULT_LENGTH: u32 = 4096;
/// Bytes of the DMA FIFO (as the converters').
const DMA_FIFO_BYTES: usize = 1 << 20;
/// Bytes of the CPU's bounce buffer, for DMABUF memory moved without a
/// channel (the callbacks take contiguous memory).
const BOUNCE_BYTES: usize = 64 << 10;

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
    /// The IIO device, for the IIO core's callbacks only (which run while
    /// it lives).
    raw_dev: NonNull<bindings::iio_dev>,
    /// The IIO device, until the export is released.
    #[pin]
    dev: Mutex<Option<NonNull<bindings::iio_dev>>>,
    #[pin]
    hw: Mutex<HwSide>,
}

// SAFETY: The raw pointers are used under the mutexes, from any thread,
// as the C API allows.
unsafe impl Send for Foreign {}
// SAFETY: As above.
unsafe impl Sync for Foreign {}

impl Foreign {
    /// Bytes of a scan with the channels selected now, as the IIO core
    /// lays them out; `ENODEV` once the device is gone.
    pub(crate) fn scan_bytes(&self, buf: &Buffer<BlockBuffer>) -> Result<usize> {
        let dev = self.dev.lock();
        let indio_dev = dev.ok_or(ENODEV)?;
        // SAFETY: The device is alive while `dev` is `Some` (type
        // invariant), and the buffer attached to it.
        let bytes = unsafe {
            bindings::iio_dmabuf_helper_export_scan_bytes(indio_dev.as_ptr(), buf.as_raw())
        };
        if bytes < 0 {
            return Err(Error::from_errno(bytes as i32));
        }
        Ok(bytes as usize)
    }

    /// Whether the device is being unregistered (the IIO core's
    /// callbacks only: `disable`, which the core calls while the device is
    /// alive).
    pub(crate) fn removing(&self) -> bool {
        // SAFETY: Alive during the core's callbacks.
        unsafe { bindings::iio_dmabuf_helper_export_removing(self.raw_dev.as_ptr()) }
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
        let scans = out.size() / self.scan_bytes;
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
        let per = self.bounce.len() / self.scan_bytes;
        let mut done = 0;
        while done < scans {
            let k = (scans - done).min(per);
            let staged = &mut self.bounce[..k * self.scan_bytes];
            // SAFETY: As above, in the bounce buffer.
            unsafe {
                fill(
                    self.indio_dev,
                    staged.as_mut_ptr().cast(),
                    chunk.first + done as u64,
                    k,
                )
            };
            put_bytes(out, done * self.scan_bytes, staged);
            done += k;
        }
    }

    fn check<S: ByteSource + ?Sized>(&mut self, data: &S, chunk: Chunk) {
        let Some(take) = self.ops.take else {
            return;
        };
        let scans = data.size() / self.scan_bytes;
        if let Some(bytes) = data.as_bytes() {
            // SAFETY: `scans` scans fit in `bytes`, which the callback may
            // read during the call.
            unsafe { take(self.indio_dev, bytes.as_ptr().cast(), chunk.first, scans) };
            return;
        }
        let per = self.bounce.len() / self.scan_bytes;
        let mut done = 0;
        while done < scans {
            let k = (scans - done).min(per);
            let staged = &mut self.bounce[..k * self.scan_bytes];
            get_bytes(data, done * self.scan_bytes, staged);
            // SAFETY: As above, in the bounce buffer.
            unsafe {
                take(
                    self.indio_dev,
                    staged.as_ptr().cast(),
                    chunk.first + done as u64,
                    k,
                )
            };
            done += k;
        }
    }
}

/// Stores `src` at byte `at` of `out` (in bounds: whole scans that fit).
fn put_bytes<S: ByteSink + ?Sized>(out: &mut S, at: usize, src: &[u8]) {
    let words = src.len() / 8;
    let mut chunks = src.chunks_exact(8);
    out.put_scans::<8>(at, words, 8, || {
        chunks
            .next()
            .and_then(|c| c.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    });
    for (i, &b) in src[words * 8..].iter().enumerate() {
        out.put::<1>(at + words * 8 + i, [b]);
    }
}

/// Loads `dst.len()` bytes at byte `at` of `data` (in bounds, as above).
fn get_bytes<S: ByteSource + ?Sized>(data: &S, at: usize, dst: &mut [u8]) {
    let words = dst.len() / 8;
    for (i, word) in dst.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&data.get::<8>(at + i * 8));
    }
    for (i, byte) in dst.iter_mut().enumerate().skip(words * 8) {
        *byte = data.get::<1>(at + i)[0];
    }
}

/// One export, owned by the driver's device (devm), released by
/// [`iio_dmabuf_export_release`].
struct Export {
    // Fields drop in order: the char device node goes first.
    _chardev: Pin<KBox<chardev::Registration<DmabufChannel>>>,
    buffer: ARef<Buffer<BlockBuffer>>,
    foreign: Arc<Foreign>,
}

impl Drop for Export {
    fn drop(&mut self) {
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
            raw_dev: indio_dev,
            dev <- new_mutex!(Some(indio_dev), "export::Foreign::dev"),
            hw <- new_mutex!(
                HwSide {
                    dma: fifo,
                    bounce,
                },
                "export::Foreign::hw"
            ),
        }),
        GFP_KERNEL,
    )?;
    let buffer = Buffer::new(
        BlockBuffer::new_foreign(buffer_dev, direction, has_channel, foreign.clone())?,
        direction,
        DEFAULT_LENGTH,
    )?;
    // SAFETY: A live device not registered yet (the caller's contract);
    // the core takes its own reference to the buffer.
    kernel::error::to_result(unsafe {
        bindings::iio_device_attach_buffer(indio_dev.as_ptr(), buffer.as_raw())
    })?;
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
        },
        GFP_KERNEL,
    )?)
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
