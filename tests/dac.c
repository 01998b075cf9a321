// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the virtual DAC (configfs type dmabuf_dac): sysfs, fileio
 * (write() on /dev/iio:deviceN), the seed DMABUF interface on its
 * /dev/iio:deviceN-dmabuf0, IIO_BUFFER_DMABUF_CYCLIC, the mainline API on
 * its buffer fd, and rmdir with blocks queued.
 *
 * The DAC checks what it plays against the ramp (channel c of scan n holds
 * n + c, n following the previous scan's) and counts scans_consumed,
 * mismatches and underruns: the tests write ramps and read the counters,
 * and broken ramps (a skipped, a repeated, a corrupted scan) through each
 * interface, for which mismatches must be exactly what dmabuf_dac.rst
 * says. The loopback from an ADC is in loopback.c.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define MAXB		8

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Fill @nscans ramp scans from @first_n into the mapped block @b, inside
 * SYNC_START/END (WRITE): waits until the device is done reading it.
 */
static int fill_block(struct dmabuf_block *b, uint64_t first_n,
		      size_t nscans)
{
	struct scan_layout l;
	int ret;

	layout_init(&l, ADC_ALL_TS);
	ret = dmabuf_sync_start_rw(b->fd);
	if (ret)
		return ret;
	ramp_fill(&l, b->map, first_n, nscans);
	return dmabuf_sync_end_rw(b->fd);
}

/* out_voltageN_raw must be the ramp value of scan @n (the last played) */
static int check_raw_is_scan(const struct inst *d, uint64_t n, char *err,
			     size_t errlen)
{
	char attr[64];
	long long v;
	int c, ret;

	for (c = 0; c < DAC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", c);
		ret = inst_read_ll(d, attr, &v);
		if (ret) {
			snprintf(err, errlen, "reading %s: %s", attr,
				 strerror(-ret));
			return ret;
		}
		if (v != ramp_value(n, c)) {
			snprintf(err, errlen,
				 "%s = %lld, expected %lld (scan %" PRIu64 ")",
				 attr, v, ramp_value(n, c), n);
			return -EPROTO;
		}
	}
	return 0;
}

/* write() of @len bytes on @fd; 0..len or -errno (no retry) */
static ssize_t write_once(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

/*
 * Wait up to @timeout_ms until the DAC's counters satisfy @what (one of
 * the WAIT_* below); @c gets the last counters read. 0, -ETIMEDOUT or
 * -errno. Windows are measured from the event waited for, not from a
 * fixed sleep, so a loaded machine only makes them take longer.
 */
enum wait_what { WAIT_UNDERRUN, WAIT_CONSUMED_SOME };

static int dac_wait_for(const struct inst *d, enum wait_what what,
			int timeout_ms, struct dac_counters *c)
{
	double end = now_s() + timeout_ms / 1000.0;
	int ret;

	for (;;) {
		ret = dac_read_counters(d, c);
		if (ret)
			return ret;
		if (what == WAIT_UNDERRUN ? c->underruns > 0 : c->consumed > 0)
			return 0;
		if (now_s() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

/* ------------------------------------------------------------------ */
/* The fixture: one DAC, its fds and blocks, sometimes an ADC          */
/* ------------------------------------------------------------------ */

/*
 * Two fixtures with the same data, setup and teardown: "dac" for the
 * plain tests and "dacv" for those run through both the seed and the
 * mainline interface (variants).
 */
#define DAC_FIXTURE_DATA						\
	struct inst d;							\
	struct inst a;		/* an ADC, for the tests needing one */	\
	int devfd;		/* /dev/iio:deviceN */			\
	int bfd;		/* buffer0's fd */			\
	int cfd;		/* /dev/iio:deviceN-dmabuf0 */		\
	struct dmabuf_block blk[MAXB];					\
	int sfd[MAXB];							\
	uint8_t *buf		/* a scratch buffer of BUF_BYTES */

#define BUF_SCANS	40000
#define BUF_BYTES	(BUF_SCANS * SCAN)

#define DAC_SETUP() do {						\
	int _i;								\
	self->a.devnum = -1;						\
	self->d.devnum = -1;						\
	self->devfd = -1;						\
	self->bfd = -1;							\
	self->cfd = -1;							\
	for (_i = 0; _i < MAXB; _i++) {					\
		dmabuf_block_init(&self->blk[_i]);			\
		self->sfd[_i] = -1;					\
	}								\
	self->buf = malloc(BUF_BYTES);					\
	ASSERT_NE(NULL, self->buf);					\
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "dac"));	\
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 0, 0, 0));	\
} while (0)

/* disabling cancels whatever is still queued or written */
#define DAC_TEARDOWN() do {						\
	int _i;								\
	if (self->d.devnum >= 0)					\
		inst_buffer_disable(&self->d);				\
	if (self->a.devnum >= 0)					\
		inst_buffer_disable(&self->a);				\
	if (self->bfd >= 0)						\
		close(self->bfd);					\
	if (self->devfd >= 0)						\
		close(self->devfd);					\
	if (self->cfd >= 0)						\
		close(self->cfd);					\
	for (_i = 0; _i < MAXB; _i++) {					\
		if (self->sfd[_i] >= 0)					\
			close(self->sfd[_i]);				\
		dmabuf_block_free(&self->blk[_i]);			\
	}								\
	free(self->buf);						\
	inst_destroy(&self->d);						\
	inst_destroy(&self->a);						\
} while (0)

FIXTURE(dac) {
	DAC_FIXTURE_DATA;
};

FIXTURE_SETUP(dac)
{
	DAC_SETUP();
}

FIXTURE_TEARDOWN(dac)
{
	DAC_TEARDOWN();
}

FIXTURE(dacv) {
	DAC_FIXTURE_DATA;
};

FIXTURE_VARIANT(dacv) {
	bool mainline;
};

FIXTURE_VARIANT_ADD(dacv, seed) {
	.mainline = false,
};

FIXTURE_VARIANT_ADD(dacv, mainline) {
	.mainline = true,
};

FIXTURE_SETUP(dacv)
{
	DAC_SETUP();
}

FIXTURE_TEARDOWN(dacv)
{
	DAC_TEARDOWN();
}

#define OPEN_DEV(flags) do {						\
	self->devfd = inst_open(&self->d, (flags));			\
	ASSERT_LE(0, self->devfd) {					\
		TH_LOG("open %s: %s", self->d.chrdev,			\
		       strerror(-self->devfd));				\
	}								\
} while (0)

#define OPEN_CHARDEV() do {						\
	self->cfd = inst_dmabuf_open(&self->d, O_RDWR);			\
	ASSERT_LE(0, self->cfd) {					\
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s",		\
		       self->d.devnum, strerror(-self->cfd));		\
	}								\
} while (0)

/* ALLOC @n mapped blocks of @size on the DAC's char device as blk[0..] */
#define ALLOC_BLOCKS(n, size) do {					\
	int _i;								\
	for (_i = 0; _i < (n); _i++) {					\
		int _r = dmabuf_block_alloc(&self->blk[_i], self->cfd,	\
					    (size), true);		\
		ASSERT_EQ(0, _r) {					\
			TH_LOG("ALLOC block %d of %zu bytes: %s", _i,	\
			       (size_t)(size), strerror(-_r));		\
		}							\
	}								\
} while (0)

#define FILL_OK(i, first_n, nscans) do {				\
	int _r = fill_block(&self->blk[i], (first_n), (nscans));	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("filling block %d: %s", (i), strerror(-_r));	\
	}								\
} while (0)

#define ENQUEUE_OK(i, flags, bytes) do {				\
	int _r = dmabuf_enqueue_cmd(self->cfd,				\
				    IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,	\
				    self->blk[i].fd, (flags), (bytes));	\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE block %d, flags %#x, %zu bytes: %s", (i), \
		       (unsigned int)(flags), (size_t)(bytes),		\
		       strerror(-_r));					\
	}								\
} while (0)

