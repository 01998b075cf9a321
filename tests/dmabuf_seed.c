// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the DMABUF interface (ALLOC + ENQUEUE on the per-buffer
 * char device /dev/iio:deviceN-dmabuf0): the streaming workflow, waiting
 * (DMA_BUF_IOCTL_SYNC, poll, sync_file), fence errors on disable / close /
 * rmdir, concurrency, a killed waiter and allocation cycles.
 *
 * The error codes of each ioctl are in dmabuf_errors.c.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define MAXB		64

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */


/* Ramp-check @bytes of @b on their own (n continuous within the block). */
static int check_block_alone(const struct dmabuf_block *b, size_t bytes,
			     unsigned int mask, char *err, size_t errlen)
{
	struct ramp_check rc;
	int ret;

	ramp_init(&rc, mask, false);
	ramp_resync(&rc, b->map);
	ret = ramp_feed(&rc, b->map, bytes);
	if (ret)
		snprintf(err, errlen, "%s", rc.err);
	return ret;
}

/* The DMABUF fixture: one instance, its DMABUF char device, blocks. */
FIXTURE(dmab) {
	struct adc a;
	int cfd;
	int nblk;
	struct dmabuf_block blk[MAXB];
	int sfd[MAXB];
	bool restore_max;
	long long max0;
};

FIXTURE_SETUP(dmab)
{
	int i;

	self->a.devnum = -1;
	self->cfd = -1;
	self->nblk = 0;
	self->restore_max = false;
	for (i = 0; i < MAXB; i++) {
		dmabuf_block_init(&self->blk[i]);
		self->sfd[i] = -1;
	}
	ASSERT_EQ(0, adc_create_unique(&self->a, "dmb"));
	self->cfd = adc_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s", self->a.devnum,
		       strerror(-self->cfd));
	}
	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 0, 0, 0));
}

FIXTURE_TEARDOWN(dmab)
{
	int i;

	/* disabling cancels whatever is still queued: nothing stays pending */
	if (self->a.devnum >= 0)
		adc_buffer_disable(&self->a);
	if (self->cfd >= 0)
		close(self->cfd);
	for (i = 0; i < MAXB; i++) {
		if (self->sfd[i] >= 0)
			close(self->sfd[i]);
		dmabuf_block_free(&self->blk[i]);
	}
	adc_destroy(&self->a);
	if (self->restore_max)
		dmabuf_max_bytes_set(self->max0);
}

/* Allocate @n blocks of @size bytes (mapped if @map) as blk[0..n-1]. */
#define ALLOC_BLOCKS(n, size, map) do {					\
	int _i;								\
	for (_i = 0; _i < (n); _i++) {					\
		int _r = dmabuf_block_alloc(&self->blk[_i], self->cfd,	\
					    (size), (map));		\
		ASSERT_EQ(0, _r) {					\
			TH_LOG("ALLOC block %d of %zu bytes: %s", _i,	\
			       (size_t)(size), strerror(-_r));		\
		}							\
	}								\
	self->nblk = (n);						\
} while (0)

#define ENQUEUE_OK(cmd, b, bytes) do {					\
	int _r = dmabuf_enqueue_cmd(self->cfd, (cmd), (b)->fd, 0, (bytes)); \
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE fd %d, %zu bytes: %s", (b)->fd,		\
		       (size_t)(bytes), strerror(-_r));			\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* 1. The typical seed workflow                                        */
/* ------------------------------------------------------------------ */

#define WF_FREQ		20000
#define WF_SCANS	4096
#define WF_TOTAL	50	/* blocks checked: 204800 scans, ~10 s */

FIXTURE(workflow) {
	struct adc a;
	int cfd;
	struct dmabuf_block blk[16];
};

FIXTURE_VARIANT(workflow) {
	int nblocks;
	bool seed_alias;	/* ENQUEUE through the 0x93 alias */
};

FIXTURE_VARIANT_ADD(workflow, blocks2) {
	.nblocks = 2, .seed_alias = false,
};

FIXTURE_VARIANT_ADD(workflow, blocks4_seed_ioctl) {
	.nblocks = 4, .seed_alias = true,
};

