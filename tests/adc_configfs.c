// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: creating and destroying instances through configfs.
 */
#include <pthread.h>
#include "kselftest_harness.h"
#include "iio_test_util.h"

/* Instances this program leaves behind fail it (lib/inst.h) */
LEFTOVER_INSTANCES_FAIL()

#define MAX_INST 4

FIXTURE(cfs) {
	struct inst a[MAX_INST];
};

FIXTURE_SETUP(cfs)
{
	int i;

	for (i = 0; i < MAX_INST; i++)
		self->a[i].devnum = -1;
	ASSERT_TRUE(dir_exists(CFS_TYPE_DIR)) {
		TH_LOG("%s missing: is configfs mounted and %s loaded?",
		       CFS_TYPE_DIR, MODULE_NAME);
	}
}

FIXTURE_TEARDOWN(cfs)
{
	int i;

	for (i = 0; i < MAX_INST; i++)
		inst_destroy(&self->a[i]);
}

/* mkdir creates an IIO device with that name; rmdir removes it. */
TEST_F_TIMEOUT(cfs, create_destroy, 60)
{
	struct inst *a = &self->a[0];
	char buf[256], path[PATH_MAX + 64];
	char name[64];
	int fd;

	ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "cd"));
	snprintf(name, sizeof(name), "%s", a->name);
	ASSERT_TRUE(dir_exists(a->cfs));
	ASSERT_TRUE(dir_exists(a->dir));

	ASSERT_LE(0, inst_read(a, "name", buf, sizeof(buf)));
	EXPECT_STREQ(name, buf);

	/* the character device exists and can be opened */
	fd = inst_open(a, O_RDONLY);
	ASSERT_LE(0, fd) {
		TH_LOG("open %s: %s", a->chrdev, strerror(-fd));
	}
	close(fd);

	/* the device is listed in scan_elements/ and buffer0/ */
	snprintf(path, sizeof(path), "%s/scan_elements", a->dir);
	EXPECT_TRUE(dir_exists(path));
	snprintf(path, sizeof(path), "%s/buffer0", a->dir);
	EXPECT_TRUE(dir_exists(path));

	snprintf(path, sizeof(path), "%s", a->dir);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	a->devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	EXPECT_FALSE(dir_exists(path)) {
		TH_LOG("%s still present after rmdir", path);
	}
	snprintf(path, sizeof(path), CFS_TYPE_DIR "/%s", name);
	EXPECT_FALSE(dir_exists(path));
}

