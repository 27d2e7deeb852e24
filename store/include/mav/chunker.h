/* chunker.h - FastCDC content-defined chunking (normalized chunking).
 *
 * A pure function of the bytes: no I/O, no allocation, no state between
 * calls. Hand it a buffer that starts at a chunk boundary; it answers where
 * the first chunk ends. The gear table is derived deterministically from XXH3
 * with a fixed seed, so cut points are the same on every machine and build.
 *
 * Parameters are fixed per repository at init (defaults 16/64/256 KiB).
 */
#ifndef MAV_CHUNKER_H
#define MAV_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define MAV_CHUNK_MIN_DEFAULT (16u * 1024)
#define MAV_CHUNK_AVG_DEFAULT (64u * 1024)
#define MAV_CHUNK_MAX_DEFAULT (256u * 1024)

struct mav_chunker {
	uint32_t min, avg, max;
	uint64_t mask_s; /* harder mask used before avg (more bits) */
	uint64_t mask_l; /* easier mask used after avg (fewer bits) */
};

/* Validates 64 <= min < avg < max <= 64 MiB, avg a power of two.
 * MAV_EINVAL otherwise. */
int mav_chunker_init(struct mav_chunker *c, uint32_t min, uint32_t avg,
                     uint32_t max);

/* Length of the first chunk of buf[0..len).
 * - len <= min: returns len.
 * - otherwise returns n with min < n <= min(len, max) where a boundary was
 *   found, or min(len, max) if none was.
 * If the result equals len and len < max, no boundary was found in the data
 * given: the caller supplies more bytes, or at end of input takes the rest
 * as the final chunk. */
size_t mav_chunker_cut(const struct mav_chunker *c, const uint8_t *buf,
                       size_t len);

#endif
