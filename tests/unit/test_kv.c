/* test_kv.c - one conformance suite run against every kv backend (mem,
 * RocksDB, fault-over-mem), then what is specific to each: RocksDB's reopen,
 * locking, secondary and free-space reserve; the fault wrapper's failures
 * and crash model. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mav/error.h"
#include "mav/kv.h"

enum backend { BK_MEM, BK_ROCKSDB, BK_FAULT };

struct fx {
	enum backend bk;
	char dir[64];
	struct mav_kv *kv;
};

/* ---- helpers ---- */

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void make_dir(char *dir)
{
	strcpy(dir, "/tmp/mav-test-kv-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int open_rocks(struct mav_kv **kv, const char *dir, bool create)
{
	struct mav_kv_options o = {.create = create};

	return mav_kv_open_rocksdb(kv, dir, &o);
}

static int put_raw(struct mav_kv *kv, enum mav_cf cf, const void *k,
                   size_t klen, const void *v, size_t vlen, unsigned flags)
{
	struct mav_kv_batch *b;
	int rc;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_kv_batch_put(b, cf, k, klen, v, vlen), 0);
	rc = mav_kv_write(kv, b, flags);
	mav_kv_batch_free(b);
	return rc;
}

static int put(struct mav_kv *kv, enum mav_cf cf, const char *k, const char *v,
               unsigned flags)
{
	return put_raw(kv, cf, k, strlen(k), v, strlen(v), flags);
}

static int del_raw(struct mav_kv *kv, enum mav_cf cf, const void *k,
                   size_t klen, unsigned flags)
{
	struct mav_kv_batch *b;
	int rc;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_kv_batch_del(b, cf, k, klen), 0);
	rc = mav_kv_write(kv, b, flags);
	mav_kv_batch_free(b);
	return rc;
}

static int del(struct mav_kv *kv, enum mav_cf cf, const char *k, unsigned flags)
{
	return del_raw(kv, cf, k, strlen(k), flags);
}

/* Assert key k holds v (v == NULL: absent). */
static void expect(struct mav_kv *kv, enum mav_cf cf, const char *k,
                   const char *v)
{
	void *got = (void *)1;
	size_t n = 99;
	int rc = mav_kv_get(kv, cf, k, strlen(k), &got, &n);

	if (!v) {
		assert_int_equal(rc, MAV_ENOTFOUND);
		assert_null(got);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, strlen(v));
	assert_memory_equal(got, v, n);
	free(got);
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- fixtures ---- */

static int setup_any(void **state, enum backend bk)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mav_kv *inner;

	assert_non_null(f);
	f->bk = bk;
	if (bk == BK_MEM) {
		assert_int_equal(mav_kv_open_mem(&f->kv), 0);
	} else if (bk == BK_ROCKSDB) {
		make_dir(f->dir);
		assert_int_equal(open_rocks(&f->kv, f->dir, true), 0);
	} else {
		assert_int_equal(mav_kv_open_mem(&inner), 0);
		assert_int_equal(mav_kv_fault_wrap(&f->kv, inner), 0);
	}
	*state = f;
	return 0;
}

static int setup_mem(void **state)
{
	return setup_any(state, BK_MEM);
}

static int setup_rocks(void **state)
{
	return setup_any(state, BK_ROCKSDB);
}

static int setup_fault(void **state)
{
	return setup_any(state, BK_FAULT);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	mav_kv_close(f->kv);
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* ---- the conformance suite ---- */

/* A view callback: counts its calls, and answers 7 for "second". */
static int view_second(void *ctx, const void *val, size_t len)
{
	(*(size_t *)ctx)++;
	return len == 6 && memcmp(val, "second", 6) == 0 ? 7 : -1;
}

static void t_put_get_delete(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	size_t n = 0;

	expect(kv, MAV_CF_CHUNKS, "k1", NULL);
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "k1", "v1", 0), 0);
	expect(kv, MAV_CF_CHUNKS, "k1", "v1");
	expect(kv, MAV_CF_OBJECTS, "k1", NULL); /* families are separate */
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "k1", "second", 0), 0);
	expect(kv, MAV_CF_CHUNKS, "k1", "second");
	/* Existence check without a copy. */
	assert_int_equal(mav_kv_get(kv, MAV_CF_CHUNKS, "k1", 2, NULL, &n), 0);
	assert_int_equal(n, 6);
	n = 0;
	assert_int_equal(mav_kv_get(kv, MAV_CF_CHUNKS, "k2", 2, NULL, NULL),
	                 MAV_ENOTFOUND);
	/* The value seen in place: fn's answer is the get's. */
	assert_int_equal(
	    mav_kv_get_view(kv, MAV_CF_CHUNKS, "k1", 2, view_second, &n), 7);
	assert_int_equal(n, 1);
	assert_int_equal(
	    mav_kv_get_view(kv, MAV_CF_CHUNKS, "k2", 2, view_second, &n),
	    MAV_ENOTFOUND);
	assert_int_equal(n, 1); /* not called */
	assert_int_equal(del(kv, MAV_CF_CHUNKS, "k1", 0), 0);
	expect(kv, MAV_CF_CHUNKS, "k1", NULL);
	assert_int_equal(del(kv, MAV_CF_CHUNKS, "never", 0), 0);
	/* Empty values are values. */
	assert_int_equal(put(kv, MAV_CF_META, "empty", "", MAV_KV_SYNC), 0);
	expect(kv, MAV_CF_META, "empty", "");
	assert_int_equal(mav_kv_flush(kv), 0);
	expect(kv, MAV_CF_META, "empty", "");
}

