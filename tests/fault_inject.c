// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: systematic fault injection (issue 8, section 3), as
 * syzkaller does it.
 *
 * Each test takes one user-triggered operation of the module and runs it
 * with its n-th allocation failed, for n = 1, 2, ... until it runs with no
 * fault left: N is written to /proc/thread-self/fail-nth right before the
 * one system call and read back right after it (0: the fault was injected;
 * still N: the call made fewer than N allocations, the loop is over), then
 * disarmed (0) so that nothing after the call is hit. fail-nth counts the
 * calls into failslab and fail_page_alloc of this thread only and takes
 * precedence over their probability, interval, times and task-filter
 * (lib/fault-inject.c, should_fail_ex()): no probability is set, so
 * nothing else fails. The set-up makes every allocation count:
 * ignore-gfp-wait=N (sleeping allocations), ignore-gfp-highmem=N,
 * min-order=0, verbose=0 (no "FAULT_INJECTION: forcing a failure" dump).
 * The memory of the test process is locked (mlockall) so that no page
 * fault of its own consumes the fault. FI_VERBOSE=2 in the environment
 * sets verbose=2 instead, for triage: a stack trace per injected fault
 * (except in __GFP_NOWARN allocations), which fails the kernel log.
 *
 * Every attempt must return 0 (or the expected value) or an errno of the
 * operation's set (ENOMEM; for ATTACH of a udmabuf also EINVAL, which
 * udmabuf's vmap returns for any failure of vm_map_ram()), never hang,
 * and leave the process with the same file descriptors, mappings, DMABUFs
 * and module references as before. After each attempt the device must
 * work: the operation succeeds without a fault (or succeeded with one)
 * and a short stream or DMABUF round trip gives exactly the ramp from
 * scan 0. Leaks of kernel memory are kmemleak's (end of the boot), splats
 * scripts/qemu-run.sh's.
 *
 * Warnings. An injected page allocation failure never prints "page
 * allocation failure": should_fail_alloc_page() is checked in
 * prepare_alloc_pages(), which returns NULL before the slow path and its
 * warn_alloc() (mm/page_alloc.c). Callers may warn on their own: vmalloc
 * prints "vmalloc error: ..." with a stack dump unless __GFP_NOWARN. That
 * hit the module's ALLOC (vmalloc_user(), fixed in src/helpers.c) and
 * hits the system heap's vmap (vmalloc() of a page array, not ours): for
 * that one the heap test leaves vmalloc() out with the stack trace filter
 * (reject-start/reject-end). Everywhere else the filter leaves out
 * kmemleak's allocation of its own metadata, which falls back to a pool.
 *
 * One fault per call (fail-nth) cannot fail the fileio blocks: the
 * module allocates them with kvrealloc(), which retries a failed
 * kmalloc() once; those points "succeed anyway".
 *
 * Operations (one test each): mkdir of a dmabuf_adc and of a dmabuf_dac;
 * buffer enable of an ADC and of a DAC for read()/write() and for DMABUF
 * use; the DAC's first write(); seed ALLOC and ENQUEUE (ADC; DAC with a
 * pending dependency); mainline ATTACH of a udmabuf and of a DMA-heap
 * DMABUF; mainline ENQUEUE; mmap() of an ALLOCed block;
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE of our block. Each prints its number of
 * injection points.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NSCANS		256	/* scans per check */
#define CHECK_BYTES	(NSCANS * SCAN)
#define FREQ		100000
#define LENGTH		256
#define ALLOC_BYTES	(4 * 4096)	/* a block of several pages */
#define WAIT_MS		5000
#define SETTLE_MS	2000	/* for references dropped by a worker */
#define FI_DIR		"/sys/kernel/debug"
#define FI_MAX		3000
#define BUFINFO		FI_DIR "/dma_buf/bufinfo"
#define REFCNT		MODULE_SYSFS "/refcnt"
#define NODE_DIR	"/tmp/fault_inject"
#define NFDS		32
#define KMEMLEAK_ALLOC	"__alloc_object"

/* ------------------------------------------------------------------ */
/* Fault injection                                                     */
/* ------------------------------------------------------------------ */

/*
 * Let fail-nth fail any allocation of this thread, and only that:
 * probability 0 keeps failslab and fail_page_alloc from failing anything
 * on their own (fail-nth does not need it).
 */
