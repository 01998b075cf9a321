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
void iio_dmabuf_export_release(void *handle);
long iio_dmabuf_export_transfer(struct iio_dev *indio_dev, u64 first,
				size_t n);

/* Helpers for Rust (src/export.c). */
long iio_dmabuf_helper_export_scan_bytes(struct iio_dev *indio_dev,
					 struct iio_buffer *buffer);
void *iio_dmabuf_helper_dma_request_named(struct device *dev,
					  const char *name);
bool iio_dmabuf_helper_export_removing(struct iio_dev *indio_dev);

#endif /* IIO_DMABUF_EXPORT_H */
