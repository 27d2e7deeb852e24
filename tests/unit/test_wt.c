/* test_wt.c - working trees and snapshot views over the in-memory store. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <xxhash.h>

#include "testdata.h"

#include "cache.h"

#include "mav/error.h"
#include "mav/kv.h"
#include "mav/maint.h"
#include "mav/repo.h"
#include "mav/wt.h"
#include "repo_internal.h"

struct fx {
	struct mav_kv *fault; /* borrowed: owned by the repo */
	struct mav_repo *r;
	struct mav_wt *wt;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mav_kv *mem = NULL;

	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&f->fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&f->r, f->fault, true, NULL), 0);
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

static uint64_t mkfile(struct mav_wt *wt, uint64_t dir, const char *name,
                       const void *data, size_t len)
{
	struct mav_attr a;

	assert_int_equal(mav_wt_create(&a, wt, dir, name, 0644, 1000, 1000), 0);
	if (len)
		assert_int_equal(mav_wt_write(wt, a.ino, 0, data, len),
		                 (ssize_t)len);
	return a.ino;
}

static uint64_t look(struct mav_wt *wt, uint64_t dir, const char *name)
{
	struct mav_attr a;
	int rc = mav_wt_lookup(&a, wt, dir, name);

	return rc == 0 ? a.ino : 0;
}

/* A read without a copy of the whole file: 1 and the bytes of data, or 0
 * (unsealed writes: read them with mav_wt_read). */
static int expect_pinned(struct mav_wt *wt, uint64_t ino, const void *data,
                         size_t len)
{
	struct mav_pieces pc;
	int rc = mav_wt_read_pinned(wt, ino, 0, len + 16, &pc);
	size_t at = 0;

	assert_true(rc == 0 || rc == 1);
	for (unsigned i = 0; i < pc.n; at += pc.v[i++].iov_len)
		assert_memory_equal(pc.v[i].iov_base,
		                    (const uint8_t *)data + at,
		                    pc.v[i].iov_len);
	assert_int_equal(at, pc.bytes);
	assert_int_equal(pc.bytes, rc == 1 ? len : 0);
	mav_pieces_release(&pc);
	return rc;
}

static void expect_content(struct mav_wt *wt, uint64_t ino, const void *data,
                           size_t len)
{
	uint8_t *buf = malloc(len + 16);
	struct mav_attr a;

	assert_int_equal(mav_wt_getattr(&a, wt, ino), 0);
	assert_int_equal(a.size, len);
	assert_int_equal(mav_wt_read(wt, ino, 0, buf, len + 16), (ssize_t)len);
	assert_memory_equal(buf, data, len);
	free(buf);
	expect_pinned(wt, ino, data, len);
}

/* A read at or past the end of a sealed file is empty, as mav_wt_read
 * answers there, and needs nothing from the store: its blob is out of the
 * cache and the store fails every call meanwhile. */
static void expect_nothing_past_end(struct fx *f, uint64_t ino, uint64_t size)
{
	struct mav_pieces pc;
	uint8_t b;

	mav_cache_clear(f->r->blobs);
	mav_kv_fault_fail_after(f->fault, 1, -EIO);
	for (uint64_t off = size; off <= size + 4096; off += 4096) {
		assert_int_equal(mav_wt_read(f->wt, ino, off, &b, 1), 0);
		assert_int_equal(mav_wt_read_pinned(f->wt, ino, off, 1, &pc),
		                 1);
		assert_int_equal(pc.n, 0);
		assert_int_equal(pc.bytes, 0);
	}
	mav_kv_fault_clear(f->fault);
}

static uint64_t snap(struct mav_wt *wt, mav_id *commit)
{
	struct mav_snapshot_opts o = {.message = "m", .author = "t"};
	uint64_t v = 0;
	int rc = mav_wt_snapshot(commit, &v, wt, &o);

	if (rc < 0)
		print_error("snapshot: %s\n", mav_error_message());
	assert_int_equal(rc, 0);
	return v;
}

static void test_write_read_snapshot(void **state)
{
	struct fx *f = *state;
	struct mav_wt *view = NULL;
	struct mav_attr a;
	mav_id c1, c2;
	uint64_t ino, d;

	ino = mkfile(f->wt, MAV_WT_ROOT, "hello.txt", "hello world", 11);
	expect_content(f->wt, ino, "hello world", 11);
	assert_int_equal(
	    mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "sub", 0755, 0, 0), 0);
	d = a.ino;
	mkfile(f->wt, d, "a", "AAA", 3);
	assert_int_equal(snap(f->wt, &c1), 1);
	/* After the snapshot the same inodes still answer. */
	expect_content(f->wt, ino, "hello world", 11);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c1), 0);
	d = look(view, MAV_WT_ROOT, "sub");
	assert_true(d != 0);
	expect_content(view, look(view, d, "a"), "AAA", 3);
	assert_int_equal(mav_wt_write(view, look(view, d, "a"), 0, "x", 1),
	                 -EROFS);
	mav_wt_close(view);
	/* Change and snapshot again: v2, v1 unchanged. Bytes written but
	 * not sealed are not read without a copy; sealed, they are. */
	assert_int_equal(expect_pinned(f->wt, ino, "hello world", 11), 1);
	assert_int_equal(mav_wt_write(f->wt, ino, 6, "WORLD", 5), 5);
	assert_int_equal(expect_pinned(f->wt, ino, "hello WORLD", 11), 0);
	assert_int_equal(snap(f->wt, &c2), 2);
	assert_int_equal(expect_pinned(f->wt, ino, "hello WORLD", 11), 1);
	expect_nothing_past_end(f, ino, 11);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c1), 0);
	expect_content(view, look(view, MAV_WT_ROOT, "hello.txt"),
	               "hello world", 11);
	mav_wt_close(view);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c2), 0);
	expect_content(view, look(view, MAV_WT_ROOT, "hello.txt"),
	               "hello WORLD", 11);
	mav_wt_close(view);
}

static void test_small_edit_costs_few_chunks(void **state)
{
	struct fx *f = *state;
	size_t len = 8u << 20, before;
	uint8_t *data = random_buf(len, 7);
	uint64_t ino, calls;
	mav_id c;

	ino = mkfile(f->wt, MAV_WT_ROOT, "big", data, len);
	snap(f->wt, &c);
	before = kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNKS);
	calls = mav_kv_fault_calls(f->fault);
	data[len / 2] ^= 0xff;
	assert_int_equal(mav_wt_write(f->wt, ino, len / 2, data + len / 2, 1),
	                 1);
	snap(f->wt, &c);
	assert_true(kv_count_keys(mav_repo_kv(f->r), MAV_CF_CHUNKS) - before <=
	            3);
	/* Only the edited region was cut and looked up again: chunking the
	 * whole file anew would ask the store about each of its ~128 chunks
	 * (content-defined cuts fall back in step, so the chunks stored
	 * alone cannot tell the two apart). */
	calls = mav_kv_fault_calls(f->fault) - calls;
	print_message("# kv calls for the edit and its snapshot: %llu\n",
	              (unsigned long long)calls);
	assert_true(calls < 64);
	expect_content(f->wt, ino, data, len);
	free(data);
}

/* Store calls of the snapshot of one changed file in a fresh repository of
 * ndirs directories of 20 files each. */
