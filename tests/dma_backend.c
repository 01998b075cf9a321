// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the converters' backend (Documentation/iio/dmabuf_adc.rst,
 * "Backend"). On the versal target (arm64, ZynqMP DMA channels) every
 * converter takes a dmaengine memcpy channel and its read-only `backend`
 * attribute names it (dmaNchanM); on x86 (no dmaengine) it is `cpu`. The
 * target is known from uname -m: aarch64 must have the DMA backend,
 * x86_64 the CPU one, anything else fails.
 *
 * Through the DMA backend the seed, mainline and fileio ramps stay exact,
 * and the channel's /sys/class/dma/<name>/bytes_transferred and
 * memcpy_count grow by at least what the blocks carried; with the CPU
 * backend the same ramps are exact and no channel is named. Without the
 * timestamp the ADC's input repeats (the ramp's period is 2^16 scans): the
 * channel then copies every scan from one period of it the FIFO holds,
 * written once per input; ramps of 8-, 6- and 2-byte scans across that
 * period, and runs of one ADC with another layout or waveform each (the
 * FIFO keeps the pattern of the last), stay exact.
 *
 * Faults are injected with the module's fault attributes in debugfs
 * (fail_iio_dmabuf_dma_error: a descriptor completes with a bus error;
 * fail_iio_dmabuf_dma_stall: its completion is lost): the block they hit
 * fails with EIO or ETIMEDOUT (a fence's error, or the read() or write()
 * that takes the fileio block next), the blocks after it are exact, and
 * removing a device whose DMA hangs ends in bounded time. The CPU backend
 * moves no descriptor: the same faults leave its blocks exact.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

LEFTOVER_INSTANCES_FAIL()

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NBLK		4	/* blocks in flight */
#define BLK_SCANS	8192	/* 128 KiB blocks */
#define TOTAL		16	/* blocks checked per test */
#define FREQ		20000
#define DMA_CLASS	"/sys/class/dma"

/* "dma<N>chan<M>" and nothing else */
static bool is_chan_name(const char *s)
{
	unsigned int n, m;
	int end = 0;

	if (sscanf(s, "dma%uchan%u%n", &n, &m, &end) != 2)
		return false;
	return end > 0 && s[end] == '\0';
}

/* /sys/class/dma/@chan/@attr as a number; 0 or -errno */
static int chan_stat(const char *chan, const char *attr, long long *v)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), DMA_CLASS "/%s/%s", chan, attr);
	return sysfs_read_ll(path, v);
}

struct chan_stats {
	long long bytes;	/* bytes_transferred */
	long long count;	/* memcpy_count */
};

static int chan_stats(const char *chan, struct chan_stats *s)
{
	int ret = chan_stat(chan, "bytes_transferred", &s->bytes);

	return ret ? ret : chan_stat(chan, "memcpy_count", &s->count);
}

/*
 * The instance's backend, checked against the target: a channel that
 * exists under /sys/class/dma (into @chan) on aarch64, "cpu" on x86_64.
 * 0, or -1 with @why set.
 */
static int backend_check(const struct inst *in, char *chan, size_t size,
			 char *why, size_t whylen)
{
	char path[PATH_MAX];
	char b[64];
	int want = target_has_dma(), ret;

	chan[0] = '\0';
	ret = inst_read(in, "backend", b, sizeof(b));
	if (ret < 0) {
		snprintf(why, whylen, "reading %s's backend: %s", in->name,
			 strerror(-ret));
		return -1;
	}
	if (want < 0) {
		snprintf(why, whylen, "unknown target (uname -m)");
		return -1;
	}
	if (!want) {
		if (strcmp(b, "cpu")) {
			snprintf(why, whylen, "%s: backend '%s', expected 'cpu'",
				 in->name, b);
			return -1;
		}
		return 0;
	}
	if (!is_chan_name(b)) {
		snprintf(why, whylen, "%s: backend '%s', expected dmaNchanM",
			 in->name, b);
		return -1;
	}
	snprintf(path, sizeof(path), DMA_CLASS "/%s", b);
	if (!dir_exists(path)) {
		snprintf(why, whylen, "%s: backend %s: not in " DMA_CLASS,
			 in->name, b);
		return -1;
	}
	snprintf(chan, size, "%s", b);
	return 0;
}

