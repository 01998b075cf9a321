// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the mainline IIO DMABUF API (Linux 6.11+), served by the IIO
 * core on the buffer file descriptor (IIO_BUFFER_GET_FD_IOCTL):
 * ATTACH / ENQUEUE / DETACH of DMABUFs from udmabuf, the system DMA heap
 * and the module's own ALLOC; streaming, the ioctls' error codes, DETACH
 * while queued, fence errors on disable and rmdir, exclusivity with fileio
 * and ATTACH/DETACH cycles.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

/* Instances this program leaves behind fail it (lib/inst.h) */
LEFTOVER_INSTANCES_FAIL()

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
/*
 * A call that must not wait for the core's 5 s ENQUEUE timeout returns
 * well within half of it, even on a loaded machine.
 */
#define NO_WAIT_S	(IIO_DMABUF_ENQUEUE_WAIT_MS / 2000.0)
#define MAXB		8
#define NFDS		8

/* ------------------------------------------------------------------ */
/* DMABUF sources                                                      */
/* ------------------------------------------------------------------ */

enum src_kind {
	SRC_UDMABUF,
	SRC_HEAP,
	SRC_OWN,	/* ALLOC on /dev/iio:deviceN-dmabuf0 */
};

static const char *const src_names[] = {
	[SRC_UDMABUF] = "udmabuf", [SRC_HEAP] = "dma_heap/system",
	[SRC_OWN] = "iio_dmabuf ALLOC",
};

/*
 * A DMABUF and a CPU mapping of its memory: the DMABUF's own mapping, or
 * for udmabuf the memfd's (the same pages).
 */
struct xblk {
	struct dmabuf_block b;	/* b.fd: the DMABUF; b.map, b.size */
	int memfd;		/* udmabuf only, else -1 */
	bool attached;
};

static void xblk_init(struct xblk *x)
{
	dmabuf_block_init(&x->b);
	x->memfd = -1;
	x->attached = false;
}

static void xblk_free(struct xblk *x)
{
	dmabuf_block_free(&x->b);
	if (x->memfd >= 0)
		close(x->memfd);
	xblk_init(x);
}

/*
 * Every source is configured in the test kernel (qemu/kernel.config): a
 * missing /dev/udmabuf or /dev/dma_heap/system fails the test that needs
 * it (the allocation's error is logged), never switches to another
 * source and is never a skip. Tests that need any DMABUF use the system
 * heap, as libiio 1.x does.
 */
#define SRC_DEFAULT	SRC_HEAP

/*
 * Allocate @n DMABUFs of @size bytes (rounded up to a page) from @k into
 * @x[0..n-1], mapped read/write. For SRC_OWN the module's DMABUF char
 * device is opened for the ALLOCs and closed again (closing it cancels
 * blocks queued through it; none are: only the mainline path is used).
 * Returns 0 or -errno; @what says which step failed.
 */
static int xblk_alloc_n(struct xblk *x, int n, enum src_kind k,
			const struct inst *a, size_t size, char *what,
			size_t whatlen)
{
	const size_t page = page_size();
	int i, ret = 0, cfd = -1;
	void *p;

	size = (size + page - 1) / page * page;
	if (k == SRC_OWN) {
		cfd = inst_dmabuf_open(a, O_RDWR);
		if (cfd < 0) {
			snprintf(what, whatlen, "open DMABUF char device");
			return cfd;
		}
	}
	for (i = 0; i < n && !ret; i++) {
		xblk_init(&x[i]);
		switch (k) {
		case SRC_OWN:
			ret = dmabuf_block_alloc(&x[i].b, cfd, size, true);
			if (ret)
				snprintf(what, whatlen, "ALLOC %zu bytes", size);
			continue;
		case SRC_UDMABUF:
			ret = udmabuf_alloc(size, &x[i].memfd);
			if (ret < 0) {
				snprintf(what, whatlen, "UDMABUF_CREATE %zu bytes",
					 size);
				continue;
			}
			break;
		case SRC_HEAP:
			ret = dma_heap_alloc(DMA_HEAP_SYSTEM, size);
			if (ret < 0) {
				snprintf(what, whatlen,
					 "DMA_HEAP_IOCTL_ALLOC %zu bytes", size);
				continue;
			}
			break;
		}
		x[i].b.fd = ret;
		x[i].b.size = size;
		ret = 0;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 k == SRC_UDMABUF ? x[i].memfd : x[i].b.fd, 0);
		if (p == MAP_FAILED) {
			ret = -errno;
			snprintf(what, whatlen, "mmap %s", src_names[k]);
			continue;
		}
		x[i].b.map = p;
	}
	if (cfd >= 0)
		close(cfd);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Attachments and fences, as the dma-buf core shows them              */
/* ------------------------------------------------------------------ */


/*
 * The fence of a sync_file holding one fence of the IIO core: its name
 * is "iio-iio<context>-<seqno>" (driver and timeline "iio"). 0 or -errno.
 */