static void t_bad_arguments(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	struct mav_kv_batch *b;
	struct mav_kv_iter *it = (void *)1;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_COUNT, "k", 1, "v", 1),
	                 MAV_EINVAL);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_REFS, "k", 1, "v", 1), 0);
	assert_int_equal(mav_kv_write(kv, b, MAV_KV_SYNC | MAV_KV_NO_WAL),
	                 MAV_EINVAL);
	assert_int_equal(mav_kv_write(kv, b, 1u << 7), MAV_EINVAL);
	expect(kv, MAV_CF_REFS, "k", NULL);
	assert_int_equal(mav_kv_get(kv, MAV_CF_COUNT, "k", 1, NULL, NULL),
	                 MAV_EINVAL);
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_COUNT), MAV_EINVAL);
	assert_null(it);
	mav_kv_batch_free(b);
	mav_kv_batch_free(NULL);
	mav_kv_iter_free(NULL);
	mav_kv_close(NULL);
}

static void t_batch(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	struct mav_kv_batch *b;
	void *v = NULL;

	assert_int_equal(put(kv, MAV_CF_WT, "gone", "x", 0), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_CHUNKS, "c", 1, "1", 1), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_OBJECTS, "o", 1, "2", 1),
	                 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_REFS, "r", 1, "3", 1), 0);
	assert_int_equal(mav_kv_batch_del(b, MAV_CF_WT, "gone", 4), 0);
	/* Order matters: the later op on a key wins. */
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_META, "t", 1, "a", 1), 0);
	assert_int_equal(mav_kv_batch_del(b, MAV_CF_META, "t", 1), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_META, "u", 1, "a", 1), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_META, "u", 1, "bb", 2), 0);
	/* A value written in place: room for 100 bytes, 3 used. Room taken
	 * and not committed adds nothing. */
	assert_int_equal(mav_kv_batch_reserve(b, MAV_CF_META, "v", 1, 100, &v),
	                 0);
	assert_int_equal(mav_kv_batch_reserve(b, MAV_CF_META, "v", 1, 100, &v),
	                 0);
	memcpy(v, "ccc", 3);
	mav_kv_batch_commit(b, 3);
	assert_int_equal(mav_kv_batch_count(b), 9);
	assert_int_equal(mav_kv_batch_bytes(b), 3 * 2 + 4 + 2 + 1 + 2 + 3 + 4);
	assert_int_equal(mav_kv_write(kv, b, MAV_KV_SYNC), 0);
	expect(kv, MAV_CF_CHUNKS, "c", "1");
	expect(kv, MAV_CF_OBJECTS, "o", "2");
	expect(kv, MAV_CF_REFS, "r", "3");
	expect(kv, MAV_CF_WT, "gone", NULL);
	expect(kv, MAV_CF_META, "t", NULL);
	expect(kv, MAV_CF_META, "u", "bb");
	expect(kv, MAV_CF_META, "v", "ccc");
	mav_kv_batch_clear(b);
	assert_int_equal(mav_kv_batch_count(b), 0);
	assert_int_equal(mav_kv_batch_bytes(b), 0);
	assert_int_equal(mav_kv_write(kv, b, MAV_KV_SYNC), 0); /* empty */
	assert_int_equal(mav_kv_write(kv, b, MAV_KV_NO_WAL), 0);
	mav_kv_batch_free(b);
}

/* Writers keep keys "a" and "b" equal in every batch; readers must never see
 * them differ, neither through gets of one iterator's view nor in the end. */
struct race {
	struct mav_kv *kv;
	int rounds;
	int torn;
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct mav_kv_batch *b;
	char v[16];

	if (mav_kv_batch_new(&b) < 0)
		return NULL;
	for (int i = 0; i < r->rounds; i++) {
		int n = snprintf(v, sizeof(v), "%d", i);

		mav_kv_batch_clear(b);
		mav_kv_batch_put(b, MAV_CF_WT, "a", 1, v, n);
		mav_kv_batch_put(b, MAV_CF_WT, "b", 1, v, n);
		mav_kv_write(r->kv, b, 0);
	}
	mav_kv_batch_free(b);
	return NULL;
}

static void check_view(struct race *r)
{
	struct mav_kv_iter *it;
	const void *va, *vb;
	size_t la, lb, kl;

	if (mav_kv_iter_new(&it, r->kv, MAV_CF_WT) < 0)
		return;
	mav_kv_iter_seek(it, "", 0);
	if (!mav_kv_iter_valid(it))
		goto out;
	va = mav_kv_iter_value(it, &la);
	mav_kv_iter_next(it);
	if (!mav_kv_iter_valid(it) || !mav_kv_iter_key(it, &kl)) {
		r->torn++;
		goto out;
	}
	vb = mav_kv_iter_value(it, &lb);
	if (la != lb || memcmp(va, vb, la) != 0)
		r->torn++;
out:
	mav_kv_iter_free(it);
}

static void t_batch_atomic_concurrent(void **state)
{
	struct race r = {.kv = ((struct fx *)*state)->kv, .rounds = 3000};
	pthread_t w;

	assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
	for (int i = 0; i < 2000; i++)
		check_view(&r);
	pthread_join(w, NULL);
	check_view(&r);
	assert_int_equal(r.torn, 0);
	expect(r.kv, MAV_CF_WT, "a", "2999");
	expect(r.kv, MAV_CF_WT, "b", "2999");
}

