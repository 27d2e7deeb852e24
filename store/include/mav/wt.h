/* wt.h - trees you can walk and edit: working trees and snapshot views.
 *
 * A struct mav_wt is an inode-numbered view of one tree, shaped for a FUSE
 * daemon: every call takes inode numbers, returns -errno codes, and keeps no
 * per-open-file state (so the daemon can run with zero-message open).
 *
 * - mav_wt_open() opens the working tree of a branch: a copy-on-write overlay
 *   on the branch's last snapshot, persisted in the MAV_CF_WT family so it
 *   survives a restart or a crash. Untouched directories are served from the
 *   snapshot's trees; a directory is copied up (only the changed names are
 *   recorded) when something in it changes. File writes are buffered per
 *   inode and sealed (re-chunked from the chunk before the first change until
 *   boundaries fall back in step) on fsync, snapshot, forget, memory pressure
 *   or idle. Only sealed data survives a crash; fsync seals and syncs.
 * - mav_wt_open_commit() opens a read-only view of a commit: the same calls,
 *   every write-like one answers -EROFS.
 *
 * Inode numbers are local to one struct mav_wt, start at MAV_WT_ROOT, stay
 * stable while the inode is referenced (lookup counts, like FUSE) and are
 * never reused within the life of the object. lookup, create, mkdir, symlink,
 * link and readdir(plus) add one reference to the inode they return; forget
 * drops them.
 *
 * Threads: all calls may be made concurrently; wt->lock (one mutex) guards
 * the inode table and dirty state. Chunk reads of sealed data run outside it.
 */
#ifndef MAV_WT_H
#define MAV_WT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mav/id.h"
#include "mav/repo.h"

#define MAV_WT_ROOT 1

struct mav_wt;

struct mav_attr {
	uint64_t ino;
	uint8_t type;  /* enum mav_type */
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t holes; /* bytes of the file known to be holes */
	int64_t atime_ns, mtime_ns, ctime_ns;
};

/* A time as trees keep it: int64 nanoseconds since the epoch, which
 * reach from 1677-09-21 to 2262-04-11. A time outside is clamped to the
 * nearest end, as ext4 clamps to its own range (it wrapped around). */
static inline int64_t mav_time_ns(int64_t sec, long nsec)
{
	int64_t ns;

	if (__builtin_mul_overflow(sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)nsec, &ns))
		return sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

/* setattr mask bits */
enum {
	MAV_SET_MODE = 1 << 0,
	MAV_SET_UID = 1 << 1,
	MAV_SET_GID = 1 << 2,
	MAV_SET_SIZE = 1 << 3,
	MAV_SET_ATIME = 1 << 4,
	MAV_SET_MTIME = 1 << 5,
	MAV_SET_CTIME = 1 << 6,
	/* With MAV_SET_SIZE: only grow; a file already as long keeps its
	 * size (decided under the tree's lock, so no write in between is
	 * cut off). */
	MAV_SET_GROW = 1 << 7,
	/* With MAV_SET_MODE: only the permission bits (0777) come from
	 * in->mode; of the file's special bits (07000) those stay that
	 * in->mode also has, so the caller can drop one but not add one. */
	MAV_SET_PERMS = 1 << 8,
};

/* rename flags (same values as Linux RENAME_*) */
enum { MAV_RENAME_NOREPLACE = 1 << 0, MAV_RENAME_EXCHANGE = 1 << 1 };
/* setxattr flags (same values as XATTR_CREATE / XATTR_REPLACE) */
enum { MAV_XATTR_CREATE = 1, MAV_XATTR_REPLACE = 2 };

int mav_wt_open(struct mav_wt **out, struct mav_repo *r, const char *branch);
int mav_wt_open_commit(struct mav_wt **out, struct mav_repo *r,
                       const mav_id *commit);
/* Seals nothing: call mav_wt_sync() first to keep buffered writes. */
void mav_wt_close(struct mav_wt *wt); /* NULL is a no-op */
bool mav_wt_readonly(const struct mav_wt *wt);
/* With on, writes leave mtime and ctime alone: the caller sets them with
 * setattr (a FUSE daemon with the kernel's writeback cache, where the
 * kernel owns file times and may send them before the data). */
