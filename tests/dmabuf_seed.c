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

#define NSEC_PER_SEC	1000000000ULL

/* Device time from scan 0 to scan @n at @f Hz: floor(n * 1e9 / f) ns */
static int64_t scan_offset_ns(uint64_t n, long long f)
{
	return (int64_t)((n / f) * NSEC_PER_SEC +
			 (n % f) * NSEC_PER_SEC / (uint64_t)f);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The clock current_timestamp_clock names (realtime or monotonic here) */
static int adc_ts_clock(const struct inst *a, clockid_t *id)
{
	char buf[64];
	int ret;

	ret = inst_read(a, "current_timestamp_clock", buf, sizeof(buf));
	if (ret < 0)
		return ret;
	if (!strcmp(buf, "realtime"))
		*id = CLOCK_REALTIME;
	else if (!strcmp(buf, "monotonic"))
		*id = CLOCK_MONOTONIC;
	else
		return -EINVAL;
	return 0;
}

/* Timestamp of scan @i of a block of all-channel + timestamp scans */
static int64_t scan_ts(const uint8_t *map, size_t i)
{
	return get_le64(map + i * SCAN + 8);
}

/*
 * The timestamps of the @nscans scans of @map are those of scans
 * @first, @first + 1, ... of a stream at @f Hz whose scan 0 has @ts0:
 * 0, or -1 with @err set.
 */
static int check_ts(const uint8_t *map, size_t nscans, uint64_t first,
		    int64_t ts0, long long f, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < nscans; i++) {
		int64_t want = ts0 + scan_offset_ns(first + i, f);

		if (scan_ts(map, i) != want) {
			snprintf(err, errlen,
				 "scan %" PRIu64 ": timestamp %" PRId64 ", expected %" PRId64,
				 first + i, scan_ts(map, i), want);
			return -1;
		}
	}
	return 0;
}

/* The DMABUF fixture: one instance, its DMABUF char device, blocks. */
FIXTURE(dmab) {
	struct inst a, b;
	int cfd, cfd2;
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
	self->b.devnum = -1;
	self->cfd = -1;
	self->cfd2 = -1;
	self->nblk = 0;
	self->restore_max = false;
	for (i = 0; i < MAXB; i++) {
		dmabuf_block_init(&self->blk[i]);
		self->sfd[i] = -1;
	}
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "dmb"));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s", self->a.devnum,
		       strerror(-self->cfd));
	}
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 0, 0, 0));
}

FIXTURE_TEARDOWN(dmab)
{
	int i;

	/* disabling cancels whatever is still queued: nothing stays pending */
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->b.devnum >= 0)
		inst_buffer_disable(&self->b);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->cfd2 >= 0)
		close(self->cfd2);
	for (i = 0; i < MAXB; i++) {
		if (self->sfd[i] >= 0)
			close(self->sfd[i]);
		dmabuf_block_free(&self->blk[i]);
	}
	inst_destroy(&self->a);
	inst_destroy(&self->b);
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

/*
 * Enable instance a, then the block @b's fence (sync_file @sf) signals
 * within 10 s without error, and its first @n bytes hold the ramp from
 * scan 0, checked by *@rcp (block_wait_check()).
 */
#define FILLED_FROM_0(b, sf, rcp, n) do {				\
	struct block_wait _w = {					\
		.enable = &self->a, .wait = BLOCK_WAIT_SYNC_FILE,	\
		.sfd = (sf), .timeout_ms = 10000, .rc = (rcp), .bytes = (n), \
	};								\
	ramp_init((rcp), ADC_ALL_TS, false);				\
	BLOCK_WAIT_OK(&_w, (b));					\
	EXPECT_EQ(0, (rcp)->first_n);					\
} while (0)

/* ------------------------------------------------------------------ */
/* 1. The typical seed workflow                                        */
/* ------------------------------------------------------------------ */

FIXTURE(workflow) {
	struct inst a;
	int cfd;
	struct dmabuf_block blk[16];
};

/*
 * Each variant leaves the reader (nblocks - 1) blocks of slack, 1.6 s or
 * more: TCG with KASAN on a loaded machine may stall it that long.
 */
FIXTURE_VARIANT(workflow) {
	int nblocks;
	bool seed_alias;	/* ENQUEUE through the 0x93 alias */
	size_t scans;		/* per block */
	long long freq;
	int total;		/* blocks checked */
};

FIXTURE_VARIANT_ADD(workflow, blocks2) {
	.nblocks = 2, .seed_alias = false,
	.scans = 16384, .freq = 10000, .total = 10,
};

FIXTURE_VARIANT_ADD(workflow, blocks4_seed_ioctl) {
	.nblocks = 4, .seed_alias = true,
	.scans = 8192, .freq = 10000, .total = 16,
};

FIXTURE_VARIANT_ADD(workflow, blocks16) {
	.nblocks = 16, .seed_alias = false,
	.scans = 4096, .freq = 20000, .total = 50,
};

FIXTURE_SETUP(workflow)
{
	int i;

	self->a.devnum = -1;
	self->cfd = -1;
	for (i = 0; i < 16; i++)
		dmabuf_block_init(&self->blk[i]);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "wf"));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd) {
		TH_LOG("open DMABUF char device: %s", strerror(-self->cfd));
	}
}

