// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: regression tests for the defects of issue 8, section 1.
 *
 * Each test is the smallest program that shows one defect. Where a defect
 * hangs the caller (a deadlock in the kernel, a loop that ignores
 * SIGKILL), the operation runs in a child process watched with a
 * deadline: a hang becomes a failed assertion, the child is killed (and
 * left behind if it cannot die) and the test still ends. Tests whose
 * failure leaves such a process behind (a task stuck for good, a CPU
 * burnt, memory pressure) come last.
 *
 *  1. attach_races_enable, attach_fault_injection: ATTACH (mainline, on
 *     the buffer fd) that fails after mapping the DMABUF must not deadlock
 *     on the reservation lock the IIO core holds, nor leave the buffer
 *     counted as attached.
 *  2. dac_write_grown_scan: write() after the scan grew beyond the blocks
 *     sized by an earlier write() returns.
 *  3. dac_write_racing_disable: a block held by a writer during disable is
 *     not played after the next enable.
 *  4. seed_double_enqueue: two ENQUEUEs of one seed block at once: one
 *     fails, and the block's fence stays visible in its reservation object.
 *  5. seed_fences_in_order: fences of one context signal in seqno order (a
 *     sync_file merge keeps only the later one).
 *  6. dac_enable_rechecks_dmabuf_user: opening the seed char device while
 *     a DAC enables never yields a fileio session with the char device
 *     open.
 *  7. chardev_close_spares_mainline: closing the seed char device cancels
 *     only its own blocks, not a mainline ENQUEUE on the same buffer.
 *  8. length_bounded: an absurd buffer length is refused with EINVAL, not
 *     allocated (OOM killer).
 *  9. attach_leaves_dmabuf_blocks: an ATTACH (the IIO core holds the new
 *     DMABUF's reservation lock) never completes another DMABUF's block:
 *     dropping that block's mapping takes the other reservation lock.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define SCAN		16	/* bytes per scan: 4 channels + timestamp */
#define NFDS		16

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * waitpid() with a deadline: 0 and the status in @status once @pid is
 * reaped, -ETIMEDOUT if it is still there after @timeout_ms, or -errno.
 */
static int wait_child(pid_t pid, int timeout_ms, int *status)
{
	double end = now_s() + timeout_ms / 1000.0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_s() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

/* Sleep @s seconds (fractions too) */
static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* State letter of task @pid (R, S, D, Z...) from /proc, '?' if unknown */
static char task_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (sysfs_read(path, buf, sizeof(buf)) <= 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Log what task @pid is doing: state, wchan and kernel stack if shown */
static void log_task(const char *who, pid_t pid)
{
	char path[64], wchan[128] = "", stack[2048] = "";

	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	sysfs_read(path, wchan, sizeof(wchan));
	snprintf(path, sizeof(path), "/proc/%d/stack", (int)pid);
	sysfs_read(path, stack, sizeof(stack));
	DIAG("%s (pid %d): state %c, wchan '%s'", who, (int)pid,
	     task_state(pid), wchan);
	if (stack[0])
		DIAG("%s kernel stack:\n%s", who, stack);
}

/*
 * A child that would not end: SIGKILL it and wait @ms for it to go.
 * Returns true if it was reaped; otherwise it is left behind (stuck in the
 * kernel) and the caller reports the failure.
 */
static bool kill_child(pid_t pid, int ms)
{
	int status;

	kill(pid, SIGKILL);
	return wait_child(pid, ms, &status) == 0;
}

/* Shared memory for a child's reports (MAP_SHARED, zeroed); NULL on error */
static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* SYNC_IOC_MERGE of two sync_files: the new one's fd or -errno */
static int sync_file_merge(int sfd1, int sfd2)
{
	struct sync_merge_data m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "defects");
	m.fd2 = sfd2;
	if (ioctl(sfd1, SYNC_IOC_MERGE, &m))
		return -errno;
	return m.fence;
}

/* write @val to @path in a thread, with its result and when it returned */
struct sysfs_writer {
	char path[PATH_MAX];
	const char *val;
	int ret;
	double t_done;
};

static void *sysfs_writer_fn(void *arg)
{
	struct sysfs_writer *w = arg;

	w->ret = sysfs_write(w->path, w->val);
	w->t_done = now_s();
	return NULL;
}

/* An ENQUEUE (seed, on a char device; or mainline, on a buffer fd) in a thread */
struct enqueuer {
	int fd;			/* char device or buffer fd */
	int dfd;		/* the DMABUF */
	uint64_t bytes;
	int ret;
	double t_start, t_done;
};

static void *enqueuer_fn(void *arg)
{
	struct enqueuer *e = arg;

	e->t_start = now_s();
	e->ret = dmabuf_enqueue(e->fd, e->dfd, e->bytes);
	e->t_done = now_s();
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The fixture: up to three converters and the fds to close            */
/* ------------------------------------------------------------------ */

FIXTURE(defects) {
	struct inst d;		/* a DAC */
	struct inst d2;		/* a second DAC */
	struct inst a;		/* an ADC */
	int fds[NFDS];
	int nfds;
};

FIXTURE_SETUP(defects)
{
	int i;

	self->d.devnum = -1;
	self->d2.devnum = -1;
	self->a.devnum = -1;
	for (i = 0; i < NFDS; i++)
		self->fds[i] = -1;
	self->nfds = 0;
}

FIXTURE_TEARDOWN(defects)
{
	int i;

	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	inst_destroy(&self->d);
	inst_destroy(&self->d2);
	inst_destroy(&self->a);
}

/* Remember @fd (>= 0) for the teardown; returns its slot */
static int keep_fd(FIXTURE_DATA(defects) *self, int fd)
{
	int i;

	if (fd < 0)
		return -1;
	for (i = 0; i < self->nfds; i++) {
		if (self->fds[i] < 0) {
			self->fds[i] = fd;
			return i;
		}
	}
	if (self->nfds >= NFDS)
		return -1;
	self->fds[self->nfds] = fd;
	return self->nfds++;
}

/* Close a kept fd now */
static void close_fd(FIXTURE_DATA(defects) *self, int fd)
{
	int i;

	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] == fd)
			self->fds[i] = -1;
	close(fd);
}

#define CREATE(dev, type, prefix) do {					\
	ASSERT_EQ(0, inst_create_unique(&self->dev, (type), (prefix)));	\
	ASSERT_EQ(0, inst_configure(&self->dev, ADC_ALL_TS, 0, 0, 0));	\
} while (0)

