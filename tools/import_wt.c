/* import_wt.c - import straight into a branch's working tree.
 *
 * Workers stream each file through their own mav_writer; the writer stores
 * chunks without the write-ahead log (MAV_KV_NO_WAL), so a file is put into
 * the working tree only after mav_repo_flush() has made its chunks durable:
 * finished files wait on a short pending list (at most COMMIT_FILES files or
 * COMMIT_BYTES bytes) and are put in one go after a flush. After a crash the
 * working tree therefore never names a chunk that was lost; at worst some
 * chunks are stored that nothing names yet (gc takes them). Each batch is
 * synced, so after a crash a re-import skips what was already done.
 *
 * A file whose size and mtime match what the working tree has keeps its
 * content without being read (unless --checksum); if its mode, owner and
 * xattrs match too nothing is written at all, so re-importing an unchanged
 * tree leaves `status` empty.
 *
 * Lock: sink.mu guards the pending list and is held across flush + puts.
 * The working tree has its own lock for everything else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mav/error.h>
#include <mav/wt.h>

#include "import.h"

#define COMMIT_FILES 4096
#define COMMIT_BYTES (256ull << 20)

struct wt_done {
	struct imp_dir *dir;
	char *name;
	struct mav_attr attr;
	mav_id blob;
	struct imp_xattrs xa;
	struct imp_hl *hl;
	struct wt_done *next;
};

struct wt_sink {
	struct mav_repo *r;
	struct mav_wt *wt;
	pthread_mutex_t mu; /* guards pending..pending_bytes */
	struct wt_done *pending, **tail;
	size_t npending;
	uint64_t pending_bytes;
};

static struct wt_sink *S(struct imp *m)
{
	return m->sink;
}

/* Name the path in a working-tree failure (keeping the store's words). */
static int wt_err(int rc, const char *what, const struct imp_dir *d,
                  const char *name)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s",
	         *mav_error_message() ? mav_error_message()
	                              : mav_error_name(rc));
	return mav_error_set(rc, "%s '%s%s%s': %s", what, d->rel,
	                     *d->rel ? "/" : "", name, msg);
}

static void attr_from_stat(struct mav_attr *a, const struct stat *st, int type,
                           uint64_t size)
{
	memset(a, 0, sizeof(*a));
	a->type = (uint8_t)type;
	a->mode = st->st_mode & 07777;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->nlink = 1;
	a->size = size;
	a->atime_ns = mav_time_ns(st->st_atim.tv_sec, st->st_atim.tv_nsec);
	a->mtime_ns = imp_mtime_ns(st);
	a->ctime_ns = a->mtime_ns;
}

/* ---- listing and removing ---- */

struct names_ctx {
	char **v;
	size_t n, cap;
	int rc;
};

static int names_cb(void *arg, const char *name, const struct mav_attr *a,
                    uint64_t next)
{
	struct names_ctx *x = arg;
	char **v;

	(void)a;
	(void)next;
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 64;
		v = realloc(x->v, x->cap * sizeof(*v));
		if (!v)
			return x->rc = -ENOMEM;
		x->v = v;
	}
	if (!(x->v[x->n] = strdup(name)))
		return x->rc = -ENOMEM;
	x->n++;
	return 0;
}

static int list_ino(struct mav_wt *wt, uint64_t ino, char ***out, size_t *n)
{
	struct names_ctx x = {NULL, 0, 0, 0};
	int rc = mav_wt_readdir(wt, ino, 0, false, names_cb, &x);

	if (rc == 0 && x.rc)
		rc = x.rc;
	if (rc) {
		for (size_t i = 0; i < x.n; i++)
			free(x.v[i]);
		free(x.v);
		x.v = NULL;
		x.n = 0;
	}
	*out = x.v;
	*n = x.n;
	return rc;
}

static int op_names(struct imp *m, struct imp_dir *d, char ***out, size_t *n)
{
	int rc = list_ino(S(m)->wt, d->ino, out, n);

	return rc ? wt_err(rc, "cannot list", d, "") : 0;
}

