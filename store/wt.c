/* wt.c - working trees and snapshot views: the inode table and lookups.
 *
 * A view starts with one node, the root (MAV_WT_ROOT), mirroring the root
 * tree of its base commit. Lookups create nodes on demand: a child of a
 * directory that was never changed mirrors its base tree entry (a "base
 * node", cheap, not persisted); a child recorded in a changed directory's
 * overlay is a persisted inode whose record is loaded from MAV_CF_WT.
 * Changing a base node first materializes it and its ancestors: an inode
 * record plus an overlay entry in the parent, so the change survives a
 * restart while untouched siblings keep being served from the base tree.
 *
 * Three hash tables find nodes: by inode number; base nodes by (parent,
 * name) so a second lookup returns the same inode; hard-linked base entries
 * by link id, so every name of one file is one inode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "grow.h"
#include "codec.h"
#include "mav/error.h"
#include "wt_internal.h"

#define REC_MAGIC "MAVI"

int64_t wt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- hash tables ---- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static uint64_t child_hash(uint64_t parent, const char *name)
{
	uint64_t h = mix(parent);

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
	return mix(h);
}

static uint64_t tab_hash(const struct node *n, int which)
{
	switch (which) {
	case WT_TAB_INO:
		return mix(n->ino);
	case WT_TAB_CHILD:
		return child_hash(n->parent, n->name);
	default:
		return mix(n->rec.link_id);
	}
}

static struct node **tab_next(struct node *n, int which)
{
	return which == WT_TAB_INO     ? &n->next_ino
	       : which == WT_TAB_CHILD ? &n->next_child
	                               : &n->next_link;
}

static void tab_grow(struct wt_table *t, int which)
{
	size_t nb = t->nb ? t->nb * 2 : 256;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nb; i++) {
		struct node *n = t->b[i], *next;

		for (; n; n = next) {
			next = *tab_next(n, which);
			*tab_next(n, which) = b[tab_hash(n, which) & (nb - 1)];
			b[tab_hash(n, which) & (nb - 1)] = n;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

void wt_tab_add(struct wt_table *t, struct node *n, int which)
{
	size_t i;

	if (t->count + 1 > t->nb)
		tab_grow(t, which);
	if (!t->nb)
		return;
	i = tab_hash(n, which) & (t->nb - 1);
	*tab_next(n, which) = t->b[i];
	t->b[i] = n;
	t->count++;
	if (which == WT_TAB_CHILD)
		n->in_child_tab = true;
	if (which == WT_TAB_LINK)
		n->in_link_tab = true;
}

void wt_tab_del(struct wt_table *t, struct node *n, int which)
{
	struct node **p;

	if (!t->nb)
		return;
	p = &t->b[tab_hash(n, which) & (t->nb - 1)];
	while (*p && *p != n)
		p = tab_next(*p, which);
	if (*p) {
		*p = *tab_next(n, which);
		t->count--;
	}
	if (which == WT_TAB_CHILD)
		n->in_child_tab = false;
	if (which == WT_TAB_LINK)
		n->in_link_tab = false;
}

void wt_name_drop(struct mav_wt *wt, struct node *n, uint64_t dir,
                  const char *name)
{
	if (n->in_child_tab && n->parent == dir && strcmp(n->name, name) == 0)
		wt_tab_del(&wt->by_child, n, WT_TAB_CHILD);
}

int wt_name_set(struct mav_wt *wt, struct node *n, uint64_t dir,
                const char *name)
{
	char *nm = strdup(name);

	if (!nm)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	if (n->in_child_tab)
		wt_tab_del(&wt->by_child, n, WT_TAB_CHILD);
	free(n->name);
	n->name = nm;
	n->parent = dir;
	if (!n->in_link_tab)
		wt_tab_add(&wt->by_child, n, WT_TAB_CHILD);
	return 0;
}

struct node *wt_node(struct mav_wt *wt, uint64_t ino)
{
	struct node *n;

	if (!wt->by_ino.nb)
		return NULL;
	n = wt->by_ino.b[mix(ino) & (wt->by_ino.nb - 1)];
	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

static struct node *child_find(struct mav_wt *wt, uint64_t parent,
                               const char *name)
{
	struct node *n;

	if (!wt->by_child.nb)
		return NULL;
	n = wt->by_child.b[child_hash(parent, name) & (wt->by_child.nb - 1)];
	while (n && (n->parent != parent || strcmp(n->name, name) != 0))
		n = n->next_child;
	return n;
}

static struct node *link_find(struct mav_wt *wt, uint64_t link_id)
{
	struct node *n;

	if (!wt->by_link.nb)
		return NULL;
	n = wt->by_link.b[mix(link_id) & (wt->by_link.nb - 1)];
	while (n && n->rec.link_id != link_id)
		n = n->next_link;
	return n;
}

/* ---- records ---- */

