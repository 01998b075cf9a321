// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: module unload/reload. Run this program last: it unloads
 * the module and loads it again from MODULE_PATH (every test leaves the
 * module loaded, even on failure).
 *
 * What pins the module (dmabuf_adc.rst, dmabuf_api.rst): every instance,
 * every open file of its devices (/dev/iio:deviceN, its buffer fds,
 * /dev/iio:deviceN-dmabuf0), every DMABUF block it allocated (a file
 * descriptor or a mapping) and every mainline attachment. While pinned,
 * delete_module() fails with EAGAIN (EWOULDBLOCK); once all of them are
 * gone it succeeds. The module's DMA device, /sys/devices/faux/iio_dmabuf,
 * lives exactly as long as the module and is the parent of every
 * converter.
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

/* Instances this program leaves behind fail it (lib/inst.h) */
LEFTOVER_INSTANCES_FAIL()

#define DMA_DEV_DIR	"/sys/devices/faux/iio_dmabuf"
#define BLOCK_BYTES	(64 * 1024)

FIXTURE(mod) {
	struct inst a;
	struct inst b;		/* a second ADC */
	struct inst d;		/* a DAC */
	int fd;			/* /dev/iio:deviceN */
	int bfd;		/* a buffer fd (IIO_BUFFER_GET_FD_IOCTL) */
	int cfd;		/* /dev/iio:deviceN-dmabuf0 */
	int dfd;		/* a DMABUF */
	int sfd;		/* a sync_file */
	uint8_t *map;		/* a mapping of a DMABUF, BLOCK_BYTES */
	uint8_t buf[64 * 1024];
};

/* The instance names in the configfs directory @dir; count or -errno */
static int list_instances(const char *dir, char names[][64], int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n < max)
			snprintf(names[n], 64, "%.63s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Disable the buffer of the device called @name and rmdir it in @dir */
static int remove_instance(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int n = iio_find_device(name);

	if (n >= 0) {
		snprintf(path, sizeof(path), IIO_DEV_DIR "/iio:device%d/buffer0/enable",
			 n);
		sysfs_write(path, "0");
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return rmdir(path) ? -errno : 0;
}

/*
 * Instances left by an earlier program are its failure, not something to
 * clean up quietly here: log them, remove them (so the module can be
 * unloaded) and fail.
 */
static int check_no_instances(struct __test_metadata *_metadata)
{
	static const char *const dirs[] = { CFS_TYPE_DIR, CFS_DAC_TYPE_DIR };
	char names[32][64];
	unsigned int t;
	int i, n, found = 0;

	for (t = 0; t < ARRAY_SIZE(dirs); t++) {
		n = list_instances(dirs[t], names, 32);
		for (i = 0; i < n && i < 32; i++) {
			TH_LOG("instance left behind: %s/%s (removing it: %s)",
			       dirs[t], names[i],
			       strerror(-remove_instance(dirs[t], names[i])));
			found++;
		}
	}
	return found;
}

FIXTURE_SETUP(mod)
{
	self->a.devnum = -1;
	self->b.devnum = -1;
	self->d.devnum = -1;
	self->fd = -1;
	self->bfd = -1;
	self->cfd = -1;
	self->dfd = -1;
	self->sfd = -1;
	self->map = NULL;
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	ASSERT_EQ(0, check_no_instances(_metadata));
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

FIXTURE_TEARDOWN(mod)
{
	if (self->map)
		munmap(self->map, BLOCK_BYTES);
	self->map = NULL;
	close_fd(&self->sfd);
	close_fd(&self->dfd);
	close_fd(&self->cfd);
	close_fd(&self->bfd);
	close_fd(&self->fd);
	inst_destroy(&self->a);
	inst_destroy(&self->b);
	inst_destroy(&self->d);
	module_ensure_loaded();
}

/* create an instance and stream a few hundred scans from it */
static int quick_stream(struct __test_metadata *_metadata, struct inst *a,
			uint8_t *buf, size_t len)
{
	struct ramp_check rc;
	int fd, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	fd = inst_open(a, O_RDONLY);
	if (fd < 0)
		return fd;
	ret = inst_start(a, ADC_ALL_TS, ADC_DEFAULT_FREQ, 4096, 64);
	if (!ret)
		ret = stream_read(fd, &rc, 300, 30, buf, len, NULL);
	if (ret)
		TH_LOG("quick_stream: %s %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	inst_buffer_disable(a);
	close(fd);
	if (!ret && rc.first_n != 0)
		ret = -EPROTO;
	return ret;
}

/*
 * rmmod while something pins the module: exactly EAGAIN (delete_module()
 * returns EWOULDBLOCK for a module in use), and the module stays.
 */
#define UNLOAD_BUSY(what) do {						\
	int _r = module_unload();					\
	if (!_r) {	/* gone: nothing of it is left to tear down */	\
		self->a.devnum = self->b.devnum = self->d.devnum = -1;	\
	}								\
	ASSERT_EQ(-EAGAIN, _r) {					\
		TH_LOG("rmmod with %s: %s", (what),			\
		       _r ? strerror(-_r) : "succeeded");		\
	}								\
	ASSERT_TRUE(module_loaded());					\
} while (0)

/*
 * rmmod once nothing pins it any more. Releases that the IIO core defers
 * to a work item (a mainline attachment after its last fence) may keep it
 * busy a moment: retry EAGAIN (only) for up to @ms.
 */
static int unload_within(int ms)
{
	double end = now_s() + ms / 1000.0;
	int ret;

	for (;;) {
		ret = module_unload();
		if (ret != -EAGAIN || now_s() > end)
			return ret;
		sleep_ms(20);
	}
}

#define UNLOAD_OK(ms) do {						\
	int _r = unload_within(ms);					\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("rmmod once everything was released: %s",	\
		       strerror(-_r));					\
	}								\
	ASSERT_FALSE(module_loaded());					\
	EXPECT_FALSE(dir_exists(DMA_DEV_DIR));				\
	EXPECT_FALSE(dir_exists(CFS_TYPE_DIR));				\
} while (0)

/* insmod again, and a new instance streams */
#define RELOAD_AND_STREAM() do {					\
	ASSERT_EQ(0, module_load());					\
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));				\
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mr"));	\
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,	\
				  sizeof(self->buf)));			\
	ASSERT_EQ(0, inst_destroy(&self->a));				\
} while (0)

