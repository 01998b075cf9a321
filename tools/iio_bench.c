// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: throughput of a dmabuf_adc device through read() and through
 * the seed DMABUF interface (ALLOC/ENQUEUE/SYNC), side by side.
 *
 *   iio_bench NAME [SECONDS [FREQUENCY]]
 *
 * Prints, per path: scans per second, MB/s, scans lost (overruns), gaps
 * in the data, and the CPU time the reader spent (user + system) per
 * second of streaming. Every scan's first sample is checked against the
 * ramp, so a path cannot look fast by losing data unnoticed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/iio_dmabuf.h>

#define SCAN_BYTES 16		/* 4 x s16 + s64 timestamp */
#define BLOCK_SCANS 16384
#define NBLOCKS 8

struct result {
	uint64_t scans, gaps;
	uint16_t next;
	double seconds, cpu;
	long overruns;
};

static char dir[64];
static int index_;

static int attr_write(const char *attr, const char *value)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -errno;
}

static long attr_long(const char *attr)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return atol(buf);
}

static int find_device(const char *name)
{
	DIR *d = opendir("/sys/bus/iio/devices");
	struct dirent *e;
	int found = 0;

	while (d && !found && (e = readdir(d))) {
		char path[300], buf[64] = "";
		FILE *f;

		if (sscanf(e->d_name, "iio:device%d", &index_) != 1)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/iio/devices/%.32s/name", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = 0;
			found = !strcmp(buf, name);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	snprintf(dir, sizeof(dir), "/sys/bus/iio/devices/iio:device%d", index_);
	return found ? 0 : -ENODEV;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * Checks the first sample of each scan (channel 0 of scan n is n): counts
 * the places where the ramp jumps, i.e. where scans were lost.
 */
static void check(struct result *r, const uint8_t *data, size_t scans)
{
	for (size_t i = 0; i < scans; i++) {
		uint16_t v;

		memcpy(&v, data + i * SCAN_BYTES, sizeof(v));
		if (v != r->next)
			r->gaps++;
		r->next = v + 1;
	}
	r->scans += scans;
}

static int bench_read(double seconds, struct result *r)
{
	static uint8_t buf[BLOCK_SCANS * SCAN_BYTES];
	char dev[32];
	double start, cpu0;
	long over0;
	int fd;

	snprintf(dev, sizeof(dev), "/dev/iio:device%d", index_);
	attr_write("buffer0/length", "262144");
	attr_write("buffer0/watermark", "16384");
	fd = open(dev, O_RDONLY);
	if (fd < 0)
		return -errno;
	over0 = attr_long("overruns");
	cpu0 = cpu_seconds();
	attr_write("buffer0/enable", "1");
	start = now();
	while (now() - start < seconds) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0)
			break;
		check(r, buf, n / SCAN_BYTES);
	}
	r->seconds = now() - start;
	r->cpu = cpu_seconds() - cpu0;
	attr_write("buffer0/enable", "0");
	r->overruns = attr_long("overruns") - over0;
	close(fd);
	return 0;
}

static int bench_dmabuf(double seconds, struct result *r)
{
	struct iio_dmabuf_alloc_req req = { .size = BLOCK_SCANS * SCAN_BYTES };
	int fd[NBLOCKS], cdev, i;
	void *map[NBLOCKS];
	double start, cpu0;
	char path[48];
	long over0;

	snprintf(path, sizeof(path), "/dev/iio:device%d-dmabuf0", index_);
	cdev = open(path, O_RDWR);
	if (cdev < 0)
		return -errno;
	for (i = 0; i < NBLOCKS; i++) {
		struct iio_dmabuf blk = { .bytes_used = req.size };

		fd[i] = ioctl(cdev, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
		if (fd[i] < 0)
			return -errno;
		map[i] = mmap(NULL, req.size, PROT_READ, MAP_SHARED, fd[i], 0);
		if (map[i] == MAP_FAILED)
			return -errno;
		blk.fd = fd[i];
		if (ioctl(cdev, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &blk))
			return -errno;
	}
	over0 = attr_long("overruns");
	cpu0 = cpu_seconds();
	attr_write("buffer0/enable", "1");
	start = now();
	for (i = 0; now() - start < seconds; i = (i + 1) % NBLOCKS) {
		struct dma_buf_sync sync = {
			.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
		};
		struct iio_dmabuf blk = { .fd = fd[i], .bytes_used = req.size };

		if (ioctl(fd[i], DMA_BUF_IOCTL_SYNC, &sync))
			break;
		check(r, map[i], BLOCK_SCANS);
		sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
		ioctl(fd[i], DMA_BUF_IOCTL_SYNC, &sync);
		if (ioctl(cdev, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &blk))
			break;
	}
	r->seconds = now() - start;
	r->cpu = cpu_seconds() - cpu0;
	attr_write("buffer0/enable", "0");
	r->overruns = attr_long("overruns") - over0;
	for (i = 0; i < NBLOCKS; i++) {
		munmap(map[i], req.size);
		close(fd[i]);
	}
	close(cdev);
	return 0;
}

static void report(const char *path, const struct result *r)
{
	printf("%-22s %12.0f %8.1f %10ld %10" PRIu64 " %9.1f%%\n", path,
	       r->scans / r->seconds, r->scans * SCAN_BYTES / r->seconds / 1e6,
	       r->overruns, r->gaps, 100 * r->cpu / r->seconds);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "adc0";
	double seconds = argc > 2 ? atof(argv[2]) : 5;
	const char *freq = argc > 3 ? argv[3] : "1000000";
	struct result fileio = { 0 }, dmabuf = { 0 };
	int c, ret;

	if (find_device(name)) {
		fprintf(stderr, "iio_bench: no IIO device named %s\n", name);
		return 2;
	}
	for (c = 0; c < 4; c++) {
		char attr[48];

		snprintf(attr, sizeof(attr), "scan_elements/in_voltage%d_en", c);
		attr_write(attr, "1");
	}
	attr_write("scan_elements/in_timestamp_en", "1");
	if (attr_write("sampling_frequency", freq) || attr_write("waveform", "ramp")) {
		fprintf(stderr, "iio_bench: cannot configure %s\n", dir);
		return 2;
	}
	ret = bench_read(seconds, &fileio);
	if (!ret)
		ret = bench_dmabuf(seconds, &dmabuf);
	if (ret) {
		fprintf(stderr, "iio_bench: %s\n", strerror(-ret));
		return 1;
	}
	printf("%s at %s Hz, %d-byte scans, %.0f s per path\n", name, freq,
	       SCAN_BYTES, seconds);
	printf("%-22s %12s %8s %10s %10s %10s\n", "path", "scans/s", "MB/s",
	       "overruns", "gaps", "CPU");
	report("read()", &fileio);
	report("DMABUF (seed, 8 blk)", &dmabuf);
	return 0;
}