FIXTURE_VARIANT_ADD(workflow, blocks16) {
	.nblocks = 16, .seed_alias = false,
};

FIXTURE_SETUP(workflow)
{
	int i;

	self->a.devnum = -1;
	self->cfd = -1;
	for (i = 0; i < 16; i++)
		dmabuf_block_init(&self->blk[i]);
	ASSERT_EQ(0, adc_create_unique(&self->a, "wf"));
	self->cfd = adc_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open DMABUF char device: %s", strerror(-self->cfd));
	}
}

FIXTURE_TEARDOWN(workflow)
{
	int i;

	if (self->a.devnum >= 0)
		adc_buffer_disable(&self->a);
	if (self->cfd >= 0)
		close(self->cfd);
	for (i = 0; i < 16; i++)
		dmabuf_block_free(&self->blk[i]);
	adc_destroy(&self->a);
}

/*
 * ALLOC + mmap every block, queue them all, enable, then: wait for the
 * oldest (SYNC_START), check it continues the ramp, SYNC_END, re-queue it.
 * 50 blocks of 4096 scans at 20 kHz: no gap, no overrun.
 */
TEST_F_TIMEOUT(workflow, ramp, 180)
{
	const size_t bytes = WF_SCANS * SCAN;
	const unsigned long cmd = variant->seed_alias ?
		IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL :
		IIO_BUFFER_DMABUF_ENQUEUE_IOCTL;
	const int nb = variant->nblocks;
	struct ramp_check rc;
	long long ov0, ov1;
	double t0, t1, tw = 0, t;
	int i, done, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ((size_t)SCAN, rc.l.size);
	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, WF_FREQ, 0, 0));

	for (i = 0; i < nb; i++) {
		ret = dmabuf_block_alloc(&self->blk[i], self->cfd, bytes, true);
		ASSERT_EQ(0, ret) {
			TH_LOG("ALLOC block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ((long long)bytes, dmabuf_size(self->blk[i].fd));
	}
	/* queue every block before enabling: scan 0 lands in block 0 */
	for (i = 0; i < nb; i++) {
		ret = dmabuf_enqueue_cmd(self->cfd, cmd, self->blk[i].fd, 0,
					 bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE block %d: %s", i, strerror(-ret));
		}
	}
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov0));
	t0 = now_s();
	ASSERT_EQ(0, adc_buffer_enable(&self->a));

	for (done = 0; done < WF_TOTAL; done++) {
		struct dmabuf_block *b = &self->blk[done % nb];

		t = now_s();
		ret = dmabuf_sync_start(b->fd);
		tw += now_s() - t;
		ASSERT_EQ(0, ret) {
			TH_LOG("SYNC_START block %d: %s", done, strerror(-ret));
		}
		ret = ramp_feed(&rc, b->map, bytes);
		ASSERT_EQ(0, dmabuf_sync_end(b->fd));
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d (buffer %d): %s", done, done % nb,
			       rc.err);
		}
		/* always re-queue: the queue never runs dry */
		ret = dmabuf_enqueue_cmd(self->cfd, cmd, b->fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("re-ENQUEUE block #%d: %s", done, strerror(-ret));
		}
	}
	/* blocks are still queued here: nothing can have been dropped */
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov1));
	t1 = now_s();
	ASSERT_EQ(0, adc_buffer_disable(&self->a));

	DIAG("workflow %d blocks: %" PRIu64 " scans in %.3f s (%.1f scans/s), "
	     "%.3f s waiting in SYNC_START, overruns %lld -> %lld",
	     nb, rc.scans, t1 - t0, rc.scans / (t1 - t0), tw, ov0, ov1);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)WF_TOTAL * WF_SCANS, rc.scans);
	EXPECT_EQ(ov0, ov1);
	/* data cannot come faster than the sampling clock */
	EXPECT_LE((double)rc.scans / WF_FREQ * 0.9, t1 - t0);

	/* the blocks still queued were cancelled: waiting returns */
	for (i = 0; i < nb; i++) {
		EXPECT_EQ(0, dmabuf_sync_start(self->blk[i].fd));
		EXPECT_EQ(0, dmabuf_sync_end(self->blk[i].fd));
	}
}

/* ------------------------------------------------------------------ */
/* 3-5. Waiting for a block                                            */
/* ------------------------------------------------------------------ */

