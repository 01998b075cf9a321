// SPDX-License-Identifier: GPL-2.0
/*
 * bench_smoke: `make bench`'s quick sweep (BENCH_QUICK=1) as a smoke test.
 *
 * Each test runs the benchmark (tools/bench, built next to this program as
 * iio_bench) with --quick on one data path, and checks only that the path
 * delivered data with 0 gaps: for every point of the sweep (its block
 * sizes, both reader modes) the search found a rate at which a whole
 * window of scans arrived with no overrun and no missing or corrupted
 * scan, and no trial of any rate saw corrupted data or scans missing that
 * the overrun counter does not account for. It never checks a speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define CSV_MARK	"@@bench-csv: "
#define RUN_TIMEOUT_S	200	/* the quick sweep of one path, loaded TCG */
#define OUT_MAX		(256 * 1024)

/* CSV columns (tools/bench/main.c, csv_header()) */
enum {
	COL_KIND, COL_PATH, COL_MODE, COL_BLOCK, COL_BLOCKS, COL_ANCHOR,
	COL_STATUS, COL_RATE, COL_MB_S, COL_READER, COL_ENGINE, COL_OTHERS,
	COL_WINDOW, COL_TRIALS, COL_SEARCH, COL_FAIL_RATE, COL_LAG,
	COL_UNDERRUNS, COL_ERRORS, COL_UNEXPLAINED, COL_NOTE, NR_COLS
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Runs "iio_bench --quick --no-limits --paths PATH" from this program's
 * directory; its output in @out, its wait status in @status. Returns 0,
 * -ETIMEDOUT (killed) or -errno.
 */
static int run_bench(const char *path, char *out, size_t size, int *status)
{
	char exe[4096], *slash;
	double end = mono_s() + RUN_TIMEOUT_S;
	size_t used = 0;
	int pfd[2], ret = 0;
	ssize_t n;
	pid_t pid;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 16);
	if (n < 0)
		return -errno;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	memcpy(slash + 1, "iio_bench", sizeof("iio_bench"));
	if (access(exe, X_OK))
		return -errno;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
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
		execl(exe, exe, "--quick", "--no-limits", "--paths", path,
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = end - mono_s();

		if (left <= 0) {
			ret = -ETIMEDOUT;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(pfd[0], out + used, size - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
		if (used == size - 1)
			break;
	}
	out[used] = 0;
	close(pfd[0]);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return ret;
}

/* Splits the CSV row @line (modified) into @f; returns the field count. */
static int split_csv(char *line, char *f[NR_COLS])
{
	int n = 0;

	while (n < NR_COLS) {
		f[n++] = line;
		line = strchr(line, ',');
		if (!line)
			break;
		*line++ = 0;
	}
	return n;
}

FIXTURE(bench) {
	char *out;
};

FIXTURE_SETUP(bench)
{
	self->out = malloc(OUT_MAX);
	ASSERT_NE(NULL, self->out);
}

FIXTURE_TEARDOWN(bench)
{
	free(self->out);
}

/*
 * The quick sweep of @path: every point of both modes delivered a window
 * of data with 0 gaps, and no trial saw a bug.
 */
static void smoke(struct __test_metadata *_metadata, char *out,
		  const char *path)
{
	int status = -1, rows[2] = { 0, 0 }, ret, nf;
	char *line, *next, *f[NR_COLS];

	ret = run_bench(path, out, OUT_MAX, &status);
	/* the bench's own output but the CSV rows, as diagnostics */
	for (line = out; *line; line = next) {
		size_t len = strcspn(line, "\n");

		next = line[len] ? line + len + 1 : line + len;
		if (strncmp(line, CSV_MARK, strlen(CSV_MARK)))
			printf("# %.*s\n", (int)len, line);
	}
	fflush(stdout);
	ASSERT_EQ(0, ret) {
		TH_LOG("iio_bench: %s", strerror(-ret));
	}
	ASSERT_TRUE(WIFEXITED(status)) {
		TH_LOG("iio_bench ended by signal %d", WTERMSIG(status));
	}
	/* 1: corrupted data or unexplained gaps; 2: could not run */
	EXPECT_EQ(0, WEXITSTATUS(status));

	for (line = strstr(out, CSV_MARK); line; line = strstr(next, CSV_MARK)) {
		line += strlen(CSV_MARK);
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		else
			next = line + strlen(line);
		if (strncmp(line, "point,", 6))
			continue;
		nf = split_csv(line, f);
		ASSERT_EQ(NR_COLS, nf) {
			TH_LOG("a CSV row of %d fields", nf);
		}
		EXPECT_STREQ(path, f[COL_PATH]);
		/* a rate found: a whole window with no overrun or gap */
		EXPECT_TRUE(!strcmp(f[COL_STATUS], "ok") ||
			    !strcmp(f[COL_STATUS], "top")) {
			TH_LOG("%s %s, %s-byte blocks x %s: %s (%s)", path,
			       f[COL_MODE], f[COL_BLOCK], f[COL_BLOCKS],
			       f[COL_STATUS], f[COL_NOTE]);
		}
		EXPECT_LT(0, atof(f[COL_RATE]));
		EXPECT_LT(0, atof(f[COL_MB_S])) {
			TH_LOG("%s %s, %s-byte blocks: no data in the window",
			       path, f[COL_MODE], f[COL_BLOCK]);
		}
		/* over every trial of every rate */
		EXPECT_EQ(0, atoll(f[COL_ERRORS])) {
			TH_LOG("%s %s, %s-byte blocks: corrupted scans", path,
			       f[COL_MODE], f[COL_BLOCK]);
		}
		EXPECT_EQ(0, atoll(f[COL_UNEXPLAINED])) {
			TH_LOG("%s %s, %s-byte blocks: scans missing beyond the overruns",
			       path, f[COL_MODE], f[COL_BLOCK]);
		}
		if (!strcmp(f[COL_MODE], "fetch"))
			rows[0]++;
		else if (!strcmp(f[COL_MODE], "all"))
			rows[1]++;
	}
	/* both reader modes, the same points */
	EXPECT_LT(0, rows[0]);
	EXPECT_EQ(rows[0], rows[1]);
}

TEST_F_TIMEOUT(bench, fileio, 240)
{
	smoke(_metadata, self->out, "fileio");
}

TEST_F_TIMEOUT(bench, seed, 240)
{
	smoke(_metadata, self->out, "seed");
}

TEST_F_TIMEOUT(bench, heap, 240)
{
	smoke(_metadata, self->out, "heap");
}

TEST_F_TIMEOUT(bench, udmabuf, 240)
{
	smoke(_metadata, self->out, "udmabuf");
}

TEST_F_TIMEOUT(bench, loopback, 240)
{
	smoke(_metadata, self->out, "loopback");
}

TEST_HARNESS_MAIN
