/* test_tree.c - paged trees: the index encoding, pages cut by names, and
 * readers that load one page at a time. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache.h"
#include "mav/error.h"
#include "mav/kv.h"
#include "mav/maint.h"
#include "mav/object.h"
#include "mav/repo.h"
#include "mav/wt.h"
#include "repo_internal.h"

#define BIG 5000 /* entries of the big directory: well over one page */

static char names[BIG][16];
static struct mav_entry ents[BIG];

/* BIG sorted file entries "f00000".."f04999"; size i marks entry i. */
static void fill_entries(void)
{
	for (uint32_t i = 0; i < BIG; i++) {
		snprintf(names[i], sizeof(names[i]), "f%05u", i);
		ents[i] = (struct mav_entry){.name = names[i],
		                             .type = MAV_T_FILE,
		                             .mode = 0644,
		                             .nlink = 1,
		                             .size = 0};
		mav_repo_empty_blob(&ents[i].id);
	}
}

static struct mav_repo *mem_repo(void)
{
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;

	assert_int_equal(mav_kv_open_mem(&kv), 0);
	assert_int_equal(mav_repo_open_kv(&r, kv, true, NULL), 0);
	return r;
}

static void put_tree(struct mav_repo *r, mav_id *id, const struct mav_entry *e,
                     uint32_t n)
{
	struct mav_kv_batch *b = NULL;

	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_tree(r, b, 0, id, e, n), 0);
	assert_int_equal(mav_kv_write(mav_repo_kv(r), b, 0), 0);
	mav_kv_batch_free(b);
}

static struct mav_tree_index *get_index(struct mav_repo *r, const mav_id *id)
{
	struct mav_tree_index *x = NULL;
	void *buf = NULL;
	size_t len;

	assert_int_equal(mav_repo_get_object(r, id, &buf, &len), 0);
	assert_int_equal(mav_object_kind(buf, len), 'I');
	assert_int_equal(mav_tree_index_decode(&x, buf, len), 0);
	free(buf);
	return x;
}

static void test_index_encoding(void **state)
{
	struct mav_tree_page p[3] = {{.n = 2, .first = "a"},
	                             {.n = 5, .first = "b"},
	                             {.n = 1, .first = "q"}};
	struct mav_tree_index *x = NULL;
	uint8_t *enc = NULL;
	size_t len;

	(void)state;
	p[1].id.b[0] = 7;
	assert_int_equal(mav_tree_index_encode(&enc, &len, p, 3), 0);
	assert_int_equal(mav_object_kind(enc, len), 'I');
	assert_int_equal(mav_tree_index_decode(&x, enc, len), 0);
	assert_int_equal(x->n, 8);
	assert_int_equal(x->npages, 3);
	assert_int_equal(x->p[1].id.b[0], 7);
	assert_int_equal(x->p[2].start, 7);
	assert_string_equal(x->p[2].first, "q");
	/* Which page would hold a name; which holds an entry number. */
	assert_int_equal(mav_tree_index_find(x, "0"), -1);
	assert_int_equal(mav_tree_index_find(x, "a"), 0);
	assert_int_equal(mav_tree_index_find(x, "az"), 0);
	assert_int_equal(mav_tree_index_find(x, "b"), 1);
	assert_int_equal(mav_tree_index_find(x, "zz"), 2);
	assert_int_equal(mav_tree_index_page_of(x, 0), 0);
	assert_int_equal(mav_tree_index_page_of(x, 1), 0);
	assert_int_equal(mav_tree_index_page_of(x, 2), 1);
	assert_int_equal(mav_tree_index_page_of(x, 6), 1);
	assert_int_equal(mav_tree_index_page_of(x, 7), 2);
	mav_tree_index_free(x);

	/* Every truncation is refused, and so is a total that disagrees. */
	for (size_t cut = 0; cut < len; cut++) {
		x = NULL;
		assert_int_equal(mav_tree_index_decode(&x, enc, cut),
		                 MAV_ECORRUPT);
		assert_null(x);
	}
	enc[5] = 9; /* n: 9, the pages hold 8 */
	assert_int_equal(mav_tree_index_decode(&x, enc, len), MAV_ECORRUPT);
	enc[5] = 8;
	enc[13 + MAV_ID_LEN] = 0; /* page 0 holds no entry */
	assert_int_equal(mav_tree_index_decode(&x, enc, len), MAV_ECORRUPT);
	free(enc);

	/* The encoder refuses what a decoder would. */
	p[2].first = "b";
	assert_int_equal(mav_tree_index_encode(&enc, &len, p, 3), MAV_EINVAL);
	p[2].first = "q";
	p[0].n = 0;
	assert_int_equal(mav_tree_index_encode(&enc, &len, p, 3), MAV_EINVAL);
	assert_int_equal(mav_tree_index_encode(&enc, &len, p, 0), MAV_EINVAL);
}