void wt_rec_clear(struct wt_rec *rec)
{
	for (uint32_t i = 0; i < rec->nx; i++) {
		free(rec->x[i].name);
		free(rec->x[i].value);
	}
	free(rec->x);
	free(rec->target);
	memset(rec, 0, sizeof(*rec));
}

int wt_rec_copy_xattrs(struct wt_rec *rec, const struct mav_xattr *x,
                       uint32_t nx)
{
	rec->x = nx ? calloc(nx, sizeof(*rec->x)) : NULL;
	if (nx && !rec->x)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	rec->nx = nx;
	for (uint32_t i = 0; i < nx; i++) {
		rec->x[i].name = strdup(x[i].name);
		rec->x[i].value = malloc(x[i].len ? x[i].len : 1);
		if (!rec->x[i].name || !rec->x[i].value)
			return mav_error_set(MAV_ENOMEM, "out of memory");
		memcpy(rec->x[i].value, x[i].value, x[i].len);
		rec->x[i].len = x[i].len;
	}
	return 0;
}

/* Trees keep mtime only. atime is mtime (views are read as noatime);
 * ctime is the later of mtime and the base commit's time, so it never goes
 * back past a change the commit holds (it was mtime: after a snapshot, a
 * file whose ctime was later than its mtime showed ctime going back). */
int wt_rec_from_entry(struct wt_rec *rec, const struct mav_wt *wt,
                      const struct mav_entry *e, uint64_t parent)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = e->type;
	rec->mode = e->mode;
	rec->uid = e->uid;
	rec->gid = e->gid;
	rec->nlink = e->type == MAV_T_DIR ? 2 : (e->nlink ? e->nlink : 1);
	rec->size = e->size;
	rec->atime = rec->mtime = e->mtime_ns;
	rec->ctime = e->mtime_ns > wt->base_time ? e->mtime_ns : wt->base_time;
	rec->parent = parent;
	rec->link_id = e->link_id;
	rec->id = e->id;
	if (e->target && !(rec->target = strdup(e->target)))
		return mav_error_set(MAV_ENOMEM, "out of memory");
	return wt_rec_copy_xattrs(rec, e->xattrs, e->nxattrs);
}

