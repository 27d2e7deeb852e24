/* odb.c - the object database: chunks and objects by content id.
 *
 * Chunks live in MAV_CF_CHUNKS as frames (frame.h), found through
 * MAV_CF_CHUNK_IDS (see chunk locations below); objects (blobs, trees,
 * commits) in MAV_CF_OBJECTS as their encodings. Puts are idempotent and
 * check for an existing copy first, so re-importing unchanged data writes
 * nothing. Gets go through the chunk cache and the tree cache.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/frame.h"
#include "idset.h"
#include "prefetch.h"
#include "repo_internal.h"

#define PREFETCH_AHEAD       32 /* chunks loaded ahead of a sequential reader */
#define PREFETCH_FILE_CHUNKS 8  /* chunks of a file loaded before it is read */

/* A decoded tree, tree index or blob, cached or not. Callers borrow &view
 * (a shallow copy of the decoded header); release finds the holder from
 * that pointer, since view is the first member. */
enum holder_kind { H_BLOB, H_TREE, H_INDEX, H_JOINED };

/* A paged directory's entries as one tree (H_JOINED): the entries point
 * into its pages, which stay held until the joined tree is released. */
struct joined {
	struct mav_repo *r;
	struct mav_tree tree;
	const struct mav_tree **pages;
	uint32_t npages;
};

struct holder {
	union {
		struct mav_tree tree;
		struct mav_blob blob;
		struct mav_tree_index index;
	} view;
	void *decoded;
	enum holder_kind kind;
	struct mav_cache_entry *entry; /* NULL: not cached, freed on release */
	uint64_t
	    holes; /* a blob's bytes in holes, counted when it is decoded */
};

static void joined_drop(struct mav_repo *r, const struct mav_tree **pages,
                        uint32_t npages, struct mav_entry *e)
{
	for (uint32_t k = 0; k < npages; k++)
		mav_odb_release(r, pages[k]);
	free(pages);
	free(e);
}

static void joined_free(struct joined *j)
{
	joined_drop(j->r, j->pages, j->npages, j->tree.e);
	free(j);
}

void mav_odb_holder_free(void *p)
{
	struct holder *h = p;

	if (h->kind == H_TREE)
		mav_tree_free(h->decoded);
	else if (h->kind == H_JOINED)
		joined_free(h->decoded);
	else if (h->kind == H_INDEX)
		mav_tree_index_free(h->decoded);
	else
		mav_blob_free(h->decoded);
	free(h);
}

static struct holder *holder_new(enum holder_kind kind, void *decoded)
{
	struct holder *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->kind = kind;
	h->decoded = decoded;
	if (kind == H_TREE)
		h->view.tree = *(struct mav_tree *)decoded;
	else if (kind == H_JOINED)
		h->view.tree = ((struct joined *)decoded)->tree;
	else if (kind == H_INDEX)
		h->view.index = *(struct mav_tree_index *)decoded;
	else
		h->view.blob = *(struct mav_blob *)decoded;
	return h;
}

const struct mav_tree *mav_odb_join_pages(struct mav_repo *r,
                                          const struct mav_tree **pages,
                                          uint32_t npages, struct mav_entry *e,
                                          uint32_t n)
{
	struct joined *j = malloc(sizeof(*j));
	struct holder *h = NULL;

	if (!j) {
		joined_drop(r, pages, npages, e);
		return NULL;
	}
	*j = (struct joined){
	    .r = r, .tree = {.n = n, .e = e}, .pages = pages, .npages = npages};
	h = holder_new(H_JOINED, j);
	if (!h)
		joined_free(j);
	return h ? &h->view.tree : NULL;
}

void mav_odb_release(struct mav_repo *r, const void *view)
{
	struct holder *h = (struct holder *)view;

	if (!h)
		return;
	if (h->entry)
		mav_cache_release(h->kind == H_BLOB ? r->blobs : r->trees,
		                  h->entry);
	else
		mav_odb_holder_free(h);
}

/* Whether a write with these flags may trust what is stored: a logged
 * write may not while NO_WAL writes wait for a flush, since the copy it
 * would lean on may be one of them and not survive a crash that the
 * logged write survives. */
static bool trust_stored(struct mav_repo *r, unsigned flags)
{
	return (flags & MAV_KV_NO_WAL) ||
	       __atomic_load_n(&r->nowal_writes, __ATOMIC_SEQ_CST) ==
	           __atomic_load_n(&r->nowal_flushed, __ATOMIC_SEQ_CST);
}

