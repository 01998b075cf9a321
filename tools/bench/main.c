// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: highest sustained rate, throughput and CPU cost of every
 * data path of the iio_dmabuf converters, over block sizes and counts,
 * and the machine's memset/memcpy limits, in one run.
 *
 *   iio_bench [--quick] [--paths fileio,seed,heap,udmabuf,loopback]
 *             [--modes fetch,all] [--sizes 4096,65536,...] [--counts 2,4,...]
 *             [--window S] [--no-limits] [--no-anchor] [--no-timestamp]
 *             [--kernel TEXT] [--verbose]
 *
 * The anchor point (4 blocks of 4096 scans) is added to the sweep unless
 * it is in it already or --no-anchor is given.
 *
 * --no-timestamp: the converters stream their 4 voltage channels without
 * in_timestamp: 8-byte scans instead of 16 (the layout of a DMA converter,
 * whose stream has no timestamp). Block sizes stay in bytes, so a block
 * holds twice the scans; the anchor (in scans) is 4 blocks of 32 KiB;
 * the reader's checks lose the timestamps (stream.c).
 *
 * Prints a line per point as it is measured, then the throughput tables,
 * the limits, the comparison with the published anchor and the summary
 * ratios. Every result is also printed as a CSV row prefixed with
 * "@@bench-csv: " (scripts/bench.sh extracts them from the guest's
 * console into out/bench/results.csv). Documentation/iio/performance.rst
 * describes the method.
 *
 * Exit status: 0; 1 if a trial saw corrupted data or scans missing that
 * no overrun accounts for (whatever the rate: a bug, not a speed); 2 if
 * the benchmark could not run.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CSV	"@@bench-csv: "
#define ANCHOR_SCANS	4096	/* iio_rwdev -b 4096 */
#define ANCHOR_BLOCKS	4	/* libiio 1.x's block count */
#define MAX_POINTS	512

const char *const path_names[NR_PATHS] = {
	[PATH_FILEIO] = "fileio",
	[PATH_SEED] = "seed",
	[PATH_HEAP] = "heap",
	[PATH_UDMABUF] = "udmabuf",
	[PATH_LOOP] = "loopback",
};

const char *const mode_names[NR_MODES] = {
	[MODE_FETCH] = "fetch",
	[MODE_ALL] = "all",
};

static const char *const adc_names[NR_PATHS] = {
	"bench_fileio", "bench_seed", "bench_heap", "bench_udmabuf",
	"bench_loop_adc",
};

struct cfg {
	size_t block;
	unsigned int nblocks;
	bool anchor;
};

static struct conv adcs[NR_PATHS], dac;
static struct dma_count dma_start[NR_PATHS + 1];
static struct point points[MAX_POINTS];
static int npoints;
static double limits[NR_LIMITS][MAX_SIZES];
static size_t scan_bytes;	/* of the run: opts.scan_bytes */

static void cleanup(void)
{
	int i;

	for (i = 0; i < NR_PATHS; i++)
		conv_destroy(&adcs[i]);
	conv_destroy(&dac);
	max_bytes_restore();
}

static void bad_usage(void)
{
	fprintf(stderr,
		"usage: iio_bench [--quick] [--paths LIST] [--modes LIST] [--sizes LIST]\n"
		"                 [--counts LIST] [--window S] [--no-limits] [--no-anchor]\n"
		"                 [--no-timestamp] [--kernel TEXT] [--verbose]\n");
	exit(2);
}

static unsigned int parse_names(const char *arg, const char *const *names,
				int n)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	unsigned int mask = 0;
	int i;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (i == n)
			die("unknown name '%s'", tok);
		mask |= 1u << i;
	}
	free(copy);
	return mask;
}

