// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: streaming through the IIO buffer character device.
 *
 * Where scans carry the timestamp, every scan is checked exactly against
 * Documentation/iio/dmabuf_adc.rst: scan n has the timestamp of the
 * device clock (current_timestamp_clock) at enable plus floor(n * 10^9 / f)
 * ns, the samples of the waveform for that n, and it cannot be read
 * before the clock reached its timestamp.
 */
#include <math.h>
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

/*
 * Tests that rely on the whole `length` of buffer as slack set the
 * watermark to length / 32, the size of the fileio blocks: with a smaller
 * watermark, blocks handed over at the watermark hold fewer scans and the
 * buffer holds less than `length` (holds_length_scans).
 */
#define BUF_SCANS	65536
#define MAX_SCAN	16
#define BUF_BYTES	(BUF_SCANS * MAX_SCAN)

#define NSEC_PER_SEC	1000000000ULL

/* ------------------------------------------------------------------ */
/* Exact checks of timestamps and waveforms                            */
/* ------------------------------------------------------------------ */

/* Device time from scan 0 to scan @n at @f Hz: n periods, floor(n 1e9 / f) */
static int64_t scan_offset_ns(uint64_t n, long long f)
{
	return (int64_t)((n / f) * NSEC_PER_SEC +
			 (n % f) * NSEC_PER_SEC / (uint64_t)f);
}

/* The scan number whose offset is exactly @delta ns, or -1 if none */
static int64_t scan_at_offset(int64_t delta, long long f)
{
	unsigned __int128 p;
	uint64_t n;

	if (delta < 0)
		return -1;
	/* offset(n) == delta <=> n = ceil(delta * f / 1e9), if it checks */
	p = (unsigned __int128)delta * (uint64_t)f;
	n = (uint64_t)((p + NSEC_PER_SEC - 1) / NSEC_PER_SEC);
	return scan_offset_ns(n, f) == delta ? (int64_t)n : -1;
}

static const struct {
	const char *name;
	clockid_t id;
} ts_clocks[] = {
	{ "realtime", CLOCK_REALTIME },
	{ "monotonic", CLOCK_MONOTONIC },
	{ "monotonic_raw", CLOCK_MONOTONIC_RAW },
	{ "realtime_coarse", CLOCK_REALTIME_COARSE },
	{ "monotonic_coarse", CLOCK_MONOTONIC_COARSE },
	{ "boottime", CLOCK_BOOTTIME },
	{ "tai", CLOCK_TAI },
};

