/* maint.c - fsck, gc and du: walks over everything the repository reaches.
 *
 * One walker visits each commit, tree, blob and chunk at most once (id sets),
 * starting from every branch, tag and version and from every working tree.
 * fsck re-reads every reachable object and chunk and re-verifies frame
 * checksums and BLAKE2b ids, reporting each problem by object id and going
 * on. gc marks with the same walk (without reading chunk bodies) and sweeps
 * the chunks and objects families in batches. du sums logical sizes per
 * version (memoised per tree id) and stored sizes per distinct chunk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"
#include "mav/error.h"
#include "mav/frame.h"
#include "mav/maint.h"
#include "repo_internal.h"
#include "wt_refs.h"

#define SWEEP_BATCH 4096

struct walk {
	struct mav_repo *r;
	struct mav_idset objs, chunks; /* chunks: val = plain length */
	bool verify;                   /* fsck: read and check every chunk */
	mav_problem_fn problem;
	mav_tick_fn tick;
	void *ctx; /* of problem and tick */
	struct mav_fsck_report *rep;
};

static void problem(struct walk *w, const char *what, const mav_id *id,
                    const char *msg)
{
	char hex[MAV_ID_HEX_LEN + 1], line[700];

	if (w->rep)
		w->rep->problems++;
	if (!w->problem)
		return;
	mav_id_hex(hex, id);
	snprintf(line, sizeof(line), "%s %s: %s", what, hex, msg);
	w->problem(w->ctx, line);
}

static int check_chunk(struct walk *w, const mav_id *id, uint32_t len)
{
	void *frame = NULL;
	uint8_t *plain = NULL;
	size_t flen, plen = 0;
	uint8_t key[MAV_CHUNK_KEY_LEN];
	mav_id check;
	int rc = mav_repo_chunk_key(w->r, id, key);

	if (rc == 0)
		rc = mav_kv_get(w->r->kv, MAV_CF_CHUNKS, key, sizeof(key),
		                &frame, &flen);

	if (rc == MAV_ENOTFOUND) {
		problem(w, "chunk", id, "missing");
		return 0;
	}
	if (rc == MAV_ECORRUPT || rc == -EIO) { /* the database's own check */
		problem(w, "chunk", id, mav_error_message());
		return 0;
	}
	if (rc < 0)
		return rc;
	plain = malloc(len ? len : 1);
	rc = plain ? mav_frame_decode(plain, len, &plen, frame, flen)
	           : mav_error_set(MAV_ENOMEM, "out of memory");
	if (rc == MAV_ENOMEM)
		goto out;
	if (rc < 0)
		problem(w, "chunk", id, mav_error_message());
	else if (plen != len)
		problem(w, "chunk", id, "length differs from its blob");
	else {
		mav_id_hash(&check, plain, plen);
		if (mav_id_cmp(&check, id) != 0)
			problem(w, "chunk", id, "content does not match id");
	}
	rc = 0;
out:
	free(frame);
	free(plain);
	return rc;
}

/* The pages of a paged blob are objects too, for gc to keep and du to
 * count (reading the blob checks them). */
static int walk_pages(struct walk *w, const mav_id *id)
{
	struct mav_blob_index *x = NULL;
	void *buf = NULL;
	size_t len;
	int rc = 0;

	if (mav_repo_get_object(w->r, id, &buf, &len) == 0 &&
	    mav_object_kind(buf, len) == 'P' &&
	    mav_blob_index_decode(&x, buf, len) == 0)
		for (uint32_t i = 0; rc >= 0 && i < x->npages; i++)
			rc = mav_idset_add(&w->objs, &x->p[i].id, 0);
	mav_blob_index_free(x);
	free(buf);
	return rc < 0 ? rc : 0;
}

static int walk_blob(struct walk *w, const mav_id *id)
{
	struct mav_blob *b = NULL;
	int rc = mav_idset_add(&w->objs, id, 0);

	if (rc <= 0)
		return rc;
	rc = walk_pages(w, id);
	if (rc == 0)
		rc = mav_repo_get_blob(w->r, id, &b);
	if (rc == MAV_ENOTFOUND || rc == MAV_ECORRUPT || rc == MAV_EVERSION) {
		problem(w, "blob", id, mav_error_message());
		return 0;
	}
	if (w->rep)
		w->rep->blobs++;
	for (uint32_t i = 0; rc == 0 && i < b->n; i++) {
		uint32_t len =
		    (uint32_t)(b->ends[i] - mav_blob_chunk_start(b, i));

		rc = mav_idset_add(&w->chunks, &b->ids[i], len);
		if (rc == 1 && w->rep)
			w->rep->chunks++;
		if (rc == 1 && w->tick)
			w->tick(w->ctx, len);
		if (rc == 1)
			rc = w->verify ? check_chunk(w, &b->ids[i], len) : 0;
	}
	mav_blob_free(b);
	return rc;
}

