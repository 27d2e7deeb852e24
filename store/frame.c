/* frame.c - one chunk as stored: header, payload (raw or zstd), XXH3-64.
 *
 * Encoding decides cheaply whether zstd is worth it. Most bytes in an asset
 * repository are already compressed (JPEG, PNG, MP4, safetensors of
 * quantized weights); compressing them in full only to throw the result
 * away would halve ingest speed. So three 2 KiB windows (start, middle,
 * end) are compressed at level 1 into a buffer of 90% of their size; if
 * zstd cannot fit them, the chunk is stored raw without touching the rest.
 * Otherwise the chunk is compressed at the requested level straight into
 * the frame, with room for strictly fewer bytes than the raw chunk: a
 * result that does not shrink fails in zstd and the chunk goes raw.
 *
 * Decoding trusts nothing: header fields must agree with each other and
 * with the frame length, the checksum is verified before zstd sees a byte,
 * the zstd frame must declare exactly raw_len bytes and produce exactly
 * that many. A raw payload is exactly raw_len bytes and a zstd payload is
 * strictly shorter, so even a flipped codec byte is caught.
 *
 * zstd contexts are per thread and reused (allocating one costs more than
 * compressing a small chunk); they are freed at thread exit by a pthread
 * key destructor. They are the only state kept between calls.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/frame.h"

#define FRAME_MAGIC   "MAVF"
#define FRAME_VERSION 1
#define HEADER_LEN    16
#define SAMPLE_WIN    2048
#define SAMPLE_WINS   3
#define SAMPLE_PCT    90 /* a sample must fit in this % of itself */

struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static pthread_key_t zkey;
static int zkey_err; /* set once under zkey_once */
static pthread_once_t zkey_once = PTHREAD_ONCE_INIT;

