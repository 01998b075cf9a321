// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf's exported buffer (Documentation/iio/export.rst) under
 * another driver: drivers/iio_dmabuf_test (iio_dmabuf_test.ko, copied to
 * /modules/ by qemu-run --extra-module) is a plain C IIO driver whose two
 * devices, iio_dmabuf_test_adc and iio_dmabuf_test_dac, get our buffer
 * with devm_iio_dmabuf_buffer_setup() and pace it with
 * iio_dmabuf_buffer_transfer(). Each test loads it and unloads it.
 *
 * Checked: the seed API (ALLOC/mmap/ENQUEUE/SYNC) and the mainline API
 * (ATTACH/ENQUEUE, udmabuf and a system heap buffer) give the ADC's ramp
 * exactly; the mainline ENQUEUE checks bytes_used against the scan size
 * of the channels selected at that moment; a DAC round (seed blocks and fileio write()) plays a ramp with
 * no mismatch; fileio read() on the ADC; through a dmaengine channel on
 * aarch64 (the channels' memcpy_count grows), by the CPU on x86_64 (no
 * dmaengine); unloading the driver with blocks queued ends their fences
 * with ENODEV; iio_dmabuf cannot be unloaded under it (EWOULDBLOCK); a
 * named channel that does not exist fails the driver's probe.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define TDRV_NAME	"iio_dmabuf_test"
#define TDRV_PATH	"/modules/" TDRV_NAME ".ko"
#define TDRV_SYSFS	"/sys/module/" TDRV_NAME
#define TADC_NAME	"iio_dmabuf_test_adc"
#define TDAC_NAME	"iio_dmabuf_test_dac"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NBLK		4	/* blocks in flight */
#define BLK_SCANS	2048	/* 32 KiB blocks */
#define TOTAL		8	/* blocks checked per test */
#define FREQ		5000	/* 2048-scan blocks: 0.4 s each */
#define DMA_CLASS	"/sys/class/dma"

static int tdrv_load(const char *params)
{
	return module_insert(TDRV_PATH, params);
}

static int tdrv_unload(void)
{
	return module_remove(TDRV_NAME);
}

/* An inst for the test driver's device @name (type @type); 0 or -errno */
static int tdev_find(struct inst *in, enum inst_type type, const char *name)
{
	int n = iio_wait_device(name, true, 5000);

	if (n < 0)
		return n;
	memset(in, 0, sizeof(*in));
	in->type = type;
	snprintf(in->name, sizeof(in->name), "%s", name);
	snprintf(in->dir, sizeof(in->dir), "/sys/bus/iio/devices/iio:device%d",
		 n);
	snprintf(in->chrdev, sizeof(in->chrdev), "/dev/iio:device%d", n);
	in->devnum = n;
	return 0;
}

/* Sum of every channel's memcpy_count (0 without dmaengine); -errno */
static long long dma_memcpy_total(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	long long sum = 0, v;
	DIR *d = opendir(DMA_CLASS);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DMA_CLASS "/%s/memcpy_count",
			 de->d_name);
		if (sysfs_read_ll(path, &v) == 0)
			sum += v;
	}
	closedir(d);
	return sum;
}

/*
 * What the copies of @blocks blocks must have done to the channels' count:
 * at least one copy each through a channel (aarch64), none on x86_64.
 */
static int check_copies(long long before, long long after, int blocks,
			char *why, size_t len)
{
	int want = target_has_dma();

	if (want < 0) {
		snprintf(why, len, "unknown target (uname -m)");
		return -1;
	}
	if (want && after - before < blocks) {
		snprintf(why, len, "memcpy_count grew by %lld for %d blocks",
			 after - before, blocks);
		return -1;
	}
	if (!want && after != 0) {
		snprintf(why, len, "x86_64 has dmaengine copies (%lld)", after);
		return -1;
	}
	return 0;
}

FIXTURE(ex) {
	struct inst a, d;
};

FIXTURE_SETUP(ex)
{
	int ret;

	self->a.devnum = -1;
	self->d.devnum = -1;
	ret = tdrv_load("");
	ASSERT_TRUE(ret == 0 || ret == -EEXIST) {
		TH_LOG("loading " TDRV_PATH ": %s", strerror(-ret));
	}
	ASSERT_EQ(0, tdev_find(&self->a, INST_ADC, TADC_NAME));
	ASSERT_EQ(0, tdev_find(&self->d, INST_DAC, TDAC_NAME));
}

