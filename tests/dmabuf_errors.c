// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the DMABUF char device /dev/iio:deviceN-dmabuf0 and its
 * ioctls' error codes: ALLOC, mmap of the blocks, ENQUEUE (and its 0x93
 * alias), exclusivity with fileio, the device node, zeroed memory.
 */
#include <pthread.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <linux/iio/events.h>
#include <termios.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define MAXB		40

FIXTURE(err) {
	struct inst a, b;
	int cfd, cfd2, iofd;
	struct dmabuf_block blk[MAXB];
	int fds[8];		/* other fds to close in teardown */
	bool restore_max;
	long long max0;
};

FIXTURE_SETUP(err)
{
	int i;

	self->a.devnum = -1;
	self->b.devnum = -1;
	self->cfd = -1;
	self->cfd2 = -1;
	self->iofd = -1;
	self->restore_max = false;
	for (i = 0; i < MAXB; i++)
		dmabuf_block_init(&self->blk[i]);
	for (i = 0; i < 8; i++)
		self->fds[i] = -1;
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "dme"));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s", self->a.devnum,
		       strerror(-self->cfd));
	}
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 0, 0, 0));
}

FIXTURE_TEARDOWN(err)
{
	int i;

	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->b.devnum >= 0)
		inst_buffer_disable(&self->b);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->cfd2 >= 0)
		close(self->cfd2);
	if (self->iofd >= 0)
		close(self->iofd);
	for (i = 0; i < 8; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	for (i = 0; i < MAXB; i++)
		dmabuf_block_free(&self->blk[i]);
	inst_destroy(&self->a);
	inst_destroy(&self->b);
	if (self->restore_max)
		dmabuf_max_bytes_set(self->max0);
}

#define BLOCK(i, size, map) do {					\
	int _r = dmabuf_block_alloc(&self->blk[i], self->cfd, (size), (map)); \
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ALLOC %zu bytes: %s", (size_t)(size), strerror(-_r)); \
	}								\
} while (0)

/* ALLOC that must fail: closes the fd should it succeed */
static int alloc_fail(int cfd, uint64_t size, uint64_t resv)
{
	int fd = dmabuf_alloc_resv(cfd, size, resv);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

/* ------------------------------------------------------------------ */
/* ALLOC                                                               */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(err, alloc_size_zero, 30)
{
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, 0, 0));
}

TEST_F_TIMEOUT(err, alloc_resv_nonzero, 30)
{
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, 4096, 1));
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, 4096, 1ULL << 63));
}

TEST_F_TIMEOUT(err, alloc_too_big, 30)
{
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, DMABUF_MAX_BLOCK_SIZE + 1, 0));
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd,
				      DMABUF_MAX_BLOCK_SIZE + page_size(), 0));
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, 1ULL << 40, 0));
	EXPECT_EQ(-EINVAL, alloc_fail(self->cfd, UINT64_MAX, 0));
	/* exactly 16 MiB is fine */
	BLOCK(0, DMABUF_MAX_BLOCK_SIZE, false);
	EXPECT_EQ((long long)DMABUF_MAX_BLOCK_SIZE,
		  dmabuf_size(self->blk[0].fd));
}

/* The DMABUF fd: O_RDWR | O_CLOEXEC, size rounded up to a page */
TEST_F_TIMEOUT(err, alloc_fd_and_size, 30)
{
	const long long page = (long long)page_size();
	static const struct { uint64_t req; long long pages; } sz[] = {
		{ 1, 1 }, { 16, 1 }, { 4095, 1 }, { 4096, 1 }, { 4097, 2 },
		{ 65536, 16 }, { 1000 * 16, 4 },
	};
	unsigned int i;
	int fd, fl;

	for (i = 0; i < ARRAY_SIZE(sz); i++) {
		long long want = (long long)((sz[i].req + page - 1) / page) * page;

		fd = dmabuf_alloc(self->cfd, sz[i].req);
		ASSERT_LE(0, fd) {
			TH_LOG("ALLOC %" PRIu64 ": %s", sz[i].req,
			       strerror(-fd));
		}
		self->fds[0] = fd;
		if (page == 4096) {
			EXPECT_EQ(sz[i].pages * page, dmabuf_size(fd));
		}
		EXPECT_EQ(want, dmabuf_size(fd)) {
			TH_LOG("ALLOC %" PRIu64 " bytes", sz[i].req);
		}
		fl = fcntl(fd, F_GETFD);
		ASSERT_LE(0, fl);
		EXPECT_TRUE(fl & FD_CLOEXEC);
		fl = fcntl(fd, F_GETFL);
		ASSERT_LE(0, fl);
		EXPECT_EQ(O_RDWR, fl & O_ACCMODE);
		close(fd);
		self->fds[0] = -1;
	}
}

