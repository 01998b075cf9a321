// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: the DMABUF interface is optional per driver.
 *
 * The kernel's own iio_dummy device (drivers/iio/dummy, created through
 * configfs, a triggered kfifo buffer) has no DMABUF support. A client that
 * follows Documentation/iio/dmabuf_api.rst ("Detecting support and falling
 * back", section 2) finds that out and falls back to read():
 *
 * - there is no /dev/iio:deviceN-dmabuf0 (nor a misc device whose device
 *   link is the dummy's IIO device), while a dmabuf_adc has one;
 * - the mainline ATTACH on the dummy's buffer fd fails with EPERM, the IIO
 *   core's answer for a buffer without DMABUF hooks
 *   (drivers/iio/industrialio-buffer.c, iio_buffer_attach_dmabuf()), where
 *   a dmabuf_adc's buffer accepts the same DMABUF;
 * - read() on /dev/iio:deviceN delivers the dummy's scans, paced by an
 *   hrtimer trigger (configfs iio/triggers/hrtimer).
 *
 * The dummy device and the trigger are made once per boot and never
 * removed, because of two bugs of Linux 7.3.4 that would fail the whole
 * run (kernel log):
 * - rmdir of an iio_dummy device leaks the struct iio_sw_device that
 *   iio_dummy_probe() allocated (iio_dummy_remove() never frees it;
 *   kmemleak reports it);
 * - rmdir of an hrtimer trigger is a use-after-free: trigger_drop_group()
 *   (industrialio-sw-trigger.c) calls config_item_put() on the item that
 *   iio_trig_hrtimer_remove() has just freed (KASAN reports it).
 * So after this program iio_dummy stays loaded with the device "fbdummy",
 * and the hrtimer trigger "fbtrig" stays (idle: no device uses it).
 */
#include <libgen.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

#define CFS_DUMMY_DIR	CFS_IIO_DEVS "/dummy"
#define CFS_HRTIMER_DIR	CFS_ROOT "/iio/triggers/hrtimer"
#define DUMMY_MODULE	"iio_dummy"
#define DUMMY_NAME	"fbdummy"
#define TRIG_NAME	"fbtrig"
#define DUMMY_FREQ	200	/* trigger rate, Hz */
#define DUMMY_SCANS	100U	/* scans a read test takes */
#define MAX_CH		16

/* One enabled scan element and where it sits in a scan */
struct elem {
	char name[64];		/* e.g. "in_voltage0" */
	int index;
	bool is_signed, big_endian;
	int bits, storage, shift;
	size_t offset;
};

struct layout {
	struct elem e[MAX_CH];
	int n;
	size_t size;
};

FIXTURE(fb) {
	int devnum;
	char dir[PATH_MAX];	/* /sys/bus/iio/devices/iio:deviceN */
	char node[64];		/* /dev/iio:deviceN */
	int devfd, bfd;
	int fds[8];
	struct inst a;		/* a dmabuf_adc, where a test compares */
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void keep_fd(FIXTURE_DATA(fb) *self, int fd)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->fds); i++) {
		if (self->fds[i] < 0) {
			self->fds[i] = fd;
			return;
		}
	}
	close(fd);	/* cannot happen: enough slots for every test */
}

/* modprobe iio_dummy (busybox's, from /lib/modules); 0 or -errno */
static int load_dummy(char *out, size_t size)
{
	char *const argv[] = { "/sbin/modprobe", DUMMY_MODULE, NULL };
	int ret, status = 0;

	ret = run_capture(argv, out, size, 60, &status);
	if (ret)
		return ret;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	return dir_exists(CFS_DUMMY_DIR) ? 0 : -ENOENT;
}

/* /sys/bus/iio/devices/triggerN named @name: N, or -ENOENT */
static int find_trigger(const char *name, char *dir, size_t size)
{
	char path[PATH_MAX], buf[128];
	struct dirent *de;
	int found = -ENOENT, n;
	DIR *d;

	d = opendir(IIO_DEV_DIR);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "trigger%d", &n) != 1)
			continue;
		snprintf(path, sizeof(path), IIO_DEV_DIR "/%s/name", de->d_name);
		if (sysfs_read(path, buf, sizeof(buf)) < 0 || strcmp(buf, name))
			continue;
		snprintf(dir, size, IIO_DEV_DIR "/%s", de->d_name);
		found = n;
		break;
	}
	closedir(d);
	return found;
}