/* rmmod fails while an instance exists; the instance keeps working */
TEST_F_TIMEOUT(mod, rmmod_busy_with_instance, 120)
{
	char name[64];
	long long v;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mb"));
	snprintf(name, sizeof(name), "%s", self->a.name);

	UNLOAD_BUSY("an instance present");

	/* still fully functional */
	EXPECT_EQ(self->a.devnum, iio_find_device(name));
	ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
	EXPECT_EQ(ADC_DEFAULT_FREQ, v);
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));

	/* also busy while streaming */
	self->fd = inst_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 0, 0));
	UNLOAD_BUSY("an instance streaming");
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	close_fd(&self->fd);

	/* after rmdir it unloads, and configfs forgets the type */
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	UNLOAD_OK(0);
	EXPECT_NE(0, inst_mkdir(INST_ADC, name));
	EXPECT_EQ(-ENOENT, module_unload());

	/* insmod brings it back */
	ASSERT_EQ(0, module_load());
	ASSERT_TRUE(module_loaded());
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	ASSERT_EQ(0, inst_create(&self->a, INST_ADC, name));
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));
	ASSERT_EQ(0, inst_destroy(&self->a));
}

/* several unload/load cycles, with instances in between */
TEST_F_TIMEOUT(mod, reload_cycles, 240)
{
	int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mc"));
		ASSERT_EQ(0, inst_create_unique(&self->b, INST_ADC, "mc"));
		UNLOAD_BUSY("2 instances");
		ASSERT_EQ(0, inst_destroy(&self->a));
		UNLOAD_BUSY("1 instance left");
		ASSERT_EQ(0, inst_destroy(&self->b));

		UNLOAD_OK(0);
		ASSERT_EQ(0, module_load());
		ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	}
	/* fresh instance after the last reload: defaults, streaming */
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mc"));
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));
}

/*
 * rmdir while the character device is still open, then rmmod: the open
 * file pins the module (EAGAIN) and its read() fails with ENODEV; once
 * it is closed the module unloads and reloads.
 */
TEST_F_TIMEOUT(mod, rmmod_after_rmdir_with_open_fd, 120)
{
	char name[64];
	ssize_t n;
	int e;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mf"));
	snprintf(name, sizeof(name), "%s", self->a.name);
	self->fd = inst_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 0, 0));
	sleep_ms(100);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	UNLOAD_BUSY("/dev/iio:deviceN of a removed device open");
	n = read(self->fd, self->buf, sizeof(self->buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ENODEV, e) {
		TH_LOG("read after rmdir: %s", n < 0 ? strerror(e) : "data");
	}
	UNLOAD_BUSY("/dev/iio:deviceN of a removed device open");
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;

	UNLOAD_OK(0);
	RELOAD_AND_STREAM();
}

