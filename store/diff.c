/* diff.c - what changed between two trees (mav_diff, see maint.h).
 *
 * A recursive merge of two sorted directories. Content addressing makes it
 * cheap: two subtrees with the same id are identical and are never opened,
 * so the cost grows with the change, not with the repository (two snapshots
 * of a 100k-file tree that differ in one file open one directory per level
 * of that file's path).
 *
 * Below a directory that exists on one side only, every entry is reported
 * (the directory first, then its contents). A type change (file -> dir...)
 * is one 'M' for the path, then 'D' for the old contents and 'A' for the
 * new ones. An entry is modified when its content id, mode, type, link
 * target or xattrs differ; owner and mtime alone are not changes.
 *
 * Renames: the walk records changes instead of reporting them at once.
 * Afterwards every removed file is paired with an added file of the same
 * blob id (first with first, in walk order; empty files are never paired:
 * all empty files share one id); each pair becomes one 'R'. Then the
 * callback sees the unpaired changes in walk order (depth first, names in
 * byte order within each directory), then the renames in the order of
 * their new paths. Memory: one record per change.
 */
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "mav/error.h"
#include "mav/maint.h"

#define MAX_DEPTH 4096 /* deeper than any path the kernel accepts */

struct rec {
	char kind;
	uint8_t type;
	bool paired; /* 'D' or 'A' folded into a rename */
	char *path;
	uint64_t old_size, new_size;
	mav_id id;    /* blob id of an added or removed file (renames) */
	size_t other; /* 'A' paired: index of the removed record */
};

struct diff {
	struct mav_repo *r;
	struct rec *v;
	size_t n, cap;
};

static int diff_dir(struct diff *d, const mav_id *a, const mav_id *b,
                    const char *prefix, int depth);

static char *join(const char *prefix, const char *name)
{
	size_t pl = strlen(prefix), nl = strlen(name);
	char *p = malloc(pl + nl + 2);

	if (!p)
		return NULL;
	memcpy(p, prefix, pl);
	p[pl] = '/';
	memcpy(p + pl + (pl ? 1 : 0), name, nl + 1);
	return p;
}

static int record(struct diff *d, char kind, const struct mav_entry *old,
                  const struct mav_entry *new, const char *path)
{
	const struct mav_entry *e = new ? new : old;
	struct rec *x;

	if (mav_grow(&d->v, &d->cap, d->n, sizeof(*d->v), 64) < 0)
		return MAV_ENOMEM;
	x = &d->v[d->n];
	memset(x, 0, sizeof(*x));
	x->path = strdup(path);
	if (!x->path)
		return mav_error_set(MAV_ENOMEM, "diff: path %s", path);
	x->kind = kind;
	x->type = e->type;
	x->old_size = old ? old->size : 0;
	x->new_size = new ? new->size : 0;
	x->id = e->id;
	d->n++;
	return 0;
}

static const mav_id *dir_or_null(const struct mav_entry *e)
{
	static const mav_id zero;

	return e && e->type == MAV_T_DIR ? &e->id : &zero;
}

/* An entry on one side only: report it and, for a directory, all below. */
static int one_side(struct diff *d, const struct mav_entry *old,
                    const struct mav_entry *new, const char *path, int depth)
{
	const struct mav_entry *e = new ? new : old;
	int rc = record(d, new ? 'A' : 'D', old, new, path);

	if (rc == 0 && e->type == MAV_T_DIR)
		rc = diff_dir(d, dir_or_null(old), dir_or_null(new), path,
		              depth + 1);
	return rc;
}

static bool xattrs_equal(const struct mav_entry *a, const struct mav_entry *b)
{
	if (a->nxattrs != b->nxattrs)
		return false;
	for (uint32_t i = 0; i < a->nxattrs; i++) {
		const struct mav_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];

		if (strcmp(x->name, y->name) != 0 || x->len != y->len ||
		    (x->len && memcmp(x->value, y->value, x->len) != 0))
			return false;
	}
	return true;
}

static bool attrs_equal(const struct mav_entry *a, const struct mav_entry *b)
{
	if (a->type != b->type || a->mode != b->mode)
		return false;
	if (a->type == MAV_T_SYMLINK && strcmp(a->target, b->target) != 0)
		return false;
	return xattrs_equal(a, b);
}

/* A name on both sides. */
static int both_sides(struct diff *d, const struct mav_entry *a,
                      const struct mav_entry *b, const char *path, int depth)
{
	bool same_id = mav_id_cmp(&a->id, &b->id) == 0;
	int rc = 0;

	if (a->type == MAV_T_DIR && b->type == MAV_T_DIR) {
		if (!attrs_equal(a, b))
			rc = record(d, 'M', a, b, path);
		if (rc == 0 && !same_id)
			rc = diff_dir(d, &a->id, &b->id, path, depth + 1);
		return rc;
	}
	if (same_id && attrs_equal(a, b))
		return 0;
	rc = record(d, 'M', a, b, path);
	if (rc == 0 && a->type != b->type)
		rc = diff_dir(d, dir_or_null(a), dir_or_null(b), path,
		              depth + 1);
	return rc;
}

