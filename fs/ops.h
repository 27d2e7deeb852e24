/* ops.h - the FUSE low-level operations of mavfs and their shared helpers.
 *
 * Handlers (mavfs_op_*) unpack the request, pin the view its inode belongs
 * to, call the store, reply exactly once and unpin. The root directory
 * (FUSE_ROOT_ID) is handled by root.c; everything else by the view's
 * struct mav_wt. Split by concern: ops.c (session setup, lookups,
 * attributes, the op table), dirops.c (directories and names), dataops.c
 * (file contents and xattrs).
 */
#ifndef MAVFS_OPS_H
#define MAVFS_OPS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "daemon.h"
#include "mav/wt.h"
#include "view.h"

extern const struct fuse_lowlevel_ops mavfs_ops;

static inline struct mavfs *mavfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Pin the view of ino. On failure the request is answered (ESTALE) and
 * NULL returned. Not for FUSE_ROOT_ID. */
struct mavfs_view *mavfs_pin(fuse_req_t req, fuse_ino_t ino);
/* Unpin after replying: req is gone by then, so this takes fs. */
void mavfs_unpin(struct mavfs *fs, struct mavfs_view *v);

/* Answer with the errno for a store code. */
void mavfs_reply_err(fuse_req_t req, int rc, const char *what);

/* Entry/attr timeout of inodes of v. */
double mavfs_timeout(const struct mavfs *fs, const struct mavfs_view *v);

void mavfs_attr_to_stat(struct stat *st, const struct mav_attr *a,
                        uint64_t ino);
void mavfs_fill_entry(struct fuse_entry_param *e, const struct mavfs *fs,
                      const struct mavfs_view *v, const struct mav_attr *a);

/* Reply with an entry for a (which the wt already counted one reference
 * of), recording the kernel's reference; if the reply cannot be delivered
 * the reference is dropped again. fi non-NULL: reply to create. */
void mavfs_reply_entry(fuse_req_t req, struct mavfs_view *v,
                       const struct mav_attr *a, struct fuse_file_info *fi);

/* Pin the view of ino for a change: NULL (answered EROFS or ESTALE) for
 * the root, read-only views and stale inodes; else pinned, with the gc lock
 * held shared (writers on working trees never run under gc). With
 * retire_ro, a read-only view that was written to is queued for
 * invalidation (its pages may hold the refused bytes). */
struct mavfs_view *mavfs_begin_change(fuse_req_t req, fuse_ino_t ino,
                                      bool retire_ro);
/* Drop the gc lock. Handlers that reply with an entry call it before
 * replying: a failed entry reply forgets the reference again, which may
 * seal and take the lock itself, and a writer-preferring lock must never be
 * taken twice by one thread. */
void mavfs_write_end(struct mavfs *fs);
/* After replying: drop the gc lock and the pin. */
void mavfs_end_change(struct mavfs *fs, struct mavfs_view *v);

#endif