/* The clock current_timestamp_clock names; 0 or -errno */
static int adc_ts_clock(const struct inst *a, clockid_t *id)
{
	char buf[64];
	unsigned int i;
	int ret;

	ret = inst_read(a, "current_timestamp_clock", buf, sizeof(buf));
	if (ret < 0)
		return ret;
	for (i = 0; i < ARRAY_SIZE(ts_clocks); i++) {
		if (!strcmp(buf, ts_clocks[i].name)) {
			*id = ts_clocks[i].id;
			return 0;
		}
	}
	return -EINVAL;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Exact checker for scans with the timestamp: the first scan is scan 0,
 * the scan number of every scan follows from its timestamp, and the
 * samples are the waveform's for that number.
 */
struct exact {
	struct scan_layout l;
	long long freq;
	bool sine;
	bool allow_gaps;	/* scans may be missing (overruns) */
	bool failed;
	char err[320];
	uint64_t scans;		/* scans received */
	uint64_t next_n;	/* scan number expected next */
	uint64_t gaps;		/* scans missing */
	uint64_t gap_events;
	int64_t ts0;		/* timestamp of scan 0 */
	int64_t last_ts;
	int64_t last_lag;	/* clock at the last read - last timestamp */
};

static void exact_init(struct exact *ex, unsigned int mask, long long freq,
		       bool sine, bool allow_gaps)
{
	memset(ex, 0, sizeof(*ex));
	layout_init(&ex->l, mask);
	ex->freq = freq;
	ex->sine = sine;
	ex->allow_gaps = allow_gaps;
}

static int exact_fail(struct exact *ex, const char *fmt, ...)
{
	va_list ap;

	if (!ex->failed) {
		va_start(ap, fmt);
		vsnprintf(ex->err, sizeof(ex->err), fmt, ap);
		va_end(ap);
		ex->failed = true;
	}
	return -EPROTO;
}

/* Check @count whole scans read when the device clock was @now. */
static int exact_feed(struct exact *ex, const uint8_t *p, size_t count,
		      int64_t now)
{
	size_t s;
	int i;

	if (ex->l.ts_off < 0)
		return exact_fail(ex, "exact checks need the timestamp");
	for (s = 0; s < count; s++, p += ex->l.size) {
		int64_t ts = get_le64(p + ex->l.ts_off), n;

		if (ex->scans == 0)
			ex->ts0 = ts;
		n = scan_at_offset(ts - ex->ts0, ex->freq);
		if (n < 0)
			return exact_fail(ex,
				"scan #%" PRIu64 ": timestamp %" PRId64 " is %" PRId64
				" ns after scan 0: not a whole number of periods at %lld Hz",
				ex->scans, ts, ts - ex->ts0, ex->freq);
		if ((uint64_t)n != ex->next_n) {
			if (!ex->allow_gaps || (uint64_t)n < ex->next_n)
				return exact_fail(ex,
					"scan #%" PRIu64 ": scan number %" PRId64
					" (from its timestamp), expected %" PRIu64,
					ex->scans, n, ex->next_n);
			ex->gaps += (uint64_t)n - ex->next_n;
			ex->gap_events++;
		}
		for (i = 0; i < ex->l.nch; i++) {
			int c = ex->l.ch[i];
			int16_t v = (int16_t)get_le16(p + ex->l.off[i]);
			int16_t want = wave_code(ex->sine, (uint64_t)n, c);

			if (v != want)
				return exact_fail(ex,
					"scan %" PRId64 " channel %d: %d, expected %d (%s)",
					n, c, v, want, ex->sine ? "sine" : "ramp");
		}
		if (ts > now)
			return exact_fail(ex,
				"scan %" PRId64 " read %" PRId64
				" ns before its timestamp",
				n, ts - now);
		ex->last_ts = ts;
		ex->next_n = (uint64_t)n + 1;
		ex->scans++;
	}
	if (count)
		ex->last_lag = now - ex->last_ts;
	return 0;
}

/*
 * Read (blocking reads of whole scans) and check until @want scans came
 * or @timeout_s passed; @clk is the device's timestamp clock. Returns 0,
 * -ETIMEDOUT, -EPROTO (see ex->err), -ENODATA (EOF) or -errno.
 */
static int exact_stream(int fd, struct exact *ex, clockid_t clk,
			uint64_t want, double timeout_s, uint8_t *buf,
			size_t buflen)
{
	double end = now_s() + timeout_s;
	ssize_t n;
	int ret;

	buflen -= buflen % ex->l.size;
	while (ex->scans < want) {
		double left = end - now_s();

		if (left <= 0)
			return -ETIMEDOUT;
		n = read_timeout(fd, buf, buflen, (int)(left * 1000) + 1);
		if (n == -ETIMEDOUT || n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ENODATA;
		if (n % ex->l.size)
			return exact_fail(ex, "read returned %zd bytes: not whole scans of %zu",
					  n, ex->l.size);
		ret = exact_feed(ex, buf, n / ex->l.size, clock_ns(clk));
		if (ret)
			return ret;
	}
	return 0;
}

/* Read without blocking until EAGAIN, checking; 0 or -errno/-EPROTO */
static int exact_drain(int fd, struct exact *ex, clockid_t clk, uint8_t *buf,
		       size_t buflen)
{
	int fl = fcntl(fd, F_GETFL), ret = 0;
	ssize_t n;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	buflen -= buflen % ex->l.size;
	while (!ret) {
		n = read(fd, buf, buflen);
		if (n < 0) {
			if (errno != EAGAIN)
				ret = -errno;
			break;
		}
		if (n == 0)
			ret = -ENODATA;
		else if (n % ex->l.size)
			ret = exact_fail(ex, "read returned %zd bytes", n);
		else
			ret = exact_feed(ex, buf, n / ex->l.size, clock_ns(clk));
	}
	if (fcntl(fd, F_SETFL, fl) && !ret)
		ret = -errno;
	return ret;
}

/* ------------------------------------------------------------------ */

FIXTURE(stream) {
	struct inst a, b;
	int fd, fd2;
	uint8_t *buf;
};

FIXTURE_SETUP(stream)
{
	self->fd = -1;
	self->fd2 = -1;
	self->a.devnum = -1;
	self->b.devnum = -1;
	self->buf = malloc(BUF_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "st"));
}

FIXTURE_TEARDOWN(stream)
{
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->b.devnum >= 0)
		inst_buffer_disable(&self->b);
	if (self->fd >= 0)
		close(self->fd);
	if (self->fd2 >= 0)
		close(self->fd2);
	inst_destroy(&self->a);
	inst_destroy(&self->b);
	free(self->buf);
}

/*
 * Enable the buffer of @a; @before and @after get the device clock @clk
 * around the write, which bracket the timestamp of scan 0.
 */
static int enable_timed(const struct inst *a, clockid_t clk, int64_t *before,
			int64_t *after)
{
	int ret;

	*before = clock_ns(clk);
	ret = inst_buffer_enable(a);
	*after = clock_ns(clk);
	return ret;
}

