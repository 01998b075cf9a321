// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: data exactness through the converters' DMA backend on a
 * machine whose caches are not coherent with DMA (issue 10, section 4;
 * Documentation/iio/dmabuf_adc.rst and dmabuf_dac.rst, "Backend";
 * dmabuf_api.rst, section 5: DMA_BUF_IOCTL_SYNC "also performs the cache
 * maintenance a non-coherent machine needs").
 *
 * On versal (arm64, ZynqMP DMA, no dma-coherent) each converter moves its
 * blocks with a dmaengine channel; on x86 the CPU does (same tests, same
 * expectations). Every test dirties the blocks with the CPU in the way a
 * missing cache maintenance step would expose:
 *
 * - the ADC's blocks are filled with a poison pattern (cached writes,
 *   inside SYNC START/END WRITE) before each ENQUEUE: a block whose DMA'd
 *   data the CPU does not see (missing invalidate, missing
 *   dma_sync_*_for_cpu, a bounce buffer not copied back) shows poison or
 *   an older round's ramp, and the ramp check fails (every byte of a
 *   16-byte scan is checked: four samples n + c, a timestamp that must
 *   increase; poison is a negative timestamp);
 * - the same with no CPU access at all between two ENQUEUEs of a block,
 *   and with the block read by the CPU while it is queued (stale lines
 *   brought into the cache before the DMA);
 * - the DAC's blocks are rewritten by the CPU each round (cached writes,
 *   SYNC END WRITE, ENQUEUE): a device reading stale memory (missing
 *   clean, missing dma_sync_*_for_device) plays the previous round and
 *   the DAC's mismatch counter grows;
 * - block sizes beyond the caches (8 MiB) and bytes_used not a multiple
 *   of a cache line (255 scans = 4 KiB - 16 bytes, 4099 scans = 64 KiB +
 *   48 bytes, 6-byte scans), with the bytes after bytes_used left as the
 *   CPU wrote them;
 * - seed blocks, mainline udmabuf and dma-heap (system) buffers (fixture
 *   variants), the ADC-to-DAC zero-copy loopback, and fileio read() and
 *   write().
 *
 * QEMU's TCG models no cache: a missing cache clean or invalidate cannot
 * corrupt data there. Booting the guest with swiotlb=force (qemu-run.sh
 * --append swiotlb=force) bounces every streaming DMA mapping, so that a
 * missing or misdirected dma_sync_* does show as wrong data; the tests
 * pass both ways.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

LEFTOVER_INSTANCES_FAIL()

#define SCAN		16	/* ADC_ALL_TS: 4 channels + timestamp */
#define POISON		0xa5
#define NBLK		2
#define ROUNDS		6	/* blocks checked per pattern */
#define BLK_SCANS	8192	/* 128 KiB blocks */
#define FREQ		20000	/* 0.4 s per block */
#define LARGE_BYTES	(8u << 20)	/* beyond every cache of the machine */
#define LARGE_FREQ	200000	/* 2.6 s per large block */
#define LARGE_ROUNDS	4
#define WAIT_MS		30000

enum kind { K_SEED, K_UDMABUF, K_HEAP };

static const char *const kind_name[] = { "seed", "udmabuf", "heap" };

/* A block of one of the kinds, mapped (udmabuf: with its memfd) */
struct blk {
	struct dmabuf_block b;
	int memfd;
	size_t used;		/* bytes_used of its last ENQUEUE */
};

/* Where blocks go: the seed char device or the buffer fd (mainline) */
struct path {
	enum kind kind;
	int cfd;		/* seed: /dev/iio:deviceN-dmabuf0 */
	int devfd, bfd;		/* mainline: /dev/iio:deviceN, buffer fd */
};

static void path_init(struct path *p, enum kind kind)
{
	p->kind = kind;
	p->cfd = -1;
	p->devfd = -1;
	p->bfd = -1;
}

static int path_open(struct path *p, const struct inst *in)
{
	if (p->kind == K_SEED) {
		p->cfd = inst_dmabuf_open(in, O_RDWR);
		return p->cfd < 0 ? p->cfd : 0;
	}
	p->devfd = inst_open(in, O_RDWR);
	if (p->devfd < 0)
		return p->devfd;
	p->bfd = iio_buffer_get_fd(p->devfd, 0);
	return p->bfd < 0 ? p->bfd : 0;
}