FIXTURE_TEARDOWN(ex)
{
	if (self->a.devnum >= 0)
		inst_buffer_disable(&self->a);
	if (self->d.devnum >= 0)
		inst_buffer_disable(&self->d);
	if (dir_exists(TDRV_SYSFS))
		EXPECT_EQ(0, tdrv_unload());
	EXPECT_EQ(-ENOENT, iio_wait_device(TADC_NAME, false, 5000));
}

/* Round marks: the channels' memcpy_count before and after */
struct copies {
	long long before, after;
};

static int mark_copies(void *arg, bool after)
{
	struct copies *c = arg;
	long long n = dma_memcpy_total();

	if (n < 0)
		return n;
	*(after ? &c->after : &c->before) = n;
	return 0;
}

/*
 * An ADC round on the driver's ADC, by @api: NBLK blocks queued before
 * the enable, each refilled as it completes, TOTAL in all: the ramp is
 * exact from scan 0, nothing overran, and the data went through a
 * channel on aarch64.
 */
static void adc_ramp(struct __test_metadata *_metadata,
		     const struct inst *a, enum round_api api)
{
	struct copies c = {};
	struct round r = {
		.in = a, .api = api, .mask = ADC_ALL_TS, .freq = FREQ,
		.nblk = NBLK, .blk_scans = BLK_SCANS, .total = TOTAL,
		.mark = mark_copies, .arg = &c,
	};
	long long errors;
	char why[256];

	ROUND_OK(adc_round_run, &r);
	ASSERT_EQ(0, inst_read_ll(a, "errors", &errors));
	EXPECT_EQ(0, r.rc.first_n);
	EXPECT_EQ((uint64_t)TOTAL * BLK_SCANS, r.rc.scans);
	EXPECT_EQ(0, r.overruns);
	EXPECT_EQ(0, errors);
	EXPECT_EQ(0, check_copies(c.before, c.after, TOTAL, why, sizeof(why))) {
		TH_LOG("%s", why);
	}
}

TEST_F_TIMEOUT(ex, seed_adc_ramp, 120)
{
	adc_ramp(_metadata, &self->a, ROUND_SEED);
}

/* The mainline API (ATTACH/ENQUEUE on the buffer fd) */
TEST_F_TIMEOUT(ex, mainline_adc_ramp_udmabuf, 120)
{
	adc_ramp(_metadata, &self->a, ROUND_UDMABUF);
}

TEST_F_TIMEOUT(ex, mainline_adc_ramp_heap, 120)
{
	adc_ramp(_metadata, &self->a, ROUND_HEAP);
}

/*
 * A mainline ENQUEUE checks bytes_used against the scan size of the
 * channels selected when it runs (the IIO core's layout, from the mask of
 * that moment), not the one of the ATTACH: three 16-bit channels take
 * 6 bytes a scan, one channel and the 64-bit timestamp 16 (the timestamp
 * aligned to 8, the scan to its largest element). The blocks queued
 * complete once the buffer is enabled.
 */
TEST_F_TIMEOUT(ex, mainline_scan_size_follows_mask, 60)
{
	const size_t size = 4096;
	struct foreign_block m[2];
	int i, ret, devfd, bfd;

	for (i = 0; i < 2; i++)
		foreign_block_init(&m[i]);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_CH(0), FREQ, 0, 0));
	devfd = inst_open(&self->a, O_RDWR);
	ASSERT_LE(0, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd);
	for (i = 0; i < 2; i++) {
		ret = foreign_block_alloc(&m[i], false, size);
		ASSERT_EQ(0, ret) {
			TH_LOG("udmabuf %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, iio_buffer_attach(bfd, m[i].b.fd));
	}
	/* 2-byte scans */
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m[0].b.fd, 0, 3));
	/* 6-byte scans */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_CH(0) | ADC_CH(1) | ADC_CH(2),
				    FREQ, 0, 0));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m[0].b.fd, 0, 4));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m[0].b.fd, 0, 16));
	ASSERT_EQ(0, iio_buffer_enqueue(bfd, m[0].b.fd, 0, 6));
	/* 16-byte scans */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_CH(0) | ADC_TS, FREQ, 0, 0));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m[1].b.fd, 0, 6));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m[1].b.fd, 0, 24));
	ASSERT_EQ(0, iio_buffer_enqueue(bfd, m[1].b.fd, 0, 32));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(1, poll_events(m[i].b.fd, POLLOUT, 10000));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, iio_buffer_detach(bfd, m[i].b.fd));
	close(bfd);
	close(devfd);
	for (i = 0; i < 2; i++)
		foreign_block_free(&m[i]);
}