/* The per-buffer limit (dmabuf_max_bytes, default 64 MiB): ENOMEM */
TEST_F_TIMEOUT(err, alloc_limit_default, 120)
{
	const size_t page = page_size();
	long long max;
	int i, n, ret;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&max));
	EXPECT_EQ((long long)DMABUF_DEFAULT_MAX_BYTES, max);
	ASSERT_EQ(0, dmabuf_max_bytes_set(DMABUF_DEFAULT_MAX_BYTES)) {
		TH_LOG("%s not writable", DMABUF_PARAM_MAX_BYTES);
	}
	self->max0 = max;
	self->restore_max = max != (long long)DMABUF_DEFAULT_MAX_BYTES;

	n = DMABUF_DEFAULT_MAX_BYTES / DMABUF_MAX_BLOCK_SIZE;
	for (i = 0; i < n; i++)
		BLOCK(i, DMABUF_MAX_BLOCK_SIZE, false);
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, page, 0));
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, DMABUF_MAX_BLOCK_SIZE, 0));

	/* released (no fd, no mapping): it can be allocated again */
	dmabuf_block_free(&self->blk[1]);
	BLOCK(1, DMABUF_MAX_BLOCK_SIZE, false);
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, page, 0));

	/* a mapping keeps the memory allocated after its fd is closed */
	dmabuf_block_free(&self->blk[2]);
	BLOCK(2, DMABUF_MAX_BLOCK_SIZE, true);
	close(self->blk[2].fd);
	self->blk[2].fd = -1;
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, page, 0));
	ASSERT_EQ(0, munmap(self->blk[2].map, self->blk[2].size));
	self->blk[2].map = NULL;
	BLOCK(2, page, false);

	/* the limit is per buffer: another instance has its own */
	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "dme2"));
	self->cfd2 = inst_dmabuf_open(&self->b, O_RDWR);
	ASSERT_LE(0, self->cfd2);
	ret = dmabuf_alloc(self->cfd2, DMABUF_MAX_BLOCK_SIZE);
	EXPECT_LE(0, ret);
	if (ret >= 0)
		close(ret);
}

/* A lower dmabuf_max_bytes applies to the next ALLOC */
TEST_F_TIMEOUT(err, alloc_limit_param, 60)
{
	const size_t sz = 64 * 1024;
	long long max, v;
	int i;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&max));
	self->max0 = max;
	self->restore_max = true;
	ASSERT_EQ(0, dmabuf_max_bytes_set(4 * sz));
	ASSERT_EQ(0, dmabuf_max_bytes_get(&v));
	EXPECT_EQ((long long)(4 * sz), v);

	for (i = 0; i < 4; i++)
		BLOCK(i, sz, false);
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, sz, 0));
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, page_size(), 0));
	dmabuf_block_free(&self->blk[3]);
	BLOCK(3, sz, false);
	EXPECT_EQ(-ENOMEM, alloc_fail(self->cfd, page_size(), 0));

	/* raised again: allocations work */
	ASSERT_EQ(0, dmabuf_max_bytes_set(max));
	BLOCK(4, sz, false);
}

