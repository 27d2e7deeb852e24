/* test_repo.c - repositories on disk, config, refs and revision parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mav/chunker.h"
#include "mav/error.h"
#include "mav/kv.h"
#include "mav/repo.h"
#include "mav/wt.h"
#include "cache.h"
#include "repo_internal.h"
#include "testdata.h"

static char dir[64];

static int mkdir_tmp(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mav-test-repo-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int rm_tmp(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_init_open_errors(void **state)
{
	struct mav_repo_config cfg;
	struct mav_repo *r = NULL, *r2 = NULL;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/repo", dir);
	assert_int_equal(mav_repo_open(&r, dir, NULL), MAV_ENOTREPO);
	assert_int_equal(mav_repo_open(&r, "/nonexistent/x", NULL),
	                 MAV_ENOTREPO);
	mav_repo_config_default(&cfg);
	cfg.chunk_avg = 1000; /* not a power of two */
	assert_int_equal(mav_repo_init(path, &cfg), MAV_EINVAL);
	cfg.chunk_min = 4096;
	cfg.chunk_avg = 16384;
	cfg.chunk_max = 65536;
	cfg.reserve_bytes = 1 << 20;
	assert_int_equal(mav_repo_init(path, &cfg), 0);
	assert_int_equal(mav_repo_init(path, &cfg), MAV_EEXIST);
	assert_int_equal(mav_repo_open(&r, path, NULL), 0);
	/* Config is fixed at init and read back. */
	assert_int_equal(mav_repo_config(r)->chunk_avg, 16384);
	assert_int_equal(mav_repo_config(r)->reserve_bytes, 1 << 20);
	/* One writer: a second open is refused with a clear code. */
	assert_int_equal(mav_repo_open(&r2, path, NULL), MAV_ELOCKED);
	mav_repo_close(r);
}

/* Rewrite the format record of the repository at path, in its database. */
static void set_format(const char *path, uint32_t version)
{
	struct mav_kv_options o = {.reserve_bytes = 0};
	struct mav_kv_batch *b = NULL;
	struct mav_kv *kv = NULL;
	uint8_t v[4] = {(uint8_t)version, (uint8_t)(version >> 8),
	                (uint8_t)(version >> 16), (uint8_t)(version >> 24)};
	char db[160];

	snprintf(db, sizeof(db), "%s/db", path);
	assert_int_equal(mav_kv_open_rocksdb(&kv, db, &o), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_kv_batch_put(b, MAV_CF_META, "format", 6, v, 4),
	                 0);
	assert_int_equal(mav_kv_write(kv, b, MAV_KV_SYNC), 0);
	mav_kv_batch_free(b);
	mav_kv_close(kv);
}

/* Another format is refused with a reason, whichever side is newer. */
static void test_other_format_refused(void **state)
{
	struct mav_repo *r = NULL;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/repo", dir);
	assert_int_equal(mav_repo_init(path, NULL), 0);
	set_format(path, MAV_FORMAT_VERSION + 1);
	assert_int_equal(mav_repo_open(&r, path, NULL), MAV_EVERSION);
	assert_non_null(strstr(mav_error_message(), "newer"));
	/* Format 1 kept chunks under their ids: read as 2, none would be
	 * found. */
	set_format(path, 1);
	assert_int_equal(mav_repo_open(&r, path, NULL), MAV_EVERSION);
	assert_non_null(strstr(mav_error_message(), "older"));
}

/* Chunk id reads back as data. */
/* A new repository in memory; its kv in *kv. */
/* A repository in memory with cfg (NULL: the defaults); *kv, if given,
 * its store. */
static struct mav_repo *mem_repo(struct mav_kv **kv,
                                 const struct mav_repo_config *cfg)
{
	struct mav_repo *r = NULL;
	struct mav_kv *k = NULL;

	assert_int_equal(mav_kv_open_mem(&k), 0);
	assert_int_equal(mav_repo_open_kv(&r, k, true, cfg), 0);
	if (kv)
		*kv = k;
	return r;
}

static void expect_chunk(struct mav_repo *r, const mav_id *id, const char *data,
                         size_t len)
{
	char back[64];

	assert_true(len <= sizeof(back));
	assert_int_equal(mav_repo_read_chunk(r, id, 0, back, (uint32_t)len), 0);
	assert_memory_equal(back, data, len);
}

static void snapshot_file(struct mav_repo *r, const char *branch,
                          const char *name, mav_id *out)
{
	struct mav_snapshot_opts o = {.message = name};
	struct mav_wt *wt = NULL;
	struct mav_attr a;
	uint64_t v;

	assert_int_equal(mav_wt_open(&wt, r, branch), 0);
	assert_int_equal(mav_wt_create(&a, wt, MAV_WT_ROOT, name, 0644, 0, 0),
	                 0);
	assert_int_equal(mav_wt_snapshot(out, &v, wt, &o), 0);
	mav_wt_close(wt);
}

