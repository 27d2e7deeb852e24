/* wt_view.c - opening views, and the calls that only look: lookup, forget,
 * getattr, readdir, readlink, xattr reads.
 *
 * A read-only view of a commit is a working tree that never materializes:
 * the same node table over the same trees, with every change refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "grow.h"
#include "codec.h"
#include "mav/error.h"
#include "behind.h"
#include "wt_internal.h"

#define USER_MAV_ID "user.mav.id"

static int root_node(struct mav_wt *wt)
{
	struct node *n = wt_node_new(wt, MAV_WT_ROOT);
	struct mav_commit *c = NULL;
	int rc = 0;

	if (!n)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	n->parent = MAV_WT_ROOT;
	if (wt->branch) {
		rc = wt_load_rec(&n->rec, wt, MAV_WT_ROOT);
		if (rc == 0) {
			n->persisted = true;
			return 0;
		}
		if (rc != MAV_ENOTFOUND)
			return rc;
		rc = 0;
	}
	n->rec.type = MAV_T_DIR;
	n->rec.mode = 0755;
	n->rec.uid = getuid();
	n->rec.gid = getgid();
	n->rec.nlink = 2;
	n->rec.parent = MAV_WT_ROOT;
	n->rec.id = wt->root_tree;
	if (!mav_id_is_zero(&wt->base)) {
		rc = mav_repo_get_commit(wt->r, &wt->base, &c);
		if (rc == 0)
			n->rec.atime = n->rec.mtime = n->rec.ctime = c->time_ns;
		mav_commit_free(c);
	}
	return rc;
}

int wt_set_base(struct mav_wt *wt, const mav_id *commit)
{
	struct mav_commit *c = NULL;
	int rc = 0;

	wt->base = *commit;
	wt->base_time = 0;
	if (mav_id_is_zero(commit)) {
		mav_repo_empty_tree(&wt->root_tree);
		return 0;
	}
	rc = mav_repo_get_commit(wt->r, commit, &c);
	if (rc == 0) {
		wt->root_tree = c->root;
		wt->base_time = c->time_ns;
	}
	mav_commit_free(c);
	return rc;
}

static int view_new(struct mav_wt **out, struct mav_repo *r, const char *branch)
{
	struct mav_wt *wt = calloc(1, sizeof(*wt));

	*out = NULL;
	if (!wt)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	wt->r = r;
	wt->next_ino = MAV_WT_ROOT + 1;
	pthread_mutex_init(&wt->lock, NULL);
	if (branch) {
		wt->plen = strlen(branch) + 1;
		wt->branch = strdup(branch);
		if (!wt->branch || wt->plen > 220) {
			mav_wt_close(wt);
			return mav_error_set(MAV_EINVAL, "bad branch name");
		}
	}
	*out = wt;
	return 0;
}

/* Give a prepared view its root node and hand it out, or free it. */
static int view_finish(struct mav_wt **out, struct mav_wt *wt, int rc)
{
	*out = NULL;
	if (rc == 0)
		rc = root_node(wt);
	if (rc < 0) {
		mav_wt_close(wt);
		return rc;
	}
	*out = wt;
	return 0;
}

int mav_wt_open_commit(struct mav_wt **out, struct mav_repo *r,
                       const mav_id *commit)
{
	struct mav_wt *wt = NULL;
	int rc = view_new(&wt, r, NULL);

	if (rc == 0)
		rc = wt_set_base(wt, commit);
	return view_finish(out, wt, rc);
}

/* Drop inodes unlinked while open in a previous life of the daemon. */
static int purge_orphans(struct mav_wt *wt)
{
	struct mav_kv_batch *b = NULL;
	struct mav_kv_iter *it = NULL;
	uint8_t key[WT_KEY_MAX];
	size_t plen = wt_key(key, wt, 'o', 0, NULL) - 8;
	int rc = mav_kv_batch_new(&b);

	if (rc == 0)
		rc = mav_kv_iter_new(&it, wt->r->kv, MAV_CF_WT);
	if (rc < 0)
		goto out;
	for (mav_kv_iter_seek(it, key, plen); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		size_t klen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		uint8_t ikey[WT_KEY_MAX];

		if (klen != plen + 8 || memcmp(k, key, plen) != 0)
			break;
		memcpy(ikey, k, klen);
		ikey[plen - 1] = 'i';
		mav_kv_batch_del(b, MAV_CF_WT, k, klen);
		mav_kv_batch_del(b, MAV_CF_WT, ikey, klen);
	}
	rc = mav_kv_iter_status(it);
	if (rc == 0 && mav_kv_batch_count(b))
		rc = wt_write(wt, b, 0);
out:
	mav_kv_iter_free(it);
	mav_kv_batch_free(b);
	return rc;
}