static int parse_numbers(const char *arg, unsigned long long *out, int max)
{
	char *end;
	int n = 0;

	while (*arg) {
		if (n == max)
			die("too many values in '%s'", arg);
		out[n++] = strtoull(arg, &end, 0);
		if (end == arg || (*end && *end != ','))
			die("bad number list '%s'", arg);
		arg = *end ? end + 1 : end;
	}
	return n;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const size_t full_sizes[] = {
		4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB, 16 * MIB,
	};
	static const unsigned int full_counts[] = { 2, 4, 8, 32 };
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "paths", required_argument, NULL, 'p' },
		{ "modes", required_argument, NULL, 'm' },
		{ "sizes", required_argument, NULL, 's' },
		{ "counts", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ "no-limits", no_argument, NULL, 'L' },
		{ "no-anchor", no_argument, NULL, 'A' },
		{ "no-timestamp", no_argument, NULL, 'T' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v[MAX_SIZES];
	const char *sizes = NULL, *counts = NULL;
	double window = 0;
	int c, i, n;

	memset(o, 0, sizeof(*o));
	o->paths = (1u << NR_PATHS) - 1;
	o->modes = (1u << NR_MODES) - 1;
	o->limits = true;
	o->anchor = true;
	o->timestamp = true;
	o->kernel = "";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'p':
			o->paths = parse_names(optarg, path_names, NR_PATHS);
			break;
		case 'm':
			o->modes = parse_names(optarg, mode_names, NR_MODES);
			break;
		case 's':
			sizes = optarg;
			break;
		case 'c':
			counts = optarg;
			break;
		case 'w':
			window = atof(optarg);
			break;
		case 'L':
			o->limits = false;
			break;
		case 'A':
			o->anchor = false;
			break;
		case 'T':
			o->timestamp = false;
			break;
		case 'k':
			o->kernel = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		default:
			bad_usage();
		}
	}
	if (optind != argc)
		bad_usage();
	o->scan_bytes = o->timestamp ? SCAN_BYTES_TS : SCAN_BYTES_NO_TS;
	scan_bytes = o->scan_bytes;

	if (o->quick) {
		/* a few sizes, one block count: every path, both modes */
		o->sizes[o->nsizes++] = 16 * KIB;
		o->sizes[o->nsizes++] = 64 * KIB;
		o->sizes[o->nsizes++] = MIB;
		o->counts[o->ncounts++] = ANCHOR_BLOCKS;
		o->window = 0.25;
		o->window_max = 2;
		o->probe_window = 0.15;
		o->warmup = 0.05;
		o->resolution = 0.25;
		o->max_trials = 7;
	} else {
		for (i = 0; i < (int)ARRAY_SIZE(full_sizes); i++)
			o->sizes[o->nsizes++] = full_sizes[i];
		for (i = 0; i < (int)ARRAY_SIZE(full_counts); i++)
			o->counts[o->ncounts++] = full_counts[i];
		o->window = 0.75;
		o->window_max = 4;
		o->probe_window = 0.25;
		o->warmup = 0.1;
		o->resolution = 0.10;
		o->max_trials = 12;
	}
	if (sizes) {
		n = parse_numbers(sizes, v, MAX_SIZES);
		for (o->nsizes = 0, i = 0; i < n; i++) {
			if (!v[i] || v[i] % o->scan_bytes)
				die("a block size must be a multiple of %zu bytes",
				    o->scan_bytes);
			o->sizes[o->nsizes++] = v[i];
		}
	}
	if (counts) {
		n = parse_numbers(counts, v, MAX_COUNTS);
		for (o->ncounts = 0, i = 0; i < n; i++) {
			if (v[i] < 1 || v[i] > MAX_BLOCKS)
				die("a block count is 1 to %d", MAX_BLOCKS);
			o->counts[o->ncounts++] = v[i];
		}
	}
	if (window > 0) {
		o->window = window;
		if (o->window_max < 2 * window)
			o->window_max = 2 * window;
	}
}

/* Commas would break the CSV. */
static const char *csv_text(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i]; i++)
		buf[i] = s[i] == ',' ? ';' : s[i];
	buf[i] = 0;
	return buf;
}

static double gib_of(const struct trial *t)
{
	return (double)t->scans * scan_bytes / GIB;
}

static double mb_s(const struct point *p)
{
	return p->found ? p->best.scans * (double)scan_bytes / p->best.secs / 1e6 : 0;
}

static double reader_per_gib(const struct point *p)
{
	return p->best.reader_cpu / gib_of(&p->best);
}

/* The engine's work: the kworker threads' CPU time. */
static double engine_per_gib(const struct point *p)
{
	return p->best.kworker_cpu / gib_of(&p->best);
}

/* Cross-check: everything but the reader, from /proc/stat's samples. */
static double others_per_gib(const struct point *p)
{
	return fmax(p->best.busy_cpu - p->best.reader_cpu, 0) / gib_of(&p->best);
}

static const char *status_of(const struct point *p)
{
	if (p->skipped)
		return "skipped";
	if (!p->found)
		return "below_floor";
	return p->at_top ? "top" : "ok";
}

