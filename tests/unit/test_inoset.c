/* test_inoset.c - the daemon's counted inode set against a plain model:
 * random adds and subtractions (with deletions that must pull probe runs
 * back), growth, saturation, and listing. The module lives in fs/ (no FUSE
 * dependency), so it is compiled in here directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../fs/inoset.c"

#define MODEL 4096

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The set lists exactly the model's nonzero inodes. */
static void check_same(struct mavfs_inoset *s, const uint64_t *count,
                       const uint64_t *inos)
{
	uint64_t *got = calloc(MODEL, sizeof(*got));
	uint64_t *want = calloc(MODEL, sizeof(*want));
	size_t n, m = 0;

	assert_non_null(got);
	assert_non_null(want);
	for (size_t i = 0; i < MODEL; i++)
		if (count[i])
			want[m++] = inos[i];
	n = mavfs_inoset_list(s, got, MODEL);
	assert_int_equal(n, m);
	assert_int_equal(mavfs_inoset_count(s), m);
	qsort(got, n, sizeof(*got), cmp_u64);
	qsort(want, m, sizeof(*want), cmp_u64);
	assert_memory_equal(got, want, m * sizeof(*got));
	free(got);
	free(want);
}

static void test_against_model(void **state)
{
	uint64_t count[MODEL] = {0}, inos[MODEL];
	struct mavfs_inoset *s = NULL;
	uint64_t seed = 7;

	(void)state;
	assert_int_equal(mavfs_inoset_new(&s), 0);
	/* Inode numbers with shared low bits collide in the table. */
	for (size_t i = 0; i < MODEL; i++)
		inos[i] = ((uint64_t)(i + 1) << 40) | (i % 64 + 1);
	for (int round = 0; round < 200000; round++) {
		size_t i = rng(&seed) % (round < 100000 ? MODEL : 300);
		uint64_t n = rng(&seed) % 3 + 1;

		if (rng(&seed) % 2) {
			assert_int_equal(mavfs_inoset_add(s, inos[i], n), 0);
			count[i] += n;
		} else {
			mavfs_inoset_sub(s, inos[i], n);
			count[i] = n >= count[i] ? 0 : count[i] - n;
		}
		if (round % 20000 == 0)
			check_same(s, count, inos);
	}
	check_same(s, count, inos);
	/* Drain everything: the set ends empty. */
	for (size_t i = 0; i < MODEL; i++)
		mavfs_inoset_sub(s, inos[i], UINT64_MAX);
	assert_int_equal(mavfs_inoset_count(s), 0);
	mavfs_inoset_free(s);
	mavfs_inoset_free(NULL);
}

static void test_list_cap_and_absent(void **state)
{
	struct mavfs_inoset *s = NULL;
	uint64_t out[3];

	(void)state;
	assert_int_equal(mavfs_inoset_new(&s), 0);
	mavfs_inoset_sub(s, 99, 1); /* absent: no-op */
	for (uint64_t i = 1; i <= 10; i++)
		assert_int_equal(mavfs_inoset_add(s, i, 1), 0);
	assert_int_equal(mavfs_inoset_list(s, out, 3), 3);
	mavfs_inoset_sub(s, 5, 1);
	mavfs_inoset_sub(s, 5, 1);
	assert_int_equal(mavfs_inoset_count(s), 9);
	mavfs_inoset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_against_model),
	    cmocka_unit_test(test_list_cap_and_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