#define CREATE_DAC(dev)	CREATE(dev, INST_DAC, "defdac")
#define CREATE_ADC(dev)	CREATE(dev, INST_ADC, "defadc")

/* fd = the DMABUF char device of @dev (kept) */
#define OPEN_CHARDEV(fd, dev) do {					\
	(fd) = inst_dmabuf_open(&self->dev, O_RDWR);			\
	ASSERT_LE(0, (fd)) {						\
		TH_LOG("open /dev/iio:device%d-dmabuf0: %s",		\
		       self->dev.devnum, strerror(-(fd)));		\
	}								\
	keep_fd(self, (fd));						\
} while (0)

/* devfd = /dev/iio:deviceN of @dev, bfd = its buffer0 fd (both kept) */
#define OPEN_BUFFER(devfd, bfd, dev) do {				\
	(devfd) = inst_open(&self->dev, O_RDWR);			\
	ASSERT_LE(0, (devfd)) {						\
		TH_LOG("open %s: %s", self->dev.chrdev,			\
		       strerror(-(devfd)));				\
	}								\
	keep_fd(self, (devfd));						\
	(bfd) = iio_buffer_get_fd((devfd), 0);				\
	ASSERT_LE(0, (bfd)) {						\
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s", strerror(-(bfd)));\
	}								\
	keep_fd(self, (bfd));						\
} while (0)

/* ALLOC @size bytes on char device @cfd into the DMABUF fd @dfd (kept) */
#define ALLOC(dfd, cfd, size) do {					\
	(dfd) = dmabuf_alloc((cfd), (size));				\
	ASSERT_LE(0, (dfd)) {						\
		TH_LOG("ALLOC %zu bytes: %s", (size_t)(size),		\
		       strerror(-(dfd)));				\
	}								\
	keep_fd(self, (dfd));						\
} while (0)

/* sfd = sync_file of the fences of @dfd a CPU writer waits for (all) */
#define EXPORT_ALL(sfd, dfd) do {					\
	(sfd) = dmabuf_export_sync_file((dfd), DMA_BUF_SYNC_WRITE);	\
	ASSERT_LE(0, (sfd)) {						\
		TH_LOG("EXPORT_SYNC_FILE: %s", strerror(-(sfd)));	\
	}								\
	keep_fd(self, (sfd));						\
} while (0)

/*
 * The IIO core's ENQUEUE holds the DMABUF's reservation lock while it
 * waits (IIO_DMABUF_ENQUEUE_WAIT_MS) for the earlier fences. Tests 4 and 5
 * use that to make seed ENQUEUEs of the same DMABUF wait on its lock:
 * @dfd gets a pending READ fence from the second DAC's char device
 * (@cfd2, buffer disabled), and a thread (@m) ENQUEUEs it through the
 * ADC's buffer fd @bfd: an ADC waits for every fence, so the core keeps
 * the lock for its whole timeout.
 */
#define HOLD_RESV_LOCK(m, th, cfd2_, bfd_, dfd_, bytes_) do {	\
	int _r = dmabuf_enqueue((cfd2_), (dfd_), (bytes_));		\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ENQUEUE on the second DAC: %s", strerror(-_r));	\
	}								\
	_r = iio_buffer_attach((bfd_), (dfd_));				\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("ATTACH on the ADC: %s", strerror(-_r));		\
	}								\
	(m).fd = (bfd_);						\
	(m).dfd = (dfd_);						\
	(m).bytes = (bytes_);						\
	ASSERT_EQ(0, pthread_create(&(th), NULL, enqueuer_fn, &(m)));	\
} while (0)

/*
 * The mainline ENQUEUE holding the lock must have waited its whole
 * timeout and failed with EBUSY: else the lock was not held as planned.
 */
#define CHECK_RESV_LOCK_HELD(m) do {					\
	ASSERT_EQ(-EBUSY, (m).ret) {					\
		TH_LOG("the mainline ENQUEUE meant to hold the lock returned %s", \
		       strerror(-(m).ret));				\
	}								\
	ASSERT_LE(IIO_DMABUF_ENQUEUE_WAIT_MS / 1000.0 * 0.9,		\
		  (m).t_done - (m).t_start);				\
} while (0)

/* ------------------------------------------------------------------ */
/* 7. Closing the seed char device spares mainline blocks              */
/* ------------------------------------------------------------------ */

#define CC_FREQ		2000
#define CC_SCANS	4000	/* 2 s at CC_FREQ */

/*
 * An ADC with its seed char device open and a udmabuf ATTACHed and
 * ENQUEUEd through the mainline API (buffer fd); enable (2 s transfer),
 * close the char device: "the character device is closed: its queued
 * blocks complete with ECANCELED" (dmabuf_api.rst) - its own, none here.
 * The mainline block's fence must stay pending, then signal without
 * error once filled.
 */
TEST_F_TIMEOUT(defects, chardev_close_spares_mainline, 60)
{
	const size_t bytes = CC_SCANS * SCAN;
	size_t size = (bytes + page_size() - 1) / page_size() * page_size();
	int cfd, devfd, bfd, dfd, memfd, sfd, ret, st = 0;
	double t_enable, t_check;

	CREATE_ADC(a);
	ASSERT_EQ(0, inst_set_ll(&self->a, "sampling_frequency", CC_FREQ));
	OPEN_CHARDEV(cfd, a);
	OPEN_BUFFER(devfd, bfd, a);
	dfd = udmabuf_alloc(size, &memfd);
	ASSERT_LE(0, dfd) {
		TH_LOG("udmabuf of %zu bytes: %s", size, strerror(-dfd));
	}
	keep_fd(self, dfd);
	keep_fd(self, memfd);
	ret = iio_buffer_attach(bfd, dfd);
	ASSERT_EQ(0, ret) {
		TH_LOG("ATTACH: %s", strerror(-ret));
	}
	ret = iio_buffer_enqueue(bfd, dfd, 0, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("mainline ENQUEUE: %s", strerror(-ret));
	}
	sfd = dmabuf_export_sync_file(dfd, DMA_BUF_SYNC_READ);
	ASSERT_LE(0, sfd);
	keep_fd(self, sfd);
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	t_enable = now_s();

	close_fd(self, cfd);
	ASSERT_EQ(0, sync_file_status(sfd, &st));
	t_check = now_s();
	DIAG("chardev_close_spares_mainline: %.3f s after enable, the mainline fence: %s",
	     t_check - t_enable, status_str(st));
	/* the transfer takes 2 s: it cannot have completed yet */
	ASSERT_GT(1.5, t_check - t_enable);
	EXPECT_EQ(0, st) {
		TH_LOG("closing the char device signalled the mainline block: %s",
		       status_str(st));
	}
	ASSERT_EQ(0, sync_file_wait(sfd, 15000, &st));
	EXPECT_EQ(1, st) {
		TH_LOG("the mainline block: %s, expected filled", status_str(st));
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_EQ(0, iio_buffer_detach(bfd, dfd));
}

/* ------------------------------------------------------------------ */
/* 9. ATTACH leaves other DMABUFs' blocks to whoever removed them      */
/* ------------------------------------------------------------------ */

#define AL_BLOCKS	8
#define AL_SECONDS	20

/* The kernel log from now on: a non-blocking /dev/kmsg at its end */
static int kmsg_open_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Lockdep and other reports in the kernel log read from @fd (printed) */
static int kmsg_reports(int fd)
{
	static const char *const words[] = {
		"WARNING:", "BUG:", "possible recursive locking",
		"possible circular locking", "inconsistent lock state",
	};
	char rec[2048], *msg;
	int found = 0;
	size_t i;
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			return found;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (strstr(msg, words[i])) {
				DIAG("kernel: %s", msg + 1);
				found++;
			}
		}
	}
}

