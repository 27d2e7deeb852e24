/* fuzz_frame.c - mav_frame_info / mav_frame_decode on hostile frames.
 *
 * The first input byte is a mode: with bit 0 set, the trailing checksum is
 * recomputed before decoding, so mutated payloads get past XXH3 and reach
 * zstd (as a forged frame would). Properties checked beyond "no crash":
 * info and decode agree on the verdict for the header; a successful decode
 * yields exactly raw_len bytes; and re-encoding what was decoded gives a
 * frame that decodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/frame.h"

#define MAX_RAW (1u << 20)

static void check_reencode(const uint8_t *raw, size_t n)
{
	uint8_t *f, *back = malloc(n ? n : 1);
	size_t flen, outlen;

	if (!back || mav_frame_encode(&f, &flen, raw, n, 3) != 0)
		abort();
	if (mav_frame_decode(back, n, &outlen, f, flen) != 0 || outlen != n ||
	    (n && memcmp(back, raw, n) != 0))
		abort();
	free(f);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *f, *dst = NULL;
	size_t flen = size ? size - 1 : 0, outlen = 0;
	uint32_t raw_len = 0;
	int codec, rc_info, rc;

	if (size == 0)
		return 0;
	f = malloc(flen ? flen : 1);
	if (!f)
		abort();
	memcpy(f, data + 1, flen);
	if ((data[0] & 1) && flen >= MAV_FRAME_OVERHEAD)
		mav_store_u64(f + flen - 8, XXH3_64bits(f + 16, flen - 24));
	rc_info = mav_frame_info(&raw_len, &codec, f, flen);
	if (rc_info == 0 && raw_len <= MAX_RAW)
		dst = malloc(raw_len ? raw_len : 1);
	rc = mav_frame_decode(dst, dst ? raw_len : 0, &outlen, f, flen);
	if (rc_info < 0 && rc != rc_info)
		abort(); /* decode must refuse what info refuses, alike */
	if (rc == 0) {
		if (!dst || outlen != raw_len)
			abort();
		check_reencode(dst, outlen);
	}
	free(dst);
	free(f);
	return 0;
}

static void add(uint8_t **bufs, size_t *lens, int *n, const void *raw,
                size_t len, int level, uint8_t mode)
{
	uint8_t *f;
	size_t flen;

	if (mav_frame_encode(&f, &flen, raw, len, level) != 0)
		abort();
	bufs[*n] = malloc(flen + 1);
	bufs[*n][0] = mode;
	memcpy(bufs[*n] + 1, f, flen);
	lens[(*n)++] = flen + 1;
	free(f);
}

int mav_fuzz_seeds(uint8_t ***bufs, size_t **lens)
{
	static const char words[] = "the rock texture of a frame with chunks ";
	uint8_t *text = malloc(20000), *noise = malloc(3000);
	uint64_t s = 1;
	int n = 0;

	*bufs = malloc(12 * sizeof(**bufs));
	*lens = malloc(12 * sizeof(**lens));
	for (size_t i = 0; i < 20000; i++)
		text[i] =
		    (uint8_t)words[(i * 7 + i / 13) % (sizeof(words) - 1)];
	for (size_t i = 0; i < 3000; i++)
		noise[i] =
		    (uint8_t)((s = s * 6364136223846793005ull + 1) >> 56);
	for (uint8_t mode = 0; mode < 2; mode++) {
		add(*bufs, *lens, &n, text, 0, 3, mode);
		add(*bufs, *lens, &n, text, 300, 3, mode);
		add(*bufs, *lens, &n, text, 20000, 3, mode);
		add(*bufs, *lens, &n, text, 20000, 19, mode);
		add(*bufs, *lens, &n, noise, 3000, 3, mode);
		add(*bufs, *lens, &n, text, 5000, 0, mode);
	}
	free(text);
	free(noise);
	return n;
}
