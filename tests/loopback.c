// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: zero-copy loopback from a virtual ADC to a virtual DAC.
 *
 * Blocks ALLOCated on the ADC's /dev/iio:deviceN-dmabuf0 are queued on
 * the ADC (which fills them: a WRITE fence) and on the DAC (which plays
 * them: a READ fence), through the DAC's seed char device or its buffer
 * fd (mainline). Implicit synchronisation orders the two: the DAC waits
 * for the ADC's fence before reading a block, the ADC for the DAC's
 * before refilling it, and an ADC fence's error is passed on to the DAC's
 * instead of playing the block. The DAC checks the ramp it plays
 * (mismatches) and counts what it played (scans_consumed).
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define MAXB		16

/*
 * The rings: 16 blocks of 0.2 s at 10 kHz, so that the ADC has about 2 s
 * of blocks queued ahead of the one the test is recycling (a loaded
 * machine may stall the test that long without an overrun).
 */
#define LB_FREQ		10000
#define LB_NB		16	/* blocks in the ring */
#define LB_SCANS	2048	/* scans per block */
#define LB_TOTAL	32	/* blocks through both devices: ~6.6 s */

/* CLOCK_REALTIME (the default current_timestamp_clock) in ns */
static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The ADC's data, checked across blocks with no new start between them:
 * the ramp continuous from an expected first scan number (scans are
 * numbered from 0 at the ADC's enable), and the timestamps those of the
 * ADC's clock, ts(n) = clock at enable + n periods (dmabuf_adc.rst), the
 * clock at enable lying between t_lo and t_hi, read by the test around
 * its enable. A ramp the CPU wrote (ramp_fill() timestamps: n) fails.
 */
struct adc_data {
	struct ramp_check rc;
	uint64_t next;		/* n of the next scan */
	int64_t period;		/* ns */
	int64_t t_lo, t_hi;	/* CLOCK_REALTIME around the ADC's enable */
	int64_t base;		/* the ADC's clock at enable, from the data */
	bool have_base;
	char err[320];
};

static void adc_data_init(struct adc_data *ad, uint64_t first_n,
			  long long freq, int64_t t_lo, int64_t t_hi)
{
	memset(ad, 0, sizeof(*ad));
	ramp_init(&ad->rc, ADC_ALL_TS, false);
	ad->rc.expect = first_n;
	ad->next = first_n;
	ad->period = 1000000000LL / freq;
	ad->t_lo = t_lo;
	ad->t_hi = t_hi;
}

/* Check the next @bytes (whole scans) of the ADC's data; 0 or -EPROTO */
static int adc_data_feed(struct adc_data *ad, const uint8_t *p, size_t bytes)
{
	int64_t ts, want;
	size_t i;

	if (ramp_feed(&ad->rc, p, bytes)) {
		snprintf(ad->err, sizeof(ad->err), "%s", ad->rc.err);
		return -EPROTO;
	}
	for (i = 0; i + SCAN <= bytes; i += SCAN, ad->next++) {
		ts = get_le64(p + i + ad->rc.l.ts_off);
		if (!ad->have_base) {
			ad->base = ts - (int64_t)ad->next * ad->period;
			ad->have_base = true;
			if (ad->base < ad->t_lo || ad->base > ad->t_hi) {
				snprintf(ad->err, sizeof(ad->err),
					 "scan n=%" PRIu64 ": timestamp %" PRId64 " puts the enable at %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]",
					 ad->next, ts, ad->base, ad->t_lo,
					 ad->t_hi);
				return -EPROTO;
			}
		}
		want = ad->base + (int64_t)ad->next * ad->period;
		if (ts != want) {
			snprintf(ad->err, sizeof(ad->err),
				 "scan n=%" PRIu64 ": timestamp %" PRId64 ", expected %" PRId64 " (enable + n periods)",
				 ad->next, ts, want);
			return -EPROTO;
		}
	}
	return 0;
}

/* adc_data_feed() as block_wait_check()'s check (@arg: the adc_data) */
static int adc_data_check(void *arg, const uint8_t *p, size_t bytes,
			  char *why, size_t len)
{
	struct adc_data *ad = arg;
	int ret = adc_data_feed(ad, p, bytes);

	if (ret)
		snprintf(why, len, "ADC data: %s", ad->err);
	return ret;
}

/* The block's fences waited for as @by says, then its ADC data checked */
#define WAIT_ADC_DATA(by, ms, ad, n) {					\
	.wait = (by), .timeout_ms = (ms), .rw = true,			\
	.check = adc_data_check, .arg = (ad), .bytes = (n),		\
}

