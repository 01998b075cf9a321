// SPDX-License-Identifier: GPL-2.0

//! dmaengine: a memcpy channel of a DMA controller, and a device-side FIFO
//! (coherent memory) the converters move scans through.
//!
//! Shaped as `rust/kernel` would have it (7.3 has no dmaengine
//! abstraction): a [`Channel`] is owned and released on drop; descriptors
//! are prepared and submitted with [`Channel::memcpy`], started with
//! [`Channel::issue_pending`], and waited for together with
//! [`Channel::wait`], whose descriptor callbacks only record their result
//! and complete a kernel completion (they run in tasklet or IRQ context).
//! The C side is in `helpers.c` (`iio_dmabuf_helper_dma_*`): the
//! dmaengine client API is made of static inline functions and macros.

use crate::{bindings, engine::pattern::Pattern};
use core::ptr::NonNull;
use kernel::{
    device::Device,
    error::{from_err_ptr, to_result},
    ffi,
    prelude::*,
    str::CStr,
    sync::aref::ARef,
    time::Delta,
};

/// Descriptors a transfer has in flight at most.
const MAX_IN_FLIGHT: usize = 16;

/// A bus address for a device (`dma_addr_t`).
pub(crate) type DmaAddress = bindings::dma_addr_t;

/// A dmaengine channel with the memcpy capability, requested for this
/// module's exclusive use.
///
/// # Invariants
///
/// `chan` is a `struct dma_chan` this value requested and releases on
/// drop; `batch` is a batch made by `iio_dmabuf_helper_dma_batch_alloc`,
/// owned by this value, whose descriptors were all submitted on `chan`.
pub(crate) struct Channel {
    chan: NonNull<ffi::c_void>,
    batch: NonNull<ffi::c_void>,
    /// Descriptors submitted since the last [`Channel::wait`].
    submitted: usize,
}

// SAFETY: A channel may be used from any thread (the dmaengine API takes
// its own locks); `&mut self` serialises submit and wait.
unsafe impl Send for Channel {}
// SAFETY: Shared references only read the channel's name and device.
unsafe impl Sync for Channel {}

impl Channel {
    /// Requests any free channel that can do memcpy (`ENODEV` if there is
    /// none, or no dmaengine in the kernel).
    pub(crate) fn request_memcpy() -> Result<Self> {
        // SAFETY: No requirement: a channel or an error pointer.
        Self::request(|| unsafe { bindings::iio_dmabuf_helper_dma_request_memcpy() })
    }

    /// Requests the channel `name` of `dev` (`dma_request_chan`), which
    /// must do memcpy, be able to be terminated and copy at any alignment
    /// (`EINVAL` otherwise).
    pub(crate) fn request_named(dev: &Device, name: &CStr) -> Result<Self> {
        let dev = crate::dma::device::raw_device(dev);
        // SAFETY: A live device and a C string: a channel or an error
        // pointer.
        Self::request(|| unsafe {
            bindings::iio_dmabuf_helper_dma_request_named(dev, name.as_char_ptr())
        })
    }

    fn request(request: impl FnOnce() -> *mut ffi::c_void) -> Result<Self> {
        // SAFETY: No requirement: a batch or NULL.
        let batch =
            NonNull::new(unsafe { bindings::iio_dmabuf_helper_dma_batch_alloc() }).ok_or(ENOMEM)?;
        let chan = from_err_ptr(request()).and_then(|chan| NonNull::new(chan).ok_or(ENODEV));
        let chan = match chan {
            Ok(chan) => chan,
            Err(e) => {
                // SAFETY: Allocated above, never used.
                unsafe { bindings::iio_dmabuf_helper_dma_batch_free(batch.as_ptr()) };
                return Err(e);
            }
        };
        // INVARIANT: Requested and allocated above.
        Ok(Self {
            chan,
            batch,
            submitted: 0,
        })
    }

