// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: soak. Every data path at once, for SOAK_MINUTES (default 1,
 * make check's; make soak MINUTES=N for longer), each on devices of its
 * own, all at SOAK_FREQ:
 *
 *  - seed loopback: blocks ALLOCated on an ADC, queued with the seed
 *    ENQUEUE on the ADC and on a DAC (which waits for the ADC's fence),
 *    recycled by the test once both are done with them;
 *  - mainline loopback: blocks of another ADC, filled through its seed
 *    ENQUEUE, ATTACHed to a second DAC's buffer fd and queued there with
 *    the mainline ENQUEUE (which waits for the ADC's fence);
 *  - two fileio readers: read() from an ADC, all channels and the
 *    timestamp, blocking; and from another with channels 1 and 3 only,
 *    O_NONBLOCK and poll();
 *  - a mainline reader: system-heap DMABUFs ATTACHed to an ADC's buffer
 *    fd, ENQUEUEd there, waited for and recycled.
 *
 * Every scan of every ADC is checked: the ramp continuous from scan 0 of
 * the enable (a scan missing is lost, one going back is duplicated), every
 * channel of a scan agreeing, and each timestamp exactly the ADC's clock
 * at its enable plus n sample periods (dmabuf_adc.rst). The ADCs' overruns
 * (scans dropped for want of a free block) are lost scans too. A DAC must
 * play exactly the scans queued to it, with no mismatch, and hold the
 * last one's codes at the end. The streams keep at least RING_S seconds of
 * blocks queued ahead of the one being checked, so that a loaded TCG guest
 * stalling the test that long loses nothing: every counter must end at 0.
 *
 * The counters are printed every PROGRESS_S seconds and at the end.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SOAK_FREQ	2000	/* scans/s on every device */
#define SCAN		16	/* all channels and the timestamp */
#define CHECK_MINUTES	1
#define PROGRESS_S	10
#define IO_TIMEOUT_MS	10000	/* a block or a read that takes longer: stuck */

/* Loopbacks: 16 blocks of 0.5 s: 8 s of blocks */
#define LB_NB		16
#define LB_SCANS	1024
#define ML_LAG		3	/* blocks between the DAC's ENQUEUE and recycling */
/* Mainline reader: 8 blocks of 1 s */
#define MR_NB		8
#define MR_SCANS	2048
/* fileio: 8 s of buffer, in blocks of at least 256 scans */
#define FIO_LENGTH	16384
#define FIO_WATERMARK	256
#define FIO_READ	(512 * SCAN)
#define FIO2_MASK	(ADC_CH(1) | ADC_CH(3))

#define RING_S		8

/* CLOCK_REALTIME (the default current_timestamp_clock) in ns */
static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Checking an ADC's scans                                             */
/* ------------------------------------------------------------------ */

/*
 * The scans of one ADC from its enable on, in order. Counts instead of
 * stopping at the first error, so that the counters say how much went
 * wrong; the first error is kept in words.
 */
struct check {
	struct scan_layout l;
	long long freq;
	uint64_t next;		/* n of the next scan */
	int64_t t_lo, t_hi;	/* CLOCK_REALTIME around the enable */
	int64_t base;		/* the ADC's clock at enable, from scan 0 */
	bool have_base;
	uint64_t scans, lost, dup, mismatch;
	char err[256];
};

static void check_init(struct check *c, unsigned int mask, long long freq)
{
	memset(c, 0, sizeof(*c));
	layout_init(&c->l, mask);
	c->freq = freq;
}

static void check_note(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Scan n's timestamp: the clock at enable plus floor(n * 10^9 / f) ns */
static int64_t check_ts(const struct check *c, uint64_t n)
{
	return c->base + (int64_t)((unsigned __int128)n * 1000000000u /
				   (uint64_t)c->freq);
}

static void check_scan(struct check *c, const uint8_t *s)
{
	uint16_t n16 = ramp_n_of(&c->l, s), d, v;
	int64_t ts;
	int i;

	for (i = 1; i < c->l.nch; i++) {
		v = get_le16(s + c->l.off[i]);
		if ((uint16_t)(v - c->l.ch[i]) != n16) {
			c->mismatch++;
			check_note(c, "scan n=%" PRIu64 ": channel %d holds %u, channel %d says n=%u",
				   c->next, c->l.ch[i], v, c->l.ch[0], n16);
			break;
		}
	}
	d = (uint16_t)(n16 - (uint16_t)c->next);
	if (d && d < 0x8000) {
		check_note(c, "scan n=%" PRIu64 " expected, n=%u (mod 2^16) came: %u scans lost",
			   c->next, n16, d);
		c->lost += d;
		c->next += d;
	} else if (d) {
		check_note(c, "scan n=%" PRIu64 " expected, n=%u (mod 2^16) came: %u scans again",
			   c->next, n16, 0x10000 - d);
		c->dup += 0x10000 - d;
		c->next -= 0x10000 - d;
	}
	if (c->l.ts_off >= 0) {
		ts = get_le64(s + c->l.ts_off);
		if (!c->have_base) {
			c->base = ts - check_ts(c, c->next);	/* check_ts: base 0 */
			c->have_base = true;
			if (c->base < c->t_lo || c->base > c->t_hi) {
				c->mismatch++;
				check_note(c, "scan n=%" PRIu64 ": timestamp %" PRId64 " puts the enable at %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]",
					   c->next, ts, c->base, c->t_lo, c->t_hi);
			}
		} else if (ts != check_ts(c, c->next)) {
			c->mismatch++;
			check_note(c, "scan n=%" PRIu64 ": timestamp %" PRId64 ", expected %" PRId64,
				   c->next, ts, check_ts(c, c->next));
		}
	}
	c->next++;
	c->scans++;
}

/* @len bytes of whole scans */
static void check_feed(struct check *c, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + c->l.size <= len; i += c->l.size)
		check_scan(c, p + i);
	if (len % c->l.size) {
		c->mismatch++;
		check_note(c, "%zu bytes: not whole scans of %zu bytes", len,
			   c->l.size);
	}
}

/* ------------------------------------------------------------------ */
/* The streams                                                         */
/* ------------------------------------------------------------------ */

enum kind { SEED_LOOP, ML_LOOP, FILEIO, FILEIO2, ML_READER, NSTREAMS };

static const char *const stream_names[NSTREAMS] = {
	[SEED_LOOP] = "seed loopback", [ML_LOOP] = "mainline loopback",
	[FILEIO] = "fileio reader", [FILEIO2] = "fileio reader (ch 1, 3)",
	[ML_READER] = "mainline reader",
};

struct stream {
	enum kind kind;
	struct inst a;		/* the ADC */
	struct inst d;		/* the DAC of a loopback */
	bool has_dac;
	int acfd, dcfd, devfd, bfd;
	struct dmabuf_block blk[LB_NB];
	struct check c;		/* the ADC's scans, protected by lock */
	pthread_mutex_t lock;
	pthread_t th;
	bool started;
	bool done;		/* the thread ended (atomic) */
	/* results */
	char fail[320];		/* a step that failed: the stream stopped */
	long long ov0, ov1;	/* ADC overruns before, and while it ran */
	long long queued;	/* scans queued to the DAC */
	struct dac_counters dc;	/* the DAC's, at the end */
	long long last[DAC_NUM_CH];	/* the DAC's out_voltageN_raw */
};

static struct stream S[NSTREAMS];
static int stop;	/* atomic: the streams drain and end */

#define STREAM_FAIL(s, fmt, ...) do {					\
	snprintf((s)->fail, sizeof((s)->fail), fmt, ##__VA_ARGS__);	\
	return;								\
} while (0)

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_SEQ_CST);
}