/* What backend_check() found: the channel's name, or "cpu" */
static const char *backend_name(const char *chan)
{
	return chan[0] ? chan : "cpu";
}

#define FAIL_ATTR	"/sys/kernel/debug/fail_iio_dmabuf_dma_"

/* Makes the next @times descriptors (-1: every one) fail by @kind */
static int fault_arm(const char *kind, int times)
{
	static const char *const attrs[][2] = {
		{ "verbose", "0" }, { "interval", "1" }, { "space", "0" },
		{ "probability", "100" },
	};
	char path[PATH_MAX];
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(attrs); i++) {
		snprintf(path, sizeof(path), FAIL_ATTR "%s/%s", kind,
			 attrs[i][0]);
		ret = sysfs_write(path, attrs[i][1]);
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), FAIL_ATTR "%s/times", kind);
	return sysfs_write_ll(path, times);
}

static int fault_disarm(const char *kind)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), FAIL_ATTR "%s/probability", kind);
	return sysfs_write(path, "0");
}

/* The faults of @kind still to inject (its "times") */
static int fault_times_left(const char *kind, long long *left)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), FAIL_ATTR "%s/times", kind);
	return sysfs_read_ll(path, left);
}

/* For test bodies: backend_check() into @chan (a char array) succeeds */
#define ASSERT_BACKEND(in, chan) do {					\
	char _why[256];							\
	ASSERT_EQ(0, backend_check((in), (chan), sizeof(chan), _why,	\
				   sizeof(_why))) {			\
		TH_LOG("%s", _why);					\
	}								\
} while (0)

FIXTURE(be) {
	struct inst a, d;
};

FIXTURE_SETUP(be)
{
	self->a.devnum = -1;
	self->d.devnum = -1;
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "dbe"));
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "dbe"));
}

FIXTURE_TEARDOWN(be)
{
	fault_disarm("error");
	fault_disarm("stall");
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->d.devnum >= 0)
		inst_buffer_disable(&self->d);
	inst_destroy(&self->a);
	inst_destroy(&self->d);
}

/*
 * backend of an ADC and a DAC: the target's (a channel each, not the same
 * one, on aarch64; cpu on x86_64), read-only, unchanged by streaming.
 */
TEST_F_TIMEOUT(be, names, 60)
{
	char ca[64], cd[64], again[64];

	ASSERT_BACKEND(&self->a, ca);
	ASSERT_BACKEND(&self->d, cd);
	if (target_has_dma() == 1)
		EXPECT_STRNE(ca, cd);
	/* read-only sysfs files: opening one for writing is EACCES */
	EXPECT_EQ(-EACCES, inst_write(&self->a, "backend", "cpu"));
	EXPECT_EQ(-EACCES, inst_write(&self->d, "backend", "cpu"));
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, FREQ, 0, 0));
	ASSERT_LT(0, inst_read(&self->a, "backend", again, sizeof(again)));
	EXPECT_STREQ(backend_name(ca), again);
}

/* Round marks: a channel's counters before and after (none: "cpu") */
struct chan_marks {
	char chan[64];
	struct chan_stats before, after;
};

static int mark_chan(void *arg, bool after)
{
	struct chan_marks *m = arg;

	if (!m->chan[0])
		return 0;
	return chan_stats(m->chan, after ? &m->after : &m->before);
}

/*
 * Through a channel, its counters grew by at least @_bytes and one copy
 * per block (@_blocks).
 */
#define EXPECT_COPIES(_m, _blocks, _bytes) do {			\
	if ((_m)->chan[0]) {						\
		EXPECT_LE((long long)(_bytes),				\
			  (_m)->after.bytes - (_m)->before.bytes);	\
		EXPECT_LE((long long)(_blocks),				\
			  (_m)->after.count - (_m)->before.count);	\
	}								\
} while (0)

/*
 * An ADC round by @api with the channels of @mask: NBLK blocks go round
 * TOTAL times (the ramp's 2^16-scan period twice), each continues the
 * ramp exactly, with no overrun; through a channel, its counters grew by
 * at least the bytes and one copy per block. Mainline rounds use udmabuf
 * and system heap buffers (the core maps them for the channel's device).
 */
