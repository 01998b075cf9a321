// SPDX-License-Identifier: GPL-2.0
/*
 * iio_dmabuf: sysfs attributes (device, channel, scan element and buffer).
 */
#include "kselftest_harness.h"
#include "iio_test_util.h"

FIXTURE(attr) {
	struct inst a;
};

FIXTURE_SETUP(attr)
{
	self->a.devnum = -1;
	ASSERT_EQ(0, inst_create_unique(&self->a, INST_ADC, "at"));
}

FIXTURE_TEARDOWN(attr)
{
	inst_destroy(&self->a);
}

static bool is_int(const char *s)
{
	long long v;

	return parse_ll(s, &v) == 0;
}

TEST_F_TIMEOUT(attr, name, 60)
{
	char buf[256];

	ASSERT_LE(0, inst_read(&self->a, "name", buf, sizeof(buf)));
	EXPECT_STREQ(self->a.name, buf);
}

/*
 * Read in_voltage0_raw..3_raw at one instant: at 1 Hz, retried until
 * channel 0 reads the same before and after (no scan boundary between).
 */
static int read_raws(const struct inst *a, long long v[ADC_NUM_CH])
{
	char attr[64];
	long long again;
	int c, tries, ret;

	for (tries = 0; tries < 5; tries++) {
		for (c = 0; c < ADC_NUM_CH; c++) {
			snprintf(attr, sizeof(attr), "in_voltage%d_raw", c);
			ret = inst_read_ll(a, attr, &v[c]);
			if (ret)
				return ret;
		}
		ret = inst_read_ll(a, "in_voltage0_raw", &again);
		if (ret)
			return ret;
		if (again == v[0])
			return 0;
	}
	return -EAGAIN;
}

/*
 * in_voltageN_raw is "the code channel N would convert now": the codes of
 * one scan n of the current waveform, (n + c) mod 2^16 for the ramp, the
 * sine a quarter period ahead per channel. Writes give EINVAL.
 */
TEST_F_TIMEOUT(attr, voltage_raw, 60)
{
	long long v[ADC_NUM_CH];
	char attr[64];
	int c, matches;
	uint64_t n;

	ASSERT_EQ(0, inst_write(&self->a, "sampling_frequency", "1"));
	ASSERT_EQ(0, read_raws(&self->a, v));
	for (c = 1; c < ADC_NUM_CH; c++) {
		EXPECT_EQ((int16_t)(uint16_t)(v[0] + c), v[c]) {
			TH_LOG("ramp: channel 0 reads %lld, channel %d %lld",
			       v[0], c, v[c]);
		}
	}

	ASSERT_EQ(0, inst_write(&self->a, "waveform", "sine"));
	ASSERT_EQ(0, read_raws(&self->a, v));
	matches = 0;
	for (n = 0; n < 1000; n++) {
		for (c = 0; c < ADC_NUM_CH; c++)
			if (sine_code(n, c) != v[c])
				break;
		matches += c == ADC_NUM_CH;
	}
	EXPECT_LE(1, matches) {
		TH_LOG("sine: %lld %lld %lld %lld is no scan of the sine",
		       v[0], v[1], v[2], v[3]);
	}

	for (c = 0; c < ADC_NUM_CH; c++) {
		snprintf(attr, sizeof(attr), "in_voltage%d_raw", c);
		EXPECT_EQ(-EINVAL, inst_write(&self->a, attr, "0"));
		EXPECT_EQ(-EINVAL, inst_write(&self->a, attr, "100\n"));
	}
	/* there is no fifth voltage channel */
	EXPECT_FALSE(inst_has(&self->a, "in_voltage4_raw"));
}

/* in_voltage_scale: shared, reads 0.305175781, writes give EINVAL */
TEST_F_TIMEOUT(attr, voltage_scale, 60)
{
	char buf[64];

	ASSERT_LE(0, inst_read(&self->a, "in_voltage_scale", buf, sizeof(buf)));
	EXPECT_STREQ(ADC_SCALE_STR, buf);
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "in_voltage_scale", "1"));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "in_voltage_scale",
				      ADC_SCALE_STR));
	ASSERT_LE(0, inst_read(&self->a, "in_voltage_scale", buf, sizeof(buf)));
	EXPECT_STREQ(ADC_SCALE_STR, buf);
}