/* A sync_file of every fence of block @i (WRITE: readers' fences too) */
#define EXPORT_OK(i) do {						\
	if (self->sfd[i] >= 0)						\
		close(self->sfd[i]);					\
	self->sfd[i] = dmabuf_export_sync_file(self->blk[i].fd,		\
					       DMA_BUF_SYNC_WRITE);	\
	ASSERT_LE(0, self->sfd[i]) {					\
		TH_LOG("EXPORT_SYNC_FILE block %d: %s", (i),		\
		       strerror(-self->sfd[i]));			\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* 1. sysfs                                                            */
/* ------------------------------------------------------------------ */

/* Channels, scan elements, defaults, the seed char device, counters 0 */
TEST_F_TIMEOUT(dac, attributes, 60)
{
	static const char *const dirs[] = { "scan_elements", "buffer0" };
	struct dac_counters c;
	char attr[128], buf[128], node[64];
	unsigned int i;
	long long v;
	int ch;

	ASSERT_LE(0, inst_read(&self->d, "name", buf, sizeof(buf)));
	EXPECT_STREQ(self->d.name, buf);

	for (ch = 0; ch < DAC_NUM_CH; ch++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", ch);
		EXPECT_TRUE(inst_has(&self->d, attr)) {
			TH_LOG("%s missing", attr);
		}
		snprintf(attr, sizeof(attr), "in_voltage%d_raw", ch);
		EXPECT_FALSE(inst_has(&self->d, attr)) {
			TH_LOG("an output device has %s", attr);
		}
	}
	EXPECT_FALSE(inst_has(&self->d, "out_voltage4_raw"));
	ASSERT_LE(0, inst_read(&self->d, "out_voltage_scale", buf, sizeof(buf)));
	EXPECT_STREQ(DAC_SCALE_STR, buf);

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		for (ch = 0; ch < DAC_NUM_CH; ch++) {
			snprintf(attr, sizeof(attr), "%s/out_voltage%d_index",
				 dirs[i], ch);
			ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v)) {
				TH_LOG("reading %s", attr);
			}
			EXPECT_EQ(ch, v);
			snprintf(attr, sizeof(attr), "%s/out_voltage%d_type",
				 dirs[i], ch);
			ASSERT_LE(0, inst_read(&self->d, attr, buf,
					       sizeof(buf)));
			EXPECT_STREQ("le:s16/16>>0", buf);
			snprintf(attr, sizeof(attr), "%s/out_voltage%d_en",
				 dirs[i], ch);
			ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
			EXPECT_EQ(1, v);	/* the fixture enabled all */
		}
		snprintf(attr, sizeof(attr), "%s/in_timestamp_index", dirs[i]);
		ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
		EXPECT_EQ(DAC_TS_INDEX, v);
		snprintf(attr, sizeof(attr), "%s/in_timestamp_type", dirs[i]);
		ASSERT_LE(0, inst_read(&self->d, attr, buf, sizeof(buf)));
		EXPECT_STREQ("le:s64/64>>0", buf);
		snprintf(attr, sizeof(attr), "%s/out_voltage4_en", dirs[i]);
		EXPECT_FALSE(inst_has(&self->d, attr));
		snprintf(attr, sizeof(attr), "%s/in_voltage0_en", dirs[i]);
		EXPECT_FALSE(inst_has(&self->d, attr));
	}
	/* en is writable */
	ASSERT_EQ(0, inst_set_channels(&self->d, ADC_CH(1) | ADC_CH(3)));
	ASSERT_EQ(0, inst_read_ll(&self->d, "scan_elements/out_voltage1_en", &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, inst_read_ll(&self->d, "buffer0/out_voltage2_en", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_read_ll(&self->d, "buffer0/in_timestamp_en", &v));
	EXPECT_EQ(0, v);

	ASSERT_LE(0, inst_read(&self->d, "buffer0/direction", buf, sizeof(buf)));
	EXPECT_STREQ("out", buf);
	ASSERT_EQ(0, inst_read_ll(&self->d, "buffer0/length", &v));
	EXPECT_EQ(DAC_DEFAULT_LENGTH, v);
	ASSERT_EQ(0, inst_read_ll(&self->d, "buffer0/enable", &v));
	EXPECT_EQ(0, v);

	ASSERT_EQ(0, inst_read_ll(&self->d, "sampling_frequency", &v));
	EXPECT_EQ(DAC_DEFAULT_FREQ, v);
	ASSERT_LE(0, inst_read(&self->d, "sampling_frequency_available", buf,
			       sizeof(buf)));
	EXPECT_STREQ("[1 1 500000000]", buf);

	/* counters: 0 on a fresh device, read-only */
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(0, c.underruns);
	/* read-only sysfs files: opening one for writing is EACCES */
	EXPECT_EQ(-EACCES, inst_write(&self->d, "scans_consumed", "5"));
	EXPECT_EQ(-EACCES, inst_write(&self->d, "mismatches", "5"));
	EXPECT_EQ(-EACCES, inst_write(&self->d, "underruns", "5"));
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed + c.mismatches + c.underruns);

	/* the seed DMABUF char device, as for the ADC */
	inst_dmabuf_path(&self->d, node, sizeof(node));
	EXPECT_TRUE(path_exists(node)) {
		TH_LOG("%s missing", node);
	}
	snprintf(attr, sizeof(attr), "/sys/class/misc/iio:device%d-dmabuf0",
		 self->d.devnum);
	EXPECT_TRUE(path_exists(attr)) {
		TH_LOG("%s missing", attr);
	}
}

/* ADC and DAC instances share the IIO numbering: found by name */
TEST_F_TIMEOUT(dac, numbering_with_adc, 60)
{
	struct inst d2;
	char buf[64];
	int n;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "dna"));
	ASSERT_EQ(0, inst_create_unique(&d2, INST_DAC, "dnd"));
	DIAG("numbering: dac %d, adc %d, dac %d", self->d.devnum,
	     self->a.devnum, d2.devnum);
	EXPECT_NE(self->d.devnum, self->a.devnum);
	EXPECT_NE(d2.devnum, self->a.devnum);
	EXPECT_NE(d2.devnum, self->d.devnum);
	n = iio_find_device(d2.name);
	EXPECT_EQ(d2.devnum, n);
	EXPECT_TRUE(inst_has(&d2, "out_voltage0_raw"));
	EXPECT_TRUE(inst_has(&self->a, "in_voltage0_raw"));
	EXPECT_FALSE(inst_has(&self->a, "scans_consumed"));
	ASSERT_LE(0, inst_read(&d2, "name", buf, sizeof(buf)));
	EXPECT_STREQ(d2.name, buf);
	/* a DAC's name is not in the ADC directory, and vice versa */
	EXPECT_EQ(-ENOENT, inst_rmdir(INST_ADC, d2.name));
	EXPECT_EQ(-ENOENT, inst_rmdir(INST_DAC, self->a.name));
	EXPECT_EQ(0, inst_destroy(&d2));
	EXPECT_EQ(-ENOENT, iio_wait_device(d2.name, false, 2000));
}

/* out_voltageN_raw: direct mode; range, EINVAL, EBUSY while enabled */
TEST_F_TIMEOUT(dac, raw_direct_mode, 60)
{
	static const struct { const char *in; long long out; } ok[] = {
		{ "0", 0 }, { "1234", 1234 }, { "-32768", -32768 },
		{ "32767", 32767 }, { "-5\n", -5 }, { "100", 100 },
	};
	static const char *const bad[] = {
		"32768", "-32769", "65535", "100000", "abc", "1.5", "\n", "-",
	};
	char attr[64];
	long long v;
	unsigned int i;
	int c, ret;

	for (c = 0; c < DAC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", c);
		for (i = 0; i < ARRAY_SIZE(ok); i++) {
			EXPECT_EQ(0, inst_write(&self->d, attr, ok[i].in)) {
				TH_LOG("writing '%s' to %s", ok[i].in, attr);
			}
			ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
			EXPECT_EQ(ok[i].out, v);
		}
		/* last written: 100 + c, so channels differ */
		ASSERT_EQ(0, inst_write_ll(&self->d, attr, 100 + c));
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			EXPECT_EQ(-EINVAL, inst_write(&self->d, attr, bad[i])) {
				TH_LOG("writing '%s' to %s", bad[i], attr);
			}
		}
	}
	for (c = 0; c < DAC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", c);
		ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
		EXPECT_EQ(100 + c, v) {
			TH_LOG("%s changed by a rejected write or another channel",
			       attr);
		}
	}

	/* buffer enabled (fileio, nothing written): EBUSY */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ret = inst_write(&self->d, "out_voltage0_raw", "7");
	EXPECT_EQ(-EBUSY, ret) {
		TH_LOG("raw write while enabled: %s",
		       ret ? strerror(-ret) : "accepted");
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	EXPECT_EQ(0, inst_write(&self->d, "out_voltage0_raw", "7"));
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage0_raw", &v));
	EXPECT_EQ(7, v);
}

/* sampling_frequency: range, EINVAL, EBUSY while enabled */
TEST_F_TIMEOUT(dac, sampling_frequency, 60)
{
	static const char *const ok[] = { "1", "1000000", "12345", "20000\n" };
	static const char *const bad[] = {
		"0", "-1", "500000001", "abc", "10k", "1.5", "\n",
	};
	long long v;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		EXPECT_EQ(0, inst_write(&self->d, "sampling_frequency", ok[i])) {
			TH_LOG("writing '%s'", ok[i]);
		}
	}
	ASSERT_EQ(0, inst_read_ll(&self->d, "sampling_frequency", &v));
	EXPECT_EQ(20000, v);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, inst_write(&self->d, "sampling_frequency",
					      bad[i])) {
			TH_LOG("writing '%s'", bad[i]);
		}
	}
	ASSERT_EQ(0, inst_read_ll(&self->d, "sampling_frequency", &v));
	EXPECT_EQ(20000, v);

	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	EXPECT_EQ(-EBUSY, inst_write(&self->d, "sampling_frequency", "1000"));
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	ASSERT_EQ(0, inst_read_ll(&self->d, "sampling_frequency", &v));
	EXPECT_EQ(20000, v);
	EXPECT_EQ(0, inst_write(&self->d, "sampling_frequency", "1000"));
}

/*
 * out_voltage_scale is fixed (dmabuf_dac.rst: "as for the ADC", whose
 * scale refuses writes with EINVAL): any write, its own value included,
 * is EINVAL, disabled or enabled, and the value stays.
 */