static int rm_at(struct mav_wt *wt, uint64_t parent, const char *name)
{
	struct mav_attr a;
	char **v = NULL;
	size_t n = 0;
	int rc = mav_wt_lookup(&a, wt, parent, name);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (a.type == MAV_T_DIR) {
		rc = list_ino(wt, a.ino, &v, &n);
		for (size_t i = 0; i < n; i++) {
			if (rc == 0)
				rc = rm_at(wt, a.ino, v[i]);
			free(v[i]);
		}
		free(v);
	}
	mav_wt_forget(wt, a.ino, 1);
	if (rc)
		return rc;
	return a.type == MAV_T_DIR ? mav_wt_rmdir(wt, parent, name)
	                           : mav_wt_unlink(wt, parent, name);
}

static int op_remove(struct imp *m, struct imp_dir *d, const char *name)
{
	int rc = rm_at(S(m)->wt, d->ino, name);

	return rc ? wt_err(rc, "cannot remove", d, name) : 0;
}

/* ---- directories and symlinks (main thread) ---- */

static int op_mkdir(struct imp *m, struct imp_dir *d, const char *name,
                    struct imp_dir *child)
{
	struct mav_wt *wt = S(m)->wt;
	struct mav_attr a;
	int rc = mav_wt_lookup(&a, wt, d->ino, name);

	if (rc == 0 && a.type == MAV_T_DIR) {
		child->ino = a.ino; /* keep the reference until the end */
		return 0;
	}
	if (rc == 0) {
		mav_wt_forget(wt, a.ino, 1);
		rc = mav_wt_unlink(wt, d->ino, name);
	}
	if (rc == 0 || rc == -ENOENT)
		rc = mav_wt_mkdir(&a, wt, d->ino, name,
		                  (child->st.st_mode & 07777) | 0700,
		                  child->st.st_uid, child->st.st_gid);
	if (rc)
		return wt_err(rc, "cannot make directory", d, name);
	child->ino = a.ino;
	return 0;
}

/* Is the symlink at ino already exactly this one? */
static bool same_symlink(struct mav_wt *wt, const struct mav_attr *a,
                         const char *target, const struct stat *st)
{
	char *have = NULL;
	bool same;

	if (a->type != MAV_T_SYMLINK || a->uid != st->st_uid ||
	    a->gid != st->st_gid || a->mtime_ns != imp_mtime_ns(st) ||
	    mav_wt_readlink(&have, wt, a->ino))
		return false;
	same = strcmp(have, target) == 0;
	free(have);
	return same;
}

static int op_symlink(struct imp *m, struct imp_dir *d, const char *name,
                      const char *target, const struct stat *st)
{
	struct mav_wt *wt = S(m)->wt;
	struct mav_attr a, in;
	int rc = mav_wt_lookup(&a, wt, d->ino, name);

	if (rc == 0) {
		bool same = same_symlink(wt, &a, target, st);

		mav_wt_forget(wt, a.ino, 1);
		if (same)
			return 0;
		rc = rm_at(wt, d->ino, name);
	}
	if (rc == 0 || rc == -ENOENT)
		rc = mav_wt_symlink(&a, wt, d->ino, name, target, st->st_uid,
		                    st->st_gid);
	if (rc == 0) {
		attr_from_stat(&in, st, MAV_T_SYMLINK, 0);
		rc = mav_wt_setattr(&in, wt, a.ino, &in, MAV_SET_MTIME);
		mav_wt_forget(wt, a.ino, 1);
	}
	return rc ? wt_err(rc, "cannot make symlink", d, name) : 0;
}