/* ------------------------------------------------------------------ */
/* mmap                                                                */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(err, mmap_beyond_size, 30)
{
	const size_t page = page_size(), size = 4 * page;
	void *p;
	int e;

	BLOCK(0, size, false);
	/* too long */
	p = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->blk[0].fd, 0);
	e = errno;
	EXPECT_EQ(MAP_FAILED, p);
	if (p == MAP_FAILED) {
		EXPECT_EQ(EINVAL, e);
	} else {
		munmap(p, size + page);
	}
	/* starting at the end */
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->blk[0].fd, size);
	e = errno;
	EXPECT_EQ(MAP_FAILED, p);
	if (p == MAP_FAILED) {
		EXPECT_EQ(EINVAL, e);
	} else {
		munmap(p, page);
	}
	/* inside, but running past the end */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->blk[0].fd, page);
	e = errno;
	EXPECT_EQ(MAP_FAILED, p);
	if (p == MAP_FAILED) {
		EXPECT_EQ(EINVAL, e);
	} else {
		munmap(p, size);
	}
	/* exactly the size works */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->blk[0].fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, size);
}

/* Partial mappings at page offsets see the same memory */
TEST_F_TIMEOUT(err, mmap_partial, 30)
{
	const size_t page = page_size(), size = 4 * page;
	uint8_t *whole, *p2, *p13;

	BLOCK(0, size, true);
	whole = self->blk[0].map;
	p2 = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
		  self->blk[0].fd, 2 * page);
	ASSERT_NE(MAP_FAILED, p2) {
		TH_LOG("mmap page 2: %s", strerror(errno));
	}
	p13 = mmap(NULL, 3 * page, PROT_READ, MAP_SHARED,
		   self->blk[0].fd, page);
	ASSERT_NE(MAP_FAILED, p13) {
		TH_LOG("mmap pages 1-3: %s", strerror(errno));
	}

	memset(whole, 0x11, size);
	memset(p2, 0x22, page);
	EXPECT_EQ(0x11, whole[2 * page - 1]);
	EXPECT_EQ(0x22, whole[2 * page]);
	EXPECT_EQ(0x22, whole[3 * page - 1]);
	EXPECT_EQ(0x11, whole[3 * page]);
	EXPECT_EQ(0x22, p13[page]);
	EXPECT_EQ(0x11, p13[0]);
	whole[2 * page + 7] = 0x33;
	EXPECT_EQ(0x33, p2[7]);
	EXPECT_EQ(0x33, p13[page + 7]);
	/* the memory is the DMABUF's: a new mapping of the fd sees it too */
	munmap(p2, page);
	p2 = mmap(NULL, page, PROT_READ, MAP_SHARED, self->blk[0].fd,
		  2 * page);
	ASSERT_NE(MAP_FAILED, p2);
	EXPECT_EQ(0x33, p2[7]);
	EXPECT_EQ(0x22, p2[8]);
	munmap(p2, page);
	munmap(p13, 3 * page);
}

/* A mapping outlives its fd, the char device and the IIO device */
TEST_F_TIMEOUT(err, mmap_survives_close_and_rmdir, 30)
{
	const size_t size = 64 * 1024;
	uint8_t *p;
	size_t i;

	BLOCK(0, size, true);
	p = self->blk[0].map;
	memset(p, 0x5c, size);
	ASSERT_EQ(0, close(self->blk[0].fd));
	self->blk[0].fd = -1;
	EXPECT_EQ(0x5c, p[size - 1]);
	p[1] = 0x01;

	ASSERT_EQ(0, inst_rmdir(INST_ADC, self->a.name));
	self->a.devnum = -1;
	EXPECT_EQ(0x01, p[1]);
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = -1;
	for (i = 2; i < size; i++)
		if (p[i] != 0x5c)
			break;
	EXPECT_EQ(size, i);
	memset(p, 0xc5, size);
	EXPECT_EQ(0xc5, p[size / 2]);
}