static void test_refs_and_revs(void **state)
{
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	char hex[MAV_ID_HEX_LEN + 1], pfx[16];
	mav_id c1, c2, got, zero = {{0}};
	struct mav_ref_update u = {.ref = "t/rel", .old = NULL, .new_id = &c1};

	(void)state;
	r = mem_repo(&kv, NULL);
	/* An empty branch has no snapshot to resolve. */
	assert_int_equal(mav_rev_parse(&got, r, "main"), MAV_ENOTFOUND);
	snapshot_file(r, "main", "one", &c1);
	snapshot_file(r, "main", "two", &c2);
	assert_int_equal(mav_rev_parse(&got, r, "v1"), 0);
	assert_memory_equal(got.b, c1.b, MAV_ID_LEN);
	assert_int_equal(mav_rev_parse(&got, r, "main"), 0);
	assert_memory_equal(got.b, c2.b, MAV_ID_LEN);
	assert_int_equal(mav_rev_parse(&got, r, "v3"), MAV_ENOTFOUND);
	assert_int_equal(mav_rev_parse(&got, r, ""), MAV_EBADREV);
	/* Tags: create, refuse a duplicate, resolve. */
	assert_int_equal(mav_ref_update(r, NULL, &u, 1), 0);
	assert_int_equal(mav_ref_update(r, NULL, &u, 1), MAV_EEXIST);
	assert_int_equal(mav_rev_parse(&got, r, "rel"), 0);
	assert_memory_equal(got.b, c1.b, MAV_ID_LEN);
	/* Compare-and-swap: a stale old value loses. */
	u.old = &c2;
	u.new_id = &c2;
	assert_int_equal(mav_ref_update(r, NULL, &u, 1), MAV_ECONFLICT);
	/* Commit-id prefixes: 8 digits resolve, garbage does not. */
	mav_id_hex(hex, &c2);
	snprintf(pfx, sizeof(pfx), "%.8s", hex);
	assert_int_equal(mav_rev_parse(&got, r, pfx), 0);
	assert_memory_equal(got.b, c2.b, MAV_ID_LEN);
	snprintf(pfx, sizeof(pfx), "%.7s", hex); /* odd length */
	assert_int_equal(mav_rev_parse(&got, r, pfx), 0);
	assert_int_equal(mav_rev_parse(&got, r, "zzzz"), MAV_ENOTFOUND);
	assert_int_equal(mav_rev_parse(&got, r, "abc"), MAV_ENOTFOUND);
	/* Branches: names, create from a commit, delete. */
	assert_false(mav_branch_name_valid("@x"));
	assert_false(mav_branch_name_valid(".x"));
	assert_false(mav_branch_name_valid("a/b"));
	assert_false(mav_tag_name_valid("v12"));
	assert_true(mav_tag_name_valid("v1.2"));
	assert_int_equal(mav_branch_create(r, "art", &c1), 0);
	assert_int_equal(mav_branch_create(r, "art", &c1), MAV_EEXIST);
	snapshot_file(r, "art", "three", &got);
	assert_int_equal(mav_rev_parse(&got, r, "v3"), 0);
	assert_int_equal(mav_branch_create(r, "empty", &zero), 0);
	assert_int_equal(mav_branch_delete(r, "art"), 0);
	assert_int_equal(mav_rev_parse(&got, r, "art"), MAV_ENOTFOUND);
	assert_int_equal(mav_branch_delete(r, "art"), MAV_ENOTFOUND);
	mav_repo_close(r);
}

/* A logged write never leans on a chunk that only a NO_WAL write stored
 * and no flush has made durable: after a power cut the logged referrer
 * survives, so the chunk must too. */
static void test_logged_put_does_not_lean_on_nowal(void **state)
{
	static const char data[] = "the same bytes twice";
	struct mav_kv_batch *b = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *mem = NULL, *kv = NULL;
	mav_id id;

	(void)state;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&kv, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, kv, true, NULL), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);

	/* A chunk is two keys: its id's location, and its frame there. */
	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id, data, sizeof(data)),
	    0);
	assert_int_equal(mav_kv_batch_count(b), 2);
	assert_int_equal(mav_repo_write(r, b, MAV_KV_NO_WAL), 0);
	mav_kv_batch_clear(b);
	/* Another NO_WAL writer may dedup against it; a logged one may not. */
	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id, data, sizeof(data)),
	    0);
	assert_int_equal(mav_kv_batch_count(b), 0);
	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_SYNC, &id, data, sizeof(data)), 0);
	assert_int_equal(mav_kv_batch_count(b), 2);
	assert_int_equal(mav_repo_write(r, b, MAV_KV_SYNC), 0);
	mav_kv_batch_clear(b);
	assert_int_equal(mav_kv_fault_crash(kv), 0);
	expect_chunk(r, &id, data, sizeof(data));
	/* Logged again where it was: one copy, not two. */
	assert_int_equal(kv_count_keys(kv, MAV_CF_CHUNKS), 1);

	/* Once flushed, everything counts as stored again. */
	assert_int_equal(mav_repo_flush(r), 0);
	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_SYNC, &id, data, sizeof(data)), 0);
	assert_int_equal(mav_kv_batch_count(b), 0);
	mav_kv_batch_free(b);
	mav_repo_close(r);
}