/* Whether a write with these flags may skip storing object id again. */
static bool stored(struct mav_repo *r, unsigned flags, const mav_id *id)
{
	return trust_stored(r, flags) &&
	       mav_kv_get(r->kv, MAV_CF_OBJECTS, id->b, MAV_ID_LEN, NULL,
	                  NULL) == 0;
}

/* ---- chunk locations ----
 *
 * A chunk's key is its location, a counter that grows as chunks are stored
 * (big-endian, so keys sort in the order they were written), then its id;
 * MAV_CF_CHUNK_IDS maps the id to the location. Keys written in order let
 * RocksDB move new table files down the levels instead of merging them into
 * the files there (keyed by their random ids, the chunks of a 1.5 GB import
 * were rewritten once more by compaction), and they keep a file's chunks
 * side by side on disk for whoever reads it back. The id in the key makes a
 * wrong location read as a missing chunk, never as another one.
 *
 * A put leaves a new chunk's location 0; mav_odb_place gives the batch's
 * new chunks the next locations when it is written. Handed out at write
 * time, not when the chunk was cut (which, for a file the daemon holds
 * open, can be seconds earlier), locations grow with the order in which
 * chunks reach RocksDB, so each memtable flushes to a key range of its own:
 * placed at put time, a copy into a mount still rewrote more than the
 * bytes copied in compactions. A chunk put twice in one batch gets one
 * location, so the second put overwrites the first. */

static void store_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The next free location: one past the greatest key stored (read once). */
static int next_loc_load(struct mav_repo *r)
{
	struct mav_kv_iter *it = NULL;
	int rc = mav_kv_iter_new(&it, r->kv, MAV_CF_CHUNKS);
	size_t klen;

	if (rc < 0)
		return rc;
	mav_kv_iter_seek_last(it);
	r->next_loc = 1;
	if (mav_kv_iter_valid(it)) {
		const uint8_t *k = mav_kv_iter_key(it, &klen);

		if (klen == MAV_CHUNK_KEY_LEN)
			r->next_loc = load_be64(k) + 1;
	} else {
		rc = mav_kv_iter_status(it);
	}
	mav_kv_iter_free(it);
	return rc;
}

/* Take n locations; the first is *first. */
static int take_locs(struct mav_repo *r, uint64_t n, uint64_t *first)
{
	int rc = 0;

	pthread_mutex_lock(&r->loc_lock);
	if (r->next_loc == 0)
		rc = next_loc_load(r);
	*first = r->next_loc;
	r->next_loc = rc == 0 ? r->next_loc + n : 0; /* 0: read it again */
	pthread_mutex_unlock(&r->loc_lock);
	return rc;
}

static bool unplaced(const uint8_t *loc)
{
	static const uint8_t zero[8];

	return memcmp(loc, zero, sizeof(zero)) == 0;
}

struct place {
	uint64_t count, next;
	struct mav_idset given; /* id -> location given in this batch */
};

static int count_unplaced(void *ctx, enum mav_cf cf, void *key, size_t klen,
                          void *val, size_t vlen)
{
	struct place *p = ctx;

	(void)key;
	if (cf == MAV_CF_CHUNK_IDS && klen == MAV_ID_LEN && val && vlen == 8 &&
	    unplaced(val))
		p->count++;
	return 0;
}

/* A chunk's id record comes just before its frame (put_chunk). */
static int place_one(void *ctx, enum mav_cf cf, void *key, size_t klen,
                     void *val, size_t vlen)
{
	struct place *p = ctx;
	uint64_t loc;
	mav_id id;
	int rc;

	if (!val)
		return 0;
	if (cf == MAV_CF_CHUNK_IDS && klen == MAV_ID_LEN && vlen == 8 &&
	    unplaced(val)) {
		memcpy(id.b, key, MAV_ID_LEN);
		if (!mav_idset_has(&p->given, &id, &loc)) {
			loc = p->next++;
			if ((rc = mav_idset_add(&p->given, &id, loc)) < 0)
				return rc;
		}
		store_be64(val, loc);
	} else if (cf == MAV_CF_CHUNKS && klen == MAV_CHUNK_KEY_LEN &&
	           unplaced(key)) {
		memcpy(id.b, (uint8_t *)key + 8, MAV_ID_LEN);
		if (mav_idset_has(&p->given, &id, &loc))
			store_be64(key, loc);
	}
	return 0;
}

