/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iio_bench: the benchmark behind `make bench` (Documentation/iio/
 * performance.rst). Shared declarations of its parts:
 *
 *   main.c    options, the sweep, what is printed
 *   dev.c     the converters (configfs instances, sysfs attributes)
 *   paths.c   the five data paths: set-up, one timed trial, tear-down
 *   stream.c  the reader: the ramp checks of the two reader modes
 *   search.c  the search for the highest sustained rate
 *   limits.c  memset / memcpy bandwidth, userspace and kernel
 *   util.c    time, CPU accounting, files
 */
#ifndef IIO_BENCH_H
#define IIO_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * A scan: the 4 voltage channels (4 x s16), and the s64 timestamp unless
 * --no-timestamp (the layout of DMA converters, whose stream has none).
 */
#define SCAN_BYTES_TS	16	/* 4 x s16 + s64 timestamp */
#define SCAN_BYTES_NO_TS	8	/* 4 x s16 */
#define MAX_BLOCKS	32	/* blocks queued at once (dmabuf_api.rst, 9) */
#define MAX_SIZES	8
#define MAX_COUNTS	4
#define KIB		1024UL
#define MIB		(1024UL * 1024)
#define GIB		(1024.0 * 1024 * 1024)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum path_id {
	PATH_FILEIO,	/* read() on /dev/iio:deviceN */
	PATH_SEED,	/* ALLOC/ENQUEUE on /dev/iio:deviceN-dmabuf0 */
	PATH_HEAP,	/* mainline ATTACH/ENQUEUE, /dev/dma_heap/system */
	PATH_UDMABUF,	/* mainline ATTACH/ENQUEUE, /dev/udmabuf + memfd */
	PATH_LOOP,	/* seed ADC -> DAC zero-copy loopback */
	NR_PATHS
};

enum mode_id {
	MODE_FETCH,	/* look at one sample per block */
	MODE_ALL,	/* check every sample of every scan */
	NR_MODES
};

extern const char *const path_names[NR_PATHS];
extern const char *const mode_names[NR_MODES];

struct opts {
	bool quick;
	bool limits;
	unsigned int paths;		/* bit per enum path_id */
	unsigned int modes;		/* bit per enum mode_id */
	size_t sizes[MAX_SIZES];	/* block sizes, bytes */
	int nsizes;
	unsigned int counts[MAX_COUNTS];	/* blocks per ring */
	int ncounts;
	bool anchor;			/* add 4 blocks of 4096 scans */
	double window;			/* shortest trial window, s */
	double window_max;		/* longest trial window, s */
	double probe_window;		/* window of the probe at the top rate */
	double warmup;			/* before the window, s */
	double resolution;		/* search: stop when hi / lo <= 1 + this */
	int max_trials;			/* per point */
	bool verbose;			/* print every trial */
	bool timestamp;			/* in_timestamp enabled (default) */
	size_t scan_bytes;		/* SCAN_BYTES_TS or SCAN_BYTES_NO_TS */
	const char *kernel;		/* how the kernel is described */
};

/* ---- util.c ---- */

#define MAX_KWORKERS	1024

struct cpu_snap {
	double t;		/* CLOCK_MONOTONIC, s */
	double reader;		/* this process: user + system, s */
	double busy;		/* all CPUs, /proc/stat: all but idle, iowait */
	int nkw;		/* kworker threads seen */
	struct {
		pid_t pid;
		double cpu;	/* its CPU clock, s */
	} kw[MAX_KWORKERS];
};

double now(void);
double self_cpu(void);
void cpu_snap_begin(struct cpu_snap *s);
void cpu_snap_end(struct cpu_snap *s);
double kworker_delta(const struct cpu_snap *a, const struct cpu_snap *b);
int file_write(const char *path, const char *val);
int file_read(const char *path, char *buf, size_t size);
int file_read_ll(const char *path, long long *val);
long long mem_available(void);
const char *size_str(size_t bytes, char *buf, size_t len);
#ifndef __printf
#define __printf(a, b)	__attribute__((format(printf, a, b)))
#endif
#ifndef __noreturn
#define __noreturn	__attribute__((noreturn))
#endif

__printf(1, 2) __noreturn void die(const char *fmt, ...);

/* ---- dev.c ---- */

struct conv {
	char name[32];
	bool dac;
	bool created;
	int num;		/* iio:deviceN */
	char dir[64];		/* /sys/bus/iio/devices/iio:deviceN */
	char node[32];		/* /dev/iio:deviceN */
	char dmabuf_node[40];	/* /dev/iio:deviceN-dmabuf0 */
	char backend[32];	/* its backend: a dmaengine channel, "cpu" */
	bool timestamp;		/* in_timestamp enabled */
	size_t scan_bytes;	/* bytes per scan: SCAN_BYTES_TS or _NO_TS */
};

/* A dmaengine channel's counters (/sys/class/dma/<chan>/). */
struct dma_count {
	long long copies;	/* memcpy_count */
	long long bytes;	/* bytes_transferred */
};