/* SYNC_START blocks until the block is full (1000 scans at 1 kHz: ~1 s) */
TEST_F_TIMEOUT(dmab, sync_start_blocks, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct ramp_check rc;
	struct dmabuf_block *b = &self->blk[0];
	double t, dt;
	size_t i;
	int ret;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	ASSERT_EQ((long long)b->size, dmabuf_size(b->fd));	/* rounded up */
	ASSERT_LT(bytes, b->size);
	/* through the seed's ioctl number */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL, b, bytes);
	ASSERT_EQ(0, adc_buffer_enable(&self->a));

	t = now_s();
	ret = dmabuf_sync_start(b->fd);
	dt = now_s() - t;
	DIAG("sync_start_blocks: SYNC_START returned %d after %.3f s", ret, dt);
	ASSERT_EQ(0, ret);
	EXPECT_LE(0.5, dt) {
		TH_LOG("SYNC_START returned after %.3f s, before the block could be full",
		       dt);
	}
	EXPECT_GE(5.0, dt);

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, ramp_feed(&rc, b->map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ(1000U, rc.scans);
	/* only bytes_used bytes are written: the rest is still zero */
	for (i = bytes; i < b->size; i++)
		if (b->map[i])
			break;
	EXPECT_EQ(b->size, i) {
		TH_LOG("byte %zu past bytes_used is %#x", i, b->map[i]);
	}
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/* poll(): POLLOUT only once the block is done */
TEST_F_TIMEOUT(dmab, poll_pollout, 60)
{
	const size_t bytes = 100 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct ramp_check rc;
	double t0, dt;
	int ret;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	/* no fence yet: idle */
	EXPECT_EQ(1, poll_events(b->fd, POLLOUT, 0));

	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	EXPECT_EQ(0, poll_events(b->fd, POLLOUT, 0)) {
		TH_LOG("POLLOUT right after ENQUEUE, buffer disabled");
	}
	t0 = now_s();
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	EXPECT_EQ(0, poll_events(b->fd, POLLOUT, 0)) {
		TH_LOG("POLLOUT right after enable (100 scans at 100 Hz)");
	}
	EXPECT_EQ(0, poll_events(b->fd, POLLOUT, 200)) {
		TH_LOG("POLLOUT within 0.2 s (100 scans at 100 Hz)");
	}
	ret = poll_events(b->fd, POLLOUT, 10000);
	dt = now_s() - t0;
	DIAG("poll_pollout: poll returned %d after %.3f s", ret, dt);
	ASSERT_EQ(1, ret);
	EXPECT_LE(0.5, dt);

	/* done: SYNC_START does not block and the data is there */
	t0 = now_s();
	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	EXPECT_GE(0.5, now_s() - t0);
	ramp_init(&rc, ADC_ALL_TS, false);
	EXPECT_EQ(0, ramp_feed(&rc, b->map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
	EXPECT_EQ(1, poll_events(b->fd, POLLOUT, 0));
}

/* DMA_BUF_IOCTL_EXPORT_SYNC_FILE: a sync_file that signals with status 1 */
TEST_F_TIMEOUT(dmab, sync_file_signals, 60)
{
	const size_t bytes = 500 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct ramp_check rc;
	int st_w = 0, st_r = 0;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);

	/* a WRITE fence: found both by writers and by readers */
	self->sfd[0] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]) {
		TH_LOG("EXPORT_SYNC_FILE (WRITE): %s", strerror(-self->sfd[0]));
	}
	self->sfd[1] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_READ);
	ASSERT_LE(0, self->sfd[1]) {
		TH_LOG("EXPORT_SYNC_FILE (READ): %s", strerror(-self->sfd[1]));
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st_w));
	ASSERT_EQ(0, sync_file_status(self->sfd[1], &st_r));
	EXPECT_EQ(0, st_w);
	EXPECT_EQ(0, st_r);
	EXPECT_EQ(0, poll_events(self->sfd[0], POLLIN, 100));

	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st_w));
	ASSERT_EQ(0, sync_file_wait(self->sfd[1], 10000, &st_r));
	EXPECT_EQ(1, st_w);
	EXPECT_EQ(1, st_r);

	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	ramp_init(&rc, ADC_ALL_TS, false);
	EXPECT_EQ(0, ramp_feed(&rc, b->map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(500U, rc.scans);
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/* ------------------------------------------------------------------ */
/* 6-8. Fence errors and lifetime                                      */
/* ------------------------------------------------------------------ */

/*
 * Disabling the buffer with a block being filled and one queued: both
 * fences signal with -ECANCELED, a waiter in SYNC_START returns. The
 * queue works again afterwards, the ramp restarting at 0.
 */
TEST_F_TIMEOUT(dmab, disable_cancels, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct sync_waiter w = { 0 };
	struct ramp_check rc;
	pthread_t th;
	int i, st;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(2, bytes, true);
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	ASSERT_EQ(0, adc_buffer_enable(&self->a));

	w.fd = self->blk[0].fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	ASSERT_EQ(0, adc_buffer_disable(&self->a));
	ASSERT_EQ(0, join_within(th, 5)) {
		TH_LOG("SYNC_START still blocked 5 s after disable");
	}
	DIAG("disable_cancels: SYNC_START returned %d, %.3f s after starting",
	     w.ret, w.t_done - w.t_start);
	EXPECT_EQ(0, w.ret);

	for (i = 0; i < 2; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after disable", i);
		}
		EXPECT_EQ(-ECANCELED, st) {
			TH_LOG("block %d: fence status %d (%s)", i, st,
			       st < 0 ? strerror(-st) : "no error");
		}
		EXPECT_EQ(0, dmabuf_sync_start(self->blk[i].fd));
		EXPECT_EQ(0, dmabuf_sync_end(self->blk[i].fd));
		EXPECT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 1000));
	}

	/* the queue is empty and usable again */
	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[1], bytes);
	close(self->sfd[1]);
	self->sfd[1] = dmabuf_export_sync_file(self->blk[1].fd,
					       DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[1]);
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[1], 10000, &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, dmabuf_sync_start(self->blk[1].fd));
	ramp_init(&rc, ADC_ALL_TS, false);
	EXPECT_EQ(0, ramp_feed(&rc, self->blk[1].map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, dmabuf_sync_end(self->blk[1].fd));
}

