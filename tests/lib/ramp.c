// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' library: scan layouts, the ramp (checking what an ADC gives,
 * filling what a DAC gets), read() and write() with timeouts.
 */
#include "iio_test_util.h"

/* ------------------------------------------------------------------ */
/* Scan layout and ramp checking                                       */
/* ------------------------------------------------------------------ */

/* Little-endian fields of a scan */
uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

int64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* IIO rules: each element aligned to its size, scan padded to largest. */
void layout_init(struct scan_layout *l, unsigned int mask)
{
	size_t bytes = 0, largest = 0;
	int c;

	memset(l, 0, sizeof(*l));
	l->mask = mask;
	l->ts_off = -1;
	for (c = 0; c < ADC_NUM_CH; c++) {
		if (!(mask & ADC_CH(c)))
			continue;
		l->ch[l->nch] = c;
		l->off[l->nch] = (int)bytes;
		l->nch++;
		bytes += 2;
		largest = 2;
	}
	if (mask & ADC_TS) {
		bytes = (bytes + 7) & ~(size_t)7;
		l->ts_off = (int)bytes;
		bytes += 8;
		largest = 8;
	}
	if (largest)
		bytes = (bytes + largest - 1) / largest * largest;
	l->size = bytes;
}

void ramp_init(struct ramp_check *rc, unsigned int mask,
	       bool allow_gaps)
{
	memset(rc, 0, sizeof(*rc));
	layout_init(&rc->l, mask);
	rc->allow_gaps = allow_gaps;
}

static int ramp_fail(struct ramp_check *rc, const char *fmt, ...)
{
	va_list ap;

	if (!rc->failed) {
		va_start(ap, fmt);
		vsnprintf(rc->err, sizeof(rc->err), fmt, ap);
		va_end(ap);
		rc->failed = true;
	}
	return -EPROTO;
}

static int ramp_scan(struct ramp_check *rc, const uint8_t *s)
{
	uint16_t n16 = 0, exp16, v;
	int i;

	for (i = 0; i < rc->l.nch; i++) {
		v = get_le16(s + rc->l.off[i]);
		uint16_t m = (uint16_t)(v - rc->l.ch[i]);

		if (i == 0)
			n16 = m;
		else if (m != n16)
			return ramp_fail(rc,
				"scan #%" PRIu64 ": channel %d sample %u (n=%u) disagrees with channel %d (n=%u)",
				rc->scans, rc->l.ch[i], v, m, rc->l.ch[0], n16);
	}
	if (rc->scans == 0)
		rc->first_n = n16;
	exp16 = (uint16_t)rc->expect;
	if (rc->l.nch && n16 != exp16) {
		uint16_t delta = (uint16_t)(n16 - exp16);

		if (!rc->allow_gaps || delta >= 0x8000)
			return ramp_fail(rc,
				"scan #%" PRIu64 ": n=%u, expected %u (gap/mismatch of %u scans)",
				rc->scans, n16, exp16, delta);
		rc->gaps += delta;
		rc->gap_events++;
		rc->expect += delta;
	}
	if (rc->l.ts_off >= 0) {
		int64_t ts = get_le64(s + rc->l.ts_off);

		if (rc->scans == 0)
			rc->first_ts = ts;
		else if (ts <= rc->last_ts)
			return ramp_fail(rc,
				"scan #%" PRIu64 ": timestamp %" PRId64 " not after previous %" PRId64,
				rc->scans, ts, rc->last_ts);
		rc->last_ts = ts;
	}
	rc->expect++;
	rc->scans++;
	return 0;
}

/* Feed raw bytes read from the device; handles reads ending mid-scan. */
int ramp_feed(struct ramp_check *rc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t sz = rc->l.size, take;
	int ret;

	if (rc->failed)
		return -EPROTO;
	if (!sz)
		return ramp_fail(rc, "empty scan layout");
	if (rc->npartial) {
		take = sz - rc->npartial;
		if (take > len)
			take = len;
		memcpy(rc->partial + rc->npartial, p, take);
		rc->npartial += take;
		p += take;
		len -= take;
		if (rc->npartial < sz)
			return 0;
		rc->npartial = 0;
		ret = ramp_scan(rc, rc->partial);
		if (ret)
			return ret;
	}
	while (len >= sz) {
		ret = ramp_scan(rc, p);
		if (ret)
			return ret;
		p += sz;
		len -= sz;
	}
	if (len) {
		rc->partial_reads++;
		memcpy(rc->partial, p, len);
		rc->npartial = len;
	}
	return 0;
}

/* n (mod 2^16) of the scan at @scan, from the first enabled channel */
uint16_t ramp_n_of(const struct scan_layout *l, const void *scan)
{
	if (!l->nch)
		return 0;
	return (uint16_t)(get_le16((const uint8_t *)scan + l->off[0]) -
			  l->ch[0]);
}

/*
 * Make @rc expect the scan @scan next (ramp on the first enabled channel):
 * for checking a block on its own, where n need not follow the previous
 * block. Timestamps are still required to increase.
 */
void ramp_resync(struct ramp_check *rc, const void *scan)
{
	uint16_t n16 = ramp_n_of(&rc->l, scan);

	rc->expect += (uint16_t)(n16 - (uint16_t)rc->expect);
}