/* realpath() of @path into @out; 0 or -errno */
static int real_path(const char *path, char *out)
{
	return realpath(path, out) ? 0 : -errno;
}

/*
 * The module's DMA device: /sys/devices/faux/iio_dmabuf, on the faux bus,
 * the sysfs parent of every converter (ADC and DAC), present exactly
 * while the module is loaded.
 */
TEST_F_TIMEOUT(mod, dma_device, 120)
{
	char path[PATH_MAX + 64], real[PATH_MAX], want[PATH_MAX];
	const struct inst *conv[2];
	int i;

	ASSERT_TRUE(dir_exists(DMA_DEV_DIR));
	ASSERT_EQ(0, real_path(DMA_DEV_DIR "/subsystem", real));
	EXPECT_STREQ("/sys/bus/faux", real);

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mdmaa"));
	ASSERT_EQ(0, inst_create_unique(&self->d, INST_DAC, "mdmad"));
	conv[0] = &self->a;
	conv[1] = &self->d;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, real_path(conv[i]->dir, real));
		snprintf(want, sizeof(want), DMA_DEV_DIR "/iio:device%d",
			 conv[i]->devnum);
		EXPECT_STREQ(want, real);
		/* the DMABUF char device's "device" is the IIO device */
		snprintf(path, sizeof(path),
			 "/sys/class/misc/iio:device%d-dmabuf0/device",
			 conv[i]->devnum);
		ASSERT_EQ(0, real_path(path, real));
		EXPECT_STREQ(want, real);
	}

	/* the converters go, the DMA device stays while the module does */
	ASSERT_EQ(0, inst_destroy(&self->a));
	ASSERT_EQ(0, inst_destroy(&self->d));
	EXPECT_TRUE(dir_exists(DMA_DEV_DIR));
	UNLOAD_OK(0);
	ASSERT_EQ(0, module_load());
	EXPECT_TRUE(dir_exists(DMA_DEV_DIR));
	ASSERT_EQ(0, real_path(DMA_DEV_DIR "/subsystem", real));
	EXPECT_STREQ("/sys/bus/faux", real);
	/* and the new converters hang below it again */
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mdmaa"));
	ASSERT_EQ(0, real_path(self->a.dir, real));
	snprintf(want, sizeof(want), DMA_DEV_DIR "/iio:device%d",
		 self->a.devnum);
	EXPECT_STREQ(want, real);
}

/*
 * rmmod while a DMABUF block allocated by the module is alive: its char
 * device open, then only the block's fd (char device closed, instance
 * removed). The block pins the module until it is closed.
 */
TEST_F_TIMEOUT(mod, rmmod_busy_with_dmabuf_fd, 120)
{
	char name[64];

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mbf"));
	snprintf(name, sizeof(name), "%s", self->a.name);
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	self->dfd = dmabuf_alloc(self->cfd, BLOCK_BYTES);
	ASSERT_LE(0, self->dfd) {
		TH_LOG("ALLOC: %s", strerror(-self->dfd));
	}

	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;
	UNLOAD_BUSY("the DMABUF char device and a block open, instance removed");
	close_fd(&self->cfd);
	UNLOAD_BUSY("a DMABUF block open");
	/* the block is still a working DMABUF */
	EXPECT_EQ(BLOCK_BYTES, dmabuf_size(self->dfd));
	EXPECT_EQ(0, dmabuf_sync_start(self->dfd));
	EXPECT_EQ(0, dmabuf_sync_end(self->dfd));
	UNLOAD_BUSY("a DMABUF block open");

	EXPECT_EQ(0, close(self->dfd));
	self->dfd = -1;
	UNLOAD_OK(0);
	RELOAD_AND_STREAM();
}

/*
 * rmmod while only a mapping of a block is left (fd and char device
 * closed, instance removed): the mapping pins the module and its memory
 * stays the application's until munmap().
 */