#define EXPECT_TS0_IN(ex, before, after) do {				\
	EXPECT_LE((before), (ex)->ts0) {				\
		TH_LOG("scan 0 stamped %" PRId64 " ns before the enable", \
		       (int64_t)((before) - (ex)->ts0));		\
	}								\
	EXPECT_GE((after), (ex)->ts0) {					\
		TH_LOG("scan 0 stamped %" PRId64 " ns after the enable returned", \
		       (int64_t)((ex)->ts0 - (after)));			\
	}								\
} while (0)

/*
 * Ramp integrity over 1,000,000 scans at 100 kHz, all channels and the
 * timestamp: every scan exact, none lost, no overrun. 5 s of buffer: the
 * reader may stall that long.
 */
#define RAMP_FREQ	100000
#define RAMP_SCANS	1000000ULL
#define RAMP_LENGTH	524288

TEST_F_TIMEOUT(stream, ramp_1M_scans, 400)
{
	struct exact ex;
	long long ov0, ov1;
	int64_t t0, t1;
	clockid_t clk;
	double t;
	int ret;

	exact_init(&ex, ADC_ALL_TS, RAMP_FREQ, false, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, RAMP_FREQ,
				    RAMP_LENGTH, RAMP_LENGTH / 32));
	t = now_s();
	ASSERT_EQ(0, enable_timed(&self->a, clk, &t0, &t1));

	ret = exact_stream(self->fd, &ex, clk, RAMP_SCANS, 300, self->buf,
			   BUF_BYTES);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	inst_buffer_disable(&self->a);
	DIAG("ramp_1M: %" PRIu64 " scans in %.3f s, overruns %lld -> %lld, last lag %.3f s",
	     ex.scans, now_s() - t, ov0, ov1, ex.last_lag / 1e9);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), ex.failed ? ex.err : "");
	}
	EXPECT_EQ(ov0, ov1);
	EXPECT_TS0_IN(&ex, t0, t1);
}

/*
 * The timestamps follow current_timestamp_clock: realtime by default (the
 * IIO core's), monotonic once selected. At the default 10 kHz and at
 * 30 kHz (a period that is not a whole number of ns): scan 0 is stamped
 * during the enable, scan n exactly n periods later, no scan is read
 * before its time nor long after.
 */
FIXTURE(tsclock) {
	struct inst a;
	int fd;
	uint8_t *buf;
};

FIXTURE_VARIANT(tsclock) {
	const char *clock;	/* written to current_timestamp_clock; NULL: default */
	const char *expect;	/* what current_timestamp_clock then reads */
	long long freq;		/* 0: the default */
};

FIXTURE_VARIANT_ADD(tsclock, default_realtime) {
	.clock = NULL, .expect = "realtime", .freq = 0,
};

FIXTURE_VARIANT_ADD(tsclock, monotonic) {
	.clock = "monotonic", .expect = "monotonic", .freq = 30000,
};

FIXTURE_VARIANT_ADD(tsclock, realtime_again) {
	.clock = "realtime", .expect = "realtime", .freq = 7000,
};

FIXTURE_SETUP(tsclock)
{
	self->fd = -1;
	self->a.devnum = -1;
	self->buf = malloc(BUF_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "tsc"));
}

FIXTURE_TEARDOWN(tsclock)
{
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->fd >= 0)
		close(self->fd);
	inst_destroy(&self->a);
	free(self->buf);
}

TEST_F_TIMEOUT(tsclock, scans_follow_the_clock, 120)
{
	struct exact ex;
	long long freq, ov0, ov1;
	int64_t t0, t1;
	clockid_t clk;
	char buf[64];
	int ret;

	if (variant->clock) {
		/* via another clock, so that the write changes something */
		ASSERT_EQ(0, inst_write(&self->a, "current_timestamp_clock",
					"boottime"));
		ASSERT_EQ(0, inst_write(&self->a, "current_timestamp_clock",
					variant->clock));
	}
	ASSERT_LE(0, inst_read(&self->a, "current_timestamp_clock", buf,
			       sizeof(buf)));
	ASSERT_STREQ(variant->expect, buf);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	if (variant->freq)
		ASSERT_EQ(0, inst_write_ll(&self->a, "sampling_frequency",
					   variant->freq));
	ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &freq));
	EXPECT_EQ(variant->freq ? variant->freq : ADC_DEFAULT_FREQ, freq);

	exact_init(&ex, ADC_ALL_TS, freq, false, false);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	/* 8 s of buffer */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 0, freq * 8,
				    freq * 8 / 32));
	ASSERT_EQ(0, enable_timed(&self->a, clk, &t0, &t1));
	/* 3.5 s of scans */
	ret = exact_stream(self->fd, &ex, clk, freq * 7 / 2, 90, self->buf,
			   BUF_BYTES);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	inst_buffer_disable(&self->a);
	DIAG("%s at %lld Hz: %" PRIu64 " scans, enable took %.3f ms, last lag %.3f s",
	     buf, freq, ex.scans, (t1 - t0) / 1e6, ex.last_lag / 1e9);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), ex.failed ? ex.err : "");
	}
	EXPECT_EQ(ov0, ov1);
	EXPECT_TS0_IN(&ex, t0, t1);
	/* woken at the watermark (250 ms of scans): not seconds behind */
	EXPECT_GE(2000000000LL, ex.last_lag);
}