/* Enable the ADC, bracketed by CLOCK_REALTIME reads */
#define ENABLE_ADC(t_lo, t_hi) do {					\
	(t_lo) = realtime_ns();						\
	ASSERT_EQ(0, inst_buffer_enable(&self->a));			\
	(t_hi) = realtime_ns();						\
} while (0)

/* The DAC's outputs hold scan @n of the ramp: it played it last */
#define DAC_PLAYED_LAST(n) do {						\
	char _attr[64];							\
	long long _v;							\
	int _c;								\
	for (_c = 0; _c < DAC_NUM_CH; _c++) {				\
		snprintf(_attr, sizeof(_attr), "out_voltage%d_raw", _c); \
		ASSERT_EQ(0, inst_read_ll(&self->d, _attr, &_v));	\
		EXPECT_EQ(ramp_value((n), _c), _v) {			\
			TH_LOG("%s: not scan %llu of the ADC", _attr,	\
			       (unsigned long long)(n));		\
		}							\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* Fixtures: an ADC and a DAC, the same layout and rate                */
/* ------------------------------------------------------------------ */

#define LB_FIXTURE_DATA							\
	struct inst a;		/* the ADC */				\
	struct inst d;		/* the DAC */				\
	int acfd;		/* ADC's /dev/iio:deviceN-dmabuf0 */	\
	int dcfd;		/* DAC's /dev/iio:deviceM-dmabuf0 */	\
	int ddevfd;		/* DAC's /dev/iio:deviceM */		\
	int dbfd;		/* DAC's buffer0 fd (mainline) */	\
	struct dmabuf_block blk[MAXB + 1];				\
	int sfd[MAXB + 1]

#define LB_SETUP() do {							\
	int _i;								\
	self->a.devnum = -1;						\
	self->d.devnum = -1;						\
	self->acfd = -1;						\
	self->dcfd = -1;						\
	self->ddevfd = -1;						\
	self->dbfd = -1;						\
	for (_i = 0; _i <= MAXB; _i++) {				\
		dmabuf_block_init(&self->blk[_i]);			\
		self->sfd[_i] = -1;					\
	}								\
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "lba"));	\
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "lbd"));	\
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, LB_FREQ, 0, 0)); \
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, LB_FREQ, 0, 0)); \
	self->acfd = inst_dmabuf_open(&self->a, O_RDWR);		\
	ASSERT_LE(0, self->acfd) {					\
		TH_LOG("open the ADC's DMABUF char device: %s",		\
		       strerror(-self->acfd));				\
	}								\
} while (0)

/* Disabling both cancels whatever is still queued. */
#define LB_TEARDOWN() do {						\
	int _i;								\
	if (self->d.devnum >= 0)					\
		inst_buffer_disable(&self->d);				\
	if (self->a.devnum >= 0)					\
		inst_buffer_disable(&self->a);				\
	if (self->dbfd >= 0)						\
		close(self->dbfd);					\
	if (self->ddevfd >= 0)						\
		close(self->ddevfd);					\
	if (self->dcfd >= 0)						\
		close(self->dcfd);					\
	if (self->acfd >= 0)						\
		close(self->acfd);					\
	for (_i = 0; _i <= MAXB; _i++) {				\
		if (self->sfd[_i] >= 0)					\
			close(self->sfd[_i]);				\
		dmabuf_block_free(&self->blk[_i]);			\
	}								\
	inst_destroy(&self->d);						\
	inst_destroy(&self->a);						\
} while (0)

FIXTURE(lb) {
	LB_FIXTURE_DATA;
};

FIXTURE_SETUP(lb)
{
	LB_SETUP();
}

FIXTURE_TEARDOWN(lb)
{
	LB_TEARDOWN();
}

#define OPEN_DAC_CHARDEV() do {						\
	self->dcfd = inst_dmabuf_open(&self->d, O_RDWR);		\
	ASSERT_LE(0, self->dcfd) {					\
		TH_LOG("open the DAC's DMABUF char device: %s",		\
		       strerror(-self->dcfd));				\
	}								\
} while (0)

