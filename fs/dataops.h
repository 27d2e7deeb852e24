/* dataops.h - FUSE handlers for file contents and extended attributes. */
#ifndef MAVFS_DATAOPS_H
#define MAVFS_DATAOPS_H

#include "daemon.h"

void mavfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void mavfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                    size_t size, off_t off, struct fuse_file_info *fi);
void mavfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                    struct fuse_file_info *fi);
void mavfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
                        off_t len, struct fuse_file_info *fi);
void mavfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                              struct fuse_file_info *fi_in, fuse_ino_t ino_out,
                              off_t off_out, struct fuse_file_info *fi_out,
                              size_t len, int flags);
void mavfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    struct fuse_file_info *fi);
void mavfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                       struct fuse_file_info *fi);
void mavfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                       size_t size);
void mavfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void mavfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                       const char *value, size_t size, int flags);
void mavfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