/* A chunk whose id survived a crash without its frame (the two families
 * are flushed one after the other) counts as missing and is stored again. */
static void test_chunk_without_frame_stored_again(void **state)
{
	static const char data[] = "an id without its frame";
	struct mav_kv_batch *b = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	uint8_t key[MAV_CHUNK_KEY_LEN];
	char back[sizeof(data)];
	mav_id id;

	(void)state;
	r = mem_repo(&kv, NULL);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id, data, sizeof(data)),
	    0);
	assert_int_equal(mav_repo_write(r, b, MAV_KV_NO_WAL), 0);
	mav_kv_batch_clear(b);
	assert_int_equal(mav_repo_chunk_key(r, &id, key), 0);
	assert_int_equal(mav_kv_batch_del(b, MAV_CF_CHUNKS, key, sizeof(key)),
	                 0);
	assert_int_equal(mav_repo_write(r, b, 0), 0);
	mav_kv_batch_clear(b);
	assert_int_equal(mav_repo_read_chunk(r, &id, 0, back, sizeof(back)),
	                 MAV_ENOTFOUND);

	assert_int_equal(
	    mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id, data, sizeof(data)),
	    0);
	assert_int_equal(mav_kv_batch_count(b), 2);
	assert_int_equal(mav_repo_write(r, b, MAV_KV_NO_WAL), 0);
	expect_chunk(r, &id, data, sizeof(data));
	mav_kv_batch_free(b);
	mav_repo_close(r);
}

/* The same new chunk put twice before its batch is written (a run of zeros
 * in one file) is stored once. */
static void test_chunk_twice_in_batch_stored_once(void **state)
{
	static const char data[] = "twice in one batch";
	struct mav_kv_batch *b = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	mav_id id;

	(void)state;
	r = mem_repo(&kv, NULL);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id,
		                                    data, sizeof(data)),
		                 0);
	assert_int_equal(mav_repo_write(r, b, MAV_KV_NO_WAL), 0);
	assert_int_equal(kv_count_keys(kv, MAV_CF_CHUNKS), 1);
	assert_int_equal(kv_count_keys(kv, MAV_CF_CHUNK_IDS), 1);
	expect_chunk(r, &id, data, sizeof(data));
	mav_kv_batch_free(b);
	mav_repo_close(r);
}

static struct mav_blob *write_file(struct mav_repo *r, size_t len,
                                   uint64_t seed)
{
	uint8_t *data = random_buf(len, seed);
	struct mav_writer *w = NULL;
	struct mav_blob *blob = NULL;
	uint64_t size;
	mav_id id;

	assert_int_equal(mav_writer_new(&w, r), 0);
	assert_int_equal(mav_writer_feed(w, data, len), 0);
	assert_int_equal(mav_writer_finish(w, &id, &size), 0);
	assert_int_equal(mav_repo_flush(r), 0);
	assert_int_equal(mav_repo_get_blob(r, &id, &blob), 0);
	mav_writer_free(w);
	free(data);
	return blob;
}

/* Feed data[0..len) from a copy that is freed as soon as the feed returns,
 * as the daemon's feeders free each write: under ASan, a chunk the
 * writer's thread still hashed after that would be a use after free. */
static int feed_copy(struct mav_writer *w, const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len);
	int rc;

	assert_non_null(copy);
	memcpy(copy, data, len);
	rc = mav_writer_feed(w, copy, len);
	/* Without ASan, a hash of these bytes taken later is a wrong id,
	 * which the read back finds (explicit_bzero: a memset before free
	 * is optimised away). */
	explicit_bzero(copy, len);
	free(copy);
	return rc;
}

/* A file of several full batches: from the second on, each is written by
 * the writer's own thread while the next is cut, and the thread hashes the
 * chunks the writer cuts. Everything reads back, in order; a write that
 * fails behind the writer is reported by it, and no chunk of a failed feed
 * is read after the feed returns. */
