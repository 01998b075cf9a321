// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of the iio_dmabuf module: the IIO API's static inline
 * functions and macros, wrapped so that Rust can call them.
 */
#include <linux/anon_inodes.h>
#include <linux/dma-mapping.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>

#include "helpers.h"

MODULE_IMPORT_NS("DMA_BUF");

/*
 * Declared in C because Rust module parameters are not writable through
 * sysfs; the limit applies to the next ALLOC.
 */
static unsigned long long dmabuf_max_bytes = 64ULL << 20;
module_param(dmabuf_max_bytes, ullong, 0644);
MODULE_PARM_DESC(dmabuf_max_bytes,
		 "Most bytes of DMABUF blocks allocated per IIO buffer (default 64 MiB)");

unsigned long long iio_dmabuf_helper_dmabuf_max_bytes(void)
{
	return READ_ONCE(dmabuf_max_bytes);
}

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
 * or an attachment keeps it), and its release callback is module code. A
 * module_put() at the end of that callback would leave its last
 * instructions racing an unload. Each buffer holds instead an internal file
 * whose fops are owned by this module: the VFS pins the module while the
 * file exists, and drops the pin itself, in __fput() after our release
 * returned (fput() defers that), so no module code runs after the last put.
 */
static const struct file_operations iio_dmabuf_pin_fops = {
	.owner = THIS_MODULE,
};

struct file *iio_dmabuf_helper_pin_module(void)
{
	return anon_inode_getfile("iio_dmabuf:pin", &iio_dmabuf_pin_fops, NULL,
				  O_RDONLY);
}

void iio_dmabuf_helper_unpin_module(struct file *pin)
{
	fput(pin);
}

const char *iio_dmabuf_helper_dev_name(struct device *dev)
{
	return dev_name(dev);
}

/*
 * Zeroed, page-aligned memory that userspace may map: vmalloc_user(),
 * but quiet when it fails. A block of up to 16 MiB may legitimately not
 * be available (ALLOC fails with ENOMEM), and vmalloc_user() takes no gfp
 * flags: its failures print a warning with a stack dump. So the pages are
 * allocated here with __GFP_NOWARN and mapped with VM_USERMAP (for
 * remap_vmalloc_range()); VM_MAP_PUT_PAGES makes vfree() free the pages
 * and the array.
 */
void *iio_dmabuf_helper_vmalloc_user(unsigned long size)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_NOWARN;
	unsigned long i, count = size >> PAGE_SHIFT;
	struct page **pages;
	void *vaddr;

	if (!count || count > UINT_MAX || !PAGE_ALIGNED(size))
		return NULL;
	pages = kvmalloc_array(count, sizeof(*pages), gfp);
	if (!pages)
		return NULL;
	for (i = 0; i < count; i++) {
		pages[i] = alloc_page(gfp | __GFP_ZERO);
		if (!pages[i])
			goto fail;
	}
	vaddr = vmap(pages, count, VM_MAP | VM_USERMAP | VM_MAP_PUT_PAGES,
		     PAGE_KERNEL);
	if (vaddr)
		return vaddr;
fail:
	while (i--)
		__free_page(pages[i]);
	kvfree(pages);
	return NULL;
}

void iio_dmabuf_helper_vfree(void *addr)
{
	vfree(addr);
}

int iio_dmabuf_helper_remap_vmalloc_range(struct vm_area_struct *vma,
					  void *addr)
{
	return remap_vmalloc_range(vma, addr, vma->vm_pgoff);
}

struct page *iio_dmabuf_helper_vmalloc_to_page(const void *addr)
{
	return vmalloc_to_page(addr);
}

/* The export info macro names this module as owner: a DMABUF pins it. */
struct dma_buf *iio_dmabuf_helper_dma_buf_export(const struct dma_buf_ops *ops,
						 size_t size, void *priv)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);

	exp_info.ops = ops;
	exp_info.size = size;
	exp_info.flags = O_RDWR;
	exp_info.priv = priv;
	return dma_buf_export(&exp_info);
}

void iio_dmabuf_helper_get_dma_buf(struct dma_buf *dmabuf)
{
	get_dma_buf(dmabuf);
}

void iio_dmabuf_helper_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr)
{
	iosys_map_set_vaddr(map, vaddr);
}