    /// The channel's name, e.g. `dma0chan3` (`/sys/class/dma/<name>`).
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: A live channel (type invariant), whose name lives as
        // long as it is registered, which our request keeps it.
        unsafe {
            CStr::from_char_ptr(bindings::iio_dmabuf_helper_dma_chan_name(
                self.chan.as_ptr(),
            ))
        }
    }

    /// The DMA controller's device: memory the channel moves must be
    /// mapped for it.
    pub(crate) fn device(&self) -> &Device {
        // SAFETY: A live channel; its controller's device outlives it.
        unsafe {
            Device::from_raw(bindings::iio_dmabuf_helper_dma_chan_device(
                self.chan.as_ptr(),
            ))
        }
    }

    /// Prepares and submits one memcpy descriptor (interrupt and callback
    /// on completion); it starts at the next [`Channel::issue_pending`].
    ///
    /// # Safety
    ///
    /// `src` and `dst` must be bus addresses, for [`Channel::device`], of
    /// `len` bytes each that the device may read (`src`) and write (`dst`)
    /// until [`Channel::wait`] or [`Channel::terminate_sync`] returned, and
    /// that nothing else writes meanwhile.
    pub(crate) unsafe fn memcpy(&mut self, dst: DmaAddress, src: DmaAddress, len: usize) -> Result {
        // SAFETY: A live channel and its batch (type invariant); the
        // addresses per the function's requirements.
        to_result(unsafe {
            bindings::iio_dmabuf_helper_dma_memcpy(
                self.chan.as_ptr(),
                dst,
                src,
                len,
                self.batch.as_ptr(),
            )
        })?;
        self.submitted += 1;
        Ok(())
    }

    /// Starts the descriptors submitted.
    pub(crate) fn issue_pending(&self) {
        // SAFETY: A live channel.
        unsafe { bindings::iio_dmabuf_helper_dma_issue_pending(self.chan.as_ptr()) };
    }

    /// Waits for every descriptor submitted since the last wait, at most
    /// `timeout`. An error a callback reported (`EIO`) or a timeout
    /// (`ETIMEDOUT`) terminates the channel first: when this returns, the
    /// channel touches no memory any more either way.
    pub(crate) fn wait(&mut self, timeout: Delta) -> Result {
        if self.submitted == 0 {
            return Ok(());
        }
        let ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX);
        // SAFETY: A live channel and its batch.
        let ret = to_result(unsafe {
            bindings::iio_dmabuf_helper_dma_batch_wait(self.chan.as_ptr(), self.batch.as_ptr(), ms)
        });
        if ret.is_err() {
            // Descriptors may still be queued or running.
            self.terminate_sync();
        } else {
            self.submitted = 0;
            // SAFETY: Every callback of the batch ran: none runs again.
            unsafe { bindings::iio_dmabuf_helper_dma_batch_reset(self.batch.as_ptr()) };
        }
        ret
    }

    /// Aborts every descriptor, waits for callbacks that are running, and
    /// starts a new batch.
    pub(crate) fn terminate_sync(&mut self) {
        // SAFETY: A live channel; process context (this may sleep).
        let ret = unsafe { bindings::iio_dmabuf_helper_dma_terminate_sync(self.chan.as_ptr()) };
        if ret != 0 {
            pr_warn!("iio_dmabuf: {}: terminate failed ({ret})\n", self.name());
        }
        self.submitted = 0;
        // SAFETY: Terminated: no callback of the batch runs any more.
        unsafe { bindings::iio_dmabuf_helper_dma_batch_reset(self.batch.as_ptr()) };
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Nothing may call back into the batch once it is freed.
        self.terminate_sync();
        // SAFETY: Owned (type invariant); terminated above.
        unsafe {
            bindings::iio_dmabuf_helper_dma_release_channel(self.chan.as_ptr());
            bindings::iio_dmabuf_helper_dma_batch_free(self.batch.as_ptr());
        }
    }
}

/// Coherent memory of a DMA device: the converter's device-side FIFO,
/// which the CPU fills or checks and the channel copies from or into.
///
/// # Invariants
///
/// `cpu` and `bus` are the two addresses of a `len`-byte coherent
/// allocation for `dev`, owned by this value. The device accesses it only
/// during [`FifoChannel`]'s transfers, which borrow the FIFO and wait
/// for the channel (or terminate it) before they return.
struct Fifo {
    dev: ARef<Device>,
    cpu: NonNull<u8>,
    bus: DmaAddress,
    len: usize,
}

// SAFETY: Coherent memory is not tied to a thread; `&mut` serialises the
// CPU's use of it.
unsafe impl Send for Fifo {}
// SAFETY: Shared references only read the addresses.
unsafe impl Sync for Fifo {}

impl Fifo {
    fn new(dev: &Device, len: usize) -> Result<Self> {
        let mut bus: DmaAddress = 0;
        // SAFETY: A live device; `bus` is written on success.
        let cpu = unsafe {
            bindings::iio_dmabuf_helper_dma_alloc_coherent(
                crate::dma::device::raw_device(dev),
                len,
                &mut bus,
            )
        };
        let cpu = NonNull::new(cpu.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: Allocated above.
        Ok(Self {
            dev: dev.into(),
            cpu,
            bus,
            len,
        })
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // SAFETY: Allocated by `new` for `dev` (type invariant); no
        // transfer runs (they are waited for).
        unsafe {
            bindings::iio_dmabuf_helper_dma_free_coherent(
                crate::dma::device::raw_device(&self.dev),
                self.len,
                self.cpu.as_ptr().cast(),
                self.bus,
            )
        };
    }
}

/// One piece of a transfer: `len` bytes at bus address `addr`.
#[derive(Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) addr: DmaAddress,
    pub(crate) len: usize,
}