static void adc_ramp(struct __test_metadata *_metadata,
		     FIXTURE_DATA(be) *self, enum round_api api,
		     unsigned int mask)
{
	struct chan_marks m = {};
	struct round r = {
		.in = &self->a, .api = api, .mask = mask, .freq = FREQ,
		.nblk = NBLK, .blk_scans = BLK_SCANS, .total = TOTAL,
		.mark = mark_chan, .arg = &m,
	};
	struct scan_layout l;

	layout_init(&l, mask);
	ASSERT_BACKEND(&self->a, m.chan);
	ROUND_OK(adc_round_run, &r);
	DIAG("%s via %s, %zu-byte scans: %" PRIu64 " scans, %lld bytes in %lld copies",
	     round_api_name(api), backend_name(m.chan), l.size,
	     r.rc.scans, m.after.bytes - m.before.bytes,
	     m.after.count - m.before.count);
	EXPECT_EQ(0, r.rc.first_n);
	EXPECT_EQ((uint64_t)TOTAL * BLK_SCANS, r.rc.scans);
	EXPECT_EQ(0, r.overruns);
	EXPECT_COPIES(&m, TOTAL, TOTAL * BLK_SCANS * l.size);
}

TEST_F_TIMEOUT(be, seed_adc_ramp, 120)
{
	adc_ramp(_metadata, self, ROUND_SEED, ADC_ALL_TS);
}

/*
 * Without the timestamp the input repeats: the channel copies every scan
 * from the FIFO's one period of the ramp. Scans of 8, 6 and 2 bytes (the
 * period's bytes and the copies' offsets differ).
 */
TEST_F_TIMEOUT(be, seed_adc_ramp_no_timestamp, 120)
{
	adc_ramp(_metadata, self, ROUND_SEED, ADC_CH_ALL);
}

TEST_F_TIMEOUT(be, seed_adc_ramp_three_channels, 120)
{
	adc_ramp(_metadata, self, ROUND_SEED, ADC_CH(0) | ADC_CH(1) | ADC_CH(3));
}

TEST_F_TIMEOUT(be, seed_adc_ramp_one_channel, 120)
{
	adc_ramp(_metadata, self, ROUND_SEED, ADC_CH(2));
}

TEST_F_TIMEOUT(be, mainline_adc_ramp_udmabuf, 120)
{
	adc_ramp(_metadata, self, ROUND_UDMABUF, ADC_ALL_TS);
}

TEST_F_TIMEOUT(be, mainline_adc_ramp_heap, 120)
{
	adc_ramp(_metadata, self, ROUND_HEAP, ADC_ALL_TS);
}

/*
 * The DAC plays NBLK seed blocks holding one continuous ramp, then the
 * same blocks refilled with its continuation (TOTAL blocks in all): every
 * scan consumed, none mismatched, and through a channel its counters grew
 * by at least what the blocks carried.
 */
TEST_F_TIMEOUT(be, seed_dac_ramp, 120)
{
	struct chan_marks m = {};
	struct round r = {
		.in = &self->d, .api = ROUND_SEED, .mask = ADC_ALL_TS,
		.freq = FREQ, .nblk = NBLK, .blk_scans = BLK_SCANS,
		.total = TOTAL, .mark = mark_chan, .arg = &m,
	};

	ASSERT_BACKEND(&self->d, m.chan);
	ROUND_OK(dac_round_run, &r);
	DIAG("DAC seed via %s: consumed %lld, mismatches %lld, %lld bytes in %lld copies",
	     backend_name(m.chan), r.dac.consumed, r.dac.mismatches,
	     m.after.bytes - m.before.bytes, m.after.count - m.before.count);
	EXPECT_EQ((long long)TOTAL * BLK_SCANS, r.dac.consumed);
	EXPECT_EQ(0, r.dac.mismatches);
	EXPECT_COPIES(&m, TOTAL, TOTAL * BLK_SCANS * SCAN);
}

