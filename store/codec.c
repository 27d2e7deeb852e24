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

const uint8_t *mav_rbuf_short(struct mav_rbuf *r, size_t n)
{
	if (!r->err)
		r->err = mav_error_set(MAV_ECORRUPT,
		                       "%s: truncated at byte %zu (need %zu, "
		                       "have %zu)",
		                       r->what, r->pos, n, r->len - r->pos);
	return NULL;
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