FIXTURE_TEARDOWN(workflow)
{
	int i;

	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->cfd >= 0)
		close(self->cfd);
	for (i = 0; i < 16; i++)
		dmabuf_block_free(&self->blk[i]);
	inst_destroy(&self->a);
}

/*
 * ALLOC + mmap every block, queue them all, enable, then: wait for the
 * oldest (SYNC_START), check it continues the ramp with exact timestamps
 * (scan 0 stamped during the enable), SYNC_END, re-queue it. No gap, no
 * overrun, no block back before its last scan was taken.
 */
TEST_F_TIMEOUT(workflow, ramp, 180)
{
	const size_t bytes = variant->scans * SCAN;
	const unsigned long cmd = variant->seed_alias ?
		IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL :
		IIO_BUFFER_DMABUF_ENQUEUE_IOCTL;
	const int nb = variant->nblocks;
	struct ramp_check rc;
	long long ov0, ov1;
	int64_t t_en0, t_en1, t_back;
	double t0, t1, tw = 0, t;
	clockid_t clk;
	char err[256];
	int i, done, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, variant->freq, 0, 0));

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
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	t0 = now_s();
	t_en0 = clock_ns(clk);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	t_en1 = clock_ns(clk);

	for (done = 0; done < variant->total; done++) {
		struct dmabuf_block *b = &self->blk[done % nb];

		t = now_s();
		ret = dmabuf_sync_start(b->fd);
		t_back = clock_ns(clk);
		tw += now_s() - t;
		ASSERT_EQ(0, ret) {
			TH_LOG("SYNC_START block %d: %s", done, strerror(-ret));
		}
		ret = ramp_feed(&rc, b->map, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d (buffer %d): %s", done, done % nb,
			       rc.err);
		}
		ASSERT_EQ(0, check_ts(b->map, variant->scans,
				      (uint64_t)done * variant->scans,
				      rc.first_ts, variant->freq, err,
				      sizeof(err))) {
			TH_LOG("block #%d: %s", done, err);
		}
		ASSERT_LE(scan_ts(b->map, variant->scans - 1), t_back) {
			TH_LOG("block #%d back before its last scan was taken",
			       done);
		}
		ASSERT_EQ(0, dmabuf_sync_end(b->fd));
		/* always re-queue: the queue never runs dry */
		ret = dmabuf_enqueue_cmd(self->cfd, cmd, b->fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("re-ENQUEUE block #%d: %s", done, strerror(-ret));
		}
	}
	/* blocks are still queued here: nothing can have been dropped */
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	t1 = now_s();
	ASSERT_EQ(0, inst_buffer_disable(&self->a));

	DIAG("workflow %d blocks: %" PRIu64 " scans in %.3f s (%.1f scans/s), "
	     "%.3f s waiting in SYNC_START, overruns %lld -> %lld",
	     nb, rc.scans, t1 - t0, rc.scans / (t1 - t0), tw, ov0, ov1);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)variant->total * variant->scans, rc.scans);
	EXPECT_EQ(ov0, ov1);
	EXPECT_LE(t_en0, rc.first_ts);
	EXPECT_GE(t_en1, rc.first_ts);

	/* the blocks still queued were cancelled: waiting returns */
	for (i = 0; i < nb; i++) {
		EXPECT_EQ(0, dmabuf_sync_start(self->blk[i].fd));
		EXPECT_EQ(0, dmabuf_sync_end(self->blk[i].fd));
	}
}

/* ------------------------------------------------------------------ */
/* 3-5. Waiting for a block                                            */
/* ------------------------------------------------------------------ */

/*
 * SYNC_START blocks until the block is full (1000 scans at 1 kHz): it
 * returns after its last scan was taken (its timestamp), and soon after.
 */
TEST_F_TIMEOUT(dmab, sync_start_blocks, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct ramp_check rc;
	struct dmabuf_block *b = &self->blk[0];
	int64_t t_back, t_last;
	clockid_t clk;
	size_t i;
	int ret;

	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	ASSERT_EQ((long long)b->size, dmabuf_size(b->fd));	/* rounded up */
	ASSERT_LT(bytes, b->size);
	/* through the seed's ioctl number */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL, b, bytes);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));

	ret = dmabuf_sync_start(b->fd);
	t_back = clock_ns(clk);
	ASSERT_EQ(0, ret);
	t_last = scan_ts(b->map, 999);
	DIAG("sync_start_blocks: SYNC_START returned %.3f s after the last scan was taken",
	     (t_back - t_last) / 1e9);
	EXPECT_LE(t_last, t_back) {
		TH_LOG("SYNC_START returned before the block could be full");
	}
	EXPECT_GE(t_last + 2000000000LL, t_back) {
		TH_LOG("SYNC_START returned %.3f s after the block was full",
		       (t_back - t_last) / 1e9);
	}

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

/*
 * poll(): POLLOUT only once the block is done (100 scans at 100 Hz):
 * never before its last scan was taken; then its fence has signalled.
 */
