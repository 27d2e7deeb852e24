/* fuzz_object.c - the blob, tree, commit, tree-index and blob-index decoders
 * on hostile input.
 *
 * The first input byte picks the decoder (mod 5: blob, tree, commit, tree
 * index, blob index); the rest is the encoding. Encodings are canonical, so
 * beyond "no crash" every successful decode must re-encode to exactly the input
 * bytes, and the lookups over the decoded object must agree with its arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/object.h"

/* rc, enc, elen: the result of re-encoding, computed before the call
 * (argument evaluation order is unspecified). */
static void same_bytes(int rc, uint8_t *enc, size_t elen, const uint8_t *in,
                       size_t len)
{
	if (rc != 0 || elen != len || memcmp(enc, in, len) != 0)
		abort();
	free(enc);
}

static void blob(const uint8_t *in, size_t len)
{
	struct mav_blob *b;
	uint32_t *lens;
	uint8_t *enc = NULL;
	size_t elen = 0;
	int rc;

	if (mav_blob_decode(&b, in, len) != 0)
		return;
	lens = malloc((b->n ? b->n : 1) * sizeof(*lens));
	for (uint32_t i = 0; i < b->n; i++) {
		lens[i] = (uint32_t)(b->ends[i] - mav_blob_chunk_start(b, i));
		if (mav_blob_locate(b, b->ends[i] - 1) != i ||
		    mav_blob_locate(b, mav_blob_chunk_start(b, i)) != i)
			abort();
	}
	if (mav_blob_locate(b, b->size) != -1)
		abort();
	rc = mav_blob_encode(&enc, &elen, b->ids, lens, b->n);
	same_bytes(rc, enc, elen, in, len);
	free(lens);
	mav_blob_free(b);
}

static void tree(const uint8_t *in, size_t len)
{
	struct mav_tree *t;
	uint8_t *enc = NULL;
	size_t elen = 0;
	int rc;

	if (mav_tree_decode(&t, in, len) != 0)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		if (!mav_name_valid(t->e[i].name) ||
		    mav_tree_find(t, t->e[i].name) != i)
			abort();
	rc = mav_tree_encode(&enc, &elen, t->e, t->n);
	same_bytes(rc, enc, elen, in, len);
	mav_tree_free(t);
}

static void commit(const uint8_t *in, size_t len)
{
	struct mav_commit *c;
	uint8_t *enc = NULL;
	size_t elen = 0;
	int rc;
	mav_id id;

	if (mav_commit_decode(&c, in, len) != 0)
		return;
	if (mav_commit_id(&id, c) != 0)
		abort();
	rc = mav_commit_encode(&enc, &elen, c);
	same_bytes(rc, enc, elen, in, len);
	mav_commit_free(c);
}

static void tree_index(const uint8_t *in, size_t len)
{
	struct mav_tree_index *x;
	uint8_t *enc = NULL;
	size_t elen = 0;
	int rc;

	if (mav_tree_index_decode(&x, in, len) != 0)
		return;
	for (uint32_t k = 0; k < x->npages; k++)
		if (!mav_name_valid(x->p[k].first) ||
		    mav_tree_index_find(x, x->p[k].first) != k ||
		    mav_tree_index_page_of(x, x->p[k].start) != k ||
		    mav_tree_index_page_of(x, x->p[k].start + x->p[k].n - 1) !=
		        k)
			abort();
	rc = mav_tree_index_encode(&enc, &elen, x->p, x->npages);
	same_bytes(rc, enc, elen, in, len);
	mav_tree_index_free(x);
}

static void blob_index(const uint8_t *in, size_t len)
{
	struct mav_blob_index *x;
	uint8_t *enc = NULL;
	size_t elen = 0;
	uint64_t size = 0, n = 0;
	int rc;

	if (mav_blob_index_decode(&x, in, len) != 0)
		return;
	for (uint32_t k = 0; k < x->npages; k++) {
		if (x->p[k].n == 0 || x->p[k].size < x->p[k].n)
			abort();
		size += x->p[k].size;
		n += x->p[k].n;
	}
	if (size != x->size || n != x->n)
		abort();
	rc = mav_blob_index_encode(&enc, &elen, x->p, x->npages);
	same_bytes(rc, enc, elen, in, len);
	mav_blob_index_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 5) {
	case 0:
		blob(data + 1, size - 1);
		break;
	case 1:
		tree(data + 1, size - 1);
		break;
	case 2:
		commit(data + 1, size - 1);
		break;
	case 3:
		tree_index(data + 1, size - 1);
		break;
	default:
		blob_index(data + 1, size - 1);
		break;
	}
	return 0;
}