/* Several instances coexist, each with its own device and name. */
TEST_F_TIMEOUT(cfs, several_instances, 90)
{
	char names[16][64], buf[256];
	long long v;
	int i, j, n, found;

	for (i = 0; i < MAX_INST; i++)
		ASSERT_EQ(0, inst_create_unique(&self->a[i], INST_ADC, "multi"));

	for (i = 0; i < MAX_INST; i++) {
		for (j = 0; j < i; j++) {
			EXPECT_NE(self->a[i].devnum, self->a[j].devnum);
			EXPECT_STRNE(self->a[i].name, self->a[j].name);
		}
		ASSERT_LE(0, inst_read(&self->a[i], "name", buf, sizeof(buf)));
		EXPECT_STREQ(self->a[i].name, buf);
		EXPECT_EQ(self->a[i].devnum, iio_find_device(self->a[i].name));
	}

	/* configfs lists every instance */
	n = cfs_list(INST_ADC, names, 16);
	ASSERT_LE(MAX_INST, n);
	for (i = 0; i < MAX_INST; i++) {
		found = 0;
		for (j = 0; j < n && j < 16; j++)
			found += !strcmp(names[j], self->a[i].name);
		EXPECT_EQ(1, found) {
			TH_LOG("%s not listed in %s", self->a[i].name,
			       CFS_TYPE_DIR);
		}
	}

	/* attributes are per instance */
	for (i = 0; i < MAX_INST; i++)
		ASSERT_EQ(0, inst_write_ll(&self->a[i], "sampling_frequency",
					   100 + i));
	ASSERT_EQ(0, inst_write(&self->a[1], "waveform", "sine"));
	for (i = 0; i < MAX_INST; i++) {
		ASSERT_EQ(0, inst_read_ll(&self->a[i], "sampling_frequency", &v));
		EXPECT_EQ(100 + i, v);
		ASSERT_LE(0, inst_read(&self->a[i], "waveform", buf, sizeof(buf)));
		EXPECT_STREQ(i == 1 ? "sine" : "ramp", buf);
	}

	/* removing one in the middle leaves the others intact */
	{
		char gone[64];

		snprintf(gone, sizeof(gone), "%s", self->a[1].name);
		ASSERT_EQ(0, inst_rmdir(INST_ADC, gone));
		self->a[1].devnum = -1;
		EXPECT_EQ(-ENOENT, iio_wait_device(gone, false, 2000));
	}
	for (i = 0; i < MAX_INST; i++) {
		if (i == 1)
			continue;
		EXPECT_EQ(self->a[i].devnum, iio_find_device(self->a[i].name));
		ASSERT_EQ(0, inst_read_ll(&self->a[i], "sampling_frequency", &v));
		EXPECT_EQ(100 + i, v);
	}

	/* and a new one can be added alongside */
	ASSERT_EQ(0, inst_create_unique(&self->a[1], INST_ADC, "multi"));
	for (i = 0; i < MAX_INST; i++)
		EXPECT_EQ(self->a[i].devnum, iio_find_device(self->a[i].name));
}

/* mkdir of an existing name fails with EEXIST, original unaffected */
TEST_F_TIMEOUT(cfs, duplicate_name_eexist, 60)
{
	struct inst *a = &self->a[0];
	long long v;

	ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "dup"));
	EXPECT_EQ(-EEXIST, inst_mkdir(INST_ADC, a->name));
	EXPECT_EQ(-EEXIST, inst_mkdir(INST_ADC, a->name));
	EXPECT_EQ(a->devnum, iio_find_device(a->name));
	ASSERT_EQ(0, inst_read_ll(a, "sampling_frequency", &v));
	EXPECT_EQ(ADC_DEFAULT_FREQ, v);
}

/* A name can be reused after removal; each recreation starts fresh. */
TEST_F_TIMEOUT(cfs, recreate_after_removal, 90)
{
	struct inst *a = &self->a[0];
	char name[64], buf[64];
	long long v;
	int i;

	snprintf(name, sizeof(name), "re%d", (int)getpid());
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, inst_create(a, INST_ADC, name)) {
			TH_LOG("iteration %d", i);
		}
		/* defaults again, even though we changed them last time */
		ASSERT_EQ(0, inst_read_ll(a, "sampling_frequency", &v));
		EXPECT_EQ(ADC_DEFAULT_FREQ, v);
		ASSERT_LE(0, inst_read(a, "waveform", buf, sizeof(buf)));
		EXPECT_STREQ("ramp", buf);
		ASSERT_EQ(0, inst_write(a, "sampling_frequency", "1234"));
		ASSERT_EQ(0, inst_write(a, "waveform", "sine"));

		ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
		a->devnum = -1;
		ASSERT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	}
}

/* rmdir of an instance with its buffer running (no reader) */
TEST_F_TIMEOUT(cfs, rmdir_while_enabled, 60)
{
	struct inst *a = &self->a[0];
	char name[64];

	ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "rme"));
	snprintf(name, sizeof(name), "%s", a->name);
	ASSERT_EQ(0, inst_start(a, ADC_ALL_TS, 1000, 0, 0));
	sleep_ms(200);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name));
	a->devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	/* and it can be created again */
	ASSERT_EQ(0, inst_create(a, INST_ADC, name));
}

