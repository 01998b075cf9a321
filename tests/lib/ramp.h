/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/ramp.c: scan layouts, the ramp (and the sine),
 * read() and write(). Included by iio_test_util.h.
 */
#ifndef IIO_TEST_RAMP_H
#define IIO_TEST_RAMP_H

struct scan_layout {
	unsigned int mask;
	int nch;		/* enabled voltage channels */
	int ch[ADC_NUM_CH];	/* channel numbers in index order */
	int off[ADC_NUM_CH];	/* byte offset of each */
	int ts_off;		/* -1 when no timestamp */
	size_t size;		/* bytes per scan */
};

struct ramp_check {
	struct scan_layout l;
	bool allow_gaps;	/* count gaps instead of failing on them */
	bool failed;
	char err[256];
	uint64_t scans;		/* scans checked */
	uint64_t expect;	/* next expected scan number n */
	uint16_t first_n;	/* n (mod 65536) of the first scan seen */
	uint64_t gaps;		/* scans missing (allow_gaps) */
	uint64_t gap_events;
	int64_t first_ts, last_ts;
	uint8_t partial[64];
	size_t npartial;
	uint64_t partial_reads;	/* reads that ended mid-scan */
};

struct stream_stats {
	uint64_t bytes;
	uint64_t reads;
	uint64_t first_read_scans;	/* scans in the first non-empty read */
	double t_start;			/* when stream_read() was called */
	double t_first;			/* first non-empty read returned */
	double t_last;			/* last read returned */
};

void layout_init(struct scan_layout *l, unsigned int mask);
void ramp_init(struct ramp_check *rc, unsigned int mask, bool allow_gaps);
int ramp_feed(struct ramp_check *rc, const void *buf, size_t len);
uint16_t ramp_n_of(const struct scan_layout *l, const void *scan);
void ramp_resync(struct ramp_check *rc, const void *scan);
void ramp_fill(const struct scan_layout *l, void *buf, uint64_t first_n,
	       size_t nscans);
int wait_readable(int fd, int timeout_ms);
ssize_t read_timeout(int fd, void *buf, size_t len, int timeout_ms);
int stream_read(int fd, struct ramp_check *rc, uint64_t want,
		double timeout_s, void *buf, size_t buflen,
		struct stream_stats *st);
ssize_t write_all_timeout(int fd, const void *buf, size_t len,
			  int timeout_ms);

uint16_t get_le16(const uint8_t *p);
int64_t get_le64(const uint8_t *p);
void put_le16(uint8_t *p, uint16_t v);
void put_le64(uint8_t *p, uint64_t v);
long long ramp_value(uint64_t n, int c);
int16_t sine_code(uint64_t n, int c);
int16_t wave_code(bool sine, uint64_t n, int c);

#endif /* IIO_TEST_RAMP_H */
