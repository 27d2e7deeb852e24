/* cmd_diff.c - `mavctl diff REV1 REV2 [--stat] [--json]`.
 *
 * mav_diff() streams changes in path order; lines are printed as they come
 * so a diff of a million files needs no memory for the list. --stat only
 * totals them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mav/error.h>
#include <mav/object.h>

#include "cli.h"
#include "cmd_diff.h"

void diff_stat_add(struct diff_stat *s, const struct mav_change *ch)
{
	bool dir = ch->type == MAV_T_DIR;

	switch (ch->kind) {
	case 'A':
		if (dir) {
			s->dirs_added++;
			break;
		}
		s->added++;
		s->bytes_added += ch->new_size;
		break;
	case 'D':
		if (dir) {
			s->dirs_removed++;
			break;
		}
		s->removed++;
		s->bytes_removed += ch->old_size;
		break;
	case 'M':
		if (dir)
			break;
		s->modified++;
		s->bytes_old += ch->old_size;
		s->bytes_new += ch->new_size;
		break;
	case 'R':
		if (dir)
			break;
		s->renamed++;
		s->bytes_renamed += ch->new_size;
		break;
	}
}

static int stat_cb(void *ctx, const struct mav_change *ch)
{
	diff_stat_add(ctx, ch);
	return 0;
}

int diff_stat_trees(struct diff_stat *s, struct mav_repo *r, const mav_id *a,
                    const mav_id *b)
{
	memset(s, 0, sizeof(*s));
	mav_error_clear();
	return mav_diff(r, a, b, stat_cb, s);
}

void diff_stat_print(const struct diff_stat *s)
{
	printf(" %" PRIu64 " files changed: %" PRIu64 " added, %" PRIu64
	       " removed, %" PRIu64 " modified, %" PRIu64 " renamed\n",
	       s->added + s->removed + s->modified + s->renamed, s->added,
	       s->removed, s->modified, s->renamed);
	printf(" bytes: +%" PRIu64 " added, -%" PRIu64 " removed, %" PRIu64
	       " -> %" PRIu64 " modified, %" PRIu64 " renamed\n",
	       s->bytes_added, s->bytes_removed, s->bytes_old, s->bytes_new,
	       s->bytes_renamed);
	if (s->dirs_added || s->dirs_removed)
		printf(" directories: %" PRIu64 " added, %" PRIu64 " removed\n",
		       s->dirs_added, s->dirs_removed);
}

void diff_stat_json(struct json *j, const struct diff_stat *s)
{
	json_key(j, "stat");
	json_obj(j);
	json_ku64(j, "added", s->added);
	json_ku64(j, "removed", s->removed);
	json_ku64(j, "modified", s->modified);
	json_ku64(j, "renamed", s->renamed);
	json_ku64(j, "dirs_added", s->dirs_added);
	json_ku64(j, "dirs_removed", s->dirs_removed);
	json_ku64(j, "bytes_added", s->bytes_added);
	json_ku64(j, "bytes_removed", s->bytes_removed);
	json_ku64(j, "bytes_modified_old", s->bytes_old);
	json_ku64(j, "bytes_modified_new", s->bytes_new);
	json_ku64(j, "bytes_renamed", s->bytes_renamed);
	json_end_obj(j);
}

struct diff_ctx {
	struct json *j; /* NULL: human lines */
	bool stat_only;
	struct diff_stat st;
};

static void change_human(const struct mav_change *ch)
{
	const char *slash = ch->type == MAV_T_DIR ? "/" : "";

	switch (ch->kind) {
	case 'A':
		printf("A %s%s (%" PRIu64 ")\n", ch->path, slash, ch->new_size);
		break;
	case 'D':
		printf("D %s%s (%" PRIu64 ")\n", ch->path, slash, ch->old_size);
		break;
	case 'M':
		printf("M %s%s (%" PRIu64 " -> %" PRIu64 ")\n", ch->path, slash,
		       ch->old_size, ch->new_size);
		break;
	case 'R':
		printf("R %s -> %s (%" PRIu64 ")\n",
		       ch->old_path ? ch->old_path : "?", ch->path,
		       ch->new_size);
		break;
	default:
		printf("%c %s\n", ch->kind, ch->path);
	}
}

static void change_json(struct json *j, const struct mav_change *ch)
{
	char kind[2] = {ch->kind, '\0'};

	json_obj(j);
	json_kstr(j, "kind", kind);
	json_kstr(j, "path", ch->path);
	if (ch->kind == 'R')
		json_kstr(j, "old_path", ch->old_path);
	json_kstr(j, "type", out_type_name(ch->type));
	json_ku64(j, "old_size", ch->old_size);
	json_ku64(j, "new_size", ch->new_size);
	json_end_obj(j);
}

static int diff_cb(void *arg, const struct mav_change *ch)
{
	struct diff_ctx *x = arg;

	diff_stat_add(&x->st, ch);
	if (x->stat_only)
		return 0;
	if (x->j)
		change_json(x->j, ch);
	else
		change_human(ch);
	return 0;
}

static int diff_trees(struct mav_repo *r, const char *ra, const char *rb,
                      const mav_id *ta, const mav_id *tb,
                      const struct cli_opts *o)
{
	struct json j;
	struct diff_ctx x = {o->json ? &j : NULL, o->stat, {0}};
	int rc;

	json_init(&j, stdout);
	if (o->json) {
		json_obj(&j);
		json_kstr(&j, "from", ra);
		json_kstr(&j, "to", rb);
		if (!o->stat) {
			json_key(&j, "changes");
			json_arr(&j);
		}
	}
	mav_error_clear();
	rc = mav_diff(r, ta, tb, diff_cb, &x);
	if (rc)
		return rc;
	if (o->json) {
		if (!o->stat)
			json_end_arr(&j);
		diff_stat_json(&j, &x.st);
		json_end_obj(&j);
		json_done(&j);
	} else if (o->stat) {
		diff_stat_print(&x.st);
	}
	return out_flush();
}

/* Root tree of a revision. */
static int rev_tree(struct cli *c, mav_id *tree, struct mav_repo *r,
                    const char *rev)
{
	struct mav_commit *cm = NULL;
	mav_id id;
	int rc = cli_rev(c, &id, r, rev);

	if (rc == 0)
		rc = mav_repo_get_commit(r, &id, &cm);
	if (rc == 0)
		*tree = cm->root;
	mav_commit_free(cm);
	return rc;
}

int cmd_diff(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	mav_id ta, tb;
	int rc = cli_parse(c, argc, argv, OPT_JSON | OPT_STAT, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 2)
		return cli_usage(c, "expected REV1 REV2");
	rc = cli_open_ro(c, &r);
	if (rc == 0)
		rc = rev_tree(c, &ta, r, argv[optind]);
	if (rc == 0)
		rc = rev_tree(c, &tb, r, argv[optind + 1]);
	if (rc == 0)
		rc =
		    diff_trees(r, argv[optind], argv[optind + 1], &ta, &tb, &o);
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}
