/* tree.c - directories as stored trees: whole, or paged when big.
 *
 * A directory of up to MAV_TREE_WHOLE_MAX entries is one "MAVT" tree. A
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

	if (n <= MAV_TREE_WHOLE_MAX)
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

/* One tree holding every entry of a paged directory, outside the cache:
 * the entries point into the pages, held as long as it is. */
static int assemble(const struct mav_tree **out, struct mav_repo *r,
                    const mav_id *id, const struct mav_tree_index *x)
{
	const struct mav_tree **pages = calloc(x->npages, sizeof(*pages));
	struct mav_entry *e = calloc(x->n ? x->n : 1, sizeof(*e));
	int rc = pages && e ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");

	for (uint32_t k = 0; rc == 0 && k < x->npages; k++) {
		rc = load_page(&pages[k], r, id, x, k);
		if (rc == 0)
			memcpy(e + x->p[k].start, pages[k]->e,
			       x->p[k].n * sizeof(*e));
	}
	if (rc < 0) {
		for (uint32_t k = 0; pages && k < x->npages; k++)
			mav_odb_release(r, pages[k]);
		free(pages);
		free(e);
		return rc;
	}
	*out = mav_odb_join_pages(r, pages, x->npages, e, x->n);
	return *out ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");
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

/* ---- changing a stored directory ---- */

/* Entries cut into pages as mav_repo_put_tree would cut them, fed one at a
 * time: pend holds those since the last cut (all of them when whole). */
struct recut {
	struct mav_repo *r;
	struct mav_kv_batch *b;
	unsigned flags;
	bool whole;
	struct mav_entry *pend;
	size_t npend, pend_cap;
	struct mav_tree_page *p; /* the result's pages so far */
	size_t np, p_cap;
	uint32_t total; /* entries in p */
};

static int recut_page(struct recut *c, const mav_id *id, uint32_t n,
                      char *first)
{
	if (n > UINT32_MAX - c->total)
		return mav_error_set(MAV_EINVAL, "directory too big");
	if (mav_grow(&c->p, &c->p_cap, c->np, sizeof(*c->p), 64) < 0)
		return MAV_ENOMEM;
	c->p[c->np++] = (struct mav_tree_page){
	    .id = *id, .n = n, .start = c->total, .first = first};
	c->total += n;
	return 0;
}

static int recut_flush(struct recut *c)
{
	mav_id id;
	int rc;

	if (c->npend == 0)
		return 0;
	rc = put_encoded_tree(c->r, c->b, c->flags, &id, c->pend,
	                      (uint32_t)c->npend);
	if (rc == 0)
		rc = recut_page(c, &id, (uint32_t)c->npend, c->pend[0].name);
	c->npend = 0;
	return rc;
}

static int recut_feed(struct recut *c, const struct mav_entry *e)
{
	if (c->npend >= UINT32_MAX)
		return mav_error_set(MAV_EINVAL, "directory too big");
	if (mav_grow(&c->pend, &c->pend_cap, c->npend, sizeof(*c->pend), 256) <
	    0)
		return MAV_ENOMEM;
	c->pend[c->npend++] = *e;
	if (c->whole || !cut_after(e->name, (uint32_t)c->npend))
		return 0;
	return recut_flush(c);
}

/* Feed the entries of t (NULL: none) merged with the changes from *ci on
 * that sort before end (NULL: all of them). */
static int recut_merge(struct recut *c, const struct mav_tree *t,
                       const struct mav_tree_change *ch, size_t nc, size_t *ci,
                       const char *end)
{
	uint32_t i = 0, n = t ? t->n : 0;
	int rc = 0;

	for (;;) {
		const struct mav_tree_change *x =
		    *ci < nc && (!end || strcmp(ch[*ci].name, end) < 0)
		        ? &ch[*ci]
		        : NULL;
		int cmp;

		if (rc < 0 || (i == n && !x))
			return rc;
		cmp = i == n ? 1 : !x ? -1 : strcmp(t->e[i].name, x->name);
		if (cmp < 0) {
			rc = recut_feed(c, &t->e[i++]);
			continue;
		}
		i += cmp == 0; /* the change replaces or removes it */
		(*ci)++;
		if (x->e)
			rc = recut_feed(c, x->e);
	}
}

/* Every entry of t (the base; NULL: empty) with the changes, stored as
 * mav_repo_put_tree stores a directory. */
static int change_whole(struct recut *c, mav_id *out, const struct mav_tree *t,
                        const struct mav_tree_change *ch, size_t nc)
{
	size_t ci = 0;
	int rc;

	c->whole = true;
	rc = recut_merge(c, t, ch, nc, &ci, NULL);
	if (rc == 0)
		rc = mav_repo_put_tree(c->r, c->b, c->flags, out, c->pend,
		                       (uint32_t)c->npend);
	return rc;
}

/* The pages of index x (of tree base) with the changes: a page no change
 * falls in is kept as it is when the cuts before it came out as before,
 * which the content-defined cuts make so within a page or two. Pages read
 * stay in held[] until the index is written: their names are borrowed. */
static int change_pages(struct recut *c, mav_id *out, const mav_id *base,
                        const struct mav_tree_index *x,
                        const struct mav_tree_change *ch, size_t nc,
                        const struct mav_tree **held)
{
	uint8_t *enc = NULL;
	size_t ci = 0, len;
	int rc = 0;

	for (uint32_t k = 0; rc == 0 && k < x->npages; k++) {
		const char *end = k + 1 < x->npages ? x->p[k + 1].first : NULL;
		bool touched =
		    ci < nc && (!end || strcmp(ch[ci].name, end) < 0);

		if (!touched && c->npend == 0) {
			rc = recut_page(c, &x->p[k].id, x->p[k].n,
			                x->p[k].first);
			continue;
		}
		rc = load_page(&held[k], c->r, base, x, k);
		if (rc == 0)
			rc = recut_merge(c, held[k], ch, nc, &ci, end);
	}
	if (rc == 0)
		rc = recut_flush(c);
	if (rc == 0)
		rc = mav_tree_index_encode(&enc, &len, c->p, (uint32_t)c->np);
	if (rc == 0)
		rc = mav_repo_put_object(c->r, c->b, c->flags, out, enc, len);
	free(enc);
	return rc;
}

int mav_repo_put_tree_changed(struct mav_repo *r, struct mav_kv_batch *b,
                              unsigned flags, mav_id *out, const mav_id *base,
                              const struct mav_tree_change *ch, size_t nc)
{
	struct recut c = {.r = r, .b = b, .flags = flags};
	const struct mav_tree_index *x = NULL;
	const struct mav_tree *t = NULL, **held = NULL;
	size_t removals = 0;
	int rc = 0;

	for (size_t i = 0; i < nc; i++)
		removals += !ch[i].e;
	if (!mav_id_is_zero(base))
		rc = mav_odb_get_tree(&t, &x, NULL, r, base);
	/* Page by page only while the result is sure to stay paged. */
	if (rc == 0 && x && x->n <= MAV_TREE_WHOLE_MAX + removals)
		rc = assemble(&t, r, base, x);
	if (rc == 0 && (t || !x))
		rc = change_whole(&c, out, t, ch, nc);
	else if (rc == 0 && !(held = calloc(x->npages, sizeof(*held))))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	else if (rc == 0)
		rc = change_pages(&c, out, base, x, ch, nc, held);
	for (uint32_t k = 0; held && k < x->npages; k++)
		mav_odb_release(r, held[k]);
	free(held);
	mav_odb_release(r, t);
	mav_odb_release(r, x);
	free(c.pend);
	free(c.p);
	return rc;
}
