/* wt_data.c - file contents of working trees: read, write, seal.
 *
 * A write at the end of a sealed file starts an append stream: the bytes go
 * straight through the chunker, chunks are stored as they are cut, and the
 * last old chunk is cut again with them. Other writes land in per-inode
 * dirty extents in memory (sorted, never merged: a later write trims what it
 * overwrites); pages the kernel sends ahead of a stream wait there until the
 * gap fills. A file is sealed on fsync, snapshot, forget, memory pressure,
 * idle or a read of what is streamed: its changed
 * region is cut again with FastCDC from the start of the chunk holding the
 * first change, and cutting stops as soon as a cut falls on an old chunk
 * boundary past the last change, so the unchanged chunks after it are kept
 * as they are: an edit costs the size of the edit, not of the file. Sealed
 * chunks and the new blob are written through the log (not synced); the
 * inode record that points at them follows, synced on fsync. A stream's
 * chunks and blob skip the log (it doubled every byte written, and RocksDB
 * checksums it with a software CRC32c: a quarter of the daemon's CPU in a
 * cp -a), so before its record is written they are made durable: files
 * sealed together (idle, memory pressure, sync, snapshot) share one
 * memtable flush; a file sealed alone (fsync, forget, a read) has its new
 * chunks and blob logged again if they are at most STREAM_RELOG_MAX bytes,
 * which costs what logging them had, and flushes otherwise. Writes of
 * BEHIND_MIN bytes or more are copied to the tree's feeder threads
 * (behind.h) and return; whatever uses a stream's writer directly drains
 * its feeder first; a feeder whose stream goes quiet stores every chunk
 * whose end it has seen, so an unsealed file holds little more than its
 * uncut tail.
 *
 * Memory: what unsealed files hold (dirty extents, streams' unwritten
 * chunks and queued writes) is bounded by WT_DIRTY_MAX; past it the least
 * recently written files are sealed. Before taking a write the tree asks
 * the store whether all it holds would still fit on the disk (ENOSPC to
 * the writer if not), and it stores what it took as admitted data, which
 * may use half the free-space reserve.
 *
 * Read-ahead across the files of a directory: wt_ahead.c.
 *
 * Reads of a file with no dirty data run outside wt->lock: the blob is
 * immutable and held through the blob cache.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "behind.h"
#include "grow.h"
#include "mav/error.h"
#include "wt_internal.h"

#define NODE_DIRTY_MAX   (32ull << 20)  /* seal a file past this much */
#define WT_DIRTY_MAX     (256ull << 20) /* held in memory: seal past this */
#define WT_DIRTY_LOW     (240ull << 20) /* ... until this much is left */
#define SEAL_STEP        (256u << 10)
#define WT_PAGE          4096u
#define WT_SPLIT_MIN     (1u << 20)    /* a whole max_write: more may follow */
#define STREAM_RELOG_MAX (16ull << 20) /* logged again rather than flush */

/* The largest file: 1 TiB. A write or size past it is EFBIG, as ext4's
 * past 16 TiB. Sealing holds a file's whole chunk list (36 bytes a chunk):
 * a 1 TiB hole is 4M zero chunks, 144 MiB for the moment of its seal. */
#define FILE_MAX   (1ull << 40)
#define BEHIND_MIN (64u << 10) /* smaller writes are fed at once */

/* ---- extents ---- */

static void stream_free(struct mav_wt *wt, struct node *n)
{
	struct stream *st = n->stream;

	if (!st)
		return;
	wt->stream_bytes -= st->held;
	mav_behind_free(st->bh); /* before the writer it feeds */
	mav_writer_free(st->w);
	mav_odb_blob_release(wt->r, st->old);
	free(st);
	n->stream = NULL;
}

void wt_dirty_free(struct mav_wt *wt, struct node *n)
{
	stream_free(wt, n);
	wt_dirty_extents_free(wt, n);
}

void wt_dirty_extents_free(struct mav_wt *wt, struct node *n)
{
	struct dirty *d = n->dirty;

	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->ext[i].data);
	wt->dirty_bytes -= d->bytes;
	free(d->ext);
	free(d);
	n->dirty = NULL;
}

/* Keep d->bytes and the tree's total in step with the extents. */
static void dirty_account(struct mav_wt *wt, struct dirty *d, int64_t delta)
{
	d->bytes += (uint64_t)delta;
	wt->dirty_bytes += (uint64_t)delta;
}

static int ext_insert(struct dirty *d, size_t at, struct extent e)
{
	if (mav_grow(&d->ext, &d->cap, d->n, sizeof(*d->ext), 8) < 0)
		return MAV_ENOMEM;
	memmove(d->ext + at + 1, d->ext + at, (d->n - at) * sizeof(*d->ext));
	d->ext[at] = e;
	d->n++;
	return 0;
}

/* Bytes an extent holds in memory: none for zeros. */
static uint64_t ext_bytes(const struct extent *e)
{
	return e->data ? e->len : 0;
}