#define OPEN_DAC_BUFFER_FD() do {					\
	self->ddevfd = inst_open(&self->d, O_RDWR);			\
	ASSERT_LE(0, self->ddevfd) {					\
		TH_LOG("open %s: %s", self->d.chrdev,			\
		       strerror(-self->ddevfd));			\
	}								\
	self->dbfd = iio_buffer_get_fd(self->ddevfd, 0);		\
	ASSERT_LE(0, self->dbfd) {					\
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL on the DAC: %s",	\
		       strerror(-self->dbfd));				\
	}								\
} while (0)

/* ALLOC @n mapped blocks of @size on the ADC's char device as blk[0..] */
#define ALLOC_ON_ADC(n, size) do {					\
	int _i;								\
	for (_i = 0; _i < (n); _i++) {					\
		int _r = dmabuf_block_alloc(&self->blk[_i], self->acfd,	\
					    (size), true);		\
		ASSERT_EQ(0, _r) {					\
			TH_LOG("ALLOC block %d of %zu bytes on the ADC: %s", \
			       _i, (size_t)(size), strerror(-_r));	\
		}							\
	}								\
} while (0)

#define ENQ_ADC(i, bytes) do {						\
	int _r = dmabuf_enqueue(self->acfd, self->blk[i].fd, (bytes));	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE block %d on the ADC: %s", (i),		\
		       strerror(-_r));					\
	}								\
} while (0)

/* Seed ENQUEUE on the DAC: never waits for the ADC's fence */
#define ENQ_DAC(i, bytes) do {						\
	double _t = now_s();						\
	int _r = dmabuf_enqueue(self->dcfd, self->blk[i].fd, (bytes));	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE block %d on the DAC: %s", (i),		\
		       strerror(-_r));					\
	}								\
	/* it would wait seconds for the ADC's fence */		\
	EXPECT_GT(2.0, now_s() - _t) {					\
		TH_LOG("seed ENQUEUE on the DAC took %.3f s",		\
		       now_s() - _t);					\
	}								\
} while (0)

/*
 * A sync_file of block @i's fences into sfd[@slot]: flags SYNC_WRITE gives
 * all of them, SYNC_READ only the writers' (the ADC's).
 */
#define EXPORT_TO(slot, i, flags) do {					\
	if (self->sfd[slot] >= 0)					\
		close(self->sfd[slot]);					\
	self->sfd[slot] = dmabuf_export_sync_file(self->blk[i].fd,	\
						  (flags));		\
	ASSERT_LE(0, self->sfd[slot]) {					\
		TH_LOG("EXPORT_SYNC_FILE block %d: %s", (i),		\
		       strerror(-self->sfd[slot]));			\
	}								\
} while (0)

#define EXPORT_OK(i, flags)	EXPORT_TO(i, i, flags)

/* ------------------------------------------------------------------ */
/* 7. The ring through both devices, seed ENQUEUE on both              */
/* ------------------------------------------------------------------ */

/*
 * Queue the whole ring on both devices up front (each block on the ADC,
 * then on the DAC: the DAC waits for the ADC's fence), enable the DAC,
 * then the ADC; then for each block: wait until both are done with it
 * (SYNC_START, READ | WRITE), check the ADC's ramp, SYNC_END, queue it
 * again on both. The blocks hold the ADC's scans from 0 on, continuous
 * across blocks, with the ADC's timestamps; the DAC plays every scan, the
 * last one last, and the ADC never runs out of blocks.
 */