/*
 * fileio read() on the ADC with the channels of @mask, @want scans: the
 * kernel blocks are filled by the channel (its counters grow by at least
 * what was read), the ramp is exact.
 */
static void fileio_ramp(struct __test_metadata *_metadata,
			FIXTURE_DATA(be) *self, unsigned int mask,
			uint64_t want)
{
	struct chan_marks m = {};
	struct scan_layout l;
	struct ramp_check rc;
	static uint8_t buf[BLK_SCANS * SCAN];
	int fd, ret;

	layout_init(&l, mask);
	ASSERT_BACKEND(&self->a, m.chan);
	ramp_init(&rc, mask, false);
	ASSERT_EQ(0, mark_chan(&m, false));
	ASSERT_EQ(0, inst_start(&self->a, mask, FREQ, 4 * BLK_SCANS, 0));
	fd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ret = stream_read(fd, &rc, want, 60, buf, BLK_SCANS * l.size, NULL);
	ASSERT_EQ(0, ret) {
		TH_LOG("after %" PRIu64 " scans: %s %s", rc.scans,
		       strerror(-ret), rc.err);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, mark_chan(&m, true));
	DIAG("fileio via %s, %zu-byte scans: %" PRIu64 " scans, %lld bytes in %lld copies",
	     backend_name(m.chan), l.size, rc.scans,
	     m.after.bytes - m.before.bytes, m.after.count - m.before.count);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_COPIES(&m, 0, rc.scans * l.size);
	close(fd);
}

TEST_F_TIMEOUT(be, fileio_adc_ramp, 120)
{
	fileio_ramp(_metadata, self, ADC_ALL_TS, (uint64_t)TOTAL * BLK_SCANS / 2);
}

/* Past the ramp's period, copied from the FIFO's pattern */
TEST_F_TIMEOUT(be, fileio_adc_ramp_no_timestamp, 120)
{
	fileio_ramp(_metadata, self, ADC_CH_ALL, (uint64_t)TOTAL * BLK_SCANS);
}

/*
 * The same ADC run after run with another layout each time (the second
 * the same as the first): each run's pattern is its own (another scan
 * size's, or the same size's of other channels, would be wrong bytes),
 * one kept from the run before serves an equal one, and with the
 * timestamp back the CPU fills again.
 */
TEST_F_TIMEOUT(be, pattern_follows_the_layout, 180)
{
	fileio_ramp(_metadata, self, ADC_CH_ALL, 3 * BLK_SCANS);
	fileio_ramp(_metadata, self, ADC_CH_ALL, 3 * BLK_SCANS);
	fileio_ramp(_metadata, self, ADC_CH(1), 3 * BLK_SCANS);
	fileio_ramp(_metadata, self, ADC_ALL_TS, 3 * BLK_SCANS);
	fileio_ramp(_metadata, self, ADC_CH(0) | ADC_CH(3), 3 * BLK_SCANS);
	fileio_ramp(_metadata, self, ADC_CH(1) | ADC_CH(2), 3 * BLK_SCANS);
}

/*
 * Reads @want scans of @mask (no timestamp) from the enabled ADC's @fd:
 * every channel of scan n (from 0, none missing) is the sine's (@sine)
 * or the ramp's. 0, or -errno / -1 with @why set.
 */
static int wave_read_check(int fd, unsigned int mask, bool sine,
			   uint64_t want, char *why, size_t len)
{
	static uint8_t buf[BLK_SCANS * SCAN];
	struct scan_layout l;
	size_t have = 0, at;
	uint64_t n = 0;
	ssize_t got;
	int i;

	layout_init(&l, mask);
	while (n < want) {
		got = read_timeout(fd, buf + have, sizeof(buf) - have, 10000);
		if (got <= 0) {
			snprintf(why, len, "after %" PRIu64 " scans: %s", n,
				 got ? strerror((int)-got) : "end of file");
			return got ? (int)got : -ENODATA;
		}
		have += got;
		for (at = 0; have - at >= l.size; at += l.size, n++) {
			for (i = 0; i < l.nch; i++) {
				int c = l.ch[i];
				int16_t v = (int16_t)get_le16(buf + at + l.off[i]);

				if (v == wave_code(sine, n, c))
					continue;
				snprintf(why, len,
					 "scan %" PRIu64 " channel %d: %d, expected %d (%s)",
					 n, c, v, wave_code(sine, n, c),
					 sine ? "sine" : "ramp");
				return -1;
			}
		}
		memmove(buf, buf + at, have - at);
		have -= at;
	}
	return 0;
}