static int fault_injection_setup(void)
{
	const char *verbose = getenv("FI_VERBOSE") ?: "0";
	const char *const set[][2] = {
		{ FI_DIR "/failslab/probability", "0" },
		{ FI_DIR "/failslab/ignore-gfp-wait", "N" },
		{ FI_DIR "/failslab/verbose", verbose },
		{ FI_DIR "/fail_page_alloc/probability", "0" },
		{ FI_DIR "/fail_page_alloc/ignore-gfp-wait", "N" },
		{ FI_DIR "/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ FI_DIR "/fail_page_alloc/min-order", "0" },
		{ FI_DIR "/fail_page_alloc/verbose", verbose },
		{ FI_DIR "/failslab/reject-start", "0" },
		{ FI_DIR "/failslab/reject-end", "0" },
		{ FI_DIR "/fail_page_alloc/reject-start", "0" },
		{ FI_DIR "/fail_page_alloc/reject-end", "0" },
	};
	size_t i;
	int ret;

	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		ret = sysfs_write(set[i][0], set[i][1]);
		if (ret) {
			UTIL_LOG("write %s to %s: %s", set[i][1], set[i][0],
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * Address range [start, end) of the kernel function @name (/proc/kallsyms:
 * its address, and the next text symbol's). 0, -ENOENT, -EEXIST (more
 * than one) or -errno.
 */
static int ksym_range(const char *name, unsigned long long *start,
		      unsigned long long *end)
{
	unsigned long long addr, s = 0, e = ULLONG_MAX;
	char line[512], sym[256], type;
	int pass, found = 0;
	FILE *f;

	for (pass = 0; pass < 2; pass++) {
		f = fopen("/proc/kallsyms", "re");
		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%llx %c %255s", &addr, &type, sym) != 3 ||
			    (type != 't' && type != 'T'))
				continue;
			if (pass == 0 && !strcmp(sym, name)) {
				s = addr;
				found++;
			} else if (pass == 1 && addr > s && addr < e)
				e = addr;
		}
		fclose(f);
		if (!found)
			return -ENOENT;
		if (found > 1)
			return -EEXIST;
	}
	if (e == ULLONG_MAX)
		return -ENOENT;
	*start = s;
	*end = e;
	return 0;
}

/*
 * Inject no fault into allocations made under the kernel function @name
 * (the stack trace filter, FAULT_INJECTION_STACKTRACE_FILTER: such
 * allocations are not counted either); NULL clears the filter. The
 * fixture's set-up and teardown clear it.
 */
static int fi_reject(const char *name)
{
	static const char *const attrs[] = { "failslab", "fail_page_alloc" };
	unsigned long long start = 0, end = 0;
	char path[PATH_MAX], v[32];
	size_t i;
	int ret;

	if (name) {
		ret = ksym_range(name, &start, &end);
		if (ret)
			return ret;
	}
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		snprintf(path, sizeof(path), FI_DIR "/%s/reject-start",
			 attrs[i]);
		snprintf(v, sizeof(v), "%#llx", start);
		ret = sysfs_write(path, v);
		if (ret)
			return ret;
		snprintf(path, sizeof(path), FI_DIR "/%s/reject-end",
			 attrs[i]);
		snprintf(v, sizeof(v), "%#llx", end);
		ret = sysfs_write(path, v);
		if (ret)
			return ret;
	}
	if (!name)
		return 0;
	return 0;
}

/* Arm fail-nth: the @n-th allocation of this thread from now on fails */
static int fi_arm(int nth, int n)
{
	char v[16];
	int len = snprintf(v, sizeof(v), "%d", n);

	return pwrite(nth, v, len, 0) == len ? 0 : -errno;
}

/*
 * Read fail-nth back and disarm it: 0 if the fault was injected, > 0 if
 * the call made fewer allocations; -errno if fail-nth failed.
 */
static int fi_end(int nth)
{
	char v[16] = "";
	ssize_t r = pread(nth, v, sizeof(v) - 1, 0);
	int err = r < 0 ? -errno : 0;

	if (pwrite(nth, "0", 1, 0) != 1 && !err)
		err = -errno;
	return err ? err : atoi(v);
}

/* A system call's result: its value, or -errno */
static long sys_ret(long r)
{
	return r < 0 ? -errno : r;
}

/* The same for mmap() */
static long mmap_ret(void *p)
{
	return p == MAP_FAILED ? -errno : (long)p;
}

/*
 * Runs @call, one system call (wrapped in sys_ret()/mmap_ret()), with
 * allocation @n failed; sets `injected`. Nothing but the call runs armed.
 */
#define FI_CALL(n, call) ({						\
	long _ret;							\
	int _left, _arm;						\
	_arm = fi_arm(self->nth, (n));					\
	ASSERT_EQ(0, _arm) {						\
		TH_LOG("writing fail-nth: %s", strerror(-_arm));	\
	}								\
	_ret = (call);							\
	_left = fi_end(self->nth);					\
	ASSERT_LE(0, _left) {						\
		TH_LOG("reading fail-nth: %s", strerror(-_left));	\
	}								\
	injected = _left == 0;						\
	_ret;								\
})

/* Touch @kb KiB of stack so that no stack page fault happens later */
static void __attribute__((noinline)) touch_stack(size_t kb)
{
	volatile char buf[512 * 1024];
	size_t i;

	if (kb * 1024 > sizeof(buf))
		kb = sizeof(buf) / 1024;
	for (i = 0; i < kb * 1024; i += 1024)
		buf[i] = 0;
}

/* A line in the kernel log, to attribute what follows it */
static void kmsg_mark(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd, len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, line, len) < 0)
		DIAG("writing to /dev/kmsg: %s", strerror(errno));
	close(fd);
}

/* ------------------------------------------------------------------ */
/* What an attempt must leave as it was                                */
/* ------------------------------------------------------------------ */

/* Entries of directory @path (without . and ..), or -errno */
static int count_dir(const char *path)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n - 1;	/* opendir's own descriptor */
}

/* Lines of @path, or -errno */
static int count_lines(const char *path)
{
	char line[512];
	int n = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* DMABUFs in the system ("Total N objects" of bufinfo), or -errno */
static long count_dmabufs(void)
{
	char line[512];
	long n = -EPROTO, v;
	FILE *f;

	f = fopen(BUFINFO, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Total %ld objects", &v) == 1)
			n = v;
	fclose(f);
	return n;
}

struct census {
	long long refcnt;	/* the module's references */
	long dmabufs;		/* DMABUFs in the system */
	int fds;		/* this process's file descriptors */
	int maps;		/* this process's mappings */
};

static int take_census(struct census *c)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->dmabufs = -1;
	ret = sysfs_read_ll(REFCNT, &c->refcnt);
	if (ret)
		return ret;
	c->dmabufs = count_dmabufs();
	if (c->dmabufs < 0)
		return (int)c->dmabufs;
	c->fds = count_dir("/proc/self/fd");
	if (c->fds < 0)
		return c->fds;
	c->maps = count_lines("/proc/self/maps");
	return c->maps < 0 ? c->maps : 0;
}

static bool census_equal(const struct census *a, const struct census *b)
{
	return a->refcnt == b->refcnt && a->dmabufs == b->dmabufs &&
	       a->fds == b->fds && a->maps == b->maps;
}

/* ------------------------------------------------------------------ */
/* The fixture                                                         */
/* ------------------------------------------------------------------ */

FIXTURE(fi) {
	struct inst a;		/* an ADC */
	struct inst a2;		/* a second ADC */
	struct inst d;		/* a DAC */
	int fds[NFDS];
	int nfds;
	int nth;		/* /proc/thread-self/fail-nth */
	long long max_bytes;	/* dmabuf_max_bytes to restore, or -1 */
	struct census base;	/* before the first attempt */
	const char *op;		/* the operation, for messages */
	int n;			/* the allocation failed now */
	int points;		/* faults injected */
	int ok;			/* ... after which the call still succeeded */
	int failed;		/* ... after which it failed */
	int enomem;		/* ... with ENOMEM */
	int alt;		/* ... with the operation's other errno */
};

FIXTURE_SETUP(fi)
{
	int i, ret;

	self->a.devnum = self->a2.devnum = self->d.devnum = -1;
	for (i = 0; i < NFDS; i++)
		self->fds[i] = -1;
	self->nfds = 0;
	self->nth = -1;
	self->max_bytes = -1;
	ASSERT_TRUE(module_loaded());
	ASSERT_EQ(0, fault_injection_setup());
	/*
	 * kmemleak tracks each allocation with one of its own, which falls
	 * back to a pool when it fails (mm/kmemleak.c, mem_pool_alloc(),
	 * inlined in __alloc_object()): a fault there tests kmemleak, and
	 * would double every count and the run time. Not essential.
	 */
	ret = fi_reject(KMEMLEAK_ALLOC);
	if (ret)
		DIAG("fault_inject: kmemleak's allocations not left out: %s: %s",
		     KMEMLEAK_ALLOC, strerror(-ret));
	touch_stack(512);
	ASSERT_EQ(0, mlockall(MCL_CURRENT)) {
		TH_LOG("mlockall: %s", strerror(errno));
	}
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->nth) {
		TH_LOG("/proc/thread-self/fail-nth: %s", strerror(errno));
	}
	mkdir(NODE_DIR, 0700);
}

