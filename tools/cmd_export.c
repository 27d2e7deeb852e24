/* cmd_export.c - `mavctl export REV DEST`: a version as plain files.
 *
 * Walks the snapshot's trees depth first with one directory fd per level
 * (so paths longer than PATH_MAX work), creating each name with O_EXCL.
 * Directories get their mode and mtime after their contents, otherwise
 * writing into them would change the mtime again (or fail on 0555). The
 * second and later names of a hard-linked file (same link_id) become hard
 * links of the first one written. Zero chunks become holes. Owners are
 * restored only when running as root. A file that fails midway (a damaged
 * chunk, a full disk) is removed, so what is left is whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <mav/error.h>

#include "cli.h"
#include "progress.h"
#include "tree.h"

struct link_slot {
	uint64_t link_id;
	char *path; /* relative to DEST, first name written */
	struct link_slot *next;
};

#define LINK_BUCKETS 1024

struct export_ctx {
	struct mav_repo *r;
	int rootfd;
	bool root; /* running as root: restore owners */
	struct progress prog;
	struct link_slot *links[LINK_BUCKETS];
};

static void links_free(struct export_ctx *x)
{
	for (int i = 0; i < LINK_BUCKETS; i++) {
		while (x->links[i]) {
			struct link_slot *s = x->links[i];

			x->links[i] = s->next;
			free(s->path);
			free(s);
		}
	}
}

static struct link_slot *link_find(struct export_ctx *x, uint64_t id)
{
	for (struct link_slot *s = x->links[id % LINK_BUCKETS]; s; s = s->next)
		if (s->link_id == id)
			return s;
	return NULL;
}

static int link_add(struct export_ctx *x, uint64_t id, const char *path)
{
	struct link_slot *s = calloc(1, sizeof(*s));

	if (!s || !(s->path = strdup(path))) {
		free(s);
		return mav_error_set(MAV_ENOMEM, "out of memory");
	}
	s->link_id = id;
	s->next = x->links[id % LINK_BUCKETS];
	x->links[id % LINK_BUCKETS] = s;
	return 0;
}

static int sys_fail(const char *what, const char *path)
{
	int e = errno;

	return mav_error_set(-e, "%s '%s': %s", what, path, strerror(e));
}

static void entry_times(struct timespec ts[2], const struct mav_entry *e)
{
	ts[0].tv_sec = e->mtime_ns / 1000000000;
	ts[0].tv_nsec = e->mtime_ns % 1000000000;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_nsec += 1000000000;
		ts[0].tv_sec--;
	}
	ts[1] = ts[0];
}

/* xattrs, owner, mode, mtime of an open file or directory. */
static int apply_attrs(struct export_ctx *x, int fd, const struct mav_entry *e,
                       const char *path)
{
	struct timespec ts[2];

	for (uint32_t i = 0; i < e->nxattrs; i++)
		if (fsetxattr(fd, e->xattrs[i].name, e->xattrs[i].value,
		              e->xattrs[i].len, 0))
			return sys_fail("cannot set xattr on", path);
	if (x->root && fchown(fd, e->uid, e->gid))
		return sys_fail("cannot chown", path);
	if (fchmod(fd, e->mode & 07777))
		return sys_fail("cannot chmod", path);
	entry_times(ts, e);
	if (futimens(fd, ts))
		return sys_fail("cannot set times of", path);
	return 0;
}

