// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: a seeded concurrency fuzzer.
 *
 * FUZZ_THREADS threads (default 4) run random operations at once on two
 * ADCs and two DACs of their own: the seed API (open the DMABUF char
 * device, ALLOC, ENQUEUE under both numbers), the mainline API (GET_FD,
 * ATTACH, DETACH, ENQUEUE on the buffer fd, with blocks of the module, of
 * udmabuf and of the system heap), DMA_BUF_IOCTL_SYNC, EXPORT_SYNC_FILE
 * and IMPORT_SYNC_FILE, mmap/munmap and touching the mappings, poll(),
 * read() and write(), the sysfs attributes (sampling_frequency, waveform,
 * length, watermark, enable, the scan elements, out_voltageN_raw...) and
 * dmabuf_max_bytes, close and reopen of every kind of descriptor, rmdir
 * and mkdir of the devices, and ioctls that are wrong for the descriptor,
 * with boundary arguments (0, 1, a page +- 1, 16 MiB, 16 MiB + 1, huge,
 * negative, bad and wrong-type descriptors).
 *
 * Reproducible: each operation and its arguments are drawn from the seed
 * alone, never from results, so the same FUZZ_SEED (printed at the start)
 * gives every thread the same sequence of operations (with the same
 * FUZZ_THREADS and FUZZ_EPOCH_OPS); only their interleaving differs, and
 * with it what the descriptor slots an operation names hold.
 *
 * The result of an operation may be any errno: the fuzzer checks that the
 * kernel neither hangs nor splats, and a few invariants:
 *
 *  - every operation returns within OP_HANG_S (a thread's blocking calls
 *    are interrupted by a signal every OP_SIGNAL_MS): else, as on a crash
 *    of the program, every thread's last LOG_LEN operations are printed
 *    and the test fails;
 *  - the run is cut into epochs of FUZZ_EPOCH_OPS operations per thread.
 *    At the end of each, every descriptor is closed, every mapping
 *    unmapped and every device removed; then every fence exported during
 *    the epoch signals within FENCE_BOUND_S, none of our instances is
 *    left, no descriptor is open that the fuzzer does not know of, the
 *    module's reference count falls to 0 within REFCNT_BOUND_S (rmmod
 *    would succeed) and the kernel log (/dev/kmsg) shows no new report
 *    (WARNING, BUG, KASAN, lockdep, hung task...; the log is printed);
 *  - after the last epoch the module unloads (delete_module) and loads
 *    again;
 *  - at least FUZZ_MIN_OPS operations ran.
 *
 * Environment: FUZZ_SECONDS (default 60: make check's bounded pass),
 * FUZZ_SEED (default: drawn from the clock), FUZZ_THREADS (4..16),
 * FUZZ_EPOCH_OPS, FUZZ_MIN_OPS. make fuzz sets them (scripts/fuzz.sh).
 */
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <linux/iio/events.h>
#include <linux/magic.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define N_INST		4	/* 0, 1: ADCs; 2, 3: DACs */
#define N_ADC		2
#define N_CFD		4	/* seed char devices */
#define N_DEVFD		4	/* /dev/iio:deviceN */
#define N_BFD		4	/* buffer fds */
#define N_BLK		16	/* DMABUFs */
#define N_MAP		8	/* mappings */
#define N_MISC		8	/* descriptors of the wrong type */
#define N_SYNC		256	/* sync_files kept per thread and epoch */
#define LOG_LEN		128	/* operations remembered per thread */
#define MAX_THREADS	16
#define IOBUF		(1 << 20)

#define OP_SIGNAL_MS	100	/* a blocking call is interrupted after */
#define OP_HANG_S	20	/* an operation longer than this is a hang */
#define FENCE_BOUND_S	10	/* fences signal within, after teardown */
#define REFCNT_BOUND_S	10	/* the module's refcnt falls to 0 within */
#define CHECK_SECONDS	60
#define CHECK_MIN_OPS	5000
#define EPOCH_OPS	1000
/*
 * dmabuf_max_bytes during the run: every instance (and each new one after
 * an rmdir, while the blocks of the old one live on) may hold that much.
 */
#define FUZZ_MAX_BYTES	(32LL << 20)

#define MiB		(1ULL << 20)
#define PG		4096ULL

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

#define OPS(X)								\
	X(MKDIR, 2) X(RMDIR, 1) X(OPEN_CHARDEV, 8) X(OPEN_DEV, 6)	\
	X(GET_FD, 6) X(CLOSE, 10) X(ALLOC, 12) X(ALLOC_EXT, 3)		\
	X(SEED_ENQUEUE, 20) X(SEED_CYCLE, 6) X(ATTACH, 8) X(DETACH, 5)	\
	X(ML_ENQUEUE, 14) X(ML_CYCLE, 6) X(SYNC, 12) X(EXPORT, 8)	\
	X(IMPORT, 2) X(MMAP, 6) X(MUNMAP, 4) X(TOUCH, 6) X(POLL, 8)	\
	X(READ, 8) X(WRITE, 8) X(ATTR_WRITE, 12) X(ATTR_READ, 4)	\
	X(ENABLE, 10) X(DISABLE, 6) X(CONFIGURE, 3) X(FCNTL, 2)		\
	X(BAD_IOCTL, 4) X(MAX_BYTES, 1)

#define OP_ENUM(n, w)	OP_##n,
#define OP_NAME(n, w)	[OP_##n] = #n,
#define OP_WEIGHT(n, w)	[OP_##n] = w,
enum op_kind { OPS(OP_ENUM) NOPS, OP_CTL = NOPS };
static const char *const op_names[NOPS + 1] = { OPS(OP_NAME) [OP_CTL] = "CTL" };
static const unsigned int op_weights[NOPS] = { OPS(OP_WEIGHT) };

/* An operation: its kind and the random numbers its arguments come from */
struct op {
	enum op_kind kind;
	uint64_t a, b, c, d;
};

struct logent {
	uint64_t idx;		/* operation number in its thread */
	enum op_kind kind;
	char desc[112];		/* what it did, with which arguments */
	long long ret;		/* result: >= 0, or -errno */
	int64_t t0, t1;		/* ns since the start; t1 0: in progress */
};

#define N_ERRNO		134

struct fz_thread {
	int id;
	pthread_t th;
	bool started;
	pid_t tid;
	timer_t timer;
	bool have_timer;
	uint64_t rng[4];
	uint64_t ops;			/* operations done */
	int64_t op_start;		/* ns, 0 when idle (atomic) */
	struct logent log[LOG_LEN];
	uint8_t *buf;			/* read()/write() data */
	uint8_t ioarg[256];		/* argument of the wrong ioctls */
	struct syncent {
		int fd;
		uint64_t idx;
		uint32_t flags;
	} sync[N_SYNC];
	int nsync;
	uint64_t sync_dropped;		/* pool full: closed unchecked */
	uint64_t count[NOPS], ok[NOPS];
	int64_t ns[NOPS];		/* time spent */
	uint32_t err[NOPS][N_ERRNO];
};

/* ------------------------------------------------------------------ */
/* Shared state                                                        */
/* ------------------------------------------------------------------ */

enum tab { T_CFD, T_DEVFD, T_BFD, T_BLK, NTAB };
static const int tab_size[NTAB] = { N_CFD, N_DEVFD, N_BFD, N_BLK };
static const char *const tab_names[NTAB] = { "cfd", "devfd", "bfd", "blk" };

struct fz_inst {
	char name[48];
	bool dac;
	int devnum;	/* atomic; -1 when not known */
};

struct map {
	pthread_mutex_t lock;
	uint8_t *addr;
	size_t len;
	int prot;
};

static struct {
	int nthreads;
	int epoch_ops;
	uint64_t seed;
	int64_t t_start;	/* CLOCK_MONOTONIC ns */
	struct fz_inst inst[N_INST];
	int fd[NTAB][N_BLK];	/* atomic */
	long long blk_size[N_BLK];
	int blk_udmabuf[N_BLK];	/* atomic: the block slot holds a udmabuf */
	pthread_mutex_t udmabuf_sync;
	struct map map[N_MAP];
	int misc[N_MISC];
	/* epochs */
	pthread_mutex_t lock;
	pthread_cond_t cond, done_cond;
	uint64_t gen;
	int done;
	int stop, quit;		/* atomic */
	/* threads: [0, nthreads) fuzz, [nthreads] the controller */
	struct fz_thread *t[MAX_THREADS + 1];
	pthread_t monitor;
	bool monitor_started;
	long long max_bytes0;	/* dmabuf_max_bytes before the run, or -1 */
	int monitor_quit;	/* atomic */
	int kmsg;
} G = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.done_cond = PTHREAD_COND_INITIALIZER,
	.udmabuf_sync = PTHREAD_MUTEX_INITIALIZER,
	.kmsg = -1,
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t rel_ns(void)
{
	return mono_ns() - G.t_start;
}

/* A /proc/meminfo field in kB, -1 if not found */
static long long meminfo_kb(const char *field)
{
	char line[256];
	long long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* ------------------------------------------------------------------ */
/* Random numbers: xoshiro256**, seeded with splitmix64                */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(struct fz_thread *t)
{
	uint64_t *s = t->rng, r = rotl(s[1] * 5, 7) * 9, u = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= u;
	s[3] = rotl(s[3], 45);
	return r;
}

static void rnd_seed(struct fz_thread *t, uint64_t seed, int id)
{
	uint64_t x = seed ^ (0x632be59bd9b4e019ULL * (uint64_t)(id + 1));
	int i;

	for (i = 0; i < 4; i++)
		t->rng[i] = splitmix64(&x);
}

/* ------------------------------------------------------------------ */
/* Descriptor slots                                                    */
/* ------------------------------------------------------------------ */

/*
 * Each descriptor the fuzzer opens lives in one slot; it is closed only by
 * whoever exchanges it out, so a number is closed once. A slot read by
 * another thread may be stale (closed, even reused for another file):
 * that is a wrong-type descriptor, on purpose.
 */
static int slot_get(enum tab tab, unsigned int i)
{
	return __atomic_load_n(&G.fd[tab][i % tab_size[tab]], __ATOMIC_RELAXED);
}

static void slot_put(enum tab tab, unsigned int i, int fd)
{
	int old = __atomic_exchange_n(&G.fd[tab][i % tab_size[tab]], fd,
				      __ATOMIC_SEQ_CST);

	if (old >= 0)
		close(old);
}

static int slot_close(enum tab tab, unsigned int i)
{
	int old = __atomic_exchange_n(&G.fd[tab][i % tab_size[tab]], -1,
				      __ATOMIC_SEQ_CST);

	if (old < 0)
		return -EBADF;
	return close(old) ? -errno : 0;
}

static const int bad_fds[] = { -1, -2, INT_MAX, 4000, INT_MIN, 1 << 20 };

/*
 * A descriptor for an operation that wants one from @want: mostly from
 * that table, else a bad number, a descriptor of the wrong type or one
 * from another table. @slot gets the index in @want's table (whatever
 * was picked).
 */
static int pick_fd(enum tab want, uint64_t r, unsigned int *slot)
{
	unsigned int u = r % 100, i, n = tab_size[want];
	int fd;

	r /= 100;
	if (slot)
		*slot = r % n;
	if (u < 88) {
		/* the first open one from the slot drawn (-1 if none) */
		for (i = 0; i < n; i++) {
			fd = slot_get(want, (unsigned int)(r + i));
			if (fd >= 0) {
				if (slot)
					*slot = (unsigned int)((r + i) % n);
				return fd;
			}
		}
		return -1;
	}
	if (u < 93)
		return bad_fds[r % ARRAY_SIZE(bad_fds)];
	if (u < 97)
		return G.misc[r % N_MISC];
	return slot_get((enum tab)(r % NTAB), (unsigned int)(r / NTAB));
}

/* Any descriptor, of any table or of the wrong type */
static int pick_any_fd(uint64_t r)
{
	return pick_fd((enum tab)(r % NTAB), r / NTAB, NULL);
}

/* ------------------------------------------------------------------ */
/* Argument choices                                                    */
/* ------------------------------------------------------------------ */

static uint64_t alloc_size(uint64_t r)
{
	static const uint64_t edge[] = {
		0, 1, PG - 1, PG, PG + 1, 16 * MiB, 16 * MiB + 1,
		1ULL << 32, 1ULL << 63, UINT64_MAX, (uint64_t)-PG, 48,
		64 * 1024,
	};

	/*
	 * Mostly whole scans of every layout, up to 96 KiB; 16 MiB blocks
	 * rarely: each instance may hold DMABUF_MAX_BYTES of them, and new
	 * instances come while the blocks of removed ones live on.
	 */
	if (r % 16)
		return 48 * (1 + (r >> 8) % 2048);
	return edge[(r >> 8) % ARRAY_SIZE(edge)];
}

static uint64_t ext_size(uint64_t r)
{
	static const uint64_t sizes[] = {
		PG, 2 * PG, 16 * PG, 64 * PG, 256 * PG, 0, PG + 1, 3 * PG,
	};

	return sizes[r % ARRAY_SIZE(sizes)];
}

/* bytes_used for a block of @size bytes (0 if unknown) */
static uint64_t bytes_used(uint64_t r, long long size)
{
	uint64_t s = size > 0 ? (uint64_t)size : PG;

	switch (r % 12) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 16;
	case 3: return 48;
	case 4: return s;
	case 5: return s + 16;
	case 6: return s > 48 ? s - 48 : 48;
	case 7: return 1ULL << 32;
	case 8: return UINT64_MAX;
	default: return 48 * (1 + (r >> 8) % (s / 48 ? s / 48 : 1));
	}
}

static uint32_t enqueue_flags(uint64_t r)
{
	switch (r % 16) {
	case 12: case 13: return IIO_BUFFER_DMABUF_CYCLIC;
	case 14: return 2;
	case 15: return (uint32_t)(r >> 8);
	default: return 0;
	}
}

/* Values for the sysfs attributes, by kind */
enum vals { V_FREQ, V_LEN, V_WM, V_BOOL, V_RAW, V_WAVE, V_CLOCK, V_RO };

static const char *const vals_freq[] = {
	"0", "1", "-1", "100", "1000", "4000", "10000", "20000", "100000",
	"1000000", "500000000", "500000001", "abc", "1.5", "4294967297", "",
};
static const char *const vals_len[] = {
	"0", "1", "2", "3", "16", "100", "1024", "4096", "65536",
	"4194305", "-1", "x", "18446744073709551616",
};
static const char *const vals_wm[] = {
	"0", "1", "2", "16", "1024", "4096", "4097", "-1", "x",
};
static const char *const vals_bool[] = { "0", "1", "0", "1", "2", "-1", "x", "" };
static const char *const vals_raw[] = {
	"0", "-32768", "32767", "32768", "-32769", "100", "x", "1.5",
};
static const char *const vals_wave[] = {
	"ramp", "sine", "square", "", "ramp\n", "sine ",
};
static const char *const vals_clock[] = {
	"realtime", "monotonic", "boottime", "bogus",
};
static const char *const vals_ro[] = { "0", "1" };

static const char *pick_val(enum vals v, uint64_t r)
{
#define PICK(a) a[r % ARRAY_SIZE(a)]
	switch (v) {
	case V_FREQ: return PICK(vals_freq);
	/* the largest length (64 MiB of kernel blocks), rarely */
	case V_LEN: return r % 256 == 255 ? "4194304" : PICK(vals_len);
	case V_WM: return PICK(vals_wm);
	case V_BOOL: return PICK(vals_bool);
	case V_RAW: return PICK(vals_raw);
	case V_WAVE: return PICK(vals_wave);
	case V_CLOCK: return PICK(vals_clock);
	case V_RO: return PICK(vals_ro);
	}
	return "0";
#undef PICK
}

#define WHO_ADC	1
#define WHO_DAC	2
#define WHO_ANY	3

static const struct attr {
	const char *fmt;	/* %d: a channel */
	unsigned char who;
	enum vals vals;
} attrs[] = {
	{ "sampling_frequency", WHO_ANY, V_FREQ },
	{ "waveform", WHO_ADC, V_WAVE },
	{ "buffer0/length", WHO_ANY, V_LEN },
	{ "buffer0/watermark", WHO_ANY, V_WM },
	{ "buffer0/enable", WHO_ANY, V_BOOL },
	{ "buffer0/in_voltage%d_en", WHO_ADC, V_BOOL },
	{ "buffer0/out_voltage%d_en", WHO_DAC, V_BOOL },
	{ "buffer0/in_timestamp_en", WHO_ANY, V_BOOL },
	{ "scan_elements/in_voltage%d_en", WHO_ADC, V_BOOL },
	{ "scan_elements/out_voltage%d_en", WHO_DAC, V_BOOL },
	{ "buffer/length", WHO_ANY, V_LEN },
	{ "buffer/enable", WHO_ANY, V_BOOL },
	{ "out_voltage%d_raw", WHO_DAC, V_RAW },
	{ "in_voltage%d_raw", WHO_ADC, V_RAW },
	{ "overruns", WHO_ADC, V_RO },
	{ "scans_consumed", WHO_DAC, V_RO },
	{ "mismatches", WHO_DAC, V_RO },
	{ "underruns", WHO_DAC, V_RO },
	{ "in_voltage_scale", WHO_ADC, V_RO },
	{ "out_voltage_scale", WHO_DAC, V_RO },
	{ "buffer0/data_available", WHO_ANY, V_RO },
	{ "current_timestamp_clock", WHO_ANY, V_CLOCK },
};

/* An attribute of instance @in (mostly one it has) into @path */
static const struct attr *pick_attr(const struct fz_inst *in, uint64_t r,
				    char *path, size_t size)
{
	unsigned char who = in->dac ? WHO_DAC : WHO_ADC;
	const struct attr *a;
	char name[64];
	int i, devnum;

	for (i = 0; i < 8; i++) {
		a = &attrs[(r >> (4 * i)) % ARRAY_SIZE(attrs)];
		if ((a->who & who) || r % 10 == 0)
			break;
	}
	snprintf(name, sizeof(name), a->fmt, (int)((r >> 40) % 5));
	devnum = __atomic_load_n(&in->devnum, __ATOMIC_RELAXED);
	snprintf(path, size, IIO_DEV_DIR "/iio:device%d/%s",
		 devnum >= 0 ? devnum : 9999, name);
	return a;
}

static void fz_inst_dev(const struct fz_inst *in, const char *suffix,
			char *path, size_t size)
{
	int devnum = __atomic_load_n(&in->devnum, __ATOMIC_RELAXED);

	snprintf(path, size, "/dev/iio:device%d%s", devnum >= 0 ? devnum : 9999,
		 suffix);
}

static void fz_inst_cfs(const struct fz_inst *in, char *path, size_t size)
{
	snprintf(path, size, "%s/%s",
		 inst_type_dir(in->dac ? INST_DAC : INST_ADC), in->name);
}

static int open_flags(uint64_t r)
{
	static const int fl[] = {
		O_RDWR, O_RDWR | O_NONBLOCK, O_RDONLY, O_RDONLY | O_NONBLOCK,
		O_WRONLY, O_RDWR,
	};

	return fl[r % ARRAY_SIZE(fl)] | O_CLOEXEC;
}

static int sysfs_put(const char *path, const char *val)
{
	return sysfs_write(path, val);
}

/* ------------------------------------------------------------------ */
/* Executing one operation                                             */
/* ------------------------------------------------------------------ */

#define DESC(...) snprintf(e->desc, sizeof(e->desc), __VA_ARGS__)

static long long sys_ret(long long r)
{
	return r < 0 ? -errno : r;
}

/* Map slot @m: unmap what it holds; with the slot's lock held */
static void map_clear(struct map *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
	m->addr = NULL;
	m->len = 0;
}

static long long op_mkdir(struct logent *e, const struct op *o)
{
	struct fz_inst *in = &G.inst[o->a % N_INST];
	char path[PATH_MAX];
	int n;

	fz_inst_cfs(in, path, sizeof(path));
	DESC("mkdir %s", in->name);
	if (mkdir(path, 0755))
		return -errno;
	n = iio_find_device(in->name);
	__atomic_store_n(&in->devnum, n >= 0 ? n : -1, __ATOMIC_RELAXED);
	return n;
}

static long long op_rmdir(struct logent *e, const struct op *o)
{
	struct fz_inst *in = &G.inst[o->a % N_INST];
	char path[PATH_MAX];

	fz_inst_cfs(in, path, sizeof(path));
	DESC("rmdir %s (iio:device%d)", in->name,
	     __atomic_load_n(&in->devnum, __ATOMIC_RELAXED));
	return rmdir(path) ? -errno : 0;
}

static long long op_open(struct logent *e, const struct op *o, enum tab tab)
{
	struct fz_inst *in = &G.inst[o->a % N_INST];
	int flags = open_flags(o->b), fd;
	char path[64];

	fz_inst_dev(in, tab == T_CFD ? "-dmabuf0" : "", path, sizeof(path));
	DESC("open %s flags %#x -> %s[%u]", path, flags, tab_names[tab],
	     (unsigned int)(o->c % tab_size[tab]));
	fd = open(path, flags);
	if (fd < 0)
		return -errno;
	slot_put(tab, (unsigned int)o->c, fd);
	return fd;
}

static long long op_get_fd(struct logent *e, const struct op *o)
{
	static const int idx[] = { 0, 0, 0, 1, -1, INT_MAX };
	int dfd = pick_fd(T_DEVFD, o->a, NULL), arg = idx[o->b % 6];

	DESC("GET_FD fd %d idx %d -> bfd[%u]", dfd, arg,
	     (unsigned int)(o->c % N_BFD));
	if (ioctl(dfd, IIO_BUFFER_GET_FD_IOCTL, &arg))
		return -errno;
	slot_put(T_BFD, (unsigned int)o->c, arg);
	return arg;
}

static long long op_close(struct logent *e, const struct op *o)
{
	enum tab tab = (enum tab)(o->a % NTAB);
	unsigned int i = (unsigned int)(o->b % tab_size[tab]);

	DESC("close %s[%u] (fd %d)", tab_names[tab], i, slot_get(tab, i));
	return slot_close(tab, i);
}

static long long op_alloc(struct logent *e, const struct op *o)
{
	struct iio_dmabuf_alloc_req req = {
		.size = alloc_size(o->b),
		.resv = o->c % 10 ? 0 : (o->c >> 8) % 3,
	};
	int cfd = pick_fd(T_CFD, o->a, NULL), fd;
	unsigned int slot = (unsigned int)(o->d % N_BLK);

	DESC("ALLOC fd %d size %#llx resv %llu -> blk[%u]", cfd,
	     (unsigned long long)req.size, (unsigned long long)req.resv, slot);
	fd = ioctl(cfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
	if (fd < 0)
		return -errno;
	/* ioctl() gives its return value: other files may give 0, not an fd */
	if (fd == 0)
		return 0;
	__atomic_store_n(&G.blk_size[slot],
			 (long long)((req.size + PG - 1) / PG * PG),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&G.blk_udmabuf[slot], 0, __ATOMIC_RELEASE);
	slot_put(T_BLK, slot, fd);
	return fd;
}

/* A DMABUF of another exporter: udmabuf or the system heap */
static long long op_alloc_ext(struct logent *e, const struct op *o)
{
	uint64_t size = ext_size(o->b);
	unsigned int slot = (unsigned int)(o->d % N_BLK);
	int fd, memfd = -1;

	DESC("%s size %#llx -> blk[%u]", o->a % 2 ? "udmabuf" : "heap",
	     (unsigned long long)size, slot);
	if (o->a % 2) {
		fd = udmabuf_alloc(size, &memfd);
		if (memfd >= 0)
			close(memfd);
	} else {
		fd = dma_heap_alloc(DMA_HEAP_SYSTEM, size);
	}
	if (fd < 0)
		return fd;
	__atomic_store_n(&G.blk_size[slot], (long long)size, __ATOMIC_RELAXED);
	__atomic_store_n(&G.blk_udmabuf[slot], (int)(o->a % 2), __ATOMIC_RELEASE);
	slot_put(T_BLK, slot, fd);
	return fd;
}

static long long op_seed_enqueue(struct logent *e, const struct op *o)
{
	unsigned int slot;
	int cfd = pick_fd(T_CFD, o->a, NULL);
	int fd = pick_fd(T_BLK, o->b, &slot);
	struct iio_dmabuf req = {
		.fd = (uint32_t)fd,
		.flags = enqueue_flags(o->c),
		.bytes_used = bytes_used(o->d,
			__atomic_load_n(&G.blk_size[slot], __ATOMIC_RELAXED)),
	};
	unsigned long cmd = (o->c >> 8) % 2 ? IIO_BUFFER_DMABUF_ENQUEUE_IOCTL :
			    IIO_BUFFER_DMABUF_SEED_ENQUEUE_IOCTL;

	DESC("%sENQUEUE fd %d block %d flags %#x bytes %#llx",
	     cmd == IIO_BUFFER_DMABUF_ENQUEUE_IOCTL ? "" : "SEED_", cfd, fd,
	     req.flags, (unsigned long long)req.bytes_used);
	return sys_ret(ioctl(cfd, cmd, &req));
}

/*
 * The seed path's usual steps in one go, so that blocks are queued often:
 * ALLOC a block of whole scans, ENQUEUE all of it on the same char device.
 */
static long long op_seed_cycle(struct logent *e, const struct op *o)
{
	struct iio_dmabuf_alloc_req req = { .size = 48 * (1 + o->b % 256) };
	int cfd = pick_fd(T_CFD, o->a, NULL), fd;
	unsigned int slot = (unsigned int)(o->d % N_BLK);

	DESC("ALLOC fd %d size %#llx -> blk[%u], ENQUEUE it", cfd,
	     (unsigned long long)req.size, slot);
	fd = ioctl(cfd, IIO_BUFFER_DMABUF_ALLOC_IOCTL, &req);
	if (fd <= 0)
		return fd < 0 ? -errno : 0;
	__atomic_store_n(&G.blk_size[slot],
			 (long long)((req.size + PG - 1) / PG * PG),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&G.blk_udmabuf[slot], 0, __ATOMIC_RELEASE);
	slot_put(T_BLK, slot, fd);
	return dmabuf_enqueue_cmd(cfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL,
				  (uint32_t)fd, enqueue_flags(o->c), req.size);
}

/*
 * The mainline path's: ATTACH a block to a buffer fd (it may be attached
 * already), ENQUEUE whole scans of it.
 */
static long long op_ml_cycle(struct logent *e, const struct op *o)
{
	unsigned int slot;
	int bfd = pick_fd(T_BFD, o->a, NULL), fd = pick_fd(T_BLK, o->b, &slot);
	long long size = __atomic_load_n(&G.blk_size[slot], __ATOMIC_RELAXED);
	uint64_t bytes = 48 * (1 + o->d % (size >= 48 ? (uint64_t)size / 48 : 1));
	int arg = fd, ret;

	DESC("ATTACH bfd %d dmabuf %d, ENQUEUE %#llx bytes", bfd, fd,
	     (unsigned long long)bytes);
	ret = ioctl(bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &arg) ? -errno : 0;
	if (ret && ret != -EBUSY)
		return ret;
	return iio_buffer_enqueue(bfd, fd, enqueue_flags(o->c), bytes);
}

static long long op_attach(struct logent *e, const struct op *o, bool attach)
{
	int bfd = pick_fd(T_BFD, o->a, NULL), fd = pick_fd(T_BLK, o->b, NULL);
	int arg = fd;

	DESC("%s bfd %d dmabuf %d", attach ? "ATTACH" : "DETACH", bfd, fd);
	return sys_ret(ioctl(bfd, attach ? IIO_BUFFER_DMABUF_ATTACH_IOCTL :
			     IIO_BUFFER_DMABUF_DETACH_IOCTL, &arg));
}

static long long op_ml_enqueue(struct logent *e, const struct op *o)
{
	unsigned int slot;
	int bfd = pick_fd(T_BFD, o->a, NULL), fd = pick_fd(T_BLK, o->b, &slot);
	struct iio_dmabuf req = {
		.fd = (uint32_t)fd,
		.flags = enqueue_flags(o->c),
		.bytes_used = bytes_used(o->d,
			__atomic_load_n(&G.blk_size[slot], __ATOMIC_RELAXED)),
	};

	DESC("ML_ENQUEUE bfd %d dmabuf %d flags %#x bytes %#llx", bfd, fd,
	     req.flags, (unsigned long long)req.bytes_used);
	return sys_ret(ioctl(bfd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req));
}

/*
 * @fd is a udmabuf of a block slot. Linux 7.3's udmabuf leaks a
 * scatterlist when two DMA_BUF_IOCTL_SYNC(START) of one udmabuf run at
 * once (begin_cpu_udmabuf() tests and sets ubuf->sg with no lock, and
 * dma-buf does not serialise the calls): kmemleak reports it. That is no
 * bug of ours: the SYNCs of udmabufs take turns.
 */
static bool is_udmabuf(int fd)
{
	int i;

	if (fd < 0)
		return false;
	for (i = 0; i < N_BLK; i++)
		if (slot_get(T_BLK, (unsigned int)i) == fd)
			return __atomic_load_n(&G.blk_udmabuf[i], __ATOMIC_ACQUIRE);
	return false;
}

static long long op_sync(struct logent *e, const struct op *o)
{
	static const uint64_t fl[] = {
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE,
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW,
		DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ,
		DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE,
		DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW,
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW,
		DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW,
		0, DMA_BUF_SYNC_END, 0xffff, 1ULL << 40,
	};
	struct dma_buf_sync s = { .flags = fl[o->b % ARRAY_SIZE(fl)] };
	int fd = pick_fd(T_BLK, o->a, NULL);
	bool udmabuf = is_udmabuf(fd);
	long long ret;

	DESC("SYNC fd %d%s flags %#llx", fd, udmabuf ? " (udmabuf)" : "",
	     (unsigned long long)s.flags);
	if (udmabuf)
		pthread_mutex_lock(&G.udmabuf_sync);
	ret = sys_ret(ioctl(fd, DMA_BUF_IOCTL_SYNC, &s));
	if (udmabuf)
		pthread_mutex_unlock(&G.udmabuf_sync);
	return ret;
}

static long long op_export(struct fz_thread *t, struct logent *e,
			   const struct op *o)
{
	static const uint32_t fl[] = {
		DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW,
		DMA_BUF_SYNC_RW, 0, 0x100,
	};
	struct dma_buf_export_sync_file req = {
		.flags = fl[o->b % ARRAY_SIZE(fl)], .fd = -1,
	};
	int fd = pick_fd(T_BLK, o->a, NULL);

	DESC("EXPORT_SYNC_FILE fd %d flags %#x", fd, req.flags);
	if (ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &req))
		return -errno;
	if (t->nsync < N_SYNC) {
		t->sync[t->nsync].fd = req.fd;
		t->sync[t->nsync].idx = t->ops;
		t->sync[t->nsync].flags = req.flags;
		t->nsync++;
	} else {
		close(req.fd);
		t->sync_dropped++;
	}
	return req.fd;
}

static long long op_import(struct fz_thread *t, struct logent *e,
			   const struct op *o)
{
	static const uint32_t fl[] = {
		DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW, 0, 0x100,
	};
	struct dma_buf_import_sync_file req = {
		.flags = fl[o->b % ARRAY_SIZE(fl)],
	};
	int fd = pick_fd(T_BLK, o->a, NULL);

	if (t->nsync && o->c % 8)
		req.fd = t->sync[(o->c >> 8) % t->nsync].fd;
	else
		req.fd = pick_any_fd(o->c >> 8);
	DESC("IMPORT_SYNC_FILE fd %d sync_file %d flags %#x", fd, req.fd,
	     req.flags);
	return sys_ret(ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &req));
}

