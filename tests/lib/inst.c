// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' library: test instances (configfs dmabuf_adc and dmabuf_dac),
 * their attributes and device nodes, the DAC's counters.
 */
#include "iio_test_util.h"

/* ------------------------------------------------------------------ */
/* Instances                                                           */
/* ------------------------------------------------------------------ */

int adc_mkdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_TYPE_DIR "/%s", name);
	return mkdir(path, 0755) ? -errno : 0;
}

int adc_rmdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_TYPE_DIR "/%s", name);
	return rmdir(path) ? -errno : 0;
}

/* Fill @a for an already existing device called @name. */
int adc_attach(struct adc *a, const char *name)
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
int adc_create(struct adc *a, const char *name)
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
int adc_create_unique(struct adc *a, const char *prefix)
{
	static unsigned int seq;
	char name[64];

	snprintf(name, sizeof(name), "%s%d_%u", prefix, (int)getpid(), seq++);
	return adc_create(a, name);
}

int adc_path(const struct adc *a, const char *attr,
	     char *path, size_t size)
{
	int n = snprintf(path, size, "%s/%s", a->dir, attr);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

bool adc_has(const struct adc *a, const char *attr)
{
	char path[PATH_MAX];

	return !adc_path(a, attr, path, sizeof(path)) && path_exists(path);
}

int adc_write(const struct adc *a, const char *attr,
	      const char *val)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_write(path, val);
}

int adc_read(const struct adc *a, const char *attr,
	     char *buf, size_t size)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read(path, buf, size);
}

int adc_write_ll(const struct adc *a, const char *attr,
		 long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return adc_write(a, attr, buf);
}

int adc_read_ll(const struct adc *a, const char *attr,
		long long *v)
{
	char path[PATH_MAX];

	if (adc_path(a, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read_ll(path, v);
}

/* Like adc_write() but logs failures (for setup steps). */
int adc_set(const struct adc *a, const char *attr,
	    const char *val)
{
	int ret = adc_write(a, attr, val);

	if (ret)
		UTIL_LOG("write '%s' to %s/%s: %s", val, a->dir, attr,
			 strerror(-ret));
	return ret;
}

int adc_set_ll(const struct adc *a, const char *attr,
	       long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return adc_set(a, attr, buf);
}

int adc_buffer_disable(const struct adc *a)
{
	return adc_write(a, "buffer0/enable", "0");
}

int adc_buffer_enable(const struct adc *a)
{
	return adc_set(a, "buffer0/enable", "1");
}

/* Disable the buffer (ignoring errors) and rmdir the instance. */
int adc_destroy(struct adc *a)
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
int adc_set_channels(const struct adc *a, unsigned int mask)
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
int adc_configure(const struct adc *a, unsigned int mask,
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
int adc_start(const struct adc *a, unsigned int mask,
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
int adc_open(const struct adc *a, int flags)
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

int cfs_list(char names[][64], int max)
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

/* Name of the DMABUF char device of buffer0: "iio:deviceN-dmabuf0" */
void adc_dmabuf_name(const struct adc *a, char *buf,
		     size_t size)
{
	snprintf(buf, size, "iio:device%d-dmabuf0", a->devnum);
}

/* Path of the DMABUF char device of buffer0: /dev/iio:deviceN-dmabuf0 */
void adc_dmabuf_path(const struct adc *a, char *buf,
		     size_t size)
{
	snprintf(buf, size, "/dev/iio:device%d-dmabuf0", a->devnum);
}

/* Open the DMABUF char device of buffer0 (O_CLOEXEC added). fd or -errno */
int adc_dmabuf_open(const struct adc *a, int flags)
{
	char path[64];
	int fd;

	adc_dmabuf_path(a, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* ------------------------------------------------------------------ */
/* The virtual DAC (dmabuf_dac)                                        */
/* ------------------------------------------------------------------ */

int dac_mkdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_DAC_TYPE_DIR "/%s", name);
	return mkdir(path, 0755) ? -errno : 0;
}

int dac_rmdir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CFS_DAC_TYPE_DIR "/%s", name);
	return rmdir(path) ? -errno : 0;
}

/* mkdir the configfs DAC instance @name and locate its IIO device. */
int dac_create(struct adc *d, const char *name)
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
int dac_create_unique(struct adc *d, const char *prefix)
{
	static unsigned int seq;
	char name[64];

	snprintf(name, sizeof(name), "%s%d_%u", prefix, (int)getpid(), seq++);
	return dac_create(d, name);
}

/* Disable the buffer (ignoring errors) and rmdir the DAC instance. */
int dac_destroy(struct adc *d)
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
int dac_set_channels(const struct adc *d, unsigned int mask)
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
int dac_configure(const struct adc *d, unsigned int mask,
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

int dac_read_counters(const struct adc *d,
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
int dac_wait_consumed(const struct adc *d, long long want,
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
