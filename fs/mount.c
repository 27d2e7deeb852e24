/* mount.c - mountpoint checks and fixed mount options.
 *
 * "Busy" is decided from /proc/self/mountinfo (field 5, with the kernel's
 * octal escapes for space, tab, newline and backslash), because mounting
 * over an existing mount would silently hide it. A FUSE mount whose daemon
 * died answers stat() with ENOTCONN: that gets its own message.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <fuse_opt.h>

#include "mount.h"

/* Undo mountinfo's \ooo escapes in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			                (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

int mavfs_is_mountpoint(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);

		for (int i = 1; field && i < 5; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape(field);
		found = strcmp(field, path) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* A mount whose FUSE daemon died may still stat fine from cached
 * attributes; statfs always asks the daemon. */
static bool dead_fuse(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) < 0 && errno == ENOTCONN;
}

static int check_mountpoint(char **abs, const char *mnt)
{
	struct stat st;
	int busy;

	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
			        "mavfs: %s: a FUSE mount whose daemon "
			        "is gone; run fusermount3 -u %s\n",
			        mnt, mnt);
		else if (errno == ENOENT)
			fprintf(stderr, "mavfs: mountpoint %s does not exist\n",
			        mnt);
		else
			fprintf(stderr, "mavfs: mountpoint %s: %s\n", mnt,
			        strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mavfs: mountpoint %s is not a directory\n",
		        mnt);
		return -1;
	}
	*abs = realpath(mnt, NULL);
	if (!*abs) {
		fprintf(stderr, "mavfs: %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	busy = mavfs_is_mountpoint(*abs);
	if (busy > 0 && dead_fuse(*abs))
		fprintf(stderr,
		        "mavfs: %s: a FUSE mount whose daemon is gone; "
		        "run fusermount3 -u %s\n",
		        *abs, *abs);
	else if (busy > 0)
		fprintf(stderr,
		        "mavfs: mountpoint %s is busy: something is "
		        "already mounted there\n",
		        *abs);
	else if (busy < 0)
		fprintf(stderr, "mavfs: cannot read /proc/self/mountinfo: %s\n",
		        strerror(-busy));
	return busy ? -1 : 0;
}

static int check_repo(char **abs, uid_t *owner, const char *repo)
{
	struct stat st;

	*abs = realpath(repo, NULL);
	if (!*abs || stat(*abs, &st) < 0) {
		fprintf(stderr, "mavfs: %s: %s\n", repo, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mavfs: %s: not a mav repository\n", repo);
		return -1;
	}
	*owner = st.st_uid;
	return 0;
}

int mavfs_mount_check(char **repo_abs, char **mnt_abs, uid_t *owner,
                      const char *repo, const char *mnt)
{
	size_t n;

	*repo_abs = NULL;
	*mnt_abs = NULL;
	if (check_repo(repo_abs, owner, repo) < 0 ||
	    check_mountpoint(mnt_abs, mnt) < 0)
		return -1;
	n = strlen(*mnt_abs);
	if (strncmp(*repo_abs, *mnt_abs, n) == 0 &&
	    ((*repo_abs)[n] == '/' || (*repo_abs)[n] == '\0' || n == 1)) {
		fprintf(stderr,
		        "mavfs: the repository %s is inside the "
		        "mountpoint %s: it would be hidden\n",
		        *repo_abs, *mnt_abs);
		return -1;
	}
	return 0;
}

int mavfs_mount_options(struct fuse_args *args, const char *repo_abs)
{
	char *opts = NULL, *fsname;
	size_t len = strlen(repo_abs) + 8;
	int rc = -1;

	fsname = malloc(len);
	if (!fsname)
		return -ENOMEM;
	snprintf(fsname, len, "fsname=%s", repo_abs);
	if (fuse_opt_add_opt_escaped(&opts, fsname) == 0 &&
	    fuse_opt_add_opt(&opts, "subtype=mavfs") == 0 &&
	    fuse_opt_add_opt(&opts, "default_permissions") == 0 &&
	    /* atime is never stamped (reads stay reads): say so */
	    fuse_opt_add_opt(&opts, "noatime") == 0 &&
	    fuse_opt_add_arg(args, "-o") == 0 &&
	    fuse_opt_add_arg(args, opts) == 0)
		rc = 0;
	free(opts);
	free(fsname);
	return rc < 0 ? -ENOMEM : 0;
}