/*
 * Whether lockdep watches (debug_locks 1 in /proc/lockdep_stats): 1, 0
 * (off: not built in, or off after a report), or -errno.
 */
static int lockdep_on(void)
{
	char buf[8192], *p;

	if (sysfs_read("/proc/lockdep_stats", buf, sizeof(buf)) <= 0)
		return 0;
	p = strstr(buf, " debug_locks:");
	if (!p)
		return -EINVAL;
	return atoi(p + strlen(" debug_locks:")) == 1;
}

/* ATTACH and DETACH one udmabuf on a buffer fd in a loop (thread) */
struct reattacher {
	int bfd, dfd;
	int stop;
	long calls, ok, errs;
	int last_err;
};

static void *reattacher_fn(void *arg)
{
	struct reattacher *r = arg;
	int ret;

	while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
		r->calls++;
		ret = iio_buffer_attach(r->bfd, r->dfd);
		if (ret) {
			r->errs++;
			r->last_err = -ret;
			continue;
		}
		r->ok++;
		iio_buffer_detach(r->bfd, r->dfd);
	}
	return NULL;
}

/*
 * Rounds of: AL_BLOCKS udmabufs ATTACHed, ENQUEUEd and DETACHed on an
 * ADC (their queued blocks then hold the last users of their kernel
 * mappings), enable, disable (the blocks are removed and completed with
 * ECANCELED), while a thread ATTACHes and DETACHes another udmabuf on the
 * same buffer. An ATTACH must not complete the removed blocks: the
 * last one's unmapping would take its DMABUF's reservation lock inside
 * the one the IIO core holds for the ATTACH (lockdep: possible recursive
 * locking), an ABBA deadlock with two such ATTACHes.
 */