/* scan element index/type/en, in both scan_elements/ and buffer0/ */
TEST_F_TIMEOUT(attr, scan_elements, 60)
{
	static const char *const dirs[] = { "scan_elements", "buffer0" };
	char attr[128], buf[64];
	long long v;
	unsigned int d;
	int c;

	for (d = 0; d < ARRAY_SIZE(dirs); d++) {
		for (c = 0; c < ADC_NUM_CH; c++) {
			snprintf(attr, sizeof(attr), "%s/in_voltage%d_index",
				 dirs[d], c);
			ASSERT_EQ(0, inst_read_ll(&self->a, attr, &v)) {
				TH_LOG("reading %s", attr);
			}
			EXPECT_EQ(c, v);

			snprintf(attr, sizeof(attr), "%s/in_voltage%d_type",
				 dirs[d], c);
			ASSERT_LE(0, inst_read(&self->a, attr, buf,
					       sizeof(buf)));
			EXPECT_STREQ("le:s16/16>>0", buf);

			snprintf(attr, sizeof(attr), "%s/in_voltage%d_en",
				 dirs[d], c);
			ASSERT_EQ(0, inst_read_ll(&self->a, attr, &v));
			EXPECT_EQ(0, v);
		}
		snprintf(attr, sizeof(attr), "%s/in_timestamp_index", dirs[d]);
		ASSERT_EQ(0, inst_read_ll(&self->a, attr, &v));
		EXPECT_EQ(ADC_TS_INDEX, v);
		snprintf(attr, sizeof(attr), "%s/in_timestamp_type", dirs[d]);
		ASSERT_LE(0, inst_read(&self->a, attr, buf, sizeof(buf)));
		EXPECT_STREQ("le:s64/64>>0", buf);
		snprintf(attr, sizeof(attr), "%s/in_timestamp_en", dirs[d]);
		ASSERT_EQ(0, inst_read_ll(&self->a, attr, &v));
		EXPECT_EQ(0, v);

		snprintf(attr, sizeof(attr), "%s/in_voltage4_en", dirs[d]);
		EXPECT_FALSE(inst_has(&self->a, attr));
	}

	/* en is writable, and both directories show the same state */
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/in_voltage2_en", "1"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "scan_elements/in_voltage2_en", &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, inst_write(&self->a, "scan_elements/in_timestamp_en", "1"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/in_timestamp_en", &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, inst_set_channels(&self->a, 0));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/in_voltage2_en", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/in_timestamp_en", &v));
	EXPECT_EQ(0, v);
}

TEST_F_TIMEOUT(attr, sampling_frequency_default_and_available, 60)
{
	char buf[128];
	long long v;

	ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
	EXPECT_EQ(ADC_DEFAULT_FREQ, v);
	ASSERT_LE(0, inst_read(&self->a, "sampling_frequency_available",
			       buf, sizeof(buf)));
	EXPECT_STREQ("[1 1 500000000]", buf);
}

TEST_F_TIMEOUT(attr, sampling_frequency_valid, 60)
{
	static const struct { const char *in; long long out; } ok[] = {
		{ "1", 1 },
		{ "1000000", 1000000 },
		{ "12345", 12345 },
		{ "100000\n", 100000 },	/* as written by echo */
		{ "999999", 999999 },
		{ "10000", 10000 },
	};
	long long v;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		EXPECT_EQ(0, inst_write(&self->a, "sampling_frequency", ok[i].in)) {
			TH_LOG("writing '%s'", ok[i].in);
		}
		ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
		EXPECT_EQ(ok[i].out, v);
	}
}

TEST_F_TIMEOUT(attr, sampling_frequency_invalid, 60)
{
	static const char *const bad[] = {
		"0", "-1", "-1000", "500000001", "1000000000", "abc", "10k", "\n",
		/* fractional */
		"1000.5", "0.5", "999999.9", "1000000.5", "4321.000001",
	};
	long long v;
	unsigned int i;

	ASSERT_EQ(0, inst_write(&self->a, "sampling_frequency", "4321"));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, inst_write(&self->a, "sampling_frequency",
					      bad[i])) {
			TH_LOG("writing '%s'", bad[i]);
		}
		ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
		EXPECT_EQ(4321, v) {
			TH_LOG("value changed by rejected write '%s'", bad[i]);
		}
	}
}

TEST_F_TIMEOUT(attr, waveform, 60)
{
	static const char *const bad[] = {
		"square", "sin", "ramps", "RAMP", "ramp sine", "\n", "0",
	};
	char buf[64];
	unsigned int i;

	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("ramp", buf);
	ASSERT_LE(0, inst_read(&self->a, "waveform_available", buf, sizeof(buf)));
	EXPECT_STREQ("ramp sine", buf);

	EXPECT_EQ(0, inst_write(&self->a, "waveform", "sine"));
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("sine", buf);
	EXPECT_EQ(0, inst_write(&self->a, "waveform", "ramp\n"));
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("ramp", buf);
	EXPECT_EQ(0, inst_write(&self->a, "waveform", "sine\n"));
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("sine", buf);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, inst_write(&self->a, "waveform", bad[i])) {
			TH_LOG("writing '%s'", bad[i]);
		}
		ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
		EXPECT_STREQ("sine", buf);
	}
	EXPECT_EQ(0, inst_write(&self->a, "waveform", "ramp"));
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("ramp", buf);
}

