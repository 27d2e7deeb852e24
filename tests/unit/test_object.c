/* test_object.c - blob, tree and commit encodings: round trips, canonical
 * bytes, and refusal of every malformed input we can think of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>

#include <cmocka.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/object.h"

static mav_id id_of(unsigned v)
{
	mav_id id;

	mav_id_hash(&id, &v, sizeof(v));
	return id;
}

/* Decoding every proper prefix of a valid encoding must fail cleanly; each
 * prefix is a fresh allocation of exactly that size so ASan sees any
 * overread. */
typedef int (*decode_fn)(void **out, const void *buf, size_t len);

static int dec_blob(void **out, const void *buf, size_t len)
{
	return mav_blob_decode((struct mav_blob **)out, buf, len);
}

static int dec_tree(void **out, const void *buf, size_t len)
{
	return mav_tree_decode((struct mav_tree **)out, buf, len);
}

static int dec_commit(void **out, const void *buf, size_t len)
{
	return mav_commit_decode((struct mav_commit **)out, buf, len);
}

static void check_truncations(decode_fn dec, const uint8_t *enc, size_t len)
{
	void *obj;

	for (size_t n = 0; n < len; n++) {
		uint8_t *p = malloc(n ? n : 1);

		memcpy(p, enc, n);
		obj = (void *)1;
		assert_int_equal(dec(&obj, p, n), MAV_ECORRUPT);
		assert_null(obj);
		free(p);
	}
	/* One byte too many is corruption too (canonical encodings). */
	uint8_t *p = malloc(len + 1);
	memcpy(p, enc, len);
	p[len] = 0;
	assert_int_equal(dec(&obj, p, len + 1), MAV_ECORRUPT);
	free(p);
}

/* ---- blobs ---- */

