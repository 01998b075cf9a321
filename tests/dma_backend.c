// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the converters' backend (Documentation/iio/dmabuf_adc.rst,
 * "Backend"). On the versal target (arm64, ZynqMP DMA channels) every
 * converter takes a dmaengine memcpy channel and its read-only `backend`
 * attribute names it (dmaNchanM); on x86 (no dmaengine) it is `cpu`. The
 * target is known from uname -m: aarch64 must have the DMA backend,
 * x86_64 the CPU one, anything else fails.
 *
 * Through the DMA backend the seed and mainline ramps stay exact, and the
 * channel's /sys/class/dma/<name>/bytes_transferred and memcpy_count grow
 * by at least what the blocks carried; with the CPU backend the same
 * ramps are exact and no channel is named.
 */
#include <sys/utsname.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

LEFTOVER_INSTANCES_FAIL()

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NBLK		4	/* blocks in flight */
#define BLK_SCANS	8192	/* 128 KiB blocks */
#define TOTAL		16	/* blocks checked per test */
#define FREQ		20000
#define DMA_CLASS	"/sys/class/dma"

/* 1: this target must have the DMA backend, 0: the CPU one, -1: unknown */
static int expect_dma(void)
{
	struct utsname u;

	if (uname(&u))
		return -1;
	if (!strcmp(u.machine, "aarch64"))
		return 1;
	if (!strcmp(u.machine, "x86_64"))
		return 0;
	return -1;
}

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
	int want = expect_dma(), ret;

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
	char ca[64], cd[64], why[256], again[64];

	ASSERT_EQ(0, backend_check(&self->a, ca, sizeof(ca), why,
				   sizeof(why))) {
		TH_LOG("%s", why);
	}
	ASSERT_EQ(0, backend_check(&self->d, cd, sizeof(cd), why,
				   sizeof(why))) {
		TH_LOG("%s", why);
	}
	if (expect_dma() == 1)
		EXPECT_STRNE(ca, cd);
	/* read-only sysfs files: opening one for writing is EACCES */
	EXPECT_EQ(-EACCES, inst_write(&self->a, "backend", "cpu"));
	EXPECT_EQ(-EACCES, inst_write(&self->d, "backend", "cpu"));
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, FREQ, 0, 0));
	ASSERT_LT(0, inst_read(&self->a, "backend", again, sizeof(again)));
	EXPECT_STREQ(ca[0] ? ca : "cpu", again);
}

/*
 * Seed ALLOC/ENQUEUE on the ADC: NBLK blocks go round TOTAL times, each
 * continues the ramp exactly, with no overrun; through a channel, its
 * counters grew by at least the bytes and one copy per block.
 */
TEST_F_TIMEOUT(be, seed_adc_ramp, 120)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct dmabuf_block blk[NBLK];
	struct chan_stats s0 = {}, s1 = {};
	struct ramp_check rc;
	char chan[64], why[256];
	long long ov0, ov1;
	int i, done, ret, cfd;

	for (i = 0; i < NBLK; i++)
		dmabuf_block_init(&blk[i]);
	ASSERT_EQ(0, backend_check(&self->a, chan, sizeof(chan), why,
				   sizeof(why))) {
		TH_LOG("%s", why);
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, FREQ, 0, 0));
	cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	for (i = 0; i < NBLK; i++) {
		ret = dmabuf_block_alloc(&blk[i], cfd, bytes, true);
		ASSERT_EQ(0, ret) {
			TH_LOG("ALLOC block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, dmabuf_enqueue(cfd, blk[i].fd, bytes));
	}
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s0));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (done = 0; done < TOTAL; done++) {
		struct dmabuf_block *b = &blk[done % NBLK];
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &rc, .bytes = bytes,
		};

		ret = block_wait_check(&w, b);
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", done, w.why);
		}
		ASSERT_EQ(0, dmabuf_enqueue(cfd, b->fd, bytes));
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s1));
	DIAG("seed via %s: %" PRIu64 " scans, %lld bytes in %lld copies",
	     chan[0] ? chan : "cpu", rc.scans, s1.bytes - s0.bytes,
	     s1.count - s0.count);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)TOTAL * BLK_SCANS, rc.scans);
	EXPECT_EQ(ov0, ov1);
	if (chan[0]) {
		EXPECT_LE((long long)(TOTAL * bytes), s1.bytes - s0.bytes);
		EXPECT_LE(TOTAL, s1.count - s0.count);
	}
	close(cfd);
	for (i = 0; i < NBLK; i++)
		dmabuf_block_free(&blk[i]);
}