static void test_small_tree_stays_whole(void **state)
{
	struct mav_repo *r = mem_repo();
	const struct mav_tree *t = NULL;
	void *buf = NULL;
	size_t len;
	mav_id id;

	(void)state;
	put_tree(r, &id, ents, MAV_TREE_WHOLE_MAX);
	assert_int_equal(mav_repo_get_object(r, &id, &buf, &len), 0);
	assert_int_equal(mav_object_kind(buf, len), 'T');
	free(buf);
	assert_int_equal(mav_repo_get_tree(r, &id, &t), 0);
	assert_int_equal(t->n, MAV_TREE_WHOLE_MAX);
	mav_repo_tree_release(r, t);
	/* One more, and it is paged. */
	put_tree(r, &id, ents, MAV_TREE_WHOLE_MAX + 1);
	assert_int_equal(mav_repo_get_object(r, &id, &buf, &len), 0);
	assert_int_equal(mav_object_kind(buf, len), 'I');
	free(buf);
	assert_int_equal(mav_repo_get_tree(r, &id, &t), 0);
	assert_int_equal(t->n, MAV_TREE_WHOLE_MAX + 1);
	mav_repo_tree_release(r, t);
	mav_repo_close(r);
}

static void test_paged_tree_reads(void **state)
{
	struct mav_repo *r = mem_repo();
	const struct mav_tree *t = NULL;
	struct mav_tree_index *x;
	uint64_t first, seen = 0;
	int64_t ix;
	mav_id id;

	(void)state;
	put_tree(r, &id, ents, BIG);
	x = get_index(r, &id);
	assert_int_equal(x->n, BIG);
	for (uint32_t k = 0; k < x->npages; k++) {
		assert_true(x->p[k].n <= MAV_TREE_PAGE_MAX);
		assert_true(x->p[k].n >= 64 || k + 1 == x->npages);
	}
	assert_true(x->npages >= 5);
	mav_tree_index_free(x);

	/* The whole directory, assembled. */
	assert_int_equal(mav_repo_get_tree(r, &id, &t), 0);
	assert_int_equal(t->n, BIG);
	for (uint32_t i = 0; i < BIG; i++)
		assert_string_equal(t->e[i].name, names[i]);
	mav_repo_tree_release(r, t);

	/* Every name found in its page; absent names are not. */
	for (uint32_t i = 0; i < BIG; i++) {
		assert_int_equal(mav_repo_tree_find(r, &id, names[i], &t, &ix),
		                 0);
		assert_true(ix >= 0);
		assert_string_equal(t->e[ix].name, names[i]);
		mav_repo_tree_release(r, t);
	}
	const char *absent[] = {"a", "f", "f00010x", "f04999x", "zz"};
	for (size_t i = 0; i < sizeof(absent) / sizeof(*absent); i++) {
		assert_int_equal(mav_repo_tree_find(r, &id, absent[i], &t, &ix),
		                 0);
		assert_int_equal(ix, -1);
		mav_repo_tree_release(r, t);
	}

	/* Page by page from any entry number, and nothing past the end. */
	for (uint64_t i = 0; i < BIG; i += t->n - (i - first)) {
		assert_int_equal(mav_repo_tree_page(r, &id, i, &t, &first), 0);
		assert_non_null(t);
		assert_true(first <= i && i < first + t->n);
		assert_string_equal(t->e[i - first].name, names[i]);
		seen += t->n - (i - first);
		mav_repo_tree_release(r, t);
	}
	assert_int_equal(seen, BIG);
	assert_int_equal(mav_repo_tree_page(r, &id, BIG, &t, &first), 0);
	assert_null(t);
	mav_repo_close(r);
}

