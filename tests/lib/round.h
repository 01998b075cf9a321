/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/round.c: whole rounds of blocks through a device,
 * the sequence several programs repeat on different devices. Included by
 * iio_test_util.h.
 */
#ifndef IIO_TEST_ROUND_H
#define IIO_TEST_ROUND_H

#define ROUND_MAX_BLOCKS	DMABUF_MAX_QUEUED

/* How a round's blocks are made and queued */
enum round_api {
	ROUND_SEED,		/* ALLOC/ENQUEUE on the DMABUF char device */
	ROUND_UDMABUF,		/* mainline ATTACH/ENQUEUE of udmabufs */
	ROUND_HEAP,		/* mainline, system heap buffers */
};

const char *round_api_name(enum round_api api);

/*
 * A round: @nblk blocks of @blk_scans scans of @mask's layout, at @freq,
 * queued before the enable. @mark (if set) is called with the blocks
 * queued, before the enable (@after false), and after the disable (@after
 * true), e.g. to read a DMA channel's counters; 0 or -errno.
 *
 * ADC (adc_round_run): each block, as it completes, is fed to @rc (a
 * ramp check from scan 0) and queued again, @total checked in all; the
 * device is disabled with @nblk blocks still queued. @overruns is what
 * the device counted while blocks were checked. A mainline round waits
 * for each block's fences after the disable and DETACHes it.
 *
 * DAC (dac_round_run, seed only): the blocks hold one continuous ramp,
 * each refilled with its continuation (SYNC(START) waits for the DAC to
 * have played it) until @total were queued; the round waits until every scan was consumed and
 * every block's fence signalled; @dac holds the counters at the end.
 *
 * Both return 0, or -errno (-1 for a wrong ramp) with @why set; the
 * device is disabled and everything freed either way.
 */
struct round {
	const struct inst *in;
	enum round_api api;
	unsigned int mask;
	int freq;
	int nblk;
	size_t blk_scans;
	int total;
	int (*mark)(void *arg, bool after);
	void *arg;
	/* results */
	struct ramp_check rc;		/* ADC */
	long long overruns;		/* ADC */
	struct dac_counters dac;	/* DAC */
	char why[384];
};

int adc_round_run(struct round *r);
int dac_round_run(struct round *r);

/* For test bodies: the round runs to its end, else the test fails */
#define ROUND_OK(run, r) do {						\
	int _r = run(r);						\
	ASSERT_EQ(0, _r) {						\
		TH_LOG("%s round: %s", round_api_name((r)->api),	\
		       (r)->why);					\
	}								\
} while (0)

#endif /* IIO_TEST_ROUND_H */
