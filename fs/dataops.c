/* dataops.c - file contents and extended attributes.
 *
 * Reads of sealed bytes are answered straight from the chunk cache: the
 * chunks stay pinned there until the reply is written (one copy of every
 * byte less). Other reads go to mav_wt_read into a per-thread buffer:
 * replies are up to 1 MiB and a fresh malloc of that size is an mmap plus
 * page faults on every request. The buffer belongs to the worker thread
 * and is freed when libfuse retires the thread.
 *
 * Writes into a read-only view can only arrive through the writeback cache
 * (the kernel accepted them into its page cache without asking: with
 * zero-message open there was no open to refuse). They are answered EROFS
 * and the inode's pages are queued for invalidation, so the snapshot's
 * bytes come back on the next read.
 *
 * xattrs: only user.* exist in trees. POSIX ACL names answer ENODATA (with
 * the posix_acl capability, on by default, the kernel caches that answer:
 * `ls -l` then costs one request per file, for security.selinux, instead
 * of two), security.* and the rest ENODATA/EOPNOTSUPP without touching the
 * store. Trees keep modes, not ACLs: setting a minimal access ACL (owner,
 * group, other, as `cp -a` does for every file it copies) is a chmod, as on
 * ext4; removing an ACL succeeds (there is none); any other ACL is
 * EOPNOTSUPP.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataops.h"
#include "mav/error.h"
#include "ops.h"

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

struct tbuf {
	size_t cap;
	char data[];
};

static void buf_key_init(void)
{
	pthread_key_create(&buf_key, free);
}

static char *thread_buf(size_t size)
{
	struct tbuf *b;

	pthread_once(&buf_once, buf_key_init);
	b = pthread_getspecific(buf_key);
	if (b && b->cap >= size)
		return b->data;
	free(b);
	b = malloc(sizeof(*b) + size);
	pthread_setspecific(buf_key, b);
	if (!b)
		return NULL;
	b->cap = size;
	return b->data;
}

void mavfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mav_pieces pieces;
	struct mavfs_view *v;
	ssize_t n;
	char *buf;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	/* Straight from the chunk cache where it can (one copy less). */
	n = mav_wt_read_pinned(v->wt, mavfs_ino_wino(ino), (uint64_t)off, size,
	                       &pieces);
	if (n > 0) {
		fuse_reply_iov(req, pieces.v, (int)pieces.n);
		mav_pieces_release(&pieces);
		mavfs_unpin(fs, v);
		return;
	}
	buf = n < 0 ? NULL : thread_buf(size);
	if (n == 0)
		n = buf ? mav_wt_read(v->wt, mavfs_ino_wino(ino), (uint64_t)off,
		                      buf, size)
		        : -ENOMEM;
	if (n < 0) {
		char what[160];

		/* Name what failed: damaged data shows up here first. */
		snprintf(what, sizeof(what), "read %s inode %llu at %lld+%zu",
		         v->name, (unsigned long long)mavfs_ino_wino(ino),
		         (long long)off, size);
		/* A chunk that is gone (erased) is an I/O error of the file,
		 * not a missing name. */
		if (n == MAV_ENOTFOUND)
			n = MAV_ECORRUPT;
		mavfs_reply_err(req, (int)n, what);
	} else {
		fuse_reply_buf(req, buf, (size_t)n);
	}
	mavfs_unpin(fs, v);
}

void mavfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                    size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	ssize_t n;

	(void)fi;
	mavfs_note_write(fs);
	v = mavfs_begin_change(req, ino, true);
	if (!v)
		return;
	n = mav_wt_write(v->wt, mavfs_ino_wino(ino), (uint64_t)off, buf, size);
	if (n < 0)
		mavfs_reply_err(req, (int)n, "write");
	else
		fuse_reply_write(req, (size_t)n);
	mavfs_end_change(fs, v);
}

/* fallocate(2). Mode 0 (posix_fallocate): the file grows to at least
 * off + len, the new bytes read as zeros. No space is reserved: chunks are
 * shared and compressed, so no number of bytes can be promised for later
 * writes (a full disk still answers them ENOSPC); KEEP_SIZE alone
 * therefore changes nothing. PUNCH_HOLE and ZERO_RANGE make the range
 * zeros, sealed as holes (ZERO_RANGE without KEEP_SIZE also grows the
 * file). Collapsing and inserting ranges: EOPNOTSUPP. */
void mavfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
                        off_t len, struct fuse_file_info *fi)
{
	const int keep = FALLOC_FL_KEEP_SIZE;
	struct mavfs *fs = mavfs_of(req);
	struct mav_attr in = {0}, out;
	struct mavfs_view *v;
	int rc = 0;

	(void)fi;
	if (mode != 0 && mode != keep &&
	    mode != (FALLOC_FL_PUNCH_HOLE | keep) &&
	    (mode & ~keep) != FALLOC_FL_ZERO_RANGE) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0 || off > INT64_MAX - len) { /* as checked */
		fuse_reply_err(req, off < 0 || len <= 0 ? EINVAL : EFBIG);
		return;
	}
	mavfs_note_write(fs);
	v = mavfs_begin_change(req, ino, false);
	if (!v)
		return;
	/* Zeroing 0 bytes still checks that ino is a file it may change. */
	rc = mav_wt_zero(v->wt, mavfs_ino_wino(ino), (uint64_t)off,
	                 mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)
	                     ? (uint64_t)len
	                     : 0);
	in.size = (uint64_t)off + (uint64_t)len;
	if (rc == 0 && !(mode & keep))
		rc = mav_wt_setattr(&out, v->wt, mavfs_ino_wino(ino), &in,
		                    MAV_SET_SIZE | MAV_SET_GROW);
	mavfs_reply_err(req, rc, "fallocate");
	mavfs_end_change(fs, v);
}

/* copy_file_range(2) within the mount (cp uses it). A whole file copied
 * into an empty one in a working tree - from a snapshot or a working tree
 * - shares the source's chunks: nothing is read or written. The kernel
 * cuts a request at 2 GiB (MAX_RW_COUNT), so only files up to that size
 * arrive whole; sharing more than was asked would leave the kernel and
 * the daemon disagreeing on the size. Any other copy is EOPNOTSUPP, and the
 * kernel then copies with reads and writes itself. The gc lock is held from
 * before the source's content is known until the copy points at it. */
void mavfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                              struct fuse_file_info *fi_in, fuse_ino_t ino_out,
                              off_t off_out, struct fuse_file_info *fi_out,
                              size_t len, int flags)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *src, *dst;
	uint64_t size = 0;
	mav_id id;
	int rc;

	(void)fi_in;
	(void)fi_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	mavfs_note_write(fs);
	dst = mavfs_begin_change(req, ino_out, false);
	if (!dst)
		return;
	src = ino_in == FUSE_ROOT_ID ? NULL : mavfs_pin(req, ino_in);
	if (!src) {
		if (ino_in == FUSE_ROOT_ID)
			fuse_reply_err(req, EISDIR);
		mavfs_end_change(fs, dst);
		return;
	}
	rc = mav_wt_content_id(&id, &size, src->wt, mavfs_ino_wino(ino_in));
	mavfs_unpin(fs, src);
	if (rc == 0 && (uint64_t)off_in >= size)
		size = 0; /* at the end: nothing to copy */
	else if (rc == 0 && (off_in || off_out || len < size))
		rc = -EOPNOTSUPP;
	else if (rc == 0)
		rc = mav_wt_clone(dst->wt, mavfs_ino_wino(ino_out), &id, size);
	if (rc < 0)
		mavfs_reply_err(req, rc, "copy_file_range");
	else
		fuse_reply_write(req, (size_t)size);
	mavfs_end_change(fs, dst);
}

/* SEEK_DATA and SEEK_HOLE (the kernel answers the other whences itself):
 * holes are where a file's chunks are the chunk of only zeros. */
void mavfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	uint64_t at;
	int rc;

	(void)fi;
	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	rc = mav_wt_lseek(v->wt, mavfs_ino_wino(ino), (uint64_t)off,
	                  whence == SEEK_DATA, &at);
	if (rc < 0)
		mavfs_reply_err(req, rc, "lseek");
	else
		fuse_reply_lseek(req, (off_t)at);
	mavfs_unpin(fs, v);
}

void mavfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                    struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	int rc;

	(void)datasync;
	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, 0);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	if (!v->rw) { /* nothing to make durable */
		fuse_reply_err(req, 0);
		goto out;
	}
	pthread_rwlock_rdlock(&mavfs_of(req)->gc_lock);
	rc = mav_wt_fsync(v->wt, mavfs_ino_wino(ino));
	pthread_rwlock_unlock(&mavfs_of(req)->gc_lock);
	mavfs_reply_err(req, rc, "fsync");
out:
	mavfs_unpin(fs, v);
}

void mavfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                       struct fuse_file_info *fi)
{
	mavfs_op_fsync(req, ino, datasync, fi);
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Reply to a get/list xattr call that returned n (size: caller's cap). */
static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		mavfs_reply_err(req, (int)n, "xattr");
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* A name in a namespace Linux has: others are EOPNOTSUPP, as on ext4. */
static bool known_namespace(const char *name)
{
	static const char *const ns[] = {"user.", "trusted.", "security.",
	                                 "system.posix_acl_"};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		if (has_prefix(name, ns[i]))
			return true;
	return false;
}

void mavfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                       size_t size)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	char *buf = NULL;
	ssize_t n;

	if (!known_namespace(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ino == FUSE_ROOT_ID || !has_prefix(name, "user.")) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			goto out;
		}
	}
	n = mav_wt_getxattr(v->wt, mavfs_ino_wino(ino), name, buf, size);
	reply_xattr(req, n, buf, size);
out:
	free(buf);
	mavfs_unpin(fs, v);
}

void mavfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	char *buf = NULL;
	ssize_t n;

	if (ino == FUSE_ROOT_ID) {
		reply_xattr(req, 0, NULL, size);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			goto out;
		}
	}
	n = mav_wt_listxattr(v->wt, mavfs_ino_wino(ino), buf, size);
	reply_xattr(req, n, buf, size);
out:
	free(buf);
	mavfs_unpin(fs, v);
}

/* Pin the view of an inode whose xattrs change; NULL when answered. ACL
 * names pass (see the top of this file). */
static struct mavfs_view *begin_xattr(fuse_req_t req, fuse_ino_t ino,
                                      const char *name)
{
	struct mavfs *fs = mavfs_of(req); /* req is gone once answered */
	struct mavfs_view *v = mavfs_begin_change(req, ino, false);

	if (v && !has_prefix(name, "user.") &&
	    !has_prefix(name, "system.posix_acl_")) {
		fuse_reply_err(req, EOPNOTSUPP);
		mavfs_end_change(fs, v);
		return NULL;
	}
	return v;
}

/* The permission bits a minimal access ACL stands for (its only entries
 * the owner's, the group's and the others', which is what chmod sets), or
 * -1. Its xattr form: u32 version 2, then per entry u16 tag, u16 perm, u32
 * id, little-endian, sorted by tag. */
static int minimal_acl_mode(const char *value, size_t size)
{
	static const uint16_t tags[3] = {0x01, 0x04, 0x20};
	const uint8_t *p = (const uint8_t *)value;
	int mode = 0;

	if (size != 4 + 3 * 8 || p[0] != 2 || p[1] || p[2] || p[3])
		return -1;
	for (int i = 0; i < 3; i++) {
		const uint8_t *e = p + 4 + 8 * i;

		if ((e[0] | e[1] << 8) != tags[i] || e[3] || e[2] > 7)
			return -1;
		mode = mode << 3 | e[2];
	}
	return mode;
}

/* Whether the caller may keep a setgid bit on a file of group gid: root
 * or a member of the group, as in the kernel's in_group_or_capable. */
static bool caller_in_group(fuse_req_t req, uint32_t gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64];
	int max = (int)(sizeof(groups) / sizeof(groups[0])), n;

	if (ctx->uid == 0 || ctx->gid == gid)
		return true;
	n = fuse_req_getgroups(req, max, groups);
	for (int i = 0; i < n && i < max; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* A minimal access ACL set: the file's permission bits become its, and
 * its setgid bit goes unless the caller is in its group, as chmod does. */
static int set_acl(fuse_req_t req, struct mavfs_view *v, fuse_ino_t ino,
                   const char *name, const char *value, size_t size)
{
	int mode = minimal_acl_mode(value, size);
	struct mav_attr a, out;
	int rc;

	if (strcmp(name, "system.posix_acl_access") != 0 || mode < 0)
		return -EOPNOTSUPP;
	rc = mav_wt_getattr(&a, v->wt, mavfs_ino_wino(ino));
	if (rc < 0)
		return rc;
	a.mode = (uint32_t)mode | (caller_in_group(req, a.gid) ? 07000 : 05000);
	return mav_wt_setattr(&out, v->wt, mavfs_ino_wino(ino), &a,
	                      MAV_SET_MODE | MAV_SET_PERMS);
}

void mavfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                       const char *value, size_t size, int flags)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v = begin_xattr(req, ino, name);
	int rc;

	if (!v)
		return;
	rc = has_prefix(name, "user.")
	         ? mav_wt_setxattr(v->wt, mavfs_ino_wino(ino), name, value,
	                           size, flags)
	         : set_acl(req, v, ino, name, value, size);
	mavfs_reply_err(req, rc, name);
	mavfs_end_change(fs, v);
}

void mavfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v = begin_xattr(req, ino, name);
	int rc;

	if (!v)
		return;
	rc = has_prefix(name, "user.")
	         ? mav_wt_removexattr(v->wt, mavfs_ino_wino(ino), name)
	         : 0; /* no ACL is kept: removing one finds none */
	mavfs_reply_err(req, rc, name);
	mavfs_end_change(fs, v);
}