/* Pages that differ between the indexes of two trees. */
static uint32_t pages_changed(struct mav_repo *r, const mav_id *a,
                              const mav_id *b)
{
	struct mav_tree_index *x = get_index(r, a), *y = get_index(r, b);
	uint32_t changed = 0;

	for (uint32_t k = 0; k < y->npages; k++) {
		bool found = false;

		for (uint32_t j = 0; j < x->npages && !found; j++)
			found = mav_id_cmp(&x->p[j].id, &y->p[k].id) == 0;
		changed += !found;
	}
	mav_tree_index_free(x);
	mav_tree_index_free(y);
	return changed;
}

static void test_edit_rewrites_one_page(void **state)
{
	static struct mav_entry more[BIG + 1];
	struct mav_repo *r = mem_repo();
	mav_id before, edited, added, removed;

	(void)state;
	put_tree(r, &before, ents, BIG);
	ents[2500].mode = 0600;
	put_tree(r, &edited, ents, BIG);
	ents[2500].mode = 0644;
	assert_int_equal(pages_changed(r, &before, &edited), 1);

	/* An added name: its page changes, and at most one cut moves. */
	memcpy(more, ents, 2501 * sizeof(*more));
	more[2501] = ents[2500];
	more[2501].name = "f02500x";
	memcpy(more + 2502, ents + 2501, (BIG - 2501) * sizeof(*more));
	put_tree(r, &added, more, BIG + 1);
	assert_true(pages_changed(r, &before, &added) <= 2);
	put_tree(r, &removed, more + 1, BIG);
	assert_true(pages_changed(r, &before, &removed) <= 2);
	mav_repo_close(r);
}

/* ---- changing a stored directory page by page ---- */

static uint64_t rng_state = 42;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static int change_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mav_tree_change *)a)->name,
	              ((const struct mav_tree_change *)b)->name);
}

/* What the changes make of cur (sorted): the merged entries in out. */
static size_t apply_changes(struct mav_entry *out, const struct mav_entry *cur,
                            size_t n, const struct mav_tree_change *ch,
                            size_t nc)
{
	size_t i = 0, j = 0, m = 0;

	while (i < n || j < nc) {
		int cmp = i == n    ? 1
		          : j == nc ? -1
		                    : strcmp(cur[i].name, ch[j].name);

		if (cmp < 0) {
			out[m++] = cur[i++];
			continue;
		}
		i += cmp == 0;
		if (ch[j].e)
			out[m++] = *ch[j].e;
		j++;
	}
	return m;
}

/* Round r's changes to the n entries of cur: edits, removals (some of
 * names not there) and additions anywhere, before the first name and
 * after the last; rounds 100-103 shrink the directory to a whole tree
 * and 104-160 grow it back, so it goes from paged to whole and back.
 * Names are kept in pool, which the caller frees. */
static size_t make_changes(struct mav_tree_change *ch, struct mav_entry *ce,
                           char (*pool)[24], int round,
                           const struct mav_entry *cur, size_t n)
{
	bool shrink = round >= 100 && round <= 103;
	size_t k = shrink                        ? n - 50
	           : round > 103 && round <= 160 ? 10
	           : round % 10 == 9             ? 100 + rnd() % 400
	                                         : 1 + rnd() % 12;
	size_t m = 0;

	for (size_t i = 0; i < k && n; i++) {
		uint32_t op = shrink                        ? 1
		              : round > 103 && round <= 160 ? 2
		                                            : rnd() % 4;
		const struct mav_entry *e = &cur[rnd() % n];

		ce[i] = *e;
		ce[i].size = rnd();
		if (op == 0) { /* edit */
			snprintf(pool[i], sizeof(pool[i]), "%s", e->name);
		} else if (op == 1) { /* remove */
			snprintf(pool[i], sizeof(pool[i]), "%s", e->name);
		} else if (op == 2) { /* add */
			snprintf(pool[i], sizeof(pool[i]), "%c%05u.%u",
			         "afz"[rnd() % 3], rnd() % 6000, rnd() % 100);
		} else { /* remove a name that is not there */
			snprintf(pool[i], sizeof(pool[i]), "nope%u", rnd());
		}
		ce[i].name = pool[i];
		ch[m++] = (struct mav_tree_change){
		    .name = pool[i], .e = op == 1 || op == 3 ? NULL : &ce[i]};
	}
	qsort(ch, m, sizeof(*ch), change_cmp);
	/* Unique names: keep the first of each. */
	k = 0;
	for (size_t i = 0; i < m; i++)
		if (k == 0 || strcmp(ch[k - 1].name, ch[i].name) != 0)
			ch[k++] = ch[i];
	return k;
}