static uint64_t one_change_snapshot_calls(unsigned ndirs)
{
	struct mav_kv *mem = NULL, *fault = NULL;
	struct mav_repo *r = NULL;
	struct mav_wt *wt = NULL;
	struct mav_attr a;
	uint64_t calls, first = 0;
	char name[32];
	mav_id c;

	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, fault, true, NULL), 0);
	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	for (unsigned d = 0; d < ndirs; d++) {
		snprintf(name, sizeof(name), "d%03u", d);
		assert_int_equal(
		    mav_wt_mkdir(&a, wt, MAV_WT_ROOT, name, 0755, 0, 0), 0);
		for (unsigned i = 0; i < 20; i++) {
			uint64_t ino;

			snprintf(name, sizeof(name), "f%02u", i);
			ino = mkfile(wt, a.ino, name, name, strlen(name));
			first = first ? first : ino;
		}
	}
	snap(wt, &c);
	assert_int_equal(mav_wt_write(wt, first, 0, "changed", 7), 7);
	/* Cold caches: a snapshot that visited untouched directories would
	 * read their trees from the store. */
	mav_cache_clear(r->trees);
	mav_cache_clear(r->blobs);
	calls = mav_kv_fault_calls(fault);
	snap(wt, &c);
	calls = mav_kv_fault_calls(fault) - calls;
	mav_wt_close(wt);
	mav_repo_close(r);
	return calls;
}

/* A snapshot builds trees only for the directories a change touched: one
 * changed file costs the same in 200 files as in 4000. */
static void test_snapshot_cost_follows_the_change(void **state)
{
	uint64_t small = one_change_snapshot_calls(10);
	uint64_t big = one_change_snapshot_calls(200);

	(void)state;
	print_message("# store calls of the snapshot: %llu in 200 files, "
	              "%llu in 4000\n",
	              (unsigned long long)small, (unsigned long long)big);
	assert_true(big <= small + 2);
}

/* Stored bytes of every object. */
static size_t object_bytes(struct mav_repo *r, mav_id *paged)
{
	struct mav_kv_iter *it = NULL;
	size_t n = 0, klen, vlen;

	assert_int_equal(mav_kv_iter_new(&it, mav_repo_kv(r), MAV_CF_OBJECTS),
	                 0);
	for (mav_kv_iter_seek(it, "", 0); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		const void *k = mav_kv_iter_key(it, &klen);
		const void *v = mav_kv_iter_value(it, &vlen);

		if (paged && mav_object_kind(v, vlen) == 'P')
			memcpy(paged->b, k, MAV_ID_LEN);
		n += vlen;
	}
	mav_kv_iter_free(it);
	return n;
}

static void collect_problem(void *ctx, const char *line)
{
	strncat(ctx, line, 511 - strlen(ctx));
}

/* A file of more chunks than one blob holds flat is stored as pages under
 * an index: an edit in its middle stores a page or two and a new index,
 * not its whole chunk list again; fsck checks the pages and gc keeps
 * them. */
static void test_big_file_paged(void **state)
{
	struct mav_repo_config cfg;
	struct mav_fsck_report rep;
	struct mav_gc_report gc;
	struct mav_blob_index *x = NULL;
	struct mav_blob *blob = NULL;
	struct mav_kv_batch *b = NULL;
	struct mav_kv *mem = NULL;
	struct mav_repo *r = NULL;
	struct mav_wt *wt = NULL;
	size_t len = 8u << 20, before, flat;
	uint8_t *data = random_buf(len, 9);
	char problems[512] = "", hex[MAV_ID_HEX_LEN + 1];
	void *enc = NULL;
	size_t elen;
	uint64_t ino;
	mav_id c, index = {{0}};

	(void)state;
	mav_repo_config_default(&cfg);
	cfg.chunk_min = 256; /* 8 MiB in about 7000 chunks */
	cfg.chunk_avg = 1024;
	cfg.chunk_max = 4096;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, mem, true, &cfg), 0);
	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	ino = mkfile(wt, MAV_WT_ROOT, "big", data, len);
	snap(wt, &c);
	before = object_bytes(r, &index);
	assert_int_equal(mav_repo_get_object(r, &index, &enc, &elen), 0);
	assert_int_equal(mav_blob_index_decode(&x, enc, elen), 0);
	free(enc);
	assert_true(x->n > MAV_BLOB_FLAT_MAX && x->npages >= 3);
	assert_int_equal(x->size, len);
	flat = (size_t)x->n * (MAV_ID_LEN + 4);

	data[len / 2] ^= 0xff;
	assert_int_equal(mav_wt_write(wt, ino, len / 2, data + len / 2, 1), 1);
	snap(wt, &c);
	assert_true(object_bytes(r, NULL) - before < flat / 3);
	expect_content(wt, ino, data, len);

	assert_int_equal(mav_gc(&gc, r, NULL, NULL), 0);
	assert_int_equal(mav_fsck(&rep, r, collect_problem, NULL, problems), 0);
	assert_int_equal(rep.problems, 0);
	/* An index whose pages are not what it says (the totals still add
	 * up) is refused, naming the page. */
	x->p[0].n++;
	x->p[1].n--;
	assert_int_equal(
	    mav_blob_index_encode((uint8_t **)&enc, &elen, x->p, x->npages), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_object(r, b, 0, &c, enc, elen), 0);
	assert_int_equal(mav_repo_write(r, b, 0), 0);
	free(enc);
	assert_int_equal(mav_repo_get_blob(r, &c, &blob), MAV_ECORRUPT);
	mav_id_hex(hex, &x->p[0].id);
	assert_non_null(strstr(mav_error_message(), hex));
	mav_kv_batch_free(b);
	x->p[0].n--;
	x->p[1].n++;
	/* A page lost is found and named. */
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(
	    mav_kv_batch_del(b, MAV_CF_OBJECTS, x->p[0].id.b, MAV_ID_LEN), 0);
	assert_int_equal(mav_repo_write(r, b, 0), 0);
	assert_int_equal(mav_fsck(&rep, r, collect_problem, NULL, problems), 0);
	assert_true(rep.problems >= 1);
	mav_id_hex(hex, &x->p[0].id);
	assert_non_null(strstr(problems, hex));
	mav_kv_batch_free(b);
	mav_blob_index_free(x);
	mav_wt_forget(wt, ino, 1);
	mav_wt_close(wt);
	mav_repo_close(r);
	free(data);
}

/* Files and directories created in a working tree keep their inode
 * numbers through the snapshot that takes them, also when the kernel
 * forgets them afterwards, as ext4's would: git's index and backup tools
 * compare them. The same names in the snapshot's view get the same
 * numbers too. A second file created under a name whose number is taken
 * gets another. */
static void test_created_inode_numbers_stay(void **state)
{
	struct fx *f = *state;
	struct mav_wt *view = NULL;
	struct mav_attr a;
	uint64_t d, x, top;
	mav_id c;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	d = a.ino;
	x = mkfile(f->wt, d, "x", "X", 1);
	top = mkfile(f->wt, MAV_WT_ROOT, "top", "T", 1);
	snap(f->wt, &c);
	/* The kernel held each once (create, mkdir): it forgets them. */
	mav_wt_forget(f->wt, x, 1);
	mav_wt_forget(f->wt, top, 1);
	mav_wt_forget(f->wt, d, 1);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "top"), top);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(f->wt, d, "x"), x);
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(f->wt, d, "x"), x);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	assert_int_equal(look(view, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(view, d, "x"), x);
	mav_wt_close(view);
	/* x unlinked while the kernel holds it (an open file): a new x may
	 * not take its number. */
	assert_int_equal(mav_wt_unlink(f->wt, d, "x"), 0);
	assert_true(mkfile(f->wt, d, "x", "Y", 1) != x);
}

/* In a snapshot's view a name keeps its inode number when the kernel
 * forgets it and looks it up again, and when the view is opened anew;
 * the names of a hard link share one. */