/* A fresh block is zeroed, also when it reuses freed, dirtied memory */
TEST_F_TIMEOUT(err, memory_zeroed, 60)
{
	const size_t size = 1 << 20;
	int round, i;
	size_t j;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < 4; i++) {
			const uint64_t *q;

			BLOCK(i, size, true);
			q = (const uint64_t *)self->blk[i].map;
			for (j = 0; j < size / 8; j++)
				if (q[j])
					break;
			EXPECT_EQ(size / 8, j) {
				TH_LOG("round %d block %d: byte %zu of a fresh block is not zero",
				       round, i, j * 8);
			}
			memset(self->blk[i].map, 0xa5, size);
		}
		for (i = 0; i < 4; i++)
			dmabuf_block_free(&self->blk[i]);
	}
}

/* ------------------------------------------------------------------ */
/* ENQUEUE                                                             */
/* ------------------------------------------------------------------ */

/* fds that are not DMABUFs */
TEST_F_TIMEOUT(err, enqueue_not_dmabuf, 30)
{
	int p[2], fd;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->fds[0] = p[0];
	self->fds[1] = p[1];
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, p[0], 4096));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, p[1], 4096));

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	self->fds[2] = fd;
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 4096));

	fd = memfd_create("notdmabuf", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	self->fds[3] = fd;
	ASSERT_EQ(0, ftruncate(fd, 4096));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 4096));

	/* the char device itself */
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->cfd, 4096));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue_cmd(self->cfd,
					      IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					      p[0], 0, 4096));
}

/* A DMABUF from udmabuf (a sealed memfd): not ours */
TEST_F_TIMEOUT(err, enqueue_foreign_udmabuf, 30)
{
	const size_t size = 4 * page_size();
	struct udmabuf_create c = { 0 };
	int dev, memfd, fd;

	/* configured in the test kernel (CONFIG_UDMABUF): must be there */
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev) {
		TH_LOG("/dev/udmabuf: %s", strerror(errno));
	}
	self->fds[0] = dev;
	memfd = memfd_create("udmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_LE(0, memfd);
	self->fds[1] = memfd;
	ASSERT_EQ(0, ftruncate(memfd, size));
	ASSERT_EQ(0, fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK));
	c.memfd = memfd;
	c.flags = UDMABUF_FLAGS_CLOEXEC;
	c.offset = 0;
	c.size = size;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	ASSERT_LE(0, fd) {
		TH_LOG("UDMABUF_CREATE: %s", strerror(errno));
	}
	self->fds[2] = fd;
	/* it is a DMABUF (SYNC works), just not one of ours */
	EXPECT_EQ(0, dmabuf_sync_start(fd));
	EXPECT_EQ(0, dmabuf_sync_end(fd));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, size));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, SCAN));
}

/* A DMABUF from the system DMA heap: not ours */
TEST_F_TIMEOUT(err, enqueue_foreign_dma_heap, 30)
{
	struct dma_heap_allocation_data d = { 0 };
	int heap;

	/* configured in the test kernel (DMABUF_HEAPS_SYSTEM): must be there */
	heap = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, heap) {
		TH_LOG("/dev/dma_heap/system: %s", strerror(errno));
	}
	self->fds[0] = heap;
	d.len = 4 * page_size();
	d.fd_flags = O_RDWR | O_CLOEXEC;
	ASSERT_EQ(0, ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d)) {
		TH_LOG("DMA_HEAP_IOCTL_ALLOC: %s", strerror(errno));
	}
	self->fds[1] = (int)d.fd;
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, (int)d.fd, d.len));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, (int)d.fd, SCAN));
}

/* fd numbers that are not open */
TEST_F_TIMEOUT(err, enqueue_bad_fd, 30)
{
	int fd;

	BLOCK(0, 4096, false);
	fd = dup(self->blk[0].fd);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));	/* fd is now a free number */
	EXPECT_EQ(-EBADF, dmabuf_enqueue(self->cfd, fd, 4096));
	EXPECT_EQ(-EBADF, dmabuf_enqueue_cmd(self->cfd,
					     IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					     0xffffffffu, 0, 4096));
	EXPECT_EQ(-EBADF, dmabuf_enqueue_cmd(self->cfd,
					     IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					     1000000, 0, 4096));
	/* a closed block */
	fd = self->blk[0].fd;
	dmabuf_block_free(&self->blk[0]);
	EXPECT_EQ(-EBADF, dmabuf_enqueue(self->cfd, fd, 4096));
}

