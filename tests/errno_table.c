// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: every rejected input and its exact errno.
 *
 * Documentation/iio/dmabuf_api.rst, section "Rejected inputs", lists every
 * input the module's interfaces refuse (configfs, the seed char device
 * /dev/iio:deviceN-dmabuf0, read()/write() on /dev/iio:deviceN and the
 * buffer fd, the mainline ATTACH/ENQUEUE/DETACH, the sysfs attributes of
 * dmabuf_adc and dmabuf_dac, the module parameter): one row per input.
 * This program has exactly one test case per row, named as the row's
 * first column, and each asserts the row's errno.
 *
 * Three cases failed with the module of 2026-11-29 morning and found
 * its bugs (fixed since): enqueue_block_being_filled and
 * enqueue_cyclic_block_playing got EPERM instead of EBUSY,
 * write_not_whole_scans got EINVAL after the whole scans before the
 * fraction were taken.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NBLK		(DMABUF_MAX_QUEUED + 2)
#define NFDS		8
#define IIO_MAX_LENGTH	(1 << 22)	/* MAX_LENGTH: longest fileio buffer */

/* A mainline ENQUEUE run in a thread (it may wait for the core's 5 s) */
struct enqueuer {
	int bfd, dfd;
	size_t bytes;
	int ret;
	double t_start, t_done;
};

static void *enqueuer_fn(void *arg)
{
	struct enqueuer *e = arg;

	e->t_start = now_s();
	e->ret = iio_buffer_enqueue(e->bfd, e->dfd, 0, e->bytes);
	e->t_done = now_s();
	return NULL;
}

FIXTURE(et) {
	struct inst a;		/* the ADC every case has */
	struct inst b;		/* a second ADC, when a case makes one */
	struct inst d;		/* a DAC, when a case makes one */
	int cfd;		/* a's seed char device (open at setup) */
	int dcfd;		/* d's seed char device */
	int devfd, bfd;		/* /dev/iio:deviceN and its buffer fd */
	struct dmabuf_block blk[NBLK];
	int fds[NFDS];		/* other fds to close in teardown */
	bool restore_max;
	long long max0;
	bool thread;
	pthread_t th;
	struct enqueuer enq;
	uint8_t buf[64 * SCAN];
};

FIXTURE_SETUP(et)
{
	int i;

	self->a.devnum = -1;
	self->b.devnum = -1;
	self->d.devnum = -1;
	self->cfd = -1;
	self->dcfd = -1;
	self->devfd = -1;
	self->bfd = -1;
	self->restore_max = false;
	self->thread = false;
	for (i = 0; i < NBLK; i++)
		dmabuf_block_init(&self->blk[i]);
	for (i = 0; i < NFDS; i++)
		self->fds[i] = -1;
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "et"));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 0, 0, 0));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s", self->a.devnum,
		       strerror(-self->cfd));
	}
}

FIXTURE_TEARDOWN(et)
{
	int i;

	if (self->thread && join_within(self->th, 30))
		TH_LOG("the ENQUEUE thread did not end");
	if (self->bfd >= 0)
		close(self->bfd);
	if (self->devfd >= 0)
		close(self->devfd);
	for (i = 0; i < NFDS; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	for (i = 0; i < NBLK; i++)
		dmabuf_block_free(&self->blk[i]);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->dcfd >= 0)
		close(self->dcfd);
	inst_destroy(&self->a);
	inst_destroy(&self->b);
	inst_destroy(&self->d);
	if (self->restore_max)
		dmabuf_max_bytes_set(self->max0);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* The call (0 or a count on success, -errno on failure) fails with @e */
#define ERR(e, call) do {						\
	long _r = (long)(call);						\
	EXPECT_EQ(-(long)(e), _r) {					\
		TH_LOG("%s: %s, expected %s", #call,			\
		       _r < 0 ? strerror((int)-_r) : "accepted",	\
		       strerror(e));					\
	}								\
} while (0)

#define OK(call) do {							\
	long _r = (long)(call);						\
	ASSERT_LE(0, _r) {						\
		TH_LOG("%s: %s", #call, strerror((int)-_r));		\
	}								\
} while (0)

static void keep_fd(FIXTURE_DATA(et) *self, int fd)
{
	int i;

	for (i = 0; i < NFDS; i++) {
		if (self->fds[i] < 0) {
			self->fds[i] = fd;
			return;
		}
	}
	close(fd);	/* cannot happen: NFDS is enough for every case */
}

/* Block @i of @size bytes from the char device @cfd (mapped if @map) */
#define BLOCK(i, cfd, size, map) do {					\
	int _r = dmabuf_block_alloc(&self->blk[i], (cfd), (size), (map)); \
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ALLOC %zu bytes: %s", (size_t)(size), strerror(-_r)); \
	}								\
} while (0)

#define NEED_DAC() do {							\
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "etd"));	\
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 0, 0, 0));	\
} while (0)

#define DAC_CHARDEV() do {						\
	self->dcfd = inst_dmabuf_open(&self->d, O_RDWR);		\
	ASSERT_LE(0, self->dcfd) {					\
		TH_LOG("open the DAC's char device: %s",		\
		       strerror(-self->dcfd));				\
	}								\
} while (0)