static int walk_tree(struct walk *w, const mav_id *id, int depth);

struct tree_walk {
	struct walk *w;
	int depth;
};

/* fsck: the stored bytes of object id are what id says. Trees are walked
 * through the tree cache, which holds what was read before (a daemon's is
 * warm), so their objects are read from the store here. */
static int check_object(struct walk *w, const mav_id *id)
{
	void *buf = NULL;
	size_t len;
	int rc = w->verify ? mav_repo_get_object(w->r, id, &buf, &len) : 0;

	free(buf);
	return rc;
}

/* A damaged page fails the walk of its tree, which names both. */
static int walk_page(void *ctx, const mav_id *page)
{
	struct tree_walk *tw = ctx;
	int rc = mav_idset_add(&tw->w->objs, page, 0);

	if (rc == 1 && tw->w->rep)
		tw->w->rep->trees++;
	if (rc == 1)
		rc = check_object(tw->w, page);
	return rc < 0 ? rc : 0;
}

static int walk_entry(void *ctx, const struct mav_entry *e)
{
	struct tree_walk *tw = ctx;

	if (e->type == MAV_T_FILE)
		return walk_blob(tw->w, &e->id);
	if (e->type == MAV_T_DIR)
		return walk_tree(tw->w, &e->id, tw->depth + 1);
	return 0;
}

/* A tree and what it reaches, a page at a time. A tree or page that is
 * missing or corrupt is a problem; what was walked before it stays
 * marked. */
static int walk_tree(struct walk *w, const mav_id *id, int depth)
{
	struct tree_walk tw = {w, depth};
	int rc = mav_idset_add(&w->objs, id, 0);

	if (rc <= 0)
		return rc;
	if (depth > 4096)
		return mav_error_set(MAV_ECORRUPT, "tree nesting too deep");
	rc = check_object(w, id);
	if (rc == 0)
		rc = mav_tree_each(w->r, id, walk_page, walk_entry, &tw);
	if (rc == MAV_ENOTFOUND || rc == MAV_ECORRUPT || rc == MAV_EVERSION) {
		problem(w, "tree", id, mav_error_message());
		return 0;
	}
	if (rc == 0 && w->rep)
		w->rep->trees++;
	return rc;
}

static int walk_commit(struct walk *w, const mav_id *start)
{
	struct mav_commit *c = NULL;
	mav_id id = *start;
	int rc = 0;

	/* Follow first parents iteratively; other parents recurse. */
	while (rc == 0 && mav_idset_add(&w->objs, &id, 0) == 1) {
		rc = mav_repo_get_commit(w->r, &id, &c);
		if (rc == MAV_ENOTFOUND || rc == MAV_ECORRUPT ||
		    rc == MAV_EVERSION) {
			problem(w, "commit", &id, mav_error_message());
			return 0;
		}
		if (rc < 0)
			return rc;
		if (w->rep)
			w->rep->commits++;
		rc = walk_tree(w, &c->root, 0);
		for (uint32_t i = 1; rc == 0 && i < c->nparents; i++)
			rc = walk_commit(w, &c->parents[i]);
		if (c->nparents == 0) {
			mav_commit_free(c);
			break;
		}
		id = c->parents[0];
		mav_commit_free(c);
	}
	return rc;
}

static int ref_visit(void *ctx, const char *name, const mav_id *id)
{
	(void)name;
	if (mav_id_is_zero(id))
		return 0;
	return walk_commit(ctx, id);
}

static int wt_visit(void *ctx, char kind, const mav_id *id)
{
	struct walk *w = ctx;

	if (w->rep && kind != 'C')
		w->rep->wt_inodes++;
	switch (kind) {
	case 'C':
		return walk_commit(w, id);
	case 'T':
		return walk_tree(w, id, 0);
	default:
		return walk_blob(w, id);
	}
}

static int walk_all(struct walk *w)
{
	mav_id e;
	int rc = 0;

	mav_repo_empty_blob(&e);
	mav_idset_add(&w->objs, &e, 0);
	mav_repo_empty_tree(&e);
	mav_idset_add(&w->objs, &e, 0);
	for (const char *k = "btv"; rc == 0 && *k; k++)
		rc = mav_ref_list(w->r, *k, ref_visit, w);
	if (rc == 0)
		rc = mav_wt_foreach_ref(w->r, wt_visit, w);
	return rc;
}