TEST_F_TIMEOUT(err, enqueue_bytes_used_zero, 30)
{
	BLOCK(0, 4096, false);
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd, 0));
	/* the failed ENQUEUE queued nothing */
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
}

TEST_F_TIMEOUT(err, enqueue_bytes_used_too_big, 30)
{
	const size_t page = page_size();

	BLOCK(0, 2 * page, false);
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd,
					  2 * page + SCAN));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd,
					  4 * page));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd,
					  1ULL << 40));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd,
					  UINT64_MAX - (UINT64_MAX % SCAN)));
	/* exactly the size is fine */
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 2 * page));
}

/* bytes_used must hold whole scans of the current scan size */
TEST_F_TIMEOUT(err, enqueue_bytes_used_not_scans, 30)
{
	int fd;

	BLOCK(0, 4096, false);
	BLOCK(1, 4096, false);
	BLOCK(2, 4096, false);
	fd = self->blk[0].fd;
	/* 4 channels + timestamp: 16 bytes per scan */
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 8));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 24));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 4096 - 8));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 1));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, fd, 4096 - 16));

	/*
	 * Another channel set, with nothing queued (closing the char device
	 * cancels the block queued above).
	 */
	close(self->cfd);
	self->cfd = -1;
	/* channels 1 and 3: 4 bytes per scan */
	ASSERT_EQ(0, inst_set_channels(&self->a, ADC_CH(1) | ADC_CH(3)));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	fd = self->blk[1].fd;
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 4094));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 2));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, fd, 4092));

	close(self->cfd);
	self->cfd = -1;
	/* channel 2 + timestamp: 16 bytes per scan */
	ASSERT_EQ(0, inst_set_channels(&self->a, ADC_CH(2) | ADC_TS));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	fd = self->blk[2].fd;
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 4092));
	EXPECT_EQ(-EINVAL, dmabuf_enqueue(self->cfd, fd, 10));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, fd, 4080));
}

TEST_F_TIMEOUT(err, enqueue_bad_flags, 30)
{
	static const uint32_t bad[] = {
		IIO_BUFFER_DMABUF_CYCLIC, 2, 0x80000000u, 0xffffffffu,
	};
	unsigned int i;
	int fd;

	BLOCK(0, 4096, false);
	fd = self->blk[0].fd;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, dmabuf_enqueue_cmd(self->cfd,
					IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					fd, bad[i], 4096)) {
			TH_LOG("flags %#x", bad[i]);
		}
		EXPECT_EQ(-EINVAL, dmabuf_enqueue_cmd(self->cfd,
					IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					fd, bad[i], 4096)) {
			TH_LOG("flags %#x (0x93)", bad[i]);
		}
	}
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, fd, 4096));
}

/* A block already queued: EPERM, as mainline (through either ioctl number) */
TEST_F_TIMEOUT(err, enqueue_busy, 30)
{
	int fd;

	BLOCK(0, 4096, false);
	fd = self->blk[0].fd;
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, fd, 4096));
	EXPECT_EQ(-EPERM, dmabuf_enqueue(self->cfd, fd, 4096));
	EXPECT_EQ(-EPERM, dmabuf_enqueue_cmd(self->cfd,
					     IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					     fd, 0, 2048));
	/* through another fd of the same DMABUF */
	self->fds[0] = dup(fd);
	ASSERT_LE(0, self->fds[0]);
	EXPECT_EQ(-EPERM, dmabuf_enqueue(self->cfd, self->fds[0], 4096));

	/* and the other way round */
	BLOCK(1, 4096, false);
	fd = self->blk[1].fd;
	ASSERT_EQ(0, dmabuf_enqueue_cmd(self->cfd,
					IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					fd, 0, 4096));
	EXPECT_EQ(-EPERM, dmabuf_enqueue(self->cfd, fd, 4096));

	/* completed, it may be queued again */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(1, poll_events(self->blk[1].fd, POLLOUT, 10000));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[1].fd, 4096));
}

