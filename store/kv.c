/* kv.c - write batches and the dispatchers in front of every kv backend.
 *
 * A batch is one growing byte buffer of records laid end to end:
 *
 *   header (cf, kind, key length, value length) | key bytes | value bytes
 *
 * so building a batch of thousands of chunk puts costs one amortised
 * realloc per doubling and no per-op allocation. Backends walk it in order
 * with mav_kv_batch_foreach().
 *
 * Ownership convention for backends: the struct mav_kv a backend returns is
 * embedded in its own state (kv->self points at that state), and ops->close
 * frees all of it, so mav_kv_close() just calls close.
 *
 * A get may pass val == NULL (and vlen == NULL) to ask only whether the key
 * exists: every backend here answers 0 or MAV_ENOTFOUND without copying the
 * value.
 */
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/kv.h"

enum { OP_PUT = 1, OP_DEL = 2 };

struct rec {
	size_t klen;
	size_t vlen;
	unsigned char cf;
	unsigned char kind;
};

struct mav_kv_batch {
	unsigned char *buf;
	size_t len, cap;
	size_t count;
	size_t bytes; /* keys + values */
};

/* Records start at multiples of this so headers can be read in place. */
#define REC_ALIGN _Alignof(struct rec)

static size_t align_up(size_t n)
{
	return (n + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

int mav_kv_batch_new(struct mav_kv_batch **out)
{
	struct mav_kv_batch *b = calloc(1, sizeof(*b));

	*out = b;
	if (!b)
		return mav_error_set(MAV_ENOMEM, "out of memory for a batch");
	return 0;
}

void mav_kv_batch_free(struct mav_kv_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

void mav_kv_batch_clear(struct mav_kv_batch *b)
{
	b->len = 0;
	b->count = 0;
	b->bytes = 0;
}

void mav_kv_batch_release(struct mav_kv_batch *b)
{
	mav_kv_batch_clear(b);
	free(b->buf);
	b->buf = NULL;
	b->cap = 0;
}

size_t mav_kv_batch_capacity(const struct mav_kv_batch *b)
{
	return b->cap;
}

static int batch_grow(struct mav_kv_batch *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	unsigned char *p;

	if (need <= b->cap)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return mav_error_set(MAV_ENOMEM, "batch too large");
		cap *= 2;
	}
	p = realloc(b->buf, cap);
	if (!p)
		return mav_error_set(MAV_ENOMEM, "out of memory for a batch");
	b->buf = p;
	b->cap = cap;
	return 0;
}

/* Room for an op with a value of up to vmax bytes, its header and key
 * written; *val is where the value goes. mav_kv_batch_commit completes it. */
static int batch_reserve(struct mav_kv_batch *b, enum mav_cf cf, int kind,
                         const void *key, size_t klen, size_t vmax, void **val)
{
	struct rec r = {.klen = klen, .cf = cf, .kind = kind};
	unsigned char *p;
	int rc;

	*val = NULL;
	if ((unsigned)cf >= MAV_CF_COUNT)
		return mav_error_set(MAV_EINVAL, "bad column family %d", cf);
	if (klen > SIZE_MAX / 4 || vmax > SIZE_MAX / 4)
		return mav_error_set(MAV_EINVAL, "key or value too large");
	if (align_up(sizeof(r) + klen + vmax) > SIZE_MAX - b->len)
		return mav_error_set(MAV_ENOMEM, "batch too large");
	rc = batch_grow(b, b->len + align_up(sizeof(r) + klen + vmax));
	if (rc < 0)
		return rc;
	p = b->buf + b->len;
	memcpy(p, &r, sizeof(r));
	if (klen)
		memcpy(p + sizeof(r), key, klen);
	*val = p + sizeof(r) + klen;
	return 0;
}

int mav_kv_batch_reserve(struct mav_kv_batch *b, enum mav_cf cf,
                         const void *key, size_t klen, size_t vmax, void **val)
{
	return batch_reserve(b, cf, OP_PUT, key, klen, vmax, val);
}

void mav_kv_batch_commit(struct mav_kv_batch *b, size_t vlen)
{
	struct rec r;

	memcpy(&r, b->buf + b->len, sizeof(r));
	r.vlen = vlen;
	memcpy(b->buf + b->len, &r, sizeof(r));
	b->len += align_up(sizeof(r) + r.klen + vlen);
	b->count++;
	b->bytes += r.klen + vlen;
}

int mav_kv_batch_put(struct mav_kv_batch *b, enum mav_cf cf, const void *key,
                     size_t klen, const void *val, size_t vlen)
{
	void *v;
	int rc = batch_reserve(b, cf, OP_PUT, key, klen, vlen, &v);

	if (rc == 0 && vlen)
		memcpy(v, val, vlen);
	if (rc == 0)
		mav_kv_batch_commit(b, vlen);
	return rc;
}

int mav_kv_batch_del(struct mav_kv_batch *b, enum mav_cf cf, const void *key,
                     size_t klen)
{
	void *v;
	int rc = batch_reserve(b, cf, OP_DEL, key, klen, 0, &v);

	if (rc == 0)
		mav_kv_batch_commit(b, 0);
	return rc;
}

size_t mav_kv_batch_count(const struct mav_kv_batch *b)
{
	return b->count;
}

size_t mav_kv_batch_bytes(const struct mav_kv_batch *b)
{
	return b->bytes;
}

int mav_kv_batch_edit(struct mav_kv_batch *b, mav_kv_batch_edit_fn fn,
                      void *ctx)
{
	size_t off = 0;

	while (off < b->len) {
		unsigned char *p = b->buf + off;
		struct rec r;
		int rc;

		memcpy(&r, p, sizeof(r));
		/* A put of an empty value still needs a non-NULL pointer. */
		rc = fn(ctx, (enum mav_cf)r.cf, p + sizeof(r), r.klen,
		        r.kind == OP_PUT ? p + sizeof(r) + r.klen : NULL,
		        r.vlen);
		if (rc)
			return rc;
		off += align_up(sizeof(r) + r.klen + r.vlen);
	}
	return 0;
}

struct visit {
	mav_kv_batch_fn fn;
	void *ctx;
};

static int visit(void *ctx, enum mav_cf cf, void *key, size_t klen, void *val,
                 size_t vlen)
{
	struct visit *v = ctx;

	return v->fn(v->ctx, cf, key, klen, val, vlen);
}

int mav_kv_batch_foreach(const struct mav_kv_batch *b, mav_kv_batch_fn fn,
                         void *ctx)
{
	struct visit v = {fn, ctx};

	/* Read only: the walk is shared with edit. */
	return mav_kv_batch_edit((struct mav_kv_batch *)b, visit, &v);
}

/* ---- dispatchers ---- */

static int check_cf(enum mav_cf cf)
{
	if ((unsigned)cf >= MAV_CF_COUNT)
		return mav_error_set(MAV_EINVAL, "bad column family %d", cf);
	return 0;
}

int mav_kv_get(struct mav_kv *kv, enum mav_cf cf, const void *key, size_t klen,
               void **val, size_t *vlen)
{
	int rc = check_cf(cf);

	if (val)
		*val = NULL;
	if (vlen)
		*vlen = 0;
	if (rc < 0)
		return rc;
	return kv->ops->get(kv->self, cf, key, klen, val, vlen);
}

int mav_kv_get_view(struct mav_kv *kv, enum mav_cf cf, const void *key,
                    size_t klen, mav_kv_view_fn fn, void *ctx)
{
	void *val = NULL;
	size_t len = 0;
	int rc;

	if (kv->ops->get_view)
		return kv->ops->get_view(kv->self, cf, key, klen, fn, ctx);
	rc = kv->ops->get(kv->self, cf, key, klen, &val, &len);
	if (rc == 0)
		rc = fn(ctx, val, len);
	free(val);
	return rc;
}

int mav_kv_probe_view(struct mav_kv *kv, enum mav_cf cf, const void *key,
                      size_t klen, mav_kv_view_fn fn, void *ctx)
{
	if (kv->ops->probe_view)
		return kv->ops->probe_view(kv->self, cf, key, klen, fn, ctx);
	return mav_kv_get_view(kv, cf, key, klen, fn, ctx);
}

int mav_kv_write(struct mav_kv *kv, const struct mav_kv_batch *b,
                 unsigned flags)
{
	if (flags & ~(unsigned)(MAV_KV_SYNC | MAV_KV_NO_WAL | MAV_KV_ADMITTED |
	                        MAV_KV_FREES))
		return mav_error_set(MAV_EINVAL, "unknown write flags %#x",
		                     flags);
	/* A sync without a log has nothing to sync: RocksDB rejects it. */
	if ((flags & MAV_KV_SYNC) && (flags & MAV_KV_NO_WAL))
		return mav_error_set(MAV_EINVAL,
		                     "MAV_KV_SYNC and MAV_KV_NO_WAL together");
	return kv->ops->write(kv->self, b, flags);
}

int mav_kv_iter_new(struct mav_kv_iter **out, struct mav_kv *kv, enum mav_cf cf)
{
	int rc = check_cf(cf);

	*out = NULL;
	if (rc < 0)
		return rc;
	return kv->ops->iter(kv->self, cf, out);
}

int mav_kv_flush(struct mav_kv *kv)
{
	return kv->ops->flush(kv->self);
}

int mav_kv_compact(struct mav_kv *kv)
{
	return kv->ops->compact ? kv->ops->compact(kv->self) : 0;
}

int mav_kv_room(struct mav_kv *kv, uint64_t bytes)
{
	return kv->ops->room ? kv->ops->room(kv->self, bytes) : 0;
}

uint64_t mav_kv_cache_bytes(struct mav_kv *kv)
{
	return kv->ops->cache_bytes ? kv->ops->cache_bytes(kv->self) : 0;
}

void mav_kv_close(struct mav_kv *kv)
{
	if (kv)
		kv->ops->close(kv->self);
}

void mav_kv_iter_seek(struct mav_kv_iter *it, const void *key, size_t klen)
{
	it->ops->seek(it, key, klen);
}

void mav_kv_iter_seek_last(struct mav_kv_iter *it)
{
	it->ops->seek_last(it);
}

bool mav_kv_iter_valid(const struct mav_kv_iter *it)
{
	return it->ops->valid(it);
}

void mav_kv_iter_next(struct mav_kv_iter *it)
{
	it->ops->next(it);
}

const void *mav_kv_iter_key(const struct mav_kv_iter *it, size_t *klen)
{
	return it->ops->key(it, klen);
}

const void *mav_kv_iter_value(const struct mav_kv_iter *it, size_t *vlen)
{
	return it->ops->value(it, vlen);
}

int mav_kv_iter_status(const struct mav_kv_iter *it)
{
	return it->ops->status(it);
}

void mav_kv_iter_free(struct mav_kv_iter *it)
{
	if (it)
		it->ops->free(it);
}