/* An extent of len bytes from p, or of zeros (p NULL: no bytes held). */
static int ext_copy(struct extent *out, uint64_t off, const uint8_t *p,
                    size_t len)
{
	out->off = off;
	out->len = len;
	out->data = NULL;
	if (!p)
		return 0;
	out->data = malloc(len ? len : 1);
	if (!out->data)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	memcpy(out->data, p, len);
	return 0;
}

/* Make room for [off, end) in the sorted list: cut what overlaps it (the
 * new write wins). Extents are never merged, so a write costs its own size,
 * however the kernel orders the pages. Returns the insertion index. */
static int ext_clear(struct mav_wt *wt, struct dirty *d, uint64_t off,
                     uint64_t end, size_t *at)
{
	size_t i = 0;
	int rc = 0;

	while (i < d->n && d->ext[i].off + d->ext[i].len <= off)
		i++;
	*at = i;
	while (rc == 0 && i < d->n && d->ext[i].off < end) {
		struct extent *e = &d->ext[i], tail;
		uint64_t e_end = e->off + e->len, lo = e->off;

		if (e->data)
			dirty_account(wt, d,
			              -(int64_t)((e_end < end ? e_end : end) -
			                         (lo > off ? lo : off)));
		if (e_end > end) { /* keep what lies after the write */
			rc = ext_copy(&tail, end,
			              e->data ? e->data + (end - lo) : NULL,
			              e_end - end);
			if (rc == 0)
				rc = ext_insert(d, i + 1, tail);
			e = &d->ext[i];
		}
		if (rc < 0)
			break;
		if (lo < off) { /* keep what lies before it */
			e->len = off - lo;
			*at = ++i;
			continue;
		}
		free(e->data);
		memmove(d->ext + i, d->ext + i + 1,
		        (d->n - i - 1) * sizeof(*d->ext));
		d->n--;
	}
	return rc;
}

/* Add the write [off, off+len) to the node's extents; buf NULL: zeros. */
static int dirty_add(struct mav_wt *wt, struct node *n, uint64_t off,
                     const void *buf, size_t len)
{
	struct dirty *d = n->dirty;
	struct extent e;
	size_t at;
	int rc;

	if (!d && !(d = n->dirty = calloc(1, sizeof(*d))))
		return mav_error_set(MAV_ENOMEM, "out of memory");
	d->last_write = wt_now();
	rc = ext_clear(wt, d, off, off + len, &at);
	if (rc == 0)
		rc = ext_copy(&e, off, buf, len);
	if (rc == 0 && (rc = ext_insert(d, at, e)) < 0)
		free(e.data);
	if (rc == 0)
		dirty_account(wt, d, (int64_t)ext_bytes(&e));
	return rc;
}

/* Drop dirty bytes at or beyond size. */
static void dirty_trim(struct mav_wt *wt, struct node *n, uint64_t size)
{
	struct dirty *d = n->dirty;

	while (d && d->n > 0) {
		struct extent *e = &d->ext[d->n - 1];

		if (e->off >= size) {
			dirty_account(wt, d, -(int64_t)ext_bytes(e));
			free(e->data);
			d->n--;
		} else {
			if (e->off + e->len > size) {
				if (e->data)
					dirty_account(
					    wt, d,
					    -(int64_t)(e->off + e->len - size));
				e->len = size - e->off;
			}
			break;
		}
	}
}

/* Bytes [off, off+len) of the file as it is now: sealed blob, zeros past its
 * end, dirty extents on top. len must not pass rec.size. */
static int read_merged(struct mav_wt *wt, struct node *n,
                       const struct mav_blob *blob, uint64_t off, uint8_t *buf,
                       size_t len)
{
	size_t got = 0;
	int rc = 0;

	if (off < blob->size)
		rc = mav_repo_read_blob(wt->r, blob, off, buf, len, &got);
	if (rc < 0)
		return rc;
	memset(buf + got, 0, len - got);
	for (size_t i = 0; n->dirty && i < n->dirty->n; i++) {
		const struct extent *e = &n->dirty->ext[i];
		uint64_t lo = e->off > off ? e->off : off;
		uint64_t hi =
		    e->off + e->len < off + len ? e->off + e->len : off + len;

		if (lo < hi && e->data)
			memcpy(buf + (lo - off), e->data + (lo - e->off),
			       hi - lo);
		else if (lo < hi)
			memset(buf + (lo - off), 0, hi - lo);
	}
	return 0;
}

/* ---- sealing ---- */

/* First chunk index of blob whose start is c, or -1. */
static int64_t boundary_at(const struct mav_blob *b, uint64_t c)
{
	int64_t i;

	if (c == b->size)
		return b->n;
	i = mav_blob_locate(b, c);
	return i >= 0 && mav_blob_chunk_start(b, (uint32_t)i) == c ? i : -1;
}

struct seal_range {
	uint32_t s;     /* first old chunk recut */
	uint64_t start; /* its offset */
	uint64_t last;  /* resync only at or past this offset */
};