static void path_close(struct path *p)
{
	if (p->cfd >= 0)
		close(p->cfd);
	if (p->bfd >= 0)
		close(p->bfd);
	if (p->devfd >= 0)
		close(p->devfd);
	p->cfd = p->bfd = p->devfd = -1;
}

static void blk_init(struct blk *k)
{
	dmabuf_block_init(&k->b);
	k->memfd = -1;
	k->used = 0;
}

/* A mapped block of @size bytes (page multiple) for @p: ALLOC or ATTACH */
static int blk_alloc(struct blk *k, struct path *p, size_t size)
{
	int ret;

	blk_init(k);
	if (p->kind == K_SEED)
		return dmabuf_block_alloc(&k->b, p->cfd, size, true);
	ret = dmabuf_block_foreign(&k->b, p->kind == K_HEAP, size, &k->memfd);
	return ret ? ret : iio_buffer_attach(p->bfd, k->b.fd);
}

static void blk_free(struct blk *k, struct path *p)
{
	if (k->b.fd >= 0 && p->bfd >= 0)
		iio_buffer_detach(p->bfd, k->b.fd);
	dmabuf_block_free(&k->b);
	if (k->memfd >= 0)
		close(k->memfd);
	k->memfd = -1;
}

static int blk_enqueue(struct blk *k, struct path *p, size_t used)
{
	k->used = used;
	if (p->kind == K_SEED)
		return dmabuf_enqueue(p->cfd, k->b.fd, used);
	return iio_buffer_enqueue(p->bfd, k->b.fd, 0, used);
}

/* The whole block := POISON, as the API says: inside SYNC START/END RW */
static int blk_poison(struct blk *k)
{
	int ret = dmabuf_sync_start_rw(k->b.fd);

	if (ret)
		return ret;
	memset(k->b.map, POISON, k->b.size);
	return dmabuf_sync_end_rw(k->b.fd);
}

/* Ramp scans @first_n.. (@mask's layout) into the block, inside SYNC RW */
static int blk_fill(struct blk *k, unsigned int mask, uint64_t first_n,
		    size_t nscans)
{
	struct scan_layout l;
	int ret;

	layout_init(&l, mask);
	ret = dmabuf_sync_start_rw(k->b.fd);
	if (ret)
		return ret;
	/* stale data of the previous round is overwritten by cached stores */
	memset(k->b.map, POISON, k->b.size);
	ramp_fill(&l, k->b.map, first_n, nscans);
	return dmabuf_sync_end_rw(k->b.fd);
}

/* Offset of the first byte of @p[0..len) that is not POISON, or -1 */
static long first_not_poison(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != POISON)
			return (long)i;
	return -1;
}

/*
 * Waits for the block (SYNC START READ waits for the writer), feeds its
 * bytes_used bytes to @rc and, with @tail, checks that every byte after
 * them is still POISON. 0, or -1 with @why set.
 */
static int blk_check(struct blk *k, struct ramp_check *rc, bool tail,
		     char *why, size_t len)
{
	long bad = -1;
	int ret, end;

	ret = dmabuf_sync(k->b.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	if (ret) {
		snprintf(why, len, "SYNC_START: %s", strerror(-ret));
		return -1;
	}
	ret = ramp_feed(rc, k->b.map, k->used);
	if (!ret && tail)
		bad = first_not_poison(k->b.map + k->used, k->b.size - k->used);
	end = dmabuf_sync(k->b.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	if (ret) {
		snprintf(why, len, "ramp: %s", rc->err);
		return -1;
	}
	if (bad >= 0) {
		snprintf(why, len,
			 "byte %zu of %zu (bytes_used %zu + %ld) is 0x%02x, not the poison 0x%02x written by the CPU",
			 k->used + bad, k->b.size, k->used, bad,
			 k->b.map[k->used + bad], POISON);
		return -1;
	}
	if (end) {
		snprintf(why, len, "SYNC_END: %s", strerror(-end));
		return -1;
	}
	return 0;
}

/* Reads every cache line of the block (no SYNC: a reader racing the DMA) */
static uint64_t touch(const struct blk *k)
{
	const volatile uint8_t *p = k->b.map;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < k->b.size; i += 32)
		sum += p[i];
	return sum;
}

FIXTURE(coh) {
	struct inst a, d;
	struct path pa, pd;
	struct blk blk[NBLK];
	struct blk *many;
	int nmany;
};

FIXTURE_VARIANT(coh) {
	enum kind kind;
};

FIXTURE_VARIANT_ADD(coh, seed) {
	.kind = K_SEED,
};

FIXTURE_VARIANT_ADD(coh, udmabuf) {
	.kind = K_UDMABUF,
};

FIXTURE_VARIANT_ADD(coh, heap) {
	.kind = K_HEAP,
};

FIXTURE_SETUP(coh)
{
	int i;

	self->a.devnum = -1;
	self->d.devnum = -1;
	self->many = NULL;
	self->nmany = 0;
	path_init(&self->pa, variant->kind);
	path_init(&self->pd, variant->kind);
	for (i = 0; i < NBLK; i++)
		blk_init(&self->blk[i]);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "coh"));
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "coh"));
}