TEST_F_TIMEOUT(dac, scale_read_only, 60)
{
	static const char *const vals[] = {
		DAC_SCALE_STR, "1", "0", "-1", "0.5", "abc", "\n",
	};
	char buf[64];
	unsigned int i;
	int pass, ret;

	for (pass = 0; pass < 2; pass++) {
		if (pass == 1)
			ASSERT_EQ(0, inst_buffer_enable(&self->d));
		for (i = 0; i < ARRAY_SIZE(vals); i++) {
			ret = inst_write(&self->d, "out_voltage_scale", vals[i]);
			EXPECT_EQ(-EINVAL, ret) {
				TH_LOG("writing '%s' to out_voltage_scale (%s): %s",
				       vals[i], pass ? "enabled" : "disabled",
				       ret ? strerror(-ret) : "accepted");
			}
		}
		ASSERT_LE(0, inst_read(&self->d, "out_voltage_scale", buf,
				       sizeof(buf)));
		EXPECT_STREQ(DAC_SCALE_STR, buf);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
}

/* ------------------------------------------------------------------ */
/* 2. fileio: write() on /dev/iio:deviceN                              */
/* ------------------------------------------------------------------ */

#define PRE_SCANS	20000
#define PRE_FREQ	10000
#define PRE_LENGTH	32768

/*
 * 20000 ramp scans written before enabling (they fit in a buffer of 32768
 * scans: the write does not block), then played at 10 kHz: exactly 20000
 * consumed, ~2 s, no mismatch; the counters are kept after disable and
 * out_voltageN_raw shows the last scan played.
 */
TEST_F_TIMEOUT(dac, fileio_prewritten, 120)
{
	const size_t bytes = (size_t)PRE_SCANS * SCAN;
	struct scan_layout l;
	struct dac_counters c, c2;
	char err[256];
	double t0, dt;
	ssize_t n;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, PRE_FREQ, PRE_LENGTH,
				    0));
	ramp_fill(&l, self->buf, 0, PRE_SCANS);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);

	/* it all fits: even a non-blocking write takes everything */
	n = write_once(self->devfd, self->buf, bytes);
	ASSERT_EQ((ssize_t)bytes, n) {
		TH_LOG("write of %zu bytes before enable: %zd (%s)", bytes, n,
		       n < 0 ? strerror((int)-n) : "short");
	}
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed);

	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(PRE_SCANS, 30000, &c);
	dt = now_s() - t0;
	DIAG("fileio_prewritten: %lld scans consumed in %.3f s (incl. 0.2 s "
	     "settling), mismatches %lld, underruns %lld", c.consumed, dt,
	     c.mismatches, c.underruns);
	EXPECT_EQ(0, c.mismatches);
	/* not faster than the clock: 20000 scans at 10 kHz take 2 s */
	EXPECT_LE((double)PRE_SCANS / PRE_FREQ * 0.9, dt);

	/* the data ran out: the clock ticks on as underruns */
	EXPECT_EQ(0, dac_wait_for(&self->d, WAIT_UNDERRUN, 10000, &c2)) {
		TH_LOG("no underrun 10 s after the data ran out");
	}
	EXPECT_EQ(PRE_SCANS, c2.consumed);
	EXPECT_EQ(0, c2.mismatches);
	EXPECT_EQ(0, check_raw_is_scan(&self->d, PRE_SCANS - 1, err,
				       sizeof(err))) {
		TH_LOG("%s", err);
	}

	/* kept after disable */
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	COUNTERS_OK(&c);
	sleep_ms(200);
	COUNTERS_OK(&c2);
	EXPECT_EQ(PRE_SCANS, c2.consumed);
	EXPECT_EQ(0, c2.mismatches);
	EXPECT_EQ(c.underruns, c2.underruns) {
		TH_LOG("underruns still counting after disable");
	}
}

#define STR_SCANS	100000
#define STR_FREQ	20000
#define STR_CHUNK	1000

/*
 * Enabled first (nothing to play: underruns), then 100000 scans written
 * in chunks of 1000 with blocking writes: the writes wait for room (the
 * default buffer holds 4096 scans), all 100000 are played, no mismatch.
 */
TEST_F_TIMEOUT(dac, fileio_streaming, 180)
{
	const size_t chunk = (size_t)STR_CHUNK * SCAN;
	struct scan_layout l;
	struct dac_counters c;
	double t0, tw;
	uint64_t n;
	ssize_t ret;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, STR_FREQ, 0, 0));
	OPEN_DEV(O_WRONLY);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	/* nothing written yet: the clock ticks as underruns */
	ASSERT_EQ(0, dac_wait_for(&self->d, WAIT_UNDERRUN, 10000, &c)) {
		TH_LOG("no underrun 10 s after enabling with nothing written");
	}
	EXPECT_EQ(0, c.consumed);

	t0 = now_s();
	for (n = 0; n < STR_SCANS; n += STR_CHUNK) {
		ramp_fill(&l, self->buf, n, STR_CHUNK);
		ret = write_all_timeout(self->devfd, self->buf, chunk, 10000);
		ASSERT_EQ((ssize_t)chunk, ret) {
			TH_LOG("blocking write of scans %" PRIu64 "..: %zd (%s)",
			       n, ret, ret < 0 ? strerror((int)-ret) : "short");
		}
	}
	tw = now_s() - t0;
	CONSUMED_EXACTLY(STR_SCANS, 30000, &c);
	DIAG("fileio_streaming: writes took %.3f s; %lld consumed after %.3f s, "
	     "mismatches %lld, underruns %lld", tw, c.consumed, now_s() - t0,
	     c.mismatches, c.underruns);
	EXPECT_EQ(0, c.mismatches);
	/* the writes had to wait for the DAC: most of the 5 s */
	EXPECT_LE((double)(STR_SCANS - 2 * DAC_DEFAULT_LENGTH) / STR_FREQ * 0.8,
		  tw) {
		TH_LOG("100000 scans written in %.3f s: the writes did not wait",
		       tw);
	}
}

/* O_NONBLOCK: EAGAIN when full; POLLOUT once there is room again */
TEST_F_TIMEOUT(dac, fileio_nonblock_full, 60)
{
	const size_t chunk = 64 * SCAN;
	struct scan_layout l;
	struct dac_counters c;
	size_t total = 0;
	ssize_t n = 0;
	int i, e = 0;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 1000, 256, 0));
	ramp_fill(&l, self->buf, 0, 100 * 64);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	for (i = 0; i < 100; i++) {
		n = write(self->devfd, self->buf + total, chunk);
		if (n < 0) {
			e = errno;
			break;
		}
		total += (size_t)n;
	}
	DIAG("fileio_nonblock_full: %zu bytes (%zu scans) taken, then %s",
	     total, total / SCAN, n < 0 ? strerror(e) : "no error");
	ASSERT_EQ(-1, n) {
		TH_LOG("100 non-blocking writes of 64 scans into 256 never failed");
	}
	EXPECT_EQ(EAGAIN, e);
	EXPECT_EQ(0U, total % SCAN);
	EXPECT_LT(0U, total);
	EXPECT_GE(256U * SCAN, total);
	EXPECT_EQ(0, poll_events(self->devfd, POLLOUT, 0)) {
		TH_LOG("POLLOUT on a full buffer");
	}

	/* playing frees room */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	EXPECT_EQ(1, poll_events(self->devfd, POLLOUT, 10000));
	CONSUMED_EXACTLY((long long)(total / SCAN), 20000, &c);
	EXPECT_EQ(0, c.mismatches);
}

/* Disabling drops what was not played; a new enable starts from zero */
TEST_F_TIMEOUT(dac, fileio_disable_drops, 60)
{
	const size_t bytes = (size_t)PRE_SCANS * SCAN;
	struct scan_layout l;
	struct dac_counters c, c2;
	ssize_t n;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 1000, PRE_LENGTH, 0));
	ramp_fill(&l, self->buf, 0, PRE_SCANS);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	n = write_once(self->devfd, self->buf, bytes);
	ASSERT_EQ((ssize_t)bytes, n);

	/* 20000 scans at 1 kHz take 20 s: disable once playing started */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, dac_wait_for(&self->d, WAIT_CONSUMED_SOME, 10000, &c)) {
		TH_LOG("nothing played 10 s after enable");
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	COUNTERS_OK(&c);
	DIAG("fileio_disable_drops: %lld of %d consumed before the disable",
	     c.consumed, PRE_SCANS);
	EXPECT_LT(0, c.consumed);
	EXPECT_GT(PRE_SCANS, c.consumed);
	EXPECT_EQ(0, c.mismatches);
	sleep_ms(300);
	COUNTERS_OK(&c2);
	EXPECT_EQ(c.consumed, c2.consumed);

	/*
	 * The rest was dropped: the clock finds nothing to play (underruns)
	 * and the counters start from 0.
	 */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, dac_wait_for(&self->d, WAIT_UNDERRUN, 10000, &c)) {
		TH_LOG("no underrun 10 s after enabling");
	}
	sleep_ms(300);
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed) {
		TH_LOG("data written before the last disable was played");
	}
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/* and new data plays from where it starts */
	n = write_once(self->devfd, self->buf, 500 * SCAN);
	ASSERT_EQ((ssize_t)(500 * SCAN), n);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(500, 10000, &c);
	EXPECT_EQ(0, c.mismatches);
}

/* ------------------------------------------------------------------ */
/* 3. fileio: short writes and exclusivity                             */
/* ------------------------------------------------------------------ */

/*
 * Fewer bytes than one scan: EINVAL, and nothing of it is queued: after
 * the refused writes and one whole scan, exactly one scan is played.
 * Channel 1 alone makes 2-byte scans (dmabuf_adc.rst): a 1-byte write is
 * EINVAL, 32 bytes are 16 scans played.
 */
TEST_F_TIMEOUT(dac, fileio_short_write, 60)
{
	struct scan_layout l;
	struct dac_counters c;
	long long v;
	ssize_t n;
	int e;

	layout_init(&l, ADC_ALL_TS);
	ramp_fill(&l, self->buf, 0, 16);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	n = write(self->devfd, self->buf, 8);
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EINVAL, e) {
		TH_LOG("write of 8 bytes (16-byte scans): %s",
		       n < 0 ? strerror(e) : "accepted");
	}
	n = write(self->devfd, self->buf, SCAN - 1);
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EINVAL, e);
	EXPECT_EQ(SCAN, write(self->devfd, self->buf, SCAN));
	close(self->devfd);
	self->devfd = -1;
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(1, 10000, &c);
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/* channel 1 alone: 2-byte scans */
	ASSERT_EQ(0, inst_configure(&self->d, ADC_CH(1), 1000, 0, 0));
	layout_init(&l, ADC_CH(1));
	ramp_fill(&l, self->buf, 0, 16);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	n = write(self->devfd, self->buf, 1);
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EINVAL, e) {
		TH_LOG("write of 1 byte (2-byte scans): %s",
		       n < 0 ? strerror(e) : "accepted");
	}
	EXPECT_EQ(32, write(self->devfd, self->buf, 32));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(16, 10000, &c);
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage1_raw", &v));
	EXPECT_EQ(ramp_value(15, 1), v);
}

/*
 * write() while the DAC's DMABUF char device is open, or while a DMABUF
 * is attached to its buffer fd: EBUSY. Opening the char device while the
 * buffer is enabled for fileio: EBUSY (as the ADC's during read()).
 */