TEST_F_TIMEOUT(dmab, poll_pollout, 60)
{
	const size_t bytes = 100 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct ramp_check rc;
	int64_t t_out, t_last;
	clockid_t clk;
	int ret, st = 0;

	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	/* no fence yet: idle */
	EXPECT_EQ(1, poll_events(b->fd, POLLOUT, 0));

	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	/* the buffer is disabled: the block cannot be done */
	EXPECT_EQ(0, poll_events(b->fd, POLLOUT, 300)) {
		TH_LOG("POLLOUT with the buffer disabled");
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ret = poll_events(b->fd, POLLOUT, 10000);
	t_out = clock_ns(clk);
	ASSERT_EQ(1, ret);
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(1, st);

	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	t_last = scan_ts(b->map, 99);
	DIAG("poll_pollout: POLLOUT %.3f s after the last scan was taken",
	     (t_out - t_last) / 1e9);
	EXPECT_LE(t_last, t_out);
	EXPECT_GE(t_last + 2000000000LL, t_out);
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

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
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

	/* the WRITE one signals, status 1; the block holds 500 scans */
	FILLED_FROM_0(b, self->sfd[0], &rc, bytes);
	EXPECT_EQ(500U, rc.scans);
	/* and so does the READ one */
	ASSERT_EQ(0, sync_file_wait(self->sfd[1], 10000, &st_r));
	EXPECT_EQ(1, st_r);
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

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(2, bytes, true);
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));

	w.fd = self->blk[0].fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	ASSERT_EQ(0, inst_buffer_disable(&self->a));
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
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[1], bytes);
	close(self->sfd[1]);
	self->sfd[1] = dmabuf_export_sync_file(self->blk[1].fd,
					       DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[1]);
	FILLED_FROM_0(&self->blk[1], self->sfd[1], &rc, bytes);
}

/* Closing the char device with blocks queued completes them with an error */
TEST_F_TIMEOUT(dmab, close_chardev_cancels, 60)
{
	const size_t bytes = 1000 * SCAN;
	int i, st;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(3, bytes, true);
	for (i = 0; i < 3; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	/* block 0 in flight, 1 and 2 queued */
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	sleep_ms(200);
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = -1;

	for (i = 0; i < 3; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after close", i);
		}
		EXPECT_EQ(-ECANCELED, st) {
			TH_LOG("block %d: fence status %d (%s)", i, st,
			       status_str(st));
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
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
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
	struct block_wait w = {
		.wait = BLOCK_WAIT_POLLOUT, .timeout_ms = 10000,
		.rc = &rc, .bytes = bytes,
	};
	int st = 0;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, dmabuf_block_alloc(a, self->cfd, bytes, false));
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, bytes, true));
	self->nblk = 2;
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, bytes);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(a->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_EQ(0, close(a->fd));
	a->fd = -1;

	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st)) {
		TH_LOG("the closed block's fence never signalled");
	}
	EXPECT_EQ(1, st);

	ramp_init(&rc, ADC_ALL_TS, false);
	rc.expect = 1000;	/* the closed block took scans 0..999 */
	BLOCK_WAIT_OK(&w, b);
	/* No scan lost between the blocks (the hardware overruns after b). */
	EXPECT_EQ(1000, rc.first_n);
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
	inst_dmabuf_path(&self->a, node, sizeof(node));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ALLOC_BLOCKS(3, bytes, true);
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
		self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,
						       DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, self->sfd[i]);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	w.fd = self->blk[0].fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	t = now_s();
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
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

#define MT_FREQ		10000
#define MT_PERIOD_NS	100000	/* 1 / MT_FREQ */
#define MT_SCANS	4096
#define MT_PER_THREAD	4
#define MT_BLOCKS	12	/* blocks each thread queues and checks */

/* A block as checked: where it sits in the ramp */
struct mt_rec {
	int64_t ts_first;
	uint16_t n16;		/* n mod 2^16 of its first scan */
	int thread;		/* -1: the main thread's tail block */
	int seq;		/* the thread's ENQUEUE order */
};

struct mt_worker {
	int cfd;
	struct dmabuf_block *blk;	/* MT_PER_THREAD blocks */
	int id;
	int enqueued;
	int all_queued;			/* atomic: every ENQUEUE done */
	/* results */
	int blocks_checked;
	struct mt_rec rec[MT_BLOCKS];
	int err;		/* 0 or -errno of the failing call */
	char what[320];		/* what failed */
};

/* Ramp and timestamp spacing within the block; records its place. */
static int mt_check_block(const struct dmabuf_block *b, struct mt_rec *r,
			  char *err, size_t errlen)
{
	size_t i;

	if (check_block_alone(b, MT_SCANS * SCAN, ADC_ALL_TS, err, errlen))
		return -EPROTO;
	for (i = 1; i < MT_SCANS; i++) {
		if (scan_ts(b->map, i) - scan_ts(b->map, 0) !=
		    (int64_t)i * MT_PERIOD_NS) {
			snprintf(err, errlen, "scan %zu of the block: timestamp %" PRId64
				 " ns after its first", i,
				 scan_ts(b->map, i) - scan_ts(b->map, 0));
			return -EPROTO;
		}
	}
	r->ts_first = scan_ts(b->map, 0);
	r->n16 = get_le16(b->map);	/* channel 0 holds n */
	return 0;
}

/* mt_check_block() as block_wait_check()'s check of the block @b */
struct mt_check {
	const struct dmabuf_block *b;
	struct mt_rec *r;
};

static int mt_check_fn(void *arg, const uint8_t *data, size_t bytes,
		       char *why, size_t len)
{
	struct mt_check *c = arg;

	(void)data;	/* c->b->map */
	(void)bytes;	/* MT_SCANS scans */
	return mt_check_block(c->b, c->r, why, len);
}