static int load_header(struct mav_wt *wt)
{
	uint8_t key[WT_KEY_MAX];
	size_t klen = wt_key(key, wt, 'h', 0, NULL), vlen;
	uint8_t *v = NULL;
	char ref[256];
	mav_id base;
	int rc =
	    mav_kv_get(wt->r->kv, MAV_CF_WT, key, klen, (void **)&v, &vlen);

	if (rc == 0) {
		if (vlen != 4 + MAV_ID_LEN + 8 || memcmp(v, "MAVH", 4) != 0) {
			free(v);
			return mav_error_set(MAV_ECORRUPT,
			                     "working tree of '%s' is corrupt",
			                     wt->branch);
		}
		memcpy(base.b, v + 4, MAV_ID_LEN);
		wt->next_ino = mav_load_u64(v + 4 + MAV_ID_LEN);
		free(v);
		return wt_set_base(wt, &base);
	}
	if (rc != MAV_ENOTFOUND)
		return rc;
	snprintf(ref, sizeof(ref), "b/%s", wt->branch);
	rc = mav_ref_get(&base, wt->r, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no branch '%s'", wt->branch);
	if (rc == 0)
		rc = wt_set_base(wt, &base);
	return rc;
}

int mav_wt_open(struct mav_wt **out, struct mav_repo *r, const char *branch)
{
	struct mav_wt *wt = NULL;
	int rc;

	*out = NULL;
	if (!mav_branch_name_valid(branch))
		return mav_error_set(MAV_EINVAL, "invalid branch name '%s'",
		                     branch);
	rc = view_new(&wt, r, branch);
	if (rc == 0)
		rc = load_header(wt);
	if (rc == 0 && !r->secondary)
		rc = purge_orphans(wt);
	if (rc == 0)
		rc = wt_note_hashed_recs(wt);
	return view_finish(out, wt, rc);
}

static void free_all_nodes(struct mav_wt *wt)
{
	for (size_t i = 0; i < wt->by_ino.nb; i++) {
		struct node *n = wt->by_ino.b[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			wt_listing_drop(wt, n);
			wt_dirty_free(wt, n);
			wt_rec_clear(&n->rec);
			free(n->ahead);
			free(n->name);
			free(n);
		}
	}
	free(wt->by_ino.b);
	free(wt->by_child.b);
	free(wt->by_link.b);
	memset(&wt->by_ino, 0, sizeof(wt->by_ino));
	memset(&wt->by_child, 0, sizeof(wt->by_child));
	memset(&wt->by_link, 0, sizeof(wt->by_link));
}

void mav_wt_close(struct mav_wt *wt)
{
	if (!wt)
		return;
	free_all_nodes(wt);
	mav_behind_pool_free(wt->feeders); /* after the streams it fed */
	free(wt->pend);
	pthread_mutex_destroy(&wt->lock);
	free(wt->branch);
	free(wt);
}

void mav_wt_kernel_times(struct mav_wt *wt, bool on)
{
	wt->kernel_times = on;
}

bool mav_wt_readonly(const struct mav_wt *wt)
{
	return wt->branch == NULL;
}

void mav_wt_base(mav_id *out, const struct mav_wt *wt)
{
	*out = wt->base;
}

int mav_wt_lookup(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                  const char *name)
{
	struct node *dir, *n = NULL;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&dir, wt, parent);
	if (rc == 0)
		rc = wt_resolve(&n, wt, dir, name);
	if (rc == 0) {
		n->nlookup++;
		wt_attr(out, wt, n);
	}
	wt_unlock(wt);
	return rc;
}

void mav_wt_forget(struct mav_wt *wt, uint64_t ino, uint64_t nlookup)
{
	struct node *n;

	pthread_mutex_lock(&wt->lock);
	n = wt_node(wt, ino);
	if (n) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		if (n->nlookup == 0 && wt_unsealed(n)) {
			struct mav_kv_batch *b = NULL;

			/* The kernel forgot it: seal now (best effort; an
			 * error keeps the buffer for the next sync). */
			if (mav_kv_batch_new(&b) == 0 && wt_seal(wt, n, b) == 0)
				wt_write(wt, b, 0);
			mav_kv_batch_free(b);
		}
		wt_node_unref(wt, n);
	}
	wt_unlock(wt);
}

