/* test_maint.c - fsck, gc and du over the in-memory store. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testdata.h"

#include "cache.h"
#include "mav/error.h"
#include "mav/frame.h"
#include "mav/maint.h"
#include "mav/repo.h"
#include "mav/wt.h"
#include "repo_internal.h"

struct fx {
	struct mav_repo *r;
	struct mav_wt *wt;
	char problems[4096];
	uint64_t ticks, tick_bytes; /* fsck's progress */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mav_kv *mem = NULL;

	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_repo_open_kv(&f->r, mem, true, NULL), 0);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	mav_wt_close(f->wt);
	mav_repo_close(f->r);
	free(f);
	return 0;
}

static void put(struct fx *f, const char *name, size_t len, uint64_t seed)
{
	uint8_t *p = random_buf(len, seed);
	struct mav_attr a;

	assert_int_equal(
	    mav_wt_create(&a, f->wt, MAV_WT_ROOT, name, 0644, 0, 0), 0);
	assert_int_equal(mav_wt_write(f->wt, a.ino, 0, p, len), (ssize_t)len);
	mav_wt_forget(f->wt, a.ino, 1);
	free(p);
}

static void snap(struct fx *f, mav_id *c)
{
	struct mav_snapshot_opts o = {.message = "m"};
	uint64_t v;

	assert_int_equal(mav_wt_snapshot(c, &v, f->wt, &o), 0);
}

static void collect(void *ctx, const char *line)
{
	struct fx *f = ctx;

	strncat(f->problems, line,
	        sizeof(f->problems) - strlen(f->problems) - 2);
	strcat(f->problems, "\n");
}

static void count_tick(void *ctx, uint32_t len)
{
	struct fx *f = ctx;

	f->ticks++;
	f->tick_bytes += len;
}

static void test_fsck_clean_then_corrupt(void **state)
{
	struct fx *f = *state;
	struct mav_fsck_report rep;
	struct mav_kv_batch *b = NULL;
	struct mav_kv_iter *it = NULL;
	char hex[MAV_ID_HEX_LEN + 1];
	int failed;
	uint8_t *frame;
	struct mav_attr a;
	uint8_t key[MAV_CHUNK_KEY_LEN];
	size_t klen, vlen;
	mav_id c, chunk;

	put(f, "a", 300000, 1);
	put(f, "b", 1000, 2);
	snap(f, &c);
	assert_int_equal(mav_fsck(&rep, f->r, collect, count_tick, f), 0);
	assert_int_equal(rep.problems, 0);
	/* One tick per chunk, with its bytes: the two files' whole size. */
	assert_int_equal(f->ticks, rep.chunks);
	assert_int_equal(f->tick_bytes, 300000 + 1000);
	assert_int_equal(rep.commits, 1);
	assert_true(rep.chunks >= 3);
	/* Flip one byte in the payload of the second chunk of "a" (chunks
	 * lie in write order): a read from the start has the first one
	 * pinned when it meets it. */
	assert_int_equal(mav_kv_iter_new(&it, mav_repo_kv(f->r), MAV_CF_CHUNKS),
	                 0);
	mav_kv_iter_seek(it, "", 0);
	mav_kv_iter_next(it);
	assert_true(mav_kv_iter_valid(it));
	memcpy(key, mav_kv_iter_key(it, &klen), sizeof(key));
	assert_int_equal(klen, sizeof(key));
	memcpy(chunk.b, key + 8, MAV_ID_LEN); /* after the location */
	{
		const void *v = mav_kv_iter_value(it, &vlen);

		frame = malloc(vlen);
		memcpy(frame, v, vlen);
	}
	mav_kv_iter_free(it);
	frame[vlen / 2] ^= 0x40;
	assert_int_equal(mav_kv_batch_new(&b), 0);
	mav_kv_batch_put(b, MAV_CF_CHUNKS, key, sizeof(key), frame, vlen);
	assert_int_equal(mav_kv_write(mav_repo_kv(f->r), b, 0), 0);
	mav_kv_batch_free(b);
	free(frame);
	assert_int_equal(mav_fsck(&rep, f->r, collect, NULL, f), 0);
	assert_int_equal(rep.problems, 1);
	mav_id_hex(hex, &chunk);
	assert_non_null(strstr(f->problems, hex));
	/* The read that meets it fails and names it; it never returns bytes.*/
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open_commit(&f->wt, f->r, &c), 0);
	failed = 0;
	for (int i = 0; i < 2; i++) {
		static uint8_t big[300000];
		struct mav_pieces pc;
		ssize_t n;

		assert_int_equal(
		    mav_wt_lookup(&a, f->wt, MAV_WT_ROOT, i ? "b" : "a"), 0);
		n = mav_wt_read(f->wt, a.ino, 0, big, sizeof(big));
		if (n < 0) {
			assert_int_equal(n, MAV_ECORRUPT);
			assert_non_null(strstr(mav_error_message(), hex));
			failed++;
		}
		/* So does a read without a copy, and it pins nothing. */
		assert_int_equal(
		    mav_wt_read_pinned(f->wt, a.ino, 0, sizeof(big), &pc),
		    n < 0 ? MAV_ECORRUPT : 1);
		if (n < 0) {
			assert_non_null(strstr(mav_error_message(), hex));
			assert_int_equal(pc.n, 0);
			assert_int_equal(mav_cache_in_use(f->r->chunks), 0);
			continue;
		}
		assert_int_equal(pc.bytes, n);
		for (unsigned j = 0, at = 0; j < pc.n; at += pc.v[j++].iov_len)
			assert_memory_equal(pc.v[j].iov_base, big + at,
			                    pc.v[j].iov_len);
		mav_pieces_release(&pc);
		assert_int_equal(mav_cache_in_use(f->r->chunks), 0);
	}
	assert_int_equal(failed, 1);
}