static void test_view_inode_numbers_stay(void **state)
{
	struct fx *f = *state;
	struct mav_wt *view = NULL;
	struct mav_attr a;
	uint64_t d, x, y, l1, l2;
	mav_id c;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	d = a.ino;
	x = mkfile(f->wt, d, "x", "X", 1);
	mkfile(f->wt, d, "y", "Y", 1);
	assert_int_equal(mav_wt_link(&a, f->wt, x, MAV_WT_ROOT, "x-link"), 0);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	d = look(view, MAV_WT_ROOT, "d");
	x = look(view, d, "x");
	y = look(view, d, "y");
	l1 = look(view, MAV_WT_ROOT, "x-link");
	assert_true(d && x && y && x != y && x != d);
	assert_int_equal(l1, x);
	/* Forgotten by the kernel (the lookups above are its references),
	 * then looked up again in the other order. */
	mav_wt_forget(view, l1, 1);
	mav_wt_forget(view, x, 1);
	mav_wt_forget(view, y, 1);
	mav_wt_forget(view, d, 1);
	assert_int_equal(look(view, MAV_WT_ROOT, "x-link"), x);
	assert_int_equal(look(view, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(view, d, "y"), y);
	assert_int_equal(look(view, d, "x"), x);
	mav_wt_close(view);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	assert_int_equal(look(view, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(view, d, "y"), y);
	l2 = look(view, d, "x");
	assert_int_equal(l2, x);
	mav_wt_close(view);
	/* A working tree opened on the snapshot numbers its unchanged files
	 * the same way, also after the kernel forgot them; a changed one
	 * keeps its number while its record is persisted. */
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(f->wt, d, "y"), y);
	assert_int_equal(mav_wt_write(f->wt, y, 1, "!", 1), 1);
	assert_int_equal(mav_wt_fsync(f->wt, y), 0);
	mav_wt_forget(f->wt, y, 1);
	mav_wt_forget(f->wt, d, 1);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(f->wt, d, "y"), y);
	assert_int_equal(look(f->wt, d, "x"), x);
	/* And when the working tree is opened again (y from its record). */
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), d);
	assert_int_equal(look(f->wt, d, "x"), x);
	assert_int_equal(look(f->wt, d, "y"), y);
}

/* The number a base-tree node named name in directory parent asks for
 * (wt.c base_ino), before it moves on past numbers already taken. */
static uint64_t wanted_ino(uint64_t parent, const char *name)
{
	uint64_t top = UINT64_C(1) << 39;

	return top |
	       (XXH3_64bits_withSeed(name, strlen(name), parent) & (top - 1));
}

struct named_hash {
	uint64_t h;
	uint32_t i;
};

static int by_hash(const void *a, const void *b)
{
	const struct named_hash *x = a, *y = b;

	return (x->h > y->h) - (x->h < y->h);
}

/* Two names that ask for the same number in the root (a birthday search:
 * 2^21 names over 2^39 numbers collide with near certainty). */
static void colliding_names(char a[16], char b[16])
{
	size_t n = 1u << 21;
	struct named_hash *v = malloc(n * sizeof(*v));
	char name[16];

	assert_non_null(v);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%07u", i);
		v[i] = (struct named_hash){wanted_ino(MAV_WT_ROOT, name), i};
	}
	qsort(v, n, sizeof(*v), by_hash);
	for (size_t i = 1; i < n; i++)
		if (v[i].h == v[i - 1].h) {
			snprintf(a, 16, "n%07u", v[i - 1].i);
			snprintf(b, 16, "n%07u", v[i].i);
			free(v);
			return;
		}
	fail_msg("no two names collide");
}

/* A number held by a persisted record is not given to another node, also
 * when that record's node is out of memory and after a reopen: the two
 * names below ask for the same number, and the first, changed, keeps it. */
static void test_base_ino_skips_persisted_numbers(void **state)
{
	struct fx *f = *state;
	char na[16], nb[16];
	uint64_t a, b;
	mav_id c;

	colliding_names(na, nb);
	mkfile(f->wt, MAV_WT_ROOT, na, "A", 1);
	mkfile(f->wt, MAV_WT_ROOT, nb, "B", 1);
	snap(f->wt, &c);
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	a = look(f->wt, MAV_WT_ROOT, na);
	assert_int_equal(a, wanted_ino(MAV_WT_ROOT, na));
	assert_int_equal(mav_wt_write(f->wt, a, 1, "!", 1), 1);
	assert_int_equal(mav_wt_fsync(f->wt, a), 0);
	mav_wt_forget(f->wt, a, 1); /* out of memory; its record stays */
	for (int round = 0; round < 2; round++) {
		b = look(f->wt, MAV_WT_ROOT, nb);
		assert_true(b != a);
		assert_int_equal(look(f->wt, MAV_WT_ROOT, na), a);
		expect_content(f->wt, a, "A!", 2);
		expect_content(f->wt, b, "B", 1);
		mav_wt_forget(f->wt, a, 1);
		mav_wt_forget(f->wt, b, 1);
		mav_wt_close(f->wt); /* and again, as opened anew */
		assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	}
}

struct snap_job {
	struct mav_wt *wt;
	mav_id commit;
	int rc;
};

static void *snap_main(void *arg)
{
	struct snap_job *j = arg;
	struct mav_snapshot_opts o = {.message = "m", .author = "t"};
	uint64_t v;

	j->rc = mav_wt_snapshot(&j->commit, &v, j->wt, &o);
	return NULL;
}

/* The kernel sends a write() that starts inside an uncached page as two
 * requests, cut at the page's end. A snapshot taken between them waits
 * for the second, also when its writer is slow to send it (30 ms here;
 * it took over 5 ms on a busy machine), so the write is wholly in. */
static void test_snapshot_waits_for_split_write(void **state)
{
	struct fx *f = *state;
	struct timespec slow = {0, 30000000};
	uint8_t rec[5100], back[5200];
	struct mav_wt *view = NULL;
	struct snap_job j = {.wt = f->wt};
	pthread_t t;
	uint64_t ino;

	memset(rec, 'r', sizeof(rec));
	ino = mkfile(f->wt, MAV_WT_ROOT, "log", rec, 100);
	assert_int_equal(mav_wt_write(f->wt, ino, 100, rec + 100, 3996), 3996);
	assert_int_equal(pthread_create(&t, NULL, snap_main, &j), 0);
	nanosleep(&slow, NULL);
	assert_int_equal(mav_wt_write(f->wt, ino, 4096, rec + 4096, 1004),
	                 1004);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.rc, 0);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &j.commit), 0);
	assert_int_equal(mav_wt_read(view, look(view, MAV_WT_ROOT, "log"), 0,
	                             back, sizeof(back)),
	                 sizeof(rec));
	mav_wt_close(view);
}

static void test_holes_truncate_append(void **state)
{
	struct fx *f = *state;
	uint8_t expect[300000] = {0};
	struct mav_attr in = {.size = 10}, a;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "h", "0123456789abc", 13);
	mav_id c;

	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_SIZE), 0);
	assert_int_equal(mav_wt_write(f->wt, ino, 200000, "Z", 1), 1);
	memcpy(expect, "0123456789", 10);
	expect[200000] = 'Z';
	expect_content(f->wt, ino, expect, 200001);
	snap(f->wt, &c);
	expect_content(f->wt, ino, expect, 200001);
	assert_int_equal(mav_wt_write(f->wt, ino, 200001, "tail", 4), 4);
	memcpy(expect + 200001, "tail", 4);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	expect_content(f->wt, ino, expect, 200005);
	/* Grow-only (fallocate): a smaller size leaves the file alone, a
	 * bigger one adds zeros. */
	for (int i = 0; i < 2; i++) {
		size_t ask = i ? 250000 : 100, want = i ? 250000 : 200005;

		in.size = ask;
		assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in,
		                                MAV_SET_SIZE | MAV_SET_GROW),
		                 0);
		assert_int_equal(a.size, want);
		expect_content(f->wt, ino, expect, want);
	}
}

/* fallocate's PUNCH_HOLE and ZERO_RANGE: the range reads as zeros at once
 * and holds no bytes in memory, whatever its length; sealed, it is holes,
 * and the bytes around it are kept. */
