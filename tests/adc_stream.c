// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: streaming through the IIO buffer character device.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define BUF_SCANS	65536
#define MAX_SCAN	16
#define BUF_BYTES	(BUF_SCANS * MAX_SCAN)

#define STREAM_FREQ	100000
#define STREAM_SCANS	1000000ULL

FIXTURE(stream) {
	struct adc a, b;
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
	ASSERT_EQ(0, adc_create_unique(&self->a, "st"));
}

FIXTURE_TEARDOWN(stream)
{
	if (self->a.devnum >= 0)
		adc_buffer_disable(&self->a);
	if (self->b.devnum >= 0)
		adc_buffer_disable(&self->b);
	if (self->fd >= 0)
		close(self->fd);
	if (self->fd2 >= 0)
		close(self->fd2);
	adc_destroy(&self->a);
	adc_destroy(&self->b);
	free(self->buf);
}

static void log_stats(const char *what, const struct ramp_check *rc,
		      const struct stream_stats *st)
{
	double total = st->t_last - st->t_start;
	double steady = st->t_last - st->t_first;

	DIAG("%s: %" PRIu64 " scans (%" PRIu64 " bytes) in %" PRIu64
	     " reads, %.3f s total, first data after %.3f s",
	     what, rc->scans, st->bytes, st->reads, total,
	     st->t_first ? st->t_first - st->t_start : -1.0);
	if (steady > 0)
		DIAG("%s: steady state %" PRIu64 " scans in %.3f s = %.1f scans/s",
		     what, rc->scans - st->first_read_scans, steady,
		     (rc->scans - st->first_read_scans) / steady);
}

/*
 * Ramp integrity over 1,000,000 scans at 100 kHz, all channels +
 * timestamp; no gaps, no overruns, rate and timestamp spacing within 5%.
 */
TEST_F_TIMEOUT(stream, ramp_1M_scans, 400)
{
	struct stream_stats st;
	struct ramp_check rc;
	long long ov0, ov1;
	double steady, rate, spacing;
	int ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(16U, rc.l.size);
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov0));
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, STREAM_FREQ, BUF_SCANS,
			       4096));

	ret = stream_read(self->fd, &rc, STREAM_SCANS, 300, self->buf,
			  BUF_BYTES, &st);
	adc_buffer_disable(&self->a);
	log_stats("ramp_1M", &rc, &st);
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov1));
	DIAG("ramp_1M: overruns %lld -> %lld, reads ending mid-scan: %" PRIu64,
	     ov0, ov1, rc.partial_reads);
	ASSERT_EQ(0, ret) {
		TH_LOG("stream_read: %s; %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	EXPECT_EQ(ov0, ov1);
	EXPECT_EQ(0U, rc.partial_reads);

	steady = st.t_last - st.t_first;
	ASSERT_LE(2.0, steady) {
		TH_LOG("only %.3f s of steady state: data came far too fast",
		       steady);
	}
	rate = (rc.scans - st.first_read_scans) / steady;
	EXPECT_LE(STREAM_FREQ * 0.95, rate) {
		TH_LOG("rate %.1f < 95%% of %d", rate, STREAM_FREQ);
	}
	EXPECT_GE(STREAM_FREQ * 1.05, rate) {
		TH_LOG("rate %.1f > 105%% of %d", rate, STREAM_FREQ);
	}

	spacing = (double)(rc.last_ts - rc.first_ts) / (rc.scans - 1);
	DIAG("ramp_1M: mean timestamp spacing %.1f ns (expected %.1f)",
	     spacing, 1e9 / STREAM_FREQ);
	EXPECT_LE(1e9 / STREAM_FREQ * 0.95, spacing);
	EXPECT_GE(1e9 / STREAM_FREQ * 1.05, spacing);
}

/* Rate at the default 10 kHz over >= 3 s of steady state */
TEST_F_TIMEOUT(stream, rate_default_frequency, 120)
{
	struct stream_stats st;
	struct ramp_check rc;
	long long freq;
	double steady, rate;
	int ret;

	ASSERT_EQ(0, adc_read_ll(&self->a, "sampling_frequency", &freq));
	ASSERT_EQ(ADC_DEFAULT_FREQ, freq);
	ramp_init(&rc, ADC_ALL_TS, false);
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 0, BUF_SCANS, 500));

	ret = stream_read(self->fd, &rc, freq * 7 / 2, 90, self->buf,
			  BUF_BYTES, &st);
	adc_buffer_disable(&self->a);
	log_stats("rate_10k", &rc, &st);
	ASSERT_EQ(0, ret) {
		TH_LOG("stream_read: %s; %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	steady = st.t_last - st.t_first;
	ASSERT_LE(2.0, steady);
	rate = (rc.scans - st.first_read_scans) / steady;
	EXPECT_LE(freq * 0.95, rate);
	EXPECT_GE(freq * 1.05, rate);
	if (rc.scans > 1) {
		double spacing = (double)(rc.last_ts - rc.first_ts) /
				 (rc.scans - 1);

		DIAG("rate_10k: mean timestamp spacing %.1f ns", spacing);
		EXPECT_LE(1e9 / freq * 0.95, spacing);
		EXPECT_GE(1e9 / freq * 1.05, spacing);
	}
}

/* O_NONBLOCK read with nothing buffered fails with EAGAIN */
TEST_F_TIMEOUT(stream, nonblock_eagain, 60)
{
	struct ramp_check rc;
	ssize_t n;
	int tries;

	ramp_init(&rc, ADC_ALL_TS, false);
	self->fd = adc_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 1, 0, 1));

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

