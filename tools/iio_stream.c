// SPDX-License-Identifier: GPL-2.0
/*
 * iio_stream: read a dmabuf_adc device through /dev/iio:deviceN for a few
 * seconds and report what arrived: scans, rate, ramp integrity, samples.
 *
 *   iio_stream NAME [SECONDS [FREQUENCY]]
 *
 * The device must exist (mkdir /sys/kernel/config/iio/devices/dmabuf_adc/NAME).
 * Exit status: 0 when the data is intact and the rate within 5%.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHANNELS 4
#define SCAN_BYTES 16	/* 4 x s16 + s64 timestamp */

static int write_attr(const char *dir, const char *attr, const char *value)
{
	char path[512];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -errno;
}

static int find_device(const char *name, char *dir, size_t len, int *index)
{
	DIR *d = opendir("/sys/bus/iio/devices");
	struct dirent *e;
	char path[300], buf[128];
	int found = 0;

	while (d && (e = readdir(d))) {
		FILE *f;

		if (sscanf(e->d_name, "iio:device%d", index) != 1 ||
		    strlen(e->d_name) > 32)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/iio/devices/%.32s/name",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && !strncmp(buf, name, strlen(name)) &&
		    buf[strlen(name)] == '\n') {
			snprintf(dir, len, "/sys/bus/iio/devices/%.32s", e->d_name);
			found = 1;
		}
		fclose(f);
		if (found)
			break;
	}
	if (d)
		closedir(d);
	return found ? 0 : -ENODEV;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static uint8_t buf[4096 * SCAN_BYTES];
	const char *name = argc > 1 ? argv[1] : "adc0";
	double seconds = argc > 2 ? atof(argv[2]) : 3;
	const char *freq = argc > 3 ? argv[3] : "100000";
	char dir[64], attr[128], dev[64];
	uint64_t scans = 0, errors = 0, expected = 0, steady_scans = 0;
	double start, first = 0, end;
	int fd, index, c, shown = 0;
	int16_t samples[5][CHANNELS];

	if (find_device(name, dir, sizeof(dir), &index)) {
		fprintf(stderr, "iio_stream: no IIO device named %s\n", name);
		return 2;
	}
	for (c = 0; c < CHANNELS; c++) {
		snprintf(attr, sizeof(attr), "scan_elements/in_voltage%d_en", c);
		write_attr(dir, attr, "1");
	}
	if (write_attr(dir, "scan_elements/in_timestamp_en", "1") ||
	    write_attr(dir, "sampling_frequency", freq) ||
	    write_attr(dir, "waveform", "ramp") ||
	    write_attr(dir, "buffer0/length", "65536") ||
	    write_attr(dir, "buffer0/watermark", "4096")) {
		fprintf(stderr, "iio_stream: cannot configure %s\n", dir);
		return 2;
	}
	snprintf(dev, sizeof(dev), "/dev/iio:device%d", index);
	fd = open(dev, O_RDONLY);
	if (fd < 0 || write_attr(dir, "buffer0/enable", "1")) {
		perror("iio_stream: open/enable");
		return 2;
	}
	start = now();
	end = start + seconds;
	while (now() < end) {
		ssize_t n = read(fd, buf, sizeof(buf));
		size_t i;

		if (n < 0) {
			perror("iio_stream: read");
			break;
		}
		if (!first)
			first = now();
		else
			steady_scans += n / SCAN_BYTES;
		for (i = 0; i + SCAN_BYTES <= (size_t)n; i += SCAN_BYTES) {
			int16_t s[CHANNELS];

			memcpy(s, buf + i, sizeof(s));
			for (c = 0; c < CHANNELS; c++)
				if ((uint16_t)s[c] != (uint16_t)(expected + c))
					errors++;
			if (shown < 5)
				memcpy(samples[shown++], s, sizeof(s));
			expected++;
			scans++;
		}
	}
	end = now();
	write_attr(dir, "buffer0/enable", "0");
	close(fd);

	{
		double rate = steady_scans / (end - first);
		double target = atof(freq);
		int intact = scans > 0 && errors == 0;
		int rate_ok = rate > target * 0.95 && rate < target * 1.05;
		FILE *f;
		char overruns[32] = "?";

		snprintf(attr, sizeof(attr), "%.64s/overruns", dir);
		f = fopen(attr, "r");
		if (f) {
			if (!fgets(overruns, sizeof(overruns), f))
				strcpy(overruns, "?");
			overruns[strcspn(overruns, "\n")] = 0;
			fclose(f);
		}
		printf("device:     %s (%s)\n", name, dev);
		printf("scans:      %" PRIu64 " in %.2f s\n", scans, end - start);
		printf("rate:       %.0f scans/s (sampling_frequency %s): %s\n",
		       rate, freq, rate_ok ? "within 5%" : "OFF BY MORE THAN 5%");
		printf("integrity:  %s (%" PRIu64 " bad samples, ramp check)\n",
		       intact ? "INTACT" : "CORRUPTED OR LOST", errors);
		printf("overruns:   %s\n", overruns);
		printf("first scans (voltage0..3):\n");
		for (c = 0; c < shown; c++)
			printf("  %6d %6d %6d %6d\n", samples[c][0], samples[c][1],
			       samples[c][2], samples[c][3]);
		return intact && rate_ok ? 0 : 1;
	}
}
