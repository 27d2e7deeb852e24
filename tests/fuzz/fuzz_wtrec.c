/* fuzz_wtrec.c - working-tree inode records (wt_rec_decode) on hostile bytes.
 *
 * Beyond "no crash": a record that decodes re-encodes to the same bytes
 * (the encoding is canonical).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wt_rec rec;
	uint8_t *enc = NULL;
	size_t len;

	if (wt_rec_decode(&rec, data, size) != 0)
		return 0;
	if (wt_rec_encode(&enc, &len, &rec) != 0 || len != size ||
	    memcmp(enc, data, size) != 0)
		abort();
	free(enc);
	wt_rec_clear(&rec);
	return 0;
}

int mav_fuzz_seeds(uint8_t ***bufs, size_t **lens)
{
	static char name[] = "user.mav.license", target[] = "../t";
	static uint8_t val[] = "CC-BY-4.0";
	struct mav_xattr x = {.name = name, .value = val, .len = 9};
	struct wt_rec recs[2] = {
	    {.type = MAV_T_FILE,
	     .mode = 0644,
	     .nlink = 1,
	     .size = 5,
	     .nx = 1,
	     .x = &x},
	    {.type = MAV_T_SYMLINK, .mode = 0777, .nlink = 1, .target = target},
	};

	*bufs = calloc(2, sizeof(**bufs));
	*lens = calloc(2, sizeof(**lens));
	for (int i = 0; i < 2; i++)
		if (wt_rec_encode(&(*bufs)[i], &(*lens)[i], &recs[i]) != 0)
			abort();
	return 2;
}
