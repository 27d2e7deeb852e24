/* codec.c - little-endian writer and bounds-checked reader.
 *
 * Both cursors keep a sticky error so that encoders and decoders read like
 * the format they implement: a list of fields, one check. The reader never
 * looks past len and never hands out a pointer to bytes it has not checked;
 * on failure it yields zeros, which decoders may carry a little further but
 * must not act on (they test r->err or a get's result before allocating or
 * indexing with a decoded value).
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mav/error.h"

void mav_wbuf_init(struct mav_wbuf *w, size_t hint)
{
	w->p = NULL;
	w->len = 0;
	w->cap = 0;
	w->err = 0;
	if (hint)
		mav_wbuf_reserve(w, hint);
}

int mav_wbuf_reserve(struct mav_wbuf *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 64;
	uint8_t *p;

	if (w->err)
		return w->err;
	if (n <= w->cap - w->len)
		return 0;
	if (n > SIZE_MAX / 2 - w->len)
		goto fail;
	while (cap - w->len < n)
		cap *= 2;
	p = realloc(w->p, cap);
	if (!p)
		goto fail;
	w->p = p;
	w->cap = cap;
	return 0;
fail:
	w->err = mav_error_set(MAV_ENOMEM,
	                       "encoder: cannot grow buffer to "
	                       "%zu bytes",
	                       w->len + n);
	return w->err;
}

void mav_wbuf_put_bytes(struct mav_wbuf *w, const void *src, size_t n)
{
	if (n == 0 || mav_wbuf_reserve(w, n) < 0)
		return;
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

void mav_wbuf_put_u8(struct mav_wbuf *w, uint8_t v)
{
	mav_wbuf_put_bytes(w, &v, 1);
}

void mav_wbuf_put_u16(struct mav_wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	mav_wbuf_put_bytes(w, b, 2);
}

void mav_wbuf_put_u32(struct mav_wbuf *w, uint32_t v)
{
	uint8_t b[4];

	mav_store_u32(b, v);
	mav_wbuf_put_bytes(w, b, 4);
}

void mav_wbuf_put_u64(struct mav_wbuf *w, uint64_t v)
{
	uint8_t b[8];

	mav_store_u64(b, v);
	mav_wbuf_put_bytes(w, b, 8);
}

void mav_wbuf_put_magic(struct mav_wbuf *w, const char magic[4],
                        uint8_t version)
{
	mav_wbuf_put_bytes(w, magic, 4);
	mav_wbuf_put_u8(w, version);
}

int mav_wbuf_finish(struct mav_wbuf *w, uint8_t **out, size_t *outlen)
{
	int rc = w->err;

	if (!rc && !w->p)
		rc = mav_wbuf_reserve(w, 1); /* empty but non-NULL */
	if (rc < 0) {
		mav_wbuf_free(w);
		return rc;
	}
	*out = w->p;
	*outlen = w->len;
	w->p = NULL;
	w->len = w->cap = 0;
	return 0;
}

void mav_wbuf_free(struct mav_wbuf *w)
{
	free(w->p);
	w->p = NULL;
	w->len = w->cap = 0;
}

void mav_rbuf_init(struct mav_rbuf *r, const void *p, size_t len,
                   const char *what)
{
	static const uint8_t empty[1];

	/* Never do arithmetic on NULL, even with a zero offset. */
	r->p = p ? p : empty;
	r->len = p ? len : 0;
	r->pos = 0;
	r->what = what;
	r->err = 0;
}

int mav_rbuf_fail(struct mav_rbuf *r, const char *msg)
{
	if (r->err)
		return r->err; /* keep the first message: it names the cause */
	r->err = mav_error_set(MAV_ECORRUPT, "%s: %s at byte %zu", r->what, msg,
	                       r->pos);
	return r->err;
}

/* Check that n bytes remain and return where they start, or NULL. */
static const uint8_t *take(struct mav_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->pos) {
		r->err = mav_error_set(MAV_ECORRUPT,
		                       "%s: truncated at byte %zu (need %zu, "
		                       "have %zu)",
		                       r->what, r->pos, n, r->len - r->pos);
		return NULL;
	}
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

int mav_rbuf_view(struct mav_rbuf *r, const uint8_t **p, size_t n)
{
	*p = take(r, n);
	return r->err;
}

int mav_rbuf_get_bytes(struct mav_rbuf *r, void *dst, size_t n)
{
	const uint8_t *p = take(r, n);

	if (!p) {
		memset(dst, 0, n);
		return r->err;
	}
	memcpy(dst, p, n);
	return 0;
}

int mav_rbuf_get_u8(struct mav_rbuf *r, uint8_t *v)
{
	const uint8_t *p = take(r, 1);

	*v = p ? p[0] : 0;
	return r->err;
}

int mav_rbuf_get_u16(struct mav_rbuf *r, uint16_t *v)
{
	const uint8_t *p = take(r, 2);

	*v = p ? (uint16_t)(p[0] | p[1] << 8) : 0;
	return r->err;
}

int mav_rbuf_get_u32(struct mav_rbuf *r, uint32_t *v)
{
	const uint8_t *p = take(r, 4);

	*v = p ? mav_load_u32(p) : 0;
	return r->err;
}

int mav_rbuf_get_u64(struct mav_rbuf *r, uint64_t *v)
{
	const uint8_t *p = take(r, 8);

	*v = p ? mav_load_u64(p) : 0;
	return r->err;
}

int mav_rbuf_end(struct mav_rbuf *r)
{
	if (!r->err && r->pos != r->len)
		return mav_rbuf_fail(r, "trailing bytes");
	return r->err;
}

int mav_rbuf_get_magic(struct mav_rbuf *r, const char magic[4],
                       uint8_t max_version, uint8_t *version)
{
	const uint8_t *m;

	*version = 0;
	if (mav_rbuf_view(r, &m, 4) < 0 || mav_rbuf_get_u8(r, version) < 0)
		return r->err;
	if (memcmp(m, magic, 4) != 0) {
		r->pos = 0;
		return mav_rbuf_fail(r, "bad magic");
	}
	if (*version == 0)
		return mav_rbuf_fail(r, "version 0");
	if (*version > max_version) {
		r->err = mav_error_set(MAV_EVERSION,
		                       "%s: format version %u is newer than "
		                       "this build (%u)",
		                       r->what, *version, max_version);
		return r->err;
	}
	return 0;
}