int wt_rec_encode(uint8_t **out, size_t *len, const struct wt_rec *rec)
{
	struct mav_wbuf w;
	uint32_t tlen = rec->target ? (uint32_t)strlen(rec->target) : 0;

	mav_wbuf_init(&w, 160);
	mav_wbuf_put_magic(&w, REC_MAGIC, 1);
	mav_wbuf_put_u8(&w, rec->type);
	mav_wbuf_put_u32(&w, rec->mode);
	mav_wbuf_put_u32(&w, rec->uid);
	mav_wbuf_put_u32(&w, rec->gid);
	mav_wbuf_put_u32(&w, rec->nlink);
	mav_wbuf_put_u64(&w, rec->size);
	mav_wbuf_put_u64(&w, (uint64_t)rec->atime);
	mav_wbuf_put_u64(&w, (uint64_t)rec->mtime);
	mav_wbuf_put_u64(&w, (uint64_t)rec->ctime);
	mav_wbuf_put_u64(&w, rec->parent);
	mav_wbuf_put_u64(&w, rec->link_id);
	mav_wbuf_put_bytes(&w, rec->id.b, MAV_ID_LEN);
	mav_wbuf_put_u32(&w, tlen);
	mav_wbuf_put_bytes(&w, rec->target, tlen);
	mav_wbuf_put_u32(&w, rec->nx);
	for (uint32_t i = 0; i < rec->nx; i++) {
		uint32_t nlen = (uint32_t)strlen(rec->x[i].name);

		mav_wbuf_put_u32(&w, nlen);
		mav_wbuf_put_bytes(&w, rec->x[i].name, nlen);
		mav_wbuf_put_u32(&w, rec->x[i].len);
		mav_wbuf_put_bytes(&w, rec->x[i].value, rec->x[i].len);
	}
	return mav_wbuf_finish(&w, out, len);
}

/* Read a u32-length-prefixed string into a new NUL-terminated copy. */
static int get_str(struct mav_rbuf *rd, char **out, uint32_t *len_out)
{
	const uint8_t *p;
	uint32_t len = 0;

	*out = NULL;
	if (mav_rbuf_get_u32(rd, &len) < 0 || mav_rbuf_view(rd, &p, len) < 0)
		return rd->err;
	*out = malloc((size_t)len + 1);
	if (!*out)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	memcpy(*out, p, len);
	(*out)[len] = '\0';
	if (len_out)
		*len_out = len;
	return 0;
}

int wt_rec_decode(struct wt_rec *rec, const void *buf, size_t len)
{
	struct mav_rbuf rd;
	uint8_t version;
	uint32_t tlen = 0, nx = 0;
	int rc;

	memset(rec, 0, sizeof(*rec));
	mav_rbuf_init(&rd, buf, len, "inode record");
	rc = mav_rbuf_get_magic(&rd, REC_MAGIC, 1, &version);
	if (rc < 0)
		return rc;
	mav_rbuf_get_u8(&rd, &rec->type);
	mav_rbuf_get_u32(&rd, &rec->mode);
	mav_rbuf_get_u32(&rd, &rec->uid);
	mav_rbuf_get_u32(&rd, &rec->gid);
	mav_rbuf_get_u32(&rd, &rec->nlink);
	mav_rbuf_get_u64(&rd, &rec->size);
	mav_rbuf_get_u64(&rd, (uint64_t *)&rec->atime);
	mav_rbuf_get_u64(&rd, (uint64_t *)&rec->mtime);
	mav_rbuf_get_u64(&rd, (uint64_t *)&rec->ctime);
	mav_rbuf_get_u64(&rd, &rec->parent);
	mav_rbuf_get_u64(&rd, &rec->link_id);
	mav_rbuf_get_bytes(&rd, rec->id.b, MAV_ID_LEN);
	rc = get_str(&rd, &rec->target, &tlen);
	if (rc == 0 && strlen(rec->target) != tlen)
		rc = mav_rbuf_fail(&rd, "NUL in symlink target");
	if (rc == 0 && tlen == 0 && rec->type != MAV_T_SYMLINK) {
		free(rec->target);
		rec->target = NULL;
	}
	if (rc == 0)
		rc = mav_rbuf_get_u32(&rd, &nx);
	if (rc == 0 && nx > mav_rbuf_left(&rd) / 8)
		rc = mav_rbuf_fail(&rd, "xattr count exceeds record");
	if (rc == 0 && nx) {
		rec->x = calloc(nx, sizeof(*rec->x));
		if (!rec->x)
			rc = mav_error_set(MAV_ENOMEM, "out of memory");
	}
	/* rec->nx counts the xattrs read so far, so clear() frees them. */
	for (; rc == 0 && rec->nx < nx; rec->nx++) {
		struct mav_xattr *x = &rec->x[rec->nx];

		uint32_t nlen = 0;

		rc = get_str(&rd, &x->name, &nlen);
		if (rc == 0 && (nlen == 0 || strlen(x->name) != nlen))
			rc = mav_rbuf_fail(&rd, "bad xattr name");
		if (rc == 0 && rec->nx &&
		    strcmp(rec->x[rec->nx - 1].name, x->name) >= 0)
			rc = mav_rbuf_fail(&rd, "xattrs not sorted");
		if (rc == 0)
			rc = get_str(&rd, (char **)&x->value, &x->len);
	}
	if (rc == 0)
		rc = mav_rbuf_end(&rd);
	if (rc == 0 && (rec->type < MAV_T_FILE || rec->type > MAV_T_SOCK))
		rc = mav_error_set(MAV_ECORRUPT, "inode record: bad type");
	if (rc < 0)
		wt_rec_clear(rec);
	return rc;
}