/* 250 rounds of random changes to a directory: the tree stored page by
 * page is, id for id, the one mav_repo_put_tree stores from all the
 * entries, whether the directory is paged, whole, or crosses between. */
static void test_changed_pages_match_whole(void **state)
{
	enum { CAP = BIG + 60 * 10 + 400 };
	struct mav_repo *r = mem_repo();
	struct mav_entry *cur = calloc(CAP, sizeof(*cur));
	struct mav_entry *next = calloc(CAP, sizeof(*next));
	struct mav_entry *ce = calloc(CAP, sizeof(*ce));
	struct mav_tree_change *ch = calloc(CAP, sizeof(*ch));
	char(*pool)[24] = calloc(CAP, sizeof(*pool));
	char(*names_cur)[24] = calloc(CAP, sizeof(*names_cur));
	char(*names_next)[24] = calloc(CAP, sizeof(*names_next)), (*swap)[24];
	size_t n = BIG, paged = 0, whole = 0;
	mav_id base, want, got;

	(void)state;
	memcpy(cur, ents, BIG * sizeof(*cur));
	put_tree(r, &base, cur, (uint32_t)n);
	for (int round = 0; round < 250; round++) {
		struct mav_kv_batch *b = NULL;
		size_t nc = make_changes(ch, ce, pool, round, cur, n), m;

		m = apply_changes(next, cur, n, ch, nc);
		assert_true(m <= CAP);
		put_tree(r, &want, next, (uint32_t)m);
		assert_int_equal(mav_kv_batch_new(&b), 0);
		assert_int_equal(
		    mav_repo_put_tree_changed(r, b, 0, &got, &base, ch, nc), 0);
		assert_int_equal(mav_kv_write(mav_repo_kv(r), b, 0), 0);
		mav_kv_batch_free(b);
		assert_memory_equal(want.b, got.b, MAV_ID_LEN);
		if (m > MAV_TREE_WHOLE_MAX)
			paged++;
		else
			whole++;
		/* Names move out of this round's pool and cur's names. */
		for (size_t i = 0; i < m; i++) {
			snprintf(names_next[i], sizeof(names_next[i]), "%s",
			         next[i].name);
			next[i].name = names_next[i];
		}
		memcpy(cur, next, m * sizeof(*cur));
		swap = names_cur;
		names_cur = names_next;
		names_next = swap;
		n = m;
		base = got;
	}
	assert_true(paged > 100 && whole >= 5);
	free(cur);
	free(next);
	free(ce);
	free(ch);
	free(pool);
	free(names_cur);
	free(names_next);
	mav_repo_close(r);
}

/* One edit to a directory of 5000 entries stores its page and the index;
 * one added name, at most two pages and the index. */
static void test_changed_pages_store_little(void **state)
{
	struct mav_repo *r = mem_repo();
	struct mav_entry edit = ents[2500], add = ents[2500];
	struct mav_tree_change ch = {.name = names[2500], .e = &edit};
	struct mav_kv_batch *b = NULL;
	mav_id base, id;

	(void)state;
	put_tree(r, &base, ents, BIG);
	edit.mode = 0600;
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_tree_changed(r, b, 0, &id, &base, &ch, 1),
	                 0);
	assert_int_equal(mav_kv_batch_count(b), 2);
	mav_kv_batch_free(b);

	add.name = "f02500x";
	ch = (struct mav_tree_change){.name = add.name, .e = &add};
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_tree_changed(r, b, 0, &id, &base, &ch, 1),
	                 0);
	assert_true(mav_kv_batch_count(b) >= 2 && mav_kv_batch_count(b) <= 3);
	mav_kv_batch_free(b);

	/* Nothing changed: the same id, nothing new to store. */
	ch = (struct mav_tree_change){.name = "nope", .e = NULL};
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_tree_changed(r, b, 0, &id, &base, &ch, 1),
	                 0);
	assert_memory_equal(id.b, base.b, MAV_ID_LEN);
	assert_int_equal(mav_kv_batch_count(b), 0);
	mav_kv_batch_free(b);
	mav_repo_close(r);
}