TEST_F_TIMEOUT(defects, attach_leaves_dmabuf_blocks, 120)
{
	size_t size = page_size();
	int devfd, bfd, kfd, memfd, dfd, i, ret, rounds = 0, reports = 0;
	struct reattacher r = { 0 };
	long queued = 0;
	pthread_t th;
	double end;

	/* Only lockdep sees the nesting (the ABBA deadlock needs two ATTACHes) */
	ret = lockdep_on();
	ASSERT_LE(0, ret);
	if (!ret)
		SKIP(return, "lockdep is off: the nesting cannot be seen");
	CREATE_ADC(a);
	ASSERT_EQ(0, inst_set_ll(&self->a, "sampling_frequency", 1000));
	OPEN_BUFFER(devfd, bfd, a);
	kfd = kmsg_open_end();
	ASSERT_LE(0, kfd) {
		TH_LOG("/dev/kmsg: %s", strerror(-kfd));
	}
	keep_fd(self, kfd);
	r.dfd = udmabuf_alloc(size, &memfd);
	ASSERT_LE(0, r.dfd) {
		TH_LOG("udmabuf: %s", strerror(-r.dfd));
	}
	keep_fd(self, r.dfd);
	keep_fd(self, memfd);
	r.bfd = bfd;
	ASSERT_EQ(0, pthread_create(&th, NULL, reattacher_fn, &r));

	end = now_s() + AL_SECONDS;
	while (now_s() < end && !reports) {
		for (i = 0; i < AL_BLOCKS; i++) {
			dfd = udmabuf_alloc(size, &memfd);
			if (dfd < 0)
				break;
			close(memfd);
			ret = iio_buffer_attach(bfd, dfd);
			if (!ret) {
				queued += !iio_buffer_enqueue(bfd, dfd, 0, size);
				iio_buffer_detach(bfd, dfd);
			}
			close(dfd);
		}
		ret = inst_buffer_enable(&self->a);
		inst_buffer_disable(&self->a);
		if (ret)
			break;
		rounds++;
		reports = kmsg_reports(kfd);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
	ASSERT_EQ(0, join_within(th, 10));
	sleep_ms(200);
	reports += kmsg_reports(kfd);
	DIAG("attach_leaves_dmabuf_blocks: %d rounds of %d blocks (%ld queued); ATTACH: %ld calls, %ld ok, %ld failed (last %s)",
	     rounds, AL_BLOCKS, queued, r.calls, r.ok, r.errs,
	     r.errs ? strerror(r.last_err) : "-");
	EXPECT_EQ(0, reports) {
		TH_LOG("the kernel reported a locking problem (above)");
	}
	EXPECT_EQ(0, ret) {
		TH_LOG("enable: %s", strerror(-ret));
	}
	EXPECT_LT(10, rounds);
	EXPECT_LT((long)rounds * AL_BLOCKS / 2, queued);
	EXPECT_LT(0, r.ok);
	EXPECT_EQ(1, lockdep_on());
}

/* ------------------------------------------------------------------ */
/* 4. Two ENQUEUEs of the same seed block at once                      */
/* ------------------------------------------------------------------ */

#define DE_SCANS	16

/*
 * Two seed ENQUEUEs of block X on the DAC, both waiting on X's
 * reservation lock (held by a mainline ENQUEUE on the ADC). Exactly one
 * may queue X; the other fails with EBUSY (dmabuf_api.rst: "the block is
 * already queued on this buffer") or EPERM (mainline's answer). While X
 * is queued (DAC disabled), its reservation object must show it busy:
 * the exported sync_file is not signalled and poll() gives no POLLOUT.
 */
TEST_F_TIMEOUT(defects, seed_double_enqueue, 90)
{
	const size_t bytes = DE_SCANS * SCAN;
	struct enqueuer m = { 0 }, e1 = { 0 }, e2 = { 0 };
	int cfd, cfd2, devfd, bfd, x, sfd, st = 0, ok, ret;
	struct dac_counters c;
	pthread_t tm, t1, t2;

	CREATE_DAC(d);
	CREATE_DAC(d2);
	CREATE_ADC(a);
	OPEN_CHARDEV(cfd, d);
	OPEN_CHARDEV(cfd2, d2);
	OPEN_BUFFER(devfd, bfd, a);
	ALLOC(x, cfd, page_size());

	HOLD_RESV_LOCK(m, tm, cfd2, bfd, x, bytes);
	sleep_ms(500);
	e1.fd = cfd;
	e1.dfd = x;
	e1.bytes = bytes;
	e2 = e1;
	ASSERT_EQ(0, pthread_create(&t1, NULL, enqueuer_fn, &e1));
	/* e1 waits for the lock first (and took its seqno first) */
	sleep_ms(500);
	ASSERT_EQ(0, pthread_create(&t2, NULL, enqueuer_fn, &e2));
	ASSERT_EQ(0, join_within(tm, 30));
	ASSERT_EQ(0, join_within(t1, 30));
	ASSERT_EQ(0, join_within(t2, 30));
	CHECK_RESV_LOCK_HELD(m);
	DIAG("seed_double_enqueue: ENQUEUE 1: %s after %.2f s, ENQUEUE 2: %s after %.2f s",
	     e1.ret ? strerror(-e1.ret) : "ok", e1.t_done - e1.t_start,
	     e2.ret ? strerror(-e2.ret) : "ok", e2.t_done - e2.t_start);
	/* both really waited for the lock */
	ASSERT_LT(e1.t_start, m.t_done);
	ASSERT_LT(e2.t_start, m.t_done);

	ok = (e1.ret == 0) + (e2.ret == 0);
	ASSERT_EQ(1, ok) {
		TH_LOG("%d of the two ENQUEUEs of one block succeeded", ok);
	}
	ret = e1.ret ? e1.ret : e2.ret;
	EXPECT_TRUE(ret == -EBUSY || ret == -EPERM) {
		TH_LOG("the refused ENQUEUE: %s, expected EBUSY or EPERM",
		       strerror(-ret));
	}

	/* the second DAC's fence signals (ECANCELED): only the DAC's is left */
	close_fd(self, cfd2);
	EXPORT_ALL(sfd, x);
	ASSERT_EQ(0, sync_file_status(sfd, &st));
	EXPECT_EQ(0, st) {
		TH_LOG("block queued on the DAC (disabled), its sync_file: %s",
		       status_str(st));
	}
	EXPECT_EQ(0, poll_events(x, POLLOUT, 0)) {
		TH_LOG("poll(POLLOUT) reports the queued block idle");
	}

	/* it was queued indeed: it plays once the DAC runs */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, dac_wait_consumed(&self->d, DE_SCANS, 10000, &c)) {
		TH_LOG("scans_consumed %lld, expected %d", c.consumed,
		       DE_SCANS);
	}
	ASSERT_EQ(0, sync_file_wait(sfd, 10000, &st));
	EXPECT_EQ(1, st);
	sleep_ms(200);
	ASSERT_EQ(0, dac_read_counters(&self->d, &c));
	EXPECT_EQ(DE_SCANS, c.consumed);
}

/* ------------------------------------------------------------------ */
/* 5. Fences of one context signal in seqno order                      */
/* ------------------------------------------------------------------ */

#define FO_FREQ		1000
#define FO_SCANS_Y	16	/* played first: 16 ms */
#define FO_SCANS_X	1000	/* then 1 s */

/*
 * Seed ENQUEUE of X on the DAC waits on X's reservation lock (held by a
 * mainline ENQUEUE on the ADC) after taking its fence; meanwhile Y is
 * ENQUEUEd and queued at once. Both fences are on the DAC's fence
 * context. A sync_file merge of the two keeps only the later seqno of a
 * context, so it is "signalled" exactly when that fence is: the merge
 * must not report done while X or Y is still pending. Y plays first (it
 * was queued first); X then plays for 1 s: when the merge signals, both
 * must have signalled.
 */
TEST_F_TIMEOUT(defects, seed_fences_in_order, 90)
{
	struct enqueuer m = { 0 }, ex = { 0 };
	int cfd, cfd2, devfd, bfd, x, y, sfx, sfy, merged, ret;
	int stx = 0, sty = 0, stm = 0;
	pthread_t tm, tx;

	CREATE_DAC(d);
	CREATE_DAC(d2);
	CREATE_ADC(a);
	ASSERT_EQ(0, inst_set_ll(&self->d, "sampling_frequency", FO_FREQ));
	OPEN_CHARDEV(cfd, d);
	OPEN_CHARDEV(cfd2, d2);
	OPEN_BUFFER(devfd, bfd, a);
	ALLOC(x, cfd, FO_SCANS_X * SCAN);
	ALLOC(y, cfd, FO_SCANS_Y * SCAN);

	HOLD_RESV_LOCK(m, tm, cfd2, bfd, x, (uint64_t)FO_SCANS_Y * SCAN);
	sleep_ms(500);
	ex.fd = cfd;
	ex.dfd = x;
	ex.bytes = FO_SCANS_X * SCAN;
	ASSERT_EQ(0, pthread_create(&tx, NULL, enqueuer_fn, &ex));
	sleep_ms(500);
	ret = dmabuf_enqueue(cfd, y, FO_SCANS_Y * SCAN);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE Y: %s", strerror(-ret));
	}
	EXPORT_ALL(sfy, y);
	ASSERT_EQ(0, join_within(tm, 30));
	ASSERT_EQ(0, join_within(tx, 30));
	CHECK_RESV_LOCK_HELD(m);
	ASSERT_LT(ex.t_start, m.t_done);
	ASSERT_EQ(0, ex.ret) {
		TH_LOG("ENQUEUE X (after waiting for its lock): %s",
		       strerror(-ex.ret));
	}
	/* the second DAC's fence signals: X's sync_file holds the DAC's only */
	close_fd(self, cfd2);
	EXPORT_ALL(sfx, x);
	ASSERT_EQ(0, sync_file_status(sfx, &stx));
	ASSERT_EQ(0, sync_file_status(sfy, &sty));
	ASSERT_EQ(0, stx);
	ASSERT_EQ(0, sty);
	merged = sync_file_merge(sfx, sfy);
	ASSERT_LE(0, merged) {
		TH_LOG("SYNC_IOC_MERGE: %s", strerror(-merged));
	}
	keep_fd(self, merged);

	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	ASSERT_EQ(0, sync_file_wait(merged, 15000, &stm)) {
		TH_LOG("the merged sync_file never signalled");
	}
	ASSERT_EQ(0, sync_file_status(sfx, &stx));
	ASSERT_EQ(0, sync_file_status(sfy, &sty));
	DIAG("seed_fences_in_order: when the merge signalled (%s): X %s, Y %s",
	     status_str(stm), status_str(stx), status_str(sty));
	EXPECT_NE(0, stx) {
		TH_LOG("merge of X and Y signalled while X is pending: a later seqno signalled first");
	}
	EXPECT_NE(0, sty);
	ASSERT_EQ(0, sync_file_wait(sfx, 15000, &stx));
	EXPECT_EQ(1, stx);
	EXPECT_EQ(1, sty);
}