FIXTURE_TEARDOWN(fi)
{
	int i;

	fi_reject(NULL);
	if (self->nth >= 0) {
		if (pwrite(self->nth, "0", 1, 0) != 1)
			DIAG("disarming fail-nth: %s", strerror(errno));
		close(self->nth);
	}
	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	inst_destroy(&self->d);
	inst_destroy(&self->a);
	inst_destroy(&self->a2);
	if (self->max_bytes >= 0)
		dmabuf_max_bytes_set(self->max_bytes);
}

/* Remember @fd (>= 0) for the teardown */
static void keep_fd(FIXTURE_DATA(fi) *self, int fd)
{
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < self->nfds; i++) {
		if (self->fds[i] < 0) {
			self->fds[i] = fd;
			return;
		}
	}
	if (self->nfds < NFDS)
		self->fds[self->nfds++] = fd;
}

/* Close a kept fd now */
static void close_fd(FIXTURE_DATA(fi) *self, int fd)
{
	int i;

	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] == fd)
			self->fds[i] = -1;
	close(fd);
}

/*
 * Open device node @node, or, when devtmpfs has none (its node creation
 * is best effort: an allocation failure in device_add() leaves the device
 * without one), a node made in NODE_DIR from @sysdev ("MAJ:MIN").
 */
static int open_node(const char *node, const char *sysdev, int flags)
{
	char buf[32], path[PATH_MAX];
	unsigned int maj, min;
	int fd, err;

	fd = open(node, flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (sysfs_read(sysdev, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -ENOENT;
	snprintf(path, sizeof(path), NODE_DIR "/node%d", (int)getpid());
	unlink(path);
	if (mknod(path, S_IFCHR | 0600, makedev(maj, min)))
		return -errno;
	fd = open(path, flags | O_CLOEXEC);
	err = errno;
	unlink(path);
	return fd >= 0 ? fd : -err;
}

/* /dev/iio:deviceN of @a */
static int open_iio(const struct inst *a, int flags)
{
	char sysdev[PATH_MAX + 8];

	snprintf(sysdev, sizeof(sysdev), "%s/dev", a->dir);
	return open_node(a->chrdev, sysdev, flags);
}

/* /dev/iio:deviceN-dmabuf0 of @a */
static int open_chardev(const struct inst *a, int flags)
{
	char node[64], sysdev[PATH_MAX];

	inst_dmabuf_path(a, node, sizeof(node));
	snprintf(sysdev, sizeof(sysdev),
		 "/sys/class/misc/iio:device%d-dmabuf0/dev", a->devnum);
	return open_node(node, sysdev, flags);
}

/* Start of an operation's loop: the census every attempt must keep */
static void fi_begin(struct __test_metadata *_metadata,
		     FIXTURE_DATA(fi) *self, const char *op)
{
	int ret;

	self->op = op;
	self->points = self->ok = self->failed = 0;
	self->enomem = self->alt = 0;
	kmsg_mark("fault_inject: %s: injecting\n", op);
	ret = take_census(&self->base);
	ASSERT_EQ(0, ret) {
		TH_LOG("census: %s", strerror(-ret));
	}
}

/*
 * After an attempt (and the checks, everything of the attempt closed):
 * the same descriptors, mappings, DMABUFs and module references as
 * before. Allow SETTLE_MS for references a worker drops (a completed
 * block's).
 */
static void fi_census(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fi) *self)
{
	double end = now_s() + SETTLE_MS / 1000.0;
	struct census c;
	int ret;

	for (;;) {
		ret = take_census(&c);
		ASSERT_EQ(0, ret) {
			TH_LOG("census: %s", strerror(-ret));
		}
		if (census_equal(&c, &self->base) || now_s() > end)
			break;
		sleep_ms(10);
	}
	ASSERT_TRUE(census_equal(&c, &self->base)) {
		TH_LOG("%s, allocation %d failed: module refcnt %lld -> %lld, DMABUFs %ld -> %ld, fds %d -> %d, mappings %d -> %d",
		       self->op, self->n, self->base.refcnt, c.refcnt,
		       self->base.dmabufs, c.dmabufs, self->base.fds, c.fds,
		       self->base.maps, c.maps);
	}
}

/*
 * The result of an attempt: @ret must be @ok_ret (success) or -ENOMEM
 * (or -@alt, when not 0). Counts it; returns true on success.
 */
static bool fi_outcome(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fi) *self, bool injected, long ret,
		       bool success, int alt)
{
	if (!injected) {
		ASSERT_TRUE(success) {
			TH_LOG("%s without a fault: %s", self->op,
			       ret < 0 ? strerror((int)-ret) : "wrong value");
		}
		return true;
	}
	self->points++;
	if (success) {
		self->ok++;
		return true;
	}
	ASSERT_TRUE(ret == -ENOMEM || (alt && ret == -alt)) {
		TH_LOG("%s with allocation %d failed: %s (%ld), expected ENOMEM%s%s",
		       self->op, self->n,
		       ret < 0 ? strerror((int)-ret) : "no error", ret,
		       alt ? " or " : "", alt ? strerror(alt) : "");
	}
	self->failed++;
	if (ret == -ENOMEM)
		self->enomem++;
	else
		self->alt++;
	return false;
}

static void fi_report(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fi) *self)
{
	DIAG("fault_inject: %s: %d injection points (failed: %d with ENOMEM, %d with another errno; %d succeeded anyway)",
	     self->op, self->points, self->enomem, self->alt, self->ok);
	kmsg_mark("fault_inject: %s: %d injection points\n", self->op,
		  self->points);
	/* an operation that allocates nothing tests nothing */
	EXPECT_LT(0, self->failed);
}

/* ------------------------------------------------------------------ */
/* Checks: the device works                                            */
/* ------------------------------------------------------------------ */

#define CREATE(dev, type, prefix) do {					\
	ASSERT_EQ(0, inst_create_unique(&self->dev, (type), (prefix)));	\
	ASSERT_EQ(0, inst_configure(&self->dev, ADC_ALL_TS, FREQ, LENGTH, 0)); \
} while (0)

#define CREATE_ADC(dev, prefix)	CREATE(dev, INST_ADC, prefix)
#define CREATE_DAC(dev)		CREATE(dev, INST_DAC, "fidac")

/*
 * Check that @nscans scans of @buf are the ramp from scan 0 (or, unless
 * @from0, from any scan: consecutive scans, increasing timestamps)
 */
