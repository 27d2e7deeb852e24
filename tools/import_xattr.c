/* import_xattr.c - the user.* extended attributes of source files.
 *
 * Only the user namespace travels: security.*, trusted.* and system.* belong
 * to the machine, not to the asset. Lists and values are re-read when they
 * grow between the size query and the read (ERANGE), and an attribute
 * removed meanwhile is simply skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include <mav/error.h>

#include "import.h"

void imp_xattrs_free(struct imp_xattrs *xa)
{
	for (uint32_t i = 0; i < xa->n; i++) {
		free(xa->x[i].name);
		free(xa->x[i].value);
	}
	free(xa->x);
	xa->x = NULL;
	xa->n = 0;
}

static int xcmp(const void *a, const void *b)
{
	return strcmp(((const struct mav_xattr *)a)->name,
	              ((const struct mav_xattr *)b)->name);
}

static ssize_t xlist(int fd, const char *path, char *buf, size_t cap)
{
	return fd >= 0 ? flistxattr(fd, buf, cap) : llistxattr(path, buf, cap);
}

static ssize_t xget(int fd, const char *path, const char *name, void *buf,
                    size_t cap)
{
	return fd >= 0 ? fgetxattr(fd, name, buf, cap)
	               : lgetxattr(path, name, buf, cap);
}

/* One value, retried if it grows between the size query and the read. */
static int xvalue(int fd, const char *path, const char *name,
                  struct mav_xattr *out)
{
	for (;;) {
		ssize_t n = xget(fd, path, name, NULL, 0), got;

		if (n < 0)
			return -errno;
		out->value = malloc(n ? (size_t)n : 1);
		if (!out->value)
			return -ENOMEM;
		got = xget(fd, path, name, out->value, (size_t)n);
		if (got >= 0) {
			out->len = (uint32_t)got;
			return 0;
		}
		free(out->value);
		out->value = NULL;
		if (errno != ERANGE)
			return -errno;
	}
}

/* All names (NUL-separated), retried if the list grows meanwhile. */
static int xnames(int fd, const char *path, char **out, ssize_t *len)
{
	for (;;) {
		ssize_t n = xlist(fd, path, NULL, 0);

		*out = NULL;
		*len = 0;
		if (n < 0)
			return errno == ENOTSUP ? 0 : -errno;
		if (n == 0)
			return 0;
		*out = malloc((size_t)n);
		if (!*out)
			return -ENOMEM;
		*len = xlist(fd, path, *out, (size_t)n);
		if (*len >= 0)
			return 0;
		free(*out);
		if (errno != ERANGE)
			return -errno;
	}
}

static int xattrs_load(struct imp_xattrs *out, int fd, const char *path)
{
	char *names = NULL;
	ssize_t len;
	int rc = xnames(fd, path, &names, &len);

	out->n = 0;
	out->x = NULL;
	for (ssize_t off = 0; rc == 0 && off < len;
	     off += (ssize_t)strlen(names + off) + 1) {
		const char *nm = names + off;
		struct mav_xattr *x;

		if (strncmp(nm, "user.", 5) != 0)
			continue;
		x = realloc(out->x, (out->n + 1) * sizeof(*x));
		if (!x) {
			rc = -ENOMEM;
			break;
		}
		out->x = x;
		x = &out->x[out->n];
		memset(x, 0, sizeof(*x));
		x->name = strdup(nm);
		rc = x->name ? xvalue(fd, path, nm, x) : -ENOMEM;
		if (rc == -ENODATA) { /* removed meanwhile */
			free(x->name);
			rc = 0;
			continue;
		}
		out->n++;
	}
	free(names);
	if (rc)
		imp_xattrs_free(out);
	else if (out->n > 1)
		qsort(out->x, out->n, sizeof(*out->x), xcmp);
	return rc;
}

int imp_xattrs_fd(struct imp_xattrs *out, int fd, const char *path)
{
	int rc = xattrs_load(out, fd, path);

	if (rc)
		mav_error_set(rc, "cannot read xattrs of '%s': %s", path,
		              strerror(-rc));
	return rc;
}

int imp_xattrs_path(struct imp_xattrs *out, const char *path)
{
	return imp_xattrs_fd(out, -1, path);
}

bool imp_xattrs_equal(const struct imp_xattrs *a, const struct imp_xattrs *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (strcmp(a->x[i].name, b->x[i].name) ||
		    a->x[i].len != b->x[i].len ||
		    memcmp(a->x[i].value, b->x[i].value, a->x[i].len))
			return false;
	return true;
}