static void zctx_free(void *p)
{
	struct zctx *z = p;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zkey_make(void)
{
	zkey_err = pthread_key_create(&zkey, zctx_free);
}

static struct zctx *zctx_get(void)
{
	struct zctx *z;

	pthread_once(&zkey_once, zkey_make);
	if (zkey_err)
		return NULL;
	z = pthread_getspecific(zkey);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	if (pthread_setspecific(zkey, z) != 0) {
		free(z);
		return NULL;
	}
	return z;
}

static ZSTD_CCtx *cctx_get(void)
{
	struct zctx *z = zctx_get();

	if (z && !z->c)
		z->c = ZSTD_createCCtx();
	return z ? z->c : NULL;
}

static ZSTD_DCtx *dctx_get(void)
{
	struct zctx *z = zctx_get();

	if (z && !z->d)
		z->d = ZSTD_createDCtx();
	return z ? z->d : NULL;
}

/* Does a sample of the chunk shrink usefully at level 1? Small chunks are
 * their own sample: the caller just compresses them. */
static bool worth_compressing(ZSTD_CCtx *cc, const uint8_t *data, size_t len)
{
	uint8_t sample[SAMPLE_WIN * SAMPLE_WINS];
	uint8_t dst[SAMPLE_WIN * SAMPLE_WINS * SAMPLE_PCT / 100];
	size_t n;

	if (len <= 4 * SAMPLE_WIN)
		return true;
	memcpy(sample, data, SAMPLE_WIN);
	memcpy(sample + SAMPLE_WIN, data + len / 2 - SAMPLE_WIN / 2,
	       SAMPLE_WIN);
	memcpy(sample + 2 * SAMPLE_WIN, data + len - SAMPLE_WIN, SAMPLE_WIN);
	n = ZSTD_compressCCtx(cc, dst, sizeof(dst), sample, sizeof(sample), 1);
	return !ZSTD_isError(n);
}

/* Compress into dst (capacity len - 1); the payload length, or 0 to store
 * raw. */
static size_t try_compress(ZSTD_CCtx *cc, uint8_t *dst, const uint8_t *data,
                           size_t len, int level)
{
	size_t n;

	if (len < 2 || !worth_compressing(cc, data, len))
		return 0;
	n = ZSTD_compressCCtx(cc, dst, len - 1, data, len, level);
	return ZSTD_isError(n) ? 0 : n;
}

static void put_header(uint8_t *f, int codec, uint32_t raw_len, uint32_t plen)
{
	memcpy(f, FRAME_MAGIC, 4);
	f[4] = FRAME_VERSION;
	f[5] = (uint8_t)codec;
	f[6] = f[7] = 0;
	mav_store_u32(f + 8, raw_len);
	mav_store_u32(f + 12, plen);
}

int mav_frame_encode_into(uint8_t *f, size_t *outlen, const void *data,
                          size_t len, int level)
{
	ZSTD_CCtx *cc = NULL;
	size_t plen = 0;
	int codec = MAV_CODEC_RAW;

	if (len > UINT32_MAX || level < 0 || level > ZSTD_maxCLevel())
		return mav_error_set(MAV_EINVAL,
		                     "frame: bad input (%zu bytes, level %d)",
		                     len, level);
	if (level > 0 && !(cc = cctx_get()))
		return mav_error_set(MAV_ENOMEM, "frame: no zstd context");
	if (cc)
		plen = try_compress(cc, f + HEADER_LEN, data, len, level);
	if (plen) {
		codec = MAV_CODEC_ZSTD;
	} else {
		plen = len;
		if (len)
			memcpy(f + HEADER_LEN, data, len);
	}
	put_header(f, codec, (uint32_t)len, (uint32_t)plen);
	mav_store_u64(f + HEADER_LEN + plen, XXH3_64bits(f + HEADER_LEN, plen));
	*outlen = MAV_FRAME_OVERHEAD + plen;
	return 0;
}

int mav_frame_encode(uint8_t **out, size_t *outlen, const void *data,
                     size_t len, int level)
{
	uint8_t *f =
	    len <= UINT32_MAX ? malloc(MAV_FRAME_OVERHEAD + len) : NULL;
	uint8_t *shrunk;
	int rc;

	*out = NULL;
	if (!f && len <= UINT32_MAX)
		return mav_error_set(MAV_ENOMEM, "frame: %zu bytes", len);
	rc = mav_frame_encode_into(f, outlen, data, len, level);
	if (rc < 0) {
		free(f);
		return rc;
	}
	shrunk =
	    *outlen < MAV_FRAME_OVERHEAD + len ? realloc(f, *outlen) : NULL;
	*out = shrunk ? shrunk : f;
	return 0;
}

struct frame_hdr {
	int codec;
	uint32_t raw_len, plen;
};

static int parse_header(struct frame_hdr *h, const void *frame, size_t flen)
{
	struct mav_rbuf r;
	uint8_t version, codec;
	uint16_t pad;

	*h = (struct frame_hdr){0};
	mav_rbuf_init(&r, frame, flen, "frame");
	if (mav_rbuf_get_magic(&r, FRAME_MAGIC, FRAME_VERSION, &version) < 0)
		return r.err;
	mav_rbuf_get_u8(&r, &codec);
	mav_rbuf_get_u16(&r, &pad);
	mav_rbuf_get_u32(&r, &h->raw_len);
	if (mav_rbuf_get_u32(&r, &h->plen) < 0)
		return r.err;
	h->codec = codec;
	if (codec != MAV_CODEC_RAW && codec != MAV_CODEC_ZSTD)
		return mav_rbuf_fail(&r, "unknown codec");
	if (pad != 0)
		return mav_rbuf_fail(&r, "nonzero reserved field");
	if (flen - HEADER_LEN < 8 || flen - HEADER_LEN - 8 != h->plen)
		return mav_rbuf_fail(&r, "payload length does not match frame");
	if (codec == MAV_CODEC_RAW && h->plen != h->raw_len)
		return mav_rbuf_fail(&r, "raw payload length != raw length");
	if (codec == MAV_CODEC_ZSTD && (h->plen == 0 || h->plen >= h->raw_len))
		return mav_rbuf_fail(&r, "zstd payload does not shrink");
	return 0;
}

int mav_frame_info(uint32_t *raw_len, int *codec, const void *frame,
                   size_t flen)
{
	struct frame_hdr h;
	int rc = parse_header(&h, frame, flen);

	if (rc < 0)
		return rc;
	*raw_len = h.raw_len;
	*codec = h.codec;
	return 0;
}

/* The zstd frame must declare exactly raw_len bytes: checked before the
 * caller's capacity so that a damaged raw_len reads as corruption. */
static int zstd_declared_ok(const uint8_t *payload, const struct frame_hdr *h)
{
	unsigned long long declared =
	    ZSTD_getFrameContentSize(payload, h->plen);

	if (declared == h->raw_len)
		return 0;
	return mav_error_set(MAV_ECORRUPT,
	                     "frame: zstd header declares %lld bytes, frame %u",
	                     (long long)declared, h->raw_len);
}

static int unzstd(void *dst, const uint8_t *payload, const struct frame_hdr *h)
{
	ZSTD_DCtx *dc = dctx_get();
	size_t n;

	if (!dc)
		return mav_error_set(MAV_ENOMEM, "frame: no zstd context");
	n = ZSTD_decompressDCtx(dc, dst, h->raw_len, payload, h->plen);
	if (ZSTD_isError(n))
		return mav_error_set(MAV_ECORRUPT, "frame: zstd: %s",
		                     ZSTD_getErrorName(n));
	if (n != h->raw_len)
		return mav_error_set(MAV_ECORRUPT,
		                     "frame: decoded %zu bytes, expected %u", n,
		                     h->raw_len);
	return 0;
}

int mav_frame_decode(void *dst, size_t cap, size_t *outlen, const void *frame,
                     size_t flen)
{
	const uint8_t *payload;
	struct frame_hdr h;
	uint64_t want, got;
	int rc = parse_header(&h, frame, flen);

	if (rc < 0)
		return rc;
	payload = (const uint8_t *)frame + HEADER_LEN;
	want = mav_load_u64(payload + h.plen);
	got = XXH3_64bits(payload, h.plen);
	if (want != got)
		return mav_error_set(
		    MAV_ECORRUPT,
		    "frame: checksum mismatch (stored %016llx, "
		    "computed %016llx)",
		    (unsigned long long)want, (unsigned long long)got);
	if (h.codec == MAV_CODEC_ZSTD && (rc = zstd_declared_ok(payload, &h)))
		return rc;
	if (cap < h.raw_len)
		return mav_error_set(MAV_EINVAL,
		                     "frame: %zu-byte buffer for %u bytes", cap,
		                     h.raw_len);
	if (h.codec == MAV_CODEC_ZSTD)
		rc = unzstd(dst, payload, &h);
	else if (h.raw_len)
		memcpy(dst, payload, h.raw_len);
	if (rc == 0)
		*outlen = h.raw_len;
	return rc;
}