void mav_wt_kernel_times(struct mav_wt *wt, bool on);
/* Commit the view shows (read-only) or the working tree is based on (zero id
 * for a branch with no snapshot). */
void mav_wt_base(mav_id *out, const struct mav_wt *wt);

int mav_wt_lookup(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                  const char *name);
void mav_wt_forget(struct mav_wt *wt, uint64_t ino, uint64_t nlookup);
int mav_wt_getattr(struct mav_attr *out, struct mav_wt *wt, uint64_t ino);
int mav_wt_setattr(struct mav_attr *out, struct mav_wt *wt, uint64_t ino,
                   const struct mav_attr *in, unsigned mask);

/* Visit entries of directory ino (no "." or "..") whose cookie is past
 * `cookie` (0 = from the start), in cookie order; next is the entry's own
 * cookie, to resume after it. A cookie stays with its entry while the
 * directory changes, snapshots included (in a working tree it is a hash
 * of the name), and is below 2^63 - 2. fn returns nonzero to stop (reply buffer
 * full); that entry was not consumed and, with plus, gained no reference. With
 * plus, each consumed entry gains one reference. */
typedef int (*mav_wt_dirent_fn)(void *ctx, const char *name,
                                const struct mav_attr *attr, uint64_t next);
int mav_wt_readdir(struct mav_wt *wt, uint64_t ino, uint64_t cookie, bool plus,
                   mav_wt_dirent_fn fn, void *ctx);

int mav_wt_create(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                  const char *name, uint32_t mode, uint32_t uid, uint32_t gid);
int mav_wt_mkdir(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                 const char *name, uint32_t mode, uint32_t uid, uint32_t gid);
/* A named pipe or a socket's name (MAV_T_FIFO, MAV_T_SOCK); anything else
 * (device nodes) EPERM. */
int mav_wt_mknod(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                 const char *name, uint8_t type, uint32_t mode, uint32_t uid,
                 uint32_t gid);
int mav_wt_symlink(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                   const char *name, const char *target, uint32_t uid,
                   uint32_t gid);
int mav_wt_link(struct mav_attr *out, struct mav_wt *wt, uint64_t ino,
                uint64_t newparent, const char *newname);
int mav_wt_unlink(struct mav_wt *wt, uint64_t parent, const char *name);
int mav_wt_rmdir(struct mav_wt *wt, uint64_t parent, const char *name);
int mav_wt_rename(struct mav_wt *wt, uint64_t parent, const char *name,
                  uint64_t newparent, const char *newname, unsigned flags);
/* *out is malloc'd, NUL-terminated. */
int mav_wt_readlink(char **out, struct mav_wt *wt, uint64_t ino);

/* Returns bytes read (short only at end of file) or -errno. */
ssize_t mav_wt_read(struct mav_wt *wt, uint64_t ino, uint64_t off, void *buf,
                    size_t len);
/* mav_wt_read without a copy: 1 with the bytes pinned in out (release
 * them with mav_pieces_release), 0 if the file has unsealed writes, a hole
 * past its content, or more pieces than out holds (use mav_wt_read), or
 * -errno. */
int mav_wt_read_pinned(struct mav_wt *wt, uint64_t ino, uint64_t off,
                       size_t len, struct mav_pieces *out);
/* lseek(2)'s SEEK_DATA (data) or SEEK_HOLE from off: the offset in *out,
 * or -ENXIO (off at or past the end; no data past off). */
int mav_wt_lseek(struct mav_wt *wt, uint64_t ino, uint64_t off, bool data,
                 uint64_t *out);
/* Returns bytes written or -errno (-ENOSPC on a full disk, -EFBIG). */
ssize_t mav_wt_write(struct mav_wt *wt, uint64_t ino, uint64_t off,
                     const void *buf, size_t len);
/* Zeros over [off, off + len) of the file, within its size (fallocate's
 * PUNCH_HOLE and ZERO_RANGE): held without bytes in memory and sealed as
 * holes, so a range of any length costs its chunk list. */
