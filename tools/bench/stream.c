// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: the reader's two modes.
 *
 * The ADC's ramp (Documentation/iio/dmabuf_adc.rst): channel c of scan n
 * holds (n + c) mod 2^16, and its timestamp is the enable's clock plus
 * floor(n * 10^9 / f) ns. Scans are numbered from 0 at the enable; an
 * overrun leaves a gap in the numbers.
 *
 * fetch-only: one scan per block, the first: its channel 0 must hold the
 *   number the reader expects, or one ahead of it (scans lost).
 * read-all: every sample: the four channels of every scan compared as one
 *   64-bit word with the expected one, and every timestamp after the
 *   previous one.
 *
 * The ramp gives a scan's number modulo 2^16 only. Where it jumps, the
 * timestamps since the last scan seen tell how many scans went by
 * (within one), which makes the count of missing scans exact however
 * many were lost; a timestamp that does not agree with the ramp, or a
 * scan that goes backwards, is an error.
 *
 * Without the timestamp (--no-timestamp: 8-byte scans, the 4 channels
 * only) both modes make the same checks of the channels, but where the
 * ramp jumps they count (v - expected) mod 2^16 scans missing. A loss of
 * a multiple of 65536 scans then cannot be seen (the ramp is back where
 * it was; in read-all too, as scans are lost between blocks), and a scan
 * repeated or out of order counts as a loss rather than as an error.
 * The trial still fails on any gap seen and on the module's overruns
 * (which count every loss), and read-all still checks every scan's
 * 64-bit word against the ramp.
 */
#include <math.h>
#include <string.h>

#include "bench.h"

#define LANE_LOW	0x7fff7fff7fff7fffULL
#define LANE_HIGH	0x8000800080008000ULL
#define LANE_ONE	0x0001000100010001ULL

/* Channels 0..3 of scan @n, packed as they are in memory (little endian). */
static uint64_t pattern_of(uint64_t n)
{
	uint64_t p = 0;
	int c;

	for (c = 3; c >= 0; c--)
		p = (p << 16) | ((n + c) & 0xffff);
	return p;
}

/* Adds 1 to each 16-bit lane, modulo 2^16 (no carry between lanes). */
static inline uint64_t pattern_next(uint64_t p)
{
	return ((p & LANE_LOW) + LANE_ONE) ^ (p & LANE_HIGH);
}

void stream_start(struct stream *s, double rate, bool ts)
{
	memset(s, 0, sizeof(*s));
	s->rate = rate;
	s->ts = ts;
	s->pattern = pattern_of(0);
	s->last_ts = INT64_MIN;
}

static void stream_error(struct stream *s, const char *what, uint64_t n,
			 unsigned int got)
{
	if (!s->errors++)
		snprintf(s->err, sizeof(s->err),
			 "%s at scan %llu (channel 0 holds %u)", what,
			 (unsigned long long)n, got);
}

/*
 * Scan number @expect holds ramp value @v and timestamp @ts, and @v is
 * not what that number holds: returns the scan's real number, counting
 * the scans skipped as missing, or @expect after an error. Without
 * timestamps (@ts unused), the jump modulo 2^16.
 */
static uint64_t stream_resync(struct stream *s, uint64_t expect, uint16_t v,
			      int64_t ts)
{
	uint16_t low;
	int64_t dn;
	double est;
	uint64_t n;

	if (!s->ts || s->last_ts == INT64_MIN) {
		/*
		 * no timestamps, or nothing before it: lost from the start
		 * (< 2^16 assumed)
		 */
		n = expect + (uint16_t)(v - (uint16_t)expect);
	} else {
		if (ts <= s->last_ts) {
			stream_error(s, "scan repeated or out of order", expect, v);
			return expect;
		}
		est = (double)(ts - s->last_ts) * s->rate / 1e9;
		low = (uint16_t)(v - (uint16_t)s->last_n);
		dn = low + (int64_t)round((est - low) / 65536.0) * 65536;
		if (fabs(dn - est) > 2 + est * 1e-6) {
			stream_error(s, "timestamp and ramp disagree", expect, v);
			return expect;
		}
		n = s->last_n + dn;
		if (n < expect) {
			stream_error(s, "scan repeated or out of order", expect, v);
			return expect;
		}
	}
	s->gaps += n - expect;
	return n;
}

void stream_fetch(struct stream *s, const void *data, size_t scans)
{
	const uint8_t *p = data;
	uint16_t v;
	int64_t ts;

	memcpy(&v, p, sizeof(v));
	if (s->ts)
		memcpy(&ts, p + 8, sizeof(ts));
	else
		ts = INT64_MIN;
	if (v != (uint16_t)s->next)
		s->next = stream_resync(s, s->next, v, ts);
	s->last_n = s->next;
	s->last_ts = ts;
	s->next += scans;
	s->scans += scans;
}

/*
 * The read-all loop, for scans of @stride bytes with (@ts_on) or without
 * the timestamp: inlined with constants, one loop of each kind.
 */
static inline __attribute__((always_inline)) void
stream_all_scans(struct stream *s, const uint8_t *p, size_t scans,
		 const bool ts_on, const size_t stride)
{
	uint64_t pat = s->pattern;
	int64_t last = s->last_ts;
	size_t i;

	for (i = 0; i < scans; i++, p += stride) {
		uint64_t lo;
		int64_t ts = INT64_MIN;

		memcpy(&lo, p, sizeof(lo));
		if (ts_on)
			memcpy(&ts, p + 8, sizeof(ts));
		if (__builtin_expect(lo != pat || (ts_on && ts <= last), 0)) {
			uint64_t n = s->next + i;

			s->last_ts = last;
			s->last_n = n - 1;
			if (lo != pattern_of(lo & 0xffff))
				stream_error(s, "channels disagree", n,
					     (unsigned int)(lo & 0xffff));
			else if (lo != pat)
				n = stream_resync(s, n, lo & 0xffff, ts);
			else
				stream_error(s, "timestamp not after the previous one",
					     n, (unsigned int)(lo & 0xffff));
			/* number the rest of the chunk from here */
			s->next = n - i;
			pat = pattern_of(n);
		}
		pat = pattern_next(pat);
		last = ts;
	}
	s->pattern = pat;
	s->last_ts = last;
}

void stream_all(struct stream *s, const void *data, size_t scans)
{
	if (s->ts)
		stream_all_scans(s, data, scans, true, SCAN_BYTES_TS);
	else
		stream_all_scans(s, data, scans, false, SCAN_BYTES_NO_TS);
	s->last_n = s->next + scans - 1;
	s->next += scans;
	s->scans += scans;
}