static void test_zero_range(void **state)
{
	struct fx *f = *state;
	const uint64_t mib = 1u << 20, gib = 1ull << 30;
	uint8_t *data = malloc(4 * mib), *expect = malloc(4 * mib);
	struct mav_attr a, in = {.size = 64 * gib};
	uint64_t ino, big;
	char got[2];
	mav_id c;

	for (size_t i = 0; i < 4 * mib; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	ino = mkfile(f->wt, MAV_WT_ROOT, "z", data, 4 * mib);
	snap(f->wt, &c);
	memcpy(expect, data, 4 * mib);
	memset(expect + mib + 5, 0, 2 * mib);
	assert_int_equal(mav_wt_zero(f->wt, ino, mib + 5, 2 * mib), 0);
	assert_int_equal(mav_wt_held(f->wt), 0);
	expect_content(f->wt, ino, expect, 4 * mib);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	expect_content(f->wt, ino, expect, 4 * mib);
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino), 0);
	assert_true(a.holes >= 2 * mib - 3 * f->r->zero_len);
	/* Past the end nothing happens; a write over zeros wins. */
	assert_int_equal(mav_wt_zero(f->wt, ino, 4 * mib, gib), 0);
	assert_int_equal(mav_wt_zero(f->wt, ino, 0, 3), 0);
	assert_int_equal(mav_wt_write(f->wt, ino, 1, "Q", 1), 1);
	memset(expect, 0, 3);
	expect[1] = 'Q';
	expect_content(f->wt, ino, expect, 4 * mib);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	expect_content(f->wt, ino, expect, 4 * mib);
	/* 62 GiB of zeros inside a 64 GiB file seal as counted chunks. */
	big = mkfile(f->wt, MAV_WT_ROOT, "big", "A", 1);
	assert_int_equal(mav_wt_setattr(&a, f->wt, big, &in, MAV_SET_SIZE), 0);
	assert_int_equal(mav_wt_write(f->wt, big, 32 * gib, "M", 1), 1);
	assert_int_equal(mav_wt_fsync(f->wt, big), 0);
	assert_int_equal(mav_wt_zero(f->wt, big, gib, 62 * gib), 0);
	assert_int_equal(mav_wt_held(f->wt), 0);
	assert_int_equal(mav_wt_read(f->wt, big, 32 * gib, got, 1), 1);
	assert_int_equal(got[0], 0);
	assert_int_equal(mav_wt_fsync(f->wt, big), 0);
	assert_int_equal(mav_wt_read(f->wt, big, 0, got, 1), 1);
	assert_int_equal(got[0], 'A');
	assert_int_equal(mav_wt_getattr(&a, f->wt, big), 0);
	assert_true(a.size == 64 * gib && a.holes >= 64 * gib - mib);
	/* Only files of a working tree. */
	assert_int_equal(mav_wt_zero(f->wt, MAV_WT_ROOT, 0, 1), -EISDIR);
	free(data);
	free(expect);
}

/* A whole file's copy_file_range: the empty destination gets the source's
 * content id, from a snapshot or from the same working tree, with a few
 * store calls whatever the size; later writes to either leave the other
 * alone. A destination with content keeps it (-EOPNOTSUPP). */
static void test_clone(void **state)
{
	struct fx *f = *state;
	const uint64_t mib = 1u << 20;
	uint8_t *data = malloc(8 * mib);
	uint64_t src, dst, dst2, busy, size = 0, calls;
	struct mav_wt *view = NULL;
	mav_id c, id, got;

	for (size_t i = 0; i < 8 * mib; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 11);
	src = mkfile(f->wt, MAV_WT_ROOT, "src", data, 8 * mib);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	assert_int_equal(
	    mav_wt_content_id(&id, &size, view, look(view, MAV_WT_ROOT, "src")),
	    0);
	assert_int_equal(size, 8 * mib);
	dst = mkfile(f->wt, MAV_WT_ROOT, "dst", NULL, 0);
	calls = mav_kv_fault_calls(f->fault);
	assert_int_equal(mav_wt_clone(f->wt, dst, &id, size), 0);
	assert_true(mav_kv_fault_calls(f->fault) - calls < 8);
	expect_content(f->wt, dst, data, 8 * mib);
	assert_int_equal(mav_wt_content_id(&got, NULL, f->wt, dst), 0);
	assert_int_equal(mav_id_cmp(&got, &id), 0);
	/* From the working tree itself, after an edit of the source. */
	assert_int_equal(mav_wt_write(f->wt, src, 5, "edit", 4), 4);
	assert_int_equal(mav_wt_content_id(&got, &size, f->wt, src), 0);
	dst2 = mkfile(f->wt, MAV_WT_ROOT, "dst2", NULL, 0);
	assert_int_equal(mav_wt_clone(f->wt, dst2, &got, size), 0);
	assert_int_equal(mav_wt_write(f->wt, dst2, 0, "Z", 1), 1);
	expect_content(f->wt, dst, data, 8 * mib); /* the snapshot's bytes */
	memcpy(data + 5, "edit", 4);
	expect_content(f->wt, src, data, 8 * mib);
	data[0] = 'Z';
	expect_content(f->wt, dst2, data, 8 * mib);
	/* Only into an empty file of a working tree. */
	busy = mkfile(f->wt, MAV_WT_ROOT, "busy", "x", 1);
	assert_int_equal(mav_wt_clone(f->wt, busy, &id, 8 * mib), -EOPNOTSUPP);
	expect_content(f->wt, busy, "x", 1);
	assert_int_equal(
	    mav_wt_clone(view, look(view, MAV_WT_ROOT, "src"), &id, 8 * mib),
	    -EROFS);
	assert_int_equal(mav_wt_clone(f->wt, MAV_WT_ROOT, &id, 8 * mib),
	                 -EISDIR);
	mav_wt_close(view);
	snap(f->wt, &c);
	free(data);
}

static void test_rename_unlink_link(void **state)
{
	struct fx *f = *state;
	uint64_t a = mkfile(f->wt, MAV_WT_ROOT, "a", "A", 1);
	uint64_t b = mkfile(f->wt, MAV_WT_ROOT, "b", "B", 1);
	struct mav_attr at;
	mav_id c;

	snap(f->wt, &c);
	assert_int_equal(mav_wt_rename(f->wt, MAV_WT_ROOT, "a", MAV_WT_ROOT,
	                               "b", MAV_RENAME_NOREPLACE),
	                 -EEXIST);
	assert_int_equal(mav_wt_rename(f->wt, MAV_WT_ROOT, "a", MAV_WT_ROOT,
	                               "b", MAV_RENAME_EXCHANGE),
	                 0);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "a"), "B", 1);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "b"), "A", 1);
	assert_int_equal(
	    mav_wt_rename(f->wt, MAV_WT_ROOT, "a", MAV_WT_ROOT, "b", 0), 0);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "a"), 0);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "b"), "B", 1);
	/* The replaced inode (a's old content) is still readable: open. */
	expect_content(f->wt, a, "A", 1);
	assert_int_equal(mav_wt_link(&at, f->wt, b, MAV_WT_ROOT, "b2"), 0);
	assert_int_equal(at.nlink, 2);
	assert_int_equal(mav_wt_unlink(f->wt, MAV_WT_ROOT, "b"), 0);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "b2"), "B", 1);
	assert_int_equal(mav_wt_mkdir(&at, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	assert_int_equal(mav_wt_rename(f->wt, MAV_WT_ROOT, "d", at.ino, "x", 0),
	                 -EINVAL);
	mkfile(f->wt, at.ino, "inside", "", 0);
	assert_int_equal(mav_wt_rmdir(f->wt, MAV_WT_ROOT, "d"), -ENOTEMPTY);
	assert_int_equal(mav_wt_unlink(f->wt, at.ino, "inside"), 0);
	assert_int_equal(mav_wt_rmdir(f->wt, MAV_WT_ROOT, "d"), 0);
	snap(f->wt, &c);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "d"), 0);
}