static struct seal_range seal_range(const struct node *n,
                                    const struct mav_blob *b)
{
	struct seal_range sr = {0, 0, 0};
	uint64_t first = UINT64_MAX;

	if (n->dirty && n->dirty->n) {
		first = n->dirty->ext[0].off;
		sr.last = n->dirty->ext[n->dirty->n - 1].off +
		          n->dirty->ext[n->dirty->n - 1].len;
	}
	if (n->rec.size != b->size) {
		uint64_t m = n->rec.size < b->size ? n->rec.size : b->size;

		first = first < m ? first : m;
		sr.last = UINT64_MAX;
	}
	if (b->n == 0)
		return sr;
	sr.s =
	    first >= b->size ? b->n - 1 : (uint32_t)mav_blob_locate(b, first);
	sr.start = mav_blob_chunk_start(b, sr.s);
	return sr;
}

/* The zeros at pos: the rest of an extent of zeros, or past the sealed
 * blob what no extent covers (to the next extent, or to the end of the
 * file); how many. */
static uint64_t hole_at(const struct node *n, const struct mav_blob *b,
                        uint64_t pos)
{
	uint64_t end = n->rec.size;

	for (size_t i = 0; n->dirty && i < n->dirty->n; i++) {
		const struct extent *e = &n->dirty->ext[i];

		if (e->off + e->len <= pos)
			continue;
		if (e->off <= pos)
			return e->data ? 0 : e->off + e->len - pos;
		end = e->off;
		break;
	}
	return pos < b->size ? 0 : end - pos;
}

/* Feed the writer from sr.start until a cut falls back in step with the old
 * boundaries; *resync = the old chunk index to continue with, or -1, and
 * *keep = how many new chunks precede it. Holes go in as counted zeros. */
static int recut(struct mav_wt *wt, struct node *n, const struct mav_blob *b,
                 const struct seal_range *sr, struct mav_writer *w,
                 int64_t *resync, uint32_t *keep)
{
	uint8_t *buf = malloc(SEAL_STEP);
	uint64_t pos = sr->start, cut = sr->start;
	uint32_t seen = 0;
	int rc = buf ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");

	*resync = -1;
	while (rc == 0 && pos < n->rec.size && *resync < 0) {
		uint64_t len = hole_at(n, b, pos);
		const mav_id *ids;
		const uint32_t *lens;
		uint32_t nc;

		if (len >= SEAL_STEP) {
			rc = mav_writer_feed_zeros(w, len);
		} else {
			len = n->rec.size - pos < SEAL_STEP ? n->rec.size - pos
			                                    : SEAL_STEP;
			rc = read_merged(wt, n, b, pos, buf, (size_t)len);
			if (rc == 0)
				rc = mav_writer_feed(w, buf, (size_t)len);
		}
		pos += len;
		nc = mav_writer_chunks(w, &ids, &lens);
		for (; rc == 0 && seen < nc && *resync < 0; seen++) {
			cut += lens[seen];
			if (cut >= sr->last && cut < b->size)
				*resync = boundary_at(b, cut);
			*keep = seen + 1;
		}
	}
	free(buf);
	return rc;
}

/* ---- append streams ---- */

/* Count what the stream holds in memory (writes not yet fed, chunks not yet
 * written, uncut bytes) towards the tree's bound. */
static void stream_account(struct mav_wt *wt, struct stream *st)
{
	size_t held = st->bh ? mav_behind_held(st->bh) : mav_writer_held(st->w);

	wt->stream_bytes = wt->stream_bytes - st->held + held;
	st->held = held;
}

/* Start streaming appends to n: its sealed content must be all of it. */
static int stream_start(struct mav_wt *wt, struct node *n)
{
	struct stream *st = calloc(1, sizeof(*st));
	uint8_t *buf = NULL;
	size_t got = 0;
	uint64_t start;
	int rc = st ? 0 : mav_error_set(MAV_ENOMEM, "out of memory");

	if (rc == 0)
		rc = mav_odb_get_blob(&st->old, wt->r, &n->rec.id);
	if (rc == 0 && st->old->size != n->rec.size)
		rc = 1; /* a hole or a cut since the seal: use extents */
	if (rc == 0)
		rc = mav_writer_new(&st->w, wt->r);
	if (rc < 0 || rc == 1)
		goto out;
	mav_writer_set_flags(st->w, MAV_KV_NO_WAL | MAV_KV_ADMITTED);
	/* The old last chunk was cut at the old end: cut it again. */
	st->prefix_n = st->old->n ? st->old->n - 1 : 0;
	start = st->old->n ? mav_blob_chunk_start(st->old, st->prefix_n) : 0;
	st->pos = n->rec.size;
	if (st->pos > start && !(buf = malloc(st->pos - start)))
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	if (rc == 0 && buf)
		rc = mav_repo_read_blob(wt->r, st->old, start, buf,
		                        st->pos - start, &got);
	if (rc == 0 && buf)
		rc = mav_writer_feed(st->w, buf, got);
out:
	free(buf);
	if (rc == 0) {
		n->stream = st;
		stream_account(wt, st);
		return 0;
	}
	if (st) {
		mav_writer_free(st->w);
		mav_odb_blob_release(wt->r, st->old);
		free(st);
	}
	return rc;
}