/*
 * The same ADC run after run with another waveform: the sine's period
 * (1000 scans) of 8-byte scans makes a pattern as long as the ramp's
 * (the FIFO's MiB); each run copies its own, through the channel.
 */
TEST_F_TIMEOUT(be, pattern_follows_the_waveform, 180)
{
	static const bool sine[] = { false, true, true, false };
	const uint64_t want = 3 * BLK_SCANS;
	struct chan_marks m = {};
	char why[256];
	size_t i;
	int fd, ret;

	ASSERT_BACKEND(&self->a, m.chan);
	for (i = 0; i < ARRAY_SIZE(sine); i++) {
		ASSERT_EQ(0, inst_write(&self->a, "waveform",
					sine[i] ? "sine" : "ramp"));
		ASSERT_EQ(0, mark_chan(&m, false));
		ASSERT_EQ(0, inst_start(&self->a, ADC_CH_ALL, FREQ,
					4 * BLK_SCANS, 0));
		fd = inst_open(&self->a, O_RDONLY);
		ASSERT_LE(0, fd);
		ret = wave_read_check(fd, ADC_CH_ALL, sine[i], want, why,
				      sizeof(why));
		EXPECT_EQ(0, ret) {
			TH_LOG("run %zu: %s", i, why);
		}
		ASSERT_EQ(0, inst_buffer_disable(&self->a));
		close(fd);
		ASSERT_EQ(0, mark_chan(&m, true));
		EXPECT_COPIES(&m, 1, want * 8);
	}
}

/* @n ramp scans from @first into @buf */
static void ramp_scans(uint8_t *buf, uint64_t first, size_t n)
{
	struct scan_layout l;

	layout_init(&l, ADC_ALL_TS);
	ramp_fill(&l, buf, first, n);
}

/*
 * fileio write() on the DAC: the channel drains the kernel blocks (its
 * counters grow by at least what was played), every scan is consumed,
 * none mismatched.
 */
TEST_F_TIMEOUT(be, fileio_dac_ramp, 120)
{
	const size_t chunk = BLK_SCANS / 2, chunks = TOTAL;
	struct chan_marks m = {};
	static uint8_t buf[BLK_SCANS / 2 * SCAN];
	struct dac_counters c;
	size_t i;
	ssize_t n;
	int fd, ret;

	ASSERT_BACKEND(&self->d, m.chan);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 4 * BLK_SCANS,
				    0));
	fd = inst_open(&self->d, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mark_chan(&m, false));
	for (i = 0; i < chunks; i++) {
		ramp_scans(buf, i * chunk, chunk);
		n = write_all_timeout(fd, buf, sizeof(buf), 30000);
		ASSERT_EQ((ssize_t)sizeof(buf), n) {
			TH_LOG("chunk %zu: %s", i,
			       n < 0 ? strerror((int)-n) : "short");
		}
		if (!i)
			ASSERT_EQ(0, inst_buffer_enable(&self->d));
	}
	ret = dac_wait_consumed(&self->d, (long long)(chunks * chunk), 30000,
				&c);
	ASSERT_EQ(0, ret) {
		TH_LOG("scans_consumed %lld, expected %zu", c.consumed,
		       chunks * chunk);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	ASSERT_EQ(0, mark_chan(&m, true));
	DIAG("DAC fileio via %s: consumed %lld, mismatches %lld, %lld bytes in %lld copies",
	     backend_name(m.chan), c.consumed, c.mismatches,
	     m.after.bytes - m.before.bytes, m.after.count - m.before.count);
	EXPECT_EQ((long long)(chunks * chunk), c.consumed);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_COPIES(&m, 0, chunks * chunk * SCAN);
	close(fd);
}