/* At most 32 blocks queued at once: ENOSPC */
TEST_F_TIMEOUT(err, enqueue_enospc, 30)
{
	int i;

	for (i = 0; i <= DMABUF_MAX_QUEUED; i++)
		BLOCK(i, 4096, false);
	for (i = 0; i < DMABUF_MAX_QUEUED; i++)
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[i].fd, 4096)) {
			TH_LOG("ENQUEUE #%d", i);
		}
	EXPECT_EQ(-ENOSPC, dmabuf_enqueue(self->cfd,
					  self->blk[DMABUF_MAX_QUEUED].fd,
					  4096));
	EXPECT_EQ(-ENOSPC, dmabuf_enqueue_cmd(self->cfd,
					      IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					      self->blk[DMABUF_MAX_QUEUED].fd,
					      0, 4096));
	/* once one completes, there is room again */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 10000));
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[DMABUF_MAX_QUEUED].fd,
				    4096));
}

/* A block allocated on another instance is accepted and filled */
TEST_F_TIMEOUT(err, enqueue_other_instance, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct ramp_check rc;
	struct block_wait w = {
		.enable = &self->a, .wait = BLOCK_WAIT_POLLOUT,
		.timeout_ms = 10000, .rc = &rc, .bytes = bytes,
	};
	int ret;

	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "dme2"));
	self->cfd2 = inst_dmabuf_open(&self->b, O_RDWR);
	ASSERT_LE(0, self->cfd2);
	ret = dmabuf_block_alloc(b, self->cfd2, bytes, true);
	ASSERT_EQ(0, ret);

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, b->fd, bytes));
	ramp_init(&rc, ADC_ALL_TS, false);
	BLOCK_WAIT_OK(&w, b);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ(1000U, rc.scans);
}

/* After rmdir, the still-open char device answers ENODEV */
TEST_F_TIMEOUT(err, enodev_after_rmdir, 30)
{
	int ret;

	BLOCK(0, 4096, true);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, self->a.name));
	self->a.devnum = -1;
	EXPECT_EQ(-ENODEV, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
	EXPECT_EQ(-ENODEV, dmabuf_enqueue_cmd(self->cfd,
					      IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					      self->blk[0].fd, 0, 4096));
	ret = alloc_fail(self->cfd, 4096, 0);
	EXPECT_EQ(-ENODEV, ret);
	/* the block is still usable memory */
	self->blk[0].map[0] = 1;
	EXPECT_EQ(1, self->blk[0].map[0]);
	EXPECT_EQ(0, close(self->cfd));
	self->cfd = -1;
}

/* ------------------------------------------------------------------ */
/* Other ioctls                                                        */
/* ------------------------------------------------------------------ */

/*
 * Any ioctl but ALLOC and ENQUEUE (and its alias): ENOTTY. Among them the
 * mainline ATTACH/DETACH (same 'i' numbers 0x92/0x93, another argument
 * size), the IIO device's own ioctls, dma-buf's and a terminal's; nothing
 * is allocated or queued by them.
 */