static void test_writer_writes_behind(void **state)
{
	size_t len = 40u << 20;
	uint8_t *data = random_buf(len, 21), *back = malloc(len);
	struct mav_kv *mem = NULL, *kv = NULL;
	struct mav_writer *w = NULL;
	struct mav_blob *blob = NULL;
	struct mav_repo *r = NULL;
	uint64_t size;
	size_t got;
	mav_id id;
	int rc = 0;

	(void)state;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&kv, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, kv, true, NULL), 0);
	assert_int_equal(mav_writer_new(&w, r), 0);
	for (size_t off = 0; off < len; off += 1u << 20)
		assert_int_equal(feed_copy(w, data + off, 1u << 20), 0);
	assert_int_equal(mav_writer_finish(w, &id, &size), 0);
	mav_writer_free(w);
	assert_int_equal(size, len);
	assert_int_equal(mav_repo_get_blob(r, &id, &blob), 0);
	assert_int_equal(mav_repo_read_blob(r, blob, 0, back, len, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	mav_blob_free(blob);

	/* Past the 8 MiB after which the writer's thread writes its batches
	 * (and hashes its chunks), a batch fails there; the writer's next
	 * full batch (a feed, before any finish) reports it, while chunks
	 * are pending. */
	free(data);
	data = random_buf(len, 22); /* new chunks: nothing deduplicated */
	assert_int_equal(mav_writer_new(&w, r), 0);
	for (size_t off = 0; off < (12u << 20); off += 1u << 20)
		assert_int_equal(feed_copy(w, data + off, 1u << 20), 0);
	mav_kv_fault_fail_writes_after(kv, 2, -EIO);
	for (size_t off = 12u << 20; rc == 0 && off < len; off += 1u << 20)
		rc = feed_copy(w, data + off, 1u << 20);
	assert_int_equal(rc, -EIO);
	assert_non_null(strstr(mav_error_message(), "injected fault at write"));
	/* Part of those bytes may be lost: with the store working again the
	 * writer still refuses to go on or to make a blob. */
	mav_kv_fault_clear(kv);
	assert_int_equal(mav_writer_feed(w, data, 1u << 20), -EIO);
	assert_non_null(strstr(mav_error_message(), "earlier failure"));
	assert_int_equal(mav_writer_finish(w, &id, &size), -EIO);
	mav_writer_free(w);
	mav_repo_close(r);
	free(data);
	free(back);
}

/* Small chunk sizes (64/128/512): the same data makes many more cuts. */
static void small_chunks(struct mav_repo_config *c)
{
	mav_repo_config_default(c);
	c->chunk_min = 64;
	c->chunk_avg = 128;
	c->chunk_max = 512;
}

/* Feed data to a new writer in pieces of sizes[0], sizes[1], ... (over
 * again from sizes[0] when they run out); its blob id. */
/* settle: mav_writer_settle after every piece, as a feeder does when its
 * stream goes quiet. */
static mav_id feed_in_pieces(struct mav_repo *r, const uint8_t *data,
                             size_t len, const size_t *sizes, size_t nsizes,
                             bool settle)
{
	struct mav_writer *w = NULL;
	uint64_t size;
	mav_id id;

	assert_int_equal(mav_writer_new(&w, r), 0);
	for (size_t off = 0, i = 0; off < len; i = (i + 1) % nsizes) {
		size_t n = sizes[i] < len - off ? sizes[i] : len - off;

		assert_int_equal(mav_writer_feed(w, data + off, n), 0);
		if (settle)
			assert_int_equal(mav_writer_settle(w), 0);
		off += n;
	}
	assert_int_equal(mav_writer_finish(w, &id, &size), 0);
	assert_int_equal(size, len);
	mav_writer_free(w);
	return id;
}

/* The blob's chunk ends are where the chunker itself cuts data, chunk after
 * chunk from the start: whatever a writer does with its window, the cuts
 * must be these. */
static void expect_chunker_cuts(struct mav_repo *r, const mav_id *id,
                                const uint8_t *data, size_t len)
{
	const struct mav_repo_config *cfg = mav_repo_config(r);
	struct mav_blob *blob = NULL;
	struct mav_chunker c;
	uint8_t *back = malloc(len);
	size_t off = 0, got;
	uint32_t i = 0;

	assert_int_equal(mav_chunker_init(&c, cfg->chunk_min, cfg->chunk_avg,
	                                  cfg->chunk_max),
	                 0);
	assert_int_equal(mav_repo_get_blob(r, id, &blob), 0);
	for (; off < len; i++) {
		off += mav_chunker_cut(&c, data + off, len - off);
		assert_true(i < blob->n);
		assert_int_equal(blob->ends[i], off);
	}
	assert_int_equal(blob->n, i);
	assert_int_equal(mav_repo_read_blob(r, blob, 0, back, len, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	mav_blob_free(blob);
	free(back);
}

/* Where chunks are cut depends on the bytes alone, not on how they are
 * fed: whole, in 1 MiB pieces (as the daemon's streams feed them), in
 * pieces of sizes from 1 byte to more than a maximum chunk, and in pieces
 * of random sizes around the maximum chunk. With the default chunk sizes
 * and with small ones (64/128/512), where the same data is many more cuts
 * and every piece size straddles several of them. */
static void test_writer_cuts_whatever_the_pieces(void **state)
{
	static const size_t whole[] = {SIZE_MAX}, mib[] = {1u << 20},
	                    mixed[] = {1,        7,      4096,   65537,
	                               300000,   3,      262144, 262145,
	                               1u << 20, 200000, 99,     600000};
	struct mav_repo_config small;
	size_t len = 12u << 20; /* over a batch: also written behind */
	uint8_t *data = random_buf(len, 31);
	size_t around[64];
	uint64_t seed = 5;

	(void)state;
	/* Runs of zeros too: there every cut is at the maximum size. */
	memset(data + (3u << 20), 0, 1u << 20);
	memset(data + (9u << 20) + 100, 0, 5000);
	small_chunks(&small);
	for (int k = 0; k < 2; k++) {
		struct mav_repo *r = mem_repo(NULL, k ? &small : NULL);
		size_t max;
		mav_id a, b, c, d;

		max = mav_repo_config(r)->chunk_max;
		for (size_t i = 0; i < 64; i++)
			around[i] = 1 + rng_next(&seed) % (3 * max);
		a = feed_in_pieces(r, data, len, whole, 1, false);
		b = feed_in_pieces(r, data, len, mib, 1, false);
		c = feed_in_pieces(r, data, len, mixed,
		                   sizeof(mixed) / sizeof(mixed[0]), false);
		d = feed_in_pieces(r, data, len, around, 64, false);
		expect_chunker_cuts(r, &a, data, len);
		assert_memory_equal(&a, &b, sizeof(a));
		assert_memory_equal(&a, &c, sizeof(a));
		assert_memory_equal(&a, &d, sizeof(a));
		/* Settling cuts early only where the cut is already known. */
		c = feed_in_pieces(r, data, len, mixed,
		                   sizeof(mixed) / sizeof(mixed[0]), true);
		d = feed_in_pieces(r, data, len, around, 64, true);
		assert_memory_equal(&a, &c, sizeof(a));
		assert_memory_equal(&a, &d, sizeof(a));
		mav_repo_close(r);
	}
	free(data);
}

/* A writer has no window until it has bytes to keep, and a settled one
 * keeps only its uncut tail: a cp -a leaves its files
 * settled for seconds before they are sealed, and each held a window for
 * two maximum chunks and a batch's buffer, about 1 MiB a file (1.2 GB over
 * a 1.5 GB copy). Fed again, it cuts as if fed at once. */
static void test_writer_settled_holds_its_tail(void **state)
{
	static const size_t whole[] = {SIZE_MAX};
	size_t len = 300000, half = len / 2;
	uint8_t *data = random_buf(len, 41);
	struct mav_repo *r = mem_repo(NULL, NULL);
	size_t max = mav_repo_config(r)->chunk_max;
	struct mav_writer *w = NULL;
	uint64_t size;
	mav_id a, b;

	(void)state;
	assert_int_equal(mav_writer_new(&w, r), 0);
	/* No window before the first bytes, nor after settling none. */
	assert_int_equal(mav_writer_memory(w), 0);
	assert_int_equal(mav_writer_settle(w), 0);
	assert_int_equal(mav_writer_memory(w), 0);
	assert_int_equal(mav_writer_feed(w, data, half), 0);
	assert_true(mav_writer_memory(w) >= 2 * max);
	assert_int_equal(mav_writer_settle(w), 0);
	assert_true(mav_writer_held(w) > 0 && mav_writer_held(w) < max);
	/* The tail, and the chunk lists (64 entries at first). */
	assert_true(mav_writer_memory(w) <=
	            mav_writer_held(w) + 64 * (sizeof(mav_id) + 4));
	assert_int_equal(mav_writer_feed(w, data + half, len - half), 0);
	assert_int_equal(mav_writer_finish(w, &a, &size), 0);
	assert_int_equal(size, len);
	mav_writer_free(w);
	b = feed_in_pieces(r, data, len, whole, 1, false);
	assert_memory_equal(&a, &b, sizeof(a));
	expect_chunker_cuts(r, &a, data, len);
	mav_repo_close(r);
	free(data);
}

/* Runs of zeros fed as counted zeros (a hole) make the blob that the same
 * bytes fed as data make, whatever precedes and follows them: runs
 * shorter and longer than a maximum chunk, at the start, after a partial
 * window and at the end; with default and with small chunk sizes. */
static void test_writer_zeros_as_fed(void **state)
{
	struct mav_repo_config small;
	size_t len = 6u << 20;
	uint8_t *data = random_buf(len, 71);

	(void)state;
	small_chunks(&small);
	for (int k = 0; k < 2; k++) {
		struct mav_repo *r = mem_repo(NULL, k ? &small : NULL);
		size_t max, runs[8], at = 0;
		struct mav_writer *w = NULL;
		uint64_t size;
		mav_id want, got;

		max = mav_repo_config(r)->chunk_max;
		runs[0] = 3 * max + 5; /* at the start */
		runs[1] = 1;
		runs[2] = max - 1;
		runs[3] = max;
		runs[4] = max + 1;
		runs[5] = 2 * max + 17;
		runs[6] = 10 * max + 3;
		runs[7] = len / 4; /* to the end */
		/* data: zeros runs[i] at `at`, then random bytes of a length
		 * that leaves a partial window, then the next run */
		assert_int_equal(mav_writer_new(&w, r), 0);
		for (size_t i = 0; i < 8; i++) {
			size_t gap = i == 7 ? 0 : max / 2 + 1000 * i;

			if (i == 7)
				runs[7] = len - at;
			memset(data + at, 0, runs[i]);
			assert_int_equal(mav_writer_feed_zeros(w, runs[i]), 0);
			at += runs[i];
			assert_int_equal(mav_writer_feed(w, data + at, gap), 0);
			at += gap;
		}
		assert_int_equal(mav_writer_finish(w, &got, &size), 0);
		assert_int_equal(size, len);
		mav_writer_free(w);
		want = feed_in_pieces(r, data, len, (size_t[]){SIZE_MAX}, 1,
		                      false);
		assert_memory_equal(&want, &got, sizeof(want));
		expect_chunker_cuts(r, &got, data, len);
		mav_repo_close(r);
		free(data);
		data = random_buf(len, 71);
	}
	free(data);
}

/* A hole of 64 GiB between two bytes costs a chunk list, not 64 GiB of
 * chunking and hashing: of its 262144 chunks only the first goes to the
 * store (fed as data, each would ask whether it is stored), and the file
 * reads back as zeros. */
static void test_writer_huge_hole(void **state)
{
	struct mav_kv *mem = NULL, *kv = NULL;
	struct mav_repo *r = NULL;
	struct mav_writer *w = NULL;
	struct mav_blob *blob = NULL;
	uint64_t hole = 64ull << 30, size, calls;
	uint8_t buf[4096], zeros[4096] = {0};
	size_t got;
	mav_id id;

	(void)state;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&kv, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, kv, true, NULL), 0);
	assert_int_equal(mav_writer_new(&w, r), 0);
	assert_int_equal(mav_writer_feed(w, "a", 1), 0);
	calls = mav_kv_fault_calls(kv);
	assert_int_equal(mav_writer_feed_zeros(w, hole), 0);
	assert_true(mav_kv_fault_calls(kv) - calls < 16);
	assert_int_equal(mav_writer_feed(w, "z", 1), 0);
	assert_int_equal(mav_writer_finish(w, &id, &size), 0);
	assert_int_equal(size, hole + 2);
	mav_writer_free(w);
	assert_int_equal(mav_repo_get_blob(r, &id, &blob), 0);
	assert_int_equal(blob->size, hole + 2);
	assert_int_equal(mav_repo_read_blob(r, blob, 0, buf, 1, &got), 0);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(
	    mav_repo_read_blob(r, blob, 40ull << 30, buf, sizeof(buf), &got),
	    0);
	assert_int_equal(got, sizeof(buf));
	assert_memory_equal(buf, zeros, sizeof(buf));
	assert_int_equal(
	    mav_repo_read_blob(r, blob, hole - 4094, buf, sizeof(buf), &got),
	    0);
	assert_int_equal(got, 4096);
	assert_memory_equal(buf, zeros, 4095);
	assert_int_equal(buf[4095], 'z');
	mav_blob_free(blob);
	mav_repo_close(r);
}

/* A small file fed in one piece (a copy's single write) and settled: every
 * chunk whose end is known is cut and readable from the store, what stays
 * held is the tail after the last cut, and finishing gives the blob of
 * the same bytes fed whole. */
static void test_writer_settle_stores_what_is_decided(void **state)
{
	size_t len = 500u << 10;
	uint8_t *data = random_buf(len, 43);
	struct mav_writer *w = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	const uint32_t *lens;
	const mav_id *ids;
	uint8_t *back = malloc(256u << 10);
	uint32_t n, at = 0;
	uint64_t size;
	mav_id a, b;

	(void)state;
	r = mem_repo(&kv, NULL);
	assert_int_equal(mav_writer_new(&w, r), 0);
	assert_int_equal(mav_writer_feed(w, data, len), 0);
	assert_true(mav_writer_held(w) >= len - (256u << 10));
	assert_int_equal(mav_writer_settle(w), 0);
	n = mav_writer_chunks(w, &ids, &lens);
	assert_true(n >= 2);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(
		    mav_repo_read_chunk(r, &ids[i], 0, back, lens[i]), 0);
		assert_memory_equal(back, data + at, lens[i]);
		at += lens[i];
	}
	/* Held: the uncut tail only, shorter than a maximum chunk. */
	assert_int_equal(mav_writer_held(w), len - at);
	assert_true(len - at < mav_repo_config(r)->chunk_max);
	assert_int_equal(mav_writer_settle(w), 0); /* nothing new */
	assert_int_equal(mav_writer_chunks(w, &ids, &lens), n);
	assert_int_equal(mav_writer_finish(w, &b, &size), 0);
	assert_int_equal(size, len);
	a = feed_in_pieces(r, data, len, (const size_t[]){SIZE_MAX}, 1, false);
	assert_memory_equal(&a, &b, sizeof(a));
	mav_writer_free(w);
	mav_repo_close(r);
	free(back);
	free(data);
}

