/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Common helpers for the iio_dmabuf userspace tests.
 *
 * All helpers return 0 (or a non-negative value) on success and -errno on
 * failure, so tests can write ASSERT_EQ(0, helper(...)) and check exact
 * error codes with ASSERT_EQ(-EINVAL, helper(...)).
 *
 * Include this after kselftest_harness.h.
 */
#ifndef IIO_TEST_UTIL_H
#define IIO_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/iio_dmabuf.h>
#include <linux/sync_file.h>

#define IIO_DEV_DIR	"/sys/bus/iio/devices"
#define CFS_ROOT	"/sys/kernel/config"
#define CFS_IIO_DEVS	CFS_ROOT "/iio/devices"
#define CFS_TYPE_DIR	CFS_IIO_DEVS "/dmabuf_adc"
#define MODULE_NAME	"iio_dmabuf"
#define MODULE_PATH	"/modules/iio_dmabuf.ko"
#define MODULE_SYSFS	"/sys/module/" MODULE_NAME

/* Spec constants */
#define ADC_NUM_CH		4
#define ADC_TS_INDEX		4
#define ADC_DEFAULT_FREQ	10000
#define ADC_MAX_FREQ		1000000
#define ADC_DEFAULT_LENGTH	4096
#define ADC_SCALE_STR		"0.305175781"

/* Channel masks: bit c = voltage channel c, ADC_TS = timestamp */
#define ADC_CH(c)	(1u << (c))
#define ADC_CH_ALL	0x0fu
#define ADC_TS		0x10u
#define ADC_ALL_TS	(ADC_CH_ALL | ADC_TS)

/* Print a "# ..." diagnostic line on stdout (TAP comment), flushed. */
#define DIAG(fmt, ...) do {						\
	printf("# " fmt "\n", ##__VA_ARGS__);				\
	fflush(stdout);							\
} while (0)

/* Helper-internal failure log (stderr, TAP comment syntax). */
#define UTIL_LOG(fmt, ...) do {						\
	fprintf(stderr, "# util: " fmt "\n", ##__VA_ARGS__);		\
} while (0)

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Raw sysfs access                                                    */
/* ------------------------------------------------------------------ */

/*
 * Write @val (exactly these bytes, in one write()) to @path.
 * Returns 0 or -errno (from open() or write()).
 */
static inline int sysfs_write(const char *path, const char *val)
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
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

/*
 * Read @path into @buf (NUL terminated, trailing newline stripped).
 * Returns the string length or -errno.
 */
static inline int sysfs_read(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd, err;

	if (size == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - total);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			close(fd);
			return -err;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	while (total > 0 && buf[total - 1] == '\n')
		buf[--total] = '\0';
	return (int)total;
}

/* Parse a complete decimal integer (optional surrounding whitespace). */
static inline int parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -errno;
	if (end == s)
		return -EINVAL;
	while (*end == ' ' || *end == '\n' || *end == '\t')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static inline int sysfs_read_ll(const char *path, long long *val)
{
	char buf[128];
	int ret;

	ret = sysfs_read(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	return parse_ll(buf, val);
}

static inline int sysfs_write_ll(const char *path, long long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", val);
	return sysfs_write(path, buf);
}

static inline bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static inline bool dir_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------------ */
/* Device discovery                                                    */
/* ------------------------------------------------------------------ */

/*
 * Return N for the /sys/bus/iio/devices/iio:deviceN whose name is @name,
 * -ENOENT if none, -EEXIST if more than one device has that name.
 */
static inline int iio_find_device(const char *name)
{
	char path[PATH_MAX], buf[256];
	struct dirent *de;
	int found = -ENOENT, n;
	DIR *d;

	d = opendir(IIO_DEV_DIR);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "iio:device%d", &n) != 1)
			continue;
		snprintf(path, sizeof(path), IIO_DEV_DIR "/%s/name", de->d_name);
		if (sysfs_read(path, buf, sizeof(buf)) < 0)
			continue;
		if (strcmp(buf, name))
			continue;
		if (found >= 0) {
			found = -EEXIST;
			break;
		}
		found = n;
	}
	closedir(d);
	return found;
}

/* Wait up to @ms for the device to appear (>= 0) / disappear (-ENOENT). */
static inline int iio_wait_device(const char *name, bool present, int ms)
{
	double end = now_s() + ms / 1000.0;
	int n;

	for (;;) {
		n = iio_find_device(name);
		if (present ? n >= 0 : n == -ENOENT)
			return n;
		if (now_s() > end)
			return present ? n : (n >= 0 ? -EEXIST : n);
		sleep_ms(10);
	}
}