TEST_F_TIMEOUT(lb, seed_ring, 180)
{
	const size_t bytes = (size_t)LB_SCANS * SCAN;
	struct dac_counters c;
	struct adc_data ad;
	long long ov0, ov1;
	int64_t t_lo, t_hi;
	double t0, tw = 0;
	int i, k, ret;

	OPEN_DAC_CHARDEV();
	ALLOC_ON_ADC(LB_NB, bytes);
	for (i = 0; i < LB_NB; i++) {
		ENQ_ADC(i, bytes);
		ENQ_DAC(i, bytes);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	t0 = now_s();
	ENABLE_ADC(t_lo, t_hi);

	adc_data_init(&ad, 0, LB_FREQ, t_lo, t_hi);
	for (k = 0; k < LB_TOTAL; k++) {
		struct dmabuf_block *b = &self->blk[k % LB_NB];
		struct block_wait w = WAIT_ADC_DATA(BLOCK_WAIT_SYNC, 0, &ad,
						    bytes);

		ret = block_wait_check(&w, b);
		tw += w.t_wait;
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", k, w.why);
		}
		/*
		 * Queue it again: on both while blocks are still needed,
		 * then on the ADC only, so that it does not run out of
		 * blocks before its overruns are read below.
		 */
		ENQ_ADC(k % LB_NB, bytes);
		if (k + LB_NB < LB_TOTAL)
			ENQ_DAC(k % LB_NB, bytes);
	}
	/* the DAC's last fence has signalled (SYNC_START above waited) */
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	CONSUMED_EXACTLY((long long)LB_TOTAL * LB_SCANS, 5000, &c);
	DIAG("seed_ring: %d blocks, %lld scans played in %.3f s (%.3f s "
	     "waiting); DAC mismatches %lld, underruns %lld; ADC overruns "
	     "%lld -> %lld", LB_TOTAL, c.consumed, now_s() - t0, tw,
	     c.mismatches, c.underruns, ov0, ov1);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(ov0, ov1);
	EXPECT_EQ(0, ad.rc.first_n);
	EXPECT_EQ((uint64_t)LB_TOTAL * LB_SCANS, ad.rc.scans);
	DAC_PLAYED_LAST((uint64_t)LB_TOTAL * LB_SCANS - 1);
}

/* ------------------------------------------------------------------ */
/* 8. The ring with the mainline API on the DAC                        */
/* ------------------------------------------------------------------ */

#define ML_LAG		3	/* blocks between DAC ENQUEUE and recycling */

/*
 * The ADC's blocks, filled through its seed ENQUEUE, ATTACHed to the
 * DAC's buffer fd and queued there with the mainline ENQUEUE, which waits
 * (in the IIO core) until the ADC's fence of the block has signalled. So
 * block k goes to the DAC as soon as the ADC has filled it; ML_LAG blocks
 * later it is recycled to the ADC once the DAC is done with it. As in
 * seed_ring, the data is the ADC's from scan 0 on, continuous across
 * blocks, and the DAC plays all of it, the last scan last.
 */