/* overruns: read-only (writes: EACCES), 0 on a fresh instance */
TEST_F_TIMEOUT(attr, overruns_readonly, 60)
{
	char buf[64];
	long long v;

	ASSERT_LE(1, inst_read(&self->a, "overruns", buf, sizeof(buf)));
	ASSERT_TRUE(is_int(buf)) {
		TH_LOG("overruns = '%s'", buf);
	}
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(-EACCES, inst_write(&self->a, "overruns", "0"));
	EXPECT_EQ(-EACCES, inst_write(&self->a, "overruns", "5"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "overruns", &v));
	EXPECT_EQ(0, v);
}

TEST_F_TIMEOUT(attr, buffer_defaults, 60)
{
	long long v;

	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(ADC_DEFAULT_LENGTH, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/watermark", &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/data_available", &v));
	EXPECT_EQ(0, v);
	/* legacy buffer/ directory mirrors buffer0/ */
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer/length", &v));
	EXPECT_EQ(ADC_DEFAULT_LENGTH, v);
}

TEST_F_TIMEOUT(attr, buffer_length_watermark, 60)
{
	long long v;

	ASSERT_EQ(0, inst_write(&self->a, "buffer0/length", "8192"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(8192, v);
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/watermark", "8192"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/watermark", &v));
	EXPECT_EQ(8192, v);
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/watermark", "100"));

	/* watermark > length */
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "buffer0/watermark", "8193"));
	/* watermark 0 */
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "buffer0/watermark", "0"));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "buffer0/watermark", "abc"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/watermark", &v));
	EXPECT_EQ(100, v);

	/*
	 * length 0: the IIO core ignores set_length()'s verdict, so the
	 * write succeeds; enabling the buffer for read() then fails with
	 * EINVAL (dmabuf_adc.rst).
	 */
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/length", "0"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_set_channels(&self->a, ADC_ALL_TS));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "buffer0/enable", "1"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/length", "4096"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(4096, v);
}

/* enabling the buffer without any scan element: EINVAL from the core */
TEST_F_TIMEOUT(attr, enable_without_channels, 60)
{
	long long v;

	ASSERT_EQ(0, inst_set_channels(&self->a, 0));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "buffer0/enable", "1"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
}

/* configuration is locked while the buffer runs */
TEST_F_TIMEOUT(attr, busy_while_enabled, 60)
{
	char buf[64];
	long long v;

	ASSERT_EQ(0, inst_start(&self->a, ADC_ALL_TS, 1000, 4096, 16));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(1, v);

	EXPECT_EQ(-EBUSY, inst_write(&self->a, "sampling_frequency", "5000"));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "waveform", "sine"));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "buffer0/length", "2048"));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "buffer0/watermark", "32"));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "buffer0/in_voltage0_en", "0"));
	EXPECT_EQ(-EBUSY, inst_write(&self->a, "buffer0/in_timestamp_en", "0"));

	/* reads still work and nothing changed */
	ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
	EXPECT_EQ(1000, v);
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("ramp", buf);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/length", &v));
	EXPECT_EQ(4096, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/watermark", &v));
	EXPECT_EQ(16, v);
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/in_voltage0_en", &v));
	EXPECT_EQ(1, v);

	/* unlocked again after disable */
	ASSERT_EQ(0, inst_write(&self->a, "buffer0/enable", "0"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "buffer0/enable", &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(0, inst_write(&self->a, "sampling_frequency", "5000"));
	EXPECT_EQ(0, inst_write(&self->a, "waveform", "sine"));
	EXPECT_EQ(0, inst_write(&self->a, "buffer0/length", "2048"));
	EXPECT_EQ(0, inst_write(&self->a, "buffer0/watermark", "32"));
	EXPECT_EQ(0, inst_write(&self->a, "buffer0/in_voltage0_en", "0"));
	ASSERT_EQ(0, inst_read_ll(&self->a, "sampling_frequency", &v));
	EXPECT_EQ(5000, v);
	ASSERT_LE(0, inst_read(&self->a, "waveform", buf, sizeof(buf)));
	EXPECT_STREQ("sine", buf);
}

/* invalid values are still EINVAL after a disable (no stale EBUSY) */
TEST_F_TIMEOUT(attr, invalid_after_disable, 60)
{
	ASSERT_EQ(0, inst_start(&self->a, ADC_CH(0), 100, 0, 0));
	ASSERT_EQ(0, inst_buffer_disable(&self->a));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "sampling_frequency", "0"));
	EXPECT_EQ(-EINVAL, inst_write(&self->a, "waveform", "triangle"));
}

TEST_HARNESS_MAIN