static const struct {
	const char *k;
	size_t len;
} sorted_keys[] = {
    {"", 0},     {"\0", 1},   {"\0\0", 2}, {"a", 1},        {"a\0", 2},
    {"a\0b", 3}, {"a\0c", 3}, {"ab", 2},   {"abc", 3},      {"b", 1},
    {"\x7f", 1}, {"\x80", 1}, {"\xff", 1}, {"\xff\xff", 2},
};
#define NSORTED (sizeof(sorted_keys) / sizeof(sorted_keys[0]))

static void t_order_and_binary_keys(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	struct mav_kv_iter *it;
	size_t n = 0, klen, vlen;
	const void *k, *v;

	/* Insert in a scrambled order, value = index in sorted order. */
	for (size_t j = 0; j < NSORTED; j++) {
		size_t i = (j * 5 + 3) % NSORTED;
		unsigned char val = (unsigned char)i;

		assert_int_equal(put_raw(kv, MAV_CF_OBJECTS, sorted_keys[i].k,
		                         sorted_keys[i].len, &val, 1, 0),
		                 0);
	}
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "other", "cf", 0), 0);
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_OBJECTS), 0);
	assert_false(mav_kv_iter_valid(it)); /* nowhere until seek */
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it), n++) {
		assert_true(n < NSORTED);
		k = mav_kv_iter_key(it, &klen);
		v = mav_kv_iter_value(it, &vlen);
		assert_int_equal(klen, sorted_keys[n].len);
		if (klen)
			assert_memory_equal(k, sorted_keys[n].k, klen);
		assert_int_equal(vlen, 1);
		assert_int_equal(*(const unsigned char *)v, n);
	}
	assert_int_equal(n, NSORTED);
	assert_int_equal(mav_kv_iter_status(it), 0);
	mav_kv_iter_free(it);
	/* NUL bytes are part of the key. */
	for (size_t i = 0; i < NSORTED; i++) {
		void *got;
		size_t len;

		assert_int_equal(mav_kv_get(kv, MAV_CF_OBJECTS,
		                            sorted_keys[i].k,
		                            sorted_keys[i].len, &got, &len),
		                 0);
		assert_int_equal(*(unsigned char *)got, i);
		free(got);
	}
	assert_int_equal(mav_kv_get(kv, MAV_CF_OBJECTS, "a\0d", 3, NULL, NULL),
	                 MAV_ENOTFOUND);
}

static void expect_at(struct mav_kv_iter *it, const char *k, size_t klen)
{
	size_t n;
	const void *got;

	assert_true(mav_kv_iter_valid(it));
	got = mav_kv_iter_key(it, &n);
	assert_int_equal(n, klen);
	assert_memory_equal(got, k, klen);
}

static void t_seek(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	struct mav_kv_iter *it;

	for (size_t i = 0; i < NSORTED; i++)
		assert_int_equal(put_raw(kv, MAV_CF_REFS, sorted_keys[i].k,
		                         sorted_keys[i].len, "v", 1, 0),
		                 0);
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_REFS), 0);
	mav_kv_iter_seek(it, "ab", 2);
	expect_at(it, "ab", 2);
	mav_kv_iter_seek(it, "aa", 2); /* between keys: the next one */
	expect_at(it, "ab", 2);
	mav_kv_iter_seek(it, "a\0b\0", 4);
	expect_at(it, "a\0c", 3);
	mav_kv_iter_next(it);
	expect_at(it, "ab", 2);
	mav_kv_iter_seek(it, "\0", 1); /* seek backwards works too */
	expect_at(it, "\0", 1);
	mav_kv_iter_seek(it, "\xff\xff\x00", 3);
	assert_false(mav_kv_iter_valid(it));
	assert_int_equal(mav_kv_iter_status(it), 0);
	mav_kv_iter_seek_last(it);
	expect_at(it, sorted_keys[NSORTED - 1].k, sorted_keys[NSORTED - 1].len);
	mav_kv_iter_free(it);
	/* An empty family. */
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_WT), 0);
	mav_kv_iter_seek(it, "", 0);
	assert_false(mav_kv_iter_valid(it));
	mav_kv_iter_seek_last(it);
	assert_false(mav_kv_iter_valid(it));
	assert_int_equal(mav_kv_iter_status(it), 0);
	mav_kv_iter_free(it);
}

static void t_iter_isolation(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	struct mav_kv_iter *it;
	const char *want[] = {"k1", "k2", "k3"};
	size_t n = 0, len;
	const void *v;

	for (int i = 0; i < 3; i++)
		assert_int_equal(put(kv, MAV_CF_WT, want[i], "old", 0), 0);
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_WT), 0);
	assert_int_equal(put(kv, MAV_CF_WT, "k0", "new", 0), 0);
	assert_int_equal(put(kv, MAV_CF_WT, "k2", "new", 0), 0);
	assert_int_equal(del(kv, MAV_CF_WT, "k3", 0), 0);
	assert_int_equal(put(kv, MAV_CF_WT, "k4", "new", 0), 0);
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it), n++) {
		assert_true(n < 3);
		expect_at(it, want[n], 2);
		v = mav_kv_iter_value(it, &len);
		assert_int_equal(len, 3);
		assert_memory_equal(v, "old", 3);
		/* Writes during the walk do not show up either. */
		assert_int_equal(put(kv, MAV_CF_WT, "k25", "mid", 0), 0);
	}
	assert_int_equal(n, 3);
	mav_kv_iter_free(it);
	expect(kv, MAV_CF_WT, "k2", "new");
	expect(kv, MAV_CF_WT, "k3", NULL);
}