static int iio_fence_id(int sfd, unsigned long long *context,
			unsigned long long *seqno, char *name, size_t size)
{
	struct sync_file_info info;
	char tail;

	memset(&info, 0, sizeof(info));
	if (ioctl(sfd, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	snprintf(name, size, "%.32s", info.name);
	if (info.num_fences != 1 ||
	    sscanf(info.name, "iio-iio%llu-%llu%c", context, seqno,
		   &tail) != 2)
		return -EPROTO;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Common context: an instance, /dev/iio:deviceN, buffer0's fd, blocks */
/* ------------------------------------------------------------------ */

struct ml_ctx {
	struct inst a;
	int devfd;		/* /dev/iio:deviceN */
	int bfd;		/* buffer0's fd (IIO_BUFFER_GET_FD_IOCTL) */
	struct xblk x[MAXB];
	int sfd[MAXB];		/* sync_files */
	int fds[NFDS];		/* other fds to close */
};

static void ml_init(struct ml_ctx *c)
{
	int i;

	c->a.devnum = -1;
	c->devfd = -1;
	c->bfd = -1;
	for (i = 0; i < MAXB; i++) {
		xblk_init(&c->x[i]);
		c->sfd[i] = -1;
	}
	for (i = 0; i < NFDS; i++)
		c->fds[i] = -1;
}

/* Create the instance, open it, get buffer0's fd. 0 or -errno. */
static int ml_open(struct ml_ctx *c, const char *prefix, char *what,
		   size_t whatlen)
{
	int ret;

	ret = inst_create_unique(&c->a, INST_ADC, prefix);
	if (ret) {
		snprintf(what, whatlen, "create instance");
		return ret;
	}
	ret = inst_configure(&c->a, ADC_ALL_TS, 0, 0, 0);
	if (ret) {
		snprintf(what, whatlen, "configure channels");
		return ret;
	}
	c->devfd = inst_open(&c->a, O_RDWR);
	if (c->devfd < 0) {
		snprintf(what, whatlen, "open %s", c->a.chrdev);
		return c->devfd;
	}
	c->bfd = iio_buffer_get_fd(c->devfd, 0);
	if (c->bfd < 0) {
		snprintf(what, whatlen, "IIO_BUFFER_GET_FD_IOCTL(0)");
		return c->bfd;
	}
	return 0;
}

static void ml_close(struct ml_ctx *c)
{
	int i;

	/* disabling cancels whatever is still queued */
	if (c->a.devnum >= 0)
		inst_buffer_disable(&c->a);
	/* closing the buffer fd detaches every DMABUF still attached */
	if (c->bfd >= 0)
		close(c->bfd);
	if (c->devfd >= 0)
		close(c->devfd);
	for (i = 0; i < MAXB; i++) {
		if (c->sfd[i] >= 0)
			close(c->sfd[i]);
		xblk_free(&c->x[i]);
	}
	for (i = 0; i < NFDS; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	inst_destroy(&c->a);
	ml_init(c);
}

/* ------------------------------------------------------------------ */
/* The fixture of most tests                                           */
/* ------------------------------------------------------------------ */

FIXTURE(ml) {
	struct ml_ctx c;
	struct ml_ctx c2;	/* a second instance, for some tests */
	enum src_kind src;
};

FIXTURE_SETUP(ml)
{
	char what[128] = "";
	int ret;

	ml_init(&self->c);
	ml_init(&self->c2);
	self->src = SRC_DEFAULT;
	ret = ml_open(&self->c, "mln", what, sizeof(what));
	if (ret)	/* no teardown after a failed setup: clean up here */
		ml_close(&self->c);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s: %s", what, strerror(-ret));
	}
}

FIXTURE_TEARDOWN(ml)
{
	ml_close(&self->c2);
	ml_close(&self->c);
}

/* Allocate @n blocks of @size from the default source into c.x[] */
#define BLOCKS(n, size) do {						\
	char _w[128] = "";						\
	int _r = xblk_alloc_n(self->c.x, (n), self->src, &self->c.a,	\
			      (size), _w, sizeof(_w));			\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("%s (%s): %s", _w, src_names[self->src],		\
		       strerror(-_r));					\
	}								\
} while (0)

#define ATTACH_OK(i) do {						\
	int _r = iio_buffer_attach(self->c.bfd, self->c.x[i].b.fd);	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ATTACH block %d (%s): %s", (i),			\
		       src_names[self->src], strerror(-_r));		\
	}								\
	self->c.x[i].attached = true;					\
} while (0)

#define ENQUEUE_OK(i, bytes) do {					\
	int _r = iio_buffer_enqueue(self->c.bfd, self->c.x[i].b.fd, 0,	\
				    (bytes));				\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE block %d, %zu bytes: %s", (i),		\
		       (size_t)(bytes), strerror(-_r));			\
	}								\
} while (0)

/* Export a (WRITE) sync_file of block @i into c.sfd[@i] (closing the old) */
#define EXPORT_OK(i) do {						\
	if (self->c.sfd[i] >= 0)					\
		close(self->c.sfd[i]);					\
	self->c.sfd[i] = dmabuf_export_sync_file(self->c.x[i].b.fd,	\
						 DMA_BUF_SYNC_WRITE);	\
	ASSERT_LE(0, self->c.sfd[i]) {					\
		TH_LOG("EXPORT_SYNC_FILE block %d: %s", (i),		\
		       strerror(-self->c.sfd[i]));			\
	}								\
} while (0)

/*
 * Enable c.a (if @en), then block @i's fence (c.sfd[@i]) signals within
 * @ms without error; with @rcp, the block's first @n bytes continue that
 * ramp (block_wait_check()).
 */
#define FILLED(i, en, ms, rcp, n) do {					\
	struct block_wait _w = {					\
		.enable = (en) ? &self->c.a : NULL,			\
		.wait = BLOCK_WAIT_SYNC_FILE, .sfd = self->c.sfd[i],	\
		.timeout_ms = (ms), .rc = (rcp), .bytes = (n),		\
	};								\
	BLOCK_WAIT_OK(&_w, &self->c.x[i].b);				\
} while (0)

/* ------------------------------------------------------------------ */
/* 1. Streaming from each DMABUF source                                */
/* ------------------------------------------------------------------ */

/*
 * The point is continuity across blocks and their reuse, not the rate:
 * 8 blocks of 2048 scans at 4 kHz, each used twice (32768 scans, ~8 s).
 * While one block is checked 7 are queued: 3.5 s of slack before the
 * ADC could run out of blocks on a loaded machine.
 */
#define ST_FREQ		4000
#define ST_SCANS	2048
#define ST_NBLK		8
#define ST_TOTAL	16	/* blocks checked */

FIXTURE(stream) {
	struct ml_ctx c;
};

FIXTURE_VARIANT(stream) {
	enum src_kind src;
};

FIXTURE_VARIANT_ADD(stream, udmabuf) {
	.src = SRC_UDMABUF,
};

FIXTURE_VARIANT_ADD(stream, heap) {
	.src = SRC_HEAP,
};

FIXTURE_VARIANT_ADD(stream, own_alloc) {
	.src = SRC_OWN,
};

FIXTURE_SETUP(stream)
{
	char what[128] = "";
	int ret;

	ml_init(&self->c);
	ret = ml_open(&self->c, "mls", what, sizeof(what));
	if (ret)	/* no teardown after a failed setup: clean up here */
		ml_close(&self->c);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s: %s", what, strerror(-ret));
	}
}

