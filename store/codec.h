/* codec.h - the one place stored bytes are written and read (private).
 *
 * Every on-disk encoding of the store goes through these two cursors:
 *
 * - struct mav_wbuf: a growable byte buffer. put_* append little-endian
 *   integers and raw bytes. An allocation failure is sticky: later puts do
 *   nothing and mav_wbuf_finish() returns MAV_ENOMEM, so an encoder writes
 *   all its fields and checks once at the end.
 *
 * - struct mav_rbuf: a bounds-checked reader over borrowed bytes. get_*
 *   return 0 or MAV_ECORRUPT (message names the encoding, from `what`, and
 *   the offset). A failure is sticky as well: every later get fails and
 *   yields zeros, so a decoder may read a run of fixed fields and test
 *   once, before it uses any of them.
 *
 * Neither cursor is shared between threads.
 */
#ifndef MAV_CODEC_H
#define MAV_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct mav_wbuf {
	uint8_t *p; /* owned until finish() hands it out */
	size_t len, cap;
	int err; /* 0 or MAV_ENOMEM, sticky */
};

/* Start empty with room for hint bytes (0: allocate on first put). */
void mav_wbuf_init(struct mav_wbuf *w, size_t hint);
/* Make room for n more bytes; 0 or MAV_ENOMEM (also made sticky). */
int mav_wbuf_reserve(struct mav_wbuf *w, size_t n);
/* Hand the bytes to the caller (*out malloc'd, never NULL on success, even
 * when empty) or return the sticky error; the wbuf is released either way. */
int mav_wbuf_finish(struct mav_wbuf *w, uint8_t **out, size_t *outlen);
/* Release without handing out (safe after finish). */
void mav_wbuf_free(struct mav_wbuf *w);

struct mav_rbuf {
	const uint8_t *p; /* borrowed */
	size_t len, pos;
	const char *what; /* encoding name for messages, e.g. "tree" */
	int err;          /* 0 or MAV_ECORRUPT, sticky */
};

void mav_rbuf_init(struct mav_rbuf *r, const void *p, size_t len,
                   const char *what);
static inline size_t mav_rbuf_left(const struct mav_rbuf *r)
{
	return r->len - r->pos;
}
/* Record a corruption found by the decoder itself (bad value, order...):
 * sets the message "<what>: <msg> at byte <pos>", makes it sticky and
 * returns MAV_ECORRUPT. */
int mav_rbuf_fail(struct mav_rbuf *r, const char *msg);
/* MAV_ECORRUPT unless every byte was consumed (encodings are canonical:
 * trailing bytes are corruption), else the sticky error or 0. */
int mav_rbuf_end(struct mav_rbuf *r);

/* Magic + version header shared by all object encodings: 4 magic bytes and
 * a u8 version. Bad magic or version 0: MAV_ECORRUPT; version > max:
 * MAV_EVERSION. */
void mav_wbuf_put_magic(struct mav_wbuf *w, const char magic[4],
                        uint8_t version);
int mav_rbuf_get_magic(struct mav_rbuf *r, const char magic[4],
                       uint8_t max_version, uint8_t *version);

/* Little-endian loads and stores on raw memory (no bounds checks). */
static inline void mav_store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void mav_store_u64(uint8_t *p, uint64_t v)
{
	mav_store_u32(p, (uint32_t)v);
	mav_store_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t mav_load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t mav_load_u64(const uint8_t *p)
{
	return (uint64_t)mav_load_u32(p) | (uint64_t)mav_load_u32(p + 4) << 32;
}

/* The puts and gets are inline: a tree of 1000 entries is some 20,000
 * of them, and as calls into codec.c they were a third of decoding it. */
static inline void mav_wbuf_put_bytes(struct mav_wbuf *w, const void *src,
                                      size_t n)
{
	if (n == 0 || (n > w->cap - w->len && mav_wbuf_reserve(w, n) < 0) ||
	    w->err)
		return;
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void mav_wbuf_put_u8(struct mav_wbuf *w, uint8_t v)
{
	mav_wbuf_put_bytes(w, &v, 1);
}

static inline void mav_wbuf_put_u16(struct mav_wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	mav_wbuf_put_bytes(w, b, 2);
}

static inline void mav_wbuf_put_u32(struct mav_wbuf *w, uint32_t v)
{
	uint8_t b[4];

	mav_store_u32(b, v);
	mav_wbuf_put_bytes(w, b, 4);
}

static inline void mav_wbuf_put_u64(struct mav_wbuf *w, uint64_t v)
{
	uint8_t b[8];

	mav_store_u64(b, v);
	mav_wbuf_put_bytes(w, b, 8);
}

/* take()'s failure: sets the sticky error (unless set) and returns NULL. */
const uint8_t *mav_rbuf_short(struct mav_rbuf *r, size_t n);

/* Check that n bytes remain and return where they start, or NULL. */
static inline const uint8_t *mav_rbuf_take(struct mav_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->pos)
		return mav_rbuf_short(r, n);
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

/* Borrow n bytes in place (*p points into the input). */
static inline int mav_rbuf_view(struct mav_rbuf *r, const uint8_t **p, size_t n)
{
	*p = mav_rbuf_take(r, n);
	return r->err;
}

/* Copy n bytes out. */
static inline int mav_rbuf_get_bytes(struct mav_rbuf *r, void *dst, size_t n)
{
	const uint8_t *p = mav_rbuf_take(r, n);

	if (!p) {
		memset(dst, 0, n);
		return r->err;
	}
	memcpy(dst, p, n);
	return 0;
}

static inline int mav_rbuf_get_u8(struct mav_rbuf *r, uint8_t *v)
{
	const uint8_t *p = mav_rbuf_take(r, 1);

	*v = p ? p[0] : 0;
	return r->err;
}

static inline int mav_rbuf_get_u16(struct mav_rbuf *r, uint16_t *v)
{
	const uint8_t *p = mav_rbuf_take(r, 2);

	*v = p ? (uint16_t)(p[0] | p[1] << 8) : 0;
	return r->err;
}

static inline int mav_rbuf_get_u32(struct mav_rbuf *r, uint32_t *v)
{
	const uint8_t *p = mav_rbuf_take(r, 4);

	*v = p ? mav_load_u32(p) : 0;
	return r->err;
}

static inline int mav_rbuf_get_u64(struct mav_rbuf *r, uint64_t *v)
{
	const uint8_t *p = mav_rbuf_take(r, 8);

	*v = p ? mav_load_u64(p) : 0;
	return r->err;
}

#endif