/* poll() reports POLLIN only once `watermark` scans are buffered */
TEST_F_TIMEOUT(stream, poll_watermark, 60)
{
	const long long freq = 1000, wm = 500;
	struct ramp_check rc;
	long long avail = -1;
	double t0, dt, end;
	ssize_t n;
	int ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	self->fd = adc_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_configure(&self->a, ADC_ALL_TS, freq, 4096, wm));

	t0 = now_s();	/* before enabling: the measured delay is an upper bound */
	ASSERT_EQ(0, adc_buffer_enable(&self->a));
	ret = wait_readable(self->fd, 15000);
	dt = now_s() - t0;
	ASSERT_EQ(0, adc_read_ll(&self->a, "buffer0/data_available", &avail));
	DIAG("poll_watermark: POLLIN after %.3f s, data_available %lld",
	     dt, avail);
	ASSERT_EQ(1, ret) {
		TH_LOG("poll: %s", ret ? strerror(-ret) : "timed out");
	}
	EXPECT_LE(0.4, dt) {
		TH_LOG("POLLIN too early: %.3f s for %lld scans at %lld Hz",
		       dt, wm, freq);
	}

	/* data_available or the reads must show >= watermark scans */
	end = now_s() + 2.0;
	while (rc.scans < (uint64_t)wm && now_s() < end) {
		n = read(self->fd, self->buf, BUF_BYTES / 16);
		if (n < 0 && errno == EAGAIN)
			break;
		ASSERT_LT(0, n);
		ASSERT_EQ(0, ramp_feed(&rc, self->buf, n)) {
			TH_LOG("%s", rc.err);
		}
	}
	DIAG("poll_watermark: read %" PRIu64 " scans without blocking",
	     rc.scans);
	EXPECT_TRUE(avail >= wm || rc.scans >= (uint64_t)wm) {
		TH_LOG("data_available %lld, read %" PRIu64 " < watermark %lld",
		       avail, rc.scans, wm);
	}
	EXPECT_EQ(0, rc.first_n);
}

