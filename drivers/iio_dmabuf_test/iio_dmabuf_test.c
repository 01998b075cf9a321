// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf_test: a plain C IIO driver, in the spirit of iio_dummy, on
 * the buffer iio_dmabuf exports (include/linux/iio/iio-dmabuf.h).
 *
 * Module load creates one faux device with two IIO devices:
 * - iio_dmabuf_test_adc: input; its "hardware" writes a ramp keyed by the
 *   scan number: channel c of scan n holds (n + c) mod 2^16, the
 *   timestamp increases with n; `overruns` counts scans that found no
 *   block;
 * - iio_dmabuf_test_dac: output; it checks what it takes against the same
 *   ramp (each scan's channels agree, n follows n - 1 unless an underrun
 *   came between) and counts `scans_consumed`, `mismatches` and
 *   `underruns` (reset at each buffer enable).
 * Both have four 16-bit voltage channels and a timestamp, and a
 * sampling_frequency; a delayed work item at that rate hands the scans due
 * to iio_dmabuf_buffer_transfer(), as a real driver's interrupt would.
 *
 * dma_channel=NAME asks for a named dmaengine channel (default: any
 * memcpy channel, or the CPU). ch0_repeat=N gives channel 0 N elements a
 * scan (scan_type.repeat, each holding its sample), stored as the IIO core
 * counts them: rounded up to a power of two.
 */
#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/device/faux.h>
#include <linux/iio/buffer.h>
#include <linux/iio/iio.h>
#include <linux/iio/iio-dmabuf.h>
#include <linux/iio/sysfs.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/unaligned.h>
#include <linux/workqueue.h>

#define T_NUM_CH		4
#define T_TS_INDEX		4
#define T_DEFAULT_FREQ		1000
#define T_MAX_FREQ		1000000
/* How often the work item runs, and the most scans it hands over at once */
#define T_PERIOD_MS		4
#define T_MAX_SCANS		65536

static char *dma_channel;
module_param(dma_channel, charp, 0444);
MODULE_PARM_DESC(dma_channel, "dmaengine channel name (default: any memcpy channel)");

#define T_MAX_REPEAT		8
static unsigned int ch0_repeat = 1;
module_param(ch0_repeat, uint, 0444);
MODULE_PARM_DESC(ch0_repeat, "elements of channel 0 in a scan, 1-8 (default 1)");

struct t_conv {
	struct iio_dev *indio_dev;
	bool output;
	/* Set in direct mode only; read by the work item */
	u32 freq;
	struct delayed_work work;
	/* Of the current run (from postenable): only the work item writes */
	u64 start_ns;
	u64 next;
	s64 ts_base;
	u64 period_ns;
	bool synced;
	u16 expect;
	/* Layout of a scan with the channels enabled */
	int nch;
	int ch[T_NUM_CH];
	int off[T_NUM_CH];
	int ts_off;
	size_t scan_bytes;
	atomic64_t overruns;
	atomic64_t underruns;
	atomic64_t consumed;
	atomic64_t mismatches;
	atomic64_t errors;
};

#define T_VOLTAGE(i, out) {						\
	.type = IIO_VOLTAGE,						\
	.indexed = 1,							\
	.channel = (i),							\
	.output = (out),						\
	.info_mask_separate = (out) ? 0 : BIT(IIO_CHAN_INFO_RAW),	\
	.info_mask_shared_by_all = BIT(IIO_CHAN_INFO_SAMP_FREQ),	\
	.scan_index = (i),						\
	.scan_type = {							\
		.sign = 's',						\
		.realbits = 16,						\
		.storagebits = 16,					\
		.endianness = IIO_LE,					\
	},								\
}

/* Not const: channel 0's repeat is set at load (ch0_repeat) */
static struct iio_chan_spec t_adc_channels[] = {
	T_VOLTAGE(0, 0), T_VOLTAGE(1, 0), T_VOLTAGE(2, 0), T_VOLTAGE(3, 0),
	IIO_CHAN_SOFT_TIMESTAMP(T_TS_INDEX),
};

static struct iio_chan_spec t_dac_channels[] = {
	T_VOLTAGE(0, 1), T_VOLTAGE(1, 1), T_VOLTAGE(2, 1), T_VOLTAGE(3, 1),
	IIO_CHAN_SOFT_TIMESTAMP(T_TS_INDEX),
};

static int t_read_raw(struct iio_dev *indio_dev,
		      const struct iio_chan_spec *chan, int *val, int *val2,
		      long mask)
{
	struct t_conv *t = iio_priv(indio_dev);

	switch (mask) {
	case IIO_CHAN_INFO_RAW:
		*val = (s16)(u16)(READ_ONCE(t->next) + chan->channel);
		return IIO_VAL_INT;
	case IIO_CHAN_INFO_SAMP_FREQ:
		*val = READ_ONCE(t->freq);
		return IIO_VAL_INT;
	default:
		return -EINVAL;
	}
}