/* The store refused the stream's bytes (a full disk): drop them, as a
 * failed writeback would, and keep the error for the next fsync. */
static int stream_abandon(struct mav_wt *wt, struct node *n, int rc)
{
	n->rec.size = n->stream->old->size;
	stream_free(wt, n);
	wt_dirty_extents_free(wt, n);
	if (!n->lost && !wt->lost_files++)
		wt->lost_rc = rc;
	n->lost = rc;
	return rc;
}

/* Feed dirty extents that now start at the stream's end (writes that the
 * kernel sent ahead of the ones before them). */
static int stream_drain(struct mav_wt *wt, struct node *n)
{
	struct dirty *d = n->dirty;
	int rc = 0;

	/* The extents follow what the feeder still holds. */
	if (n->stream->bh && d && d->n && d->ext[0].off <= n->stream->pos)
		rc = mav_behind_drain(n->stream->bh);
	while (rc == 0 && d && d->n && d->ext[0].off <= n->stream->pos) {
		struct extent e = d->ext[0];
		/* Bytes below pos were overwritten by the later write that
		 * was just streamed: only the rest of the extent counts. */
		uint64_t skip = n->stream->pos - e.off;

		if (skip < e.len) {
			rc = e.data
			         ? mav_writer_feed(n->stream->w, e.data + skip,
			                           e.len - skip)
			         : mav_writer_feed_zeros(n->stream->w,
			                                 e.len - skip);
			n->stream->pos += e.len - skip;
		}
		dirty_account(wt, d, -(int64_t)ext_bytes(&e));
		free(e.data);
		memmove(d->ext, d->ext + 1, (d->n - 1) * sizeof(*d->ext));
		d->n--;
	}
	if (d && d->n == 0)
		wt_dirty_extents_free(wt, n);
	return rc;
}

/* Hand the stream's writes to the tree's feeders from now on (started with
 * the first stream that needs them). Without them it stays direct. */
static void stream_behind(struct mav_wt *wt, struct stream *st)
{
	if (!wt->feeders && mav_behind_pool_new(&wt->feeders) < 0)
		return;
	mav_behind_start(&st->bh, wt->feeders, st->w);
}

/* Take the write through an append stream if it continues the stream (or
 * starts one at the end of a clean file); *taken says whether it did. */