/* ------------------------------------------------------------------ */
/* 6. DAC enable re-checks for a DMABUF user                           */
/* ------------------------------------------------------------------ */

#define ER_LENGTH	262144	/* 4 MiB of fileio blocks to allocate */
#define ER_ROUNDS	60
#define ER_PLAY_MS	3000

/*
 * ALLOC a block on the DAC's char device @cfd, ENQUEUE one scan and wait
 * up to ER_PLAY_MS for its fence: 0 and the sync_file status in @st, or
 * -ETIMEDOUT (it did not play) or -errno; @what names the failed step.
 */
static int play_one_scan(int cfd, int *st, const char **what)
{
	int blk, sfd = -1, ret;

	*st = 0;
	*what = "ALLOC";
	blk = dmabuf_alloc(cfd, page_size());
	if (blk < 0)
		return blk;
	*what = "ENQUEUE";
	ret = dmabuf_enqueue(cfd, blk, SCAN);
	if (!ret) {
		*what = "EXPORT_SYNC_FILE";
		sfd = dmabuf_export_sync_file(blk, DMA_BUF_SYNC_WRITE);
		ret = sfd < 0 ? sfd : 0;
	}
	if (!ret) {
		*what = "waiting for the fence";
		ret = sync_file_wait(sfd, ER_PLAY_MS, st);
	}
	if (sfd >= 0)
		close(sfd);
	close(blk);
	return ret;
}

/*
 * Open the DAC's seed char device at varying moments during an enable
 * that allocates a large fileio buffer. Either the open fails with EBUSY
 * (the buffer is enabled for write()), or the enable goes DMABUF: then a
 * block ENQUEUEd on the char device plays. Never both succeed with a
 * fileio session (the char device's blocks never play, write() gets
 * EBUSY).
 */
TEST_F_TIMEOUT(defects, dac_enable_rechecks_dmabuf_user, 240)
{
	int i, k, cfd0, ret, st, both = 0, busy = 0, before = 0;
	double t_en = 0, t, delay;
	struct sysfs_writer w;
	const char *what;
	char en[PATH_MAX];
	pthread_t th;

	CREATE_DAC(d);
	ASSERT_EQ(0, inst_set_ll(&self->d, "buffer0/length", ER_LENGTH));
	ASSERT_EQ(0, inst_path(&self->d, "buffer0/enable", en, sizeof(en)));
	/* control: the char device open first, then enable: its blocks play */
	cfd0 = inst_dmabuf_open(&self->d, O_RDWR);
	ASSERT_LE(0, cfd0);
	ASSERT_EQ(0, sysfs_write(en, "1"));
	ret = play_one_scan(cfd0, &st, &what);
	ASSERT_EQ(0, ret) {
		TH_LOG("control (char device opened before the enable): %s: %s",
		       what, strerror(-ret));
	}
	ASSERT_EQ(1, st);
	ASSERT_EQ(0, sysfs_write(en, "0"));
	close(cfd0);

	/* how long an enable takes */
	for (k = 0; k < 3; k++) {
		t = now_s();
		ASSERT_EQ(0, sysfs_write(en, "1"));
		t = now_s() - t;
		ASSERT_EQ(0, sysfs_write(en, "0"));
		if (t > t_en)
			t_en = t;
	}
	DIAG("dac_enable_rechecks_dmabuf_user: enable with %d scans takes %.1f ms",
	     ER_LENGTH, t_en * 1000);

	for (i = 0; i < ER_ROUNDS; i++) {
		int cfd;

		delay = t_en * 1.2 * (i % 20) / 20;
		memset(&w, 0, sizeof(w));
		snprintf(w.path, sizeof(w.path), "%s", en);
		w.val = "1";
		ASSERT_EQ(0, pthread_create(&th, NULL, sysfs_writer_fn, &w));
		sleep_s(delay);
		cfd = inst_dmabuf_open(&self->d, O_RDWR);
		t = now_s();
		ASSERT_EQ(0, join_within(th, 30));
		ASSERT_EQ(0, w.ret) {
			TH_LOG("round %d: enable: %s", i, strerror(-w.ret));
		}
		if (cfd < 0) {
			EXPECT_EQ(-EBUSY, cfd) {
				TH_LOG("round %d: open during enable: %s", i,
				       strerror(-cfd));
			}
			busy++;
			ASSERT_EQ(0, sysfs_write(en, "0"));
			continue;
		}
		keep_fd(self, cfd);
		if (t < w.t_done)
			before++;
		both++;
		/* open and enabled: the session must be DMABUF */
		ret = play_one_scan(cfd, &st, &what);
		EXPECT_EQ(0, ret) {
			TH_LOG("round %d (open %.1f ms into a %.1f ms enable): char device open, buffer enabled: %s: %s%s",
			       i, delay * 1000, t_en * 1000, what,
			       strerror(-ret), ret == -ETIMEDOUT ?
			       " (its block does not play: a fileio session)" : "");
		}
		EXPECT_EQ(1, st);
		ASSERT_EQ(0, sysfs_write(en, "0"));
		close_fd(self, cfd);
		if (ret)
			break;
	}
	DIAG("dac_enable_rechecks_dmabuf_user: %d rounds: open refused %d, open and enabled %d (%d opened before the enable returned)",
	     i, busy, both, before);
}

