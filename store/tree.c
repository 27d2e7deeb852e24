/* tree.c - directories as stored trees: whole, or paged when big.
 *
 * A directory of up to MAV_TREE_PAGE_MAX entries is one "MAVT" tree. A
 * bigger one is cut into pages of consecutive entries, each an ordinary
 * "MAVT" tree, named by a "MAVI" index of (page id, count, first name).
 * A page ends after a name whose hash has its low bits clear, once it has
 * PAGE_MIN entries, or at MAV_TREE_PAGE_MAX: the cuts follow the names, so
 * adding, removing or changing one entry rewrites its page and the index
 * while every other page keeps its id. Readers that want one name or one
 * stretch of a listing load only the pages involved; each page is checked
 * against what the index says of it.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "grow.h"
#include "mav/error.h"
#include "prefetch.h"
#include "repo_internal.h"

#define PAGE_MIN    64
#define PAGE_MASK   255 /* a cut after 1 name in 256: pages of ~320 entries */
#define PAGES_AHEAD 4   /* pages queued after one read from disk */

static bool cut_after(const char *name, uint32_t count)
{
	if (count >= MAV_TREE_PAGE_MAX)
		return true;
	return count >= PAGE_MIN &&
	       (XXH3_64bits(name, strlen(name)) & PAGE_MASK) == 0;
}

static int put_encoded_tree(struct mav_repo *r, struct mav_kv_batch *b,
                            unsigned flags, mav_id *out,
                            const struct mav_entry *e, uint32_t n)
{
	uint8_t *enc = NULL;
	size_t len;
	int rc = mav_tree_encode(&enc, &len, e, n);

	if (rc == 0)
		rc = mav_repo_put_object(r, b, flags, out, enc, len);
	free(enc);
	return rc;
}

int mav_repo_put_tree(struct mav_repo *r, struct mav_kv_batch *b,
                      unsigned flags, mav_id *out, const struct mav_entry *e,
                      uint32_t n)
{
	struct mav_tree_page *p = NULL;
	size_t np = 0, cap = 0, len;
	uint8_t *enc = NULL;
	uint32_t s = 0;
	int rc = 0;

	if (n <= MAV_TREE_PAGE_MAX)
		return put_encoded_tree(r, b, flags, out, e, n);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		if (i + 1 < n && !cut_after(e[i].name, i + 1 - s))
			continue;
		rc = mav_grow(&p, &cap, np, sizeof(*p), 64);
		if (rc < 0)
			break;
		p[np] = (struct mav_tree_page){
		    .n = i + 1 - s, .start = s, .first = e[s].name};
		rc = put_encoded_tree(r, b, flags, &p[np++].id, e + s,
		                      i + 1 - s);
		s = i + 1;
	}
	if (rc == 0)
		rc = mav_tree_index_encode(&enc, &len, p, (uint32_t)np);
	if (rc == 0)
		rc = mav_repo_put_object(r, b, flags, out, enc, len);
	free(enc);
	free(p);
	return rc;
}

/* Page k of index x (the object id), checked against the index. A page
 * that had to come from disk has the next PAGES_AHEAD queued for the
 * prefetch threads: listings and sorted lookups go on to them. */
static int load_page(const struct mav_tree **out, struct mav_repo *r,
                     const mav_id *id, const struct mav_tree_index *x,
                     uint32_t k)
{
	const struct mav_tree_page *pg = &x->p[k];
	const struct mav_tree_index *nested = NULL;
	const struct mav_tree *t = NULL;
	char hex[MAV_ID_HEX_LEN + 1], page[MAV_ID_HEX_LEN + 1];
	bool missed = false;
	int rc = mav_odb_get_tree(&t, &nested, &missed, r, &pg->id);

	*out = NULL;
	if (rc < 0)
		return rc;
	for (uint32_t j = k + 1; missed && r->tree_prefetch &&
	                         j <= k + PAGES_AHEAD && j < x->npages;
	     j++)
		mav_prefetch_push(r->tree_prefetch, &x->p[j].id);
	if (t && t->n == pg->n && strcmp(t->e[0].name, pg->first) == 0 &&
	    (k + 1 == x->npages ||
	     strcmp(t->e[t->n - 1].name, x->p[k + 1].first) < 0)) {
		*out = t;
		return 0;
	}
	mav_odb_release(r, t);
	mav_odb_release(r, nested);
	mav_id_hex(hex, id);
	mav_id_hex(page, &pg->id);
	return mav_error_set(MAV_ECORRUPT,
	                     "tree %s: page %s does not match the index", hex,
	                     page);
}

