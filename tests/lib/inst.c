// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' library: test instances, ADC (configfs dmabuf_adc) or DAC
 * (dmabuf_dac), one set of helpers for both: an instance records its
 * type, and only its configfs directory and its channels' direction
 * ("in_" or "out_") depend on it. Their attributes, device nodes, and the
 * DAC's counters.
 */
#include "iio_test_util.h"

/* ------------------------------------------------------------------ */
/* Creating and removing                                               */
/* ------------------------------------------------------------------ */

/* The configfs directory of instances of @type */
const char *inst_type_dir(enum inst_type type)
{
	return type == INST_DAC ? CFS_DAC_TYPE_DIR : CFS_TYPE_DIR;
}

static void inst_cfs_path(enum inst_type type, const char *name, char *path,
			  size_t size)
{
	snprintf(path, size, "%s/%s", inst_type_dir(type), name);
}

/* mkdir the configfs instance @name of @type; 0 or -errno */
int inst_mkdir(enum inst_type type, const char *name)
{
	char path[PATH_MAX];

	inst_cfs_path(type, name, path, sizeof(path));
	return mkdir(path, 0755) ? -errno : 0;
}

/* rmdir the configfs instance @name of @type; 0 or -errno */
int inst_rmdir(enum inst_type type, const char *name)
{
	char path[PATH_MAX];

	inst_cfs_path(type, name, path, sizeof(path));
	return rmdir(path) ? -errno : 0;
}

/* Fill @in for an already existing instance @name of @type. */
int inst_attach(struct inst *in, enum inst_type type, const char *name)
{
	int n;

	memset(in, 0, sizeof(*in));
	in->type = type;
	in->devnum = -1;
	snprintf(in->name, sizeof(in->name), "%s", name);
	inst_cfs_path(type, name, in->cfs, sizeof(in->cfs));
	n = iio_wait_device(name, true, 2000);
	if (n < 0)
		return n;
	in->devnum = n;
	snprintf(in->dir, sizeof(in->dir), IIO_DEV_DIR "/iio:device%d", n);
	snprintf(in->chrdev, sizeof(in->chrdev), "/dev/iio:device%d", n);
	return 0;
}

/* mkdir the configfs instance @name of @type and locate its IIO device. */
int inst_create(struct inst *in, enum inst_type type, const char *name)
{
	int ret;

	memset(in, 0, sizeof(*in));
	in->type = type;
	in->devnum = -1;
	ret = inst_mkdir(type, name);
	if (ret) {
		UTIL_LOG("mkdir %s/%s: %s", inst_type_dir(type), name,
			 strerror(-ret));
		return ret;
	}
	ret = inst_attach(in, type, name);
	if (ret) {
		UTIL_LOG("device '%s' not found after mkdir: %s", name,
			 strerror(-ret));
		inst_rmdir(type, name);
		in->devnum = -1;
	}
	return ret;
}

/* Create an instance of @type with a name unique to this process. */
int inst_create_unique(struct inst *in, enum inst_type type,
		       const char *prefix)
{
	static unsigned int seq;
	char name[64];

	snprintf(name, sizeof(name), "%s%d_%u", prefix, (int)getpid(), seq++);
	return inst_create(in, type, name);
}

/*
 * Disable the buffer (ignoring errors) and rmdir the instance; nothing
 * if it was not created (devnum < 0). 0 or -errno of rmdir.
 */
int inst_destroy(struct inst *in)
{
	int ret;

	if (in->devnum < 0 || !in->name[0])
		return 0;
	inst_buffer_disable(in);
	ret = inst_rmdir(in->type, in->name);
	if (ret && ret != -ENOENT)
		UTIL_LOG("rmdir %s: %s", in->cfs, strerror(-ret));
	in->devnum = -1;
	return ret == -ENOENT ? 0 : ret;
}

/*
 * Names of the instances of @type present in configfs (up to @max of
 * them in @names); returns their count or -errno.
 */
