/* testdata.h - deterministic test bytes and store checks shared by the unit
 * tests.
 *
 * splitmix64: a tiny generator whose output is the same on every machine,
 * so a failing case reproduces from its seed. Header-only (static inline):
 * each test is its own executable. Needs cmocka's headers first.
 */
#ifndef MAV_TESTDATA_H
#define MAV_TESTDATA_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mav/kv.h"

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* len random-looking bytes from seed, malloc'd (8 bytes of slack). */
static inline uint8_t *random_buf(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len + 8);

	assert_non_null(b);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&seed);

		memcpy(b + i, &v, 8);
	}
	return b;
}

/* Number of keys in one column family of kv. */
static inline size_t kv_count_keys(struct mav_kv *kv, enum mav_cf cf)
{
	struct mav_kv_iter *it = NULL;
	size_t n = 0;

	assert_int_equal(mav_kv_iter_new(&it, kv, cf), 0);
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it))
		n++;
	assert_int_equal(mav_kv_iter_status(it), 0);
	mav_kv_iter_free(it);
	return n;
}

#endif