static void csv_header(void)
{
	static const char *const cols[] = {
		"kind", "path", "mode", "block_bytes", "blocks", "anchor",
		"status", "rate_hz", "mb_s", "reader_cpu_s_per_gib",
		"engine_cpu_s_per_gib", "others_cpu_s_per_gib", "window_s",
		"trials", "search_s", "fail_rate_hz", "lag_ms", "dac_underruns",
		"errors_all", "unexplained_gaps", "note",
	};
	size_t i;

	printf(CSV);
	for (i = 0; i < ARRAY_SIZE(cols); i++)
		printf("%s%c", cols[i], i + 1 < ARRAY_SIZE(cols) ? ',' : '\n');
}

static void csv_meta(const char *key, const char *value)
{
	char buf[256];

	printf(CSV "meta,%s,,,,,,,,,,,,,,,,,,,%s\n", key,
	       csv_text(value, buf, sizeof(buf)));
}

static void print_point(const struct point *p)
{
	char sz[32], note[256];

	printf("%-8s %-5s %7s x %2u %c ", path_names[p->path],
	       mode_names[p->mode], size_str(p->block, sz, sizeof(sz)),
	       p->nblocks, p->anchor ? '*' : ' ');
	if (p->skipped)
		printf("  skipped: %s\n", p->note);
	else if (!p->found)
		printf("  %s [%d trials, %.0f s]\n", p->note, p->trials,
		       p->seconds);
	else
		printf("%10.0f Hz%s %8.1f MB/s  reader %7.3f  engine %7.3f s/GiB  [%d trials, %.0f s%s]\n",
		       p->best.rate, p->at_top ? " (top)" : "", mb_s(p),
		       reader_per_gib(p), engine_per_gib(p), p->trials,
		       p->seconds, p->errors_all || p->unexplained ?
		       ", DATA ERRORS" : "");
	if (p->found)
		printf(CSV "point,%s,%s,%zu,%u,%d,%s,%.0f,%.2f,%.5f,%.5f,%.5f,%.3f,%d,%.1f,%.0f,%.2f,%lld,%llu,%llu,%s\n",
		       path_names[p->path], mode_names[p->mode], p->block,
		       p->nblocks, p->anchor, status_of(p), p->best.rate,
		       mb_s(p), reader_per_gib(p), engine_per_gib(p),
		       others_per_gib(p), p->best.secs,
		       p->trials, p->seconds, p->fail_rate,
		       p->best.lag_growth * 1e3, p->best.dac_underruns,
		       (unsigned long long)p->errors_all,
		       (unsigned long long)p->unexplained,
		       csv_text(p->note, note, sizeof(note)));
	else
		printf(CSV "point,%s,%s,%zu,%u,%d,%s,,,,,,,%d,%.1f,,,,%llu,%llu,%s\n",
		       path_names[p->path], mode_names[p->mode], p->block,
		       p->nblocks, p->anchor, status_of(p), p->trials,
		       p->seconds, (unsigned long long)p->errors_all,
		       (unsigned long long)p->unexplained,
		       csv_text(p->note, note, sizeof(note)));
	fflush(stdout);
}

static void run_limits(const struct opts *o)
{
	double secs = o->quick ? 0.05 : 0.2;
	char sz[32];
	int i, l;

	printf("\nlimits (MB/s): memset/memcpy in userspace; kernel fill = read() of /dev/zero,\n"
	       "kernel copy = read() of a tmpfs file in the page cache\n");
	printf("%9s %12s %12s %12s %12s\n", "size", "user_memset",
	       "user_memcpy", "kernel_fill", "kernel_copy");
	for (i = 0; i < o->nsizes; i++) {
		printf("%9s", size_str(o->sizes[i], sz, sizeof(sz)));
		for (l = 0; l < NR_LIMITS; l++) {
			limits[l][i] = limit_measure(l, o->sizes[i], secs);
			printf(" %12.0f", limits[l][i] / 1e6);
		}
		printf("\n");
		for (l = 0; l < NR_LIMITS; l++)
			printf(CSV "limit,%s,,%zu,,,ok,,%.2f,,,,%.3f,,,,,,,,\n",
			       limit_names[l], o->sizes[i], limits[l][i] / 1e6,
			       secs);
	}
	fflush(stdout);
}