static void walk_free(struct walk *w)
{
	mav_idset_free(&w->objs);
	mav_idset_free(&w->chunks);
}

int mav_fsck(struct mav_fsck_report *out, struct mav_repo *r, mav_problem_fn fn,
             mav_tick_fn tick, void *ctx)
{
	struct walk w = {.r = r,
	                 .verify = true,
	                 .problem = fn,
	                 .tick = tick,
	                 .ctx = ctx,
	                 .rep = out};
	int rc;

	memset(out, 0, sizeof(*out));
	mav_idset_init(&w.objs);
	mav_idset_init(&w.chunks);
	rc = walk_all(&w);
	walk_free(&w);
	return rc;
}

/* Whether key k of cf stays: its id is in keep and, for a chunk, its
 * location is the one the id maps to (writers that stored a chunk at the
 * same time leave a second copy that nothing finds). When that cannot be
 * read, the chunk stays. */
static bool sweep_keeps(struct mav_repo *r, enum mav_cf cf,
                        const struct mav_idset *keep, const uint8_t *k,
                        size_t klen)
{
	size_t want = cf == MAV_CF_CHUNKS ? MAV_CHUNK_KEY_LEN : MAV_ID_LEN;
	uint8_t key[MAV_CHUNK_KEY_LEN];
	mav_id id;

	if (klen != want)
		return true; /* not a key of ours */
	memcpy(id.b, k + klen - MAV_ID_LEN, MAV_ID_LEN);
	if (!mav_idset_has(keep, &id, NULL))
		return false;
	return cf != MAV_CF_CHUNKS || mav_repo_chunk_key(r, &id, key) < 0 ||
	       memcmp(key, k, sizeof(key)) == 0;
}

/* Delete every key of cf that sweep_keeps() does not keep. */
static int sweep(struct walk *w, enum mav_cf cf, const struct mav_idset *keep,
                 uint64_t *deleted, uint64_t *bytes)
{
	struct mav_repo *r = w->r;
	struct mav_kv_batch *b = NULL;
	struct mav_kv_iter *it = NULL;
	int rc = mav_kv_batch_new(&b);

	if (rc == 0)
		rc = mav_kv_iter_new(&it, r->kv, cf);
	for (mav_kv_iter_seek(it, "", 0); rc == 0 && mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		size_t klen, vlen;
		const void *k = mav_kv_iter_key(it, &klen);

		mav_kv_iter_value(it, &vlen);
		if (w->tick)
			w->tick(w->ctx, (uint32_t)vlen);
		if (sweep_keeps(r, cf, keep, k, klen))
			continue;
		rc = mav_kv_batch_del(b, cf, k, klen);
		(*deleted)++;
		*bytes += vlen;
		if (rc == 0 && mav_kv_batch_count(b) >= SWEEP_BATCH) {
			rc = mav_repo_write(r, b, 0);
			mav_kv_batch_clear(b);
		}
	}
	if (rc == 0 && it)
		rc = mav_kv_iter_status(it);
	if (rc == 0 && mav_kv_batch_count(b))
		rc = mav_repo_write(r, b, 0);
	mav_kv_iter_free(it);
	mav_kv_batch_free(b);
	return rc;
}

int mav_gc(struct mav_gc_report *out, struct mav_repo *r, mav_tick_fn tick,
           void *ctx)
{
	struct walk w = {.r = r, .tick = tick, .ctx = ctx};
	uint64_t ids_deleted = 0, ids_bytes = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	mav_idset_init(&w.objs);
	mav_idset_init(&w.chunks);
	rc = walk_all(&w);
	if (rc == 0)
		rc = sweep(&w, MAV_CF_OBJECTS, &w.objs, &out->objects_deleted,
		           &out->bytes_freed);
	if (rc == 0) /* ids first: a chunk is found through its id */
		rc = sweep(&w, MAV_CF_CHUNK_IDS, &w.chunks, &ids_deleted,
		           &ids_bytes);
	if (rc == 0)
		rc = sweep(&w, MAV_CF_CHUNKS, &w.chunks, &out->chunks_deleted,
		           &out->bytes_freed);
	if (rc == 0)
		rc = mav_repo_flush(r);
	walk_free(&w);
	return rc;
}

int mav_gc_compact(struct mav_repo *r)
{
	return mav_kv_compact(r->kv);
}

/* ---- du ---- */

