// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: libiio (Debian bookworm's libiio-utils 0.24, local backend)
 * against a virtual ADC and a virtual DAC: iio_info, iio_readdev and
 * iio_writedev.
 *
 * The tools are dynamically linked and the guest has no shared libraries:
 * tests/Makefile copies them to libiio/ next to this program, with every
 * library they need (and the dynamic loader) in libiio/lib/, and they run
 * as
 *   libiio/lib/ld-linux-x86-64.so.2 --library-path libiio/lib libiio/TOOL
 * (ld-linux-aarch64.so.1 on arm64).
 *
 * What libiio 0.24's local backend does with our devices (see the DIAG
 * lines of each test):
 *  - iio_device_create_buffer() disables the buffer, writes
 *    buffer/length, opens /dev/iio:deviceN (O_NONBLOCK), writes every
 *    scan_elements/..._en (0 for the channels not asked for), tries the
 *    legacy ADI block-mmap ioctls (BLOCK_FREE_IOCTL), which the IIO core
 *    refuses, so it warns "High-speed mode not enabled" on stderr and uses
 *    read()/write() with buffer/length = 4 x the -b size; then enables the
 *    buffer. Closing disables it and every channel again.
 *  - iio_readdev therefore sees the ramp from n = 0 and writes exactly -s
 *    raw scans to stdout.
 *  - iio_writedev fills a whole -b buffer from stdin before each push. At
 *    end of input (no -s) it exits without pushing the partly filled last
 *    buffer; with -s it pushes a last, partly filled buffer whole (the
 *    tail keeps the previous buffer's scans) and then disables the buffer
 *    at once, which drops whatever the DAC had not played yet.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

/* Instances this program leaves behind fail it (lib/inst.h) */
LEFTOVER_INSTANCES_FAIL()

/* The dynamic loader tests/Makefile copies next to the tools' libraries */
#if defined(__aarch64__)
#define LOADER		"ld-linux-aarch64.so.1"
#elif defined(__x86_64__)
#define LOADER		"ld-linux-x86-64.so.2"
#else
#error "libiio_client: no dynamic loader name for this architecture"
#endif
#define OUT_SIZE	(1 << 20)

/*
 * Rates: the point is the data path through libiio, not the rate. libiio
 * sets buffer0/length to 4 x -b (LIBIIO_NB_BLOCKS): 16384 scans, 4 s at
 * 4 kHz, so a tool (or this test, reading its output) descheduled on a
 * loaded machine loses nothing (a lost scan fails the ramp check) and the
 * DAC never reaches the stale tail of iio_writedev's last buffer before
 * it disables the DAC (see writedev_check()).
 */
#define LIBIIO_NB_BLOCKS 4
#define RD_FREQ		4000
#define RD_BUF		4096
#define RD_SCANS	40000	/* ~2.4 buffer lengths, 10 s */
#define WR_FREQ		4000
#define WR_FREQ_S	2000	/* -s: 6 s from the last push to its tail */
#define WR_BUF		4096
#define WR_SCANS	30000	/* 7 full -b buffers and a partial one */
/* what iio_writedev pushes until end of input: whole -b buffers */
#define WR_FULL		(WR_SCANS / WR_BUF * WR_BUF)

/*
 * Per-step timeouts (slow emulation with KASAN). The tools' own timeout
 * for each buffer refill or push is libiio's context timeout: 1 s by
 * default in 0.24's local backend (DEFAULT_TIMEOUT_MS), too short under
 * TCG, so the tools run with -T 30000.
 */
#define INFO_TIMEOUT_S	120
#define STREAM_TIMEOUT_S 240
#define EXIT_TIMEOUT_S	60

/* ------------------------------------------------------------------ */
/* Running the tools                                                   */
/* ------------------------------------------------------------------ */

struct tools {
	char dir[PATH_MAX];		/* .../libiio */
	char libdir[PATH_MAX + 8];	/* .../libiio/lib */
	char loader[PATH_MAX + 64];	/* .../libiio/lib/ld-linux-... */
};

static int tools_init(struct tools *t)
{
	char self[PATH_MAX - 16];
	int ret = self_dir(self, sizeof(self));

	if (ret)
		return ret;
	snprintf(t->dir, sizeof(t->dir), "%s/libiio", self);
	snprintf(t->libdir, sizeof(t->libdir), "%s/lib", t->dir);
	snprintf(t->loader, sizeof(t->loader), "%s/" LOADER, t->libdir);
	return 0;
}

/* argv running @tool with @args (NULL terminated) through the loader */
static void tool_argv(const struct tools *t, const char *tool,
		      const char *const *args, char *path, size_t pathsz,
		      char **argv, int max)
{
	int n = 0;

	snprintf(path, pathsz, "%s/%s", t->dir, tool);
	argv[n++] = (char *)t->loader;
	argv[n++] = "--library-path";
	argv[n++] = (char *)t->libdir;
	argv[n++] = path;
	while (*args && n < max - 1)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
}

/* A running tool: stdin/stdout as given, stderr into a memfd */
struct tool_run {
	pid_t pid;
	int err_fd;
};

static int tool_spawn(const struct tools *t, const char *tool,
		      const char *const *args, int in_fd, int out_fd,
		      struct tool_run *r)
{
	char path[PATH_MAX + 80];
	char *argv[32];
	int err;

	tool_argv(t, tool, args, path, sizeof(path), argv, 32);
	r->pid = -1;
	r->err_fd = memfd_create("tool-stderr", MFD_CLOEXEC);
	if (r->err_fd < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	r->pid = fork();
	if (r->pid < 0) {
		err = -errno;
		close(r->err_fd);
		r->err_fd = -1;
		return err;
	}
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(r->err_fd, 2);
		unsetenv("IIOD_REMOTE");
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

/* Wait up to @timeout_s for the tool; SIGKILL it then (-ETIMEDOUT) */
static int tool_wait(struct tool_run *r, int timeout_s, int *status)
{
	double end = now_s() + timeout_s;
	int ret = 0;
	pid_t p;

	*status = -1;
	if (r->pid <= 0)
		return -ECHILD;
	for (;;) {
		p = waitpid(r->pid, status, WNOHANG);
		if (p == r->pid)
			break;
		if (p < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (now_s() > end) {
			kill(r->pid, SIGKILL);
			while (waitpid(r->pid, status, 0) < 0 && errno == EINTR)
				;
			ret = -ETIMEDOUT;
			break;
		}
		sleep_ms(10);
	}
	r->pid = -1;
	return ret;
}

/* Print up to @max_lines lines of @text as "# <prefix>| line" */
static void show_lines(const char *prefix, const char *text, int max_lines)
{
	char buf[512];
	const char *p = text;
	int lines = 0;

	while (*p && lines < max_lines) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		size_t c = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;

		memcpy(buf, p, c);
		buf[c] = '\0';
		DIAG("  %s| %s", prefix, buf);
		lines++;
		p = nl ? nl + 1 : p + len;
	}
}

/* Show the tool's stderr and release it */
static void tool_finish(struct tool_run *r)
{
	char buf[4096];
	ssize_t n;

	if (r->pid > 0) {
		int status;

		tool_wait(r, 0, &status);
	}
	if (r->err_fd < 0)
		return;
	n = pread(r->err_fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = '\0';
		show_lines("stderr", buf, 20);
	}
	close(r->err_fd);
	r->err_fd = -1;
}

static void describe_status(const char *what, int ret, int status)
{
	if (ret)
		DIAG("%s: %s", what, strerror(-ret));
	else if (WIFEXITED(status))
		DIAG("%s: exit status %d", what, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		DIAG("%s: killed by signal %d", what, WTERMSIG(status));
}

/* ------------------------------------------------------------------ */
/* iio_info output                                                     */
/* ------------------------------------------------------------------ */

/*
 * Find the section of iio_info's output describing iio:device@devnum
 * called @name: from its "\tiio:deviceN: NAME" line to the next line with
 * a single leading tab. Returns a malloc()ed copy or NULL.
 */
static char *info_section(const char *out, int devnum, const char *name)
{
	char head[160];
	const char *p, *end;
	char *s;

	snprintf(head, sizeof(head), "\n\tiio:device%d: %s", devnum, name);
	p = strstr(out, head);
	if (!p)
		return NULL;
	p++;
	end = p + 1;
	for (;;) {
		end = strchr(end, '\n');
		if (!end) {
			end = p + strlen(p);
			break;
		}
		if (end[1] == '\t' && end[2] != '\t')
			break;
		if (end[1] != '\t')
			break;
		end++;
	}
	s = strndup(p, (size_t)(end - p));
	return s;
}

/* The line of @sec whose first non-blank text starts with @start */
static const char *find_line(const char *sec, const char *start,
			     char *line, size_t size)
{
	const char *p = sec;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *q = p;

		while (q < p + len && (*q == '\t' || *q == ' '))
			q++;
		if (!strncmp(q, start, strlen(start))) {
			size_t c = len < size - 1 ? len : size - 1;

			memcpy(line, p, c);
			line[c] = '\0';
			return line;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                             */
/* ------------------------------------------------------------------ */

FIXTURE(libiio) {
	struct tools t;
	struct inst adc;
	struct inst dac;
	char *out;
};

FIXTURE_SETUP(libiio)
{
	static const char *const tools[] = {
		"iio_info", "iio_readdev", "iio_writedev",
	};
	char path[PATH_MAX + 80];
	unsigned int i;
	int ret;

	self->adc.devnum = -1;
	self->dac.devnum = -1;
	unsetenv("IIOD_REMOTE");
	self->out = malloc(OUT_SIZE);
	ASSERT_NE(NULL, self->out);
	ASSERT_EQ(0, tools_init(&self->t));
	ASSERT_EQ(0, access(self->t.loader, X_OK)) {
		TH_LOG("%s: %s (tests/Makefile copies libiio's tools)",
		       self->t.loader, strerror(errno));
	}
	for (i = 0; i < ARRAY_SIZE(tools); i++) {
		snprintf(path, sizeof(path), "%s/%s", self->t.dir, tools[i]);
		ASSERT_EQ(0, access(path, X_OK)) {
			TH_LOG("%s: %s", path, strerror(errno));
		}
	}
	ASSERT_EQ(0, inst_create_unique(&self->adc, INST_ADC, "lioadc"));
	/* no teardown after a failed setup: remove the ADC here */
	ret = inst_create_unique(&self->dac, INST_DAC, "liodac");
	if (ret)
		inst_destroy(&self->adc);
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(libiio)
{
	inst_destroy(&self->dac);
	inst_destroy(&self->adc);
	free(self->out);
}

/* ------------------------------------------------------------------ */
/* iio_info                                                            */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(libiio, info_lists_devices, INFO_TIMEOUT_S + 60)
{
	char path[PATH_MAX + 80], line[512], want[64];
	char *argv[32], *sec = NULL, *dsec = NULL;
	static const char *const args[] = { "-u", "local:", NULL };
	int status = 0, ret, c;

	tool_argv(&self->t, "iio_info", args, path, sizeof(path), argv, 32);
	ret = run_capture(argv, self->out, OUT_SIZE, INFO_TIMEOUT_S, &status);
	describe_status("iio_info -u local:", ret, status);
	ASSERT_EQ(0, ret);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		show_lines("iio_info", self->out, 40);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	show_lines("iio_info", self->out, 4);

	sec = info_section(self->out, self->adc.devnum, self->adc.name);
	if (!sec)
		show_lines("iio_info", self->out, 60);
	ASSERT_NE(NULL, sec) {
		TH_LOG("no \"iio:device%d: %s\" in iio_info's output",
		       self->adc.devnum, self->adc.name);
	}
	show_lines("adc", sec, 3);
	EXPECT_NE(NULL, find_line(sec, "5 channels found", line, sizeof(line))) {
		TH_LOG("ADC: expected 5 channels");
	}
	for (c = 0; c < ADC_NUM_CH; c++) {
		char idx[32];

		snprintf(want, sizeof(want), "voltage%d:", c);
		snprintf(idx, sizeof(idx), "index: %d,", c);
		if (!find_line(sec, want, line, sizeof(line))) {
			EXPECT_TRUE(false) {
				TH_LOG("ADC: no channel line '%s'", want);
			}
			continue;
		}
		EXPECT_NE(NULL, strstr(line, "(input")) {
			TH_LOG("'%s': not an input", line);
		}
		EXPECT_NE(NULL, strstr(line, idx)) {
			TH_LOG("'%s': expected %s", line, idx);
		}
		EXPECT_NE(NULL, strstr(line, "16/16>>0")) {
			TH_LOG("'%s': expected a 16/16>>0 format", line);
		}
	}
	if (find_line(sec, "timestamp:", line, sizeof(line))) {
		EXPECT_NE(NULL, strstr(line, "index: 4,"));
		EXPECT_NE(NULL, strstr(line, "64/64>>0"));
	} else {
		EXPECT_TRUE(false) {
			TH_LOG("ADC: no timestamp channel");
		}
	}
	EXPECT_NE(NULL, strstr(sec, " sampling_frequency value: ")) {
		TH_LOG("ADC: no sampling_frequency attribute");
	}
	EXPECT_NE(NULL, strstr(sec, "sampling_frequency value: 10000\n")) {
		TH_LOG("ADC: sampling_frequency is not the default 10000");
	}

	/* and the DAC, with its output channels */
	dsec = info_section(self->out, self->dac.devnum, self->dac.name);
	EXPECT_NE(NULL, dsec) {
		TH_LOG("no \"iio:device%d: %s\" in iio_info's output",
		       self->dac.devnum, self->dac.name);
	}
	for (c = 0; dsec && c < DAC_NUM_CH; c++) {
		snprintf(want, sizeof(want), "voltage%d:", c);
		if (!find_line(dsec, want, line, sizeof(line))) {
			EXPECT_TRUE(false) {
				TH_LOG("DAC: no channel line '%s'", want);
			}
			continue;
		}
		EXPECT_NE(NULL, strstr(line, "(output")) {
			TH_LOG("'%s': not an output", line);
		}
	}
	free(dsec);
	free(sec);
}

/* ------------------------------------------------------------------ */
/* iio_readdev                                                         */
/* ------------------------------------------------------------------ */

/*
 * Run iio_readdev on the ADC at RD_FREQ for @scans scans of @mask
 * (channel arguments given unless @all: then libiio enables every input
 * channel, the timestamp too) and check its stdout against the ramp.
 */
static void readdev_check(struct __test_metadata *_metadata,
			  struct _test_data_libiio *self, unsigned int mask,
			  bool all, long scans)
{
	char nscans[32], bufsz[32];
	const char *args[16];
	struct ramp_check rc;
	struct tool_run r = { .pid = -1, .err_fd = -1 };
	long long ov0 = 0, ov1 = 0, v;
	uint64_t bytes = 0, want;
	uint8_t head[16], buf[65536];
	size_t nhead = 0;
	double end, t0;
	int pfd[2], n = 0, status = 0, ret, c;

	ramp_init(&rc, mask, false);
	want = (uint64_t)scans * rc.l.size;
	ASSERT_EQ(0, inst_set_ll(&self->adc, "sampling_frequency", RD_FREQ));
	ASSERT_EQ(0, inst_read_ll(&self->adc, "overruns", &ov0));

	snprintf(nscans, sizeof(nscans), "%ld", scans);
	snprintf(bufsz, sizeof(bufsz), "%d", RD_BUF);
	args[n++] = "-u";
	args[n++] = "local:";
	args[n++] = "-T";
	args[n++] = "30000";
	args[n++] = "-b";
	args[n++] = bufsz;
	args[n++] = "-s";
	args[n++] = nscans;
	args[n++] = self->adc.name;
	if (!all) {
		static const char *const ch[] = {
			"voltage0", "voltage1", "voltage2", "voltage3",
		};

		for (c = 0; c < ADC_NUM_CH; c++)
			if (mask & ADC_CH(c))
				args[n++] = ch[c];
	}
	args[n] = NULL;
	DIAG("iio_readdev -u local: -T 30000 -b %s -s %s %s%s (%zu-byte scans, %d Hz)",
	     bufsz, nscans, self->adc.name,
	     all ? "" : " voltage0 voltage1 voltage2 voltage3", rc.l.size,
	     RD_FREQ);

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ret = tool_spawn(&self->t, "iio_readdev", args, -1, pfd[1], &r);
	close(pfd[1]);
	if (ret)
		close(pfd[0]);
	ASSERT_EQ(0, ret);

	t0 = now_s();
	end = t0 + STREAM_TIMEOUT_S;
	for (;;) {
		double left = end - now_s();
		ssize_t got;

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		/* POLLHUP alone (no data) is the end of the output */
		ret = wait_readable(pfd[0], (int)(left * 1000) + 1);
		if (ret < 0 && ret != -EIO)
			break;
		if (ret == 0)
			continue;
		got = read(pfd[0], buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			break;
		}
		ret = 0;
		if (got == 0)
			break;	/* EOF */
		bytes += (uint64_t)got;
		if (!rc.scans && nhead < rc.l.size) {
			/* the first scan's n starts the expected sequence */
			size_t take = rc.l.size - nhead;
			uint8_t *p = buf;

			if (take > (size_t)got)
				take = (size_t)got;
			memcpy(head + nhead, p, take);
			nhead += take;
			if (nhead < rc.l.size)
				continue;
			rc.expect = (uint16_t)(get_le16(head + rc.l.off[0]) -
					       rc.l.ch[0]);
			ramp_feed(&rc, head, rc.l.size);
			ramp_feed(&rc, p + take, (size_t)got - take);
			continue;
		}
		ramp_feed(&rc, buf, (size_t)got);
	}
	close(pfd[0]);
	if (ret) {
		DIAG("reading iio_readdev's output: %s after %.1f s",
		     strerror(-ret), now_s() - t0);
		kill(r.pid, SIGKILL);
	}
	status = 0;
	c = tool_wait(&r, EXIT_TIMEOUT_S, &status);
	describe_status("iio_readdev", c, status);
	DIAG("read %" PRIu64 " bytes (%" PRIu64 " scans) in %.1f s, first scan n=%u",
	     bytes, rc.scans, now_s() - t0, rc.first_n);
	tool_finish(&r);
	ASSERT_EQ(0, inst_read_ll(&self->adc, "overruns", &ov1));

	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, c);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_FALSE(rc.failed) {
		TH_LOG("ramp: %s (ADC overruns during the run: %lld)", rc.err,
		       ov1 - ov0);
	}
	EXPECT_EQ(want, bytes) {
		TH_LOG("expected %ld scans of %zu bytes", scans, rc.l.size);
	}
	EXPECT_EQ((uint64_t)scans, rc.scans);
	/* libiio enabled the buffer itself, then read it all: n from 0 */
	EXPECT_EQ(0, rc.first_n) {
		TH_LOG("first scan n=%u, expected 0 (the enable by libiio)",
		       rc.first_n);
	}
	/* libiio disabled the buffer again */
	ASSERT_EQ(0, inst_read_ll(&self->adc, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
	/* and set its length to 4 x -b (dmabuf_dac.rst, Standard clients) */
	ASSERT_EQ(0, inst_read_ll(&self->adc, "buffer0/length", &v));
	EXPECT_EQ(LIBIIO_NB_BLOCKS * RD_BUF, v);
}

TEST_F_TIMEOUT(libiio, readdev_ramp, STREAM_TIMEOUT_S + EXIT_TIMEOUT_S + 60)
{
	readdev_check(_metadata, self, ADC_CH_ALL, false, RD_SCANS);
}

/* No channel argument: every input channel, the timestamp included */
TEST_F_TIMEOUT(libiio, readdev_all_channels,
	       STREAM_TIMEOUT_S + EXIT_TIMEOUT_S + 60)
{
	readdev_check(_metadata, self, ADC_ALL_TS, true, RD_SCANS / 2);
}

/* ------------------------------------------------------------------ */
/* iio_writedev                                                        */
/* ------------------------------------------------------------------ */

/*
 * Write all of @buf to the non-blocking @fd before @end; 0 or -errno.
 * A tool that exits early makes it fail with -EPIPE.
 */
static int write_until(int fd, const uint8_t *buf, size_t len, double end)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		double left = end - now_s();
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		n = write(fd, buf + done, len - done);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Feed iio_writedev WR_SCANS ramp scans (n from 0) on stdin, DAC at
 * WR_FREQ (WR_FREQ_S with @samples). @samples: pass -s WR_SCANS;
 * otherwise iio_writedev runs until end of input, which this test delays
 * until the DAC has played all that was pushed.
 */
static void writedev_check(struct __test_metadata *_metadata,
			   struct _test_data_libiio *self, bool samples)
{
	char bufsz[32], nscans[32];
	const char *args[16];
	struct scan_layout l;
	struct dac_counters cnt = { 0 };
	struct tool_run r = { .pid = -1, .err_fd = -1 };
	uint8_t *data;
	long long v, length = 0;
	double t0, end;
	int pfd[2], n = 0, status = 0, ret, wret, c;
	const int freq = samples ? WR_FREQ_S : WR_FREQ;

	layout_init(&l, ADC_CH_ALL);
	data = malloc((size_t)WR_SCANS * l.size);
	ASSERT_NE(NULL, data);
	ramp_fill(&l, data, 0, WR_SCANS);
	ASSERT_EQ(0, inst_set_ll(&self->dac, "sampling_frequency", freq));

	snprintf(bufsz, sizeof(bufsz), "%d", WR_BUF);
	snprintf(nscans, sizeof(nscans), "%d", WR_SCANS);
	args[n++] = "-u";
	args[n++] = "local:";
	args[n++] = "-T";
	args[n++] = "30000";
	args[n++] = "-b";
	args[n++] = bufsz;
	if (samples) {
		args[n++] = "-s";
		args[n++] = nscans;
	}
	args[n++] = self->dac.name;
	args[n++] = "voltage0";
	args[n++] = "voltage1";
	args[n++] = "voltage2";
	args[n++] = "voltage3";
	args[n] = NULL;
	DIAG("iio_writedev -u local: -T 30000 -b %s%s%s %s voltage0..3 < %d ramp scans (DAC at %d Hz)",
	     bufsz, samples ? " -s " : "", samples ? nscans : "",
	     self->dac.name, WR_SCANS, freq);

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ret = tool_spawn(&self->t, "iio_writedev", args, pfd[0], -1, &r);
	close(pfd[0]);
	if (ret) {
		close(pfd[1]);
		free(data);
	}
	ASSERT_EQ(0, ret);
	fcntl(pfd[1], F_SETFL, O_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);

	t0 = now_s();
	end = t0 + STREAM_TIMEOUT_S;
	wret = write_until(pfd[1], data, (size_t)WR_SCANS * l.size, end);
	free(data);
	DIAG("stdin: %s after %.1f s", wret ? strerror(-wret) : "all written",
	     now_s() - t0);

	if (!samples && !wret) {
		/*
		 * Keep stdin open until the DAC has played every whole -b
		 * buffer iio_writedev pushed, and a little longer, so that
		 * nothing is queued when the end of input makes it disable
		 * the DAC.
		 */
		ret = dac_wait_consumed(&self->dac, WR_FULL,
					(int)((end - now_s()) * 1000), &cnt);
		DIAG("DAC played %lld scans before the end of input (%.1f s): %s",
		     cnt.consumed, now_s() - t0,
		     ret ? strerror(-ret) : "all pushed");
		sleep_ms(500);
	}
	close(pfd[1]);

	c = tool_wait(&r, wret ? 0 : EXIT_TIMEOUT_S, &status);
	describe_status("iio_writedev", c, status);
	tool_finish(&r);
	ret = dac_read_counters(&self->dac, &cnt);
	DIAG("DAC: scans_consumed %lld, mismatches %lld, underruns %lld",
	     cnt.consumed, cnt.mismatches, cnt.underruns);

	ASSERT_EQ(0, wret);
	ASSERT_EQ(0, c);
	ASSERT_EQ(0, ret);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, cnt.mismatches);
	/* libiio set the length to 4 x -b (dmabuf_dac.rst) */
	ASSERT_EQ(0, inst_read_ll(&self->dac, "buffer0/length", &length));
	EXPECT_EQ(LIBIIO_NB_BLOCKS * WR_BUF, length);
	if (samples) {
		/*
		 * iio_writedev pushes WR_FULL scans in whole buffers, then a
		 * last, partly filled buffer whole (its tail repeats the
		 * previous buffer's scans) and disables the buffer right
		 * after that push returned: what the DAC still had queued,
		 * at most buffer0/length scans, is dropped unplayed. The
		 * last push waited for room, so the DAC had played at least
		 * everything but buffer0/length scans of it all; it never
		 * reached the last buffer (3 buffers, 6 s at WR_FREQ_S,
		 * ahead of it), whose stale tail would count as mismatches.
		 */
		EXPECT_LE(WR_FULL + WR_BUF - length, cnt.consumed);
		EXPECT_GT(WR_FULL, cnt.consumed);
	} else {
		/*
		 * Exactly the whole buffers: the partly filled last one is
		 * never pushed.
		 */
		EXPECT_EQ(WR_FULL, cnt.consumed);
	}
	/* libiio disabled the buffer again */
	ASSERT_EQ(0, inst_read_ll(&self->dac, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
}

/* iio_writedev until end of input */
TEST_F_TIMEOUT(libiio, writedev_ramp_eof,
	       STREAM_TIMEOUT_S + EXIT_TIMEOUT_S + 60)
{
	writedev_check(_metadata, self, false);
}

/* iio_writedev -s: stops by itself after that many scans */
TEST_F_TIMEOUT(libiio, writedev_ramp_samples,
	       STREAM_TIMEOUT_S + EXIT_TIMEOUT_S + 60)
{
	writedev_check(_metadata, self, true);
}

TEST_HARNESS_MAIN