static void t_big_values(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	size_t len = 1 << 20, got_len;
	unsigned char *big = malloc(len);
	uint64_t s = 42;
	void *got;

	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (unsigned char)rng(&s);
	for (int i = 0; i < 4; i++) {
		big[0] = (unsigned char)i;
		assert_int_equal(put_raw(kv, MAV_CF_CHUNKS, &i, sizeof(i), big,
		                         len, MAV_KV_NO_WAL),
		                 0);
	}
	assert_int_equal(mav_kv_flush(kv), 0);
	for (int i = 3; i >= 0; i--) {
		big[0] = (unsigned char)i;
		assert_int_equal(mav_kv_get(kv, MAV_CF_CHUNKS, &i, sizeof(i),
		                            &got, &got_len),
		                 0);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, big, len);
		free(got);
	}
	free(big);
}

/* Many keys, random order, single-put batches and deletes: the mem backend's
 * leaves split and empty; everything must stay sorted and findable. Keys are
 * big-endian numbers, so memcmp order is numeric order; a model array holds
 * what each key should contain (-1: absent). */
static void t_many_keys(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	enum { N = 20000, RANGE = 4 * N };
	int64_t *model = malloc(RANGE * sizeof(*model));
	struct mav_kv_iter *it;
	uint64_t s = 7, key, x = 0;
	size_t klen, vlen, live = 0, n = 0;
	int64_t val;

	assert_non_null(model);
	for (int i = 0; i < RANGE; i++)
		model[i] = -1;
	for (int64_t i = 0; i < N; i++) {
		x = rng(&s) % RANGE;
		key = __builtin_bswap64(x);
		assert_int_equal(put_raw(kv, MAV_CF_OBJECTS, &key, 8, &i, 8, 0),
		                 0);
		model[x] = i;
	}
	for (x = 0; x < RANGE; x += 3) {
		key = __builtin_bswap64(x);
		assert_int_equal(del_raw(kv, MAV_CF_OBJECTS, &key, 8, 0), 0);
		model[x] = -1;
	}
	for (x = 0; x < RANGE; x++)
		live += model[x] >= 0;
	assert_int_equal(mav_kv_iter_new(&it, kv, MAV_CF_OBJECTS), 0);
	x = 0;
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it), n++, x++) {
		while (x < RANGE && model[x] < 0)
			x++;
		assert_true(x < RANGE);
		memcpy(&key, mav_kv_iter_key(it, &klen), 8);
		assert_int_equal(klen, 8);
		assert_int_equal(__builtin_bswap64(key), x);
		memcpy(&val, mav_kv_iter_value(it, &vlen), 8);
		assert_int_equal(vlen, 8);
		assert_int_equal(val, model[x]);
	}
	/* The greatest key, past many leaves and deletes. */
	for (x = RANGE - 1; model[x] < 0; x--)
		;
	mav_kv_iter_seek_last(it);
	assert_true(mav_kv_iter_valid(it));
	memcpy(&key, mav_kv_iter_key(it, &klen), 8);
	assert_int_equal(__builtin_bswap64(key), x);
	mav_kv_iter_free(it);
	assert_int_equal(n, live);
	assert_true(live > N / 2);
	/* Point lookups agree with the model, hits and misses. */
	for (x = 0; x < RANGE; x += 7) {
		void *got = NULL;
		size_t len;
		int rc;

		key = __builtin_bswap64(x);
		rc = mav_kv_get(kv, MAV_CF_OBJECTS, &key, 8, &got, &len);
		if (model[x] < 0) {
			assert_int_equal(rc, MAV_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_memory_equal(got, &model[x], 8);
		free(got);
	}
	free(model);
}

/* ---- RocksDB only ---- */

static void t_rocks_reopen(void **state)
{
	struct fx *f = *state;

	assert_int_equal(put(f->kv, MAV_CF_REFS, "b/main", "c1", MAV_KV_SYNC),
	                 0);
	assert_int_equal(put(f->kv, MAV_CF_CHUNKS, "nowal", "x", MAV_KV_NO_WAL),
	                 0);
	assert_int_equal(put(f->kv, MAV_CF_WT, "plain", "y", 0), 0);
	assert_int_equal(mav_kv_flush(f->kv), 0);
	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
	expect(f->kv, MAV_CF_REFS, "b/main", "c1");
	expect(f->kv, MAV_CF_CHUNKS, "nowal", "x");
	expect(f->kv, MAV_CF_WT, "plain", "y");
}

/* Bytes of the files of RocksDB's numbered kind ("<digits><suffix>":
 * ".log" for write-ahead logs, the info log being "LOG"; ".sst" for table
 * files) in dir; *count (if given): how many there are. */
static uint64_t numbered_files(const char *dir, const char *suffix, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t sum = 0;

	assert_non_null(d);
	if (count)
		*count = 0;
	while ((e = readdir(d))) {
		size_t k = strspn(e->d_name, "0123456789");
		char path[512];
		struct stat st;

		if (k == 0 || strcmp(e->d_name + k, suffix) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		sum += (uint64_t)st.st_size;
		if (count)
			(*count)++;
	}
	closedir(d);
	return sum;
}

/* The backend reuses its RocksDB batches: each write logs its own records
 * and no earlier write's, also around a batch too big to be kept. */
static void t_rocks_batches_reused(void **state)
{
	struct fx *f = *state;
	size_t big = 17u << 20;
	char *v = malloc(big + 1);
	uint64_t before = numbered_files(f->dir, ".log", NULL);
	char key[32];

	memset(v, 'v', big);
	v[4096] = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (i == 150) { /* one write too big to keep its batch */
			v[4096] = 'v';
			v[big] = 0;
			assert_int_equal(put(f->kv, MAV_CF_WT, "big", v, 0), 0);
			v[4096] = 0;
		}
		assert_int_equal(put(f->kv, MAV_CF_WT, key, v, 0), 0);
	}
	/* 300 x 4 KiB and 17 MiB, plus record headers; a batch that kept
	 * its old records would log 300 x 150 x 4 KiB. */
	assert_true(numbered_files(f->dir, ".log", NULL) - before <
	            big + (2u << 20));
	expect(f->kv, MAV_CF_WT, "k299", v);
	free(v);
}

static void t_rocks_not_repo(void **state)
{
	struct mav_kv *kv = (void *)1;
	char empty[64], missing[128];
	struct mav_kv_options sec = {.secondary = true};

	make_dir(empty);
	assert_int_equal(open_rocks(&kv, empty, false), MAV_ENOTREPO);
	assert_null(kv);
	assert_non_null(strstr(mav_error_message(), "no database"));
	assert_int_equal(mav_kv_open_rocksdb(&kv, empty, &sec), MAV_ENOTREPO);
	snprintf(missing, sizeof(missing), "%s/nope", empty);
	assert_int_equal(open_rocks(&kv, missing, false), MAV_ENOTREPO);
	remove_dir(empty);
	(void)state;
}

static void t_rocks_locked(void **state)
{
	struct fx *f = *state;
	struct mav_kv *kv = (void *)1;

	assert_int_equal(open_rocks(&kv, f->dir, false), MAV_ELOCKED);
	assert_null(kv);
	assert_non_null(strstr(mav_error_message(), "in use"));
	/* The first handle still works, and the lock goes with it. */
	assert_int_equal(put(f->kv, MAV_CF_META, "k", "v", MAV_KV_SYNC), 0);
	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
	expect(f->kv, MAV_CF_META, "k", "v");
}

static void t_rocks_secondary(void **state)
{
	struct fx *f = *state;
	struct mav_kv_options so = {.secondary = true};
	struct mav_kv *sec;

	assert_int_equal(put(f->kv, MAV_CF_REFS, "flushed", "1", 0), 0);
	assert_int_equal(mav_kv_flush(f->kv), 0);
	assert_int_equal(put(f->kv, MAV_CF_REFS, "logged", "2", 0), 0);
	assert_int_equal(mav_kv_open_rocksdb(&sec, f->dir, &so), 0);
	expect(sec, MAV_CF_REFS, "flushed", "1");
	expect(sec, MAV_CF_REFS, "logged", "2");
	assert_int_equal(put(sec, MAV_CF_REFS, "x", "y", 0), -EROFS);
	assert_int_equal(put(sec, MAV_CF_REFS, "x", "y", MAV_KV_SYNC), -EROFS);
	/* New primary writes appear after a catch-up (flush). */
	assert_int_equal(put(f->kv, MAV_CF_REFS, "later", "3", 0), 0);
	assert_int_equal(mav_kv_flush(sec), 0);
	expect(sec, MAV_CF_REFS, "later", "3");
	expect(f->kv, MAV_CF_REFS, "x", NULL);
	mav_kv_close(sec);
}

static void t_rocks_reserve(void **state)
{
	struct fx *f = *state;
	struct mav_kv_options o = {.reserve_bytes = UINT64_MAX / 4};
	struct mav_kv *kv;

	assert_int_equal(put(f->kv, MAV_CF_META, "before", "1", MAV_KV_SYNC),
	                 0);
	mav_kv_close(f->kv);
	f->kv = NULL;
	/* Opening and reading still work on a "full" disk. */
	assert_int_equal(mav_kv_open_rocksdb(&kv, f->dir, &o), 0);
	f->kv = kv;
	expect(kv, MAV_CF_META, "before", "1");
	assert_int_equal(put(kv, MAV_CF_META, "k", "v", 0), -ENOSPC);
	assert_non_null(strstr(mav_error_message(), "no space left"));
	assert_non_null(strstr(mav_error_message(), "reserve"));
	assert_int_equal(put(kv, MAV_CF_META, "k", "v", MAV_KV_SYNC), -ENOSPC);
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "k", "v", MAV_KV_NO_WAL),
	                 -ENOSPC);
	assert_int_equal(mav_kv_flush(kv), -ENOSPC);
	expect(kv, MAV_CF_META, "k", NULL);
	expect(kv, MAV_CF_CHUNKS, "k", NULL);
	/* A reserve the disk can hold lets writes through. */
	mav_kv_close(kv);
	o.reserve_bytes = 1 << 20;
	assert_int_equal(mav_kv_open_rocksdb(&f->kv, f->dir, &o), 0);
	assert_int_equal(put(f->kv, MAV_CF_META, "k", "v", 0), 0);
	expect(f->kv, MAV_CF_META, "k", "v");
}