static void *mt_worker_fn(void *arg)
{
	const size_t bytes = MT_SCANS * SCAN;
	struct mt_worker *mw = arg;
	int seq[MT_PER_THREAD];
	bool queued[MT_PER_THREAD] = { false };
	int i, nq = 0, ret;

	for (i = 0; i < MT_PER_THREAD; i++) {
		ret = dmabuf_enqueue(mw->cfd, mw->blk[i].fd, bytes);
		if (ret) {
			mw->err = ret;
			snprintf(mw->what, sizeof(mw->what),
				 "first ENQUEUE of block %d: %s", i,
				 strerror(-ret));
			goto out;
		}
		seq[i] = mw->enqueued++;
		queued[i] = true;
		nq++;
	}
	for (i = 0; nq; i = (i + 1) % MT_PER_THREAD) {
		struct dmabuf_block *b = &mw->blk[i];
		struct mt_rec *r = &mw->rec[mw->blocks_checked];
		struct mt_check c = { .b = b, .r = r };
		struct block_wait w = {
			.wait = BLOCK_WAIT_POLLOUT, .timeout_ms = 30000,
			.check = mt_check_fn, .arg = &c, .bytes = bytes,
		};

		if (!queued[i])
			continue;
		queued[i] = false;
		nq--;
		ret = block_wait_check(&w, b);
		if (ret) {
			mw->err = ret;
			snprintf(mw->what, sizeof(mw->what),
				 "block #%d (buffer %d): %.256s",
				 mw->blocks_checked, i, w.why);
			goto out;
		}
		r->thread = mw->id;
		r->seq = seq[i];
		mw->blocks_checked++;
		if (mw->enqueued < MT_BLOCKS) {
			ret = dmabuf_enqueue(mw->cfd, b->fd, bytes);
			if (ret) {
				mw->err = ret;
				snprintf(mw->what, sizeof(mw->what),
					 "re-ENQUEUE: %s", strerror(-ret));
				goto out;
			}
			seq[i] = mw->enqueued++;
			queued[i] = true;
			nq++;
		}
		if (mw->enqueued == MT_BLOCKS)
			__atomic_store_n(&mw->all_queued, 1, __ATOMIC_SEQ_CST);
	}
out:
	__atomic_store_n(&mw->all_queued, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int mt_rec_cmp(const void *a, const void *b)
{
	const struct mt_rec *x = a, *y = b;

	return x->ts_first < y->ts_first ? -1 : x->ts_first > y->ts_first;
}

/*
 * Two threads queue and wait for blocks on the same char device at once.
 * The blocks of both, then a last one of the main thread, tile the ramp
 * from scan 0 with no gap and no overlap, each thread's in the order it
 * queued them, and nothing was dropped (the main thread keeps a long
 * block queued behind them, so that the queue never runs dry).
 */
TEST_F_TIMEOUT(dmab, two_threads, 180)
{
	const size_t bytes = MT_SCANS * SCAN;
	struct mt_rec all[2 * MT_BLOCKS + 1];
	struct dmabuf_block *tail = &self->blk[2 * MT_PER_THREAD];
	struct dmabuf_block *absorber = &self->blk[2 * MT_PER_THREAD + 1];
	struct mt_worker mw[2];
	struct mt_check tc = { .b = tail, .r = &all[2 * MT_BLOCKS] };
	struct block_wait w = {
		.wait = BLOCK_WAIT_POLLOUT, .timeout_ms = 30000,
		.check = mt_check_fn, .arg = &tc, .bytes = bytes,
	};
	int last_seq[2] = { -1, -1 };
	pthread_t th[2];
	long long ov0, ov1, ov2;
	double end;
	int i, n, ret;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, MT_FREQ, 0, 0));
	ALLOC_BLOCKS(2 * MT_PER_THREAD + 1, bytes, true);
	/* 100 s of scans: never full during this test */
	ASSERT_EQ(0, dmabuf_block_alloc(absorber, self->cfd, 1000000 * SCAN,
					false));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));

	for (i = 0; i < 2; i++) {
		memset(&mw[i], 0, sizeof(mw[i]));
		mw[i].cfd = self->cfd;
		mw[i].blk = &self->blk[i * MT_PER_THREAD];
		mw[i].id = i;
	}
	/* both threads queue their first blocks before the enable */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, mt_worker_fn, &mw[i]));
	sleep_ms(200);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));

	/* once both queued their last block, queue the tail behind them */
	end = now_s() + 120;
	while (!(__atomic_load_n(&mw[0].all_queued, __ATOMIC_SEQ_CST) &&
		 __atomic_load_n(&mw[1].all_queued, __ATOMIC_SEQ_CST)) &&
	       now_s() < end)
		sleep_ms(1);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, tail, bytes);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, absorber, 1000000 * SCAN);

	for (i = 0; i < 2; i++) {
		ret = join_within(th[i], 120);
		ASSERT_EQ(0, ret) {
			TH_LOG("thread %d hangs", i);
		}
	}
	for (i = 0; i < 2; i++) {
		DIAG("two_threads: thread %d checked %d blocks", i,
		     mw[i].blocks_checked);
		ASSERT_EQ(0, mw[i].err) {
			TH_LOG("thread %d: %s", i, mw[i].what);
		}
		ASSERT_EQ(MT_BLOCKS, mw[i].blocks_checked);
	}
	ASSERT_EQ(0, block_wait_check(&w, tail)) {
		TH_LOG("tail block: %s", w.why);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	all[2 * MT_BLOCKS].thread = -1;
	all[2 * MT_BLOCKS].seq = 0;
	/* the absorber being filled: still nothing dropped */
	sleep_ms(300);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov2));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	DIAG("two_threads: overruns %lld -> %lld -> %lld", ov0, ov1, ov2);
	EXPECT_EQ(ov0, ov1);
	EXPECT_EQ(ov1, ov2);

	n = 0;
	for (i = 0; i < 2; i++) {
		memcpy(&all[n], mw[i].rec, sizeof(mw[i].rec));
		n += MT_BLOCKS;
	}
	n++;
	qsort(all, n, sizeof(all[0]), mt_rec_cmp);
	EXPECT_EQ(0, all[0].n16) {
		TH_LOG("the first block starts at n = %u", all[0].n16);
	}
	for (i = 0; i < n; i++) {
		if (i > 0) {
			EXPECT_EQ((int64_t)MT_SCANS * MT_PERIOD_NS,
				  all[i].ts_first - all[i - 1].ts_first) {
				TH_LOG("block %d of the ramp starts %" PRId64
				       " ns after block %d", i,
				       all[i].ts_first - all[i - 1].ts_first,
				       i - 1);
			}
			EXPECT_EQ((uint16_t)(all[i - 1].n16 + MT_SCANS),
				  all[i].n16) {
				TH_LOG("block %d of the ramp starts at n16 %u after %u",
				       i, all[i].n16, all[i - 1].n16);
			}
		}
		if (all[i].thread >= 0) {
			EXPECT_LT(last_seq[all[i].thread], all[i].seq) {
				TH_LOG("thread %d: its block #%d filled after #%d",
				       all[i].thread, last_seq[all[i].thread],
				       all[i].seq);
			}
			last_seq[all[i].thread] = all[i].seq;
		}
	}
	/* queued last, filled last */
	EXPECT_EQ(-1, all[n - 1].thread);
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

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
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
	} while (now_s() - t < 10.0);
	DIAG("sigkill_waiter: child reaped after %.3f s", now_s() - t);
	if (w == 0) {
		/* let teardown's disable wake it, and do not leave a zombie */
		inst_buffer_disable(&self->a);
		close(self->cfd);
		self->cfd = -1;
		waitpid(pid, &status, 0);
	}
	ASSERT_EQ(pid, w) {
		TH_LOG("child blocked in SYNC_START survived SIGKILL for 10 s");
	}
	EXPECT_TRUE(WIFSIGNALED(status));
	if (WIFSIGNALED(status))
		EXPECT_EQ(SIGKILL, WTERMSIG(status));

	/* nothing broke: the block still completes normally */
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st);
	FILLED_FROM_0(b, self->sfd[0], &rc, bytes);
}

