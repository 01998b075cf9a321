// SPDX-License-Identifier: GPL-2.0

//! What `kernel::workqueue` lacks: waiting for a queued work item.

use crate::bindings;
use kernel::workqueue::Work;

/// Waits until `work` is neither queued nor running. A queued item still
/// runs (and so releases the reference it holds) before this returns.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is a live, initialised work item; flushing has no
    // other requirement (callers must not flush from the item itself).
    unsafe { bindings::flush_work(Work::raw_get(work)) };
}