int mav_odb_place(struct mav_repo *r, struct mav_kv_batch *b)
{
	struct place p = {0};
	int rc;

	mav_kv_batch_edit(b, count_unplaced, &p);
	if (p.count == 0)
		return 0;
	rc = take_locs(r, p.count, &p.next);
	mav_idset_init(&p.given);
	if (rc == 0)
		rc = mav_kv_batch_edit(b, place_one, &p);
	mav_idset_free(&p.given);
	return rc;
}

static int copy_loc(void *ctx, const void *val, size_t len)
{
	if (len != 8)
		return mav_error_set(MAV_ECORRUPT,
		                     "chunk location is %zu bytes, not 8", len);
	memcpy(ctx, val, 8);
	return 0;
}

/* The chunk's key through kv's get_view or probe_view. */
static int chunk_key_by(struct mav_repo *r, const mav_id *id,
                        uint8_t key[MAV_CHUNK_KEY_LEN], mav_kv_lookup_fn get)
{
	int rc = get(r->kv, MAV_CF_CHUNK_IDS, id->b, MAV_ID_LEN, copy_loc, key);

	memcpy(key + 8, id->b, MAV_ID_LEN);
	return rc;
}

int mav_repo_chunk_key(struct mav_repo *r, const mav_id *id,
                       uint8_t key[MAV_CHUNK_KEY_LEN])
{
	return chunk_key_by(r, id, key, mav_kv_get_view);
}

static int ignore_value(void *ctx, const void *val, size_t len)
{
	(void)ctx;
	(void)val;
	(void)len;
	return 0;
}

int mav_repo_put_chunk(struct mav_repo *r, struct mav_kv_batch *b,
                       unsigned flags, mav_id *id_out, const void *data,
                       size_t len)
{
	mav_id_hash(id_out, data, len);
	return mav_odb_put_hashed_chunk(r, b, flags, id_out, data, len);
}

int mav_odb_put_hashed_chunk(struct mav_repo *r, struct mav_kv_batch *b,
                             unsigned flags, const mav_id *id, const void *data,
                             size_t len)
{
	uint8_t key[MAV_CHUNK_KEY_LEN];
	void *frame = NULL;
	size_t flen;
	int rc;

	/* Stored means both halves are: NO_WAL writes of the two families
	 * are flushed one after the other, so a crash may keep just one. */
	if (chunk_key_by(r, id, key, mav_kv_probe_view) == 0 &&
	    mav_kv_probe_view(r->kv, MAV_CF_CHUNKS, key, sizeof(key),
	                      ignore_value, NULL) == 0) {
		if (trust_stored(r, flags))
			return 0;
		/* Logged again where it is, so nothing is left behind. */
	} else {
		memset(key, 0, 8); /* placed when the batch is written */
	}
	rc = mav_kv_batch_put(b, MAV_CF_CHUNK_IDS, id->b, MAV_ID_LEN, key, 8);
	/* The frame is encoded straight into the batch. */
	if (rc == 0)
		rc = mav_kv_batch_reserve(b, MAV_CF_CHUNKS, key, sizeof(key),
		                          MAV_FRAME_OVERHEAD + len, &frame);
	if (rc == 0)
		rc = mav_frame_encode_into(frame, &flen, data, len,
		                           r->cfg.zstd_level);
	if (rc == 0)
		mav_kv_batch_commit(b, flen);
	return rc;
}

/* A chunk frame copied into a batch under its key (relog_chunk). */
struct relog {
	struct mav_kv_batch *b;
	const uint8_t *key;
};

static int relog_frame(void *ctx, const void *frame, size_t flen)
{
	struct relog *rl = ctx;

	return mav_kv_batch_put(rl->b, MAV_CF_CHUNKS, rl->key,
	                        MAV_CHUNK_KEY_LEN, frame, flen);
}

static int relog_chunk(struct mav_repo *r, struct mav_kv_batch *b,
                       const mav_id *id)
{
	uint8_t key[MAV_CHUNK_KEY_LEN];
	struct relog rl = {b, key};
	char hex[MAV_ID_HEX_LEN + 1];
	int rc = mav_repo_chunk_key(r, id, key);

	/* The id record first, as put_chunk puts it. */
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_CHUNK_IDS, id->b, MAV_ID_LEN,
		                      key, 8);
	if (rc == 0)
		rc = mav_kv_get_view(r->kv, MAV_CF_CHUNKS, key, sizeof(key),
		                     relog_frame, &rl);
	if (rc == MAV_ENOTFOUND) {
		mav_id_hex(hex, id);
		return mav_error_set(rc, "chunk %s is missing", hex);
	}
	return rc;
}

