// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: the converters it streams from, created through configfs
 * (Documentation/iio/dmabuf_adc.rst, dmabuf_dac.rst), and the module's
 * DMABUF memory limit.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define CFS_DEVICES	"/sys/kernel/config/iio/devices"
#define IIO_DEVICES	"/sys/bus/iio/devices"
#define MAX_BYTES_PARAM	"/sys/module/iio_dmabuf/parameters/dmabuf_max_bytes"

static const char *cfs_type(bool dac)
{
	return dac ? CFS_DEVICES "/dmabuf_dac" : CFS_DEVICES "/dmabuf_adc";
}

/* N of the IIO device named @name, or -ENOENT. */
static int find_device(const char *name)
{
	DIR *d = opendir(IIO_DEVICES);
	struct dirent *e;
	int found = -ENOENT, n;

	while (d && (e = readdir(d))) {
		char path[300], buf[64];

		if (sscanf(e->d_name, "iio:device%d", &n) != 1)
			continue;
		snprintf(path, sizeof(path), IIO_DEVICES "/%.32s/name", e->d_name);
		if (file_read(path, buf, sizeof(buf)) >= 0 && !strcmp(buf, name))
			found = n;
	}
	if (d)
		closedir(d);
	return found;
}

int conv_set(const struct conv *c, const char *attr, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", c->dir, attr);
	return file_write(path, val);
}

int conv_set_ll(const struct conv *c, const char *attr, long long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", val);
	return conv_set(c, attr, buf);
}

int conv_get_ll(const struct conv *c, const char *attr, long long *val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", c->dir, attr);
	return file_read_ll(path, val);
}

int conv_enable(const struct conv *c, bool on)
{
	return conv_set(c, "buffer0/enable", on ? "1" : "0");
}

/*
 * Creates the instance @name (removing a leftover of an earlier run
 * first), with every voltage channel enabled, and the timestamp if
 * @timestamp: 16-byte scans, else 8-byte scans (the DAC's layout must
 * equal the ADC's for the loopback).
 */
int conv_create(struct conv *c, const char *name, bool dac, bool timestamp)
{
	char path[128], attr[64];
	int ret, ch, tries;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->dac = dac;
	c->timestamp = timestamp;
	c->scan_bytes = timestamp ? SCAN_BYTES_TS : SCAN_BYTES_NO_TS;
	snprintf(path, sizeof(path), "%s/%s", cfs_type(dac), name);
	rmdir(path);
	if (mkdir(path, 0755))
		return -errno;
	c->created = true;
	for (tries = 0; (c->num = find_device(name)) < 0 && tries < 200; tries++)
		usleep(10000);
	if (c->num < 0) {
		conv_destroy(c);
		return -ENODEV;
	}
	snprintf(c->dir, sizeof(c->dir), IIO_DEVICES "/iio:device%d", c->num);
	snprintf(c->node, sizeof(c->node), "/dev/iio:device%d", c->num);
	snprintf(c->dmabuf_node, sizeof(c->dmabuf_node),
		 "/dev/iio:device%d-dmabuf0", c->num);
	for (ch = 0; ch < 4; ch++) {
		snprintf(attr, sizeof(attr), "buffer0/%s_voltage%d_en",
			 dac ? "out" : "in", ch);
		ret = conv_set(c, attr, "1");
		if (ret)
			return ret;
	}
	ret = conv_set(c, "buffer0/in_timestamp_en", timestamp ? "1" : "0");
	if (!ret && !dac)
		ret = conv_set(c, "waveform", "ramp");
	/*
	 * What moves its data: a dmaengine channel (the versal target's
	 * ZynqMP DMA) or "cpu" (dmabuf_adc.rst, "Backend"); "?" if the
	 * module does not say.
	 */
	snprintf(path, sizeof(path), "%s/backend", c->dir);
	if (file_read(path, c->backend, sizeof(c->backend)) <= 0)
		snprintf(c->backend, sizeof(c->backend), "?");
	return ret;
}

/*
 * The counters of the converter's dmaengine channel (copies completed
 * without error, bytes): 0 with a "cpu" backend, -ENOENT if unreadable.
 */
int conv_dma_count(const struct conv *c, struct dma_count *d)
{
	char path[128];
	int ret;

	d->copies = d->bytes = 0;
	if (!c->created || !strcmp(c->backend, "cpu"))
		return 0;
	if (!strcmp(c->backend, "?"))
		return -ENOENT;
	snprintf(path, sizeof(path), "/sys/class/dma/%.32s/memcpy_count",
		 c->backend);
	ret = file_read_ll(path, &d->copies);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/class/dma/%.32s/bytes_transferred",
		 c->backend);
	return file_read_ll(path, &d->bytes);
}

void conv_destroy(struct conv *c)
{
	char path[128];

	if (!c->created)
		return;
	conv_enable(c, false);
	snprintf(path, sizeof(path), "%s/%s", cfs_type(c->dac), c->name);
	if (rmdir(path))
		fprintf(stderr, "iio_bench: rmdir %s: %s\n", path, strerror(errno));
	c->created = false;
}

/*
 * The rate range from sampling_frequency_available, "[min step max]" (or
 * a list of rates: the first and the last).
 */
int rate_range(const struct conv *c, long long *min, long long *max)
{
	char path[128], buf[256], *p, *end;
	long long v;
	int n = 0, ret;

	snprintf(path, sizeof(path), "%s/sampling_frequency_available", c->dir);
	ret = file_read(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	for (p = buf; *p; p = end) {
		while (*p && (*p == '[' || *p == ']' || *p == ' '))
			p++;
		if (!*p)
			break;
		v = strtoll(p, &end, 10);
		if (end == p)
			return -EINVAL;
		if (!n++)
			*min = v;
		*max = v;
	}
	return n >= 2 ? 0 : -EINVAL;
}

static long long saved_max_bytes = -1;

/* Lets the module's blocks take @bytes per buffer (module parameter). */
int max_bytes_raise(unsigned long long bytes)
{
	long long cur;
	char buf[32];
	int ret;

	ret = file_read_ll(MAX_BYTES_PARAM, &cur);
	if (ret)
		return ret;
	if (saved_max_bytes < 0)
		saved_max_bytes = cur;
	if ((unsigned long long)cur >= bytes)
		return 0;
	snprintf(buf, sizeof(buf), "%llu", bytes);
	return file_write(MAX_BYTES_PARAM, buf);
}

void max_bytes_restore(void)
{
	char buf[32];

	if (saved_max_bytes < 0)
		return;
	snprintf(buf, sizeof(buf), "%lld", saved_max_bytes);
	file_write(MAX_BYTES_PARAM, buf);
}