/* check_feed() under the stream's lock: block_wait_check()'s check */
static int check_fn(void *arg, const uint8_t *data, size_t bytes, char *why,
		    size_t len)
{
	struct stream *s = arg;

	(void)why;	/* counted, not failed: see the counters */
	(void)len;
	pthread_mutex_lock(&s->lock);
	check_feed(&s->c, data, bytes);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * What block_wait_check() does with each block of @s: wait up to
 * IO_TIMEOUT_MS for it (every fence, or with @in only the writers':
 * POLLIN), then check its @bytes (SYNC READ | WRITE around).
 */
static struct block_wait block_check(struct stream *s, size_t bytes, bool in)
{
	struct block_wait w = {
		.wait = in ? BLOCK_WAIT_POLLIN : BLOCK_WAIT_POLLOUT,
		.timeout_ms = IO_TIMEOUT_MS, .rw = true,
		.check = check_fn, .arg = s, .bytes = bytes,
	};

	return w;
}

static void enable_adc(struct stream *s, int *ret)
{
	s->c.t_lo = realtime_ns();
	*ret = inst_buffer_enable(&s->a);
	s->c.t_hi = realtime_ns();
}

static void read_dac_end(struct stream *s)
{
	char attr[64];
	int c;

	dac_read_counters(&s->d, &s->dc);
	for (c = 0; c < DAC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "out_voltage%d_raw", c);
		if (inst_read_ll(&s->d, attr, &s->last[c]))
			s->last[c] = LLONG_MIN;
	}
}