struct du {
	struct mav_repo *r;
	struct mav_idset files, bytes; /* per tree id: logical totals */
	struct mav_du_report *rep;
};

static int tree_logical(struct du *d, const mav_id *id, uint64_t *files,
                        uint64_t *bytes, int depth);

struct du_tree {
	struct du *d;
	uint64_t files, bytes;
	int depth;
};

static int du_entry(void *ctx, const struct mav_entry *e)
{
	struct du_tree *t = ctx;
	uint64_t f = 0, b = 0;
	int rc = 0;

	if (e->type == MAV_T_DIR)
		rc = tree_logical(t->d, &e->id, &f, &b, t->depth + 1);
	else if (e->type == MAV_T_FILE) {
		f = 1;
		b = e->size;
	}
	t->files += f;
	t->bytes += b;
	return rc;
}

static int tree_logical(struct du *d, const mav_id *id, uint64_t *files,
                        uint64_t *bytes, int depth)
{
	struct du_tree t = {d, 0, 0, depth};
	int rc;

	if (mav_idset_has(&d->files, id, files)) {
		mav_idset_has(&d->bytes, id, bytes);
		return 0;
	}
	if (depth > 4096)
		return mav_error_set(MAV_ECORRUPT, "tree nesting too deep");
	rc = mav_tree_each(d->r, id, NULL, du_entry, &t);
	*files = t.files;
	*bytes = t.bytes;
	if (rc == 0)
		rc = mav_idset_add(&d->files, id, *files);
	if (rc >= 0)
		rc = mav_idset_add(&d->bytes, id, *bytes);
	return rc < 0 ? rc : 0;
}

static int du_commit(struct du *d, const mav_id *commit)
{
	struct mav_commit *c = NULL;
	uint64_t files = 0, bytes = 0;
	int rc = mav_repo_get_commit(d->r, commit, &c);

	if (rc == 0)
		rc = tree_logical(d, &c->root, &files, &bytes, 0);
	mav_commit_free(c);
	d->rep->files += files;
	d->rep->logical_bytes += bytes;
	return rc;
}

static int du_version(void *ctx, const char *name, const mav_id *id)
{
	(void)name;
	return du_commit(ctx, id);
}

static int view_len(void *ctx, const void *val, size_t len)
{
	(void)val;
	*(size_t *)ctx = len;
	return 0;
}

/* Stored size of each chunk and object in the sets. */
static int du_stored(struct du *d, const struct mav_idset *chunks,
                     const struct mav_idset *objs)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct mav_idset *s = pass ? objs : chunks;

		for (uint64_t i = 0; i < s->cap; i++) {
			uint8_t key[MAV_CHUNK_KEY_LEN];
			size_t vlen = 0;
			int rc = 0;

			if (!s->used[i])
				continue;
			if (pass)
				memcpy(key, s->ids[i].b, MAV_ID_LEN);
			else
				rc = mav_repo_chunk_key(d->r, &s->ids[i], key);
			if (rc == 0)
				rc = mav_kv_get_view(
				    d->r->kv,
				    pass ? MAV_CF_OBJECTS : MAV_CF_CHUNKS, key,
				    pass ? MAV_ID_LEN : sizeof(key), view_len,
				    &vlen);
			if (rc < 0 && rc != MAV_ENOTFOUND)
				return rc;
			d->rep->stored_bytes += vlen;
			if (!pass) {
				d->rep->unique_bytes += s->vals[i];
				d->rep->chunks++;
			}
		}
	}
	return 0;
}

int mav_du(struct mav_du_report *out, struct mav_repo *r, const mav_id *commit)
{
	struct du d = {.r = r, .rep = out};
	struct walk w = {.r = r};
	int rc;

	memset(out, 0, sizeof(*out));
	mav_idset_init(&d.files);
	mav_idset_init(&d.bytes);
	mav_idset_init(&w.objs);
	mav_idset_init(&w.chunks);
	if (commit) {
		struct mav_commit *c = NULL;

		rc = du_commit(&d, commit);
		if (rc == 0)
			rc = mav_repo_get_commit(r, commit, &c);
		if (rc == 0)
			rc = walk_tree(&w, &c->root, 0);
		mav_commit_free(c);
	} else {
		rc = mav_ref_list(r, 'v', du_version, &d);
		if (rc == 0)
			rc = walk_all(&w);
	}
	if (rc == 0)
		rc = du_stored(&d, &w.chunks, &w.objs);
	walk_free(&w);
	mav_idset_free(&d.files);
	mav_idset_free(&d.bytes);
	return rc;
}