TEST_F_TIMEOUT(lb, mainline_ring, 180)
{
	const size_t bytes = (size_t)LB_SCANS * SCAN;
	struct dac_counters c;
	struct adc_data ad;
	struct block_wait w = WAIT_ADC_DATA(BLOCK_WAIT_POLLOUT, 10000, &ad,
					    bytes);
	long long ov0, ov1 = -1;
	int64_t t_lo, t_hi;
	double t0, t, dt, wmax = 0;
	int i, j, k, ret;

	OPEN_DAC_BUFFER_FD();
	ALLOC_ON_ADC(LB_NB, bytes);
	for (i = 0; i < LB_NB; i++) {
		ret = iio_buffer_attach(self->dbfd, self->blk[i].fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH the ADC's block %d to the DAC: %s", i,
			       strerror(-ret));
		}
		ENQ_ADC(i, bytes);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	t0 = now_s();
	ENABLE_ADC(t_lo, t_hi);

	adc_data_init(&ad, 0, LB_FREQ, t_lo, t_hi);
	for (k = 0; k < LB_TOTAL + ML_LAG; k++) {
		if (k < LB_TOTAL) {
			i = k % LB_NB;
			t = now_s();
			ret = iio_buffer_enqueue(self->dbfd, self->blk[i].fd, 0,
						 bytes);
			dt = now_s() - t;
			if (dt > wmax)
				wmax = dt;
			ASSERT_EQ(0, ret) {
				TH_LOG("mainline ENQUEUE of block #%d on the DAC: %s (after %.3f s)",
				       k, strerror(-ret), dt);
			}
			/* the last one: the ADC still has blocks queued */
			if (k == LB_TOTAL - 1) {
				ASSERT_EQ(0, inst_read_ll(&self->a, "overruns",
							  &ov1));
			}
		}
		j = k - ML_LAG;
		if (j < 0)
			continue;
		i = j % LB_NB;
		/* both devices done with it: recycled */
		ret = block_wait_check(&w, &self->blk[i]);
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", j, w.why);
		}
		if (k < LB_TOTAL)
			ENQ_ADC(i, bytes);
	}
	CONSUMED_EXACTLY((long long)LB_TOTAL * LB_SCANS, 5000, &c);
	DIAG("mainline_ring: %d blocks, %lld scans played in %.3f s, longest "
	     "ENQUEUE %.3f s; DAC mismatches %lld, underruns %lld; ADC "
	     "overruns %lld -> %lld", LB_TOTAL, c.consumed, now_s() - t0,
	     wmax, c.mismatches, c.underruns, ov0, ov1);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(ov0, ov1);
	EXPECT_EQ(0, ad.rc.first_n);
	EXPECT_EQ((uint64_t)LB_TOTAL * LB_SCANS, ad.rc.scans);
	DAC_PLAYED_LAST((uint64_t)LB_TOTAL * LB_SCANS - 1);

	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	for (i = 0; i < LB_NB; i++) {
		EXPECT_EQ(0, iio_buffer_detach(self->dbfd, self->blk[i].fd)) {
			TH_LOG("DETACH block %d", i);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Implicit synchronisation, one block at a time                       */
/* ------------------------------------------------------------------ */

/*
 * Seed: a block queued on the ADC (disabled) and then on the DAC
 * (enabled): the DAC waits, playing nothing (its clock ticks as
 * underruns); once the ADC fills it with its scans 0.., the DAC plays
 * exactly that.
 */
TEST_F_TIMEOUT(lb, dac_waits_for_adc, 60)
{
	const size_t bytes = (size_t)LB_SCANS * SCAN;
	struct dac_counters c;
	struct adc_data ad;
	struct block_wait w = WAIT_ADC_DATA(BLOCK_WAIT_SYNC_FILE, 10000, &ad,
					    bytes);
	int64_t t_lo, t_hi;
	double end;
	int ret;

	OPEN_DAC_CHARDEV();
	ALLOC_ON_ADC(1, bytes);
	ENQ_ADC(0, bytes);
	ENQ_DAC(0, bytes);
	EXPORT_OK(0, DMA_BUF_SYNC_WRITE);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	/* the DAC's clock ticks: underruns, for 0.5 s at least */
	end = now_s() + 10.0;
	do {
		sleep_ms(50);
		COUNTERS_OK(&c);
	} while (!c.underruns && now_s() < end);
	sleep_ms(500);
	COUNTERS_OK(&c);
	DIAG("dac_waits_for_adc: before the ADC's enable: consumed %lld, "
	     "underruns %lld", c.consumed, c.underruns);
	EXPECT_LT(0, c.underruns);
	EXPECT_EQ(0, c.consumed) {
		TH_LOG("the DAC played a block the ADC had not filled");
	}
	EXPECT_EQ(0, poll_events(self->blk[0].fd, POLLOUT, 0));

	/*
	 * Once the ADC is enabled, the block is done by both within 10 s
	 * (all its fences signalled without error) and holds the ADC's
	 * scans 0..LB_SCANS-1; the DAC played them.
	 */
	ENABLE_ADC(t_lo, t_hi);
	adc_data_init(&ad, 0, LB_FREQ, t_lo, t_hi);
	w.sfd = self->sfd[0];
	ret = block_wait_check(&w, &self->blk[0]);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s", w.why);
	}
	CONSUMED_EXACTLY(LB_SCANS, 5000, &c);
	EXPECT_EQ(0, c.mismatches);
	/* the DAC's outputs hold the block's last scan */
	DAC_PLAYED_LAST((uint64_t)LB_SCANS - 1);
}

/*
 * Mainline: the DAC's ENQUEUE of a block the ADC is still filling waits
 * for the ADC's fence (O_NONBLOCK: EBUSY at once), then the DAC plays it.
 */
TEST_F_TIMEOUT(lb, mainline_enqueue_waits, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct dac_counters c;
	struct adc_data ad;
	struct block_wait w = WAIT_ADC_DATA(BLOCK_WAIT_POLLOUT, 10000, &ad,
					    bytes);
	int64_t t_lo, t_hi;
	double t, dt;
	int ret;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	OPEN_DAC_BUFFER_FD();
	ALLOC_ON_ADC(1, bytes);
	ASSERT_EQ(0, iio_buffer_attach(self->dbfd, self->blk[0].fd));
	ENQ_ADC(0, bytes);

	ASSERT_EQ(0, fd_set_nonblock(self->dbfd, true));
	t = now_s();
	ret = iio_buffer_enqueue(self->dbfd, self->blk[0].fd, 0, bytes);
	dt = now_s() - t;
	EXPECT_EQ(-EBUSY, ret) {
		TH_LOG("non-blocking ENQUEUE with the ADC's fence pending: %s",
		       ret ? strerror(-ret) : "accepted");
	}
	/* a blocking ENQUEUE would give EBUSY too, but after 5 s */
	EXPECT_GT(IIO_DMABUF_ENQUEUE_WAIT_MS / 2000.0, dt) {
		TH_LOG("non-blocking ENQUEUE took %.3f s", dt);
	}
	ASSERT_EQ(0, fd_set_nonblock(self->dbfd, false));

	/* 1000 scans at 1 kHz: the ADC's fence signals after ~1 s */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ENABLE_ADC(t_lo, t_hi);
	t = now_s();
	ret = iio_buffer_enqueue(self->dbfd, self->blk[0].fd, 0, bytes);
	dt = now_s() - t;
	DIAG("mainline_enqueue_waits: ENQUEUE returned %d after %.3f s", ret,
	     dt);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE: %s", strerror(-ret));
	}
	EXPECT_LE(0.5, dt) {
		TH_LOG("ENQUEUE did not wait for the ADC's fence");
	}
	/* played: what it played is the ADC's scans 0..999 */
	adc_data_init(&ad, 0, 1000, t_lo, t_hi);
	ret = block_wait_check(&w, &self->blk[0]);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s", w.why);
	}
	CONSUMED_EXACTLY(1000, 5000, &c);
	EXPECT_EQ(0, c.mismatches);
	DAC_PLAYED_LAST(999);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	EXPECT_EQ(0, iio_buffer_detach(self->dbfd, self->blk[0].fd));
}

