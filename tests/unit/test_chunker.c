/* test_chunker.c - FastCDC cut points: bounds, stability, speed. */
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

#include "mav/chunker.h"
#include "mav/error.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* Cut the whole buffer; returns the number of chunks, lengths in *lens. */
static size_t cut_all(const struct mav_chunker *c, const uint8_t *buf,
                      size_t len, size_t **lens)
{
	size_t cap = 64, n = 0, off = 0;
	size_t *l = malloc(cap * sizeof(*l));

	assert_non_null(l);
	while (off < len) {
		size_t k = mav_chunker_cut(c, buf + off, len - off);

		assert_true(k > 0 && k <= len - off);
		if (n == cap) {
			cap *= 2;
			l = realloc(l, cap * sizeof(*l));
			assert_non_null(l);
		}
		l[n++] = k;
		off += k;
	}
	*lens = l;
	return n;
}

static void test_init_validation(void **state)
{
	struct mav_chunker c;

	(void)state;
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	assert_int_equal(mav_chunker_init(&c, 64, 128, 256), 0);
	assert_int_equal(mav_chunker_init(&c, 16 * MiB, 32 * MiB, 64 * MiB), 0);
	assert_int_equal(mav_chunker_init(&c, 63, 128, 256), MAV_EINVAL);
	assert_true(strstr(mav_error_message(), "chunker") != NULL);
	assert_int_equal(mav_chunker_init(&c, 128, 128, 256), MAV_EINVAL);
	assert_int_equal(mav_chunker_init(&c, 64, 256, 256), MAV_EINVAL);
	assert_int_equal(mav_chunker_init(&c, 64, 96, 256), MAV_EINVAL);
	assert_int_equal(mav_chunker_init(&c, 1 * MiB, 32 * MiB, 65 * MiB),
	                 MAV_EINVAL);
	assert_int_equal(mav_chunker_init(&c, 200, 100, 300), MAV_EINVAL);
}

static int popcount64(uint64_t v)
{
	return __builtin_popcountll(v);
}

static void test_masks(void **state)
{
	struct mav_chunker c;

	(void)state;
	assert_int_equal(mav_chunker_init(&c, 16 * KiB, 64 * KiB, 256 * KiB),
	                 0);
	assert_int_equal(popcount64(c.mask_s), 18);
	assert_int_equal(popcount64(c.mask_l), 14);
	/* Spread over the top 48 bits only: a window of >= 17 bytes. */
	assert_int_equal(c.mask_s & 0xffff, 0);
	assert_int_equal(c.mask_l & 0xffff, 0);
	assert_int_equal(mav_chunker_init(&c, 64, 128, 256), 0);
	assert_int_equal(popcount64(c.mask_s), 9);
	assert_int_equal(popcount64(c.mask_l), 5);
}

static void test_short_inputs(void **state)
{
	struct mav_chunker c;
	uint8_t *b = random_buf(MAV_CHUNK_MAX_DEFAULT * 2, 1);

	(void)state;
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	assert_int_equal(mav_chunker_cut(&c, b, 0), 0);
	assert_int_equal(mav_chunker_cut(&c, b, 1), 1);
	assert_int_equal(mav_chunker_cut(&c, b, c.min), c.min);
	/* Just over min: a cut lies in (min, len]. */
	size_t k = mav_chunker_cut(&c, b, c.min + 1);
	assert_int_equal(k, c.min + 1);
	/* Never beyond max, whatever is offered. */
	for (uint32_t off = 0; off < 64 * KiB; off += 4099) {
		k = mav_chunker_cut(&c, b + off, c.max);
		assert_true(k > c.min && k <= c.max);
		k = mav_chunker_cut(&c, b + off, c.max + 12345);
		assert_true(k > c.min && k <= c.max);
	}
	free(b);
}

static void test_zeros_cut_at_max(void **state)
{
	struct mav_chunker c;
	uint8_t *z = calloc(1, 4 * MAV_CHUNK_MAX_DEFAULT);

	(void)state;
	assert_non_null(z);
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	assert_int_equal(mav_chunker_cut(&c, z, 4 * c.max), c.max);
	assert_int_equal(mav_chunker_cut(&c, z, c.max), c.max);
	/* No boundary in what was given: the whole of it comes back. */
	assert_int_equal(mav_chunker_cut(&c, z, c.max - 1), c.max - 1);
	free(z);
}

static void test_deterministic_and_bounded(void **state)
{
	const size_t len = 10 * MiB;
	uint8_t *b = random_buf(len, 42);
	struct mav_chunker c;
	size_t *l1, *l2, n1, n2, total = 0;

	(void)state;
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	n1 = cut_all(&c, b, len, &l1);
	n2 = cut_all(&c, b, len, &l2);
	assert_int_equal(n1, n2);
	assert_memory_equal(l1, l2, n1 * sizeof(*l1));
	for (size_t i = 0; i < n1; i++) {
		if (i + 1 < n1)
			assert_true(l1[i] > c.min && l1[i] <= c.max);
		total += l1[i];
	}
	assert_int_equal(total, len);
	free(l1);
	free(l2);
	free(b);
}