FIXTURE_TEARDOWN(stream)
{
	ml_close(&self->c);
}

/*
 * ST_NBLK blocks of ST_SCANS scans: ATTACH and ENQUEUE all, enable, then
 * ST_TOTAL times: wait for the oldest (SYNC_START), check it continues
 * the ramp, SYNC_END, ENQUEUE it again. No gap, no overrun. Then disable,
 * DETACH all.
 */
TEST_F_TIMEOUT(stream, ramp, 120)
{
	const size_t bytes = ST_SCANS * SCAN;
	struct xblk *x = self->c.x;
	struct ramp_check rc;
	char what[128] = "";
	long long ov0, ov1;
	double t0, t1, tw = 0, t;
	int i, done, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ((size_t)SCAN, rc.l.size);
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, ST_FREQ, 0, 0));
	ret = xblk_alloc_n(x, ST_NBLK, variant->src, &self->c.a, bytes, what,
			   sizeof(what));
	ASSERT_EQ(0, ret) {
		TH_LOG("%s (%s): %s", what, src_names[variant->src],
		       strerror(-ret));
	}
	for (i = 0; i < ST_NBLK; i++) {
		ret = iio_buffer_attach(self->c.bfd, x[i].b.fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH %s block %d: %s",
			       src_names[variant->src], i, strerror(-ret));
		}
		x[i].attached = true;
	}
	/* queue every block before enabling: scan 0 lands in block 0 */
	for (i = 0; i < ST_NBLK; i++) {
		ret = iio_buffer_enqueue(self->c.bfd, x[i].b.fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE block %d: %s", i, strerror(-ret));
		}
	}
	ASSERT_EQ(0, inst_read_ll(&self->c.a, "overruns", &ov0));
	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));

	for (done = 0; done < ST_TOTAL; done++) {
		struct xblk *b = &x[done % ST_NBLK];
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &rc, .bytes = bytes,
		};

		ret = block_wait_check(&w, &b->b);
		tw += w.t_wait;
		ASSERT_EQ(0, ret) {
			TH_LOG("%s: block #%d (buffer %d): %s",
			       src_names[variant->src], done, done % ST_NBLK,
			       w.why);
		}
		/*
		 * The transfer is done: ENQUEUE does not wait for its fence
		 * (which would take the core's 5 s timeout).
		 */
		t = now_s();
		ret = iio_buffer_enqueue(self->c.bfd, b->b.fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("re-ENQUEUE block #%d: %s", done,
			       strerror(-ret));
		}
		EXPECT_GT(NO_WAIT_S, now_s() - t) {
			TH_LOG("re-ENQUEUE of a completed block took %.3f s",
			       now_s() - t);
		}
	}
	/* blocks are still queued here: nothing can have been dropped */
	ASSERT_EQ(0, inst_read_ll(&self->c.a, "overruns", &ov1));
	t1 = now_s();
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));

	DIAG("stream %s: %" PRIu64 " scans in %.3f s (%.1f scans/s), "
	     "%.3f s waiting in SYNC_START, overruns %lld -> %lld",
	     src_names[variant->src], rc.scans, t1 - t0,
	     rc.scans / (t1 - t0), tw, ov0, ov1);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)ST_TOTAL * ST_SCANS, rc.scans);
	EXPECT_EQ(ov0, ov1);
	EXPECT_LE((double)rc.scans / ST_FREQ * 0.9, t1 - t0);

	/* the blocks still queued were cancelled: waiting returns */
	for (i = 0; i < ST_NBLK; i++) {
		EXPECT_EQ(1, poll_events(x[i].b.fd, POLLOUT, 5000)) {
			TH_LOG("block %d still busy 5 s after disable", i);
		}
		EXPECT_EQ(0, dmabuf_sync_start(x[i].b.fd));
		EXPECT_EQ(0, dmabuf_sync_end(x[i].b.fd));
	}
	for (i = 0; i < ST_NBLK; i++) {
		EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, x[i].b.fd)) {
			TH_LOG("DETACH block %d", i);
		}
		x[i].attached = false;
	}
	ASSERT_EQ(0, close(self->c.bfd));
	self->c.bfd = -1;
	for (i = 0; i < ST_NBLK; i++)
		xblk_free(&x[i]);
}

/* ------------------------------------------------------------------ */
/* 2. Error codes                                                      */
/* ------------------------------------------------------------------ */

/* ATTACH of fds that are not DMABUFs: EINVAL */
TEST_F_TIMEOUT(ml, attach_not_dmabuf, 30)
{
	int p[2], fd;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->c.fds[0] = p[0];
	self->c.fds[1] = p[1];
	EXPECT_EQ(-EINVAL, iio_buffer_attach(self->c.bfd, p[0]));
	EXPECT_EQ(-EINVAL, iio_buffer_attach(self->c.bfd, p[1]));

	fd = memfd_create("notdmabuf", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	self->c.fds[2] = fd;
	ASSERT_EQ(0, ftruncate(fd, 4096));
	EXPECT_EQ(-EINVAL, iio_buffer_attach(self->c.bfd, fd));
	/* the buffer fd itself */
	EXPECT_EQ(-EINVAL, iio_buffer_attach(self->c.bfd, self->c.bfd));
}

/* ATTACH of fd numbers that are not open: EBADF */
TEST_F_TIMEOUT(ml, attach_bad_fd, 30)
{
	int fd;

	BLOCKS(1, 4096);
	fd = dup(self->c.x[0].b.fd);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));	/* fd is now a free number */
	EXPECT_EQ(-EBADF, iio_buffer_attach(self->c.bfd, fd));
	EXPECT_EQ(-EBADF, iio_buffer_attach(self->c.bfd, -1));
	EXPECT_EQ(-EBADF, iio_buffer_attach(self->c.bfd, 1000000));
	/* the block itself, once closed */
	fd = self->c.x[0].b.fd;
	xblk_free(&self->c.x[0]);
	EXPECT_EQ(-EBADF, iio_buffer_attach(self->c.bfd, fd));
}