#define CLOSE_CHARDEV() do {						\
	close(self->cfd);						\
	self->cfd = -1;							\
} while (0)

/* /dev/iio:deviceN of @dev (flags | O_CLOEXEC) into self->devfd */
#define OPEN_DEV(dev, flags) do {					\
	self->devfd = inst_open((dev), (flags));			\
	ASSERT_LE(0, self->devfd) {					\
		TH_LOG("open %s: %s", (dev)->chrdev,			\
		       strerror(-self->devfd));				\
	}								\
} while (0)

/* self->devfd and the buffer fd self->bfd of @dev */
#define OPEN_BFD(dev) do {						\
	OPEN_DEV((dev), O_RDWR);					\
	self->bfd = iio_buffer_get_fd(self->devfd, 0);			\
	ASSERT_LE(0, self->bfd) {					\
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s",			\
		       strerror(-self->bfd));				\
	}								\
} while (0)

#define ATTACH(i) do {							\
	int _r = iio_buffer_attach(self->bfd, self->blk[i].fd);	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ATTACH block %d: %s", (i), strerror(-_r));	\
	}								\
} while (0)

/* rmdir the ADC under test (its open files stay) */
#define REMOVE_ADC() do {						\
	ASSERT_EQ(0, inst_rmdir(INST_ADC, self->a.name));		\
	self->a.devnum = -1;						\
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

/* open() of a device's char device that must fail; 0 or -errno */
static int open_fail(const struct inst *dev)
{
	int fd = inst_dmabuf_open(dev, O_RDWR);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

/*
 * ioctl() with a raw argument that must fail: -errno, or 0 if it
 * succeeded (a file descriptor it returned, as ALLOC does, is closed).
 */
static long ioctl_err(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	if (ret < 0)
		return -errno;
	if (ret > 0)
		close(ret);
	return 0;
}

static long read_err(int fd, void *buf, size_t n)
{
	ssize_t r = read(fd, buf, n);

	return r < 0 ? -errno : (long)r;
}

static long write_err(int fd, const void *buf, size_t n)
{
	ssize_t r = write(fd, buf, n);

	return r < 0 ? -errno : (long)r;
}

static int mkdir_err(const char *path)
{
	if (mkdir(path, 0755))
		return -errno;
	rmdir(path);
	return 0;
}

/* One fileio enable/disable cycle: the IIO core sets bytes_per_datum */
#define FILEIO_CYCLE(dev) do {						\
	ASSERT_EQ(0, inst_start((dev), ADC_ALL_TS, 1000, 4096, 1));	\
	ASSERT_EQ(0, inst_buffer_disable(dev));				\
} while (0)

/* Write @val to the attribute @attr of @dev: fails with @e, value kept */
#define ATTR_ERR(e, dev, attr, val) do {				\
	char _before[128], _after[128];					\
	ASSERT_LE(0, inst_read((dev), (attr), _before, sizeof(_before))); \
	ERR((e), inst_write((dev), (attr), (val)));			\
	ASSERT_LE(0, inst_read((dev), (attr), _after, sizeof(_after)));	\
	EXPECT_STREQ(_before, _after) {					\
		TH_LOG("%s changed by the refused '%s'", (attr), (val)); \
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* configfs                                                            */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(et, cfs_mkdir_existing_name, 30)
{
	ERR(EEXIST, inst_mkdir(INST_ADC, self->a.name));
	NEED_DAC();
	ERR(EEXIST, inst_mkdir(INST_DAC, self->d.name));
}

TEST_F_TIMEOUT(et, cfs_mkdir_inside_instance, 30)
{
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/sub", self->a.cfs);
	ERR(EPERM, mkdir_err(path));
}

TEST_F_TIMEOUT(et, cfs_rmdir_unknown_name, 30)
{
	ERR(ENOENT, inst_rmdir(INST_ADC, "et_no_such_instance"));
	ERR(ENOENT, inst_rmdir(INST_DAC, "et_no_such_instance"));
}

/* ------------------------------------------------------------------ */
/* The seed char device /dev/iio:deviceN-dmabuf0                       */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(et, chardev_open_twice, 30)
{
	ERR(EBUSY, open_fail(&self->a));
}

TEST_F_TIMEOUT(et, chardev_open_fileio_enabled, 30)
{
	CLOSE_CHARDEV();
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	ERR(EBUSY, open_fail(&self->a));
}

TEST_F_TIMEOUT(et, chardev_read_write, 30)
{
	ERR(EINVAL, read_err(self->cfd, self->buf, SCAN));
	ERR(EINVAL, write_err(self->cfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, chardev_mmap, 30)
{
	void *p = mmap(NULL, page_size(), PROT_READ, MAP_SHARED, self->cfd, 0);
	int e = errno;

	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, page_size());
	else
		EXPECT_EQ(ENODEV, e);
}

TEST_F_TIMEOUT(et, chardev_unknown_ioctl, 30)
{
	uint8_t arg[64] = { 0 };

	BLOCK(0, self->cfd, 4096, false);
	memcpy(arg, &self->blk[0].fd, sizeof(int));
	ERR(ENOTTY, ioctl_err(self->cfd, _IOW('i', 0x95, struct iio_dmabuf),
			      arg));
	ERR(ENOTTY, ioctl_err(self->cfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, arg));
	ERR(ENOTTY, ioctl_err(self->cfd, IIO_BUFFER_GET_FD_IOCTL, arg));
	ERR(ENOTTY, ioctl_err(self->cfd, DMA_BUF_IOCTL_SYNC, arg));
}

TEST_F_TIMEOUT(et, alloc_size_zero, 30)
{
	ERR(EINVAL, alloc_fail(self->cfd, 0, 0));
}

TEST_F_TIMEOUT(et, alloc_size_above_16mib, 30)
{
	ERR(EINVAL, alloc_fail(self->cfd, DMABUF_MAX_BLOCK_SIZE + 1, 0));
	ERR(EINVAL, alloc_fail(self->cfd, UINT64_MAX, 0));
}

TEST_F_TIMEOUT(et, alloc_resv_nonzero, 30)
{
	ERR(EINVAL, alloc_fail(self->cfd, 4096, 1));
	ERR(EINVAL, alloc_fail(self->cfd, 4096, 1ULL << 63));
}

TEST_F_TIMEOUT(et, alloc_beyond_dmabuf_max_bytes, 30)
{
	ASSERT_EQ(0, dmabuf_max_bytes_get(&self->max0));
	self->restore_max = true;
	ASSERT_EQ(0, dmabuf_max_bytes_set(16 * page_size()));
	BLOCK(0, self->cfd, 16 * page_size(), false);
	ERR(ENOMEM, alloc_fail(self->cfd, 1, 0));
}

TEST_F_TIMEOUT(et, alloc_bad_pointer, 30)
{
	ERR(EFAULT, ioctl_err(self->cfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, NULL));
}

TEST_F_TIMEOUT(et, alloc_after_rmdir, 30)
{
	REMOVE_ADC();
	ERR(ENODEV, alloc_fail(self->cfd, 4096, 0));
}

TEST_F_TIMEOUT(et, enqueue_fd_not_open, 30)
{
	int fd;

	BLOCK(0, self->cfd, 4096, false);
	fd = dup(self->blk[0].fd);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));	/* a free fd number */
	ERR(EBADF, dmabuf_enqueue(self->cfd, fd, 4096));
	ERR(EBADF, dmabuf_enqueue_cmd(self->cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				      0xffffffffu, 0, 4096));
}

TEST_F_TIMEOUT(et, enqueue_not_a_dmabuf, 30)
{
	int p[2], fd;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	keep_fd(self, p[0]);
	keep_fd(self, p[1]);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, p[0], 4096));
	fd = memfd_create("et", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	keep_fd(self, fd);
	ASSERT_EQ(0, ftruncate(fd, 4096));
	ERR(EINVAL, dmabuf_enqueue(self->cfd, fd, 4096));
}