/// Memory a channel can copy into or out of: segments mapped for the
/// channel's device.
///
/// # Safety
///
/// Implementers guarantee that `segments(dev, offset, len, ..)`, when it
/// returns `Ok`, gave bus addresses for `dev`, mapped with
/// [`DmaTarget::direction`], covering exactly bytes `offset..offset +
/// len` of memory the DMA may access (read, and write for input) while
/// the implementer is borrowed mutably.
pub(crate) unsafe trait DmaTarget {
    /// Calls `each` with the segments of bytes `offset..offset + len`, in
    /// order (`EINVAL` if not mapped for `dev` or out of bounds).
    fn segments(
        &mut self,
        dev: &Device,
        offset: usize,
        len: usize,
        each: &mut dyn FnMut(Segment) -> Result,
    ) -> Result;

    /// The direction the memory is mapped with.
    fn direction(&self) -> bindings::dma_data_direction;

    /// Makes bytes `offset..offset + len` ready for `dev`, before a
    /// transfer of them.
    fn sync_for_device(&mut self, dev: &Device, offset: usize, len: usize) -> Result {
        sync_segments(self, dev, offset, len, false)
    }

    /// Makes what `dev` wrote in bytes `offset..offset + len` visible to
    /// the CPU, after a transfer of them.
    fn sync_for_cpu(&mut self, dev: &Device, offset: usize, len: usize) -> Result {
        sync_segments(self, dev, offset, len, true)
    }
}

/// Synchronises the segments of bytes `offset..offset + len` of `target`
/// for the CPU or for `dev`: only those a transfer moves. The rest of a
/// mapping may hold what its other users put there, which a wider sync
/// would overwrite (with a bounce buffer: the copy made at mapping time).
pub(crate) fn sync_segments<T: DmaTarget + ?Sized>(
    target: &mut T,
    dev: &Device,
    offset: usize,
    len: usize,
    for_cpu: bool,
) -> Result {
    let dir = target.direction();
    let raw = crate::dma::device::raw_device(dev);
    target.segments(dev, offset, len, &mut |seg: Segment| {
        // SAFETY: `seg` is mapped for `dev` with `dir` (`DmaTarget`), and
        // inside that mapping.
        unsafe {
            if for_cpu {
                bindings::iio_dmabuf_helper_dma_sync_single_for_cpu(raw, seg.addr, seg.len, dir);
            } else {
                bindings::iio_dmabuf_helper_dma_sync_single_for_device(raw, seg.addr, seg.len, dir);
            }
        }
        Ok(())
    })
}

/// A channel with its FIFO: the converters' DMA hardware.
pub(crate) struct FifoChannel {
    // Fields drop in order: the FIFO goes before the channel that holds
    // its device.
    fifo: Fifo,
    channel: Channel,
    /// The repeating input's scans the start of the FIFO holds, written
    /// once (see [`FifoChannel::pattern`]).
    pattern: Option<Pattern>,
}

impl FifoChannel {
    /// Requests a memcpy channel and allocates a FIFO of `len` bytes for
    /// its device.
    pub(crate) fn new(len: usize) -> Result<Self> {
        Self::with_channel(Channel::request_memcpy()?, len)
    }

    /// A FIFO of `len` bytes for `channel`'s device.
    pub(crate) fn with_channel(channel: Channel, len: usize) -> Result<Self> {
        let fifo = Fifo::new(channel.device(), len)?;
        Ok(Self {
            fifo,
            channel,
            pattern: None,
        })
    }

    /// The channel.
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Bytes of the FIFO.
    pub(crate) fn capacity(&self) -> usize {
        self.fifo.len
    }

    /// The FIFO's first `len` bytes, for the CPU (`len` is clamped to the
    /// capacity). What it writes replaces a pattern.
    pub(crate) fn fifo(&mut self, len: usize) -> &mut [u8] {
        self.pattern = None;
        let len = len.min(self.fifo.len);
        // SAFETY: The allocation holds `len` bytes (type invariant of
        // `Fifo`), and no transfer runs while `self` is borrowed mutably
        // here: transfers wait for the channel before they return.
        unsafe { core::slice::from_raw_parts_mut(self.fifo.cpu.as_ptr(), len) }
    }