/* The clock can only change while the buffer is disabled; unknown: EINVAL */
TEST_F_TIMEOUT(stream, timestamp_clock_attribute, 60)
{
	char buf[64];

	ASSERT_LE(0, inst_read(&self->a, "current_timestamp_clock", buf,
			       sizeof(buf)));
	EXPECT_STREQ("realtime", buf);
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "current_timestamp_clock",
				      "sundial"));
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 0, 0));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "current_timestamp_clock",
				     "monotonic"));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_EQ(0, inst_write(&self->a, "current_timestamp_clock",
				"monotonic"));
	ASSERT_LE(0, inst_read(&self->a, "current_timestamp_clock", buf,
			       sizeof(buf)));
	EXPECT_STREQ("monotonic", buf);
}

/* O_NONBLOCK read with nothing buffered fails with EAGAIN */
TEST_F_TIMEOUT(stream, nonblock_eagain, 60)
{
	struct ramp_check rc;
	ssize_t n;
	int tries;

	ramp_init(&rc, ADC_ALL_TS, false);
	self->fd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1, 0, 1));

	/*
	 * At 1 Hz at most one scan can be ready right after enabling;
	 * one of the first two reads must find the buffer empty.
	 */
	for (tries = 0; tries < 2; tries++) {
		n = read(self->fd, self->buf, 64 * rc.l.size);
		if (n < 0)
			break;
		ASSERT_LT(0, n) {
			TH_LOG("non-blocking read returned 0 (EOF)");
		}
		ASSERT_EQ(0, ramp_feed(&rc, self->buf, n)) {
			TH_LOG("%s", rc.err);
		}
		ASSERT_GE(2U, rc.scans) {
			TH_LOG("%" PRIu64 " scans right after enable at 1 Hz",
			       rc.scans);
		}
	}
	ASSERT_GT(0, n) {
		TH_LOG("buffer never empty at 1 Hz");
	}
	EXPECT_EQ(EAGAIN, errno);

	/* data does arrive, poll() says so, and it starts at n = 0 */
	ASSERT_EQ(1, wait_readable(self->fd, 10000));
	n = read(self->fd, self->buf, 64 * rc.l.size);
	ASSERT_LT(0, n) {
		TH_LOG("read after POLLIN: %s", n < 0 ? strerror(errno) : "EOF");
	}
	ASSERT_EQ(0, ramp_feed(&rc, self->buf, n)) {
		TH_LOG("%s", rc.err);
	}
	EXPECT_EQ(0, rc.first_n);
	EXPECT_LE(1U, rc.scans);
}

/*
 * poll() reports POLLIN once `watermark` scans are buffered: never before
 * the watermark-th scan was taken (its timestamp), and within 2.5 s of
 * it. At 10 Hz with a watermark of 50 scans and two blocks of 50, a
 * missed wake-up would only be made good by the next block, 5 s later.
 */
TEST_F_TIMEOUT(stream, poll_watermark, 60)
{
	const long long freq = 10, wm = 50;
	struct exact ex;
	long long avail = -1;
	int64_t t0, t1, t_poll, t_wm;
	clockid_t clk;
	int ret;

	exact_init(&ex, ADC_ALL_TS, freq, false, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	self->fd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, freq, 2 * wm, wm));

	ASSERT_EQ(0, enable_timed(&self->a, clk, &t0, &t1));
	ret = wait_readable(self->fd, 30000);
	t_poll = clock_ns(clk);
	ASSERT_EQ(1, ret) {
		TH_LOG("poll: %s", ret ? strerror(-ret) : "timed out");
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &avail));
	EXPECT_LE(wm, avail);

	/* what POLLIN announced can be read without blocking */
	ASSERT_EQ(0, exact_drain(self->fd, &ex, clk, self->buf, BUF_BYTES)) {
		TH_LOG("%s", ex.err);
	}
	ASSERT_LE((uint64_t)wm, ex.scans);
	EXPECT_TS0_IN(&ex, t0, t1);
	t_wm = ex.ts0 + scan_offset_ns(wm - 1, freq);
	DIAG("poll_watermark: POLLIN %.3f s after scan %lld was taken, data_available %lld",
	     (t_poll - t_wm) / 1e9, wm - 1, avail);
	EXPECT_LE(t_wm, t_poll) {
		TH_LOG("POLLIN %.3f s before the watermark was reached",
		       (t_wm - t_poll) / 1e9);
	}
	EXPECT_GE(t_wm + 2500000000LL, t_poll) {
		TH_LOG("POLLIN %.3f s after the watermark was reached",
		       (t_poll - t_wm) / 1e9);
	}
}