/*
 * rmdir while the character device is held open (buffer enabled): the
 * stale fd's read() fails with ENODEV (dmabuf_adc.rst), also with data
 * that was ready before the removal.
 */
TEST_F_TIMEOUT(cfs, rmdir_with_open_fd, 60)
{
	struct inst *a = &self->a[0];
	char name[64], buf[256];
	long long avail = 0;
	ssize_t n;
	int fd, e;

	ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "rmo"));
	snprintf(name, sizeof(name), "%s", a->name);
	fd = inst_open(a, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, inst_start(a, ADC_ALL_TS, 1000, 0, 0));
	/* wait until scans are ready, so ENODEV cannot be "no data yet" */
	ASSERT_EQ(1, wait_readable(fd, 10000)) {
		close(fd);
	}
	ASSERT_EQ(0, inst_read_ll(a, "buffer0/data_available", &avail));
	EXPECT_LT(0, avail);
	ASSERT_EQ(0, inst_rmdir(INST_ADC, name)) {
		close(fd);
	}
	a->devnum = -1;
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));

	n = read(fd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n) {
		TH_LOG("read after rmdir returned %zd", n);
	}
	EXPECT_EQ(ENODEV, e) {
		TH_LOG("read after rmdir: %s", strerror(e));
	}
	/* and it stays so */
	n = read(fd, buf, sizeof(buf));
	e = errno;
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ENODEV, e);
	EXPECT_EQ(0, close(fd));
}

/* A reader blocked in read() when the device is removed */
struct blocked_reader {
	int fd;
	ssize_t n;
	int err;
	double t_done;
	int done;
};

static void *blocked_reader_fn(void *arg)
{
	struct blocked_reader *r = arg;
	uint8_t buf[100 * 16];

	r->n = read(r->fd, buf, sizeof(buf));
	r->err = r->n < 0 ? errno : 0;
	r->t_done = now_s();
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * rmdir while a reader is blocked in read() (1 Hz, watermark 100: it
 * would wait 100 s): the reader wakes and gets ENODEV (dmabuf_adc.rst).
 */
TEST_F_TIMEOUT(cfs, rmdir_wakes_blocked_reader, 90)
{
	struct blocked_reader r = { .fd = -1 };
	struct inst *a = &self->a[0];
	char name[64];
	pthread_t th;
	double t;
	int ret;

	ASSERT_EQ(0, inst_create_unique(a, INST_ADC, "rmb"));
	snprintf(name, sizeof(name), "%s", a->name);
	r.fd = inst_open(a, O_RDONLY);
	ASSERT_LE(0, r.fd);
	ASSERT_EQ(0, inst_start(a, ADC_ALL_TS, 1, 0, 100)) {
		close(r.fd);
	}
	ASSERT_EQ(0, pthread_create(&th, NULL, blocked_reader_fn, &r)) {
		close(r.fd);
	}
	sleep_ms(500);
	ASSERT_FALSE(__atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		TH_LOG("read() returned %zd (%s) before the rmdir", r.n,
		       strerror(r.err));
	}

	t = now_s();
	ret = inst_rmdir(INST_ADC, name);
	ASSERT_EQ(0, ret) {
		TH_LOG("rmdir with a blocked reader: %s", strerror(-ret));
	}
	a->devnum = -1;
	ASSERT_EQ(0, join_within(th, 20)) {
		TH_LOG("reader still blocked 20 s after rmdir");
	}
	DIAG("rmdir_wakes_blocked_reader: read() returned %zd (%s) %.3f s after the rmdir started",
	     r.n, r.n < 0 ? strerror(r.err) : "data", r.t_done - t);
	EXPECT_EQ(-1, r.n);
	EXPECT_EQ(ENODEV, r.err);
	EXPECT_EQ(-ENOENT, iio_wait_device(name, false, 2000));
	EXPECT_EQ(0, close(r.fd));
}

TEST_HARNESS_MAIN