static void check_ramp(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fi) *self, const void *buf,
		       size_t nscans, bool from0, const char *what)
{
	struct ramp_check rc;
	int ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	if (!from0)
		ramp_resync(&rc, buf);
	ret = ramp_feed(&rc, buf, nscans * SCAN);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, allocation %d: %s: %s", self->op, self->n, what,
		       rc.err);
	}
	ASSERT_EQ(nscans, rc.scans);
}

/*
 * read() from the ADC @a (configured, no DMABUF user), through @rfd (its
 * buffer fd: /dev/iio:deviceN opens once) or else its node: enable (if
 * disabled), the ramp from scan 0, disable.
 */
static void adc_fileio_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fi) *self, const struct inst *a,
			     int rfd)
{
	uint8_t buf[CHECK_BYTES];
	struct ramp_check rc;
	int fd = rfd, ret;

	if (rfd < 0) {
		fd = open_iio(a, O_RDONLY | O_NONBLOCK);
		ASSERT_LE(0, fd) {
			TH_LOG("open %s: %s", a->chrdev, strerror(-fd));
		}
	}
	ret = inst_buffer_enable(a);
	ASSERT_EQ(0, ret) {
		if (rfd < 0)
			close(fd);
		TH_LOG("%s, after allocation %d: enable: %s", self->op,
		       self->n, strerror(-ret));
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	ret = stream_read(fd, &rc, NSCANS, WAIT_MS / 1000.0, buf, sizeof(buf),
			  NULL);
	if (rfd < 0)
		close(fd);
	inst_buffer_disable(a);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, after allocation %d: read(): %s%s%s", self->op,
		       self->n, strerror(-ret), rc.failed ? ": " : "",
		       rc.err);
	}
}

/*
 * write() to the DAC @d (configured, buffer disabled, @fd its node open
 * or -1): the ramp from scan 0 is played exactly.
 */
static void dac_fileio_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fi) *self, const struct inst *d,
			     int fd, bool written)
{
	struct scan_layout l;
	uint8_t buf[CHECK_BYTES];
	struct dac_counters c;
	bool own = fd < 0;
	ssize_t n;
	int ret;

	if (own) {
		fd = open_iio(d, O_WRONLY);
		ASSERT_LE(0, fd) {
			TH_LOG("open %s: %s", d->chrdev, strerror(-fd));
		}
	}
	if (!written) {
		layout_init(&l, ADC_ALL_TS);
		ramp_fill(&l, buf, 0, NSCANS);
		n = write_all_timeout(fd, buf, sizeof(buf), WAIT_MS);
		if (own)
			close(fd);
		ASSERT_EQ((ssize_t)sizeof(buf), n) {
			TH_LOG("%s, after allocation %d: write(): %s", self->op,
			       self->n, n < 0 ? strerror((int)-n) : "short");
		}
	} else if (own) {
		close(fd);
	}
	ret = inst_buffer_enable(d);
	ASSERT_EQ(0, ret);
	ret = dac_wait_consumed(d, NSCANS, WAIT_MS, &c);
	inst_buffer_disable(d);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, after allocation %d: the DAC played %lld scans of %d",
		       self->op, self->n, c.consumed, NSCANS);
	}
	EXPECT_EQ(NSCANS, c.consumed);
	EXPECT_EQ(0, c.mismatches) {
		TH_LOG("%s, after allocation %d: %lld mismatches", self->op,
		       self->n, c.mismatches);
	}
}

/* Status of the fences of @dfd (all of them): 1, 0 (pending) or -errno */
static int fence_status(struct __test_metadata *_metadata, int dfd)
{
	int sfd, st = 0, ret;

	sfd = dmabuf_export_sync_file(dfd, DMA_BUF_SYNC_RW);
	ASSERT_LE(0, sfd) {
		TH_LOG("EXPORT_SYNC_FILE: %s", strerror(-sfd));
	}
	ret = sync_file_status(sfd, &st);
	close(sfd);
	ASSERT_EQ(0, ret);
	return st;
}

/* Wait up to WAIT_MS for every fence of @dfd; its status (1 or -errno) */
static int fence_wait(struct __test_metadata *_metadata, int dfd)
{
	int sfd, st = 0, ret;

	sfd = dmabuf_export_sync_file(dfd, DMA_BUF_SYNC_RW);
	ASSERT_LE(0, sfd) {
		TH_LOG("EXPORT_SYNC_FILE: %s", strerror(-sfd));
	}
	ret = sync_file_wait(sfd, WAIT_MS, &st);
	close(sfd);
	ASSERT_EQ(0, ret) {
		TH_LOG("waiting for the block's fences: %s", strerror(-ret));
	}
	return st;
}

/*
 * ADC @a in DMABUF mode (through @cfd, the seed char device, or @bfd, a
 * buffer fd, with @dfd attached), buffer disabled, @dfd's fences
 * signalled: ENQUEUE unless @queued, enable, the block gets the ramp from
 * scan 0 (read through @map), disable.
 */
static void adc_dmabuf_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fi) *self, const struct inst *a,
			     int cfd, int bfd, int dfd, uint8_t *map,
			     bool queued)
{
	struct dmabuf_block b = { .fd = dfd, .map = map };
	struct ramp_check rc;
	struct block_wait w = {
		.wait = BLOCK_WAIT_SYNC_FILE, .timeout_ms = WAIT_MS,
		.rc = &rc, .bytes = CHECK_BYTES,
	};
	int ret;

	if (!queued) {
		ret = cfd >= 0 ? dmabuf_enqueue(cfd, dfd, CHECK_BYTES) :
			iio_buffer_enqueue(bfd, dfd, 0, CHECK_BYTES);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s, after allocation %d: ENQUEUE: %s",
			       self->op, self->n, strerror(-ret));
		}
	}
	ret = inst_buffer_enable(a);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, after allocation %d: enable: %s", self->op,
		       self->n, strerror(-ret));
	}
	/* all of the block's fences signal without error: the ramp from 0 */
	w.sfd = dmabuf_export_sync_file(dfd, DMA_BUF_SYNC_RW);
	ASSERT_LE(0, w.sfd) {
		TH_LOG("EXPORT_SYNC_FILE: %s", strerror(-w.sfd));
	}
	ramp_init(&rc, ADC_ALL_TS, false);
	ret = block_wait_check(&w, &b);
	close(w.sfd);
	inst_buffer_disable(a);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, after allocation %d: the block: %s", self->op,
		       self->n, w.why);
	}
	ASSERT_EQ((uint64_t)NSCANS, rc.scans);
}

/*
 * DAC @d in DMABUF mode through its seed char device @cfd, buffer
 * disabled: the block @dfd (mapped at @map) gets the ramp, is queued
 * unless @queued and played exactly; its fence signals without error.
 */