FIXTURE_TEARDOWN(coh)
{
	/* a fixture's blocks belong to the one path it opened */
	struct path *p = self->pd.bfd >= 0 ? &self->pd : &self->pa;
	int i;

	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->d.devnum >= 0)
		inst_buffer_disable(&self->d);
	for (i = 0; i < NBLK; i++)
		blk_free(&self->blk[i], p);
	for (i = 0; i < self->nmany; i++)
		blk_free(&self->many[i], p);
	free(self->many);
	path_close(&self->pa);
	path_close(&self->pd);
	inst_destroy(&self->a);
	inst_destroy(&self->d);
}

/* Converter @in configured, its path @p opened, NBLK blocks of @size */
static void conv_setup(struct __test_metadata *_metadata,
		       FIXTURE_DATA(coh) *self, const struct inst *in,
		       struct path *p, unsigned int mask, long long freq,
		       size_t size)
{
	int i, ret;

	ASSERT_EQ(0, inst_configure(in, mask, freq, 0, 0));
	ret = path_open(p, in);
	ASSERT_EQ(0, ret) {
		TH_LOG("opening %s's %s path: %s", in->name,
		       kind_name[p->kind], strerror(-ret));
	}
	for (i = 0; size && i < NBLK; i++) {
		ret = blk_alloc(&self->blk[i], p, size);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s block %d of %zu bytes: %s",
			       kind_name[p->kind], i, size, strerror(-ret));
		}
	}
}

/*
 * ADC, NBLK blocks of @size bytes going round @rounds times. Before each
 * ENQUEUE the CPU poisons the whole block (dirty lines in its cache),
 * with @touch_queued it then reads the block while it is queued and
 * being filled; after completion every byte must be the ramp, continuing
 * exactly across blocks from scan 0 (no gap: no scan dropped while
 * blocks were queued; overruns after the last block do not matter).
 */
static void adc_rounds(struct __test_metadata *_metadata,
		       FIXTURE_DATA(coh) *self, size_t size, long long freq,
		       int rounds, bool touch_queued)
{
	struct ramp_check rc;
	char why[320];
	uint64_t sum = 0;
	int i;

	conv_setup(_metadata, self, &self->a, &self->pa, ADC_ALL_TS, freq, size);
	ramp_init(&rc, ADC_ALL_TS, false);
	for (i = 0; i < NBLK; i++) {
		ASSERT_EQ(0, blk_poison(&self->blk[i]));
		ASSERT_EQ(0, blk_enqueue(&self->blk[i], &self->pa, size));
		if (touch_queued)
			sum += touch(&self->blk[i]);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (i = 0; i < rounds; i++) {
		struct blk *k = &self->blk[i % NBLK];
		struct blk *o = &self->blk[(i + 1) % NBLK];

		/* read the other block while the ADC fills it */
		while (touch_queued && poll_events(k->b.fd, POLLOUT, 0) == 0)
			sum += touch(o) + touch(k);
		ASSERT_EQ(0, blk_check(k, &rc, false, why, sizeof(why))) {
			TH_LOG("%s block #%d (%zu bytes): %s",
			       kind_name[self->pa.kind], i, size, why);
		}
		if (i + NBLK >= rounds)
			continue;
		ASSERT_EQ(0, blk_poison(k));
		ASSERT_EQ(0, blk_enqueue(k, &self->pa, size));
		if (touch_queued)
			sum += touch(k);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	DIAG("%s: %d blocks of %zu bytes, %" PRIu64 " scans exact (touch sum %" PRIu64 ")",
	     kind_name[self->pa.kind], rounds, size, rc.scans, sum);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)rounds * (size / SCAN), rc.scans);
}

