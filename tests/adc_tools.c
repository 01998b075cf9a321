// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the kernel's own tools/iio/iio_generic_buffer against a
 * device. The binary is expected next to this test (e.g. /tests).
 *
 * iio_generic_buffer prints one line per scan: each enabled channel in
 * index order, voltages as "%05f" of (raw + offset) * scale and the
 * timestamp (scale 1, offset 0) as a plain integer.
 *
 * Note: on success it exits with status 1, not 0: main() returns the
 * last value it assigned to ret, poll()'s 1 in the default (poll) mode,
 * and in the timed mode (-e) write_sysfs_int()'s 1 for enabling the
 * buffer (fprintf()'s count of the byte "1"). Errors are negative return
 * values, i.e. exit statuses >= 128. A failing read() ends the loop
 * without an error status: the scan count catches it.
 *
 * Timing: each test's buffer holds several seconds of scans, so a reader
 * descheduled on a loaded machine does not lose any (a lost scan is a
 * gap in the ramp, which fails the test).
 */
#include <math.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

/* Instances this program leaves behind fail it (lib/inst.h) */
LEFTOVER_INSTANCES_FAIL()

#define OUT_SIZE	(1 << 20)

FIXTURE(tool) {
	struct inst a;
	char *out;
	char bin[PATH_MAX + 32];
};

FIXTURE_SETUP(tool)
{
	char dir[PATH_MAX];
	int ret;

	self->a.devnum = -1;
	self->out = malloc(OUT_SIZE);
	ASSERT_NE(NULL, self->out);
	ASSERT_EQ(0, self_dir(dir, sizeof(dir)));
	snprintf(self->bin, sizeof(self->bin), "%s/iio_generic_buffer", dir);
	ASSERT_EQ(0, access(self->bin, X_OK)) {
		TH_LOG("%s: %s", self->bin, strerror(errno));
	}
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "gb"));
	/*
	 * -a only auto-enables when no channel is enabled yet. No teardown
	 * after a failed setup: remove the instance here.
	 */
	ret = inst_set_channels(&self->a, 0);
	if (ret)
		inst_destroy(&self->a);
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(tool)
{
	inst_destroy(&self->a);
	free(self->out);
}

/*
 * Check the scan lines of iio_generic_buffer output against the ramp.
 * Returns the number of scans, or -1 (with a message logged) on error.
 */
static long check_tool_output(struct __test_metadata *_metadata,
			      char *out, int devnum)
{
	const double scale = strtod(ADC_SCALE_STR, NULL);
	long scans = 0, devline = -1;
	int64_t last_ts = INT64_MIN;
	uint16_t expect = 0;
	char *line, *save = NULL;

	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		double v[ADC_NUM_CH];
		long long ts;
		char *p = line, *end;
		uint16_t n = 0;
		int c, ntok = 0;

		if (sscanf(line, "iio device number being used is %ld",
			   &devline) == 1)
			continue;
		if (strstr(line, "Failed") || strstr(line, "failed") ||
		    strstr(line, "nothing available") ||
		    strstr(line, "Caught signal")) {
			TH_LOG("tool reported: %s", line);
			return -1;
		}
		/* scan line: 4 floats and an integer timestamp */
		for (c = 0; c < ADC_NUM_CH; c++) {
			v[c] = strtod(p, &end);
			if (end == p)
				break;
			p = end;
			ntok++;
		}
		if (ntok != ADC_NUM_CH)
			continue;	/* some other message */
		ts = strtoll(p, &end, 10);
		if (end == p || (*end && *end != ' '))
			continue;
		while (*end == ' ')
			end++;
		if (*end)
			continue;

		for (c = 0; c < ADC_NUM_CH; c++) {
			long raw = lround(v[c] / scale);
			uint16_t m = (uint16_t)((int16_t)raw - c);

			if (fabs(raw * scale - v[c]) > 0.01) {
				TH_LOG("'%s': %f is not a multiple of the scale",
				       line, v[c]);
				return -1;
			}
			if (c == 0) {
				n = m;
			} else if (m != n) {
				TH_LOG("'%s': channels disagree on n", line);
				return -1;
			}
		}
		if (n != expect) {
			TH_LOG("scan %ld '%s': n=%u, expected %u", scans, line,
			       n, expect);
			return -1;
		}
		if (ts <= last_ts) {
			TH_LOG("scan %ld: timestamp %lld not increasing", scans,
			       ts);
			return -1;
		}
		last_ts = ts;
		expect++;
		scans++;
	}
	if (devline != devnum) {
		TH_LOG("tool used device %ld, expected %d", devline, devnum);
		return -1;
	}
	return scans;
}