/* The same DMABUF twice (also through another fd of it): EBUSY */
TEST_F_TIMEOUT(ml, attach_twice, 30)
{
	const size_t bytes = 100 * SCAN;
	int dup_fd;

	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 1000, 0, 0));
	BLOCKS(1, bytes);
	ATTACH_OK(0);
	EXPECT_EQ(-EBUSY, iio_buffer_attach(self->c.bfd, self->c.x[0].b.fd));
	dup_fd = dup(self->c.x[0].b.fd);
	ASSERT_LE(0, dup_fd);
	self->c.fds[0] = dup_fd;
	EXPECT_EQ(-EBUSY, iio_buffer_attach(self->c.bfd, dup_fd));

	/* the first attachment is intact: it streams */
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	FILLED(0, true, 10000, NULL, 0);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	/* attached once: DETACH works once */
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, dup_fd));
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	self->c.x[0].attached = false;
}

/* ENQUEUE of a DMABUF that is not attached (any more): EPERM */
TEST_F_TIMEOUT(ml, enqueue_not_attached, 30)
{
	const size_t bytes = 100 * SCAN;

	BLOCKS(2, bytes);
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->c.bfd, self->c.x[0].b.fd,
					     0, bytes));
	ATTACH_OK(1);
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->c.bfd, self->c.x[0].b.fd,
					     0, bytes));
	ASSERT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd));
	self->c.x[1].attached = false;
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->c.bfd, self->c.x[1].b.fd,
					     0, bytes));
	/* not a DMABUF / not open */
	EXPECT_EQ(-EBADF, iio_buffer_enqueue(self->c.bfd, -1, 0, bytes));
	/* nothing was queued: the DMABUFs are idle */
	EXPECT_EQ(1, poll_events(self->c.x[0].b.fd, POLLOUT, 0));
	EXPECT_EQ(1, poll_events(self->c.x[1].b.fd, POLLOUT, 0));
}

/* DETACH of a DMABUF that is not attached: EPERM */
TEST_F_TIMEOUT(ml, detach_not_attached, 30)
{
	int p[2];

	BLOCKS(2, 4096);
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	ATTACH_OK(1);
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd));
	self->c.x[1].attached = false;
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd));
	/* not DMABUFs at all */
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->c.fds[0] = p[0];
	self->c.fds[1] = p[1];
	EXPECT_EQ(-EINVAL, iio_buffer_detach(self->c.bfd, p[0]));
	EXPECT_EQ(-EBADF, iio_buffer_detach(self->c.bfd, -1));
}

/* bytes_used 0 or beyond the DMABUF: EINVAL, nothing queued */
TEST_F_TIMEOUT(ml, enqueue_bytes_used_bad, 30)
{
	const size_t bytes = 4096;
	size_t size;
	int fd;

	BLOCKS(1, bytes);
	ATTACH_OK(0);
	fd = self->c.x[0].b.fd;
	size = self->c.x[0].b.size;
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0, 0));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0, size + SCAN));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0,
					      size + page_size()));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0,
					      UINT64_MAX - (UINT64_MAX % SCAN)));
	EXPECT_EQ(1, poll_events(fd, POLLOUT, 0)) {
		TH_LOG("a refused ENQUEUE left a pending fence");
	}
	/* exactly the size is fine */
	EXPECT_EQ(0, iio_buffer_enqueue(self->c.bfd, fd, 0, size));
}

/*
 * bytes_used not a multiple of the scan size (16 bytes: 4 channels +
 * timestamp): EINVAL. The core had added the fence already: it signals
 * (with the error), so the block is idle at once and the next ENQUEUE
 * does not wait for it.
 */
TEST_F_TIMEOUT(ml, enqueue_bytes_used_not_scans, 60)
{
	const size_t bytes = 100 * SCAN;
	struct ramp_check rc;
	double t;
	int fd;

	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 1000, 0, 0));
	BLOCKS(1, bytes);
	ATTACH_OK(0);
	fd = self->c.x[0].b.fd;
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0, 8));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0, 24));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, 0, bytes - 8));

	/* the failed ENQUEUEs' fences are signalled */
	EXPECT_EQ(1, poll_events(fd, POLLOUT, 1000));
	t = now_s();
	EXPECT_EQ(0, dmabuf_sync_start(fd));
	EXPECT_EQ(0, dmabuf_sync_end(fd));
	EXPECT_GT(NO_WAIT_S, now_s() - t);
	t = now_s();
	ENQUEUE_OK(0, bytes);
	EXPECT_GT(NO_WAIT_S, now_s() - t) {
		TH_LOG("ENQUEUE after a refused one waited %.3f s",
		       now_s() - t);
	}

	/* and the valid one streams, from scan 0 */
	EXPORT_OK(0);
	ramp_init(&rc, ADC_ALL_TS, false);
	FILLED(0, true, 10000, &rc, bytes);
	EXPECT_EQ(0, rc.first_n);
}

/* IIO_BUFFER_DMABUF_CYCLIC on an input buffer: EINVAL */
TEST_F_TIMEOUT(ml, enqueue_cyclic, 30)
{
	int fd;

	BLOCKS(1, 4096);
	ATTACH_OK(0);
	fd = self->c.x[0].b.fd;
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd,
					      IIO_BUFFER_DMABUF_CYCLIC, 4096));
	EXPECT_EQ(1, poll_events(fd, POLLOUT, 1000));
	EXPECT_EQ(0, iio_buffer_enqueue(self->c.bfd, fd, 0, 4096));
}

/* Unknown flags: EINVAL */
TEST_F_TIMEOUT(ml, enqueue_unknown_flags, 30)
{
	static const uint32_t bad[] = {
		0x100, 2, 0x80000000u, 0xffffffffu,
		0x100 | IIO_BUFFER_DMABUF_CYCLIC,
	};
	unsigned int i;
	int fd;

	BLOCKS(1, 4096);
	ATTACH_OK(0);
	fd = self->c.x[0].b.fd;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, fd, bad[i],
						      4096)) {
			TH_LOG("flags %#x", bad[i]);
		}
	}
	EXPECT_EQ(1, poll_events(fd, POLLOUT, 1000));
	EXPECT_EQ(0, iio_buffer_enqueue(self->c.bfd, fd, 0, 4096));
}