/* ---- keys ---- */

size_t wt_key(uint8_t *key, const struct mav_wt *wt, char kind, uint64_t num,
              const char *name)
{
	size_t n = wt->plen, nl = name ? strlen(name) : 0;

	memcpy(key, wt->branch, wt->plen); /* includes the NUL */
	key[n++] = (uint8_t)kind;
	if (kind != 'h') {
		for (int i = 0; i < 8; i++)
			key[n++] = (uint8_t)(num >> (56 - 8 * i));
	}
	if (nl)
		memcpy(key + n, name, nl);
	return n + nl;
}

int wt_pay_flush(struct mav_wt *wt)
{
	int rc = wt->flush_owed ? mav_repo_flush(wt->r) : 0;

	wt->flush_owed = rc < 0;
	return rc;
}

int wt_put_rec(struct mav_wt *wt, struct mav_kv_batch *b, struct node *n)
{
	uint8_t key[WT_KEY_MAX], *enc = NULL;
	size_t klen = wt_key(key, wt, 'i', n->ino, NULL), len;
	int rc = wt_rec_encode(&enc, &len, &n->rec);

	if (n->ino >= WT_BASE_INO_MIN)
		wt->hashed_recs = true;
	/* No record may point at content that is not yet durable. */
	if (rc == 0)
		rc = wt_pay_flush(wt);
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_WT, key, klen, enc, len);
	free(enc);
	return rc;
}

int wt_put_dirent(struct mav_wt *wt, struct mav_kv_batch *b, uint64_t dir,
                  const char *name, uint64_t ino, bool whiteout)
{
	uint8_t key[WT_KEY_MAX], val[9] = {whiteout ? 0 : 1};
	size_t klen = wt_key(key, wt, 'd', dir, name);

	mav_store_u64(val + 1, ino);
	return mav_kv_batch_put(b, MAV_CF_WT, key, klen, val, whiteout ? 1 : 9);
}

int wt_del_dirent(struct mav_wt *wt, struct mav_kv_batch *b, uint64_t dir,
                  const char *name)
{
	uint8_t key[WT_KEY_MAX];
	size_t klen = wt_key(key, wt, 'd', dir, name);

	return mav_kv_batch_del(b, MAV_CF_WT, key, klen);
}

int wt_put_header(struct mav_wt *wt, struct mav_kv_batch *b)
{
	uint8_t key[WT_KEY_MAX], val[4 + MAV_ID_LEN + 8];
	size_t klen = wt_key(key, wt, 'h', 0, NULL);

	memcpy(val, "MAVH", 4);
	memcpy(val + 4, wt->base.b, MAV_ID_LEN);
	mav_store_u64(val + 4 + MAV_ID_LEN, wt->next_ino);
	return mav_kv_batch_put(b, MAV_CF_WT, key, klen, val, sizeof(val));
}