/* An index whose page is another page's tree: readers refuse it. */
static void test_page_mismatch_is_corrupt(void **state)
{
	struct mav_repo *r = mem_repo();
	const struct mav_tree *t = NULL;
	struct mav_kv_batch *b = NULL;
	struct mav_tree_index *x;
	uint8_t *enc = NULL;
	uint64_t first;
	size_t len;
	int64_t ix;
	mav_id id, bad;

	(void)state;
	put_tree(r, &id, ents, BIG);
	x = get_index(r, &id);
	x->p[1].id = x->p[0].id;
	assert_int_equal(mav_tree_index_encode(&enc, &len, x->p, x->npages), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_object(r, b, 0, &bad, enc, len), 0);
	assert_int_equal(mav_kv_write(mav_repo_kv(r), b, 0), 0);
	mav_kv_batch_free(b);
	free(enc);

	assert_int_equal(mav_repo_tree_find(r, &bad, x->p[1].first, &t, &ix),
	                 MAV_ECORRUPT);
	assert_non_null(strstr(mav_error_message(), "does not match"));
	assert_null(t);
	assert_int_equal(mav_repo_tree_page(r, &bad, x->p[1].start, &t, &first),
	                 MAV_ECORRUPT);
	assert_int_equal(mav_repo_get_tree(r, &bad, &t), MAV_ECORRUPT);
	/* Page 0 is still what the index says it is. */
	assert_int_equal(mav_repo_tree_find(r, &bad, names[0], &t, &ix), 0);
	assert_int_equal(ix, 0);
	mav_repo_tree_release(r, t);
	mav_tree_index_free(x);
	mav_repo_close(r);
}

/* A page read from disk queues the next 4 for the prefetch threads; one
 * found in the cache queues nothing. */
