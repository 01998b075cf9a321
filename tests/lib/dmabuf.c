// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' library: DMABUFs. The module's ALLOC and ENQUEUE,
 * DMA_BUF_IOCTL_SYNC, fences and sync_files, the mainline IIO DMABUF
 * ioctls, udmabuf and DMA heaps.
 */
#include "iio_test_util.h"

/* ------------------------------------------------------------------ */
/* DMABUF interface (include/uapi/linux/iio_dmabuf.h)                  */
/* ------------------------------------------------------------------ */

/* IIO_BUFFER_DMABUF_ALLOC_IOCTL with an explicit resv; fd or -errno */
int dmabuf_alloc_resv(int cfd, uint64_t size, uint64_t resv)
{
	struct iio_dmabuf_alloc_req req = { .size = size, .resv = resv };
	int ret;

	ret = ioctl(cfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
	return ret >= 0 ? ret : -errno;
}

/* Allocate a DMABUF of @size bytes on the char device @cfd; fd or -errno */
int dmabuf_alloc(int cfd, uint64_t size)
{
	return dmabuf_alloc_resv(cfd, size, 0);
}

/* ENQUEUE with a given ioctl number (ENQUEUE or its SEED alias); 0/-errno */
int dmabuf_enqueue_cmd(int cfd, unsigned long cmd, uint32_t fd,
		       uint32_t flags, uint64_t bytes_used)
{
	struct iio_dmabuf req = {
		.fd = fd, .flags = flags, .bytes_used = bytes_used,
	};

	return ioctl(cfd, cmd, &req) ? -errno : 0;
}

int dmabuf_enqueue(int cfd, int fd, uint64_t bytes_used)
{
	return dmabuf_enqueue_cmd(cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				  (uint32_t)fd, 0, bytes_used);
}

/* DMA_BUF_IOCTL_SYNC with @flags, retried on EINTR/EAGAIN; 0/-errno */
int dmabuf_sync(int dfd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };
	int ret;

	do {
		ret = ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync);
	} while (ret && (errno == EINTR || errno == EAGAIN));
	return ret ? -errno : 0;
}

int dmabuf_sync_start(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
}

int dmabuf_sync_end(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
}

/*
 * CPU access for writing (a DAC reads the block): START waits for every
 * fence, readers' (a DAC's READ fences) and writers' alike.
 */
int dmabuf_sync_start_rw(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
}

