/* cmd_snap.c - versions: snapshot, status, log, show, reset.
 *
 * snapshot, status and reset act on a working tree, which a running daemon
 * owns: they go to it over rpc when it holds the repository. log and show
 * only read commits and open a secondary beside the daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mav/error.h>
#include <mav/wt.h>

#include "cli.h"
#include "cmd_diff.h"
#include "out.h"

/* ---- snapshot ---- */

static int snapshot_local(struct mav_repo *r, const char *branch,
                          const struct mav_snapshot_opts *so)
{
	struct mav_wt *wt = NULL;
	char hex[MAV_ID_HEX_LEN + 1];
	uint64_t ver = 0;
	mav_id commit;
	int rc;

	mav_error_clear();
	rc = mav_wt_open(&wt, r, branch);
	if (rc == 0)
		rc = mav_wt_snapshot(&commit, &ver, wt, so);
	mav_wt_close(wt);
	if (rc)
		return rc;
	mav_id_hex(hex, &commit);
	printf("v%" PRIu64 " %s\n", ver, hex);
	return out_flush();
}

static int snapshot_daemon(struct cli *c, const char *branch,
                           const struct mav_snapshot_opts *so)
{
	struct mav_rpc_msg reply;
	int rc;

	/* The rpc contract has no allow-empty field: a trailing
	 * "allow-empty" argument asks for it. */
	rc = so->allow_empty
	         ? cli_rpc(c, &reply, "snapshot", branch, so->message,
	                   so->author, "allow-empty", NULL)
	         : cli_rpc(c, &reply, "snapshot", branch, so->message,
	                   so->author, NULL);
	if (rc == 0 && cli_rpc_nresults(&reply) < 2)
		rc = mav_error_set(-EPROTO, "daemon sent no version");
	if (rc == 0) {
		const char *v = cli_rpc_result(&reply, 0, NULL);

		printf("%s%s %s\n", v[0] == 'v' ? "" : "v", v,
		       cli_rpc_result(&reply, 1, NULL));
		rc = out_flush();
	}
	mav_rpc_msg_free(&reply);
	return rc;
}

