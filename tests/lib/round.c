// SPDX-License-Identifier: GPL-2.0
/*
 * Whole rounds of blocks through a device (round.h): the seed and mainline
 * ADC ramps and the seed DAC ramp, for the module's own devices and for
 * another driver's that uses the exported buffer.
 */
#include "iio_test_util.h"

/* The blocks of a round and the fds it holds */
struct round_blocks {
	struct scan_layout l;	/* of the round's mask */
	size_t bytes;		/* of each block: blk_scans scans */
	struct foreign_block b[ROUND_MAX_BLOCKS];
	int cfd;	/* seed: the DMABUF char device */
	int devfd;	/* mainline: the IIO char device, */
	int bfd;	/* and its buffer's fd */
	int attached;	/* mainline: b[0..attached) are attached */
};

const char *round_api_name(enum round_api api)
{
	switch (api) {
	case ROUND_SEED:
		return "seed";
	case ROUND_UDMABUF:
		return "udmabuf";
	case ROUND_HEAP:
		return "heap";
	}
	return "?";
}

static int round_fail(struct round *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return err ? err : -1;
}

/*
 * Configures the device, makes r->nblk blocks and opens what queues them:
 * 0 or -errno with r->why set. @rb holds what to free either way.
 */
static int round_setup(struct round *r, struct round_blocks *rb)
{
	int i, ret;

	layout_init(&rb->l, r->mask);
	rb->bytes = r->blk_scans * rb->l.size;
	rb->cfd = -1;
	rb->devfd = -1;
	rb->bfd = -1;
	rb->attached = 0;
	for (i = 0; i < ROUND_MAX_BLOCKS; i++)
		foreign_block_init(&rb->b[i]);
	if (r->nblk < 1 || r->nblk > ROUND_MAX_BLOCKS || r->total < r->nblk)
		return round_fail(r, -EINVAL, "%d blocks, %d in all",
				  r->nblk, r->total);
	ret = inst_configure(r->in, r->mask, r->freq, 0, 0);
	if (ret)
		return round_fail(r, ret, "configuring %s: %s", r->in->name,
				  strerror(-ret));
	if (r->api == ROUND_SEED) {
		rb->cfd = inst_dmabuf_open(r->in, O_RDWR);
		if (rb->cfd < 0)
			return round_fail(r, rb->cfd, "opening %s's DMABUF device: %s",
					  r->in->name, strerror(-rb->cfd));
	} else {
		rb->devfd = inst_open(r->in, O_RDWR);
		if (rb->devfd < 0)
			return round_fail(r, rb->devfd, "opening %s: %s",
					  r->in->name, strerror(-rb->devfd));
		rb->bfd = iio_buffer_get_fd(rb->devfd, 0);
		if (rb->bfd < 0)
			return round_fail(r, rb->bfd, "buffer fd: %s",
					  strerror(-rb->bfd));
	}
	for (i = 0; i < r->nblk; i++) {
		if (r->api == ROUND_SEED)
			ret = dmabuf_block_alloc(&rb->b[i].b, rb->cfd,
						 rb->bytes, true);
		else
			ret = foreign_block_alloc(&rb->b[i],
						  r->api == ROUND_HEAP, rb->bytes);
		if (ret)
			return round_fail(r, ret, "block %d (%zu bytes): %s",
					  i, rb->bytes, strerror(-ret));
		if (r->api == ROUND_SEED)
			continue;
		ret = iio_buffer_attach(rb->bfd, rb->b[i].b.fd);
		if (ret)
			return round_fail(r, ret, "ATTACH block %d: %s", i,
					  strerror(-ret));
		rb->attached++;
	}
	return 0;
}

static int round_enqueue(struct round *r, struct round_blocks *rb, int i)
{
	int fd = rb->b[i % r->nblk].b.fd, ret;

	if (r->api == ROUND_SEED)
		ret = dmabuf_enqueue(rb->cfd, fd, rb->bytes);
	else
		ret = iio_buffer_enqueue(rb->bfd, fd, 0, rb->bytes);
	if (ret)
		return round_fail(r, ret, "ENQUEUE block #%d: %s", i,
				  strerror(-ret));
	return 0;
}

static int round_mark(struct round *r, bool after)
{
	int ret;

	if (!r->mark)
		return 0;
	ret = r->mark(r->arg, after);
	if (ret)
		return round_fail(r, ret, "mark %s the round: %s",
				  after ? "after" : "before", strerror(-ret));
	return 0;
}

static int round_enable(struct round *r)
{
	int ret = inst_buffer_enable(r->in);

	if (ret)
		return round_fail(r, ret, "enabling %s: %s", r->in->name,
				  strerror(-ret));
	return 0;
}

/*
 * Disables the device, waits for each block's fences and DETACHes the
 * attached ones, frees everything. @ret, or the first failure of these
 * if @ret is 0.
 */