int conv_create(struct conv *c, const char *name, bool dac, bool timestamp);
void conv_destroy(struct conv *c);
int conv_set(const struct conv *c, const char *attr, const char *val);
int conv_set_ll(const struct conv *c, const char *attr, long long val);
int conv_get_ll(const struct conv *c, const char *attr, long long *val);
int conv_enable(const struct conv *c, bool on);
int rate_range(const struct conv *c, long long *min, long long *max);
int conv_dma_count(const struct conv *c, struct dma_count *d);
int max_bytes_raise(unsigned long long bytes);
void max_bytes_restore(void);

/* ---- stream.c ---- */

struct stream {
	double rate;		/* Hz */
	bool ts;		/* scans carry the timestamp (16 bytes, else 8) */
	uint64_t next;		/* number of the next scan expected */
	uint64_t last_n;	/* number of the last scan looked at */
	uint64_t pattern;	/* its channels 0..3, packed (read-all) */
	int64_t last_ts;	/* its timestamp (INT64_MIN: none yet, or !ts) */
	uint64_t scans;		/* scans received */
	uint64_t gaps;		/* scans missing (lost to overruns) */
	uint64_t errors;	/* corrupted, repeated, reordered scans */
	char err[128];		/* the first error */
};

void stream_start(struct stream *s, double rate, bool ts);
void stream_fetch(struct stream *s, const void *data, size_t scans);
void stream_all(struct stream *s, const void *data, size_t scans);

/* ---- paths.c ---- */

struct ring {
	enum path_id path;
	size_t block;		/* bytes per block */
	unsigned int nblocks;
	struct conv *adc, *dac;
	int fd[MAX_BLOCKS];	/* DMABUF fds */
	int memfd[MAX_BLOCKS];	/* udmabuf's memfds */
	uint8_t *map[MAX_BLOCKS];
	int cdev;		/* the ADC's -dmabuf0 (seed, loopback) */
	int dac_cdev;		/* the DAC's -dmabuf0 (loopback) */
	int devfd;		/* /dev/iio:deviceN (fileio, mainline) */
	int bfd;		/* buffer fd (mainline) */
	uint8_t *buf;		/* read() buffer (fileio) */
	unsigned int head;	/* next block to complete */
	long long dac_max;	/* the DAC's top rate */
};

struct trial {
	double rate;		/* Hz asked */
	bool pass;
	char why[192];		/* why it did not pass */
	double secs;		/* window */
	uint64_t scans;		/* scans received in the window */
	uint64_t blocks;	/* blocks received in the window */
	double reader_cpu;	/* s, in the window */
	double busy_cpu;	/* s, all CPUs, in the window */
	double kworker_cpu;	/* s, in the window */
	double lag_growth;	/* s, over the window */
	double lag_tol;		/* s, allowed */
	long long overruns;	/* from the enable to the window's end */
	long long overruns_after;	/* from the enable to the disable */
	uint64_t gaps;		/* scans missing the reader saw */
	uint64_t errors;	/* corrupted scans, enable to window end */
	long long dac_mismatches, dac_underruns, dac_consumed;
	uint64_t total_scans;	/* received since the enable */
};

int ring_setup(struct ring *r, enum path_id path, size_t block,
	       unsigned int nblocks, struct conv *adc, struct conv *dac,
	       char *why, size_t whylen);
void ring_teardown(struct ring *r);
int ring_trial(struct ring *r, enum mode_id mode, double rate, double window,
	       double window_max, double warmup, struct trial *t);

/* ---- search.c ---- */

struct point {
	enum path_id path;
	enum mode_id mode;
	size_t block;
	unsigned int nblocks;
	bool anchor;
	bool skipped;
	char note[256];		/* why skipped, or a remark */
	bool found;		/* a rate passed */
	bool at_top;		/* the top rate passed */
	double floor_rate;	/* lowest rate the window can measure */
	double fail_rate;	/* lowest rate that failed above it, 0: none */
	struct trial best;	/* the highest passing trial */
	int trials;
	uint64_t errors_all;	/* corrupted scans over every trial */
	uint64_t unexplained;	/* gaps beyond the overruns, every trial */
	double seconds;		/* time the search took */
};

void search_point(struct ring *r, const struct opts *o, long long rate_min,
		  long long rate_max, double start, struct point *p);

/* ---- limits.c ---- */

enum limit_id {
	LIMIT_USER_MEMSET,
	LIMIT_USER_MEMCPY,
	LIMIT_KERNEL_FILL,	/* read() of /dev/zero: clear_user() */
	LIMIT_KERNEL_COPY,	/* read() of a tmpfs file: copy_to_user() */
	NR_LIMITS
};

extern const char *const limit_names[NR_LIMITS];

/* Bytes per second of @which at blocks of @size, over about @secs. */
double limit_measure(enum limit_id which, size_t size, double secs);

#endif /* IIO_BENCH_H */