/* room() answers whether a writer holding that much more may take it; data
 * so admitted may be stored into half the reserve, while other writes must
 * leave all of it. */
static void t_rocks_room(void **state)
{
	struct fx *f = *state;
	const size_t mib = 1u << 20, big = 40 * mib;
	struct mav_kv_options o = {0};
	char *val = malloc(big);
	struct statvfs sv;
	uint64_t free_bytes;

	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(statvfs(f->dir, &sv), 0);
	free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	assert_true(free_bytes > 256 * mib);
	/* 64 MiB above the reserve (less what the memtables hold). */
	o.reserve_bytes = free_bytes - 64 * mib;
	assert_int_equal(mav_kv_open_rocksdb(&f->kv, f->dir, &o), 0);
	assert_int_equal(mav_kv_room(f->kv, 16 * mib), 0);
	assert_int_equal(mav_kv_room(f->kv, 64 * mib), -ENOSPC);
	assert_non_null(strstr(mav_error_message(), "no space left"));
	memset(val, 'x', big);
	/* 40 MiB (80 counted: log and table) does not fit above the reserve,
	 * but does once it was admitted. */
	assert_int_equal(put_raw(f->kv, MAV_CF_CHUNKS, "a", 1, val, big, 0),
	                 -ENOSPC);
	assert_int_equal(
	    put_raw(f->kv, MAV_CF_CHUNKS, "a", 1, val, big, MAV_KV_ADMITTED),
	    0);
	free(val);
}