/*
 * Draining a disabled buffer (the IIO core's rules): read() returns the
 * scans handed over before the disable, even fewer than the watermark
 * without waiting for it; once empty, O_NONBLOCK read() fails with EAGAIN,
 * poll() shows no POLLIN and a blocking read() waits (a signal ends it
 * with EINTR).
 */
static void sig_noop(int sig)
{
	(void)sig;
}

struct blocked_reader {
	int fd;
	void *buf;
	size_t len;
	ssize_t ret;
	int err;
	volatile int done;
};

static void *blocked_reader_fn(void *arg)
{
	struct blocked_reader *r = arg;

	r->ret = read(r->fd, r->buf, r->len);
	r->err = errno;
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

TEST_F_TIMEOUT(stream, drain_disabled, 60)
{
	const long long freq = 1000, wm = 64;
	struct blocked_reader r = { 0 };
	struct sigaction sa, old;
	struct exact ex;
	long long avail = 0, left;
	double end;
	clockid_t clk;
	size_t want;
	ssize_t n;
	pthread_t th;

	exact_init(&ex, ADC_ALL_TS, freq, false, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, freq, 4096, wm));
	end = now_s() + 20;
	while (avail < 300 && now_s() < end) {
		sleep_ms(20);
		ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available",
					  &avail));
	}
	ASSERT_LE(300, avail);
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &left));
	DIAG("drain_disabled: %lld scans available before disable, %lld after",
	     avail, left);
	ASSERT_LE(avail, left);

	/* all but 10 scans, in blocking reads */
	want = (size_t)(left - 10);
	while (ex.scans < want) {
		size_t len = (want - ex.scans) * ex.l.size;

		if (len > BUF_BYTES)
			len = BUF_BYTES;
		n = read(self->fd, self->buf, len);
		ASSERT_LT(0, n) {
			TH_LOG("read after %" PRIu64 " scans: %s", ex.scans,
			       n < 0 ? strerror(errno) : "EOF");
		}
		ASSERT_EQ(0, exact_feed(&ex, self->buf, n / ex.l.size,
					clock_ns(clk))) {
			TH_LOG("%s", ex.err);
		}
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &avail));
	EXPECT_EQ(10, avail);
	EXPECT_EQ(1, wait_readable(self->fd, 0));
	/* 10 scans < watermark: a blocking read returns them, disabled */
	n = read(self->fd, self->buf, BUF_BYTES);
	ASSERT_EQ((ssize_t)(10 * ex.l.size), n) {
		TH_LOG("last read: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	}
	ASSERT_EQ(0, exact_feed(&ex, self->buf, 10, clock_ns(clk))) {
		TH_LOG("%s", ex.err);
	}
	EXPECT_EQ((uint64_t)left, ex.scans);

	/* empty */
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &avail));
	EXPECT_EQ(0, avail);
	EXPECT_EQ(0, wait_readable(self->fd, 0));
	ASSERT_EQ(0, fd_set_nonblock(self->fd, true));
	n = read(self->fd, self->buf, 64 * ex.l.size);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, fd_set_nonblock(self->fd, false));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_noop;	/* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));
	r.fd = self->fd;
	r.buf = self->buf;
	r.len = 64 * ex.l.size;
	ASSERT_EQ(0, pthread_create(&th, NULL, blocked_reader_fn, &r));
	sleep_ms(500);
	EXPECT_EQ(0, __atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		TH_LOG("blocking read of a drained disabled buffer returned %zd (%s)",
		       r.ret, r.ret < 0 ? strerror(r.err) : "");
	}
	/* signal until it returns (a signal may land before the read) */
	end = now_s() + 10;
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST) && now_s() < end) {
		pthread_kill(th, SIGUSR1);
		sleep_ms(50);
	}
	ASSERT_EQ(0, join_within(th, 5));
	sigaction(SIGUSR1, &old, NULL);
	EXPECT_EQ(-1, r.ret);
	EXPECT_EQ(EINTR, r.err);
}

/* The main character device is exclusive (IIO core semantics) */
TEST_F_TIMEOUT(stream, chardev_exclusive, 60)
{
	int fd2;

	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	fd2 = inst_open(&self->a, O_RDONLY);
	if (fd2 >= 0)
		close(fd2);
	EXPECT_EQ(-EBUSY, fd2);
	close(self->fd);
	self->fd = inst_open(&self->a, O_RDONLY);
	EXPECT_LE(0, self->fd);
}

