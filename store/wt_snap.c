/* wt_snap.c - snapshot, reset and status of working trees.
 *
 * A snapshot seals every dirty file, then builds trees bottom-up for the
 * materialized directories only: an untouched directory keeps its base tree
 * id, so the work grows with the change, not with the repository. The
 * commit, the branch and vN refs, and the removal of every persisted change
 * (the new commit is the new base) go in one synced batch, so after a crash
 * the working tree is either entirely before or entirely after the
 * snapshot. The whole build runs under wt->lock, so every write is wholly in
 * or wholly out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mav/error.h"
#include "wt_internal.h"
#include "wt_refs.h"

#define PATH_BUF 8192
/* The rest of a split write() follows within microseconds, unless its
 * writer waits to be scheduled in between: on a busy machine that took
 * more than 5 ms (a snapshot then held half of a write), so a head counts
 * as one for 250 ms. Longer made a snapshot right after a copy wait for
 * the heads nobody completes (a file whose last write was a whole
 * max_write: 1 s after a cp -a against 0.6-0.8 s). A writer whose every
 * write looks like a head (dd bs=1M) delays a snapshot by SPLIT_WAIT_MAX
 * pauses. */
#define SPLIT_WAIT_NS  250000000 /* 250 ms */
#define SPLIT_WAIT_MAX 500       /* 1 ms pauses before snapshotting anyway */

static int build_tree(mav_id *out, struct mav_wt *wt, struct node *dir,
                      struct mav_kv_batch *b, int depth);

/* The tree entry for a materialized child. */
static int entry_of(struct mav_entry *e, struct mav_wt *wt, struct node *dir,
                    struct node *n, const char *name, struct mav_kv_batch *b,
                    int depth)
{
	int rc = 0;

	memset(e, 0, sizeof(*e));
	e->name = (char *)name;
	e->type = n->rec.type;
	e->mode = n->rec.mode;
	e->uid = n->rec.uid;
	e->gid = n->rec.gid;
	e->size = n->rec.type == MAV_T_DIR ? 0 : n->rec.size;
	e->mtime_ns = n->rec.mtime;
	e->nlink = n->rec.type == MAV_T_DIR ? 1 : n->rec.nlink;
	e->link_id = e->nlink > 1 ? n->rec.link_id : 0;
	e->target = n->rec.target;
	e->nxattrs = n->rec.nx;
	e->xattrs = n->rec.x;
	if (n->rec.type == MAV_T_FILE)
		e->id = n->rec.id;
	else if (n->rec.type == MAV_T_DIR && n->persisted)
		rc = build_tree(&e->id, wt, n, b, depth + 1);
	else if (n->rec.type == MAV_T_DIR)
		e->id = n->rec.id;
	/* It becomes a mirror of this entry: file it under this name. */
	if (rc == 0 &&
	    (!n->name || n->parent != dir->ino || strcmp(n->name, name) != 0))
		rc = wt_name_set(wt, n, dir->ino, name);
	return rc;
}

/* The directory's base tree with its overlay applied: only what changed
 * is read and rewritten (mav_repo_put_tree_changed), so the cost follows
 * the change even in a directory of 100k entries. */
static int build_tree(mav_id *out, struct mav_wt *wt, struct node *dir,
                      struct mav_kv_batch *b, int depth)
{
	struct overlay_ent *ov = NULL;
	struct mav_entry *ents = NULL;
	struct mav_tree_change *ch = NULL;
	size_t n = 0;
	int rc;

	if (depth > 2048)
		return mav_error_set(MAV_EINVAL, "directory tree too deep");
	dir->pins++;
	wt_listing_drop(wt, dir);
	rc = wt_overlay_read(&ov, &n, wt, dir);
	if (rc == 0 && n &&
	    (!(ents = calloc(n, sizeof(*ents))) ||
	     !(ch = calloc(n, sizeof(*ch)))))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct node *c;

		ch[i].name = ov[i].name;
		if (!ov[i].ino)
			continue; /* removed */
		rc = wt_get(&c, wt, ov[i].ino);
		if (rc == 0)
			rc = entry_of(&ents[i], wt, dir, c, ov[i].name, b,
			              depth);
		ch[i].e = &ents[i];
	}
	if (rc == 0)
		rc = mav_repo_put_tree_changed(wt->r, b, MAV_KV_SYNC, out,
		                               &dir->rec.id, ch, n);
	if (rc == 0)
		dir->rec.id = *out; /* same content as base + overlay */
	free(ents);
	free(ch);
	wt_overlay_free(ov, n);
	dir->pins--;
	return rc;
}

