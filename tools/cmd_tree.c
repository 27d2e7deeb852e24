/* cmd_tree.c - looking inside a version: ls and cat.
 *
 * Both read snapshot trees straight from the object store (no working-tree
 * machinery) and open a secondary beside a running daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mav/error.h>

#include "cli.h"
#include "out.h"
#include "tree.h"

struct ls_ctx {
	struct mav_repo *r;
	struct json *j; /* NULL: human */
	bool long_, recursive;
	size_t strip; /* human paths are relative to the listed directory */
};

static void ls_json_entry(struct json *j, const char *path,
                          const struct mav_entry *e)
{
	char t[OUT_TIME_LEN];

	json_obj(j);
	json_kstr(j, "path", path);
	json_kstr(j, "name", e->name);
	json_kstr(j, "type", out_type_name(e->type));
	json_ku64(j, "mode", e->mode);
	json_ku64(j, "uid", e->uid);
	json_ku64(j, "gid", e->gid);
	json_ku64(j, "size", e->size);
	json_ki64(j, "mtime_ns", e->mtime_ns);
	json_kstr(j, "mtime", out_time_iso(t, e->mtime_ns));
	json_ku64(j, "nlink", e->nlink ? e->nlink : 1);
	if (e->type == MAV_T_FILE || e->type == MAV_T_DIR)
		json_kid(j, "id", &e->id);
	if (e->target)
		json_kstr(j, "target", e->target);
	json_key(j, "xattrs");
	json_obj(j);
	for (uint32_t i = 0; i < e->nxattrs; i++) {
		json_key(j, e->xattrs[i].name);
		json_strn(j, (const char *)e->xattrs[i].value,
		          e->xattrs[i].len);
	}
	json_end_obj(j);
	json_end_obj(j);
}

static void ls_human_entry(const struct ls_ctx *x, const char *path,
                           const struct mav_entry *e)
{
	char m[OUT_MODE_LEN], t[OUT_TIME_LEN];

	if (x->long_)
		printf("%s %2" PRIu32 " %5" PRIu32 " %5" PRIu32 " %12" PRIu64
		       " %s ",
		       out_mode(m, e->type, e->mode), e->nlink ? e->nlink : 1,
		       e->uid, e->gid, e->size, out_time(t, e->mtime_ns));
	fputs(path + x->strip, stdout);
	if (e->type == MAV_T_DIR)
		putchar('/');
	if (x->long_ && e->target)
		printf(" -> %s", e->target);
	putchar('\n');
}

static void ls_entry(const struct ls_ctx *x, const char *path,
                     const struct mav_entry *e)
{
	if (x->j)
		ls_json_entry(x->j, path, e);
	else
		ls_human_entry(x, path, e);
}

/* path + "/" + name, or name alone at the top. */
static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (a)
		p[a++] = '/';
	memcpy(p + a, name, b + 1);
	return p;
}

static int ls_dir(struct ls_ctx *x, const mav_id *tree, const char *prefix)
{
	const struct mav_tree *t = NULL;
	int rc = mav_repo_get_tree(x->r, tree, &t);

	for (uint32_t i = 0; rc == 0 && i < t->n; i++) {
		const struct mav_entry *e = &t->e[i];
		char *path = join(prefix, e->name);

		if (!path) {
			rc = mav_error_set(MAV_ENOMEM, "out of memory");
			break;
		}
		ls_entry(x, path, e);
		if (x->recursive && e->type == MAV_T_DIR)
			rc = ls_dir(x, &e->id, path);
		free(path);
	}
	if (t)
		mav_repo_tree_release(x->r, t);
	return rc;
}

/* The PATH part of REV[:PATH] without leading or trailing slashes. */
static char *path_part(const char *spec)
{
	const char *p = strchr(spec, ':');
	size_t n;

	p = p ? p + 1 : "";
	while (*p == '/')
		p++;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	return strndup(p, n);
}

static int ls_run(struct cli *c, struct mav_repo *r, const char *spec,
                  struct ls_ctx *x)
{
	struct tree_node n;
	char *path = path_part(spec);
	int rc = path ? tree_resolve(c, &n, r, spec)
	              : mav_error_set(MAV_ENOMEM, "out of memory");

	if (rc == 0) {
		x->strip = n.type == MAV_T_DIR && *path ? strlen(path) + 1 : 0;
		if (n.type == MAV_T_DIR)
			rc = ls_dir(x, &n.id, path);
		else
			ls_entry(x, path, n.e);
		tree_node_release(r, &n);
	}
	free(path);
	return rc;
}

int cmd_ls(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	struct json j;
	struct ls_ctx x = {0};
	int rc =
	    cli_parse(c, argc, argv, OPT_LONG | OPT_RECURSIVE | OPT_JSON, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 1)
		return cli_usage(c, "expected REV[:PATH]");
	rc = cli_open_ro(c, &r);
	if (rc)
		return cli_fail(c, rc);
	x.r = r;
	x.long_ = o.long_;
	x.recursive = o.recursive;
	json_init(&j, stdout);
	if (o.json) {
		x.j = &j;
		json_obj(&j);
		json_kstr(&j, "rev", argv[optind]);
		json_key(&j, "entries");
		json_arr(&j);
	}
	rc = ls_run(c, r, argv[optind], &x);
	mav_repo_close(r);
	return cli_end_listing(c, o.json ? &j : NULL, rc);
}

/* ---- cat ---- */

static int cat_opts(struct cli *c, int argc, char **argv, uint64_t *off,
                    uint64_t *len)
{
	static const struct option opts[] = {
	    {"offset", required_argument, NULL, 'o'},
	    {"length", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long long v;
	int ch;

	*off = 0;
	*len = UINT64_MAX;
	while ((ch = cli_getopt(c, argc, argv, "", opts)) != -1) {
		if (ch == 'h')
			return cli_show_help(c);
		if (ch != 'o' && ch != 'n')
			return EXIT_USAGE;
		if (cli_parse_size(&v, optarg))
			return cli_usage(c, "bad size '%s'", optarg);
		*(ch == 'o' ? off : len) = v;
	}
	if (argc - optind != 1 || !strchr(argv[optind], ':'))
		return cli_usage(c, "expected REV:PATH");
	return 0;
}

int cmd_cat(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct tree_node n = {0};
	uint64_t off, len;
	int rc = cat_opts(c, argc, argv, &off, &len);

	if (rc)
		return cli_opt_exit(rc);
	rc = cli_open_ro(c, &r);
	if (rc == 0)
		rc = tree_resolve(c, &n, r, argv[optind]);
	if (rc == 0 && n.type != MAV_T_FILE)
		rc = mav_error_set(n.type == MAV_T_DIR ? -EISDIR : MAV_EINVAL,
		                   "'%s' is a %s, not a file", argv[optind],
		                   out_type_name(n.type));
	if (rc == 0)
		rc = tree_write_blob(r, &n.id, STDOUT_FILENO, off, len, false);
	tree_node_release(r, &n);
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}