static void test_pages_prefetched_after_a_miss(void **state)
{
	struct mav_repo *r = mem_repo();
	const struct mav_tree *t = NULL;
	struct mav_tree_index *x;
	uint64_t first;
	int n = 0;
	mav_id id;

	(void)state;
	put_tree(r, &id, ents, BIG);
	x = get_index(r, &id);
	assert_true(x->npages >= 7);
	assert_int_equal(mav_repo_start_prefetch(r, 1), 0);
	mav_cache_clear(r->trees);
	assert_int_equal(mav_repo_tree_page(r, &id, 0, &t, &first), 0);
	mav_repo_tree_release(r, t);
	for (int i = 0; i < 5000 && n < 4; i++) {
		n = 0;
		for (uint32_t k = 1; k <= 4; k++)
			n += mav_cache_touch(r->trees, &x->p[k].id);
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	assert_int_equal(n, 4);
	assert_false(mav_cache_touch(r->trees, &x->p[5].id));
	/* Page 1 was in the cache: nothing more is queued. */
	assert_int_equal(mav_repo_tree_page(r, &id, x->p[1].start, &t, &first),
	                 0);
	mav_repo_tree_release(r, t);
	nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	assert_false(mav_cache_touch(r->trees, &x->p[5].id));
	mav_tree_index_free(x);
	mav_repo_close(r);
}

struct listing {
	struct mav_repo *r;
	uint32_t n;
	size_t heap, peak; /* heap in use at the start, and its peak after */
	bool sorted;
	char last[16];
};

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

static int on_entry(void *ctx, const char *name, const struct mav_attr *a,
                    uint64_t next)
{
	struct listing *l = ctx;
	size_t used = heap_in_use();

	(void)a;
	(void)next;
	if (used > l->peak)
		l->peak = used;
	if (l->n && strcmp(l->last, name) >= 0)
		l->sorted = false;
	snprintf(l->last, sizeof(l->last), "%s", name);
	l->n++;
	return 0;
}

static const struct mav_snapshot_opts snap_opts = {.message = "m",
                                                   .author = "t"};

/* Commit *c of branch main: a directory "big" of the BIG names. */
static void snap_big_dir(struct mav_repo *r, mav_id *c)
{
	struct mav_wt *wt = NULL;
	struct mav_attr a, d;
	uint64_t v;

	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	assert_int_equal(mav_wt_mkdir(&d, wt, MAV_WT_ROOT, "big", 0755, 0, 0),
	                 0);
	for (uint32_t i = 0; i < BIG; i++)
		assert_int_equal(
		    mav_wt_create(&a, wt, d.ino, names[i], 0644, 0, 0), 0);
	assert_int_equal(mav_wt_snapshot(c, &v, wt, &snap_opts), 0);
	mav_wt_close(wt);
}

/* A snapshot view lists and looks up a big directory a page at a time,
 * and its working tree edits it like any other. */
static void test_big_directory_in_views(void **state)
{
	struct mav_repo *r = mem_repo();
	struct mav_wt *wt = NULL, *view = NULL;
	struct listing l = {.r = r, .sorted = true};
	struct mav_fsck_report rep;
	struct mav_du_report du;
	struct mav_gc_report g;
	struct mav_attr a, d;
	uint64_t v;
	mav_id c1, c2;

	(void)state;
	snap_big_dir(r, &c1);

	/* A tree cache of 64 KiB; the whole directory decodes to ~500 KiB,
	 * and the heap may grow by less than half that during the listing. */
	mav_cache_free(r->trees);
	assert_int_equal(
	    mav_cache_new(&r->trees, 64 << 10, mav_odb_holder_free), 0);
	assert_int_equal(mav_wt_open_commit(&view, r, &c1), 0);
	assert_int_equal(mav_wt_lookup(&d, view, MAV_WT_ROOT, "big"), 0);
	l.heap = l.peak = heap_in_use();
	assert_int_equal(mav_wt_readdir(view, d.ino, 0, false, on_entry, &l),
	                 0);
	assert_int_equal(l.n, BIG);
	assert_true(l.sorted);
	assert_true(l.peak - l.heap < 200 << 10);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "f03333"), 0);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "f03333x"), -ENOENT);
	mav_wt_close(view);

	/* The working tree over it: remove, add, rename; then snapshot. */
	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	assert_int_equal(mav_wt_lookup(&d, wt, MAV_WT_ROOT, "big"), 0);
	assert_int_equal(mav_wt_rmdir(wt, MAV_WT_ROOT, "big"), -ENOTEMPTY);
	assert_int_equal(mav_wt_unlink(wt, d.ino, "f00100"), 0);
	assert_int_equal(mav_wt_unlink(wt, d.ino, "f00100"), -ENOENT);
	assert_int_equal(mav_wt_create(&a, wt, d.ino, "new", 0644, 0, 0), 0);
	assert_int_equal(
	    mav_wt_rename(wt, d.ino, "f04000", d.ino, "a-first", 0), 0);
	assert_int_equal(mav_wt_snapshot(&c2, &v, wt, &snap_opts), 0);
	mav_wt_close(wt);

	assert_int_equal(mav_wt_open_commit(&view, r, &c2), 0);
	assert_int_equal(mav_wt_lookup(&d, view, MAV_WT_ROOT, "big"), 0);
	l = (struct listing){.r = r, .sorted = true};
	assert_int_equal(mav_wt_readdir(view, d.ino, 0, false, on_entry, &l),
	                 0);
	assert_int_equal(l.n, BIG);
	assert_true(l.sorted);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "f00100"), -ENOENT);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "f04000"), -ENOENT);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "a-first"), 0);
	assert_int_equal(mav_wt_lookup(&a, view, d.ino, "new"), 0);
	mav_wt_close(view);

	/* du counts every entry of the paged directory, a page at a time:
	 * v2 has BIG - 1 + 1 (new) files and nothing else. */
	assert_int_equal(mav_du(&du, r, &c2), 0);
	assert_int_equal(du.files, BIG);
	/* gc keeps every page of both versions; fsck finds them whole. */
	assert_int_equal(mav_gc(&g, r, NULL, NULL), 0);
	assert_int_equal(g.objects_deleted, 0);
	assert_int_equal(mav_fsck(&rep, r, NULL, NULL, NULL), 0);
	assert_int_equal(rep.problems, 0);
	assert_true(rep.trees > 2 * 5);
	mav_repo_close(r);
}

static void collect(void *ctx, const char *line)
{
	char *problems = ctx;

	strncat(problems, line, 4000 - strlen(problems));
}