TEST_F_TIMEOUT(et, enqueue_foreign_dmabuf, 30)
{
	int fd, memfd;

	fd = udmabuf_alloc(4096, &memfd);
	ASSERT_LE(0, fd) {
		TH_LOG("udmabuf: %s", strerror(-fd));
	}
	keep_fd(self, fd);
	keep_fd(self, memfd);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, fd, 4096));
	fd = dma_heap_alloc(DMA_HEAP_SYSTEM, 4096);
	ASSERT_LE(0, fd) {
		TH_LOG("%s: %s", DMA_HEAP_SYSTEM, strerror(-fd));
	}
	keep_fd(self, fd);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, fd, 4096));
}

TEST_F_TIMEOUT(et, enqueue_unknown_flags, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	ERR(EINVAL, dmabuf_enqueue_cmd(self->cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				       self->blk[0].fd, 2, 4096));
	ERR(EINVAL, dmabuf_enqueue_cmd(self->cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				       self->blk[0].fd, 0x80000000u, 4096));
	/* on an output buffer, also next to the one valid flag */
	NEED_DAC();
	DAC_CHARDEV();
	ERR(EINVAL, dmabuf_enqueue_cmd(self->dcfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				       self->blk[0].fd,
				       0x100 | IIO_BUFFER_DMABUF_CYCLIC, 4096));
	/* refused: nothing queued, no fence */
	EXPECT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 0));
}

TEST_F_TIMEOUT(et, enqueue_cyclic_on_input, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	ERR(EINVAL, dmabuf_enqueue_cmd(self->cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				       self->blk[0].fd,
				       IIO_BUFFER_DMABUF_CYCLIC, 4096));
}

TEST_F_TIMEOUT(et, enqueue_bytes_used_zero, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd, 0));
}

TEST_F_TIMEOUT(et, enqueue_bytes_used_beyond_block, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096 + SCAN));
	ERR(EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd,
				   UINT64_MAX - (UINT64_MAX % SCAN)));
}

TEST_F_TIMEOUT(et, enqueue_bytes_used_not_whole_scans, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	ERR(EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd, SCAN + 8));
	ERR(EINVAL, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096 - 1));
}