/* Compare entry i of ta with entry j of tb (either may be past its end). */
static int merge_step(struct diff *d, const struct mav_tree *ta, uint32_t *i,
                      const struct mav_tree *tb, uint32_t *j,
                      const char *prefix, int depth)
{
	const struct mav_entry *a = *i < ta->n ? &ta->e[*i] : NULL;
	const struct mav_entry *b = *j < tb->n ? &tb->e[*j] : NULL;
	int c = !a ? 1 : !b ? -1 : strcmp(a->name, b->name);
	char *path = join(prefix, c <= 0 ? a->name : b->name);
	int rc;

	if (!path)
		return mav_error_set(MAV_ENOMEM, "diff: path under %s", prefix);
	if (c < 0)
		rc = one_side(d, a, NULL, path, depth);
	else if (c > 0)
		rc = one_side(d, NULL, b, path, depth);
	else
		rc = both_sides(d, a, b, path, depth);
	*i += c <= 0;
	*j += c >= 0;
	free(path);
	return rc;
}

static const struct mav_tree empty_tree; /* the zero id's tree */

static int load(struct diff *d, const mav_id *id, const struct mav_tree **t)
{
	*t = &empty_tree;
	return mav_id_is_zero(id) ? 0 : mav_repo_get_tree(d->r, id, t);
}

static void unload(struct diff *d, const struct mav_tree *t)
{
	if (t && t != &empty_tree)
		mav_repo_tree_release(d->r, t);
}

static int diff_dir(struct diff *d, const mav_id *a, const mav_id *b,
                    const char *prefix, int depth)
{
	const struct mav_tree *ta = NULL, *tb = NULL;
	uint32_t i = 0, j = 0;
	int rc;

	if (mav_id_cmp(a, b) == 0)
		return 0;
	if (depth > MAX_DEPTH)
		return mav_error_set(MAV_ECORRUPT,
		                     "diff: trees nested deeper than %d at %s",
		                     MAX_DEPTH, prefix);
	rc = load(d, a, &ta);
	if (rc == 0)
		rc = load(d, b, &tb);
	while (rc == 0 && (i < ta->n || j < tb->n))
		rc = merge_step(d, ta, &i, tb, &j, prefix, depth);
	unload(d, ta);
	unload(d, tb);
	return rc;
}

/* ---- renames, reporting ---- */

struct cand {
	mav_id id;
	size_t idx; /* record index: walk order breaks ties */
};

static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	int c = mav_id_cmp(&a->id, &b->id);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The removed ('D') or added ('A') non-empty files, sorted by id. */
static struct cand *candidates(const struct diff *d, char kind, size_t *n)
{
	struct cand *c = malloc((d->n ? d->n : 1) * sizeof(*c));

	*n = 0;
	if (!c)
		return NULL;
	for (size_t k = 0; k < d->n; k++) {
		const struct rec *x = &d->v[k];

		if (x->kind == kind && x->type == MAV_T_FILE &&
		    (kind == 'D' ? x->old_size : x->new_size) > 0)
			c[(*n)++] = (struct cand){x->id, k};
	}
	qsort(c, *n, sizeof(*c), cand_cmp);
	return c;
}

static int pair_renames(struct diff *d)
{
	size_t nd, na, i = 0, j = 0;
	struct cand *del = candidates(d, 'D', &nd);
	struct cand *add = candidates(d, 'A', &na);
	int rc = 0;

	if (!del || !add) {
		rc = mav_error_set(MAV_ENOMEM, "diff: rename candidates");
		goto out;
	}
	while (i < nd && j < na) {
		int c = mav_id_cmp(&del[i].id, &add[j].id);

		if (c == 0) {
			d->v[del[i].idx].paired = true;
			d->v[add[j].idx].paired = true;
			d->v[add[j].idx].other = del[i].idx;
		}
		i += c <= 0;
		j += c >= 0;
	}
out:
	free(del);
	free(add);
	return rc;
}

static int emit(const struct diff *d, mav_change_fn fn, void *ctx)
{
	int rc = 0;

	for (size_t k = 0; k < d->n && rc == 0; k++) {
		const struct rec *x = &d->v[k];
		struct mav_change c = {x->kind, x->path,     NULL,
		                       x->type, x->old_size, x->new_size};

		if (!x->paired)
			rc = fn(ctx, &c);
	}
	for (size_t k = 0; k < d->n && rc == 0; k++) {
		const struct rec *x = &d->v[k], *o = &d->v[x->other];
		struct mav_change c = {'R',     x->path,     o->path,
		                       x->type, o->old_size, x->new_size};

		if (x->paired && x->kind == 'A')
			rc = fn(ctx, &c);
	}
	return rc;
}

/* Returns 0, an error, or the first nonzero value the callback returned
 * (which stops the report). */
int mav_diff(struct mav_repo *r, const mav_id *tree_a, const mav_id *tree_b,
             mav_change_fn fn, void *ctx)
{
	struct diff d = {r, NULL, 0, 0};
	int rc = diff_dir(&d, tree_a, tree_b, "", 0);

	if (rc == 0)
		rc = pair_renames(&d);
	if (rc == 0)
		rc = emit(&d, fn, ctx);
	for (size_t k = 0; k < d.n; k++)
		free(d.v[k].path);
	free(d.v);
	return rc;
}