/* ------------------------------------------------------------------ */
/* 11. Overruns in DMABUF mode                                         */
/* ------------------------------------------------------------------ */

/*
 * With no block queued the hardware drops scans and counts them in
 * `overruns`; the next block starts exactly that many scan numbers later
 * (ramp and timestamps). A long block queued behind it keeps anything
 * else from being dropped.
 */
TEST_F_TIMEOUT(dmab, overrun_gap_equals_count, 60)
{
	const long long freq = 10000;
	/* b (5 s) leaves time to queue the absorber before it is full */
	const size_t na = 1000, nb = 50000, nabs = 1000000;
	struct dmabuf_block *a = &self->blk[0], *b = &self->blk[1];
	struct dmabuf_block *absorber = &self->blk[2];
	struct ramp_check rc;
	long long ov0, ov1, ov2, ov3;
	int64_t ts0, gap;
	char err[256];
	double end;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, freq, 0, 0));
	ASSERT_EQ(0, dmabuf_block_alloc(a, self->cfd, na * SCAN, true));
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, nb * SCAN, true));
	ASSERT_EQ(0, dmabuf_block_alloc(absorber, self->cfd, nabs * SCAN,
					false));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	EXPECT_EQ(0, ov0);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, na * SCAN);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(1, poll_events(a->fd, POLLOUT, 10000));

	/* nothing queued now: scans are dropped and counted */
	end = now_s() + 10;
	do {
		sleep_ms(50);
		ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	} while (ov1 == ov0 && now_s() < end);
	ASSERT_LT(ov0, ov1);
	sleep_ms(200);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, nb * SCAN);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, absorber, nabs * SCAN);
	ASSERT_EQ(1, poll_events(b->fd, POLLOUT, 30000));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov2));
	sleep_ms(300);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov3));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));

	ASSERT_EQ(0, dmabuf_sync_start(a->fd));
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, ramp_feed(&rc, a->map, na * SCAN)) {
		TH_LOG("block a: %s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	ts0 = rc.first_ts;
	ASSERT_EQ(0, check_ts(a->map, na, 0, ts0, freq, err, sizeof(err))) {
		TH_LOG("block a: %s", err);
	}
	ASSERT_EQ(0, dmabuf_sync_end(a->fd));

	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	ASSERT_EQ(0, check_block_alone(b, nb * SCAN, ADC_ALL_TS, err,
				       sizeof(err))) {
		TH_LOG("block b: %s", err);
	}
	/* scan numbers from the timestamps: 100 us per scan at 10 kHz */
	gap = (scan_ts(b->map, 0) - ts0) / 100000 - (int64_t)na;
	DIAG("overrun_gap: overruns %lld -> %lld -> %lld -> %lld, block b starts %" PRId64
	     " scans after block a", ov0, ov1, ov2, ov3, gap);
	EXPECT_EQ(0, check_ts(b->map, nb, na + gap, ts0, freq, err,
			      sizeof(err))) {
		TH_LOG("block b: %s", err);
	}
	EXPECT_EQ((uint16_t)(na + gap), get_le16(b->map)) {
		TH_LOG("block b's ramp starts at %u, its timestamp says %" PRId64,
		       get_le16(b->map), (int64_t)na + gap);
	}
	EXPECT_EQ(ov2 - ov0, gap);
	EXPECT_EQ(ov2, ov3);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/* ------------------------------------------------------------------ */
/* 12. Fence contexts and sequence numbers                             */
/* ------------------------------------------------------------------ */

/* SYNC_IOC_MERGE of two sync_files; the new fd or -errno */
static int sync_merge(int a, int b)
{
	struct sync_merge_data m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "merge");
	m.fd2 = b;
	if (ioctl(a, SYNC_IOC_MERGE, &m))
		return -errno;
	return m.fence;
}

/* Number of fences in a sync_file (SYNC_IOC_FILE_INFO); n or -errno */
static int sync_num_fences(int sfd)
{
	struct sync_file_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(sfd, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	return (int)info.num_fences;
}

/*
 * The write fence on the reservation object of the DMABUF @fd, as the
 * dma-buf core's debugfs (dma_buf/bufinfo) lists it: "write fence:
 * <context>:<seqno> ...". 0 or -errno.
 */
static int debugfs_write_fence(int fd, unsigned long long *ctx,
			       unsigned long long *seq)
{
	char line[512], exp[64];
	unsigned long long ino, c, q;
	struct stat st;
	size_t size;
	unsigned int flags, mode;
	long count;
	bool ours = false;
	int ret = -ENOENT;
	FILE *f;

	if (fstat(fd, &st))
		return -errno;
	f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%zu %x %x %ld %63s %llu", &size, &flags,
			   &mode, &count, exp, &ino) == 6) {
			ours = ino == (unsigned long long)st.st_ino;
			continue;
		}
		if (ours && sscanf(line, " write fence:%llu:%llu", &c, &q) == 2) {
			*ctx = c;
			*seq = q;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

#define WRITE_FENCE(blk, ctx, seq) do {					\
	int _r = debugfs_write_fence((blk)->fd, &(ctx), &(seq));	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("no write fence of fd %d in dma_buf/bufinfo: %s", \
		       (blk)->fd, strerror(-_r));			\
	}								\
} while (0)