/*
 * Channel 0 with three elements a scan (the driver loaded with
 * ch0_repeat=3): the IIO core stores them in a power of two of elements,
 * 8 bytes with channel 0 alone. ENQUEUEs are judged against that size,
 * and a block holds whole scans of it: three copies of the sample, then
 * two bytes of padding.
 */
TEST_F_TIMEOUT(ex, repeated_channel_scan_size, 60)
{
	const size_t size = 4096;
	struct foreign_block m;
	uint8_t *p;
	int ret, devfd, bfd, s, e;

	foreign_block_init(&m);
	ASSERT_EQ(0, tdrv_unload());
	self->a.devnum = -1;
	self->d.devnum = -1;
	ASSERT_EQ(0, tdrv_load("ch0_repeat=3"));
	ASSERT_EQ(0, tdev_find(&self->a, INST_ADC, TADC_NAME));
	ASSERT_EQ(0, tdev_find(&self->d, INST_DAC, TDAC_NAME));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_CH(0), FREQ, 0, 0));
	devfd = inst_open(&self->a, O_RDWR);
	ASSERT_LE(0, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd);
	ret = foreign_block_alloc(&m, false, size);
	ASSERT_EQ(0, ret) {
		TH_LOG("udmabuf: %s", strerror(-ret));
	}
	ASSERT_EQ(0, iio_buffer_attach(bfd, m.b.fd));
	memset(m.b.map, 0xa5, size);
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m.b.fd, 0, 6));
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(bfd, m.b.fd, 0, 12));
	ASSERT_EQ(0, iio_buffer_enqueue(bfd, m.b.fd, 0, 16));
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	EXPECT_EQ(1, poll_events(m.b.fd, POLLOUT, 10000));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, dmabuf_sync_start(m.b.fd));
	for (s = 0; s < 2; s++) {
		p = m.b.map + 8 * s;
		for (e = 0; e < 3; e++)
			EXPECT_EQ(s, get_le16(p + 2 * e)) {
				TH_LOG("scan %d, element %d", s, e);
			}
		EXPECT_EQ(0, get_le16(p + 6));
	}
	/* bytes_used ends the block: the rest is untouched */
	EXPECT_EQ(0xa5, m.b.map[16]);
	ASSERT_EQ(0, dmabuf_sync_end(m.b.fd));
	EXPECT_EQ(0, iio_buffer_detach(bfd, m.b.fd));
	close(bfd);
	close(devfd);
	foreign_block_free(&m);
}

/*
 * A DAC round with seed blocks: NBLK blocks holding one ramp, queued
 * before the enable: every scan is consumed (exactly those: then it
 * underruns) with no mismatch, through a channel on aarch64.
 */
TEST_F_TIMEOUT(ex, seed_dac_ramp, 120)
{
	struct copies c = {};
	struct round r = {
		.in = &self->d, .api = ROUND_SEED, .mask = ADC_ALL_TS,
		.freq = FREQ, .nblk = NBLK, .blk_scans = BLK_SCANS,
		.total = NBLK, .mark = mark_copies, .arg = &c,
	};
	char why[256];

	ROUND_OK(dac_round_run, &r);
	EXPECT_EQ((long long)NBLK * BLK_SCANS, r.dac.consumed);
	EXPECT_EQ(0, r.dac.mismatches);
	EXPECT_EQ(0, check_copies(c.before, c.after, NBLK, why, sizeof(why))) {
		TH_LOG("%s", why);
	}
}

/*
 * A DAC round with fileio: a ramp written before the enable is played
 * whole (consumed exactly, no mismatch); a ramp with a wrong sample is
 * seen: the driver's checker can fail.
 */
TEST_F_TIMEOUT(ex, fileio_dac_ramp, 120)
{
	const size_t nscans = 2048;
	struct dac_counters c = {};
	struct scan_layout l;
	uint8_t *buf;
	int round, devfd, ret;

	layout_init(&l, ADC_ALL_TS);
	buf = calloc(nscans, l.size);
	ASSERT_NE(NULL, buf);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, FREQ, 0, 0));
		ramp_fill(&l, buf, 0, nscans);
		/* round 1: scan 1000's channel 2 is off by one */
		if (round)
			put_le16(buf + 1000 * l.size + l.off[2],
				 (uint16_t)(1000 + 2 + 1));
		devfd = inst_open(&self->d, O_RDWR);
		ASSERT_LE(0, devfd);
		ASSERT_EQ((ssize_t)(nscans * l.size),
			  write_all_timeout(devfd, buf, nscans * l.size, 10000));
		ASSERT_EQ(0, inst_buffer_enable(&self->d));
		ret = dac_wait_consumed(&self->d, nscans, 60000, &c);
		ASSERT_EQ(0, ret) {
			TH_LOG("round %d: consumed %lld of %zu", round,
			       c.consumed, nscans);
		}
		ASSERT_EQ(0, inst_buffer_disable(&self->d));
		close(devfd);
		ASSERT_EQ(0, dac_read_counters(&self->d, &c));
		EXPECT_EQ((long long)nscans, c.consumed);
		EXPECT_EQ(round ? 1 : 0, c.mismatches);
	}
	free(buf);
}