TEST_F_TIMEOUT(dac, fileio_exclusive, 60)
{
	struct dmabuf_block *b = &self->blk[0];
	struct scan_layout l;
	double end;
	ssize_t n;
	int e, fd, ret;

	layout_init(&l, ADC_ALL_TS);
	ramp_fill(&l, self->buf, 0, 64);
	OPEN_DEV(O_RDWR | O_NONBLOCK);

	/* char device open: EBUSY */
	OPEN_CHARDEV();
	n = write(self->devfd, self->buf, SCAN);
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("write with the DMABUF char device open: %s",
		       n < 0 ? strerror(e) : "accepted");
	}
	/* a block allocated there outlives the char device */
	ASSERT_EQ(0, dmabuf_block_alloc(b, self->cfd, 64 * SCAN, true));
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = -1;
	EXPECT_EQ(SCAN, write(self->devfd, self->buf, SCAN)) {
		TH_LOG("write after closing the char device: %s",
		       strerror(errno));
	}

	/* fileio enabled: the char device cannot be opened */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	fd = inst_dmabuf_open(&self->d, O_RDWR);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EBUSY, fd) {
		TH_LOG("open of the char device during fileio: %s",
		       fd >= 0 ? "succeeded" : strerror(-fd));
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/* a DMABUF attached to the buffer fd: write() on it is EBUSY */
	self->bfd = iio_buffer_get_fd(self->devfd, 0);
	ASSERT_LE(0, self->bfd) {
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s", strerror(-self->bfd));
	}
	ASSERT_EQ(0, fd_set_nonblock(self->bfd, true));
	ret = iio_buffer_attach(self->bfd, b->fd);
	ASSERT_EQ(0, ret) {
		TH_LOG("ATTACH: %s", strerror(-ret));
	}
	n = write(self->bfd, self->buf, SCAN);
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("write with a DMABUF attached: %s",
		       n < 0 ? strerror(e) : "accepted");
	}
	ASSERT_EQ(0, iio_buffer_detach(self->bfd, b->fd));
	/* detached: fileio again (the core may release it a bit later) */
	end = now_s() + 2.0;
	do {
		n = write(self->bfd, self->buf, SCAN);
		e = errno;
		if (n == SCAN || now_s() > end)
			break;
		sleep_ms(20);
	} while (1);
	EXPECT_EQ(SCAN, n) {
		TH_LOG("write after DETACH: %s", n < 0 ? strerror(e) : "short");
	}
}

/* ------------------------------------------------------------------ */
/* 4. The seed DMABUF interface on the DAC                             */
/* ------------------------------------------------------------------ */

#define SD_SCANS	4096
#define SD_FREQ		20000

/*
 * 4 blocks holding one continuous ramp (block k: scans k*S..(k+1)*S-1),
 * all queued before enabling: each fence signals (status 1) in order, all
 * 4*S scans are played without mismatch; unknown flags: EINVAL.
 */
TEST_F_TIMEOUT(dac, seed_blocks, 120)
{
	static const uint32_t bad_flags[] = { 0x100, 2, 0x80000000u,
					      0x100 | IIO_BUFFER_DMABUF_CYCLIC };
	const size_t bytes = (size_t)SD_SCANS * SCAN;
	struct dac_counters c;
	char err[256];
	double t0;
	unsigned int f;
	int i, st = 0, ret;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, SD_FREQ, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(4, bytes);
	for (i = 0; i < 4; i++)
		FILL_OK(i, (uint64_t)i * SD_SCANS, SD_SCANS);

	for (f = 0; f < ARRAY_SIZE(bad_flags); f++) {
		ret = dmabuf_enqueue_cmd(self->cfd,
					 IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					 self->blk[0].fd, bad_flags[f], bytes);
		EXPECT_EQ(-EINVAL, ret) {
			TH_LOG("ENQUEUE flags %#x: %s", bad_flags[f],
			       ret ? strerror(-ret) : "accepted");
		}
	}
	EXPECT_EQ(1, poll_events(self->blk[0].fd, POLLOUT, 0)) {
		TH_LOG("a refused ENQUEUE left a fence");
	}

	for (i = 0; i < 4; i++) {
		/* block 1 through the seed's ioctl number */
		ret = dmabuf_enqueue_cmd(self->cfd, i == 1 ?
					 IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL :
					 IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					 self->blk[i].fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE block %d: %s", i, strerror(-ret));
		}
		EXPORT_OK(i);
	}
	/* queued, buffer disabled: pending; queued again: EPERM */
	EXPECT_EQ(-EPERM, dmabuf_enqueue(self->cfd, self->blk[0].fd, bytes));
	EXPECT_EQ(0, poll_events(self->blk[0].fd, POLLOUT, 100));
	ASSERT_EQ(0, sync_file_status(self->sfd[3], &st));
	EXPECT_EQ(0, st);
	COUNTERS_OK(&c);
	EXPECT_EQ(0, c.consumed);

	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 10000)) {
			TH_LOG("block %d not played after 10 s", i);
		}
		DIAG("seed_blocks: block %d done after %.3f s", i,
		     now_s() - t0);
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 1000, &st));
		EXPECT_EQ(1, st) {
			TH_LOG("block %d fence: %s", i, status_str(st));
		}
		/* CPU access for writing waits for the READ fence: done */
		ASSERT_EQ(0, dmabuf_sync_start_rw(self->blk[i].fd));
		ASSERT_EQ(0, dmabuf_sync_end_rw(self->blk[i].fd));
	}
	EXPECT_LE((double)4 * SD_SCANS / SD_FREQ * 0.9, now_s() - t0);
	CONSUMED_EXACTLY(4 * SD_SCANS, 5000, &c);
	DIAG("seed_blocks: consumed %lld, mismatches %lld, underruns %lld",
	     c.consumed, c.mismatches, c.underruns);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(0, check_raw_is_scan(&self->d, 4 * SD_SCANS - 1, err,
				       sizeof(err))) {
		TH_LOG("%s", err);
	}
}

#define RING_NB		4
#define RING_SCANS	2048
#define RING_TOTAL	40	/* 81920 scans at 20 kHz: ~4 s */

/*
 * The DAC's streaming workflow: queue 4 filled blocks, enable, then wait
 * for the oldest (SYNC_START with WRITE waits for the DAC's READ fence),
 * fill it with the next part of the ramp, SYNC_END, queue it again.
 */
TEST_F_TIMEOUT(dac, seed_ring, 180)
{
	const size_t bytes = (size_t)RING_SCANS * SCAN;
	struct dac_counters c;
	double t0, tw = 0, t;
	int i, k, ret;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, SD_FREQ, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(RING_NB, bytes);
	for (i = 0; i < RING_NB; i++) {
		FILL_OK(i, (uint64_t)i * RING_SCANS, RING_SCANS);
		ENQUEUE_OK(i, 0, bytes);
	}
	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	for (k = RING_NB; k < RING_TOTAL; k++) {
		i = k % RING_NB;
		t = now_s();
		ret = poll_events(self->blk[i].fd, POLLOUT, 10000);
		tw += now_s() - t;
		ASSERT_EQ(1, ret) {
			TH_LOG("block #%d not played after 10 s", k - RING_NB);
		}
		FILL_OK(i, (uint64_t)k * RING_SCANS, RING_SCANS);
		ENQUEUE_OK(i, 0, bytes);
	}
	for (k = RING_TOTAL - RING_NB; k < RING_TOTAL; k++) {
		ASSERT_EQ(1, poll_events(self->blk[k % RING_NB].fd, POLLOUT,
					 10000));
	}
	CONSUMED_EXACTLY(RING_TOTAL * RING_SCANS, 5000, &c);
	DIAG("seed_ring: %lld scans in %.3f s (%.3f s waiting), mismatches "
	     "%lld, underruns %lld", c.consumed, now_s() - t0, tw,
	     c.mismatches, c.underruns);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_LE((double)RING_TOTAL * RING_SCANS / SD_FREQ * 0.9,
		  now_s() - t0);
}

/* Disable, and closing the char device, cancel queued blocks */
TEST_F_TIMEOUT(dac, seed_cancel, 60)
{
	const size_t bytes = 1000 * SCAN;
	struct dac_counters c;
	int i, st = 0;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 100, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(4, bytes);
	for (i = 0; i < 4; i++)
		FILL_OK(i, (uint64_t)i * 1000, 1000);

	/* a: disable, with block 0 playing (10 s at 100 Hz), 1 queued */
	for (i = 0; i < 2; i++) {
		ENQUEUE_OK(i, 0, bytes);
		EXPORT_OK(i);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	sleep_ms(300);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	for (i = 0; i < 2; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after disable", i);
		}
		EXPECT_EQ(-ECANCELED, st) {
			TH_LOG("block %d: fence: %s", i, status_str(st));
		}
		EXPECT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 1000));
	}
	COUNTERS_OK(&c);
	DIAG("seed_cancel: %lld scans played before disable", c.consumed);
	EXPECT_GT(1000, c.consumed);
	EXPECT_EQ(0, c.mismatches);

	/* b: close the char device with blocks 2 and 3 queued */
	for (i = 2; i < 4; i++) {
		ENQUEUE_OK(i, 0, bytes);
		EXPORT_OK(i);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	sleep_ms(200);
	ASSERT_EQ(0, close(self->cfd));
	self->cfd = -1;
	for (i = 2; i < 4; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after close", i);
		}
		EXPECT_EQ(-ECANCELED, st) {
			TH_LOG("block %d: fence: %s", i, status_str(st));
		}
		EXPECT_EQ(0, dmabuf_sync_start_rw(self->blk[i].fd));
		EXPECT_EQ(0, dmabuf_sync_end_rw(self->blk[i].fd));
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	/* the char device opens again */
	OPEN_CHARDEV();
}

/* ------------------------------------------------------------------ */
/* 5. IIO_BUFFER_DMABUF_CYCLIC                                         */
/* ------------------------------------------------------------------ */

#define CY_SCANS	2000
#define CY_FREQ		10000

