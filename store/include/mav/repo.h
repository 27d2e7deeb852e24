/* repo.h - a repository: the database, its config, caches and refs.
 *
 * A repository is a directory holding a RocksDB database (`db/`), a lock, and
 * (while mounted) the daemon's socket. One process opens it for writing; any
 * number of threads in that process share one struct mav_repo. Readers in
 * other processes may open it as a RocksDB secondary (read-only, catching up
 * with the writer on open).
 *
 * Locking: repo->ref_lock serialises ref compare-and-swap; the chunk cache
 * and tree cache have their own locks. No lock is held across calls into the
 * caller. Lock order: wt lock -> ref lock -> cache locks.
 */
#ifndef MAV_REPO_H
#define MAV_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mav/id.h"
#include "mav/kv.h"
#include "mav/object.h"

#define MAV_FORMAT_VERSION 2

struct mav_repo;

struct mav_repo_config {
	uint32_t chunk_min, chunk_avg, chunk_max; /* fixed at init */
	int zstd_level;                           /* 0 = store raw */
	uint64_t reserve_bytes; /* free space kept back from RocksDB */
};

struct mav_repo_options {
	bool secondary; /* read-only beside a running daemon */
	uint64_t
	    chunk_cache_bytes; /* decompressed chunks; 0 = default 256 MiB */
	uint64_t tree_cache_bytes; /* decoded trees; 0 = default 64 MiB */
};

/* Fill cfg with the defaults (16/64/256 KiB, zstd 3, 64 MiB reserve). */
void mav_repo_config_default(struct mav_repo_config *cfg);

/* Create a repository at path (directory created if missing; must be empty or
 * absent: MAV_EEXIST otherwise) with branch "main" and no snapshot. */
int mav_repo_init(const char *path, const struct mav_repo_config *cfg);

/* Open. MAV_ENOTREPO if path is not a repository, MAV_EVERSION if it was
 * written by a newer format, MAV_ELOCKED if another process holds it. */
int mav_repo_open(struct mav_repo **out, const char *path,
                  const struct mav_repo_options *opt);
/* Open over an existing kv (tests: mem/fault backends). With init true, the
 * kv is initialised as a new repository first. Takes ownership of kv. */
int mav_repo_open_kv(struct mav_repo **out, struct mav_kv *kv, bool init,
                     const struct mav_repo_config *cfg);
void mav_repo_close(struct mav_repo *r); /* NULL is a no-op */

const struct mav_repo_config *mav_repo_config(const struct mav_repo *r);
struct mav_kv *mav_repo_kv(struct mav_repo *r);      /* borrowed */
const char *mav_repo_path(const struct mav_repo *r); /* NULL for mem repos */

/* Write a batch (checks nothing else; the kv applies the reserve), after
 * giving the new chunks in it their locations. */
int mav_repo_write(struct mav_repo *r, struct mav_kv_batch *b, unsigned flags);
/* Make everything written so far durable (mav_kv_flush), NO_WAL content
 * included. Use this rather than mav_kv_flush on the repository's kv: it
 * tells the put functions below that content is durable again. */
int mav_repo_flush(struct mav_repo *r);

/* ---- chunks ---- */

#define MAV_CHUNK_KEY_LEN (8 + MAV_ID_LEN)

/* Hash, frame and add the chunk to b unless already stored (idempotent);
 * a new chunk gets its location when b is written (mav_repo_write).
 * flags: those of the write that will carry b. A logged write does not
 * count a chunk as stored while NO_WAL writes wait for a flush: the chunk
 * may be one of them, and would not survive a crash that its referrer
 * survives. */
int mav_repo_put_chunk(struct mav_repo *r, struct mav_kv_batch *b,
                       unsigned flags, mav_id *id_out, const void *data,
                       size_t len);
/* The key of chunk id in MAV_CF_CHUNKS: its location (from
 * MAV_CF_CHUNK_IDS) and its id. MAV_ENOTFOUND if it has none. */
int mav_repo_chunk_key(struct mav_repo *r, const mav_id *id,
                       uint8_t key[MAV_CHUNK_KEY_LEN]);
/* Copy bytes [off, off+len) of chunk id into dst (through the chunk cache).
 * MAV_ENOTFOUND if missing, MAV_ECORRUPT if its frame or id does not verify
 * (the message names the chunk). */
int mav_repo_read_chunk(struct mav_repo *r, const mav_id *id, uint32_t off,
                        void *dst, uint32_t len);
/* Read [off, off+len) of a blob; *nread < len only at end of file. */
int mav_repo_read_blob(struct mav_repo *r, const struct mav_blob *b,
                       uint64_t off, void *dst, size_t len, size_t *nread);
/* Bytes of a blob where the chunk cache holds them, pinned there until
 * mav_pieces_release: a reply can send them without copying them first. */