int dmabuf_sync_end_rw(int dfd)
{
	return dmabuf_sync(dfd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
}

/* poll() @fd for @events; 1 when any of them is set, 0 timeout, -errno */
int poll_events(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	double end = now_s() + timeout_ms / 1000.0;
	int ret;

	for (;;) {
		ret = poll(&pfd, 1, timeout_ms);
		if (ret >= 0 || errno != EINTR)
			break;
		timeout_ms = (int)((end - now_s()) * 1000);
		if (timeout_ms < 0)
			timeout_ms = 0;
	}
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (pfd.revents & events)
		return 1;
	return -EIO;
}

/* DMA_BUF_IOCTL_EXPORT_SYNC_FILE; the sync_file fd or -errno */
int dmabuf_export_sync_file(int dfd, uint32_t flags)
{
	struct dma_buf_export_sync_file req = { .flags = flags, .fd = -1 };

	if (ioctl(dfd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &req))
		return -errno;
	return req.fd;
}

/*
 * SYNC_IOC_FILE_INFO: @status gets 1 (signalled OK), 0 (active) or a
 * negative errno (signalled with an error). Returns 0 or -errno.
 */
int sync_file_status(int sfd, int *status)
{
	struct sync_file_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(sfd, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	*status = info.status;
	return 0;
}

/*
 * Wait up to @timeout_ms for the sync_file @sfd to signal (POLLIN), then
 * return its status through @status. Returns 0, -ETIMEDOUT or -errno.
 */
int sync_file_wait(int sfd, int timeout_ms, int *status)
{
	int ret = poll_events(sfd, POLLIN, timeout_ms);

	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ETIMEDOUT;
	return sync_file_status(sfd, status);
}

/* A sync_file status (SYNC_IOC_FILE_INFO) in words, for logs. */
const char *status_str(int st)
{
	return st < 0 ? strerror(-st) : st == 1 ? "signalled, no error" :
		"not signalled";
}

/* Size of a DMABUF (lseek to its end); bytes or -errno */
long long dmabuf_size(int dfd)
{
	off_t end = lseek(dfd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	lseek(dfd, 0, SEEK_SET);
	return (long long)end;
}

int dmabuf_max_bytes_get(long long *v)
{
	return sysfs_read_ll(DMABUF_PARAM_MAX_BYTES, v);
}

int dmabuf_max_bytes_set(long long v)
{
	return sysfs_write_ll(DMABUF_PARAM_MAX_BYTES, v);
}

void dmabuf_block_init(struct dmabuf_block *b)
{
	b->fd = -1;
	b->map = NULL;
	b->size = 0;
}

/* ALLOC @size bytes on @cfd into @b and, if @map, mmap all of it RW. */
int dmabuf_block_alloc(struct dmabuf_block *b, int cfd,
		       size_t size, bool map)
{
	void *p;
	int ret;

	dmabuf_block_init(b);
	ret = dmabuf_alloc(cfd, size);
	if (ret < 0)
		return ret;
	b->fd = ret;
	size = (size + page_size() - 1) / page_size() * page_size();
	b->size = size;
	if (!map)
		return 0;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(b->fd);
		b->fd = -1;
		return ret;
	}
	b->map = p;
	return 0;
}

/*
 * A DMABUF of @size bytes (page multiple) the module did not make, mapped
 * read/write into @b: a system heap buffer if @heap, else a udmabuf, whose
 * memfd goes into @memfd (-1 otherwise; the caller closes it after the
 * block). 0 or -errno; @b holds what to free either way.
 */
int dmabuf_block_foreign(struct dmabuf_block *b, bool heap, size_t size,
			 int *memfd)
{
	void *p;
	int fd;

	dmabuf_block_init(b);
	*memfd = -1;
	fd = heap ? dma_heap_alloc(DMA_HEAP_SYSTEM, size) :
		    udmabuf_alloc(size, memfd);
	if (fd < 0)
		return fd;
	b->fd = fd;
	b->size = size;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	b->map = p;
	return 0;
}

void foreign_block_init(struct foreign_block *f)
{
	dmabuf_block_init(&f->b);
	f->memfd = -1;
}

/* dmabuf_block_foreign() into @f */
int foreign_block_alloc(struct foreign_block *f, bool heap, size_t size)
{
	return dmabuf_block_foreign(&f->b, heap, size, &f->memfd);
}

/* Unmap and close (whatever is still mapped / open) */
void foreign_block_free(struct foreign_block *f)
{
	dmabuf_block_free(&f->b);
	if (f->memfd >= 0)
		close(f->memfd);
	f->memfd = -1;
}

/*
 * Wait up to @ms until nothing is attached to @dfd any more: the core
 * drops an attachment from a work item after its last fence signalled.
 * 0, -ETIMEDOUT or -errno.
 */
int wait_unattached(int dfd, int ms)
{
	double end = now_s() + ms / 1000.0;
	char names[256];
	int n;

	for (;;) {
		n = dmabuf_attached_devices(dfd, names, sizeof(names));
		if (n <= 0)
			return n;
		if (now_s() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

/* Close and unmap (whatever is still open / mapped). */
void dmabuf_block_free(struct dmabuf_block *b)
{
	if (b->map)
		munmap(b->map, b->size);
	if (b->fd >= 0)
		close(b->fd);
	dmabuf_block_init(b);
}

/*
 * Devices attached to the DMABUF @dfd, from the dma-buf core's debugfs
 * (its object with @dfd's inode): their count, their names in @names
 * (space separated). -ENOENT if the DMABUF is not listed, or -errno.
 */
int dmabuf_attached_devices(int dfd, char *names, size_t size)
{
	size_t cap = 1 << 20, len = 0, used = 0;
	char *text, *line, *save = NULL;
	bool mine = false, devs = false;
	int count = -ENOENT, fd;
	struct stat st;
	ssize_t n;

	names[0] = '\0';
	if (fstat(dfd, &st))
		return -errno;
	fd = open(DMABUF_BUFINFO, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/*
	 * Mapped and unmapped here: no lasting mapping (malloc's heap would
	 * stay, which fault_inject's census of mappings would count).
	 */
	text = mmap(NULL, cap + 1, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (text == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	while (len < cap && (n = read(fd, text + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long ino;
		unsigned int fl, mode;
		char exp[64];
		size_t sz;
		long cnt;

		if (line[0] != '\t') {
			/* an object: size flags mode count exp_name ino name */
			if (mine)
				break;
			if (sscanf(line, "%zu %x %x %ld %63s %llu", &sz, &fl,
				   &mode, &cnt, exp, &ino) == 6 &&
			    ino == (unsigned long long)st.st_ino) {
				mine = true;
				count = 0;
			}
			continue;
		}
		if (!mine)
			continue;
		if (!strcmp(line, "\tAttached Devices:")) {
			devs = true;
			continue;
		}
		if (devs && !strstr(line, "fence:")) {
			int w = snprintf(names + used, size - used, "%s%s",
					 count ? " " : "", line + 1);

			if (w > 0 && (size_t)w < size - used)
				used += (size_t)w;
			count++;
		}
	}
	munmap(text, cap + 1);
	return count;
}

/* ------------------------------------------------------------------ */
/* Mainline IIO DMABUF API (<linux/iio/buffer.h>, Linux 6.11+)         */
/* ------------------------------------------------------------------ */

/*
 * IIO_BUFFER_GET_FD_IOCTL on the opened /dev/iio:deviceN @devfd: the file
 * descriptor of buffer @idx (O_RDWR | O_CLOEXEC), or -errno.
 */
int iio_buffer_get_fd(int devfd, int idx)
{
	int fd = idx;

	if (ioctl(devfd, IIO_BUFFER_GET_FD_IOCTL, &fd))
		return -errno;
	return fd;
}

/* IIO_BUFFER_DMABUF_ATTACH_IOCTL of DMABUF @dfd on buffer fd @bfd; 0/-errno */
int iio_buffer_attach(int bfd, int dfd)
{
	int fd = dfd;

	return ioctl(bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd) ? -errno : 0;
}

/* IIO_BUFFER_DMABUF_DETACH_IOCTL; 0/-errno */
int iio_buffer_detach(int bfd, int dfd)
{
	int fd = dfd;

	return ioctl(bfd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &fd) ? -errno : 0;
}

/* IIO_BUFFER_DMABUF_ENQUEUE_IOCTL on the buffer fd @bfd; 0/-errno */
int iio_buffer_enqueue(int bfd, int dfd, uint32_t flags,
		       uint64_t bytes_used)
{
	return dmabuf_enqueue_cmd(bfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				  (uint32_t)dfd, flags, bytes_used);
}

/* Set or clear O_NONBLOCK on @fd; 0/-errno */
int fd_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) ? -errno : 0;
}

/*
 * A udmabuf of @size bytes (a page multiple) over a new sealed memfd.
 * Returns the DMABUF fd (O_CLOEXEC) and the memfd in @memfd, or -errno
 * (-ENOENT etc. from opening /dev/udmabuf when it is missing).
 */
int udmabuf_alloc(size_t size, int *memfd)
{
	struct udmabuf_create c;
	int dev, mfd, fd, err;

	*memfd = -1;
	dev = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	mfd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		err = -errno;
		close(dev);
		return err;
	}
	if (ftruncate(mfd, (off_t)size) ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		err = -errno;
		goto fail;
	}
	memset(&c, 0, sizeof(c));
	c.memfd = (uint32_t)mfd;
	c.flags = UDMABUF_FLAGS_CLOEXEC;
	c.offset = 0;
	c.size = size;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	close(dev);
	*memfd = mfd;
	return fd;
fail:
	close(mfd);
	close(dev);
	return err;
}

/* A DMABUF of @size bytes from the DMA heap @heap; its fd or -errno */
int dma_heap_alloc(const char *heap, size_t size)
{
	struct dma_heap_allocation_data d;
	int hfd, err;

	hfd = open(heap, O_RDWR | O_CLOEXEC);
	if (hfd < 0)
		return -errno;
	memset(&d, 0, sizeof(d));
	d.len = size;
	d.fd_flags = O_RDWR | O_CLOEXEC;
	err = ioctl(hfd, DMA_HEAP_IOCTL_ALLOC, &d) ? -errno : 0;
	close(hfd);
	return err ? err : (int)d.fd;
}

/*
 * A thread blocked in DMA_BUF_IOCTL_SYNC(START) on one DMABUF: READ, or
 * READ | WRITE with @rw (that also waits for the readers' fences).
 */
void *sync_waiter_fn(void *arg)
{
	struct sync_waiter *w = arg;

	w->t_start = now_s();
	w->ret = w->rw ? dmabuf_sync_start_rw(w->fd) : dmabuf_sync_start(w->fd);
	if (!w->ret) {
		if (w->rw)
			dmabuf_sync_end_rw(w->fd);
		else
			dmabuf_sync_end(w->fd);
	}
	w->t_done = now_s();
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* pthread_timedjoin_np() with a relative timeout; 0 or an errno */
int join_within(pthread_t th, int seconds)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	return pthread_timedjoin_np(th, NULL, &deadline);
}

/* ------------------------------------------------------------------ */
/* One block: enable, wait, SYNC, check                                */
/* ------------------------------------------------------------------ */

static int block_fail(struct block_wait *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	return err;
}

/*
 * What the tests do with one block, in this order, stopping at the first
 * step that fails:
 *  1. enable @w->enable's buffer (if set);
 *  2. wait for the block's fences, as @w->wait says, up to
 *     @w->timeout_ms: poll() the DMABUF @b for POLLOUT or POLLIN, or wait
 *     for the sync_file @w->sfd, whose status must then be 1 (no error);
 *     with BLOCK_WAIT_SYNC, step 3 waits;
 *  3. unless there is nothing to check (@w->rc and @w->check NULL):
 *     DMA_BUF_IOCTL_SYNC(START | READ), or READ | WRITE with @w->rw;
 *  4. check the first @w->bytes of @b's mapping: ramp_feed() them into
 *     @w->rc, or pass them to @w->check(@w->arg, ...), which returns 0 or
 *     -errno and then says why in @w->why;
 *  5. SYNC(END), also after a failed check.
 * Returns 0, or the step's -errno (-ETIMEDOUT if the fences did not
 * signal in time, a fence's error, -EPROTO if its status is not 1, the
 * check's error) with @w->why saying which step failed and how (for a
 * ramp: rc->err). @w->status gets the sync_file's status, @w->t_wait
 * the seconds spent in step 2 and SYNC(START).
 */
int block_wait_check(struct block_wait *w, const struct dmabuf_block *b)
{
	uint64_t access = w->rw ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ;
	double t;
	int ret, end;

	w->why[0] = '\0';
	w->status = 0;
	w->t_wait = 0;
	if (w->enable) {
		ret = inst_buffer_enable(w->enable);
		if (ret)
			return block_fail(w, ret, "enabling %s: %s",
					  w->enable->name, strerror(-ret));
	}
	t = now_s();
	switch (w->wait) {
	case BLOCK_WAIT_SYNC:
		break;
	case BLOCK_WAIT_POLLOUT:
	case BLOCK_WAIT_POLLIN:
		ret = poll_events(b->fd, w->wait == BLOCK_WAIT_POLLIN ?
				  POLLIN : POLLOUT, w->timeout_ms);
		if (ret != 1)
			return block_fail(w, ret ? ret : -ETIMEDOUT,
					  "block not done after %d ms (poll: %s)",
					  w->timeout_ms,
					  ret ? strerror(-ret) : "timeout");
		break;
	case BLOCK_WAIT_SYNC_FILE:
		ret = sync_file_wait(w->sfd, w->timeout_ms, &w->status);
		if (ret)
			return block_fail(w, ret,
					  "fence not signalled after %d ms: %s",
					  w->timeout_ms, strerror(-ret));
		if (w->status != 1)
			return block_fail(w, w->status < 0 ? w->status : -EPROTO,
					  "fence: %s", status_str(w->status));
		break;
	}
	if (!w->rc && !w->check) {
		w->t_wait = now_s() - t;
		return 0;
	}
	ret = dmabuf_sync(b->fd, DMA_BUF_SYNC_START | access);
	w->t_wait = now_s() - t;
	if (ret)
		return block_fail(w, ret, "SYNC_START: %s", strerror(-ret));
	if (w->check) {
		ret = w->check(w->arg, b->map, w->bytes, w->why,
			       sizeof(w->why));
	} else {
		ret = ramp_feed(w->rc, b->map, w->bytes);
		if (ret)
			snprintf(w->why, sizeof(w->why), "%s", w->rc->err);
	}
	end = dmabuf_sync(b->fd, DMA_BUF_SYNC_END | access);
	if (ret)
		return w->why[0] ? ret :
			block_fail(w, ret, "the data: %s", strerror(-ret));
	if (end)
		return block_fail(w, end, "SYNC_END: %s", strerror(-end));
	return 0;
}
