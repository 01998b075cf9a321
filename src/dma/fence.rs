// SPDX-License-Identifier: GPL-2.0

//! DMA fences created by this module.
//!
//! A fence can outlive the module (anyone may hold a reference), so no
//! callback of ours is reachable once it is signalled: the ops have no
//! `release` or `wait`, which makes the core drop its `ops` pointer at
//! signalling and free the fence itself (it is plain kmalloc memory).
//! Unsignalled fences are always owned by a queue of this module, which
//! pins it.

use crate::bindings;
use core::ptr::NonNull;
use kernel::{ffi, prelude::*, types::Opaque};

/// A fence timeline: fences on it signal in creation order.
pub(crate) struct FenceContext {
    id: u64,
}

impl FenceContext {
    /// Allocates a new timeline.
    pub(crate) fn new() -> Self {
        Self {
            // SAFETY: No requirement.
            id: unsafe { bindings::dma_fence_context_alloc(1) },
        }
    }
}

/// A reference to a fence this module created.
///
/// # Invariants
///
/// `ptr` is a live `dma_fence` initialised with [`OPS`], and this value
/// owns one reference to it.
pub(crate) struct Fence {
    ptr: NonNull<bindings::dma_fence>,
}

// SAFETY: dma_fence is refcounted and internally locked.
unsafe impl Send for Fence {}
// SAFETY: As above.
unsafe impl Sync for Fence {}

/// # Safety
///
/// Called by the dma-fence core on an unsignalled fence of ours.
unsafe extern "C" fn driver_name(_fence: *mut bindings::dma_fence) -> *const ffi::c_char {
    c"iio_dmabuf".as_char_ptr()
}

/// # Safety
///
/// Called by the dma-fence core on an unsignalled fence of ours.
unsafe extern "C" fn timeline_name(_fence: *mut bindings::dma_fence) -> *const ffi::c_char {
    c"iio_dmabuf-queue".as_char_ptr()
}

static OPS: bindings::dma_fence_ops = bindings::dma_fence_ops {
    get_driver_name: Some(driver_name),
    get_timeline_name: Some(timeline_name),
    enable_signaling: None,
    signaled: None,
    wait: None,
    release: None,
    set_deadline: None,
};

/// Memory for one fence, allocated ahead so that the fence itself can be
/// made where allocating is not allowed (under the lock that orders its
/// seqno with its queue position).
pub(crate) struct FenceSlot {
    memory: KBox<core::mem::MaybeUninit<Opaque<bindings::dma_fence>>>,
}

impl FenceSlot {
    /// Allocates the memory of a fence.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            memory: KBox::new_uninit(GFP_KERNEL)?,
        })
    }

    /// Makes the fence: unsignalled, number `seqno` on `context`. Does not
    /// allocate or sleep.
    pub(crate) fn init(self, context: &FenceContext, seqno: u64) -> Fence {
        let ptr = KBox::into_raw(self.memory).cast::<bindings::dma_fence>();
        // SAFETY: `ptr` is a fresh kmalloc allocation the size of a fence;
        // a NULL lock makes the fence use its own. The core frees it with
        // kfree once the last reference is gone.
        unsafe {
            ptr.write_bytes(0, 1);
            bindings::dma_fence_init(ptr, &OPS, core::ptr::null_mut(), context.id, seqno);
        }
        // INVARIANT: Initialised above with refcount 1, owned here.
        Fence {
            // SAFETY: `ptr` comes from a successful allocation.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        }
    }
}

impl Fence {
    pub(crate) fn as_raw(&self) -> *mut bindings::dma_fence {
        self.ptr.as_ptr()
    }

    /// Signals the fence, with `error` (a negative errno) if any. Safe in
    /// any context, including hard interrupts. The reference comes back,
    /// to be dropped outside the fence signalling section.
    pub(crate) fn signal(self, error: Option<Error>) -> Signalled<Self> {
        if let Some(e) = error {
            // SAFETY: Valid by the type invariant, not signalled yet (only
            // `signal` signals, and it consumes the owner).
            unsafe { bindings::iio_dmabuf_helper_dma_fence_set_error(self.as_raw(), e.to_errno()) };
        }
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::dma_fence_signal(self.as_raw()) };
        Signalled { _reference: self }
    }
}

/// A reference to a fence that was signalled: only good for dropping,
/// outside the signalling section.
pub(crate) struct Signalled<T> {
    _reference: T,
}

impl<T> Signalled<T> {
    /// Keeps `reference` of a fence just signalled.
    pub(crate) fn new(reference: T) -> Self {
        Self {
            _reference: reference,
        }
    }
}

impl Clone for Fence {
    fn clone(&self) -> Self {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_get(self.as_raw()) };
        // INVARIANT: The new reference is owned by the clone.
        Self { ptr: self.ptr }
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        // SAFETY: This value owns a reference.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_put(self.as_raw()) };
    }
}

/// Marks a fence-signalling critical section for lockdep: nothing in it
/// may allocate or wait for anything that waits on a fence.
pub(crate) struct SignallingSection(bool);