/*
 * Seed loopback (loopback.c's seed_ring, for as long as the soak lasts):
 * the whole ring queued on the ADC and the DAC; block k is waited for
 * (both devices done: SYNC READ | WRITE), checked, and queued again on
 * both as block k + LB_NB. When the soak ends, the blocks already queued
 * on the DAC play out; the ADC keeps getting blocks until its overruns
 * are read.
 */
static void seed_loop(struct stream *s)
{
	const size_t bytes = (size_t)LB_SCANS * SCAN;
	struct block_wait w = block_check(s, bytes, false);
	long long end = -1;	/* blocks the DAC gets: known once stopping */
	long long k;
	int i, ret;

	for (i = 0; i < LB_NB; i++) {
		ret = dmabuf_block_alloc(&s->blk[i], s->acfd, bytes, true);
		if (ret)
			STREAM_FAIL(s, "ALLOC block %d: %s", i, strerror(-ret));
		ret = dmabuf_enqueue(s->acfd, s->blk[i].fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block %d on the ADC: %s", i,
				    strerror(-ret));
		ret = dmabuf_enqueue(s->dcfd, s->blk[i].fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block %d on the DAC: %s", i,
				    strerror(-ret));
	}
	s->queued = (long long)LB_NB * LB_SCANS;
	if (inst_read_ll(&s->a, "overruns", &s->ov0))
		STREAM_FAIL(s, "reading overruns");
	if (inst_buffer_enable(&s->d))
		STREAM_FAIL(s, "enabling the DAC");
	enable_adc(s, &ret);
	if (ret)
		STREAM_FAIL(s, "enabling the ADC: %s", strerror(-ret));

	for (k = 0; end < 0 || k < end; k++) {
		struct dmabuf_block *b = &s->blk[k % LB_NB];

		if (end < 0 && stopping())
			end = k + LB_NB;
		/* done by both devices */
		ret = block_wait_check(&w, b);
		if (ret)
			STREAM_FAIL(s, "block #%lld: %.256s", k, w.why);
		ret = dmabuf_enqueue(s->acfd, b->fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block #%lld on the ADC: %s",
				    k + LB_NB, strerror(-ret));
		if (end >= 0)
			continue;
		ret = dmabuf_enqueue(s->dcfd, b->fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block #%lld on the DAC: %s",
				    k + LB_NB, strerror(-ret));
		s->queued += LB_SCANS;
	}
	/* the DAC's last fence signalled; the ADC still has blocks */
	if (inst_read_ll(&s->a, "overruns", &s->ov1))
		STREAM_FAIL(s, "reading overruns");
	/* counted before the fence signalled: no wait needed, none harmful */
	dac_wait_consumed(&s->d, s->queued, 2000, &s->dc);
	sleep_ms(200);
	read_dac_end(s);
}

/*
 * Mainline loopback (loopback.c's mainline_ring): block k is queued on
 * the DAC with the mainline ENQUEUE as soon as the ADC has filled it (the
 * core waits for the ADC's fence); ML_LAG blocks later, once the DAC
 * played it too, it is checked and queued on the ADC again.
 */