static int op_node(struct imp *m, struct imp_dir *d, const char *name,
                   const struct stat *st)
{
	struct mav_wt *wt = S(m)->wt;
	uint8_t type = S_ISFIFO(st->st_mode) ? MAV_T_FIFO : MAV_T_SOCK;
	struct mav_attr a, in;
	int rc = mav_wt_lookup(&a, wt, d->ino, name);

	attr_from_stat(&in, st, type, 0);
	if (rc == 0) {
		bool same = a.type == type && a.mode == in.mode &&
		            a.uid == in.uid && a.gid == in.gid &&
		            a.mtime_ns == in.mtime_ns;

		mav_wt_forget(wt, a.ino, 1);
		if (same)
			return 0;
		rc = rm_at(wt, d->ino, name);
	}
	if (rc == 0 || rc == -ENOENT)
		rc = mav_wt_mknod(&a, wt, d->ino, name, type, in.mode, in.uid,
		                  in.gid);
	if (rc == 0) {
		rc = mav_wt_setattr(&a, wt, a.ino, &in, MAV_SET_MTIME);
		mav_wt_forget(wt, a.ino, 1);
	}
	return rc ? wt_err(rc, "cannot make", d, name) : 0;
}

/* ---- files ---- */

/* user.* xattrs of a working-tree inode, sorted. */
static int wt_xattrs(struct imp_xattrs *out, struct mav_wt *wt, uint64_t ino)
{
	ssize_t len = mav_wt_listxattr(wt, ino, NULL, 0), got;
	char *names = len > 0 ? malloc((size_t)len) : NULL;
	struct imp_xattrs all = {0, NULL};
	int rc = len < 0 ? (int)len : 0;

	*out = all;
	if (len <= 0)
		return rc;
	if (!names)
		return -ENOMEM;
	len = mav_wt_listxattr(wt, ino, names, (size_t)len);
	for (ssize_t off = 0; len > 0 && off < len;
	     off += (ssize_t)strlen(names + off) + 1) {
		struct mav_xattr *x;
		const char *nm = names + off;

		if (strncmp(nm, "user.", 5) != 0)
			continue;
		got = mav_wt_getxattr(wt, ino, nm, NULL, 0);
		x = realloc(all.x, (all.n + 1) * sizeof(*x));
		if (got < 0 || !x) {
			free(x ? x : all.x);
			all.x = NULL;
			all.n = 0;
			rc = got < 0 ? (int)got : -ENOMEM;
			break;
		}
		all.x = x;
		x = &all.x[all.n++];
		x->name = strdup(nm);
		x->value = malloc(got ? (size_t)got : 1);
		x->len = (uint32_t)got;
		if (x->value)
			mav_wt_getxattr(wt, ino, nm, x->value, (size_t)got);
	}
	free(names);
	*out = all;
	return rc;
}

/* Same size and mtime: keep the stored content; write only what differs. */
static int keep_content(struct imp *m, struct imp_job *j,
                        const struct mav_attr *a)
{
	struct mav_wt *wt = S(m)->wt;
	struct imp_xattrs src = {0, NULL}, have = {0, NULL};
	struct mav_attr in, out;
	mav_id id;
	int rc;

	if (mav_wt_content_id(&id, NULL, wt, a->ino))
		return 0; /* not sealed: read it */
	rc = imp_xattrs_path(&src, j->src);
	if (rc == 0 && wt_xattrs(&have, wt, a->ino) == 0 &&
	    a->mode == (j->st.st_mode & 07777) && a->uid == j->st.st_uid &&
	    a->gid == j->st.st_gid && imp_xattrs_equal(&src, &have)) {
		rc = 1; /* nothing to do */
	} else if (rc == 0 && a->nlink <= 1) {
		/* (A hard-linked file is replaced and relinked instead:
		 * changing it in place is not reliable across a snapshot.) */
		attr_from_stat(&in, &j->st, MAV_T_FILE, a->size);
		rc = mav_wt_put_file(&out, wt, j->dir->ino, j->name, &in, &id,
		                     src.x, src.n);
		rc = rc ? wt_err(rc, "cannot update", j->dir, j->name) : 1;
	}
	imp_xattrs_free(&src);
	imp_xattrs_free(&have);
	return rc;
}