static void dac_dmabuf_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fi) *self, const struct inst *d,
			     int cfd, int dfd, uint8_t *map, bool queued)
{
	struct dac_counters c;
	struct scan_layout l;
	int ret, st;

	if (!queued) {
		layout_init(&l, ADC_ALL_TS);
		ASSERT_EQ(0, dmabuf_sync_start_rw(dfd));
		ramp_fill(&l, map, 0, NSCANS);
		ASSERT_EQ(0, dmabuf_sync_end_rw(dfd));
		ret = dmabuf_enqueue(cfd, dfd, CHECK_BYTES);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s, after allocation %d: ENQUEUE: %s",
			       self->op, self->n, strerror(-ret));
		}
	}
	ret = inst_buffer_enable(d);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s, after allocation %d: enable: %s", self->op,
		       self->n, strerror(-ret));
	}
	st = fence_wait(_metadata, dfd);
	ret = dac_read_counters(d, &c);
	inst_buffer_disable(d);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(1, st) {
		TH_LOG("%s, after allocation %d: the block's fence: %s",
		       self->op, self->n, status_str(st));
	}
	EXPECT_EQ(NSCANS, c.consumed);
	EXPECT_EQ(0, c.mismatches);
}

/* An ALLOCed block of @size bytes on @cfd, mapped */
static void alloc_block(struct __test_metadata *_metadata,
			FIXTURE_DATA(fi) *self, int cfd, size_t size,
			struct dmabuf_block *b)
{
	int ret = dmabuf_block_alloc(b, cfd, size, true);

	ASSERT_EQ(0, ret) {
		TH_LOG("ALLOC of %zu bytes: %s", size, strerror(-ret));
	}
	keep_fd(self, b->fd);
}

/* ------------------------------------------------------------------ */
/* Device creation (mkdir in configfs)                                 */
/* ------------------------------------------------------------------ */