TEST_F_TIMEOUT(et, enqueue_block_already_queued, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	/* buffer disabled: the block stays queued */
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
	ERR(EPERM, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
	ERR(EPERM, dmabuf_enqueue_cmd(self->cfd,
				      IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
				      self->blk[0].fd, 0, 2048));
}

/*
 * Block 0 (100 scans), then block 1 (4096 scans) at 1 kHz: 200 ms after
 * block 0 completed, the hardware is filling block 1, for 4 s.
 */
TEST_F_TIMEOUT(et, enqueue_block_being_filled, 30)
{
	const size_t bytes = 4096 * SCAN;
	long long overruns;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	BLOCK(0, self->cfd, 100 * SCAN, false);
	BLOCK(1, self->cfd, bytes, false);
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[0].fd, 100 * SCAN));
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[1].fd, bytes));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 10000));
	sleep_ms(200);
	ERR(EBUSY, dmabuf_enqueue(self->cfd, self->blk[1].fd, bytes));
	/* no scan was dropped: block 1 took every one after block 0 */
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &overruns));
	EXPECT_EQ(0, overruns);
	/* it was still being filled */
	EXPECT_EQ(0, poll_events(self->blk[1].fd, POLLOUT, 0));
}

/*
 * A cyclic block of 256 scans at 1 kHz, played for half a second: the
 * hardware plays it again and again until it is aborted.
 */
TEST_F_TIMEOUT(et, enqueue_cyclic_block_playing, 30)
{
	struct dac_counters c;

	NEED_DAC();
	ASSERT_EQ(0, inst_set_ll(&self->d, "sampling_frequency", 1000));
	DAC_CHARDEV();
	BLOCK(0, self->dcfd, 4096, false);
	ASSERT_EQ(0, dmabuf_enqueue_cmd(self->dcfd,
					IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					self->blk[0].fd,
					IIO_BUFFER_DMABUF_CYCLIC, 4096));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, dac_wait_consumed(&self->d, 300, 10000, &c)) {
		TH_LOG("the cyclic block played %lld scans in 10 s",
		       c.consumed);
	}
	ERR(EBUSY, dmabuf_enqueue(self->dcfd, self->blk[0].fd, 4096));
	ERR(EBUSY, dmabuf_enqueue_cmd(self->dcfd,
				      IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				      self->blk[0].fd,
				      IIO_BUFFER_DMABUF_CYCLIC, 4096));
	/* still playing: its fence signals only at the abort */
	EXPECT_EQ(0, poll_events(self->blk[0].fd, POLLOUT, 0));
}

TEST_F_TIMEOUT(et, enqueue_second_cyclic_block, 30)
{
	NEED_DAC();
	DAC_CHARDEV();
	BLOCK(0, self->dcfd, 4096, false);
	BLOCK(1, self->dcfd, 4096, false);
	ASSERT_EQ(0, dmabuf_enqueue_cmd(self->dcfd,
					IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					self->blk[0].fd,
					IIO_BUFFER_DMABUF_CYCLIC, 4096));
	ERR(EBUSY, dmabuf_enqueue_cmd(self->dcfd,
				      IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				      self->blk[1].fd,
				      IIO_BUFFER_DMABUF_CYCLIC, 4096));
}

/*
 * The IIO core's mainline ENQUEUE holds the DMABUF's reservation lock
 * while it waits (5 s) for the DMABUF's earlier fence: block 0 is queued
 * on a second ADC (disabled, so its fence stays pending) and queued there
 * again by a thread. Meanwhile a non-blocking seed ENQUEUE of that block
 * on the first ADC cannot take the lock.
 */
TEST_F_TIMEOUT(et, enqueue_reservation_locked_nonblock, 40)
{
	double t;
	int ret;

	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "etb"));
	ASSERT_EQ(0, inst_configure(&self->b, ADC_ALL_TS, 0, 0, 0));
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->b);
	ATTACH(0);
	ASSERT_EQ(0, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096));
	self->enq.bfd = self->bfd;
	self->enq.dfd = self->blk[0].fd;
	self->enq.bytes = 4096;
	ASSERT_EQ(0, pthread_create(&self->th, NULL, enqueuer_fn, &self->enq));
	self->thread = true;
	sleep_ms(1000);
	ASSERT_EQ(0, fd_set_nonblock(self->cfd, true));
	t = now_s();
	ret = dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096);
	ERR(EBUSY, ret);
	ASSERT_EQ(0, join_within(self->th, 20));
	self->thread = false;
	/* the lock was held all along: the thread waited the whole 5 s */
	ASSERT_EQ(-EBUSY, self->enq.ret) {
		TH_LOG("the mainline ENQUEUE holding the lock: %s",
		       strerror(-self->enq.ret));
	}
	ASSERT_LT(self->enq.t_start, t);
	ASSERT_LT(t, self->enq.t_done);
	ASSERT_LE(IIO_DMABUF_ENQUEUE_WAIT_MS / 1000.0 * 0.9,
		  self->enq.t_done - self->enq.t_start);
}

