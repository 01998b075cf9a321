// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of the iio_dmabuf module: the IIO API's static inline
 * functions and macros, wrapped so that Rust can call them.
 */
#include <linux/module.h>
#include <linux/wait.h>

#include "helpers.h"

void *iio_dmabuf_helper_iio_priv(struct iio_dev *indio_dev)
{
	return iio_priv(indio_dev);
}

struct iio_dev *iio_dmabuf_helper_dev_to_iio_dev(struct device *dev)
{
	return dev_to_iio_dev(dev);
}

/* The macro passes THIS_MODULE: the IIO char device then pins this module. */
int iio_dmabuf_helper_device_register(struct iio_dev *indio_dev)
{
	return iio_device_register(indio_dev);
}

bool iio_dmabuf_helper_claim_direct(struct iio_dev *indio_dev)
{
	return iio_device_claim_direct(indio_dev);
}

void iio_dmabuf_helper_release_direct(struct iio_dev *indio_dev)
{
	iio_device_release_direct(indio_dev);
}

/*
 * The configfs item of an instance owns its memory: the Rust side frees it
 * from the item's release, after the IIO core's remove and last put.
 */
static void iio_dmabuf_swd_item_release(struct config_item *item)
{
	iio_dmabuf_swd_release(to_iio_sw_device(item));
}

static struct configfs_item_operations iio_dmabuf_swd_item_ops = {
	.release = iio_dmabuf_swd_item_release,
};

static const struct config_item_type iio_dmabuf_swd_item_type = {
	.ct_owner = THIS_MODULE,
	.ct_item_ops = &iio_dmabuf_swd_item_ops,
};

void iio_dmabuf_helper_swd_group_init(struct iio_sw_device *swd,
				      const char *name)
{
	iio_swd_group_init_type_name(swd, name, &iio_dmabuf_swd_item_type);
}

void iio_dmabuf_helper_buffer_wake(struct iio_buffer *buffer)
{
	wake_up(&buffer->pollq);
}

/*
 * An IIO buffer can outlive its device (an fd from IIO_BUFFER_GET_FD_IOCTL
 * keeps it), and its release callback is module code: each buffer pins the
 * module until it is released.
 */
void iio_dmabuf_helper_module_get(void)
{
	__module_get(THIS_MODULE);
}

void iio_dmabuf_helper_module_put(void)
{
	module_put(THIS_MODULE);
}