/*
 * Seed blocks on the ADC with the first descriptor failing by @kind: the
 * block it hit ends with @err (its fence's error, within the channel's
 * timeout when the completion is lost), the fault was taken, and the next
 * block is exact from its own first scan on. With the CPU backend no
 * descriptor exists: every block is exact and the fault stays armed.
 */
static void seed_fault(struct __test_metadata *_metadata,
		       const struct inst *a, const char *kind, int err)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct dmabuf_block blk[2];
	struct ramp_check rc;
	char chan[64];
	long long left;
	int i, ret, cfd, sfd, st;

	for (i = 0; i < 2; i++)
		dmabuf_block_init(&blk[i]);
	ASSERT_BACKEND(a, chan);
	ASSERT_EQ(0, inst_configure(a, ADC_ALL_TS, FREQ, 0, 0));
	cfd = inst_dmabuf_open(a, O_RDWR);
	ASSERT_LE(0, cfd);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, dmabuf_block_alloc(&blk[i], cfd, bytes, true));
		ASSERT_EQ(0, dmabuf_enqueue(cfd, blk[i].fd, bytes));
	}
	sfd = dmabuf_export_sync_file(blk[0].fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, fault_arm(kind, 1));
	ASSERT_EQ(0, inst_buffer_enable(a));
	ASSERT_EQ(0, sync_file_wait(sfd, 20000, &st)) {
		TH_LOG("block 0 still pending after 20 s");
	}
	ASSERT_EQ(0, fault_times_left(kind, &left));
	DIAG("%s via %s: block 0 %s, faults left %lld", kind,
	     backend_name(chan), status_str(st), left);
	if (chan[0]) {
		EXPECT_EQ(err, st) {
			TH_LOG("block 0: %s, expected %s", status_str(st),
			       strerror(-err));
		}
		EXPECT_EQ(0, left);
	} else {
		EXPECT_EQ(1, st);
		EXPECT_EQ(1, left);
	}
	/* block 1: scans BLK_SCANS.., exact */
	ramp_init(&rc, ADC_ALL_TS, false);
	rc.expect = BLK_SCANS;
	{
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &rc, .bytes = bytes,
		};

		ret = block_wait_check(&w, &blk[1]);
		ASSERT_EQ(0, ret) {
			TH_LOG("block 1: %s", w.why);
		}
	}
	EXPECT_EQ(BLK_SCANS % 65536, rc.first_n);
	EXPECT_EQ((uint64_t)BLK_SCANS, rc.scans);
	ASSERT_EQ(0, inst_buffer_disable(a));
	close(sfd);
	close(cfd);
	for (i = 0; i < 2; i++)
		dmabuf_block_free(&blk[i]);
}

TEST_F_TIMEOUT(be, seed_fault_error, 60)
{
	seed_fault(_metadata, &self->a, "error", -EIO);
}

TEST_F_TIMEOUT(be, seed_fault_stall, 60)
{
	seed_fault(_metadata, &self->a, "stall", -ETIMEDOUT);
}

/*
 * Mainline (udmabuf) on the ADC, first descriptor completing with an
 * error: the core's fence of that block ends with EIO, the next block is
 * exact.
 */
TEST_F_TIMEOUT(be, mainline_fault_error, 60)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct ramp_check rc;
	char chan[64];
	struct foreign_block m[2];
	int i, ret, devfd, bfd, sfd, st;

	for (i = 0; i < 2; i++)
		foreign_block_init(&m[i]);
	ASSERT_BACKEND(&self->a, chan);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, FREQ, 0, 0));
	devfd = inst_open(&self->a, O_RDWR);
	ASSERT_LE(0, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, foreign_block_alloc(&m[i], false, bytes));
		ASSERT_EQ(0, iio_buffer_attach(bfd, m[i].b.fd));
		ASSERT_EQ(0, iio_buffer_enqueue(bfd, m[i].b.fd, 0, bytes));
	}
	sfd = dmabuf_export_sync_file(m[0].b.fd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, fault_arm("error", 1));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ASSERT_EQ(0, sync_file_wait(sfd, 20000, &st));
	EXPECT_EQ(chan[0] ? -EIO : 1, st) {
		TH_LOG("block 0: %s", status_str(st));
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	rc.expect = BLK_SCANS;
	{
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &rc, .bytes = bytes,
		};

		ret = block_wait_check(&w, &m[1].b);
		ASSERT_EQ(0, ret) {
			TH_LOG("block 1: %s", w.why);
		}
	}
	EXPECT_EQ(BLK_SCANS % 65536, rc.first_n);
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, iio_buffer_detach(bfd, m[i].b.fd));
	close(sfd);
	close(bfd);
	close(devfd);
	for (i = 0; i < 2; i++)
		foreign_block_free(&m[i]);
}