struct dma_fence *iio_dmabuf_helper_dma_fence_get(struct dma_fence *fence)
{
	return dma_fence_get(fence);
}

void iio_dmabuf_helper_dma_fence_put(struct dma_fence *fence)
{
	dma_fence_put(fence);
}

void iio_dmabuf_helper_dma_fence_set_error(struct dma_fence *fence, int error)
{
	dma_fence_set_error(fence, error);
}

/* Static inlines without CONFIG_LOCKDEP: bindgen sees no function then. */
bool iio_dmabuf_helper_dma_fence_begin_signalling(void)
{
	return dma_fence_begin_signalling();
}

void iio_dmabuf_helper_dma_fence_end_signalling(bool cookie)
{
	dma_fence_end_signalling(cookie);
}

int iio_dmabuf_helper_dma_resv_lock_interruptible(struct dma_resv *resv)
{
	return dma_resv_lock_interruptible(resv, NULL);
}

bool iio_dmabuf_helper_dma_resv_trylock(struct dma_resv *resv)
{
	return dma_resv_trylock(resv);
}

void iio_dmabuf_helper_dma_resv_unlock(struct dma_resv *resv)
{
	dma_resv_unlock(resv);
}

/*
 * A table of @pages whose entries @dev can map one by one: contiguous
 * pages merge up to the device's largest segment and the DMA layer's
 * largest mapping (a bounce buffer maps at most 256 KiB at a time).
 */
int iio_dmabuf_helper_sg_alloc_table_from_pages(struct sg_table *sgt,
						struct page **pages,
						unsigned int n_pages,
						unsigned long size,
						struct device *dev)
{
	size_t max = min_t(size_t, dma_max_mapping_size(dev),
			   dma_get_max_seg_size(dev));

	max = max_t(size_t, min_t(size_t, max, UINT_MAX) & PAGE_MASK,
		    PAGE_SIZE);
	return sg_alloc_table_from_pages_segment(sgt, pages, n_pages, 0, size,
						 max, GFP_KERNEL);
}

/* Part of a mapping, around a transfer that touches only that part */
void iio_dmabuf_helper_dma_sync_single_for_cpu(struct device *dev,
					       dma_addr_t addr, size_t size,
					       enum dma_data_direction dir)
{
	dma_sync_single_for_cpu(dev, addr, size, dir);
}

void iio_dmabuf_helper_dma_sync_single_for_device(struct device *dev,
						  dma_addr_t addr, size_t size,
						  enum dma_data_direction dir)
{
	dma_sync_single_for_device(dev, addr, size, dir);
}

int iio_dmabuf_helper_dma_coerce_mask_64(struct device *dev)
{
	return dma_coerce_mask_and_coherent(dev, DMA_BIT_MASK(64));
}

int iio_dmabuf_helper_dma_map_sgtable(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir)
{
	return dma_map_sgtable(dev, sgt, dir, 0);
}

void iio_dmabuf_helper_dma_unmap_sgtable(struct device *dev,
					 struct sg_table *sgt,
					 enum dma_data_direction dir)
{
	dma_unmap_sgtable(dev, sgt, dir, 0);
}