/* 20 enable/disable cycles; n restarts at 0 each time */
TEST_F_TIMEOUT(stream, enable_disable_cycles, 300)
{
	static const unsigned int masks[] = {
		ADC_ALL_TS, ADC_CH(0) | ADC_CH(2), ADC_CH(2) | ADC_TS,
		ADC_CH(0), ADC_CH(1) | ADC_CH(3), ADC_CH_ALL,
		ADC_CH(3) | ADC_TS,
	};
	struct ramp_check rc;
	long long v;
	int i, ret;

	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	for (i = 0; i < 20; i++) {
		unsigned int mask = masks[i % ARRAY_SIZE(masks)];

		ramp_init(&rc, mask, false);
		ASSERT_EQ(0, inst_start(&self->a, mask, ADC_DEFAULT_FREQ,
					4096, 64)) {
			TH_LOG("cycle %d", i);
		}
		ret = stream_read(self->fd, &rc, 500, 30, self->buf,
				  BUF_BYTES, NULL);
		ASSERT_EQ(0, ret) {
			TH_LOG("cycle %d mask %#x: %s; %s", i, mask,
			       strerror(-ret), rc.failed ? rc.err : "");
		}
		EXPECT_EQ(0, rc.first_n);
		ASSERT_EQ(0, inst_buffer_disable(&self->a));
		ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
		EXPECT_EQ(0, v);
	}
	DIAG("enable_disable_cycles: 20 cycles OK");
}

/*
 * Channel subsets: the scan sizes of dmabuf_adc.rst (packing per IIO
 * rules). read() returns whole scans of that size, also when asked for a
 * length that is not a whole number of scans, and they decode as the ramp
 * in that layout.
 */
FIXTURE(subset) {
	struct inst a;
	int fd;
	uint8_t *buf;
};

FIXTURE_VARIANT(subset) {
	unsigned int mask;
	size_t scan_size;	/* from the documentation */
};

FIXTURE_VARIANT_ADD(subset, ch1_ch3) {
	.mask = ADC_CH(1) | ADC_CH(3), .scan_size = 4,
};

FIXTURE_VARIANT_ADD(subset, ch2_ts) {
	.mask = ADC_CH(2) | ADC_TS, .scan_size = 16,
};

FIXTURE_VARIANT_ADD(subset, ch0) {
	.mask = ADC_CH(0), .scan_size = 2,
};

FIXTURE_VARIANT_ADD(subset, ch3) {
	.mask = ADC_CH(3), .scan_size = 2,
};

FIXTURE_VARIANT_ADD(subset, all) {
	.mask = ADC_CH_ALL, .scan_size = 8,
};

FIXTURE_VARIANT_ADD(subset, all_ts) {
	.mask = ADC_ALL_TS, .scan_size = 16,
};

FIXTURE_VARIANT_ADD(subset, ch012_ts) {
	.mask = ADC_CH(0) | ADC_CH(1) | ADC_CH(2) | ADC_TS, .scan_size = 16,
};

FIXTURE_SETUP(subset)
{
	self->fd = -1;
	self->a.devnum = -1;
	self->buf = malloc(BUF_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "sub"));
}

FIXTURE_TEARDOWN(subset)
{
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->fd >= 0)
		close(self->fd);
	inst_destroy(&self->a);
	free(self->buf);
}

