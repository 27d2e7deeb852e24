/* dirops.c - directories and names.
 *
 * Listings: offsets 1 and 2 are "." and ".."; a tree entry whose wt cookie
 * is c has offset c + 2 (wt cookies stay below 2^63 - 2). With readdirplus
 * every entry the reply carries is a kernel reference: the wt counted it
 * when it handed the entry out, we record it in the view before replying,
 * and drop it all again if the reply does not reach the kernel. "." and
 * ".." carry no node id (the kernel never takes references for them).
 *
 * Names: every change goes to the view's working tree under the gc lock
 * (shared); the root and read-only views answer EROFS, a link or rename
 * between two working trees EXDEV.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dirops.h"
#include "ops.h"
#include "root.h"

struct dirfill {
	fuse_req_t req;
	struct mavfs *fs;
	struct mavfs_view *v;
	char *buf;
	size_t size, used;
	bool plus;
	uint64_t *refs; /* wt inodes handed to the kernel (plus) */
	size_t nrefs, caprefs;
};

static size_t add_entry(struct dirfill *d, const char *name,
                        const struct mav_attr *a, uint64_t ino, off_t next)
{
	struct fuse_entry_param e;

	mavfs_fill_entry(&e, d->fs, d->v, a);
	e.attr.st_ino = ino;
	if (!a->ino)
		e.ino = 0; /* "." and "..": no reference */
	if (d->plus)
		return fuse_add_direntry_plus(d->req, d->buf + d->used,
		                              d->size - d->used, name, &e,
		                              next);
	return fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used,
	                         name, &e.attr, next);
}

/* mav_wt_dirent_fn: nonzero stops before consuming the entry. */
static int fill_one(void *ctx, const char *name, const struct mav_attr *a,
                    uint64_t next)
{
	struct dirfill *d = ctx;
	size_t need;

	if (a->ino > MAVFS_WINO_MASK || next > INT64_MAX - 2)
		return 1;
	if (d->plus && d->nrefs == d->caprefs) {
		size_t cap = d->caprefs ? d->caprefs * 2 : 64;
		uint64_t *r = realloc(d->refs, cap * sizeof(*r));

		if (!r)
			return 1;
		d->refs = r;
		d->caprefs = cap;
	}
	need = add_entry(d, name, a, mavfs_ino(d->v->prefix, a->ino),
	                 (off_t)next + 2);
	if (need > d->size - d->used)
		return 1;
	d->used += need;
	if (d->plus)
		d->refs[d->nrefs++] = a->ino;
	return 0;
}

/* "." and ".." as needed for offset off. */
static void fill_dots(struct dirfill *d, fuse_ino_t ino, off_t off)
{
	struct mav_attr a = {.type = MAV_T_DIR};
	uint64_t up = mavfs_ino_wino(ino) == MAV_WT_ROOT ? FUSE_ROOT_ID : ino;
	size_t need;

	if (off < 1) {
		need = add_entry(d, ".", &a, ino, 1);
		if (need <= d->size - d->used)
			d->used += need;
	}
	if (off < 2) {
		need = add_entry(d, "..", &a, up, 2);
		if (need <= d->size - d->used)
			d->used += need;
	}
}

static void reply_listing(struct dirfill *d, int rc)
{
	struct mavfs_views *vs = d->fs->views;

	if (rc < 0 && d->used == 0) {
		mavfs_reply_err(d->req, rc, "readdir");
		return;
	}
	for (size_t i = 0; i < d->nrefs; i++)
		mavfs_view_ref(vs, d->v, d->refs[i], 1);
	if (fuse_reply_buf(d->req, d->buf, d->used) != 0) {
		for (size_t i = 0; i < d->nrefs; i++)
			mavfs_view_forget(
			    vs, mavfs_ino(d->v->prefix, d->refs[i]), 1);
	}
}

static void view_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                         bool plus)
{
	struct mavfs *fs = mavfs_of(req);
	struct dirfill d = {
	    .req = req, .fs = mavfs_of(req), .size = size, .plus = plus};
	int rc;

	d.v = mavfs_pin(req, ino);
	if (!d.v)
		return;
	d.buf = malloc(size);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	fill_dots(&d, ino, off);
	rc = mav_wt_readdir(d.v->wt, mavfs_ino_wino(ino),
	                    off >= 2 ? (uint64_t)off - 2 : 0, plus, fill_one,
	                    &d);
	reply_listing(&d, rc);
out:
	free(d.buf);
	free(d.refs);
	mavfs_unpin(fs, d.v);
}

static void any_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        bool plus)
{
	char *buf;
	ssize_t n;

	if (ino != FUSE_ROOT_ID) {
		view_readdir(req, ino, size, off, plus);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = mavfs_root_readdir(buf, size, req, mavfs_of(req), off, plus);
	if (n < 0)
		mavfs_reply_err(req, (int)n, "root listing");
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void mavfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
	(void)fi;
	any_readdir(req, ino, size, off, false);
}

void mavfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                          off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	any_readdir(req, ino, size, off, true);
}

void mavfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	char *target = NULL;
	int rc;

	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	v = mavfs_pin(req, ino);
	if (!v)
		return;
	rc = mav_wt_readlink(&target, v->wt, mavfs_ino_wino(ino));
	if (rc < 0)
		mavfs_reply_err(req, rc, "readlink");
	else
		fuse_reply_readlink(req, target);
	free(target);
	mavfs_unpin(fs, v);
}