static int export_file(struct export_ctx *x, int dirfd,
                       const struct mav_entry *e, const char *path)
{
	struct link_slot *s = e->link_id ? link_find(x, e->link_id) : NULL;
	int fd, rc;

	if (s) {
		if (linkat(x->rootfd, s->path, dirfd, e->name, 0))
			return sys_fail("cannot link", path);
		return 0;
	}
	fd = openat(dirfd, e->name,
	            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sys_fail("cannot create", path);
	rc = tree_write_blob(x->r, &e->id, fd, 0, UINT64_MAX, true);
	if (rc == 0 && ftruncate(fd, (off_t)e->size))
		rc = sys_fail("cannot size", path);
	if (rc == 0)
		rc = apply_attrs(x, fd, e, path);
	if (close(fd) && rc == 0)
		rc = sys_fail("cannot write", path);
	/* A file that could not be written whole (a damaged chunk, a full
	 * disk) is not left behind looking complete. */
	if (rc < 0)
		unlinkat(dirfd, e->name, 0);
	if (rc == 0 && e->link_id && e->nlink > 1)
		rc = link_add(x, e->link_id, path);
	progress_done(&x->prog, 1, e->size);
	return rc;
}

/* Owner (as root), mode (unless a symlink's) and times of the name just
 * made for e, not following it. */
static int name_attrs(struct export_ctx *x, int dirfd,
                      const struct mav_entry *e, const char *path)
{
	struct timespec ts[2];

	if (x->root &&
	    fchownat(dirfd, e->name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW))
		return sys_fail("cannot chown", path);
	if (e->type != MAV_T_SYMLINK &&
	    fchmodat(dirfd, e->name, e->mode & 07777, 0))
		return sys_fail("cannot chmod", path);
	entry_times(ts, e);
	if (utimensat(dirfd, e->name, ts, AT_SYMLINK_NOFOLLOW))
		return sys_fail("cannot set times of", path);
	return 0;
}

static int export_symlink(struct export_ctx *x, int dirfd,
                          const struct mav_entry *e, const char *path)
{
	if (symlinkat(e->target ? e->target : "", dirfd, e->name))
		return sys_fail("cannot create symlink", path);
	return name_attrs(x, dirfd, e, path);
}

/* A named pipe or a socket's name. Without xattrs: Linux keeps user.*
 * xattrs on files and directories only. */
static int export_node(struct export_ctx *x, int dirfd,
                       const struct mav_entry *e, const char *path)
{
	mode_t type = e->type == MAV_T_FIFO ? S_IFIFO : S_IFSOCK;

	if (mknodat(dirfd, e->name, type | (e->mode & 07777), 0))
		return sys_fail("cannot create", path);
	return name_attrs(x, dirfd, e, path);
}

static int export_tree(struct export_ctx *x, int dirfd, const mav_id *tree,
                       const char *prefix);

static int export_dir(struct export_ctx *x, int dirfd,
                      const struct mav_entry *e, const char *path)
{
	int fd, rc;

	if (mkdirat(dirfd, e->name, 0700))
		return sys_fail("cannot create directory", path);
	fd = openat(dirfd, e->name,
	            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sys_fail("cannot open", path);
	rc = export_tree(x, fd, &e->id, path);
	if (rc == 0)
		rc = apply_attrs(x, fd, e, path);
	close(fd);
	return rc;
}

static int export_entry(struct export_ctx *x, int dirfd,
                        const struct mav_entry *e, const char *path)
{
	switch (e->type) {
	case MAV_T_DIR:
		return export_dir(x, dirfd, e, path);
	case MAV_T_SYMLINK:
		return export_symlink(x, dirfd, e, path);
	case MAV_T_FILE:
		return export_file(x, dirfd, e, path);
	case MAV_T_FIFO:
	case MAV_T_SOCK:
		return export_node(x, dirfd, e, path);
	default:
		return mav_error_set(MAV_ECORRUPT, "'%s': unknown type %u",
		                     path, e->type);
	}
}

static int export_tree(struct export_ctx *x, int dirfd, const mav_id *tree,
                       const char *prefix)
{
	const struct mav_tree *t = NULL;
	int rc = mav_repo_get_tree(x->r, tree, &t);
	size_t plen = strlen(prefix);

	for (uint32_t i = 0; rc == 0 && i < t->n; i++) {
		size_t nlen = strlen(t->e[i].name);
		char *path = malloc(plen + nlen + 2);

		if (!path) {
			rc = mav_error_set(MAV_ENOMEM, "out of memory");
			break;
		}
		snprintf(path, plen + nlen + 2, "%s%s%s", prefix,
		         plen ? "/" : "", t->e[i].name);
		rc = export_entry(x, dirfd, &t->e[i], path);
		free(path);
	}
	if (t)
		mav_repo_tree_release(x->r, t);
	return rc;
}

/* DEST must be absent (created here) or an empty directory. */
static int open_dest(const char *dest, bool *created, int *fd)
{
	int rc = 0, n = 0;
	DIR *d;

	*created = mkdir(dest, 0700) == 0;
	if (!*created && errno != EEXIST)
		return sys_fail("cannot create", dest);
	*fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return sys_fail("cannot open", dest);
	if (*created)
		return 0;
	d = fdopendir(dup(*fd));
	if (!d)
		return sys_fail("cannot read", dest);
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	if (n)
		rc = mav_error_set(MAV_EEXIST, "'%s' exists and is not empty",
		                   dest);
	return rc;
}

static int export_run(struct cli *c, struct mav_repo *r, const char *spec,
                      const char *dest)
{
	struct export_ctx x = {.r = r, .rootfd = -1, .root = geteuid() == 0};
	struct tree_node n = {0};
	bool created = false;
	int rc = tree_resolve(c, &n, r, spec);

	if (rc == 0 && n.type != MAV_T_DIR)
		rc = mav_error_set(-ENOTDIR, "'%s' is not a directory", spec);
	if (rc == 0)
		rc = open_dest(dest, &created, &x.rootfd);
	if (rc == 0) {
		progress_start(&x.prog, "export", "files");
		rc = export_tree(&x, x.rootfd, &n.id, "");
		progress_stop(&x.prog);
	}
	/* The root's own attributes only on a directory we made. */
	if (rc == 0 && created && n.e)
		rc = apply_attrs(&x, x.rootfd, n.e, dest);
	if (x.rootfd >= 0)
		close(x.rootfd);
	links_free(&x);
	tree_node_release(r, &n);
	return rc;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	int rc = cli_parse(c, argc, argv, 0, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 2)
		return cli_usage(c, "expected REV DEST");
	rc = cli_open_ro(c, &r);
	if (rc == 0)
		rc = export_run(c, r, argv[optind], argv[optind + 1]);
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}
