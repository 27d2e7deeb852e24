/* mount.h - checks before mounting, and the mount options mavfs always sets.
 *
 * Errors are printed to stderr here (the daemon has not forked yet), each
 * one line naming the path and what to do about it.
 */
#ifndef MAVFS_MOUNT_H
#define MAVFS_MOUNT_H

#include <sys/types.h>

#include "daemon.h"

/* Resolve repo and mountpoint to absolute paths (malloc'd) and check the
 * mountpoint: it exists, is a directory, is not a mount already (busy) or
 * a dead FUSE mount, and does not contain the repository. *owner: uid
 * owning the repository directory. */
int mavfs_mount_check(char **repo_abs, char **mnt_abs, uid_t *owner,
                      const char *repo, const char *mnt);

/* Add fsname=REPO (absolute), subtype=mavfs and default_permissions. */
int mavfs_mount_options(struct fuse_args *args, const char *repo_abs);

/* Whether path (absolute, canonical) is a mount point in this namespace:
 * 1 yes, 0 no, -errno if /proc/self/mountinfo cannot be read. */
int mavfs_is_mountpoint(const char *path);

#endif
