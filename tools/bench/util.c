// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: time, CPU accounting, small file helpers.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * CPU time of this (single-threaded) process, user + system, s: the
 * scheduler's own count (getrusage() is the same figure, rounded to the
 * tick samples' split between user and system).
 */
double self_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "iio_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

int file_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, err;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	return (size_t)n == len ? 0 : -EIO;
}

/* Reads @path into @buf, NUL-terminated, trailing newlines stripped. */
int file_read(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return (int)n;
}

int file_read_ll(const char *path, long long *val)
{
	char buf[64], *end;
	int ret = file_read(path, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	errno = 0;
	*val = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

/*
 * Busy time of all CPUs (everything but idle and iowait), s, from
 * /proc/stat: tick samples, kept as a cross-check only.
 */
static double proc_stat_busy(void)
{
	unsigned long long v[10] = { 0 };
	char buf[512];
	double hz = sysconf(_SC_CLK_TCK);

	if (file_read("/proc/stat", buf, sizeof(buf)) < 0)
		return 0;
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		   &v[7]) < 8)
		return 0;
	/* user nice system idle iowait irq softirq steal */
	return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
}

/*
 * CPU time of each kworker thread now, into @s: its process CPU clock,
 * the scheduler's exact runtime. (Their utime and stime in /proc, like
 * /proc/stat, come from tick samples; work that the engine's timer
 * starts right after a tick is never sampled.)
 */
static void kworker_cpu(struct cpu_snap *s)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	s->nkw = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && s->nkw < MAX_KWORKERS) {
		char path[64], comm[32];
		struct timespec ts;
		clockid_t cid;
		pid_t pid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (file_read(path, comm, sizeof(comm)) < 0 ||
		    strncmp(comm, "kworker", 7))
			continue;
		if (clock_getcpuclockid(pid, &cid) ||
		    clock_gettime(cid, &ts))
			continue;
		s->kw[s->nkw].pid = pid;
		s->kw[s->nkw].cpu = ts.tv_sec + ts.tv_nsec / 1e9;
		s->nkw++;
	}
	closedir(d);
}

/*
 * The kworkers' CPU time from @a to @b, thread by thread: a kworker that
 * exits meanwhile (the pools shrink) must not take its past time out of
 * the sum, one that appears counts all its time. (The time one that
 * exited ran in the window is lost: kworkers exit after being idle.)
 */
double kworker_delta(const struct cpu_snap *a, const struct cpu_snap *b)
{
	double sum = 0;
	int i, j;

	for (j = 0; j < b->nkw; j++) {
		double before = 0;

		for (i = 0; i < a->nkw; i++) {
			if (a->kw[i].pid == b->kw[j].pid) {
				before = a->kw[i].cpu;
				break;
			}
		}
		if (b->kw[j].cpu > before)
			sum += b->kw[j].cpu - before;
	}
	return sum;
}

/*
 * The two ends of a measured window: the reader's and the kworkers' CPU
 * times, read next to each other at both ends.
 */
void cpu_snap_begin(struct cpu_snap *s)
{
	s->busy = proc_stat_busy();
	kworker_cpu(s);
	s->reader = self_cpu();
	s->t = now();
}

void cpu_snap_end(struct cpu_snap *s)
{
	s->t = now();
	s->reader = self_cpu();
	kworker_cpu(s);
	s->busy = proc_stat_busy();
}

/* MemAvailable, bytes (-1 if unknown). */
long long mem_available(void)
{
	char buf[4096], *p;
	long long kib;

	if (file_read("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "MemAvailable:");
	if (!p || sscanf(p, "MemAvailable: %lld", &kib) != 1)
		return -1;
	return kib * 1024;
}

const char *size_str(size_t bytes, char *buf, size_t len)
{
	if (bytes >= MIB && bytes % MIB == 0)
		snprintf(buf, len, "%zu MiB", bytes / MIB);
	else if (bytes >= KIB && bytes % KIB == 0)
		snprintf(buf, len, "%zu KiB", bytes / KIB);
	else
		snprintf(buf, len, "%zu B", bytes);
	return buf;
}