static int t_write_raw(struct iio_dev *indio_dev,
		       const struct iio_chan_spec *chan, int val, int val2,
		       long mask)
{
	struct t_conv *t = iio_priv(indio_dev);

	if (mask != IIO_CHAN_INFO_SAMP_FREQ)
		return -EINVAL;
	if (val < 1 || val > T_MAX_FREQ || val2)
		return -EINVAL;
	if (!iio_device_claim_direct(indio_dev))
		return -EBUSY;
	WRITE_ONCE(t->freq, val);
	iio_device_release_direct(indio_dev);
	return 0;
}

static int t_write_raw_get_fmt(struct iio_dev *indio_dev,
			       struct iio_chan_spec const *chan, long mask)
{
	return IIO_VAL_INT;
}

/* Elements of channel @ch in a scan */
static unsigned int t_elements(int ch)
{
	return ch ? 1 : ch0_repeat;
}

/* Bytes of channel @ch in a scan, as the IIO core counts them */
static size_t t_storage(int ch)
{
	return 2 * roundup_pow_of_two(t_elements(ch));
}

/* ADC: the ramp, keyed by scan number */
static void t_fill(struct iio_dev *indio_dev, void *fifo, u64 first, size_t n)
{
	struct t_conv *t = iio_priv(indio_dev);
	unsigned int e;
	u8 *p = fifo;
	size_t s;
	int i;

	for (s = 0; s < n; s++, p += t->scan_bytes) {
		u64 scan = first + s;

		memset(p, 0, t->scan_bytes);
		for (i = 0; i < t->nch; i++)
			for (e = 0; e < t_elements(t->ch[i]); e++)
				put_unaligned_le16((u16)(scan + t->ch[i]),
						   p + t->off[i] + 2 * e);
		if (t->ts_off >= 0)
			put_unaligned_le64(t->ts_base + scan * t->period_ns,
					   p + t->ts_off);
	}
}

/* DAC: checks the ramp; counts are published before the block completes */
static void t_take(struct iio_dev *indio_dev, const void *fifo, u64 first,
		   size_t n)
{
	struct t_conv *t = iio_priv(indio_dev);
	const u8 *p = fifo;
	unsigned int e;
	u64 bad = 0;
	size_t s;
	int i;

	for (s = 0; s < n && t->nch; s++, p += t->scan_bytes) {
		u16 n16 = get_unaligned_le16(p + t->off[0]) - t->ch[0];
		bool ok = !t->synced || n16 == t->expect;

		for (i = 0; i < t->nch; i++)
			for (e = 0; e < t_elements(t->ch[i]); e++)
				if ((u16)(get_unaligned_le16(p + t->off[i] + 2 * e) -
					  t->ch[i]) != n16)
					ok = false;
		if (!ok)
			bad++;
		t->expect = n16 + 1;
		t->synced = true;
	}
	atomic64_add(bad, &t->mismatches);
	atomic64_add(n, &t->consumed);
}

static const struct iio_dmabuf_hw_ops t_hw_ops = {
	.fill = t_fill,
	.take = t_take,
};

static void t_work_fn(struct work_struct *work)
{
	struct t_conv *t = container_of(to_delayed_work(work), struct t_conv,
					work);
	u64 due = div64_u64((ktime_get_ns() - t->start_ns) * t->freq,
			    NSEC_PER_SEC);
	u64 n = min_t(u64, due - t->next, T_MAX_SCANS);
	long ret;

	if (n) {
		ret = iio_dmabuf_buffer_transfer(t->indio_dev, t->next, n);
		if (ret < 0) {
			atomic64_inc(&t->errors);
		} else if (ret > 0) {
			if (t->output) {
				atomic64_add(ret, &t->underruns);
				t->synced = false;
			} else {
				atomic64_add(ret, &t->overruns);
			}
		}
		WRITE_ONCE(t->next, t->next + n);
	}
	schedule_delayed_work(&t->work, msecs_to_jiffies(T_PERIOD_MS));
}

static int t_postenable(struct iio_dev *indio_dev)
{
	struct t_conv *t = iio_priv(indio_dev);
	size_t bytes = 0, largest = 0;
	int i;

	t->nch = 0;
	t->ts_off = -1;
	/* As the core lays a scan out: each element aligned to its size */
	for_each_set_bit(i, indio_dev->active_scan_mask, T_NUM_CH) {
		bytes = ALIGN(bytes, t_storage(i));
		t->ch[t->nch] = i;
		t->off[t->nch] = bytes;
		t->nch++;
		bytes += t_storage(i);
		largest = max(largest, t_storage(i));
	}
	if (indio_dev->scan_timestamp) {
		bytes = ALIGN(bytes, 8);
		t->ts_off = bytes;
		bytes += 8;
		largest = max_t(size_t, largest, 8);
	}
	t->scan_bytes = largest ? ALIGN(bytes, largest) : 0;
	if (!t->scan_bytes)
		return -EINVAL;
	t->period_ns = div_u64(NSEC_PER_SEC, t->freq) ?: 1;
	t->ts_base = iio_get_time_ns(indio_dev);
	t->next = 0;
	t->synced = false;
	if (t->output) {
		atomic64_set(&t->consumed, 0);
		atomic64_set(&t->mismatches, 0);
		atomic64_set(&t->underruns, 0);
	}
	t->start_ns = ktime_get_ns();
	schedule_delayed_work(&t->work, msecs_to_jiffies(T_PERIOD_MS));
	return 0;
}