int wt_dirent_get(uint64_t *ino, bool *whiteout, struct mav_wt *wt,
                  uint64_t dir, const char *name)
{
	uint8_t key[WT_KEY_MAX];
	size_t klen = wt_key(key, wt, 'd', dir, name), vlen;
	uint8_t *v = NULL;
	int rc =
	    mav_kv_get(wt->r->kv, MAV_CF_WT, key, klen, (void **)&v, &vlen);

	if (rc == 0) {
		if (vlen == 1 && v[0] == 0) {
			*whiteout = true;
			*ino = 0;
		} else if (vlen == 9 && v[0] == 1) {
			*whiteout = false;
			*ino = mav_load_u64(v + 1);
		} else {
			rc = mav_error_set(MAV_ECORRUPT,
			                   "working tree entry is corrupt");
		}
	}
	free(v);
	return rc;
}

int wt_note_hashed_recs(struct mav_wt *wt)
{
	uint8_t key[WT_KEY_MAX];
	size_t klen = wt_key(key, wt, 'i', WT_BASE_INO_MIN, NULL), n;
	struct mav_kv_iter *it = NULL;
	const uint8_t *k;
	int rc = mav_kv_iter_new(&it, wt->r->kv, MAV_CF_WT);

	if (rc < 0)
		return rc;
	/* Any 'i' record of this branch at or past the first such number. */
	mav_kv_iter_seek(it, key, klen);
	k = mav_kv_iter_valid(it) ? mav_kv_iter_key(it, &n) : NULL;
	wt->hashed_recs =
	    k && n > wt->plen && memcmp(k, key, wt->plen + 1) == 0;
	rc = mav_kv_iter_status(it);
	if (rc < 0)
		wt->hashed_recs = true; /* not known: ask the store */
	mav_kv_iter_free(it);
	return rc;
}

int wt_load_rec(struct wt_rec *rec, struct mav_wt *wt, uint64_t ino)
{
	uint8_t key[WT_KEY_MAX];
	size_t klen = wt_key(key, wt, 'i', ino, NULL), vlen;
	void *v = NULL;
	int rc = mav_kv_get(wt->r->kv, MAV_CF_WT, key, klen, &v, &vlen);

	if (rc == 0)
		rc = wt_rec_decode(rec, v, vlen);
	free(v);
	return rc;
}

int wt_write(struct mav_wt *wt, struct mav_kv_batch *b, unsigned flags)
{
	int rc = mav_repo_write(wt->r, b, flags);

	if (rc == 0)
		wt_landed(wt);
	return rc;
}

void wt_landed(struct mav_wt *wt)
{
	while (wt->npend > 0)
		wt->pend[--wt->npend].n->pending = false;
}

/* An operation that materialized nodes and then failed (or never wrote
 * its batch) leaves them as they were: mirrors of their base entries. */
void wt_unlock(struct mav_wt *wt)
{
	while (wt->npend > 0) {
		struct pending *p = &wt->pend[--wt->npend];
		struct node *parent = wt_node(wt, p->n->parent);

		p->n->persisted = false;
		p->n->pending = false;
		if (p->unpinned && parent)
			parent->pins++;
	}
	pthread_mutex_unlock(&wt->lock);
}

/* Mark n persisted, remembering how to undo it. */
static int mark_persisted(struct mav_wt *wt, struct node *n,
                          struct node *parent)
{
	if (mav_grow(&wt->pend, &wt->cappend, wt->npend, sizeof(*wt->pend),
	             16) < 0)
		return MAV_ENOMEM;
	wt->pend[wt->npend++] =
	    (struct pending){.n = n, .unpinned = parent != NULL};
	n->persisted = true;
	n->pending = true;
	if (parent)
		parent->pins--;
	return 0;
}

/* ---- nodes ---- */

struct node *wt_node_new(struct mav_wt *wt, uint64_t ino)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->ino = ino;
	wt_tab_add(&wt->by_ino, n, WT_TAB_INO);
	return n;
}

