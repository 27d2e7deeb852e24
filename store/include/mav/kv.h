/* kv.h - the key-value seam under the store.
 *
 * Everything mav keeps lives in one key-value database split into column
 * families (see store/FORMAT.md). The store never talks to RocksDB directly:
 * it calls a small vtable, so unit tests run on an in-memory backend and crash
 * tests on a fault-injecting wrapper that fails the Nth call or forgets every
 * write that was not synced.
 *
 * Keys and values are byte strings compared with memcmp order (shorter key
 * first on a common prefix). All backends are safe for concurrent use by many
 * threads; iterators see a consistent point-in-time view of one column family.
 *
 * Errors: MAV_ENOTFOUND (get of a missing key), -ENOSPC (write would eat the
 * free-space reserve), -EIO, MAV_ECORRUPT, MAV_ELOCKED (database held by
 * another process), MAV_ENOMEM.
 */
#ifndef MAV_KV_H
#define MAV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mav_cf {
	MAV_CF_META = 0, /* repository config, format version, counters */
	MAV_CF_CHUNKS,   /* location + chunk id -> frame (compressed) */
	MAV_CF_OBJECTS,  /* blob/tree/commit id -> encoding */
	MAV_CF_REFS,     /* branches, tags, version numbers */
	MAV_CF_WT, /* working trees: inodes, overlay entries, dirty sets */
	MAV_CF_CHUNK_IDS, /* chunk id -> location */
	MAV_CF_COUNT
};

/* Write flags. */
enum {
	MAV_KV_SYNC = 1 << 0, /* fsync the log before returning */
	MAV_KV_NO_WAL =
	    1 << 1, /* skip the log; durable only after mav_kv_flush */
	/* Stores data a writer was already told fits (room() said so when
	 * it took it): may use half the free-space reserve, as deletes may,
	 * so that estimates off by a little do not lose it. */
	MAV_KV_ADMITTED = 1 << 2,
	/* A removal (unlink, rmdir, reset): how space is won back on a full
	 * disk, so it may use half the reserve too; it puts little. */
	MAV_KV_FREES = 1 << 3,
};

struct mav_kv_batch;
struct mav_kv_iter;

struct mav_kv_iter_ops {
	void (*seek)(struct mav_kv_iter *it, const void *key, size_t klen);
	void (*seek_last)(struct mav_kv_iter *it); /* at the greatest key */
	bool (*valid)(const struct mav_kv_iter *it);
	void (*next)(struct mav_kv_iter *it);
	const void *(*key)(const struct mav_kv_iter *it, size_t *klen);
	const void *(*value)(const struct mav_kv_iter *it, size_t *vlen);
	int (*status)(
	    const struct mav_kv_iter *it); /* 0 or error after !valid */
	void (*free)(struct mav_kv_iter *it);
};

/* Backends embed this as their first member. */
struct mav_kv_iter {
	const struct mav_kv_iter_ops *ops;
};

/* Sees a value in place, valid only during the call; its return value is
 * the get's. */
typedef int (*mav_kv_view_fn)(void *ctx, const void *val, size_t len);

struct mav_kv_ops {
	/* *val is malloc'd and owned by the caller. MAV_ENOTFOUND if absent.
	 * val == NULL (and vlen == NULL) only asks whether the key exists. */
	int (*get)(void *self, enum mav_cf cf, const void *key, size_t klen,
	           void **val, size_t *vlen);
	/* Optional: fn(ctx, value) on the value where the backend holds it,
	 * without a copy. MAV_ENOTFOUND (fn not called) if absent. */
	int (*get_view)(void *self, enum mav_cf cf, const void *key,
	                size_t klen, mav_kv_view_fn fn, void *ctx);
	/* Optional: get_view of a key that is more often absent than not (a
	 * write asking "stored already?"); what it reads is kept out of the
	 * backend's cache. A get with val == NULL asks the same way. */
	int (*probe_view)(void *self, enum mav_cf cf, const void *key,
	                  size_t klen, mav_kv_view_fn fn, void *ctx);
	/* Applies the whole batch atomically. flags: MAV_KV_SYNC,
	 * MAV_KV_NO_WAL. */
	int (*write)(void *self, const struct mav_kv_batch *b, unsigned flags);
	/* New iterator over one column family, positioned nowhere until seek.
	 */
	int (*iter)(void *self, enum mav_cf cf, struct mav_kv_iter **out);
	/* Make everything written so far durable (memtables to disk, log
	 * synced). */
	int (*flush)(void *self);
	/* Optional: give back the disk space of deleted values. May rewrite
	 * every live value, so it is for gc, not for the write path. */
	int (*compact)(void *self);
	/* Optional: -ENOSPC unless writes of about `bytes` more would be
	 * admitted now (a writer holding that much asks before taking more);
	 * charges nothing. */
	int (*room)(void *self, uint64_t bytes);
	/* Optional: bytes held in the backend's read cache. */
	uint64_t (*cache_bytes)(void *self);
	void (*close)(void *self);
};

struct mav_kv {
	const struct mav_kv_ops *ops;
	void *self;
};

struct mav_kv_options {
	bool create;    /* create the database if missing */
	bool secondary; /* open read-only beside a running writer */
	uint64_t
	    reserve_bytes; /* writes fail -ENOSPC below this much free space */
	uint64_t block_cache_bytes;
};

/* Backends. Each returns a heap object that mav_kv_close() frees. */
int mav_kv_open_rocksdb(struct mav_kv **out, const char *path,
                        const struct mav_kv_options *opt);