static void test_xattrs(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "img", "x", 1);
	struct mav_wt *view = NULL;
	char buf[128];
	mav_id c;

	assert_int_equal(
	    mav_wt_setxattr(f->wt, ino, "user.mav.license", "CC-BY", 5, 0), 0);
	assert_int_equal(mav_wt_setxattr(f->wt, ino, "trusted.x", "1", 1, 0),
	                 -EOPNOTSUPP);
	assert_int_equal(mav_wt_setxattr(f->wt, ino, "user.mav.license", "x", 1,
	                                 MAV_XATTR_CREATE),
	                 -EEXIST);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	ino = look(view, MAV_WT_ROOT, "img");
	assert_int_equal(
	    mav_wt_getxattr(view, ino, "user.mav.license", buf, sizeof(buf)),
	    5);
	assert_memory_equal(buf, "CC-BY", 5);
	assert_int_equal(mav_wt_getxattr(view, ino, "user.mav.id", buf, 0), 64);
	assert_int_equal(mav_wt_getxattr(view, ino, "user.nope", buf, 10),
	                 -ENODATA);
	assert_int_equal(
	    mav_wt_listxattr(view, ino, buf, sizeof(buf)),
	    (ssize_t)(sizeof("user.mav.license") + sizeof("user.mav.id")));
	mav_wt_close(view);
}

/* chmod and utimens of a file with unsealed writes (cp -a does both to
 * every file it copies) touch no store: the file's record is written when
 * its writes are sealed, so the change is in the next snapshot and, once
 * fsync'd, survives a power loss. */
static void test_setattr_of_unsealed_file(void **state)
{
	struct fx *f = *state;
	struct mav_attr in = {.mode = 0600, .mtime_ns = 1650000000000000000}, a;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "copy", "copied", 6),
	         ino2 = mkfile(f->wt, MAV_WT_ROOT, "copy2", "second", 6);
	struct mav_wt *view = NULL;
	mav_id c;

	mav_kv_fault_fail_after(f->fault, 1, -EIO);
	assert_int_equal(
	    mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_MODE | MAV_SET_MTIME),
	    0);
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino2, &in, MAV_SET_MODE), 0);
	mav_kv_fault_clear(f->fault);
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino), 0);
	assert_int_equal(a.mode & 07777, 0600);
	assert_int_equal(a.mtime_ns, in.mtime_ns);
	assert_int_equal(snap(f->wt, &c), 1);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	assert_int_equal(
	    mav_wt_getattr(&a, view, look(view, MAV_WT_ROOT, "copy2")), 0);
	assert_int_equal(a.mode & 07777, 0600);
	mav_wt_close(view);
	/* Written to again and chmod'ed: fsync writes the record, and a
	 * power loss after it keeps the mode. */
	in.mode = 0640;
	assert_int_equal(mav_wt_write(f->wt, ino, 6, "!", 1), 1);
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_MODE), 0);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	mav_wt_close(f->wt);
	assert_int_equal(mav_kv_fault_crash(f->fault), 0);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	ino = look(f->wt, MAV_WT_ROOT, "copy");
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino), 0);
	assert_int_equal(a.mode & 07777, 0640);
	assert_int_equal(a.mtime_ns > in.mtime_ns, 1); /* the write's */
	expect_content(f->wt, ino, "copied!", 7);
}

/* MAV_SET_PERMS takes the permission bits and can drop a special bit,
 * never add one: a minimal ACL set by a caller outside the group. */
static void test_setattr_perms_keep_special_bits(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "sg", "x", 1);
	struct mav_attr in = {.mode = 06755}, a;
	unsigned perms = MAV_SET_MODE | MAV_SET_PERMS;

	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_MODE), 0);
	in.mode = 07640; /* keeps both, gains no sticky bit */
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, perms), 0);
	assert_int_equal(a.mode & 07777, 06640);
	in.mode = 05600; /* drops setgid */
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, perms), 0);
	assert_int_equal(a.mode & 07777, 04600);
	in.mode = 0644; /* without MAV_SET_MODE nothing changes */
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_PERMS), 0);
	assert_int_equal(a.mode & 07777, 04600);
}

/* Where a file is a hole: holes is size minus the bytes written while
 * unsealed; once sealed, the zero chunks, which SEEK_DATA and SEEK_HOLE
 * skip and find; the same in a read-only view of the snapshot. */
static uint64_t seek(struct mav_wt *wt, uint64_t ino, uint64_t off, bool data)
{
	uint64_t at = UINT64_MAX;
	int rc = mav_wt_lseek(wt, ino, off, data, &at);

	return rc == 0 ? at : (uint64_t)(int64_t)rc;
}

static void expect_holes(struct mav_wt *wt, uint64_t ino, uint64_t z)
{
	const uint64_t mib = 1u << 20, size = 10 * mib + 1;
	struct mav_attr a;
	uint64_t h, d;

	assert_int_equal(mav_wt_getattr(&a, wt, ino), 0);
	assert_int_equal(a.size, size);
	/* All but the chunks holding 'A' and 'B' and the edges of the run. */
	assert_true(a.holes % z == 0 && a.holes >= 10 * mib - 3 * z &&
	            a.holes < 10 * mib);
	h = seek(wt, ino, 0, false);
	assert_true(h > 0 && h <= 2 * z);
	assert_int_equal(seek(wt, ino, 0, true), 0);
	assert_int_equal(seek(wt, ino, h, false), h);
	d = seek(wt, ino, h, true);
	assert_true(d > h && d <= 10 * mib && d >= 10 * mib - 2 * z);
	assert_int_equal(seek(wt, ino, d, true), d);
	assert_int_equal(seek(wt, ino, d, false), size); /* the end */
	assert_int_equal(seek(wt, ino, size - 1, true), size - 1);
	assert_int_equal(seek(wt, ino, size, true), (uint64_t)-ENXIO);
	assert_int_equal(seek(wt, ino, size, false), (uint64_t)-ENXIO);
	assert_int_equal(seek(wt, ino, h - 1, false), h);
}

static void test_holes_seek_and_blocks(void **state)
{
	struct fx *f = *state;
	const uint64_t mib = 1u << 20;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "sparse", "A", 1);
	struct mav_wt *view = NULL;
	struct mav_attr a, in = {.size = 20 * mib};
	uint64_t h;
	mav_id c;

	assert_int_equal(mav_wt_write(f->wt, ino, 10 * mib, "B", 1), 1);
	/* Unsealed: all data to lseek, 2 bytes written to st_blocks. */
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino), 0);
	assert_int_equal(a.holes, 10 * mib - 1);
	assert_int_equal(seek(f->wt, ino, 5, false), 10 * mib + 1);
	assert_int_equal(seek(f->wt, ino, 5, true), 5);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	expect_holes(f->wt, ino, f->r->zero_len);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	expect_holes(view, look(view, MAV_WT_ROOT, "sparse"), f->r->zero_len);
	mav_wt_close(view);
	/* A size set past the sealed bytes is a hole too. */
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_SIZE), 0);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino), 0);
	assert_true(a.holes >= 20 * mib - 3 * f->r->zero_len);
	h = seek(f->wt, ino, 10 * mib + 1, false);
	assert_true(h >= 10 * mib + 1 && h <= 10 * mib + 2 * f->r->zero_len);
	assert_int_equal(seek(f->wt, ino, h, true), (uint64_t)-ENXIO);
	/* Small files and directories have none. */
	assert_int_equal(mav_wt_getattr(&a, f->wt, MAV_WT_ROOT), 0);
	assert_int_equal(a.holes, 0);
	assert_int_equal(seek(f->wt, MAV_WT_ROOT, 0, true), (uint64_t)-EINVAL);
}

/* Names handed out by one page of a readdir. */
struct page {
	char names[8][16];
	unsigned n;
	uint64_t next;
};

static int page_add(void *ctx, const char *name, const struct mav_attr *a,
                    uint64_t next)
{
	struct page *p = ctx;

	(void)a;
	if (p->n == 8)
		return 1;
	snprintf(p->names[p->n++], sizeof(p->names[0]), "%s", name);
	p->next = next;
	return 0;
}