/* The main character device is exclusive (IIO core semantics) */
TEST_F_TIMEOUT(stream, chardev_exclusive, 60)
{
	int fd2;

	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	fd2 = adc_open(&self->a, O_RDONLY);
	if (fd2 >= 0)
		close(fd2);
	EXPECT_EQ(-EBUSY, fd2);
	close(self->fd);
	self->fd = adc_open(&self->a, O_RDONLY);
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

	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	for (i = 0; i < 20; i++) {
		unsigned int mask = masks[i % ARRAY_SIZE(masks)];

		ramp_init(&rc, mask, false);
		ASSERT_EQ(0, adc_start(&self->a, mask, ADC_DEFAULT_FREQ,
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
		ASSERT_EQ(0, adc_buffer_disable(&self->a));
		ASSERT_EQ(0, adc_read_ll(&self->a, "buffer0/enable", &v));
		EXPECT_EQ(0, v);
	}
	DIAG("enable_disable_cycles: 20 cycles OK");
}

/* Channel subsets: scan size and packing per IIO rules */
FIXTURE(subset) {
	struct adc a;
	int fd;
	uint8_t *buf;
};

FIXTURE_VARIANT(subset) {
	unsigned int mask;
	size_t scan_size;
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
	ASSERT_EQ(0, adc_create_unique(&self->a, "sub"));
}

FIXTURE_TEARDOWN(subset)
{
	if (self->a.devnum >= 0)
		adc_buffer_disable(&self->a);
	if (self->fd >= 0)
		close(self->fd);
	adc_destroy(&self->a);
	free(self->buf);
}

TEST_F_TIMEOUT(subset, ramp, 120)
{
	struct stream_stats st;
	struct ramp_check rc;
	int ret;

	ramp_init(&rc, variant->mask, false);
	ASSERT_EQ(variant->scan_size, rc.l.size);
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, variant->mask, ADC_DEFAULT_FREQ,
			       16384, 256));
	ret = stream_read(self->fd, &rc, 5000, 60, self->buf, BUF_BYTES, &st);
	adc_buffer_disable(&self->a);
	ASSERT_EQ(0, ret) {
		TH_LOG("mask %#x: %s; %s", variant->mask, strerror(-ret),
		       rc.failed ? rc.err : "");
	}
	/* every read returned whole scans of the expected size */
	EXPECT_EQ(0U, rc.partial_reads);
	EXPECT_EQ(0U, st.bytes % variant->scan_size);
	EXPECT_EQ(0, rc.first_n);
	DIAG("mask %#x: %" PRIu64 " scans of %zu bytes OK", variant->mask,
	     rc.scans, variant->scan_size);
}

/* Two instances stream concurrently, each with its own ramp */
TEST_F_TIMEOUT(stream, two_instances, 120)
{
	const uint64_t want = 5000;
	struct ramp_check ra, rb;
	double end;
	ssize_t n;

	ASSERT_EQ(0, adc_create_unique(&self->b, "stb"));
	ramp_init(&ra, ADC_ALL_TS, false);
	ramp_init(&rb, ADC_CH(1) | ADC_CH(3), false);
	self->fd = adc_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->fd2 = adc_open(&self->b, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(0, adc_start(&self->a, ra.l.mask, 10000, 16384, 64));
	ASSERT_EQ(0, adc_start(&self->b, rb.l.mask, 5000, 16384, 64));

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

/* A reader that does not keep up: drops are counted and show as gaps */
TEST_F_TIMEOUT(stream, overruns_counted, 60)
{
	struct ramp_check rc;
	long long ov0, ov1, ov2;
	int ret;

	ramp_init(&rc, ADC_ALL_TS, true);
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov0));
	EXPECT_EQ(0, ov0);
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 10000, 256, 1));

	sleep_ms(1000);	/* ~10000 scans into a 256-scan buffer */
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov1));
	EXPECT_LT(ov0, ov1);

	ret = stream_read(self->fd, &rc, 2000, 20, self->buf, BUF_BYTES, NULL);
	ASSERT_EQ(0, adc_buffer_disable(&self->a));
	ASSERT_EQ(0, ret) {
		TH_LOG("%s; %s", strerror(-ret), rc.failed ? rc.err : "");
	}
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov2));
	DIAG("overruns_counted: overruns %lld -> %lld -> %lld, reader saw %"
	     PRIu64 " missing scans in %" PRIu64 " gaps, first n=%u",
	     ov0, ov1, ov2, rc.gaps, rc.gap_events, rc.first_n);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_LE(ov1, ov2);
	EXPECT_LE(1U, rc.gap_events);
	/* every missing scan number is a counted overrun */
	EXPECT_LE((long long)rc.gaps, ov2 - ov0);

	/* the count survives re-enabling (it is not reset per enable) */
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 10000, 4096, 1));
	ASSERT_EQ(0, adc_read_ll(&self->a, "overruns", &ov1));
	EXPECT_LE(ov2, ov1);
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

