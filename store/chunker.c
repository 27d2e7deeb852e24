/* chunker.c - FastCDC with normalized chunking (Xia et al., USENIX ATC '16).
 *
 * Gear hash: h = (h << 1) + gear[byte]. Bit j of h depends only on the last
 * j + 1 bytes, so the judgement masks take their bits from the top 48 bits
 * of h, spread evenly: every mask bit sees a window of at least 17 bytes and
 * most see far more (the paper's "spread" masks).
 *
 * Normalized chunking level 2: before avg bytes the mask has avg_bits + 2
 * bits (a cut is 4x less likely), after it avg_bits - 2 (4x more likely),
 * which pulls chunk sizes toward avg. Nothing is hashed before min
 * (cut-point skipping): the first min bytes can never be a boundary.
 *
 * The gear table is a pure function of a fixed seed:
 *   gear[i] = XXH3_64bits_withSeed(&(uint8_t){i}, 1, MAV_GEAR_SEED)
 * filled once per process (pthread_once); it never changes afterwards, so
 * readers need no lock. Changing the seed or the masks changes every cut
 * point of every repository: both are part of the format (FORMAT.md).
 */
#include <pthread.h>

#include <xxhash.h>

#include "mav/chunker.h"
#include "mav/error.h"

#define MAV_GEAR_SEED 0x6d61762d67656172ull /* "mav-gear" */
#define MASK_SPAN     48 /* mask bits live in h's top 48 bits */

static uint64_t gear[256]; /* written once under gear_once, then read-only */
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_fill(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint8_t b = (uint8_t)i;

		gear[i] = XXH3_64bits_withSeed(&b, 1, MAV_GEAR_SEED);
	}
}

/* A mask of `bits` ones spread evenly over bits 63 .. 64 - MASK_SPAN. */
static uint64_t spread_mask(unsigned bits)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < bits; i++)
		m |= 1ull << (63 - i * MASK_SPAN / bits);
	return m;
}

static unsigned log2_exact(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

int mav_chunker_init(struct mav_chunker *c, uint32_t min, uint32_t avg,
                     uint32_t max)
{
	unsigned bits;

	if (min < 64 || min >= avg || avg >= max || max > 64u * 1024 * 1024)
		return mav_error_set(MAV_EINVAL,
		                     "chunker: need 64 <= min < avg < max <= "
		                     "64 MiB (got %u/%u/%u)",
		                     min, avg, max);
	if (avg & (avg - 1))
		return mav_error_set(
		    MAV_EINVAL, "chunker: avg %u is not a power of two", avg);
	pthread_once(&gear_once, gear_fill);
	bits = log2_exact(avg); /* 7 .. 25 given the bounds above */
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_s = spread_mask(bits + 2);
	c->mask_l = spread_mask(bits - 2);
	return 0;
}

/* First i in [from, to) whose hash matches no bit of mask, as a chunk
 * length (i + 1), or 0. *hp carries the hash across the two phases. */
static inline size_t scan(uint64_t *hp, const uint8_t *buf, size_t from,
                          size_t to, uint64_t mask)
{
	uint64_t h = *hp;
	size_t i = from;

	/* Two bytes per round trip of the loop; each byte is still tested. */
	for (; i + 1 < to; i += 2) {
		h = (h << 1) + gear[buf[i]];
		if (!(h & mask))
			return i + 1;
		h = (h << 1) + gear[buf[i + 1]];
		if (!(h & mask))
			return i + 2;
	}
	for (; i < to; i++) {
		h = (h << 1) + gear[buf[i]];
		if (!(h & mask))
			return i + 1;
	}
	*hp = h;
	return 0;
}

size_t mav_chunker_cut(const struct mav_chunker *c, const uint8_t *buf,
                       size_t len)
{
	size_t end = len < c->max ? len : c->max;
	size_t normal = end < c->avg ? end : c->avg;
	uint64_t h = 0;
	size_t n;

	if (len <= c->min)
		return len;
	pthread_once(&gear_once, gear_fill); /* init ran it; this is a load */
	n = scan(&h, buf, c->min, normal, c->mask_s);
	if (!n)
		n = scan(&h, buf, normal, end, c->mask_l);
	return n ? n : end;
}