/*
 * ENQUEUE of a block whose previous transfer is still pending: the core
 * waits for the earlier fence, up to 5 s, then EBUSY; with O_NONBLOCK on
 * the buffer fd it does not wait.
 */
TEST_F_TIMEOUT(ml, enqueue_pending_waits, 60)
{
	const size_t bytes = 100 * SCAN;
	double t, dt;
	int fd, ret, st = 0;

	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 1000, 0, 0));
	BLOCKS(1, bytes);
	ATTACH_OK(0);
	fd = self->c.x[0].b.fd;
	/* buffer disabled: the fence stays pending */
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);

	t = now_s();
	ret = iio_buffer_enqueue(self->c.bfd, fd, 0, bytes);
	dt = now_s() - t;
	DIAG("enqueue_pending_waits: second ENQUEUE: %d (%s) after %.3f s",
	     ret, ret ? strerror(-ret) : "ok", dt);
	EXPECT_EQ(-EBUSY, ret);
	EXPECT_LE(IIO_DMABUF_ENQUEUE_WAIT_MS / 1000.0 * 0.9, dt);
	/* it gives up: late on a loaded machine, but not 10 s late */
	EXPECT_GE(IIO_DMABUF_ENQUEUE_WAIT_MS / 1000.0 + 10.0, dt);

	ASSERT_EQ(0, fd_set_nonblock(self->c.bfd, true));
	t = now_s();
	ret = iio_buffer_enqueue(self->c.bfd, fd, 0, bytes);
	dt = now_s() - t;
	EXPECT_EQ(-EBUSY, ret);
	EXPECT_GT(NO_WAIT_S, dt) {
		TH_LOG("non-blocking ENQUEUE took %.3f s", dt);
	}
	ASSERT_EQ(0, fd_set_nonblock(self->c.bfd, false));

	/* the first transfer is unaffected */
	ASSERT_EQ(0, sync_file_status(self->c.sfd[0], &st));
	EXPECT_EQ(0, st);
	FILLED(0, true, 10000, NULL, 0);
	/* now it can be queued again */
	ENQUEUE_OK(0, bytes);
}

/* ------------------------------------------------------------------ */
/* 3. DETACH while queued                                              */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(ml, detach_while_queued, 120)
{
	const size_t bytes = 500 * SCAN;
	struct ramp_check rc;
	double t, dt;
	int fd, st = 0, ret;

	/* a: 500 scans at 100 Hz, 5 s to fill */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 100, 0, 0));
	BLOCKS(1, bytes);
	fd = self->c.x[0].b.fd;

	/*
	 * a: DETACH while being filled returns at once (it does not wait
	 * for the transfer) and the transfer still completes.
	 */
	ATTACH_OK(0);
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));
	sleep_ms(300);
	ASSERT_EQ(0, sync_file_status(self->c.sfd[0], &st));
	ASSERT_EQ(0, st) {
		TH_LOG("a 5 s block done after 0.3 s: %s", status_str(st));
	}
	t = now_s();
	ret = iio_buffer_detach(self->c.bfd, fd);
	dt = now_s() - t;
	EXPECT_EQ(0, ret) {
		TH_LOG("DETACH of a queued block: %s", strerror(-ret));
	}
	EXPECT_GT(NO_WAIT_S, dt) {
		TH_LOG("DETACH of a block being filled took %.3f s", dt);
	}
	self->c.x[0].attached = false;
	/* detached: it cannot be queued again through this fd */
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->c.bfd, fd, 0, bytes));
	/* the detached block's transfer completes */
	ramp_init(&rc, ADC_ALL_TS, false);
	FILLED(0, false, 30000, &rc, bytes);
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));

	/*
	 * b: DETACH while queued (disabled): the block stays queued, its
	 * fence pending; the disable that follows the enable cancels it
	 * (10 Hz: it would take 50 s to fill).
	 */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10, 0, 0));
	ATTACH_OK(0);
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, fd));
	self->c.x[0].attached = false;
	ASSERT_EQ(0, sync_file_status(self->c.sfd[0], &st));
	EXPECT_EQ(0, st) {
		TH_LOG("queued, disabled, detached: fence %s",
		       status_str(st));
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	ASSERT_EQ(0, sync_file_wait(self->c.sfd[0], 5000, &st)) {
		TH_LOG("fence of the detached block still pending after disable");
	}
	EXPECT_EQ(-ECANCELED, st) {
		TH_LOG("fence: %s", status_str(st));
	}
	EXPECT_EQ(1, poll_events(fd, POLLOUT, 1000));

	/* c: re-ATTACH works and streams from scan 0 again */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 1000, 0, 0));
	ATTACH_OK(0);
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	ramp_init(&rc, ADC_ALL_TS, false);
	FILLED(0, true, 10000, &rc, bytes);
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, fd));
	self->c.x[0].attached = false;
}

/* ------------------------------------------------------------------ */
/* 4. Disable with blocks queued: -ECANCELED                           */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(ml, disable_cancels, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct sync_waiter w = { 0 };
	struct ramp_check rc;
	pthread_t th;
	int i, st;

	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 100, 0, 0));
	BLOCKS(3, bytes);
	for (i = 0; i < 3; i++) {
		ATTACH_OK(i);
		ENQUEUE_OK(i, bytes);
		EXPORT_OK(i);
	}
	/* block 0 being filled (10 s at 100 Hz), 1 and 2 queued */
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));
	w.fd = self->c.x[0].b.fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	ASSERT_EQ(0, join_within(th, 5)) {
		TH_LOG("SYNC_START still blocked 5 s after disable");
	}
	DIAG("disable_cancels: SYNC_START returned %d, %.3f s after starting",
	     w.ret, w.t_done - w.t_start);
	EXPECT_EQ(0, w.ret);

	for (i = 0; i < 3; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->c.sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after disable", i);
		}
		EXPECT_EQ(-ECANCELED, st) {
			TH_LOG("block %d: fence: %s", i, status_str(st));
		}
		EXPECT_EQ(1, poll_events(self->c.x[i].b.fd, POLLOUT, 1000));
		EXPECT_EQ(0, dmabuf_sync_start(self->c.x[i].b.fd));
		EXPECT_EQ(0, dmabuf_sync_end(self->c.x[i].b.fd));
	}

	/* still attached: the queue works again, the ramp from 0 */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10000, 0, 0));
	ENQUEUE_OK(1, bytes);
	EXPORT_OK(1);
	ramp_init(&rc, ADC_ALL_TS, false);
	FILLED(1, true, 10000, &rc, bytes);
	EXPECT_EQ(0, rc.first_n);
}