/* fsck names a page that went missing; the other pages still serve. */
static void test_fsck_names_a_missing_page(void **state)
{
	struct mav_repo *r = mem_repo();
	const struct mav_tree *t = NULL;
	struct mav_kv_batch *b = NULL;
	struct mav_fsck_report rep;
	struct mav_tree_index *x;
	char hex[MAV_ID_HEX_LEN + 1], problems[4096] = "";
	int64_t ix;
	mav_id c, big;

	(void)state;
	snap_big_dir(r, &c);
	{
		struct mav_commit *cm = NULL;

		assert_int_equal(mav_repo_get_commit(r, &c, &cm), 0);
		assert_int_equal(
		    mav_repo_tree_find(r, &cm->root, "big", &t, &ix), 0);
		mav_commit_free(cm);
	}
	assert_true(ix >= 0);
	big = t->e[ix].id;
	mav_repo_tree_release(r, t);
	x = get_index(r, &big);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(
	    mav_kv_batch_del(b, MAV_CF_OBJECTS, x->p[2].id.b, MAV_ID_LEN), 0);
	assert_int_equal(mav_kv_write(mav_repo_kv(r), b, 0), 0);
	mav_kv_batch_free(b);
	mav_cache_clear(r->trees);

	assert_int_equal(mav_fsck(&rep, r, collect, NULL, problems), 0);
	assert_true(rep.problems >= 1);
	mav_id_hex(hex, &x->p[2].id);
	assert_non_null(strstr(problems, hex));
	/* A name in another page still resolves; one in the lost page fails
	 * with the page named. */
	assert_int_equal(mav_repo_tree_find(r, &big, names[0], &t, &ix), 0);
	assert_true(ix >= 0);
	mav_repo_tree_release(r, t);
	assert_int_equal(mav_repo_tree_find(r, &big, x->p[2].first, &t, &ix),
	                 MAV_ENOTFOUND);
	assert_non_null(strstr(mav_error_message(), hex));
	mav_tree_index_free(x);
	mav_repo_close(r);
}

/* A snapshot that changes one file of a paged directory reads and stores
 * the page it falls in, not the whole directory. With the tree cache
 * emptied, rebuilding the directory whole costs two store calls a page (a
 * read, and an existence check when it is stored again): 46 calls for its
 * 16 pages, against 16 for the whole snapshot now. */
static void test_snapshot_reads_few_pages(void **state)
{
	struct mav_kv *mem = NULL, *kv = NULL;
	struct mav_repo *r = NULL;
	struct mav_wt *wt = NULL;
	struct mav_tree_index *x;
	struct mav_attr a, d;
	uint64_t v, calls;
	mav_id c1, c2, whole;

	(void)state;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&kv, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, kv, true, NULL), 0);
	snap_big_dir(r, &c1);
	put_tree(r, &whole, ents, BIG); /* the same names, so the same cuts */
	x = get_index(r, &whole);
	assert_true(x->npages >= 10);

	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	assert_int_equal(mav_wt_lookup(&d, wt, MAV_WT_ROOT, "big"), 0);
	assert_int_equal(mav_wt_lookup(&a, wt, d.ino, names[2500]), 0);
	assert_int_equal(mav_wt_write(wt, a.ino, 0, "x", 1), 1);
	mav_cache_free(r->trees);
	assert_int_equal(
	    mav_cache_new(&r->trees, 64 << 20, mav_odb_holder_free), 0);
	calls = mav_kv_fault_calls(kv);
	assert_int_equal(mav_wt_snapshot(&c2, &v, wt, &snap_opts), 0);
	calls = mav_kv_fault_calls(kv) - calls;
	assert_true(calls < 2 * x->npages);
	mav_wt_close(wt);
	mav_tree_index_free(x);
	mav_repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_index_encoding),
	    cmocka_unit_test(test_small_tree_stays_whole),
	    cmocka_unit_test(test_paged_tree_reads),
	    cmocka_unit_test(test_edit_rewrites_one_page),
	    cmocka_unit_test(test_changed_pages_match_whole),
	    cmocka_unit_test(test_changed_pages_store_little),
	    cmocka_unit_test(test_snapshot_reads_few_pages),
	    cmocka_unit_test(test_page_mismatch_is_corrupt),
	    cmocka_unit_test(test_pages_prefetched_after_a_miss),
	    cmocka_unit_test(test_big_directory_in_views),
	    cmocka_unit_test(test_fsck_names_a_missing_page),
	};

	fill_entries();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