/* ------------------------------------------------------------------ */
/* Instances                                                           */
/* ------------------------------------------------------------------ */

struct adc {
	char name[64];
	char cfs[PATH_MAX];	/* configfs directory */
	char dir[PATH_MAX];	/* /sys/bus/iio/devices/iio:deviceN */
	char chrdev[64];	/* /dev/iio:deviceN */
	int devnum;		/* -1 when not created */
};

static inline int adc_mkdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_TYPE_DIR "/%s", name);
	return mkdir(path, 0755) ? -errno : 0;
}

static inline int adc_rmdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_TYPE_DIR "/%s", name);
	return rmdir(path) ? -errno : 0;
}

/* Fill @a for an already existing device called @name. */
static inline int adc_attach(struct adc *a, const char *name)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->devnum = -1;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->cfs, sizeof(a->cfs), CFS_TYPE_DIR "/%s", name);
	n = iio_wait_device(name, true, 2000);
	if (n < 0)
		return n;
	a->devnum = n;
	snprintf(a->dir, sizeof(a->dir), IIO_DEV_DIR "/iio:device%d", n);
	snprintf(a->chrdev, sizeof(a->chrdev), "/dev/iio:device%d", n);
	return 0;
}

/* mkdir the configfs instance @name and locate its IIO device. */
static inline int adc_create(struct adc *a, const char *name)
{
	int ret;

	memset(a, 0, sizeof(*a));
	a->devnum = -1;
	ret = adc_mkdir(name);
	if (ret) {
		UTIL_LOG("mkdir %s/%s: %s", CFS_TYPE_DIR, name, strerror(-ret));
		return ret;
	}
	ret = adc_attach(a, name);
	if (ret) {
		UTIL_LOG("device '%s' not found after mkdir: %s", name,
			 strerror(-ret));
		adc_rmdir(name);
		a->devnum = -1;
	}
	return ret;
}

/* Create an instance with a name unique to this process. */
static inline int adc_create_unique(struct adc *a, const char *prefix)
{
	static unsigned int seq;
	char name[64];

	snprintf(name, sizeof(name), "%s%d_%u", prefix, (int)getpid(), seq++);
	return adc_create(a, name);
}

static inline int adc_path(const struct adc *a, const char *attr,
			   char *path, size_t size)
{
	int n = snprintf(path, size, "%s/%s", a->dir, attr);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

static inline bool adc_has(const struct adc *a, const char *attr)
{
	char path[PATH_MAX];

	return !adc_path(a, attr, path, sizeof(path)) && path_exists(path);
}

static inline int adc_write(const struct adc *a, const char *attr,
			    const char *val)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_write(path, val);
}

static inline int adc_read(const struct adc *a, const char *attr,
			   char *buf, size_t size)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read(path, buf, size);
}

static inline int adc_write_ll(const struct adc *a, const char *attr,
			       long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return adc_write(a, attr, buf);
}

static inline int adc_read_ll(const struct adc *a, const char *attr,
			      long long *v)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read_ll(path, v);
}

/* Like adc_write() but logs failures (for setup steps). */
static inline int adc_set(const struct adc *a, const char *attr,
			  const char *val)
{
	int ret = adc_write(a, attr, val);

	if (ret)
		UTIL_LOG("write '%s' to %s/%s: %s", val, a->dir, attr,
			 strerror(-ret));
	return ret;
}

static inline int adc_set_ll(const struct adc *a, const char *attr,
			     long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return adc_set(a, attr, buf);
}

static inline int adc_buffer_disable(const struct adc *a)
{
	return adc_write(a, "buffer0/enable", "0");
}

static inline int adc_buffer_enable(const struct adc *a)
{
	return adc_set(a, "buffer0/enable", "1");
}

/* Disable the buffer (ignoring errors) and rmdir the instance. */
static inline int adc_destroy(struct adc *a)
{
	int ret;

	if (a->devnum < 0 || !a->name[0])
		return 0;
	adc_buffer_disable(a);
	ret = adc_rmdir(a->name);
	if (ret && ret != -ENOENT)
		UTIL_LOG("rmdir %s: %s", a->cfs, strerror(-ret));
	a->devnum = -1;
	return ret == -ENOENT ? 0 : ret;
}

