/* view.h - the table of open trees behind the root directory.
 *
 * Every name in the mount root that the kernel looks up ("main", "@v3",
 * "@main", "@q4", "@3f9a") is a view: a slot of this table holding a
 * struct mav_wt. The FUSE inode number of an inode of a view is
 * (prefix << 40) | wt inode, so one 64-bit number finds both the view (the
 * prefix indexes the slot it is open in) and the inode; prefix 0 is the
 * root directory itself (FUSE_ROOT_ID). A name keeps its prefix for the
 * life of the mount, whichever slot it is opened in, so inode numbers do
 * too (the store numbers a tree's files by name, not by lookup order);
 * only a name whose old view still serves the kernel's inodes (a deleted
 * branch, a retired view) gets a new one. Read-only views of one commit
 * share one mav_wt (the inode tables and decoded trees are kept once); each
 * name still gets its own slot so the kernel never sees one directory under
 * two names (the dcache would move it back and forth).
 *
 * Lifetime: a view counts the kernel's references to its inodes (nlookup,
 * from every entry reply minus forgets) and the handlers running on it
 * (pins). The janitor closes a view when both have been zero for the idle
 * time, or at once when the table is at its bound and a new view is
 * needed. The bound (max_views) is soft: a lookup is not refused while the
 * kernel holds every open view (up to 4x the bound); instead the janitor
 * asks the kernel to drop the least recently used names
 * (mavfs_views_trim) and closes their views once forgotten. A
 * working tree is synced (mav_wt_sync) before it is closed. A view killed
 * by rpc (branch deleted) is closed at once and stays as a tombstone
 * answering ESTALE until the kernel forgets its inodes.
 *
 * Working-tree views also record which of their inodes the kernel holds
 * (an inoset), so a change made under the kernel can invalidate them.
 *
 * Locking: vs->lock guards the table and every view's counters and state;
 * it is never held across a call into the store, except to create or free
 * a tree (mav_wt_open/_close are quick: no sealing happens there).
 */
#ifndef MAVFS_VIEW_H
#define MAVFS_VIEW_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mav/id.h"
#include "mav/repo.h"
#include "mav/wt.h"

#define MAVFS_SLOT_SHIFT 40
#define MAVFS_WINO_MASK  ((UINT64_C(1) << MAVFS_SLOT_SHIFT) - 1)
#define MAVFS_MAX_SLOTS  (1u << 20)

static inline uint64_t mavfs_ino(uint32_t prefix, uint64_t wino)
{
	return ((uint64_t)prefix << MAVFS_SLOT_SHIFT) | wino;
}
static inline uint32_t mavfs_ino_prefix(uint64_t ino)
{
	return (uint32_t)(ino >> MAVFS_SLOT_SHIFT);
}
static inline uint64_t mavfs_ino_wino(uint64_t ino)
{
	return ino & MAVFS_WINO_MASK;
}

struct mavfs_views;

/* What a handler sees of a pinned view. Fields are stable while pinned. */
struct mavfs_view {
	struct mav_wt *wt;
	uint32_t prefix;  /* of its inode numbers: see above */
	uint32_t gen;     /* FUSE generation: distinct for each opening */
	bool rw;          /* working tree of branch `name` */
	const char *name; /* root name ("main", "@v3") */
};

/* gc_lock: the daemon's (see daemon.h), taken shared around sealing. */
int mavfs_views_new(struct mavfs_views **out, struct mav_repo *r,
                    pthread_rwlock_t *gc_lock, unsigned max_views);
/* Close every tree (call mavfs_views_sync first to keep buffered data). */
void mavfs_views_free(struct mavfs_views *vs); /* NULL is a no-op */

/* The view for root name `name`: the working tree of branch `branch` when
 * rw, else a read-only view of commit. Opened if needed; returned pinned.
 * -ENFILE when the table is full of referenced views. */
int mavfs_view_get(struct mavfs_view **out, struct mavfs_views *vs,
                   const char *name, bool rw, const mav_id *commit);
/* Pin the view of a FUSE inode: -ESTALE if the slot is free or dead. */
int mavfs_view_pin(struct mavfs_view **out, struct mavfs_views *vs,
                   uint64_t ino);
void mavfs_view_unpin(struct mavfs_views *vs, struct mavfs_view *v);

/* The kernel now holds n more references to inode wino of v (call before
 * the reply is sent; undo with mavfs_view_forget if the reply fails). */
void mavfs_view_ref(struct mavfs_views *vs, struct mavfs_view *v, uint64_t wino,
                    uint64_t n);
/* Forget n references of a FUSE inode (also tells the wt). */
void mavfs_view_forget(struct mavfs_views *vs, uint64_t ino, uint64_t n);

/* Detach the working tree of branch from its name and close it: later
 * handlers on its inodes get -ESTALE. Returns whether one was open.
 * *inos (malloc'd, *n entries) lists the FUSE inodes the kernel held, to be
 * invalidated by the caller. */
bool mavfs_views_kill_branch(struct mavfs_views *vs, const char *branch,
                             uint64_t **inos, size_t *n);
/* Retire the read-only view of FUSE inode ino: its root name will open a
 * fresh view (new inode numbers) while this one keeps serving the inodes
 * the kernel holds. Returns the name (malloc'd) if the view was retired
 * now, NULL otherwise. Used after a write into a snapshot reached the
 * daemon: the kernel's writeback cache already changed its copy of that
 * file (size, mtime, pages), and only new inode numbers make it forget. */
char *mavfs_views_retire(struct mavfs_views *vs, uint64_t ino);
/* FUSE inodes the kernel holds of the open working tree of branch. */
int mavfs_views_branch_inos(struct mavfs_views *vs, const char *branch,
                            uint64_t **inos, size_t *n);
/* The FUSE inode of the root of view `name`, or 0 if none is open. */
uint64_t mavfs_views_root_ino(struct mavfs_views *vs, const char *name);

/* Janitor work: seal quiet inodes of open working trees; close views idle
 * for idle_ns (0: every unreferenced one). */
void mavfs_views_seal_idle(struct mavfs_views *vs, int64_t older_ns);
/* Working trees opened from now on leave file times to the kernel
 * (writeback cache); set at init, before any lookup. */
void mavfs_views_kernel_times(struct mavfs_views *vs, bool on);
void mavfs_views_close_idle(struct mavfs_views *vs, int64_t idle_ns);
/* Above the bound: the names of the views unused for quiet_ns, least
 * recently used first, that the kernel should drop (notify_inval_entry on
 * the root) so their views can close. *names and each name are malloc'd;
 * returns their number. */
size_t mavfs_views_trim(struct mavfs_views *vs, char ***names,
                        int64_t quiet_ns);
/* mav_wt_sync every open working tree; first error returned. */
int mavfs_views_sync(struct mavfs_views *vs);
/* The same, for a caller that holds the gc lock for writing. */
int mavfs_views_sync_locked(struct mavfs_views *vs);

/* Counters for logs and tests. */
void mavfs_views_stats(struct mavfs_views *vs, unsigned *open, unsigned *trees);

#endif