/*
 * fileio read() on the ADC with one descriptor failing: exactly one read()
 * fails with EIO (the block's scans are dropped), the reads before and
 * after it are exact ramps, the ones after continue past the dropped
 * block. The CPU backend reads on with no error and no gap.
 */
TEST_F_TIMEOUT(be, fileio_fault_error, 120)
{
	const size_t blk = BLK_SCANS / 4;
	static uint8_t buf[BLK_SCANS * SCAN];
	struct ramp_check rc;
	char chan[64];
	int fd, eio = 0, reads = 0;
	ssize_t n;

	ASSERT_BACKEND(&self->a, chan);
	/* gaps counted: the dropped block is one */
	ramp_init(&rc, ADC_ALL_TS, true);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, FREQ, 4 * blk, blk));
	fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, fd);
	n = read_timeout(fd, buf, blk * SCAN, 10000);
	ASSERT_EQ((ssize_t)(blk * SCAN), n);
	ASSERT_EQ(0, ramp_feed(&rc, buf, (size_t)n));
	ASSERT_EQ(0, fault_arm("error", 1));
	while (rc.scans < 12 * blk && reads < 1000) {
		n = read_timeout(fd, buf, blk * SCAN, 10000);
		reads++;
		if (n == -EIO) {
			eio++;
			continue;
		}
		ASSERT_LT(0, n) {
			TH_LOG("read #%d: %s", reads, strerror((int)-n));
		}
		ASSERT_EQ(0, ramp_feed(&rc, buf, (size_t)n)) {
			TH_LOG("%s", rc.err);
		}
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	DIAG("fileio fault via %s: %d EIO, %" PRIu64 " scans, %" PRIu64
	     " missing in %" PRIu64 " gaps", backend_name(chan), eio,
	     rc.scans, rc.gaps, rc.gap_events);
	if (chan[0]) {
		EXPECT_EQ(1, eio);
		EXPECT_EQ(1, (int)rc.gap_events);
		/* the dropped block's scans, and no more */
		EXPECT_EQ(blk, rc.gaps);
	} else {
		EXPECT_EQ(0, eio);
		EXPECT_EQ(0, (int)rc.gap_events);
	}
	close(fd);
}

/*
 * fileio write() on the DAC with one descriptor failing: one write()
 * fails with EIO (the one that takes the block back), the DAC never sees
 * a mismatch (the scans of the failed copy were not played, the ramp
 * restarts after them), and it consumed every scan but those of the
 * failed copy (a part of one block).
 */
TEST_F_TIMEOUT(be, fileio_dac_fault_error, 120)
{
	const size_t chunk = BLK_SCANS / 4, chunks = 16;
	static uint8_t buf[BLK_SCANS / 4 * SCAN];
	struct dac_counters c;
	char chan[64];
	uint64_t next = 0;
	int fd, eio = 0, tries = 0;
	long long want;
	ssize_t n;

	ASSERT_BACKEND(&self->d, chan);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 4 * chunk,
				    chunk));
	fd = inst_open(&self->d, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fault_arm("error", 1));
	while (next < chunks * chunk && tries++ < 1000) {
		ramp_scans(buf, next, chunk);
		n = write_all_timeout(fd, buf, sizeof(buf), 30000);
		if (n == -EIO) {
			eio++;
			continue;
		}
		ASSERT_EQ((ssize_t)sizeof(buf), n) {
			TH_LOG("at scan %" PRIu64 ": %s", next,
			       n < 0 ? strerror((int)-n) : "short");
		}
		if (!next)
			ASSERT_EQ(0, inst_buffer_enable(&self->d));
		next += chunk;
	}
	/* the end of the stream: everything played that will be */
	want = (long long)next - (chan[0] ? (long long)chunk : 0);
	(void)dac_wait_consumed(&self->d, want, 30000, &c);
	usleep(500 * 1000);
	ASSERT_EQ(0, dac_read_counters(&self->d, &c));
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	DIAG("DAC fileio fault via %s: %d EIO, consumed %lld of %" PRIu64
	     ", mismatches %lld", backend_name(chan), eio, c.consumed,
	     next, c.mismatches);
	EXPECT_EQ(chan[0] ? 1 : 0, eio);
	EXPECT_LE(want, c.consumed);
	/* through a channel, the failed copy's scans are missing */
	EXPECT_EQ(chan[0] ? 1 : 0, c.consumed < (long long)next);
	EXPECT_EQ(0, c.mismatches);
	close(fd);
}

