// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: the search for the highest sustained rate of one point.
 *
 * A trial passes when its window had no overrun, no missing or corrupted
 * scan, and a backlog that did not grow (paths.c). The search:
 *
 * 1. probe: one short trial at the top rate. If it passes, that is the
 *    answer. Otherwise the rate at which the scans arrived in it, D, is
 *    what the path moved when asked for more than it could: start at
 *    0.9 D. A caller that knows a better start (the rate the other
 *    reader mode found on the same ring) skips the probe.
 * 2. bracket: from there, go down (x0.7 twice, then x0.5; or to 0.9 of
 *    what the failing trial delivered if that is lower) until a trial
 *    passes, or up (x1.25) until one fails.
 * 3. bisect geometrically between the highest pass and the lowest fail
 *    above it until they are within the resolution (10 %; 25 % quick).
 *
 * Rates below the floor, where the longest window holds fewer than 8
 * blocks, are not tried: the point then says "< floor".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static int try_rate(struct ring *r, const struct opts *o, struct point *p,
		    double rate, double window, struct trial *t)
{
	ring_trial(r, p->mode, rate, window, o->window_max, o->warmup, t);
	p->trials++;
	if (o->verbose)
		printf("  trial %2d: %11.0f Hz %s %8.3f s %10llu scans %9.1f MB/s lag %+7.2f ms (tol %.1f) ov %lld gaps %llu%s%s\n",
		       p->trials, rate, t->pass ? "pass" : "FAIL", t->secs,
		       (unsigned long long)t->scans,
		       t->secs > 0 ? t->scans * (double)r->adc->scan_bytes / t->secs / 1e6 : 0,
		       t->lag_growth * 1e3, t->lag_tol * 1e3, t->overruns,
		       (unsigned long long)t->gaps, t->pass ? "" : ": ",
		       t->pass ? "" : t->why);
	p->errors_all += t->errors;
	/* every scan missing was lost, and counted, by the disable */
	if (t->gaps > (uint64_t)(t->overruns_after > 0 ? t->overruns_after : 0))
		p->unexplained += t->gaps - t->overruns_after;
	if (t->pass && (!p->found || rate > p->best.rate)) {
		p->best = *t;
		p->found = true;
	}
	return t->pass;
}

static double delivered(const struct trial *t)
{
	return t->secs > 0 ? t->scans / t->secs : 0;
}

void search_point(struct ring *r, const struct opts *o, long long rate_min,
		  long long rate_max, double start, struct point *p)
{
	double top = (double)rate_max, lo = 0, hi = top, rate, floor_rate;
	double t0 = now();
	struct trial t;
	int down;

	floor_rate = ceil(8.0 * (r->block / r->adc->scan_bytes) / o->window_max);
	if (floor_rate < rate_min)
		floor_rate = rate_min;
	p->floor_rate = floor_rate;

	/* 1. probe, unless told where to start */
	if (start > 0) {
		rate = start;
	} else if (try_rate(r, o, p, top, o->probe_window, &t)) {
		p->at_top = true;
		goto out;
	} else {
		rate = 0.9 * delivered(&t);
		if (rate <= 0)	/* nothing came: start half-way (geometrically) */
			rate = sqrt(floor_rate * top);
	}
	rate = round(fmin(fmax(rate, floor_rate), top));

	/* 2. bracket: down until a pass (to the floor at most), or up */
	for (down = 0;;) {
		if (try_rate(r, o, p, rate, o->window, &t)) {
			lo = rate;
			/* a failure came down to here: bisect above */
			if (hi < top || rate * 1.25 >= hi ||
			    p->trials >= o->max_trials)
				break;
			rate = round(rate * 1.25);
		} else {
			hi = rate;
			if (lo > 0 || rate <= floor_rate)
				break;
			rate = fmin(rate * (++down <= 2 ? 0.7 : 0.5),
				    0.9 * delivered(&t));
			rate = round(fmax(rate, floor_rate));
		}
	}

	/* 3. bisect */
	while (lo > 0 && hi > lo * (1 + o->resolution) && p->trials < o->max_trials) {
		rate = round(sqrt(lo * hi));
		if (rate <= lo || rate >= hi)
			break;
		if (try_rate(r, o, p, rate, o->window, &t))
			lo = rate;
		else
			hi = rate;
	}
	if (!p->found)
		snprintf(p->note, sizeof(p->note), "< %lld Hz: %s",
			 (long long)floor_rate, t.why);
	else if (hi < top)
		p->fail_rate = hi;
out:
	p->seconds = now() - t0;
}