TEST_F_TIMEOUT(subset, ramp, 120)
{
	const size_t sz = variant->scan_size;
	struct stream_stats st;
	struct ramp_check rc;
	ssize_t n;
	int ret;

	ramp_init(&rc, variant->mask, false);
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, variant->mask, ADC_DEFAULT_FREQ,
				65536, 65536 / 32));
	/* 300 scans and most of another: whole scans only */
	ASSERT_EQ(1, wait_readable(self->fd, 20000));
	n = read(self->fd, self->buf, 300 * sz + sz - 1);
	ASSERT_LT(0, n) {
		TH_LOG("read: %s", n < 0 ? strerror(errno) : "EOF");
	}
	EXPECT_EQ(0, n % (ssize_t)sz) {
		TH_LOG("read %zd bytes: not whole scans of %zu bytes", n, sz);
	}
	EXPECT_GE((ssize_t)(300 * sz), n);
	ASSERT_EQ(0, ramp_feed(&rc, self->buf, n - n % sz)) {
		TH_LOG("mask %#x as %zu-byte scans: %s", variant->mask, sz,
		       rc.err);
	}
	ret = stream_read(self->fd, &rc, 5000, 60, self->buf, BUF_BYTES, &st);
	inst_buffer_disable(&self->a);
	ASSERT_EQ(0, ret) {
		TH_LOG("mask %#x: %s; %s", variant->mask, strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	/* every read returned whole scans of the documented size */
	EXPECT_EQ(0U, rc.partial_reads);
	EXPECT_EQ(0U, st.bytes % sz);
	EXPECT_EQ(0, rc.first_n);
	DIAG("mask %#x: %" PRIu64 " scans of %zu bytes OK", variant->mask,
	     rc.scans, sz);
}

/* Two instances stream concurrently, each with its own ramp */
TEST_F_TIMEOUT(stream, two_instances, 120)
{
	const uint64_t want = 5000;
	struct ramp_check ra, rb;
	double end;
	ssize_t n;

	ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "stb"));
	ramp_init(&ra, ADC_ALL_TS, false);
	ramp_init(&rb, ADC_CH(1) | ADC_CH(3), false);
	self->fd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->fd2 = inst_open(&self->b, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(0, inst_start(&self->a, ra.l.mask, 10000, 65536, 65536 / 32));
	ASSERT_EQ(0, inst_start(&self->b, rb.l.mask, 5000, 65536, 65536 / 32));

	end = now_s() + 60;
	while ((ra.scans < want || rb.scans < want) && now_s() < end) {
		struct pollfd p[2] = {
			{ .fd = self->fd, .events = POLLIN },
			{ .fd = self->fd2, .events = POLLIN },
		};

		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			ASSERT_EQ(0, errno);
		if (p[0].revents & POLLIN) {
			n = read(self->fd, self->buf, BUF_BYTES / 2);
			if (n > 0)
				ASSERT_EQ(0, ramp_feed(&ra, self->buf, n)) {
					TH_LOG("instance a: %s", ra.err);
				}
		}
		if (p[1].revents & POLLIN) {
			n = read(self->fd2, self->buf, BUF_BYTES / 2);
			if (n > 0)
				ASSERT_EQ(0, ramp_feed(&rb, self->buf, n)) {
					TH_LOG("instance b: %s", rb.err);
				}
		}
	}
	DIAG("two_instances: a %" PRIu64 " scans, b %" PRIu64 " scans",
	     ra.scans, rb.scans);
	EXPECT_LE(want, ra.scans);
	EXPECT_LE(want, rb.scans);
	EXPECT_EQ(0, ra.first_n);
	EXPECT_EQ(0, rb.first_n);
}

/*
 * The buffer holds `length` scans whatever the watermark (IIO ABI; the
 * fileio buffer splits its length into blocks): at 1 kHz with watermark
 * 1, a reader that sleeps 1 s (1000 scans) into 4096 scans of buffer
 * loses nothing.
 */
TEST_F_TIMEOUT(stream, holds_length_scans, 60)
{
	struct exact ex;
	long long ov0, ov1, avail;
	clockid_t clk;
	double t;

	exact_init(&ex, ADC_ALL_TS, 1000, false, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 1));
	t = now_s();
	sleep_ms(1000);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &avail));
	DIAG("holds_length_scans: after %.3f s, %lld scans available, overruns %lld -> %lld",
	     now_s() - t, avail, ov0, ov1);
	EXPECT_EQ(ov0, ov1);
	ASSERT_EQ(0, exact_drain(self->fd, &ex, clk, self->buf, BUF_BYTES)) {
		TH_LOG("%s", ex.err);
	}
	EXPECT_LE((uint64_t)avail, ex.scans);
}

/*
 * A reader that does not keep up: the scans dropped are counted in
 * `overruns` and show as a gap of exactly that many scan numbers. 1 kHz
 * into 4096 scans of buffer (4 s): the reader waits until overruns are
 * counted, then reads on and drains the buffer after disabling it, which
 * happens long before the buffer could be full again.
 */
TEST_F_TIMEOUT(stream, overruns_counted, 120)
{
	struct exact ex;
	long long ov0, ov1, ov2, ov3;
	clockid_t clk;
	double end;
	int ret;

	exact_init(&ex, ADC_ALL_TS, 1000, false, true);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	EXPECT_EQ(0, ov0);
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 128));

	end = now_s() + 30;
	do {
		sleep_ms(100);
		ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	} while (ov1 == ov0 && now_s() < end);
	ASSERT_LT(ov0, ov1);
	sleep_ms(500);

	ret = exact_stream(self->fd, &ex, clk, 4096 + 1000, 60, self->buf,
			   BUF_BYTES);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov2));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), ex.failed ? ex.err : "");
	}
	ASSERT_EQ(0, exact_drain(self->fd, &ex, clk, self->buf, BUF_BYTES)) {
		TH_LOG("%s", ex.err);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov3));
	DIAG("overruns_counted: overruns %lld -> %lld -> %lld -> %lld, reader saw %"
	     PRIu64 " missing scans in %" PRIu64 " gaps",
	     ov0, ov1, ov2, ov3, ex.gaps, ex.gap_events);
	/* the first scan read was scan 0 (exact_feed checks its samples) */
	EXPECT_LE(4096U, ex.scans);
	EXPECT_LE(1U, ex.gap_events);
	EXPECT_EQ(ov3 - ov0, (long long)ex.gaps);
	/* nothing is counted once disabled */
	EXPECT_EQ(ov2, ov3);

	/* the count survives re-enabling (it is not reset per enable) */
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 128));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	EXPECT_LE(ov3, ov1);
}