/*
 * The other direction: a block queued on the DAC (disabled: its READ
 * fence pending), then on the ADC (enabled): the ADC does not overwrite
 * it before the DAC has played it, it stalls and drops its scans as
 * overruns (which keep their numbers). The block holds a ramp from 30000
 * written by the CPU; the DAC's outputs must end on that ramp's last
 * scan. Then the ADC fills the block with its own scans n0.., n0 being
 * the scans it dropped before (overruns read before the DAC's enable <=
 * n0 <= overruns read after the block is done), with its clock's
 * timestamps.
 */
TEST_F_TIMEOUT(lb, adc_waits_for_dac, 60)
{
	const size_t nscans = 1000, bytes = nscans * SCAN;
	const uint64_t first = 30000;
	struct dac_counters c;
	struct scan_layout l;
	struct adc_data ad;
	long long ov0, ova, ov1;
	int64_t t_lo, t_hi;
	uint16_t n0;
	int st = 0, ret;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 10000, 0, 0));
	OPEN_DAC_CHARDEV();
	ALLOC_ON_ADC(1, bytes);
	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, dmabuf_sync_start_rw(self->blk[0].fd));
	ramp_fill(&l, self->blk[0].map, first, nscans);
	ASSERT_EQ(0, dmabuf_sync_end_rw(self->blk[0].fd));

	ENQ_DAC(0, bytes);
	ret = dmabuf_enqueue(self->acfd, self->blk[0].fd, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE on the ADC with the DAC's READ fence pending: %s",
		       strerror(-ret));
	}
	/* READ: the writers' fences only (the ADC's); WRITE: all */
	EXPORT_TO(0, 0, DMA_BUF_SYNC_READ);
	EXPORT_TO(1, 0, DMA_BUF_SYNC_WRITE);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	ENABLE_ADC(t_lo, t_hi);
	sleep_ms(500);
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st) {
		TH_LOG("the ADC filled a block the DAC had not played: %s",
		       status_str(st));
	}

	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ova));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, sync_file_wait(self->sfd[1], 10000, &st)) {
		TH_LOG("block not done 10 s after enabling the DAC");
	}
	EXPECT_EQ(1, st) {
		TH_LOG("fences: %s", status_str(st));
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	CONSUMED_EXACTLY((long long)nscans, 5000, &c);
	EXPECT_EQ(0, c.mismatches);
	DAC_PLAYED_LAST(first + nscans - 1);

	/* then the ADC filled it */
	ASSERT_EQ(0, dmabuf_sync_start_rw(self->blk[0].fd));
	n0 = ramp_n_of(&l, self->blk[0].map);
	adc_data_init(&ad, n0, 10000, t_lo, t_hi);
	ret = adc_data_feed(&ad, self->blk[0].map, bytes);
	ASSERT_EQ(0, dmabuf_sync_end_rw(self->blk[0].fd));
	DIAG("adc_waits_for_dac: the ADC's data starts at n=%u; ADC overruns "
	     "%lld before the DAC's enable, %lld after the block", n0,
	     ova - ov0, ov1 - ov0);
	EXPECT_EQ(0, ret) {
		TH_LOG("ADC data: %s", ad.err);
	}
	/* n0 is known mod 2^16: 6.5 s at 10 kHz */
	ASSERT_GT(65536, ov1 - ov0);
	EXPECT_LE(ova - ov0, (long long)n0);
	EXPECT_GE(ov1 - ov0, (long long)n0);
}