int mav_repo_relog_blob(struct mav_repo *r, const mav_id *id, uint32_t from)
{
	const struct mav_blob *blob = NULL;
	struct mav_kv_batch *b = NULL;
	void *enc = NULL;
	size_t len;
	int rc = mav_repo_get_object(r, id, &enc, &len);

	if (rc == 0 && mav_object_kind(enc, len) != 'B')
		rc = 1; /* a paged blob: its pages too; the caller flushes */
	if (rc == 0)
		rc = mav_odb_get_blob(&blob, r, id);
	if (rc == 0)
		rc = mav_kv_batch_new(&b);
	for (uint32_t i = from; rc == 0 && i < blob->n; i++)
		rc = relog_chunk(r, b, &blob->ids[i]);
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_OBJECTS, id->b, MAV_ID_LEN, enc,
		                      len);
	if (rc == 0)
		rc = mav_repo_write(r, b, MAV_KV_ADMITTED);
	mav_kv_batch_free(b);
	mav_odb_blob_release(r, blob);
	free(enc);
	return rc;
}

struct chunk_load {
	uint8_t *plain;
	size_t plen;
};

/* Check and decode a frame where the store holds it (no copy of it). */
static int decode_frame(void *ctx, const void *frame, size_t flen)
{
	struct chunk_load *c = ctx;
	uint32_t raw_len;
	int codec;
	int rc = mav_frame_info(&raw_len, &codec, frame, flen);

	if (rc == 0 && !(c->plain = malloc(raw_len ? raw_len : 1)))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	if (rc == 0)
		rc = mav_frame_decode(c->plain, raw_len, &c->plen, frame, flen);
	return rc;
}

static int load_chunk(struct mav_cache_entry **out, struct mav_repo *r,
                      const mav_id *id)
{
	char hex[MAV_ID_HEX_LEN + 1];
	struct chunk_load c = {0};
	uint8_t key[MAV_CHUNK_KEY_LEN];
	int rc = mav_repo_chunk_key(r, id, key);

	if (rc == 0)
		rc = mav_kv_get_view(r->kv, MAV_CF_CHUNKS, key, sizeof(key),
		                     decode_frame, &c);

	if (rc < 0) { /* missing, RocksDB's checksum, or the frame's */
		mav_id_hex(hex, id);
		rc = rc == MAV_ENOTFOUND
		         ? mav_error_set(rc, "chunk %s is missing", hex)
		         : mav_error_set(rc, "chunk %s: %s", hex,
		                         mav_error_message());
		free(c.plain);
		return rc;
	}
	*out = mav_cache_insert(r->chunks, id, c.plain, c.plen);
	return *out ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");
}

/* The cache entry of chunk id, referenced, holding [off, off+len) of it. */
static int chunk_entry(struct mav_cache_entry **out, struct mav_repo *r,
                       const mav_id *id, uint32_t off, uint32_t len)
{
	struct mav_cache_entry *e = mav_cache_get(r->chunks, id);
	char hex[MAV_ID_HEX_LEN + 1];
	int rc = 0;

	if (!e && r->prefetch && mav_prefetch_claim(r->prefetch, id))
		e = mav_cache_get(r->chunks, id);
	if (!e)
		rc = load_chunk(&e, r, id);
	if (rc < 0)
		return rc;
	if ((uint64_t)off + len > mav_cache_bytes(e)) {
		mav_cache_release(r->chunks, e);
		mav_id_hex(hex, id);
		return mav_error_set(MAV_ECORRUPT,
		                     "chunk %s is shorter than its blob says",
		                     hex);
	}
	*out = e;
	return 0;
}

int mav_repo_read_chunk(struct mav_repo *r, const mav_id *id, uint32_t off,
                        void *dst, uint32_t len)
{
	struct mav_cache_entry *e = NULL;
	int rc = chunk_entry(&e, r, id, off, len);

	if (rc < 0)
		return rc;
	memcpy(dst, (const uint8_t *)mav_cache_value(e) + off, len);
	mav_cache_release(r->chunks, e);
	return 0;
}

