/* ops.c - session setup, lookups and attributes, and the operation table.
 *
 * Capabilities (init): the kernel is asked for zero-message open and
 * opendir (open/opendir/flush are answered ENOSYS once and never sent
 * again), readdirplus always (not "auto": every listing is followed by
 * stats in the workloads we serve), async and parallel operations, cached
 * symlinks, 1 MiB writes, POSIX ACLs (only so the kernel caches "no ACL":
 * ls -l then asks once per file, not twice) and - only with -o
 * writeback_cache - the writeback cache. Atomic O_TRUNC stays off: an O_TRUNC
 * open the daemon never sees must reach it as a setattr. Because open is
 * zero-message, nothing is per open file: every handler works on inode numbers.
 *
 * The writeback cache is off by default. Its pages reach the daemon in any
 * order, so a snapshot taken while a program writes could hold part of one
 * write() (zeros up to a page boundary: t_mount_writers); write-through,
 * each write() of up to max_write bytes is one request, wholly in or
 * wholly out of a snapshot. It also costs read-only views (the kernel
 * invalidates st_blocks on every close and the next fstat asks the daemon:
 * warm open+fstat+read+close of 100 KiB 35 us against 23 us without it and
 * 21 us native). It does halve small-write throughput, so -o
 * writeback_cache remains; with it a write() into a snapshot is refused
 * only when written back (EROFS at fsync/close; the daemon then retires the
 * view so the snapshot reads back intact).
 *
 * Timeouts: read-only views never change, so their entries and attributes
 * are cached for a very long time (and their pages kept). Working trees
 * change only through this mount, which the kernel sees, or through rpc
 * calls that invalidate what they touch (reset and branch deletion drop the
 * branch's inodes and its name, meta-set its inode), so they are cached for
 * an hour: with 1 s, every warm reread of a file cost a LOOKUP and a
 * GETATTR (0.5-0.76x native). The root and the names refs move (@BRANCH,
 * @TAG) keep 1 s, on top of their explicit invalidation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "dataops.h"
#include "dirops.h"
#include "mav/error.h"
#include "ops.h"
#include "root.h"

#define MAVFS_MAX_WRITE (1u << 20)

struct mavfs_view *mavfs_pin(fuse_req_t req, fuse_ino_t ino)
{
	struct mavfs_view *v = NULL;
	int rc = mavfs_view_pin(&v, mavfs_of(req)->views, ino);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return NULL;
	}
	return v;
}

void mavfs_unpin(struct mavfs *fs, struct mavfs_view *v)
{
	mavfs_view_unpin(fs->views, v);
}

void mavfs_reply_err(fuse_req_t req, int rc, const char *what)
{
	fuse_reply_err(req, rc ? mavfs_errno(rc, what) : 0);
}

double mavfs_timeout(const struct mavfs *fs, const struct mavfs_view *v)
{
	return v->rw ? fs->opt.rw_timeout : fs->opt.ro_timeout;
}

static void ns_to_ts(struct timespec *ts, int64_t ns)
{
	int64_t s = ns / 1000000000, r = ns % 1000000000;

	if (r < 0) {
		r += 1000000000;
		s--;
	}
	ts->tv_sec = (time_t)s;
	ts->tv_nsec = (long)r;
}

void mavfs_attr_to_stat(struct stat *st, const struct mav_attr *a, uint64_t ino)
{
	static const mode_t types[] = {[MAV_T_FILE] = S_IFREG,
	                               [MAV_T_DIR] = S_IFDIR,
	                               [MAV_T_SYMLINK] = S_IFLNK,
	                               [MAV_T_FIFO] = S_IFIFO,
	                               [MAV_T_SOCK] = S_IFSOCK};

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = (a->type <= MAV_T_SOCK ? types[a->type] : S_IFREG) |
	              (a->mode & 07777);
	st->st_nlink = a->nlink; /* 0 for a file unlinked while open */
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	/* du and cp --sparse=auto (which then asks SEEK_DATA) go by it. */
	st->st_blocks = (blkcnt_t)((a->size - a->holes + 511) / 512);
	/* cp and stdio size their buffers by it. An empty file is what cp
	 * sees of the file it copies into: one write() of its buffer is then
	 * one max_write request, not eight of 128 KiB. Any other file keeps
	 * 128 KiB, since cat allocates (and faults in) a fresh buffer of that
	 * size for every file it reads: 1 MiB made warm rereads of images
	 * 25% slower. */
	st->st_blksize = a->type == MAV_T_FILE && a->size == 0 ? MAVFS_MAX_WRITE
	                                                       : 128 * 1024;
	ns_to_ts(&st->st_atim, a->atime_ns);
	ns_to_ts(&st->st_mtim, a->mtime_ns);
	ns_to_ts(&st->st_ctim, a->ctime_ns);
}