/* Inode numbers are big-endian in keys. */
static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Queue deletion of every persisted key of the branch but orphans. */
static int queue_clear(struct mav_wt *wt, struct mav_kv_batch *b,
                       bool keep_orphans)
{
	struct mav_kv_iter *it = NULL;
	int rc = mav_kv_iter_new(&it, wt->r->kv, MAV_CF_WT);

	if (rc < 0)
		return rc;
	for (mav_kv_iter_seek(it, wt->branch, wt->plen);
	     rc == 0 && mav_kv_iter_valid(it); mav_kv_iter_next(it)) {
		size_t klen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		struct node *n;

		if (klen <= wt->plen || memcmp(k, wt->branch, wt->plen) != 0)
			break;
		if (keep_orphans && klen == wt->plen + 9 && k[wt->plen] == 'o')
			continue;
		if (keep_orphans && klen == wt->plen + 9 &&
		    k[wt->plen] == 'i' &&
		    (n = wt_node(wt, be64(k + wt->plen + 1))) && n->orphan)
			continue;
		rc = mav_kv_batch_del(b, MAV_CF_WT, k, klen);
	}
	if (rc == 0)
		rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	return rc;
}

/* After a snapshot landed: every materialized node mirrors the new base. */
static void rebase_nodes(struct mav_wt *wt)
{
	uint64_t *inos = NULL;
	size_t n = 0;

	inos = malloc((wt->by_ino.count + 1) * sizeof(*inos));
	for (size_t i = 0; i < wt->by_ino.nb; i++) {
		for (struct node *x = wt->by_ino.b[i]; x; x = x->next_ino) {
			struct node *parent;

			wt_listing_drop(wt, x);
			if (inos)
				inos[n++] = x->ino;
			if (!x->persisted || x->orphan)
				continue;
			x->persisted = false;
			if (x->ino == MAV_WT_ROOT)
				continue;
			/* build_tree filed x under the name it has in the
			 * new tree (x->parent), which for a file that kept
			 * one of several names is not always rec.parent. */
			parent = wt_node(wt, x->parent);
			if (parent)
				parent->pins++;
			if (x->rec.nlink > 1 && x->rec.link_id) {
				if (!x->in_link_tab)
					wt_tab_add(&wt->by_link, x,
					           WT_TAB_LINK);
			} else if (x->name && !x->in_child_tab) {
				wt_tab_add(&wt->by_child, x, WT_TAB_CHILD);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct node *x = wt_node(wt, inos[i]);

		if (x)
			wt_node_unref(wt, x);
	}
	free(inos);
}

static int commit_write(mav_id *commit_out, uint64_t *version_out,
                        struct mav_wt *wt, const mav_id *root,
                        const struct mav_snapshot_opts *o,
                        struct mav_kv_batch *b)
{
	struct mav_commit c = {.root = *root};
	struct mav_ref_update u[2];
	char bref[256], vref[32];
	uint8_t *enc = NULL;
	mav_id head;
	size_t len;
	int rc;

	snprintf(bref, sizeof(bref), "b/%s", wt->branch);
	rc = mav_ref_get(&head, wt->r, bref);
	if (rc < 0)
		return rc;
	if (!mav_id_is_zero(&head))
		c.parents[c.nparents++] = head;
	c.branch = wt->branch;
	c.author = (char *)(o->author ? o->author : "");
	c.message = (char *)(o->message ? o->message : "");
	c.time_ns = wt_now();
	mav_ref_next_version(&c.version, wt->r);
	rc = mav_commit_encode(&enc, &len, &c);
	if (rc == 0)
		rc = mav_commit_id(commit_out, &c);
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_OBJECTS, commit_out->b,
		                      MAV_ID_LEN, enc, len);
	free(enc);
	if (rc < 0)
		return rc;
	wt->base = *commit_out;
	wt->base_time = c.time_ns;
	rc = wt_put_header(wt, b);
	snprintf(vref, sizeof(vref), "v/%llu", (unsigned long long)c.version);
	u[0] = (struct mav_ref_update){
	    .ref = vref, .old = NULL, .new_id = commit_out};
	u[1] = (struct mav_ref_update){
	    .ref = bref, .old = &head, .new_id = commit_out};
	if (rc == 0)
		rc = mav_ref_update(wt->r, b, u, 2);
	*version_out = c.version;
	return rc;
}

static int snapshot_locked(mav_id *commit_out, uint64_t *version_out,
                           struct mav_wt *wt, const struct mav_snapshot_opts *o)
{
	struct mav_kv_batch *b = NULL;
	struct node *root = wt_node(wt, MAV_WT_ROOT);
	mav_id tree, old_base = wt->base, old_root = wt->root_tree;
	int64_t old_time = wt->base_time;
	int count;
	int rc = wt_seal_all(wt, -1, &count);

	if (rc == 0)
		rc = mav_kv_batch_new(&b);
	if (rc < 0)
		goto out;
	tree = root->rec.id;
	if (root->persisted)
		rc = build_tree(&tree, wt, root, b, 0);
	if (rc == 0 && !o->allow_empty && !mav_id_is_zero(&wt->base) &&
	    mav_id_cmp(&tree, &wt->root_tree) == 0) {
		rc = mav_error_set(MAV_EEXIST, "nothing to snapshot: the "
		                               "working tree is unchanged");
		goto out;
	}
	if (rc == 0)
		rc = queue_clear(wt, b, true);
	if (rc == 0)
		rc = commit_write(commit_out, version_out, wt, &tree, o, b);
	if (rc < 0) {
		wt->base = old_base;
		wt->base_time = old_time;
		wt->root_tree = old_root;
		goto out;
	}
	wt_landed(wt);
	wt->root_tree = tree;
	root->rec.id = tree;
	rebase_nodes(wt);
	wt_note_hashed_recs(wt); /* on an error it stays set: slower only */
out:
	mav_kv_batch_free(b);
	return rc;
}

/* Has a file, written in the last SPLIT_WAIT_NS, been left with the head
 * of a write() whose rest the kernel has yet to send? (Its next write
 * clears the mark.) */
static bool split_in_flight(struct mav_wt *wt)
{
	int64_t since = wt_now() - SPLIT_WAIT_NS;

	if (wt->splits == 0) /* no writer left one: no need to look */
		return false;
	for (size_t i = 0; i < wt->by_ino.nb; i++)
		for (struct node *n = wt->by_ino.b[i]; n; n = n->next_ino)
			if (n->split_at > since)
				return true;
	return false;
}

int mav_wt_snapshot(mav_id *commit_out, uint64_t *version_out,
                    struct mav_wt *wt, const struct mav_snapshot_opts *o)
{
	struct timespec pause = {0, 1000000};
	int rc, waited = 0;

	if (!wt->branch)
		return -EROFS;
	pthread_mutex_lock(&wt->lock);
	/* Each write() wholly in or wholly out: wait for a moment when no
	 * split one is half done. */
	while (split_in_flight(wt) && waited++ < SPLIT_WAIT_MAX) {
		pthread_mutex_unlock(&wt->lock);
		nanosleep(&pause, NULL);
		pthread_mutex_lock(&wt->lock);
	}
	rc = snapshot_locked(commit_out, version_out, wt, o);
	wt_unlock(wt);
	return rc;
}

/* ---- reset ---- */

int mav_wt_reset(struct mav_wt *wt, const mav_id *commit)
{
	struct mav_kv_batch *b = NULL;
	mav_id old_base = wt->base, old_root = wt->root_tree;
	int64_t old_time = wt->base_time;
	struct node *root;
	int rc;

	if (!wt->branch)
		return -EROFS;
	pthread_mutex_lock(&wt->lock);
	rc = mav_kv_batch_new(&b);
	if (rc == 0)
		rc = queue_clear(wt, b, false);
	if (rc == 0)
		rc = wt_set_base(wt, commit);
	if (rc == 0)
		rc = wt_put_header(wt, b);
	if (rc == 0)
		rc = wt_write(wt, b, MAV_KV_SYNC | MAV_KV_FREES);
	if (rc < 0) {
		wt->base = old_base;
		wt->base_time = old_time;
		wt->root_tree = old_root;
		goto out;
	}
	/* Every inode the kernel holds is stale now but the root. */
	for (size_t i = 0; i < wt->by_ino.nb; i++)
		for (struct node *n = wt->by_ino.b[i]; n; n = n->next_ino) {
			wt_dirty_free(wt, n);
			wt_listing_drop(wt, n);
			if (n->ino != MAV_WT_ROOT)
				n->orphan = true;
			n->persisted = false;
			if (n->in_child_tab)
				wt_tab_del(&wt->by_child, n, WT_TAB_CHILD);
			if (n->in_link_tab)
				wt_tab_del(&wt->by_link, n, WT_TAB_LINK);
		}
	root = wt_node(wt, MAV_WT_ROOT);
	root->rec.id = wt->root_tree;
	root->rec.mtime = root->rec.ctime = wt_now();
	wt_note_hashed_recs(wt);
out:
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

/* ---- status ---- */

struct status_walk {
	struct mav_wt *wt;
	mav_wt_status_fn fn;
	void *ctx;
	char path[PATH_BUF];
};

static int listing_has(const struct listing *l, const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->e[mid].name, name);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int status_dir(struct status_walk *s, struct node *dir, size_t plen,
                      bool added);

static int status_entry(struct status_walk *s, struct node *dir,
                        const struct listing_ent *le, size_t plen, bool added)
{
	size_t nl = strlen(le->name);
	bool in_base = !added && dir->listing->base &&
	               mav_tree_find(dir->listing->base, le->name) >= 0;
	struct node *c;
	int rc;

	if (plen + nl + 2 >= PATH_BUF)
		return mav_error_set(MAV_EINVAL, "path too long");
	memcpy(s->path + plen, le->name, nl + 1);
	rc = wt_get(&c, s->wt, le->ino);
	if (rc < 0)
		return rc;
	if (c->rec.type != MAV_T_DIR)
		return s->fn(s->ctx, in_base ? 'M' : 'A', s->path);
	if (!in_base) {
		rc = s->fn(s->ctx, 'A', s->path);
		if (rc)
			return rc;
	}
	if (!c->persisted)
		return 0;
	s->path[plen + nl] = '/';
	return status_dir(s, c, plen + nl + 1, !in_base);
}

static int status_dir(struct status_walk *s, struct node *dir, size_t plen,
                      bool added)
{
	const struct mav_tree *base;
	size_t n;
	int rc;

	dir->pins++;
	wt_listing_drop(s->wt, dir);
	rc = wt_dir_count(s->wt, dir, &n);
	base = rc == 0 ? dir->listing->base : NULL;
	/* Deletions: base names the listing no longer has. */
	for (uint32_t i = 0; rc == 0 && base && i < base->n; i++) {
		if (listing_has(dir->listing, base->e[i].name))
			continue;
		if (plen + strlen(base->e[i].name) + 1 >= PATH_BUF) {
			rc = mav_error_set(MAV_EINVAL, "path too long");
			break;
		}
		strcpy(s->path + plen, base->e[i].name);
		rc = s->fn(s->ctx, 'D', s->path);
	}
	for (size_t i = 0; rc == 0 && dir->listing && i < dir->listing->n;
	     i++) {
		struct listing_ent le = dir->listing->e[i];

		if (le.ino)
			rc = status_entry(s, dir, &le, plen, added);
	}
	dir->pins--;
	return rc;
}

int mav_wt_status(struct mav_wt *wt, mav_wt_status_fn fn, void *ctx)
{
	struct status_walk *s = calloc(1, sizeof(*s));
	struct node *root;
	int rc = 0;

	if (!s)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	s->wt = wt;
	s->fn = fn;
	s->ctx = ctx;
	pthread_mutex_lock(&wt->lock);
	root = wt_node(wt, MAV_WT_ROOT);
	if (wt->branch && root->persisted)
		rc = status_dir(s, root, 0, false);
	wt_unlock(wt);
	free(s);
	return rc;
}

/* ---- whole-branch housekeeping ---- */

int mav_wt_destroy(struct mav_repo *r, const char *branch)
{
	struct mav_wt wt = {
	    .r = r, .branch = (char *)branch, .plen = strlen(branch) + 1};
	struct mav_kv_batch *b = NULL;
	int rc = mav_kv_batch_new(&b);

	if (rc == 0)
		rc = queue_clear(&wt, b, false);
	if (rc == 0 && mav_kv_batch_count(b))
		rc = mav_repo_write(r, b, MAV_KV_SYNC);
	mav_kv_batch_free(b);
	return rc;
}

int mav_wt_foreach_ref(struct mav_repo *r, mav_wt_ref_fn fn, void *ctx)
{
	struct mav_kv_iter *it = NULL;
	int rc = mav_kv_iter_new(&it, r->kv, MAV_CF_WT);

	if (rc < 0)
		return rc;
	for (mav_kv_iter_seek(it, "", 0); rc == 0 && mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		size_t klen, vlen, p;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		const uint8_t *v = mav_kv_iter_value(it, &vlen);
		const uint8_t *nul = memchr(k, 0, klen);
		struct wt_rec rec;
		mav_id id;

		if (!nul || (p = (size_t)(nul - k) + 1) >= klen)
			continue;
		if (k[p] == 'h' && vlen == 4 + MAV_ID_LEN + 8) {
			memcpy(id.b, v + 4, MAV_ID_LEN);
			if (!mav_id_is_zero(&id))
				rc = fn(ctx, 'C', &id);
		} else if (k[p] == 'i' && wt_rec_decode(&rec, v, vlen) == 0) {
			if (!mav_id_is_zero(&rec.id) &&
			    rec.type != MAV_T_SYMLINK)
				rc = fn(ctx, rec.type == MAV_T_DIR ? 'T' : 'B',
				        &rec.id);
			wt_rec_clear(&rec);
		}
	}
	if (rc == 0)
		rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	return rc;
}