TEST_F_TIMEOUT(et, enqueue_32_blocks_queued, 30)
{
	int i;

	for (i = 0; i <= DMABUF_MAX_QUEUED; i++)
		BLOCK(i, self->cfd, 4096, false);
	for (i = 0; i < DMABUF_MAX_QUEUED; i++)
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd, self->blk[i].fd, 4096));
	ERR(ENOSPC, dmabuf_enqueue(self->cfd, self->blk[DMABUF_MAX_QUEUED].fd,
				   4096));
}

TEST_F_TIMEOUT(et, enqueue_after_rmdir, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	REMOVE_ADC();
	ERR(ENODEV, dmabuf_enqueue(self->cfd, self->blk[0].fd, 4096));
}

TEST_F_TIMEOUT(et, enqueue_bad_pointer, 30)
{
	ERR(EFAULT, ioctl_err(self->cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, NULL));
	ERR(EFAULT, ioctl_err(self->cfd, IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
			      (void *)16));
}

TEST_F_TIMEOUT(et, block_mmap_beyond_size, 30)
{
	const size_t page = page_size();
	void *p;
	int e;

	BLOCK(0, self->cfd, 4 * page, false);
	p = mmap(NULL, 5 * page, PROT_READ, MAP_SHARED, self->blk[0].fd, 0);
	e = errno;
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, 5 * page);
	else
		EXPECT_EQ(EINVAL, e);
}

/* ------------------------------------------------------------------ */
/* read() and write() on /dev/iio:deviceN and the buffer fd            */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(et, read_chardev_open, 30)
{
	CLOSE_CHARDEV();
	OPEN_DEV(&self->a, O_RDONLY | O_NONBLOCK);
	FILEIO_CYCLE(&self->a);
	while (read(self->devfd, self->buf, sizeof(self->buf)) > 0)
		;	/* what the cycle produced */
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	ERR(EBUSY, read_err(self->devfd, self->buf, sizeof(self->buf)));
}

TEST_F_TIMEOUT(et, read_dmabuf_attached, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	CLOSE_CHARDEV();
	FILEIO_CYCLE(&self->a);
	OPEN_BFD(&self->a);
	ASSERT_EQ(0, fd_set_nonblock(self->bfd, true));
	ATTACH(0);
	ERR(EBUSY, read_err(self->bfd, self->buf, sizeof(self->buf)));
}

TEST_F_TIMEOUT(et, read_shorter_than_scan, 30)
{
	CLOSE_CHARDEV();
	OPEN_DEV(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	sleep_ms(100);
	ERR(EINVAL, read_err(self->devfd, self->buf, SCAN / 2));
	ERR(EINVAL, read_err(self->devfd, self->buf, SCAN - 1));
}

TEST_F_TIMEOUT(et, read_output_buffer, 30)
{
	NEED_DAC();
	OPEN_DEV(&self->d, O_RDWR | O_NONBLOCK);
	ERR(EPERM, read_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, read_after_rmdir, 30)
{
	CLOSE_CHARDEV();
	OPEN_DEV(&self->a, O_RDONLY | O_NONBLOCK);
	REMOVE_ADC();
	ERR(ENODEV, read_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, write_input_buffer, 30)
{
	CLOSE_CHARDEV();
	OPEN_DEV(&self->a, O_RDWR | O_NONBLOCK);
	ERR(EPERM, write_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, write_chardev_open, 30)
{
	NEED_DAC();
	DAC_CHARDEV();
	OPEN_DEV(&self->d, O_WRONLY | O_NONBLOCK);
	ERR(EBUSY, write_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, write_shorter_than_scan, 30)
{
	NEED_DAC();
	OPEN_DEV(&self->d, O_WRONLY | O_NONBLOCK);
	ERR(EINVAL, write_err(self->devfd, self->buf, SCAN / 2));
	ERR(EINVAL, write_err(self->devfd, self->buf, SCAN - 1));
}

/*
 * A scan and a half: refused, and nothing of it is written (enabled,
 * the DAC plays nothing).
 */
TEST_F_TIMEOUT(et, write_not_whole_scans, 30)
{
	struct scan_layout l;
	struct dac_counters c;

	NEED_DAC();
	ASSERT_EQ(0, inst_set_ll(&self->d, "sampling_frequency", 1000));
	OPEN_DEV(&self->d, O_WRONLY | O_NONBLOCK);
	layout_init(&l, ADC_ALL_TS);
	ramp_fill(&l, self->buf, 0, 2);
	ERR(EINVAL, write_err(self->devfd, self->buf, SCAN + SCAN / 2));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	sleep_ms(500);
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed) {
		TH_LOG("the refused write() played %lld scans", c.consumed);
	}
}

TEST_F_TIMEOUT(et, write_length_above_max, 30)
{
	NEED_DAC();
	ASSERT_EQ(0, inst_set_ll(&self->d, "buffer0/length", IIO_MAX_LENGTH + 1));
	OPEN_DEV(&self->d, O_WRONLY | O_NONBLOCK);
	ERR(EINVAL, write_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, write_after_rmdir, 30)
{
	NEED_DAC();
	OPEN_DEV(&self->d, O_WRONLY | O_NONBLOCK);
	ASSERT_EQ(0, inst_rmdir(INST_DAC, self->d.name));
	self->d.devnum = -1;
	ERR(ENODEV, write_err(self->devfd, self->buf, SCAN));
}

TEST_F_TIMEOUT(et, getfd_no_such_buffer, 30)
{
	OPEN_DEV(&self->a, O_RDWR);
	ERR(ENODEV, iio_buffer_get_fd(self->devfd, 1));
	ERR(ENODEV, iio_buffer_get_fd(self->devfd, -1));
}

TEST_F_TIMEOUT(et, getfd_buffer_taken, 30)
{
	OPEN_BFD(&self->a);
	ERR(EBUSY, iio_buffer_get_fd(self->devfd, 0));
}

TEST_F_TIMEOUT(et, buffer_fd_unknown_ioctl, 30)
{
	struct iio_dmabuf_alloc_req req = { .size = 4096 };

	OPEN_BFD(&self->a);
	ERR(EINVAL, ioctl_err(self->bfd, _IO('i', 0x95), NULL));
	ERR(EINVAL, ioctl_err(self->bfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req));
}

/* ------------------------------------------------------------------ */
/* The mainline API on the buffer fd                                   */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(et, attach_fd_not_open, 30)
{
	int fd;

	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	fd = dup(self->blk[0].fd);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));
	ERR(EBADF, iio_buffer_attach(self->bfd, fd));
	ERR(EBADF, iio_buffer_attach(self->bfd, -1));
}

TEST_F_TIMEOUT(et, attach_not_a_dmabuf, 30)
{
	int p[2];

	OPEN_BFD(&self->a);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	keep_fd(self, p[0]);
	keep_fd(self, p[1]);
	ERR(EINVAL, iio_buffer_attach(self->bfd, p[0]));
	ERR(EINVAL, iio_buffer_attach(self->bfd, self->bfd));
}

TEST_F_TIMEOUT(et, attach_same_dmabuf_twice, 30)
{
	int fd;

	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EBUSY, iio_buffer_attach(self->bfd, self->blk[0].fd));
	fd = dup(self->blk[0].fd);
	ASSERT_LE(0, fd);
	keep_fd(self, fd);
	ERR(EBUSY, iio_buffer_attach(self->bfd, fd));
}

TEST_F_TIMEOUT(et, attach_fileio_enabled, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	CLOSE_CHARDEV();
	OPEN_BFD(&self->a);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	ERR(EBUSY, iio_buffer_attach(self->bfd, self->blk[0].fd));
}

TEST_F_TIMEOUT(et, attach_after_rmdir, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	REMOVE_ADC();
	ERR(ENODEV, iio_buffer_attach(self->bfd, self->blk[0].fd));
}

TEST_F_TIMEOUT(et, attach_bad_pointer, 30)
{
	OPEN_BFD(&self->a);
	ERR(EFAULT, ioctl_err(self->bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, NULL));
}

TEST_F_TIMEOUT(et, ml_enqueue_not_attached, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ERR(EPERM, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096));
}

TEST_F_TIMEOUT(et, ml_enqueue_bytes_used_zero, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 0));
}