/* rmdir while a reader is blocked in read(): the reader must return */
TEST_F_TIMEOUT(stream, rmdir_blocked_reader, 60)
{
	struct blocked_reader r = { 0 };
	struct timespec deadline;
	char name[64];
	pthread_t th;
	double t;
	int ret;

	snprintf(name, sizeof(name), "%s", self->a.name);
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	/* 1 Hz with watermark 64: a blocking read waits ~64 s */
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 1, 4096, 64));

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
	ASSERT_EQ(0, adc_rmdir(name));
	self->a.devnum = -1;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 15;
	ret = pthread_timedjoin_np(th, NULL, &deadline);
	ASSERT_EQ(0, ret) {
		TH_LOG("reader still blocked 15 s after rmdir");
	}
	DIAG("rmdir_blocked_reader: read returned %zd (%s) %.3f s after rmdir",
	     r.ret, r.ret < 0 ? strerror(r.err) : "no error", now_s() - t);
	EXPECT_GE(0, r.ret);
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	/* further reads fail immediately */
	EXPECT_GE(0, read(self->fd, self->buf, 64));
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

/* The sine waveform streams too (values vary, timestamps increase) */
TEST_F_TIMEOUT(stream, sine_streams, 60)
{
	struct scan_layout l;
	int16_t mn[ADC_NUM_CH], mx[ADC_NUM_CH];
	int64_t last_ts = INT64_MIN;
	size_t got = 0, i;
	double end;
	ssize_t n;
	int c;

	layout_init(&l, ADC_ALL_TS);
	for (c = 0; c < ADC_NUM_CH; c++) {
		mn[c] = INT16_MAX;
		mx[c] = INT16_MIN;
	}
	ASSERT_EQ(0, adc_write(&self->a, "waveform", "sine"));
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 10000, 16384, 256));

	end = now_s() + 30;
	while (got < 10000 && now_s() < end) {
		n = read_timeout(self->fd, self->buf, BUF_BYTES, 5000);
		if (n == -ETIMEDOUT)
			continue;
		ASSERT_LT(0, n);
		ASSERT_EQ(0, n % (ssize_t)l.size);
		for (i = 0; i < (size_t)n / l.size; i++) {
			const uint8_t *s = self->buf + i * l.size;
			int64_t ts = get_le64(s + l.ts_off);

			for (c = 0; c < ADC_NUM_CH; c++) {
				int16_t v = (int16_t)get_le16(s + l.off[c]);

				if (v < mn[c])
					mn[c] = v;
				if (v > mx[c])
					mx[c] = v;
			}
			ASSERT_LT(last_ts, ts);
			last_ts = ts;
		}
		got += n / l.size;
	}
	adc_buffer_disable(&self->a);
	ASSERT_LE(10000U, got);
	for (c = 0; c < ADC_NUM_CH; c++) {
		DIAG("sine: channel %d range [%d, %d]", c, mn[c], mx[c]);
		EXPECT_LT(mn[c], mx[c]);
	}
}

TEST_HARNESS_MAIN
