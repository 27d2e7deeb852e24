/* test_frame.c - chunk frames: round trips, the raw/zstd choice, and that
 * every damaged frame is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testdata.h"
#include <xxhash.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/frame.h"

/* Word salad: compresses like prose (about 3x with zstd). */
static uint8_t *text_buf(size_t len, uint64_t seed)
{
	static const char *words[] = {
	    "the",   "asset",  "version", "of",      "a",        "texture",
	    "model", "and",    "caption", "license", "image",    "frame",
	    "is",    "stored", "with",    "every",   "chunk",    "snapshot",
	    "rock",  "audio",  "weights", "for",     "training", "run"};
	uint8_t *b = malloc(len);
	size_t off = 0;

	assert_non_null(b);
	while (off < len) {
		const char *w = words[rng_next(&seed) % 24];
		size_t n = strlen(w);

		for (size_t i = 0; i <= n && off < len; i++)
			b[off++] = i < n ? (uint8_t)w[i] : ' ';
	}
	return b;
}

static void round_trip(const uint8_t *data, size_t len, int level,
                       int want_codec)
{
	uint8_t *f = NULL, *back = malloc(len + 1);
	size_t flen = 0, outlen = 0;
	uint32_t raw_len;
	int codec;

	assert_non_null(back);
	assert_int_equal(mav_frame_encode(&f, &flen, data, len, level), 0);
	assert_int_equal(mav_frame_info(&raw_len, &codec, f, flen), 0);
	assert_int_equal(raw_len, len);
	assert_int_equal(codec, want_codec);
	if (codec == MAV_CODEC_RAW)
		assert_int_equal(flen, len + MAV_FRAME_OVERHEAD);
	else
		assert_true(flen < len + MAV_FRAME_OVERHEAD);
	assert_int_equal(mav_frame_decode(back, len + 1, &outlen, f, flen), 0);
	assert_int_equal(outlen, len);
	if (len)
		assert_memory_equal(back, data, len);
	/* Encoded in place, the same frame. */
	free(back);
	back = malloc(len + MAV_FRAME_OVERHEAD);
	assert_int_equal(mav_frame_encode_into(back, &outlen, data, len, level),
	                 0);
	assert_int_equal(outlen, flen);
	assert_memory_equal(back, f, flen);
	free(back);
	free(f);
}

static void test_round_trips(void **state)
{
	uint8_t *rnd = random_buf(300000, 1), *txt = text_buf(300000, 2);

	(void)state;
	round_trip(rnd, 0, 3, MAV_CODEC_RAW);
	round_trip(rnd, 1, 3, MAV_CODEC_RAW);
	round_trip(rnd, 65536, 0, MAV_CODEC_RAW);
	round_trip(txt, 65536, 0, MAV_CODEC_RAW); /* level 0 forces raw */
	round_trip(rnd, 65536, 3, MAV_CODEC_RAW); /* incompressible */
	round_trip(rnd, 300000, 19, MAV_CODEC_RAW);
	round_trip(txt, 65536, 1, MAV_CODEC_ZSTD);
	round_trip(txt, 65536, 3, MAV_CODEC_ZSTD);
	round_trip(txt, 300000, 19, MAV_CODEC_ZSTD);
	round_trip(txt, 5000, 3, MAV_CODEC_ZSTD); /* below the sample size */
	round_trip(txt, 3, 3, MAV_CODEC_RAW);     /* too small to shrink */
	free(rnd);
	free(txt);
}

static void test_text_shrinks(void **state)
{
	uint8_t *txt = text_buf(65536, 3), *f;
	uint8_t *zeros = calloc(1, 65536);
	size_t flen;

	(void)state;
	assert_int_equal(mav_frame_encode(&f, &flen, txt, 65536, 3), 0);
	printf("# text 64 KiB -> %zu bytes\n", flen);
	assert_true(flen < 65536 / 2);
	free(f);
	assert_int_equal(mav_frame_encode(&f, &flen, zeros, 65536, 3), 0);
	assert_true(flen < 200);
	free(f);
	free(zeros);
	free(txt);
}