static int dev_write(FIXTURE_DATA(fb) *self, const char *attr, const char *val)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", self->dir, attr);
	return sysfs_write(path, val);
}

static int dev_read(FIXTURE_DATA(fb) *self, const char *attr, char *buf,
		    size_t size)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", self->dir, attr);
	return sysfs_read(path, buf, size);
}

static int elem_cmp(const void *x, const void *y)
{
	return ((const struct elem *)x)->index - ((const struct elem *)y)->index;
}

/*
 * Enable every scan element of buffer0 of the device in @dir and compute
 * the scan layout as a client does, from each element's _index and _type
 * (each element aligned to its storage size, the scan padded to the
 * largest). 0 or -errno.
 */
static int enable_all_elements(const char *dir, struct layout *l)
{
	char path[PATH_MAX + 128], buf[64], sign, endian[3];
	size_t off = 0, largest = 1, bytes;
	struct dirent *de;
	long long v;
	int ret = 0, i;
	DIR *d;

	memset(l, 0, sizeof(*l));
	snprintf(path, sizeof(path), "%s/buffer0", dir);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct elem *e;

		if (len < 4 || strcmp(de->d_name + len - 3, "_en"))
			continue;
		if (l->n == MAX_CH) {
			ret = -E2BIG;
			break;
		}
		e = &l->e[l->n];
		snprintf(e->name, sizeof(e->name), "%.*s", (int)(len - 3),
			 de->d_name);
		snprintf(path, sizeof(path), "%s/buffer0/%s", dir, de->d_name);
		ret = sysfs_write(path, "1");
		if (ret)
			break;
		snprintf(path, sizeof(path), "%s/buffer0/%s_index", dir,
			 e->name);
		ret = sysfs_read_ll(path, &v);
		if (ret)
			break;
		e->index = (int)v;
		snprintf(path, sizeof(path), "%s/buffer0/%s_type", dir, e->name);
		ret = sysfs_read(path, buf, sizeof(buf));
		if (ret < 0)
			break;
		ret = 0;
		if (sscanf(buf, "%2[bel]:%c%d/%d>>%d", endian, &sign, &e->bits,
			   &e->storage, &e->shift) != 5 ||
		    e->storage % 8 || e->storage < 8 || e->storage > 64) {
			ret = -EPROTO;
			break;
		}
		e->is_signed = sign == 's';
		e->big_endian = !strcmp(endian, "be");
		l->n++;
	}
	closedir(d);
	if (ret)
		return ret;
	qsort(l->e, l->n, sizeof(l->e[0]), elem_cmp);
	for (i = 0; i < l->n; i++) {
		bytes = (size_t)l->e[i].storage / 8;
		off = (off + bytes - 1) / bytes * bytes;
		l->e[i].offset = off;
		off += bytes;
		if (bytes > largest)
			largest = bytes;
	}
	l->size = (off + largest - 1) / largest * largest;
	return l->n ? 0 : -ENOENT;
}

/* The value of element @e in the scan @scan */
static long long elem_value(const struct elem *e, const uint8_t *scan)
{
	unsigned int bytes = (unsigned int)e->storage / 8, i;
	uint64_t raw = 0, mask;

	for (i = 0; i < bytes; i++) {
		unsigned int b = e->big_endian ? i : bytes - 1 - i;

		raw = (raw << 8) | scan[e->offset + b];
	}
	raw >>= e->shift;
	mask = e->bits >= 64 ? ~0ULL : (1ULL << e->bits) - 1;
	raw &= mask;
	if (e->is_signed && e->bits < 64 && (raw >> (e->bits - 1)) & 1)
		raw |= ~mask;
	return (long long)raw;
}

/* What iio_dummy's trigger handler pushes (fakedata[] of its buffer.c) */
static bool dummy_expected(const char *name, long long *v)
{
	static const struct { const char *name; long long v; } fake[] = {
		{ "in_voltage0", 7 }, { "in_voltage1-voltage2", -33 },
		{ "in_voltage3-voltage4", -2 }, { "in_accel_x", 344 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fake); i++) {
		if (!strcmp(fake[i].name, name)) {
			*v = fake[i].v;
			return true;
		}
	}
	return false;
}