/* ------------------------------------------------------------------ */
/* 3. write() racing disable                                           */
/* ------------------------------------------------------------------ */

#define WD_LENGTH	(1 << 19)	/* 2 blocks of 4 MiB */
#define WD_FREQ		10000
#define WD_TRIES	4

struct slow_writer {
	int fd;
	const void *src;
	size_t len;
	ssize_t ret;
	int err;
	double t_start, t_done;
	int done;
};

static void *slow_writer_fn(void *arg)
{
	struct slow_writer *w = arg;

	w->t_start = now_s();
	w->ret = write(w->fd, w->src, w->len);
	w->err = errno;
	w->t_done = now_s();
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Pages of the mapping @p (@len bytes) present in memory, or -errno */
static long resident_pages(void *p, size_t len, unsigned char *vec)
{
	size_t n = len / page_size(), i;
	long r = 0;

	if (mincore(p, len, vec))
		return -errno;
	for (i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

/*
 * A DAC enabled for write(), its two 4 MiB blocks free. A writer copies
 * one block's worth from a fresh memfd mapping, so every page faults in
 * copy_from_user: slow enough to disable the buffer while the writer holds
 * the block (its progress is seen with mincore()). Then enable again and
 * write nothing: nothing may play ("Disabling drops what was not
 * played", dmabuf_dac.rst; the write belonged to the disabled session).
 */
TEST_F_TIMEOUT(defects, dac_write_racing_disable, 180)
{
	const size_t block = (size_t)WD_LENGTH / 2 * SCAN;
	const long npages = (long)(block / page_size());
	struct dac_counters c;
	bool caught = false;
	unsigned char *vec;
	int devfd, try;

	CREATE_DAC(d);
	ASSERT_EQ(0, inst_set_ll(&self->d, "sampling_frequency", WD_FREQ));
	ASSERT_EQ(0, inst_set(&self->d, "buffer0/watermark", "1"));
	ASSERT_EQ(0, inst_set_ll(&self->d, "buffer0/length", WD_LENGTH));
	ASSERT_EQ(0, inst_set_ll(&self->d, "buffer0/watermark",
				 WD_LENGTH / 2));
	devfd = inst_open(&self->d, O_RDWR);
	ASSERT_LE(0, devfd);
	keep_fd(self, devfd);
	vec = malloc(npages);
	ASSERT_NE(NULL, vec);

	for (try = 0; try < WD_TRIES && !caught; try++) {
		struct slow_writer w = { 0 };
		long r_at = 0, r_after = 0;
		double t_dis0, t_dis1;
		bool busy;
		pthread_t th;
		void *src;
		int memfd;

		ASSERT_EQ(0, inst_buffer_enable(&self->d));
		memfd = memfd_create("src", MFD_CLOEXEC);
		ASSERT_LE(0, memfd);
		ASSERT_EQ(0, ftruncate(memfd, (off_t)block));
		src = mmap(NULL, block, PROT_READ, MAP_SHARED, memfd, 0);
		ASSERT_NE(MAP_FAILED, src);
		w.fd = devfd;
		w.src = src;
		w.len = block;
		ASSERT_EQ(0, pthread_create(&th, NULL, slow_writer_fn, &w));
		/* wait until the copy is under way, an eighth in */
		for (;;) {
			r_at = resident_pages(src, block, vec);
			ASSERT_LE(0, r_at);
			if (r_at >= npages / 8 ||
			    __atomic_load_n(&w.done, __ATOMIC_SEQ_CST))
				break;
		}
		busy = !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
		t_dis0 = now_s();
		ASSERT_EQ(0, inst_buffer_disable(&self->d));
		t_dis1 = now_s();
		r_after = resident_pages(src, block, vec);
		ASSERT_EQ(0, join_within(th, 60));
		DIAG("dac_write_racing_disable: try %d: disable at %ld/%ld pages copied, returned (%.1f ms) at %ld; write: %zd (%s) in %.1f ms",
		     try, r_at, npages, (t_dis1 - t_dis0) * 1000, r_after,
		     w.ret, w.ret < 0 ? strerror(w.err) : "ok",
		     (w.t_done - w.t_start) * 1000);
		/*
		 * The disable was issued early in the copy (it needs a few ms
		 * to reach the blocks): whether it then waits for the writer
		 * or not, the writer held a block of the session it ends.
		 */
		caught = busy && r_at < npages / 2;
		munmap(src, block);
		close(memfd);
	}
	free(vec);
	ASSERT_TRUE(caught) {
		TH_LOG("never caught the writer early in its copy: cannot test");
	}
	/* a new session, nothing written for it */
	ASSERT_EQ(0, inst_buffer_enable(&self->d));
	sleep_ms(1000);
	ASSERT_EQ(0, dac_read_counters(&self->d, &c));
	DIAG("dac_write_racing_disable: 1 s after the enable: consumed %lld, underruns %lld, mismatches %lld",
	     c.consumed, c.underruns, c.mismatches);
	EXPECT_EQ(0, c.consumed) {
		TH_LOG("data written during the disabled session played after the next enable");
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->d));
}

/* ------------------------------------------------------------------ */
/* 1. ATTACH failing after the mapping                                 */
/* ------------------------------------------------------------------ */

#define AR_SECONDS	20
#define AR_BYTES	(32u << 20)	/* a slow vmap: 8192 pages */
#define AR_STUCK_S	5.0		/* an ATTACH this long is stuck */

struct attacher {
	int stop;
	int in_call;
	double t_call;
	long calls, ok, busy, other;
	int other_err;
};

/* ATTACH/DETACH @dfd on @bfd until told to stop (child process) */
static void attacher_run(struct attacher *s, int bfd, int dfd)
{
	int r;

	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		s->t_call = now_s();
		__atomic_store_n(&s->in_call, 1, __ATOMIC_SEQ_CST);
		r = iio_buffer_attach(bfd, dfd);
		__atomic_store_n(&s->in_call, 0, __ATOMIC_SEQ_CST);
		s->calls++;
		if (r == 0) {
			s->ok++;
			iio_buffer_detach(bfd, dfd);
		} else if (r == -EBUSY) {
			s->busy++;
		} else {
			s->other++;
			s->other_err = -r;
		}
	}
}

/*
 * ATTACH of a large udmabuf on an ADC's buffer fd in a loop (child
 * process) while the test enables and disables the buffer. An ATTACH that
 * finds the buffer enabled for read() fails with EBUSY - also when the
 * enable lands between the module's two checks, after it mapped the
 * DMABUF under the reservation lock the IIO core holds. No ATTACH may
 * hang.
 */
TEST_F_TIMEOUT(defects, attach_races_enable, 120)
{
	int devfd, bfd, dfd, memfd, status = 0, toggles = 0, errs = 0, ret;
	int last_err = 0;
	struct attacher *s;
	bool hung = false;
	char en[PATH_MAX];
	double end;
	pid_t pid;

	CREATE_ADC(a);
	ASSERT_EQ(0, inst_path(&self->a, "buffer0/enable", en, sizeof(en)));
	OPEN_BUFFER(devfd, bfd, a);
	dfd = udmabuf_alloc(AR_BYTES, &memfd);
	ASSERT_LE(0, dfd) {
		TH_LOG("udmabuf of %u bytes: %s", AR_BYTES, strerror(-dfd));
	}
	keep_fd(self, dfd);
	keep_fd(self, memfd);
	s = shared_alloc(sizeof(*s));
	ASSERT_NE(NULL, s);

	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		attacher_run(s, bfd, dfd);
		_exit(0);
	}
	end = now_s() + AR_SECONDS;
	while (now_s() < end) {
		ret = sysfs_write(en, "1");
		if (ret) {
			errs++;
			last_err = ret;
		}
		sysfs_write(en, "0");
		toggles++;
		if (__atomic_load_n(&s->in_call, __ATOMIC_SEQ_CST) &&
		    now_s() - s->t_call > AR_STUCK_S) {
			hung = true;
			break;
		}
	}
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	if (!hung && wait_child(pid, (int)(AR_STUCK_S * 2000), &status))
		hung = true;
	DIAG("attach_races_enable: %d enables (%d failed, last %s); ATTACH: %ld calls, %ld ok, %ld EBUSY, %ld other (last %s)",
	     toggles, errs, errs ? strerror(-last_err) : "-", s->calls, s->ok, s->busy, s->other,
	     s->other ? strerror(s->other_err) : "-");
	if (hung) {
		log_task("the ATTACHing child", pid);
		if (!kill_child(pid, 5000))
			DIAG("attach_races_enable: pid %d is stuck in the kernel for good",
			     (int)pid);
	}
	ASSERT_FALSE(hung) {
		TH_LOG("an ATTACH racing enable/disable never returned (%.1f s)",
		       now_s() - s->t_call);
	}
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, errs);
	EXPECT_EQ(0, s->other) {
		TH_LOG("ATTACH failed with %s", strerror(s->other_err));
	}
	/* both outcomes happened: the race was run */
	EXPECT_LT(0, s->ok);
	EXPECT_LT(0, s->busy);
}