/* The point measured there, found or not (NULL: not run). */
static const struct point *any_point(enum path_id path, enum mode_id mode,
				     size_t block, unsigned int nblocks)
{
	int i;

	for (i = 0; i < npoints; i++) {
		const struct point *p = &points[i];

		if (p->path == path && p->mode == mode && p->block == block &&
		    p->nblocks == nblocks)
			return p;
	}
	return NULL;
}

/* The point measured there, if a rate was found. */
static const struct point *find_point(enum path_id path, enum mode_id mode,
				      size_t block, unsigned int nblocks)
{
	const struct point *p = any_point(path, mode, block, nblocks);

	return p && p->found ? p : NULL;
}

enum table_kind { TABLE_MB_S, TABLE_READER, TABLE_ENGINE };

static void print_table(const struct opts *o, enum table_kind kind,
			unsigned int count)
{
	static const char *const titles[] = {
		[TABLE_MB_S] = "throughput, MB/s",
		[TABLE_READER] = "reader CPU, s per GiB",
		[TABLE_ENGINE] = "engine (kworker) CPU, s per GiB",
	};
	char sz[32], head[32];
	int i, pa, m;

	printf("\n%s, %u blocks (f: fetch-only, a: read-all; skip: does not fit)\n%8s",
	       titles[kind], count, "block");
	for (pa = 0; pa < NR_PATHS; pa++)
		for (m = 0; m < NR_MODES; m++)
			if ((o->paths & (1u << pa)) && (o->modes & (1u << m))) {
				snprintf(head, sizeof(head), "%.7s/%c",
					 path_names[pa], mode_names[m][0]);
				printf(" %9s", head);
			}
	if (o->limits && kind == TABLE_MB_S)
		printf(" %9s", "memset");
	printf("\n");
	for (i = 0; i < o->nsizes; i++) {
		printf("%8s", size_str(o->sizes[i], sz, sizeof(sz)));
		for (pa = 0; pa < NR_PATHS; pa++)
			for (m = 0; m < NR_MODES; m++) {
				const struct point *p;

				if (!(o->paths & (1u << pa)) || !(o->modes & (1u << m)))
					continue;
				p = any_point(pa, m, o->sizes[i], count);
				if (!p || !p->found)
					printf(" %9s", !p ? "-" : p->skipped ?
					       "skip" : "<floor");
				else if (kind == TABLE_MB_S)
					printf(" %9.1f", mb_s(p));
				else if (kind == TABLE_READER)
					printf(" %9.3f", reader_per_gib(p));
				else
					printf(" %9.3f", engine_per_gib(p));
			}
		if (o->limits && kind == TABLE_MB_S)
			printf(" %9.0f", limits[LIMIT_USER_MEMSET][i] / 1e6);
		printf("\n");
	}
}

static void print_tables(const struct opts *o)
{
	int c, k;

	for (k = TABLE_MB_S; k <= TABLE_ENGINE; k++)
		for (c = 0; c < o->ncounts; c++)
			print_table(o, k, o->counts[c]);
}