impl SignallingSection {
    pub(crate) fn begin() -> Self {
        // SAFETY: No requirement; paired with `end` in `drop`.
        Self(unsafe { bindings::iio_dmabuf_helper_dma_fence_begin_signalling() })
    }
}

impl Drop for SignallingSection {
    fn drop(&mut self) {
        // SAFETY: The cookie comes from `begin`.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_end_signalling(self.0) };
    }
}

/// Waits, without blocking anyone, for the fences other users of a DMABUF
/// attached to it (implicit synchronisation): a DAC must not read a block
/// before the ADC that fills it is done, nor an ADC overwrite one a DAC
/// still reads.
///
/// # Invariants
///
/// `inner.fence` holds a reference to the awaited fence; while `inner.state`
/// is `PENDING`, `inner.cb` is registered on it.
pub(crate) struct Dependency {
    inner: Pin<KBox<Waiter>>,
}

const PENDING: i32 = i32::MIN;

#[repr(C)]
#[pin_data]
struct Waiter {
    /// First field: the callback finds the `Waiter` from it.
    #[pin]
    cb: Opaque<bindings::dma_fence_cb>,
    fence: NonNull<bindings::dma_fence>,
    /// `PENDING`, then 0 (signalled) or the fence's negative error.
    state: core::sync::atomic::AtomicI32,
}

// SAFETY: The fence is refcounted and internally locked; `state` is atomic.
unsafe impl Send for Dependency {}
// SAFETY: As above.
unsafe impl Sync for Dependency {}

/// # Safety
///
/// Called by the dma-fence core, once, on a `Waiter`'s registered `cb`.
unsafe extern "C" fn dependency_signalled(
    fence: *mut bindings::dma_fence,
    cb: *mut bindings::dma_fence_cb,
) {
    // SAFETY: `cb` is the first field of a `repr(C)` `Waiter`, alive while
    // registered (its drop removes the callback first).
    let waiter = unsafe { &*cb.cast::<Waiter>() };
    // SAFETY: The signalled fence is valid during its callbacks.
    let error = unsafe { (*fence).error };
    waiter
        .state
        .store(error.min(0), core::sync::atomic::Ordering::Release);
}

impl Dependency {
    /// The fences of `usage` (and stronger) of the reservation object
    /// `resv`, if any.
    ///
    /// # Safety
    ///
    /// `resv` must be a live reservation object.
    pub(crate) unsafe fn on_fences(
        resv: *mut bindings::dma_resv,
        usage: bindings::dma_resv_usage,
    ) -> Result<Option<Self>> {
        let mut fence = core::ptr::null_mut();
        // SAFETY: `resv` is live per the requirement; the call takes what it
        // needs under RCU and returns a new reference (or NULL).
        kernel::error::to_result(unsafe {
            bindings::dma_resv_get_singleton(resv, usage, &mut fence)
        })?;
        let Some(fence) = NonNull::new(fence) else {
            return Ok(None);
        };
        let waiter = KBox::pin_init(
            pin_init!(Waiter {
                cb <- Opaque::uninit(),
                fence,
                state: core::sync::atomic::AtomicI32::new(PENDING),
            }),
            GFP_KERNEL,
        );
        let waiter = match waiter {
            Ok(w) => w,
            Err(e) => {
                // SAFETY: The reference `dma_resv_get_singleton` returned.
                unsafe { bindings::iio_dmabuf_helper_dma_fence_put(fence.as_ptr()) };
                return Err(e);
            }
        };
        // SAFETY: The fence is live (we hold a reference) and `cb` is pinned
        // until `Drop` removes it.
        let ret = unsafe {
            bindings::dma_fence_add_callback(
                fence.as_ptr(),
                waiter.cb.get(),
                Some(dependency_signalled),
            )
        };
        if ret != 0 {
            // Already signalled (-ENOENT): no callback registered.
            // SAFETY: Live fence.
            let error = unsafe { (*fence.as_ptr()).error };
            waiter
                .state
                .store(error.min(0), core::sync::atomic::Ordering::Release);
        }
        // INVARIANT: Registered unless already signalled, reference held.
        Ok(Some(Self { inner: waiter }))
    }

    /// `None` while pending; then `Ok` or the writer's error.
    pub(crate) fn outcome(&self) -> Option<Result> {
        match self.inner.state.load(core::sync::atomic::Ordering::Acquire) {
            PENDING => None,
            0 => Some(Ok(())),
            e => Some(Err(Error::from_errno(e))),
        }
    }
}

impl Drop for Dependency {
    fn drop(&mut self) {
        let fence = self.inner.fence.as_ptr();
        if self.outcome().is_none() {
            // SAFETY: Registered while pending (type invariant); removing
            // takes the fence lock, so the callback is not running after.
            unsafe { bindings::dma_fence_remove_callback(fence, self.inner.cb.get()) };
        }
        // SAFETY: The reference held by the type invariant.
        unsafe { bindings::iio_dmabuf_helper_dma_fence_put(fence) };
    }
}