#define FI_DIR		"/sys/kernel/debug"
#define FI_MAX		2000

/* Let /proc/thread-self/fail-nth fail any allocation (see NOTES.md) */
static int fault_injection_setup(void)
{
	static const char *const set[][2] = {
		{ FI_DIR "/failslab/ignore-gfp-wait", "N" },
		{ FI_DIR "/failslab/verbose", "0" },
		{ FI_DIR "/fail_page_alloc/ignore-gfp-wait", "N" },
		{ FI_DIR "/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ FI_DIR "/fail_page_alloc/min-order", "0" },
		{ FI_DIR "/fail_page_alloc/verbose", "0" },
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

struct fi_result {
	int ret;	/* ATTACH: 0 or -errno */
	int left;	/* fail-nth read back: 0 if the fault was injected */
	int err;	/* -errno of the fail-nth set-up */
	int detach;	/* DETACH after a successful ATTACH: 0 or -errno */
};

/*
 * ATTACH on the ADC's buffer fd with its n-th allocation failed, for
 * n = 1, 2, ... until ATTACH runs with no fault left (each in a child
 * process: a hang is caught). Every failure must be clean: no hang (the
 * mapping dropped under the reservation lock the core holds), and
 * afterwards the buffer must not count a phantom attachment: enabled, it
 * serves read().
 */
TEST_F_TIMEOUT(defects, attach_fault_injection, 240)
{
	int devfd, bfd, dfd, memfd, n, status, ret, injected = 0;
	struct fi_result *res;
	uint8_t buf[64 * SCAN];
	bool done = false;
	pid_t pid;

	ASSERT_EQ(0, fault_injection_setup());
	CREATE_ADC(a);
	OPEN_BUFFER(devfd, bfd, a);
	dfd = udmabuf_alloc(page_size(), &memfd);
	ASSERT_LE(0, dfd);
	keep_fd(self, dfd);
	keep_fd(self, memfd);
	res = shared_alloc(sizeof(*res));
	ASSERT_NE(NULL, res);

	for (n = 1; n <= FI_MAX && !done; n++) {
		memset(res, 0, sizeof(*res));
		fflush(stdout);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			char v[16];
			int fd = open("/proc/thread-self/fail-nth", O_RDWR);

			if (fd < 0) {
				res->err = -errno;
				_exit(1);
			}
			snprintf(v, sizeof(v), "%d", n);
			if (write(fd, v, strlen(v)) < 0) {
				res->err = -errno;
				_exit(1);
			}
			res->ret = iio_buffer_attach(bfd, dfd);
			memset(v, 0, sizeof(v));
			if (pread(fd, v, sizeof(v) - 1, 0) < 0)
				res->err = -errno;
			res->left = atoi(v);
			/* disarmed: a fault left over must not hit DETACH */
			if (pwrite(fd, "0", 1, 0) < 0)
				res->err = -errno;
			if (res->ret == 0)
				res->detach = iio_buffer_detach(bfd, dfd);
			_exit(0);
		}
		ret = wait_child(pid, 10000, &status);
		if (ret) {
			log_task("the ATTACHing child", pid);
			if (!kill_child(pid, 5000))
				DIAG("attach_fault_injection: pid %d is stuck in the kernel for good",
				     (int)pid);
		}
		ASSERT_EQ(0, ret) {
			TH_LOG("ATTACH with allocation %d failed never returned",
			       n);
		}
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			TH_LOG("fail-nth set-up: %s", strerror(-res->err));
		}
		if (res->left) {
			/* fewer than n allocations: nothing was failed */
			EXPECT_EQ(0, res->ret) {
				TH_LOG("ATTACH without a fault: %s",
				       strerror(-res->ret));
			}
			EXPECT_EQ(0, res->detach) {
				TH_LOG("DETACH: %s", strerror(-res->detach));
			}
			done = true;
		} else {
			injected++;
		}
	}
	DIAG("attach_fault_injection: ATTACH has %d injection points", injected);
	ASSERT_TRUE(done);

	/* no attachment is left: the buffer serves read() */
	ASSERT_EQ(0, inst_buffer_enable(&self->a));
	/* through the buffer fd: it holds the buffer, the device fd can't */
	ret = (int)read_timeout(bfd, buf, sizeof(buf), 5000);
	EXPECT_LT(0, ret) {
		TH_LOG("read() after the injected ATTACH failures: %s",
		       strerror(-ret));
	}
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
}

/* ------------------------------------------------------------------ */
/* 8. Buffer length bounded                                            */
/* ------------------------------------------------------------------ */

#define LB_LENGTH	100000000LL	/* 1.6 GB of 16-byte scans */

struct lb_result {
	int len_ret;	/* writing length */
	int en_ret;	/* enable (if length was accepted) */
};

/*
 * length = 1e8 scans of 16 bytes on a guest with 1 GiB: the write of
 * length or the enable must fail with EINVAL (a documented maximum)
 * instead of allocating until the OOM killer strikes. The writes run in a
 * child made the OOM killer's first choice, so that today's failure kills
 * only it.
 */
TEST_F_TIMEOUT(defects, length_bounded, 180)
{
	struct lb_result *res;
	int ret, status;
	pid_t pid;

	CREATE_ADC(a);
	res = shared_alloc(sizeof(*res));
	ASSERT_NE(NULL, res);
	res->len_ret = res->en_ret = 1;
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		sysfs_write("/proc/self/oom_score_adj", "1000");
		res->len_ret = inst_write_ll(&self->a, "buffer0/length",
					     LB_LENGTH);
		if (!res->len_ret) {
			res->en_ret = inst_write(&self->a, "buffer0/enable", "1");
			if (!res->en_ret)
				inst_write(&self->a, "buffer0/enable", "0");
		}
		_exit(0);
	}
	ret = wait_child(pid, 120000, &status);
	if (ret && !kill_child(pid, 5000))
		DIAG("length_bounded: pid %d is stuck in the kernel", (int)pid);
	ASSERT_EQ(0, ret) {
		TH_LOG("length %lld + enable did not return in 120 s",
		       LB_LENGTH);
	}
	ASSERT_TRUE(WIFEXITED(status)) {
		TH_LOG("the process enabling a buffer of %lld scans was killed by signal %d (OOM killer)",
		       LB_LENGTH, WTERMSIG(status));
	}
	DIAG("length_bounded: length %lld: %s; enable: %s", LB_LENGTH,
	     res->len_ret ? strerror(-res->len_ret) : "ok",
	     res->en_ret == 1 ? "-" :
	     res->en_ret ? strerror(-res->en_ret) : "ok");
	if (res->len_ret) {
		EXPECT_EQ(-EINVAL, res->len_ret);
	} else {
		EXPECT_EQ(-EINVAL, res->en_ret);
	}
	inst_buffer_disable(&self->a);
}