/* ------------------------------------------------------------------ */
/* 5. rmdir with blocks attached and queued                            */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(ml, rmdir_with_attached, 90)
{
	const size_t bytes = 1000 * SCAN;
	struct sync_waiter w = { 0 };
	uint8_t rbuf[64];
	char name[64];
	pthread_t th;
	double t;
	ssize_t n;
	int i, st, ret, e;

	snprintf(name, sizeof(name), "%s", self->c.a.name);
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 100, 0, 0));
	/* 0, 1: queued; 2: attached, idle; 3: never attached */
	BLOCKS(4, bytes);
	for (i = 0; i < 3; i++)
		ATTACH_OK(i);
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(i, bytes);
		EXPORT_OK(i);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));
	w.fd = self->c.x[0].b.fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	t = now_s();
	ret = inst_rmdir(INST_ADC, name);
	DIAG("rmdir_with_attached: rmdir: %d, %.3f s", ret, now_s() - t);
	ASSERT_EQ(0, ret);
	self->c.a.devnum = -1;
	ASSERT_EQ(0, join_within(th, 10)) {
		TH_LOG("SYNC_START still blocked 10 s after rmdir");
	}
	DIAG("rmdir_with_attached: SYNC_START returned %d %.3f s after rmdir",
	     w.ret, w.t_done - t);
	EXPECT_EQ(0, w.ret);

	for (i = 0; i < 2; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->c.sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after rmdir", i);
		}
		EXPECT_EQ(-ENODEV, st) {
			TH_LOG("block %d: fence: %s", i, status_str(st));
		}
		EXPECT_EQ(1, poll_events(self->c.x[i].b.fd, POLLOUT, 1000));
	}
	/* the memory is still the application's */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, dmabuf_sync_start(self->c.x[i].b.fd));
		memset(self->c.x[i].b.map, 0x10 + i, bytes);
		EXPECT_EQ(0x10 + i, self->c.x[i].b.map[bytes - 1]);
		EXPECT_EQ(0, dmabuf_sync_end(self->c.x[i].b.fd));
	}
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	/*
	 * The stale buffer fd. The IIO core still serves its ioctls; the
	 * module refuses ATTACH and ENQUEUE with ENODEV. A refused ENQUEUE
	 * signals the fence the core had added: the block is idle at once.
	 */
	ret = iio_buffer_attach(self->c.bfd, self->c.x[3].b.fd);
	if (!ret)
		self->c.x[3].attached = true;
	EXPECT_EQ(-ENODEV, ret) {
		TH_LOG("ATTACH after rmdir: %s",
		       ret ? strerror(-ret) : "succeeded");
	}
	EXPECT_EQ(1, poll_events(self->c.x[3].b.fd, POLLOUT, 0));

	/* block 2: attached, never queued */
	t = now_s();
	ret = iio_buffer_enqueue(self->c.bfd, self->c.x[2].b.fd, 0, bytes);
	EXPECT_EQ(-ENODEV, ret) {
		TH_LOG("ENQUEUE (attached, idle) after rmdir: %s",
		       ret ? strerror(-ret) : "succeeded");
	}
	EXPECT_EQ(1, poll_events(self->c.x[2].b.fd, POLLOUT, 5000));
	/* block 0: its cancelled transfer's fence is done: no 5 s wait */
	ret = iio_buffer_enqueue(self->c.bfd, self->c.x[0].b.fd, 0, bytes);
	EXPECT_EQ(-ENODEV, ret) {
		TH_LOG("re-ENQUEUE after rmdir: %s",
		       ret ? strerror(-ret) : "succeeded");
	}
	EXPECT_GT(NO_WAIT_S, now_s() - t);
	EXPECT_EQ(1, poll_events(self->c.x[0].b.fd, POLLOUT, 5000));
	/* read() on the buffer fd: ENODEV, as on /dev/iio:deviceN */
	n = read(self->c.bfd, rbuf, sizeof(rbuf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ENODEV, e) {
		TH_LOG("read on the buffer fd after rmdir: %s",
		       n < 0 ? strerror(e) : "data");
	}

	/*
	 * DETACH is the core's own bookkeeping (it never asks the buffer):
	 * after rmdir it still drops an attachment (0) and refuses a
	 * DMABUF that is not attached (EPERM); ENQUEUE of the detached one
	 * is then EPERM too.
	 */
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd));
	self->c.x[1].attached = false;
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd));
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->c.bfd, self->c.x[3].b.fd));
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->c.bfd, self->c.x[1].b.fd,
					     0, bytes));

	/* closing everything returns (teardown closes the blocks) */
	t = now_s();
	EXPECT_EQ(0, close(self->c.bfd));
	self->c.bfd = -1;
	EXPECT_EQ(0, close(self->c.devfd));
	self->c.devfd = -1;
	for (i = 0; i < 4; i++)
		xblk_free(&self->c.x[i]);
	DIAG("rmdir_with_attached: closed everything in %.3f s", now_s() - t);
}

/* ------------------------------------------------------------------ */
/* 6. Exclusivity with fileio                                          */
/* ------------------------------------------------------------------ */