static int stream_write(struct mav_wt *wt, struct node *n, uint64_t off,
                        const void *buf, size_t len, bool *taken)
{
	int rc = 0;

	*taken = false;
	if (len == 0)
		return 0;
	if (!n->stream) {
		if (n->dirty || off != n->rec.size)
			return 0;
		rc = stream_start(wt, n);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (off != n->stream->pos)
		return 0;
	if (!n->stream->bh && len >= BEHIND_MIN)
		stream_behind(wt, n->stream);
	rc = n->stream->bh ? mav_behind_put(n->stream->bh, buf, len)
	                   : mav_writer_feed(n->stream->w, buf, len);
	if (rc == 0) {
		n->stream->pos += len;
		n->stream->last_write = wt_now();
		*taken = true;
		rc = stream_drain(wt, n);
	}
	stream_account(wt, n->stream);
	return rc < 0 ? stream_abandon(wt, n, rc) : 0;
}

/* The stream's new chunks and its blob id skipped the log: make them
 * durable before a record points at them. In a group seal (grouped) the
 * group flushes once, later (wt->flush_owed, n->unsaved). */
static int stream_durable(struct mav_wt *wt, struct node *n,
                          const struct stream *st, const mav_id *id,
                          bool grouped)
{
	uint64_t start =
	    st->old->n ? mav_blob_chunk_start(st->old, st->prefix_n) : 0;
	int rc;

	if (grouped) {
		wt->flush_owed = true;
		n->unsaved = true;
		return 0;
	}
	if (st->pos - start <= STREAM_RELOG_MAX) {
		rc = mav_repo_relog_blob(wt->r, id, st->prefix_n);
		if (rc <= 0)
			return rc;
	}
	return mav_repo_flush(wt->r);
}

/* Finish the stream: its chunks follow the old prefix in a new blob. */
static int stream_finish(struct mav_wt *wt, struct node *n, bool grouped)
{
	struct stream *st = n->stream;
	uint64_t size;
	mav_id id;
	int rc = st->bh ? mav_behind_drain(st->bh) : 0;

	if (rc == 0)
		rc = mav_writer_finish_splice(st->w, st->old, st->prefix_n,
		                              st->old->n, &id, &size);
	if (rc == 0 && size != st->pos)
		rc = mav_error_set(MAV_ECORRUPT, "streamed size mismatch");
	if (rc == 0)
		rc = stream_durable(wt, n, st, &id, grouped);
	if (rc < 0)
		return stream_abandon(wt, n, rc);
	n->rec.id = id;
	stream_free(wt, n);
	return 0;
}

int wt_seal(struct mav_wt *wt, struct node *n, struct mav_kv_batch *b)
{
	const struct mav_blob *blob = NULL;
	struct mav_kv_batch *own = NULL;
	struct mav_writer *w = NULL;
	struct seal_range sr;
	int64_t resync;
	uint32_t keep = 0;
	uint64_t size;
	bool streamed;
	mav_id id;
	int rc;

	if (n->rec.type != MAV_T_FILE)
		return 0;
	streamed = n->stream || n->unsaved;
	rc = n->stream ? stream_finish(wt, n, false) : 0;
	if (rc == 0)
		rc = mav_odb_get_blob(&blob, wt->r, &n->rec.id);
	if (rc < 0)
		return rc;
	if (!n->dirty && blob->size == n->rec.size) {
		if (streamed)
			goto persist;
		goto out;
	}
	sr = seal_range(n, blob);
	rc = mav_writer_new(&w, wt->r);
	if (rc < 0)
		goto out;
	mav_writer_set_flags(w, MAV_KV_ADMITTED);
	rc = recut(wt, n, blob, &sr, w, &resync, &keep);
	if (rc == 0 && resync >= 0)
		mav_writer_rewind(w, keep);
	if (rc == 0)
		rc = mav_writer_finish_splice(
		    w, blob, sr.s, resync >= 0 ? (uint32_t)resync : blob->n,
		    &id, &size);
	if (rc == 0 && size != n->rec.size)
		rc = mav_error_set(MAV_ECORRUPT, "sealed size mismatch");
	if (rc < 0)
		goto out;
	n->rec.id = id;
	wt_dirty_free(wt, n);
persist:
	if (!b) {
		rc = mav_kv_batch_new(&own);
		b = own;
	}
	if (rc == 0)
		rc = wt_materialize(wt, n, b);
	if (rc == 0)
		rc = wt_put_rec(wt, b, n);
	if (rc == 0 && own)
		rc = wt_write(wt, own, MAV_KV_ADMITTED);
	if (rc == 0)
		n->unsaved = false;
out:
	mav_kv_batch_free(own);
	mav_writer_free(w);
	mav_odb_blob_release(wt->r, blob);
	return rc;
}

/* ---- public calls ---- */

static int read_clean(struct mav_wt *wt, const mav_id *id, uint64_t size,
                      uint64_t off, void *buf, size_t len, size_t *got)
{
	const struct mav_blob *blob = NULL;
	int rc = mav_odb_get_blob(&blob, wt->r, id);

	*got = 0;
	if (rc == 0 && off < blob->size)
		rc = mav_repo_read_blob(wt->r, blob, off, buf, len, got);
	if (rc == 0 && *got < len && off + len <= size) {
		memset((uint8_t *)buf + *got, 0, len - *got); /* hole */
		*got = len;
	}
	mav_odb_blob_release(wt->r, blob);
	return rc;
}

/* Under wt->lock: the file's size and sealed blob for a read at off, len
 * clamped to the size. Seals what is streamed if the read needs it, and
 * a read from the start reads ahead across the directory. */
static int read_begin(struct mav_wt *wt, uint64_t ino, uint64_t off,
                      size_t *len, struct node **np, mav_id *id, uint64_t *size)
{
	struct node *n;
	int rc = wt_get(&n, wt, ino);

	if (rc == 0 && n->rec.type == MAV_T_DIR)
		rc = -EISDIR;
	if (rc == 0 && n->rec.type != MAV_T_FILE)
		rc = -EINVAL;
	if (rc < 0)
		return rc;
	*size = n->rec.size;
	if (off >= *size)
		*len = 0;
	else if (*len > *size - off)
		*len = (size_t)(*size - off);
	if (*len && n->stream) { /* reading back what is streamed */
		rc = wt_seal(wt, n, NULL);
		if (rc < 0)
			return rc;
	}
	*id = n->rec.id; /* the sealed blob, after any seal */
	if (off == 0 && *len && !n->dirty)
		wt_read_ahead_files(wt, n);
	*np = n;
	return 0;
}

ssize_t mav_wt_read(struct mav_wt *wt, uint64_t ino, uint64_t off, void *buf,
                    size_t len)
{
	const struct mav_blob *blob = NULL;
	struct node *n;
	uint64_t size = 0;
	size_t got = 0;
	mav_id id;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = read_begin(wt, ino, off, &len, &n, &id, &size);
	if (rc == 0 && len && n->dirty) {
		rc = mav_odb_get_blob(&blob, wt->r, &n->rec.id);
		if (rc == 0)
			rc = read_merged(wt, n, blob, off, buf, len);
		mav_odb_blob_release(wt->r, blob);
		got = len;
		len = 0;
	}
	wt_unlock(wt);
	if (rc == 0 && len)
		rc = read_clean(wt, &id, size, off, buf, len, &got);
	return rc < 0 ? rc : (ssize_t)got;
}

int mav_wt_read_pinned(struct mav_wt *wt, uint64_t ino, uint64_t off,
                       size_t len, struct mav_pieces *out)
{
	const struct mav_blob *blob = NULL;
	struct node *n;
	uint64_t size;
	bool dirty;
	mav_id id;
	int rc;

	out->r = wt->r;
	out->n = 0;
	out->bytes = 0;
	pthread_mutex_lock(&wt->lock);
	rc = read_begin(wt, ino, off, &len, &n, &id, &size);
	dirty = rc == 0 && n->dirty;
	wt_unlock(wt);
	if (rc < 0 || dirty)
		return rc;
	if (len == 0) /* at or past the end: no blob to fetch */
		return 1;
	rc = mav_odb_get_blob(&blob, wt->r, &id);
	if (rc == 0)
		rc = mav_repo_pin_blob(wt->r, blob, off, len, out);
	mav_odb_blob_release(wt->r, blob);
	return rc;
}

/* SEEK_DATA and SEEK_HOLE. A file with unsealed writes is all data (as
 * POSIX allows); a sealed one has holes where its chunks are the zero
 * chunk, and past its sealed content (a size set beyond it). */
int mav_wt_lseek(struct mav_wt *wt, uint64_t ino, uint64_t off, bool data,
                 uint64_t *out)
{
	const struct mav_blob *b = NULL;
	int64_t at = data ? -ENXIO : (int64_t)off;
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && n->rec.type != MAV_T_FILE)
		rc = -EINVAL;
	if (rc == 0 && off >= n->rec.size)
		rc = -ENXIO;
	if (rc == 0 && wt_unsealed(n))
		at = data ? (int64_t)off : (int64_t)n->rec.size;
	else if (rc == 0 && !mav_id_is_zero(&n->rec.id))
		rc = mav_odb_get_blob(&b, wt->r, &n->rec.id);
	if (rc == 0 && b && off < b->size)
		at = mav_repo_blob_seek(wt->r, b, off, data);
	if (rc == 0 && at > (int64_t)n->rec.size)
		at = data ? -ENXIO : (int64_t)n->rec.size;
	mav_odb_blob_release(wt->r, b);
	wt_unlock(wt);
	if (rc == 0 && at < 0)
		rc = (int)at;
	*out = rc == 0 ? (uint64_t)at : 0;
	return rc;
}

