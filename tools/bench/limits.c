// SPDX-License-Identifier: GPL-2.0
/*
 * iio_bench: the machine's limits at the benchmark's block sizes.
 *
 *   user_memset  memset() of a buffer of the block size
 *   user_memcpy  memcpy() between two such buffers
 *   kernel_fill  read() of the block size from /dev/zero: the kernel's
 *                clear_user(), a fill at the kernel's store bandwidth
 *   kernel_copy  read() of a tmpfs file of the block size, in the page
 *                cache: the kernel's copy_to_user(), what read() on
 *                /dev/iio:deviceN costs per byte
 *
 * Each repeats its operation for about the given time (and at least 4
 * times) and gives bytes per second.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

const char *const limit_names[NR_LIMITS] = {
	[LIMIT_USER_MEMSET] = "user_memset",
	[LIMIT_USER_MEMCPY] = "user_memcpy",
	[LIMIT_KERNEL_FILL] = "kernel_fill",
	[LIMIT_KERNEL_COPY] = "kernel_copy",
};

#define TMPFILE	"/tmp/iio_bench.data"

/* Keeps the compiler from dropping stores nobody reads. */
static inline void clobber(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

double limit_measure(enum limit_id which, size_t size, double secs)
{
	uint8_t *a = aligned_alloc(4096, size), *b = aligned_alloc(4096, size);
	unsigned long long n = 0;
	double t0, t = 0;
	int fd = -1;
	ssize_t got;

	if (!a || !b)
		goto fail;
	memset(a, 1, size);
	memset(b, 2, size);
	if (which == LIMIT_KERNEL_FILL) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	} else if (which == LIMIT_KERNEL_COPY) {
		fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0 && write(fd, a, size) != (ssize_t)size) {
			close(fd);
			fd = -1;
		}
		unlink(TMPFILE);
	}
	if ((which == LIMIT_KERNEL_FILL || which == LIMIT_KERNEL_COPY) && fd < 0)
		goto fail;

	t0 = now();
	do {
		switch (which) {
		case LIMIT_USER_MEMSET:
			memset(a, (int)n, size);
			clobber(a);
			break;
		case LIMIT_USER_MEMCPY:
			memcpy(b, a, size);
			clobber(b);
			break;
		default:
			got = pread(fd, a, size, 0);
			if (got != (ssize_t)size)
				goto fail;
			break;
		}
		n++;
		if (n % 4 == 0)
			t = now() - t0;
	} while (n < 4 || t < secs);
	t = now() - t0;
	if (fd >= 0)
		close(fd);
	free(a);
	free(b);
	return n * (double)size / t;
fail:
	if (fd >= 0)
		close(fd);
	free(a);
	free(b);
	return 0;
}