static void show_output(const char *out)
{
	char buf[512];
	const char *p = out;
	int lines = 0;

	while (*p && lines < 12) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, p, len);
		buf[len] = '\0';
		DIAG("  | %s", buf);
		lines++;
		p = nl ? nl + 1 : p + len;
	}
}

/*
 * poll()-driven mode, device by name, auto-enable channels: 200 Hz with
 * a 1024-scan buffer (5 s).
 */
TEST_F_TIMEOUT(tool, generic_buffer_by_name, 120)
{
	char *argv[] = {
		self->bin, "-n", self->a.name, "-g", "-a", "-c", "20",
		"-l", "1024", NULL,
	};
	long long v;
	long scans;
	int status = 0, ret;

	ASSERT_EQ(0, inst_write(&self->a, "sampling_frequency", "200"));
	ret = run_capture(argv, self->out, OUT_SIZE, 60, &status);
	DIAG("iio_generic_buffer -n %s -g -a -c 20 -l 1024: status %#x",
	     self->a.name, status);
	show_output(self->out);
	ASSERT_EQ(0, ret) {
		TH_LOG("run: %s", strerror(-ret));
	}
	ASSERT_TRUE(WIFEXITED(status));
	/* poll mode: poll()'s 1 */
	EXPECT_EQ(1, WEXITSTATUS(status)) {
		TH_LOG("exit status %d", WEXITSTATUS(status));
	}
	scans = check_tool_output(_metadata, self->out, self->a.devnum);
	DIAG("iio_generic_buffer printed %ld ramp scans", scans);
	/* every poll() wakes with at least one scan (watermark 1) */
	ASSERT_LE(20, scans);

	/* the tool disabled the buffer and its auto-enabled channels */
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/in_voltage0_en", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(1024, v);
}

/*
 * timed (no poll) mode, device by number, force-enable all channels:
 * 100 Hz with a 1024-scan buffer (10 s).
 */
TEST_F_TIMEOUT(tool, generic_buffer_by_number, 120)
{
	char num[16];
	char *argv[] = {
		self->bin, "-N", num, "-g", "-A", "-e", "-c", "8",
		"-w", "100000", "-l", "1024", NULL,
	};
	long scans;
	int status = 0, ret;

	snprintf(num, sizeof(num), "%d", self->a.devnum);
	ASSERT_EQ(0, inst_write(&self->a, "sampling_frequency", "100"));
	ret = run_capture(argv, self->out, OUT_SIZE, 60, &status);
	DIAG("iio_generic_buffer -N %s -g -A -e -c 8 -w 100000 -l 1024: status %#x",
	     num, status);
	show_output(self->out);
	ASSERT_EQ(0, ret) {
		TH_LOG("run: %s", strerror(-ret));
	}
	ASSERT_TRUE(WIFEXITED(status));
	/* timed mode: write_sysfs_int()'s 1 */
	EXPECT_EQ(1, WEXITSTATUS(status)) {
		TH_LOG("exit status %d", WEXITSTATUS(status));
	}
	scans = check_tool_output(_metadata, self->out, self->a.devnum);
	DIAG("iio_generic_buffer printed %ld ramp scans", scans);
	/* every blocking read() returns at least one scan (watermark 1) */
	ASSERT_LE(8, scans);
}

TEST_HARNESS_MAIN
