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

impl Fence {
    /// Creates an unsignalled fence, number `seqno` on `context`.
    pub(crate) fn new(context: &FenceContext, seqno: u64) -> Result<Self> {
        let slot = KBox::<Opaque<bindings::dma_fence>>::new_uninit(GFP_KERNEL)?;
        let ptr = KBox::into_raw(slot).cast::<bindings::dma_fence>();
        // SAFETY: `ptr` is a fresh kmalloc allocation the size of a fence;
        // a NULL lock makes the fence use its own. The core frees it with
        // kfree once the last reference is gone.
        unsafe {
            ptr.write_bytes(0, 1);
            bindings::dma_fence_init(ptr, &OPS, core::ptr::null_mut(), context.id, seqno);
        }
        // INVARIANT: Initialised above with refcount 1, owned here.
        Ok(Self {
            // SAFETY: `ptr` comes from a successful allocation.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        })
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::dma_fence {
        self.ptr.as_ptr()
    }

    /// Signals the fence, with `error` (a negative errno) if any. Safe in
    /// any context, including hard interrupts.
    pub(crate) fn signal(self, error: Option<Error>) {
        if let Some(e) = error {
            // SAFETY: Valid by the type invariant, not signalled yet (only
            // `signal` signals, and it consumes the owner).
            unsafe { bindings::iio_dmabuf_helper_dma_fence_set_error(self.as_raw(), e.to_errno()) };
        }
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::dma_fence_signal(self.as_raw()) };
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
        Self(unsafe { bindings::dma_fence_begin_signalling() })
    }
}

impl Drop for SignallingSection {
    fn drop(&mut self) {
        // SAFETY: The cookie comes from `begin`.
        unsafe { bindings::dma_fence_end_signalling(self.0) };
    }
}