/* Closing the char device with blocks queued completes them with an error */
TEST_F_TIMEOUT(dmab, close_chardev_cancels, 60)
{
	const size_t bytes = 1000 * SCAN;
	int i, st;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(3, bytes, true);
	for (i = 0; i < 3; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	/* block 0 in flight, 1 and 2 queued */
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	sleep_ms(200);
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = -1;

	for (i = 0; i < 3; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after close", i);
		}
		DIAG("close_chardev_cancels: block %d fence status %d", i, st);
		EXPECT_GT(0, st) {
			TH_LOG("block %d: fence status %d, expected an error",
			       i, st);
		}
		EXPECT_EQ(0, dmabuf_sync_start(self->blk[i].fd));
		/* still mapped, still our memory */
		self->blk[i].map[0] = 0x5a;
		self->blk[i].map[bytes - 1] = 0xa5;
		EXPECT_EQ(0x5a, self->blk[i].map[0]);
		EXPECT_EQ(0xa5, self->blk[i].map[bytes - 1]);
		EXPECT_EQ(0, dmabuf_sync_end(self->blk[i].fd));
	}

	/* the device works on: fileio, or a new DMABUF session */
	ASSERT_EQ(0, adc_buffer_disable(&self->a));
	self->cfd = adc_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
}

/*
 * A block's DMABUF fd closed (never mapped) while queued: the queue's
 * reference keeps it alive, it completes (status 1), and the next block
 * continues the ramp after it.
 */