/* ------------------------------------------------------------------ */
/* 10. rmdir of the DAC while it waits for the ADC                     */
/* ------------------------------------------------------------------ */

/*
 * The DAC waits for the ADC's fence of a block when it is removed: rmdir
 * returns, the ADC's fence is untouched, and once the ADC fills the block
 * (its scans from 0) every fence has signalled (the DAC's with -ENODEV).
 */
TEST_F_TIMEOUT(lb, rmdir_dac_waiting, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct adc_data ad;
	struct block_wait w = WAIT_ADC_DATA(BLOCK_WAIT_POLLOUT, 1000, &ad,
					    bytes);
	int64_t t_lo, t_hi;
	char name[64];
	double t;
	int st = 0, ret;

	snprintf(name, sizeof(name), "%s", self->d.name);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 10000, 0, 0));
	OPEN_DAC_CHARDEV();
	ALLOC_ON_ADC(1, bytes);
	ENQ_ADC(0, bytes);
	ENQ_DAC(0, bytes);
	EXPORT_TO(0, 0, DMA_BUF_SYNC_READ);	/* the ADC's fence */
	EXPORT_TO(1, 0, DMA_BUF_SYNC_WRITE);	/* all of block 0's */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	sleep_ms(200);

	t = now_s();
	ret = inst_rmdir(INST_DAC, name);
	DIAG("rmdir_dac_waiting: rmdir %d after %.3f s", ret, now_s() - t);
	ASSERT_EQ(0, ret);
	self->d.devnum = -1;
	EXPECT_GT(5.0, now_s() - t);
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st) {
		TH_LOG("the ADC's fence: %s", status_str(st));
	}
	/* the DAC's char device answers ENODEV */
	EXPECT_EQ(-ENODEV, dmabuf_enqueue(self->dcfd, self->blk[0].fd, bytes));

	ENABLE_ADC(t_lo, t_hi);
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 10000, &st));
	EXPECT_EQ(1, st) {
		TH_LOG("the ADC's fence: %s", status_str(st));
	}
	ASSERT_EQ(0, sync_file_wait(self->sfd[1], 10000, &st)) {
		TH_LOG("the removed DAC's fence never signalled");
	}
	EXPECT_EQ(-ENODEV, st) {
		TH_LOG("all fences: %s", status_str(st));
	}
	/* idle within 1 s, holding the ADC's scans from 0 */
	adc_data_init(&ad, 0, 10000, t_lo, t_hi);
	ret = block_wait_check(&w, &self->blk[0]);
	EXPECT_EQ(0, ret) {
		TH_LOG("%s", w.why);
	}
	EXPECT_EQ(0, close(self->dcfd));
	self->dcfd = -1;
}

/* ------------------------------------------------------------------ */
/* 9. An ADC fence's error is passed on to the DAC                     */
/* ------------------------------------------------------------------ */

enum cancel_how {
	CANCEL_CLOSE,	/* close the ADC's char device: -ECANCELED */
	CANCEL_DISABLE,	/* disable the ADC while it fills: -ECANCELED */
	CANCEL_RMDIR,	/* rmdir the ADC: -ENODEV */
};

FIXTURE(lbe) {
	LB_FIXTURE_DATA;
};

FIXTURE_VARIANT(lbe) {
	enum cancel_how how;
	bool dac_enabled_first;	/* else enabled after the cancel */
	int error;		/* the fences' error */
};

FIXTURE_VARIANT_ADD(lbe, close_adc_chardev) {
	.how = CANCEL_CLOSE, .dac_enabled_first = true, .error = -ECANCELED,
};

FIXTURE_VARIANT_ADD(lbe, close_adc_chardev_dac_disabled) {
	.how = CANCEL_CLOSE, .dac_enabled_first = false, .error = -ECANCELED,
};

FIXTURE_VARIANT_ADD(lbe, disable_adc) {
	.how = CANCEL_DISABLE, .dac_enabled_first = true, .error = -ECANCELED,
};