/* List dir 8 names at a time while each page's names are unlinked and a
 * name sorting first and one sorting last are created (and, with snaps,
 * a snapshot taken after every other page): every name there from the
 * start comes exactly once (a listing resumed by position skipped some).
 * Returns how many of the 300 were seen. */
static unsigned list_while_changing(struct mav_wt *wt, uint64_t dir, int round,
                                    bool snaps)
{
	mav_id c;
	bool seen[300] = {false};
	struct page p = {.next = 0};
	unsigned got = 0, pages = 0;
	char name[16];

	do {
		p.n = 0;
		assert_int_equal(
		    mav_wt_readdir(wt, dir, p.next, false, page_add, &p), 0);
		for (unsigned i = 0; i < p.n; i++) {
			unsigned k;

			if (sscanf(p.names[i], "f%u", &k) == 1) {
				assert_true(k < 300 && !seen[k]);
				seen[k] = true;
				got++;
			}
			assert_int_equal(mav_wt_unlink(wt, dir, p.names[i]), 0);
		}
		snprintf(name, sizeof(name), "a%d-%u", round, pages);
		mkfile(wt, dir, name, NULL, 0);
		snprintf(name, sizeof(name), "z%d-%u", round, pages++);
		mkfile(wt, dir, name, NULL, 0);
		if (snaps && pages % 2 == 0)
			snap(wt, &c);
	} while (p.n > 0);
	return got;
}

/* Readdir cookies stay with their entries: in a directory of the last
 * snapshot, in one the working tree changed, and across snapshots taken
 * while the listing goes on (which move names into a new base tree). */
static void test_readdir_while_changing(void **state)
{
	struct fx *f = *state;
	struct mav_attr a;
	char name[16];
	mav_id c;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		mkfile(f->wt, a.ino, name, NULL, 0);
	}
	assert_int_equal(snap(f->wt, &c), 1);
	assert_int_equal(
	    list_while_changing(f->wt, look(f->wt, MAV_WT_ROOT, "d"), 0, false),
	    300);
	for (int round = 1; round <= 2; round++) {
		for (int i = 0; i < 300; i++) {
			snprintf(name, sizeof(name), "f%03d", i);
			mkfile(f->wt, a.ino, name, NULL, 0);
		}
		assert_int_equal(
		    list_while_changing(f->wt, a.ino, round, round == 2), 300);
	}
}

/* Every name and cookie readdir gives from cookie on. */
struct all {
	char names[128][16];
	uint64_t cookies[128];
	unsigned n;
};

static int all_add(void *ctx, const char *name, const struct mav_attr *a,
                   uint64_t next)
{
	struct all *l = ctx;

	(void)a;
	assert_true(l->n < 128);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->cookies[l->n++] = next;
	return 0;
}

/* A listing read to its end answers the call past its last entry without
 * being built again; a change since makes the names past it appear. */
static void test_readdir_past_the_end(void **state)
{
	struct fx *f = *state;
	struct all first, past = {.n = 0}, again = {.n = 0};
	struct mav_attr a;
	unsigned want = 0;
	char name[16];

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "e", 0755, 0, 0),
	                 0);
	/* One name whose cookie is in the lower half, so that names added
	 * later surely come after it. */
	for (int i = 0;; i++) {
		assert_true(i < 64);
		snprintf(name, sizeof(name), "x%d", i);
		mkfile(f->wt, a.ino, name, NULL, 0);
		first.n = 0;
		assert_int_equal(
		    mav_wt_readdir(f->wt, a.ino, 0, false, all_add, &first), 0);
		assert_int_equal(first.n, 1);
		if (first.cookies[0] < 1ull << 61)
			break;
		assert_int_equal(mav_wt_unlink(f->wt, a.ino, name), 0);
	}
	assert_int_equal(mav_wt_readdir(f->wt, a.ino, first.cookies[0], false,
	                                all_add, &past),
	                 0);
	assert_int_equal(past.n, 0);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "b%02d", i);
		mkfile(f->wt, a.ino, name, NULL, 0);
	}
	/* Straight past the old end: the creates dropped what it knew. */
	assert_int_equal(mav_wt_readdir(f->wt, a.ino, first.cookies[0], false,
	                                all_add, &past),
	                 0);
	assert_int_equal(
	    mav_wt_readdir(f->wt, a.ino, 0, false, all_add, &again), 0);
	for (unsigned i = 0; i < again.n; i++)
		want += again.cookies[i] > first.cookies[0];
	assert_true(want > 0);
	assert_int_equal(past.n, want);
}

static void test_persisted_across_reopen(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "keep", "durable", 7);
	struct mav_attr a;

	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "dd", 0700, 0, 0),
	                 0);
	mkfile(f->wt, a.ino, "lost", "not synced", 10);
	/* Power loss: the unsynced tail of the log is gone. */
	mav_wt_close(f->wt);
	assert_int_equal(mav_kv_fault_crash(f->fault), 0);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "keep"), "durable", 7);
}

static int count_status(void *ctx, char kind, const char *path)
{
	(void)kind;
	(void)path;
	(*(int *)ctx)++;
	return 0;
}

static void test_status_and_reset(void **state)
{
	struct fx *f = *state;
	mav_id c1;
	int n = 0;

	mkfile(f->wt, MAV_WT_ROOT, "one", "1", 1);
	snap(f->wt, &c1);
	mkfile(f->wt, MAV_WT_ROOT, "two", "2", 1);
	assert_int_equal(mav_wt_unlink(f->wt, MAV_WT_ROOT, "one"), 0);
	assert_int_equal(mav_wt_status(f->wt, count_status, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(mav_wt_reset(f->wt, &c1), 0);
	assert_true(look(f->wt, MAV_WT_ROOT, "one") != 0);
	assert_int_equal(look(f->wt, MAV_WT_ROOT, "two"), 0);
}

static void test_setattr_after_unlink(void **state)
{
	struct fx *f = *state;
	struct mav_attr in = {.mode = 0600}, a;
	uint64_t ino;
	mav_id c;

	mkfile(f->wt, MAV_WT_ROOT, "victim", "v", 1);
	snap(f->wt, &c);
	/* Base file, looked up, unlinked while open, then changed (tar's
	 * utimens on a replaced file): no name may come back. */
	ino = look(f->wt, MAV_WT_ROOT, "victim");
	assert_int_equal(mav_wt_unlink(f->wt, MAV_WT_ROOT, "victim"), 0);
	assert_int_equal(mav_wt_setattr(&a, f->wt, ino, &in, MAV_SET_MODE), 0);
	assert_int_equal(a.nlink, 0);
	mav_wt_forget(f->wt, ino, 1);
	assert_int_equal(mav_wt_lookup(&a, f->wt, MAV_WT_ROOT, "victim"),
	                 -ENOENT);
	mkfile(f->wt, MAV_WT_ROOT, "victim", "new", 3);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "victim"), "new", 3);
}

static void test_failed_write_then_retry(void **state)
{
	struct fx *f = *state;
	struct mav_attr a;
	uint64_t d;
	mav_id c;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	snap(f->wt, &c);
	d = look(f->wt, MAV_WT_ROOT, "d");
	/* The first write of a create in a base directory fails... */
	mav_kv_fault_fail_after(f->fault, 1, -ENOSPC);
	assert_int_equal(mav_wt_create(&a, f->wt, d, "x", 0644, 0, 0), -ENOSPC);
	mav_kv_fault_clear(f->fault);
	/* ...and the retry must persist the directory too. */
	mkfile(f->wt, d, "x", "kept", 4);
	assert_int_equal(mav_wt_sync(f->wt), 0);
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	d = look(f->wt, MAV_WT_ROOT, "d");
	expect_content(f->wt, look(f->wt, d, "x"), "kept", 4);
}

/* Past 16 MiB a stream hands its writes to a feeder thread. What was
 * written reads back after fsync; a store failure in the feeder reaches a
 * later write and then fsync, and drops the unsynced stream, as a failed
 * writeback would, and is counted for the daemon's log. */
