// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: the five data paths, and one timed trial on any of them.
 *
 * A ring is one path's resources for one block size and count: the
 * read() buffer, or the DMABUF blocks (allocated, mapped, attached). It
 * is set up once and serves every trial of the search at that point.
 *
 * A trial streams at one rate: queue every block, enable, then take the
 * blocks in turn (wait, look at the data, give the block back) through a
 * warm-up and a measured window, and reads the counters at its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <linux/iio/buffer.h>
#include <linux/iio_dmabuf.h>

#include "bench.h"

#define WHY(...)	snprintf(why, whylen, __VA_ARGS__)

/* Memory left free when deciding whether a ring fits. */
#define MEM_MARGIN	(128LL << 20)

/* set by the signal handler: volatile sig_atomic_t, as C requires */
static volatile sig_atomic_t deadline_hit;

static void on_alarm(int sig)
{
	(void)sig;
	deadline_hit = 1;
}

/*
 * After @secs, SIGALRM interrupts whatever the reader waits in (read(),
 * DMA_BUF_IOCTL_SYNC: both interruptible), so that a trial always ends.
 * 0 disarms.
 */
static void arm_deadline(double secs)
{
	static bool installed;
	struct itimerval it;

	if (!installed) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;	/* no SA_RESTART: EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		installed = true;
	}
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)secs;
	it.it_value.tv_usec = (suseconds_t)((secs - (time_t)secs) * 1e6);
	deadline_hit = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

static bool is_dmabuf_path(enum path_id p)
{
	return p != PATH_FILEIO;
}

static bool is_mainline(enum path_id p)
{
	return p == PATH_HEAP || p == PATH_UDMABUF;
}

static int dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	while (ioctl(fd, DMA_BUF_IOCTL_SYNC, &s)) {
		if (errno == EINTR && deadline_hit)
			return -EINTR;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
	return 0;
}

static int enqueue(int dev, int fd, size_t bytes)
{
	struct iio_dmabuf req = { .fd = (uint32_t)fd, .bytes_used = bytes };

	while (ioctl(dev, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req)) {
		if (errno != EINTR || deadline_hit)
			return -errno;
	}
	return 0;
}

/* Waits up to @ms until every fence of the DMABUF @fd signalled. */
static int wait_idle(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int ret;

	do {
		ret = poll(&p, 1, ms);
	} while (ret < 0 && errno == EINTR);
	return ret == 1 ? 0 : -ETIMEDOUT;
}

static int heap_alloc(size_t size)
{
	struct dma_heap_allocation_data d;
	int hfd, ret;

	hfd = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	if (hfd < 0)
		return -errno;
	memset(&d, 0, sizeof(d));
	d.len = size;
	d.fd_flags = O_RDWR | O_CLOEXEC;
	ret = ioctl(hfd, DMA_HEAP_IOCTL_ALLOC, &d) ? -errno : (int)d.fd;
	close(hfd);
	return ret;
}

/* A udmabuf over a new sealed memfd; its fd, the memfd in @memfd. */
static int udmabuf_alloc(size_t size, int *memfd)
{
	struct udmabuf_create c;
	int dev, mfd, fd;

	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	mfd = memfd_create("iio_bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, (off_t)size) ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		fd = -errno;
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.memfd = (uint32_t)mfd;
	c.flags = UDMABUF_FLAGS_CLOEXEC;
	c.size = size;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0)
		fd = -errno;
out:
	if (fd < 0 && mfd >= 0)
		close(mfd);
	else
		*memfd = mfd;
	close(dev);
	return fd;
}

void ring_teardown(struct ring *r)
{
	unsigned int i;

	if (r->adc)
		conv_enable(r->adc, false);
	if (r->dac)
		conv_enable(r->dac, false);
	for (i = 0; i < MAX_BLOCKS; i++) {
		if (r->bfd >= 0 && r->fd[i] >= 0) {
			int fd = r->fd[i];

			ioctl(r->bfd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &fd);
		}
		if (r->map[i])
			munmap(r->map[i], r->block);
		if (r->fd[i] >= 0)
			close(r->fd[i]);
		if (r->memfd[i] >= 0)
			close(r->memfd[i]);
		r->fd[i] = r->memfd[i] = -1;
		r->map[i] = NULL;
	}
	if (r->bfd >= 0)
		close(r->bfd);
	if (r->devfd >= 0)
		close(r->devfd);
	if (r->cdev >= 0)
		close(r->cdev);
	if (r->dac_cdev >= 0)
		close(r->dac_cdev);
	free(r->buf);
	r->bfd = r->devfd = r->cdev = r->dac_cdev = -1;
	r->buf = NULL;
}

/* Drops what a disabled fileio buffer still holds. */
static void fileio_drain(struct ring *r)
{
	int fl = fcntl(r->devfd, F_GETFL);

	fcntl(r->devfd, F_SETFL, fl | O_NONBLOCK);
	while (read(r->devfd, r->buf, r->block) > 0)
		;
	fcntl(r->devfd, F_SETFL, fl);
}

static int fileio_setup(struct ring *r, char *why, size_t whylen)
{
	long long length = (long long)(r->block / r->adc->scan_bytes) * r->nblocks;
	int ret;

	/* watermark 1 first, so that any length fits under it */
	ret = conv_set_ll(r->adc, "buffer0/watermark", 1);
	if (!ret)
		ret = conv_set_ll(r->adc, "buffer0/length", length);
	if (!ret)
		ret = conv_set_ll(r->adc, "buffer0/watermark",
				  r->block / r->adc->scan_bytes);
	if (ret) {
		WHY("buffer0/length %lld: %s", length, strerror(-ret));
		return ret;
	}
	r->buf = aligned_alloc(4096, r->block);
	if (!r->buf) {
		WHY("no memory for a %zu-byte read() buffer", r->block);
		return -ENOMEM;
	}
	memset(r->buf, 0, r->block);
	r->devfd = open(r->adc->node, O_RDONLY | O_CLOEXEC);
	if (r->devfd < 0) {
		ret = -errno;
		WHY("open %s: %s", r->adc->node, strerror(-ret));
		return ret;
	}
	/* The module's answer on this length: MAX_LENGTH (dmabuf_api.rst, 9) */
	ret = conv_enable(r->adc, true);
	if (ret) {
		WHY("the module refuses buffer0/length %lld scans (%llu MiB): %s",
		    length, (unsigned long long)length * r->adc->scan_bytes >> 20,
		    strerror(-ret));
		return ret;
	}
	conv_enable(r->adc, false);
	fileio_drain(r);
	return 0;
}

static int map_block(struct ring *r, unsigned int i, char *why, size_t whylen)
{
	void *p = mmap(NULL, r->block, PROT_READ, MAP_SHARED | MAP_POPULATE,
		       r->fd[i], 0);

	if (p == MAP_FAILED) {
		int ret = -errno;

		WHY("mmap block %u: %s", i, strerror(-ret));
		return ret;
	}
	r->map[i] = p;
	return 0;
}

static int dmabuf_setup(struct ring *r, char *why, size_t whylen)
{
	unsigned int i;
	int ret;

	if (r->path == PATH_SEED || r->path == PATH_LOOP) {
		r->cdev = open(r->adc->dmabuf_node, O_RDWR | O_CLOEXEC);
		if (r->cdev < 0) {
			ret = -errno;
			WHY("open %s: %s", r->adc->dmabuf_node, strerror(-ret));
			return ret;
		}
	}
	if (r->path == PATH_LOOP) {
		r->dac_cdev = open(r->dac->dmabuf_node, O_RDWR | O_CLOEXEC);
		if (r->dac_cdev < 0) {
			ret = -errno;
			WHY("open %s: %s", r->dac->dmabuf_node, strerror(-ret));
			return ret;
		}
	}
	if (is_mainline(r->path)) {
		r->devfd = open(r->adc->node, O_RDWR | O_CLOEXEC);
		if (r->devfd < 0) {
			ret = -errno;
			WHY("open %s: %s", r->adc->node, strerror(-ret));
			return ret;
		}
		r->bfd = 0;
		if (ioctl(r->devfd, IIO_BUFFER_GET_FD_IOCTL, &r->bfd)) {
			ret = -errno;
			r->bfd = -1;
			WHY("IIO_BUFFER_GET_FD_IOCTL: %s", strerror(-ret));
			return ret;
		}
	}
	for (i = 0; i < r->nblocks; i++) {
		switch (r->path) {
		case PATH_HEAP:
			ret = heap_alloc(r->block);
			break;
		case PATH_UDMABUF:
			ret = udmabuf_alloc(r->block, &r->memfd[i]);
			break;
		default: {
			struct iio_dmabuf_alloc_req req = { .size = r->block };

			ret = ioctl(r->cdev, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
			if (ret < 0)
				ret = -errno;
		}
		}
		if (ret < 0) {
			WHY("allocating block %u of %zu bytes: %s", i, r->block,
			    strerror(-ret));
			return ret;
		}
		r->fd[i] = ret;
		ret = map_block(r, i, why, whylen);
		if (ret)
			return ret;
		if (is_mainline(r->path)) {
			int fd = r->fd[i];

			if (ioctl(r->bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd)) {
				ret = -errno;
				WHY("ATTACH block %u: %s", i, strerror(-ret));
				return ret;
			}
		}
	}
	return 0;
}

int ring_setup(struct ring *r, enum path_id path, size_t block,
	       unsigned int nblocks, struct conv *adc, struct conv *dac,
	       char *why, size_t whylen)
{
	unsigned long long need = (unsigned long long)block * nblocks;
	long long avail = mem_available();
	unsigned int i;
	int ret;

	memset(r, 0, sizeof(*r));
	r->path = path;
	r->block = block;
	r->nblocks = nblocks;
	r->adc = adc;
	r->dac = path == PATH_LOOP ? dac : NULL;
	r->cdev = r->dac_cdev = r->devfd = r->bfd = -1;
	for (i = 0; i < MAX_BLOCKS; i++)
		r->fd[i] = r->memfd[i] = -1;
	if (avail >= 0 && (long long)need + MEM_MARGIN > avail) {
		WHY("needs %llu MiB, the guest has %lld MiB available",
		    need >> 20, avail >> 20);
		return -ENOMEM;
	}
	if (r->dac) {
		long long min;

		ret = rate_range(r->dac, &min, &r->dac_max);
		if (ret) {
			WHY("the DAC's sampling_frequency_available: %s",
			    strerror(-ret));
			return ret;
		}
	}
	ret = is_dmabuf_path(path) ? dmabuf_setup(r, why, whylen) :
				     fileio_setup(r, why, whylen);
	if (ret)
		ring_teardown(r);
	return ret;
}

static int trial_start(struct ring *r, double rate)
{
	unsigned int i;
	int ret;

	ret = conv_set_ll(r->adc, "sampling_frequency", (long long)rate);
	if (!ret && r->dac) {
		/*
		 * The DAC plays at twice the ADC's rate (at most its top
		 * rate): it is done with a block in half the time the ADC
		 * takes to fill one, so the ring, not the two clocks'
		 * phase, limits the loopback.
		 */
		double drate = fmin(2 * rate, (double)r->dac_max);

		ret = conv_set_ll(r->dac, "sampling_frequency", (long long)drate);
	}
	for (i = 0; !ret && is_dmabuf_path(r->path) && i < r->nblocks; i++) {
		if (is_mainline(r->path))
			ret = enqueue(r->bfd, r->fd[i], r->block);
		else
			ret = enqueue(r->cdev, r->fd[i], r->block);
		if (!ret && r->dac)
			ret = enqueue(r->dac_cdev, r->fd[i], r->block);
	}
	if (!ret && r->dac)
		ret = conv_enable(r->dac, true);
	if (!ret)
		ret = conv_enable(r->adc, true);
	r->head = 0;
	return ret;
}

static int trial_stop(struct ring *r)
{
	unsigned int i;
	int ret = 0;

	conv_enable(r->adc, false);
	if (r->dac)
		conv_enable(r->dac, false);
	if (!is_dmabuf_path(r->path)) {
		fileio_drain(r);
		return 0;
	}
	/* Every block completes (ECANCELED) once the buffers are disabled. */
	for (i = 0; i < r->nblocks; i++) {
		if (wait_idle(r->fd[i], 5000))
			ret = -ETIMEDOUT;
	}
	return ret;
}

/* Waits for the next block; its data in @data, @bytes. */
static int next_block(struct ring *r, const uint8_t **data, size_t *bytes)
{
	ssize_t n;
	int ret;

	if (!is_dmabuf_path(r->path)) {
		for (;;) {
			n = read(r->devfd, r->buf, r->block);
			if (n > 0)
				break;
			if (n == 0)
				return -ENODATA;
			if (errno != EINTR || deadline_hit)
				return -errno;
		}
		*data = r->buf;
		*bytes = (size_t)n;
		return 0;
	}
	ret = dmabuf_sync(r->fd[r->head], DMA_BUF_SYNC_START |
			  (r->dac ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
	*data = r->map[r->head];
	*bytes = r->block;
	return ret;
}

/* Gives the block back to the hardware. */
static int release_block(struct ring *r, const char **what)
{
	int fd, ret;

	if (!is_dmabuf_path(r->path))
		return 0;
	fd = r->fd[r->head];
	*what = "SYNC_END";
	ret = dmabuf_sync(fd, DMA_BUF_SYNC_END |
			  (r->dac ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
	*what = "ENQUEUE";
	if (!ret)
		ret = enqueue(is_mainline(r->path) ? r->bfd : r->cdev, fd,
			      r->block);
	*what = "ENQUEUE on the DAC";
	if (!ret && r->dac)
		ret = enqueue(r->dac_cdev, fd, r->block);
	r->head = (r->head + 1) % r->nblocks;
	return ret;
}

int ring_trial(struct ring *r, enum mode_id mode, double rate, double window,
	       double window_max, double warmup, struct trial *t)
{
	double bdur = (double)(r->block / r->adc->scan_bytes) / rate;
	double weff = fmin(fmax(window, 8 * bdur), window_max);
	double half_min[2] = { INFINITY, INFINITY }, last_lat = 0;
	long long ov0 = 0, ov1 = 0, ov2 = 0;
	uint64_t blocks = 0, blocks1 = 0, scans1 = 0;
	const char *what = "read";
	struct cpu_snap s1, s2;
	struct stream st;
	double t_en, tnow;
	int phase = 0, ret;

	memset(t, 0, sizeof(*t));
	t->rate = rate;
	conv_get_ll(r->adc, "overruns", &ov0);
	ret = trial_start(r, rate);
	if (ret) {
		snprintf(t->why, sizeof(t->why), "start: %s", strerror(-ret));
		trial_stop(r);
		return ret;
	}
	t_en = now();
	stream_start(&st, rate, r->adc->timestamp);
	arm_deadline(warmup + weff + 2 * bdur + 2.0);
	for (;;) {
		const uint8_t *data = NULL;
		size_t bytes = 0;

		what = is_dmabuf_path(r->path) ? "SYNC_START" : "read";
		ret = next_block(r, &data, &bytes);
		if (ret)
			break;
		if (mode == MODE_FETCH)
			stream_fetch(&st, data, bytes / r->adc->scan_bytes);
		else
			stream_all(&st, data, bytes / r->adc->scan_bytes);
		ret = release_block(r, &what);
		if (ret)
			break;
		blocks++;
		tnow = now();
		if (phase == 0) {
			if (tnow - t_en >= warmup && blocks >= 2) {
				cpu_snap_begin(&s1);
				scans1 = st.scans;
				blocks1 = blocks;
				phase = 1;
			}
			continue;
		}
		/*
		 * How late the data are: time since the enable minus the
		 * time the scans received were due. Its minimum over each
		 * half of the window, and its last value, show a backlog
		 * that grows.
		 */
		{
			double lat = tnow - t_en - (double)st.next / rate;
			int h = tnow - s1.t >= weff / 2;

			if (lat < half_min[h])
				half_min[h] = lat;
			last_lat = lat;
		}
		if (tnow - s1.t >= weff && blocks - blocks1 >= 8) {
			cpu_snap_end(&s2);
			phase = 2;
			break;
		}
	}
	arm_deadline(0);
	conv_get_ll(r->adc, "overruns", &ov1);
	if (r->dac) {
		double until = now() + 0.5;

		conv_get_ll(r->dac, "mismatches", &t->dac_mismatches);
		conv_get_ll(r->dac, "underruns", &t->dac_underruns);
		/*
		 * The DAC counts a block's scans before it signals the
		 * block's fence, but the reader may stop before the DAC
		 * played the last blocks it got back: wait for them.
		 */
		while (!conv_get_ll(r->dac, "scans_consumed", &t->dac_consumed) &&
		       t->dac_consumed < (long long)st.scans && now() < until)
			usleep(1000);
	}
	if (trial_stop(r) && phase == 2) {
		snprintf(t->why, sizeof(t->why),
			 "a block still busy 5 s after the disable");
		phase = -1;
	}
	/*
	 * The engine counts a gap in overruns before it completes the next
	 * block, but it may lose more between the end of the window and
	 * the disable: the gaps are checked against this later count.
	 */
	conv_get_ll(r->adc, "overruns", &ov2);
	t->overruns_after = ov2 - ov0;

	t->overruns = ov1 - ov0;
	t->gaps = st.gaps;
	t->errors = st.errors;
	t->total_scans = st.scans;
	if (phase == 2) {
		t->secs = s2.t - s1.t;
		t->scans = st.scans - scans1;
		t->blocks = blocks - blocks1;
		t->reader_cpu = s2.reader - s1.reader;
		t->busy_cpu = s2.busy - s1.busy;
		t->kworker_cpu = kworker_delta(&s1, &s2);
		t->lag_growth = fmax(half_min[1], last_lat) - half_min[0];
	}
	t->lag_tol = 0.02 * weff + 0.003;

	if (phase == 2)
		;
	else if (phase < 0)
		;
	else if (ret == -EINTR && deadline_hit)
		snprintf(t->why, sizeof(t->why),
			 "no block for %.1f s (%llu received)",
			 warmup + weff + 2 * bdur + 2.0,
			 (unsigned long long)blocks);
	else
		snprintf(t->why, sizeof(t->why), "%s: %s", what,
			 ret == -ENODATA ? "end of file" : strerror(-ret));

	if (phase != 2)
		t->pass = false;
	else if (st.errors)
		snprintf(t->why, sizeof(t->why), "data corrupted: %s", st.err);
	else if (t->overruns)
		snprintf(t->why, sizeof(t->why), "%lld overruns", t->overruns);
	else if (st.gaps)
		snprintf(t->why, sizeof(t->why), "%llu scans missing",
			 (unsigned long long)st.gaps);
	else if (t->lag_growth > t->lag_tol)
		snprintf(t->why, sizeof(t->why),
			 "falling behind: %.1f ms later in %.2f s",
			 t->lag_growth * 1e3, t->secs);
	else if (r->dac && t->dac_mismatches)
		snprintf(t->why, sizeof(t->why), "DAC mismatches: %lld",
			 t->dac_mismatches);
	else if (r->dac && t->dac_consumed < (long long)st.scans)
		snprintf(t->why, sizeof(t->why),
			 "the DAC played %lld scans of the %llu passed on",
			 t->dac_consumed, (unsigned long long)st.scans);
	else
		t->pass = true;
	return 0;
}