static int t_predisable(struct iio_dev *indio_dev)
{
	struct t_conv *t = iio_priv(indio_dev);

	cancel_delayed_work_sync(&t->work);
	return 0;
}

static const struct iio_buffer_setup_ops t_setup_ops = {
	.postenable = t_postenable,
	.predisable = t_predisable,
};

#define T_COUNTER(_name)						\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct t_conv *t = iio_priv(dev_to_iio_dev(dev));		\
									\
	return sysfs_emit(buf, "%lld\n", atomic64_read(&t->_name));	\
}									\
static IIO_DEVICE_ATTR_RO(_name, 0)

T_COUNTER(overruns);
T_COUNTER(underruns);
T_COUNTER(mismatches);
T_COUNTER(errors);

static ssize_t scans_consumed_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct t_conv *t = iio_priv(dev_to_iio_dev(dev));

	return sysfs_emit(buf, "%lld\n", atomic64_read(&t->consumed));
}
static IIO_DEVICE_ATTR_RO(scans_consumed, 0);

static struct attribute *t_adc_attrs[] = {
	&iio_dev_attr_overruns.dev_attr.attr,
	&iio_dev_attr_errors.dev_attr.attr,
	NULL
};

static struct attribute *t_dac_attrs[] = {
	&iio_dev_attr_scans_consumed.dev_attr.attr,
	&iio_dev_attr_mismatches.dev_attr.attr,
	&iio_dev_attr_underruns.dev_attr.attr,
	&iio_dev_attr_errors.dev_attr.attr,
	NULL
};

static const struct attribute_group t_adc_group = { .attrs = t_adc_attrs };
static const struct attribute_group t_dac_group = { .attrs = t_dac_attrs };

static const struct iio_info t_adc_info = {
	.read_raw = t_read_raw,
	.write_raw = t_write_raw,
	.write_raw_get_fmt = t_write_raw_get_fmt,
	.attrs = &t_adc_group,
};

static const struct iio_info t_dac_info = {
	.read_raw = t_read_raw,
	.write_raw = t_write_raw,
	.write_raw_get_fmt = t_write_raw_get_fmt,
	.attrs = &t_dac_group,
};

static int t_create(struct device *dev, bool output)
{
	struct iio_dev *indio_dev;
	struct t_conv *t;
	int ret;

	indio_dev = devm_iio_device_alloc(dev, sizeof(*t));
	if (!indio_dev)
		return -ENOMEM;
	t = iio_priv(indio_dev);
	t->indio_dev = indio_dev;
	t->output = output;
	t->freq = T_DEFAULT_FREQ;
	INIT_DELAYED_WORK(&t->work, t_work_fn);

	indio_dev->name = output ? "iio_dmabuf_test_dac" : "iio_dmabuf_test_adc";
	indio_dev->info = output ? &t_dac_info : &t_adc_info;
	indio_dev->channels = output ? t_dac_channels : t_adc_channels;
	indio_dev->num_channels = ARRAY_SIZE(t_adc_channels);
	indio_dev->modes = INDIO_DIRECT_MODE;
	indio_dev->setup_ops = &t_setup_ops;

	ret = devm_iio_dmabuf_buffer_setup(dev, indio_dev, dma_channel,
					   output ? IIO_BUFFER_DIRECTION_OUT :
						    IIO_BUFFER_DIRECTION_IN,
					   &t_hw_ops);
	if (ret)
		return dev_err_probe(dev, ret, "buffer setup\n");

	return devm_iio_device_register(dev, indio_dev);
}

static int t_probe(struct faux_device *fdev)
{
	int ret;

	ret = t_create(&fdev->dev, false);
	if (ret)
		return ret;
	return t_create(&fdev->dev, true);
}

static const struct faux_device_ops t_faux_ops = {
	.probe = t_probe,
};

static struct faux_device *t_fdev;

static int __init t_init(void)
{
	if (ch0_repeat < 1 || ch0_repeat > T_MAX_REPEAT)
		return -EINVAL;
	t_adc_channels[0].scan_type.repeat = ch0_repeat;
	t_dac_channels[0].scan_type.repeat = ch0_repeat;
	t_fdev = faux_device_create("iio_dmabuf_test", NULL, &t_faux_ops);
	return t_fdev ? 0 : -ENODEV;
}
module_init(t_init);

static void __exit t_exit(void)
{
	faux_device_destroy(t_fdev);
}
module_exit(t_exit);

MODULE_DESCRIPTION("Test IIO driver on iio_dmabuf's exported buffer");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("IIO_DMABUF");