int mav_wt_getattr(struct mav_attr *out, struct mav_wt *wt, uint64_t ino)
{
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0)
		wt_attr(out, wt, n);
	wt_unlock(wt);
	return rc;
}

/* ---- readdir ---- */

void wt_listing_drop(struct mav_wt *wt, struct node *n)
{
	struct listing *l = n->listing;

	n->listed_end = 0;
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	free(l->order);
	mav_repo_tree_release(wt->r, l->base);
	free(l);
	n->listing = NULL;
}

/* Readdir cookies stay with their entry while the directory changes, so
 * that a listing resumed after a change neither skips nor repeats the
 * entries that were there all along (as on ext4, whose cookies are name
 * hashes too; positions in the sorted listing moved under it: a scandir
 * loop that unlinked each entry left a fifth of them). A working tree's
 * cookie is a hash of the name alone, so neither a change nor a snapshot,
 * which moves names from the overlay into a new base tree, moves it; the
 * listing goes in cookie order. Two names of one directory with the same
 * hash (one in 2^62) take the next free cookie in name order. Read-only
 * views never change: their cookie is the index in the tree plus 1, and
 * they are listed a page at a time (readdir_base). */
#define COOKIE_MAX (1ull << 62) /* off_t room for the "." offsets */

static uint64_t name_cookie(const char *name, size_t nlen)
{
	return 1 + XXH3_64bits(name, nlen) % (COOKIE_MAX - 1);
}

static int listing_add(struct listing *l, size_t *cap, const char *name,
                       uint64_t ino, int64_t base_ix)
{
	if (mav_grow(&l->e, cap, l->n, sizeof(*l->e), 64) < 0)
		return MAV_ENOMEM;
	l->e[l->n].name = strdup(name);
	if (!l->e[l->n].name)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	l->e[l->n].ino = ino;
	l->e[l->n].cookie = name_cookie(name, strlen(name));
	l->e[l->n++].base_ix = base_ix;
	return 0;
}

void wt_overlay_free(struct overlay_ent *ov, size_t n)
{
	for (size_t i = 0; ov && i < n; i++)
		free(ov[i].name);
	free(ov);
}

int wt_overlay_read(struct overlay_ent **out, size_t *n, struct mav_wt *wt,
                    const struct node *dir)
{
	struct mav_kv_iter *it = NULL;
	struct overlay_ent *ov = NULL;
	uint8_t key[WT_KEY_MAX];
	size_t plen = wt_key(key, wt, 'd', dir->ino, NULL), cap = 0, m = 0;
	int rc = mav_kv_iter_new(&it, wt->r->kv, MAV_CF_WT);

	if (rc == 0)
		mav_kv_iter_seek(it, key, plen);
	for (; rc == 0 && mav_kv_iter_valid(it); mav_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		const uint8_t *v = mav_kv_iter_value(it, &vlen);

		if (klen <= plen || memcmp(k, key, plen) != 0)
			break;
		if (mav_grow(&ov, &cap, m, sizeof(*ov), 16) < 0) {
			rc = MAV_ENOMEM;
			break;
		}
		ov[m].ino = vlen == 9 && v[0] == 1 ? mav_load_u64(v + 1) : 0;
		ov[m].name = strndup((const char *)k + plen, klen - plen);
		if (!ov[m++].name)
			rc = mav_error_set(MAV_ENOMEM, "out of memory");
	}
	if (rc == 0)
		rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	if (rc < 0) {
		wt_overlay_free(ov, m);
		ov = NULL;
		m = 0;
	}
	*out = ov;
	*n = m;
	return rc;
}

/* Merge the base tree (sorted) with the overlay (sorted) of a persisted dir.*/
static int listing_build(struct mav_wt *wt, struct node *dir)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct overlay_ent *ov = NULL;
	size_t nov = 0, j = 0, cap = 0;
	uint32_t bi = 0, nb = 0;
	int rc = l ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");

	if (rc == 0 && !mav_id_is_zero(&dir->rec.id))
		rc = mav_repo_get_tree(wt->r, &dir->rec.id, &l->base);
	if (rc == 0)
		rc = wt_overlay_read(&ov, &nov, wt, dir);
	nb = rc == 0 && l->base ? l->base->n : 0;
	while (rc == 0 && (bi < nb || j < nov)) {
		const char *bn = bi < nb ? l->base->e[bi].name : NULL;
		int cmp = !bn ? 1 : j == nov ? -1 : strcmp(bn, ov[j].name);

		if (cmp < 0) {
			rc = listing_add(l, &cap, bn, 0, bi++);
			continue;
		}
		bi += cmp == 0; /* the overlay shadows the base entry */
		if (ov[j].ino)
			rc = listing_add(l, &cap, ov[j].name, ov[j].ino, -1);
		j++;
	}
	wt_overlay_free(ov, nov);
	if (rc == 0) {
		dir->listing = l;
	} else if (l) {
		dir->listing = l;
		wt_listing_drop(wt, dir);
	}
	return rc;
}