#define MAV_PIECES_MAX 80 /* a 1 MiB read of 16 KiB chunks takes 65 */
struct mav_cache_entry;
struct mav_pieces {
	struct iovec v[MAV_PIECES_MAX]; /* v[0..n): the bytes, in order */
	struct mav_cache_entry *pin[MAV_PIECES_MAX];
	unsigned n;
	size_t bytes;
	struct mav_repo *r;
};
/* mav_repo_read_blob without the copy: 1 with [off, off+len) in out, 0 if
 * it does not fit in MAV_PIECES_MAX pieces or runs past the end of the
 * blob (read it with mav_repo_read_blob), or an error as it would give.
 * Nothing is pinned unless it returns 1. */
int mav_repo_pin_blob(struct mav_repo *r, const struct mav_blob *b,
                      uint64_t off, size_t len, struct mav_pieces *out);
void mav_pieces_release(struct mav_pieces *p);
/* Start threads that load chunks ahead of sequential readers (a daemon
 * serving reads wants this; one-shot commands need not). Idempotent; call
 * it before reads start. mav_repo_read_blob then queues, before it waits
 * for its first chunk, the rest of its own chunks and, for a read from the
 * start of a file or into the second half of its last chunk, the next
 * ones; a reader that needs a chunk being loaded waits for that load.
 * Two more threads load the next pages of a paged tree after a lookup or
 * listing had to read one from disk, and two the blobs of files that
 * mav_repo_prefetch_file says are next. */
int mav_repo_start_prefetch(struct mav_repo *r, int threads);
/* Hint: chunks i..i+n of b will be read soon (loads them in the background
 * when a prefetch thread runs; otherwise a no-op). */
void mav_repo_prefetch(struct mav_repo *r, const struct mav_blob *b, uint32_t i,
                       uint32_t n);
/* Hint: the file with this blob will be read soon, from its start: loads
 * the blob and its first chunks in the background (a no-op without
 * prefetch threads). */
void mav_repo_prefetch_file(struct mav_repo *r, const mav_id *blob);

/* ---- objects ---- */

/* Add an encoded object to b under its id (BLAKE2b of buf), idempotent;
 * flags as for mav_repo_put_chunk. */
int mav_repo_put_object(struct mav_repo *r, struct mav_kv_batch *b,
                        unsigned flags, mav_id *id_out, const void *buf,
                        size_t len);
/* Raw encoding, malloc'd. MAV_ENOTFOUND / MAV_ECORRUPT (id mismatch). */
int mav_repo_get_object(struct mav_repo *r, const mav_id *id, void **buf,
                        size_t *len);
int mav_repo_get_blob(struct mav_repo *r, const mav_id *id,
                      struct mav_blob **out);
int mav_repo_get_commit(struct mav_repo *r, const mav_id *id,
                        struct mav_commit **out);

/* Holes: a file's chunks that are the one chunk a run of zeros is cut into
 * (writer.c stores a hole as those). lseek's SEEK_DATA (data) or SEEK_HOLE
 * in b from off < b->size: the first byte at or past off in data, or in a
 * hole (b->size: the end of the file counts as one); -ENXIO when no data
 * follows. */
int64_t mav_repo_blob_seek(const struct mav_repo *r, const struct mav_blob *b,
                           uint64_t off, bool data);

/* ---- trees (tree.c) ----
 * A directory is one tree object or, past MAV_TREE_WHOLE_MAX entries, pages
 * under an index. Trees handed out stay valid until
 * mav_repo_tree_release(). */

/* Store a directory's entries (sorted, unique) under *out; a big one as
 * pages cut where the names say, so an edit changes one page. */
int mav_repo_put_tree(struct mav_repo *r, struct mav_kv_batch *b,
                      unsigned flags, mav_id *out, const struct mav_entry *e,
                      uint32_t n);
/* One change to a directory: name gets entry e (its name is name), or
 * goes (e NULL; a name not there is no change). */
struct mav_tree_change {
	const char *name;
	const struct mav_entry *e;
};
/* Store directory base (a tree id; zero: empty) with the changes (sorted
 * by name, unique) as mav_repo_put_tree would store the result, but for a
 * paged directory reading and writing only the pages the changes fall in
 * (and the one or two after, until the cuts agree again) and the index. */
int mav_repo_put_tree_changed(struct mav_repo *r, struct mav_kv_batch *b,
                              unsigned flags, mav_id *out, const mav_id *base,
                              const struct mav_tree_change *ch, size_t nc);
/* The whole directory. Small trees are shared and cached; a paged one is
 * joined into a private list of its entries, which holds its pages in the
 * cache, so the daemon's lookups and listings use the page calls below
 * instead. */
int mav_repo_get_tree(struct mav_repo *r, const mav_id *id,
                      const struct mav_tree **out);
/* The page of tree id that would hold name, and name's index in it (-1 if
 * absent); reads one page at most. */
int mav_repo_tree_find(struct mav_repo *r, const mav_id *id, const char *name,
                       const struct mav_tree **page, int64_t *ix);
/* The page holding entry i of tree id, and the entries before that page;
 * *page NULL once i is past the end. */
int mav_repo_tree_page(struct mav_repo *r, const mav_id *id, uint64_t i,
                       const struct mav_tree **page, uint64_t *first);