TEST_F_TIMEOUT(dmab, close_queued_block_fd, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct dmabuf_block *a = &self->blk[0], *b = &self->blk[1];
	struct ramp_check rc;
	int st = 0;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, dmabuf_block_alloc(a, self->cfd, bytes, false));
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, bytes, true));
	self->nblk = 2;
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, bytes);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(a->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_EQ(0, close(a->fd));
	a->fd = -1;

	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st)) {
		TH_LOG("the closed block's fence never signalled");
	}
	EXPECT_EQ(1, st);

	ASSERT_EQ(1, poll_events(b->fd, POLLOUT, 10000));
	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	ramp_init(&rc, ADC_ALL_TS, false);
	rc.expect = 1000;	/* the closed block took scans 0..999 */
	EXPECT_EQ(0, ramp_feed(&rc, b->map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	/* No scan lost between the blocks (the hardware overruns after b). */
	EXPECT_EQ(1000, rc.first_n);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/*
 * rmdir with blocks queued and mapped and a thread in SYNC_START: the
 * thread returns, the fences signal -ENODEV, the mappings stay usable and
 * the still-open char device answers ENODEV.
 */
TEST_F_TIMEOUT(dmab, rmdir_with_blocks, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct sync_waiter w = { 0 };
	char name[64], node[64];
	pthread_t th;
	double t;
	int i, st, ret;

	snprintf(name, sizeof(name), "%s", self->a.name);
	adc_dmabuf_path(&self->a, node, sizeof(node));
	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(3, bytes, true);
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	w.fd = self->blk[0].fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	t = now_s();
	ASSERT_EQ(0, adc_rmdir(name));
	self->a.devnum = -1;
	ret = join_within(th, 10);
	ASSERT_EQ(0, ret) {
		TH_LOG("SYNC_START still blocked 10 s after rmdir");
	}
	DIAG("rmdir_with_blocks: SYNC_START returned %d %.3f s after rmdir",
	     w.ret, w.t_done - t);
	EXPECT_EQ(0, w.ret);

	for (i = 0; i < 2; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after rmdir", i);
		}
		EXPECT_EQ(-ENODEV, st) {
			TH_LOG("block %d: fence status %d (%s)", i, st,
			       st < 0 ? strerror(-st) : "no error");
		}
		EXPECT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 1000));
	}
	/* the mappings are still ours */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, dmabuf_sync_start(self->blk[i].fd));
		memset(self->blk[i].map, 0x10 + i, bytes);
		EXPECT_EQ(0x10 + i, self->blk[i].map[bytes / 2]);
		EXPECT_EQ(0x10 + i, self->blk[i].map[bytes - 1]);
		EXPECT_EQ(0, dmabuf_sync_end(self->blk[i].fd));
	}
	/* the device is gone; its char device only answers ENODEV */
	EXPECT_EQ(-ENODEV, dmabuf_enqueue(self->cfd, self->blk[2].fd, bytes));
	EXPECT_EQ(-ENODEV, dmabuf_enqueue_cmd(self->cfd,
					      IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL,
					      self->blk[2].fd, 0, bytes));
	ret = dmabuf_alloc(self->cfd, 4096);
	if (ret >= 0)
		close(ret);
	EXPECT_EQ(-ENODEV, ret);
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	t = now_s() + 2.0;
	while (path_exists(node) && now_s() < t)
		sleep_ms(10);
	EXPECT_FALSE(path_exists(node)) {
		TH_LOG("%s still exists after rmdir", node);
	}
	EXPECT_EQ(0, close(self->cfd));
	self->cfd = -1;
	/* and after the char device is closed too */
	self->blk[0].map[0] = 0x77;
	EXPECT_EQ(0x77, self->blk[0].map[0]);
}

/* ------------------------------------------------------------------ */
/* 9. Two threads on the same char device                              */
/* ------------------------------------------------------------------ */

#define MT_FREQ		20000
#define MT_SCANS	1024
#define MT_PER_THREAD	4

struct mt_worker {
	int cfd;
	struct dmabuf_block *blk;	/* MT_PER_THREAD blocks */
	double deadline;
	int id;
	/* results */
	int blocks_checked;
	int err;		/* 0 or -errno of the failing call */
	char what[320];		/* what failed */
};