/* Misc devices whose "device" link is the IIO device iio:device@devnum */
static int misc_children(int devnum)
{
	char path[PATH_MAX], link[PATH_MAX], want[32];
	struct dirent *de;
	int count = 0;
	ssize_t n;
	DIR *d;

	snprintf(want, sizeof(want), "iio:device%d", devnum);
	d = opendir("/sys/class/misc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/misc/%s/device",
			 de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(basename(link), want))
			count++;
	}
	closedir(d);
	return count;
}

/* open() of @path that must fail; -errno, or 0 if it opened */
static int open_fail(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return -errno;
}

/* /dev/iio:deviceN-dmabuf0 of device @devnum */
static void dmabuf_node(int devnum, char *buf, size_t size)
{
	snprintf(buf, size, "/dev/iio:device%d-dmabuf0", devnum);
}

FIXTURE_SETUP(fb)
{
	char out[2048], path[PATH_MAX];
	unsigned int i;
	int ret;

	self->devnum = -1;
	self->devfd = -1;
	self->bfd = -1;
	self->a.devnum = -1;
	for (i = 0; i < ARRAY_SIZE(self->fds); i++)
		self->fds[i] = -1;

	/* configured as a module in the test kernel: it must load */
	if (!dir_exists(CFS_DUMMY_DIR)) {
		out[0] = '\0';
		ret = load_dummy(out, sizeof(out));
		ASSERT_EQ(0, ret) {
			TH_LOG("modprobe %s: %s; output: %s", DUMMY_MODULE,
			       strerror(-ret), out);
		}
	}
	/* made once per boot (see the top of this file) */
	snprintf(path, sizeof(path), CFS_DUMMY_DIR "/%s", DUMMY_NAME);
	if (!dir_exists(path)) {
		ASSERT_EQ(0, mkdir(path, 0755)) {
			TH_LOG("mkdir %s: %s", path, strerror(errno));
		}
	}
	self->devnum = iio_wait_device(DUMMY_NAME, true, 2000);
	ASSERT_LE(0, self->devnum) {
		TH_LOG("no IIO device named %s: %s", DUMMY_NAME,
		       strerror(-self->devnum));
	}
	snprintf(self->dir, sizeof(self->dir), IIO_DEV_DIR "/iio:device%d",
		 self->devnum);
	snprintf(self->node, sizeof(self->node), "/dev/iio:device%d",
		 self->devnum);
}

FIXTURE_TEARDOWN(fb)
{
	unsigned int i;

	if (self->devnum >= 0) {
		dev_write(self, "buffer0/enable", "0");
		/* no trigger of that name: the device lets its trigger go */
		dev_write(self, "trigger/current_trigger", "\n");
	}
	if (self->bfd >= 0)
		close(self->bfd);
	if (self->devfd >= 0)
		close(self->devfd);
	for (i = 0; i < ARRAY_SIZE(self->fds); i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	inst_destroy(&self->a);
}

/* The dummy's /dev node and its buffer fd (self->devfd, self->bfd) */
#define OPEN_BUFFER_FD() do {						\
	self->devfd = open(self->node, O_RDWR | O_CLOEXEC);		\
	ASSERT_LE(0, self->devfd) {					\
		TH_LOG("open %s: %s", self->node, strerror(errno));	\
	}								\
	self->bfd = iio_buffer_get_fd(self->devfd, 0);			\
	ASSERT_LE(0, self->bfd) {					\
		TH_LOG("IIO_BUFFER_GET_FD_IOCTL: %s",			\
		       strerror(-self->bfd));				\
	}								\
} while (0)