static void test_blob_round_trip(void **state)
{
	mav_id ids[5];
	uint32_t lens[5] = {100, 65536, 1, 300000, 7};
	uint8_t *enc, *enc2;
	size_t len, len2;
	struct mav_blob *b;

	(void)state;
	for (int i = 0; i < 5; i++)
		ids[i] = id_of(i);
	assert_int_equal(mav_blob_encode(&enc, &len, ids, lens, 5), 0);
	assert_int_equal(len, 4 + 1 + 8 + 4 + 5 * 36);
	assert_int_equal(mav_object_kind(enc, len), 'B');
	assert_int_equal(mav_blob_encode(&enc2, &len2, ids, lens, 5), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(enc, enc2, len);
	assert_int_equal(mav_blob_decode(&b, enc, len), 0);
	assert_int_equal(b->size, 100 + 65536 + 1 + 300000 + 7);
	assert_int_equal(b->n, 5);
	for (int i = 0; i < 5; i++)
		assert_memory_equal(b->ids[i].b, ids[i].b, MAV_ID_LEN);
	assert_int_equal(b->ends[0], 100);
	assert_int_equal(b->ends[4], b->size);
	check_truncations(dec_blob, enc, len);
	mav_blob_free(b);
	mav_blob_free(NULL);
	free(enc);
	free(enc2);
}

static void test_blob_locate(void **state)
{
	mav_id ids[4] = {id_of(1), id_of(2), id_of(3), id_of(4)};
	uint32_t lens[4] = {10, 1, 20, 5}; /* ends 10 11 31 36 */
	uint8_t *enc;
	size_t len;
	struct mav_blob *b;

	(void)state;
	assert_int_equal(mav_blob_encode(&enc, &len, ids, lens, 4), 0);
	assert_int_equal(mav_blob_decode(&b, enc, len), 0);
	assert_int_equal(mav_blob_locate(b, 0), 0);
	assert_int_equal(mav_blob_locate(b, 9), 0);
	assert_int_equal(mav_blob_locate(b, 10), 1);
	assert_int_equal(mav_blob_locate(b, 11), 2);
	assert_int_equal(mav_blob_locate(b, 30), 2);
	assert_int_equal(mav_blob_locate(b, 31), 3);
	assert_int_equal(mav_blob_locate(b, 35), 3);
	assert_int_equal(mav_blob_locate(b, 36), -1);
	assert_int_equal(mav_blob_locate(b, UINT64_MAX), -1);
	assert_int_equal(mav_blob_chunk_start(b, 0), 0);
	assert_int_equal(mav_blob_chunk_start(b, 1), 10);
	assert_int_equal(mav_blob_chunk_start(b, 2), 11);
	assert_int_equal(mav_blob_chunk_start(b, 3), 31);
	assert_int_equal(mav_blob_chunk_start(b, 4), 36);
	/* Exhaustive: each offset lies inside the chunk it is located in. */
	for (uint64_t off = 0; off < b->size; off++) {
		int64_t i = mav_blob_locate(b, off);

		assert_true(i >= 0 && i < 4);
		assert_true(mav_blob_chunk_start(b, (uint32_t)i) <= off);
		assert_true(off < b->ends[i]);
	}
	mav_blob_free(b);
	free(enc);
}

static void test_blob_empty_and_invalid(void **state)
{
	mav_id ids[2] = {id_of(1), id_of(2)};
	uint32_t lens[2] = {5, 0};
	uint8_t *enc;
	size_t len;
	struct mav_blob *b;

	(void)state;
	assert_int_equal(mav_blob_encode(&enc, &len, NULL, NULL, 0), 0);
	assert_int_equal(mav_blob_decode(&b, enc, len), 0);
	assert_int_equal(b->n, 0);
	assert_int_equal(b->size, 0);
	assert_int_equal(mav_blob_locate(b, 0), -1);
	mav_blob_free(b);
	free(enc);
	assert_int_equal(mav_blob_encode(&enc, &len, ids, lens, 2), MAV_EINVAL);

	lens[1] = 6;
	assert_int_equal(mav_blob_encode(&enc, &len, ids, lens, 2), 0);
	enc[5] ^= 1; /* size 11 -> 10: lengths no longer add up */
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_ECORRUPT);
	assert_true(strstr(mav_error_message(), "blob") != NULL);
	enc[5] ^= 1;
	mav_store_u32(enc + 13, 0xffffffff); /* count: allocation bomb */
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_ECORRUPT);
	mav_store_u32(enc + 13, 2);
	memset(enc + 17 + 32, 0, 4); /* first chunk length 0 */
	enc[5] = 6;                  /* size 6 matches the sum */
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_ECORRUPT);
	enc[4] = 2;
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_EVERSION);
	enc[4] = 0;
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_ECORRUPT);
	enc[4] = 1;
	enc[0] = 'X';
	assert_int_equal(mav_blob_decode(&b, enc, len), MAV_ECORRUPT);
	assert_int_equal(mav_object_kind(enc, len), 0);
	free(enc);
}

/* ---- paged blobs ---- */

static int dec_blob_index(void **obj, const void *buf, size_t len)
{
	return mav_blob_index_decode((struct mav_blob_index **)obj, buf, len);
}

static void test_blob_index_round_trip(void **state)
{
	struct mav_blob_page p[3] = {
	    {.id = id_of(1), .n = 600, .size = 4000000},
	    {.id = id_of(2), .n = 1, .size = 1},
	    {.id = id_of(3), .n = 2048, .size = 1 << 27}};
	struct mav_blob_index *x;
	uint8_t *enc;
	size_t len;

	(void)state;
	assert_int_equal(mav_blob_index_encode(&enc, &len, p, 3), 0);
	assert_int_equal(len, 4 + 1 + 8 + 4 + 4 + 3 * 44);
	assert_int_equal(mav_object_kind(enc, len), 'P');
	assert_int_equal(mav_blob_index_decode(&x, enc, len), 0);
	assert_int_equal(x->size, 4000000 + 1 + (1 << 27));
	assert_int_equal(x->n, 600 + 1 + 2048);
	assert_int_equal(x->npages, 3);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(x->p[i].id.b, p[i].id.b, MAV_ID_LEN);
		assert_int_equal(x->p[i].n, p[i].n);
		assert_int_equal(x->p[i].size, p[i].size);
	}
	check_truncations(dec_blob_index, enc, len);
	mav_blob_index_free(x);
	/* What the decoder refuses. */
	enc[5] ^= 1; /* size: pages no longer add up */
	assert_int_equal(mav_blob_index_decode(&x, enc, len), MAV_ECORRUPT);
	enc[5] ^= 1;
	enc[13] ^= 1; /* chunk count */
	assert_int_equal(mav_blob_index_decode(&x, enc, len), MAV_ECORRUPT);
	enc[13] ^= 1;
	mav_store_u32(enc + 17, 0xffffffff); /* page count: allocation bomb */
	assert_int_equal(mav_blob_index_decode(&x, enc, len), MAV_ECORRUPT);
	free(enc);
	/* What the encoder refuses: no pages, an empty page, fewer bytes
	 * than chunks. */
	assert_int_equal(mav_blob_index_encode(&enc, &len, p, 0), MAV_EINVAL);
	p[1].n = 0;
	assert_int_equal(mav_blob_index_encode(&enc, &len, p, 3), MAV_EINVAL);
	p[1].n = 2;
	assert_int_equal(mav_blob_index_encode(&enc, &len, p, 3), MAV_EINVAL);
}