/*
 * ENQUEUE (seed or mainline) on the DAC; the block must be attached for
 * the mainline path.
 */
static int dac_enqueue(int cfd, int bfd, bool mainline, int fd,
		       uint32_t flags, size_t bytes)
{
	if (mainline)
		return iio_buffer_enqueue(bfd, fd, flags, bytes);
	return dmabuf_enqueue_cmd(cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, fd,
				  flags, bytes);
}

#define DAC_ENQUEUE(ml, i, flags, bytes)				\
	dac_enqueue(self->cfd, self->bfd, (ml), self->blk[i].fd, (flags), \
		    (bytes))

/*
 * A cyclic block of S scans repeats: after 1.5 s far more than S scans
 * were played, without mismatch (each pass resyncs), and its fence is
 * still pending. A second cyclic block: EBUSY. A plain block (scans
 * S..2S-1) ends the repetition after the current pass, then plays and
 * completes; the cyclic block's fence stays pending (as mainline: a
 * cyclic transfer runs until abort) until the disable, -ECANCELED.
 */
TEST_F_TIMEOUT(dacv, cyclic, 90)
{
	const size_t bytes = (size_t)CY_SCANS * SCAN;
	const bool ml = variant->mainline;
	struct dac_counters c, c2;
	double t0, dt, t_b2 = 0, end;
	int i, st = 0, ret;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, CY_FREQ, 0, 0));
	/* the blocks come from the DAC's ALLOC in both variants */
	OPEN_CHARDEV();
	ALLOC_BLOCKS(2, bytes);
	FILL_OK(0, 0, CY_SCANS);
	FILL_OK(1, CY_SCANS, CY_SCANS);
	if (ml) {
		/* mainline only: the char device is not needed any more */
		close(self->cfd);
		self->cfd = -1;
		OPEN_DEV(O_RDWR);
		self->bfd = iio_buffer_get_fd(self->devfd, 0);
		ASSERT_LE(0, self->bfd) {
			TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s",
			       strerror(-self->bfd));
		}
		for (i = 0; i < 2; i++) {
			ret = iio_buffer_attach(self->bfd, self->blk[i].fd);
			ASSERT_EQ(0, ret) {
				TH_LOG("ATTACH block %d: %s", i, strerror(-ret));
			}
		}
	}

	ret = DAC_ENQUEUE(ml, 0, IIO_BUFFER_DMABUF_CYCLIC, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE CYCLIC (%s): %s", ml ? "mainline" : "seed",
		       strerror(-ret));
	}
	EXPORT_OK(0);
	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	/* three passes and more (the block alone lasts 0.2 s) */
	ret = dac_wait_consumed(&self->d, 3 * CY_SCANS + 1, 20000, &c);
	dt = now_s() - t0;
	DIAG("cyclic (%s): %lld scans in %.3f s from a block of %d, "
	     "mismatches %lld, underruns %lld", ml ? "mainline" : "seed",
	     c.consumed, dt, CY_SCANS, c.mismatches, c.underruns);
	ASSERT_EQ(0, ret) {
		TH_LOG("the cyclic block did not repeat: %lld scans in %.3f s",
		       c.consumed, dt);
	}
	/* not faster than the clock */
	EXPECT_GE(dt * CY_FREQ * 1.1 + CY_SCANS, c.consumed);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(0, c.underruns);
	EXPECT_EQ(0, poll_events(self->blk[0].fd, POLLOUT, 0)) {
		TH_LOG("the cyclic block's fence signalled while it repeats");
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st);

	/* one cyclic block at a time */
	ret = DAC_ENQUEUE(ml, 1, IIO_BUFFER_DMABUF_CYCLIC, bytes);
	EXPECT_EQ(-EBUSY, ret) {
		TH_LOG("a second cyclic block: %s",
		       ret ? strerror(-ret) : "accepted");
	}

	/* a plain block ends the repetition */
	ret = DAC_ENQUEUE(ml, 1, 0, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE after the cyclic block: %s", strerror(-ret));
	}
	EXPORT_OK(1);
	end = now_s() + 10.0;
	while (!t_b2 && now_s() < end) {
		if (poll_events(self->sfd[1], POLLIN, 0) == 1)
			t_b2 = now_s();
		sleep_ms(2);
	}
	ASSERT_NE(0, t_b2) {
		TH_LOG("the block after the cyclic one never completed");
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[1], &st));
	EXPECT_EQ(1, st) {
		TH_LOG("second block fence: %s", status_str(st));
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st) {
		TH_LOG("cyclic block fence after the next block: %s",
		       status_str(st));
	}
	/*
	 * The counters are updated right after the fence signals: wait
	 * until they show whole passes and the whole second block.
	 */
	end = now_s() + 10.0;
	do {
		sleep_ms(100);
		COUNTERS_OK(&c2);
	} while (c2.consumed % CY_SCANS && now_s() < end);
	DIAG("cyclic (%s): in all %lld scans (%lld passes + 1 block), "
	     "mismatches %lld, underruns %lld", ml ? "mainline" : "seed",
	     c2.consumed, c2.consumed / CY_SCANS - 1, c2.mismatches,
	     c2.underruns);
	EXPECT_EQ(0, c2.mismatches);
	/* whole passes, then the whole second block */
	EXPECT_EQ(0, c2.consumed % CY_SCANS);
	EXPECT_LE(c.consumed + CY_SCANS, c2.consumed);
	sleep_ms(200);
	COUNTERS_OK(&c);
	EXPECT_EQ(c2.consumed, c.consumed) {
		TH_LOG("still playing after the last block");
	}

	/* the disable ends the cyclic block */
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	ret = sync_file_wait(self->sfd[0], 5000, &st);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(-ECANCELED, st) {
		TH_LOG("cyclic block fence after disable: %s", status_str(st));
	}
	if (ml) {
		for (i = 0; i < 2; i++)
			EXPECT_EQ(0, iio_buffer_detach(self->bfd,
						       self->blk[i].fd));
	}
}

/* A cyclic block alone is ended by disable: -ECANCELED */
TEST_F_TIMEOUT(dacv, cyclic_disable, 60)
{
	const size_t bytes = 500 * SCAN;
	const bool ml = variant->mainline;
	struct dac_counters c;
	int st = 0, ret;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, CY_FREQ, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(1, bytes);
	FILL_OK(0, 0, 500);
	if (ml) {
		close(self->cfd);
		self->cfd = -1;
		OPEN_DEV(O_RDWR);
		self->bfd = iio_buffer_get_fd(self->devfd, 0);
		ASSERT_LE(0, self->bfd);
		ASSERT_EQ(0, iio_buffer_attach(self->bfd, self->blk[0].fd));
	}
	ret = DAC_ENQUEUE(ml, 0, IIO_BUFFER_DMABUF_CYCLIC, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE CYCLIC: %s", strerror(-ret));
	}
	EXPORT_OK(0);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	/* into its third pass: it repeats, and only the disable ends it */
	ret = dac_wait_consumed(&self->d, 2 * 500 + 1, 20000, &c);
	ASSERT_EQ(0, ret) {
		TH_LOG("%lld scans played 20 s after enable", c.consumed);
	}
	ASSERT_EQ(0, sync_file_status(self->sfd[0], &st));
	EXPECT_EQ(0, st) {
		TH_LOG("the cyclic block's fence: %s", status_str(st));
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	ASSERT_EQ(0, sync_file_wait(self->sfd[0], 5000, &st)) {
		TH_LOG("cyclic block pending 5 s after disable");
	}
	EXPECT_EQ(-ECANCELED, st) {
		TH_LOG("fence: %s", status_str(st));
	}
	COUNTERS_OK(&c);
	DIAG("cyclic_disable (%s): %lld scans played", ml ? "mainline" : "seed",
	     c.consumed);
	EXPECT_LE(2 * 500 + 1, c.consumed);
	EXPECT_EQ(0, c.mismatches);
}

/* CYCLIC on an input buffer (the ADC): EINVAL, seed and mainline */
TEST_F_TIMEOUT(dacv, cyclic_on_adc, 60)
{
	struct dmabuf_block *b = &self->blk[0];
	int cfd, devfd, bfd, ret;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "cya"));
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	self->cfd = cfd;	/* closed by the teardown */
	ASSERT_EQ(0, dmabuf_block_alloc(b, cfd, 4096, true));
	if (variant->mainline) {
		devfd = inst_open(&self->a, O_RDWR);
		ASSERT_LE(0, devfd);
		self->devfd = devfd;
		bfd = iio_buffer_get_fd(devfd, 0);
		ASSERT_LE(0, bfd);
		self->bfd = bfd;
		ASSERT_EQ(0, iio_buffer_attach(bfd, b->fd));
		ret = iio_buffer_enqueue(bfd, b->fd, IIO_BUFFER_DMABUF_CYCLIC,
					 4096);
	} else {
		ret = dmabuf_enqueue_cmd(cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
					 b->fd, IIO_BUFFER_DMABUF_CYCLIC, 4096);
	}
	EXPECT_EQ(-EINVAL, ret) {
		TH_LOG("CYCLIC on the ADC (%s): %s",
		       variant->mainline ? "mainline" : "seed",
		       ret ? strerror(-ret) : "accepted");
	}
	EXPECT_EQ(1, poll_events(b->fd, POLLOUT, 1000));
}

/* ------------------------------------------------------------------ */
/* 6. The mainline API on the DAC                                      */
/* ------------------------------------------------------------------ */

#define ML_NB		4
#define ML_SCANS	4096
#define ML_TOTAL	20	/* 81920 scans at 20 kHz: ~4 s */

/*
 * Ramp blocks from the system DMA heap (mainline variant; a missing heap
 * fails) or the DAC's ALLOC (seed variant: only the allocator):
 * ATTACH, ENQUEUE all, enable, then refill each as it completes.
 */