FIXTURE_VARIANT_ADD(lbe, rmdir_adc) {
	.how = CANCEL_RMDIR, .dac_enabled_first = true, .error = -ENODEV,
};

FIXTURE_SETUP(lbe)
{
	LB_SETUP();
}

FIXTURE_TEARDOWN(lbe)
{
	LB_TEARDOWN();
}

/*
 * A block queued on the ADC and on the DAC; the ADC's transfer is then
 * cancelled: the DAC's fence completes with the same error without the
 * block being played (scans_consumed stays 0), nothing hangs, and the DAC
 * goes on with its next block.
 */
TEST_F_TIMEOUT(lbe, error_propagates, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct dmabuf_block *nb = &self->blk[MAXB];	/* the DAC's own */
	struct scan_layout l;
	struct dac_counters c;
	char name[64];
	double t;
	int st = 0, ret;

	snprintf(name, sizeof(name), "%s", self->a.name);
	/* 100 Hz: the ADC would need 10 s for the block */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 100, 0, 0));
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 10000, 0, 0));
	OPEN_DAC_CHARDEV();
	ALLOC_ON_ADC(1, bytes);
	ASSERT_EQ(0, dmabuf_block_alloc(nb, self->dcfd, bytes, true));
	ENQ_ADC(0, bytes);
	if (variant->how == CANCEL_DISABLE) {
		ASSERT_EQ(0, inst_buffer_enable(&self->a));
	}
	ENQ_DAC(0, bytes);
	EXPORT_OK(0, DMA_BUF_SYNC_WRITE);	/* both fences */

	if (variant->dac_enabled_first) {
		ASSERT_EQ(0, inst_buffer_enable(&self->d));
		sleep_ms(300);
		COUNTERS_OK(&c);
		EXPECT_EQ(0, c.consumed);
		EXPECT_EQ(0, poll_events(self->blk[0].fd, POLLOUT, 0));
	}

	t = now_s();
	switch (variant->how) {
	case CANCEL_CLOSE:
		ASSERT_EQ(0, close(self->acfd));
		self->acfd = -1;
		break;
	case CANCEL_DISABLE:
		ASSERT_EQ(0, inst_buffer_disable(&self->a));
		break;
	case CANCEL_RMDIR:
		ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
		self->a.devnum = -1;
		break;
	}
	if (!variant->dac_enabled_first) {
		ASSERT_EQ(0, inst_buffer_enable(&self->d));
	}

	ret = poll_events(self->blk[0].fd, POLLOUT, 5000);
	ASSERT_EQ(1, ret) {
		TH_LOG("block still busy 5 s after the ADC's cancellation");
	}
	DIAG("error_propagates: block idle %.3f s after the cancellation",
	     now_s() - t);
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 1000, &st));
	EXPECT_EQ(variant->error, st) {
		TH_LOG("fences: %s, expected %s", status_str(st),
		       status_str(variant->error));
	}
	t = now_s();
	EXPECT_EQ(0, dmabuf_sync_start_rw(self->blk[0].fd));
	EXPECT_EQ(0, dmabuf_sync_end_rw(self->blk[0].fd));
	/* every fence has signalled: nothing to wait for */
	EXPECT_GT(5.0, now_s() - t);
	sleep_ms(200);
	COUNTERS_OK(&c);
	DIAG("error_propagates: consumed %lld, mismatches %lld, underruns %lld",
	     c.consumed, c.mismatches, c.underruns);
	EXPECT_EQ(0, c.consumed) {
		TH_LOG("the DAC played a block whose ADC transfer failed");
	}
	EXPECT_EQ(0, c.mismatches);

	/* the DAC is not stuck: its own next block plays */
	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, dmabuf_sync_start_rw(nb->fd));
	ramp_fill(&l, nb->map, 0, 1000);
	ASSERT_EQ(0, dmabuf_sync_end_rw(nb->fd));
	ret = dmabuf_enqueue(self->dcfd, nb->fd, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE of the next block: %s", strerror(-ret));
	}
	ASSERT_EQ(1, poll_events(nb->fd, POLLOUT, 10000)) {
		TH_LOG("the next block was not played");
	}
	CONSUMED_EXACTLY(1000, 5000, &c);
	EXPECT_EQ(0, c.mismatches);
}

TEST_HARNESS_MAIN