static void node_free(struct mav_wt *wt, struct node *n)
{
	wt->splits -= n->split_at != 0;
	wt_tab_del(&wt->by_ino, n, WT_TAB_INO);
	if (n->in_child_tab)
		wt_tab_del(&wt->by_child, n, WT_TAB_CHILD);
	if (n->in_link_tab)
		wt_tab_del(&wt->by_link, n, WT_TAB_LINK);
	wt_listing_drop(wt, n);
	wt_dirty_free(wt, n);
	wt_rec_clear(&n->rec);
	free(n->ahead);
	free(n->name);
	free(n);
}

/* Free n if nothing references it; base nodes release their parent pin. */
void wt_node_unref(struct mav_wt *wt, struct node *n)
{
	while (n && n->nlookup == 0 && n->pins == 0 && n->ino != MAV_WT_ROOT &&
	       !wt_unsealed(n) && !n->pending) {
		struct node *parent = NULL;

		if (!n->persisted)
			parent = wt_node(wt, n->parent);
		if (n->orphan && n->persisted && wt->branch) {
			/* Last reference to an unlinked inode: drop it. */
			struct mav_kv_batch *b = NULL;
			uint8_t key[WT_KEY_MAX];

			if (mav_kv_batch_new(&b) == 0) {
				mav_kv_batch_del(
				    b, MAV_CF_WT, key,
				    wt_key(key, wt, 'i', n->ino, NULL));
				mav_kv_batch_del(
				    b, MAV_CF_WT, key,
				    wt_key(key, wt, 'o', n->ino, NULL));
				wt_write(wt, b, 0); /* redone at next open */
			}
			mav_kv_batch_free(b);
		}
		node_free(wt, n);
		if (parent)
			parent->pins--;
		n = parent;
	}
}

/* A node is numbered by where it is, not by when it was first looked up,
 * so a file the kernel forgot (or a view closed and opened again, or a
 * working tree rebased on the snapshot that took its files) comes back with
 * the number it had: inode numbers hold for the life of a mount. The
 * number is a hash of the parent's number and the name (of the link group,
 * for hard links of a base tree) in [2^39, 2^40). One already taken, by a
 * node in memory or by a persisted record of a working tree (the store is
 * asked only while a record may hold such a number), moves on to the next
 * free one; two such may swap numbers if both are forgotten and come back
 * in the other order. A file created in a working tree is numbered the same
 * way, so it keeps its number after the snapshot that takes it; one renamed
 * keeps its number until the kernel forgets it after the next snapshot,
 * and then comes back under its new name's, as a file hard-linked in the
 * working tree comes back under its link group's. Creating 100k files
 * costs about 10% more than numbering them from a counter did (the store
 * is asked about each number), and snapshotting them 30% more. (Working
 * trees of earlier builds counted created files up from 2, below that
 * range.) */
static int free_ino(uint64_t *out, struct mav_wt *wt, uint64_t h)
{
	for (;; h++) {
		uint64_t ino = WT_BASE_INO_MIN | (h & (WT_BASE_INO_MIN - 1));
		uint8_t key[WT_KEY_MAX];
		int rc;

		if (wt_node(wt, ino))
			continue;
		rc = wt->hashed_recs
		         ? mav_kv_get(wt->r->kv, MAV_CF_WT, key,
		                      wt_key(key, wt, 'i', ino, NULL), NULL,
		                      NULL)
		         : MAV_ENOTFOUND;
		if (rc == MAV_ENOTFOUND) {
			*out = ino;
			return 0;
		}
		if (rc < 0) /* the store cannot say: not a number to hand out */
			return rc;
	}
}

int wt_name_ino(uint64_t *out, struct mav_wt *wt, uint64_t parent,
                const char *name)
{
	return free_ino(out, wt,
	                XXH3_64bits_withSeed(name, strlen(name), parent));
}

static int base_ino(uint64_t *out, struct mav_wt *wt, uint64_t parent,
                    const struct mav_entry *e)
{
	return e->link_id ? free_ino(out, wt,
	                             XXH3_64bits_withSeed(
	                                 &e->link_id, sizeof(e->link_id), 1))
	                  : wt_name_ino(out, wt, parent, e->name);
}