static void *mt_worker_fn(void *arg)
{
	const size_t bytes = MT_SCANS * SCAN;
	struct mt_worker *mw = arg;
	bool queued[MT_PER_THREAD] = { false };
	int i, nq = 0, ret;
	char err[256];

	for (i = 0; i < MT_PER_THREAD; i++) {
		ret = dmabuf_enqueue(mw->cfd, mw->blk[i].fd, bytes);
		if (ret) {
			mw->err = ret;
			snprintf(mw->what, sizeof(mw->what),
				 "first ENQUEUE of block %d: %s", i,
				 strerror(-ret));
			return NULL;
		}
		queued[i] = true;
		nq++;
	}
	for (i = 0; nq; i = (i + 1) % MT_PER_THREAD) {
		struct dmabuf_block *b = &mw->blk[i];

		if (!queued[i])
			continue;
		ret = poll_events(b->fd, POLLOUT, 10000);
		if (ret != 1) {
			mw->err = ret ? ret : -ETIMEDOUT;
			snprintf(mw->what, sizeof(mw->what),
				 "block %d not done after 10 s (%d)", i, ret);
			return NULL;
		}
		queued[i] = false;
		nq--;
		ret = dmabuf_sync_start(b->fd);
		if (ret) {
			mw->err = ret;
			snprintf(mw->what, sizeof(mw->what),
				 "SYNC_START: %s", strerror(-ret));
			return NULL;
		}
		ret = check_block_alone(b, bytes, ADC_ALL_TS, err, sizeof(err));
		dmabuf_sync_end(b->fd);
		if (ret) {
			mw->err = ret;
			snprintf(mw->what, sizeof(mw->what),
				 "block #%d: %s", mw->blocks_checked, err);
			return NULL;
		}
		mw->blocks_checked++;
		if (now_s() < mw->deadline) {
			ret = dmabuf_enqueue(mw->cfd, b->fd, bytes);
			if (ret) {
				mw->err = ret;
				snprintf(mw->what, sizeof(mw->what),
					 "re-ENQUEUE: %s", strerror(-ret));
				return NULL;
			}
			queued[i] = true;
			nq++;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(dmab, two_threads, 120)
{
	const size_t bytes = MT_SCANS * SCAN;
	struct mt_worker mw[2];
	pthread_t th[2];
	long long ov0, ov1;
	int i, ret;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, MT_FREQ, 0, 0));
	ALLOC_BLOCKS(2 * MT_PER_THREAD, bytes, true);
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov0));
	ASSERT_EQ(0, adc_buffer_enable(&self->a));

	for (i = 0; i < 2; i++) {
		memset(&mw[i], 0, sizeof(mw[i]));
		mw[i].cfd = self->cfd;
		mw[i].blk = &self->blk[i * MT_PER_THREAD];
		mw[i].deadline = now_s() + 2.0;
		mw[i].id = i;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, mt_worker_fn, &mw[i]));
	}
	for (i = 0; i < 2; i++) {
		ret = join_within(th[i], 60);
		ASSERT_EQ(0, ret) {
			TH_LOG("thread %d hangs", i);
		}
	}
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov1));
	ASSERT_EQ(0, adc_buffer_disable(&self->a));
	for (i = 0; i < 2; i++) {
		DIAG("two_threads: thread %d checked %d blocks", i,
		     mw[i].blocks_checked);
		EXPECT_EQ(0, mw[i].err) {
			TH_LOG("thread %d: %s", i, mw[i].what);
		}
		EXPECT_LE(MT_PER_THREAD, mw[i].blocks_checked);
	}
	DIAG("two_threads: overruns %lld -> %lld", ov0, ov1);
}