TEST_F_TIMEOUT(et, ml_enqueue_bytes_used_beyond_dmabuf, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0,
				       4096 + SCAN));
}

TEST_F_TIMEOUT(et, ml_enqueue_not_whole_scans, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0,
				       SCAN + 8));
	/* the fence the core had made signals: the block is idle */
	EXPECT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 1000));
}

TEST_F_TIMEOUT(et, ml_enqueue_unknown_flags, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 2, 4096));
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd,
				       0x80000000u, 4096));
}

TEST_F_TIMEOUT(et, ml_enqueue_cyclic_on_input, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ERR(EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd,
				       IIO_BUFFER_DMABUF_CYCLIC, 4096));
}

/* A queued block's fence is pending (buffer disabled) */
TEST_F_TIMEOUT(et, ml_enqueue_fence_pending, 40)
{
	double t;
	long r;

	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	ASSERT_EQ(0, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096));
	t = now_s();
	r = iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096);
	t = now_s() - t;
	ERR(EBUSY, r);
	EXPECT_LE(IIO_DMABUF_ENQUEUE_WAIT_MS / 1000.0 * 0.9, t);
	ASSERT_EQ(0, fd_set_nonblock(self->bfd, true));
	t = now_s();
	r = iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096);
	t = now_s() - t;
	ERR(EBUSY, r);
	EXPECT_GT(IIO_DMABUF_ENQUEUE_WAIT_MS / 2000.0, t);
}

TEST_F_TIMEOUT(et, ml_enqueue_32_blocks_queued, 30)
{
	int i;

	OPEN_BFD(&self->a);
	for (i = 0; i <= DMABUF_MAX_QUEUED; i++) {
		BLOCK(i, self->cfd, 4096, false);
		ATTACH(i);
	}
	for (i = 0; i < DMABUF_MAX_QUEUED; i++)
		ASSERT_EQ(0, iio_buffer_enqueue(self->bfd, self->blk[i].fd, 0,
						4096));
	ERR(ENOSPC, iio_buffer_enqueue(self->bfd,
				       self->blk[DMABUF_MAX_QUEUED].fd, 0,
				       4096));
}