/* A node for a base tree entry of directory dir. */
int wt_base_node(struct node **out, struct mav_wt *wt, struct node *dir,
                 const struct mav_entry *e)
{
	struct node *n = NULL;
	uint64_t ino = 0;
	int rc;

	if (e->link_id) {
		n = link_find(wt, e->link_id);
		if (!n && wt->branch) {
			uint8_t key[WT_KEY_MAX];
			size_t klen = wt_key(key, wt, 'l', e->link_id, NULL),
			       vlen;
			void *v = NULL;

			if (mav_kv_get(wt->r->kv, MAV_CF_WT, key, klen, &v,
			               &vlen) == 0 &&
			    vlen == 8)
				ino = mav_load_u64(v);
			free(v);
			if (ino)
				return wt_get(out, wt, ino);
		}
	} else {
		n = child_find(wt, dir->ino, e->name);
	}
	if (n) {
		*out = n;
		return 0;
	}
	rc = base_ino(&ino, wt, dir->ino, e);
	if (rc < 0)
		return rc;
	n = wt_node_new(wt, ino);
	if (!n)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	n->parent = dir->ino;
	n->name = strdup(e->name);
	rc = n->name ? wt_rec_from_entry(&n->rec, wt, e, dir->ino)
	             : mav_error_set(MAV_ENOMEM, "out of memory");
	if (rc < 0) {
		node_free(wt, n);
		return rc;
	}
	dir->pins++;
	wt_tab_add(e->link_id ? &wt->by_link : &wt->by_child, n,
	           e->link_id ? WT_TAB_LINK : WT_TAB_CHILD);
	*out = n;
	return 0;
}

/* The node for ino: in memory, or a persisted record loaded now. */
int wt_get(struct node **out, struct mav_wt *wt, uint64_t ino)
{
	struct node *n = wt_node(wt, ino);
	int rc;

	*out = NULL;
	if (n) {
		*out = n;
		return 0;
	}
	if (!wt->branch)
		return mav_error_set(-ESTALE, "inode %llu is not in this view",
		                     (unsigned long long)ino);
	n = wt_node_new(wt, ino);
	if (!n)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	rc = wt_load_rec(&n->rec, wt, ino);
	if (rc == MAV_ENOTFOUND)
		rc = mav_error_set(-ESTALE,
		                   "inode %llu of '%s' no longer exists",
		                   (unsigned long long)ino, wt->branch);
	if (rc < 0) {
		node_free(wt, n);
		return rc;
	}
	n->persisted = true;
	n->parent = n->rec.parent;
	*out = n;
	return 0;
}

/* Find name in directory dir (no reference added). -ENOENT if absent. */
int wt_resolve(struct node **out, struct mav_wt *wt, struct node *dir,
               const char *name)
{
	const struct mav_tree *t = NULL;
	int64_t ix;
	int rc;

	*out = NULL;
	if (dir->rec.type != MAV_T_DIR)
		return -ENOTDIR;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	/* Nodes in memory answer first: their names may be in a batch that
	 * is still being built (the store would not show them yet). */
	*out = child_find(wt, dir->ino, name);
	if (*out)
		return 0;
	if (dir->persisted) {
		uint64_t ino;
		bool whiteout;

		rc = wt_dirent_get(&ino, &whiteout, wt, dir->ino, name);
		if (rc == 0)
			return whiteout ? -ENOENT : wt_get(out, wt, ino);
		if (rc != MAV_ENOTFOUND)
			return rc;
	}
	if (mav_id_is_zero(&dir->rec.id))
		return -ENOENT;
	rc = mav_repo_tree_find(wt->r, &dir->rec.id, name, &t, &ix);
	if (rc < 0)
		return rc;
	rc = ix < 0 ? -ENOENT : wt_base_node(out, wt, dir, &t->e[ix]);
	mav_repo_tree_release(wt->r, t);
	return rc;
}