void mav_repo_tree_release(struct mav_repo *r, const struct mav_tree *t);
/* The id of the empty blob and of the empty tree (stored by init). */
void mav_repo_empty_blob(mav_id *out);
void mav_repo_empty_tree(mav_id *out);

/* ---- writer: bytes in, chunks stored, blob out ---- */

/* Streams bytes through the chunker. Chunks go into an internal batch that is
 * written (MAV_KV_NO_WAL) whenever it passes a few MiB; finish() writes the
 * rest and the blob object. The caller makes the result durable (a synced
 * write of the ref or inode that points at it, after mav_kv_flush for
 * NO_WAL data). Not thread-safe; one per stream. */
struct mav_writer;
int mav_writer_new(struct mav_writer **out, struct mav_repo *r);
void mav_writer_free(struct mav_writer *w); /* NULL is a no-op */
/* Write flags for the writer's batches (default MAV_KV_NO_WAL). */
void mav_writer_set_flags(struct mav_writer *w, unsigned flags);
/* After a failed feed or finish the writer refuses every later one with
 * the first failure's code: part of the bytes may be lost. */
int mav_writer_feed(struct mav_writer *w, const void *data, size_t len);
/* The same as feeding n zero bytes, and as cheap as a hole should be: the
 * chunks of a long run of zeros are counted, not cut and hashed. */
int mav_writer_feed_zeros(struct mav_writer *w, uint64_t n);
/* Cut every chunk whose end the pending bytes already show (a FastCDC cut
 * depends only on the bytes before it, so more input cannot move it) and
 * store everything cut. What stays held is the tail no cut has been found
 * in. For a stream that has gone quiet: its memory (buffers included) and
 * its seal shrink to that tail. A writer past its first 8 MiB (one whose
 * own thread writes its batches as they fill) is left as it is. */
int mav_writer_settle(struct mav_writer *w);
/* Bytes the writer holds in memory: chunks not yet written, uncut input. */
size_t mav_writer_held(const struct mav_writer *w);
/* Bytes allocated for the writer's buffers (window, batches, chunk
 * lists), whatever they hold. */
size_t mav_writer_memory(const struct mav_writer *w);
/* Chunks cut so far (ids and lengths in order). Borrowed. */
uint32_t mav_writer_chunks(const struct mav_writer *w, const mav_id **ids,
                           const uint32_t **lens);
/* Keep only the first n chunks cut; drop later ones and the pending bytes
 * (a splice that fell back in step with the old boundaries). */
void mav_writer_rewind(struct mav_writer *w, uint32_t n);
/* Cut the pending bytes as the last chunk, store everything and the blob. */
int mav_writer_finish(struct mav_writer *w, mav_id *blob_id, uint64_t *size);
/* Cut the pending bytes as a last chunk, store everything, and store the blob
 * old[0..prefix_n) + chunks cut + old[suffix_from..n): splices an edited
 * region into old (rewind first when the cut fell back in step). */
int mav_writer_finish_splice(struct mav_writer *w, const struct mav_blob *old,
                             uint32_t prefix_n, uint32_t suffix_from,
                             mav_id *blob_id, uint64_t *size);

/* ---- refs ---- */

/* Ref names in the refs family: "b/<branch>", "t/<tag>", "v/<N>". A branch
 * with no snapshot yet holds the zero id. */
int mav_ref_get(mav_id *out, struct mav_repo *r, const char *ref);

struct mav_ref_update {
	const char *ref;      /* "b/main", "t/x", "v/12" */
	const mav_id *old;    /* expected value; NULL = must not exist */
	const mav_id *new_id; /* NULL = delete */
};
/* Apply updates plus batch b (may be NULL) atomically, after checking every
 * old value under the ref lock. MAV_ECONFLICT if any differs. Synced. */
int mav_ref_update(struct mav_repo *r, struct mav_kv_batch *b,
                   const struct mav_ref_update *u, size_t n);

/* Allocate the next version number (persisted in the same batch as the
 * commit via mav_ref_update: pass b and write "v/<N>"). */
int mav_ref_next_version(uint64_t *out, struct mav_repo *r);

/* Branch and tag names: valid path-free names, not starting with '@', '.'
 * or '-'; tags never look like vN. */
bool mav_branch_name_valid(const char *name);
bool mav_tag_name_valid(const char *name);

/* Visit refs of one kind ('b', 't' or 'v') in name order (versions in
 * numeric order). Stops at the first nonzero callback return. */
typedef int (*mav_ref_fn)(void *ctx, const char *name, const mav_id *id);
int mav_ref_list(struct mav_repo *r, char kind, mav_ref_fn fn, void *ctx);

/* Resolve a revision: "vN", a tag, a branch (its last snapshot), or a hex
 * commit-id prefix (>= 4 digits, unique). MAV_EBADREV / MAV_ENOTFOUND. */
int mav_rev_parse(mav_id *out, struct mav_repo *r, const char *rev);

/* Create a branch at commit (zero id: empty). MAV_EEXIST. */
int mav_branch_create(struct mav_repo *r, const char *name,
                      const mav_id *commit);
/* Delete a branch and its working tree. */
int mav_branch_delete(struct mav_repo *r, const char *name);

#endif