static long long op_mmap(struct logent *e, const struct op *o)
{
	static const int prots[] = {
		PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ,
		PROT_WRITE,
	};
	unsigned int slot;
	int fd = pick_fd(T_BLK, o->a, &slot);
	long long sz = __atomic_load_n(&G.blk_size[slot], __ATOMIC_RELAXED);
	size_t size = sz > 0 ? (size_t)sz : PG, len, off;
	struct map *m = &G.map[o->d % N_MAP];
	int prot = prots[o->c % 4];
	int flags = (o->c >> 4) % 4 ? MAP_SHARED : MAP_PRIVATE;
	struct stat st0, st1;
	struct statfs sfs;
	void *p;

	switch (o->b % 6) {
	case 0: len = size; break;
	case 1: len = PG; break;
	case 2: len = size + PG; break;
	case 3: len = 0; break;
	case 4: len = 2 * size; break;
	default: len = 1; break;
	}
	switch ((o->b >> 8) % 8) {
	case 5: off = PG; break;
	case 6: off = size; break;
	case 7: off = (size_t)-PG; break;
	default: off = 0; break;
	}
	DESC("mmap fd %d len %#zx off %#zx prot %d %s -> map[%u]", fd, len,
	     off, prot, flags == MAP_SHARED ? "shared" : "private",
	     (unsigned int)(o->d % N_MAP));
	if (fstat(fd, &st0))
		st0.st_ino = 0;
	p = mmap(NULL, len, prot, flags, fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	/*
	 * Only a DMABUF's mapping is kept for op_touch(): the dma-buf core
	 * checks it against the buffer's size, so all of it is memory. (A
	 * memfd's, say, may reach past the end of the file: SIGBUS.) The
	 * same file before and after the call: no other thread reused the
	 * number meanwhile.
	 */
	if (fstatfs(fd, &sfs) || sfs.f_type != DMA_BUF_MAGIC || fstat(fd, &st1) ||
	    st0.st_ino != st1.st_ino || st0.st_dev != st1.st_dev) {
		munmap(p, len);
		return 1;
	}
	pthread_mutex_lock(&m->lock);
	map_clear(m);
	m->addr = p;
	m->len = len;
	m->prot = prot;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static long long op_munmap(struct logent *e, const struct op *o)
{
	struct map *m = &G.map[o->a % N_MAP];
	long long ret = -ENOENT;

	DESC("munmap map[%u]", (unsigned int)(o->a % N_MAP));
	pthread_mutex_lock(&m->lock);
	if (m->addr) {
		ret = munmap(m->addr, m->len) ? -errno : 0;
		m->addr = NULL;
		m->len = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * Read (and, if writable, write) a few bytes of a mapping: a block's
 * memory stays valid as long as it is mapped, whatever happened to its
 * device (a SIGBUS or SIGSEGV here fails the run, logs printed).
 */
static long long op_touch(struct logent *e, const struct op *o)
{
	struct map *m = &G.map[o->a % N_MAP];
	volatile uint8_t *p;
	long long sum = 0;
	size_t off, n;
	int i;

	DESC("touch map[%u]", (unsigned int)(o->a % N_MAP));
	pthread_mutex_lock(&m->lock);
	if (!m->addr) {
		pthread_mutex_unlock(&m->lock);
		return -ENOENT;
	}
	p = m->addr;
	for (i = 0; i < 3; i++) {
		off = i == 0 ? 0 : i == 1 ? m->len - 1 :
		      (size_t)((o->b >> 8) % m->len);
		if (m->prot & PROT_READ)
			sum += p[off];
		if ((m->prot & PROT_WRITE) && (o->c >> i) % 2)
			p[off] = (uint8_t)o->d;
	}
	if ((m->prot & PROT_WRITE) && o->b % 4 == 0) {
		n = m->len < 4096 ? m->len : 4096;
		memset((uint8_t *)m->addr, (int)(o->d & 0xff), n);
	}
	pthread_mutex_unlock(&m->lock);
	return sum;
}

static long long op_poll(struct logent *e, const struct op *o)
{
	static const short ev[] = { POLLIN, POLLOUT, POLLIN | POLLOUT, POLLPRI };
	static const int tmo[] = { 0, 1, 5, 20 };
	struct pollfd pfd = {
		.fd = pick_any_fd(o->a), .events = ev[o->b % 4],
	};
	int ret, to = tmo[o->c % 4];

	DESC("poll fd %d events %#x timeout %d", pfd.fd, pfd.events, to);
	ret = poll(&pfd, 1, to);
	if (ret < 0)
		return -errno;
	return ret ? pfd.revents : 0;
}

static size_t io_len(uint64_t r)
{
	static const size_t len[] = {
		0, 1, 2, 15, 16, 17, 48, 4096, 65536, IOBUF,
	};

	return len[r % ARRAY_SIZE(len)];
}

static long long op_rw(struct fz_thread *t, struct logent *e,
		       const struct op *o, bool wr)
{
	int fd = pick_fd(o->a % 2 ? T_BFD : T_DEVFD, o->a >> 1, NULL);
	size_t len = io_len(o->b), off = (size_t)(o->c % 16);
	ssize_t n;

	if (len + off > IOBUF)
		off = 0;
	DESC("%s fd %d len %zu", wr ? "write" : "read", fd, len);
	n = wr ? write(fd, t->buf + off, len) : read(fd, t->buf, len);
	return n < 0 ? -errno : n;
}

static long long op_attr_write(struct logent *e, const struct op *o)
{
	const struct fz_inst *in = &G.inst[o->a % N_INST];
	char path[PATH_MAX];
	const struct attr *a = pick_attr(in, o->b, path, sizeof(path));
	const char *val = pick_val(a->vals, o->c);

	DESC("%.80s <- '%.20s'", path + strlen(IIO_DEV_DIR "/"), val);
	return sysfs_put(path, val);
}

static long long op_attr_read(struct logent *e, const struct op *o)
{
	const struct fz_inst *in = &G.inst[o->a % N_INST];
	char path[PATH_MAX], buf[256];

	pick_attr(in, o->b, path, sizeof(path));
	DESC("read %.90s", path + strlen(IIO_DEV_DIR "/"));
	return sysfs_read(path, buf, sizeof(buf));
}

static long long op_enable(struct logent *e, const struct op *o, bool on)
{
	const struct fz_inst *in = &G.inst[o->a % N_INST];
	char path[PATH_MAX];
	int devnum = __atomic_load_n(&in->devnum, __ATOMIC_RELAXED);

	snprintf(path, sizeof(path), IIO_DEV_DIR "/iio:device%d/buffer0/enable",
		 devnum >= 0 ? devnum : 9999);
	DESC("%s %s (iio:device%d)", on ? "enable" : "disable", in->name,
	     devnum);
	return sysfs_put(path, on ? "1" : "0");
}

/*
 * A configuration the data paths work with (channels, a few kHz, a
 * length and watermark that fit), written while the buffer may well be
 * enabled: the first error is the result.
 */
static long long op_configure(struct logent *e, const struct op *o)
{
	static const char *const freq[] = { "1000", "4000", "10000" };
	static const char *const len[] = { "64", "256", "4096" };
	static const char *const wm[] = { "1", "16", "64" };
	const struct fz_inst *in = &G.inst[o->a % N_INST];
	unsigned int mask = o->b % 2 ? ADC_ALL_TS : (unsigned int)(o->b >> 1) % 32;
	int devnum = __atomic_load_n(&in->devnum, __ATOMIC_RELAXED);
	char dir[PATH_MAX], path[PATH_MAX + 64];
	long long ret = 0, r;
	int c;

	if (!mask)
		mask = ADC_CH(0);
	snprintf(dir, sizeof(dir), IIO_DEV_DIR "/iio:device%d",
		 devnum >= 0 ? devnum : 9999);
	DESC("configure %s mask %#x freq %s length %s watermark %s", in->name,
	     mask, freq[o->c % 3], len[(o->c >> 4) % 3], wm[(o->c >> 8) % 3]);
	for (c = 0; c < ADC_NUM_CH; c++) {
		snprintf(path, sizeof(path), "%s/buffer0/%s_voltage%d_en", dir,
			 in->dac ? "out" : "in", c);
		r = sysfs_put(path, mask & ADC_CH(c) ? "1" : "0");
		ret = ret ? ret : r;
	}
	snprintf(path, sizeof(path), "%s/buffer0/in_timestamp_en", dir);
	r = sysfs_put(path, mask & ADC_TS ? "1" : "0");
	ret = ret ? ret : r;
	snprintf(path, sizeof(path), "%s/sampling_frequency", dir);
	r = sysfs_put(path, freq[o->c % 3]);
	ret = ret ? ret : r;
	snprintf(path, sizeof(path), "%s/buffer0/watermark", dir);
	r = sysfs_put(path, "1");
	ret = ret ? ret : r;
	snprintf(path, sizeof(path), "%s/buffer0/length", dir);
	r = sysfs_put(path, len[(o->c >> 4) % 3]);
	ret = ret ? ret : r;
	snprintf(path, sizeof(path), "%s/buffer0/watermark", dir);
	r = sysfs_put(path, wm[(o->c >> 8) % 3]);
	return ret ? ret : r;
}

/*
 * dmabuf_max_bytes changes under the blocks already charged (never above
 * FUZZ_MAX_BYTES: the memory of the guest is bounded).
 */
static long long op_max_bytes(struct logent *e, const struct op *o)
{
	static const char *const v[] = {
		"0", "1", "4096", "65536", "1048576", "16777216", "33554432",
		"33554432", "-1", "x",
	};
	const char *val = v[o->a % ARRAY_SIZE(v)];

	DESC("dmabuf_max_bytes <- '%s'", val);
	return sysfs_write(DMABUF_PARAM_MAX_BYTES, val);
}

static long long op_fcntl(struct logent *e, const struct op *o)
{
	int fd = pick_any_fd(o->a), fl;

	DESC("fcntl fd %d %s O_NONBLOCK", fd, o->b % 2 ? "set" : "clear");
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = o->b % 2 ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return sys_ret(fcntl(fd, F_SETFL, fl));
}

/*
 * An ioctl the descriptor does not have (or with the wrong size or
 * direction): types 'i' (IIO) and 'b' (dma-buf) only, and never one that
 * creates a descriptor the fuzzer would not know of.
 */
static long long op_bad_ioctl(struct fz_thread *t, struct logent *e,
			      const struct op *o)
{
	static const unsigned long known[] = {
		_IO('i', 0x92), _IOR('i', 0x92, struct iio_dmabuf_alloc_req),
		_IOW('i', 0x95, struct iio_dmabuf), _IOWR('i', 0x94, struct iio_dmabuf),
		_IOW('i', 0x94, uint64_t), _IOW('i', 0x93, uint64_t),
		_IO('b', 0), _IOW('b', 0, uint32_t), DMA_BUF_SET_NAME_B,
		_IOW('i', 0x92, uint64_t),
	};
	int fd = pick_any_fd(o->a);
	unsigned long cmd;
	uint64_t x = o->d;
	size_t i;

	if (o->b % 2) {
		cmd = known[(o->b >> 1) % ARRAY_SIZE(known)];
	} else {
		cmd = _IOC((o->b >> 1) % 4, (o->b >> 3) % 2 ? 'i' : 'b',
			   (o->b >> 4) % 256, (o->b >> 12) % 64);
		if (cmd == IIO_GET_EVENT_FD_IOCTL ||
		    cmd == IIO_BUFFER_GET_FD_IOCTL ||
		    cmd == IIO_BUFFER_DMABUF_ALLOC_IOCTL ||
		    cmd == DMA_BUF_IOCTL_EXPORT_SYNC_FILE ||
		    cmd == DMA_BUF_IOCTL_SYNC)	/* see is_udmabuf() */
			cmd = _IO('i', 0xff);
	}
	for (i = 0; i < sizeof(t->ioarg); i++)
		t->ioarg[i] = (uint8_t)splitmix64(&x);
	t->ioarg[sizeof(t->ioarg) - 1] = 0;
	DESC("ioctl fd %d cmd %#lx", fd, cmd);
	return sys_ret(ioctl(fd, cmd, t->ioarg));
}

static long long op_run(struct fz_thread *t, struct logent *e,
			const struct op *o)
{
	switch (o->kind) {
	case OP_MKDIR: return op_mkdir(e, o);
	case OP_RMDIR: return op_rmdir(e, o);
	case OP_OPEN_CHARDEV: return op_open(e, o, T_CFD);
	case OP_OPEN_DEV: return op_open(e, o, T_DEVFD);
	case OP_GET_FD: return op_get_fd(e, o);
	case OP_CLOSE: return op_close(e, o);
	case OP_ALLOC: return op_alloc(e, o);
	case OP_ALLOC_EXT: return op_alloc_ext(e, o);
	case OP_SEED_ENQUEUE: return op_seed_enqueue(e, o);
	case OP_SEED_CYCLE: return op_seed_cycle(e, o);
	case OP_ML_CYCLE: return op_ml_cycle(e, o);
	case OP_ATTACH: return op_attach(e, o, true);
	case OP_DETACH: return op_attach(e, o, false);
	case OP_ML_ENQUEUE: return op_ml_enqueue(e, o);
	case OP_SYNC: return op_sync(e, o);
	case OP_EXPORT: return op_export(t, e, o);
	case OP_IMPORT: return op_import(t, e, o);
	case OP_MMAP: return op_mmap(e, o);
	case OP_MUNMAP: return op_munmap(e, o);
	case OP_TOUCH: return op_touch(e, o);
	case OP_POLL: return op_poll(e, o);
	case OP_READ: return op_rw(t, e, o, false);
	case OP_WRITE: return op_rw(t, e, o, true);
	case OP_ATTR_WRITE: return op_attr_write(e, o);
	case OP_ATTR_READ: return op_attr_read(e, o);
	case OP_ENABLE: return op_enable(e, o, true);
	case OP_DISABLE: return op_enable(e, o, false);
	case OP_CONFIGURE: return op_configure(e, o);
	case OP_FCNTL: return op_fcntl(e, o);
	case OP_BAD_IOCTL: return op_bad_ioctl(t, e, o);
	case OP_MAX_BYTES: return op_max_bytes(e, o);
	case NOPS: break;
	}
	return -ENOSYS;
}

/* The next operation of @t: a function of its random sequence only */
static void op_draw(struct fz_thread *t, struct op *o)
{
	static unsigned int total;
	uint64_t r = rnd(t);
	unsigned int k, w;

	if (!total)
		for (k = 0; k < NOPS; k++)
			total += op_weights[k];
	w = (unsigned int)(r % total);
	for (k = 0; w >= op_weights[k]; k++)
		w -= op_weights[k];
	o->kind = (enum op_kind)k;
	o->a = rnd(t);
	o->b = rnd(t);
	o->c = rnd(t);
	o->d = rnd(t);
}

static void timer_arm(struct fz_thread *t, bool on)
{
	struct itimerspec its = { 0 };

	if (!t->have_timer)
		return;
	if (on) {
		its.it_value.tv_nsec = OP_SIGNAL_MS * 1000000L;
		its.it_interval.tv_nsec = OP_SIGNAL_MS * 1000000L;
	}
	timer_settime(t->timer, 0, &its, NULL);
}

/* Start a log entry (the controller's steps too) */
static struct logent *log_begin(struct fz_thread *t, enum op_kind kind)
{
	struct logent *e = &t->log[t->ops % LOG_LEN];

	e->idx = t->ops;
	e->kind = kind;
	e->desc[0] = '\0';
	e->ret = 0;
	e->t1 = 0;
	e->t0 = rel_ns();
	__atomic_store_n(&t->op_start, e->t0 ? e->t0 : 1, __ATOMIC_SEQ_CST);
	return e;
}

static void log_end(struct fz_thread *t, struct logent *e, long long ret)
{
	e->ret = ret;
	e->t1 = rel_ns();
	__atomic_store_n(&t->op_start, 0, __ATOMIC_SEQ_CST);
	t->ops++;
}

static void run_one(struct fz_thread *t)
{
	struct logent *e;
	struct op o;
	long long ret;

	op_draw(t, &o);
	e = log_begin(t, o.kind);
	timer_arm(t, true);
	ret = op_run(t, e, &o);
	timer_arm(t, false);
	log_end(t, e, ret);
	t->count[o.kind]++;
	t->ns[o.kind] += e->t1 - e->t0;
	if (ret >= 0)
		t->ok[o.kind]++;
	else if (-ret < N_ERRNO)
		t->err[o.kind][-ret]++;
}

/* A step of the controller, logged like an operation */
#define CTL_BEGIN(fmt, ...) do {					\
	struct fz_thread *_c = G.t[G.nthreads];				\
	ctl_e = log_begin(_c, OP_CTL);					\
	snprintf(ctl_e->desc, sizeof(ctl_e->desc), fmt, ##__VA_ARGS__); \
} while (0)
#define CTL_END(ret) log_end(G.t[G.nthreads], ctl_e, (ret))

/* ------------------------------------------------------------------ */
/* Threads, the monitor, the logs                                      */
/* ------------------------------------------------------------------ */

static void on_timer(int sig)
{
	(void)sig;
}

static void dump_thread(const struct fz_thread *t, bool ctl)
{
	uint64_t first = t->ops > LOG_LEN ? t->ops - LOG_LEN : 0, i;
	int64_t now = rel_ns();

	printf("# --- %s %d: %llu operations, last ones:\n",
	       ctl ? "controller" : "thread", t->id,
	       (unsigned long long)t->ops);
	for (i = first; i <= t->ops; i++) {
		const struct logent *e = &t->log[i % LOG_LEN];

		if (e->idx != i || (i == t->ops && e->t1))
			continue;
		if (i == t->ops && !__atomic_load_n(&t->op_start, __ATOMIC_SEQ_CST))
			continue;
		if (e->t1)
			printf("#  %s#%llu %.3fs %s: %s = %lld%s%s (%.1f ms)\n",
			       ctl ? "c" : "t", (unsigned long long)e->idx,
			       e->t0 / 1e9, op_names[e->kind], e->desc, e->ret,
			       e->ret < 0 ? " " : "",
			       e->ret < 0 ? strerror((int)-e->ret) : "",
			       (e->t1 - e->t0) / 1e6);
		else
			printf("#  %s#%llu %.3fs %s: %s: IN PROGRESS for %.1f s\n",
			       ctl ? "c" : "t", (unsigned long long)e->idx,
			       e->t0 / 1e9, op_names[e->kind], e->desc,
			       (now - e->t0) / 1e9);
	}
}

static void dump_all(const char *why)
{
	int i;

	printf("# ===== fuzz: %s (seed %llu, %d threads, %d operations per epoch)\n",
	       why, (unsigned long long)G.seed, G.nthreads, G.epoch_ops);
	for (i = 0; i <= G.nthreads; i++)
		if (G.t[i])
			dump_thread(G.t[i], i == G.nthreads);
	printf("# ===== end of the operation logs\n");
	fflush(stdout);
}

/* The module parameter the run changed, back to its value before */
static void restore_params(void)
{
	if (G.max_bytes0 >= 0)
		dmabuf_max_bytes_set(G.max_bytes0);
}

static void on_crash(int sig)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "signal %d (%s)", sig, strsignal(sig));
	dump_all(msg);
	restore_params();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int kmsg_check(int max);

static uint64_t total_ops(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < G.nthreads; i++)
		n += __atomic_load_n(&G.t[i]->ops, __ATOMIC_RELAXED);
	return n;
}

/*
 * Watches every thread (and the controller): an operation in progress for
 * more than OP_HANG_S is a hang. Prints the logs and ends the program
 * (a thread stuck in the kernel may keep it from exiting: the harness's
 * timeout and run-all's budget take over). Prints the progress every 10 s.
 */
static void *monitor_fn(void *arg)
{
	int64_t last = mono_ns(), st, now;
	char why[128];
	int i;

	(void)arg;
	while (!__atomic_load_n(&G.monitor_quit, __ATOMIC_SEQ_CST)) {
		sleep_ms(100);
		now = rel_ns();
		for (i = 0; i <= G.nthreads; i++) {
			st = __atomic_load_n(&G.t[i]->op_start, __ATOMIC_SEQ_CST);
			if (!st || now - st < (int64_t)OP_HANG_S * 1000000000)
				continue;
			snprintf(why, sizeof(why),
				 "HANG: %s %d in one operation for %.1f s",
				 i == G.nthreads ? "controller" : "thread", i,
				 (now - st) / 1e9);
			dump_all(why);
			printf("# FAIL: %s\n", why);
			fflush(stdout);
			restore_params();
			_exit(KSFT_FAIL);
		}
		kmsg_check(400);
		if (mono_ns() - last >= 10000000000LL) {
			last = mono_ns();
			DIAG("fuzz: %.0f s: %llu operations (MemAvailable %lld kB, VmallocUsed %lld kB)",
			     now / 1e9, (unsigned long long)total_ops(),
			     meminfo_kb("MemAvailable"), meminfo_kb("VmallocUsed"));
		}
	}
	return NULL;
}

static void *fuzz_fn(void *arg)
{
	struct fz_thread *t = arg;
	struct sigevent sev;
	uint64_t gen = 0;
	int i;

	t->tid = gettid();
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_notify_thread_id = t->tid;
	t->have_timer = !timer_create(CLOCK_MONOTONIC, &sev, &t->timer);
	for (;;) {
		pthread_mutex_lock(&G.lock);
		while (G.gen == gen && !G.quit)
			pthread_cond_wait(&G.cond, &G.lock);
		if (G.quit) {
			pthread_mutex_unlock(&G.lock);
			break;
		}
		gen = G.gen;
		pthread_mutex_unlock(&G.lock);
		for (i = 0; i < G.epoch_ops &&
		     !__atomic_load_n(&G.stop, __ATOMIC_SEQ_CST); i++)
			run_one(t);
		pthread_mutex_lock(&G.lock);
		G.done++;
		pthread_cond_broadcast(&G.done_cond);
		pthread_mutex_unlock(&G.lock);
	}
	if (t->have_timer)
		timer_delete(t->timer);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The kernel log                                                      */
/* ------------------------------------------------------------------ */

static const char *const splat_words[] = {
	"BUG:", "KASAN", "WARNING:", "possible circular locking dependency",
	"possible recursive locking", "inconsistent lock state",
	"suspicious RCU usage", "INFO: lockdep", "Oops", "refcount_t",
	"UBSAN", "sleeping function called from invalid context",
	"Kernel panic", "general protection fault", "blocked for more than",
	"INFO: task ", "hung_task", "soft lockup", "hard LOCKUP",
	"self-detected stall", "rcu: INFO", "kthread starved", "Call Trace:",
	"printk messages dropped", "unreferenced object",
};

/*
 * Read the kernel log written since the last call. If a line of it is a
 * report, or if @print, print all of it (up to @max lines). Returns the
 * number of report lines, or -errno if /dev/kmsg cannot be read.
 */
static int kmsg_read(int max, bool print)
{
	static char text[1 << 18];
	size_t used = 0;
	char rec[2048], *msg, *nl, *line, *save = NULL;
	int found = 0, printed = 0;
	ssize_t n;
	size_t i;

	if (G.kmsg < 0)
		return -EBADF;
	for (;;) {
		n = read(G.kmsg, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';
		for (i = 0; i < ARRAY_SIZE(splat_words); i++)
			if (strstr(msg, splat_words[i]))
				found++;
		if (used + strlen(msg) + 2 < sizeof(text))
			used += (size_t)snprintf(text + used, sizeof(text) - used,
						 "%s\n", msg);
	}
	if (!found && !(print && used))
		return found;
	printf("# ===== fuzz: kernel log since the last check\n");
	for (line = strtok_r(text, "\n", &save); line && printed < max;
	     line = strtok_r(NULL, "\n", &save), printed++)
		printf("# kernel: %s\n", line);
	fflush(stdout);
	return found;
}

static pthread_mutex_t kmsg_lock = PTHREAD_MUTEX_INITIALIZER;
static int kmsg_reports;	/* report lines seen so far (kmsg_lock) */

/*
 * The kernel reports seen so far (the monitor looks every 100 ms). At the
 * first one, print every thread's last operations (those closest to the
 * report), then the rest of the report a second later.
 */
static int kmsg_check(int max)
{
	int n, first;

	pthread_mutex_lock(&kmsg_lock);
	n = kmsg_read(max, false);
	first = n > 0 && !kmsg_reports;
	if (n > 0)
		kmsg_reports += n;
	if (first) {
		dump_all("kernel report");
		sleep_ms(1000);
		n = kmsg_read(max, true);
		if (n > 0)
			kmsg_reports += n;
	}
	n = kmsg_reports;
	pthread_mutex_unlock(&kmsg_lock);
	return n;
}

/* ------------------------------------------------------------------ */
/* Setup, epochs, teardown                                             */
/* ------------------------------------------------------------------ */

static long long env_ll(const char *name, long long def)
{
	const char *s = getenv(name);
	long long v;

	if (!s || !*s || parse_ll(s, &v))
		return def;
	return v;
}

static void close_all_slots(void)
{
	int tab, i;

	for (i = 0; i < N_MAP; i++) {
		pthread_mutex_lock(&G.map[i].lock);
		map_clear(&G.map[i]);
		pthread_mutex_unlock(&G.map[i].lock);
	}
	for (tab = 0; tab < NTAB; tab++)
		for (i = 0; i < tab_size[tab]; i++)
			slot_close((enum tab)tab, (unsigned int)i);
}

/* Disable and remove instance @in: 0, or -errno of a failed rmdir */
static int fz_inst_remove(struct fz_inst *in)
{
	char path[PATH_MAX];
	int n, ret;

	n = iio_find_device(in->name);
	if (n >= 0) {
		snprintf(path, sizeof(path), IIO_DEV_DIR
			 "/iio:device%d/buffer0/enable", n);
		sysfs_write(path, "0");
	}
	fz_inst_cfs(in, path, sizeof(path));
	ret = rmdir(path) ? -errno : 0;
	__atomic_store_n(&in->devnum, -1, __ATOMIC_RELAXED);
	return ret == -ENOENT ? 0 : ret;
}

static void stop_threads(void)
{
	double end = now_s() + 10;
	int i;

	__atomic_store_n(&G.stop, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&G.lock);
	G.quit = 1;
	pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
	for (i = 0; i < G.nthreads; i++) {
		if (!G.t[i] || !G.t[i]->started)
			continue;
		/* one stuck in the kernel stays: the monitor reports it */
		if (join_within(G.t[i]->th, (int)(end - now_s()) + 1) == 0)
			G.t[i]->started = false;
	}
}

FIXTURE(fuzz) {
	int dummy;
};

FIXTURE_SETUP(fuzz)
{
	int i;

	for (i = 0; i < NTAB * N_BLK; i++)
		G.fd[i / N_BLK][i % N_BLK] = -1;
	for (i = 0; i < N_MAP; i++)
		pthread_mutex_init(&G.map[i].lock, NULL);
	for (i = 0; i < N_MISC; i++)
		G.misc[i] = -1;
	for (i = 0; i < N_INST; i++) {
		snprintf(G.inst[i].name, sizeof(G.inst[i].name), "fz%c%d_%d",
			 i < N_ADC ? 'a' : 'd', i % N_ADC, (int)getpid());
		G.inst[i].dac = i >= N_ADC;
		G.inst[i].devnum = -1;
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	int i, j;

	stop_threads();
	if (G.monitor_started) {
		__atomic_store_n(&G.monitor_quit, 1, __ATOMIC_SEQ_CST);
		join_within(G.monitor, 5);
	}
	close_all_slots();
	for (i = 0; i < N_INST; i++)
		fz_inst_remove(&G.inst[i]);
	for (i = 0; i < N_MISC; i++)
		if (G.misc[i] >= 0)
			close(G.misc[i]);
	for (i = 0; i < G.nthreads; i++) {
		if (!G.t[i])
			continue;
		for (j = 0; j < G.t[i]->nsync; j++)
			close(G.t[i]->sync[j].fd);
		G.t[i]->nsync = 0;
	}
	if (G.kmsg >= 0)
		close(G.kmsg);
	module_ensure_loaded();
	restore_params();
}

/* The descriptors of the wrong type, open for the whole run */
static int open_misc(void)
{
	int p[2], i = 0, fd;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	G.misc[i++] = p[0];
	G.misc[i++] = p[1];
	G.misc[i++] = open("/dev/null", O_RDWR | O_CLOEXEC);
	G.misc[i++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (ftruncate(fd, 65536) ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK)))
		return -errno;
	G.misc[i++] = fd;
	G.misc[i++] = open(CFS_IIO_DEVS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/*
	 * Not /dev/dma_heap/system: its ioctl() looks at the number's nr
	 * only, so any ioctl numbered 0 (DMA_BUF_IOCTL_SYNC...) allocates a
	 * buffer of whatever size the argument says, and the new fd is lost.
	 */
	G.misc[i++] = open("/dev/zero", O_RDWR | O_CLOEXEC);
	G.misc[i++] = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);
	for (i = 0; i < N_MISC; i++)
		if (G.misc[i] < 0)
			return -ENOENT;
	return 0;
}

/* Open descriptors of this process, or -errno */
static int count_fds(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int module_refcnt(long long *v)
{
	return sysfs_read_ll(MODULE_SYSFS "/refcnt", v);
}

static void print_stats(void)
{
	uint64_t count, ok, err[N_ERRNO], v;
	int k, i, e, best, j;
	int64_t ns;

	printf("# fuzz: operation          count      ok    ms/op  most frequent errors\n");
	for (k = 0; k < NOPS; k++) {
		count = ok = 0;
		ns = 0;
		memset(err, 0, sizeof(err));
		for (i = 0; i < G.nthreads; i++) {
			ns += G.t[i]->ns[k];
			count += G.t[i]->count[k];
			ok += G.t[i]->ok[k];
			for (e = 0; e < N_ERRNO; e++)
				err[e] += G.t[i]->err[k][e];
		}
		printf("# fuzz: %-16s %8llu %7llu %8.2f ", op_names[k],
		       (unsigned long long)count, (unsigned long long)ok,
		       count ? ns / 1e6 / (double)count : 0.0);
		for (j = 0; j < 4; j++) {
			best = 0;
			for (e = 1; e < N_ERRNO; e++)
				if (err[e] > err[best])
					best = e;
			if (!best)
				break;
			v = err[best];
			err[best] = 0;
			printf(" %s %llu", strerrorname_np(best) ?: "?",
			       (unsigned long long)v);
		}
		printf("\n");
	}
	fflush(stdout);
}

TEST_F_TIMEOUT(fuzz, run, CHECK_SECONDS + 180)
{
	long long seconds = env_ll("FUZZ_SECONDS", CHECK_SECONDS);
	long long min_ops = env_ll("FUZZ_MIN_OPS", CHECK_MIN_OPS);
	struct rlimit rl = { 8192, 8192 };
	uint64_t fences = 0, fence_err = 0, ops;
	double fence_max = 0, t_end, elapsed, t0;
	struct scan_layout layout;
	struct logent *ctl_e;
	struct sigaction sa;
	char path[PATH_MAX];
	long long refcnt = -1;
	int i, j, ret, epoch, st = 0, fds0, fds;
	int64_t deadline;

	G.seed = (uint64_t)env_ll("FUZZ_SEED", 0);
	if (!getenv("FUZZ_SEED") || !*getenv("FUZZ_SEED")) {
		uint64_t x = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^
			     (uint64_t)time(NULL);

		G.seed = splitmix64(&x) >> 1;	/* positive as a long long */
	}
	G.nthreads = (int)env_ll("FUZZ_THREADS", 4);
	G.epoch_ops = (int)env_ll("FUZZ_EPOCH_OPS", EPOCH_OPS);
	ASSERT_LE(4, G.nthreads);
	ASSERT_GE(MAX_THREADS, G.nthreads);
	ASSERT_LT(0, G.epoch_ops);
	ASSERT_LT(0, seconds);
	DIAG("fuzz: seed %llu, %d threads, %d operations per thread and epoch, %lld s",
	     (unsigned long long)G.seed, G.nthreads, G.epoch_ops, seconds);
	DIAG("fuzz: replay: FUZZ_SEED=%llu FUZZ_THREADS=%d FUZZ_EPOCH_OPS=%d "
	     "(make fuzz SEED=%llu)", (unsigned long long)G.seed, G.nthreads,
	     G.epoch_ops, (unsigned long long)G.seed);

	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;	/* no SA_RESTART: calls end with EINTR */
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	sa.sa_handler = on_crash;
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	signal(SIGPIPE, SIG_IGN);
	ret = open_misc();
	ASSERT_EQ(0, ret) {
		TH_LOG("opening the wrong-type descriptors: %s", strerror(-ret));
	}
	ASSERT_EQ(0, dmabuf_max_bytes_get(&G.max_bytes0));
	ASSERT_EQ(0, dmabuf_max_bytes_set(FUZZ_MAX_BYTES));
	G.kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, G.kmsg);
	ASSERT_LE(0, lseek(G.kmsg, 0, SEEK_END));

	/* what stays open: after each epoch, exactly as many */
	fds0 = count_fds();
	ASSERT_LT(0, fds0);
	G.t_start = mono_ns();
	layout_init(&layout, ADC_ALL_TS);
	for (i = 0; i <= G.nthreads; i++) {
		G.t[i] = calloc(1, sizeof(*G.t[i]));
		ASSERT_NE(NULL, G.t[i]);
		G.t[i]->id = i;
		rnd_seed(G.t[i], G.seed, i);
		if (i == G.nthreads)
			continue;
		G.t[i]->buf = malloc(IOBUF + 64);
		ASSERT_NE(NULL, G.t[i]->buf);
		ramp_fill(&layout, G.t[i]->buf, 0, (IOBUF + 64) / layout.size);
	}
	ASSERT_EQ(0, pthread_create(&G.monitor, NULL, monitor_fn, NULL));
	G.monitor_started = true;
	for (i = 0; i < G.nthreads; i++) {
		ASSERT_EQ(0, pthread_create(&G.t[i]->th, NULL, fuzz_fn, G.t[i]));
		G.t[i]->started = true;
	}

	deadline = mono_ns() + seconds * 1000000000LL;
	for (epoch = 0; !__atomic_load_n(&G.stop, __ATOMIC_SEQ_CST); epoch++) {
		ASSERT_EQ(0, dmabuf_max_bytes_set(FUZZ_MAX_BYTES));
		/* every device there at the start of an epoch */
		for (i = 0; i < N_INST; i++) {
			CTL_BEGIN("epoch %d: mkdir %s", epoch, G.inst[i].name);
			fz_inst_cfs(&G.inst[i], path, sizeof(path));
			ret = mkdir(path, 0755) ? -errno : 0;
			if (!ret)
				ret = iio_find_device(G.inst[i].name);
			CTL_END(ret);
			ASSERT_LE(0, ret) {
				TH_LOG("mkdir %s: %s", path, strerror(-ret));
			}
			G.inst[i].devnum = ret;
		}

		pthread_mutex_lock(&G.lock);
		G.done = 0;
		G.gen++;
		pthread_cond_broadcast(&G.cond);
		while (G.done < G.nthreads) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&G.done_cond, &G.lock, &ts);
			if (mono_ns() >= deadline)
				__atomic_store_n(&G.stop, 1, __ATOMIC_SEQ_CST);
		}
		pthread_mutex_unlock(&G.lock);

		/* teardown: nothing of the epoch is left */
		CTL_BEGIN("epoch %d: close every descriptor and mapping", epoch);
		close_all_slots();
		CTL_END(0);
		for (i = 0; i < N_INST; i++) {
			CTL_BEGIN("epoch %d: disable, rmdir %s", epoch,
				  G.inst[i].name);
			ret = fz_inst_remove(&G.inst[i]);
			CTL_END(ret);
			ASSERT_EQ(0, ret) {
				TH_LOG("epoch %d: rmdir %s: %s", epoch,
				       G.inst[i].name, strerror(-ret));
			}
			ASSERT_EQ(-ENOENT, iio_wait_device(G.inst[i].name, false,
							   2000)) {
				TH_LOG("epoch %d: device %s still there after rmdir",
				       epoch, G.inst[i].name);
			}
		}

		/* every fence exported signals */
		t0 = now_s();
		for (i = 0; i < G.nthreads; i++) {
			struct fz_thread *t = G.t[i];

			for (j = 0; j < t->nsync; j++) {
				int left = (int)((t0 + FENCE_BOUND_S - now_s()) * 1000);

				CTL_BEGIN("epoch %d: wait for sync_file %d of thread %d op #%llu",
					  epoch, t->sync[j].fd, i,
					  (unsigned long long)t->sync[j].idx);
				ret = sync_file_wait(t->sync[j].fd,
						     left > 0 ? left : 0, &st);
				CTL_END(ret);
				if (ret) {
					dump_all("a fence did not signal");
				}
				ASSERT_EQ(0, ret) {
					TH_LOG("epoch %d: the fence exported by thread %d, operation #%llu (flags %#x), not signalled %d s after every device was removed: %s",
					       epoch, i,
					       (unsigned long long)t->sync[j].idx,
					       t->sync[j].flags, FENCE_BOUND_S,
					       strerror(-ret));
				}
				ASSERT_NE(0, st);
				fences++;
				fence_err += st < 0;
				close(t->sync[j].fd);
			}
			t->nsync = 0;
		}
		if (now_s() - t0 > fence_max)
			fence_max = now_s() - t0;

		/*
		 * No descriptor the fuzzer does not know of: a call that failed
		 * created none.
		 */
		fds = count_fds();
		if (fds != fds0)
			dump_all("descriptors left open");
		ASSERT_EQ(fds0, fds) {
			TH_LOG("epoch %d: %d descriptors open after closing everything, %d before the run",
			       epoch, fds, fds0);
		}

		/* nothing pins the module any more */
		CTL_BEGIN("epoch %d: wait for the module's refcnt to fall to 0",
			  epoch);
		t_end = now_s() + REFCNT_BOUND_S;
		do {
			ret = module_refcnt(&refcnt);
			if (ret || refcnt == 0)
				break;
			sleep_ms(20);
		} while (now_s() < t_end);
		CTL_END(ret ? ret : refcnt);
		ASSERT_EQ(0, ret);
		if (refcnt)
			dump_all("the module is still in use");
		ASSERT_EQ(0, refcnt) {
			TH_LOG("epoch %d: refcnt of %s still %lld %d s after everything was closed and removed",
			       epoch, MODULE_NAME, refcnt, REFCNT_BOUND_S);
		}
		ret = kmsg_check(400);
		ASSERT_EQ(0, ret) {
			TH_LOG("epoch %d: %d kernel report lines (printed above)",
			       epoch, ret);
		}
		DIAG("fuzz: epoch %d clean at %.1f s: %llu operations; after its teardown MemAvailable %lld kB, VmallocUsed %lld kB",
		     epoch, rel_ns() / 1e9, (unsigned long long)total_ops(),
		     meminfo_kb("MemAvailable"), meminfo_kb("VmallocUsed"));
	}
	elapsed = (mono_ns() - G.t_start) / 1e9;
	stop_threads();
	ops = total_ops();

	/* the module goes and comes back */
	CTL_BEGIN("rmmod %s", MODULE_NAME);
	t_end = now_s() + REFCNT_BOUND_S;
	while ((ret = module_unload()) == -EAGAIN && now_s() < t_end)
		sleep_ms(50);
	CTL_END(ret);
	EXPECT_EQ(0, ret) {
		TH_LOG("rmmod %s after the run: %s", MODULE_NAME, strerror(-ret));
	}
	if (!ret) {
		CTL_BEGIN("insmod %s", MODULE_PATH);
		ret = module_load();
		CTL_END(ret);
		if (!ret)	/* a new module: its default */
			G.max_bytes0 = -1;
		EXPECT_EQ(0, ret) {
			TH_LOG("loading %s again: %s", MODULE_PATH, strerror(-ret));
		}
	}
	ret = kmsg_check(400);
	EXPECT_EQ(0, ret);

	print_stats();
	for (i = 0, j = 0; i < G.nthreads; i++)
		j += (int)G.t[i]->sync_dropped;
	DIAG("fuzz: seed %llu: %llu operations in %.1f s (%.0f operations/s), "
	     "%d epochs, %llu fences checked (%llu with an error, the last "
	     "signalled %.2f s after the teardown), %d unchecked",
	     (unsigned long long)G.seed, (unsigned long long)ops, elapsed,
	     ops / elapsed, epoch, (unsigned long long)fences,
	     (unsigned long long)fence_err, fence_max, j);
	EXPECT_LE((uint64_t)min_ops, ops) {
		TH_LOG("only %llu operations, %lld wanted", (unsigned long long)ops,
		       min_ops);
	}
}

/*
 * make fuzz runs for FUZZ_SECONDS: the harness's timeout of the test
 * follows (the one above is make check's).
 */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) fuzz_timeout(void)
{
	long long seconds = env_ll("FUZZ_SECONDS", CHECK_SECONDS);

	if (seconds > CHECK_SECONDS)
		(*_fuzz_run_object).timeout = (int)(seconds + 180);
}

TEST_HARNESS_MAIN