/* The bytes of [off, off+len) of data, pinned from blob b: 1 and equal,
 * or 0 and nothing pinned. */
static int pin_and_compare(struct mav_repo *r, const struct mav_blob *b,
                           const uint8_t *data, uint64_t off, size_t len)
{
	struct mav_pieces pc;
	int rc = mav_repo_pin_blob(r, b, off, len, &pc);
	size_t at = (size_t)off;

	if (rc != 1) {
		assert_int_equal(pc.n, 0);
		assert_int_equal(mav_cache_in_use(r->chunks), 0);
		return rc;
	}
	assert_int_equal(pc.bytes, len);
	for (unsigned i = 0; i < pc.n; at += pc.v[i++].iov_len) {
		assert_true(pc.v[i].iov_len > 0);
		assert_memory_equal(pc.v[i].iov_base, data + at,
		                    pc.v[i].iov_len);
	}
	assert_int_equal(at, off + len);
	mav_pieces_release(&pc);
	assert_int_equal(pc.n, 0);
	assert_int_equal(mav_cache_in_use(r->chunks), 0);
	return rc;
}

/* Reads without a copy hand out the cached chunks' own bytes, from any
 * offset; a read past the end of the blob, or one of more pieces than
 * MAV_PIECES_MAX, is left to mav_repo_read_blob. */