/* Enable exactly the channels in @mask (ADC_CH(c) / ADC_TS). */
static inline int adc_set_channels(const struct adc *a, unsigned int mask)
{
	char attr[64];
	int c, ret;

	for (c = 0; c < ADC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "buffer0/in_voltage%d_en", c);
		ret = adc_set(a, attr, (mask & ADC_CH(c)) ? "1" : "0");
		if (ret)
			return ret;
	}
	return adc_set(a, "buffer0/in_timestamp_en",
		       (mask & ADC_TS) ? "1" : "0");
}

/*
 * Disable the buffer and configure it: channels @mask, then @freq,
 * @length and @watermark (each skipped when 0).
 */
static inline int adc_configure(const struct adc *a, unsigned int mask,
				long long freq, long long length,
				long long watermark)
{
	int ret;

	adc_buffer_disable(a);
	ret = adc_set_channels(a, mask);
	if (!ret && freq)
		ret = adc_set_ll(a, "sampling_frequency", freq);
	if (!ret && watermark)	/* lower first so a shorter length fits */
		ret = adc_set(a, "buffer0/watermark", "1");
	if (!ret && length)
		ret = adc_set_ll(a, "buffer0/length", length);
	if (!ret && watermark)
		ret = adc_set_ll(a, "buffer0/watermark", watermark);
	return ret;
}

/* adc_configure() and enable the buffer. */
static inline int adc_start(const struct adc *a, unsigned int mask,
			    long long freq, long long length,
			    long long watermark)
{
	int ret = adc_configure(a, mask, freq, length, watermark);

	return ret ? ret : adc_buffer_enable(a);
}

/*
 * Open the character device. If devtmpfs did not create the node, make
 * one from the "dev" attribute.
 */