TEST_F_TIMEOUT(mod, rmmod_busy_with_mapping, 120)
{
	char name[64];
	void *p;
	size_t i;
	int bad = 0;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mbm"));
	snprintf(name, sizeof(name), "%s", self->a.name);
	self->cfd = inst_dmabuf_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->cfd);
	self->dfd = dmabuf_alloc(self->cfd, BLOCK_BYTES);
	ASSERT_LE(0, self->dfd) {
		TH_LOG("ALLOC: %s", strerror(-self->dfd));
	}
	p = mmap(NULL, BLOCK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->dfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	self->map = p;
	for (i = 0; i < BLOCK_BYTES; i++)
		self->map[i] = (uint8_t)(i * 7);

	close_fd(&self->dfd);
	close_fd(&self->cfd);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;
	UNLOAD_BUSY("only a mapping of a block left");

	/* the memory is intact and still writable */
	for (i = 0; i < BLOCK_BYTES; i++)
		bad += self->map[i] != (uint8_t)(i * 7);
	EXPECT_EQ(0, bad);
	memset(self->map, 0x5a, BLOCK_BYTES);
	EXPECT_EQ(0x5a, self->map[BLOCK_BYTES - 1]);
	UNLOAD_BUSY("only a mapping of a block left");

	EXPECT_EQ(0, munmap(self->map, BLOCK_BYTES));
	self->map = NULL;
	UNLOAD_OK(0);
	RELOAD_AND_STREAM();
}

/*
 * rmmod while a mainline attachment is alive: a DMABUF of the system heap
 * attached (and queued) on an ADC's buffer fd. The buffer fd and the
 * attachment pin the module, also after rmdir; once the buffer fd is
 * closed (the core drops the attachment) the module unloads, and the heap
 * DMABUF is attached to nothing any more.
 */
TEST_F_TIMEOUT(mod, rmmod_busy_with_attachment, 120)
{
	const size_t bytes = 16 * 256;
	char name[64], dev[128], want[64];
	int ret, st = 0;
	void *p;

	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "mba"));
	snprintf(name, sizeof(name), "%s", self->a.name);
	ASSERT_EQ(0, inst_configure(&self->a, ADC_ALL_TS, 1000, 0, 0));
	self->fd = inst_open(&self->a, O_RDWR);
	ASSERT_LE(0, self->fd);
	self->bfd = iio_buffer_get_fd(self->fd, 0);
	ASSERT_LE(0, self->bfd);
	self->dfd = dma_heap_alloc(DMA_HEAP_SYSTEM, BLOCK_BYTES);
	ASSERT_LE(0, self->dfd) {
		TH_LOG("%s: %s", DMA_HEAP_SYSTEM, strerror(-self->dfd));
	}
	p = mmap(NULL, BLOCK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->dfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	self->map = p;

	ret = iio_buffer_attach(self->bfd, self->dfd);
	ASSERT_EQ(0, ret) {
		TH_LOG("ATTACH: %s", strerror(-ret));
	}
	ret = dmabuf_attached_devices(self->dfd, dev, sizeof(dev));
	EXPECT_EQ(1, ret);
	ASSERT_EQ(0, inst_dma_dev(&self->a, want, sizeof(want)));
	EXPECT_STREQ(want, dev);
	/* queued, buffer disabled: the fence stays pending */
	ret = iio_buffer_enqueue(self->bfd, self->dfd, 0, bytes);
	ASSERT_EQ(0, ret) {
		TH_LOG("ENQUEUE: %s", strerror(-ret));
	}
	self->sfd = dmabuf_export_sync_file(self->dfd, DMA_BUF_SYNC_WRITE);
	ASSERT_LE(0, self->sfd);
	close_fd(&self->fd);
	UNLOAD_BUSY("an attachment (queued) on a buffer fd");

	/* rmdir: the queued block completes with ENODEV */
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	self->a.devnum = -1;
	ASSERT_EQ(0, sync_file_wait(self->sfd, 5000, &st)) {
		TH_LOG("fence still pending 5 s after rmdir");
	}
	EXPECT_EQ(-ENODEV, st) {
		TH_LOG("fence: %s", status_str(st));
	}
	UNLOAD_BUSY("an attachment on the buffer fd of a removed device");

	/* closing the buffer fd drops the attachment */
	close_fd(&self->bfd);
	UNLOAD_OK(5000);
	ret = dmabuf_attached_devices(self->dfd, dev, sizeof(dev));
	EXPECT_EQ(0, ret) {
		TH_LOG("the heap DMABUF is still attached to %s", dev);
	}
	/* the heap DMABUF is the application's, as before */
	EXPECT_EQ(0, dmabuf_sync_start_rw(self->dfd));
	memset(self->map, 0xa5, BLOCK_BYTES);
	EXPECT_EQ(0xa5, self->map[BLOCK_BYTES - 1]);
	EXPECT_EQ(0, dmabuf_sync_end_rw(self->dfd));
	RELOAD_AND_STREAM();
}

TEST_HARNESS_MAIN
