// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' library: sysfs attributes, device discovery, loading the
 * module, the target, running programs.
 */
#include "iio_test_util.h"

/* ------------------------------------------------------------------ */
/* Raw sysfs access                                                    */
/* ------------------------------------------------------------------ */

/*
 * Write @val (exactly these bytes, in one write()) to @path.
 * Returns 0 or -errno (from open() or write()).
 */
int sysfs_write(const char *path, const char *val)
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
int sysfs_read(const char *path, char *buf, size_t size)
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
int parse_ll(const char *s, long long *out)
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

int sysfs_read_ll(const char *path, long long *val)
{
	char buf[128];
	int ret;

	ret = sysfs_read(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	return parse_ll(buf, val);
}

int sysfs_write_ll(const char *path, long long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", val);
	return sysfs_write(path, buf);
}

bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

bool dir_exists(const char *path)
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
int iio_find_device(const char *name)
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
int iio_wait_device(const char *name, bool present, int ms)
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
/* Module handling                                                     */
/* ------------------------------------------------------------------ */

bool module_loaded(void)
{
	return dir_exists(MODULE_SYSFS);
}

/* delete_module(2) of the module @name, O_NONBLOCK; 0 or -errno */
int module_remove(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

/* finit_module(2) of the file @path with @params; 0 or -errno */
int module_insert(const char *path, const char *params)
{
	int fd, ret, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0);
	err = errno;
	close(fd);
	return ret ? -err : 0;
}

int module_unload(void)
{
	return module_remove(MODULE_NAME);
}

int module_load(void)
{
	return module_insert(MODULE_PATH, "");
}

/* Load the module if it is not loaded. */
int module_ensure_loaded(void)
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

/* ------------------------------------------------------------------ */
/* The target                                                          */
/* ------------------------------------------------------------------ */

/*
 * Whether the converters of this target move data with a dmaengine
 * channel: 1 on aarch64 (versal, ZynqMP DMA), 0 on x86_64 (no dmaengine:
 * the CPU), -1 for any other machine (uname -m).
 */
int target_has_dma(void)
{
	struct utsname u;

	if (uname(&u))
		return -1;
	if (!strcmp(u.machine, "aarch64"))
		return 1;
	if (!strcmp(u.machine, "x86_64"))
		return 0;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Running helper programs                                             */
/* ------------------------------------------------------------------ */

/* Directory holding this executable (e.g. /tests), without trailing / */
int self_dir(char *buf, size_t size)
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
int run_capture(char *const argv[], char *out, size_t size,
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