struct held_node {
	int64_t last_write;
	struct node *n;
};

static int held_older(const void *a, const void *b)
{
	const struct held_node *x = a, *y = b;

	return (x->last_write > y->last_write) -
	       (x->last_write < y->last_write);
}

/* Seal v[0..nv) as one group: finish their streams first, then write the
 * records, the first of which flushes once for all the streams
 * (wt_put_rec), where each alone would have flushed or logged its chunks
 * again. A failure leaves the files not yet sealed unsealed. */
static int seal_group(struct mav_wt *wt, const struct held_node *v, size_t nv)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < nv; i++)
		if (v[i].n->stream)
			rc = stream_finish(wt, v[i].n, true);
	for (size_t i = 0; rc == 0 && i < nv; i++)
		rc = wt_seal(wt, v[i].n, NULL);
	return rc;
}

/* What unsealed files hold (lock held). A stream's count was taken at its
 * last write; its feeder has stored most of that since (mav_writer_settle),
 * so every stream is counted again. */
static uint64_t held_now(struct mav_wt *wt)
{
	for (size_t i = 0; i < wt->by_ino.nb; i++)
		for (struct node *n = wt->by_ino.b[i]; n; n = n->next_ino)
			if (n->stream)
				stream_account(wt, n->stream);
	return wt->dirty_bytes + wt->stream_bytes;
}

/* Memory held by unsealed files passed WT_DIRTY_MAX: seal files, least
 * recently written first, until no more than WT_DIRTY_LOW is left, as one
 * group. Dirty extents fill it; streams hold little once their feeders
 * settle them (a copy of 1.5 GB of small files sealed 68 groups of 34
 * files, 2.5 s under the tree's lock, before they did), buffers included
 * (mav_writer_settle). */
static int relieve_pressure(struct mav_wt *wt)
{
	uint64_t held = held_now(wt);
	struct held_node *v = NULL;
	size_t nv = 0, cap = 0, k = 0;
	int rc = 0;

	if (held <= WT_DIRTY_LOW)
		return 0;
	for (size_t i = 0; rc == 0 && i < wt->by_ino.nb; i++)
		for (struct node *n = wt->by_ino.b[i]; rc == 0 && n;
		     n = n->next_ino) {
			if (!n->dirty && !(n->stream && n->stream->held))
				continue;
			rc = mav_grow(&v, &cap, nv, sizeof(*v), 64);
			if (rc == 0)
				v[nv++] = (struct held_node){
				    n->dirty ? n->dirty->last_write
				             : n->stream->last_write,
				    n};
		}
	if (rc == 0 && nv) /* qsort wants a valid pointer even for none */
		qsort(v, nv, sizeof(*v), held_older);
	for (k = 0; rc == 0 && k < nv && held > WT_DIRTY_LOW; k++) {
		struct node *n = v[k].n;

		held -= (n->dirty ? n->dirty->bytes : 0) +
		        (n->stream ? n->stream->held : 0);
	}
	if (rc == 0)
		rc = seal_group(wt, v, k);
	free(v);
	return rc;
}