/* A read from the start of a file, or one that reaches the second half of
 * its last chunk, is likely followed by the next chunks: queue them, and the
 * read's own chunks after its first, before this read waits for its first
 * chunk, so the disk sees several reads at once. */
static void prefetch_after(struct mav_repo *r, const struct mav_blob *b,
                           int64_t first, uint64_t off, size_t len)
{
	uint64_t end = off + len < b->size ? off + len : b->size;
	int64_t last;

	if (!r->prefetch || first < 0 || end <= off)
		return;
	last = mav_blob_locate(b, end - 1);
	if (last < 0)
		return;
	if (off == 0 ||
	    end >=
	        (mav_blob_chunk_start(b, (uint32_t)last) + b->ends[last]) / 2)
		last += PREFETCH_AHEAD;
	if (last > first)
		mav_repo_prefetch(r, b, (uint32_t)first + 1,
		                  (uint32_t)(last - first));
}

int mav_repo_read_blob(struct mav_repo *r, const struct mav_blob *b,
                       uint64_t off, void *dst, size_t len, size_t *nread)
{
	int64_t i = off < b->size ? mav_blob_locate(b, off) : -1;
	size_t done = 0;
	int rc = 0;

	prefetch_after(r, b, i, off, len);
	while (i >= 0 && (uint32_t)i < b->n && done < len) {
		uint64_t start = mav_blob_chunk_start(b, (uint32_t)i);
		uint64_t pos = off + done;
		uint64_t n = b->ends[i] - pos;

		if (n > len - done)
			n = len - done;
		rc = mav_repo_read_chunk(r, &b->ids[i], (uint32_t)(pos - start),
		                         (uint8_t *)dst + done, (uint32_t)n);
		if (rc < 0)
			break;
		done += n;
		i++;
	}
	*nread = done;
	return rc;
}

int mav_repo_pin_blob(struct mav_repo *r, const struct mav_blob *b,
                      uint64_t off, size_t len, struct mav_pieces *out)
{
	int64_t i = off < b->size ? mav_blob_locate(b, off) : -1;
	size_t done = 0;
	int rc = 0;

	out->r = r;
	out->n = 0;
	out->bytes = 0;
	if (len == 0)
		return 1;
	if (i < 0 || len > b->size - off)
		return 0;
	prefetch_after(r, b, i, off, len);
	while (done < len) {
		uint64_t start = mav_blob_chunk_start(b, (uint32_t)i);
		uint64_t pos = off + done;
		uint64_t n = b->ends[i] - pos;
		struct mav_cache_entry *e = NULL;

		if (n > len - done)
			n = len - done;
		if (out->n == MAV_PIECES_MAX) {
			mav_pieces_release(out);
			return 0;
		}
		rc = chunk_entry(&e, r, &b->ids[i], (uint32_t)(pos - start),
		                 (uint32_t)n);
		if (rc < 0) {
			mav_pieces_release(out);
			return rc;
		}
		out->v[out->n].iov_base =
		    (uint8_t *)mav_cache_value(e) + (pos - start);
		out->v[out->n].iov_len = (size_t)n;
		out->pin[out->n++] = e;
		done += n;
		i++;
	}
	out->bytes = done;
	return 1;
}

void mav_pieces_release(struct mav_pieces *p)
{
	for (unsigned i = 0; i < p->n; i++)
		mav_cache_release(p->r->chunks, p->pin[i]);
	p->n = 0;
	p->bytes = 0;
}

/* Prefetch threads: load one chunk into the cache, ignoring errors (the
 * reader that needs it will meet them and report them). */
static void prefetch_load(struct mav_repo *r, const mav_id *id)
{
	struct mav_cache_entry *e = mav_cache_get(r->chunks, id);

	if (!e && load_chunk(&e, r, id) < 0)
		return;
	mav_cache_release(r->chunks, e);
}

void mav_repo_prefetch(struct mav_repo *r, const struct mav_blob *b, uint32_t i,
                       uint32_t n)
{
	if (!r->prefetch)
		return;
	for (; n > 0 && i < b->n; i++, n--)
		if (!mav_cache_touch(r->chunks, &b->ids[i]))
			mav_prefetch_push(r->prefetch, &b->ids[i]);
}