/* fileio read() on the driver's ADC: a ramp from scan 0, no gap */
TEST_F_TIMEOUT(ex, fileio_adc_read, 120)
{
	const uint64_t want = 4000;
	struct stream_stats st = {};
	struct ramp_check rc;
	long long ov0, ov1;
	uint8_t buf[4096];
	int devfd, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 2000, 0, 0));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov0));
	devfd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, devfd);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	ret = stream_read(devfd, &rc, want, 60, buf, sizeof(buf), &st);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s (%" PRIu64 " scans)", rc.failed ? rc.err :
		       strerror(-ret), rc.scans);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &ov1));
	close(devfd);
	EXPECT_EQ(0, rc.first_n);
	EXPECT_LE(want, rc.scans);
	EXPECT_EQ(ov0, ov1);
}

/*
 * Unloading: iio_dmabuf cannot go while the driver uses it
 * (EWOULDBLOCK: a module others depend on); the driver goes with seed
 * blocks queued on its enabled ADC and its char device still open: the
 * blocks' fences end with ENODEV, the char device refuses with ENODEV,
 * and the driver's devices are gone.
 */
TEST_F_TIMEOUT(ex, unload_with_blocks_queued, 120)
{
	const size_t bytes = BLK_SCANS * SCAN;
	struct dmabuf_block blk[NBLK];
	int i, ret, cfd, sfd[NBLK], status;

	for (i = 0; i < NBLK; i++) {
		dmabuf_block_init(&blk[i]);
		sfd[i] = -1;
	}
	/* 1 Hz: no block completes before the unload */
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1, 0, 0));
	cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	for (i = 0; i < NBLK; i++) {
		ret = dmabuf_block_alloc(&blk[i], cfd, bytes, true);
		ASSERT_EQ(0, ret) {
			TH_LOG("ALLOC block %d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, dmabuf_enqueue(cfd, blk[i].fd, bytes));
		sfd[i] = dmabuf_export_sync_file(blk[i].fd, DMA_BUF_SYNC_WRITE);
		ASSERT_LE(0, sfd[i]);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	sleep_ms(100);

	ASSERT_EQ(-EWOULDBLOCK, module_unload());
	ASSERT_TRUE(module_loaded());

	ASSERT_EQ(0, tdrv_unload());
	ASSERT_FALSE(dir_exists(TDRV_SYSFS));
	EXPECT_EQ(-ENOENT, iio_find_device(TADC_NAME));
	EXPECT_EQ(-ENOENT, iio_find_device(TDAC_NAME));
	for (i = 0; i < NBLK; i++) {
		ASSERT_EQ(0, sync_file_wait(sfd[i], 5000, &status));
		EXPECT_EQ(-ENODEV, status) {
			TH_LOG("block %d: %s", i, status_str(status));
		}
	}
	EXPECT_EQ(-ENODEV, dmabuf_enqueue(cfd, blk[0].fd, bytes));
	self->a.devnum = -1;
	self->d.devnum = -1;
	for (i = 0; i < NBLK; i++) {
		close(sfd[i]);
		dmabuf_block_free(&blk[i]);
	}
	close(cfd);
	/* Loaded again, it works again: the buffer state was per device */
	ASSERT_EQ(0, tdrv_load(""));
	ASSERT_EQ(0, tdev_find(&self->a, INST_ADC, TADC_NAME));
	ASSERT_EQ(0, tdev_find(&self->d, INST_DAC, TDAC_NAME));
}

/* A named channel that does not exist fails the probe, hence the load */
TEST_F_TIMEOUT(ex, missing_named_channel, 60)
{
	ASSERT_EQ(0, tdrv_unload());
	self->a.devnum = -1;
	self->d.devnum = -1;
	EXPECT_EQ(-ENODEV, tdrv_load("dma_channel=no_such_channel"));
	EXPECT_FALSE(dir_exists(TDRV_SYSFS));
	EXPECT_EQ(-ENOENT, iio_find_device(TADC_NAME));
}

TEST_HARNESS_MAIN