/* One tree holding every entry of a paged directory, outside the cache. */
static int assemble(const struct mav_tree **out, struct mav_repo *r,
                    const mav_id *id, const struct mav_tree_index *x)
{
	const struct mav_tree **pages = calloc(x->npages, sizeof(*pages));
	struct mav_entry *e = calloc(x->n, sizeof(*e));
	struct mav_tree *t = NULL;
	uint8_t *enc = NULL;
	size_t len;
	int rc = pages && e ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");

	/* Entries borrow the pages' strings until the copy below. */
	for (uint32_t k = 0; rc == 0 && k < x->npages; k++) {
		rc = load_page(&pages[k], r, id, x, k);
		if (rc == 0)
			memcpy(e + x->p[k].start, pages[k]->e,
			       x->p[k].n * sizeof(*e));
	}
	if (rc == 0)
		rc = mav_tree_encode(&enc, &len, e, x->n);
	if (rc == 0)
		rc = mav_tree_decode(&t, enc, len);
	for (uint32_t k = 0; pages && k < x->npages; k++)
		mav_odb_release(r, pages[k]);
	free(pages);
	free(e);
	free(enc);
	if (rc == 0 && !(*out = mav_odb_hold_tree(t)))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	return rc;
}

static int each_entry(const struct mav_tree *t, mav_tree_entry_fn fn, void *ctx)
{
	int rc = 0;

	for (uint32_t i = 0; rc == 0 && i < t->n; i++)
		rc = fn(ctx, &t->e[i]);
	return rc;
}

int mav_tree_each(struct mav_repo *r, const mav_id *id,
                  mav_tree_page_fn page_fn, mav_tree_entry_fn fn, void *ctx)
{
	const struct mav_tree_index *x = NULL;
	const struct mav_tree *t = NULL;
	int rc = mav_odb_get_tree(&t, &x, NULL, r, id);

	if (rc == 0 && t)
		rc = each_entry(t, fn, ctx);
	mav_odb_release(r, t);
	for (uint32_t k = 0; rc == 0 && x && page_fn && k < x->npages; k++)
		rc = page_fn(ctx, &x->p[k].id);
	for (uint32_t k = 0; rc == 0 && x && k < x->npages; k++) {
		rc = load_page(&t, r, id, x, k);
		if (rc == 0)
			rc = each_entry(t, fn, ctx);
		mav_odb_release(r, t);
	}
	mav_odb_release(r, x);
	return rc;
}

int mav_repo_get_tree(struct mav_repo *r, const mav_id *id,
                      const struct mav_tree **out)
{
	const struct mav_tree_index *x = NULL;
	int rc = mav_odb_get_tree(out, &x, NULL, r, id);

	if (rc == 0 && x) {
		rc = assemble(out, r, id, x);
		mav_odb_release(r, x);
	}
	return rc;
}

int mav_repo_tree_find(struct mav_repo *r, const mav_id *id, const char *name,
                       const struct mav_tree **page, int64_t *ix)
{
	const struct mav_tree_index *x = NULL;
	int rc = mav_odb_get_tree(page, &x, NULL, r, id);
	int64_t k;

	*ix = -1;
	if (rc == 0 && x) {
		k = mav_tree_index_find(x, name);
		if (k >= 0)
			rc = load_page(page, r, id, x, (uint32_t)k);
		mav_odb_release(r, x);
	}
	if (rc == 0 && *page)
		*ix = mav_tree_find(*page, name);
	return rc;
}

int mav_repo_tree_page(struct mav_repo *r, const mav_id *id, uint64_t i,
                       const struct mav_tree **page, uint64_t *first)
{
	const struct mav_tree_index *x = NULL;
	int rc = mav_odb_get_tree(page, &x, NULL, r, id);
	uint32_t k;

	*first = 0;
	if (rc == 0 && x && i < x->n) {
		k = mav_tree_index_page_of(x, (uint32_t)i);
		*first = x->p[k].start;
		rc = load_page(page, r, id, x, k);
	}
	mav_odb_release(r, x);
	if (rc == 0 && *page && i - *first >= (*page)->n) {
		mav_odb_release(r, *page);
		*page = NULL;
	}
	return rc;
}