/* Cut points are part of the format: these lengths were recorded when the
 * gear table and masks were fixed. If this fails, every repository's
 * deduplication against older data silently breaks. */
static void test_golden_cuts(void **state)
{
	static const size_t want[] = {83801, 106388, 73809, 67424,
	                              69440, 67629,  66253, 72161,
	                              61653, 100214, 47473, 86945};
	uint8_t *b = random_buf(4 * MiB, 7);
	struct mav_chunker c;
	size_t *l, n;

	(void)state;
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	n = cut_all(&c, b, 4 * MiB, &l);
	assert_true(n >= sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(l[i], want[i]);
	free(l);
	free(b);
}

static void check_average(uint32_t min, uint32_t avg, uint32_t max, size_t len)
{
	uint8_t *b = random_buf(len, avg);
	struct mav_chunker c;
	size_t *l, n;
	double mean;

	assert_int_equal(mav_chunker_init(&c, min, avg, max), 0);
	n = cut_all(&c, b, len, &l);
	mean = (double)len / (double)n;
	printf("# avg %u: %zu chunks, mean %.0f bytes (%.2fx)\n", avg, n, mean,
	       mean / avg);
	assert_true(mean > 0.8 * avg && mean < 1.2 * avg);
	free(l);
	free(b);
}

static void test_average_size(void **state)
{
	(void)state;
	check_average(16 * KiB, 64 * KiB, 256 * KiB, 64 * MiB);
	check_average(2 * KiB, 8 * KiB, 32 * KiB, 16 * MiB);
	check_average(256 * KiB, 1 * MiB, 4 * MiB, 256 * MiB);
}

/* Chunk lengths of a and b as sets of (offset, len) pairs: how many of b's
 * chunks are not chunks of a (after the shift by `delta` bytes)? */
static size_t changed_chunks(const size_t *la, size_t na, const size_t *lb,
                             size_t nb, size_t delta)
{
	size_t i = 0, j = 0, oa = 0, ob = 0, changed = 0;

	while (j < nb) {
		while (i < na && oa + delta < ob) /* skip a's earlier chunks */
			oa += la[i++];
		if (!(i < na && oa + delta == ob && la[i] == lb[j]))
			changed++;
		ob += lb[j++];
	}
	return changed;
}

static void test_shift_resistance(void **state)
{
	const size_t len = 10 * MiB;
	uint8_t *a = random_buf(len, 99);
	uint8_t *b = malloc(len + 1);
	struct mav_chunker c;
	size_t *la, *lb, na, nb, changed;

	(void)state;
	assert_non_null(b);
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	/* Insert one byte at offset 1000. */
	memcpy(b, a, 1000);
	b[1000] = 0x5a;
	memcpy(b + 1001, a + 1000, len - 1000);
	na = cut_all(&c, a, len, &la);
	nb = cut_all(&c, b, len + 1, &lb);
	changed = changed_chunks(la, na, lb, nb, 1);
	printf("# shift: %zu of %zu chunks changed\n", changed, nb);
	assert_true(changed >= 1 && changed <= 3);
	/* And the control: an unchanged buffer changes nothing. */
	assert_int_equal(changed_chunks(la, na, la, na, 0), 0);
	free(la);
	free(lb);
	free(a);
	free(b);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput(void **state)
{
	const size_t len = 256 * MiB;
	uint8_t *b = random_buf(len, 5);
	struct mav_chunker c;
	size_t off = 0, n = 0;
	double t;

	(void)state;
	assert_int_equal(mav_chunker_init(&c, MAV_CHUNK_MIN_DEFAULT,
	                                  MAV_CHUNK_AVG_DEFAULT,
	                                  MAV_CHUNK_MAX_DEFAULT),
	                 0);
	t = now_s();
	while (off < len) {
		off += mav_chunker_cut(&c, b + off, len - off);
		n++;
	}
	t = now_s() - t;
	printf("# chunker: %zu chunks, %.0f MB/s\n", n, len / t / 1e6);
	assert_int_equal(off, len);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_validation),
	    cmocka_unit_test(test_masks),
	    cmocka_unit_test(test_short_inputs),
	    cmocka_unit_test(test_zeros_cut_at_max),
	    cmocka_unit_test(test_deterministic_and_bounded),
	    cmocka_unit_test(test_golden_cuts),
	    cmocka_unit_test(test_average_size),
	    cmocka_unit_test(test_shift_resistance),
	    cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
