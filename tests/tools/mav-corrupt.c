/* mav-corrupt - damage one stored chunk or object, for tests only.
 *
 *   mav-corrupt REPO REV:PATH [INDEX]
 *   mav-corrupt REPO REV:PATH object
 *
 * Flips one byte in the middle of the stored frame of chunk INDEX (default
 * 0) of the file at PATH in revision REV, or of the stored object of PATH
 * itself (a file's blob, a directory's tree), and prints its id. Tests use
 * it to check that fsck, mavctl and the mount report the damage by name and
 * never return wrong bytes. Uses only the store's public API.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/repo.h"
#include "mav/wt.h"

static int fail(const char *what)
{
	fprintf(stderr, "mav-corrupt: %s: %s\n", what, mav_error_message());
	return 1;
}

/* Content id of REV:PATH. */
static int file_blob(mav_id *out, struct mav_repo *r, const char *spec)
{
	char *copy = strdup(spec), *colon = strchr(copy, ':'), *save, *part;
	struct mav_wt *view = NULL;
	struct mav_attr a = {.ino = MAV_WT_ROOT};
	mav_id commit;
	int rc;

	if (!colon) {
		free(copy);
		return mav_error_set(MAV_EINVAL, "expected REV:PATH");
	}
	*colon = '\0';
	rc = mav_rev_parse(&commit, r, copy);
	if (rc == 0)
		rc = mav_wt_open_commit(&view, r, &commit);
	for (part = strtok_r(colon + 1, "/", &save); rc == 0 && part;
	     part = strtok_r(NULL, "/", &save))
		rc = mav_wt_lookup(&a, view, a.ino, part);
	if (rc == 0)
		rc = mav_wt_content_id(out, NULL, view, a.ino);
	mav_wt_close(view);
	free(copy);
	return rc;
}

/* Flip a byte in the middle of the value of key in cf. */
static int flip(struct mav_repo *r, enum mav_cf cf, const void *key,
                size_t klen)
{
	struct mav_kv_batch *b = NULL;
	uint8_t *v = NULL;
	size_t vlen;
	int rc = mav_kv_get(mav_repo_kv(r), cf, key, klen, (void **)&v, &vlen);

	if (rc == 0) {
		v[vlen / 2] ^= 0x5a;
		rc = mav_kv_batch_new(&b);
	}
	if (rc == 0)
		rc = mav_kv_batch_put(b, cf, key, klen, v, vlen);
	if (rc == 0)
		rc = mav_kv_write(mav_repo_kv(r), b, MAV_KV_SYNC);
	mav_kv_batch_free(b);
	free(v);
	return rc;
}

int main(int argc, char **argv)
{
	struct mav_blob *blob = NULL;
	struct mav_repo *r = NULL;
	char hex[MAV_ID_HEX_LEN + 1];
	uint8_t key[MAV_CHUNK_KEY_LEN];
	bool object = argc > 3 && strcmp(argv[3], "object") == 0;
	long ix = argc > 3 && !object ? atol(argv[3]) : 0;
	mav_id id;

	if (argc < 3) {
		fprintf(stderr,
		        "usage: mav-corrupt REPO REV:PATH [INDEX|object]\n");
		return 2;
	}
	if (mav_repo_open(&r, argv[1], NULL) < 0)
		return fail("open");
	if (file_blob(&id, r, argv[2]) < 0)
		return fail(argv[2]);
	if (object) {
		if (flip(r, MAV_CF_OBJECTS, id.b, MAV_ID_LEN) < 0)
			return fail("object");
	} else {
		if (mav_repo_get_blob(r, &id, &blob))
			return fail(argv[2]);
		if (ix < 0 || (uint32_t)ix >= blob->n) {
			fprintf(stderr, "mav-corrupt: %s has %u chunks\n",
			        argv[2], blob->n);
			return 1;
		}
		id = blob->ids[ix];
		mav_blob_free(blob);
		if (mav_repo_chunk_key(r, &id, key) < 0 ||
		    flip(r, MAV_CF_CHUNKS, key, sizeof(key)) < 0)
			return fail("chunk");
	}
	mav_id_hex(hex, &id);
	printf("%s\n", hex);
	mav_repo_close(r);
	return 0;
}