static void create_test(struct __test_metadata *_metadata,
			FIXTURE_DATA(fi) *self, bool dac)
{
	enum inst_type type = dac ? INST_DAC : INST_ADC;
	char name[64], path[PATH_MAX];
	bool injected = true;
	struct inst *x = dac ? &self->d : &self->a;
	long ret;
	int fd;

	fi_begin(_metadata, self, dac ? "mkdir dmabuf_dac" : "mkdir dmabuf_adc");
	snprintf(name, sizeof(name), "fi%s%d", dac ? "dac" : "adc",
		 (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", inst_type_dir(type), name);
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, sys_ret(mkdir(path, 0755)));
		if (fi_outcome(_metadata, self, injected, ret, ret == 0, 0)) {
			/* the device is complete: it works, then goes */
			ret = inst_attach(x, type, name);
			ASSERT_EQ(0, ret) {
				TH_LOG("%s, allocation %d: mkdir succeeded, no device: %s",
				       self->op, self->n, strerror((int)-ret));
			}
		} else {
			/* nothing left behind; a new one works */
			ASSERT_FALSE(dir_exists(path));
			ASSERT_EQ(-ENOENT, iio_find_device(name)) {
				TH_LOG("%s, allocation %d: mkdir failed, the device is there",
				       self->op, self->n);
			}
			ret = inst_create(x, type, name);
			ASSERT_EQ(0, ret) {
				TH_LOG("%s, after allocation %d: %s", self->op,
				       self->n, strerror((int)-ret));
			}
		}
		ASSERT_EQ(0, inst_configure(x, ADC_ALL_TS, FREQ, LENGTH, 0));
		if (dac)
			dac_fileio_check(_metadata, self, x, -1, false);
		else
			adc_fileio_check(_metadata, self, x, -1);
		fd = open_chardev(x, O_RDWR);
		ASSERT_LE(0, fd) {
			TH_LOG("%s, allocation %d: open the DMABUF char device: %s",
			       self->op, self->n, strerror(-fd));
		}
		close(fd);
		ret = inst_destroy(x);
		ASSERT_EQ(0, ret);
		ASSERT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

TEST_F_TIMEOUT(fi, create_adc, 360)
{
	create_test(_metadata, self, false);
}

TEST_F_TIMEOUT(fi, create_dac, 360)
{
	create_test(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* Buffer enable                                                       */
/* ------------------------------------------------------------------ */

/* The one write() of an enable: buffer0/enable of @a opened before */
static int open_enable(const struct inst *a)
{
	char path[PATH_MAX];
	int fd;

	if (inst_path(a, "buffer0/enable", path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* 1 if @a's buffer is enabled, 0 if not */
static long long enabled(const struct inst *a)
{
	long long v = -1;

	inst_read_ll(a, "buffer0/enable", &v);
	return v;
}

/* Drop the fileio blocks of a disabled buffer (open and close DMABUF) */
static void drop_blocks(struct __test_metadata *_metadata,
			const struct inst *a)
{
	int fd = open_chardev(a, O_RDWR);

	ASSERT_LE(0, fd) {
		TH_LOG("open the DMABUF char device: %s", strerror(-fd));
	}
	close(fd);
}

/* Enable for read() (ADC) or write() (DAC), with the n-th allocation failed */
static void enable_fileio_test(struct __test_metadata *_metadata,
			       FIXTURE_DATA(fi) *self, bool dac)
{
	struct inst *x = dac ? &self->d : &self->a;
	bool injected = true;
	long ret;
	int en;

	if (dac)
		CREATE_DAC(d);
	else
		CREATE_ADC(a, "fiadc");
	fi_begin(_metadata, self, dac ? "enable (DAC, write())" :
		 "enable (ADC, read())");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		/* no blocks: the enable makes them */
		drop_blocks(_metadata, x);
		en = open_enable(x);
		ASSERT_LE(0, en);
		ret = FI_CALL(self->n, sys_ret(write(en, "1", 1)));
		close(en);
		if (fi_outcome(_metadata, self, injected, ret, ret == 1, 0)) {
			ASSERT_EQ(1, enabled(x));
			if (dac) {
				/* blocks of an enabled DAC: written, played */
				dac_fileio_check(_metadata, self, x, -1, false);
			} else {
				adc_fileio_check(_metadata, self, x, -1);
			}
		} else {
			ASSERT_EQ(0, enabled(x));
			if (dac)
				dac_fileio_check(_metadata, self, x, -1, false);
			else
				adc_fileio_check(_metadata, self, x, -1);
		}
		ASSERT_EQ(0, enabled(x));
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

TEST_F_TIMEOUT(fi, enable_adc_fileio, 120)
{
	enable_fileio_test(_metadata, self, false);
}

TEST_F_TIMEOUT(fi, enable_dac_fileio, 120)
{
	enable_fileio_test(_metadata, self, true);
}

/*
 * Enable for DMABUF use (the seed char device open, a block queued), with
 * the n-th allocation failed. A failed enable leaves the block queued or
 * cancels it (ECANCELED, the core's roll-back disables); the disable that
 * follows cancels it anyway.
 */
static void enable_dmabuf_test(struct __test_metadata *_metadata,
			       FIXTURE_DATA(fi) *self, bool dac)
{
	struct inst *x = dac ? &self->d : &self->a;
	struct dmabuf_block b;
	struct scan_layout l;
	bool injected = true;
	int cfd, en, st;
	long ret;

	if (dac)
		CREATE_DAC(d);
	else
		CREATE_ADC(a, "fiadc");
	cfd = open_chardev(x, O_RDWR);
	ASSERT_LE(0, cfd);
	keep_fd(self, cfd);
	alloc_block(_metadata, self, cfd, CHECK_BYTES, &b);
	if (dac) {
		layout_init(&l, ADC_ALL_TS);
		ramp_fill(&l, b.map, 0, NSCANS);
	}
	fi_begin(_metadata, self, dac ? "enable (DAC, DMABUF)" :
		 "enable (ADC, DMABUF)");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = dmabuf_enqueue(cfd, b.fd, CHECK_BYTES);
		ASSERT_EQ(0, ret) {
			TH_LOG("ENQUEUE before allocation %d: %s", self->n,
			       strerror((int)-ret));
		}
		en = open_enable(x);
		ASSERT_LE(0, en);
		ret = FI_CALL(self->n, sys_ret(write(en, "1", 1)));
		close(en);
		if (fi_outcome(_metadata, self, injected, ret, ret == 1, 0)) {
			ASSERT_EQ(1, enabled(x));
			if (dac)
				dac_dmabuf_check(_metadata, self, x, cfd, b.fd,
						 b.map, true);
			else
				adc_dmabuf_check(_metadata, self, x, cfd, -1,
						 b.fd, b.map, true);
		} else {
			/*
			 * Still queued, or cancelled if the core's roll-back
			 * disabled the buffer; then it works.
			 */
			ASSERT_EQ(0, enabled(x));
			st = fence_status(_metadata, b.fd);
			ASSERT_TRUE(st == 0 || st == -ECANCELED) {
				TH_LOG("%s, allocation %d: after the failed enable, the queued block's fence is %s",
				       self->op, self->n, status_str(st));
			}
			if (dac)
				dac_dmabuf_check(_metadata, self, x, cfd, b.fd,
						 b.map, st == 0);
			else
				adc_dmabuf_check(_metadata, self, x, cfd, -1,
						 b.fd, b.map, st == 0);
		}
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

TEST_F_TIMEOUT(fi, enable_adc_dmabuf, 120)
{
	enable_dmabuf_test(_metadata, self, false);
}

TEST_F_TIMEOUT(fi, enable_dac_dmabuf, 120)
{
	enable_dmabuf_test(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* The DAC's first write()                                             */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(fi, dac_write, 120)
{
	uint8_t buf[CHECK_BYTES];
	struct scan_layout l;
	bool injected = true;
	long ret;
	int fd;

	CREATE_DAC(d);
	fd = open_iio(&self->d, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	keep_fd(self, fd);
	layout_init(&l, ADC_ALL_TS);
	ramp_fill(&l, buf, 0, NSCANS);
	fi_begin(_metadata, self, "DAC write()");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		/* no blocks: this write() makes them */
		drop_blocks(_metadata, &self->d);
		ret = FI_CALL(self->n, sys_ret(write(fd, buf, sizeof(buf))));
		if (fi_outcome(_metadata, self, injected, ret,
			       ret == (long)sizeof(buf), 0)) {
			dac_fileio_check(_metadata, self, &self->d, fd, true);
		} else {
			drop_blocks(_metadata, &self->d);
			dac_fileio_check(_metadata, self, &self->d, fd, false);
		}
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

/* ------------------------------------------------------------------ */
/* Seed API: ALLOC, ENQUEUE                                            */
/* ------------------------------------------------------------------ */

/*
 * ALLOC of a 4-page block. dmabuf_max_bytes is set to two blocks: after
 * every attempt two blocks must fit, so a failed ALLOC that kept its
 * charge shows.
 */
TEST_F_TIMEOUT(fi, seed_alloc, 120)
{
	struct iio_dmabuf_alloc_req req = { .size = ALLOC_BYTES };
	struct dmabuf_block b, b2;
	bool injected = true;
	long long size;
	size_t i;
	long ret;
	int cfd;

	ASSERT_EQ(0, dmabuf_max_bytes_get(&self->max_bytes));
	CREATE_ADC(a, "fiadc");
	ASSERT_EQ(0, dmabuf_max_bytes_set(2 * ALLOC_BYTES));
	cfd = open_chardev(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	keep_fd(self, cfd);
	fi_begin(_metadata, self, "ALLOC");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, sys_ret(ioctl(cfd,
				IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req)));
		if (fi_outcome(_metadata, self, injected, ret, ret >= 0, 0)) {
			dmabuf_block_init(&b);
			b.fd = (int)ret;
			keep_fd(self, b.fd);
			size = dmabuf_size(b.fd);
			ASSERT_EQ(ALLOC_BYTES, size);
			b.size = ALLOC_BYTES;
			b.map = mmap(NULL, b.size, PROT_READ | PROT_WRITE,
				     MAP_SHARED, b.fd, 0);
			ASSERT_NE(MAP_FAILED, b.map);
			for (i = 0; i < b.size; i++)
				ASSERT_EQ(0, b.map[i]);
		} else {
			alloc_block(_metadata, self, cfd, ALLOC_BYTES, &b);
		}
		/* the second block fits: nothing of the failures is charged */
		alloc_block(_metadata, self, cfd, ALLOC_BYTES, &b2);
		adc_dmabuf_check(_metadata, self, &self->a, cfd, -1, b.fd,
				 b.map, false);
		close_fd(self, b.fd);
		b.fd = -1;
		dmabuf_block_free(&b);
		close_fd(self, b2.fd);
		b2.fd = -1;
		dmabuf_block_free(&b2);
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

/* ENQUEUE of an idle block on an ADC, buffer disabled */
TEST_F_TIMEOUT(fi, seed_enqueue, 120)
{
	struct iio_dmabuf req = { .bytes_used = CHECK_BYTES };
	struct dmabuf_block b;
	bool injected = true;
	int cfd, st;
	long ret;

	CREATE_ADC(a, "fiadc");
	cfd = open_chardev(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	keep_fd(self, cfd);
	alloc_block(_metadata, self, cfd, CHECK_BYTES, &b);
	req.fd = b.fd;
	fi_begin(_metadata, self, "seed ENQUEUE");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, sys_ret(ioctl(cfd,
				IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req)));
		if (fi_outcome(_metadata, self, injected, ret, ret == 0, 0)) {
			ASSERT_EQ(0, fence_status(_metadata, b.fd));
			adc_dmabuf_check(_metadata, self, &self->a, cfd, -1,
					 b.fd, b.map, true);
		} else {
			/* not queued: no fence of it pending */
			st = fence_status(_metadata, b.fd);
			ASSERT_EQ(1, st) {
				TH_LOG("%s, allocation %d failed: the block's fences: %s",
				       self->op, self->n, status_str(st));
			}
			adc_dmabuf_check(_metadata, self, &self->a, cfd, -1,
					 b.fd, b.map, false);
		}
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

/*
 * ENQUEUE on a DAC of a block that two ADCs are to fill (two pending
 * write fences: the DAC's dependency is a fence array). Then the ADCs
 * fill it (both with the ramp from scan 0), the DAC plays it.
 */
TEST_F_TIMEOUT(fi, seed_enqueue_dependent, 120)
{
	struct iio_dmabuf req = { .bytes_used = CHECK_BYTES };
	int cfd_a, cfd_a2, cfd_d, st;
	struct dac_counters c;
	struct dmabuf_block b;
	bool injected = true;
	long ret;

	CREATE_ADC(a, "fiadc");
	CREATE_ADC(a2, "fiadc");
	CREATE_DAC(d);
	cfd_a = open_chardev(&self->a, O_RDWR);
	ASSERT_LE(0, cfd_a);
	keep_fd(self, cfd_a);
	cfd_a2 = open_chardev(&self->a2, O_RDWR);
	ASSERT_LE(0, cfd_a2);
	keep_fd(self, cfd_a2);
	cfd_d = open_chardev(&self->d, O_RDWR);
	ASSERT_LE(0, cfd_d);
	keep_fd(self, cfd_d);
	alloc_block(_metadata, self, cfd_a, CHECK_BYTES, &b);
	req.fd = b.fd;
	fi_begin(_metadata, self, "seed ENQUEUE (DAC, dependent)");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ASSERT_EQ(0, dmabuf_enqueue(cfd_a, b.fd, CHECK_BYTES));
		ASSERT_EQ(0, dmabuf_enqueue(cfd_a2, b.fd, CHECK_BYTES));
		ret = FI_CALL(self->n, sys_ret(ioctl(cfd_d,
				IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req)));
		fi_outcome(_metadata, self, injected, ret, ret == 0, 0);
		ASSERT_EQ(0, inst_buffer_enable(&self->d));
		/* the ADCs fill it: the first, then the second (its fence waits) */
		ASSERT_EQ(0, inst_buffer_enable(&self->a));
		ASSERT_EQ(0, inst_buffer_enable(&self->a2));
		st = fence_wait(_metadata, b.fd);
		ASSERT_EQ(0, dac_read_counters(&self->d, &c));
		inst_buffer_disable(&self->a);
		inst_buffer_disable(&self->a2);
		inst_buffer_disable(&self->d);
		ASSERT_EQ(1, st) {
			TH_LOG("%s, allocation %d: the block's fences: %s",
			       self->op, self->n, status_str(st));
		}
		ASSERT_EQ(0, dmabuf_sync_start(b.fd));
		/* the second ADC's scans: it dropped those before its dependency */
		check_ramp(_metadata, self, b.map, NSCANS, false, "the block");
		ASSERT_EQ(0, dmabuf_sync_end(b.fd));
		if (ret == 0) {
			/* played once the ADCs were done */
			EXPECT_EQ(NSCANS, c.consumed);
			EXPECT_EQ(0, c.mismatches);
		} else {
			EXPECT_EQ(0, c.consumed);
			dac_dmabuf_check(_metadata, self, &self->d, cfd_d,
					 b.fd, b.map, false);
		}
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

/* ------------------------------------------------------------------ */
/* Mainline API: ATTACH, ENQUEUE                                       */
/* ------------------------------------------------------------------ */

/* A mainline DMABUF of CHECK_BYTES: its fd, mapping, memfd (udmabuf) */
struct ml_buf {
	int dfd;
	int memfd;
	uint8_t *map;
};

static void ml_buf_make(struct __test_metadata *_metadata,
			FIXTURE_DATA(fi) *self, bool heap, struct ml_buf *m)
{
	void *p;

	m->memfd = -1;
	if (heap) {
		m->dfd = dma_heap_alloc(DMA_HEAP_SYSTEM, CHECK_BYTES);
		ASSERT_LE(0, m->dfd) {
			TH_LOG("%s: %s", DMA_HEAP_SYSTEM, strerror(-m->dfd));
		}
	} else {
		m->dfd = udmabuf_alloc(CHECK_BYTES, &m->memfd);
		ASSERT_LE(0, m->dfd) {
			TH_LOG("%s: %s", UDMABUF_DEV, strerror(-m->dfd));
		}
		keep_fd(self, m->memfd);
	}
	keep_fd(self, m->dfd);
	p = mmap(NULL, CHECK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		 heap ? m->dfd : m->memfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	m->map = p;
}

/* An ADC with its buffer fd @bfd (kept) */
static int adc_buffer_fd(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fi) *self, const struct inst *a)
{
	int devfd, bfd;

	devfd = open_iio(a, O_RDWR);
	ASSERT_LE(0, devfd);
	keep_fd(self, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd) {
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s", strerror(-bfd));
	}
	keep_fd(self, bfd);
	return bfd;
}

/*
 * ATTACH with the n-th allocation failed. udmabuf's vmap turns every
 * failure of vm_map_ram() into EINVAL (drivers/dma-buf/udmabuf.c,
 * vmap_udmabuf()): for it, EINVAL is a clean failure too.
 */
static void attach_test(struct __test_metadata *_metadata,
			FIXTURE_DATA(fi) *self, bool heap)
{
	bool injected = true;
	struct ml_buf m;
	int bfd, fd;
	long ret;

	CREATE_ADC(a, "fiadc");
	bfd = adc_buffer_fd(_metadata, self, &self->a);
	ml_buf_make(_metadata, self, heap, &m);
	fd = m.dfd;
	/*
	 * The system heap's vmap (dma_buf_vmap() at ATTACH) allocates a
	 * temporary page array with vmalloc(), which has no __GFP_NOWARN:
	 * an injected failure there prints "vmalloc error: ... vm_struct
	 * allocation failed" and a stack dump (warn_alloc()) - the heap's
	 * own allocation, not the module's. vmalloc() is the one caller of
	 * __vmalloc_node_noprof() on this path (the heap's vmap() and
	 * everything else are still failed). This filter replaces
	 * kmemleak's (one range per attribute).
	 */
	if (heap) {
		ret = fi_reject("__vmalloc_node_noprof");
		ASSERT_EQ(0, ret) {
			TH_LOG("the stack trace filter: %s",
			       strerror((int)-ret));
		}
	}
	fi_begin(_metadata, self, heap ? "ATTACH (dma-heap)" :
		 "ATTACH (udmabuf)");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, sys_ret(ioctl(bfd,
				IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd)));
		if (!fi_outcome(_metadata, self, injected, ret, ret == 0,
				heap ? 0 : EINVAL)) {
			/* not attached: nothing to detach, and it attaches */
			ret = iio_buffer_detach(bfd, m.dfd);
			ASSERT_EQ(-EPERM, ret) {
				TH_LOG("%s, allocation %d failed: DETACH: %s",
				       self->op, self->n,
				       strerror((int)-ret));
			}
			ret = iio_buffer_attach(bfd, m.dfd);
			ASSERT_EQ(0, ret) {
				TH_LOG("%s, after allocation %d: %s",
				       self->op, self->n,
				       strerror((int)-ret));
			}
		}
		adc_dmabuf_check(_metadata, self, &self->a, -1, bfd, m.dfd,
				 m.map, false);
		ret = iio_buffer_detach(bfd, m.dfd);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s, allocation %d: DETACH: %s", self->op,
			       self->n, strerror((int)-ret));
		}
		/*
		 * No attachment left behind: the buffer serves read(), once
		 * the core released it (from a work item, after its last
		 * fence signalled: DETACH may return before).
		 */
		ret = wait_unattached(m.dfd, WAIT_MS);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s, allocation %d: still attached after DETACH: %s",
			       self->op, self->n, strerror((int)-ret));
		}
		adc_fileio_check(_metadata, self, &self->a, bfd);
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

TEST_F_TIMEOUT(fi, attach_udmabuf, 120)
{
	attach_test(_metadata, self, false);
}

TEST_F_TIMEOUT(fi, attach_heap, 120)
{
	attach_test(_metadata, self, true);
}

/* Mainline ENQUEUE of an attached udmabuf, ADC disabled */
TEST_F_TIMEOUT(fi, mainline_enqueue, 120)
{
	struct iio_dmabuf req = { .bytes_used = CHECK_BYTES };
	bool injected = true;
	struct ml_buf m;
	int bfd, st;
	long ret;

	CREATE_ADC(a, "fiadc");
	bfd = adc_buffer_fd(_metadata, self, &self->a);
	ml_buf_make(_metadata, self, false, &m);
	ASSERT_EQ(0, iio_buffer_attach(bfd, m.dfd));
	req.fd = m.dfd;
	fi_begin(_metadata, self, "mainline ENQUEUE");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, sys_ret(ioctl(bfd,
				IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req)));
		if (fi_outcome(_metadata, self, injected, ret, ret == 0, 0)) {
			ASSERT_EQ(0, fence_status(_metadata, m.dfd));
			adc_dmabuf_check(_metadata, self, &self->a, -1, bfd,
					 m.dfd, m.map, true);
		} else {
			/* no fence of it pending */
			st = fence_status(_metadata, m.dfd);
			ASSERT_TRUE(st == 1 || st < 0) {
				TH_LOG("%s, allocation %d failed: a fence is pending",
				       self->op, self->n);
			}
			adc_dmabuf_check(_metadata, self, &self->a, -1, bfd,
					 m.dfd, m.map, false);
		}
		fi_census(_metadata, self);
	}
	ASSERT_EQ(0, iio_buffer_detach(bfd, m.dfd));
	fi_report(_metadata, self);
}

/* ------------------------------------------------------------------ */
/* mmap() of a block; sync_file export                                 */
/* ------------------------------------------------------------------ */

TEST_F_TIMEOUT(fi, mmap_block, 120)
{
	struct dmabuf_block b;
	bool injected = true;
	int cfd;
	long ret;

	CREATE_ADC(a, "fiadc");
	cfd = open_chardev(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	keep_fd(self, cfd);
	alloc_block(_metadata, self, cfd, ALLOC_BYTES, &b);
	ASSERT_EQ(0, munmap(b.map, b.size));
	b.map = NULL;
	fi_begin(_metadata, self, "mmap");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ret = FI_CALL(self->n, mmap_ret(mmap(NULL, b.size,
				PROT_READ | PROT_WRITE, MAP_SHARED, b.fd, 0)));
		if (fi_outcome(_metadata, self, injected, ret, ret >= 0, 0)) {
			b.map = (uint8_t *)ret;
		} else {
			b.map = mmap(NULL, b.size, PROT_READ | PROT_WRITE,
				     MAP_SHARED, b.fd, 0);
			ASSERT_NE(MAP_FAILED, b.map);
		}
		adc_dmabuf_check(_metadata, self, &self->a, cfd, -1, b.fd,
				 b.map, false);
		ASSERT_EQ(0, munmap(b.map, b.size));
		b.map = NULL;
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

/*
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE of our block while the ADC's fence is
 * pending: the sync_file must follow that fence.
 */
TEST_F_TIMEOUT(fi, export_sync_file, 120)
{
	struct dma_buf_export_sync_file req;
	struct dmabuf_block b;
	bool injected = true;
	int cfd, sfd, st = -1;
	long ret;

	CREATE_ADC(a, "fiadc");
	cfd = open_chardev(&self->a, O_RDWR);
	ASSERT_LE(0, cfd);
	keep_fd(self, cfd);
	alloc_block(_metadata, self, cfd, CHECK_BYTES, &b);
	fi_begin(_metadata, self, "EXPORT_SYNC_FILE");
	for (self->n = 1; injected; self->n++) {
		ASSERT_GE(FI_MAX, self->n);
		ASSERT_EQ(0, dmabuf_enqueue(cfd, b.fd, CHECK_BYTES));
		req.flags = DMA_BUF_SYNC_READ;
		req.fd = -1;
		ret = FI_CALL(self->n, sys_ret(ioctl(b.fd,
				DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &req)));
		if (fi_outcome(_metadata, self, injected, ret, ret == 0, 0)) {
			sfd = req.fd;
		} else {
			sfd = dmabuf_export_sync_file(b.fd, DMA_BUF_SYNC_READ);
			ASSERT_LE(0, sfd);
		}
		ASSERT_EQ(0, sync_file_status(sfd, &st));
		EXPECT_EQ(0, st);
		adc_dmabuf_check(_metadata, self, &self->a, cfd, -1, b.fd,
				 b.map, true);
		ASSERT_EQ(0, sync_file_status(sfd, &st));
		close(sfd);
		EXPECT_EQ(1, st) {
			TH_LOG("%s, allocation %d: the sync_file after the block completed: %s",
			       self->op, self->n, status_str(st));
		}
		fi_census(_metadata, self);
	}
	fi_report(_metadata, self);
}

TEST_HARNESS_MAIN