TEST_F_TIMEOUT(dacv, mainline_stream, 180)
{
	const size_t bytes = (size_t)ML_SCANS * SCAN;
	const bool heap = variant->mainline;
	struct dac_counters c;
	char err[256];
	double t0;
	int i, k, ret;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, SD_FREQ, 0, 0));
	if (heap) {
		for (i = 0; i < ML_NB; i++) {
			struct dmabuf_block *b = &self->blk[i];
			void *p;

			/* no heap is a failure: the test kernel has one */
			ret = dma_heap_alloc(DMA_HEAP_SYSTEM, bytes);
			ASSERT_LE(0, ret) {
				TH_LOG("DMA_HEAP_IOCTL_ALLOC on %s: %s",
				       DMA_HEAP_SYSTEM, strerror(-ret));
			}
			b->fd = ret;
			b->size = bytes;
			p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				 MAP_SHARED, b->fd, 0);
			ASSERT_NE(MAP_FAILED, p);
			b->map = p;
		}
	} else {
		OPEN_CHARDEV();
		ALLOC_BLOCKS(ML_NB, bytes);
		close(self->cfd);
		self->cfd = -1;
	}
	OPEN_DEV(O_RDWR);
	self->bfd = iio_buffer_get_fd(self->devfd, 0);
	ASSERT_LE(0, self->bfd) {
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s", strerror(-self->bfd));
	}
	for (i = 0; i < ML_NB; i++) {
		ret = iio_buffer_attach(self->bfd, self->blk[i].fd);
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH block %d: %s", i, strerror(-ret));
		}
		FILL_OK(i, (uint64_t)i * ML_SCANS, ML_SCANS);
		ret = iio_buffer_enqueue(self->bfd, self->blk[i].fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE block %d: %s", i, strerror(-ret));
		}
	}
	/* unknown flags: EINVAL on the output buffer too */
	EXPECT_EQ(-EINVAL, iio_buffer_enqueue(self->bfd, self->blk[0].fd,
					      0x100, bytes));

	t0 = now_s();
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	for (k = ML_NB; k < ML_TOTAL; k++) {
		i = k % ML_NB;
		ASSERT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 10000)) {
			TH_LOG("block #%d not played after 10 s", k - ML_NB);
		}
		FILL_OK(i, (uint64_t)k * ML_SCANS, ML_SCANS);
		ret = iio_buffer_enqueue(self->bfd, self->blk[i].fd, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("re-ENQUEUE block #%d: %s", k, strerror(-ret));
		}
	}
	for (k = ML_TOTAL - ML_NB; k < ML_TOTAL; k++) {
		ASSERT_EQ(1, poll_events(self->blk[k % ML_NB].fd, POLLOUT,
					 10000));
	}
	CONSUMED_EXACTLY(ML_TOTAL * ML_SCANS, 5000, &c);
	DIAG("mainline_stream (%s): %lld scans in %.3f s, mismatches %lld, "
	     "underruns %lld", heap ? "dma_heap" : "own ALLOC", c.consumed,
	     now_s() - t0, c.mismatches, c.underruns);
	EXPECT_EQ(0, c.mismatches);
	EXPECT_EQ(0, check_raw_is_scan(&self->d, ML_TOTAL * ML_SCANS - 1, err,
				       sizeof(err))) {
		TH_LOG("%s", err);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	for (i = 0; i < ML_NB; i++)
		EXPECT_EQ(0, iio_buffer_detach(self->bfd, self->blk[i].fd));
}

/* ------------------------------------------------------------------ */
/* 7. A broken ramp: the exact mismatches count                        */
/* ------------------------------------------------------------------ */

/*
 * How the DAC counts (src/engine/waveform.rs, RampChecker; documented in
 * dmabuf_dac.rst): n of a scan is read from its first enabled channel;
 * the scan is one mismatch when another enabled channel disagrees with
 * that n, or when n does not follow the previous scan's; the next scan
 * must then follow that n. Blocks follow each other with no new start.
 * So, for one fault in a ramp of 3 blocks of 1000 scans, all queued (or
 * written) before the enable:
 *
 *   skip      block 1 starts at n = 1001 instead of 1000        1
 *   repeat    block 2 starts with block 1's last scan again      1
 *   corrupt   one sample of channel 2 in the middle of block 1   1
 *   corrupt_first  the same on channel 0 (the first enabled):
 *             that scan, and the next, which does not follow it  2
 *   corrupt_last   channel 3 of the very last scan               1
 *   timestamps     garbage in every timestamp (not checked)      0
 *
 * and out_voltageN_raw then holds the samples of the last scan played,
 * as they were (corrupted ones included). Fed through write(), the seed
 * API (ALLOC/ENQUEUE on the DAC's char device) and the mainline API
 * (ATTACH/ENQUEUE of DMABUFs from the system DMA heap or udmabuf).
 */
enum feed { FEED_WRITE, FEED_SEED, FEED_HEAP, FEED_UDMABUF };
enum fault {
	FAULT_SKIP, FAULT_REPEAT, FAULT_CORRUPT, FAULT_CORRUPT_FIRST,
	FAULT_CORRUPT_LAST, FAULT_TIMESTAMPS,
};

static const long long br_expected[] = {
	[FAULT_SKIP] = 1, [FAULT_REPEAT] = 1, [FAULT_CORRUPT] = 1,
	[FAULT_CORRUPT_FIRST] = 2, [FAULT_CORRUPT_LAST] = 1,
	[FAULT_TIMESTAMPS] = 0,
};

#define BR_NB		3
#define BR_SCANS	1000			/* per block */
#define BR_TOTAL	(BR_NB * BR_SCANS)
#define BR_FREQ		10000

/* Flip bit 8 of the sample of the @idx-th enabled channel of scan @i */
static void corrupt_sample(const struct scan_layout *l, uint8_t *buf,
			   size_t i, int idx)
{
	uint8_t *p = buf + i * l->size + l->off[idx];

	put_le16(p, get_le16(p) ^ 0x0100);
}

/* The ramp of BR_TOTAL scans (all channels, timestamp) with @f in it */
static void broken_ramp(const struct scan_layout *l, uint8_t *buf,
			enum fault f)
{
	size_t i;

	for (i = 0; i < BR_TOTAL; i++) {
		uint64_t n = i;

		if (f == FAULT_SKIP && i >= BR_SCANS)
			n = i + 1;
		if (f == FAULT_REPEAT && i >= 2 * BR_SCANS)
			n = i - 1;
		ramp_fill(l, buf + i * l->size, n, 1);
		if (f == FAULT_TIMESTAMPS)
			put_le64(buf + i * l->size + l->ts_off,
				 (BR_TOTAL - i) * 0x9e3779b97f4a7c15ull);
	}
	if (f == FAULT_CORRUPT)
		corrupt_sample(l, buf, BR_SCANS + BR_SCANS / 2, 2);
	if (f == FAULT_CORRUPT_FIRST)
		corrupt_sample(l, buf, BR_SCANS + BR_SCANS / 2, 0);
	if (f == FAULT_CORRUPT_LAST)
		corrupt_sample(l, buf, BR_TOTAL - 1, 3);
}

FIXTURE(broken) {
	DAC_FIXTURE_DATA;
	int memfd[MAXB];	/* udmabuf's memfds */
};

FIXTURE_VARIANT(broken) {
	enum feed feed;
	enum fault fault;
};

#define BROKEN_VARIANT(name, feed_, fault_)				\
	FIXTURE_VARIANT_ADD(broken, name) {				\
		.feed = feed_, .fault = fault_,				\
	}

BROKEN_VARIANT(write_skip, FEED_WRITE, FAULT_SKIP);
BROKEN_VARIANT(write_repeat, FEED_WRITE, FAULT_REPEAT);
BROKEN_VARIANT(write_corrupt, FEED_WRITE, FAULT_CORRUPT);
BROKEN_VARIANT(write_corrupt_first, FEED_WRITE, FAULT_CORRUPT_FIRST);
BROKEN_VARIANT(write_corrupt_last, FEED_WRITE, FAULT_CORRUPT_LAST);
BROKEN_VARIANT(write_timestamps, FEED_WRITE, FAULT_TIMESTAMPS);
BROKEN_VARIANT(seed_skip, FEED_SEED, FAULT_SKIP);
BROKEN_VARIANT(seed_repeat, FEED_SEED, FAULT_REPEAT);
BROKEN_VARIANT(seed_corrupt, FEED_SEED, FAULT_CORRUPT);
BROKEN_VARIANT(seed_corrupt_first, FEED_SEED, FAULT_CORRUPT_FIRST);
BROKEN_VARIANT(seed_corrupt_last, FEED_SEED, FAULT_CORRUPT_LAST);
BROKEN_VARIANT(seed_timestamps, FEED_SEED, FAULT_TIMESTAMPS);
BROKEN_VARIANT(mainline_skip, FEED_HEAP, FAULT_SKIP);
BROKEN_VARIANT(mainline_repeat, FEED_HEAP, FAULT_REPEAT);
BROKEN_VARIANT(mainline_corrupt, FEED_HEAP, FAULT_CORRUPT);
BROKEN_VARIANT(mainline_corrupt_first, FEED_HEAP, FAULT_CORRUPT_FIRST);
BROKEN_VARIANT(mainline_corrupt_last, FEED_HEAP, FAULT_CORRUPT_LAST);
BROKEN_VARIANT(mainline_timestamps, FEED_HEAP, FAULT_TIMESTAMPS);
BROKEN_VARIANT(mainline_udmabuf_skip, FEED_UDMABUF, FAULT_SKIP);
BROKEN_VARIANT(mainline_udmabuf_repeat, FEED_UDMABUF, FAULT_REPEAT);
BROKEN_VARIANT(mainline_udmabuf_corrupt, FEED_UDMABUF, FAULT_CORRUPT);

FIXTURE_SETUP(broken)
{
	int i;

	for (i = 0; i < MAXB; i++)
		self->memfd[i] = -1;
	DAC_SETUP();
}

FIXTURE_TEARDOWN(broken)
{
	int i;

	DAC_TEARDOWN();
	for (i = 0; i < MAXB; i++) {
		if (self->memfd[i] >= 0)
			close(self->memfd[i]);
	}
}