/* What the tree holds unwritten must still fit on the disk with len more
 * bytes (lock held): a full disk is this write's ENOSPC, as on ext4, not a
 * seal's later, when no writer may be left to hear of it. The store counts
 * what is held twice (log and table file), and a tree holds up to
 * WT_DIRTY_MAX, so before refusing, store all of it and ask again, as ext4
 * writes back its delayed allocations before it answers ENOSPC. Without
 * that, a cp of 1 MB files onto a 512 MiB disk stopped at 172 MB with 270
 * MB free. */
static int room_for(struct mav_wt *wt, uint64_t len)
{
	struct mav_kv *kv = mav_repo_kv(wt->r);
	int count,
	    rc = mav_kv_room(kv, wt->dirty_bytes + wt->stream_bytes + len);

	if (rc != -ENOSPC || held_now(wt) == 0) /* streams' counts go stale */
		return rc;
	rc = wt_seal_all(wt, -1, &count); /* sealed: the counts are exact */
	return rc < 0
	           ? rc
	           : mav_kv_room(kv, wt->dirty_bytes + wt->stream_bytes + len);
}

/* Under wt->lock: file ino, about to change its content, with a record
 * of its own (materialized through *b if it had none). */
static int content_begin(struct mav_wt *wt, uint64_t ino, struct node **np,
                         struct mav_kv_batch **b)
{
	struct node *n;
	int rc = wt_get(&n, wt, ino);

	if (rc == 0 && !wt->branch)
		rc = -EROFS;
	if (rc == 0 && n->rec.type != MAV_T_FILE)
		rc = n->rec.type == MAV_T_DIR ? -EISDIR : -EINVAL;
	if (rc == 0 && !n->persisted) {
		rc = mav_kv_batch_new(b);
		if (rc == 0)
			rc = wt_materialize(wt, n, *b);
		if (rc == 0)
			rc = wt_write(wt, *b, 0);
	}
	*np = n;
	return rc;
}

ssize_t mav_wt_write(struct mav_wt *wt, uint64_t ino, uint64_t off,
                     const void *buf, size_t len)
{
	struct mav_kv_batch *b = NULL;
	bool streamed = false;
	struct node *n;
	int rc;

	if (off >= FILE_MAX || len > FILE_MAX - off)
		return -EFBIG;
	pthread_mutex_lock(&wt->lock);
	rc = content_begin(wt, ino, &n, &b);
	if (rc == 0 && len)
		rc = room_for(wt, len);
	if (rc == 0 && len)
		rc = stream_write(wt, n, off, buf, len, &streamed);
	/* Ahead of the stream: held as an extent until the gap fills.
	 * Into what was streamed: end the stream first. */
	if (rc == 0 && len && !streamed && n->stream && off < n->stream->pos)
		rc = wt_seal(wt, n, NULL);
	if (rc == 0 && len && !streamed)
		rc = dirty_add(wt, n, off, buf, len);
	if (rc == 0 && len) {
		/* The kernel cuts a write() that starts inside a page it has
		 * not cached after that page, and one longer than max_write
		 * after each max_write, and sends the rest next: a snapshot
		 * waits for the rest (see mav_wt_snapshot). */
		wt->splits -= n->split_at != 0;
		n->split_at = (off + len) % WT_PAGE == 0 &&
		                      ((off % WT_PAGE && len < WT_PAGE) ||
		                       len >= WT_SPLIT_MIN)
		                  ? wt_now()
		                  : 0;
		wt->splits += n->split_at != 0;
		if (off + len > n->rec.size)
			n->rec.size = off + len;
		if (!wt->kernel_times)
			n->rec.mtime = n->rec.ctime = wt_now();
	}
	if (rc == 0 && n->dirty && n->dirty->bytes >= NODE_DIRTY_MAX)
		rc = wt_seal(wt, n, NULL);
	if (rc == 0 && wt->dirty_bytes + wt->stream_bytes >= WT_DIRTY_MAX) {
		int was = n->lost, prc = relieve_pressure(wt);

		/* Another file that could not be sealed keeps its error for
		 * its own fsync: this write was taken, and hears of the
		 * failure only if its own file lost data. */
		if (prc < 0 && !was && n->lost)
			rc = prc;
	}
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc < 0 ? rc : (ssize_t)len;
}