void mavfs_fill_entry(struct fuse_entry_param *e, const struct mavfs *fs,
                      const struct mavfs_view *v, const struct mav_attr *a)
{
	memset(e, 0, sizeof(*e));
	e->ino = mavfs_ino(v->prefix, a->ino);
	e->generation = v->gen;
	mavfs_attr_to_stat(&e->attr, a, e->ino);
	e->attr_timeout = mavfs_timeout(fs, v);
	e->entry_timeout = e->attr_timeout;
}

void mavfs_reply_entry(fuse_req_t req, struct mavfs_view *v,
                       const struct mav_attr *a, struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct fuse_entry_param e;
	int rc;

	if (a->ino > MAVFS_WINO_MASK) {
		mavfs_log(LOG_ERR, "inode number %llu of %s out of range",
		          (unsigned long long)a->ino, v->name);
		mav_wt_forget(v->wt, a->ino, 1);
		fuse_reply_err(req, EOVERFLOW);
		return;
	}
	mavfs_fill_entry(&e, fs, v, a);
	mavfs_view_ref(fs->views, v, a->ino, 1);
	rc = fi ? fuse_reply_create(req, &e, fi) : fuse_reply_entry(req, &e);
	if (rc != 0) /* interrupted: the kernel took no reference */
		mavfs_view_forget(fs->views, e.ino, 1);
}

struct mavfs_view *mavfs_begin_change(fuse_req_t req, fuse_ino_t ino,
                                      bool retire_ro)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;

	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EROFS);
		return NULL;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return NULL;
	if (!v->rw) {
		if (retire_ro)
			mavfs_queue_inval(fs, ino);
		fuse_reply_err(req, EROFS);
		mavfs_unpin(fs, v);
		return NULL;
	}
	pthread_rwlock_rdlock(&fs->gc_lock);
	return v;
}

void mavfs_write_end(struct mavfs *fs)
{
	pthread_rwlock_unlock(&fs->gc_lock);
}

void mavfs_end_change(struct mavfs *fs, struct mavfs_view *v)
{
	mavfs_write_end(fs);
	mavfs_unpin(fs, v);
}

/* ---- init ---- */

static void want(struct fuse_conn_info *conn, unsigned cap)
{
	if (conn->capable & cap)
		conn->want |= cap;
}

static void log_caps(const struct fuse_conn_info *conn)
{
	static const struct {
		unsigned cap;
		const char *name;
	} caps[] = {{FUSE_CAP_NO_OPEN_SUPPORT, "no_open"},
	            {FUSE_CAP_NO_OPENDIR_SUPPORT, "no_opendir"},
	            {FUSE_CAP_READDIRPLUS, "readdirplus"},
	            {FUSE_CAP_READDIRPLUS_AUTO, "readdirplus_auto"},
	            {FUSE_CAP_WRITEBACK_CACHE, "writeback_cache"},
	            {FUSE_CAP_ASYNC_READ, "async_read"},
	            {FUSE_CAP_PARALLEL_DIROPS, "parallel_dirops"},
	            {FUSE_CAP_CACHE_SYMLINKS, "cache_symlinks"},
	            {FUSE_CAP_POSIX_ACL, "posix_acl"},
	            {FUSE_CAP_ATOMIC_O_TRUNC, "atomic_o_trunc"},
	            {FUSE_CAP_AUTO_INVAL_DATA, "auto_inval_data"},
	            {FUSE_CAP_SPLICE_WRITE, "splice_write"},
	            {FUSE_CAP_SPLICE_READ, "splice_read"}};
	char line[512];
	size_t used = 0;

	line[0] = '\0';
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (!(conn->want & caps[i].cap))
			continue;
		used += (size_t)snprintf(line + used, sizeof(line) - used,
		                         " %s", caps[i].name);
		if (used >= sizeof(line))
			break;
	}
	mavfs_log(LOG_INFO,
	          "fuse %u.%u, max_write %u, max_readahead %u, caps:%s",
	          conn->proto_major, conn->proto_minor, conn->max_write,
	          conn->max_readahead, line);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mavfs *fs = userdata;

	want(conn, FUSE_CAP_NO_OPEN_SUPPORT);
	want(conn, FUSE_CAP_NO_OPENDIR_SUPPORT);
	want(conn, FUSE_CAP_READDIRPLUS);
	want(conn, FUSE_CAP_ASYNC_READ);
	want(conn, FUSE_CAP_PARALLEL_DIROPS);
	want(conn, FUSE_CAP_CACHE_SYMLINKS);
	if (fs->opt.posix_acl)
		want(conn, FUSE_CAP_POSIX_ACL);
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	if (fs->opt.writeback && !fs->opt.ro)
		want(conn, FUSE_CAP_WRITEBACK_CACHE);
	fs->writeback = (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0;
	mavfs_views_kernel_times(fs->views, fs->writeback);
	fs->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
	conn->max_write = MAVFS_MAX_WRITE;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	log_caps(conn);
}