/* ------------------------------------------------------------------ */
/* 10. A waiter killed with SIGKILL                                    */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(dmab, sigkill_waiter, 60)
{
	const size_t bytes = 100 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct ramp_check rc;
	int status = 0, st = 0;
	pid_t pid, w;
	double t;

	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	/* queued with the buffer disabled: the fence stays pending */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct dma_buf_sync s = {
			.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
		};

		_exit(ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &s) ? 2 : 3);
	}
	sleep_ms(300);
	w = waitpid(pid, &status, WNOHANG);
	if (w == pid) {
		TH_LOG("the child did not block in SYNC_START (status %#x)",
		       status);
	}
	ASSERT_EQ(0, w);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	t = now_s();
	do {
		w = waitpid(pid, &status, WNOHANG);
		if (w)
			break;
		sleep_ms(10);
	} while (now_s() - t < 2.0);
	DIAG("sigkill_waiter: child reaped after %.3f s", now_s() - t);
	if (w == 0) {
		/* let teardown's disable wake it, and do not leave a zombie */
		adc_buffer_disable(&self->a);
		close(self->cfd);
		self->cfd = -1;
		waitpid(pid, &status, 0);
	}
	ASSERT_EQ(pid, w) {
		TH_LOG("child blocked in SYNC_START survived SIGKILL for 2 s");
	}
	EXPECT_TRUE(WIFSIGNALED(status));
	if (WIFSIGNALED(status))
		EXPECT_EQ(SIGKILL, WTERMSIG(status));

	/* nothing broke: the block still completes normally */
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st);
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	ramp_init(&rc, ADC_ALL_TS, false);
	EXPECT_EQ(0, ramp_feed(&rc, b->map, bytes)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/* ------------------------------------------------------------------ */
/* 11. ALLOC / close cycles give the memory back                       */
/* ------------------------------------------------------------------ */

#define CYCLES		2000
#define CYCLE_BYTES	(64 * 1024)

TEST_F_TIMEOUT(dmab, alloc_cycles_no_growth, 600)
{
	const size_t page = page_size();
	long long max, left;
	double t = now_s();
	size_t piece;
	int i, n, fd, ret;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&max));
	ASSERT_GE((long long)(256 << 20), max) {
		TH_LOG("dmabuf_max_bytes %lld: too big to fill in this test",
		       max);
	}
	ASSERT_LE((long long)(2 * CYCLE_BYTES), max);

	/* 2000 x 64 KiB = 125 MiB in total, twice the default limit */
	for (i = 0; i < CYCLES; i++) {
		uint8_t *p;

		fd = dmabuf_alloc(self->cfd, CYCLE_BYTES);
		ASSERT_LE(0, fd) {
			TH_LOG("cycle %d: ALLOC: %s", i, strerror(-fd));
		}
		if (i % 10 == 0) {
			p = mmap(NULL, CYCLE_BYTES, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
			ASSERT_NE(MAP_FAILED, p) {
				TH_LOG("cycle %d: mmap: %s", i, strerror(errno));
			}
			ASSERT_EQ(0, p[CYCLE_BYTES - 1]);
			p[0] = (uint8_t)i;
			p[CYCLE_BYTES - 1] = 0xff;
			/* sometimes the mapping outlives the fd */
			if (i % 20 == 0) {
				ASSERT_EQ(0, close(fd));
				fd = -1;
			}
			ASSERT_EQ(0, munmap(p, CYCLE_BYTES));
		}
		if (fd >= 0)
			ASSERT_EQ(0, close(fd));
	}
	DIAG("alloc_cycles: %d ALLOC/close cycles of %d bytes in %.3f s",
	     CYCLES, CYCLE_BYTES, now_s() - t);

	/* all of it came back: the whole limit can be allocated at once */
	n = 0;
	for (left = max; left >= (long long)page; left -= piece) {
		piece = left > (long long)DMABUF_MAX_BLOCK_SIZE ?
			DMABUF_MAX_BLOCK_SIZE : (size_t)left;
		piece -= piece % page;
		ASSERT_GT(MAXB, n);
		ret = dmabuf_block_alloc(&self->blk[n], self->cfd, piece, false);
		ASSERT_EQ(0, ret) {
			TH_LOG("ALLOC of %zu bytes with %lld of %lld allocated: %s",
			       piece, max - left, max, strerror(-ret));
		}
		n++;
	}
	DIAG("alloc_cycles: %d blocks up to the limit of %lld bytes", n, max);
	ret = dmabuf_alloc(self->cfd, page);
	if (ret >= 0)
		close(ret);
	EXPECT_EQ(-ENOMEM, ret) {
		TH_LOG("ALLOC past dmabuf_max_bytes (%lld) did not fail", max);
	}
	/* and again once released */
	for (i = 0; i < n; i++)
		dmabuf_block_free(&self->blk[i]);
	ret = dmabuf_block_alloc(&self->blk[0], self->cfd,
				 max > (long long)DMABUF_MAX_BLOCK_SIZE ?
				 DMABUF_MAX_BLOCK_SIZE : (size_t)max, false);
	EXPECT_EQ(0, ret);
}

TEST_HARNESS_MAIN
