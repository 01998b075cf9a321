/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of the iio_dmabuf module: callable wrappers for the static
 * inline functions and macros of the IIO API, which bindgen cannot bind.
 */
#ifndef IIO_DMABUF_HELPERS_H
#define IIO_DMABUF_HELPERS_H

#include <linux/configfs.h>
#include <linux/iio/buffer_impl.h>
#include <linux/iio/iio.h>
#include <linux/iio/sw_device.h>

void *iio_dmabuf_helper_iio_priv(struct iio_dev *indio_dev);
struct iio_dev *iio_dmabuf_helper_dev_to_iio_dev(struct device *dev);
int iio_dmabuf_helper_device_register(struct iio_dev *indio_dev);
bool iio_dmabuf_helper_claim_direct(struct iio_dev *indio_dev);
void iio_dmabuf_helper_release_direct(struct iio_dev *indio_dev);
void iio_dmabuf_helper_swd_group_init(struct iio_sw_device *swd,
				      const char *name);

/* Implemented in Rust (src/iio/sw_device.rs). */
void iio_dmabuf_swd_release(struct iio_sw_device *swd);
void iio_dmabuf_helper_buffer_wake(struct iio_buffer *buffer);
void iio_dmabuf_helper_module_get(void);
void iio_dmabuf_helper_module_put(void);

#endif /* IIO_DMABUF_HELPERS_H */