/* A removal (MAV_KV_FREES) may use half the reserve, as deletes may: on a
 * disk with less free than the reserve, it is how space is won back, while
 * other writes are refused. */
static void t_rocks_frees(void **state)
{
	struct fx *f = *state;
	struct mav_kv_options o = {0};
	struct statvfs sv;

	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(statvfs(f->dir, &sv), 0);
	/* 16 MiB more than is free: half of it is well under what is. */
	o.reserve_bytes = (uint64_t)sv.f_bavail * sv.f_frsize + (16u << 20);
	assert_true(o.reserve_bytes > 64u << 20);
	assert_int_equal(mav_kv_open_rocksdb(&f->kv, f->dir, &o), 0);
	assert_int_equal(put(f->kv, MAV_CF_WT, "k", "v", MAV_KV_SYNC), -ENOSPC);
	expect(f->kv, MAV_CF_WT, "k", NULL);
	assert_int_equal(
	    put(f->kv, MAV_CF_WT, "k", "v", MAV_KV_SYNC | MAV_KV_FREES), 0);
	expect(f->kv, MAV_CF_WT, "k", "v");
}

#define TABLE_ROUNDS 12 /* t_rocks_many_tables: flushes of every family */

/* t_rocks_probes_skip_cache: tables of PROBE_KEYS keys each, fewer than
 * the level-0 compaction trigger, so the tables stay as written. */
#define PROBE_TABLES 3
#define PROBE_KEYS   4000

/* Key of family cf written in round r of t_rocks_many_tables. */
static void table_key(char *k, size_t size, int cf, int r)
{
	snprintf(k, size, "k%d.%d", cf, r);
}

/* "tables": with 64 descriptors, read every key t_rocks_many_tables
 * wrote (more table files than that). */
static int child_tables(struct mav_kv *kv)
{
	int bad = 0;

	for (int r = 0; !bad && r < TABLE_ROUNDS; r++)
		for (int cf = 0; !bad && cf < MAV_CF_COUNT; cf++) {
			char k[32];
			void *v = NULL;
			size_t len = 0;

			table_key(k, sizeof(k), cf, r);
			bad = mav_kv_get(kv, cf, k, strlen(k), &v, &len) != 0 ||
			      len != strlen(k) || memcmp(v, k, len) != 0;
			free(v);
		}
	if (bad)
		fprintf(stderr, "many tables: %s\n", mav_error_message());
	return bad ? 3 : 0;
}

/* The same binary, run as a child process: "crash" writes and dies without
 * closing the database; "lock" tries to open a database held by its
 * parent; "tables" reads with 64 descriptors (child_tables); "nofile"
 * opens with a soft descriptor limit of 32 under a higher hard one, which
 * the open raises to the hard one. Exit status 0 means the child saw what
 * it expected. */
static int child_main(const char *mode, const char *dir)
{
	bool tables = strcmp(mode, "tables") == 0,
	     nofile = strcmp(mode, "nofile") == 0;
	struct rlimit rl, want = {64, 64};
	rlim_t raised = 0; /* nofile: the soft limit the open leaves */
	struct mav_kv *kv;
	int rc;

	if (tables || nofile) {
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max <= 64)
			return 4;
		raised = rl.rlim_max < (1u << 20) ? rl.rlim_max : 1u << 20;
		if (nofile)
			want = (struct rlimit){32, rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &want) != 0)
			return 4;
	}
	rc = open_rocks(&kv, dir, false);
	if (strcmp(mode, "lock") == 0)
		return rc == MAV_ELOCKED ? 0 : 1;
	if (rc < 0)
		return 2;
	if (nofile) {
		rc = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == raised
		         ? 0
		         : 3;
		mav_kv_close(kv);
		return rc;
	}
	if (tables) {
		rc = child_tables(kv);
		mav_kv_close(kv);
		return rc;
	}
	if (put(kv, MAV_CF_CHUNKS, "flushed", "a", MAV_KV_NO_WAL) < 0 ||
	    mav_kv_flush(kv) < 0 ||
	    put(kv, MAV_CF_CHUNKS, "unflushed", "b", MAV_KV_NO_WAL) < 0 ||
	    put(kv, MAV_CF_REFS, "logged", "c", 0) < 0)
		return 3;
	_exit(0); /* no close: memtables die with the process */
}

