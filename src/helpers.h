/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of the iio_dmabuf module: callable wrappers for the static
 * inline functions and macros of the IIO API, which bindgen cannot bind.
 */
#ifndef IIO_DMABUF_HELPERS_H
#define IIO_DMABUF_HELPERS_H

#include <linux/configfs.h>
#include <linux/dma-buf.h>
#include <linux/dma-fence.h>
#include <linux/dma-resv.h>
#include <linux/miscdevice.h>
#include <linux/scatterlist.h>
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
struct file *iio_dmabuf_helper_pin_module(void);
void iio_dmabuf_helper_unpin_module(struct file *pin);
const char *iio_dmabuf_helper_dev_name(struct device *dev);
unsigned long long iio_dmabuf_helper_dmabuf_max_bytes(void);

void *iio_dmabuf_helper_vmalloc_user(unsigned long size);
void iio_dmabuf_helper_vfree(void *addr);
int iio_dmabuf_helper_remap_vmalloc_range(struct vm_area_struct *vma,
					  void *addr);
struct page *iio_dmabuf_helper_vmalloc_to_page(const void *addr);

struct dma_buf *iio_dmabuf_helper_dma_buf_export(const struct dma_buf_ops *ops,
						 size_t size, void *priv);
void iio_dmabuf_helper_get_dma_buf(struct dma_buf *dmabuf);
void iio_dmabuf_helper_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr);

struct dma_fence *iio_dmabuf_helper_dma_fence_get(struct dma_fence *fence);
void iio_dmabuf_helper_dma_fence_put(struct dma_fence *fence);
void iio_dmabuf_helper_dma_fence_set_error(struct dma_fence *fence, int error);
bool iio_dmabuf_helper_dma_fence_begin_signalling(void);
void iio_dmabuf_helper_dma_fence_end_signalling(bool cookie);
int iio_dmabuf_helper_dma_resv_lock_interruptible(struct dma_resv *resv);
bool iio_dmabuf_helper_dma_resv_trylock(struct dma_resv *resv);
void iio_dmabuf_helper_dma_resv_unlock(struct dma_resv *resv);

int iio_dmabuf_helper_sg_alloc_table_from_pages(struct sg_table *sgt,
						struct page **pages,
						unsigned int n_pages,
						unsigned long size,
						struct device *dev);
void iio_dmabuf_helper_dma_sync_single_for_cpu(struct device *dev,
					       dma_addr_t addr, size_t size,
					       enum dma_data_direction dir);
void iio_dmabuf_helper_dma_sync_single_for_device(struct device *dev,
						  dma_addr_t addr, size_t size,
						  enum dma_data_direction dir);
int iio_dmabuf_helper_dma_coerce_mask_64(struct device *dev);
int iio_dmabuf_helper_dma_map_sgtable(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir);
void iio_dmabuf_helper_dma_unmap_sgtable(struct device *dev,
					 struct sg_table *sgt,
					 enum dma_data_direction dir);
void iio_dmabuf_helper_dma_sync_sgtable_for_cpu(struct device *dev,
						struct sg_table *sgt,
						enum dma_data_direction dir);
void iio_dmabuf_helper_dma_sync_sgtable_for_device(struct device *dev,
						   struct sg_table *sgt,
						   enum dma_data_direction dir);

void iio_dmabuf_helper_flush_kernel_vmap_range(void *vaddr, int size);
void iio_dmabuf_helper_invalidate_kernel_vmap_range(void *vaddr, int size);

/* dmaengine (opaque channel and batch pointers). */
void *iio_dmabuf_helper_dma_request_memcpy(void);
void iio_dmabuf_helper_dma_release_channel(void *chan);
const char *iio_dmabuf_helper_dma_chan_name(void *chan);
struct device *iio_dmabuf_helper_dma_chan_device(void *chan);
void *iio_dmabuf_helper_dma_batch_alloc(void);
void iio_dmabuf_helper_dma_batch_free(void *batch);
void iio_dmabuf_helper_dma_batch_reset(void *batch);
int iio_dmabuf_helper_dma_memcpy(void *chan, dma_addr_t dst, dma_addr_t src,
				 size_t len, void *batch);
void iio_dmabuf_helper_dma_issue_pending(void *chan);
int iio_dmabuf_helper_dma_batch_wait(void *chan, void *batch,
				     unsigned int timeout_ms);
int iio_dmabuf_helper_dma_terminate_sync(void *chan);
void *iio_dmabuf_helper_dma_alloc_coherent(struct device *dev, size_t size,
					   dma_addr_t *handle);
void iio_dmabuf_helper_dma_free_coherent(struct device *dev, size_t size,
					 void *vaddr, dma_addr_t handle);
void iio_dmabuf_helper_fault_init(void);
void iio_dmabuf_helper_fault_exit(void);

#endif /* IIO_DMABUF_HELPERS_H */
