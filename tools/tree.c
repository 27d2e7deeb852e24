/* tree.c - resolving REV[:PATH] in a snapshot and streaming blobs out.
 *
 * Streaming goes chunk by chunk so that a chunk whose id is the id of that
 * many zero bytes is never read or decompressed: a 10 GB sparse file is a
 * few thousand identical zero chunks, and export turns them back into holes
 * with lseek while cat writes them from a zero buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mav/error.h>

#include "tree.h"

#define IO_BYTES (1u << 20)

void tree_node_release(struct mav_repo *r, struct tree_node *n)
{
	if (n->holder)
		mav_repo_tree_release(r, n->holder);
	mav_commit_free(n->commit);
	memset(n, 0, sizeof(*n));
}

/* Step from directory n into component name. */
static int step(struct mav_repo *r, struct tree_node *n, const char *name,
                const char *path)
{
	const struct mav_tree *t = NULL;
	int64_t i;
	int rc;

	if (n->type != MAV_T_DIR)
		return mav_error_set(-ENOTDIR, "'%s': not a directory", path);
	rc = mav_repo_tree_find(r, &n->id, name, &t, &i);
	if (rc)
		return rc;
	if (i < 0) {
		mav_repo_tree_release(r, t);
		return mav_error_set(MAV_ENOTFOUND,
		                     "'%s': no such file or "
		                     "directory",
		                     path);
	}
	if (n->holder)
		mav_repo_tree_release(r, n->holder);
	n->holder = t;
	n->e = &t->e[i];
	n->id = n->e->id;
	n->type = n->e->type;
	return 0;
}

static int walk_path(struct mav_repo *r, struct tree_node *n, const char *path)
{
	char *copy = strdup(path), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	for (tok = strtok_r(copy, "/", &save); tok && rc == 0;
	     tok = strtok_r(NULL, "/", &save))
		rc = step(r, n, tok, path);
	free(copy);
	return rc;
}

int tree_resolve(struct cli *c, struct tree_node *out, struct mav_repo *r,
                 const char *spec)
{
	const char *colon = strchr(spec, ':');
	char *rev =
	    colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
	mav_id commit;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!rev)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	rc = cli_rev(c, &commit, r, rev);
	free(rev);
	if (rc == 0)
		rc = mav_repo_get_commit(r, &commit, &out->commit);
	if (rc)
		return rc;
	out->id = out->commit->root;
	out->type = MAV_T_DIR;
	if (colon)
		rc = walk_path(r, out, colon + 1);
	if (rc)
		tree_node_release(r, out);
	return rc;
}

/* ---- blob streaming ---- */

struct zero_id {
	uint32_t len;
	mav_id id;
};

/* Is chunk (id, len) all zero bytes? Remembers the last length seen. */
static bool zero_chunk(struct zero_id *z, const mav_id *id, uint32_t len)
{
	void *zeros;

	if (z->len != len) {
		zeros = calloc(1, len ? len : 1);
		if (!zeros)
			return false;
		mav_id_hash(&z->id, zeros, len);
		z->len = len;
		free(zeros);
	}
	return mav_id_cmp(&z->id, id) == 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return mav_error_set(-errno, "write: %s",
			                     strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy [off, end) of the blob through buf. */
static int copy_range(struct mav_repo *r, const struct mav_blob *b, int fd,
                      uint8_t *buf, uint64_t off, uint64_t end)
{
	size_t got;
	int rc;

	while (off < end) {
		size_t want = end - off < IO_BYTES ? end - off : IO_BYTES;

		rc = mav_repo_read_blob(r, b, off, buf, want, &got);
		if (rc)
			return rc;
		if (got == 0)
			return mav_error_set(MAV_ECORRUPT, "blob ends early");
		rc = write_all(fd, buf, got);
		if (rc)
			return rc;
		off += got;
	}
	return 0;
}

static int zero_range(int fd, uint8_t *zeros, uint64_t n, bool sparse)
{
	int rc = 0;

	if (sparse) {
		if (lseek(fd, (off_t)n, SEEK_CUR) < 0)
			return mav_error_set(-errno, "lseek: %s",
			                     strerror(errno));
		return 0;
	}
	while (rc == 0 && n > 0) {
		size_t k = n < IO_BYTES ? n : IO_BYTES;

		rc = write_all(fd, zeros, k);
		n -= k;
	}
	return rc;
}

static int stream(struct mav_repo *r, const struct mav_blob *b, int fd,
                  uint64_t off, uint64_t end, bool sparse)
{
	struct zero_id z = {UINT32_MAX, {{0}}};
	uint8_t *buf = malloc(IO_BYTES), *zeros = calloc(1, IO_BYTES);
	uint64_t start = 0;
	int rc = 0;

	if (!buf || !zeros)
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
	/* A blob without a chunk list (inlined) is copied as is. */
	if (rc == 0 && b->n == 0)
		rc = copy_range(r, b, fd, buf, off, end);
	for (uint32_t i = 0; rc == 0 && i < b->n && off < end; i++) {
		uint64_t cend = b->ends[i], lo, hi;

		lo = off > start ? off : start;
		hi = end < cend ? end : cend;
		if (lo < hi) {
			if (zero_chunk(&z, &b->ids[i],
			               (uint32_t)(cend - start)))
				rc = zero_range(fd, zeros, hi - lo, sparse);
			else
				rc = copy_range(r, b, fd, buf, lo, hi);
		}
		start = cend;
	}
	free(buf);
	free(zeros);
	return rc;
}

int tree_write_blob(struct mav_repo *r, const mav_id *id, int fd, uint64_t off,
                    uint64_t len, bool sparse)
{
	struct mav_blob *b = NULL;
	uint64_t end;
	int rc = mav_repo_get_blob(r, id, &b);

	if (rc)
		return rc;
	end = b->size;
	if (off < end && len < end - off)
		end = off + len;
	rc = off < end ? stream(r, b, fd, off, end, sparse) : 0;
	mav_blob_free(b);
	return rc;
}