/*
 * A DMABUF of @sz bytes (a page multiple) from the system DMA heap or
 * udmabuf, mapped, into blk[@i]. A missing source is a failure: the test
 * kernel has both.
 */
#define IMPORTED_BLOCK(i, feed, sz) do {				\
	struct dmabuf_block *_b = &self->blk[i];			\
	void *_p;							\
	int _r = (feed) == FEED_HEAP ?					\
		dma_heap_alloc(DMA_HEAP_SYSTEM, (sz)) :		\
		udmabuf_alloc((sz), &self->memfd[i]);			\
	ASSERT_LE(0, _r) {						\
		TH_LOG("DMABUF %d of %zu bytes from %s: %s", (i),	\
		       (size_t)(sz), (feed) == FEED_HEAP ?		\
		       DMA_HEAP_SYSTEM : UDMABUF_DEV, strerror(-_r));	\
	}								\
	_b->fd = _r;							\
	_b->size = (sz);						\
	_p = mmap(NULL, (sz), PROT_READ | PROT_WRITE, MAP_SHARED,	\
		  _b->fd, 0);						\
	ASSERT_NE(MAP_FAILED, _p) {					\
		TH_LOG("mmap of DMABUF %d: %s", (i), strerror(errno));	\
	}								\
	_b->map = _p;							\
} while (0)

/* Copy @bytes of @src into the mapped block @b, inside SYNC_START/END */
static int copy_to_block(struct dmabuf_block *b, const void *src,
			 size_t bytes)
{
	int ret = dmabuf_sync_start_rw(b->fd);

	if (ret)
		return ret;
	memcpy(b->map, src, bytes);
	return dmabuf_sync_end_rw(b->fd);
}

TEST_F_TIMEOUT(broken, mismatches, 90)
{
	const size_t bytes = (size_t)BR_SCANS * SCAN;
	const size_t mapped = (bytes + page_size() - 1) / page_size() *
			      page_size();
	const enum feed feed = variant->feed;
	const bool ml = feed == FEED_HEAP || feed == FEED_UDMABUF;
	const uint8_t *last;
	struct scan_layout l;
	struct dac_counters c;
	char attr[64];
	long long v;
	ssize_t n;
	int i, ch, st = 0, ret;

	layout_init(&l, ADC_ALL_TS);
	broken_ramp(&l, self->buf, variant->fault);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, BR_FREQ, 0, 0));

	switch (feed) {
	case FEED_WRITE:
		/* 3000 scans fit in the default 4096: nothing blocks */
		OPEN_DEV(O_WRONLY | O_NONBLOCK);
		n = write_once(self->devfd, self->buf, BR_NB * bytes);
		ASSERT_EQ((ssize_t)(BR_NB * bytes), n) {
			TH_LOG("write of %zu bytes: %zd (%s)", BR_NB * bytes,
			       n, n < 0 ? strerror((int)-n) : "short");
		}
		break;
	case FEED_SEED:
		OPEN_CHARDEV();
		ALLOC_BLOCKS(BR_NB, bytes);
		for (i = 0; i < BR_NB; i++) {
			ASSERT_EQ(0, copy_to_block(&self->blk[i],
						   self->buf + i * bytes,
						   bytes));
			ENQUEUE_OK(i, 0, bytes);
			EXPORT_OK(i);
		}
		break;
	case FEED_HEAP:
	case FEED_UDMABUF:
		OPEN_DEV(O_RDWR);
		self->bfd = iio_buffer_get_fd(self->devfd, 0);
		ASSERT_LE(0, self->bfd) {
			TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s",
			       strerror(-self->bfd));
		}
		for (i = 0; i < BR_NB; i++) {
			IMPORTED_BLOCK(i, feed, mapped);
			ret = iio_buffer_attach(self->bfd, self->blk[i].fd);
			ASSERT_EQ(0, ret) {
				TH_LOG("ATTACH block %d: %s", i, strerror(-ret));
			}
			ASSERT_EQ(0, copy_to_block(&self->blk[i],
						   self->buf + i * bytes,
						   bytes));
			ret = iio_buffer_enqueue(self->bfd, self->blk[i].fd, 0,
						 bytes);
			ASSERT_EQ(0, ret) {
				TH_LOG("ENQUEUE block %d: %s", i,
				       strerror(-ret));
			}
			EXPORT_OK(i);
		}
		break;
	}

	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	if (feed != FEED_WRITE) {
		for (i = 0; i < BR_NB; i++) {
			ASSERT_EQ(0, sync_file_wait(self->sfd[i], 20000, &st)) {
				TH_LOG("block %d not played after 20 s", i);
			}
			EXPECT_EQ(1, st) {
				TH_LOG("block %d: fence %s", i, status_str(st));
			}
		}
	}
	CONSUMED_EXACTLY(BR_TOTAL, 20000, &c);
	DIAG("broken ramp: %lld scans played, %lld mismatches (expected %lld)",
	     c.consumed, c.mismatches, br_expected[variant->fault]);
	EXPECT_EQ(br_expected[variant->fault], c.mismatches);

	/* the outputs hold the last scan played, as it was */
	last = self->buf + (BR_TOTAL - 1) * SCAN;
	for (ch = 0; ch < DAC_NUM_CH; ch++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", ch);
		ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
		EXPECT_EQ((int16_t)get_le16(last + l.off[ch]), v) {
			TH_LOG("%s", attr);
		}
	}

	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	/* kept after the disable */
	COUNTERS_OK(&c);
	EXPECT_EQ(BR_TOTAL, c.consumed);
	EXPECT_EQ(br_expected[variant->fault], c.mismatches);
	if (ml) {
		for (i = 0; i < BR_NB; i++)
			EXPECT_EQ(0, iio_buffer_detach(self->bfd,
						       self->blk[i].fd));
	}
}

/*
 * A cyclic block with one corrupted sample (channel 1 of scan 100): each
 * pass starts the check over (no mismatch at the wrap), and counts the
 * corrupted scan once. After the disable, mismatches is exactly the
 * number of times scan 100 was played.
 */
TEST_F_TIMEOUT(dacv, cyclic_broken, 60)
{
	const size_t nscans = 500, bytes = nscans * SCAN, bad = 100;
	const bool ml = variant->mainline;
	struct dac_counters c;
	struct scan_layout l;
	long long plays;
	int ret;

	layout_init(&l, ADC_ALL_TS);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, CY_FREQ, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(1, bytes);
	ASSERT_EQ(0, dmabuf_sync_start_rw(self->blk[0].fd));
	ramp_fill(&l, self->blk[0].map, 0, nscans);
	corrupt_sample(&l, self->blk[0].map, bad, 1);
	ASSERT_EQ(0, dmabuf_sync_end_rw(self->blk[0].fd));
	if (ml) {
		close(self->cfd);
		self->cfd = -1;
		OPEN_DEV(O_RDWR);
		self->bfd = iio_buffer_get_fd(self->devfd, 0);
		ASSERT_LE(0, self->bfd);
		ASSERT_EQ(0, iio_buffer_attach(self->bfd, self->blk[0].fd));
	}
	ret = DAC_ENQUEUE(ml, 0, IIO_BUFFER_DMABUF_CYCLIC, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE CYCLIC: %s", strerror(-ret));
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ret = dac_wait_consumed(&self->d, 4 * nscans, 20000, &c);
	ASSERT_EQ(0, ret) {
		TH_LOG("%lld scans played 20 s after enable", c.consumed);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	COUNTERS_OK(&c);
	plays = c.consumed > (long long)bad ?
		(c.consumed - (long long)bad - 1) / (long long)nscans + 1 : 0;
	DIAG("cyclic_broken (%s): %lld scans, %lld mismatches, scan %zu "
	     "played %lld times", ml ? "mainline" : "seed", c.consumed,
	     c.mismatches, bad, plays);
	EXPECT_LE(4, plays);
	EXPECT_EQ(plays, c.mismatches);
	if (ml)
		EXPECT_EQ(0, iio_buffer_detach(self->bfd, self->blk[0].fd));
}

/* ------------------------------------------------------------------ */
/* 8. A subset of the channels                                         */
/* ------------------------------------------------------------------ */

/*
 * Channels 1 and 3 only: 4-byte scans (dmabuf_adc.rst), in which the DAC
 * checks channel 1 against n + 1 and channel 3 against n + 3 (n from
 * channel 1, the first enabled). Channel 2 with the timestamp: 16-byte
 * scans. Everything through write(), the scan size shown by how many
 * scans the bytes written make.
 */
TEST_F_TIMEOUT(dac, subset_channels, 90)
{
	const unsigned int mask = ADC_CH(1) | ADC_CH(3);
	struct scan_layout l, l01;
	struct dac_counters c;
	long long v;
	ssize_t n;

	ASSERT_EQ(0, inst_configure(&self->d, mask, 10000, 0, 0));
	layout_init(&l, mask);

	/* a: 3000 ramp scans of 4 bytes: 3000 played, no mismatch */
	ramp_fill(&l, self->buf, 0, 3000);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	n = write_once(self->devfd, self->buf, 3000 * 4);
	ASSERT_EQ(3000 * 4, n);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(3000, 20000, &c);
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage1_raw", &v));
	EXPECT_EQ(ramp_value(2999, 1), v);
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage3_raw", &v));
	EXPECT_EQ(ramp_value(2999, 3), v);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/*
	 * b: the ramp of channels 0 and 1 (n, n + 1) in the same 4 bytes:
	 * channel 3 disagrees with channel 1 in every scan.
	 */
	layout_init(&l01, ADC_CH(0) | ADC_CH(1));
	ramp_fill(&l01, self->buf, 0, 1000);
	n = write_once(self->devfd, self->buf, 1000 * 4);
	ASSERT_EQ(1000 * 4, n);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(1000, 20000, &c);
	EXPECT_EQ(1000, c.mismatches) {
		TH_LOG("channels 1/3 holding n, n + 1: %lld mismatches in "
		       "1000 scans", c.mismatches);
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/*
	 * c: the right ramp with channel 1 corrupted in scan 300 (2: the
	 * next scan does not follow), channel 3 in scan 500 (1) and scan
	 * 700 skipped (1).
	 */
	ramp_fill(&l, self->buf, 0, 700);
	ramp_fill(&l, self->buf + 700 * 4, 701, 300);
	corrupt_sample(&l, self->buf, 300, 0);	/* index 0: channel 1 */
	corrupt_sample(&l, self->buf, 500, 1);	/* index 1: channel 3 */
	n = write_once(self->devfd, self->buf, 1000 * 4);
	ASSERT_EQ(1000 * 4, n);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(1000, 20000, &c);
	EXPECT_EQ(4, c.mismatches);
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage3_raw", &v));
	EXPECT_EQ(ramp_value(1000, 3), v);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	close(self->devfd);
	self->devfd = -1;

	/* d: channel 2 and the timestamp: 16-byte scans */
	ASSERT_EQ(0, inst_configure(&self->d, ADC_CH(2) | ADC_TS, 10000, 0, 0));
	layout_init(&l, ADC_CH(2) | ADC_TS);
	ramp_fill(&l, self->buf, 0, 1000);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	n = write_once(self->devfd, self->buf, 1000 * 16);
	ASSERT_EQ(1000 * 16, n);
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(1000, 20000, &c);
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_read_ll(&self->d, "out_voltage2_raw", &v));
	EXPECT_EQ(ramp_value(999, 2), v);
}

/*
 * out_voltageN_raw reads "the code output last (written, or played from
 * the buffer)" (dmabuf_dac.rst): codes written in direct mode stay until
 * a scan is played on that channel. Enabling the buffer with channels 1
 * and 3 and playing nothing keeps all four; playing a ramp changes 1 and
 * 3 only.
 */
TEST_F_TIMEOUT(dac, raw_holds_until_played, 60)
{
	static const long long code[DAC_NUM_CH] = { 1000, 77, -2000, 5 };
	struct scan_layout l;
	struct dac_counters c;
	char attr[64];
	long long v;
	int ch;

	for (ch = 0; ch < DAC_NUM_CH; ch++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", ch);
		ASSERT_EQ(0, inst_write_ll(&self->d, attr, code[ch]));
	}
	ASSERT_EQ(0, inst_configure(&self->d, ADC_CH(1) | ADC_CH(3), 10000, 0,
				    0));

	/* enabled, nothing to play */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, dac_wait_for(&self->d, WAIT_UNDERRUN, 10000, &c));
	EXPECT_EQ(0, c.consumed);
	for (ch = 0; ch < DAC_NUM_CH; ch++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", ch);
		ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
		EXPECT_EQ(code[ch], v) {
			TH_LOG("%s after an enable that played nothing", attr);
		}
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));

	/* 100 scans on channels 1 and 3 */
	layout_init(&l, ADC_CH(1) | ADC_CH(3));
	ramp_fill(&l, self->buf, 0, 100);
	OPEN_DEV(O_WRONLY | O_NONBLOCK);
	ASSERT_EQ(100 * 4, write_once(self->devfd, self->buf, 100 * 4));
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	CONSUMED_EXACTLY(100, 20000, &c);
	EXPECT_EQ(0, c.mismatches);
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
	for (ch = 0; ch < DAC_NUM_CH; ch++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", ch);
		ASSERT_EQ(0, inst_read_ll(&self->d, attr, &v));
		EXPECT_EQ(ch & 1 ? ramp_value(99, ch) : code[ch], v) {
			TH_LOG("%s after playing channels 1 and 3", attr);
		}
	}
}