/* Store value (NULL: delete) under key of cf. */
static void set_key(struct fx *f, enum mav_cf cf, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
	struct mav_kv_batch *b = NULL;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	if (val)
		assert_int_equal(mav_kv_batch_put(b, cf, key, klen, val, vlen),
		                 0);
	else
		assert_int_equal(mav_kv_batch_del(b, cf, key, klen), 0);
	assert_int_equal(mav_kv_write(mav_repo_kv(f->r), b, 0), 0);
	mav_kv_batch_free(b);
}

/* fsck finds exactly one problem, naming id and saying what. */
static void expect_one_problem(struct fx *f, const mav_id *id, const char *what)
{
	struct mav_fsck_report rep;
	char hex[MAV_ID_HEX_LEN + 1];

	f->problems[0] = 0;
	mav_id_hex(hex, id);
	assert_int_equal(mav_fsck(&rep, f->r, collect, NULL, f), 0);
	assert_int_equal(rep.problems, 1);
	if (!strstr(f->problems, hex) || !strstr(f->problems, what))
		fail_msg("expected '%s' about %s, got: %s", what, hex,
		         f->problems);
}

/* Each kind of damage fsck looks for, one at a time, each repaired
 * before the next: a chunk whose frame is whole but holds other bytes, or
 * fewer, or is gone; a blob, a tree, a commit that is gone or garbage. */