int cmd_snapshot(struct cli *c, int argc, char **argv)
{
	struct mav_snapshot_opts so = {0};
	struct mav_repo *r = NULL;
	struct cli_opts o;
	bool daemon;
	int rc = cli_parse(c, argc, argv,
	                   OPT_MESSAGE | OPT_BRANCH | OPT_ALLOW_EMPTY, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (optind < argc)
		return cli_usage(c,
		                 "unexpected argument '%s' (quote the "
		                 "message: -m \"...\")",
		                 argv[optind]);
	so.message = o.message ? o.message : "";
	so.author = cli_author();
	so.allow_empty = o.allow_empty;
	rc = cli_open_rw(c, &r, &daemon);
	if (rc == 0) {
		const char *b = o.branch ? o.branch : cli_default_branch(c);

		rc = daemon ? snapshot_daemon(c, b, &so)
		            : snapshot_local(r, b, &so);
	}
	mav_repo_close(r);
	/* "Nothing to snapshot" is not a name conflict: plain failure. */
	if (rc == MAV_EEXIST) {
		cli_fail(c, rc);
		return EXIT_GENERIC;
	}
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- status ---- */

struct status_ctx {
	struct json *j;
	uint64_t n;
};

static void status_one(struct status_ctx *x, char kind, const char *path,
                       size_t plen)
{
	char k[2] = {kind, '\0'};

	x->n++;
	if (!x->j) {
		printf("%c ", kind);
		fwrite(path, 1, plen, stdout);
		putchar('\n');
		return;
	}
	json_obj(x->j);
	json_kstr(x->j, "kind", k);
	json_key(x->j, "path");
	json_strn(x->j, path, plen);
	json_end_obj(x->j);
}

static int status_cb(void *arg, char kind, const char *path)
{
	status_one(arg, kind, path, strlen(path));
	return 0;
}

static int status_run(struct cli *c, struct mav_repo *r, bool daemon,
                      const char *branch, struct status_ctx *x)
{
	struct mav_rpc_msg reply;
	struct mav_wt *wt = NULL;
	int rc;

	if (!daemon) {
		mav_error_clear();
		rc = mav_wt_open(&wt, r, branch);
		if (rc == 0)
			rc = mav_wt_status(wt, status_cb, x);
		mav_wt_close(wt);
		return rc;
	}
	rc = cli_rpc(c, &reply, "status", branch, NULL);
	for (unsigned i = 0; rc == 0 && i < cli_rpc_nresults(&reply); i++) {
		size_t len;
		const char *s = cli_rpc_result(&reply, i, &len);

		if (len >= 2 && s[1] == ' ')
			status_one(x, s[0], s + 2, len - 2);
	}
	mav_rpc_msg_free(&reply);
	return rc;
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	struct json j;
	struct status_ctx x = {NULL, 0};
	const char *branch;
	bool daemon;
	int rc = cli_parse(c, argc, argv, OPT_BRANCH | OPT_JSON, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	branch = o.branch ? o.branch : cli_default_branch(c);
	rc = cli_open_rw(c, &r, &daemon);
	if (rc)
		return cli_fail(c, rc);
	json_init(&j, stdout);
	if (o.json) {
		x.j = &j;
		json_obj(&j);
		json_kstr(&j, "branch", branch);
		json_key(&j, "changes");
		json_arr(&j);
	}
	rc = status_run(c, r, daemon, branch, &x);
	mav_repo_close(r);
	return cli_end_listing(c, o.json ? &j : NULL, rc);
}

/* ---- log ---- */

static void first_line(char *out, size_t cap, const char *msg)
{
	size_t n = msg ? strcspn(msg, "\n") : 0;

	if (n >= cap)
		n = cap - 1;
	memcpy(out, msg ? msg : "", n);
	out[n] = '\0';
}

static void commit_line(const mav_id *id, const struct mav_commit *cm)
{
	char sid[16], t[OUT_TIME_LEN], msg[256];

	first_line(msg, sizeof(msg), cm->message);
	printf("v%-4" PRIu64 " %s  %s  %-10s %-10s %s\n", cm->version,
	       out_short_id(sid, id), out_time(t, cm->time_ns),
	       cm->author ? cm->author : "", cm->branch ? cm->branch : "", msg);
}

static void commit_json(struct json *j, const mav_id *id,
                        const struct mav_commit *cm)
{
	char t[OUT_TIME_LEN];

	json_obj(j);
	json_ku64(j, "version", cm->version);
	json_kid(j, "id", id);
	json_kid(j, "root", &cm->root);
	json_key(j, "parents");
	json_arr(j);
	for (uint32_t i = 0; i < cm->nparents; i++)
		json_id(j, &cm->parents[i]);
	json_end_arr(j);
	json_kstr(j, "branch", cm->branch);
	json_kstr(j, "author", cm->author);
	json_ki64(j, "time_ns", cm->time_ns);
	json_kstr(j, "time", out_time_iso(t, cm->time_ns));
	json_kstr(j, "message", cm->message);
	json_key(j, "signed");
	json_bool(j, cm->has_sig);
	json_end_obj(j);
}

static int log_one(struct mav_repo *r, struct json *j, const mav_id *id,
                   mav_id *parent)
{
	struct mav_commit *cm = NULL;
	int rc;

	mav_error_clear();
	rc = mav_repo_get_commit(r, id, &cm);
	if (rc)
		return rc;
	if (j)
		commit_json(j, id, cm);
	else
		commit_line(id, cm);
	if (parent)
		memset(parent, 0, sizeof(*parent));
	if (parent && cm->nparents > 0)
		*parent = cm->parents[0];
	mav_commit_free(cm);
	return 0;
}

/* First-parent history of a branch. */
static int log_branch(struct mav_repo *r, struct json *j, const char *branch)
{
	mav_id id, parent;
	int rc = cli_branch_head(&id, r, branch);

	/* Ids are hashes of their parents: the chain cannot loop. */
	while (rc == 0 && !mav_id_is_zero(&id)) {
		rc = log_one(r, j, &id, &parent);
		id = parent;
	}
	return rc;
}

struct vlist {
	mav_id *ids;
	size_t n, cap;
};

static int vlist_add(void *ctx, const char *name, const mav_id *id)
{
	struct vlist *v = ctx;
	mav_id *ids;

	(void)name; /* visited in numeric order */
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		ids = realloc(v->ids, v->cap * sizeof(*ids));
		if (!ids)
			return mav_error_set(MAV_ENOMEM, "out of memory");
		v->ids = ids;
	}
	v->ids[v->n++] = *id;
	return 0;
}

/* Every version, newest first. */
static int log_all(struct mav_repo *r, struct json *j)
{
	struct vlist v = {NULL, 0, 0};
	int rc;

	mav_error_clear();
	rc = mav_ref_list(r, 'v', vlist_add, &v);
	for (size_t i = v.n; rc == 0 && i > 0; i--)
		rc = log_one(r, j, &v.ids[i - 1], NULL);
	free(v.ids);
	return rc;
}

int cmd_log(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	struct json j;
	const char *branch;
	int rc = cli_parse(c, argc, argv, OPT_BRANCH | OPT_ALL | OPT_JSON, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (o.all && o.branch)
		return cli_usage(c, "--all and --branch exclude each other");
	branch = o.branch ? o.branch : cli_default_branch(c);
	rc = cli_open_ro(c, &r);
	if (rc)
		return cli_fail(c, rc);
	json_init(&j, stdout);
	if (o.json) {
		json_obj(&j);
		if (!o.all)
			json_kstr(&j, "branch", branch);
		json_key(&j, "versions");
		json_arr(&j);
	}
	rc = o.all ? log_all(r, o.json ? &j : NULL)
	           : log_branch(r, o.json ? &j : NULL, branch);
	mav_repo_close(r);
	return cli_end_listing(c, o.json ? &j : NULL, rc);
}

/* ---- show ---- */

static void show_human(const mav_id *id, const struct mav_commit *cm,
                       const struct diff_stat *st)
{
	char hex[MAV_ID_HEX_LEN + 1], t[OUT_TIME_LEN];

	mav_id_hex(hex, id);
	printf("commit  %s\n", hex);
	printf("version v%" PRIu64 "\n", cm->version);
	printf("branch  %s\n", cm->branch ? cm->branch : "");
	printf("author  %s\n", cm->author ? cm->author : "");
	printf("date    %s\n", out_time(t, cm->time_ns));
	for (uint32_t i = 0; i < cm->nparents; i++) {
		mav_id_hex(hex, &cm->parents[i]);
		printf("parent  %s\n", hex);
	}
	mav_id_hex(hex, &cm->root);
	printf("root    %s\n", hex);
	printf("signed  %s\n", cm->has_sig ? "yes" : "no");
	printf("\n    %s\n\n", cm->message ? cm->message : "");
	diff_stat_print(st);
}

static int show_commit(struct mav_repo *r, const mav_id *id, bool json)
{
	struct mav_commit *cm = NULL, *parent = NULL;
	struct diff_stat st;
	struct json j;
	mav_id from;
	int rc;

	mav_error_clear();
	rc = mav_repo_get_commit(r, id, &cm);
	if (rc)
		goto out;
	mav_repo_empty_tree(&from);
	if (cm->nparents > 0) {
		rc = mav_repo_get_commit(r, &cm->parents[0], &parent);
		if (rc)
			goto out;
		from = parent->root;
	}
	rc = diff_stat_trees(&st, r, &from, &cm->root);
	if (rc)
		goto out;
	if (!json) {
		show_human(id, cm, &st);
		goto out;
	}
	json_init(&j, stdout);
	json_obj(&j);
	json_key(&j, "commit");
	commit_json(&j, id, cm);
	diff_stat_json(&j, &st);
	json_end_obj(&j);
	json_done(&j);
out:
	mav_commit_free(cm);
	mav_commit_free(parent);
	return rc ? rc : out_flush();
}

int cmd_show(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	mav_id id;
	int rc = cli_parse(c, argc, argv, OPT_JSON, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 1)
		return cli_usage(c, "expected one REV");
	rc = cli_open_ro(c, &r);
	if (rc == 0)
		rc = cli_rev(c, &id, r, argv[optind]);
	if (rc == 0)
		rc = show_commit(r, &id, o.json);
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- reset ---- */

/* Drop the working tree's changes, rebase it on commit and move the branch
 * there (the ref move is a no-op when mav_wt_reset already did it). */
static int reset_local(struct mav_repo *r, const char *branch,
                       const mav_id *commit)
{
	struct mav_ref_update u;
	struct mav_wt *wt = NULL;
	char ref[512];
	mav_id head;
	int rc = cli_branch_head(&head, r, branch);

	if (rc)
		return rc;
	rc = mav_wt_open(&wt, r, branch);
	if (rc == 0)
		rc = mav_wt_reset(wt, commit);
	if (rc == 0)
		rc = mav_wt_sync(wt);
	mav_wt_close(wt);
	if (rc == 0)
		rc = cli_branch_head(&head, r, branch);
	if (rc || mav_id_cmp(&head, commit) == 0)
		return rc;
	snprintf(ref, sizeof(ref), "b/%s", branch);
	u.ref = ref;
	u.old = &head;
	u.new_id = commit;
	return mav_ref_update(r, NULL, &u, 1);
}

int cmd_reset(struct cli *c, int argc, char **argv)
{
	struct mav_rpc_msg reply;
	struct mav_repo *r = NULL;
	struct cli_opts o;
	const char *branch;
	bool daemon;
	mav_id id;
	int rc = cli_parse(c, argc, argv, OPT_BRANCH, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 1)
		return cli_usage(c, "expected one REV");
	branch = o.branch ? o.branch : cli_default_branch(c);
	rc = cli_open_rw(c, &r, &daemon);
	if (rc == 0 && daemon) {
		rc = cli_rpc(c, &reply, "reset", branch, argv[optind], NULL);
		mav_rpc_msg_free(&reply);
	} else if (rc == 0) {
		rc = cli_rev(c, &id, r, argv[optind]);
		if (rc == 0)
			rc = reset_local(r, branch, &id);
	}
	mav_repo_close(r);
	if (rc)
		return cli_fail(c, rc);
	printf("branch %s reset to %s\n", branch, argv[optind]);
	rc = out_flush();
	return rc ? cli_fail(c, rc) : EXIT_OK;
}