/* ATTACH while the buffer is enabled for fileio: EBUSY */
TEST_F_TIMEOUT(ml, attach_while_fileio, 60)
{
	struct ramp_check rc;
	uint8_t buf[256 * SCAN];
	int ret;

	BLOCKS(1, 4096);
	ASSERT_EQ(0, inst_start(&self->c.a, ADC_ALL_TS, 1000, 4096, 1));
	ret = iio_buffer_attach(self->c.bfd, self->c.x[0].b.fd);
	if (!ret)
		self->c.x[0].attached = true;
	EXPECT_EQ(-EBUSY, ret);

	/* fileio goes on through the buffer fd */
	ramp_init(&rc, ADC_ALL_TS, false);
	ret = stream_read(self->c.bfd, &rc, 200, 20, buf, sizeof(buf), NULL);
	EXPECT_EQ(0, ret) {
		TH_LOG("read on the buffer fd: %s; %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	EXPECT_EQ(0, rc.first_n);

	/* disabled: ATTACH works */
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	if (!self->c.x[0].attached)
		ATTACH_OK(0);
}

/*
 * read() while a DMABUF is attached: EBUSY, on the buffer fd (the module
 * refuses) and on /dev/iio:deviceN (which the core refuses anyway while
 * a buffer fd is open), both O_NONBLOCK.
 */
TEST_F_TIMEOUT(ml, read_while_attached, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct ramp_check rc;
	uint8_t buf[64 * SCAN];
	ssize_t n;
	int e, ret;

	BLOCKS(1, bytes);
	/*
	 * The core sets bytes_per_datum only on enable (until then read()
	 * is EOF without asking the buffer): one fileio cycle first.
	 */
	ASSERT_EQ(0, inst_start(&self->c.a, ADC_ALL_TS, 1000, 4096, 1));
	sleep_ms(20);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	ASSERT_EQ(0, fd_set_nonblock(self->c.bfd, true));
	ASSERT_EQ(0, fd_set_nonblock(self->c.devfd, true));
	while (read(self->c.bfd, buf, sizeof(buf)) > 0)
		;	/* drain what that produced */

	ATTACH_OK(0);
	n = read(self->c.bfd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read (buffer fd, attached): %s",
		       n < 0 ? strerror(e) : "no error");
	}
	n = read(self->c.devfd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read (%s, attached): %s", self->c.a.chrdev,
		       n < 0 ? strerror(e) : "no error");
	}

	/* enabled with the DMABUF queued: still EBUSY */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10000, 0, 0));
	ENQUEUE_OK(0, bytes);
	ASSERT_EQ(0, inst_buffer_enable(&self->c.a));
	sleep_ms(20);
	n = read(self->c.bfd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("read (buffer fd, streaming): %s",
		       n < 0 ? strerror(e) : "no error");
	}
	ASSERT_EQ(1, poll_events(self->c.x[0].b.fd, POLLOUT, 10000));
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));

	/* detached: fileio works again on the buffer fd */
	ASSERT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	self->c.x[0].attached = false;
	/*
	 * The core drops its last reference to the attachment from a work
	 * item after the fence signalled: until then the buffer is still
	 * in DMABUF use. Wait for it before enabling for fileio.
	 */
	ret = wait_unattached(self->c.x[0].b.fd, 5000);
	ASSERT_EQ(0, ret) {
		TH_LOG("attachment not released 5 s after DETACH: %s",
		       strerror(-ret));
	}
	ASSERT_EQ(0, fd_set_nonblock(self->c.bfd, false));
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_start(&self->c.a, ADC_ALL_TS, 10000, 4096, 64));
	ret = stream_read(self->c.bfd, &rc, 1000, 20, buf, sizeof(buf), NULL);
	EXPECT_EQ(0, ret) {
		TH_LOG("fileio after DETACH: %s; %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	EXPECT_EQ(0, rc.first_n);
}

/* ------------------------------------------------------------------ */
/* 7. ATTACH / DETACH cycles                                           */
/* ------------------------------------------------------------------ */

#define CYCLES		500

TEST_F_TIMEOUT(ml, attach_detach_cycles, 300)
{
	const size_t bytes = 16 * 4096;
	double t = now_s();
	int i, ret;

	BLOCKS(2, bytes);
	for (i = 0; i < CYCLES; i++) {
		ret = iio_buffer_attach(self->c.bfd, self->c.x[0].b.fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("cycle %d: ATTACH: %s", i, strerror(-ret));
		}
		/* sometimes with a second one attached meanwhile */
		if (i % 10 == 0) {
			ret = iio_buffer_attach(self->c.bfd, self->c.x[1].b.fd);
			ASSERT_EQ(0, ret) {
				TH_LOG("cycle %d: ATTACH (2nd): %s", i,
				       strerror(-ret));
			}
			ret = iio_buffer_detach(self->c.bfd, self->c.x[1].b.fd);
			ASSERT_EQ(0, ret) {
				TH_LOG("cycle %d: DETACH (2nd): %s", i,
				       strerror(-ret));
			}
		}
		ret = iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("cycle %d: DETACH: %s", i, strerror(-ret));
		}
		/* every 100 cycles: a fresh DMABUF */
		if (i % 100 == 99) {
			char what[128] = "";

			xblk_free(&self->c.x[0]);
			ret = xblk_alloc_n(&self->c.x[0], 1, self->src,
					   &self->c.a, bytes, what,
					   sizeof(what));
			ASSERT_EQ(0, ret) {
				TH_LOG("cycle %d: %s: %s", i, what,
				       strerror(-ret));
			}
		}
	}
	DIAG("attach_detach_cycles: %d cycles in %.3f s", CYCLES,
	     now_s() - t);

	/* still fine: one attached block streams */
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10000, 0, 0));
	ATTACH_OK(0);
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	FILLED(0, true, 10000, NULL, 0);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	EXPECT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	self->c.x[0].attached = false;
}

/* ------------------------------------------------------------------ */
/* 8. The DMA device attachments are made for                          */
/* ------------------------------------------------------------------ */

/*
 * A DMABUF of every source, ATTACHed to the buffers of two converters, is
 * attached (and mapped) for each buffer's DMA device (the module's faux
 * device "iio_dmabuf", or the controller of the converter's DMA channel:
 * see inst_dma_dev()), once per buffer; DETACH removes the attachment (at once
 * when no fence holds it, else once the fence signalled). A missing
 * source fails the test.
 */