    /// The pattern the start of the FIFO holds, as [`Self::set_pattern`]
    /// recorded: the channel copies any run of its input's scans from
    /// there, and the CPU writes none of them again. Anything else written
    /// into the FIFO (by the CPU or the channel) replaces it.
    pub(crate) fn pattern(&self) -> Option<Pattern> {
        self.pattern
    }

    /// The CPU wrote `pattern`'s bytes over the start of the FIFO (through
    /// [`Self::fifo`]).
    pub(crate) fn set_pattern(&mut self, pattern: Pattern) {
        self.pattern = (pattern.bytes() <= self.fifo.len).then_some(pattern);
    }

    /// How long a transfer of `len` bytes may take: 1 s, plus 1 s per
    /// 4 MiB (a slow, loaded emulation included).
    fn timeout(len: usize) -> Delta {
        Delta::from_millis(1000 + (len >> 12) as i64)
    }

    /// Copies `len` bytes of the FIFO from `fifo_offset` into bytes
    /// `offset..offset + len` of `target` (`to_target`), or those bytes
    /// into the FIFO there, one descriptor per segment, and waits. `EIO`
    /// on a DMA error, `ETIMEDOUT` on a timeout: the channel was
    /// terminated then.
    pub(crate) fn transfer(
        &mut self,
        target: &mut dyn DmaTarget,
        fifo_offset: usize,
        offset: usize,
        len: usize,
        to_target: bool,
    ) -> Result {
        if fifo_offset
            .checked_add(len)
            .is_none_or(|end| end > self.fifo.len)
        {
            return Err(EINVAL);
        }
        if !to_target {
            // The channel writes over the FIFO.
            self.pattern = None;
        }
        let fifo = self.fifo.bus + fifo_offset as DmaAddress;
        let channel = &mut self.channel;
        let dev: ARef<Device> = channel.device().into();
        target.sync_for_device(&dev, offset, len)?;
        let mut done = 0usize;
        let mut pending = 0usize;
        let submitted = target.segments(&dev, offset, len, &mut |seg: Segment| {
            let here = fifo + done as DmaAddress;
            let (dst, src) = if to_target {
                (seg.addr, here)
            } else {
                (here, seg.addr)
            };
            // A channel has a few descriptors (ZynqMP DMA: 32, and a
            // prep fails without a free one): at most `MAX_IN_FLIGHT`, then
            // the ones in flight are waited for.
            if channel.submitted >= MAX_IN_FLIGHT {
                channel.issue_pending();
                channel.wait(Self::timeout(pending))?;
                pending = 0;
            }
            // SAFETY: `seg` is mapped for the channel's device and is the
            // target's to give while it is borrowed (`DmaTarget`); the
            // FIFO's range is in bounds (`fifo_offset + done + seg.len <=
            // fifo_offset + len <= its size`, segments cover exactly `len`
            // bytes) and is used by
            // nothing else while `self` is borrowed. The wait below (or
            // the terminate) ends the transfer before both borrows do.
            unsafe { channel.memcpy(dst, src, seg.len) }?;
            done += seg.len;
            pending += seg.len;
            Ok(())
        });
        let result = match submitted {
            Ok(()) if done == len => {
                channel.issue_pending();
                channel.wait(Self::timeout(pending))
            }
            Ok(()) => {
                channel.terminate_sync();
                Err(EINVAL)
            }
            Err(e) => {
                // Descriptors submitted before the failure are dropped.
                channel.terminate_sync();
                Err(e)
            }
        };
        let synced = target.sync_for_cpu(&dev, offset, len);
        result.and(synced)
    }

    /// Aborts anything in flight (nothing is, outside
    /// [`FifoChannel::transfer`]).
    pub(crate) fn terminate(&mut self) {
        self.channel.terminate_sync();
    }
}

/// The debugfs attributes of the DMA fault injection
/// (`/sys/kernel/debug/fail_iio_dmabuf_dma_{error,stall}`): descriptors
/// completing with an error, or whose completion is lost. Removed on
/// drop.
pub(crate) struct FaultInjection(());

impl FaultInjection {
    /// Creates the attributes (none in a kernel without
    /// `FAULT_INJECTION_DEBUG_FS`).
    pub(crate) fn register() -> Self {
        // SAFETY: No requirement; once per module (the module holds the
        // only value).
        unsafe { bindings::iio_dmabuf_helper_fault_init() };
        Self(())
    }
}

impl Drop for FaultInjection {
    fn drop(&mut self) {
        // SAFETY: Created by `register`; the module's channels are all
        // released (their converters went first).
        unsafe { bindings::iio_dmabuf_helper_fault_exit() };
    }
}
