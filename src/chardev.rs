// SPDX-License-Identifier: GPL-2.0

//! A misc character device with a run-time name, a parent device and a
//! mode: what `kernel::miscdevice` does not offer (it takes a `'static`
//! name only). Each open file holds a reference to the device's data.

use crate::bindings;
use core::marker::PhantomData;
use kernel::{
    device::Device,
    error::{from_result, to_result},
    ffi,
    fs::File,
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

/// What a character device does. `Data` is shared by the registration and
/// every open file.
pub(crate) trait CharDevice: Send + Sync + Sized + 'static {
    /// A file is being opened.
    fn open(this: ArcBorrow<'_, Self>) -> Result;

    /// An open file is being released.
    fn release(this: ArcBorrow<'_, Self>);

    /// An ioctl on the open `file` (its flags say O_NONBLOCK); `arg` is
    /// the raw argument.
    fn ioctl(this: ArcBorrow<'_, Self>, file: &File, cmd: u32, arg: usize) -> Result<i32>;
}

/// A registered character device `/dev/<name>`; dropping it removes the
/// node (files already open keep working on their data).
///
/// # Invariants
///
/// `misc` is registered with `misc_register` while `self` lives, with
/// `name` as its name and `Adapter::<T>::FOPS` as its operations.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: CharDevice> {
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    data: Arc<T>,
    name: CString,
}

// SAFETY: The C registration is only touched at creation and drop.
unsafe impl<T: CharDevice> Send for Registration<T> {}
// SAFETY: As above; `data` is `Sync`.
unsafe impl<T: CharDevice> Sync for Registration<T> {}

impl<T: CharDevice> Registration<T> {
    /// Registers `/dev/<name>` with permissions `mode`, as a child of
    /// `parent` in sysfs (the driver core keeps a reference to the parent
    /// while the node exists).
    pub(crate) fn new(
        name: CString,
        parent: &Device,
        mode: u16,
        data: Arc<T>,
    ) -> impl PinInit<Self, Error> {
        let parent = crate::dma::device::raw_device(parent);
        try_pin_init!(&this in Self {
            data,
            name,
            misc <- Opaque::try_ffi_init(move |misc: *mut bindings::miscdevice| {
                // SAFETY: `misc` is writable and pinned; `name` lives in
                // `self` (already initialised: fields initialise in order);
                // `parent` is a live device, and the misc device made as its
                // child takes its own reference to it.
                unsafe {
                    misc.write_bytes(0, 1);
                    (*misc).minor = bindings::MISC_DYNAMIC_MINOR as i32;
                    (*misc).name = (*this.as_ptr()).name.as_char_ptr();
                    (*misc).fops = &Adapter::<T>::FOPS;
                    (*misc).parent = parent;
                    (*misc).mode = mode;
                    to_result(bindings::misc_register(misc))
                }
            }),
        })
    }
}

#[pinned_drop]
impl<T: CharDevice> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered, by the type invariant. After this returns no
        // open() can reach `self` any more (misc_open runs under the same
        // lock as misc_deregister).
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}

struct Adapter<T>(PhantomData<T>);

impl<T: CharDevice> Adapter<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: crate::THIS_MODULE_PTR,
        open: Some(Self::open),
        release: Some(Self::release),
        unlocked_ioctl: Some(Self::ioctl),
        compat_ioctl: bindings::compat_ptr_ioctl,
        llseek: Some(bindings::noop_llseek),
        // SAFETY: All-zero (no callback) is valid for the other fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };

    /// # Safety
    ///
    /// Called by the VFS through misc_open, which set `private_data` to
    /// our registered `miscdevice`.
    unsafe extern "C" fn open(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: misc_open stores the miscdevice, the first field of a
            // live `Registration<T>` (it cannot be dropped during open).
            let reg = unsafe { &*(*file).private_data.cast::<Registration<T>>() };
            T::open(reg.data.as_arc_borrow())?;
            // SAFETY: `file` is valid; the file now owns a reference,
            // released in `release`.
            unsafe { (*file).private_data = reg.data.clone().into_foreign().cast() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS on a file `open` succeeded on.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `private_data` holds the reference taken in `open`, given
        // back here exactly once.
        let data = unsafe { Arc::<T>::from_foreign((*file).private_data.cast()) };
        T::release(data.as_arc_borrow());
        0
    }

    /// # Safety
    ///
    /// Called by the VFS on a file `open` succeeded on.
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: u32,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `private_data` holds a reference taken in `open`, alive
        // until `release`, which cannot run during an ioctl.
        let data = unsafe { Arc::<T>::borrow((*file).private_data.cast()) };
        // SAFETY:
        // * The file is valid for the duration of this call.
        // * There is no active fdget_pos region on the file on this thread.
        let file_ref = unsafe { File::from_raw_file(file) };
        match T::ioctl(data, file_ref, cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }
}