TEST_F_TIMEOUT(ml, attachments_on_dma_device, 90)
{
	static const enum src_kind kinds[] = {
		SRC_UDMABUF, SRC_HEAP, SRC_OWN,
	};
	const size_t bytes = 100 * SCAN;
	char what[128] = "", names[256], dev1[64], dev2[64], both[160];
	unsigned int k;
	int n, ret;

	ret = ml_open(&self->c2, "mln", what, sizeof(what));
	ASSERT_EQ(0, ret) {
		TH_LOG("second instance: %s: %s", what, strerror(-ret));
	}
	ASSERT_EQ(0, inst_dma_dev(&self->c.a, dev1, sizeof(dev1)));
	ASSERT_EQ(0, inst_dma_dev(&self->c2.a, dev2, sizeof(dev2)));
	/* the newest attachment first */
	snprintf(both, sizeof(both), "%s %s", dev2, dev1);
	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10000, 0, 0));
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct xblk *x = &self->c.x[k];
		const char *src = src_names[kinds[k]];

		ret = xblk_alloc_n(x, 1, kinds[k], &self->c.a, bytes, what,
				   sizeof(what));
		ASSERT_EQ(0, ret) {
			TH_LOG("%s (%s): %s", what, src, strerror(-ret));
		}
		n = dmabuf_attached_devices(x->b.fd, names, sizeof(names));
		EXPECT_EQ(0, n) {
			TH_LOG("%s: attached to '%s' before any ATTACH", src,
			       names);
		}

		ret = iio_buffer_attach(self->c.bfd, x->b.fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH %s: %s", src, strerror(-ret));
		}
		x->attached = true;
		n = dmabuf_attached_devices(x->b.fd, names, sizeof(names));
		EXPECT_EQ(1, n);
		EXPECT_STREQ(dev1, names) {
			TH_LOG("%s: attached to '%s'", src, names);
		}
		/* the other converter: the same DMA device, a second time */
		ret = iio_buffer_attach(self->c2.bfd, x->b.fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH %s to the second ADC: %s", src,
			       strerror(-ret));
		}
		n = dmabuf_attached_devices(x->b.fd, names, sizeof(names));
		EXPECT_EQ(2, n);
		EXPECT_STREQ(both, names) {
			TH_LOG("%s: attached to '%s'", src, names);
		}
		/* never queued: DETACH drops the attachment at once */
		ASSERT_EQ(0, iio_buffer_detach(self->c2.bfd, x->b.fd));
		n = dmabuf_attached_devices(x->b.fd, names, sizeof(names));
		EXPECT_EQ(1, n);

		/* the mapping works: a transfer fills it */
		ENQUEUE_OK(k, bytes);
		EXPORT_OK(k);
		FILLED(k, true, 10000, NULL, 0);
		ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
		ASSERT_EQ(0, iio_buffer_detach(self->c.bfd, x->b.fd));
		x->attached = false;
		ret = wait_unattached(x->b.fd, 5000);
		EXPECT_EQ(0, ret) {
			TH_LOG("%s: still attached 5 s after DETACH: %s", src,
			       strerror(-ret));
		}
	}
}

/* ------------------------------------------------------------------ */
/* 9. Fence contexts and sequence numbers                              */
/* ------------------------------------------------------------------ */

/*
 * The IIO core gives each attachment a fence context of its own and
 * numbers its ENQUEUEs' fences 1, 2, 3, ... (dmabuf_api.rst, section 6):
 * two DMABUFs attached to one buffer have two contexts; a re-ATTACH gets
 * a new one, numbered from 1 again. An ENQUEUE the buffer refused after
 * the core created its fence (bytes_used not whole scans) used a number.
 */
TEST_F_TIMEOUT(ml, fence_context_seqno, 90)
{
	const size_t bytes = 100 * SCAN;
	unsigned long long ctx0 = 0, ctx1 = 0, c, q;
	char name[40];
	int i, k, ret;

	ASSERT_EQ(0, inst_configure(&self->c.a, ADC_ALL_TS, 10000, 0, 0));
	BLOCKS(2, bytes);
	ATTACH_OK(0);
	ATTACH_OK(1);
	for (k = 1; k <= 3; k++) {
		/* queued while disabled: both fences pending */
		for (i = 0; i < 2; i++) {
			ENQUEUE_OK(i, bytes);
			EXPORT_OK(i);
			ret = iio_fence_id(self->c.sfd[i], &c, &q, name,
					   sizeof(name));
			ASSERT_EQ(0, ret) {
				TH_LOG("sync_file of block %d: '%s': %s", i,
				       name, strerror(-ret));
			}
			if (k == 1)
				*(i ? &ctx1 : &ctx0) = c;
			EXPECT_EQ(i ? ctx1 : ctx0, c) {
				TH_LOG("ENQUEUE %d of block %d: '%s'", k, i,
				       name);
			}
			EXPECT_EQ((unsigned long long)k, q) {
				TH_LOG("ENQUEUE %d of block %d: '%s'", k, i,
				       name);
			}
		}
		/* enable, then both fences signal without error */
		for (i = 0; i < 2; i++)
			FILLED(i, i == 0, 10000, NULL, 0);
		ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	}
	EXPECT_NE(ctx0, ctx1);

	/* a refused ENQUEUE (after the fence was made) used number 4 */
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->c.bfd, self->c.x[0].b.fd,
					      0, SCAN / 2));
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	ASSERT_EQ(0, iio_fence_id(self->c.sfd[0], &c, &q, name, sizeof(name)));
	EXPECT_EQ(ctx0, c);
	EXPECT_EQ(5ULL, q) {
		TH_LOG("after a refused ENQUEUE: '%s'", name);
	}
	/* detached while queued, re-attached: a new context, from 1 */
	ASSERT_EQ(0, iio_buffer_detach(self->c.bfd, self->c.x[0].b.fd));
	self->c.x[0].attached = false;
	FILLED(0, true, 10000, NULL, 0);
	ASSERT_EQ(0, inst_buffer_disable(&self->c.a));
	ATTACH_OK(0);
	ENQUEUE_OK(0, bytes);
	EXPORT_OK(0);
	ASSERT_EQ(0, iio_fence_id(self->c.sfd[0], &c, &q, name, sizeof(name)));
	EXPECT_NE(ctx0, c);
	EXPECT_NE(ctx1, c);
	EXPECT_EQ(1ULL, q) {
		TH_LOG("first ENQUEUE after a re-ATTACH: '%s'", name);
	}
}

TEST_HARNESS_MAIN