void iio_dmabuf_helper_dma_sync_sgtable_for_cpu(struct device *dev,
						struct sg_table *sgt,
						enum dma_data_direction dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void iio_dmabuf_helper_dma_sync_sgtable_for_device(struct device *dev,
						   struct sg_table *sgt,
						   enum dma_data_direction dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

void iio_dmabuf_helper_flush_kernel_vmap_range(void *vaddr, int size)
{
	flush_kernel_vmap_range(vaddr, size);
}

void iio_dmabuf_helper_invalidate_kernel_vmap_range(void *vaddr, int size)
{
	invalidate_kernel_vmap_range(vaddr, size);
}

/*
 * dmaengine: the static inline functions and macros of a memcpy client.
 * Channels and batches are opaque to Rust (void *): the module's bindings
 * only know the types the kernel crate binds, and dmaengine.h is not among
 * them.
 */
#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/dmaengine.h>
#include <linux/fault-inject.h>
#include <linux/workqueue.h>

/*
 * The descriptors submitted since the last wait. Each holds a count in
 * @pending; the waiter holds one more (the bias), so that @done completes
 * only once it waits and every descriptor called back. Reset only when no
 * callback can run (after a wait that saw them all, or a terminate_sync).
 */
struct iio_dmabuf_dma_batch {
	struct completion done;
	atomic_t pending;
	int error;
	u64 bytes;
	u64 count;
};

struct iio_dmabuf_dma_request {
	struct work_struct work;
	struct dma_chan *chan;
};

static void iio_dmabuf_dma_request_work(struct work_struct *work)
{
	struct iio_dmabuf_dma_request *req =
		container_of(work, struct iio_dmabuf_dma_request, work);
	dma_cap_mask_t mask;

	dma_cap_zero(mask);
	dma_cap_set(DMA_MEMCPY, mask);
	req->chan = dma_request_chan_by_mask(&mask);
	/* No controller registered at all: no channel either */
	if (req->chan == ERR_PTR(-EPROBE_DEFER)) {
		req->chan = ERR_PTR(-ENODEV);
		return;
	}
	if (IS_ERR(req->chan))
		return;
	/*
	 * A timeout must be able to stop a descriptor before its memory goes
	 * (without terminate_all, terminate_sync stops nothing), and scans
	 * start at any byte.
	 */
	if (!req->chan->device->device_terminate_all ||
	    req->chan->device->copy_align) {
		dma_release_channel(req->chan);
		req->chan = ERR_PTR(-ENODEV);
	}
}

/*
 * A memcpy channel that can be terminated and copies at any alignment, or
 * an error pointer (-ENODEV: none). Requested from a kernel worker,
 * not from the caller's thread: zynqmp_dma_alloc_chan_resources() (7.3)
 * leaks its descriptor array when its coherent descriptor pool cannot be
 * allocated, and a fault injected into the caller's allocations (fail-nth,
 * tests/fault_inject.c) made that leak on every such mkdir. The worker's
 * allocations are the system's, as for any driver probing a channel.
 */
void *iio_dmabuf_helper_dma_request_memcpy(void)
{
	struct iio_dmabuf_dma_request req = { .chan = ERR_PTR(-ENODEV) };

	INIT_WORK_ONSTACK(&req.work, iio_dmabuf_dma_request_work);
	queue_work(system_dfl_wq, &req.work);
	flush_work(&req.work);
	destroy_work_on_stack(&req.work);
	return req.chan;
}

void iio_dmabuf_helper_dma_release_channel(void *chan)
{
	dma_release_channel(chan);
}

const char *iio_dmabuf_helper_dma_chan_name(void *chan)
{
	return dma_chan_name(chan);
}

/* The controller's device: the one memory is mapped for. */
struct device *iio_dmabuf_helper_dma_chan_device(void *chan)
{
	return ((struct dma_chan *)chan)->device->dev;
}

void *iio_dmabuf_helper_dma_batch_alloc(void)
{
	struct iio_dmabuf_dma_batch *batch;

	batch = kzalloc_obj(*batch, GFP_KERNEL);
	if (!batch)
		return NULL;
	init_completion(&batch->done);
	atomic_set(&batch->pending, 1);
	return batch;
}

void iio_dmabuf_helper_dma_batch_free(void *batch)
{
	kfree(batch);
}

void iio_dmabuf_helper_dma_batch_reset(void *batch)
{
	struct iio_dmabuf_dma_batch *b = batch;

	reinit_completion(&b->done);
	atomic_set(&b->pending, 1);
	b->error = 0;
	b->bytes = 0;
	b->count = 0;
}

/* Tasklet or IRQ context: only records and completes. */
static void iio_dmabuf_dma_callback(void *param,
				    const struct dmaengine_result *result)
{
	struct iio_dmabuf_dma_batch *b = param;

	if (result && result->result != DMA_TRANS_NOERROR)
		WRITE_ONCE(b->error, -EIO);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

/*
 * Fault injection (Documentation/fault-injection/fault-injection.rst),
 * in debugfs: fail_iio_dmabuf_dma_error makes a descriptor complete with
 * a read failure, as a controller's bus error would;
 * fail_iio_dmabuf_dma_stall loses a descriptor's completion, as a lost
 * interrupt would. Decided at submission, in the submitter's context.
 */
static DECLARE_FAULT_ATTR(iio_dmabuf_fail_dma_error);
static DECLARE_FAULT_ATTR(iio_dmabuf_fail_dma_stall);
static struct dentry *iio_dmabuf_fail_dirs[2];

static void iio_dmabuf_dma_callback_error(void *param,
					  const struct dmaengine_result *result)
{
	struct dmaengine_result failed = { .result = DMA_TRANS_READ_FAILED };

	iio_dmabuf_dma_callback(param, &failed);
}

static void iio_dmabuf_dma_callback_lost(void *param,
					 const struct dmaengine_result *result)
{
}

static dma_async_tx_callback_result iio_dmabuf_dma_pick_callback(size_t len)
{
	if (should_fail(&iio_dmabuf_fail_dma_error, len))
		return iio_dmabuf_dma_callback_error;
	if (should_fail(&iio_dmabuf_fail_dma_stall, len))
		return iio_dmabuf_dma_callback_lost;
	return iio_dmabuf_dma_callback;
}

/* The fault attributes in debugfs (none without FAULT_INJECTION_DEBUG_FS) */
void iio_dmabuf_helper_fault_init(void)
{
	struct dentry *d;

#ifdef CONFIG_FAULT_INJECTION
	/* A line per injected fault, no stack dump (a test's log stays clean) */
	iio_dmabuf_fail_dma_error.verbose = 1;
	iio_dmabuf_fail_dma_stall.verbose = 1;
#endif
	d = fault_create_debugfs_attr("fail_iio_dmabuf_dma_error", NULL,
				      &iio_dmabuf_fail_dma_error);
	iio_dmabuf_fail_dirs[0] = IS_ERR(d) ? NULL : d;
	d = fault_create_debugfs_attr("fail_iio_dmabuf_dma_stall", NULL,
				      &iio_dmabuf_fail_dma_stall);
	iio_dmabuf_fail_dirs[1] = IS_ERR(d) ? NULL : d;
}

void iio_dmabuf_helper_fault_exit(void)
{
	debugfs_remove_recursive(iio_dmabuf_fail_dirs[0]);
	debugfs_remove_recursive(iio_dmabuf_fail_dirs[1]);
}

int iio_dmabuf_helper_dma_memcpy(void *chan, dma_addr_t dst, dma_addr_t src,
				 size_t len, void *batch)
{
	struct iio_dmabuf_dma_batch *b = batch;
	struct dma_async_tx_descriptor *tx;
	dma_cookie_t cookie;

	tx = dmaengine_prep_dma_memcpy(chan, dst, src, len,
				       DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
	if (!tx)
		return -EIO;
	tx->callback_result = iio_dmabuf_dma_pick_callback(len);
	tx->callback_param = b;
	atomic_inc(&b->pending);
	cookie = dmaengine_submit(tx);
	if (dma_submit_error(cookie)) {
		atomic_dec(&b->pending);
		return cookie;
	}
	b->bytes += len;
	b->count++;
	return 0;
}

void iio_dmabuf_helper_dma_issue_pending(void *chan)
{
	dma_async_issue_pending(chan);
}

/*
 * Waits for every descriptor of the batch: 0, the first error a callback
 * reported (-EIO), or -ETIMEDOUT. The channel's memcpy_count and
 * bytes_transferred (sysfs) count what completed without error.
 */
int iio_dmabuf_helper_dma_batch_wait(void *chan, void *batch,
				     unsigned int timeout_ms)
{
	struct iio_dmabuf_dma_batch *b = batch;
	struct dma_chan *c = chan;
	int ret;

	if (!atomic_dec_and_test(&b->pending) &&
	    !wait_for_completion_timeout(&b->done,
					 msecs_to_jiffies(timeout_ms)))
		return -ETIMEDOUT;
	ret = READ_ONCE(b->error);
	if (!ret && b->count && c->local) {
		this_cpu_add(c->local->memcpy_count, b->count);
		this_cpu_add(c->local->bytes_transferred, b->bytes);
	}
	return ret;
}

int iio_dmabuf_helper_dma_terminate_sync(void *chan)
{
	return dmaengine_terminate_sync(chan);
}

void *iio_dmabuf_helper_dma_alloc_coherent(struct device *dev, size_t size,
					   dma_addr_t *handle)
{
	return dma_alloc_coherent(dev, size, handle, GFP_KERNEL | __GFP_NOWARN);
}

void iio_dmabuf_helper_dma_free_coherent(struct device *dev, size_t size,
					 void *vaddr, dma_addr_t handle)
{
	dma_free_coherent(dev, size, vaddr, handle);
}