enum make_kind { MAKE_FILE, MAKE_DIR, MAKE_LINK, MAKE_NODE };

static void make(fuse_req_t req, fuse_ino_t parent, const char *name,
                 enum make_kind kind, mode_t mode, const char *target,
                 struct fuse_file_info *fi)
{
	struct mavfs *fs = mavfs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mavfs_view *v = mavfs_begin_change(req, parent, false);
	uint64_t p = mavfs_ino_wino(parent);
	struct mav_attr a;
	int rc;

	if (!v)
		return;
	if (kind == MAKE_FILE)
		rc = mav_wt_create(&a, v->wt, p, name, mode & 07777, ctx->uid,
		                   ctx->gid);
	else if (kind == MAKE_DIR)
		rc = mav_wt_mkdir(&a, v->wt, p, name, mode & 07777, ctx->uid,
		                  ctx->gid);
	else if (kind == MAKE_LINK)
		rc = mav_wt_symlink(&a, v->wt, p, name, target, ctx->uid,
		                    ctx->gid);
	else /* a device node is none of these: EPERM */
		rc = mav_wt_mknod(&a, v->wt, p, name,
		                  S_ISFIFO(mode)   ? MAV_T_FIFO
		                  : S_ISSOCK(mode) ? MAV_T_SOCK
		                                   : 0,
		                  mode & 07777, ctx->uid, ctx->gid);
	mavfs_write_end(fs); /* before replying: see mavfs_write_end */
	if (rc < 0) {
		mavfs_reply_err(req, rc, name);
	} else {
		if (fi) {
			fi->fh = 0;
			fi->keep_cache = 1;
		}
		mavfs_reply_entry(req, v, &a, fi);
	}
	mavfs_unpin(fs, v);
}

void mavfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, struct fuse_file_info *fi)
{
	make(req, parent, name, MAKE_FILE, mode, NULL, fi);
}

/* Regular files, named pipes and sockets' names; no device nodes. */
void mavfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                    mode_t mode, dev_t rdev)
{
	(void)rdev;
	make(req, parent, name, S_ISREG(mode) ? MAKE_FILE : MAKE_NODE, mode,
	     NULL, NULL);
}

void mavfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                    mode_t mode)
{
	make(req, parent, name, MAKE_DIR, mode, NULL, NULL);
}

void mavfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                      const char *name)
{
	make(req, parent, name, MAKE_LINK, 0777, link, NULL);
}

/* A link or rename between two views: EROFS if either is read-only (the
 * more useful answer), else EXDEV, as between two filesystems. */
static int across_views(struct mavfs *fs, fuse_ino_t a, fuse_ino_t b)
{
	fuse_ino_t inos[2] = {a, b};
	int err = EXDEV;

	for (int i = 0; i < 2; i++) {
		struct mavfs_view *v = NULL;

		if (mavfs_view_pin(&v, fs->views, inos[i]) == 0 && !v->rw)
			err = EROFS;
		mavfs_view_unpin(fs->views, v);
	}
	return err;
}

void mavfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                   const char *newname)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	struct mav_attr a;
	int rc;

	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (newparent != FUSE_ROOT_ID &&
	    mavfs_ino_prefix(ino) != mavfs_ino_prefix(newparent)) {
		fuse_reply_err(req, across_views(fs, ino, newparent));
		return;
	}
	v = mavfs_begin_change(req, newparent, false);
	if (!v)
		return;
	rc = mav_wt_link(&a, v->wt, mavfs_ino_wino(ino),
	                 mavfs_ino_wino(newparent), newname);
	mavfs_write_end(fs);
	if (rc < 0)
		mavfs_reply_err(req, rc, newname);
	else
		mavfs_reply_entry(req, v, &a, NULL);
	mavfs_unpin(fs, v);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name,
                        bool dir)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v = mavfs_begin_change(req, parent, false);
	uint64_t p = mavfs_ino_wino(parent);
	int rc;

	if (!v)
		return;
	rc = dir ? mav_wt_rmdir(v->wt, p, name) : mav_wt_unlink(v->wt, p, name);
	mavfs_reply_err(req, rc, name);
	mavfs_end_change(fs, v);
}

void mavfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

void mavfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

void mavfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                     fuse_ino_t newparent, const char *newname,
                     unsigned int flags)
{
	struct mavfs *fs = mavfs_of(req);
	struct mavfs_view *v;
	int rc;

	if (parent == FUSE_ROOT_ID || newparent == FUSE_ROOT_ID) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (mavfs_ino_prefix(parent) != mavfs_ino_prefix(newparent)) {
		fuse_reply_err(req, across_views(fs, parent, newparent));
		return;
	}
	if (flags & ~(unsigned)(MAV_RENAME_NOREPLACE | MAV_RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT */
		return;
	}
	v = mavfs_begin_change(req, parent, false);
	if (!v)
		return;
	rc = mav_wt_rename(v->wt, mavfs_ino_wino(parent), name,
	                   mavfs_ino_wino(newparent), newname, flags);
	mavfs_reply_err(req, rc, name);
	mavfs_end_change(fs, v);
}