int wt_dir_count(struct mav_wt *wt, struct node *dir, size_t *n)
{
	int rc = 0;

	if (!dir->listing)
		rc = listing_build(wt, dir);
	*n = rc == 0 ? dir->listing->n : 0;
	return rc;
}

/* Node of the listing entry i of dir (no reference added). */
static int listing_node(struct node **out, struct mav_wt *wt, struct node *dir,
                        size_t i)
{
	const struct listing_ent *e = &dir->listing->e[i];

	if (e->ino)
		return wt_get(out, wt, e->ino);
	/* The listing knows no overlay entry shadows it: no store lookup. */
	return wt_base_node(out, wt, dir, &dir->listing->base->e[e->base_ix]);
}

static int readdir_base(struct mav_wt *wt, struct node *dir, uint64_t cookie,
                        bool plus, mav_wt_dirent_fn fn, void *ctx)
{
	const struct mav_tree *t = NULL;
	struct mav_attr a;
	uint64_t first = 0;
	bool full = false;
	int rc = 0;

	if (mav_id_is_zero(&dir->rec.id))
		return 0;
	/* One page of a big directory in memory at a time. */
	for (uint64_t i = cookie; rc == 0 && !full; i++) {
		const struct mav_entry *e;
		struct node *n = NULL;

		if (!t || i - first >= t->n) {
			mav_repo_tree_release(wt->r, t);
			rc = mav_repo_tree_page(wt->r, &dir->rec.id, i, &t,
			                        &first);
			if (rc < 0 || !t)
				break;
		}
		/* The entry is at hand: no second search of the tree. */
		e = &t->e[i - first];
		rc = wt_base_node(&n, wt, dir, e);
		if (rc < 0)
			break;
		wt_attr(&a, wt, n);
		full = fn(ctx, e->name, &a, i + 1);
		if (full || !plus)
			wt_node_unref(wt, n);
		else
			n->nlookup++;
	}
	mav_repo_tree_release(wt->r, t);
	return rc;
}

static int by_cookie(const void *a, const void *b, void *listing)
{
	const struct listing *l = listing;
	const struct listing_ent *x = &l->e[*(const size_t *)a];
	const struct listing_ent *y = &l->e[*(const size_t *)b];

	if (x->cookie != y->cookie)
		return x->cookie < y->cookie ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The listing's entries in cookie order (built on first use); a cookie
 * taken already moves up to the next free one. */
static int listing_order(struct listing *l)
{
	if (l->order)
		return 0;
	l->order = malloc((l->n ? l->n : 1) * sizeof(*l->order));
	if (!l->order)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++)
		l->order[i] = i;
	qsort_r(l->order, l->n, sizeof(*l->order), by_cookie, l);
	for (size_t p = 1; p < l->n; p++) {
		struct listing_ent *prev = &l->e[l->order[p - 1]];
		struct listing_ent *e = &l->e[l->order[p]];

		if (e->cookie <= prev->cookie)
			e->cookie = prev->cookie + 1;
	}
	return 0;
}