/* A mainline DMABUF (udmabuf or a system heap buffer), mapped */
struct mblk {
	struct dmabuf_block b;
	int memfd;
};

static int mblk_alloc(struct mblk *m, bool heap, size_t size)
{
	int fd = heap ? dma_heap_alloc(DMA_HEAP_SYSTEM, size) :
			udmabuf_alloc(size, &m->memfd);

	if (fd < 0)
		return fd;
	m->b.fd = fd;
	m->b.size = size;
	m->b.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m->b.map == MAP_FAILED) {
		m->b.map = NULL;
		return -errno;
	}
	return 0;
}

static void mblk_free(struct mblk *m)
{
	dmabuf_block_free(&m->b);
	if (m->memfd >= 0)
		close(m->memfd);
	m->memfd = -1;
}

/*
 * The mainline API (ATTACH/ENQUEUE on the buffer fd) on the ADC, with
 * udmabuf and system heap buffers (the core maps them for the channel's
 * device): the ramp is exact, and the channel's counters grew by at least
 * what the blocks carried.
 */
static void mainline_ramp(struct __test_metadata *_metadata,
			  const struct inst *a, bool heap)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct chan_stats s0 = {}, s1 = {};
	struct mblk m[NBLK];
	struct ramp_check rc;
	char chan[64], why[256];
	long long ov0, ov1;
	int i, done, ret, devfd, bfd;

	for (i = 0; i < NBLK; i++) {
		dmabuf_block_init(&m[i].b);
		m[i].memfd = -1;
	}
	ASSERT_EQ(0, backend_check(a, chan, sizeof(chan), why,
				   sizeof(why))) {
		TH_LOG("%s", why);
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_configure(a, ADC_ALL_TS, FREQ, 0, 0));
	devfd = inst_open(a, O_RDWR);
	ASSERT_LE(0, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd);
	for (i = 0; i < NBLK; i++) {
		ret = mblk_alloc(&m[i], heap, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s block %d: %s", heap ? "heap" : "udmabuf",
			       i, strerror(-ret));
		}
		ASSERT_EQ(0, iio_buffer_attach(bfd, m[i].b.fd));
		ASSERT_EQ(0, iio_buffer_enqueue(bfd, m[i].b.fd, 0, bytes));
	}
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s0));
	ASSERT_EQ(0, inst_read_ll(a, "overruns", &ov0));
	ASSERT_EQ(0, inst_buffer_enable(a));
	for (done = 0; done < TOTAL; done++) {
		struct mblk *b = &m[done % NBLK];
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &rc, .bytes = bytes,
		};

		ret = block_wait_check(&w, &b->b);
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", done, w.why);
		}
		ASSERT_EQ(0, iio_buffer_enqueue(bfd, b->b.fd, 0, bytes));
	}
	ASSERT_EQ(0, inst_read_ll(a, "overruns", &ov1));
	ASSERT_EQ(0, inst_buffer_disable(a));
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s1));
	DIAG("mainline %s via %s: %" PRIu64 " scans, %lld bytes in %lld copies",
	     heap ? "heap" : "udmabuf", chan[0] ? chan : "cpu", rc.scans,
	     s1.bytes - s0.bytes, s1.count - s0.count);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)TOTAL * BLK_SCANS, rc.scans);
	EXPECT_EQ(ov0, ov1);
	if (chan[0]) {
		EXPECT_LE((long long)(TOTAL * bytes), s1.bytes - s0.bytes);
		EXPECT_LE(TOTAL, s1.count - s0.count);
	}
	for (i = 0; i < NBLK; i++) {
		EXPECT_EQ(1, poll_events(m[i].b.fd, POLLOUT, 5000));
		EXPECT_EQ(0, iio_buffer_detach(bfd, m[i].b.fd));
	}
	close(bfd);
	close(devfd);
	for (i = 0; i < NBLK; i++)
		mblk_free(&m[i]);
}

