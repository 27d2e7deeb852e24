/* repo_internal.h - the repository struct, shared by store/ modules only.
 *
 * Lock order: ref_lock -> cache locks (inside cache.c).
 */
#ifndef MAV_REPO_INTERNAL_H
#define MAV_REPO_INTERNAL_H

#include <pthread.h>

#include "cache.h"
#include "mav/chunker.h"
#include "mav/repo.h"

/* Keys in MAV_CF_META. */
#define MAV_META_FORMAT "format"
#define MAV_META_CONFIG "config"

struct mav_repo {
	char *path; /* NULL for repositories over a caller's kv */
	struct mav_kv *kv;
	struct mav_repo_config cfg;
	struct mav_chunker chunker;
	/* The chunk a run of zeros is cut into (writer.c): its length and id.
	 * Files' holes are made of it. */
	uint32_t zero_len;
	mav_id zero_id;
	struct mav_cache *chunks; /* decompressed chunk bytes */
	struct mav_cache *trees;  /* decoded trees (odb.c: struct holder) */
	struct mav_cache *blobs;  /* decoded blobs (odb.c: struct holder) */
	bool secondary;
	int lock_fd;                        /* flock on REPO/lock; -1 if none */
	struct mav_prefetch *prefetch;      /* NULL until started */
	struct mav_prefetch *tree_prefetch; /* pages of paged trees; ditto */
	struct mav_prefetch
	    *file_prefetch;       /* blobs of files read next; ditto */
	pthread_mutex_t ref_lock; /* ref CAS and next_version */
	uint64_t next_version;    /* under ref_lock */
	/* Atomic: NO_WAL writes made, and how many of them the last
	 * mav_repo_flush covered. Unequal: some content may live only in
	 * memtables, and a logged write must not lean on it. */
	uint64_t nowal_writes, nowal_flushed;
	pthread_mutex_t loc_lock; /* next_loc */
	uint64_t next_loc;        /* next free chunk location; 0: not read */
};

/* odb.c: cache value destructors. */
void mav_odb_holder_free(void *holder);
/* Decoded blob through the blob cache; release when done. */
int mav_odb_get_blob(const struct mav_blob **out, struct mav_repo *r,
                     const mav_id *id);
void mav_odb_blob_release(struct mav_repo *r, const struct mav_blob *b);
/* Bytes of a blob from mav_odb_get_blob in holes (see mav_repo_blob_seek),
 * counted once when it was decoded. */
uint64_t mav_odb_blob_holes(const struct mav_blob *b);
/* Store chunks [from, n) of blob id, and the blob, again through the log
 * (not synced): written without it, they become as durable as a logged
 * write without a memtable flush. 1 (nothing written) for a paged blob. */
int mav_repo_relog_blob(struct mav_repo *r, const mav_id *id, uint32_t from);
/* Tree object id through the tree cache: a "MAVT" tree (*tree) or a paged
 * tree's index (*index); the other is NULL. *missed (if given): it was not
 * in the cache. Release with mav_odb_release. */
int mav_odb_get_tree(const struct mav_tree **tree,
                     const struct mav_tree_index **index, bool *missed,
                     struct mav_repo *r, const mav_id *id);
/* The n entries e (malloc'd), which point into pages[0..npages) (a
 * malloc'd array of held pages), as one tree outside the cache, which
 * owns them all: mav_odb_release releases the pages. NULL (all of them
 * released) when out of memory. */
const struct mav_tree *mav_odb_join_pages(struct mav_repo *r,
                                          const struct mav_tree **pages,
                                          uint32_t npages, struct mav_entry *e,
                                          uint32_t n);
/* mav_repo_put_chunk for a chunk whose id the caller has computed
 * (mav_id_hash of exactly these bytes: nothing checks it here). */
int mav_odb_put_hashed_chunk(struct mav_repo *r, struct mav_kv_batch *b,
                             unsigned flags, const mav_id *id, const void *data,
                             size_t len);
/* Give the new chunks in b their locations (just before b is written). */
int mav_odb_place(struct mav_repo *r, struct mav_kv_batch *b);
/* Release anything the odb handed out (NULL is a no-op). */
void mav_odb_release(struct mav_repo *r, const void *view);

/* tree.c: fn(ctx, e) for every entry of tree id in order, one page in
 * memory at a time (nothing is assembled); a paged tree first hands each
 * page's id to page_fn, if given. Stops at the first nonzero return. */
typedef int (*mav_tree_page_fn)(void *ctx, const mav_id *page);
typedef int (*mav_tree_entry_fn)(void *ctx, const struct mav_entry *e);
int mav_tree_each(struct mav_repo *r, const mav_id *id,
                  mav_tree_page_fn page_fn, mav_tree_entry_fn fn, void *ctx);

/* refs.c: load next_version from the refs family at open. */
int mav_refs_load(struct mav_repo *r);

#endif