static int readdir_listing(struct mav_wt *wt, struct node *dir, uint64_t cookie,
                           bool plus, mav_wt_dirent_fn fn, void *ctx)
{
	struct mav_attr a;
	size_t lo = 0, hi;
	int rc = 0;

	if (!dir->listing && cookie && dir->listed_end &&
	    cookie >= dir->listed_end)
		return 0; /* the end, as the last pass found it */
	if (!dir->listing || cookie == 0) {
		wt_listing_drop(wt, dir);
		rc = listing_build(wt, dir);
	}
	if (rc == 0)
		rc = listing_order(dir->listing);
	/* The first entry whose cookie is past the one given. */
	for (hi = rc == 0 ? dir->listing->n : 0; lo < hi;) {
		size_t mid = (lo + hi) / 2;

		if (dir->listing->e[dir->listing->order[mid]].cookie <= cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t p = lo; rc == 0 && p < dir->listing->n; p++) {
		size_t i = dir->listing->order[p];
		struct node *n = NULL;

		rc = listing_node(&n, wt, dir, i);
		if (rc < 0)
			break;
		wt_attr(&a, wt, n);
		if (fn(ctx, dir->listing->e[i].name, &a,
		       dir->listing->e[i].cookie)) {
			wt_node_unref(wt, n);
			return 0;
		}
		if (plus)
			n->nlookup++;
		else
			wt_node_unref(wt, n);
	}
	/* Listed to the end: the names (and the base tree they pin) need not
	 * stay in memory; a listing resumed later builds them again, but the
	 * kernel's call for more after the last entry does not. */
	if (rc == 0) {
		const struct listing *l = dir->listing;
		uint64_t last = l->n ? l->e[l->order[l->n - 1]].cookie : 0;

		wt_listing_drop(wt, dir);
		dir->listed_end = last;
	}
	return rc;
}

int mav_wt_readdir(struct mav_wt *wt, uint64_t ino, uint64_t cookie, bool plus,
                   mav_wt_dirent_fn fn, void *ctx)
{
	struct node *dir;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&dir, wt, ino);
	if (rc == 0 && dir->rec.type != MAV_T_DIR)
		rc = -ENOTDIR;
	if (rc == 0) {
		dir->pins++;
		if (wt->branch)
			rc = readdir_listing(wt, dir, cookie, plus, fn, ctx);
		else
			rc = readdir_base(wt, dir, cookie, plus, fn, ctx);
		dir->pins--;
	}
	wt_unlock(wt);
	return rc;
}

int mav_wt_readlink(char **out, struct mav_wt *wt, uint64_t ino)
{
	struct node *n;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && n->rec.type != MAV_T_SYMLINK)
		rc = -EINVAL;
	if (rc == 0 && !(*out = strdup(n->rec.target ? n->rec.target : "")))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	wt_unlock(wt);
	return rc;
}

/* ---- xattr reads ---- */

static ssize_t copy_out(void *buf, size_t cap, const void *src, size_t len)
{
	if (cap == 0)
		return (ssize_t)len;
	if (cap < len)
		return -ERANGE;
	memcpy(buf, src, len);
	return (ssize_t)len;
}

ssize_t mav_wt_getxattr(struct mav_wt *wt, uint64_t ino, const char *name,
                        void *buf, size_t cap)
{
	char hex[MAV_ID_HEX_LEN + 1];
	struct node *n;
	ssize_t rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc < 0)
		goto out;
	rc = -ENODATA;
	for (uint32_t i = 0; i < n->rec.nx; i++) {
		if (strcmp(n->rec.x[i].name, name) == 0) {
			rc = copy_out(buf, cap, n->rec.x[i].value,
			              n->rec.x[i].len);
			goto out;
		}
	}
	if (!wt->branch && n->rec.type == MAV_T_FILE &&
	    strcmp(name, USER_MAV_ID) == 0) {
		mav_id_hex(hex, &n->rec.id);
		rc = copy_out(buf, cap, hex, MAV_ID_HEX_LEN);
	}
out:
	wt_unlock(wt);
	return rc;
}

ssize_t mav_wt_listxattr(struct mav_wt *wt, uint64_t ino, char *buf, size_t cap)
{
	struct node *n;
	size_t total = 0;
	bool computed;
	ssize_t rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc < 0)
		goto out;
	computed = !wt->branch && n->rec.type == MAV_T_FILE;
	for (uint32_t i = 0; i < n->rec.nx; i++)
		total += strlen(n->rec.x[i].name) + 1;
	total += computed ? sizeof(USER_MAV_ID) : 0;
	rc = (ssize_t)total;
	if (cap == 0)
		goto out;
	if (cap < total) {
		rc = -ERANGE;
		goto out;
	}
	for (uint32_t i = 0; i < n->rec.nx; i++) {
		size_t l = strlen(n->rec.x[i].name) + 1;

		memcpy(buf, n->rec.x[i].name, l);
		buf += l;
	}
	if (computed)
		memcpy(buf, USER_MAV_ID, sizeof(USER_MAV_ID));
out:
	wt_unlock(wt);
	return rc;
}

int mav_wt_content_id(mav_id *out, uint64_t *size, struct mav_wt *wt,
                      uint64_t ino)
{
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && n->rec.type != MAV_T_FILE)
		rc = -EINVAL;
	if (rc == 0 && wt_unsealed(n))
		rc = wt_seal(wt, n, NULL);
	/* Whoever is given the id may point at the content. */
	if (rc == 0)
		rc = wt_pay_flush(wt);
	if (rc == 0)
		*out = n->rec.id;
	if (rc == 0 && size)
		*size = n->rec.size;
	wt_unlock(wt);
	return rc;
}