/*
 * rmdir while a reader is blocked in read(): the reader wakes with
 * ENODEV, as does every later read() of the still-open file.
 */
TEST_F_TIMEOUT(stream, rmdir_blocked_reader, 60)
{
	struct blocked_reader r = { 0 };
	char name[64];
	pthread_t th;
	ssize_t n;
	double t;
	int ret;

	snprintf(name, sizeof(name), "%s", self->a.name);
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	/* 1 Hz with watermark 64: a blocking read waits ~64 s */
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1, 4096, 64));

	r.fd = self->fd;
	r.buf = self->buf;
	r.len = 128 * 16;
	ASSERT_EQ(0, pthread_create(&th, NULL, blocked_reader_fn, &r));
	sleep_ms(500);
	ASSERT_EQ(0, __atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		TH_LOG("read returned early: %zd (%s)", r.ret,
		       strerror(r.err));
	}

	t = now_s();
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;

	ret = join_within(th, 15);
	ASSERT_EQ(0, ret) {
		TH_LOG("reader still blocked 15 s after rmdir");
	}
	DIAG("rmdir_blocked_reader: read returned %zd (%s) %.3f s after rmdir",
	     r.ret, r.ret < 0 ? strerror(r.err) : "no error", now_s() - t);
	EXPECT_EQ(-1, r.ret);
	EXPECT_EQ(ENODEV, r.err);
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	/* further reads fail immediately, with the same error */
	n = read(self->fd, self->buf, 64);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

/*
 * The sine waveform is exactly the documented formula, with channel c a
 * quarter period ahead per channel, from n = 0 at enable; and it is
 * within 0.2% of full scale of 30000 sin(2 pi n / 1000).
 */
TEST_F_TIMEOUT(stream, sine_exact, 60)
{
	struct exact ex;
	long long ov0, ov1;
	clockid_t clk;
	uint64_t n;
	double err, worst = 0;
	int c, ret;

	for (n = 0; n < 1000; n++) {
		for (c = 0; c < ADC_NUM_CH; c++) {
			err = fabs(sine_code(n, c) -
				   30000 * sin(2 * M_PI * (n + 250.0 * c) / 1000));
			if (err > worst)
				worst = err;
		}
	}
	EXPECT_GE(0.002 * 65536, worst);

	exact_init(&ex, ADC_ALL_TS, 10000, true, false);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_write(&self->a, "waveform", "sine"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 10000, BUF_SCANS,
				BUF_SCANS / 32));
	ret = exact_stream(self->fd, &ex, clk, 20000, 60, self->buf, BUF_BYTES);
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	inst_buffer_disable(&self->a);
	DIAG("sine_exact: %" PRIu64 " scans, formula within %.0f codes of the sine",
	     ex.scans, worst);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), ex.failed ? ex.err : "");
	}
	EXPECT_EQ(ov0, ov1);
}

/*
 * Streaming at the highest rate sampling_frequency_available offers
 * (500 MHz, 8 GB/s), every channel and the timestamp, 4 M scans: each
 * scan exact; the machine cannot keep up, but every scan missing is one
 * counted in `overruns`.
 */
TEST_F_TIMEOUT(stream, max_rate, 300)
{
	const size_t len = 8u << 20;
	long long lo, step, hi, ov0, ov1;
	struct exact ex;
	int64_t t0, t1;
	clockid_t clk;
	uint8_t *big;
	char buf[128];
	double t;
	int ret;

	ASSERT_LE(0, inst_read(&self->a, "sampling_frequency_available", buf,
			       sizeof(buf)));
	ASSERT_EQ(3, sscanf(buf, "[%lld %lld %lld]", &lo, &step, &hi)) {
		TH_LOG("sampling_frequency_available: '%s'", buf);
	}
	EXPECT_EQ(ADC_MAX_FREQ, hi);
	big = malloc(len);
	ASSERT_NE(NULL, big);

	exact_init(&ex, ADC_ALL_TS, hi, false, true);
	ASSERT_EQ(0, adc_ts_clock(&self->a, &clk));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, hi, 1 << 20,
				    (1 << 20) / 32));
	t = now_s();
	ASSERT_EQ(0, enable_timed(&self->a, clk, &t0, &t1));
	ret = exact_stream(self->fd, &ex, clk, 1 << 22, 240, big, len);
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	DIAG("max_rate %lld Hz: %" PRIu64 " scans in %.3f s, %" PRIu64
	     " missing in %" PRIu64 " gaps, overruns %lld",
	     hi, ex.scans, now_s() - t, ex.gaps, ex.gap_events, ov1 - ov0);
	free(big);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), ex.failed ? ex.err : "");
	}
	EXPECT_TS0_IN(&ex, t0, t1);
	EXPECT_GE(ov1 - ov0, (long long)ex.gaps);
}

TEST_HARNESS_MAIN
