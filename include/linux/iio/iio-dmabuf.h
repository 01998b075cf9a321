/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iio_dmabuf's buffer for other IIO drivers: fileio, the seed DMABUF API
 * (/dev/iio:deviceN-dmabuf0) and the mainline DMABUF API, moved by a
 * dmaengine memcpy channel (or by the CPU when the machine has none).
 *
 * Symbols in the "IIO_DMABUF" namespace: MODULE_IMPORT_NS("IIO_DMABUF").
 * See Documentation/iio/export.rst.
 */
#ifndef _LINUX_IIO_IIO_DMABUF_H
#define _LINUX_IIO_IIO_DMABUF_H

#include <linux/types.h>
#include <linux/iio/buffer.h>

struct device;
struct iio_dev;

/**
 * struct iio_dmabuf_hw_ops - the driver's hardware, as the buffer sees it
 * @fill: input (ADC): write @n scans, numbered from @first, into @fifo,
 *	the device-side memory the channel then copies into the blocks
 *	(@n * bytes per scan bytes, the scan layout of the channels enabled).
 * @take: output (DAC): take @n scans, numbered from @first, that the
 *	channel copied out of the blocks into @fifo.
 *
 * Both are called from iio_dmabuf_buffer_transfer(), in its context,
 * never concurrently for one device.
 */
struct iio_dmabuf_hw_ops {
	void (*fill)(struct iio_dev *indio_dev, void *fifo, u64 first, size_t n);
	void (*take)(struct iio_dev *indio_dev, const void *fifo, u64 first,
		     size_t n);
};

/**
 * devm_iio_dmabuf_buffer_setup() - give @indio_dev iio_dmabuf's buffer
 * @dev: the driver's device: owns the buffer (devm) and is the parent of
 *	the seed API's char device
 * @indio_dev: the IIO device, before iio_device_register(); it must have
 *	no other buffer (ours becomes indio_dev->buffer)
 * @channel: a dmaengine channel of @dev (dma_request_chan() name, with
 *	DMA_MEMCPY capability), or NULL for any free memcpy channel, and the
 *	CPU when there is none
 * @dir: IIO_BUFFER_DIRECTION_IN (ADC) or IIO_BUFFER_DIRECTION_OUT (DAC)
 * @ops: @ops->fill (input) or @ops->take (output) is required
 *
 * Returns 0 or a negative errno.
 */
int devm_iio_dmabuf_buffer_setup(struct device *dev, struct iio_dev *indio_dev,
				 const char *channel,
				 enum iio_buffer_direction dir,
				 const struct iio_dmabuf_hw_ops *ops);

/**
 * iio_dmabuf_buffer_transfer() - the hardware produced or wants scans
 * @indio_dev: a device set up by devm_iio_dmabuf_buffer_setup()
 * @first: number of the first scan
 * @n: number of scans
 *
 * Moves the scans into (input) or out of (output) the queued blocks,
 * through @ops, completing blocks as they fill up or empty. Process
 * context, may sleep (DMA is waited for); not concurrently with itself for
 * one device. Returns the number of scans that found no block (overrun or
 * underrun: the last ones of the range) or a negative errno.
 */
long iio_dmabuf_buffer_transfer(struct iio_dev *indio_dev, u64 first, size_t n);

#endif /* _LINUX_IIO_IIO_DMABUF_H */
