/* root.h - the mount's root directory: one name per branch and revision.
 *
 *   main/    working tree of branch main (read-write)
 *   @v12/    version 12          @main/  last snapshot of branch main
 *   @q4/     tag q4              @3f9a/  commit by id prefix (not listed)
 *
 * Nothing is stored for the root: names resolve through the refs at lookup
 * time and the listing is built from mav_ref_list, cached until the refs
 * change (mavfs_root_touch, called by whoever changed them). The root is
 * read-only: new branches and tags come from mavctl.
 *
 * Locking: rt->lock guards the listing cache; taken before store locks.
 */
#ifndef MAVFS_ROOT_H
#define MAVFS_ROOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daemon.h"
#include "view.h"

int mavfs_root_new(struct mavfs_root **out);
void mavfs_root_free(struct mavfs_root *rt); /* NULL is a no-op */

/* Refs changed: rebuild the listing on next readdir, bump the mtime. */
void mavfs_root_touch(struct mavfs_root *rt);

/* Attributes of the root directory. */
void mavfs_root_stat(struct stat *st, struct mavfs *fs);

/* Resolve a root name to its view (pinned) and the entry timeout the
 * kernel may cache the name for. -ENOENT for names that are not there. */
int mavfs_root_resolve(struct mavfs_view **out, double *entry_timeout,
                       struct mavfs *fs, const char *name);

/* Fill buf (size bytes) with root entries from offset off, as readdir or
 * readdirplus (no inode references are handed out: entries carry no node
 * id, so the kernel looks names up when it needs them). Returns the bytes
 * used, or a negative code. */
ssize_t mavfs_root_readdir(char *buf, size_t size, fuse_req_t req,
                           struct mavfs *fs, off_t off, bool plus);

#endif