TEST_F_TIMEOUT(err, unknown_ioctl_enotty, 30)
{
	static const struct { unsigned long cmd; const char *name; } cmds[] = {
		{ IIO_BUFFER_DMABUF_ATTACH_IOCTL, "IIO_BUFFER_DMABUF_ATTACH_IOCTL" },
		{ IIO_BUFFER_DMABUF_DETACH_IOCTL, "IIO_BUFFER_DMABUF_DETACH_IOCTL" },
		{ IIO_BUFFER_GET_FD_IOCTL, "IIO_BUFFER_GET_FD_IOCTL" },
		{ IIO_GET_EVENT_FD_IOCTL, "IIO_GET_EVENT_FD_IOCTL" },
		{ _IOR('i', 0x92, struct iio_dmabuf_alloc_req), "ALLOC as _IOR" },
		{ _IOWR('i', 0x92, struct iio_dmabuf_alloc_req), "ALLOC as _IOWR" },
		{ _IOW('i', 0x92, __u64), "ALLOC with an 8-byte argument" },
		{ _IOW('i', 0x94, __u64), "ENQUEUE with an 8-byte argument" },
		{ _IOW('i', 0x95, struct iio_dmabuf), "_IOW('i', 0x95)" },
		{ _IO('i', 0x92), "_IO('i', 0x92)" },
		{ DMA_BUF_IOCTL_SYNC, "DMA_BUF_IOCTL_SYNC" },
		{ DMA_BUF_IOCTL_EXPORT_SYNC_FILE, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE" },
		{ TCGETS, "TCGETS" },
		{ FIONREAD, "FIONREAD" },
		{ 0, "0" },
		{ 0xffffffffu, "0xffffffff" },
	};
	uint8_t arg[64];
	unsigned int i;
	int ret, e;

	BLOCK(0, 4096, false);
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		memset(arg, 0, sizeof(arg));
		/* for the fd-taking ones: a valid DMABUF fd */
		memcpy(arg, &self->blk[0].fd, sizeof(int));
		ret = ioctl(self->cfd, cmds[i].cmd, arg);
		e = errno;
		if (ret > 0)
			close(ret);
		EXPECT_EQ(-1, ret) {
			TH_LOG("%s (%#lx) returned %d", cmds[i].name,
			       cmds[i].cmd, ret);
		}
		EXPECT_EQ(ENOTTY, e) {
			TH_LOG("%s (%#lx): %s", cmds[i].name, cmds[i].cmd,
			       strerror(e));
		}
	}
	/* nothing was queued: ENQUEUE of that block works (no EBUSY) */
	EXPECT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
}

/* ------------------------------------------------------------------ */
/* Exclusivity with fileio, the device node                            */
/* ------------------------------------------------------------------ */

/* One open at a time */
TEST_F_TIMEOUT(err, exclusive_open, 30)
{
	int fd;

	fd = inst_dmabuf_open(&self->a, O_RDWR);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EBUSY, fd);
	fd = inst_dmabuf_open(&self->a, O_RDONLY);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EBUSY, fd);

	close(self->cfd);
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	EXPECT_LE(0, self->cfd);
}

/* With the DMABUF char device open, read() on /dev/iio:deviceN: EBUSY */
TEST_F_TIMEOUT(err, exclusive_fileio_read, 60)
{
	struct ramp_check rc;
	uint8_t buf[64 * SCAN];
	ssize_t n;
	int ret, e;

	/*
	 * The IIO core sets the buffer's bytes per datum only when it enables
	 * the buffer (until then read() is a plain EOF): one fileio
	 * enable/disable cycle first, with the DMABUF char device closed.
	 */
	close(self->cfd);
	self->cfd = -1;
	/* non-blocking: a blocking read of an empty buffer might just wait */
	self->iofd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->iofd) {
		TH_LOG("open %s: %s", self->a.chrdev, strerror(-self->iofd));
	}
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	while (read(self->iofd, buf, sizeof(buf)) > 0)
		;	/* drain what that produced */
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	n = read(self->iofd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read: %s", n < 0 ? strerror(e) : "no error");
	}

	/* enabled in DMABUF mode: still EBUSY, with data being produced */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	BLOCK(0, 1000 * SCAN, false);
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 1000 * SCAN));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	sleep_ms(200);
	n = read(self->iofd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read: %s", n < 0 ? strerror(e) : "no error");
	}
	ASSERT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 10000));
	n = read(self->iofd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read: %s", n < 0 ? strerror(e) : "no error");
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));

	/* DMABUF char device closed: fileio works again */
	close(self->cfd);
	self->cfd = -1;
	close(self->iofd);
	self->iofd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->iofd);
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 10000, 4096, 64));
	ret = stream_read(self->iofd, &rc, 1000, 20, buf, sizeof(buf), NULL);
	EXPECT_EQ(0, ret) {
		TH_LOG("fileio after closing the DMABUF char device: %s; %s",
		       strerror(-ret), rc.failed ? rc.err : "");
	}
	EXPECT_EQ(0, rc.first_n);
}