/* ------------------------------------------------------------------ */
/* 2. DAC write() after the scan outgrew the blocks                    */
/* ------------------------------------------------------------------ */

struct wg_result {
	ssize_t ret;
	int err;
	int done;
};

/*
 * A DAC with one channel (2-byte scans), length 2, watermark 1: the first
 * write() makes 2 blocks of one 2-byte scan. Then all channels and the
 * timestamp (16-byte scans) and write() one scan again, in a child: it
 * must return (16 bytes in re-made blocks, or an error: EINVAL or EBUSY),
 * and a SIGKILL must end the process whatever it does.
 */
TEST_F_TIMEOUT(defects, dac_write_grown_scan, 60)
{
	uint8_t scan[SCAN] = { 0 };
	struct wg_result *res;
	bool returned, reaped;
	int devfd, ret, status;
	ssize_t n;
	pid_t pid;

	CREATE_DAC(d);
	ASSERT_EQ(0, inst_set_channels(&self->d, ADC_CH(0)));
	ASSERT_EQ(0, inst_set(&self->d, "buffer0/watermark", "1"));
	ASSERT_EQ(0, inst_set(&self->d, "buffer0/length", "2"));
	devfd = inst_open(&self->d, O_RDWR);
	ASSERT_LE(0, devfd);
	keep_fd(self, devfd);
	n = write(devfd, scan, 2);
	ASSERT_EQ(2, n) {
		TH_LOG("write of one 2-byte scan: %s",
		       n < 0 ? strerror(errno) : "short");
	}
	ASSERT_EQ(0, inst_set_channels(&self->d, ADC_ALL_TS));

	res = shared_alloc(sizeof(*res));
	ASSERT_NE(NULL, res);
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		res->ret = write(devfd, scan, SCAN);
		res->err = errno;
		res->done = 1;
		_exit(0);
	}
	ret = wait_child(pid, 5000, &status);
	returned = ret == 0;
	reaped = returned;
	if (!returned) {
		log_task("the writing child", pid);
		reaped = kill_child(pid, 5000);
		if (!reaped)
			DIAG("dac_write_grown_scan: pid %d survived SIGKILL", (int)pid);
	}
	EXPECT_TRUE(returned) {
		TH_LOG("write() of one 16-byte scan into blocks of 2 bytes did not return in 5 s");
	}
	ASSERT_TRUE(reaped) {
		TH_LOG("the writer survived SIGKILL for 5 s");
	}
	ASSERT_TRUE(res->done);
	DIAG("dac_write_grown_scan: write: %zd (%s)", res->ret,
	     res->ret < 0 ? strerror(res->err) : "ok");
	EXPECT_TRUE(res->ret == SCAN ||
		    (res->ret < 0 && (res->err == EINVAL || res->err == EBUSY))) {
		TH_LOG("write: %zd (%s)", res->ret,
		       res->ret < 0 ? strerror(res->err) : "short");
	}
}

TEST_HARNESS_MAIN