static void test_pin_blob(void **state)
{
	size_t len = 12u << 20;
	uint8_t *data = random_buf(len, 41);
	struct mav_blob *blob = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	mav_id id;

	(void)state;
	r = mem_repo(&kv, NULL);
	id = feed_in_pieces(r, data, len, (const size_t[]){SIZE_MAX}, 1, false);
	assert_int_equal(mav_repo_get_blob(r, &id, &blob), 0);
	assert_int_equal(pin_and_compare(r, blob, data, 0, 128u << 10), 1);
	assert_int_equal(pin_and_compare(r, blob, data, 12345, 1u << 20), 1);
	assert_int_equal(pin_and_compare(r, blob, data, len - 5, 5), 1);
	assert_int_equal(pin_and_compare(r, blob, data, 7, 0), 1);
	assert_int_equal(pin_and_compare(r, blob, data, len - 5, 6), 0);
	assert_int_equal(pin_and_compare(r, blob, data, len, 1), 0);
	assert_true(blob->n > MAV_PIECES_MAX);
	assert_int_equal(pin_and_compare(r, blob, data, 0, len), 0);
	mav_blob_free(blob);
	mav_repo_close(r);
	free(data);
}

#define PROBE_CHUNKS 4000 /* small chunks per table, and per pass */

/* Puts of PROBE_CHUNKS new 64-byte chunks from `seed` into a batch that is
 * never written (only their "stored already?" lookups reach the store);
 * returns the block cache's usage after them. */