/* ---- lookups and attributes ---- */

static void root_lookup(fuse_req_t req, const char *name)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v = NULL;
	struct fuse_entry_param e;
	struct mav_attr a;
	double timeout;
	int rc;

	rc = mavfs_root_resolve(&v, &timeout, fs, name);
	if (rc == 0)
		rc = mav_wt_getattr(&a, v->wt, MAV_WT_ROOT);
	if (rc < 0) {
		mavfs_reply_err(req, rc, name);
		goto out;
	}
	mavfs_fill_entry(&e, fs, v, &a);
	e.entry_timeout = timeout;
	mavfs_view_ref(fs->views, v, MAV_WT_ROOT, 1);
	if (fuse_reply_entry(req, &e) != 0)
		mavfs_view_forget(fs->views, e.ino, 1);
out:
	mavfs_unpin(fs, v);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	struct mav_attr a;
	int rc;

	if (parent == FUSE_ROOT_ID) {
		root_lookup(req, name);
		return;
	}
	v = mavfs_pin(req, parent);
	if (!v)
		return;
	rc = mav_wt_lookup(&a, v->wt, mavfs_ino_wino(parent), name);
	if (rc == 0) {
		mavfs_reply_entry(req, v, &a, NULL);
	} else if (mavfs_errno(rc, name) == ENOENT) {
		/* Negative entry: cached as long as positive ones. */
		struct fuse_entry_param e = {0};

		e.entry_timeout = mavfs_timeout(mavfs_of(req), v);
		fuse_reply_entry(req, &e);
	} else {
		mavfs_reply_err(req, rc, name);
	}
	mavfs_unpin(fs, v);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != FUSE_ROOT_ID)
		mavfs_view_forget(mavfs_of(req)->views, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
	struct mavfs *fs = mavfs_of(req);

	for (size_t i = 0; i < count; i++) {
		if (forgets[i].ino != FUSE_ROOT_ID)
			mavfs_view_forget(fs->views, forgets[i].ino,
			                  forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	struct mav_attr a;
	struct stat st;
	int rc;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		mavfs_root_stat(&st, fs);
		fuse_reply_attr(req, &st, fs->opt.root_timeout);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	rc = mav_wt_getattr(&a, v->wt, mavfs_ino_wino(ino));
	if (rc < 0) {
		mavfs_reply_err(req, rc, "getattr");
	} else {
		mavfs_attr_to_stat(&st, &a, ino);
		fuse_reply_attr(req, &st, mavfs_timeout(fs, v));
	}
	mavfs_unpin(fs, v);
}

static int64_t ts_ns(const struct timespec *t)
{
	return mav_time_ns(t->tv_sec, t->tv_nsec);
}

/* What the kernel asks to set. Times it says are "now" are one clock
 * reading, also for ctime, as on ext4 (touch: atime == mtime == ctime). */
static unsigned setattr_mask(struct mav_attr *in, const struct stat *attr,
                             int to_set)
{
	unsigned mask = 0;
	struct timespec now;

	memset(in, 0, sizeof(*in));
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE) {
		in->mode = attr->st_mode & 07777;
		mask |= MAV_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		in->uid = attr->st_uid;
		mask |= MAV_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		in->gid = attr->st_gid;
		mask |= MAV_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		in->size = (uint64_t)attr->st_size;
		mask |= MAV_SET_SIZE;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		in->atime_ns = ts_ns(
		    to_set & FUSE_SET_ATTR_ATIME_NOW ? &now : &attr->st_atim);
		mask |= MAV_SET_ATIME;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		in->mtime_ns = ts_ns(
		    to_set & FUSE_SET_ATTR_MTIME_NOW ? &now : &attr->st_mtim);
		mask |= MAV_SET_MTIME;
	}
	if (to_set & (FUSE_SET_ATTR_CTIME | FUSE_SET_ATTR_ATIME_NOW |
	              FUSE_SET_ATTR_MTIME_NOW)) {
		in->ctime_ns =
		    ts_ns(to_set & FUSE_SET_ATTR_CTIME ? &attr->st_ctim : &now);
		mask |= MAV_SET_CTIME;
	}
	return mask;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	struct mav_attr in, out;
	struct stat st;
	unsigned mask = setattr_mask(&in, attr, to_set);
	int rc;

	(void)fi;
	mavfs_note_write(fs);
	v = mavfs_begin_change(req, ino, false);
	if (!v)
		return;
	rc = mav_wt_setattr(&out, v->wt, mavfs_ino_wino(ino), &in, mask);
	if (rc < 0) {
		mavfs_reply_err(req, rc, "setattr");
	} else {
		mavfs_attr_to_stat(&st, &out, ino);
		fuse_reply_attr(req, &st, mavfs_timeout(fs, v));
	}
	mavfs_end_change(fs, v);
}

/* ---- zero-message open ---- */

/* Answered ENOSYS once, open and opendir are never sent again for this
 * connection (the kernel then keeps caches as with keep_cache). Only on a
 * kernel without that support do we really answer them. */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	bool rw = mavfs_ino_prefix(ino) != 0;

	if (fs->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (rw) {
		struct mavfs_view *v = mavfs_pin(req, ino);

		if (!v)
			return;
		rw = v->rw;
		mavfs_unpin(fs, v);
	}
	if (!rw && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	(void)ino;
	if (mavfs_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->cache_readdir = ino != FUSE_ROOT_ID;
	fuse_reply_open(req, fi);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* statvfs of the repository's filesystem, in 4 KiB blocks. */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s, out;
	double scale;

	(void)ino;
	if (statvfs(mavfs_of(req)->repo_path, &s) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	scale = (double)s.f_frsize / 4096.0;
	memset(&out, 0, sizeof(out));
	out.f_bsize = 4096;
	out.f_frsize = 4096;
	out.f_blocks = (fsblkcnt_t)((double)s.f_blocks * scale);
	out.f_bfree = (fsblkcnt_t)((double)s.f_bfree * scale);
	out.f_bavail = (fsblkcnt_t)((double)s.f_bavail * scale);
	out.f_files = s.f_files;
	out.f_ffree = s.f_ffree;
	out.f_favail = s.f_favail;
	out.f_namemax = 255;
	fuse_reply_statfs(req, &out);
}

const struct fuse_lowlevel_ops mavfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = mavfs_op_readlink,
    .mknod = mavfs_op_mknod,
    .mkdir = mavfs_op_mkdir,
    .unlink = mavfs_op_unlink,
    .rmdir = mavfs_op_rmdir,
    .symlink = mavfs_op_symlink,
    .rename = mavfs_op_rename,
    .link = mavfs_op_link,
    .open = op_open,
    .read = mavfs_op_read,
    .write = mavfs_op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = mavfs_op_fsync,
    .fallocate = mavfs_op_fallocate,
    .lseek = mavfs_op_lseek,
    .copy_file_range = mavfs_op_copy_file_range,
    .opendir = op_opendir,
    .readdir = mavfs_op_readdir,
    .releasedir = op_release,
    .fsyncdir = mavfs_op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = mavfs_op_setxattr,
    .getxattr = mavfs_op_getxattr,
    .listxattr = mavfs_op_listxattr,
    .removexattr = mavfs_op_removexattr,
    .create = mavfs_op_create,
    .readdirplus = mavfs_op_readdirplus,
};
