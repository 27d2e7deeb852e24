/* import_fs.c - import through a mounted branch (MOUNTPOINT/BRANCH).
 *
 * While mavfs holds the repository the working tree is the daemon's, so the
 * copy goes through the filesystem like any other program's would: every
 * path is opened relative to one descriptor of the branch directory, files
 * are written and fsync'd (which makes the daemon seal and sync them), then
 * owner (as root), mode, user.* xattrs and times are set on the open file.
 * The rules match import_wt.c: a name in the way is replaced, a file with
 * the same size and mtime keeps its content unless --checksum.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <mav/error.h>

#include "import.h"

struct fs_sink {
	char *root; /* MOUNTPOINT/BRANCH, for messages */
	int rootfd;
	bool as_root; /* restore owners */
};

static struct fs_sink *F(struct imp *m)
{
	return m->sink;
}

static int fs_err(int err, const char *what, const char *rel)
{
	return mav_error_set(-err, "%s '%s': %s", what, rel, strerror(err));
}

/* "." for the root, else the relative path. */
static const char *at(const char *rel)
{
	return *rel ? rel : ".";
}

static int list_fd(int fd, char ***out, size_t *n)
{
	DIR *d = fdopendir(fd);
	size_t cap = 0;
	char **v = NULL, **nv;
	struct dirent *de;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(v[*n] = strdup(de->d_name))) {
			rc = -ENOMEM;
			break;
		}
		(*n)++;
	}
	closedir(d);
	*out = v;
	return rc;
}

static int list_rel(struct fs_sink *s, const char *rel, char ***out, size_t *n)
{
	int fd = openat(s->rootfd, at(rel),
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		*out = NULL;
		*n = 0;
		return -errno;
	}
	return list_fd(fd, out, n);
}

static int op_names(struct imp *m, struct imp_dir *d, char ***out, size_t *n)
{
	int rc = list_rel(F(m), d->rel, out, n);

	return rc ? fs_err(-rc, "cannot list", at(d->rel)) : 0;
}

/* Remove rel, recursively; absent is fine. */
static int rm_rel(struct fs_sink *s, const char *rel)
{
	struct stat st;
	char **v = NULL;
	size_t n = 0;
	int rc = 0;

	if (fstatat(s->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : fs_err(errno, "cannot stat", rel);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(s->rootfd, rel, 0) && errno != ENOENT)
			return fs_err(errno, "cannot remove", rel);
		return 0;
	}
	rc = list_rel(s, rel, &v, &n);
	if (rc)
		rc = fs_err(-rc, "cannot list", rel);
	for (size_t i = 0; i < n; i++) {
		char *p = rc ? NULL : imp_join(rel, v[i]);

		if (rc == 0)
			rc = p ? rm_rel(s, p) : -ENOMEM;
		free(p);
		free(v[i]);
	}
	free(v);
	if (rc == 0 && unlinkat(s->rootfd, rel, AT_REMOVEDIR))
		rc = fs_err(errno, "cannot remove", rel);
	return rc;
}

static int op_remove(struct imp *m, struct imp_dir *d, const char *name)
{
	char *p = imp_join(d->rel, name);
	int rc = p ? rm_rel(F(m), p) : -ENOMEM;

	free(p);
	return rc;
}

static int op_mkdir(struct imp *m, struct imp_dir *d, const char *name,
                    struct imp_dir *child)
{
	struct fs_sink *s = F(m);
	struct stat st;
	int rc = 0;