static uint64_t put_new_chunks(struct mav_repo *r, uint64_t seed)
{
	uint8_t *data = random_buf(64 * PROBE_CHUNKS, seed);
	struct mav_kv_batch *b;
	mav_id id;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	for (size_t i = 0; i < PROBE_CHUNKS; i++)
		assert_int_equal(mav_repo_put_chunk(r, b, MAV_KV_NO_WAL, &id,
		                                    data + 64 * i, 64),
		                 0);
	mav_kv_batch_free(b);
	free(data);
	return mav_kv_cache_bytes(mav_repo_kv(r));
}

/* A writer asks whether each new chunk is stored; over a large import,
 * caching the blocks those (mostly missing) lookups read made memory grow
 * with the store. They leave the block cache as it was, while looking up
 * absent chunks for a read does fill it. */
static void test_put_chunk_leaves_cache(void **state)
{
	struct mav_repo *r = NULL;
	uint64_t warm, probed, later;
	uint8_t key[MAV_CHUNK_KEY_LEN];
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/repo", dir);
	assert_int_equal(mav_repo_init(path, NULL), 0);
	assert_int_equal(mav_repo_open(&r, path, NULL), 0);
	/* Three table files of stored chunks (fewer than RocksDB's level-0
	 * compaction trigger, so they stay as they are). */
	for (uint64_t t = 0; t < 3; t++) {
		uint8_t *data = random_buf(64 * PROBE_CHUNKS, 100 + t);
		struct mav_kv_batch *b;
		mav_id id;

		assert_int_equal(mav_kv_batch_new(&b), 0);
		for (size_t i = 0; i < PROBE_CHUNKS; i++)
			assert_int_equal(mav_repo_put_chunk(r, b, MAV_KV_NO_WAL,
			                                    &id, data + 64 * i,
			                                    64),
			                 0);
		assert_int_equal(mav_repo_write(r, b, MAV_KV_NO_WAL), 0);
		assert_int_equal(mav_repo_flush(r), 0);
		mav_kv_batch_free(b);
		free(data);
	}
	mav_repo_close(r);
	assert_int_equal(mav_repo_open(&r, path, NULL), 0);
	/* The first pass loads index and filter blocks, which stay. Then
	 * nothing more: a cached block per false positive was about 180 KB
	 * a pass. (Not exactly nothing: a table RocksDB finishes in the
	 * background meanwhile brings its own index and filter, 6 KB.) */
	warm = put_new_chunks(r, 200);
	probed = put_new_chunks(r, 201);
	assert_true(probed < warm + 16 * 1024);
	/* The read path's lookup of absent ids keeps what it reads. */
	for (uint64_t i = 0; i < PROBE_CHUNKS; i++) {
		mav_id id;

		mav_id_hash(&id, &i, sizeof(i)); /* spread as chunk ids are */
		assert_int_equal(mav_repo_chunk_key(r, &id, key),
		                 MAV_ENOTFOUND);
	}
	later = mav_kv_cache_bytes(mav_repo_kv(r));
	assert_true(later > probed + 64 * 1024);
	mav_repo_close(r);
}

