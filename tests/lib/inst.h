/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/inst.c: test instances (configfs dmabuf_adc and
 * dmabuf_dac). Included by iio_test_util.h.
 */
#ifndef IIO_TEST_INST_H
#define IIO_TEST_INST_H

struct adc {
	char name[64];
	char cfs[PATH_MAX];	/* configfs directory */
	char dir[PATH_MAX];	/* /sys/bus/iio/devices/iio:deviceN */
	char chrdev[64];	/* /dev/iio:deviceN */
	int devnum;		/* -1 when not created */
};

int adc_mkdir(const char *name);
int adc_rmdir(const char *name);
int adc_attach(struct adc *a, const char *name);
int adc_create(struct adc *a, const char *name);
int adc_create_unique(struct adc *a, const char *prefix);
int adc_destroy(struct adc *a);
int dac_mkdir(const char *name);
int dac_rmdir(const char *name);
int dac_create(struct adc *d, const char *name);
int dac_create_unique(struct adc *d, const char *prefix);
int dac_destroy(struct adc *d);
int cfs_list(char names[][64], int max);
int adc_path(const struct adc *a, const char *attr, char *path, size_t size);
bool adc_has(const struct adc *a, const char *attr);
int adc_write(const struct adc *a, const char *attr, const char *val);
int adc_read(const struct adc *a, const char *attr, char *buf, size_t size);
int adc_write_ll(const struct adc *a, const char *attr, long long v);
int adc_read_ll(const struct adc *a, const char *attr, long long *v);
int adc_set(const struct adc *a, const char *attr, const char *val);
int adc_set_ll(const struct adc *a, const char *attr, long long v);
int adc_buffer_disable(const struct adc *a);
int adc_buffer_enable(const struct adc *a);
int adc_set_channels(const struct adc *a, unsigned int mask);
int dac_set_channels(const struct adc *d, unsigned int mask);
int adc_configure(const struct adc *a, unsigned int mask, long long freq,
		  long long length, long long watermark);
int dac_configure(const struct adc *d, unsigned int mask, long long freq,
		  long long length);
int adc_start(const struct adc *a, unsigned int mask, long long freq,
	      long long length, long long watermark);
int adc_open(const struct adc *a, int flags);
void adc_dmabuf_name(const struct adc *a, char *buf, size_t size);
void adc_dmabuf_path(const struct adc *a, char *buf, size_t size);
int adc_dmabuf_open(const struct adc *a, int flags);

/* The DAC's counters (reset at each buffer enable, kept after disable). */
struct dac_counters {
	long long consumed;	/* scans_consumed */
	long long mismatches;
	long long underruns;
};

int dac_read_counters(const struct adc *d, struct dac_counters *c);
int dac_wait_consumed(const struct adc *d, long long want, int timeout_ms,
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