/* Poisoned before each ENQUEUE, checked after: no poison survives */
TEST_F_TIMEOUT(coh, adc_poison_each_round, 120)
{
	adc_rounds(_metadata, self, BLK_SCANS * SCAN, FREQ, ROUNDS, false);
}

/* Read by the CPU while queued and being filled: no stale line survives */
TEST_F_TIMEOUT(coh, adc_read_while_queued, 120)
{
	adc_rounds(_metadata, self, BLK_SCANS * SCAN, FREQ, ROUNDS, true);
}

/* 8 MiB blocks, beyond the caches, poisoned each round */
TEST_F_TIMEOUT(coh, adc_large, 180)
{
	adc_rounds(_metadata, self, LARGE_BYTES, LARGE_FREQ, LARGE_ROUNDS,
		   false);
}

/*
 * No CPU access between ENQUEUEs: A and B poisoned once, queued; A is
 * queued again as soon as its fence signals (poll, no SYNC, no access).
 * Then B holds scans [S, 2S) and A, filled twice, [2S, 3S) exactly.
 */
TEST_F_TIMEOUT(coh, adc_back_to_back, 120)
{
	const size_t size = BLK_SCANS * SCAN;
	struct blk *a = &self->blk[0], *b = &self->blk[1];
	struct ramp_check rc;
	char why[320];
	int r;

	conv_setup(_metadata, self, &self->a, &self->pa, ADC_ALL_TS, FREQ, size);
	ASSERT_EQ(0, blk_poison(a));
	ASSERT_EQ(0, blk_poison(b));
	ASSERT_EQ(0, blk_enqueue(a, &self->pa, size));
	ASSERT_EQ(0, blk_enqueue(b, &self->pa, size));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	r = poll_events(a->b.fd, POLLOUT, WAIT_MS);
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, blk_enqueue(a, &self->pa, size));
	ASSERT_EQ(1, poll_events(b->b.fd, POLLOUT, WAIT_MS));
	ASSERT_EQ(1, poll_events(a->b.fd, POLLOUT, WAIT_MS));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ramp_init(&rc, ADC_ALL_TS, false);
	rc.expect = BLK_SCANS;
	ASSERT_EQ(0, blk_check(b, &rc, false, why, sizeof(why))) {
		TH_LOG("B (round 1): %s", why);
	}
	ASSERT_EQ(0, blk_check(a, &rc, false, why, sizeof(why))) {
		TH_LOG("A (round 2, refilled without CPU access): %s", why);
	}
	EXPECT_EQ((uint16_t)BLK_SCANS, rc.first_n);
	EXPECT_EQ(2u * BLK_SCANS, rc.scans);
}

/* Scan counts of the unaligned tests: none a multiple of a cache line */
struct usize {
	unsigned int mask;
	size_t scans;
};

static const struct usize usizes[] = {
	{ ADC_ALL_TS, 255 },	/* 4 KiB - 16 bytes */
	{ ADC_ALL_TS, 4099 },	/* 64 KiB + 48 bytes */
	{ ADC_ALL_TS, 1 },	/* 16 bytes */
	{ ADC_ALL_TS, 260 },	/* 4 KiB + 64: ends on a line boundary */
	{ ADC_ALL_TS, 8195 },	/* 128 KiB + 48 */
};

/* 6-byte scans (3 channels): bytes_used 4098, 65538, 6 */
static const size_t scans6[] = { 683, 10923, 1, 21845 };

/*
 * ADC blocks, each poisoned then queued with a bytes_used that is not a
 * multiple of a cache line; all queued before the enable, the ramp runs
 * across them. @mask: the scan layout. With @tail, the bytes after
 * bytes_used must still hold the CPU's poison.
 */