static int run_child(const char *mode, const char *dir)
{
	char *argv[] = {"test_kv", "--child", (char *)mode, (char *)dir, NULL};
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void t_rocks_process_crash(void **state)
{
	struct fx *f = *state;

	/* Another process is refused while we hold the database. */
	assert_int_equal(run_child("lock", f->dir), 0);
	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(run_child("crash", f->dir), 0);
	assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
	expect(f->kv, MAV_CF_CHUNKS, "flushed", "a");
	expect(f->kv, MAV_CF_REFS, "logged", "c");
	/* This is the case mav_kv_flush() exists for. */
	expect(f->kv, MAV_CF_CHUNKS, "unflushed", NULL);
}

/* Every open starts a new log; Debian's RocksDB kept each empty one, so a
 * repository gained a file per command. Opens now drop the empty ones and
 * keep what a log holds. */
static void t_rocks_reopen_logs(void **state)
{
	struct fx *f = *state;
	int n = 0;

	assert_int_equal(put(f->kv, MAV_CF_REFS, "kept", "1", MAV_KV_SYNC), 0);
	for (int i = 0; i < 12; i++) {
		mav_kv_close(f->kv);
		f->kv = NULL;
		assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
	}
	numbered_files(f->dir, ".log", &n);
	assert_true(n <= 2);
	expect(f->kv, MAV_CF_REFS, "kept", "1");
}

/* A repository of more table files than the process may open files
 * still opens and reads: RocksDB's default kept every table file open. 72
 * of them are made with compactions held off (64 MiB above a reserve), then
 * a child whose limit is 64 descriptors reads every key. An open also
 * raises a soft descriptor limit to the hard one. */
static void t_rocks_many_tables(void **state)
{
	struct fx *f = *state;
	struct mav_kv_options o = {0};
	struct statvfs sv;
	int tables = 0;

	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(statvfs(f->dir, &sv), 0);
	o.reserve_bytes = (uint64_t)sv.f_bavail * sv.f_frsize - (64u << 20);
	assert_int_equal(mav_kv_open_rocksdb(&f->kv, f->dir, &o), 0);
	for (int r = 0; r < TABLE_ROUNDS; r++) {
		for (int cf = 0; cf < MAV_CF_COUNT; cf++) {
			char k[32];

			table_key(k, sizeof(k), cf, r);
			assert_int_equal(put(f->kv, cf, k, k, MAV_KV_NO_WAL),
			                 0);
		}
		assert_int_equal(mav_kv_flush(f->kv), 0);
	}
	mav_kv_close(f->kv);
	f->kv = NULL;
	numbered_files(f->dir, ".sst", &tables);
	assert_true(tables >= TABLE_ROUNDS * MAV_CF_COUNT);
	assert_int_equal(run_child("tables", f->dir), 0);
	assert_int_equal(run_child("nofile", f->dir), 0);
	assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
}

/* Key i of set `set` in t_rocks_probes_skip_cache: 32 bytes spread like
 * chunk ids. */
static void probe_key(uint8_t k[32], uint32_t set, uint32_t i)
{
	uint64_t x = ((uint64_t)set << 32 | i) * 0x9e3779b97f4a7c15ull + 1;

	for (int b = 0; b < 32; b++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k[b] = (uint8_t)x;
	}
}

static int ignore_view(void *ctx, const void *val, size_t len)
{
	(void)ctx;
	(void)val;
	(void)len;
	return 0;
}

/* Gets of PROBE_KEYS keys of `set`, none stored; returns the cache's
 * usage after them. */
static uint64_t ask_absent(struct mav_kv *kv, uint32_t set,
                           mav_kv_lookup_fn get)
{
	uint8_t k[32];

	for (uint32_t i = 0; i < PROBE_KEYS; i++) {
		probe_key(k, set, i);
		assert_int_equal(
		    get(kv, MAV_CF_CHUNK_IDS, k, sizeof(k), ignore_view, NULL),
		    MAV_ENOTFOUND);
	}
	return mav_kv_cache_bytes(kv);
}

/* A writer asks "stored already?" of every new chunk. Such probes keep
 * nothing in the block cache (each bloom filter false positive used to
 * cache a data block, so an import's memory grew with the store), while a
 * get that misses in the same way does. */
static void t_rocks_probes_skip_cache(void **state)
{
	struct fx *f = *state;
	uint64_t warm, probed, got;
	uint8_t k[32], v[8] = {0};

	for (uint32_t t = 0; t < PROBE_TABLES; t++) {
		struct mav_kv_batch *b;

		assert_int_equal(mav_kv_batch_new(&b), 0);
		for (uint32_t i = 0; i < PROBE_KEYS; i++) {
			probe_key(k, t, i);
			assert_int_equal(mav_kv_batch_put(b, MAV_CF_CHUNK_IDS,
			                                  k, sizeof(k), v,
			                                  sizeof(v)),
			                 0);
		}
		assert_int_equal(mav_kv_write(f->kv, b, MAV_KV_NO_WAL), 0);
		mav_kv_batch_free(b);
		assert_int_equal(mav_kv_flush(f->kv), 0);
	}
	mav_kv_close(f->kv);
	f->kv = NULL;
	assert_int_equal(open_rocks(&f->kv, f->dir, false), 0);
	/* The first pass loads index and filter blocks, which stay. */
	warm = ask_absent(f->kv, 100, mav_kv_probe_view);
	probed = ask_absent(f->kv, 101, mav_kv_probe_view);
	assert_int_equal(probed, warm);
	/* A get with no value asked is a probe too. */
	for (uint32_t i = 0; i < PROBE_KEYS; i++) {
		probe_key(k, 102, i);
		assert_int_equal(mav_kv_get(f->kv, MAV_CF_CHUNK_IDS, k,
		                            sizeof(k), NULL, NULL),
		                 MAV_ENOTFOUND);
	}
	assert_int_equal(mav_kv_cache_bytes(f->kv), warm);
	got = ask_absent(f->kv, 103, mav_kv_get_view);
	assert_true(got > probed + 16 * 1024);
	/* A key that is there is found by a probe as by a get. */
	probe_key(k, 1, 7);
	assert_int_equal(mav_kv_probe_view(f->kv, MAV_CF_CHUNK_IDS, k,
	                                   sizeof(k), ignore_view, NULL),
	                 0);
}

/* ---- fault wrapper only ---- */

static void t_fault_nth_call(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;
	uint64_t base = mav_kv_fault_calls(kv);

	mav_kv_fault_fail_after(kv, 3, -EIO);
	expect(kv, MAV_CF_META, "a", NULL);                     /* 1 */
	assert_int_equal(put(kv, MAV_CF_META, "a", "1", 0), 0); /* 2 */
	assert_int_equal(put(kv, MAV_CF_META, "b", "2", 0), -EIO);
	assert_non_null(strstr(mav_error_message(), "injected"));
	assert_int_equal(mav_kv_get(kv, MAV_CF_META, "a", 1, NULL, NULL), -EIO);
	assert_int_equal(mav_kv_flush(kv), -EIO);
	assert_int_equal(mav_kv_fault_calls(kv) - base, 5);
	mav_kv_fault_clear(kv);
	expect(kv, MAV_CF_META, "a", "1");
	expect(kv, MAV_CF_META, "b", NULL); /* the failed write did nothing */
	assert_int_equal(mav_kv_flush(kv), 0);
	/* Other codes and disarming with n = 0. */
	mav_kv_fault_fail_after(kv, 1, -ENOSPC);
	assert_int_equal(put(kv, MAV_CF_META, "c", "3", 0), -ENOSPC);
	mav_kv_fault_fail_after(kv, 0, -EIO);
	assert_int_equal(put(kv, MAV_CF_META, "c", "3", 0), 0);
	assert_int_equal(mav_kv_fault_calls(kv) - base, 10);
}

static void t_fault_crash(void **state)
{
	struct mav_kv *kv = ((struct fx *)*state)->kv;

	/* Synced writes survive; later unsynced ones do not. */
	assert_int_equal(put(kv, MAV_CF_REFS, "k", "1", MAV_KV_SYNC), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "k", "2", 0), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "new", "x", 0), 0);
	assert_int_equal(del(kv, MAV_CF_REFS, "k", MAV_KV_NO_WAL), 0);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_REFS, "k", "1");
	expect(kv, MAV_CF_REFS, "new", NULL);
	/* A sync makes earlier logged writes durable too. */
	assert_int_equal(put(kv, MAV_CF_REFS, "a", "1", 0), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "b", "1", MAV_KV_SYNC), 0);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_REFS, "a", "1");
	expect(kv, MAV_CF_REFS, "b", "1");
	/* ...but not NO_WAL writes: only a flush keeps those. */
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "c1", "x", MAV_KV_NO_WAL), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "a", "2", 0), 0);
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "c2", "y", MAV_KV_NO_WAL), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "b", "2", MAV_KV_SYNC), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "a", "3", 0), 0);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_CHUNKS, "c1", NULL);
	expect(kv, MAV_CF_CHUNKS, "c2", NULL);
	expect(kv, MAV_CF_REFS, "a", "2");
	expect(kv, MAV_CF_REFS, "b", "2");
	/* A NO_WAL value overwritten by a synced logged write: the log wins. */
	assert_int_equal(put(kv, MAV_CF_WT, "w", "nowal", MAV_KV_NO_WAL), 0);
	assert_int_equal(put(kv, MAV_CF_WT, "w", "wal", MAV_KV_SYNC), 0);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_WT, "w", "wal");
	/* A flush keeps everything before it. */
	assert_int_equal(put(kv, MAV_CF_CHUNKS, "c3", "z", MAV_KV_NO_WAL), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "a", "4", 0), 0);
	assert_int_equal(mav_kv_flush(kv), 0);
	assert_int_equal(put(kv, MAV_CF_REFS, "a", "5", 0), 0);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_CHUNKS, "c3", "z");
	expect(kv, MAV_CF_REFS, "a", "4");
	/* A crash with nothing pending changes nothing. */
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect(kv, MAV_CF_REFS, "a", "4");
	assert_int_equal(mav_kv_fault_crash(NULL), MAV_EINVAL);
}