struct stats {
	double v[MAX_POINTS];
	int n;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void stats_print(struct stats *s, const char *fmt_unit)
{
	double med;

	if (!s->n) {
		printf(" %-24s", "n/a");
		return;
	}
	qsort(s->v, s->n, sizeof(s->v[0]), cmp_double);
	med = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
	{
		char buf[64];

		snprintf(buf, sizeof(buf), "%.2f%s [%.2f-%.2f]", med, fmt_unit,
			 s->v[0], s->v[s->n - 1]);
		printf(" %-24s", buf);
	}
}

/* The ratios at blocks of 1 MiB and more, over the points both ran. */
static void print_summary(const struct opts *o)
{
	static const enum path_id dmabuf_paths[] = {
		PATH_SEED, PATH_HEAP, PATH_UDMABUF, PATH_LOOP,
	};
	const struct point *a, *b;
	struct stats s;
	int i, j, k, m;

	printf("\nsummary at blocks >= 1 MiB: median [min-max] over the block sizes and counts\n"
	       "measured on both sides (figures, not pass/fail)\n");
	printf("%-36s", "");
	for (k = 0; k < (int)ARRAY_SIZE(dmabuf_paths); k++)
		printf(" %-24s", path_names[dmabuf_paths[k]]);
	printf(" target\n");
	for (m = 0; m < NR_MODES; m++) {
		printf("%-36s", m == MODE_FETCH ? "DMABUF / fileio, fetch-only" :
		       "DMABUF / fileio, read-all");
		for (k = 0; k < (int)ARRAY_SIZE(dmabuf_paths); k++) {
			s.n = 0;
			for (i = 0; i < o->nsizes; i++)
				for (j = 0; j < o->ncounts; j++) {
					if (o->sizes[i] < MIB)
						continue;
					a = find_point(dmabuf_paths[k], m, o->sizes[i], o->counts[j]);
					b = find_point(PATH_FILEIO, m, o->sizes[i], o->counts[j]);
					if (a && b && mb_s(b) > 0)
						s.v[s.n++] = mb_s(a) / mb_s(b);
				}
			stats_print(&s, "x");
		}
		printf(" %s\n", m == MODE_FETCH ? ">= 5x" : ">= 1.5x");
	}

	printf("%-36s", "reader CPU/GiB, DMABUF / fileio (f)");
	for (k = 0; k < (int)ARRAY_SIZE(dmabuf_paths); k++) {
		s.n = 0;
		for (i = 0; i < o->nsizes; i++)
			for (j = 0; j < o->ncounts; j++) {
				if (o->sizes[i] < MIB)
					continue;
				a = find_point(dmabuf_paths[k], MODE_FETCH, o->sizes[i], o->counts[j]);
				b = find_point(PATH_FILEIO, MODE_FETCH, o->sizes[i], o->counts[j]);
				if (a && b && reader_per_gib(b) > 0)
					s.v[s.n++] = reader_per_gib(a) / reader_per_gib(b);
			}
		stats_print(&s, "");
	}
	printf(" <= 0.1\n");

	/* engine fill rate = 1 GiB / engine CPU s per GiB (seed, fetch-only) */
	printf("%-36s", "engine fill / user memset (seed, f)");
	s.n = 0;
	if (o->limits) {
		for (i = 0; i < o->nsizes; i++)
			for (j = 0; j < o->ncounts; j++) {
				double e;

				if (o->sizes[i] < MIB)
					continue;
				a = find_point(PATH_SEED, MODE_FETCH, o->sizes[i], o->counts[j]);
				if (!a)
					continue;
				e = engine_per_gib(a);
				if (e > 0 && limits[LIMIT_USER_MEMSET][i] > 0)
					s.v[s.n++] = GIB / e / limits[LIMIT_USER_MEMSET][i];
			}
	}
	stats_print(&s, "");
	printf(" %-24s %-24s %-24s >= 0.8\n", "", "", "");
	if (s.n) {
		struct stats f = { .n = 0 };

		for (i = 0; i < o->nsizes; i++)
			for (j = 0; j < o->ncounts; j++) {
				a = find_point(PATH_SEED, MODE_FETCH, o->sizes[i], o->counts[j]);
				if (a && o->sizes[i] >= MIB && engine_per_gib(a) > 0)
					f.v[f.n++] = GIB / engine_per_gib(a) / 1e6;
			}
		printf("%-36s", "  engine fill rate, MB/s per CPU");
		stats_print(&f, "");
		printf("\n");
	}
}

/* The published anchor: ZCU102 + AD9361, iio_rwdev -b 4096, 4 blocks. */
static void print_anchor(void)
{
	const struct point *f[NR_MODES], *d[NR_MODES], *s[NR_MODES];
	int m;

	printf("\nanchor set-up (4 blocks of 4096 scans = %zu KiB), MiB/s; published: ZCU102 + AD9361,\n"
	       "iio_rwdev -b 4096: fetch-only fileio 116, DMABUF 475 (4.1x); read-all 111 vs 114 (1.03x)\n",
	       ANCHOR_SCANS * scan_bytes / KIB);
	for (m = 0; m < NR_MODES; m++) {
		f[m] = find_point(PATH_FILEIO, m, ANCHOR_SCANS * scan_bytes, ANCHOR_BLOCKS);
		d[m] = find_point(PATH_HEAP, m, ANCHOR_SCANS * scan_bytes, ANCHOR_BLOCKS);
		s[m] = find_point(PATH_SEED, m, ANCHOR_SCANS * scan_bytes, ANCHOR_BLOCKS);
		printf("  %-10s fileio %7.1f   mainline + system heap (as libiio) %7.1f",
		       m == MODE_FETCH ? "fetch-only" : "read-all",
		       f[m] ? mb_s(f[m]) * 1e6 / MIB : 0,
		       d[m] ? mb_s(d[m]) * 1e6 / MIB : 0);
		if (f[m] && d[m] && mb_s(f[m]) > 0)
			printf(" (%.2fx)", mb_s(d[m]) / mb_s(f[m]));
		printf("   seed %7.1f", s[m] ? mb_s(s[m]) * 1e6 / MIB : 0);
		if (f[m] && s[m] && mb_s(f[m]) > 0)
			printf(" (%.2fx)", mb_s(s[m]) / mb_s(f[m]));
		printf("\n");
	}
}

/* The converters of the run: the ADCs of the paths, then the DAC. */
static struct conv *conv_of(int i)
{
	return i < NR_PATHS ? &adcs[i] : &dac;
}

/*
 * Which backend moves each converter's data (dmabuf_adc.rst, "Backend"),
 * printed and in a meta row, and the channels' counters at the start.
 */
static void print_backends(void)
{
	char buf[256] = "", one[64];
	int i;

	for (i = 0; i <= NR_PATHS; i++) {
		const struct conv *c = conv_of(i);

		if (!c->created)
			continue;
		snprintf(one, sizeof(one), "%s%s=%s", *buf ? " " : "",
			 c->name + strlen("bench_"), c->backend);
		strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
		if (conv_dma_count(c, &dma_start[i]))
			dma_start[i].copies = dma_start[i].bytes = -1;
	}
	printf("backends: %s\n", buf);
	csv_meta("backends", buf);
}

/*
 * What each converter's dmaengine channel copied during the run (from
 * its counters), so that a run on a machine with a DMA engine shows the
 * engine did move the data.
 */
static void print_dma_totals(void)
{
	char buf[256] = "", one[96];
	struct dma_count d;
	int i;

	for (i = 0; i <= NR_PATHS; i++) {
		const struct conv *c = conv_of(i);

		if (!c->created || !strcmp(c->backend, "cpu"))
			continue;
		if (dma_start[i].copies < 0 || conv_dma_count(c, &d))
			snprintf(one, sizeof(one), "%s%s=?", *buf ? " " : "",
				 c->backend);
		else
			snprintf(one, sizeof(one), "%s%s=%.1fGB/%lld",
				 *buf ? " " : "", c->backend,
				 (d.bytes - dma_start[i].bytes) / 1e9,
				 d.copies - dma_start[i].copies);
		strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
	}
	if (!*buf)
		return;
	printf("\nDMA channels, copied during the run (GB/copies): %s\n", buf);
	csv_meta("dma_copied", buf);
}

int main(int argc, char **argv)
{
	struct cfg cfgs[MAX_SIZES * MAX_COUNTS + 1];
	unsigned long long biggest = 0;
	long long rate_min, rate_max;
	int ncfg = 0, i, j, pa, m, ret, bad = 0;
	double t_start = now();
	bool anchored = false;
	struct utsname un;
	char buf[256], sz[32], scan[64];
	struct opts o;
	time_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(argc, argv, &o);
	for (i = 0; i < o.nsizes; i++)
		for (j = 0; j < o.ncounts; j++) {
			cfgs[ncfg].block = o.sizes[i];
			cfgs[ncfg].nblocks = o.counts[j];
			cfgs[ncfg].anchor = o.sizes[i] == ANCHOR_SCANS * scan_bytes &&
					    o.counts[j] == ANCHOR_BLOCKS;
			if (o.sizes[i] * o.counts[j] > biggest)
				biggest = o.sizes[i] * o.counts[j];
			anchored |= cfgs[ncfg].anchor;
			ncfg++;
		}
	if (o.anchor && !anchored) {
		cfgs[ncfg].block = ANCHOR_SCANS * scan_bytes;
		cfgs[ncfg].nblocks = ANCHOR_BLOCKS;
		cfgs[ncfg].anchor = true;
		if (cfgs[ncfg].block * ANCHOR_BLOCKS > biggest)
			biggest = cfgs[ncfg].block * ANCHOR_BLOCKS;
		ncfg++;
	}

	atexit(cleanup);
	for (pa = 0; pa < NR_PATHS; pa++) {
		if (!(o.paths & (1u << pa)))
			continue;
		ret = conv_create(&adcs[pa], adc_names[pa], false, o.timestamp);
		if (ret)
			die("creating the ADC %s: %s (is iio_dmabuf loaded?)",
			    adc_names[pa], strerror(-ret));
	}
	if (o.paths & (1u << PATH_LOOP)) {
		ret = conv_create(&dac, "bench_loop_dac", true, o.timestamp);
		if (ret)
			die("creating the DAC: %s", strerror(-ret));
	}
	for (pa = 0; pa < NR_PATHS && !adcs[pa].created; pa++)
		;
	if (pa == NR_PATHS)
		die("no path selected");
	ret = rate_range(&adcs[pa], &rate_min, &rate_max);
	if (ret)
		die("sampling_frequency_available: %s", strerror(-ret));
	/* twice the largest ring: blocks freed as a ring goes may linger */
	ret = max_bytes_raise(2 * biggest);
	if (ret)
		die("raising dmabuf_max_bytes: %s", strerror(-ret));

	uname(&un);
	t = time(NULL);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	printf("iio_bench: %s sweep, %s\n", o.quick ? "quick" : "full", buf);
	printf("kernel %s %s%s%s, %ld CPUs, %lld MiB available\n", un.release,
	       un.version, *o.kernel ? "; " : "", o.kernel,
	       sysconf(_SC_NPROCESSORS_ONLN), mem_available() >> 20);
	snprintf(scan, sizeof(scan), "%zu-byte scans (4 channels%s)",
		 o.scan_bytes, o.timestamp ? " + timestamp" : ", no timestamp");
	printf("rates %lld..%lld Hz (sampling_frequency_available), %s\n",
	       rate_min, rate_max, scan);
	printf("trial: warm-up %.2f s, window %.2f s (longer for 8 blocks, at most %.1f s), probe %.2f s;\n"
	       "search resolution %.0f %%; '*' marks the anchor set-up\n\n",
	       o.warmup, o.window, o.window_max, o.probe_window,
	       o.resolution * 100);
	csv_header();
	print_backends();
	csv_meta("date", buf);
	snprintf(buf, sizeof(buf), "%s %s %s", un.release, un.version, o.kernel);
	csv_meta("kernel", buf);
	snprintf(buf, sizeof(buf), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
	csv_meta("cpus", buf);
	snprintf(buf, sizeof(buf), "%lld", rate_max);
	csv_meta("rate_max_hz", buf);
	csv_meta("sweep", o.quick ? "quick" : "full");
	csv_meta("scan", scan);

	if (o.limits)
		run_limits(&o);
	printf("\n%-8s %-5s %7s   %2s   %13s %13s  %s\n", "path", "mode", "block",
	       "n", "rate", "throughput", "CPU per GiB moved");

	for (i = 0; i < ncfg; i++) {
		for (pa = 0; pa < NR_PATHS; pa++) {
			struct ring r;
			char why[192] = "";
			double start;

			if (!(o.paths & (1u << pa)))
				continue;
			ret = ring_setup(&r, pa, cfgs[i].block, cfgs[i].nblocks,
					 &adcs[pa], &dac, why, sizeof(why));
			start = 0;
			for (m = 0; m < NR_MODES; m++) {
				struct point *p;

				if (!(o.modes & (1u << m)))
					continue;
				if (npoints == MAX_POINTS)
					die("too many points");
				p = &points[npoints++];
				memset(p, 0, sizeof(*p));
				p->path = pa;
				p->mode = m;
				p->block = cfgs[i].block;
				p->nblocks = cfgs[i].nblocks;
				p->anchor = cfgs[i].anchor;
				if (ret) {
					p->skipped = true;
					snprintf(p->note, sizeof(p->note), "%s", why);
				} else {
					/*
					 * The other mode on the same ring
					 * starts where the first one ended.
					 */
					search_point(&r, &o, rate_min, rate_max,
						     start, p);
					if (p->found && !p->at_top)
						start = p->best.rate;
				}
				if (p->errors_all || p->unexplained)
					bad = 1;
				print_point(p);
			}
			if (!ret)
				ring_teardown(&r);
		}
	}

	print_tables(&o);
	print_anchor();
	print_summary(&o);
	print_dma_totals();
	printf("\niio_bench: %d points in %.0f s", npoints, now() - t_start);
	for (i = 0; i < npoints; i++)
		if (points[i].errors_all || points[i].unexplained)
			printf("; DATA ERRORS at %s/%s %s x %u",
			       path_names[points[i].path],
			       mode_names[points[i].mode],
			       size_str(points[i].block, sz, sizeof(sz)),
			       points[i].nblocks);
	printf("\n");
	return bad;
}