#define CF_SCANS	32768	/* 512 KiB blocks: MAXB of them in one run */
#define CF_FREQ		500000000
#define CF_ROUNDS	8

/*
 * The counts include a block once its fence has signalled: whoever waits
 * for block i and then reads scans_consumed sees at least i + 1 blocks.
 * At 500 MSPS one run of the engine plays all MAXB blocks, so counts
 * published at the end of the run would be stale for all but the last.
 */
TEST_F_TIMEOUT(dac, counted_before_fence, 120)
{
	const size_t bytes = (size_t)CF_SCANS * SCAN;
	struct dac_counters c;
	int i, r, stale = 0, seen = 0;

	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, CF_FREQ, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(MAXB, bytes);
	for (r = 0; r < CF_ROUNDS; r++) {
		for (i = 0; i < MAXB; i++) {
			FILL_OK(i, (uint64_t)i * CF_SCANS, CF_SCANS);
			ENQUEUE_OK(i, 0, bytes);
		}
		ASSERT_EQ(0, inst_buffer_enable(&self->d));
		for (i = 0; i < MAXB; i++) {
			ASSERT_EQ(1, poll_events(self->blk[i].fd, POLLOUT,
						 10000)) {
				TH_LOG("round %d: block %d not played", r, i);
			}
			COUNTERS_OK(&c);
			seen++;
			if (c.consumed < (long long)(i + 1) * CF_SCANS) {
				if (!stale)
					DIAG("counted_before_fence: round %d, block %d signalled, scans_consumed %lld < %d",
					     r, i, c.consumed,
					     (i + 1) * CF_SCANS);
				stale++;
			}
		}
		EXPECT_EQ(0, c.mismatches);
		ASSERT_EQ(0, inst_buffer_disable(&self->d));
	}
	DIAG("counted_before_fence: %d of %d counts read after a fence were stale",
	     stale, seen);
	EXPECT_EQ(0, stale);
}

/* ------------------------------------------------------------------ */
/* 10. rmdir with blocks queued / attached                             */
/* ------------------------------------------------------------------ */

/*
 * rmdir of the DAC while it plays block 0 (100 Hz), block 1 queued and a
 * thread waits in SYNC_START: the thread returns, the fences signal
 * -ENODEV, the memory stays usable.
 */
TEST_F_TIMEOUT(dacv, rmdir_with_blocks, 90)
{
	const size_t bytes = 1000 * SCAN;
	const bool ml = variant->mainline;
	struct sync_waiter w = { .rw = true };
	char name[64];
	pthread_t th;
	double t;
	int i, st = 0, ret;

	snprintf(name, sizeof(name), "%s", self->d.name);
	ASSERT_EQ(0, inst_configure(&self->d, ADC_ALL_TS, 100, 0, 0));
	OPEN_CHARDEV();
	ALLOC_BLOCKS(3, bytes);
	for (i = 0; i < 3; i++)
		FILL_OK(i, (uint64_t)i * 1000, 1000);
	if (ml) {
		close(self->cfd);
		self->cfd = -1;
		OPEN_DEV(O_RDWR);
		self->bfd = iio_buffer_get_fd(self->devfd, 0);
		ASSERT_LE(0, self->bfd);
		/* 0, 1 queued; 2 attached, idle */
		for (i = 0; i < 3; i++) {
			ASSERT_EQ(0, iio_buffer_attach(self->bfd,
						       self->blk[i].fd));
		}
	}
	for (i = 0; i < 2; i++) {
		ret = DAC_ENQUEUE(ml, i, 0, bytes);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE block %d: %s", i, strerror(-ret));
		}
		EXPORT_OK(i);
	}
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	w.fd = self->blk[0].fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, sync_waiter_fn, &w));
	sleep_ms(300);
	ASSERT_FALSE(waiter_done(&w)) {
		TH_LOG("SYNC_START returned early: %d", w.ret);
	}

	t = now_s();
	ret = inst_rmdir(INST_DAC, name);
	DIAG("rmdir_with_blocks (%s): rmdir: %d, %.3f s",
	     ml ? "mainline" : "seed", ret, now_s() - t);
	ASSERT_EQ(0, ret);
	self->d.devnum = -1;
	ASSERT_EQ(0, join_within(th, 10)) {
		TH_LOG("SYNC_START still blocked 10 s after rmdir");
	}
	EXPECT_EQ(0, w.ret);
	for (i = 0; i < 2; i++) {
		st = 0;
		ASSERT_EQ(0, sync_file_wait(self->sfd[i], 5000, &st)) {
			TH_LOG("block %d: fence not signalled after rmdir", i);
		}
		EXPECT_EQ(-ENODEV, st) {
			TH_LOG("block %d: fence: %s", i, status_str(st));
		}
		EXPECT_EQ(1, poll_events(self->blk[i].fd, POLLOUT, 1000));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, dmabuf_sync_start_rw(self->blk[i].fd));
		memset(self->blk[i].map, 0x10 + i, bytes);
		EXPECT_EQ(0x10 + i, self->blk[i].map[bytes - 1]);
		EXPECT_EQ(0, dmabuf_sync_end_rw(self->blk[i].fd));
	}
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	if (ml) {
		/* the stale buffer fd refuses, and its fences signal */
		ret = iio_buffer_enqueue(self->bfd, self->blk[2].fd, 0, bytes);
		EXPECT_EQ(-ENODEV, ret) {
			TH_LOG("mainline ENQUEUE after rmdir: %s",
			       ret ? strerror(-ret) : "accepted");
		}
		EXPECT_EQ(1, poll_events(self->blk[2].fd, POLLOUT, 5000));
	} else {
		/* the char device is still open: ENODEV */
		EXPECT_EQ(-ENODEV, dmabuf_enqueue(self->cfd, self->blk[2].fd,
						  bytes));
	}
	t = now_s();
	if (self->bfd >= 0)
		EXPECT_EQ(0, close(self->bfd));
	self->bfd = -1;
	if (self->devfd >= 0)
		EXPECT_EQ(0, close(self->devfd));
	self->devfd = -1;
	if (self->cfd >= 0)
		EXPECT_EQ(0, close(self->cfd));
	self->cfd = -1;
	for (i = 0; i < 3; i++)
		dmabuf_block_free(&self->blk[i]);
	EXPECT_GT(5.0, now_s() - t);
}

TEST_HARNESS_MAIN