#define SUITE(setup)                                                           \
	cmocka_unit_test_setup_teardown(t_put_get_delete, setup, teardown),    \
	    cmocka_unit_test_setup_teardown(t_bad_arguments, setup, teardown), \
	    cmocka_unit_test_setup_teardown(t_batch, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(t_batch_atomic_concurrent, setup,  \
	                                    teardown),                         \
	    cmocka_unit_test_setup_teardown(t_order_and_binary_keys, setup,    \
	                                    teardown),                         \
	    cmocka_unit_test_setup_teardown(t_seek, setup, teardown),          \
	    cmocka_unit_test_setup_teardown(t_iter_isolation, setup,           \
	                                    teardown),                         \
	    cmocka_unit_test_setup_teardown(t_big_values, setup, teardown),    \
	    cmocka_unit_test_setup_teardown(t_many_keys, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    SUITE(setup_mem),
	    SUITE(setup_rocks),
	    SUITE(setup_fault),
	    cmocka_unit_test_setup_teardown(t_rocks_reopen, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_batches_reused, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_not_repo, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_locked, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_secondary, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_room, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_frees, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_reserve, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_reopen_logs, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_many_tables, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_probes_skip_cache,
	                                    setup_rocks, teardown),
	    cmocka_unit_test_setup_teardown(t_rocks_process_crash, setup_rocks,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_fault_nth_call, setup_fault,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(t_fault_crash, setup_fault,
	                                    teardown),
	};

	if (argc == 4 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], argv[3]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