static void add(uint8_t **bufs, size_t *lens, int *n, uint8_t kind,
                uint8_t *enc, size_t len)
{
	bufs[*n] = malloc(len + 1);
	bufs[*n][0] = kind;
	memcpy(bufs[*n] + 1, enc, len);
	lens[(*n)++] = len + 1;
	free(enc);
}

static void seed_tree(uint8_t **bufs, size_t *lens, int *n)
{
	static struct mav_xattr xa[2] = {
	    {"user.mav.license", (uint8_t *)"CC-BY-4.0", 9},
	    {"user.mav.source", (uint8_t *)"camera", 6},
	};
	struct mav_entry e[3] = {
	    {.name = "a.png",
	     .type = MAV_T_FILE,
	     .mode = 0644,
	     .size = 9,
	     .mtime_ns = 12345,
	     .nlink = 2,
	     .link_id = 7,
	     .nxattrs = 2,
	     .xattrs = xa},
	    {.name = "dir", .type = MAV_T_DIR, .mode = 0755, .nlink = 1},
	    {.name = "ln",
	     .type = MAV_T_SYMLINK,
	     .mode = 0777,
	     .size = 5,
	     .target = "a.png",
	     .nlink = 1},
	};
	uint8_t *enc;
	size_t len;

	mav_id_hash(&e[0].id, "a", 1);
	mav_id_hash(&e[1].id, "d", 1);
	if (mav_tree_encode(&enc, &len, e, 3) != 0)
		abort();
	add(bufs, lens, n, 1, enc, len);
	if (mav_tree_encode(&enc, &len, e, 0) != 0)
		abort();
	add(bufs, lens, n, 1, enc, len);
}

static void seed_commit(uint8_t **bufs, size_t *lens, int *n)
{
	struct mav_commit c = {.nparents = 2,
	                       .branch = "main",
	                       .version = 3,
	                       .author = "Ada",
	                       .time_ns = -1,
	                       .message = "first\nsecond",
	                       .has_sig = true};
	uint8_t *enc;
	size_t len;

	memset(c.sig, 0x5c, sizeof(c.sig));
	memset(c.author_key, 0xab, sizeof(c.author_key));
	if (mav_commit_encode(&enc, &len, &c) != 0)
		abort();
	add(bufs, lens, n, 2, enc, len);
	c.has_sig = false;
	c.nparents = 0;
	if (mav_commit_encode(&enc, &len, &c) != 0)
		abort();
	add(bufs, lens, n, 2, enc, len);
}

static void seed_index(uint8_t **bufs, size_t *lens, int *n)
{
	struct mav_tree_page p[3] = {{.n = 300, .first = "a"},
	                             {.n = 1, .first = "m.png"},
	                             {.n = 1024, .first = "z"}};
	uint8_t *enc;
	size_t len;

	mav_id_hash(&p[1].id, "p", 1);
	if (mav_tree_index_encode(&enc, &len, p, 3) != 0)
		abort();
	add(bufs, lens, n, 3, enc, len);
}

static void seed_blob_index(uint8_t **bufs, size_t *lens, int *n)
{
	struct mav_blob_page p[2] = {{.n = 600, .size = 40000000},
	                             {.n = 1, .size = 1}};
	uint8_t *enc;
	size_t len;

	mav_id_hash(&p[0].id, "p0", 2);
	mav_id_hash(&p[1].id, "p1", 2);
	if (mav_blob_index_encode(&enc, &len, p, 2) != 0)
		abort();
	add(bufs, lens, n, 4, enc, len);
}

int mav_fuzz_seeds(uint8_t ***bufs, size_t **lens)
{
	mav_id ids[3];
	uint32_t clens[3] = {100, 1, 65536};
	uint8_t *enc;
	size_t len;
	int n = 0;

	*bufs = malloc(9 * sizeof(**bufs));
	*lens = malloc(9 * sizeof(**lens));
	for (int i = 0; i < 3; i++)
		mav_id_hash(&ids[i], &i, sizeof(i));
	if (mav_blob_encode(&enc, &len, ids, clens, 3) != 0)
		abort();
	add(*bufs, *lens, &n, 0, enc, len);
	if (mav_blob_encode(&enc, &len, ids, clens, 0) != 0)
		abort();
	add(*bufs, *lens, &n, 0, enc, len);
	seed_tree(*bufs, *lens, &n);
	seed_commit(*bufs, *lens, &n);
	seed_index(*bufs, *lens, &n);
	seed_blob_index(*bufs, *lens, &n);
	return n;
}