static void test_big_stream_write_behind(void **state)
{
	struct fx *f = *state;
	const size_t mib = 1u << 20, len = 40 * mib;
	uint8_t *data = random_buf(len, 21);
	struct mav_attr a;
	uint64_t ino = mkfile(f->wt, MAV_WT_ROOT, "big", NULL, 0), ino2;
	ssize_t got = 0;
	size_t off;
	int rc;

	/* MiB 30 arrives after MiB 31, as the kernel may send them: it
	 * waits as an extent and follows what the feeder holds. */
	for (off = 0; off < len; off += mib) {
		size_t at = off == 30 * mib   ? off + mib
		            : off == 31 * mib ? off - mib
		                              : off;

		assert_int_equal(mav_wt_write(f->wt, ino, at, data + at, mib),
		                 (ssize_t)mib);
	}
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	expect_content(f->wt, ino, data, len);

	ino2 = mkfile(f->wt, MAV_WT_ROOT, "big2", NULL, 0);
	for (off = 0; off < 24 * mib; off += mib)
		assert_int_equal(
		    mav_wt_write(f->wt, ino2, off, data + off, mib),
		    (ssize_t)mib);
	mav_kv_fault_fail_after(f->fault, 1, -ENOSPC);
	for (; off < len && got >= 0; off += mib)
		got = mav_wt_write(f->wt, ino2, off, data + off, mib);
	/* A feeder meets the failure: a later write reports it (and then
	 * the fsync, the writes lost before it), or else the fsync. */
	rc = got < 0 ? (int)got : mav_wt_fsync(f->wt, ino2);
	mav_kv_fault_clear(f->fault);
	assert_int_equal(rc, -ENOSPC);
	if (got < 0)
		assert_int_equal(mav_wt_fsync(f->wt, ino2), -ENOSPC);
	/* Told once, for the daemon's log, whether or not fsync was called. */
	assert_int_equal(mav_wt_take_lost(f->wt, &rc), 1);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(mav_wt_take_lost(f->wt, &rc), 0);
	assert_int_equal(mav_wt_fsync(f->wt, ino2), 0);
	assert_int_equal(mav_wt_getattr(&a, f->wt, ino2), 0);
	assert_int_equal(a.size, 0);
	expect_content(f->wt, ino, data, len);
	free(data);
}

/* 100 files of 3 MiB, each written in 1 MiB writes. backwards: last MiB
 * first, so nothing streams and every byte waits in dirty extents. */
static void write_files(struct fx *f, uint64_t *ino, uint8_t **data,
                        size_t files, bool backwards)
{
	const size_t mib = 1u << 20, len = 3 * mib;
	char name[16];

	for (size_t i = 0; i < files; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		ino[i] = mkfile(f->wt, MAV_WT_ROOT, name, NULL, 0);
		data[i] = random_buf(len, 100 + (unsigned)i); /* no dedup */
		for (size_t k = 0; k < len / mib; k++) {
			size_t off = (backwards ? len / mib - 1 - k : k) * mib;

			assert_int_equal(mav_wt_write(f->wt, ino[i], off,
			                              data[i] + off, mib),
			                 (ssize_t)mib);
		}
	}
}

static void expect_files(struct fx *f, const uint64_t *ino, uint8_t **data,
                         size_t files)
{
	for (size_t i = 0; i < files; i++) {
		expect_content(f->wt, ino[i], data[i], 3u << 20);
		free(data[i]);
	}
}

/* Dirty extents of many files stay bounded (256 MiB): past it the least
 * recently written files are sealed. */
static void test_many_dirty_files_bounded(void **state)
{
	struct fx *f = *state;
	const size_t mib = 1u << 20;
	uint8_t *data[100];
	uint64_t ino[100];
	int sealed;

	write_files(f, ino, data, 100, true);
	assert_true(mav_wt_held(f->wt) <= 256 * mib);
	/* What is still unsealed: at most 256 MiB of the 300 written. */
	sealed = mav_wt_seal_idle(f->wt, 0);
	assert_true(sealed > 0);
	assert_true((size_t)sealed <= (256 * mib) / (3 * mib) + 1);
	assert_int_equal(mav_wt_held(f->wt), 0);
	expect_files(f, ino, data, 100);
}

/* A copy of many files streams each one: its feeder stores every chunk
 * whose end it has seen as soon as the writes stop coming, so what the
 * unsealed files hold shrinks to their uncut tails (less than a maximum
 * chunk each) without sealing them. */
static void test_many_streams_settle(void **state)
{
	struct fx *f = *state;
	const uint64_t tails = 100ull * mav_repo_config(f->r)->chunk_max;
	uint8_t *data[100];
	uint64_t ino[100];
	uint64_t held = 0;

	write_files(f, ino, data, 100, false);
	for (int round = 0; round < 5000; round++) {
		held = mav_wt_held(f->wt);
		if (held <= tails)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	assert_true(held > 0);
	assert_true(held <= tails);
	assert_int_equal(mav_wt_seal_idle(f->wt, 0), 100); /* none before */
	assert_int_equal(mav_wt_held(f->wt), 0);
	expect_files(f, ino, data, 100);
}

/* Sealing under memory pressure fails for the oldest file (a full disk).
 * The write that set off the sealing was taken and succeeds, and the
 * failed file keeps its dirty bytes: its fsync, once there is room, seals
 * them and nothing is lost. */
static void test_pressure_failure_keeps_dirty_data(void **state)
{
	struct fx *f = *state;
	const size_t mib = 1u << 20, len = 3 * mib;
	uint8_t *data = random_buf(len, 24), *first = malloc(len);
	uint64_t ino[86];
	char name[16];

	for (size_t i = 0; i < 86; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		ino[i] = mkfile(f->wt, MAV_WT_ROOT, name, NULL, 0);
		/* Each file its own bytes: nothing dedups. Backwards, so
		 * that they wait in dirty extents, not streams. */
		for (size_t k = 0; i < 85 && k < len / mib; k++) {
			size_t off = len - (k + 1) * mib;

			data[off] = (uint8_t)i;
			assert_int_equal(
			    mav_wt_write(f->wt, ino[i], off, data + off, mib),
			    (ssize_t)mib);
		}
		if (i == 0)
			memcpy(first, data, len);
	}
	/* Just under 256 MiB held: the next write seals f0 first, and that
	 * fails. */
	mav_kv_fault_fail_writes_after(f->fault, 1, -ENOSPC);
	assert_int_equal(mav_wt_write(f->wt, ino[85], mib, data, mib),
	                 (ssize_t)mib);
	mav_kv_fault_clear(f->fault);
	assert_true(mav_wt_held(f->wt) > 255 * mib); /* nothing sealed */
	assert_int_equal(mav_wt_fsync(f->wt, ino[0]), 0);
	expect_content(f->wt, ino[0], first, len);
	assert_int_equal(mav_wt_fsync(f->wt, ino[85]), 0);
	free(first);
	free(data);
}

/* How many of files [from, to) have their blobs cached, waiting up to 5 s
 * for `want` of them (prefetch threads load them). */
static int cached_files(struct mav_repo *r, const mav_id *ids, int from, int to,
                        int want)
{
	int n = 0;

	for (int round = 0; round < 5000; round++) {
		n = 0;
		for (int i = from; i < to; i++)
			n += mav_cache_touch(r->blobs, &ids[i]);
		if (n >= want)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return n;
}

/* Reading a directory's files from their starts in name order loads the
 * next 4 files' blobs ahead; reads in another order load nothing. */
static void test_read_ahead_files(void **state)
{
	struct fx *f = *state;
	struct mav_wt *view = NULL;
	uint8_t *data = random_buf(12 * 4096, 23);
	uint64_t dir, ino[12];
	mav_id c, ids[12];
	struct mav_attr a;
	char name[8], buf[64];

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		mkfile(f->wt, a.ino, name, data + i * 4096, 4096);
	}
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	dir = look(view, MAV_WT_ROOT, "d");
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		ino[i] = look(view, dir, name);
		assert_int_equal(mav_wt_content_id(&ids[i], NULL, view, ino[i]),
		                 0);
	}
	assert_int_equal(mav_repo_start_prefetch(f->r, 1), 0);

	/* Out of order: f09, then f03, then f07. */
	mav_cache_clear(f->r->blobs);
	for (int i = 9; i > 0; i -= 6)
		assert_int_equal(mav_wt_read(view, ino[i], 0, buf, 64), 64);
	assert_int_equal(mav_wt_read(view, ino[7], 0, buf, 64), 64);
	nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	assert_int_equal(cached_files(f->r, ids, 0, 12, 0), 3);

	/* f00 then f01: a run, so f02..f05 come ahead, and f06 does not. */
	mav_cache_clear(f->r->blobs);
	assert_int_equal(mav_wt_read(view, ino[0], 0, buf, 64), 64);
	assert_int_equal(mav_wt_read(view, ino[1], 0, buf, 64), 64);
	assert_int_equal(cached_files(f->r, ids, 2, 6, 4), 4);
	nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	assert_false(mav_cache_touch(f->r->blobs, &ids[6]));
	/* f02 goes on with the run: f06 comes into reach, f07 not yet. */
	assert_int_equal(mav_wt_read(view, ino[2], 0, buf, 64), 64);
	assert_int_equal(cached_files(f->r, ids, 6, 7, 1), 1);
	nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	assert_false(mav_cache_touch(f->r->blobs, &ids[7]));
	/* A read that does not start at 0 continues nothing. */
	assert_int_equal(mav_wt_read(view, ino[3], 64, buf, 64), 64);
	nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	assert_false(mav_cache_touch(f->r->blobs, &ids[7]));
	mav_wt_close(view);
	free(data);
}

