/* maint.h - whole-repository checks and accounting: fsck, gc, du, diff.
 *
 * fsck walks refs -> commits -> trees -> blobs -> chunks and re-verifies
 * every frame checksum and every id against the bytes in the store, not a
 * cache; each problem is reported through the callback with the object it
 * concerns. gc deletes every chunk and object that no branch, tag, version
 * or working tree reaches. Both run on an open repository; gc must not run
 * while a working tree is being written.
 */
#ifndef MAV_MAINT_H
#define MAV_MAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "mav/id.h"
#include "mav/repo.h"

struct mav_fsck_report {
	uint64_t commits, trees, blobs, chunks, wt_inodes;
	uint64_t problems;
};
/* One line per problem, e.g. "chunk 3f9a...: checksum mismatch". */
typedef void (*mav_problem_fn)(void *ctx, const char *problem);
/* Progress, for a progress line: one more item dealt with, of len bytes.
 * fsck: a chunk checked (plain bytes). gc: a chunk found in use, then a
 * key looked at by the sweep (stored bytes). */
typedef void (*mav_tick_fn)(void *ctx, uint32_t len);
/* Returns 0 when the walk completed (problems counted in the report), or an
 * error if it could not run. tick may be NULL; both get ctx. */
int mav_fsck(struct mav_fsck_report *out, struct mav_repo *r, mav_problem_fn fn,
             mav_tick_fn tick, void *ctx);

struct mav_gc_report {
	uint64_t chunks_deleted, objects_deleted;
	uint64_t bytes_freed; /* stored bytes of deleted chunks and objects */
};
/* tick may be NULL. */
int mav_gc(struct mav_gc_report *out, struct mav_repo *r, mav_tick_fn tick,
           void *ctx);
/* Give the disk space of the chunks gc deleted back: one full compaction
 * of the chunks family (RocksDB keeps deleted values until compaction
 * reaches them). Slow, about the stored bytes; needs no lock, so a daemon
 * runs it after gc has let writers go. Skipped when the disk lacks room for
 * a copy of the chunk table files. */
int mav_gc_compact(struct mav_repo *r);

struct mav_du_report {
	uint64_t files;
	uint64_t logical_bytes; /* sum of file sizes over every version */
	uint64_t unique_bytes;  /* plain bytes of distinct chunks */
	uint64_t stored_bytes;  /* frame bytes of distinct chunks + objects */
	uint64_t chunks;
};
/* commit NULL: every version, tag and branch; else that commit only. */
int mav_du(struct mav_du_report *out, struct mav_repo *r, const mav_id *commit);

/* Differences between two trees (either may be the zero id: empty). kind
 * 'A' added, 'D' removed, 'M' modified (content, mode, type, link target or
 * xattrs), 'R' renamed (same content id, removed at old_path, added at path;
 * a rename with edits shows as D + A). Paths '/'-separated from the root,
 * visited in path order; renames after the rest. */
struct mav_change {
	char kind;
	const char *path;
	const char *old_path; /* 'R' only */
	uint8_t type;         /* enum mav_type of the new (or removed) entry */
	uint64_t old_size, new_size;
};
typedef int (*mav_change_fn)(void *ctx, const struct mav_change *c);
int mav_diff(struct mav_repo *r, const mav_id *tree_a, const mav_id *tree_b,
             mav_change_fn fn, void *ctx);

#endif