int mav_repo_put_object(struct mav_repo *r, struct mav_kv_batch *b,
                        unsigned flags, mav_id *id_out, const void *buf,
                        size_t len)
{
	mav_id_hash(id_out, buf, len);
	if (stored(r, flags, id_out))
		return 0;
	return mav_kv_batch_put(b, MAV_CF_OBJECTS, id_out->b, MAV_ID_LEN, buf,
	                        len);
}

int mav_repo_get_object(struct mav_repo *r, const mav_id *id, void **buf,
                        size_t *len)
{
	char hex[MAV_ID_HEX_LEN + 1];
	mav_id check;
	int rc;

	*buf = NULL;
	rc = mav_kv_get(r->kv, MAV_CF_OBJECTS, id->b, MAV_ID_LEN, buf, len);
	if (rc < 0) {
		mav_id_hex(hex, id);
		return rc == MAV_ENOTFOUND
		           ? mav_error_set(rc, "object %s is missing", hex)
		           : rc;
	}
	/* A commit's id leaves out its signature: get_commit checks it. */
	if (mav_object_kind(*buf, *len) == 'C')
		return 0;
	mav_id_hash(&check, *buf, *len);
	if (mav_id_cmp(&check, id) != 0) {
		free(*buf);
		*buf = NULL;
		mav_id_hex(hex, id);
		return mav_error_set(MAV_ECORRUPT,
		                     "object %s does not match its id", hex);
	}
	return 0;
}

static int assemble_blob(struct mav_blob **out, struct mav_repo *r,
                         const void *buf, size_t len);

/* Fetch object id and decode it into *out: kind 'B', 'C' or 'T' (a
 * struct mav_blob **, mav_commit ** or mav_tree **), or, for 'T', an
 * index when the object is one (*kind_out 'I', a mav_tree_index **); a
 * paged blob comes back whole, and kind 'b' asks for one page of it (a
 * "MAVB" blob, never an index); a decode error names the object. */
static int fetch_decoded(void *out, char *kind_out, struct mav_repo *r,
                         const mav_id *id, char kind)
{
	char hex[MAV_ID_HEX_LEN + 1];
	void *buf = NULL;
	size_t len;
	int rc = mav_repo_get_object(r, id, &buf, &len);
	bool fetched = rc == 0; /* its errors name the object already */

	if (rc == 0 && kind == 'T' && mav_object_kind(buf, len) == 'I')
		kind = 'I';
	if (kind_out)
		*kind_out = kind == 'b' ? 'B' : kind;
	if (rc == 0 && kind == 'B' && mav_object_kind(buf, len) == 'P')
		rc = assemble_blob(out, r, buf, len);
	else if (rc == 0 && (kind == 'B' || kind == 'b'))
		rc = mav_blob_decode(out, buf, len);
	else if (rc == 0 && kind == 'C')
		rc = mav_commit_decode(out, buf, len);
	else if (rc == 0 && kind == 'I')
		rc = mav_tree_index_decode(out, buf, len);
	else if (rc == 0)
		rc = mav_tree_decode(out, buf, len);
	free(buf);
	if (rc < 0 && fetched) {
		mav_id_hex(hex, id);
		rc = mav_error_set(rc, "object %s: %s", hex,
		                   mav_error_message());
	}
	return rc;
}

/* A paged blob's chunk list: its pages fetched and joined. A page that is
 * missing, corrupt or other than its index says is named. The list is
 * allocated only once every page checked out, so its size comes from the
 * pages actually stored, not from what a hostile index claims. */
static int assemble_blob(struct mav_blob **out, struct mav_repo *r,
                         const void *buf, size_t len)
{
	char hex[MAV_ID_HEX_LEN + 1];
	struct mav_blob_index *x = NULL;
	struct mav_blob **pg = NULL, *b = NULL;
	uint64_t off = 0;
	uint32_t k = 0, i;
	int rc = mav_blob_index_decode(&x, buf, len);

	if (rc == 0 && !(pg = calloc(x->npages, sizeof(*pg))))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	for (i = 0; rc == 0 && i < x->npages; i++) {
		rc = fetch_decoded(&pg[i], NULL, r, &x->p[i].id, 'b');
		if (rc == 0 &&
		    (pg[i]->n != x->p[i].n || pg[i]->size != x->p[i].size)) {
			mav_id_hex(hex, &x->p[i].id);
			rc = mav_error_set(MAV_ECORRUPT,
			                   "blob page %s is not the one its "
			                   "index describes",
			                   hex);
		}
	}
	if (rc == 0 && !(b = mav_blob_alloc(x->size, x->n)))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	for (i = 0; rc == 0 && i < x->npages; i++) {
		for (uint32_t j = 0; j < pg[i]->n; j++, k++) {
			b->ids[k] = pg[i]->ids[j];
			b->ends[k] = off + pg[i]->ends[j];
		}
		off += pg[i]->size;
	}
	for (i = 0; pg && i < x->npages; i++)
		mav_blob_free(pg[i]);
	free(pg);
	mav_blob_index_free(x);
	*out = b;
	return rc;
}