/* Buffer enabled for fileio (char device closed): opening it is EBUSY */
TEST_F_TIMEOUT(err, exclusive_open_while_fileio, 30)
{
	int fd;

	close(self->cfd);
	self->cfd = -1;
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	fd = inst_dmabuf_open(&self->a, O_RDWR);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EBUSY, fd);

	/* also with a fileio reader attached */
	self->iofd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->iofd);
	fd = inst_dmabuf_open(&self->a, O_RDWR);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EBUSY, fd);

	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	EXPECT_LE(0, self->cfd);
}

/* The node: 0600 char device, a misc device child of the IIO device */
TEST_F_TIMEOUT(err, chardev_node, 30)
{
	char node[64], name[64], sys[PATH_MAX], link[PATH_MAX], dev[32];
	char iioname[32];
	unsigned int maj, min;
	struct stat st;
	const char *base;
	ssize_t n;
	double end;

	inst_dmabuf_path(&self->a, node, sizeof(node));
	inst_dmabuf_name(&self->a, name, sizeof(name));
	snprintf(iioname, sizeof(iioname), "iio:device%d", self->a.devnum);

	ASSERT_EQ(0, stat(node, &st)) {
		TH_LOG("stat %s: %s", node, strerror(errno));
	}
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600U, st.st_mode & 07777) {
		TH_LOG("%s has mode %04o", node, st.st_mode & 07777);
	}

	snprintf(sys, sizeof(sys), "/sys/class/misc/%s/device", name);
	n = readlink(sys, link, sizeof(link) - 1);
	ASSERT_LT(0, n) {
		TH_LOG("readlink %s: %s", sys, strerror(errno));
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	EXPECT_STREQ(iioname, base) {
		TH_LOG("%s -> %s", sys, link);
	}
	snprintf(sys, sizeof(sys), "/sys/class/misc/%s/dev", name);
	ASSERT_LT(0, sysfs_read(sys, dev, sizeof(dev)));
	ASSERT_EQ(2, sscanf(dev, "%u:%u", &maj, &min));
	EXPECT_EQ(makedev(maj, min), st.st_rdev);

	/* the IIO device's own node is unchanged */
	ASSERT_EQ(0, stat(self->a.chrdev, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));

	/* gone with the device */
	close(self->cfd);
	self->cfd = -1;
	ASSERT_EQ(0, inst_rmdir(INST_ADC, self->a.name));
	self->a.devnum = -1;
	end = now_s() + 2.0;
	while (path_exists(node) && now_s() < end)
		sleep_ms(10);
	EXPECT_FALSE(path_exists(node)) {
		TH_LOG("%s still exists after rmdir", node);
	}
	snprintf(sys, sizeof(sys), "/sys/class/misc/%s", name);
	EXPECT_FALSE(path_exists(sys)) {
		TH_LOG("%s still exists after rmdir", sys);
	}
}

/* Each instance has its own node; reopening after close works */
TEST_F_TIMEOUT(err, chardev_per_instance, 30)
{
	char n1[64], n2[64];
	int i;

	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "dme2"));
	inst_dmabuf_path(&self->a, n1, sizeof(n1));
	inst_dmabuf_path(&self->b, n2, sizeof(n2));
	EXPECT_STRNE(n1, n2);
	EXPECT_TRUE(path_exists(n2));
	self->cfd2 = inst_dmabuf_open(&self->b, O_RDWR);
	ASSERT_LE(0, self->cfd2);
	for (i = 0; i < 20; i++) {
		close(self->cfd2);
		self->cfd2 = inst_dmabuf_open(&self->b, O_RDWR);
		ASSERT_LE(0, self->cfd2) {
			TH_LOG("reopen #%d: %s", i, strerror(-self->cfd2));
		}
	}
}

TEST_HARNESS_MAIN