	(void)d;
	if (fstatat(s->rootfd, child->rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		rc = rm_rel(s, child->rel);
	}
	if (rc == 0 && mkdirat(s->rootfd, child->rel, 0700))
		rc = fs_err(errno, "cannot make directory", child->rel);
	(void)name;
	return rc;
}

static void stat_times(struct timespec ts[2], const struct stat *st)
{
	ts[0] = st->st_atim;
	ts[1] = st->st_mtim;
}

/* Owner (as root) and times of the name rel, not following it. */
static int owner_times(struct fs_sink *s, const char *rel,
                       const struct stat *st)
{
	struct timespec ts[2];

	if (s->as_root && fchownat(s->rootfd, rel, st->st_uid, st->st_gid,
	                           AT_SYMLINK_NOFOLLOW))
		return fs_err(errno, "cannot chown", rel);
	stat_times(ts, st);
	if (utimensat(s->rootfd, rel, ts, AT_SYMLINK_NOFOLLOW))
		return fs_err(errno, "cannot set times of", rel);
	return 0;
}

static int op_symlink(struct imp *m, struct imp_dir *d, const char *name,
                      const char *target, const struct stat *st)
{
	struct fs_sink *s = F(m);
	char *p = imp_join(d->rel, name), have[4096];
	struct stat cur;
	ssize_t n;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	if (fstatat(s->rootfd, p, &cur, AT_SYMLINK_NOFOLLOW) == 0) {
		n = S_ISLNK(cur.st_mode)
		        ? readlinkat(s->rootfd, p, have, sizeof(have) - 1)
		        : -1;
		if (n >= 0 && (have[n] = '\0', strcmp(have, target) == 0) &&
		    imp_mtime_ns(&cur) == imp_mtime_ns(st))
			goto out;
		rc = rm_rel(s, p);
	}
	if (rc == 0 && symlinkat(target, s->rootfd, p))
		rc = fs_err(errno, "cannot make symlink", p);
	if (rc == 0)
		rc = owner_times(s, p, st);
out:
	free(p);
	return rc;
}

static int op_node(struct imp *m, struct imp_dir *d, const char *name,
                   const struct stat *st)
{
	struct fs_sink *s = F(m);
	char *p = imp_join(d->rel, name);
	struct stat cur;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	if (fstatat(s->rootfd, p, &cur, AT_SYMLINK_NOFOLLOW) == 0) {
		if (cur.st_mode == st->st_mode &&
		    imp_mtime_ns(&cur) == imp_mtime_ns(st) &&
		    (!s->as_root ||
		     (cur.st_uid == st->st_uid && cur.st_gid == st->st_gid)))
			goto out;
		rc = rm_rel(s, p);
	}
	if (rc == 0 && mknodat(s->rootfd, p, st->st_mode & (S_IFMT | 07777), 0))
		rc = fs_err(errno, "cannot make", p);
	if (rc == 0 && fchmodat(s->rootfd, p, st->st_mode & 07777, 0))
		rc = fs_err(errno, "cannot chmod", p); /* the umask cut it */
	if (rc == 0)
		rc = owner_times(s, p, st);
out:
	free(p);
	return rc;
}

/* Make fd's user.* xattrs exactly xa, then owner, mode and times. */
static int apply(struct fs_sink *s, int fd, const struct stat *st,
                 const struct imp_xattrs *xa, const char *rel)
{
	struct imp_xattrs have;
	struct timespec ts[2];
	int rc = imp_xattrs_fd(&have, fd, rel);

	for (uint32_t i = 0; rc == 0 && i < have.n; i++) {
		bool keep = false;

		for (uint32_t k = 0; k < xa->n && !keep; k++)
			keep = strcmp(xa->x[k].name, have.x[i].name) == 0;
		if (!keep && fremovexattr(fd, have.x[i].name))
			rc = fs_err(errno, "cannot remove xattr of", rel);
	}
	imp_xattrs_free(&have);
	for (uint32_t i = 0; rc == 0 && i < xa->n; i++)
		if (fsetxattr(fd, xa->x[i].name, xa->x[i].value, xa->x[i].len,
		              0))
			rc = fs_err(errno, "cannot set xattr of", rel);
	if (rc == 0 && s->as_root && fchown(fd, st->st_uid, st->st_gid))
		rc = fs_err(errno, "cannot chown", rel);
	if (rc == 0 && fchmod(fd, st->st_mode & 07777))
		rc = fs_err(errno, "cannot chmod", rel);
	stat_times(ts, st);
	if (rc == 0 && futimens(fd, ts))
		rc = fs_err(errno, "cannot set times of", rel);
	return rc;
}

/* Does the file at rel already have j's mode, owner and xattrs? */
static int same_meta(struct fs_sink *s, struct imp_job *j, const char *rel,
                     const struct stat *cur, const struct imp_xattrs *want)
{
	struct imp_xattrs have;
	char *abs = imp_join(s->root, rel);
	bool same;
	int rc;

	if (!abs)
		return -ENOMEM;
	rc = imp_xattrs_path(&have, abs);
	free(abs);
	if (rc)
		return rc;
	same = (cur->st_mode & 07777) == (j->st.st_mode & 07777) &&
	       (!s->as_root ||
	        (cur->st_uid == j->st.st_uid && cur->st_gid == j->st.st_gid)) &&
	       imp_xattrs_equal(&have, want);
	imp_xattrs_free(&have);
	return same;
}

/* Same size and mtime: keep the content. Returns 1 when kept (metadata
 * refreshed if it differed), 0 when the file must be copied again: a
 * hard-linked file is never changed in place, it is replaced and relinked
 * so that every name ends up right. */
static int keep_content(struct fs_sink *s, struct imp_job *j, const char *p,
                        const struct stat *cur)
{
	struct imp_xattrs xa;
	int fd, rc = imp_xattrs_path(&xa, j->src);

	if (rc)
		return rc;
	rc = same_meta(s, j, p, cur, &xa);
	if (rc == 0 && cur->st_nlink <= 1) {
		fd = openat(s->rootfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? fs_err(errno, "cannot open", p)
		            : apply(s, fd, &j->st, &xa, p);
		if (fd >= 0)
			close(fd);
		rc = rc ? rc : 1;
	}
	imp_xattrs_free(&xa);
	return rc;
}

static int op_prepare(struct imp *m, struct imp_job *j)
{
	struct fs_sink *s = F(m);
	char *p = imp_join(j->dir->rel, j->name);
	struct stat cur;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	if (fstatat(s->rootfd, p, &cur, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(cur.st_mode) && !m->checksum &&
		    cur.st_size == j->st.st_size &&
		    imp_mtime_ns(&cur) == imp_mtime_ns(&j->st))
			rc = keep_content(s, j, p, &cur);
		/* O_TRUNC must not write through another hard link. */
		if (rc == 0 && (!S_ISREG(cur.st_mode) || cur.st_nlink > 1))
			rc = rm_rel(s, p);
	}
	free(p);
	return rc;
}

struct out_fd {
	int fd;
	const char *rel;
	uint64_t size; /* bytes so far, holes included */
};

static int write_out(void *ctx, const void *buf, uint64_t n, bool hole)
{
	struct out_fd *o = ctx;
	const char *p = buf;

	o->size += n;
	if (hole) { /* leave it a hole; the final size comes from ftruncate */
		if (lseek(o->fd, (off_t)n, SEEK_CUR) < 0)
			return fs_err(errno, "cannot seek in", o->rel);
		return 0;
	}
	while (n > 0) {
		ssize_t w = write(o->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return fs_err(errno, "cannot write", o->rel);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int op_file(struct imp *m, struct imp_job *j, int fd,
                   struct imp_xattrs *xa, uint8_t *buf)
{
	struct fs_sink *s = F(m);
	struct out_fd o = {-1, imp_join(j->dir->rel, j->name), 0};
	int rc = o.rel ? 0 : -ENOMEM;

	if (rc == 0) {
		o.fd = openat(s->rootfd, o.rel,
		              O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		                  O_CLOEXEC,
		              0600);
		if (o.fd < 0)
			rc = fs_err(errno, "cannot create", o.rel);
	}
	if (rc == 0)
		rc = imp_read(m, fd, j->src, buf, write_out, &o);
	if (rc == 0 && ftruncate(o.fd, (off_t)o.size))
		rc = fs_err(errno, "cannot size", o.rel);
	if (rc == 0)
		rc = apply(s, o.fd, &j->st, xa, o.rel);
	if (rc == 0 && fsync(o.fd))
		rc = fs_err(errno, "cannot sync", o.rel);
	if (o.fd >= 0 && close(o.fd) && rc == 0)
		rc = fs_err(errno, "cannot write", o.rel);
	if (rc == 0 && j->hl)
		atomic_store(&j->hl->done, true);
	free((char *)o.rel);
	return rc && rc != -ECANCELED ? imp_fail(m, rc) : rc;
}

static int op_link(struct imp *m, struct imp_dir *d, const char *name,
                   struct imp_hl *hl)
{
	struct fs_sink *s = F(m);
	char *from = imp_join(hl->first_dir->rel, hl->first_name);
	char *to = imp_join(d->rel, name);
	struct stat a, b;
	int rc = from && to ? 0 : -ENOMEM;

	if (rc == 0 && fstatat(s->rootfd, from, &a, AT_SYMLINK_NOFOLLOW))
		rc = fs_err(errno, "cannot find link target", from);
	if (rc == 0 && fstatat(s->rootfd, to, &b, AT_SYMLINK_NOFOLLOW) == 0) {
		if (b.st_ino == a.st_ino && b.st_dev == a.st_dev)
			goto out;
		rc = rm_rel(s, to);
	}
	if (rc == 0 && linkat(s->rootfd, from, s->rootfd, to, 0))
		rc = fs_err(errno, "cannot link", to);
out:
	free(from);
	free(to);
	return rc;
}

static int op_dir_attrs(struct imp *m, struct imp_dir *d,
                        const struct imp_xattrs *xa)
{
	struct fs_sink *s = F(m);
	int fd = openat(s->rootfd, at(d->rel),
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return fs_err(errno, "cannot open", at(d->rel));
	rc = apply(s, fd, &d->st, xa, at(d->rel));
	close(fd);
	return rc;
}

static int op_finish(struct imp *m)
{
	/* Files were fsync'd one by one; this covers directories and links
	 * where the kernel passes it on. */
	syncfs(F(m)->rootfd);
	return 0;
}

static void op_close(struct imp *m)
{
	struct fs_sink *s = F(m);

	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s->root);
	free(s);
	m->sink = NULL;
}

static const struct imp_ops fs_ops = {
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

int imp_fs_open(struct imp *m, const char *dest)
{
	struct fs_sink *s = calloc(1, sizeof(*s));

	if (!s || !(s->root = strdup(dest))) {
		free(s);
		return mav_error_set(MAV_ENOMEM, "out of memory");
	}
	s->as_root = geteuid() == 0;
	s->rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		int e = errno;

		free(s->root);
		free(s);
		return mav_error_set(e == ENOENT ? MAV_ENOTFOUND : -e,
		                     "cannot open '%s': %s", dest, strerror(e));
	}
	m->sink = s;
	m->ops = &fs_ops;
	return 0;
}