TEST_F_TIMEOUT(et, ml_enqueue_second_cyclic_block, 30)
{
	NEED_DAC();
	BLOCK(0, self->cfd, 4096, false);
	BLOCK(1, self->cfd, 4096, false);
	OPEN_BFD(&self->d);
	ATTACH(0);
	ATTACH(1);
	ASSERT_EQ(0, iio_buffer_enqueue(self->bfd, self->blk[0].fd,
					IIO_BUFFER_DMABUF_CYCLIC, 4096));
	ERR(EBUSY, iio_buffer_enqueue(self->bfd, self->blk[1].fd,
				      IIO_BUFFER_DMABUF_CYCLIC, 4096));
}

TEST_F_TIMEOUT(et, ml_enqueue_after_rmdir, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ATTACH(0);
	REMOVE_ADC();
	ERR(ENODEV, iio_buffer_enqueue(self->bfd, self->blk[0].fd, 0, 4096));
}

TEST_F_TIMEOUT(et, detach_not_attached, 30)
{
	BLOCK(0, self->cfd, 4096, false);
	OPEN_BFD(&self->a);
	ERR(EPERM, iio_buffer_detach(self->bfd, self->blk[0].fd));
}

TEST_F_TIMEOUT(et, detach_not_a_dmabuf, 30)
{
	int p[2];

	OPEN_BFD(&self->a);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	keep_fd(self, p[0]);
	keep_fd(self, p[1]);
	ERR(EINVAL, iio_buffer_detach(self->bfd, p[0]));
}

TEST_F_TIMEOUT(et, detach_fd_not_open, 30)
{
	OPEN_BFD(&self->a);
	ERR(EBADF, iio_buffer_detach(self->bfd, -1));
	ERR(EBADF, iio_buffer_detach(self->bfd, 1000000));
}

/* ------------------------------------------------------------------ */
/* sysfs attributes of dmabuf_adc and dmabuf_dac                       */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(et, sampling_frequency_out_of_range, 30)
{
	static const char *const bad[] = { "0", "-1", "500000001" };
	unsigned int i;

	NEED_DAC();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ATTR_ERR(EINVAL, &self->a, "sampling_frequency", bad[i]);
		ATTR_ERR(EINVAL, &self->d, "sampling_frequency", bad[i]);
	}
}

TEST_F_TIMEOUT(et, sampling_frequency_not_an_integer, 30)
{
	static const char *const bad[] = { "abc", "1000.5", "10k", "\n" };
	unsigned int i;

	NEED_DAC();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ATTR_ERR(EINVAL, &self->a, "sampling_frequency", bad[i]);
		ATTR_ERR(EINVAL, &self->d, "sampling_frequency", bad[i]);
	}
}

TEST_F_TIMEOUT(et, sampling_frequency_enabled, 30)
{
	CLOSE_CHARDEV();
	NEED_DAC();
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ATTR_ERR(EBUSY, &self->a, "sampling_frequency", "2000");
	ATTR_ERR(EBUSY, &self->d, "sampling_frequency", "2000");
}

TEST_F_TIMEOUT(et, waveform_unknown, 30)
{
	ATTR_ERR(EINVAL, &self->a, "waveform", "square");
	ATTR_ERR(EINVAL, &self->a, "waveform", "ramp ");
}

TEST_F_TIMEOUT(et, waveform_enabled, 30)
{
	CLOSE_CHARDEV();
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	ATTR_ERR(EBUSY, &self->a, "waveform", "sine");
}

TEST_F_TIMEOUT(et, in_voltage_raw_write, 30)
{
	char attr[64];
	int c;

	for (c = 0; c < ADC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "in_voltage%d_raw", c);
		ERR(EINVAL, inst_write(&self->a, attr, "0"));
	}
}

TEST_F_TIMEOUT(et, voltage_scale_write, 30)
{
	NEED_DAC();
	ATTR_ERR(EINVAL, &self->a, "in_voltage_scale", ADC_SCALE_STR);
	ATTR_ERR(EINVAL, &self->d, "out_voltage_scale", DAC_SCALE_STR);
}

TEST_F_TIMEOUT(et, counter_write, 30)
{
	NEED_DAC();
	ATTR_ERR(EACCES, &self->a, "overruns", "0");
	ATTR_ERR(EACCES, &self->d, "scans_consumed", "0");
	ATTR_ERR(EACCES, &self->d, "mismatches", "0");
	ATTR_ERR(EACCES, &self->d, "underruns", "0");
}

TEST_F_TIMEOUT(et, available_write, 30)
{
	NEED_DAC();
	ATTR_ERR(EACCES, &self->a, "sampling_frequency_available", "1");
	ATTR_ERR(EACCES, &self->a, "waveform_available", "ramp");
	ATTR_ERR(EACCES, &self->d, "sampling_frequency_available", "1");
}

TEST_F_TIMEOUT(et, out_voltage_raw_out_of_range, 30)
{
	NEED_DAC();
	ATTR_ERR(EINVAL, &self->d, "out_voltage0_raw", "32768");
	ATTR_ERR(EINVAL, &self->d, "out_voltage3_raw", "-32769");
}