/* Pages end where the chunk ids say, between 64 and 2048 chunks, so an
 * edit that changes a few ids in the middle leaves the pages before and
 * after it as they were. */
static void test_blob_pages_follow_ids(void **state)
{
	enum { N = 20000 };
	mav_id *ids = malloc(N * sizeof(*ids));
	uint32_t ends[64], ends2[64], n1 = 0, n2 = 0, from;
	uint32_t same_before = 0, same_after = 0;

	(void)state;
	for (uint32_t i = 0; i < N; i++)
		ids[i] = id_of((int)i);
	for (from = 0; from < N; n1++) {
		uint32_t end = mav_blob_page_end(ids, from, N);

		assert_true(n1 < 64);
		assert_true(end > from && end - from <= MAV_BLOB_FLAT_MAX);
		assert_true(end == N || end - from >= 64);
		ends[n1] = from = end;
	}
	assert_true(n1 > 4); /* 20000 chunks make several pages */
	/* Replace three chunks in the middle by five others. */
	memmove(ids + N / 2 + 5, ids + N / 2 + 3,
	        (N - N / 2 - 5) * sizeof(*ids));
	for (int i = 0; i < 5; i++)
		ids[N / 2 + i] = id_of(N + i);
	for (from = 0; from < N; n2++)
		ends2[n2] = from = mav_blob_page_end(ids, from, N);
	for (uint32_t i = 0; i < n1 && i < n2 && ends[i] == ends2[i]; i++)
		same_before++;
	for (uint32_t i = 1;
	     i < n1 && i < n2 && ends[n1 - 1 - i] + 2 == ends2[n2 - 1 - i]; i++)
		same_after++;
	/* All pages but the edited one or two keep their boundaries. */
	assert_true(same_before + same_after + 2 >= n1);
	free(ids);
}

/* ---- trees ---- */

static struct mav_xattr xa[2] = {
    {"user.mav.license", (uint8_t *)"CC-BY-4.0", 9},
    {"user.mav.source", (uint8_t *)"camera", 6},
};

static void sample_entries(struct mav_entry e[4])
{
	memset(e, 0, 4 * sizeof(*e));
	e[0] = (struct mav_entry){.name = "a.png",
	                          .type = MAV_T_FILE,
	                          .mode = 0644,
	                          .uid = 1000,
	                          .gid = 1000,
	                          .size = 12345,
	                          .mtime_ns = -5,
	                          .nlink = 2,
	                          .link_id = 77,
	                          .id = id_of(1),
	                          .nxattrs = 2,
	                          .xattrs = xa};
	e[1] = (struct mav_entry){.name = "b",
	                          .type = MAV_T_DIR,
	                          .mode = 0755,
	                          .nlink = 1,
	                          .id = id_of(2)};
	e[2] = (struct mav_entry){.name = "link",
	                          .type = MAV_T_SYMLINK,
	                          .mode = 0777,
	                          .size = 5,
	                          .target = "a.png",
	                          .nlink = 1};
	e[3] = (struct mav_entry){.name = "\xc3\xa9t\xc3\xa9", /* UTF-8 */
	                          .type = MAV_T_FILE,
	                          .mode = 04755,
	                          .mtime_ns = 1700000000123456789ll,
	                          .nlink = 1,
	                          .id = id_of(3)};
}