/* Persist n (and its ancestors) so changes to it survive a restart. */
int wt_materialize(struct mav_wt *wt, struct node *n, struct mav_kv_batch *b)
{
	struct node *parent = NULL;
	uint8_t key[WT_KEY_MAX], val[8];
	int rc = 0;

	if (n->persisted)
		return 0;
	if (!wt->branch)
		return -EROFS;
	if (n->ino != MAV_WT_ROOT) {
		parent = wt_node(wt, n->parent);
		if (!parent && !n->orphan)
			return mav_error_set(MAV_ECORRUPT,
			                     "lost parent of inode");
	}
	/* An unlinked open inode gets a record but no name anywhere. */
	if (parent && !n->orphan)
		rc = wt_materialize(wt, parent, b);
	if (rc == 0)
		rc = wt_put_rec(wt, b, n);
	if (rc == 0 && n->orphan)
		rc =
		    mav_kv_batch_put(b, MAV_CF_WT, key,
		                     wt_key(key, wt, 'o', n->ino, NULL), "", 0);
	else if (rc == 0 && parent)
		rc = wt_put_dirent(wt, b, parent->ino, n->name, n->ino, false);
	if (rc == 0 && parent && !n->orphan && n->rec.link_id) {
		mav_store_u64(val, n->ino);
		rc = mav_kv_batch_put(
		    b, MAV_CF_WT, key,
		    wt_key(key, wt, 'l', n->rec.link_id, NULL), val, 8);
	}
	if (rc == 0)
		rc = wt_put_header(wt, b);
	if (rc == 0)
		rc = mark_persisted(wt, n, parent);
	if (rc == 0 && parent && !n->orphan && n->rec.link_id &&
	    n->rec.nlink > 1)
		rc = wt_link_group_attach(wt, n, b);
	return rc;
}

/* Bytes of file n known to be holes: its sealed blob's zero chunks and
 * what lies past the blob, less the bytes of unsealed writes, which may
 * fill some of them (an append stream's bytes all count as data). An
 * estimate of where writes went, as st_blocks is, that never counts data
 * as a hole. The blob's count is kept in the node: a 1 TiB sparse file's
 * chunk list (144 MiB) outgrows the blob cache, and loading it again took
 * 0.65 s for every getattr. */
static uint64_t file_holes(struct mav_wt *wt, struct node *n)
{
	const struct mav_blob *b = NULL;
	uint64_t data = 0, tag;

	if (n->rec.type != MAV_T_FILE || n->rec.size < wt->r->zero_len)
		return 0;
	if (n->stream) {
		data = n->stream->pos;
	} else if (!mav_id_is_zero(&n->rec.id)) {
		tag = mav_id_hash64(&n->rec.id) | 1;
		/* A blob that cannot be read is counted as data; the read
		 * reports the damage. */
		if (n->holes_tag != tag &&
		    mav_odb_get_blob(&b, wt->r, &n->rec.id) == 0) {
			n->blob_data = b->size - mav_odb_blob_holes(b);
			n->holes_tag = tag;
			mav_odb_blob_release(wt->r, b);
		}
		data = n->holes_tag == tag ? n->blob_data : n->rec.size;
	}
	if (n->dirty)
		data += n->dirty->bytes;
	return data < n->rec.size ? n->rec.size - data : 0;
}

void wt_attr(struct mav_attr *out, struct mav_wt *wt, struct node *n)
{
	out->ino = n->ino;
	out->type = n->rec.type;
	out->mode = n->rec.mode;
	out->uid = n->rec.uid;
	out->gid = n->rec.gid;
	out->nlink = n->orphan ? 0 : n->rec.nlink;
	out->size = n->rec.size;
	out->holes = file_holes(wt, n);
	out->atime_ns = n->rec.atime;
	out->mtime_ns = n->rec.mtime;
	out->ctime_ns = n->rec.ctime;
}