static int round_teardown(struct round *r, struct round_blocks *rb, int ret)
{
	int i, err;

	err = inst_buffer_disable(r->in);
	if (err && !ret)
		ret = round_fail(r, err, "disabling %s: %s", r->in->name,
				 strerror(-err));
	for (i = 0; i < rb->attached; i++) {
		struct block_wait w = {
			.wait = BLOCK_WAIT_POLLOUT, .timeout_ms = 5000,
		};

		err = block_wait_check(&w, &rb->b[i].b);
		if (err && !ret)
			ret = round_fail(r, err, "block %d after the disable: %s",
					 i, w.why);
		err = iio_buffer_detach(rb->bfd, rb->b[i].b.fd);
		if (err && !ret)
			ret = round_fail(r, err, "DETACH block %d: %s", i,
					 strerror(-err));
	}
	if (rb->bfd >= 0)
		close(rb->bfd);
	if (rb->devfd >= 0)
		close(rb->devfd);
	if (rb->cfd >= 0)
		close(rb->cfd);
	for (i = 0; i < ROUND_MAX_BLOCKS; i++)
		foreign_block_free(&rb->b[i]);
	return ret;
}

int adc_round_run(struct round *r)
{
	struct round_blocks rb;
	long long ov0, ov1;
	int i, ret;

	r->why[0] = '\0';
	r->overruns = 0;
	ramp_init(&r->rc, r->mask, false);
	ret = round_setup(r, &rb);
	for (i = 0; !ret && i < r->nblk; i++)
		ret = round_enqueue(r, &rb, i);
	if (!ret)
		ret = round_mark(r, false);
	if (!ret) {
		ret = inst_read_ll(r->in, "overruns", &ov0);
		if (ret)
			round_fail(r, ret, "overruns: %s", strerror(-ret));
	}
	if (!ret)
		ret = round_enable(r);
	for (i = 0; !ret && i < r->total; i++) {
		struct block_wait w = {
			.wait = BLOCK_WAIT_SYNC, .rc = &r->rc, .bytes = rb.bytes,
		};

		ret = block_wait_check(&w, &rb.b[i % r->nblk].b);
		if (ret)
			round_fail(r, ret, "block #%d: %s", i, w.why);
		else
			ret = round_enqueue(r, &rb, i);
	}
	if (!ret) {
		ret = inst_read_ll(r->in, "overruns", &ov1);
		if (ret)
			round_fail(r, ret, "overruns: %s", strerror(-ret));
		else
			r->overruns = ov1 - ov0;
	}
	ret = round_teardown(r, &rb, ret);
	return ret ? ret : round_mark(r, true);
}

/* Ramp scans @first_n.. into the round's mapped block @i, inside SYNC (RW) */
static int round_fill(struct round *r, struct round_blocks *rb, int i,
		      uint64_t first_n)
{
	const struct dmabuf_block *b = &rb->b[i % r->nblk].b;
	int ret;

	ret = dmabuf_sync_start_rw(b->fd);
	if (ret)
		return ret;
	ramp_fill(&rb->l, b->map, first_n, r->blk_scans);
	return dmabuf_sync_end_rw(b->fd);
}

int dac_round_run(struct round *r)
{
	const long long want = (long long)r->total * r->blk_scans;
	struct round_blocks rb;
	int i, ret;

	r->why[0] = '\0';
	memset(&r->dac, 0, sizeof(r->dac));
	if (r->api != ROUND_SEED)
		return round_fail(r, -EOPNOTSUPP, "a DAC round is seed only");
	ret = round_setup(r, &rb);
	for (i = 0; !ret && i < r->nblk; i++) {
		ret = round_fill(r, &rb, i, (uint64_t)i * r->blk_scans);
		if (ret)
			round_fail(r, ret, "filling block %d: %s", i,
				   strerror(-ret));
		else
			ret = round_enqueue(r, &rb, i);
	}
	if (!ret)
		ret = round_mark(r, false);
	if (!ret)
		ret = round_enable(r);
	/* SYNC(START, RW) waits for the DAC's READ fence: block played */
	for (i = r->nblk; !ret && i < r->total; i++) {
		ret = round_fill(r, &rb, i, (uint64_t)i * r->blk_scans);
		if (ret)
			round_fail(r, ret, "refilling block #%d: %s", i,
				   strerror(-ret));
		else
			ret = round_enqueue(r, &rb, i);
	}
	if (!ret) {
		ret = dac_wait_consumed(r->in, want, 60000, &r->dac);
		if (ret)
			round_fail(r, ret, "scans_consumed %lld, expected %lld: %s",
				   r->dac.consumed, want, strerror(-ret));
	}
	/* The last block's fence is signalled after its counts */
	for (i = 0; !ret && i < r->nblk; i++) {
		struct block_wait w = {
			.wait = BLOCK_WAIT_POLLOUT, .timeout_ms = 10000,
		};

		ret = block_wait_check(&w, &rb.b[i].b);
		if (ret)
			round_fail(r, ret, "block %d: %s", i, w.why);
	}
	if (!ret) {
		ret = dac_read_counters(r->in, &r->dac);
		if (ret)
			round_fail(r, ret, "DAC counters: %s", strerror(-ret));
	}
	ret = round_teardown(r, &rb, ret);
	return ret ? ret : round_mark(r, true);
}
