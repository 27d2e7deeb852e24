/* dirops.h - FUSE handlers for directories and names: listing, creating,
 * linking, removing and renaming. Write-like ones answer EROFS on the root
 * and on read-only views, EXDEV across views. */
#ifndef MAVFS_DIROPS_H
#define MAVFS_DIROPS_H

#include "daemon.h"

void mavfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi);
void mavfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                          off_t off, struct fuse_file_info *fi);
void mavfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void mavfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, struct fuse_file_info *fi);
void mavfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                    mode_t mode, dev_t rdev);
void mavfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                    mode_t mode);
void mavfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                      const char *name);
void mavfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                   const char *newname);
void mavfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void mavfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void mavfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                     fuse_ino_t newparent, const char *newname,
                     unsigned int flags);

#endif
