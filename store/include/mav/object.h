/* object.h - blobs, trees and commits: their in-memory form and encodings.
 *
 * Every encoding starts with a 4-byte magic and a 1-byte version and uses
 * little-endian integers. Decoders treat input as hostile: any truncation,
 * overflow, bad magic, unsorted or duplicate tree names returns MAV_ECORRUPT;
 * a newer version returns MAV_EVERSION. Decoded objects are one allocation
 * each (free with the matching _free; NULL is a no-op). Ids are BLAKE2b-256
 * of the encoding (for commits: of the encoding without the signature).
 */
#ifndef MAV_OBJECT_H
#define MAV_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mav/id.h"

/* ---- blobs: a file's content as an ordered chunk list ---- */

struct mav_blob {
	uint64_t size;  /* total bytes */
	uint32_t n;     /* chunks */
	mav_id *ids;    /* n chunk ids */
	uint64_t *ends; /* n cumulative end offsets; ends[n-1] == size */
};

/* Encoding: "MAVB" v1 | u64 size | u32 n | n x (id[32], u32 len). */
int mav_blob_encode(uint8_t **out, size_t *outlen, const mav_id *ids,
                    const uint32_t *lens, uint32_t n);
int mav_blob_decode(struct mav_blob **out, const void *buf, size_t len);
void mav_blob_free(struct mav_blob *b);
/* Index of the chunk holding byte off (O(log n)); -1 if off >= size. */
int64_t mav_blob_locate(const struct mav_blob *b, uint64_t off);
/* Start offset of chunk i. */
uint64_t mav_blob_chunk_start(const struct mav_blob *b, uint32_t i);
/* An empty blob of n chunks and size bytes in one allocation (ids and ends
 * for the caller to fill), or NULL when out of memory. */
struct mav_blob *mav_blob_alloc(uint64_t size, uint32_t n);

/* A paged blob: the chunk list of a file of more than MAV_BLOB_FLAT_MAX
 * chunks is stored as pages, each an ordinary "MAVB" blob, under a
 * "MAVP" index. Pages end after a chunk whose id says so (see
 * mav_blob_page_end), so an edit rewrites the page it falls in and the
 * index, not the whole list; unchanged pages keep their ids. */
#define MAV_BLOB_FLAT_MAX 2048

struct mav_blob_page {
	mav_id id;     /* the page: a "MAVB" blob */
	uint32_t n;    /* its chunks, at least one */
	uint64_t size; /* its bytes, at least one */
};

struct mav_blob_index {
	uint64_t size; /* the whole file */
	uint32_t n;    /* its chunks */
	uint32_t npages;
	struct mav_blob_page *p;
};

/* Encoding: "MAVP" v1 | u64 size | u32 n | u32 npages | npages x (id[32],
 * u32 n, u64 size); size and n are the sums of the pages'. */
int mav_blob_index_encode(uint8_t **out, size_t *outlen,
                          const struct mav_blob_page *p, uint32_t npages);
int mav_blob_index_decode(struct mav_blob_index **out, const void *buf,
                          size_t len);
void mav_blob_index_free(struct mav_blob_index *x);
/* End (exclusive) of the page that starts at chunk from of ids[0..n). */
uint32_t mav_blob_page_end(const mav_id *ids, uint32_t from, uint32_t n);

/* ---- trees: one directory ---- */

enum mav_type {
	MAV_T_FILE = 1,
	MAV_T_DIR = 2,
	MAV_T_SYMLINK = 3,
	MAV_T_FIFO = 4, /* named pipe: no content */
	MAV_T_SOCK = 5, /* Unix socket's name: no content */
};

struct mav_xattr {
	char *name; /* full name, e.g. "user.mav.license" */
	uint8_t *value;
	uint32_t len;
};