/*
 * Fill @nscans scans laid out as @l into @buf with the ramp: channel c of
 * scan n holds (n + c) mod 2^16, n = @first_n, @first_n + 1, ...; the
 * timestamp (if enabled) holds n; padding is zeroed.
 */
void ramp_fill(const struct scan_layout *l, void *buf,
	       uint64_t first_n, size_t nscans)
{
	uint8_t *p = buf;
	size_t s;
	int i;

	for (s = 0; s < nscans; s++, p += l->size) {
		uint64_t n = first_n + s;

		memset(p, 0, l->size);
		for (i = 0; i < l->nch; i++)
			put_le16(p + l->off[i], (uint16_t)(n + l->ch[i]));
		if (l->ts_off >= 0)
			put_le64(p + l->ts_off, n);
	}
}

/* The value channel @c holds in ramp scan @n, as out_voltageN_raw shows it */
long long ramp_value(uint64_t n, int c)
{
	return (int16_t)(uint16_t)(n + c);
}

/*
 * The sine waveform, exactly as documented (dmabuf_adc.rst): p = (n +
 * 250 c) mod 1000, h = p mod 500, d = h * 180000 / 500, x = d (180000 -
 * d), the code is +-(30000 * 4 x / (40500000000 - x)), negative for p >=
 * 500 (integer division truncating toward zero).
 */
int16_t sine_code(uint64_t n, int c)
{
	uint64_t p = (n + (uint64_t)c * 250) % 1000;
	int64_t sign = p < 500 ? 1 : -1;
	int64_t d = (int64_t)(p % 500) * 180000 / 500;
	int64_t x = d * (180000 - d);

	return (int16_t)(sign * 30000 * (4 * x) / (40500000000LL - x));
}

/* Channel @c of scan @n of the sine (@sine) or the ramp */
int16_t wave_code(bool sine, uint64_t n, int c)
{
	return sine ? sine_code(n, c) : (int16_t)ramp_value(n, c);
}

/* ------------------------------------------------------------------ */
/* read() and write()                                                  */
/* ------------------------------------------------------------------ */

/* poll() for POLLIN up to @timeout_ms; 1 ready, 0 timeout, -errno */
int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret;

	do {
		ret = poll(&pfd, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (pfd.revents & POLLIN)
		return 1;
	return -EIO;	/* POLLERR/POLLHUP/POLLNVAL without data */
}

/* poll then read; returns bytes, -ETIMEDOUT, or -errno. */
ssize_t read_timeout(int fd, void *buf, size_t len,
		     int timeout_ms)
{
	ssize_t n;
	int ret;

	ret = wait_readable(fd, timeout_ms);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ETIMEDOUT;
	do {
		n = read(fd, buf, len);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/*
 * Read and ramp-check until @rc->scans >= @want or @timeout_s elapses.
 * Returns 0, -ETIMEDOUT, -EPROTO (ramp error, see rc->err) or -errno.
 * @st may be NULL.
 */
int stream_read(int fd, struct ramp_check *rc, uint64_t want,
		double timeout_s, void *buf, size_t buflen,
		struct stream_stats *st)
{
	struct stream_stats dummy;
	double end, now;
	ssize_t n;
	uint64_t before;
	int ret;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	st->t_start = now_s();
	end = st->t_start + timeout_s;
	/* read whole scans only, so reads never need to split a scan */
	buflen -= buflen % rc->l.size;
	while (rc->scans < want) {
		now = now_s();
		if (now >= end)
			return -ETIMEDOUT;
		n = read_timeout(fd, buf, buflen, (int)((end - now) * 1000) + 1);
		if (n == -ETIMEDOUT || n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ENODATA;
		before = rc->scans;
		ret = ramp_feed(rc, buf, (size_t)n);
		st->t_last = now_s();
		st->reads++;
		st->bytes += n;
		if (!st->t_first) {
			st->t_first = st->t_last;
			st->first_read_scans = rc->scans - before;
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* SIGALRM handler that only interrupts a blocking system call. */
static void util_alarm_noop(int sig)
{
	(void)sig;
}

/*
 * Blocking write() of all @len bytes, interrupted (SIGALRM, no SA_RESTART)
 * after @timeout_ms. Returns @len, -ETIMEDOUT, or -errno of a failing
 * write(). Uses SIGALRM and ITIMER_REAL of the calling process.
 */
ssize_t write_all_timeout(int fd, const void *buf, size_t len,
			  int timeout_ms)
{
	struct sigaction sa, old;
	struct itimerval it, off;
	const uint8_t *p = buf;
	size_t done = 0;
	ssize_t n, ret = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = util_alarm_noop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, &old))
		return -errno;
	memset(&it, 0, sizeof(it));
	memset(&off, 0, sizeof(off));
	it.it_value.tv_sec = timeout_ms / 1000;
	it.it_value.tv_usec = (timeout_ms % 1000) * 1000;
	if (setitimer(ITIMER_REAL, &it, NULL)) {
		ret = -errno;
		sigaction(SIGALRM, &old, NULL);
		return ret;
	}
	while (done < len) {
		n = write(fd, p + done, len - done);
		if (n < 0) {
			ret = errno == EINTR ? -ETIMEDOUT : -errno;
			break;
		}
		if (n == 0) {
			ret = -EIO;
			break;
		}
		done += (size_t)n;
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	return ret ? ret : (ssize_t)done;
}