/* Chunks lie in the order they were written, also after a reopen: each
 * file's chunks side by side, the second file's after the first's. */
static void test_chunks_stored_in_write_order(void **state)
{
	struct mav_repo *r = NULL;
	struct mav_blob *b[2];
	struct mav_kv_iter *it = NULL;
	char path[128];
	uint32_t n = 0;
	size_t klen;

	(void)state;
	snprintf(path, sizeof(path), "%s/repo", dir);
	assert_int_equal(mav_repo_init(path, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mav_repo_open(&r, path, NULL), 0);
		b[i] = write_file(r, 2u << 20, 11 + (uint64_t)i);
		assert_true(b[i]->n >= 4);
		if (i == 0)
			mav_repo_close(r);
	}
	assert_int_equal(mav_kv_iter_new(&it, mav_repo_kv(r), MAV_CF_CHUNKS),
	                 0);
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it), n++) {
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		const struct mav_blob *f = n < b[0]->n ? b[0] : b[1];
		uint32_t i = n < b[0]->n ? n : n - b[0]->n;

		assert_int_equal(klen, MAV_CHUNK_KEY_LEN);
		assert_true(i < f->n);
		assert_memory_equal(k + 8, f->ids[i].b, MAV_ID_LEN);
	}
	assert_int_equal(n, b[0]->n + b[1]->n);
	mav_kv_iter_free(it);
	mav_blob_free(b[0]);
	mav_blob_free(b[1]);
	mav_repo_close(r);
}

static bool chunk_cached(struct mav_repo *r, const struct mav_blob *b,
                         uint32_t i)
{
	struct mav_cache_entry *e = mav_cache_get(r->chunks, &b->ids[i]);

	if (e)
		mav_cache_release(r->chunks, e);
	return e != NULL;
}

static uint32_t cached_count(struct mav_repo *r, const struct mav_blob *b,
                             uint32_t from, uint32_t to)
{
	uint32_t n = 0;

	for (uint32_t i = from; i <= to; i++)
		n += chunk_cached(r, b, i);
	return n;
}

/* odb.c's prefetch policy: a small read at the start of a file queues the
 * next PREFETCH_AHEAD (32) chunks for the prefetch threads, and no more. */
static void test_read_from_start_prefetches_32(void **state)
{
	const size_t len = 6u << 20;
	uint8_t *data = random_buf(len, 11), out[100];
	struct mav_writer *w = NULL;
	struct mav_blob *b = NULL;
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	uint64_t size;
	size_t got;
	mav_id id;

	(void)state;
	r = mem_repo(&kv, NULL);
	assert_int_equal(mav_writer_new(&w, r), 0);
	assert_int_equal(mav_writer_feed(w, data, len), 0);
	assert_int_equal(mav_writer_finish(w, &id, &size), 0);
	mav_writer_free(w);
	assert_int_equal(mav_repo_get_blob(r, &id, &b), 0);
	assert_true(b->n > 40);
	mav_cache_clear(r->chunks);
	assert_int_equal(mav_repo_start_prefetch(r, 2), 0);

	assert_int_equal(mav_repo_read_blob(r, b, 0, out, sizeof(out), &got),
	                 0);
	assert_memory_equal(out, data, sizeof(out));
	for (int t = 0; t < 5000 && cached_count(r, b, 1, 32) < 32; t++)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	assert_int_equal(cached_count(r, b, 1, 32), 32);
	assert_false(chunk_cached(r, b, 33));
	mav_blob_free(b);
	mav_repo_close(r); /* joins the prefetch threads */
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_open_errors, mkdir_tmp,
	                                    rm_tmp),
	    cmocka_unit_test_setup_teardown(test_other_format_refused,
	                                    mkdir_tmp, rm_tmp),
	    cmocka_unit_test(test_refs_and_revs),
	    cmocka_unit_test(test_logged_put_does_not_lean_on_nowal),
	    cmocka_unit_test(test_chunk_without_frame_stored_again),
	    cmocka_unit_test(test_chunk_twice_in_batch_stored_once),
	    cmocka_unit_test(test_writer_writes_behind),
	    cmocka_unit_test(test_writer_cuts_whatever_the_pieces),
	    cmocka_unit_test(test_writer_settled_holds_its_tail),
	    cmocka_unit_test(test_writer_settle_stores_what_is_decided),
	    cmocka_unit_test(test_writer_zeros_as_fed),
	    cmocka_unit_test(test_writer_huge_hole),
	    cmocka_unit_test(test_pin_blob),
	    cmocka_unit_test_setup_teardown(test_chunks_stored_in_write_order,
	                                    mkdir_tmp, rm_tmp),
	    cmocka_unit_test_setup_teardown(test_put_chunk_leaves_cache,
	                                    mkdir_tmp, rm_tmp),
	    cmocka_unit_test(test_read_from_start_prefetches_32),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