int mav_wt_zero(struct mav_wt *wt, uint64_t ino, uint64_t off, uint64_t len);
/* Seal the inode's buffered writes and sync them to disk. */
int mav_wt_fsync(struct mav_wt *wt, uint64_t ino);
/* Seal everything buffered and sync (unmount, before close). */
int mav_wt_sync(struct mav_wt *wt);
/* Seal inodes with no write for older_ns; returns how many were sealed. */
int mav_wt_seal_idle(struct mav_wt *wt, int64_t older_ns);
/* Bytes unsealed files hold in memory: dirty extents, and what streams
 * have queued, not yet cut or not yet stored. Sealing keeps it under
 * 256 MiB. */
uint64_t mav_wt_held(struct mav_wt *wt);
/* Files whose accepted writes were dropped (the store refused them, as on a
 * full disk) since the last call, and the first error; each such file's
 * next fsync also reports it. */
unsigned mav_wt_take_lost(struct mav_wt *wt, int *first);

/* xattrs: full names ("user.mav.license"). getxattr with cap 0 returns the
 * size; -ERANGE if cap is too small; -ENODATA if absent. Returns length. */
ssize_t mav_wt_getxattr(struct mav_wt *wt, uint64_t ino, const char *name,
                        void *buf, size_t cap);
int mav_wt_setxattr(struct mav_wt *wt, uint64_t ino, const char *name,
                    const void *val, size_t len, int flags);
/* NUL-separated names, like listxattr(2); returns total length. */
ssize_t mav_wt_listxattr(struct mav_wt *wt, uint64_t ino, char *buf,
                         size_t cap);
int mav_wt_removexattr(struct mav_wt *wt, uint64_t ino, const char *name);

/* Content id of a file (blob id) once sealed, and its size (size may be
 * NULL); read-only views expose the id as user.mav.id. */
int mav_wt_content_id(mav_id *out, uint64_t *size, struct mav_wt *wt,
                      uint64_t ino);
/* Give file ino, which must be empty with nothing unsealed (-EOPNOTSUPP
 * otherwise), the content blob of size bytes, stored already: a whole
 * file's copy_file_range shares its chunks instead of copying them. */
int mav_wt_clone(struct mav_wt *wt, uint64_t ino, const mav_id *blob,
                 uint64_t size);

/* ---- whole-tree operations ---- */

/* Freeze the working tree into the next vN: seals everything, builds trees
 * for changed directories only, writes the commit and moves the branch and
 * vN refs in one synced batch. Concurrent writers wait for it, so each write
 * is wholly in or wholly out (a write() the kernel split in two requests is
 * waited for). An unchanged tree is refused with MAV_EEXIST unless
 * allow_empty (like `git commit --allow-empty`). */
struct mav_snapshot_opts {
	const char *message;
	const char *author;
	bool allow_empty;
};
int mav_wt_snapshot(mav_id *commit_out, uint64_t *version_out,
                    struct mav_wt *wt, const struct mav_snapshot_opts *o);

/* Drop every change and rebase the working tree on commit (zero id: empty).
 * Referenced inodes stay valid numbers but may now answer -ESTALE/-ENOENT. */
int mav_wt_reset(struct mav_wt *wt, const mav_id *commit);

/* Changes since the base snapshot. kind: 'A' added, 'M' modified, 'D'
 * deleted; path relative to the root, '/'-separated. */
typedef int (*mav_wt_status_fn)(void *ctx, char kind, const char *path);
int mav_wt_status(struct mav_wt *wt, mav_wt_status_fn fn, void *ctx);

/* Put a ready-made file (content already stored by a mav_writer) at
 * parent/name, replacing any non-directory entry there: the fast path of
 * import. xattrs may be NULL. Unlike create, adds no reference. */
int mav_wt_put_file(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                    const char *name, const struct mav_attr *attr,
                    const mav_id *blob, const struct mav_xattr *xattrs,
                    uint32_t nxattrs);

/* Delete the persisted working tree of a branch (branch delete). */
int mav_wt_destroy(struct mav_repo *r, const char *branch);

#endif
