/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * iio_dmabuf: the IIO DMABUF interface of the original proposal (ALLOC +
 * ENQUEUE), served on a per-buffer character device
 * /dev/iio:deviceN-dmabufM. See Documentation/iio/dmabuf_api.rst.
 */
#ifndef _UAPI_LINUX_IIO_DMABUF_H_
#define _UAPI_LINUX_IIO_DMABUF_H_

#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/iio/buffer.h>

/**
 * struct iio_dmabuf_alloc_req - Descriptor for allocating IIO DMABUFs
 * @size:	the size of a single DMABUF, in bytes (rounded up to a page)
 * @resv:	reserved, must be zero
 */
struct iio_dmabuf_alloc_req {
	__u64 size;
	__u64 resv;
};

/* Older <linux/iio/buffer.h> (before Linux 6.11) lack the mainline ENQUEUE. */
#ifndef IIO_BUFFER_DMABUF_ENQUEUE_IOCTL
#define IIO_BUFFER_DMABUF_CYCLIC		(1 << 0)
#define IIO_BUFFER_DMABUF_SUPPORTED_FLAGS	0x00000001

/**
 * struct iio_dmabuf - Descriptor for a single IIO DMABUF object
 * @fd:		file descriptor of the DMABUF object
 * @flags:	one or more IIO_BUFFER_DMABUF_* flags
 * @bytes_used:	number of bytes used in this DMABUF for the data transfer
 */
struct iio_dmabuf {
	__u32 fd;
	__u32 flags;
	__u64 bytes_used;
};

#define IIO_BUFFER_DMABUF_ENQUEUE_IOCTL		_IOW('i', 0x94, struct iio_dmabuf)
#endif

/* Allocate a DMABUF block; returns its file descriptor (O_RDWR | O_CLOEXEC). */
#define IIO_BUFFER_DMABUF_ALLOC_IOCTL		_IOW('i', 0x92, struct iio_dmabuf_alloc_req)
/* The seed's number for ENQUEUE: an alias of IIO_BUFFER_DMABUF_ENQUEUE_IOCTL. */
#define IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL	_IOW('i', 0x93, struct iio_dmabuf)

#endif /* _UAPI_LINUX_IIO_DMABUF_H_ */