static int op_prepare(struct imp *m, struct imp_job *j)
{
	struct mav_wt *wt = S(m)->wt;
	struct mav_attr a;
	int rc = mav_wt_lookup(&a, wt, j->dir->ino, j->name);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return wt_err(rc, "cannot look up", j->dir, j->name);
	/* Hard links too: if the names still share the inode, op_link
	 * finds each already in place. */
	if (a.type == MAV_T_FILE && !m->checksum &&
	    a.size == (uint64_t)j->st.st_size &&
	    a.mtime_ns == imp_mtime_ns(&j->st))
		rc = keep_content(m, j, &a);
	mav_wt_forget(wt, a.ino, 1);
	if (rc)
		return rc;
	/* put_file replaces a file in place: never through a hard link,
	 * and never over a directory. */
	if (a.type == MAV_T_DIR || a.nlink > 1)
		rc = rm_at(wt, j->dir->ino, j->name);
	return rc ? wt_err(rc, "cannot replace", j->dir, j->name) : 0;
}

static void done_free(struct wt_done *d)
{
	imp_xattrs_free(&d->xa);
	free(d->name);
	free(d);
}

/* Flush (chunks durable), then name the files. Caller holds s->mu. */
static int commit_locked(struct imp *m)
{
	struct wt_sink *s = S(m);
	struct wt_done *d, *next;
	struct mav_attr out;
	int rc = 0;

	if (!s->pending)
		return 0;
	rc = mav_repo_flush(s->r);
	for (d = s->pending; d; d = next) {
		next = d->next;
		if (rc == 0) {
			rc = mav_wt_put_file(&out, s->wt, d->dir->ino, d->name,
			                     &d->attr, &d->blob, d->xa.x,
			                     d->xa.n);
			if (rc)
				wt_err(rc, "cannot add", d->dir, d->name);
			else if (d->hl)
				atomic_store(&d->hl->done, true);
		}
		done_free(d);
	}
	s->pending = NULL;
	s->tail = &s->pending;
	s->npending = 0;
	s->pending_bytes = 0;
	/* Persist the names too, so a crash keeps what was imported so far
	 * (a re-import then skips it by size and mtime). */
	if (rc == 0)
		rc = mav_wt_sync(s->wt);
	return rc;
}

static int feed(void *ctx, const void *p, size_t n, bool hole)
{
	return hole ? mav_writer_feed_zeros(ctx, n)
	            : mav_writer_feed(ctx, p, n);
}

static int op_file(struct imp *m, struct imp_job *j, int fd,
                   struct imp_xattrs *xa, uint8_t *buf)
{
	struct wt_sink *s = S(m);
	struct mav_writer *w = NULL;
	struct wt_done *d = calloc(1, sizeof(*d));
	uint64_t size = 0;
	int rc = d ? mav_writer_new(&w, s->r) : -ENOMEM;

	if (rc == 0)
		rc = imp_read(m, fd, j->src, buf, feed, w);
	if (rc == 0)
		rc = mav_writer_finish(w, &d->blob, &size);
	mav_writer_free(w);
	if (rc == 0 && !(d->name = strdup(j->name)))
		rc = -ENOMEM;
	if (rc) {
		if (d)
			done_free(d);
		return rc == -ECANCELED ? rc : imp_fail(m, rc);
	}
	d->dir = j->dir;
	d->hl = j->hl;
	d->xa = *xa; /* take them */
	xa->n = 0;
	xa->x = NULL;
	attr_from_stat(&d->attr, &j->st, MAV_T_FILE, size);
	pthread_mutex_lock(&s->mu);
	*s->tail = d;
	s->tail = &d->next;
	s->npending++;
	s->pending_bytes += size;
	rc = 0;
	if (s->npending >= COMMIT_FILES || s->pending_bytes >= COMMIT_BYTES)
		rc = commit_locked(m);
	pthread_mutex_unlock(&s->mu);
	return rc ? imp_fail(m, rc) : 0;
}

/* ---- the end ---- */

static int op_link(struct imp *m, struct imp_dir *d, const char *name,
                   struct imp_hl *hl)
{
	struct mav_wt *wt = S(m)->wt;
	struct mav_attr a, b, out;
	int rc = mav_wt_lookup(&a, wt, hl->first_dir->ino, hl->first_name);