int mav_wt_zero(struct mav_wt *wt, uint64_t ino, uint64_t off, uint64_t len)
{
	struct mav_kv_batch *b = NULL;
	struct node *n;
	uint64_t end = 0;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = content_begin(wt, ino, &n, &b);
	if (rc == 0 && off < n->rec.size)
		end = len < n->rec.size - off ? off + len : n->rec.size;
	/* An extent of zeros cannot join what was streamed. */
	if (rc == 0 && off < end && n->stream)
		rc = wt_seal(wt, n, NULL);
	if (rc == 0 && off < end)
		rc = dirty_add(wt, n, off, NULL, (size_t)(end - off));
	if (rc == 0 && off < end && !wt->kernel_times)
		n->rec.mtime = n->rec.ctime = wt_now();
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

int mav_wt_clone(struct mav_wt *wt, uint64_t ino, const mav_id *blob,
                 uint64_t size)
{
	struct mav_kv_batch *b = NULL;
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = content_begin(wt, ino, &n, &b);
	if (rc == 0 && (n->rec.size || wt_unsealed(n)))
		rc = -EOPNOTSUPP;
	if (rc == 0) {
		n->rec.id = *blob;
		n->rec.size = size;
		if (!wt->kernel_times)
			n->rec.mtime = n->rec.ctime = wt_now();
	}
	/* content_begin's batch, if any, has landed: reuse it. */
	if (rc == 0 && b)
		mav_kv_batch_clear(b);
	else if (rc == 0)
		rc = mav_kv_batch_new(&b);
	if (rc == 0)
		rc = wt_put_rec(wt, b, n);
	if (rc == 0)
		rc = wt_write(wt, b, 0);
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

int wt_truncate(struct mav_wt *wt, struct node *n, uint64_t size,
                struct mav_kv_batch *b)
{
	const struct mav_blob *blob = NULL;
	int rc;

	if (size >= FILE_MAX)
		return -EFBIG;
	if (n->stream) {
		rc = wt_seal(wt, n, b);
		if (rc < 0)
			return rc;
	}
	dirty_trim(wt, n, size);
	n->rec.size = size;
	rc = mav_odb_get_blob(&blob, wt->r, &n->rec.id);
	/* Cutting into sealed bytes seals at once, so that growing the file
	 * again shows zeros, not the bytes cut off. */
	if (rc == 0 && size < blob->size)
		rc = wt_seal(wt, n, b);
	mav_odb_blob_release(wt->r, blob);
	return rc;
}

int mav_wt_fsync(struct mav_wt *wt, uint64_t ino)
{
	struct mav_kv_batch *b = NULL;
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && n->lost) { /* writes dropped since the last fsync */
		rc = n->lost;
		n->lost = 0;
	} else if (rc == 0 && !wt->branch)
		rc = 0; /* nothing to make durable in a snapshot */
	else if (rc == 0) {
		rc = mav_kv_batch_new(&b);
		if (rc == 0)
			rc = wt_seal(wt, n, b);
		if (rc < 0)
			n->lost = 0; /* the writes lost are reported now */
		if (rc == 0 && n->persisted)
			rc = wt_put_rec(wt, b, n);
		if (rc == 0)
			rc = wt_write(wt, b, MAV_KV_SYNC);
	}
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

/* Seal every dirty node (older_ns < 0: all); count them. */
int wt_seal_all(struct mav_wt *wt, int64_t older_ns, int *count)
{
	int64_t cutoff = older_ns < 0 ? INT64_MAX : wt_now() - older_ns;
	struct held_node *v = NULL;
	size_t nv = 0, cap = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < wt->by_ino.nb; i++)
		for (struct node *n = wt->by_ino.b[i]; rc == 0 && n;
		     n = n->next_ino)
			if ((n->dirty && n->dirty->last_write <= cutoff) ||
			    (n->stream && n->stream->last_write <= cutoff) ||
			    n->unsaved) {
				rc = mav_grow(&v, &cap, nv, sizeof(*v), 64);
				if (rc == 0)
					v[nv++] = (struct held_node){0, n};
			}
	*count = (int)nv;
	if (rc == 0)
		rc = seal_group(wt, v, nv);
	free(v);
	return rc;
}

int mav_wt_sync(struct mav_wt *wt)
{
	struct mav_kv_batch *b = NULL;
	int count, rc;

	if (!wt->branch)
		return 0;
	pthread_mutex_lock(&wt->lock);
	rc = wt_seal_all(wt, -1, &count);
	if (rc == 0)
		rc = mav_kv_batch_new(&b);
	if (rc == 0)
		rc = wt_put_header(wt, b);
	if (rc == 0)
		rc = wt_write(wt, b, MAV_KV_SYNC | MAV_KV_ADMITTED);
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

uint64_t mav_wt_held(struct mav_wt *wt)
{
	uint64_t held;

	pthread_mutex_lock(&wt->lock);
	held = held_now(wt);
	pthread_mutex_unlock(&wt->lock);
	return held;
}

unsigned mav_wt_take_lost(struct mav_wt *wt, int *first)
{
	unsigned n;

	pthread_mutex_lock(&wt->lock);
	n = wt->lost_files;
	*first = wt->lost_rc;
	wt->lost_files = 0;
	wt->lost_rc = 0;
	pthread_mutex_unlock(&wt->lock);
	return n;
}

int mav_wt_seal_idle(struct mav_wt *wt, int64_t older_ns)
{
	int count = 0, rc;

	if (!wt->branch)
		return 0;
	pthread_mutex_lock(&wt->lock);
	rc = wt_seal_all(wt, older_ns < 0 ? 0 : older_ns, &count);
	wt_unlock(wt);
	return rc < 0 ? rc : count;
}
