/* cmd_refs.c - names for versions: branch and tag (list, create, delete).
 *
 * Listing only reads (secondary beside a daemon); creating and deleting move
 * refs, which the daemon does when it holds the repository.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mav/error.h>

#include "cli.h"
#include "out.h"

struct list_ctx {
	struct mav_repo *r;
	struct json *j;      /* NULL: human */
	const char *current; /* branch to mark with '*', or NULL */
	int rc;
};

/* Version of a commit, 0 if unknown. */
static uint64_t commit_version(struct mav_repo *r, const mav_id *id)
{
	struct mav_commit *cm = NULL;
	uint64_t v = 0;

	if (mav_repo_get_commit(r, id, &cm) == 0)
		v = cm->version;
	mav_commit_free(cm);
	return v;
}

static int list_one(void *arg, const char *name, const mav_id *id)
{
	struct list_ctx *x = arg;
	bool zero = mav_id_is_zero(id), cur;
	uint64_t ver = zero ? 0 : commit_version(x->r, id);
	char sid[16];

	cur = x->current && strcmp(x->current, name) == 0;
	if (!x->j) {
		if (x->current)
			printf("%c ", cur ? '*' : ' ');
		if (zero)
			printf("%-20s (no snapshot)\n", name);
		else
			printf("%-20s v%-5" PRIu64 " %s\n", name, ver,
			       out_short_id(sid, id));
		return 0;
	}
	json_obj(x->j);
	json_kstr(x->j, "name", name);
	json_key(x->j, "commit");
	if (zero)
		json_null(x->j);
	else
		json_id(x->j, id);
	json_key(x->j, "version");
	if (zero)
		json_null(x->j);
	else
		json_u64(x->j, ver);
	if (x->current) {
		json_key(x->j, "current");
		json_bool(x->j, cur);
	}
	json_end_obj(x->j);
	return 0;
}

static int list_refs(struct cli *c, char kind, bool json)
{
	struct mav_repo *r = NULL;
	struct json j;
	struct list_ctx x = {NULL, json ? &j : NULL,
	                     kind == 'b' ? cli_default_branch(c) : NULL, 0};
	int rc = cli_open_ro(c, &r);

	if (rc)
		return cli_fail(c, rc);
	x.r = r;
	json_init(&j, stdout);
	if (json) {
		json_obj(&j);
		json_key(&j, kind == 'b' ? "branches" : "tags");
		json_arr(&j);
	}
	mav_error_clear();
	rc = mav_ref_list(r, kind, list_one, &x);
	mav_repo_close(r);
	return cli_end_listing(c, json ? &j : NULL, rc);
}

/* The commit a new branch or tag starts from: REV, or the current branch's
 * last snapshot (zero when it has none). */
static int start_point(struct cli *c, mav_id *out, struct mav_repo *r,
                       const char *rev)
{
	if (rev)
		return cli_rev(c, out, r, rev);
	return cli_branch_head(out, r, cli_default_branch(c));
}

static int tag_create(struct mav_repo *r, const char *name, const mav_id *id)
{
	struct mav_ref_update u;
	char ref[512];
	int rc;

	if (mav_id_is_zero(id))
		return mav_error_set(MAV_ENOTFOUND, "nothing to tag: branch "
		                                    "has no snapshot yet");
	snprintf(ref, sizeof(ref), "t/%s", name);
	u.ref = ref;
	u.old = NULL;
	u.new_id = id;
	mav_error_clear();
	rc = mav_ref_update(r, NULL, &u, 1);
	if (rc == MAV_ECONFLICT || rc == MAV_EEXIST)
		rc = mav_error_set(MAV_EEXIST, "tag '%s' already exists", name);
	return rc;
}