/*
 * Each ENQUEUE creates a fence; all fences of one buffer share one fence
 * context (also across closing and reopening the char device), another
 * buffer has another, and sequence numbers increase in ENQUEUE order.
 * Read from the dma-buf core's debugfs, and through the sync_file uAPI:
 * merging two sync_files keeps one fence per context, the later one.
 */
TEST_F_TIMEOUT(dmab, fence_contexts_seqnos, 60)
{
	struct dmabuf_block *a = &self->blk[0], *b = &self->blk[1];
	struct dmabuf_block *c = &self->blk[2], *d = &self->blk[3];
	struct dmabuf_block *e = &self->blk[4];
	unsigned long long ca, sa, cb, sb, cc, sc, cd, sd, ce, se, ca2, sa2;
	int m_ab, m_ba, m_ad, st = 0;
	const size_t big = 100000 * SCAN;	/* 1000 s at 100 Hz */

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "dmb2"));
	ASSERT_EQ(0, inst_configure(&self->b, ADC_ALL_TS, 100, 0, 0));
	self->cfd2 = inst_dmabuf_open(&self->b, O_RDWR);
	ASSERT_LE(0, self->cfd2);
	ASSERT_EQ(0, dmabuf_block_alloc(a, self->cfd, 10 * SCAN, false));
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, big, false));
	ASSERT_EQ(0, dmabuf_block_alloc(c, self->cfd, 10 * SCAN, false));
	ASSERT_EQ(0, dmabuf_block_alloc(d, self->cfd2, 10 * SCAN, false));
	ASSERT_EQ(0, dmabuf_block_alloc(e, self->cfd2, 10 * SCAN, false));

	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, 10 * SCAN);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL, b, big);
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd2, d->fd, 10 * SCAN));
	ASSERT_EQ(0, dmabuf_enqueue(self->cfd2, e->fd, 10 * SCAN));
	WRITE_FENCE(a, ca, sa);
	WRITE_FENCE(b, cb, sb);
	WRITE_FENCE(d, cd, sd);
	WRITE_FENCE(e, ce, se);
	DIAG("fences: a %llu:%llu b %llu:%llu, other buffer d %llu:%llu e %llu:%llu",
	     ca, sa, cb, sb, cd, sd, ce, se);
	EXPECT_EQ(ca, cb);
	EXPECT_LT(sa, sb);
	EXPECT_EQ(cd, ce);
	EXPECT_LT(sd, se);
	EXPECT_NE(ca, cd);

	/* the same through sync_files: one context per buffer */
	self->sfd[0] = dmabuf_export_sync_file(a->fd, DMA_BUF_SYNC_WRITE);
	self->sfd[1] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	self->sfd[2] = dmabuf_export_sync_file(d->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_LE(0, self->sfd[1]);
	ASSERT_LE(0, self->sfd[2]);
	EXPECT_EQ(1, sync_num_fences(self->sfd[0]));
	m_ab = self->sfd[3] = sync_merge(self->sfd[0], self->sfd[1]);
	m_ba = self->sfd[4] = sync_merge(self->sfd[1], self->sfd[0]);
	m_ad = self->sfd[5] = sync_merge(self->sfd[0], self->sfd[2]);
	ASSERT_LE(0, m_ab);
	ASSERT_LE(0, m_ba);
	ASSERT_LE(0, m_ad);
	EXPECT_EQ(1, sync_num_fences(m_ab));
	EXPECT_EQ(1, sync_num_fences(m_ba));
	EXPECT_EQ(2, sync_num_fences(m_ad));

	/* a completes, b (1000 s) does not: both merges kept b, the later */
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, sync_file_status(m_ab, &st));
	EXPECT_EQ(0, st) {
		TH_LOG("the merge of a and b kept a's fence: b's seqno is not later");
	}
	ASSERT_EQ(0, sync_file_status(m_ba, &st));
	EXPECT_EQ(0, st);

	/* queued again: a new fence, on the same context, later than b's */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, 10 * SCAN);
	WRITE_FENCE(a, ca2, sa2);
	EXPECT_EQ(ca, ca2);
	EXPECT_LT(sb, sa2);

	/* the char device closed and reopened: still the buffer's context */
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, c, 10 * SCAN);
	WRITE_FENCE(c, cc, sc);
	DIAG("fences: a again %llu:%llu, c after reopening %llu:%llu",
	     ca2, sa2, cc, sc);
	EXPECT_EQ(ca, cc);
	EXPECT_LT(sa2, sc);
}