static void assert_entry_equal(const struct mav_entry *a,
                               const struct mav_entry *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->nlink, b->nlink);
	assert_int_equal(a->link_id, b->link_id);
	assert_memory_equal(a->id.b, b->id.b, MAV_ID_LEN);
	if (a->target || b->target)
		assert_string_equal(a->target, b->target);
	assert_int_equal(a->nxattrs, b->nxattrs);
	for (uint32_t i = 0; i < a->nxattrs; i++) {
		assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
		assert_int_equal(a->xattrs[i].len, b->xattrs[i].len);
		assert_memory_equal(a->xattrs[i].value, b->xattrs[i].value,
		                    a->xattrs[i].len);
	}
}

static bool inside(const void *p, const void *block, size_t size)
{
	return (const uint8_t *)p >= (const uint8_t *)block &&
	       (const uint8_t *)p < (const uint8_t *)block + size;
}

static void test_tree_round_trip(void **state)
{
	struct mav_entry e[4];
	struct mav_tree *t;
	uint8_t *enc, *enc2;
	size_t len, len2, block;
	mav_id id1, id2;

	(void)state;
	sample_entries(e);
	assert_int_equal(mav_tree_encode(&enc, &len, e, 4), 0);
	assert_int_equal(mav_object_kind(enc, len), 'T');
	assert_int_equal(mav_tree_decode(&t, enc, len), 0);
	assert_int_equal(t->n, 4);
	for (int i = 0; i < 4; i++)
		assert_entry_equal(&t->e[i], &e[i]);
	assert_null(t->e[0].target);
	/* One allocation: every array and string lives in the block. */
	block = malloc_usable_size(t);
	for (int i = 0; i < 4; i++) {
		assert_true(inside(t->e[i].name, t, block));
		for (uint32_t j = 0; j < t->e[i].nxattrs; j++)
			assert_true(inside(t->e[i].xattrs[j].value, t, block));
	}
	assert_true(inside(t->e[2].target, t, block));
	/* Canonical: decode -> encode gives the same bytes and id. */
	assert_int_equal(mav_tree_encode(&enc2, &len2, t->e, t->n), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(enc, enc2, len);
	mav_id_hash(&id1, enc, len);
	mav_id_hash(&id2, enc2, len2);
	assert_memory_equal(id1.b, id2.b, MAV_ID_LEN);
	assert_int_equal(mav_tree_find(t, "a.png"), 0);
	assert_int_equal(mav_tree_find(t, "link"), 2);
	assert_int_equal(mav_tree_find(t, "\xc3\xa9t\xc3\xa9"), 3);
	assert_int_equal(mav_tree_find(t, "a"), -1);
	assert_int_equal(mav_tree_find(t, "zzz"), -1);
	assert_int_equal(mav_tree_find(t, ""), -1);
	check_truncations(dec_tree, enc, len);
	mav_tree_free(t);
	mav_tree_free(NULL);
	free(enc);
	free(enc2);
}

static void test_tree_empty(void **state)
{
	struct mav_tree *t;
	uint8_t *enc;
	size_t len;

	(void)state;
	assert_int_equal(mav_tree_encode(&enc, &len, NULL, 0), 0);
	assert_int_equal(len, 9);
	assert_int_equal(mav_tree_decode(&t, enc, len), 0);
	assert_int_equal(t->n, 0);
	assert_int_equal(mav_tree_find(t, "x"), -1);
	mav_tree_free(t);
	free(enc);
}

static void test_names(void **state)
{
	char long_name[300];

	(void)state;
	memset(long_name, 'x', sizeof(long_name));
	long_name[255] = '\0';
	assert_true(mav_name_valid(long_name));
	long_name[255] = 'x';
	long_name[256] = '\0';
	assert_false(mav_name_valid(long_name));
	assert_true(mav_name_valid("a"));
	assert_true(mav_name_valid("..."));
	assert_true(mav_name_valid(".hidden"));
	assert_true(mav_name_valid("with space\n\t"));
	assert_false(mav_name_valid(""));
	assert_false(mav_name_valid("."));
	assert_false(mav_name_valid(".."));
	assert_false(mav_name_valid("a/b"));
	assert_false(mav_name_valid("/"));
	assert_false(mav_name_valid(NULL));
}

static void expect_tree_einval(struct mav_entry *e, uint32_t n)
{
	uint8_t *enc = NULL;
	size_t len;

	assert_int_equal(mav_tree_encode(&enc, &len, e, n), MAV_EINVAL);
	assert_null(enc);
}

static void test_tree_encode_rejects(void **state)
{
	struct mav_entry e[4], s;
	struct mav_xattr bad[2];

	(void)state;
	sample_entries(e);
	s = e[0], e[0] = e[1], e[1] = s; /* unsorted */
	expect_tree_einval(e, 4);
	sample_entries(e);
	e[1].name = "a.png"; /* duplicate */
	expect_tree_einval(e, 4);
	sample_entries(e);
	e[0].name = "a/b";
	expect_tree_einval(e, 1);
	e[0].name = "..";
	expect_tree_einval(e, 1);
	sample_entries(e);
	e[0].type = MAV_T_SOCK + 1; /* unknown */
	expect_tree_einval(e, 1);
	e[0].type = MAV_T_FIFO; /* a file's size and blob on a pipe */
	expect_tree_einval(e, 1);
	sample_entries(e);
	e[0].mode = 0100644; /* file type bits do not belong in mode */
	expect_tree_einval(e, 1);
	sample_entries(e);
	e[0].target = "x"; /* target on a file */
	expect_tree_einval(e, 1);
	sample_entries(e);
	e[1].size = 4096; /* dir size */
	expect_tree_einval(&e[1], 1);
	sample_entries(e);
	e[2].id = id_of(9); /* symlink with content */
	expect_tree_einval(&e[2], 1);
	e[2].id = (mav_id){{0}};
	e[2].target = NULL;
	expect_tree_einval(&e[2], 1);
	e[2].target = "ab"; /* size 5 != 2 */
	expect_tree_einval(&e[2], 1);
	sample_entries(e);
	bad[0] = xa[1], bad[1] = xa[0]; /* xattrs unsorted */
	e[0].xattrs = bad;
	expect_tree_einval(e, 1);
	bad[0] = xa[0], bad[1] = xa[0]; /* duplicate */
	expect_tree_einval(e, 1);
	bad[1].name = "";
	expect_tree_einval(e, 1);
	bad[1] = xa[1];
	bad[1].len = 65537;
	expect_tree_einval(e, 1);
	assert_true(strstr(mav_error_message(), "xattr") != NULL);
}

/* Decode an encoding after `patch` changed it; expect rc. */
static void expect_tree_decode(const uint8_t *enc, size_t len, size_t at,
                               const void *bytes, size_t n, int rc)
{
	uint8_t *p = malloc(len);
	struct mav_tree *t = (void *)1;

	memcpy(p, enc, len);
	memcpy(p + at, bytes, n);
	assert_int_equal(mav_tree_decode(&t, p, len), rc);
	if (rc == 0)
		assert_int_equal(t->n, 3);
	else
		assert_null(t);
	mav_tree_free(rc == 0 ? t : NULL);
	free(p);
}

static void test_tree_decode_rejects(void **state)
{
	struct mav_entry e[3] = {
	    {.name = "a", .type = MAV_T_FILE, .nlink = 1},
	    {.name = "b", .type = MAV_T_FILE, .nlink = 1},
	    {.name = "c", .type = MAV_T_SYMLINK, .size = 1, .target = "t"},
	};
	struct mav_xattr x[2] = {{"user.a", NULL, 0}, {"user.b", NULL, 0}};
	uint8_t *enc;
	size_t len, e0 = 9, e1;

	(void)state;
	e[1].nxattrs = 2;
	e[1].xattrs = x;
	assert_int_equal(mav_tree_encode(&enc, &len, e, 3), 0);
	e1 = e0 + 82;                      /* entry "a": minimal */
	const size_t x0 = e1 + 82 - 2 + 2; /* first xattr of "b" */
	const size_t e2 = x0 + 2 * (2 + 6 + 4);
	expect_tree_decode(enc, len, e0 + 2, "b", 1, MAV_ECORRUPT); /* dup */
	expect_tree_decode(enc, len, e1 + 2, "0", 1, MAV_ECORRUPT); /* order */
	expect_tree_decode(enc, len, e0 + 2, "/", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e0 + 2, ".", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e0 + 2, "\0", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e0 + 3, "\x09", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e0 + 3, "\x00", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e0 + 3, "\x02", 1, 0); /* file->dir ok */
	expect_tree_decode(enc, len, e0 + 5, "\x10", 1,
	                   MAV_ECORRUPT); /* mode */
	expect_tree_decode(enc, len, x0 + 2 + 5, "c", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, x0 + 2 + 5, "\0", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e2 + 2, "a", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e2 + 3, "\x01", 1, MAV_ECORRUPT);
	expect_tree_decode(enc, len, e2 + 48, "\x01", 1, MAV_ECORRUPT); /* id */
	expect_tree_decode(enc, len, e2 + 80, "\0", 1, MAV_ECORRUPT); /* tgt */
	expect_tree_decode(enc, len, 5, "\xff\xff\xff\x00", 4, MAV_ECORRUPT);
	expect_tree_decode(enc, len, 5, "\x02\x00\x00\x00", 4, MAV_ECORRUPT);
	expect_tree_decode(enc, len, 4, "\x02", 1, MAV_EVERSION);
	/* The untouched encoding still decodes: the offsets above are real. */
	expect_tree_decode(enc, len, 0, "M", 1, 0);
	free(enc);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_tree_100k(void **state)
{
	const uint32_t n = 100000;
	struct mav_entry *e = calloc(n, sizeof(*e));
	char *names = malloc((size_t)n * 20);
	struct mav_tree *t;
	uint8_t *enc;
	size_t len;
	double t0, t1, t2, t3;

	(void)state;
	assert_non_null(e);
	assert_non_null(names);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(names + i * 20, 20, "img_%08u.jpg", i);
		e[i] = (struct mav_entry){.name = names + i * 20,
		                          .type = MAV_T_FILE,
		                          .mode = 0644,
		                          .size = i,
		                          .nlink = 1,
		                          .id = id_of(i)};
		if (i % 10 == 0) {
			e[i].nxattrs = 2;
			e[i].xattrs = xa;
		}
	}
	t0 = now_s();
	assert_int_equal(mav_tree_encode(&enc, &len, e, n), 0);
	t1 = now_s();
	assert_int_equal(mav_tree_decode(&t, enc, len), 0);
	t2 = now_s();
	for (uint32_t i = 0; i < n; i += 1)
		assert_int_equal(mav_tree_find(t, e[i].name), i);
	t3 = now_s();
	printf("# tree 100k entries, %zu bytes: encode %.1f ms, decode "
	       "%.1f ms, 100k finds %.1f ms\n",
	       len, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
	assert_int_equal(t->n, n);
	assert_int_equal(t->e[99999].size, 99999);
	mav_tree_free(t);
	free(enc);
	free(names);
	free(e);
}

/* ---- commits ---- */

static void sample_commit(struct mav_commit *c)
{
	memset(c, 0, sizeof(*c));
	c->root = id_of(10);
	c->nparents = 2;
	c->parents[0] = id_of(11);
	c->parents[1] = id_of(12);
	c->branch = "main";
	c->version = 12;
	memset(c->author_key, 0xab, MAV_KEY_LEN);
	c->author = "Ada";
	c->time_ns = 1700000000000000000ll;
	c->message = "rock v2\n\nretextured";
	c->has_sig = true;
	memset(c->sig, 0x5c, MAV_SIG_LEN);
}

static void test_commit_round_trip(void **state)
{
	struct mav_commit c, *d;
	uint8_t *enc, *enc2;
	size_t len, len2;
	mav_id id, id2, prefix;

	(void)state;
	sample_commit(&c);
	assert_int_equal(mav_commit_encode(&enc, &len, &c), 0);
	assert_int_equal(mav_object_kind(enc, len), 'C');
	assert_int_equal(mav_commit_decode(&d, enc, len), 0);
	assert_memory_equal(d->root.b, c.root.b, MAV_ID_LEN);
	assert_int_equal(d->nparents, 2);
	assert_memory_equal(d->parents[1].b, c.parents[1].b, MAV_ID_LEN);
	assert_string_equal(d->branch, "main");
	assert_int_equal(d->version, 12);
	assert_memory_equal(d->author_key, c.author_key, MAV_KEY_LEN);
	assert_string_equal(d->author, "Ada");
	assert_int_equal(d->time_ns, c.time_ns);
	assert_string_equal(d->message, c.message);
	assert_true(d->has_sig);
	assert_memory_equal(d->sig, c.sig, MAV_SIG_LEN);
	assert_int_equal(mav_commit_encode(&enc2, &len2, d), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(enc, enc2, len);
	/* The id covers everything but the signature part. */
	assert_int_equal(mav_commit_id(&id, &c), 0);
	mav_id_hash(&prefix, enc, len - 1 - MAV_SIG_LEN);
	assert_memory_equal(id.b, prefix.b, MAV_ID_LEN);
	c.has_sig = false;
	assert_int_equal(mav_commit_id(&id2, &c), 0);
	assert_memory_equal(id.b, id2.b, MAV_ID_LEN);
	c.message = "rock v3";
	assert_int_equal(mav_commit_id(&id2, &c), 0);
	assert_memory_not_equal(id.b, id2.b, MAV_ID_LEN);
	check_truncations(dec_commit, enc, len);
	mav_commit_free(d);
	mav_commit_free(NULL);
	free(enc);
	free(enc2);
}

static void test_commit_unsigned_and_null_strings(void **state)
{
	struct mav_commit c = {0}, *d;
	uint8_t *enc;
	size_t len;

	(void)state;
	assert_int_equal(mav_commit_encode(&enc, &len, &c), 0);
	assert_int_equal(mav_commit_decode(&d, enc, len), 0);
	assert_string_equal(d->branch, "");
	assert_string_equal(d->message, "");
	assert_false(d->has_sig);
	check_truncations(dec_commit, enc, len);
	mav_commit_free(d);
	free(enc);
}

static void test_commit_rejects(void **state)
{
	struct mav_commit c, *d;
	uint8_t *enc;
	size_t len;
	mav_id id;

	(void)state;
	sample_commit(&c);
	c.nparents = MAV_MAX_PARENTS + 1;
	assert_int_equal(mav_commit_encode(&enc, &len, &c), MAV_EINVAL);
	assert_int_equal(mav_commit_id(&id, &c), MAV_EINVAL);
	c.nparents = 0;
	c.has_sig = false;
	assert_int_equal(mav_commit_encode(&enc, &len, &c), 0);
	/* header 5 | root 32 | nparents 4 @37 | branch len @41 "main" @43 */
	enc[37] = MAV_MAX_PARENTS + 1;
	assert_int_equal(mav_commit_decode(&d, enc, len), MAV_ECORRUPT);
	enc[37] = 0;
	enc[44] = '\0'; /* NUL inside the branch name */
	assert_int_equal(mav_commit_decode(&d, enc, len), MAV_ECORRUPT);
	enc[44] = 'i';
	enc[len - 1] = 2; /* has_sig flag */
	assert_int_equal(mav_commit_decode(&d, enc, len), MAV_ECORRUPT);
	enc[len - 1] = 0;
	assert_int_equal(mav_commit_decode(&d, enc, len), 0);
	assert_string_equal(d->branch, "miin");
	mav_commit_free(d);
	enc[4] = 9;
	assert_int_equal(mav_commit_decode(&d, enc, len), MAV_EVERSION);
	assert_int_equal(mav_object_kind(enc, 3), 0);
	free(enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blob_round_trip),
	    cmocka_unit_test(test_blob_locate),
	    cmocka_unit_test(test_blob_empty_and_invalid),
	    cmocka_unit_test(test_blob_index_round_trip),
	    cmocka_unit_test(test_blob_pages_follow_ids),
	    cmocka_unit_test(test_tree_round_trip),
	    cmocka_unit_test(test_tree_empty),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_tree_encode_rejects),
	    cmocka_unit_test(test_tree_decode_rejects),
	    cmocka_unit_test(test_tree_100k),
	    cmocka_unit_test(test_commit_round_trip),
	    cmocka_unit_test(test_commit_unsigned_and_null_strings),
	    cmocka_unit_test(test_commit_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