int cfs_list(enum inst_type type, char names[][64], int max)
{
	char p[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(inst_type_dir(type));
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		inst_cfs_path(type, de->d_name, p, sizeof(p));
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
/* Instances left behind (LEFTOVER_INSTANCES_FAIL)                     */
/* ------------------------------------------------------------------ */

static char leftover_before[2][4096];	/* [type] */
static pid_t leftover_pid;

/* "\nNAME\nNAME\n" of the instances of @type (just "\n" if none) */
static void leftover_list(enum inst_type type, char *out, size_t size)
{
	struct dirent *de;
	size_t used = 1;
	DIR *d;
	int n;

	snprintf(out, size, "\n");
	d = opendir(inst_type_dir(type));
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n = snprintf(out + used, size - used, "%s\n", de->d_name);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	closedir(d);
}

/* Note the instances there are now, and that this process noted them. */
void leftover_start(void)
{
	leftover_pid = getpid();
	leftover_list(INST_ADC, leftover_before[INST_ADC],
		      sizeof(leftover_before[INST_ADC]));
	leftover_list(INST_DAC, leftover_before[INST_DAC],
		      sizeof(leftover_before[INST_DAC]));
}

/*
 * In the process that called leftover_start(): disable and remove every
 * instance that was not there then, naming each ("# FAIL: instance left
 * behind: ..."). Returns how many there were (0 in any other process).
 */
int leftover_check(void)
{
	char now[4096], key[300], path[PATH_MAX];
	char *name, *save = NULL;
	int type, found = 0, n;

	if (getpid() != leftover_pid)
		return 0;
	for (type = INST_ADC; type <= INST_DAC; type++) {
		leftover_list(type, now, sizeof(now));
		for (name = strtok_r(now, "\n", &save); name;
		     name = strtok_r(NULL, "\n", &save)) {
			snprintf(key, sizeof(key), "\n%s\n", name);
			if (strstr(leftover_before[type], key))
				continue;
			found++;
			n = iio_find_device(name);
			if (n >= 0) {
				snprintf(path, sizeof(path), IIO_DEV_DIR
					 "/iio:device%d/buffer0/enable", n);
				sysfs_write(path, "0");
			}
			inst_cfs_path(type, name, path, sizeof(path));
			DIAG("FAIL: instance left behind: %s (rmdir: %s)", path,
			     rmdir(path) ? strerror(errno) : "done");
		}
	}
	return found;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */
/* ------------------------------------------------------------------ */

/* @path = the instance's sysfs attribute @attr; 0 or -ENAMETOOLONG */
int inst_path(const struct inst *in, const char *attr, char *path,
	      size_t size)
{
	int n = snprintf(path, size, "%s/%s", in->dir, attr);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

bool inst_has(const struct inst *in, const char *attr)
{
	char path[PATH_MAX];

	return !inst_path(in, attr, path, sizeof(path)) && path_exists(path);
}

/* sysfs_write() of attribute @attr */
int inst_write(const struct inst *in, const char *attr, const char *val)
{
	char path[PATH_MAX];

	if (inst_path(in, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_write(path, val);
}

/* sysfs_read() of attribute @attr */
int inst_read(const struct inst *in, const char *attr, char *buf,
	      size_t size)
{
	char path[PATH_MAX];

	if (inst_path(in, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read(path, buf, size);
}

int inst_write_ll(const struct inst *in, const char *attr, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return inst_write(in, attr, buf);
}

int inst_read_ll(const struct inst *in, const char *attr, long long *v)
{
	char path[PATH_MAX];

	if (inst_path(in, attr, path, sizeof(path)))
		return -ENAMETOOLONG;
	return sysfs_read_ll(path, v);
}

/* Like inst_write() but logs failures (for setup steps). */
int inst_set(const struct inst *in, const char *attr, const char *val)
{
	int ret = inst_write(in, attr, val);

	if (ret)
		UTIL_LOG("write '%s' to %s/%s: %s", val, in->dir, attr,
			 strerror(-ret));
	return ret;
}

int inst_set_ll(const struct inst *in, const char *attr, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return inst_set(in, attr, buf);
}

/* Write 0 to buffer0/enable (not logged: callers may expect it to fail) */
int inst_buffer_disable(const struct inst *in)
{
	return inst_write(in, "buffer0/enable", "0");
}

/* Write 1 to buffer0/enable (failures logged) */
int inst_buffer_enable(const struct inst *in)
{
	return inst_set(in, "buffer0/enable", "1");
}

/*
 * Enable exactly the channels in @mask (ADC_CH(c) / ADC_TS): the ADC's
 * in_voltageN_en, the DAC's out_voltageN_en; both have in_timestamp_en.
 */
int inst_set_channels(const struct inst *in, unsigned int mask)
{
	const char *dir = in->type == INST_DAC ? "out" : "in";
	char attr[64];
	int c, ret;

	for (c = 0; c < ADC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "buffer0/%s_voltage%d_en", dir, c);
		ret = inst_set(in, attr, (mask & ADC_CH(c)) ? "1" : "0");
		if (ret)
			return ret;
	}
	return inst_set(in, "buffer0/in_timestamp_en",
			(mask & ADC_TS) ? "1" : "0");
}

/*
 * Disable the buffer and configure it: channels @mask, then @freq,
 * @length and @watermark (each skipped when 0).
 */
int inst_configure(const struct inst *in, unsigned int mask, long long freq,
		   long long length, long long watermark)
{
	int ret;

	inst_buffer_disable(in);
	ret = inst_set_channels(in, mask);
	if (!ret && freq)
		ret = inst_set_ll(in, "sampling_frequency", freq);
	if (!ret && watermark)	/* lower first so a shorter length fits */
		ret = inst_set(in, "buffer0/watermark", "1");
	if (!ret && length)
		ret = inst_set_ll(in, "buffer0/length", length);
	if (!ret && watermark)
		ret = inst_set_ll(in, "buffer0/watermark", watermark);
	return ret;
}

/* inst_configure() and enable the buffer. */
int inst_start(const struct inst *in, unsigned int mask, long long freq,
	       long long length, long long watermark)
{
	int ret = inst_configure(in, mask, freq, length, watermark);

	return ret ? ret : inst_buffer_enable(in);
}

/* ------------------------------------------------------------------ */
/* Device nodes                                                        */
/* ------------------------------------------------------------------ */

/*
 * Open the character device /dev/iio:deviceN (O_CLOEXEC added). If
 * devtmpfs did not create the node, make one from the "dev" attribute.
 * fd or -errno.
 */
int inst_open(const struct inst *in, int flags)
{
	char buf[32];
	unsigned int maj, min;
	int fd;

	fd = open(in->chrdev, flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (inst_read(in, "dev", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -ENOENT;
	if (mknod(in->chrdev, S_IFCHR | 0600, makedev(maj, min)) &&
	    errno != EEXIST)
		return -errno;
	fd = open(in->chrdev, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Name of the DMABUF char device of buffer0: "iio:deviceN-dmabuf0" */
void inst_dmabuf_name(const struct inst *in, char *buf, size_t size)
{
	snprintf(buf, size, "iio:device%d-dmabuf0", in->devnum);
}

/* Path of the DMABUF char device of buffer0: /dev/iio:deviceN-dmabuf0 */
void inst_dmabuf_path(const struct inst *in, char *buf, size_t size)
{
	snprintf(buf, size, "/dev/iio:device%d-dmabuf0", in->devnum);
}

/* Open the DMABUF char device of buffer0 (O_CLOEXEC added). fd or -errno */
int inst_dmabuf_open(const struct inst *in, int flags)
{
	char path[64];
	int fd;

	inst_dmabuf_path(in, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* ------------------------------------------------------------------ */
/* The DAC's counters                                                  */
/* ------------------------------------------------------------------ */

/* scans_consumed, mismatches and underruns of the DAC @d; 0 or -errno */
int dac_read_counters(const struct inst *d, struct dac_counters *c)
{
	int ret;

	ret = inst_read_ll(d, "scans_consumed", &c->consumed);
	if (!ret)
		ret = inst_read_ll(d, "mismatches", &c->mismatches);
	if (!ret)
		ret = inst_read_ll(d, "underruns", &c->underruns);
	return ret;
}

/*
 * Wait up to @timeout_ms until scans_consumed >= @want; @c gets the last
 * counters read. Returns 0, -ETIMEDOUT or -errno.
 */
int dac_wait_consumed(const struct inst *d, long long want, int timeout_ms,
		      struct dac_counters *c)
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

/*
 * The device @in's buffer maps DMABUFs for: its DMA channel's controller
 * (the device of /sys/class/dma/<backend>) with the DMA backend, else the
 * module's faux device "iio_dmabuf". 0 or -errno.
 */
int inst_dma_dev(const struct inst *in, char *name, size_t size)
{
	char backend[64], path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;
	int ret;

	ret = inst_read(in, "backend", backend, sizeof(backend));
	if (ret < 0)
		return ret;
	if (!strcmp(backend, "cpu")) {
		snprintf(name, size, "iio_dmabuf");
		return 0;
	}
	snprintf(path, sizeof(path), "/sys/class/dma/%s/device", backend);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	snprintf(name, size, "%.*s", (int)size - 1, base ? base + 1 : link);
	return 0;
}
