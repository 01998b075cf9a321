/* SPDX-License-Identifier: GPL-2.0 */
/* The C side of src/export.rs (see src/export.c). */
#ifndef IIO_DMABUF_EXPORT_H
#define IIO_DMABUF_EXPORT_H

#include <linux/iio/buffer_impl.h>
#include <linux/iio/iio.h>
#include <linux/iio/iio-dmabuf.h>

/* Implemented in Rust (src/export.rs). */
void *iio_dmabuf_export_setup(struct device *dev, struct iio_dev *indio_dev,
			      const char *channel, bool output,
			      const struct iio_dmabuf_hw_ops *ops);
struct iio_buffer *iio_dmabuf_export_buffer(void *handle);
void iio_dmabuf_export_release(void *handle);
long iio_dmabuf_export_transfer(struct iio_dev *indio_dev, u64 first,
				size_t n);
void iio_dmabuf_export_registered(struct iio_buffer *buffer,
				  struct iio_dev *indio_dev, bool added);

/* Helpers for Rust (src/export.c). */
int iio_dmabuf_helper_export_storage(struct iio_dev *indio_dev, u16 *bytes,
				     unsigned int n, u16 *ts_bytes);
void *iio_dmabuf_helper_export_watch(struct iio_dev *indio_dev,
				     struct iio_buffer *buffer);
void iio_dmabuf_helper_export_unwatch(void *handle);
void *iio_dmabuf_helper_dma_request_named(struct device *dev,
					  const char *name);

#endif /* IIO_DMABUF_EXPORT_H */