static void ml_loop(struct stream *s)
{
	const size_t bytes = (size_t)LB_SCANS * SCAN;
	struct block_wait w = block_check(s, bytes, false);
	long long end = -1, k, j;
	int i, ret;

	for (i = 0; i < LB_NB; i++) {
		ret = dmabuf_block_alloc(&s->blk[i], s->acfd, bytes, true);
		if (ret)
			STREAM_FAIL(s, "ALLOC block %d: %s", i, strerror(-ret));
		ret = iio_buffer_attach(s->bfd, s->blk[i].fd);
		if (ret)
			STREAM_FAIL(s, "ATTACH block %d to the DAC: %s", i,
				    strerror(-ret));
		ret = dmabuf_enqueue(s->acfd, s->blk[i].fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block %d on the ADC: %s", i,
				    strerror(-ret));
	}
	if (inst_read_ll(&s->a, "overruns", &s->ov0))
		STREAM_FAIL(s, "reading overruns");
	if (inst_buffer_enable(&s->d))
		STREAM_FAIL(s, "enabling the DAC");
	enable_adc(s, &ret);
	if (ret)
		STREAM_FAIL(s, "enabling the ADC: %s", strerror(-ret));

	for (k = 0; end < 0 || k < end + ML_LAG; k++) {
		if (end < 0 && stopping())
			end = k;
		if (end < 0) {
			ret = iio_buffer_enqueue(s->bfd, s->blk[k % LB_NB].fd, 0,
						 bytes);
			if (ret)
				STREAM_FAIL(s, "mainline ENQUEUE of block #%lld on the DAC: %s",
					    k, strerror(-ret));
			s->queued += LB_SCANS;
		}
		j = k - ML_LAG;
		if (j < 0)
			continue;
		/* done by both devices */
		ret = block_wait_check(&w, &s->blk[j % LB_NB]);
		if (ret)
			STREAM_FAIL(s, "block #%lld: %.256s", j, w.why);
		ret = dmabuf_enqueue(s->acfd, s->blk[j % LB_NB].fd, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block #%lld on the ADC: %s",
				    j + LB_NB, strerror(-ret));
	}
	if (inst_read_ll(&s->a, "overruns", &s->ov1))
		STREAM_FAIL(s, "reading overruns");
	dac_wait_consumed(&s->d, s->queued, 2000, &s->dc);
	sleep_ms(200);
	read_dac_end(s);
}

/*
 * fileio: read() whole scans, blocking (FILEIO) or O_NONBLOCK after
 * poll() (FILEIO2), until the soak ends; the overruns are read while the
 * buffer still runs.
 */
static void fileio(struct stream *s)
{
	const size_t len = FIO_READ - FIO_READ % s->c.l.size;
	uint8_t *buf = malloc(FIO_READ);
	ssize_t n;
	int ret;

	if (!buf)
		STREAM_FAIL(s, "malloc");
	if (inst_read_ll(&s->a, "overruns", &s->ov0)) {
		free(buf);
		STREAM_FAIL(s, "reading overruns");
	}
	enable_adc(s, &ret);
	if (ret) {
		free(buf);
		STREAM_FAIL(s, "enabling the ADC: %s", strerror(-ret));
	}
	while (!stopping()) {
		n = read_timeout(s->devfd, buf, len, IO_TIMEOUT_MS);
		if (n == -EAGAIN && s->kind == FILEIO2)
			continue;	/* poll() said POLLIN: the watermark */
		if (n <= 0) {
			free(buf);
			STREAM_FAIL(s, "read(): %s", n ? strerror((int)-n) :
				    "end of file");
		}
		pthread_mutex_lock(&s->lock);
		check_feed(&s->c, buf, (size_t)n);
		pthread_mutex_unlock(&s->lock);
	}
	free(buf);
	if (inst_read_ll(&s->a, "overruns", &s->ov1))
		STREAM_FAIL(s, "reading overruns");
}

/*
 * Mainline reader (dmabuf_mainline.c's stream.ramp, for as long as the
 * soak lasts): system-heap blocks ATTACHed to the ADC's buffer fd, all
 * queued before the enable; then the oldest is waited for, checked and
 * queued again.
 */
