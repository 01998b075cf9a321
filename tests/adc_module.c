// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: module unload/reload. Run this program last: it unloads
 * the module and loads it again from MODULE_PATH (every test leaves the
 * module loaded, even on failure).
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

FIXTURE(mod) {
	struct adc a;
	int fd;
	uint8_t buf[64 * 1024];
};

static void remove_leftovers(struct __test_metadata *_metadata)
{
	char names[32][64];
	int i, n;

	n = cfs_list(names, 32);
	for (i = 0; i < n && i < 32; i++) {
		TH_LOG("removing leftover instance %s", names[i]);
		adc_rmdir(names[i]);
	}
}

FIXTURE_SETUP(mod)
{
	self->fd = -1;
	self->a.devnum = -1;
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	remove_leftovers(_metadata);
}

FIXTURE_TEARDOWN(mod)
{
	if (self->fd >= 0)
		close(self->fd);
	adc_destroy(&self->a);
	module_ensure_loaded();
}

/* create an instance and stream a few hundred scans from it */
static int quick_stream(struct __test_metadata *_metadata, struct adc *a,
			uint8_t *buf, size_t len)
{
	struct ramp_check rc;
	int fd, ret;

	ramp_init(&rc, ADC_ALL_TS, false);
	fd = adc_open(a, O_RDONLY);
	if (fd < 0)
		return fd;
	ret = adc_start(a, ADC_ALL_TS, ADC_DEFAULT_FREQ, 4096, 64);
	if (!ret)
		ret = stream_read(fd, &rc, 300, 30, buf, len, NULL);
	if (ret)
		TH_LOG("quick_stream: %s %s", strerror(-ret),
		       rc.failed ? rc.err : "");
	adc_buffer_disable(a);
	close(fd);
	if (!ret && rc.first_n != 0)
		ret = -EPROTO;
	return ret;
}

static bool unload_busy_errno(int ret)
{
	/*
	 * delete_module() returns EWOULDBLOCK (== EAGAIN) when the module
	 * refcount is held; EBUSY is accepted as well.
	 */
	return ret == -EBUSY || ret == -EAGAIN;
}

/* rmmod fails while an instance exists; the instance keeps working */
TEST_F_TIMEOUT(mod, rmmod_busy_with_instance, 120)
{
	char name[64];
	long long v;
	int ret;

	ASSERT_EQ(0, adc_create_unique(&self->a, "mb"));
	snprintf(name, sizeof(name), "%s", self->a.name);

	ret = module_unload();
	DIAG("rmmod with an instance present: %s",
	     ret ? strerror(-ret) : "succeeded (!)");
	ASSERT_NE(0, ret) {
		/* the module is gone: make sure the teardown reloads it */
		self->a.devnum = -1;
	}
	EXPECT_TRUE(unload_busy_errno(ret));
	ASSERT_TRUE(module_loaded());

	/* still fully functional */
	EXPECT_EQ(self->a.devnum, iio_find_device(name));
	ASSERT_EQ(0, adc_read_ll(&self->a, "sampling_frequency", &v));
	EXPECT_EQ(ADC_DEFAULT_FREQ, v);
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));

	/* also busy while streaming */
	self->fd = adc_open(&self->a, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 1000, 0, 0));
	ret = module_unload();
	ASSERT_NE(0, ret) {
		self->a.devnum = -1;
	}
	EXPECT_TRUE(unload_busy_errno(ret));
	ASSERT_EQ(0, adc_buffer_disable(&self->a));
	close(self->fd);
	self->fd = -1;

	/* after rmdir it unloads, and configfs forgets the type */
	ASSERT_EQ(0, adc_rmdir(name));
	self->a.devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	ASSERT_EQ(0, module_unload());
	EXPECT_FALSE(module_loaded());
	EXPECT_FALSE(dir_exists(CFS_TYPE_DIR));
	EXPECT_NE(0, adc_mkdir(name));
	EXPECT_EQ(-ENOENT, module_unload());

	/* insmod brings it back */
	ASSERT_EQ(0, module_load());
	ASSERT_TRUE(module_loaded());
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	ASSERT_EQ(0, adc_create(&self->a, name));
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));
	ASSERT_EQ(0, adc_destroy(&self->a));
}

/* several unload/load cycles, with instances in between */
TEST_F_TIMEOUT(mod, reload_cycles, 240)
{
	struct adc b = { .devnum = -1 };
	int i, ret;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, adc_create_unique(&self->a, "mc"));
		ASSERT_EQ(0, adc_create_unique(&b, "mc"));
		ret = module_unload();
		if (!ret)
			self->a.devnum = b.devnum = -1;
		ASSERT_TRUE(unload_busy_errno(ret)) {
			TH_LOG("cycle %d: rmmod with 2 instances: %s", i,
			       ret ? strerror(-ret) : "succeeded");
			adc_destroy(&b);
		}
		ASSERT_EQ(0, adc_destroy(&self->a));
		/* one instance left: still busy */
		ret = module_unload();
		if (!ret)
			b.devnum = -1;
		ASSERT_TRUE(unload_busy_errno(ret)) {
			adc_destroy(&b);
		}
		ASSERT_EQ(0, adc_destroy(&b));

		ASSERT_EQ(0, module_unload()) {
			TH_LOG("cycle %d", i);
		}
		ASSERT_FALSE(module_loaded());
		ASSERT_EQ(0, module_load()) {
			TH_LOG("cycle %d", i);
		}
		ASSERT_TRUE(dir_exists(CFS_TYPE_DIR));
	}
	/* fresh instance after the last reload: defaults, streaming */
	ASSERT_EQ(0, adc_create_unique(&self->a, "mc"));
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));
	DIAG("reload_cycles: 3 unload/load cycles OK");
}

/*
 * rmdir while the character device is still open, then rmmod. Whether
 * the open file pins the module is up to the driver; either way nothing
 * may crash, and after close() the module must unload and reload.
 */
TEST_F_TIMEOUT(mod, rmmod_after_rmdir_with_open_fd, 120)
{
	char name[64];
	ssize_t n;
	int ret;

	ASSERT_EQ(0, adc_create_unique(&self->a, "mf"));
	snprintf(name, sizeof(name), "%s", self->a.name);
	self->fd = adc_open(&self->a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, adc_start(&self->a, ADC_ALL_TS, 1000, 0, 0));
	sleep_ms(100);
	ASSERT_EQ(0, adc_rmdir(name));
	self->a.devnum = -1;

	ret = module_unload();
	DIAG("rmmod with an open fd on a removed device: %s",
	     ret ? strerror(-ret) : "succeeded");
	if (ret)
		EXPECT_TRUE(unload_busy_errno(ret));
	n = read(self->fd, self->buf, sizeof(self->buf));
	EXPECT_GE(0, n);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;

	if (ret)
		ASSERT_EQ(0, module_unload());
	EXPECT_FALSE(module_loaded());
	ASSERT_EQ(0, module_load());
	ASSERT_EQ(0, adc_create(&self->a, name));
	EXPECT_EQ(0, quick_stream(_metadata, &self->a, self->buf,
				  sizeof(self->buf)));
}

TEST_HARNESS_MAIN
