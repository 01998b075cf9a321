/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/inst.c: test instances (configfs dmabuf_adc and
 * dmabuf_dac). Included by iio_test_util.h.
 */
#ifndef IIO_TEST_INST_H
#define IIO_TEST_INST_H

enum inst_type { INST_ADC, INST_DAC };

/* An instance: what its helpers need to know of it */
struct inst {
	enum inst_type type;
	char name[64];
	char cfs[PATH_MAX];	/* configfs directory */
	char dir[PATH_MAX];	/* /sys/bus/iio/devices/iio:deviceN */
	char chrdev[64];	/* /dev/iio:deviceN */
	int devnum;		/* -1 when not created */
};

const char *inst_type_dir(enum inst_type type);
int inst_mkdir(enum inst_type type, const char *name);
int inst_rmdir(enum inst_type type, const char *name);
int inst_attach(struct inst *in, enum inst_type type, const char *name);
int inst_create(struct inst *in, enum inst_type type, const char *name);
int inst_create_unique(struct inst *in, enum inst_type type,
		       const char *prefix);
int inst_destroy(struct inst *in);
int cfs_list(enum inst_type type, char names[][64], int max);
void leftover_start(void);
int leftover_check(void);

/*
 * Put once in a test program: instances it leaves behind are its own
 * failure. A test killed by its timeout never runs its teardown: at exit,
 * the main process removes every instance that was not there when it
 * started, names it and exits with a failure status.
 */
#define LEFTOVER_INSTANCES_FAIL()					\
static void __attribute__((constructor)) leftover_ctor(void)		\
{									\
	leftover_start();						\
}									\
static void __attribute__((destructor)) leftover_dtor(void)		\
{									\
	if (leftover_check()) {						\
		fflush(stdout);						\
		_exit(KSFT_FAIL);					\
	}								\
}

int inst_path(const struct inst *in, const char *attr, char *path,
	      size_t size);
bool inst_has(const struct inst *in, const char *attr);
int inst_write(const struct inst *in, const char *attr, const char *val);
int inst_read(const struct inst *in, const char *attr, char *buf,
	      size_t size);
int inst_write_ll(const struct inst *in, const char *attr, long long v);
int inst_read_ll(const struct inst *in, const char *attr, long long *v);
int inst_set(const struct inst *in, const char *attr, const char *val);
int inst_set_ll(const struct inst *in, const char *attr, long long v);
int inst_buffer_disable(const struct inst *in);
int inst_buffer_enable(const struct inst *in);
int inst_set_channels(const struct inst *in, unsigned int mask);
int inst_configure(const struct inst *in, unsigned int mask, long long freq,
		   long long length, long long watermark);
int inst_start(const struct inst *in, unsigned int mask, long long freq,
	       long long length, long long watermark);
int inst_open(const struct inst *in, int flags);
void inst_dmabuf_name(const struct inst *in, char *buf, size_t size);
void inst_dmabuf_path(const struct inst *in, char *buf, size_t size);
int inst_dmabuf_open(const struct inst *in, int flags);
int inst_dma_dev(const struct inst *in, char *name, size_t size);

/* The DAC's counters (reset at each buffer enable, kept after disable). */
struct dac_counters {
	long long consumed;	/* scans_consumed */
	long long mismatches;
	long long underruns;
};

int dac_read_counters(const struct inst *d, struct dac_counters *c);
int dac_wait_consumed(const struct inst *d, long long want, int timeout_ms,
		      struct dac_counters *c);

/*
 * DAC counter checks for fixtures whose DAC instance is `self->d`.
 * COUNTERS_OK reads them into @c; CONSUMED_EXACTLY waits until
 * scans_consumed reaches @want, then a little longer: it must then be
 * exactly @want (nothing else was queued).
 */
#define COUNTERS_OK(c) do {						\
	int _r = dac_read_counters(&self->d, (c));			\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("reading the DAC counters: %s", strerror(-_r));	\
	}								\
} while (0)

#define CONSUMED_EXACTLY(want, timeout_ms, c) do {			\
	int _r = dac_wait_consumed(&self->d, (want), (timeout_ms), (c)); \
	ASSERT_EQ(0, _r) {						\
		TH_LOG("scans_consumed %lld after %d ms, expected %lld", \
		       (c)->consumed, (timeout_ms), (long long)(want));	\
	}								\
	sleep_ms(200);							\
	COUNTERS_OK(c);							\
	EXPECT_EQ((long long)(want), (c)->consumed);			\
} while (0)

#endif /* IIO_TEST_INST_H */