TEST_F_TIMEOUT(be, mainline_adc_ramp_udmabuf, 120)
{
	mainline_ramp(_metadata, &self->a, false);
}

TEST_F_TIMEOUT(be, mainline_adc_ramp_heap, 120)
{
	mainline_ramp(_metadata, &self->a, true);
}

/* Ramp scans @first_n.. into the mapped block @fd/@map, inside SYNC (RW) */
static int fill_ramp(int fd, uint8_t *map, uint64_t first_n, size_t nscans)
{
	struct scan_layout l;
	int ret;

	layout_init(&l, ADC_ALL_TS);
	ret = dmabuf_sync_start_rw(fd);
	if (ret)
		return ret;
	ramp_fill(&l, map, first_n, nscans);
	return dmabuf_sync_end_rw(fd);
}

/*
 * The DAC plays NBLK seed blocks holding one continuous ramp, then the
 * same blocks refilled with its continuation (TOTAL blocks in all): every
 * scan consumed, none mismatched, and through a channel its counters grew
 * by at least what the blocks carried.
 */
TEST_F_TIMEOUT(be, seed_dac_ramp, 120)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct dmabuf_block blk[NBLK];
	struct chan_stats s0 = {}, s1 = {};
	struct dac_counters c;
	char chan[64], why[256];
	int i, done, ret, cfd;

	for (i = 0; i < NBLK; i++)
		dmabuf_block_init(&blk[i]);
	ASSERT_EQ(0, backend_check(&self->d, chan, sizeof(chan), why,
				   sizeof(why))) {
		TH_LOG("%s", why);
	}
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 0, 0));
	cfd = inst_dmabuf_open(&self->d, O_RDWR);
	ASSERT_LE(0, cfd);
	for (i = 0; i < NBLK; i++) {
		ret = dmabuf_block_alloc(&blk[i], cfd, bytes, true);
		ASSERT_EQ(0, ret) {
			TH_LOG("ALLOC block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, fill_ramp(blk[i].fd, blk[i].map,
				       (uint64_t)i * BLK_SCANS, BLK_SCANS));
		ASSERT_EQ(0, dmabuf_enqueue(cfd, blk[i].fd, bytes));
	}
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s0));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	/* SYNC(START, RW) waits for the DAC's READ fence: block played */
	for (done = NBLK; done < TOTAL; done++) {
		struct dmabuf_block *b = &blk[done % NBLK];

		ret = fill_ramp(b->fd, b->map, (uint64_t)done * BLK_SCANS,
				BLK_SCANS);
		ASSERT_EQ(0, ret) {
			TH_LOG("refilling block #%d: %s", done, strerror(-ret));
		}
		ASSERT_EQ(0, dmabuf_enqueue(cfd, b->fd, bytes));
	}
	ret = dac_wait_consumed(&self->d, (long long)TOTAL * BLK_SCANS, 30000,
				&c);
	ASSERT_EQ(0, ret) {
		TH_LOG("scans_consumed %lld, expected %lld", c.consumed,
		       (long long)TOTAL * BLK_SCANS);
	}
	ASSERT_EQ(0, dac_read_counters(&self->d, &c));
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	if (chan[0])
		ASSERT_EQ(0, chan_stats(chan, &s1));
	DIAG("DAC seed via %s: consumed %lld, mismatches %lld, %lld bytes in %lld copies",
	     chan[0] ? chan : "cpu", c.consumed, c.mismatches,
	     s1.bytes - s0.bytes, s1.count - s0.count);
	EXPECT_EQ((long long)TOTAL * BLK_SCANS, c.consumed);
	EXPECT_EQ(0, c.mismatches);
	if (chan[0]) {
		EXPECT_LE((long long)(TOTAL * bytes), s1.bytes - s0.bytes);
		EXPECT_LE(TOTAL, s1.count - s0.count);
	}
	close(cfd);
	for (i = 0; i < NBLK; i++)
		dmabuf_block_free(&blk[i]);
}

TEST_HARNESS_MAIN