/* The sample is the decision: random bytes around compressible samples
 * may still go to zstd, and the result then must still round trip. A
 * chunk whose samples look random but whose bulk is text goes raw. */
static void test_sample_decides(void **state)
{
	uint8_t *mix = text_buf(65536, 4), *rnd = random_buf(65536, 5);
	uint8_t *txt = text_buf(65536, 6);

	(void)state;
	memcpy(mix, rnd, 2048);
	memcpy(mix + 32768 - 1024, rnd + 2048, 2048);
	memcpy(mix + 65536 - 2048, rnd + 4096, 2048);
	round_trip(mix, 65536, 3, MAV_CODEC_RAW);
	memcpy(mix, txt, 65536);
	memcpy(mix + 10000, rnd, 20000);
	round_trip(mix, 65536, 3, MAV_CODEC_ZSTD);
	free(mix);
	free(rnd);
	free(txt);
}

static void test_bad_arguments(void **state)
{
	uint8_t d[16] = {0}, *f;
	size_t flen, outlen;

	(void)state;
	assert_int_equal(mav_frame_encode(&f, &flen, d, 16, -1), MAV_EINVAL);
	assert_int_equal(mav_frame_encode(&f, &flen, d, 16, 23), MAV_EINVAL);
	assert_int_equal(mav_frame_encode(&f, &flen, d, 16, 0), 0);
	assert_int_equal(mav_frame_decode(d, 15, &outlen, f, flen), MAV_EINVAL);
	assert_true(strstr(mav_error_message(), "frame") != NULL);
	assert_int_equal(mav_frame_decode(d, 16, &outlen, f, flen), 0);
	free(f);
}

static void check_bit_flips(const uint8_t *f, size_t flen, size_t rawlen)
{
	uint8_t *g = malloc(flen), *dst = malloc(rawlen + 1);
	size_t outlen;

	assert_non_null(g);
	assert_non_null(dst);
	memcpy(g, f, flen);
	for (size_t i = 0; i < flen; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			g[i] ^= (uint8_t)(1 << bit);
			rc =
			    mav_frame_decode(dst, rawlen + 1, &outlen, g, flen);
			if (i == 4 && bit > 0) /* version 1 -> 3, 5, 9 ... */
				assert_int_equal(rc, MAV_EVERSION);
			else if (rc != MAV_ECORRUPT)
				fail_msg("flip of byte %zu bit %d: rc %d", i,
				         bit, rc);
			g[i] ^= (uint8_t)(1 << bit);
		}
	}
	free(dst);
	free(g);
}

static void test_every_bit_flip(void **state)
{
	uint8_t *txt = text_buf(8192, 7), *rnd = random_buf(4096, 8), *f;
	size_t flen;
	uint32_t raw_len;
	int codec;

	(void)state;
	assert_int_equal(mav_frame_encode(&f, &flen, txt, 8192, 3), 0);
	assert_int_equal(mav_frame_info(&raw_len, &codec, f, flen), 0);
	assert_int_equal(codec, MAV_CODEC_ZSTD);
	check_bit_flips(f, flen, 8192);
	free(f);
	assert_int_equal(mav_frame_encode(&f, &flen, rnd, 4096, 3), 0);
	assert_int_equal(mav_frame_info(&raw_len, &codec, f, flen), 0);
	assert_int_equal(codec, MAV_CODEC_RAW);
	check_bit_flips(f, flen, 4096);
	free(f);
	assert_int_equal(mav_frame_encode(&f, &flen, rnd, 0, 3), 0);
	check_bit_flips(f, flen, 0);
	free(f);
	free(txt);
	free(rnd);
}