/* ------------------------------------------------------------------ */
/* 13. The memory of a block closed while queued                       */
/* ------------------------------------------------------------------ */

/*
 * A block whose fd is closed while it is queued still counts against
 * dmabuf_max_bytes (the queue references it) until it completed; then
 * its memory is released and can be allocated again.
 */
TEST_F_TIMEOUT(dmab, closed_queued_block_released, 60)
{
	const size_t sz = 64 * 1024, page = page_size();
	struct dmabuf_block *a = &self->blk[0], *b = &self->blk[1];
	int fd, st = 0;
	double end, t;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&self->max0));
	self->restore_max = true;
	ASSERT_EQ(0, dmabuf_max_bytes_set(2 * sz));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ASSERT_EQ(0, dmabuf_block_alloc(a, self->cfd, sz, false));
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, sz, false));
	fd = dmabuf_alloc(self->cfd, page);
	if (fd >= 0)
		close(fd);
	ASSERT_EQ(-ENOMEM, fd);

	/* 1000 scans at 1 kHz */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, a, 1000 * SCAN);
	self->sfd[0] = dmabuf_export_sync_file(a->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_EQ(0, close(a->fd));
	a->fd = -1;
	/* b, never queued, is released by its close */
	dmabuf_block_free(b);
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, sz, false));
	fd = dmabuf_alloc(self->cfd, page);
	if (fd >= 0)
		close(fd);
	ASSERT_EQ(-ENOMEM, fd) {
		TH_LOG("a queued block was released when its fd was closed");
	}

	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st));
	EXPECT_EQ(1, st);
	t = now_s();
	end = t + 10;
	do {
		fd = dmabuf_alloc(self->cfd, sz);
		if (fd >= 0)
			break;
		sleep_ms(10);
	} while (fd == -ENOMEM && now_s() < end);
	DIAG("closed_queued_block_released: memory back %.3f s after completion",
	     now_s() - t);
	ASSERT_LE(0, fd) {
		TH_LOG("ALLOC after the closed block completed: %s",
		       strerror(-fd));
	}
	close(fd);
}

/* ------------------------------------------------------------------ */
/* 14. SYNC_START interrupted by a signal                              */
/* ------------------------------------------------------------------ */

static int sig_seen;

static void sig_count(int sig)
{
	(void)sig;
	__atomic_add_fetch(&sig_seen, 1, __ATOMIC_SEQ_CST);
}

/* One DMA_BUF_IOCTL_SYNC(START | READ), not retried */
struct raw_waiter {
	int fd;
	int ret, err;
	int done;
};

static void *raw_waiter_fn(void *arg)
{
	struct raw_waiter *w = arg;
	struct dma_buf_sync s = {
		.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
	};

	w->ret = ioctl(w->fd, DMA_BUF_IOCTL_SYNC, &s);
	w->err = errno;
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int install_sigusr1(bool restart, struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_count;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	__atomic_store_n(&sig_seen, 0, __ATOMIC_SEQ_CST);
	return sigaction(SIGUSR1, &sa, old) ? -errno : 0;
}

/*
 * The wait is interruptible: a handled signal ends it with EINTR; the
 * fence is untouched and the block completes as usual.
 */
TEST_F_TIMEOUT(dmab, sync_start_eintr, 60)
{
	const size_t bytes = 100 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct raw_waiter w = { 0 };
	struct sigaction old;
	pthread_t th;
	double end;
	int st = 0;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	/* disabled: the fence stays pending */
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_EQ(0, install_sigusr1(false, &old));
	w.fd = b->fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, raw_waiter_fn, &w));
	sleep_ms(300);
	EXPECT_FALSE(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
	/* again until it returns: a signal may come before the ioctl */
	end = now_s() + 10;
	while (!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST) && now_s() < end) {
		pthread_kill(th, SIGUSR1);
		sleep_ms(100);
	}
	ASSERT_EQ(0, join_within(th, 5));
	sigaction(SIGUSR1, &old, NULL);
	EXPECT_LE(1, __atomic_load_n(&sig_seen, __ATOMIC_SEQ_CST));
	EXPECT_EQ(-1, w.ret);
	EXPECT_EQ(EINTR, w.err) {
		TH_LOG("SYNC_START: %s", w.ret ? strerror(w.err) : "returned 0");
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st);

	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, dmabuf_sync_start(b->fd));
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/*
 * With SA_RESTART the handler runs and the wait goes on: SYNC_START
 * returns 0 once the block is done, not before.
 */