static void test_base_hard_link_edit(void **state)
{
	struct fx *f = *state;
	struct mav_wt *view = NULL;
	struct mav_attr a;
	uint64_t d1, d2, ino;
	mav_id c;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d1", 0755, 0, 0),
	                 0);
	d1 = a.ino;
	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d2", 0755, 0, 0),
	                 0);
	d2 = a.ino;
	ino = mkfile(f->wt, d1, "a", "old!", 4);
	assert_int_equal(mav_wt_link(&a, f->wt, ino, d2, "b"), 0);
	snap(f->wt, &c);
	mav_wt_close(f->wt); /* a fresh start: only the base knows the link */
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	d1 = look(f->wt, MAV_WT_ROOT, "d1");
	ino = look(f->wt, d1, "a");
	assert_int_equal(mav_wt_write(f->wt, ino, 0, "new!", 4), 4);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	d2 = look(view, MAV_WT_ROOT, "d2");
	expect_content(view, look(view, d2, "b"), "new!", 4);
	assert_int_equal(mav_wt_getattr(&a, view, look(view, d2, "b")), 0);
	assert_int_equal(a.nlink, 2);
	mav_wt_close(view);
}

static int no_status(void *ctx, char kind, const char *path)
{
	(void)kind;
	(void)path;
	(*(int *)ctx)++;
	return 0;
}

static void test_base_hard_link_unlink_all(void **state)
{
	struct fx *f = *state;
	struct mav_attr a;
	uint64_t d, ino;
	mav_id c;
	int n = 0;

	assert_int_equal(mav_wt_mkdir(&a, f->wt, MAV_WT_ROOT, "d", 0755, 0, 0),
	                 0);
	d = a.ino;
	ino = mkfile(f->wt, d, "a", "x", 1);
	assert_int_equal(mav_wt_link(&a, f->wt, ino, MAV_WT_ROOT, "b"), 0);
	assert_int_equal(mav_wt_link(&a, f->wt, ino, d, "c"), 0);
	snap(f->wt, &c);
	mav_wt_close(f->wt);
	assert_int_equal(mav_wt_open(&f->wt, f->r, "main"), 0);
	d = look(f->wt, MAV_WT_ROOT, "d");
	/* What import does to a changed hard-linked file: unlink every name,
	 * then create and link again. */
	assert_int_equal(mav_wt_unlink(f->wt, d, "a"), 0);
	assert_int_equal(mav_wt_unlink(f->wt, MAV_WT_ROOT, "b"), 0);
	assert_int_equal(mav_wt_unlink(f->wt, d, "c"), 0);
	ino = mkfile(f->wt, d, "a", "y", 1);
	assert_int_equal(mav_wt_link(&a, f->wt, ino, MAV_WT_ROOT, "b"), 0);
	assert_int_equal(mav_wt_link(&a, f->wt, ino, d, "c"), 0);
	assert_int_equal(mav_wt_status(f->wt, no_status, &n), 0);
	assert_int_equal(n, 3);
	snap(f->wt, &c);
	expect_content(f->wt, look(f->wt, MAV_WT_ROOT, "b"), "y", 1);
}

static void test_append_stream_out_of_order(void **state)
{
	struct fx *f = *state;
	size_t len = 3u << 20, k = 256u << 10;
	uint8_t *want = random_buf(len, 11), *ovl = random_buf(k, 12);
	struct mav_wt *view = NULL;
	uint64_t ino;
	mav_id c;

	ino = mkfile(f->wt, MAV_WT_ROOT, "s", want, k); /* streams */
	/* The kernel may send a later page first: held until the gap fills */
	assert_int_equal(mav_wt_write(f->wt, ino, 2 * k, want + 2 * k, k),
	                 (ssize_t)k);
	assert_int_equal(mav_wt_write(f->wt, ino, k, want + k, k), (ssize_t)k);
	/* and the same page twice: the later write wins. */
	assert_int_equal(mav_wt_write(f->wt, ino, 4 * k, ovl, k), (ssize_t)k);
	assert_int_equal(mav_wt_write(f->wt, ino, 3 * k, want + 3 * k, 2 * k),
	                 (ssize_t)(2 * k));
	assert_int_equal(
	    mav_wt_write(f->wt, ino, 5 * k, want + 5 * k, len - 5 * k),
	    (ssize_t)(len - 5 * k));
	/* A rewrite inside what was streamed ends the stream. */
	memcpy(want + k + 100, ovl, 5000);
	assert_int_equal(mav_wt_write(f->wt, ino, k + 100, ovl, 5000), 5000);
	expect_content(f->wt, ino, want, len);
	assert_int_equal(mav_wt_fsync(f->wt, ino), 0);
	snap(f->wt, &c);
	assert_int_equal(mav_wt_open_commit(&view, f->r, &c), 0);
	expect_content(view, look(view, MAV_WT_ROOT, "s"), want, len);
	mav_wt_close(view);
	free(want);
	free(ovl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_read_snapshot, setup,
	                                    teardown),
	    cmocka_unit_test(test_big_file_paged),
	    cmocka_unit_test_setup_teardown(test_snapshot_waits_for_split_write,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_base_ino_skips_persisted_numbers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_created_inode_numbers_stay,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_view_inode_numbers_stay, setup,
	                                    teardown),
	    cmocka_unit_test(test_snapshot_cost_follows_the_change),
	    cmocka_unit_test_setup_teardown(test_small_edit_costs_few_chunks,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_holes_seek_and_blocks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_holes_truncate_append, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_zero_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_unlink_link, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_xattrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persisted_across_reopen, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_status_and_reset, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_setattr_of_unsealed_file,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_setattr_perms_keep_special_bits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readdir_while_changing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_readdir_past_the_end, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_setattr_after_unlink, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_big_stream_write_behind, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_write_then_retry, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_many_dirty_files_bounded,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_streams_settle, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_read_ahead_files, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_pressure_failure_keeps_dirty_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_base_hard_link_edit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_base_hard_link_unlink_all,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_stream_out_of_order,
	                                    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
