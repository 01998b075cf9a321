/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/dmabuf.c: DMABUFs, fences, the mainline IIO DMABUF
 * ioctls. Included by iio_test_util.h.
 */
#ifndef IIO_TEST_DMABUF_H
#define IIO_TEST_DMABUF_H

#define DMABUF_PARAM_MAX_BYTES	MODULE_SYSFS "/parameters/dmabuf_max_bytes"
#define DMABUF_MAX_BLOCK_SIZE	(16ULL << 20)	/* largest single ALLOC */
#define DMABUF_DEFAULT_MAX_BYTES (64ULL << 20)	/* dmabuf_max_bytes default */
#define DMABUF_MAX_QUEUED	32		/* blocks queued at once */
#define DMABUF_BUFINFO		"/sys/kernel/debug/dma_buf/bufinfo"
#define UDMABUF_DEV		"/dev/udmabuf"
#define DMA_HEAP_SYSTEM		"/dev/dma_heap/system"
#define IIO_DMABUF_ENQUEUE_WAIT_MS 5000	/* core's wait for earlier fences */

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* A DMABUF block: fd, mapping (or NULL), size (ALLOC's, page-rounded) */
struct dmabuf_block {
	int fd;
	uint8_t *map;
	size_t size;
};

int dmabuf_alloc_resv(int cfd, uint64_t size, uint64_t resv);
int dmabuf_alloc(int cfd, uint64_t size);
int dmabuf_enqueue_cmd(int cfd, unsigned long cmd, uint32_t fd,
		       uint32_t flags, uint64_t bytes_used);
int dmabuf_enqueue(int cfd, int fd, uint64_t bytes_used);
int dmabuf_sync(int dfd, uint64_t flags);
int dmabuf_sync_start(int dfd);
int dmabuf_sync_end(int dfd);
int dmabuf_sync_start_rw(int dfd);
int dmabuf_sync_end_rw(int dfd);
int poll_events(int fd, short events, int timeout_ms);
int dmabuf_export_sync_file(int dfd, uint32_t flags);
int sync_file_status(int sfd, int *status);
int sync_file_wait(int sfd, int timeout_ms, int *status);
const char *status_str(int st);
long long dmabuf_size(int dfd);
int dmabuf_max_bytes_get(long long *v);
int dmabuf_max_bytes_set(long long v);
void dmabuf_block_init(struct dmabuf_block *b);
int dmabuf_block_alloc(struct dmabuf_block *b, int cfd, size_t size,
		       bool map);
int dmabuf_block_foreign(struct dmabuf_block *b, bool heap, size_t size,
			 int *memfd);

/* A DMABUF the module did not make (udmabuf: with its memfd), mapped */
struct foreign_block {
	struct dmabuf_block b;
	int memfd;		/* udmabuf only, else -1 */
};

void foreign_block_init(struct foreign_block *f);
int foreign_block_alloc(struct foreign_block *f, bool heap, size_t size);
void foreign_block_free(struct foreign_block *f);
void dmabuf_block_free(struct dmabuf_block *b);
int dmabuf_attached_devices(int dfd, char *names, size_t size);
int wait_unattached(int dfd, int ms);
int iio_buffer_get_fd(int devfd, int idx);
int iio_buffer_attach(int bfd, int dfd);
int iio_buffer_detach(int bfd, int dfd);
int iio_buffer_enqueue(int bfd, int dfd, uint32_t flags, uint64_t bytes_used);
int fd_set_nonblock(int fd, bool on);
int udmabuf_alloc(size_t size, int *memfd);
int dma_heap_alloc(const char *heap, size_t size);

/*
 * One block, the sequence the tests repeat: enable a buffer, wait for the
 * block's fences, DMA_BUF_IOCTL_SYNC(START), check its data, SYNC(END).
 * Fill in what to do, call block_wait_check(); the results come back here.
 */
enum block_wait_by {
	BLOCK_WAIT_SYNC,	/* SYNC(START) itself waits (no timeout) */
	BLOCK_WAIT_POLLOUT,	/* poll(): every fence signalled */
	BLOCK_WAIT_POLLIN,	/* poll(): the writers' fences signalled */
	BLOCK_WAIT_SYNC_FILE,	/* .sfd signalled, status 1 (no error) */
};

struct block_wait {
	const struct inst *enable;	/* enable its buffer first, or NULL */
	enum block_wait_by wait;
	int sfd;			/* BLOCK_WAIT_SYNC_FILE */
	int timeout_ms;			/* BLOCK_WAIT_POLL*, _SYNC_FILE */
	bool rw;			/* SYNC READ | WRITE, else READ */
	size_t bytes;			/* checked from the start of the map */
	struct ramp_check *rc;		/* ramp_feed() them to it, or */
	int (*check)(void *arg, const uint8_t *data, size_t bytes,
		     char *why, size_t len);	/* 0, or -errno and why */
	void *arg;			/* (neither: no SYNC, no check) */
	/* results */
	int status;			/* the sync_file's status */
	double t_wait;			/* s waiting (SYNC(START) included) */
	char why[320];			/* what failed */
};

int block_wait_check(struct block_wait *w, const struct dmabuf_block *b);

/* For test bodies: block_wait_check() succeeds, else the test fails */
#define BLOCK_WAIT_OK(w, b) do {					\
	int _r = block_wait_check((w), (b));				\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("%s", (w)->why);					\
	}								\
} while (0)

/* A thread in DMA_BUF_IOCTL_SYNC(START), READ or (@rw) READ | WRITE */
struct sync_waiter {
	int fd;
	bool rw;
	int ret;
	double t_start, t_done;
	int done;
};

void *sync_waiter_fn(void *arg);
int join_within(pthread_t th, int seconds);

static inline bool waiter_done(struct sync_waiter *w)
{
	return __atomic_load_n(&w->done, __ATOMIC_SEQ_CST);
}

#endif /* IIO_TEST_DMABUF_H */