TEST_F_TIMEOUT(dmab, sync_start_sa_restart, 60)
{
	const size_t bytes = 100 * SCAN;
	struct dmabuf_block *b = &self->blk[0];
	struct raw_waiter w = { 0 };
	struct sigaction old;
	pthread_t th;
	int i, st = 0;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ALLOC_BLOCKS(1, bytes, true);
	ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	self->sfd[0] = dmabuf_export_sync_file(b->fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd[0]);
	ASSERT_EQ(0, install_sigusr1(true, &old));
	w.fd = b->fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, raw_waiter_fn, &w));
	for (i = 0; i < 10; i++) {
		sleep_ms(100);
		pthread_kill(th, SIGUSR1);
	}
	sleep_ms(300);
	EXPECT_LE(10, __atomic_load_n(&sig_seen, __ATOMIC_SEQ_CST));
	EXPECT_FALSE(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST)) {
		TH_LOG("SYNC_START returned %d (%s) on a signal with SA_RESTART",
		       w.ret, w.ret ? strerror(w.err) : "no error");
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, join_within(th, 20));
	sigaction(SIGUSR1, &old, NULL);
	EXPECT_EQ(0, w.ret) {
		TH_LOG("SYNC_START: %s", strerror(w.err));
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, dmabuf_sync_end(b->fd));
}

/* ------------------------------------------------------------------ */
/* 15. The maximum rate                                                */
/* ------------------------------------------------------------------ */

#define MR_BLOCKS	16
#define MR_SCANS	65536		/* 1 MiB */
#define MR_TOTAL	64		/* blocks checked: 4.2 M scans */

/*
 * DMABUF streaming at the highest rate sampling_frequency_available
 * offers: every block holds consecutive scans with exact timestamps,
 * blocks follow in queue order; under TCG the reader may fall behind,
 * but every scan missing between blocks is a counted overrun.
 */
TEST_F_TIMEOUT(dmab, max_rate, 300)
{
	const size_t bytes = MR_SCANS * SCAN;
	long long lo, step, hi, ov0, ov1;
	int64_t ts0 = 0, next_n = 0, gaps = 0, n;
	char buf[128], err[256];
	double t;
	int i, ret;

	ASSERT_LE(0, inst_read(&self->a, "sampling_frequency_available", buf,
			       sizeof(buf)));
	ASSERT_EQ(3, sscanf(buf, "[%lld %lld %lld]", &lo, &step, &hi));
	EXPECT_EQ(ADC_MAX_FREQ, hi);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, hi, 0, 0));
	ALLOC_BLOCKS(MR_BLOCKS, bytes, true);
	for (i = 0; i < MR_BLOCKS; i++)
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &self->blk[i],
			   bytes);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	t = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (i = 0; i < MR_TOTAL; i++) {
		struct dmabuf_block *b = &self->blk[i % MR_BLOCKS];

		ASSERT_EQ(0, dmabuf_sync_start(b->fd));
		ret = check_block_alone(b, bytes, ADC_ALL_TS, err, sizeof(err));
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", i, err);
		}
		if (i == 0) {
			EXPECT_EQ(0, get_le16(b->map));
			ts0 = scan_ts(b->map, 0);
		}
		/*
		 * Timestamps are floor(n * 10^9 / hi) ns from scan 0: with
		 * hi <= 10^9, n is that offset times hi / 10^9, rounded up.
		 */
		n = ((__int128)(scan_ts(b->map, 0) - ts0) * hi + 999999999) /
		    1000000000;
		ASSERT_LE(next_n, n) {
			TH_LOG("block #%d starts at scan %" PRId64 ", before %" PRId64,
			       i, n, next_n);
		}
		gaps += n - next_n;
		ASSERT_EQ(0, check_ts(b->map, MR_SCANS, n, ts0, hi, err,
				      sizeof(err))) {
			TH_LOG("block #%d: %s", i, err);
		}
		ASSERT_EQ((uint16_t)n, get_le16(b->map));
		next_n = n + MR_SCANS;
		ASSERT_EQ(0, dmabuf_sync_end(b->fd));
		ENQUEUE_OK(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, b, bytes);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	DIAG("max_rate %lld Hz: %d blocks in %.3f s, %" PRId64 " scans missing, overruns %lld",
	     hi, MR_TOTAL, now_s() - t, gaps, ov1 - ov0);
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_GE(ov1 - ov0, gaps);
}

/* ------------------------------------------------------------------ */
/* 16. ALLOC / close cycles give the memory back                       */
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