static void test_truncations(void **state)
{
	uint8_t *txt = text_buf(8192, 9), *f, *g, dst[8192];
	size_t flen, outlen;
	uint32_t raw_len;
	int codec;

	(void)state;
	assert_int_equal(mav_frame_encode(&f, &flen, txt, 8192, 3), 0);
	for (size_t n = 0; n < flen; n++) {
		/* A fresh copy of exactly n bytes, so ASan sees overreads. */
		g = malloc(n ? n : 1);
		memcpy(g, f, n);
		assert_int_equal(
		    mav_frame_decode(dst, sizeof(dst), &outlen, g, n),
		    MAV_ECORRUPT);
		assert_int_equal(mav_frame_info(&raw_len, &codec, g, n),
		                 MAV_ECORRUPT);
		free(g);
	}
	g = malloc(flen + 1);
	memcpy(g, f, flen);
	g[flen] = 0;
	assert_int_equal(
	    mav_frame_decode(dst, sizeof(dst), &outlen, g, flen + 1),
	    MAV_ECORRUPT);
	free(g);
	free(f);
	free(txt);
}

static void test_versions_and_forged(void **state)
{
	uint8_t *txt = text_buf(8192, 10), *f, dst[8193];
	size_t flen, outlen;
	uint32_t raw_len;
	int codec;

	(void)state;
	assert_int_equal(mav_frame_encode(&f, &flen, txt, 8192, 3), 0);
	f[4] = 2;
	assert_int_equal(mav_frame_info(&raw_len, &codec, f, flen),
	                 MAV_EVERSION);
	assert_int_equal(mav_frame_decode(dst, sizeof(dst), &outlen, f, flen),
	                 MAV_EVERSION);
	assert_true(strstr(mav_error_message(), "version") != NULL);
	f[4] = 1;
	/* A forged raw_len with a valid checksum: zstd's declared size
	 * disagrees, and zstd never writes past raw_len. */
	mav_store_u32(f + 8, 8193);
	assert_int_equal(mav_frame_decode(dst, sizeof(dst), &outlen, f, flen),
	                 MAV_ECORRUPT);
	mav_store_u32(f + 8, 8191);
	assert_int_equal(mav_frame_decode(dst, sizeof(dst), &outlen, f, flen),
	                 MAV_ECORRUPT);
	mav_store_u32(f + 8, 8192);
	/* Garbage payload under a valid checksum is still refused. */
	memset(f + 16, 0xa5, flen - 24);
	mav_store_u64(f + flen - 8, XXH3_64bits(f + 16, flen - 24));
	assert_int_equal(mav_frame_decode(dst, sizeof(dst), &outlen, f, flen),
	                 MAV_ECORRUPT);
	free(f);
	free(txt);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void measure(const char *what, const uint8_t *data, size_t len,
                    int level)
{
	const size_t chunk = 65536;
	uint8_t *back = malloc(chunk);
	size_t stored = 0, outlen;
	double te = 0, td = 0, t;

	assert_non_null(back);
	for (size_t off = 0; off + chunk <= len; off += chunk) {
		uint8_t *f;
		size_t flen;

		t = now_s();
		assert_int_equal(
		    mav_frame_encode(&f, &flen, data + off, chunk, level), 0);
		te += now_s() - t;
		t = now_s();
		assert_int_equal(
		    mav_frame_decode(back, chunk, &outlen, f, flen), 0);
		td += now_s() - t;
		stored += flen;
		free(f);
	}
	printf("# %s level %d: encode %.0f MB/s, decode %.0f MB/s, "
	       "stored %.1f%%\n",
	       what, level, len / te / 1e6, len / td / 1e6,
	       100.0 * stored / len);
	free(back);
}

static void test_throughput(void **state)
{
	const size_t len = 64u << 20;
	uint8_t *rnd = random_buf(len, 11), *txt = text_buf(len, 12);

	(void)state;
	measure("random", rnd, len, 3);
	measure("text", txt, len, 1);
	measure("text", txt, len, 3);
	free(rnd);
	free(txt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_text_shrinks),
	    cmocka_unit_test(test_sample_decides),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_every_bit_flip),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_versions_and_forged),
	    cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
