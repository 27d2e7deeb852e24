/* driver.c - run a libFuzzer-style target without libFuzzer.
 *
 * Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput() and may
 * define the hook mav_fuzz_seeds(), which returns valid encodings to start
 * from. This driver feeds the target each seed as is, then N (argv[1],
 * default 10000) inputs derived from them by a fixed pseudo-random
 * sequence (argv[2] picks another sequence): bit flips, truncations, byte
 * insertions and deletions, random and boundary values, spliced seeds, and
 * now and then pure noise. Every input is its own allocation of exactly its
 * size, so AddressSanitizer catches any read past the end. Exit status 0
 * means no target crashed or aborted; a target reports a broken property
 * (say, a decode -> encode that is not byte-identical) by aborting.
 *
 * ctest runs these binaries (CMakeLists.txt), also in the ASan/UBSan build
 * (-DMAV_SANITIZE=ON). To fuzz for real with libFuzzer, build the same
 * target file with clang and without this driver, e.g.:
 *
 *   CC=clang cmake -S . -B build-fuzz -DMAV_UNIT_ONLY=ON \
 *         -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined
 *   cmake --build build-fuzz --target mavstore
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Istore/include \
 *         -Istore tests/fuzz/fuzz_frame.c build-fuzz/libmavstore.a \
 *         $(pkg-config --libs libzstd libxxhash libsodium rocksdb) \
 *         -lpthread -o fuzz_frame
 *   ./fuzz_frame -max_total_time=600 corpus/
 *
 * (the seeds hook is then unused; libFuzzer builds its own corpus.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional: *bufs and *lens get malloc'd arrays of malloc'd seeds; returns the
 * count. The driver frees them. */
int mav_fuzz_seeds(uint8_t ***bufs, size_t **lens) __attribute__((weak));

#define MAX_INPUT (1u << 20)

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* One mutation of buf[0..*len) in place; cap bytes are available. */
static void mutate(uint8_t *buf, size_t *len, size_t cap, const uint8_t *other,
                   size_t olen)
{
	static const uint8_t edge[] = {0, 1, 2, 0x7f, 0x80, 0xfe, 0xff};
	size_t n = *len, at = below(n), k;

	switch (rnd() % 8) {
	case 0: /* flip a bit */
		if (n)
			buf[at] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 1: /* truncate */
		*len = below(n + 1);
		break;
	case 2: /* insert a random byte */
		if (n < cap) {
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = (uint8_t)rnd();
			*len = n + 1;
		}
		break;
	case 3: /* delete a run of up to 16 bytes */
		if (n) {
			k = 1 + below(n - at < 16 ? n - at : 16);
			memmove(buf + at, buf + at + k, n - at - k);
			*len = n - k;
		}
		break;
	case 4: /* overwrite a few bytes with noise */
		for (k = 1 + below(8); k-- && at < n; at++)
			buf[at] = (uint8_t)rnd();
		break;
	case 5: /* a boundary value, where length fields live */
		if (n)
			buf[at] = edge[rnd() % sizeof(edge)];
		break;
	case 6: /* splice the tail of another seed */
		k = below(olen + 1);
		if (at + (olen - k) <= cap) {
			memcpy(buf + at, other + k, olen - k);
			*len = at + (olen - k);
		}
		break;
	default: /* append noise */
		for (k = 1 + below(8); k-- && *len < cap;)
			buf[(*len)++] = (uint8_t)rnd();
		break;
	}
}

static void run_one(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		abort();
	memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

int main(int argc, char **argv)
{
	unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	uint8_t **seeds = NULL, *buf = malloc(MAX_INPUT), empty = 0;
	size_t *lens = NULL, nseeds = 0, len;

	rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
	if (!buf)
		return 2;
	if (mav_fuzz_seeds)
		nseeds = (size_t)mav_fuzz_seeds(&seeds, &lens);
	for (size_t i = 0; i < nseeds; i++)
		run_one(seeds[i], lens[i]);
	for (unsigned long it = 0; it < iters; it++) {
		size_t s = below(nseeds), o = below(nseeds);
		const uint8_t *src = nseeds ? seeds[s] : &empty;
		size_t slen = nseeds ? lens[s] : 0;

		len = slen < MAX_INPUT ? slen : MAX_INPUT;
		memcpy(buf, src, len);
		if (rnd() % 16 == 0) { /* pure noise */
			len = below(512);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
		}
		for (unsigned m = 1 + below(4); m--;)
			mutate(buf, &len, MAX_INPUT, nseeds ? seeds[o] : &empty,
			       nseeds ? lens[o] : 0);
		run_one(buf, len);
	}
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i]);
	free(seeds);
	free(lens);
	free(buf);
	printf("%lu inputs from %zu seeds: no crash\n", iters, nseeds);
	return 0;
}