static int tag_delete(struct mav_repo *r, const char *name)
{
	struct mav_ref_update u;
	char ref[512];
	mav_id cur;
	int rc;

	snprintf(ref, sizeof(ref), "t/%s", name);
	mav_error_clear();
	rc = mav_ref_get(&cur, r, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no such tag '%s'", name);
	if (rc)
		return rc;
	u.ref = ref;
	u.old = &cur;
	u.new_id = NULL;
	return mav_ref_update(r, NULL, &u, 1);
}

static int branch_create(struct cli *c, struct mav_repo *r, const char *name,
                         const char *rev)
{
	mav_id id;
	int rc = start_point(c, &id, r, rev);

	if (rc)
		return rc;
	mav_error_clear();
	rc = mav_branch_create(r, name, &id);
	if (rc == MAV_EEXIST || rc == MAV_ECONFLICT)
		rc = mav_error_set(MAV_EEXIST, "branch '%s' already exists",
		                   name);
	return rc;
}

static int branch_delete(struct mav_repo *r, const char *name)
{
	mav_id head;
	int rc = cli_branch_head(&head, r, name);

	if (rc == 0) {
		mav_error_clear();
		rc = mav_branch_delete(r, name);
	}
	return rc;
}

/* Create or delete over rpc: "branch-create NAME REV", "tag-delete NAME"...
 * Without REV the daemon is given the current branch's name (its last
 * snapshot). */
static int change_daemon(struct cli *c, char kind, const char *name,
                         const char *rev, bool del)
{
	struct mav_rpc_msg reply;
	const char *op = kind == 'b' ? (del ? "branch-delete" : "branch-create")
	                             : (del ? "tag-delete" : "tag-create");
	int rc;

	if (del)
		rc = cli_rpc(c, &reply, op, name, NULL);
	else
		rc = cli_rpc(c, &reply, op, name,
		             rev ? rev : cli_default_branch(c), NULL);
	mav_rpc_msg_free(&reply);
	return rc;
}

static int change_local(struct cli *c, struct mav_repo *r, char kind,
                        const char *name, const char *rev, bool del)
{
	mav_id id;
	int rc;

	if (kind == 'b')
		return del ? branch_delete(r, name)
		           : branch_create(c, r, name, rev);
	if (del)
		return tag_delete(r, name);
	rc = start_point(c, &id, r, rev);
	return rc ? rc : tag_create(r, name, &id);
}

static int change_ref(struct cli *c, char kind, const char *name,
                      const char *rev, bool del)
{
	const char *what = kind == 'b' ? "branch" : "tag";
	struct mav_repo *r = NULL;
	bool daemon, ok;
	int rc;

	ok = kind == 'b' ? mav_branch_name_valid(name)
	                 : mav_tag_name_valid(name);
	if (!ok && !del)
		return cli_usage(c, "invalid %s name '%s'", what, name);
	rc = cli_open_rw(c, &r, &daemon);
	if (rc == 0)
		rc = daemon ? change_daemon(c, kind, name, rev, del)
		            : change_local(c, r, kind, name, rev, del);
	mav_repo_close(r);
	if (rc)
		return cli_fail(c, rc);
	if (del)
		printf("deleted %s %s\n", what, name);
	else
		printf("created %s %s\n", what, name);
	rc = out_flush();
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

static int refs_cmd(struct cli *c, int argc, char **argv, char kind)
{
	struct cli_opts o;
	int n, rc = cli_parse(c, argc, argv, OPT_DELETE_NAME | OPT_JSON, &o);

	if (rc)
		return cli_opt_exit(rc);
	n = argc - optind;
	if (o.delete_name) {
		if (n)
			return cli_usage(c, "-d NAME takes no other argument");
		return change_ref(c, kind, o.delete_name, NULL, true);
	}
	if (n == 0)
		return list_refs(c, kind, o.json);
	if (n > 2)
		return cli_usage(c, "expected NAME [REV]");
	return change_ref(c, kind, argv[optind],
	                  n == 2 ? argv[optind + 1] : NULL, false);
}

int cmd_branch(struct cli *c, int argc, char **argv)
{
	return refs_cmd(c, argc, argv, 'b');
}

int cmd_tag(struct cli *c, int argc, char **argv)
{
	return refs_cmd(c, argc, argv, 't');
}