/*
 * The buffer is disabled (@rmdir: the device removed) while its DMA hangs,
 * every completion lost: that returns within a few channel timeouts, the
 * block in the hung transfer ends with ETIMEDOUT and the others with
 * ECANCELED (ENODEV), and a device on that channel then streams exactly
 * (a fresh one after the rmdir). With the CPU backend nothing hangs: a
 * block may have completed.
 */
static void abort_hung_dma(struct __test_metadata *_metadata, struct inst *a,
			   bool rmdir)
{
	const size_t bytes = BLK_SCANS * SCAN;
	const int aborted = rmdir ? -ENODEV : -ECANCELED;
	struct dmabuf_block blk[NBLK];
	char chan[64];
	int i, cfd, sfd[NBLK], st, timedout = 0;
	double t0, t1;

	for (i = 0; i < NBLK; i++)
		dmabuf_block_init(&blk[i]);
	ASSERT_BACKEND(a, chan);
	ASSERT_EQ(0, inst_configure(a, ADC_ALL_TS, FREQ, 0, 0));
	cfd = inst_dmabuf_open(a, O_RDWR);
	ASSERT_LE(0, cfd);
	for (i = 0; i < NBLK; i++) {
		ASSERT_EQ(0, dmabuf_block_alloc(&blk[i], cfd, bytes, true));
		ASSERT_EQ(0, dmabuf_enqueue(cfd, blk[i].fd, bytes));
		sfd[i] = dmabuf_export_sync_file(blk[i].fd, DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, sfd[i]);
	}
	ASSERT_EQ(0, fault_arm("stall", -1));
	ASSERT_EQ(0, inst_buffer_enable(a));
	usleep(300 * 1000);	/* the hardware is inside a transfer now */
	t0 = now_s();
	if (rmdir) {
		ASSERT_EQ(0, inst_rmdir(INST_ADC, a->name));
		a->devnum = -1;
	} else {
		ASSERT_EQ(0, inst_buffer_disable(a));
	}
	t1 = now_s();
	ASSERT_EQ(0, fault_disarm("stall"));
	for (i = 0; i < NBLK; i++) {
		ASSERT_EQ(0, sync_file_wait(sfd[i], 10000, &st)) {
			TH_LOG("block %d pending 10 s after the abort", i);
		}
		DIAG("block %d: %s", i, status_str(st));
		timedout += st == -ETIMEDOUT;
		EXPECT_TRUE(st == aborted || st == (chan[0] ? -ETIMEDOUT : 1));
		close(sfd[i]);
	}
	DIAG("%s took %.2f s via %s", rmdir ? "rmdir" : "disable", t1 - t0,
	     backend_name(chan));
	EXPECT_GT(10.0, t1 - t0);
	if (chan[0])
		EXPECT_LE(1, timedout);
	close(cfd);
	for (i = 0; i < NBLK; i++)
		dmabuf_block_free(&blk[i]);
	if (rmdir)
		ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "dbe"));
	seed_fault(_metadata, a, "error", -EIO);
}

TEST_F_TIMEOUT(be, rmdir_while_dma_hangs, 90)
{
	abort_hung_dma(_metadata, &self->a, true);
}

TEST_F_TIMEOUT(be, disable_while_dma_hangs, 90)
{
	abort_hung_dma(_metadata, &self->a, false);
}

TEST_HARNESS_MAIN
