// SPDX-License-Identifier: GPL-2.0

//! The DMABUF API of the original proposal, on the buffer's char device
//! `/dev/iio:deviceN-dmabufM`: ALLOC a block, ENQUEUE it (seed number
//! 0x93 or mainline's 0x94). The uAPI is `include/uapi/linux/iio_dmabuf.h`.

use crate::{
    buffer::{BlockBuffer, EnqueueRequest},
    chardev::CharDevice,
    iio::buffer::Buffer,
};
use kernel::{
    ioctl::_IOW,
    prelude::*,
    sync::{aref::ARef, ArcBorrow},
    transmute::FromBytes,
    uaccess::{UserPtr, UserSlice},
};

/// `struct iio_dmabuf_alloc_req`
#[repr(C)]
#[derive(Clone, Copy)]
struct AllocReq {
    size: u64,
    resv: u64,
}

// SAFETY: Plain integers: every bit pattern is valid.
unsafe impl FromBytes for AllocReq {}

/// `struct iio_dmabuf`
#[repr(C)]
#[derive(Clone, Copy)]
struct IioDmabuf {
    fd: u32,
    flags: u32,
    bytes_used: u64,
}

// SAFETY: Plain integers: every bit pattern is valid.
unsafe impl FromBytes for IioDmabuf {}

const ALLOC: u32 = _IOW::<AllocReq>(b'i' as u32, 0x92);
const SEED_ENQUEUE: u32 = _IOW::<IioDmabuf>(b'i' as u32, 0x93);
const ENQUEUE: u32 = _IOW::<IioDmabuf>(b'i' as u32, 0x94);

fn read_arg<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read::<T>()
}

/// The char device of one IIO buffer.
pub(crate) struct DmabufChannel {
    buffer: ARef<Buffer<BlockBuffer>>,
}

impl DmabufChannel {
    pub(crate) fn new(buffer: ARef<Buffer<BlockBuffer>>) -> Self {
        Self { buffer }
    }
}

impl CharDevice for DmabufChannel {
    fn open(this: ArcBorrow<'_, Self>) -> Result {
        this.buffer.data().open_dmabuf()
    }

    fn release(this: ArcBorrow<'_, Self>) {
        BlockBuffer::close_dmabuf(&this.buffer);
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<i32> {
        match cmd {
            ALLOC => {
                let req: AllocReq = read_arg(arg)?;
                if req.resv != 0 {
                    return Err(EINVAL);
                }
                let limit = crate::dmabuf_max_bytes();
                this.buffer.data().alloc_dmabuf(req.size, limit)?.into_fd()
            }
            ENQUEUE | SEED_ENQUEUE => {
                let req: IioDmabuf = read_arg(arg)?;
                BlockBuffer::enqueue_dmabuf(
                    &this.buffer,
                    EnqueueRequest {
                        fd: req.fd,
                        flags: req.flags,
                        bytes_used: req.bytes_used,
                    },
                )?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
