/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The iio_dmabuf tests' library, tests/lib/: the one header test programs
 * include (after kselftest_harness.h). It holds what all parts share and
 * includes the declarations of each part; what a function does is written
 * at its definition:
 *
 *   sysfs.h, sysfs.c    sysfs attributes, device discovery, the module,
 *                       the target, running programs
 *   inst.h, inst.c      test instances (configfs dmabuf_adc, dmabuf_dac)
 *   ramp.h, ramp.c      scan layouts, the ramp (check, fill), read() and
 *                       write() with timeouts
 *   dmabuf.h, dmabuf.c  DMABUFs: ALLOC/ENQUEUE, SYNC, fences and
 *                       sync_files, the mainline ioctls, udmabuf, heaps
 *   round.h, round.c    whole rounds of blocks (seed and mainline ADC
 *                       ramps, the seed DAC ramp) on any device
 *
 * Functions return 0 (or a non-negative value) on success and -errno on
 * failure, so that tests can write ASSERT_EQ(0, f(...)) and check exact
 * error codes with ASSERT_EQ(-EINVAL, f(...)). The library asserts
 * nothing: kselftest_harness.h's ASSERT_* and EXPECT_* work only in a
 * test; the few macros that use them (inst.h) are for test bodies.
 */
#ifndef IIO_TEST_UTIL_H
#define IIO_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/iio_dmabuf.h>
#include <linux/sync_file.h>
#include <linux/udmabuf.h>

#define IIO_DEV_DIR	"/sys/bus/iio/devices"
#define CFS_ROOT	"/sys/kernel/config"
#define CFS_IIO_DEVS	CFS_ROOT "/iio/devices"
#define CFS_TYPE_DIR	CFS_IIO_DEVS "/dmabuf_adc"
#define CFS_DAC_TYPE_DIR CFS_IIO_DEVS "/dmabuf_dac"
#define MODULE_NAME	"iio_dmabuf"
#define MODULE_PATH	"/modules/iio_dmabuf.ko"
#define MODULE_SYSFS	"/sys/module/" MODULE_NAME

/* The devices (Documentation/iio/dmabuf_adc.rst, dmabuf_dac.rst) */
#define ADC_NUM_CH		4
#define ADC_TS_INDEX		4
#define ADC_DEFAULT_FREQ	10000
#define ADC_MAX_FREQ		500000000
#define ADC_DEFAULT_LENGTH	4096
#define ADC_SCALE_STR		"0.305175781"
#define DAC_NUM_CH		4
#define DAC_TS_INDEX		4
#define DAC_DEFAULT_FREQ	10000
#define DAC_DEFAULT_LENGTH	4096
#define DAC_SCALE_STR		"0.305175781"

/* Channel masks: bit c = voltage channel c, ADC_TS = timestamp */
#define ADC_CH(c)	(1u << (c))
#define ADC_CH_ALL	0x0fu
#define ADC_TS		0x10u
#define ADC_ALL_TS	(ADC_CH_ALL | ADC_TS)

/* Print a "# ..." diagnostic line on stdout (TAP comment), flushed. */
#define DIAG(fmt, ...) do {						\
	printf("# " fmt "\n", ##__VA_ARGS__);				\
	fflush(stdout);							\
} while (0)

/* Helper-internal failure log (stderr, TAP comment syntax). */
#define UTIL_LOG(fmt, ...) fprintf(stderr, "# util: " fmt "\n", ##__VA_ARGS__)

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#include "sysfs.h"
#include "inst.h"
#include "ramp.h"
#include "dmabuf.h"
#include "round.h"

#endif /* IIO_TEST_UTIL_H */