TEST_F_TIMEOUT(et, out_voltage_raw_not_an_integer, 30)
{
	NEED_DAC();
	ATTR_ERR(EINVAL, &self->d, "out_voltage1_raw", "abc");
	ATTR_ERR(EINVAL, &self->d, "out_voltage2_raw", "1.5");
}

TEST_F_TIMEOUT(et, out_voltage_raw_enabled, 30)
{
	NEED_DAC();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ATTR_ERR(EBUSY, &self->d, "out_voltage0_raw", "7");
}

TEST_F_TIMEOUT(et, buffer_length_not_a_number, 30)
{
	NEED_DAC();
	ATTR_ERR(EINVAL, &self->a, "buffer0/length", "abc");
	ATTR_ERR(EINVAL, &self->a, "buffer0/length", "-1");
	ATTR_ERR(EINVAL, &self->d, "buffer0/length", "1.5");
}

TEST_F_TIMEOUT(et, buffer_length_enabled, 30)
{
	NEED_DAC();
	ASSERT_EQ(0, inst_buffer_enable(&self->a));	/* DMABUF session */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));	/* fileio */
	ATTR_ERR(EBUSY, &self->a, "buffer0/length", "2048");
	ATTR_ERR(EBUSY, &self->d, "buffer0/length", "2048");
}

TEST_F_TIMEOUT(et, buffer_watermark_zero, 30)
{
	ATTR_ERR(EINVAL, &self->a, "buffer0/watermark", "0");
}

TEST_F_TIMEOUT(et, buffer_watermark_above_length, 30)
{
	ASSERT_EQ(0, inst_set(&self->a, "buffer0/length", "1024"));
	ATTR_ERR(EINVAL, &self->a, "buffer0/watermark", "1025");
}

TEST_F_TIMEOUT(et, buffer_watermark_enabled, 30)
{
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ATTR_ERR(EBUSY, &self->a, "buffer0/watermark", "16");
}

TEST_F_TIMEOUT(et, buffer_enable_not_a_boolean, 30)
{
	ATTR_ERR(EINVAL, &self->a, "buffer0/enable", "2");
	ATTR_ERR(EINVAL, &self->a, "buffer0/enable", "abc");
}

TEST_F_TIMEOUT(et, buffer_enable_no_channel, 30)
{
	NEED_DAC();
	ASSERT_EQ(0, inst_set_channels(&self->a, 0));
	ASSERT_EQ(0, inst_set_channels(&self->d, 0));
	ATTR_ERR(EINVAL, &self->a, "buffer0/enable", "1");
	ATTR_ERR(EINVAL, &self->d, "buffer0/enable", "1");
}

TEST_F_TIMEOUT(et, buffer_enable_length_zero, 30)
{
	CLOSE_CHARDEV();
	NEED_DAC();
	ASSERT_EQ(0, inst_set(&self->a, "buffer0/length", "0"));
	ASSERT_EQ(0, inst_set(&self->d, "buffer0/length", "0"));
	ATTR_ERR(EINVAL, &self->a, "buffer0/enable", "1");
	ATTR_ERR(EINVAL, &self->d, "buffer0/enable", "1");
}

TEST_F_TIMEOUT(et, buffer_enable_length_above_max, 30)
{
	CLOSE_CHARDEV();
	NEED_DAC();
	ASSERT_EQ(0, inst_set_ll(&self->a, "buffer0/length", IIO_MAX_LENGTH + 1));
	ASSERT_EQ(0, inst_set_ll(&self->d, "buffer0/length", IIO_MAX_LENGTH + 1));
	ATTR_ERR(EINVAL, &self->a, "buffer0/enable", "1");
	ATTR_ERR(EINVAL, &self->d, "buffer0/enable", "1");
}

TEST_F_TIMEOUT(et, scan_element_not_a_boolean, 30)
{
	NEED_DAC();
	ATTR_ERR(EINVAL, &self->a, "buffer0/in_voltage0_en", "2");
	ATTR_ERR(EINVAL, &self->a, "buffer0/in_timestamp_en", "x");
	ATTR_ERR(EINVAL, &self->d, "buffer0/out_voltage0_en", "2");
}

TEST_F_TIMEOUT(et, scan_element_enabled, 30)
{
	NEED_DAC();
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ATTR_ERR(EBUSY, &self->a, "buffer0/in_voltage0_en", "0");
	ATTR_ERR(EBUSY, &self->a, "buffer0/in_timestamp_en", "0");
	ATTR_ERR(EBUSY, &self->d, "buffer0/out_voltage1_en", "0");
}

TEST_F_TIMEOUT(et, timestamp_clock_unknown, 30)
{
	ATTR_ERR(EINVAL, &self->a, "current_timestamp_clock", "no_such_clock");
}

TEST_F_TIMEOUT(et, param_dmabuf_max_bytes_not_a_number, 30)
{
	long long before, after;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&before));
	ERR(EINVAL, sysfs_write(DMABUF_PARAM_MAX_BYTES, "abc"));
	ERR(EINVAL, sysfs_write(DMABUF_PARAM_MAX_BYTES, "-1"));
	ASSERT_EQ(0, dmabuf_max_bytes_get(&after));
	EXPECT_EQ(before, after);
}

TEST_HARNESS_MAIN