int mav_kv_open_mem(struct mav_kv **out);

/* Fault injection: wraps inner (takes ownership). */
int mav_kv_fault_wrap(struct mav_kv **out, struct mav_kv *inner);
/* The nth write/get/flush call from now (1 = next) and every later one fails
 * with err until mav_kv_fault_clear(). n = 0 disarms. */
void mav_kv_fault_fail_after(struct mav_kv *kv, uint64_t n, int err);
/* The same counting only writes: gets and flushes keep working. */
void mav_kv_fault_fail_writes_after(struct mav_kv *kv, uint64_t n, int err);
void mav_kv_fault_clear(struct mav_kv *kv);
/* Simulate power loss: undo every write not followed by a sync/flush. */
int mav_kv_fault_crash(struct mav_kv *kv);
/* Simulate a killed process: undo every NO_WAL write not followed by a
 * flush; logged writes survive, synced or not. */
int mav_kv_fault_kill(struct mav_kv *kv);
/* Number of calls seen (to size a sweep of fail points). */
uint64_t mav_kv_fault_calls(const struct mav_kv *kv);

/* Thin dispatchers. */
int mav_kv_get(struct mav_kv *kv, enum mav_cf cf, const void *key, size_t klen,
               void **val, size_t *vlen);
/* get_view where the backend has it, else a get into a copy. */
int mav_kv_get_view(struct mav_kv *kv, enum mav_cf cf, const void *key,
                    size_t klen, mav_kv_view_fn fn, void *ctx);
/* probe_view where the backend has it, else get_view. */
int mav_kv_probe_view(struct mav_kv *kv, enum mav_cf cf, const void *key,
                      size_t klen, mav_kv_view_fn fn, void *ctx);
/* mav_kv_get_view or mav_kv_probe_view, for callers that ask either way. */
typedef int (*mav_kv_lookup_fn)(struct mav_kv *kv, enum mav_cf cf,
                                const void *key, size_t klen, mav_kv_view_fn fn,
                                void *ctx);
int mav_kv_write(struct mav_kv *kv, const struct mav_kv_batch *b,
                 unsigned flags);
int mav_kv_iter_new(struct mav_kv_iter **out, struct mav_kv *kv,
                    enum mav_cf cf);
int mav_kv_flush(struct mav_kv *kv);
int mav_kv_compact(struct mav_kv *kv); /* 0 where the backend has none */
int mav_kv_room(struct mav_kv *kv, uint64_t bytes); /* ditto */
uint64_t mav_kv_cache_bytes(struct mav_kv *kv);     /* ditto */
void mav_kv_close(struct mav_kv *kv);               /* NULL is a no-op */

void mav_kv_iter_seek(struct mav_kv_iter *it, const void *key, size_t klen);
void mav_kv_iter_seek_last(struct mav_kv_iter *it);
bool mav_kv_iter_valid(const struct mav_kv_iter *it);
void mav_kv_iter_next(struct mav_kv_iter *it);
const void *mav_kv_iter_key(const struct mav_kv_iter *it, size_t *klen);
const void *mav_kv_iter_value(const struct mav_kv_iter *it, size_t *vlen);
int mav_kv_iter_status(const struct mav_kv_iter *it);
void mav_kv_iter_free(struct mav_kv_iter *it); /* NULL is a no-op */

/* Batches: an ordered list of puts and deletes; data is copied in. */
int mav_kv_batch_new(struct mav_kv_batch **out);
void mav_kv_batch_free(struct mav_kv_batch *b); /* NULL is a no-op */
void mav_kv_batch_clear(struct mav_kv_batch *b);
/* Clear and give the memory back (the next put allocates again). */
void mav_kv_batch_release(struct mav_kv_batch *b);
/* Bytes allocated for b's records. */
size_t mav_kv_batch_capacity(const struct mav_kv_batch *b);
/* A put whose value is written in place: *val has room for vmax bytes;
 * mav_kv_batch_commit(b, vlen) then adds the put with the first vlen of
 * them. Nothing else may use b in between. */
int mav_kv_batch_reserve(struct mav_kv_batch *b, enum mav_cf cf,
                         const void *key, size_t klen, size_t vmax, void **val);
void mav_kv_batch_commit(struct mav_kv_batch *b, size_t vlen);
int mav_kv_batch_put(struct mav_kv_batch *b, enum mav_cf cf, const void *key,
                     size_t klen, const void *val, size_t vlen);
int mav_kv_batch_del(struct mav_kv_batch *b, enum mav_cf cf, const void *key,
                     size_t klen);
size_t mav_kv_batch_count(const struct mav_kv_batch *b);
size_t mav_kv_batch_bytes(const struct mav_kv_batch *b); /* keys + values */

/* For backends: visit ops in order. val == NULL means delete. Stops and
 * returns the first nonzero callback result. */
typedef int (*mav_kv_batch_fn)(void *ctx, enum mav_cf cf, const void *key,
                               size_t klen, const void *val, size_t vlen);
int mav_kv_batch_foreach(const struct mav_kv_batch *b, mav_kv_batch_fn fn,
                         void *ctx);
/* The same, for changing keys and values in place (not their lengths). */
typedef int (*mav_kv_batch_edit_fn)(void *ctx, enum mav_cf cf, void *key,
                                    size_t klen, void *val, size_t vlen);
int mav_kv_batch_edit(struct mav_kv_batch *b, mav_kv_batch_edit_fn fn,
                      void *ctx);

#endif
