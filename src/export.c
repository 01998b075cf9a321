// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf's buffer exported to other IIO drivers
 * (include/linux/iio/iio-dmabuf.h): the exported C entry points, over the
 * Rust implementation in src/export.rs.
 */
#include <linux/bitops.h>
#include <linux/device.h>
#include <linux/dmaengine.h>
#include <linux/err.h>
#include <linux/export.h>
#include <linux/iio/buffer_impl.h>
#include <linux/iio/iio.h>
#include <linux/iio/iio-opaque.h>
#include <linux/iio/iio-dmabuf.h>
#include <linux/mutex.h>

#include "export.h"

static void iio_dmabuf_export_release_action(void *handle)
{
	iio_dmabuf_export_release(handle);
}

int devm_iio_dmabuf_buffer_setup(struct device *dev, struct iio_dev *indio_dev,
				 const char *channel,
				 enum iio_buffer_direction dir,
				 const struct iio_dmabuf_hw_ops *ops)
{
	bool output = dir == IIO_BUFFER_DIRECTION_OUT;
	void *handle;

	if (!dev || !indio_dev || !ops)
		return -EINVAL;
	if (dir != IIO_BUFFER_DIRECTION_IN && !output)
		return -EINVAL;
	if (output ? !ops->take : !ops->fill)
		return -EINVAL;
	if (indio_dev->buffer)
		return -EBUSY;

	handle = iio_dmabuf_export_setup(dev, indio_dev, channel, output, ops);
	if (IS_ERR(handle))
		return PTR_ERR(handle);
	indio_dev->modes |= INDIO_BUFFER_HARDWARE;

	return devm_add_action_or_reset(dev, iio_dmabuf_export_release_action,
					handle);
}
EXPORT_SYMBOL_NS_GPL(devm_iio_dmabuf_buffer_setup, "IIO_DMABUF");

long iio_dmabuf_buffer_transfer(struct iio_dev *indio_dev, u64 first, size_t n)
{
	if (!indio_dev || !indio_dev->buffer)
		return -EINVAL;
	return iio_dmabuf_export_transfer(indio_dev, first, n);
}
EXPORT_SYMBOL_NS_GPL(iio_dmabuf_buffer_transfer, "IIO_DMABUF");

/*
 * The bytes of a scan with the channels selected now, as the IIO core
 * computes them (iio_compute_scan_bytes(), static there); -ENODEV once the
 * device is unregistered. The core frees the scan mask after it cleared
 * indio_dev->info under info_exist_lock, so both are read under it.
 */
long iio_dmabuf_helper_export_scan_bytes(struct iio_dev *indio_dev,
					 struct iio_buffer *buffer)
{
	struct iio_dev_opaque *iio_dev_opaque = to_iio_dev_opaque(indio_dev);
	unsigned int bytes = 0, largest = 0, length;
	const struct iio_chan_spec *chan;
	int i, j;

	guard(mutex)(&iio_dev_opaque->info_exist_lock);
	if (!indio_dev->info)
		return -ENODEV;
	if (!buffer->scan_mask)
		return 0;

	for_each_set_bit(i, buffer->scan_mask, iio_get_masklength(indio_dev)) {
		chan = NULL;
		for (j = 0; j < indio_dev->num_channels; j++) {
			if (indio_dev->channels[j].scan_index == i) {
				chan = &indio_dev->channels[j];
				break;
			}
		}
		if (!chan)
			return -EINVAL;
		length = chan->scan_type.storagebits / 8;
		if (chan->scan_type.repeat > 1)
			length *= chan->scan_type.repeat;
		if (!length)
			return -EINVAL;
		bytes = ALIGN(bytes, length);
		bytes += length;
		largest = max(largest, length);
	}

	if (buffer->scan_timestamp) {
		chan = NULL;
		for (j = 0; j < indio_dev->num_channels; j++) {
			if (indio_dev->channels[j].scan_index ==
			    iio_dev_opaque->scan_index_timestamp) {
				chan = &indio_dev->channels[j];
				break;
			}
		}
		if (!chan)
			return -EINVAL;
		length = chan->scan_type.storagebits / 8;
		if (!length)
			return -EINVAL;
		bytes = ALIGN(bytes, length);
		bytes += length;
		largest = max(largest, length);
	}

	return largest ? ALIGN(bytes, largest) : 0;
}

/* A named channel of @dev; it must be able to do memcpy. */
void *iio_dmabuf_helper_dma_request_named(struct device *dev, const char *name)
{
	struct dma_chan *chan = dma_request_chan(dev, name);

	if (IS_ERR(chan))
		return chan;
	if (!dma_has_cap(DMA_MEMCPY, chan->device->cap_mask)) {
		dma_release_channel(chan);
		return ERR_PTR(-EINVAL);
	}
	return chan;
}

/*
 * Whether @indio_dev is being unregistered: iio_device_unregister() deletes
 * the device before it disables the buffers.
 */
bool iio_dmabuf_helper_export_removing(struct iio_dev *indio_dev)
{
	return !device_is_registered(&indio_dev->dev);
}