static void ml_reader(struct stream *s)
{
	const size_t bytes = (size_t)MR_SCANS * SCAN;
	struct block_wait w = block_check(s, bytes, true);
	struct dmabuf_block *b;
	long long k;
	int i, ret;
	void *p;

	for (i = 0; i < MR_NB; i++) {
		ret = dma_heap_alloc(DMA_HEAP_SYSTEM, bytes);
		if (ret < 0)
			STREAM_FAIL(s, "%s: DMA_HEAP_IOCTL_ALLOC: %s",
				    DMA_HEAP_SYSTEM, strerror(-ret));
		s->blk[i].fd = ret;
		s->blk[i].size = bytes;
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ret, 0);
		if (p == MAP_FAILED)
			STREAM_FAIL(s, "mmap heap block %d: %s", i, strerror(errno));
		s->blk[i].map = p;
		ret = iio_buffer_attach(s->bfd, s->blk[i].fd);
		if (ret)
			STREAM_FAIL(s, "ATTACH block %d: %s", i, strerror(-ret));
		ret = iio_buffer_enqueue(s->bfd, s->blk[i].fd, 0, bytes);
		if (ret)
			STREAM_FAIL(s, "ENQUEUE block %d: %s", i, strerror(-ret));
	}
	if (inst_read_ll(&s->a, "overruns", &s->ov0))
		STREAM_FAIL(s, "reading overruns");
	enable_adc(s, &ret);
	if (ret)
		STREAM_FAIL(s, "enabling the ADC: %s", strerror(-ret));
	for (k = 0; !stopping(); k++) {
		b = &s->blk[k % MR_NB];
		/* filled */
		ret = block_wait_check(&w, b);
		if (ret)
			STREAM_FAIL(s, "block #%lld: %.256s", k, w.why);
		ret = iio_buffer_enqueue(s->bfd, b->fd, 0, bytes);
		if (ret)
			STREAM_FAIL(s, "re-ENQUEUE of block #%lld: %s", k,
				    strerror(-ret));
	}
	/* blocks are still queued: nothing dropped so far */
	if (inst_read_ll(&s->a, "overruns", &s->ov1))
		STREAM_FAIL(s, "reading overruns");
}