/* A DMABUF of one page from @src ("heap" or "udmabuf"), kept open */
#define DMABUF_FROM(fd, src) do {					\
	int _memfd = -1;						\
	(fd) = !strcmp((src), "heap") ?					\
		dma_heap_alloc(DMA_HEAP_SYSTEM, page_size()) :		\
		udmabuf_alloc(page_size(), &_memfd);			\
	ASSERT_LE(0, (fd)) {						\
		TH_LOG("DMABUF from %s: %s", (src), strerror(-(fd)));	\
	}								\
	keep_fd(self, (fd));						\
	if (_memfd >= 0)						\
		keep_fd(self, _memfd);					\
} while (0)

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/*
 * The seed API's char device exists only for buffers that implement it:
 * none for the dummy, by node name or by sysfs parent; one for a
 * dmabuf_adc, which opens.
 */
TEST_F_TIMEOUT(fb, no_dmabuf_node, 60)
{
	char node[64];
	struct stat st;
	int fd;

	ASSERT_EQ(0, stat(self->node, &st)) {
		TH_LOG("the dummy's own node %s: %s", self->node,
		       strerror(errno));
	}
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	dmabuf_node(self->devnum, node, sizeof(node));
	EXPECT_EQ(-ENOENT, stat(node, &st) ? -errno : 0) {
		TH_LOG("%s exists for the dummy", node);
	}
	EXPECT_EQ(-ENOENT, open_fail(node));
	EXPECT_EQ(0, misc_children(self->devnum));

	/* the same look-ups find a dmabuf_adc's */
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "fba"));
	dmabuf_node(self->a.devnum, node, sizeof(node));
	ASSERT_EQ(0, stat(node, &st)) {
		TH_LOG("%s: %s", node, strerror(errno));
	}
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(1, misc_children(self->a.devnum));
	fd = inst_dmabuf_open(&self->a, O_RDWR);
	EXPECT_LE(0, fd) {
		TH_LOG("open %s: %s", node, strerror(-fd));
	}
	if (fd >= 0)
		close(fd);
}

/*
 * The mainline API: the dummy's buffer fd is there, but ATTACH fails with
 * EPERM (the core refuses before it even reads the argument: no DMABUF
 * hooks), for any DMABUF; ENQUEUE and DETACH find no attachment: EPERM.
 * The same DMABUFs attach to a dmabuf_adc's buffer.
 */
TEST_F_TIMEOUT(fb, mainline_attach_eperm, 60)
{
	int heap, udma, devfd, bfd;

	OPEN_BUFFER_FD();
	DMABUF_FROM(heap, "heap");
	DMABUF_FROM(udma, "udmabuf");
	EXPECT_EQ(-EPERM, iio_buffer_attach(self->bfd, heap));
	EXPECT_EQ(-EPERM, iio_buffer_attach(self->bfd, udma));
	EXPECT_EQ(-EPERM, ioctl(self->bfd, IIO_BUFFER_DMABUF_ATTACH_IOCTL,
				NULL) ? -errno : 0);
	EXPECT_EQ(-EPERM, iio_buffer_enqueue(self->bfd, heap, 0, page_size()));
	EXPECT_EQ(-EPERM, iio_buffer_detach(self->bfd, heap));

	/* where the buffer supports it, the same client code attaches */
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "fba"));
	devfd = inst_open(&self->a, O_RDWR);
	ASSERT_LE(0, devfd);
	keep_fd(self, devfd);
	bfd = iio_buffer_get_fd(devfd, 0);
	ASSERT_LE(0, bfd);
	keep_fd(self, bfd);
	EXPECT_EQ(0, iio_buffer_attach(bfd, heap));
	EXPECT_EQ(0, iio_buffer_attach(bfd, udma));
	EXPECT_EQ(0, iio_buffer_detach(bfd, heap));
	EXPECT_EQ(0, iio_buffer_detach(bfd, udma));
}

/*
 * The fallback: no DMABUF (no node, ATTACH refused), so read() on
 * /dev/iio:deviceN with an hrtimer trigger: every scan holds the dummy's
 * values, the timestamps increase and lie between the enable and now.
 */