static void test_fsck_names_each_kind_of_damage(void **state)
{
	struct fx *f = *state;
	uint8_t *other = random_buf(1000, 9), key[MAV_CHUNK_KEY_LEN];
	uint8_t *frame, *wrong, junk[40];
	void *saved_blob = NULL, *saved_tree = NULL, *saved_commit = NULL;
	size_t flen, wlen, blen, tlen, clen, nd;
	struct mav_commit *cm = NULL;
	struct mav_blob *blob = NULL;
	struct mav_attr a;
	char hex[MAV_ID_HEX_LEN + 1];
	struct mav_wt *view = NULL;
	mav_id c, bid, chunk;
	ssize_t n;

	put(f, "b", 1000, 2); /* one chunk */
	snap(f, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	assert_int_equal(mav_wt_lookup(&a, view, MAV_WT_ROOT, "b"), 0);
	n = mav_wt_getxattr(view, a.ino, "user.mav.id", hex, sizeof(hex));
	mav_wt_close(view);
	assert_int_equal(n, MAV_ID_HEX_LEN);
	hex[MAV_ID_HEX_LEN] = 0;
	assert_int_equal(mav_id_from_hex(&bid, &nd, hex), 0);
	assert_int_equal(mav_repo_get_blob(f->r, &bid, &blob), 0);
	chunk = blob->ids[0];
	mav_blob_free(blob);
	assert_int_equal(mav_repo_chunk_key(f->r, &chunk, key), 0);
	assert_int_equal(mav_kv_get(mav_repo_kv(f->r), MAV_CF_CHUNKS, key,
	                            sizeof(key), (void **)&frame, &flen),
	                 0);
	/* Frames that check out, of other bytes and of too few. */
	assert_int_equal(mav_frame_encode(&wrong, &wlen, other, 1000, 3), 0);
	set_key(f, MAV_CF_CHUNKS, key, sizeof(key), wrong, wlen);
	expect_one_problem(f, &chunk, "content does not match id");
	free(wrong);
	assert_int_equal(mav_frame_encode(&wrong, &wlen, other, 999, 3), 0);
	set_key(f, MAV_CF_CHUNKS, key, sizeof(key), wrong, wlen);
	expect_one_problem(f, &chunk, "length differs");
	free(wrong);
	set_key(f, MAV_CF_CHUNKS, key, sizeof(key), NULL, 0);
	expect_one_problem(f, &chunk, "missing");
	set_key(f, MAV_CF_CHUNKS, key, sizeof(key), frame, flen);
	/* Objects: gone, then garbage. */
	memset(junk, 'j', sizeof(junk));
	assert_int_equal(mav_repo_get_object(f->r, &bid, &saved_blob, &blen),
	                 0);
	set_key(f, MAV_CF_OBJECTS, bid.b, MAV_ID_LEN, NULL, 0);
	expect_one_problem(f, &bid, "blob");
	set_key(f, MAV_CF_OBJECTS, bid.b, MAV_ID_LEN, saved_blob, blen);
	assert_int_equal(mav_repo_get_commit(f->r, &c, &cm), 0);
	assert_int_equal(
	    mav_repo_get_object(f->r, &cm->root, &saved_tree, &tlen), 0);
	set_key(f, MAV_CF_OBJECTS, cm->root.b, MAV_ID_LEN, junk, sizeof(junk));
	expect_one_problem(f, &cm->root, "tree");
	set_key(f, MAV_CF_OBJECTS, cm->root.b, MAV_ID_LEN, saved_tree, tlen);
	assert_int_equal(mav_repo_get_object(f->r, &c, &saved_commit, &clen),
	                 0);
	set_key(f, MAV_CF_OBJECTS, c.b, MAV_ID_LEN, junk, sizeof(junk));
	expect_one_problem(f, &c, "commit");
	set_key(f, MAV_CF_OBJECTS, c.b, MAV_ID_LEN, saved_commit, clen);
	assert_int_equal(
	    mav_fsck(&(struct mav_fsck_report){0}, f->r, collect, NULL, f), 0);
	mav_commit_free(cm);
	free(saved_blob);
	free(saved_tree);
	free(saved_commit);
	free(frame);
	free(other);
}

static void test_gc_frees_unreachable(void **state)
{
	struct fx *f = *state;
	struct mav_gc_report g;
	struct mav_fsck_report rep;
	struct mav_du_report du;
	mav_id c;

	put(f, "keep", 100000, 3);
	snap(f, &c);
	put(f, "scratch", 500000, 4);
	assert_int_equal(mav_wt_unlink(f->wt, MAV_WT_ROOT, "scratch"), 0);
	assert_int_equal(mav_wt_sync(f->wt), 0);
	assert_int_equal(mav_gc(&g, f->r, NULL, NULL), 0);
	assert_true(g.chunks_deleted >= 2);
	assert_true(g.bytes_freed >= 400000);
	assert_int_equal(mav_fsck(&rep, f->r, collect, NULL, f), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(mav_gc(&g, f->r, NULL, NULL), 0);
	assert_int_equal(g.chunks_deleted, 0);
	assert_int_equal(mav_du(&du, f->r, NULL), 0);
	assert_int_equal(du.files, 1);
	assert_int_equal(du.logical_bytes, 100000);
	assert_int_equal(du.unique_bytes, 100000);
}

static void test_du_dedups_versions(void **state)
{
	struct fx *f = *state;
	struct mav_du_report du;
	mav_id c;

	put(f, "a", 200000, 5);
	snap(f, &c);
	put(f, "b", 1000, 6);
	snap(f, &c);
	assert_int_equal(mav_du(&du, f->r, NULL), 0);
	assert_int_equal(du.files, 3);              /* 1 in v1, 2 in v2 */
	assert_int_equal(du.logical_bytes, 401000); /* a counted twice */
	assert_int_equal(du.unique_bytes, 201000);
	assert_int_equal(mav_du(&du, f->r, &c), 0);
	assert_int_equal(du.logical_bytes, 201000);
}

/* Two writers that store the same new chunk at once both store it; the
 * id then leads to the second copy, and gc deletes the first, which
 * nothing can reach, while the file keeps reading back. */
static void test_gc_drops_copy_of_racing_writers(void **state)
{
	static const char data[] = "stored by two writers at once";
	struct fx *f = *state;
	struct mav_kv_batch *b1 = NULL, *b2 = NULL;
	struct mav_fsck_report rep;
	struct mav_gc_report gc;
	struct mav_attr a;
	char back[sizeof(data)];
	mav_id id, c;

	assert_int_equal(mav_kv_batch_new(&b1), 0);
	assert_int_equal(mav_kv_batch_new(&b2), 0);
	assert_int_equal(mav_repo_put_chunk(f->r, b1, MAV_KV_NO_WAL, &id, data,
	                                    sizeof(data)),
	                 0);
	assert_int_equal(mav_repo_put_chunk(f->r, b2, MAV_KV_NO_WAL, &id, data,
	                                    sizeof(data)),
	                 0);
	assert_int_equal(mav_repo_write(f->r, b1, MAV_KV_NO_WAL), 0);
	assert_int_equal(mav_repo_write(f->r, b2, MAV_KV_NO_WAL), 0);
	mav_kv_batch_free(b1);
	mav_kv_batch_free(b2);
	assert_int_equal(kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNKS), 2);

	assert_int_equal(
	    mav_wt_create(&a, f->wt, MAV_WT_ROOT, "same", 0644, 0, 0), 0);
	assert_int_equal(mav_wt_write(f->wt, a.ino, 0, data, sizeof(data)),
	                 (ssize_t)sizeof(data));
	snap(f, &c);
	assert_int_equal(kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNKS),
	                 2); /* deduped */
	assert_int_equal(mav_gc(&gc, f->r, NULL, NULL), 0);
	assert_int_equal(gc.chunks_deleted, 1);
	assert_int_equal(kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNKS), 1);
	assert_int_equal(kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNK_IDS), 1);
	assert_int_equal(mav_repo_read_chunk(f->r, &id, 0, back, sizeof(back)),
	                 0);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(mav_fsck(&rep, f->r, collect, NULL, f), 0);
	assert_int_equal(rep.problems, 0);
	mav_wt_forget(f->wt, a.ino, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fsck_clean_then_corrupt, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_gc_drops_copy_of_racing_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsck_names_each_kind_of_damage,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc_frees_unreachable, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_du_dedups_versions, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