static void *stream_fn(void *arg)
{
	struct stream *s = arg;

	switch (s->kind) {
	case SEED_LOOP: seed_loop(s); break;
	case ML_LOOP: ml_loop(s); break;
	case FILEIO:
	case FILEIO2: fileio(s); break;
	case ML_READER: ml_reader(s); break;
	case NSTREAMS: break;
	}
	__atomic_store_n(&s->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Setup and teardown                                                  */
/* ------------------------------------------------------------------ */

static void stream_init(struct stream *s, enum kind kind)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->a.devnum = -1;
	s->d.devnum = -1;
	s->acfd = s->dcfd = s->devfd = s->bfd = -1;
	for (i = 0; i < LB_NB; i++)
		dmabuf_block_init(&s->blk[i]);
	pthread_mutex_init(&s->lock, NULL);
	s->ov1 = -1;
}

/* Create and configure the devices of @s, open what it uses; 0/-errno */
static int stream_setup(struct stream *s, char *what, size_t size)
{
	unsigned int mask = s->kind == FILEIO2 ? FIO2_MASK : ADC_ALL_TS;
	bool fio = s->kind == FILEIO || s->kind == FILEIO2;
	int ret;

	check_init(&s->c, mask, SOAK_FREQ);
	ret = inst_create_unique(&s->a, INST_ADC, "sk");
	if (ret) {
		snprintf(what, size, "creating an ADC");
		return ret;
	}
	ret = inst_configure(&s->a, mask, SOAK_FREQ, fio ? FIO_LENGTH : 0,
			     fio ? FIO_WATERMARK : 0);
	if (ret) {
		snprintf(what, size, "configuring %s", s->a.name);
		return ret;
	}
	s->has_dac = s->kind == SEED_LOOP || s->kind == ML_LOOP;
	if (s->has_dac) {
		ret = inst_create_unique(&s->d, INST_DAC, "skd");
		if (!ret)
			ret = inst_configure(&s->d, ADC_ALL_TS, SOAK_FREQ, 0,
					     0);
		if (ret) {
			snprintf(what, size, "creating a DAC");
			return ret;
		}
	}
	if (s->kind == SEED_LOOP || s->kind == ML_LOOP) {
		s->acfd = inst_dmabuf_open(&s->a, O_RDWR);
		if (s->acfd < 0) {
			snprintf(what, size, "opening the ADC's DMABUF char device");
			return s->acfd;
		}
	}
	if (s->kind == SEED_LOOP) {
		s->dcfd = inst_dmabuf_open(&s->d, O_RDWR);
		if (s->dcfd < 0) {
			snprintf(what, size, "opening the DAC's DMABUF char device");
			return s->dcfd;
		}
	}
	if (s->kind == ML_LOOP || s->kind == ML_READER) {
		struct inst *x = s->kind == ML_LOOP ? &s->d : &s->a;

		s->devfd = inst_open(x, O_RDWR);
		if (s->devfd < 0) {
			snprintf(what, size, "opening %s", x->chrdev);
			return s->devfd;
		}
		s->bfd = iio_buffer_get_fd(s->devfd, 0);
		if (s->bfd < 0) {
			snprintf(what, size, "IIO_BUFFER_GET_FD_IOCTL on %s",
				 x->chrdev);
			return s->bfd;
		}
	}
	if (fio) {
		s->devfd = inst_open(&s->a, O_RDONLY |
				     (s->kind == FILEIO2 ? O_NONBLOCK : 0));
		if (s->devfd < 0) {
			snprintf(what, size, "opening %s", s->a.chrdev);
			return s->devfd;
		}
	}
	return 0;
}

static void stream_teardown(struct stream *s)
{
	int i;

	if (s->has_dac && s->d.devnum >= 0)
		inst_buffer_disable(&s->d);
	if (s->a.devnum >= 0)
		inst_buffer_disable(&s->a);
	if (s->bfd >= 0)
		close(s->bfd);
	if (s->devfd >= 0)
		close(s->devfd);
	if (s->dcfd >= 0)
		close(s->dcfd);
	if (s->acfd >= 0)
		close(s->acfd);
	for (i = 0; i < LB_NB; i++)
		dmabuf_block_free(&s->blk[i]);
	if (s->has_dac)
		inst_destroy(&s->d);
	inst_destroy(&s->a);
	s->bfd = s->devfd = s->dcfd = s->acfd = -1;
}

FIXTURE(soak) {
	int dummy;
};

FIXTURE_SETUP(soak)
{
	int k;

	for (k = 0; k < NSTREAMS; k++)
		stream_init(&S[k], (enum kind)k);
}

FIXTURE_TEARDOWN(soak)
{
	int k;

	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	for (k = 0; k < NSTREAMS; k++)
		if (S[k].started && !join_within(S[k].th, 30))
			S[k].started = false;
	for (k = 0; k < NSTREAMS; k++)
		if (!S[k].started)	/* a stuck thread may use it still */
			stream_teardown(&S[k]);
}

static long long env_ll(const char *name, long long def)
{
	const char *s = getenv(name);
	long long v;

	if (!s || !*s || parse_ll(s, &v))
		return def;
	return v;
}

static void print_counters(const char *when)
{
	char adc[64], dac[128];
	struct stream *s;
	int k;

	for (k = 0; k < NSTREAMS; k++) {
		s = &S[k];
		adc[0] = dac[0] = '\0';
		if (s->ov1 >= 0)
			snprintf(adc, sizeof(adc), "; ADC overruns %lld",
				 s->ov1 - s->ov0);
		if (s->has_dac && __atomic_load_n(&s->done, __ATOMIC_SEQ_CST))
			snprintf(dac, sizeof(dac),
				 "; DAC played %lld of %lld scans queued, mismatches %lld",
				 s->dc.consumed, s->queued, s->dc.mismatches);
		pthread_mutex_lock(&s->lock);
		DIAG("soak %s: %s: %" PRIu64 " scans checked, lost %" PRIu64 ", duplicated %" PRIu64 ", mismatches %" PRIu64 "%s%s%s%s",
		     when, stream_names[k], s->c.scans, s->c.lost, s->c.dup,
		     s->c.mismatch, adc, dac, s->fail[0] ? "; STOPPED: " : "",
		     s->fail);
		pthread_mutex_unlock(&s->lock);
	}
}

TEST_F_TIMEOUT(soak, all_paths, CHECK_MINUTES * 60 + 120)
{
	long long minutes = env_ll("SOAK_MINUTES", CHECK_MINUTES);
	double t0, end, next;
	char what[128] = "";
	struct stream *s;
	int k, c, ret;

	ASSERT_LT(0, minutes);
	DIAG("soak: %lld min, every stream at %d Hz, %d s of blocks ahead",
	     minutes, SOAK_FREQ, RING_S);
	for (k = 0; k < NSTREAMS; k++) {
		ret = stream_setup(&S[k], what, sizeof(what));
		ASSERT_EQ(0, ret) {
			TH_LOG("%s: %s: %s", stream_names[k], what, strerror(-ret));
		}
	}
	t0 = now_s();
	for (k = 0; k < NSTREAMS; k++) {
		ASSERT_EQ(0, pthread_create(&S[k].th, NULL, stream_fn, &S[k]));
		S[k].started = true;
	}
	end = t0 + minutes * 60.0;
	next = t0 + PROGRESS_S;
	while (now_s() < end) {
		for (k = 0; k < NSTREAMS; k++)
			if (__atomic_load_n(&S[k].done, __ATOMIC_SEQ_CST))
				break;
		if (k < NSTREAMS)
			break;	/* one stopped early: it failed */
		sleep_ms(100);
		if (now_s() >= next) {
			char when[32];

			snprintf(when, sizeof(when), "%.0f s", now_s() - t0);
			print_counters(when);
			next += PROGRESS_S;
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	for (k = 0; k < NSTREAMS; k++) {
		/* the loopbacks drain RING_S seconds of blocks */
		ret = join_within(S[k].th, RING_S + IO_TIMEOUT_MS / 1000 + 30);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s: the stream did not end", stream_names[k]);
		}
		S[k].started = false;
	}
	DIAG("soak: ran %.1f s", now_s() - t0);
	print_counters("end");

	for (k = 0; k < NSTREAMS; k++) {
		s = &S[k];
		EXPECT_EQ(0, s->fail[0]) {
			TH_LOG("%s: %s", stream_names[k], s->fail);
		}
		if (s->c.err[0])
			TH_LOG("%s: first error: %s", stream_names[k], s->c.err);
		EXPECT_EQ(0ULL, (unsigned long long)s->c.lost);
		EXPECT_EQ(0ULL, (unsigned long long)s->c.dup);
		EXPECT_EQ(0ULL, (unsigned long long)s->c.mismatch);
		EXPECT_EQ(s->ov0, s->ov1) {
			TH_LOG("%s: ADC overruns %lld -> %lld: lost scans",
			       stream_names[k], s->ov0, s->ov1);
		}
		/* at least a minute's worth of scans at half the rate */
		EXPECT_LE((uint64_t)minutes * 60 * SOAK_FREQ / 2, s->c.scans) {
			TH_LOG("%s: only %" PRIu64 " scans in %lld min",
			       stream_names[k], s->c.scans, minutes);
		}
		if (!s->has_dac || s->fail[0])
			continue;
		/* the DAC played every scan queued to it, the last one last */
		EXPECT_EQ(s->queued, s->dc.consumed) {
			TH_LOG("%s: the DAC played %lld scans, %lld were queued",
			       stream_names[k], s->dc.consumed, s->queued);
		}
		EXPECT_EQ(0, s->dc.mismatches);
		/* the ADC's data is what the DAC played */
		EXPECT_LE((uint64_t)s->queued, s->c.scans);
		for (c = 0; c < DAC_NUM_CH; c++) {
			EXPECT_EQ(ramp_value((uint64_t)s->queued - 1, c), s->last[c]) {
				TH_LOG("%s: out_voltage%d_raw is not the last scan queued (%lld)",
				       stream_names[k], c, s->queued - 1);
			}
		}
	}
}

/*
 * make soak runs SOAK_MINUTES: the harness's timeout of the test follows
 * (the one above is make check's).
 */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) soak_timeout(void)
{
	long long minutes = env_ll("SOAK_MINUTES", CHECK_MINUTES);

	if (minutes > CHECK_MINUTES)
		(*_soak_all_paths_object).timeout = (int)(minutes * 60 + 120);
}

TEST_HARNESS_MAIN