struct mav_entry {
	char *name;    /* any bytes but '/' and NUL; not "." or ".." */
	uint8_t type;  /* enum mav_type */
	uint32_t mode; /* permission bits only (07777) */
	uint32_t uid, gid;
	uint64_t size; /* file bytes; symlink target length; dir 0 */
	int64_t mtime_ns;
	uint32_t nlink;   /* hard links to this file within the commit */
	uint64_t link_id; /* same nonzero value on every name of one file */
	mav_id id;        /* file: blob id; dir: tree id; symlink: zero */
	char *target;     /* symlink target, else NULL */
	uint32_t nxattrs;
	struct mav_xattr *xattrs; /* sorted by name */
};

struct mav_tree {
	uint32_t n;
	struct mav_entry *e; /* sorted by name (memcmp order), unique */
};

/* Encoding: "MAVT" v1 | u32 n | n entries (see FORMAT.md).
 * Entries must be sorted and unique: MAV_EINVAL otherwise. */
int mav_tree_encode(uint8_t **out, size_t *outlen, const struct mav_entry *e,
                    uint32_t n);
int mav_tree_decode(struct mav_tree **out, const void *buf, size_t len);
void mav_tree_free(struct mav_tree *t);
/* Index of name, or -1 (binary search). */
int64_t mav_tree_find(const struct mav_tree *t, const char *name);
/* Check a name: non-empty, <= 255 bytes, no '/', not "." or "..". */
bool mav_name_valid(const char *name);

/* ---- paged trees: a big directory as pages under an index ---- */

/* A directory of more than MAV_TREE_WHOLE_MAX entries is stored as pages
 * (each an ordinary "MAVT" tree of consecutive entries, at most
 * MAV_TREE_PAGE_MAX) named by an index, so a reader loads only the page it
 * needs and a change rewrites only its page (store/FORMAT.md). */
#define MAV_TREE_WHOLE_MAX 256
#define MAV_TREE_PAGE_MAX  1024

struct mav_tree_page {
	mav_id id;      /* the page: a "MAVT" tree */
	uint32_t n;     /* its entries, at least one */
	uint32_t start; /* entries in the pages before it */
	char *first;    /* its first name */
};

struct mav_tree_index {
	uint32_t n; /* entries of the whole directory */
	uint32_t npages;
	struct mav_tree_page *p; /* first names strictly increasing */
};

/* Encoding: "MAVI" v1 | u32 n | u32 npages | npages x (id[32], u32 n,
 * u16 first_len, first name); start is implied. */
int mav_tree_index_encode(uint8_t **out, size_t *outlen,
                          const struct mav_tree_page *p, uint32_t npages);
int mav_tree_index_decode(struct mav_tree_index **out, const void *buf,
                          size_t len);
void mav_tree_index_free(struct mav_tree_index *x);
/* The page that would hold name, or -1 if name sorts before them all. */
int64_t mav_tree_index_find(const struct mav_tree_index *x, const char *name);
/* The page holding entry i (i < x->n). */
uint32_t mav_tree_index_page_of(const struct mav_tree_index *x, uint32_t i);

/* ---- commits ---- */

#define MAV_MAX_PARENTS 8
#define MAV_SIG_LEN     64
#define MAV_KEY_LEN     32

struct mav_commit {
	mav_id root;
	uint32_t nparents;
	mav_id parents[MAV_MAX_PARENTS];
	char *branch;
	uint64_t version;                /* the N of vN */
	uint8_t author_key[MAV_KEY_LEN]; /* Ed25519 public key, zero if none */
	char *author;                    /* display name */
	int64_t time_ns;
	char *message;
	bool has_sig;
	uint8_t sig[MAV_SIG_LEN]; /* Ed25519 over the commit id */
};

/* Encoding: "MAVC" v1 | body | u8 has_sig | [sig]. The id covers everything
 * but the trailing signature part. */
int mav_commit_encode(uint8_t **out, size_t *outlen,
                      const struct mav_commit *c);
int mav_commit_decode(struct mav_commit **out, const void *buf, size_t len);
void mav_commit_free(struct mav_commit *c);
int mav_commit_id(mav_id *out, const struct mav_commit *c);

/* Kind of an encoded object from its magic: 'B', 'P' (a paged blob's
 * index), 'T', 'I' (a paged tree's index), 'C' or 0. */
char mav_object_kind(const void *buf, size_t len);

#endif