static void adc_unaligned(struct __test_metadata *_metadata,
			  FIXTURE_DATA(coh) *self, unsigned int mask,
			  const size_t *scans, int n, bool tail)
{
	struct scan_layout l;
	struct ramp_check rc;
	char why[320];
	uint64_t total = 0;
	int i, ret;

	layout_init(&l, mask);
	conv_setup(_metadata, self, &self->a, &self->pa, mask, FREQ, 0);
	self->many = calloc(n, sizeof(*self->many));
	ASSERT_NE(NULL, self->many);
	for (i = 0; i < n; i++)
		blk_init(&self->many[i]);
	self->nmany = n;
	for (i = 0; i < n; i++) {
		size_t used = scans[i] * l.size;
		size_t size = (used + page_size() - 1) / page_size() *
			      page_size();
		struct blk *k = &self->many[i];

		if (size == used)
			size += page_size();
		ret = blk_alloc(k, &self->pa, size);
		ASSERT_EQ(0, ret) {
			TH_LOG("block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, blk_poison(k));
		ASSERT_EQ(0, blk_enqueue(k, &self->pa, used));
		total += scans[i];
	}
	ramp_init(&rc, mask, false);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (i = 0; i < n; i++) {
		ret = blk_check(&self->many[i], &rc, tail, why, sizeof(why));
		ASSERT_EQ(0, ret) {
			TH_LOG("%s block %d, bytes_used %zu of %zu: %s",
			       kind_name[self->pa.kind], i, self->many[i].used,
			       self->many[i].b.size, why);
		}
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ(total, rc.scans);
}

static void scans_of(const struct usize *u, int n, unsigned int mask,
		     size_t *out, int *count)
{
	int i;

	*count = 0;
	for (i = 0; i < n; i++)
		if (u[i].mask == mask)
			out[(*count)++] = u[i].scans;
}

TEST_F_TIMEOUT(coh, adc_unaligned_16, 120)
{
	size_t s[ARRAY_SIZE(usizes)];
	int n;

	scans_of(usizes, ARRAY_SIZE(usizes), ADC_ALL_TS, s, &n);
	adc_unaligned(_metadata, self, ADC_ALL_TS, s, n, false);
}

TEST_F_TIMEOUT(coh, adc_unaligned_6, 120)
{
	adc_unaligned(_metadata, self, 0x7, scans6, ARRAY_SIZE(scans6), false);
}

/* The device writes bytes_used bytes: what the CPU put after them stays */
TEST_F_TIMEOUT(coh, adc_unaligned_tail_kept, 120)
{
	size_t s[ARRAY_SIZE(usizes)];
	int n;

	scans_of(usizes, ARRAY_SIZE(usizes), ADC_ALL_TS, s, &n);
	adc_unaligned(_metadata, self, ADC_ALL_TS, s, n, true);
}

/*
 * DAC, NBLK blocks of @size bytes, @rounds blocks played: before each
 * ENQUEUE the CPU overwrites the whole block (poison, then the ramp's
 * next segment, cached writes, inside SYNC START/END RW; SYNC START RW
 * waits for the DAC's read fence). The DAC plays every scan, exactly, and
 * none mismatches.
 */
static void dac_rounds(struct __test_metadata *_metadata,
		       FIXTURE_DATA(coh) *self, size_t size, long long freq,
		       int rounds)
{
	const size_t scans = size / SCAN;
	struct dac_counters c;
	int i, ret;

	conv_setup(_metadata, self, &self->d, &self->pd, ADC_ALL_TS, freq, size);
	for (i = 0; i < NBLK; i++) {
		ASSERT_EQ(0, blk_fill(&self->blk[i], ADC_ALL_TS,
				      (uint64_t)i * scans, scans));
		ASSERT_EQ(0, blk_enqueue(&self->blk[i], &self->pd, size));
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	for (i = NBLK; i < rounds; i++) {
		struct blk *k = &self->blk[i % NBLK];

		ret = blk_fill(k, ADC_ALL_TS, (uint64_t)i * scans, scans);
		ASSERT_EQ(0, ret) {
			TH_LOG("refilling block #%d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, blk_enqueue(k, &self->pd, size));
	}
	CONSUMED_EXACTLY((long long)rounds * scans, WAIT_MS, &c);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	DIAG("DAC %s: %d blocks of %zu bytes: consumed %lld, mismatches %lld",
	     kind_name[self->pd.kind], rounds, size, c.consumed,
	     c.mismatches);
	EXPECT_EQ(0, c.mismatches);
}

TEST_F_TIMEOUT(coh, dac_rewrite_each_round, 120)
{
	dac_rounds(_metadata, self, BLK_SCANS * SCAN, FREQ, ROUNDS);
}

TEST_F_TIMEOUT(coh, dac_large, 180)
{
	dac_rounds(_metadata, self, LARGE_BYTES, LARGE_FREQ, LARGE_ROUNDS);
}

/*
 * DAC blocks with bytes_used not a multiple of a cache line (16- and
 * 6-byte scans), the ramp continuing across them: every scan played,
 * none mismatches (the DAC checks across block boundaries).
 */
static void dac_unaligned(struct __test_metadata *_metadata,
			  FIXTURE_DATA(coh) *self, unsigned int mask,
			  const size_t *scans, int n)
{
	struct scan_layout l;
	struct dac_counters c;
	uint64_t total = 0;
	int i, ret;

	layout_init(&l, mask);
	conv_setup(_metadata, self, &self->d, &self->pd, mask, FREQ, 0);
	self->many = calloc(n, sizeof(*self->many));
	ASSERT_NE(NULL, self->many);
	for (i = 0; i < n; i++)
		blk_init(&self->many[i]);
	self->nmany = n;
	for (i = 0; i < n; i++) {
		size_t used = scans[i] * l.size;
		size_t size = (used + page_size() - 1) / page_size() *
			      page_size();
		struct blk *k = &self->many[i];

		ret = blk_alloc(k, &self->pd, size);
		ASSERT_EQ(0, ret) {
			TH_LOG("block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, blk_fill(k, mask, total, scans[i]));
		ASSERT_EQ(0, blk_enqueue(k, &self->pd, used));
		total += scans[i];
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY((long long)total, WAIT_MS, &c);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	EXPECT_EQ(0, c.mismatches);
}

TEST_F_TIMEOUT(coh, dac_unaligned_16, 120)
{
	size_t s[ARRAY_SIZE(usizes)];
	int n;

	scans_of(usizes, ARRAY_SIZE(usizes), ADC_ALL_TS, s, &n);
	dac_unaligned(_metadata, self, ADC_ALL_TS, s, n);
}

TEST_F_TIMEOUT(coh, dac_unaligned_6, 120)
{
	dac_unaligned(_metadata, self, 0x7, scans6, ARRAY_SIZE(scans6));
}

/* ------------------------------------------------------------------ */
/* Loopback and fileio (one kind: no variants)                         */
/* ------------------------------------------------------------------ */

FIXTURE(cohio) {
	struct inst a, d;
	int cfd_a, cfd_d, fd;
	struct dmabuf_block blk[4];
};

FIXTURE_SETUP(cohio)
{
	int i;

	self->a.devnum = -1;
	self->d.devnum = -1;
	self->cfd_a = self->cfd_d = self->fd = -1;
	for (i = 0; i < 4; i++)
		dmabuf_block_init(&self->blk[i]);
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "cohio"));
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "cohio"));
}

FIXTURE_TEARDOWN(cohio)
{
	int i;

	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->d.devnum >= 0)
		inst_buffer_disable(&self->d);
	if (self->cfd_a >= 0)
		close(self->cfd_a);
	if (self->cfd_d >= 0)
		close(self->cfd_d);
	if (self->fd >= 0)
		close(self->fd);
	for (i = 0; i < 4; i++)
		dmabuf_block_free(&self->blk[i]);
	inst_destroy(&self->a);
	inst_destroy(&self->d);
}

/*
 * Zero-copy loopback through DMA on both sides: 4 ADC seed blocks, each
 * queued on the ADC then on the DAC (the DAC waits for the ADC's write
 * fence). Each round the CPU waits for both (SYNC START RW), checks the
 * ramp, poisons the block and queues it again on both: the DAC plays
 * every scan with no mismatch (poison or stale data would mismatch), and
 * the CPU saw the exact ramp.
 */
TEST_F_TIMEOUT(cohio, loopback, 180)
{
	const size_t bytes = BLK_SCANS * SCAN;
	const int total = 12;
	struct ramp_check rc;
	struct dac_counters c;
	int i, ret;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, FREQ, 0, 0));
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 0, 0));
	self->cfd_a = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd_a);
	self->cfd_d = inst_dmabuf_open(&self->d, O_RDWR);
	ASSERT_LE(0, self->cfd_d);
	for (i = 0; i < 4; i++) {
		struct dmabuf_block *b = &self->blk[i];

		ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd_a, bytes, true));
		ASSERT_EQ(0, dmabuf_sync_start_rw(b->fd));
		memset(b->map, POISON, b->size);
		ASSERT_EQ(0, dmabuf_sync_end_rw(b->fd));
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd_a, b->fd, bytes));
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd_d, b->fd, bytes));
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (i = 0; i < total; i++) {
		struct dmabuf_block *b = &self->blk[i % 4];

		/* RW: waits for the ADC's write and the DAC's read fences */
		ASSERT_EQ(0, dmabuf_sync_start_rw(b->fd));
		ret = ramp_feed(&rc, b->map, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("block #%d: %s", i, rc.err);
		}
		if (i + 4 < total)
			memset(b->map, POISON, b->size);
		ASSERT_EQ(0, dmabuf_sync_end_rw(b->fd));
		if (i + 4 >= total)
			continue;
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd_a, b->fd, bytes));
		ASSERT_EQ(0, dmabuf_enqueue(self->cfd_d, b->fd, bytes));
	}
	CONSUMED_EXACTLY((long long)total * BLK_SCANS, WAIT_MS, &c);
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	DIAG("loopback: %" PRIu64 " scans checked, DAC consumed %lld, mismatches %lld",
	     rc.scans, c.consumed, c.mismatches);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_EQ((uint64_t)total * BLK_SCANS, rc.scans);
	EXPECT_EQ(0, c.mismatches);
}