static inline int adc_open(const struct adc *a, int flags)
{
	char buf[32];
	unsigned int maj, min;
	int fd;

	fd = open(a->chrdev, flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (adc_read(a, "dev", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -ENOENT;
	if (mknod(a->chrdev, S_IFCHR | 0600, makedev(maj, min)) &&
	    errno != EEXIST)
		return -errno;
	fd = open(a->chrdev, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* ------------------------------------------------------------------ */
/* Scan layout and ramp checking                                       */
/* ------------------------------------------------------------------ */

struct scan_layout {
	unsigned int mask;
	int nch;		/* enabled voltage channels */
	int ch[ADC_NUM_CH];	/* channel numbers in index order */
	int off[ADC_NUM_CH];	/* byte offset of each */
	int ts_off;		/* -1 when no timestamp */
	size_t size;		/* bytes per scan */
};

/* IIO rules: each element aligned to its size, scan padded to largest. */
static inline void layout_init(struct scan_layout *l, unsigned int mask)
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

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline int64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

struct ramp_check {
	struct scan_layout l;
	bool allow_gaps;	/* count gaps instead of failing on them */
	bool failed;
	char err[256];
	uint64_t scans;		/* scans checked */
	uint64_t expect;	/* next expected scan number n */
	uint16_t first_n;	/* n (mod 65536) of the first scan seen */
	uint64_t gaps;		/* scans missing (allow_gaps) */
	uint64_t gap_events;
	int64_t first_ts, last_ts;
	uint8_t partial[64];
	size_t npartial;
	uint64_t partial_reads;	/* reads that ended mid-scan */
};

static inline void ramp_init(struct ramp_check *rc, unsigned int mask,
			     bool allow_gaps)
{
	memset(rc, 0, sizeof(*rc));
	layout_init(&rc->l, mask);
	rc->allow_gaps = allow_gaps;
}

static inline int ramp_fail(struct ramp_check *rc, const char *fmt, ...)
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

static inline int ramp_scan(struct ramp_check *rc, const uint8_t *s)
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
static inline int ramp_feed(struct ramp_check *rc, const void *buf, size_t len)
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

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* poll() for POLLIN up to @timeout_ms; 1 ready, 0 timeout, -errno */
static inline int wait_readable(int fd, int timeout_ms)
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
static inline ssize_t read_timeout(int fd, void *buf, size_t len,
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

struct stream_stats {
	uint64_t bytes;
	uint64_t reads;
	uint64_t first_read_scans;	/* scans in the first non-empty read */
	double t_start;			/* when stream_read() was called */
	double t_first;			/* first non-empty read returned */
	double t_last;			/* last read returned */
};

/*
 * Read and ramp-check until @rc->scans >= @want or @timeout_s elapses.
 * Returns 0, -ETIMEDOUT, -EPROTO (ramp error, see rc->err) or -errno.
 * @st may be NULL.
 */
static inline int stream_read(int fd, struct ramp_check *rc, uint64_t want,
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

/* ------------------------------------------------------------------ */
/* Module handling                                                     */
/* ------------------------------------------------------------------ */

static inline bool module_loaded(void)
{
	return dir_exists(MODULE_SYSFS);
}

/* delete_module(2); returns 0 or -errno */
static inline int module_unload(void)
{
	return syscall(SYS_delete_module, MODULE_NAME, O_NONBLOCK) ? -errno : 0;
}

/* finit_module(2) of MODULE_PATH; returns 0 or -errno */
static inline int module_load(void)
{
	int fd, ret, err;

	fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0);
	err = errno;
	close(fd);
	return ret ? -err : 0;
}

/* Load the module if it is not loaded. */
static inline int module_ensure_loaded(void)
{
	int ret;

	if (module_loaded())
		return 0;
	ret = module_load();
	if (ret == -EEXIST)
		ret = 0;
	if (ret)
		UTIL_LOG("loading %s: %s", MODULE_PATH, strerror(-ret));
	return ret;
}

/* Names of instances present in configfs; returns the count or -errno. */
static inline int cfs_list(char names[][64], int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(CFS_TYPE_DIR);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char p[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), CFS_TYPE_DIR "/%s", de->d_name);
		if (!dir_exists(p))
			continue;
		if (n < max)
			snprintf(names[n], 64, "%.63s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ */
/* Running helper programs                                             */
/* ------------------------------------------------------------------ */

/* Directory holding this executable (e.g. /tests), without trailing / */
static inline int self_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/*
 * Run @argv with stdout+stderr captured into @out (NUL terminated,
 * truncated to @size - 1). Kills it after @timeout_s.
 * Returns 0 and the wait status in @status, or -errno / -ETIMEDOUT.
 */
static inline int run_capture(char *const argv[], char *out, size_t size,
			      int timeout_s, int *status)
{
	double end = now_s() + timeout_s;
	size_t used = 0;
	int pfd[2], ret = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		double left = end - now_s();
		int r;
		ssize_t n;

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		r = wait_readable(pfd[0], (int)(left * 1000) + 1);
		if (r == 0)
			continue;
		n = read(pfd[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EOF (or POLLHUP) */
		if (used < size - 1) {
			size_t c = (size_t)n;

			if (c > size - 1 - used)
				c = size - 1 - used;
			memcpy(out + used, tmp, c);
			used += c;
		}
	}
	out[used] = '\0';
	close(pfd[0]);
	if (ret == -ETIMEDOUT)
		kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return ret;
}

/* ------------------------------------------------------------------ */
/* DMABUF interface (include/uapi/linux/iio_dmabuf.h)                  */
/* ------------------------------------------------------------------ */

#define DMABUF_PARAM_MAX_BYTES	MODULE_SYSFS "/parameters/dmabuf_max_bytes"
#define DMABUF_MAX_BLOCK_SIZE	(16ULL << 20)	/* largest single ALLOC */
#define DMABUF_DEFAULT_MAX_BYTES (64ULL << 20)	/* dmabuf_max_bytes default */
#define DMABUF_MAX_QUEUED	32		/* blocks queued at once */

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Name of the DMABUF char device of buffer0: "iio:deviceN-dmabuf0" */
static inline void adc_dmabuf_name(const struct adc *a, char *buf,
				   size_t size)
{
	snprintf(buf, size, "iio:device%d-dmabuf0", a->devnum);
}

/* Path of the DMABUF char device of buffer0: /dev/iio:deviceN-dmabuf0 */
static inline void adc_dmabuf_path(const struct adc *a, char *buf,
				   size_t size)
{
	snprintf(buf, size, "/dev/iio:device%d-dmabuf0", a->devnum);
}

/* Open the DMABUF char device of buffer0 (O_CLOEXEC added). fd or -errno */
static inline int adc_dmabuf_open(const struct adc *a, int flags)
{
	char path[64];
	int fd;

	adc_dmabuf_path(a, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* IIO_BUFFER_DMABUF_ALLOC_IOCTL with an explicit resv; fd or -errno */
static inline int dmabuf_alloc_resv(int cfd, uint64_t size, uint64_t resv)
{
	struct iio_dmabuf_alloc_req req = { .size = size, .resv = resv };
	int ret;

	ret = ioctl(cfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
	return ret >= 0 ? ret : -errno;
}

/* Allocate a DMABUF of @size bytes on the char device @cfd; fd or -errno */
static inline int dmabuf_alloc(int cfd, uint64_t size)
{
	return dmabuf_alloc_resv(cfd, size, 0);
}

/* ENQUEUE with a given ioctl number (ENQUEUE or its SEED alias); 0/-errno */
static inline int dmabuf_enqueue_cmd(int cfd, unsigned long cmd, uint32_t fd,
				     uint32_t flags, uint64_t bytes_used)
{
	struct iio_dmabuf req = {
		.fd = fd, .flags = flags, .bytes_used = bytes_used,
	};

	return ioctl(cfd, cmd, &req) ? -errno : 0;
}

static inline int dmabuf_enqueue(int cfd, int fd, uint64_t bytes_used)
{
	return dmabuf_enqueue_cmd(cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				  (uint32_t)fd, 0, bytes_used);
}

/* DMA_BUF_IOCTL_SYNC with @flags, retried on EINTR/EAGAIN; 0/-errno */
static inline int dmabuf_sync(int dfd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };
	int ret;

	do {
		ret = ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync);
	} while (ret && (errno == EINTR || errno == EAGAIN));
	return ret ? -errno : 0;
}

static inline int dmabuf_sync_start(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
}

static inline int dmabuf_sync_end(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
}

/* poll() @fd for @events; 1 when any of them is set, 0 timeout, -errno */
static inline int poll_events(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	double end = now_s() + timeout_ms / 1000.0;
	int ret;

	for (;;) {
		ret = poll(&pfd, 1, timeout_ms);
		if (ret >= 0 || errno != EINTR)
			break;
		timeout_ms = (int)((end - now_s()) * 1000);
		if (timeout_ms < 0)
			timeout_ms = 0;
	}
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (pfd.revents & events)
		return 1;
	return -EIO;
}

/* DMA_BUF_IOCTL_EXPORT_SYNC_FILE; the sync_file fd or -errno */
static inline int dmabuf_export_sync_file(int dfd, uint32_t flags)
{
	struct dma_buf_export_sync_file req = { .flags = flags, .fd = -1 };

	if (ioctl(dfd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &req))
		return -errno;
	return req.fd;
}

/*
 * SYNC_IOC_FILE_INFO: @status gets 1 (signalled OK), 0 (active) or a
 * negative errno (signalled with an error). Returns 0 or -errno.
 */
static inline int sync_file_status(int sfd, int *status)
{
	struct sync_file_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(sfd, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	*status = info.status;
	return 0;
}

/*
 * Wait up to @timeout_ms for the sync_file @sfd to signal (POLLIN), then
 * return its status through @status. Returns 0, -ETIMEDOUT or -errno.
 */
static inline int sync_file_wait(int sfd, int timeout_ms, int *status)
{
	int ret = poll_events(sfd, POLLIN, timeout_ms);

	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ETIMEDOUT;
	return sync_file_status(sfd, status);
}

/* Size of a DMABUF (lseek to its end); bytes or -errno */
static inline long long dmabuf_size(int dfd)
{
	off_t end = lseek(dfd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	lseek(dfd, 0, SEEK_SET);
	return (long long)end;
}

static inline int dmabuf_max_bytes_get(long long *v)
{
	return sysfs_read_ll(DMABUF_PARAM_MAX_BYTES, v);
}

static inline int dmabuf_max_bytes_set(long long v)
{
	return sysfs_write_ll(DMABUF_PARAM_MAX_BYTES, v);
}

/*
 * A DMABUF block: its fd, its mapping (NULL if unmapped) and its size
 * (the ALLOC size rounded up to a page, all of it mapped).
 */
struct dmabuf_block {
	int fd;
	uint8_t *map;
	size_t size;
};

static inline void dmabuf_block_init(struct dmabuf_block *b)
{
	b->fd = -1;
	b->map = NULL;
	b->size = 0;
}

/* ALLOC @size bytes on @cfd into @b and, if @map, mmap all of it RW. */
static inline int dmabuf_block_alloc(struct dmabuf_block *b, int cfd,
				     size_t size, bool map)
{
	void *p;
	int ret;

	dmabuf_block_init(b);
	ret = dmabuf_alloc(cfd, size);
	if (ret < 0)
		return ret;
	b->fd = ret;
	size = (size + page_size() - 1) / page_size() * page_size();
	b->size = size;
	if (!map)
		return 0;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(b->fd);
		b->fd = -1;
		return ret;
	}
	b->map = p;
	return 0;
}

/* Close and unmap (whatever is still open / mapped). */
static inline void dmabuf_block_free(struct dmabuf_block *b)
{
	if (b->map)
		munmap(b->map, b->size);
	if (b->fd >= 0)
		close(b->fd);
	dmabuf_block_init(b);
}

/* n (mod 2^16) of the scan at @scan, from the first enabled channel */
static inline uint16_t ramp_n_of(const struct scan_layout *l, const void *scan)
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
static inline void ramp_resync(struct ramp_check *rc, const void *scan)
{
	uint16_t n16 = ramp_n_of(&rc->l, scan);

	rc->expect += (uint16_t)(n16 - (uint16_t)rc->expect);
}

/* ------------------------------------------------------------------ */
/* Mainline IIO DMABUF API (<linux/iio/buffer.h>, Linux 6.11+)         */
/* ------------------------------------------------------------------ */

#include <linux/dma-heap.h>
#include <linux/udmabuf.h>

#define UDMABUF_DEV		"/dev/udmabuf"
#define DMA_HEAP_SYSTEM		"/dev/dma_heap/system"
#define IIO_DMABUF_ENQUEUE_WAIT_MS 5000	/* core's wait for earlier fences */

/*
 * IIO_BUFFER_GET_FD_IOCTL on the opened /dev/iio:deviceN @devfd: the file
 * descriptor of buffer @idx (O_RDWR | O_CLOEXEC), or -errno.
 */
static inline int iio_buffer_get_fd(int devfd, int idx)
{
	int fd = idx;

	if (ioctl(devfd, IIO_BUFFER_GET_FD_IOCTL, &fd))
		return -errno;
	return fd;
}

/* IIO_BUFFER_DMABUF_ATTACH_IOCTL of DMABUF @dfd on buffer fd @bfd; 0/-errno */
static inline int iio_buffer_attach(int bfd, int dfd)
{
	int fd = dfd;

	return ioctl(bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd) ? -errno : 0;
}

/* IIO_BUFFER_DMABUF_DETACH_IOCTL; 0/-errno */
static inline int iio_buffer_detach(int bfd, int dfd)
{
	int fd = dfd;

	return ioctl(bfd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &fd) ? -errno : 0;
}

/* IIO_BUFFER_DMABUF_ENQUEUE_IOCTL on the buffer fd @bfd; 0/-errno */
static inline int iio_buffer_enqueue(int bfd, int dfd, uint32_t flags,
				     uint64_t bytes_used)
{
	return dmabuf_enqueue_cmd(bfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				  (uint32_t)dfd, flags, bytes_used);
}

/* Set or clear O_NONBLOCK on @fd; 0/-errno */
static inline int fd_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) ? -errno : 0;
}

/*
 * A udmabuf of @size bytes (a page multiple) over a new sealed memfd.
 * Returns the DMABUF fd (O_CLOEXEC) and the memfd in @memfd, or -errno
 * (-ENOENT etc. from opening /dev/udmabuf when it is missing).
 */
static inline int udmabuf_alloc(size_t size, int *memfd)
{
	struct udmabuf_create c;
	int dev, mfd, fd, err;

	*memfd = -1;
	dev = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	mfd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		err = -errno;
		close(dev);
		return err;
	}
	if (ftruncate(mfd, (off_t)size) ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		err = -errno;
		goto fail;
	}
	memset(&c, 0, sizeof(c));
	c.memfd = (uint32_t)mfd;
	c.flags = UDMABUF_FLAGS_CLOEXEC;
	c.offset = 0;
	c.size = size;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	close(dev);
	*memfd = mfd;
	return fd;
fail:
	close(mfd);
	close(dev);
	return err;
}

/* A DMABUF of @size bytes from the DMA heap @heap; its fd or -errno */
static inline int dma_heap_alloc(const char *heap, size_t size)
{
	struct dma_heap_allocation_data d;
	int hfd, err;

	hfd = open(heap, O_RDWR | O_CLOEXEC);
	if (hfd < 0)
		return -errno;
	memset(&d, 0, sizeof(d));
	d.len = size;
	d.fd_flags = O_RDWR | O_CLOEXEC;
	err = ioctl(hfd, DMA_HEAP_IOCTL_ALLOC, &d) ? -errno : 0;
	close(hfd);
	return err ? err : (int)d.fd;
}

/* ------------------------------------------------------------------ */
/* The virtual DAC (dmabuf_dac) and ramp generation                    */
/* ------------------------------------------------------------------ */

/*
 * A DAC instance is described by the same struct adc as an ADC (name,
 * configfs directory, sysfs directory, /dev node): adc_read(), adc_write(),
 * adc_open(), adc_dmabuf_open() etc. work on it. Only creating and
 * removing it differ (another configfs directory): use dac_create*() and
 * dac_destroy(), never adc_destroy(), on a DAC.
 */
#include <sys/time.h>	/* setitimer() */

#define CFS_DAC_TYPE_DIR	CFS_IIO_DEVS "/dmabuf_dac"
#define DAC_NUM_CH		4
#define DAC_TS_INDEX		4
#define DAC_DEFAULT_FREQ	10000
#define DAC_DEFAULT_LENGTH	4096
#define DAC_SCALE_STR		"0.305175781"

static inline int dac_mkdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_DAC_TYPE_DIR "/%s", name);
	return mkdir(path, 0755) ? -errno : 0;
}

static inline int dac_rmdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_DAC_TYPE_DIR "/%s", name);
	return rmdir(path) ? -errno : 0;
}

/* mkdir the configfs DAC instance @name and locate its IIO device. */
static inline int dac_create(struct adc *d, const char *name)
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->devnum = -1;
	ret = dac_mkdir(name);
	if (ret) {
		UTIL_LOG("mkdir %s/%s: %s", CFS_DAC_TYPE_DIR, name,
			 strerror(-ret));
		return ret;
	}
	ret = adc_attach(d, name);
	if (ret) {
		UTIL_LOG("device '%s' not found after mkdir: %s", name,
			 strerror(-ret));
		dac_rmdir(name);
		d->devnum = -1;
		return ret;
	}
	snprintf(d->cfs, sizeof(d->cfs), CFS_DAC_TYPE_DIR "/%s", name);
	return 0;
}

/* Create a DAC with a name unique to this process. */
static inline int dac_create_unique(struct adc *d, const char *prefix)
{
	static unsigned int seq;
	char name[64];

	snprintf(name, sizeof(name), "%s%d_%u", prefix, (int)getpid(), seq++);
	return dac_create(d, name);
}

/* Disable the buffer (ignoring errors) and rmdir the DAC instance. */
static inline int dac_destroy(struct adc *d)
{
	int ret;

	if (d->devnum < 0 || !d->name[0])
		return 0;
	adc_buffer_disable(d);
	ret = dac_rmdir(d->name);
	if (ret && ret != -ENOENT)
		UTIL_LOG("rmdir %s: %s", d->cfs, strerror(-ret));
	d->devnum = -1;
	return ret == -ENOENT ? 0 : ret;
}

/* Enable exactly the DAC channels in @mask (ADC_CH(c) / ADC_TS). */
static inline int dac_set_channels(const struct adc *d, unsigned int mask)
{
	char attr[64];
	int c, ret;

	for (c = 0; c < DAC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "buffer0/out_voltage%d_en", c);
		ret = adc_set(d, attr, (mask & ADC_CH(c)) ? "1" : "0");
		if (ret)
			return ret;
	}
	return adc_set(d, "buffer0/in_timestamp_en",
		       (mask & ADC_TS) ? "1" : "0");
}

/*
 * Disable the DAC's buffer and configure it: channels @mask, then @freq
 * and @length (each skipped when 0).
 */
static inline int dac_configure(const struct adc *d, unsigned int mask,
				long long freq, long long length)
{
	int ret;

	adc_buffer_disable(d);
	ret = dac_set_channels(d, mask);
	if (!ret && freq)
		ret = adc_set_ll(d, "sampling_frequency", freq);
	if (!ret && length)
		ret = adc_set_ll(d, "buffer0/length", length);
	return ret;
}

/* The DAC's counters (reset at each buffer enable, kept after disable). */
struct dac_counters {
	long long consumed;	/* scans_consumed */
	long long mismatches;
	long long underruns;
};

static inline int dac_read_counters(const struct adc *d,
				    struct dac_counters *c)
{
	int ret;

	ret = adc_read_ll(d, "scans_consumed", &c->consumed);
	if (!ret)
		ret = adc_read_ll(d, "mismatches", &c->mismatches);
	if (!ret)
		ret = adc_read_ll(d, "underruns", &c->underruns);
	return ret;
}

/*
 * Wait up to @timeout_ms until scans_consumed >= @want; @c gets the last
 * counters read. Returns 0, -ETIMEDOUT or -errno.
 */
static inline int dac_wait_consumed(const struct adc *d, long long want,
				    int timeout_ms, struct dac_counters *c)
{
	double end = now_s() + timeout_ms / 1000.0;
	int ret;

	for (;;) {
		ret = dac_read_counters(d, c);
		if (ret)
			return ret;
		if (c->consumed >= want)
			return 0;
		if (now_s() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Fill @nscans scans laid out as @l into @buf with the ramp: channel c of
 * scan n holds (n + c) mod 2^16, n = @first_n, @first_n + 1, ...; the
 * timestamp (if enabled) holds n; padding is zeroed.
 */
static inline void ramp_fill(const struct scan_layout *l, void *buf,
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
static inline long long ramp_value(uint64_t n, int c)
{
	return (int16_t)(uint16_t)(n + c);
}

/*
 * CPU access for writing (a DAC reads the block): START waits for every
 * fence, readers' (a DAC's READ fences) and writers' alike.
 */
static inline int dmabuf_sync_start_rw(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
}

static inline int dmabuf_sync_end_rw(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
}

/* SIGALRM handler that only interrupts a blocking system call. */
static inline void util_alarm_noop(int sig)
{
	(void)sig;
}

/*
 * Blocking write() of all @len bytes, interrupted (SIGALRM, no SA_RESTART)
 * after @timeout_ms. Returns @len, -ETIMEDOUT, or -errno of a failing
 * write(). Uses SIGALRM and ITIMER_REAL of the calling process.
 */
static inline ssize_t write_all_timeout(int fd, const void *buf, size_t len,
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

/*
 * A thread blocked in DMA_BUF_IOCTL_SYNC(START) on one DMABUF: READ, or
 * READ | WRITE with @rw (that also waits for the readers' fences).
 */
struct sync_waiter {
	int fd;
	bool rw;
	int ret;
	double t_start, t_done;
	int done;
};

static inline void *sync_waiter_fn(void *arg)
{
	struct sync_waiter *w = arg;

	w->t_start = now_s();
	w->ret = w->rw ? dmabuf_sync_start_rw(w->fd) : dmabuf_sync_start(w->fd);
	if (!w->ret) {
		if (w->rw)
			dmabuf_sync_end_rw(w->fd);
		else
			dmabuf_sync_end(w->fd);
	}
	w->t_done = now_s();
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static inline bool waiter_done(struct sync_waiter *w)
{
	return __atomic_load_n(&w->done, __ATOMIC_SEQ_CST);
}

/* pthread_timedjoin_np() with a relative timeout; 0 or an errno */
static inline int join_within(pthread_t th, int seconds)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	return pthread_timedjoin_np(th, NULL, &deadline);
}

/* A sync_file status (SYNC_IOC_FILE_INFO) in words, for logs. */
static inline const char *status_str(int st)
{
	return st < 0 ? strerror(-st) : st == 1 ? "signalled, no error" :
		"not signalled";
}

/*
 * DAC counter checks for fixtures whose DAC instance is `self->d`.
 * COUNTERS_OK reads them into @c; CONSUMED_EXACTLY waits until
 * scans_consumed reaches @want, then a little longer: it must then be
 * exactly @want (nothing else was queued).
 */
#define COUNTERS_OK(c) do {						\
	int _r = dac_read_counters(&self->d, (c));			\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("reading the DAC counters: %s", strerror(-_r));	\
	}								\
} while (0)

#define CONSUMED_EXACTLY(want, timeout_ms, c) do {			\
	int _r = dac_wait_consumed(&self->d, (want), (timeout_ms), (c)); \
	ASSERT_EQ(0, _r) {						\
		TH_LOG("scans_consumed %lld after %d ms, expected %lld", \
		       (c)->consumed, (timeout_ms), (long long)(want));	\
	}								\
	sleep_ms(200);							\
	COUNTERS_OK(c);							\
	EXPECT_EQ((long long)(want), (c)->consumed);			\
} while (0)

#endif /* IIO_TEST_UTIL_H */
