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
#include <linux/log2.h>
#include <linux/notifier.h>
#include <linux/slab.h>

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
	int ret;

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
	ret = devm_add_action_or_reset(dev, iio_dmabuf_export_release_action,
				       handle);
	if (ret)
		return ret;
	/*
	 * Last: the core cannot detach a buffer, so a failure before this
	 * leaves the device without one (a retry or another buffer works).
	 */
	ret = iio_device_attach_buffer(indio_dev,
				       iio_dmabuf_export_buffer(handle));
	if (ret)
		return ret;
	indio_dev->modes |= INDIO_BUFFER_HARDWARE;

	return 0;
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
 * The storage bytes of scan index @si, as the IIO core counts them
 * (iio_storage_bytes_for_si(), static there): those of the first channel
 * with that index; 0 if there is none. -EOPNOTSUPP for a channel whose
 * scan type may change while the device is registered (ext_scan_type):
 * the buffer does not follow it.
 */
static int iio_dmabuf_export_si_bytes(struct iio_dev *indio_dev, int si)
{
	const struct iio_chan_spec *chan;
	unsigned int bytes;
	int j;

	for (j = 0; j < indio_dev->num_channels; j++) {
		chan = &indio_dev->channels[j];
		if (chan->scan_index != si)
			continue;
		if (chan->has_ext_scan_type)
			return -EOPNOTSUPP;
		bytes = chan->scan_type.storagebits / 8;
		if (chan->scan_type.repeat > 1)
			bytes *= roundup_pow_of_two(chan->scan_type.repeat);
		return bytes;
	}
	return 0;
}

/*
 * The storage bytes of each of the @n first scan indexes of @indio_dev
 * into @bytes and those of its timestamp into @ts_bytes, for the scan size
 * of any channel mask (src/export.rs); -E2BIG if the device has more than
 * @n. Called as the device registers: its channels and mask length are
 * final then.
 */
int iio_dmabuf_helper_export_storage(struct iio_dev *indio_dev, u16 *bytes,
				     unsigned int n, u16 *ts_bytes)
{
	struct iio_dev_opaque *iio_dev_opaque = to_iio_dev_opaque(indio_dev);
	unsigned int masklength = iio_get_masklength(indio_dev);
	unsigned int i;
	int ret;

	if (masklength > n)
		return -E2BIG;
	for (i = 0; i < n; i++) {
		ret = i < masklength ? iio_dmabuf_export_si_bytes(indio_dev, i) : 0;
		if (ret < 0)
			return ret;
		bytes[i] = ret;
	}
	ret = iio_dmabuf_export_si_bytes(indio_dev,
					 iio_dev_opaque->scan_index_timestamp);
	if (ret < 0)
		return ret;
	*ts_bytes = ret;
	return 0;
}

/*
 * Registration and unregistration of an exported buffer's IIO device, from
 * the IIO bus: the scan mask the buffer reads exists from before the
 * device is added until after it is deleted.
 */
struct iio_dmabuf_export_watch {
	struct notifier_block nb;
	struct iio_dev *indio_dev;
	struct iio_buffer *buffer;
};

static int iio_dmabuf_export_notify(struct notifier_block *nb,
				    unsigned long action, void *data)
{
	struct iio_dmabuf_export_watch *w =
		container_of(nb, struct iio_dmabuf_export_watch, nb);

	if (data != &w->indio_dev->dev)
		return NOTIFY_DONE;
	if (action == BUS_NOTIFY_ADD_DEVICE)
		iio_dmabuf_export_registered(w->buffer, w->indio_dev, true);
	else if (action == BUS_NOTIFY_DEL_DEVICE)
		iio_dmabuf_export_registered(w->buffer, w->indio_dev, false);
	return NOTIFY_DONE;
}

/* Starts watching @indio_dev (not registered yet): a handle or NULL. */
void *iio_dmabuf_helper_export_watch(struct iio_dev *indio_dev,
				     struct iio_buffer *buffer)
{
	struct iio_dmabuf_export_watch *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	w->nb.notifier_call = iio_dmabuf_export_notify;
	w->indio_dev = indio_dev;
	w->buffer = buffer;
	if (bus_register_notifier(&iio_bus_type, &w->nb)) {
		kfree(w);
		return NULL;
	}
	return w;
}

/* Stops watching: no notification runs after this returns. */
void iio_dmabuf_helper_export_unwatch(void *handle)
{
	struct iio_dmabuf_export_watch *w = handle;

	bus_unregister_notifier(&iio_bus_type, &w->nb);
	kfree(w);
}

/*
 * A named channel of @dev. As for the channels the converters take
 * (src/helpers.c), it must do memcpy, be able to be terminated and copy at
 * any alignment: -EINVAL otherwise.
 */
void *iio_dmabuf_helper_dma_request_named(struct device *dev, const char *name)
{
	struct dma_chan *chan = dma_request_chan(dev, name);

	if (IS_ERR(chan))
		return chan;
	if (!dma_has_cap(DMA_MEMCPY, chan->device->cap_mask) ||
	    !chan->device->device_terminate_all || chan->device->copy_align) {
		dma_release_channel(chan);
		return ERR_PTR(-EINVAL);
	}
	return chan;
}