	if (rc)
		return wt_err(rc, "cannot find link target", hl->first_dir,
		              hl->first_name);
	if (mav_wt_lookup(&b, wt, d->ino, name) == 0) {
		bool same = b.ino == a.ino;

		mav_wt_forget(wt, b.ino, 1);
		if (same)
			goto out;
		rc = rm_at(wt, d->ino, name);
	}
	if (rc == 0)
		rc = mav_wt_link(&out, wt, a.ino, d->ino, name);
	if (rc == 0)
		mav_wt_forget(wt, out.ino, 1);
	else
		wt_err(rc, "cannot link", d, name);
out:
	mav_wt_forget(wt, a.ino, 1);
	return rc;
}

static int sync_xattrs(struct mav_wt *wt, uint64_t ino,
                       const struct imp_xattrs *xa)
{
	struct imp_xattrs have;
	int rc = wt_xattrs(&have, wt, ino);

	if (rc == 0 && imp_xattrs_equal(&have, xa)) {
		imp_xattrs_free(&have);
		return 0;
	}
	for (uint32_t i = 0; rc == 0 && i < have.n; i++)
		rc = mav_wt_removexattr(wt, ino, have.x[i].name);
	for (uint32_t i = 0; rc == 0 && i < xa->n; i++)
		rc = mav_wt_setxattr(wt, ino, xa->x[i].name, xa->x[i].value,
		                     xa->x[i].len, 0);
	imp_xattrs_free(&have);
	return rc;
}

static int op_dir_attrs(struct imp *m, struct imp_dir *d,
                        const struct imp_xattrs *xa)
{
	struct mav_wt *wt = S(m)->wt;
	struct mav_attr a, in;
	int rc = sync_xattrs(wt, d->ino, xa);

	if (rc == 0)
		rc = mav_wt_getattr(&a, wt, d->ino);
	attr_from_stat(&in, &d->st, MAV_T_DIR, 0);
	if (rc == 0 && (a.mode != in.mode || a.uid != in.uid ||
	                a.gid != in.gid || a.mtime_ns != in.mtime_ns))
		rc = mav_wt_setattr(&a, wt, d->ino, &in,
		                    MAV_SET_MODE | MAV_SET_UID | MAV_SET_GID |
		                        MAV_SET_MTIME);
	return rc ? wt_err(rc, "cannot set attributes of", d, "") : 0;
}

static int op_finish(struct imp *m)
{
	struct wt_sink *s = S(m);
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = commit_locked(m);
	pthread_mutex_unlock(&s->mu);
	if (rc == 0)
		rc = mav_repo_flush(s->r);
	if (rc == 0)
		rc = mav_wt_sync(s->wt);
	return rc ? imp_fail(m, rc) : 0;
}

static void op_close(struct imp *m)
{
	struct wt_sink *s = S(m);
	struct wt_done *d;

	if (!s)
		return;
	while ((d = s->pending)) {
		s->pending = d->next;
		done_free(d);
	}
	mav_wt_close(s->wt);
	pthread_mutex_destroy(&s->mu);
	free(s);
	m->sink = NULL;
}

static const struct imp_ops wt_ops = {
    .names = op_names,
    .remove = op_remove,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .node = op_node,
    .prepare = op_prepare,
    .file = op_file,
    .link = op_link,
    .dir_attrs = op_dir_attrs,
    .finish = op_finish,
    .close = op_close,
};

int imp_wt_open(struct imp *m, struct mav_repo *r, const char *branch)
{
	struct wt_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	s->r = r;
	s->tail = &s->pending;
	pthread_mutex_init(&s->mu, NULL);
	mav_error_clear();
	rc = mav_wt_open(&s->wt, r, branch);
	if (rc) {
		if (rc == MAV_ENOTFOUND || rc == -ENOENT)
			mav_error_set(rc, "no such branch '%s'", branch);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return rc;
	}
	m->sink = s;
	m->ops = &wt_ops;
	return 0;
}
