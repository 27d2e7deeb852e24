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

struct mav_wbuf {
	uint8_t *p; /* owned until finish() hands it out */
	size_t len, cap;
	int err; /* 0 or MAV_ENOMEM, sticky */
};

/* Start empty with room for hint bytes (0: allocate on first put). */
void mav_wbuf_init(struct mav_wbuf *w, size_t hint);
/* Make room for n more bytes; 0 or MAV_ENOMEM (also made sticky). */
int mav_wbuf_reserve(struct mav_wbuf *w, size_t n);
void mav_wbuf_put_u8(struct mav_wbuf *w, uint8_t v);
void mav_wbuf_put_u16(struct mav_wbuf *w, uint16_t v);
void mav_wbuf_put_u32(struct mav_wbuf *w, uint32_t v);
void mav_wbuf_put_u64(struct mav_wbuf *w, uint64_t v);
void mav_wbuf_put_bytes(struct mav_wbuf *w, const void *src, size_t n);
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
int mav_rbuf_get_u8(struct mav_rbuf *r, uint8_t *v);
int mav_rbuf_get_u16(struct mav_rbuf *r, uint16_t *v);
int mav_rbuf_get_u32(struct mav_rbuf *r, uint32_t *v);
int mav_rbuf_get_u64(struct mav_rbuf *r, uint64_t *v);
/* Copy n bytes out. */
int mav_rbuf_get_bytes(struct mav_rbuf *r, void *dst, size_t n);
/* Borrow n bytes in place (*p points into the input). */
int mav_rbuf_view(struct mav_rbuf *r, const uint8_t **p, size_t n);
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

#endif