/* fileio read() on the ADC: the ramp from scan 0, exact, with no gap */
TEST_F_TIMEOUT(cohio, adc_read, 120)
{
	const uint64_t want = 40000;
	static uint8_t buf[65536 + 48];
	struct stream_stats st;
	struct ramp_check rc;
	int ret;

	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, FREQ, 16384, 0));
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ramp_init(&rc, ADC_ALL_TS, false);
	/* an odd read size: reads end mid-scan, mid-cache-line */
	ret = stream_read(self->fd, &rc, want, 60, buf, sizeof(buf) - 5, &st);
	ASSERT_EQ(0, ret) {
		TH_LOG("read(): %s (%s)", strerror(-ret), rc.err);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_EQ(0, rc.first_n);
	EXPECT_LE(want, rc.scans);
}

/* fileio write() on the DAC, in uneven whole-scan chunks: exact */
TEST_F_TIMEOUT(cohio, dac_write, 120)
{
	static const size_t chunks[] = { 255, 4099, 1, 260, 8195, 3, 16384 };
	struct scan_layout l;
	struct dac_counters c;
	static uint8_t buf[16384 * SCAN];
	uint64_t n = 0;
	unsigned int i;
	ssize_t w;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 16384, 0));
	self->fd = inst_open(&self->d, O_WRONLY);
	ASSERT_LE(0, self->fd);
	for (i = 0; i < ARRAY_SIZE(chunks); i++) {
		size_t len = chunks[i] * SCAN;

		ramp_fill(&l, buf, n, chunks[i]);
		w = write_all_timeout(self->fd, buf, len, WAIT_MS);
		ASSERT_EQ((ssize_t)len, w) {
			TH_LOG("write of %zu scans: %zd", chunks[i], w);
		}
		n += chunks[i];
		if (i == 0)
			ASSERT_EQ(0, inst_buffer_enable(&self->d));
	}
	CONSUMED_EXACTLY((long long)n, WAIT_MS, &c);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	EXPECT_EQ(0, c.mismatches);
}

TEST_HARNESS_MAIN