int mav_repo_get_blob(struct mav_repo *r, const mav_id *id,
                      struct mav_blob **out)
{
	*out = NULL;
	return fetch_decoded(out, NULL, r, id, 'B');
}

int mav_repo_get_commit(struct mav_repo *r, const mav_id *id,
                        struct mav_commit **out)
{
	char hex[MAV_ID_HEX_LEN + 1];
	mav_id check;
	int rc;

	*out = NULL;
	rc = fetch_decoded(out, NULL, r, id, 'C');

	if (rc == 0)
		rc = mav_commit_id(&check, *out);
	if (rc == 0 && mav_id_cmp(&check, id) != 0) {
		mav_id_hex(hex, id);
		rc = mav_error_set(MAV_ECORRUPT,
		                   "commit %s does not match its id", hex);
	}
	if (rc < 0) {
		mav_commit_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Rough memory of a decoded object, for the cache budget. */
static size_t holder_bytes(const struct holder *h)
{
	const struct mav_tree *t = &h->view.tree;
	const struct mav_tree_index *x = &h->view.index;
	size_t n = sizeof(*h);

	if (h->kind == H_BLOB)
		return n + (size_t)h->view.blob.n * (MAV_ID_LEN + 8);
	if (h->kind == H_INDEX) {
		n += (size_t)x->npages * sizeof(*x->p);
		for (uint32_t i = 0; i < x->npages; i++)
			n += strlen(x->p[i].first) + 1;
		return n;
	}
	n += (size_t)t->n * sizeof(struct mav_entry);
	for (uint32_t i = 0; i < t->n; i++)
		n += strlen(t->e[i].name) + 1 +
		     t->e[i].nxattrs * sizeof(struct mav_xattr);
	return n;
}

/* Is chunk i of b a hole: the one chunk a run of zeros is cut into? */
static bool is_hole(const struct mav_repo *r, const struct mav_blob *b,
                    uint32_t i)
{
	return b->ends[i] - mav_blob_chunk_start(b, i) == r->zero_len &&
	       mav_id_cmp(&b->ids[i], &r->zero_id) == 0;
}

/* Decode object id into cache c (a tree object if tree, else a blob). */
static int fill(struct mav_cache_entry **out, struct mav_repo *r,
                struct mav_cache *c, const mav_id *id, bool tree)
{
	void *decoded = NULL;
	char kind = 'B';
	struct holder *h;
	int rc = fetch_decoded(&decoded, &kind, r, id, tree ? 'T' : 'B');

	if (rc < 0)
		return rc;
	h = holder_new(kind == 'B'   ? H_BLOB
	               : kind == 'I' ? H_INDEX
	                             : H_TREE,
	               decoded);
	if (!h)
		free(decoded); /* one block, whatever its kind */
	/* Counted once here, not at every getattr of the file. */
	for (uint32_t i = 0; h && h->kind == H_BLOB && i < h->view.blob.n; i++)
		if (is_hole(r, &h->view.blob, i))
			h->holes += r->zero_len;
	/* On failure the cache frees h. */
	*out = h ? mav_cache_insert(c, id, h, holder_bytes(h)) : NULL;
	return *out ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");
}

/* The decoded object id through cache c, decoding it on a miss (then
 * *missed, if given, is set). A tree page a prefetch thread is loading is
 * waited for, not read twice. */
static int cached(struct holder **out, bool *missed, struct mav_repo *r,
                  struct mav_cache *c, const mav_id *id, bool tree)
{
	struct mav_cache_entry *e = mav_cache_get(c, id);
	struct mav_prefetch *pf = tree ? r->tree_prefetch : r->file_prefetch;
	int rc;

	if (!e && pf && mav_prefetch_claim(pf, id))
		e = mav_cache_get(c, id);
	if (missed)
		*missed = !e;
	if (!e && (rc = fill(&e, r, c, id, tree)) < 0)
		return rc;
	/* Every thread holding e stores the same value before returning. */
	*out = mav_cache_value(e);
	(*out)->entry = e;
	return 0;
}

int mav_odb_get_tree(const struct mav_tree **tree,
                     const struct mav_tree_index **index, bool *missed,
                     struct mav_repo *r, const mav_id *id)
{
	struct holder *h = NULL;
	int rc = cached(&h, missed, r, r->trees, id, true);

	*tree = rc == 0 && h->kind == H_TREE ? &h->view.tree : NULL;
	*index = rc == 0 && h->kind == H_INDEX ? &h->view.index : NULL;
	return rc;
}

static void prefetch_tree(struct mav_repo *r, const mav_id *id)
{
	struct mav_cache_entry *e = mav_cache_get(r->trees, id);

	/* Not through cached(): that would wait for this very load. */
	if (!e && fill(&e, r, r->trees, id, true) < 0)
		return;
	mav_cache_release(r->trees, e);
}

/* The first chunks of a blob: what a reader of the file asks for first. */
static void prefetch_head(struct mav_repo *r, struct mav_cache_entry *e)
{
	const struct holder *h = mav_cache_value(e);

	mav_repo_prefetch(r, &h->view.blob, 0, PREFETCH_FILE_CHUNKS);
	mav_cache_release(r->blobs, e);
}

static void prefetch_file(struct mav_repo *r, const mav_id *id)
{
	struct mav_cache_entry *e = mav_cache_get(r->blobs, id);

	/* Not through cached(): that would wait for this very load. */
	if (e || fill(&e, r, r->blobs, id, false) == 0)
		prefetch_head(r, e);
}

void mav_repo_prefetch_file(struct mav_repo *r, const mav_id *blob)
{
	struct mav_cache_entry *e;

	if (!r->file_prefetch)
		return;
	e = mav_cache_get(r->blobs, blob);
	if (e)
		prefetch_head(r, e);
	else
		mav_prefetch_push(r->file_prefetch, blob);
}

int mav_repo_start_prefetch(struct mav_repo *r, int threads)
{
	int rc = 0;

	if (!r->prefetch)
		rc = mav_prefetch_new(&r->prefetch, r, prefetch_load, threads);
	if (rc == 0 && !r->tree_prefetch)
		rc = mav_prefetch_new(&r->tree_prefetch, r, prefetch_tree, 2);
	if (rc == 0 && !r->file_prefetch)
		rc = mav_prefetch_new(&r->file_prefetch, r, prefetch_file, 2);
	return rc;
}

void mav_repo_tree_release(struct mav_repo *r, const struct mav_tree *t)
{
	mav_odb_release(r, t);
}

void mav_repo_empty_blob(mav_id *out)
{
	uint8_t *enc = NULL;
	size_t len;

	if (mav_blob_encode(&enc, &len, NULL, NULL, 0) == 0)
		mav_id_hash(out, enc, len);
	free(enc);
}

void mav_repo_empty_tree(mav_id *out)
{
	uint8_t *enc = NULL;
	size_t len;

	if (mav_tree_encode(&enc, &len, NULL, 0) == 0)
		mav_id_hash(out, enc, len);
	free(enc);
}

int mav_odb_get_blob(const struct mav_blob **out, struct mav_repo *r,
                     const mav_id *id)
{
	struct holder *h = NULL;
	int rc = cached(&h, NULL, r, r->blobs, id, false);

	*out = rc == 0 ? &h->view.blob : NULL;
	return rc;
}

void mav_odb_blob_release(struct mav_repo *r, const struct mav_blob *b)
{
	mav_odb_release(r, b);
}

/* ---- holes ---- */

uint64_t mav_odb_blob_holes(const struct mav_blob *b)
{
	return ((const struct holder *)b)->holes;
}

int64_t mav_repo_blob_seek(const struct mav_repo *r, const struct mav_blob *b,
                           uint64_t off, bool data)
{
	int64_t i = mav_blob_locate(b, off);

	if (i < 0) /* an inlined blob is all data */
		return data ? (int64_t)off : (int64_t)b->size;
	for (; (uint32_t)i < b->n; i++)
		if (is_hole(r, b, (uint32_t)i) != data) {
			uint64_t start = mav_blob_chunk_start(b, (uint32_t)i);

			return (int64_t)(start > off ? start : off);
		}
	return data ? -ENXIO : (int64_t)b->size;
}