TEST_F_TIMEOUT(fb, fallback_read, 120)
{
	char node[64], path[PATH_MAX + 32], tdir[PATH_MAX], buf[64];
	uint8_t data[64 * 16];
	struct layout l;
	struct timespec ts;
	int64_t t_enable, t_now, last_ts = INT64_MIN;
	size_t have = 0, scans = 0, k;
	double end;
	int heap, ret, i;
	ssize_t n;

	/* detection, as dmabuf_api.rst says */
	dmabuf_node(self->devnum, node, sizeof(node));
	ASSERT_EQ(-ENOENT, open_fail(node));
	OPEN_BUFFER_FD();
	DMABUF_FROM(heap, "heap");
	ASSERT_EQ(-EPERM, iio_buffer_attach(self->bfd, heap));
	close(self->bfd);
	self->bfd = -1;

	/* the hrtimer trigger, made once per boot (see the top of this file) */
	snprintf(path, sizeof(path), CFS_HRTIMER_DIR "/%s", TRIG_NAME);
	if (!dir_exists(path)) {
		ASSERT_EQ(0, mkdir(path, 0755)) {
			TH_LOG("mkdir %s: %s", path, strerror(errno));
		}
	}
	ASSERT_LE(0, find_trigger(TRIG_NAME, tdir, sizeof(tdir))) {
		TH_LOG("no trigger named %s", TRIG_NAME);
	}
	snprintf(path, sizeof(path), "%s/sampling_frequency", tdir);
	ASSERT_EQ(0, sysfs_write_ll(path, DUMMY_FREQ));
	ASSERT_EQ(0, dev_write(self, "trigger/current_trigger", TRIG_NAME));
	ASSERT_LT(0, dev_read(self, "trigger/current_trigger", buf,
			      sizeof(buf)));
	ASSERT_STREQ(TRIG_NAME, buf);

	/* every scan element, and the layout a client computes */
	ret = enable_all_elements(self->dir, &l);
	ASSERT_EQ(0, ret) {
		TH_LOG("scan elements of %s: %s", self->dir, strerror(-ret));
	}
	ASSERT_GE(sizeof(data), l.size);
	for (i = 0; i < l.n; i++) {
		long long v;

		if (!strcmp(l.e[i].name, "in_timestamp"))
			continue;
		ASSERT_TRUE(dummy_expected(l.e[i].name, &v)) {
			TH_LOG("unknown scan element %s", l.e[i].name);
		}
	}
	ASSERT_EQ(0, dev_write(self, "buffer0/length", "64"));
	ASSERT_EQ(0, dev_write(self, "buffer0/watermark", "1"));

	/* read() */
	ASSERT_EQ(0, fd_set_nonblock(self->devfd, true));
	clock_gettime(CLOCK_REALTIME, &ts);
	t_enable = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	ASSERT_EQ(0, dev_write(self, "buffer0/enable", "1"));
	end = now_s() + 60.0;
	while (scans < DUMMY_SCANS && now_s() < end) {
		n = read_timeout(self->devfd, data + have,
				 sizeof(data) - have, 1000);
		if (n == -ETIMEDOUT || n == -EAGAIN)
			continue;
		ASSERT_LT(0, n) {
			TH_LOG("read: %s", n ? strerror((int)-n) : "EOF");
		}
		have += (size_t)n;
		clock_gettime(CLOCK_REALTIME, &ts);
		t_now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
		for (k = 0; k + l.size <= have; k += l.size, scans++) {
			for (i = 0; i < l.n; i++) {
				long long v = elem_value(&l.e[i], data + k), want;

				if (!strcmp(l.e[i].name, "in_timestamp")) {
					EXPECT_LT(last_ts, v) {
						TH_LOG("scan %zu: timestamp %lld after %lld",
						       scans, v, (long long)last_ts);
					}
					EXPECT_LE(t_enable, v);
					EXPECT_GE(t_now, v);
					last_ts = v;
					continue;
				}
				ASSERT_TRUE(dummy_expected(l.e[i].name, &want));
				ASSERT_EQ(want, v) {
					TH_LOG("scan %zu: %s = %lld", scans,
					       l.e[i].name, v);
				}
			}
		}
		memmove(data, data + k, have - k);
		have -= k;
	}
	EXPECT_LE((size_t)DUMMY_SCANS, scans) {
		TH_LOG("%zu scans in 60 s at %d Hz", scans, DUMMY_FREQ);
	}
	ASSERT_EQ(0, dev_write(self, "buffer0/enable", "0"));
}

TEST_HARNESS_MAIN
