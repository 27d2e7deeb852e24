/* wt_links.c - hard links of the base snapshot in working trees.
 *
 * Trees record hard links as entries sharing a link id. While none of them
 * changes, each name is served from its own base tree entry and the table
 * maps the link id to one node, so every name is one inode. When the file is
 * first materialized, every other name of the group must start pointing at
 * the materialized inode too, or the other names would keep the old content
 * and link count, and a later snapshot would keep them under names in
 * untouched directories. Trees have no back pointers, so the names are
 * found by walking the working tree as it is now (directories may have
 * moved since the snapshot) once: costly, but only the first change to a
 * hard-linked file pays it.
 */
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "mav/error.h"
#include "wt_internal.h"

#define LINK_DEPTH_MAX 1024

struct group_walk {
	struct mav_wt *wt;
	struct node *n; /* the materialized inode of the group */
	struct mav_kv_batch *b;
};

struct names {
	char **v;
	size_t n, cap;
};

static int names_add(struct names *s, const char *name)
{
	if (mav_grow(&s->v, &s->cap, s->n, sizeof(*s->v), 16) < 0)
		return MAV_ENOMEM;
	if (!(s->v[s->n] = strdup(name)))
		return mav_error_set(MAV_ENOMEM, "out of memory");
	s->n++;
	return 0;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* Sort one base entry of dir into names of the group or subdirectories. */
static int consider(struct group_walk *g, const struct mav_entry *e,
                    struct names *match, struct names *sub)
{
	if (e->type == MAV_T_DIR)
		return names_add(sub, e->name);
	if (e->link_id == g->n->rec.link_id)
		return names_add(match, e->name);
	return 0;
}

/* Collect the names in dir that still come from its base tree. */
static int collect(struct group_walk *g, struct node *dir, struct names *match,
                   struct names *sub)
{
	const struct mav_tree *t = NULL;
	size_t n = 0;
	int rc = 0;

	if (!dir->persisted) {
		if (mav_id_is_zero(&dir->rec.id))
			return 0;
		rc = mav_repo_get_tree(g->wt->r, &dir->rec.id, &t);
		for (uint32_t i = 0; rc == 0 && i < t->n; i++)
			rc = consider(g, &t->e[i], match, sub);
		mav_repo_tree_release(g->wt->r, t);
		return rc;
	}
	wt_listing_drop(g->wt, dir);
	rc = wt_dir_count(g->wt, dir, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct listing_ent *le = &dir->listing->e[i];
		struct node *c;

		if (!le->ino)
			rc = consider(g, &dir->listing->base->e[le->base_ix],
			              match, sub);
		else if ((rc = wt_get(&c, g->wt, le->ino)) == 0 &&
		         c->rec.type == MAV_T_DIR)
			rc = names_add(sub, le->name);
	}
	wt_listing_drop(g->wt, dir);
	return rc;
}

/* Point dir/name at the group's inode. */
static int attach(struct group_walk *g, struct node *dir, const char *name)
{
	int rc;

	if (dir->ino == g->n->parent && strcmp(name, g->n->name) == 0)
		return 0;
	rc = wt_materialize(g->wt, dir, g->b);
	if (rc == 0)
		rc = wt_put_dirent(g->wt, g->b, dir->ino, name, g->n->ino,
		                   false);
	wt_listing_drop(g->wt, dir);
	return rc;
}

static int scan(struct group_walk *g, struct node *dir, int depth)
{
	struct names match = {0}, sub = {0};
	int rc;

	if (depth > LINK_DEPTH_MAX)
		return mav_error_set(MAV_ECORRUPT, "tree nesting too deep");
	dir->pins++;
	rc = collect(g, dir, &match, &sub);
	for (size_t i = 0; rc == 0 && i < match.n; i++)
		rc = attach(g, dir, match.v[i]);
	for (size_t i = 0; rc == 0 && i < sub.n; i++) {
		struct node *c = NULL;

		rc = wt_resolve(&c, g->wt, dir, sub.v[i]);
		if (rc == 0) {
			rc = scan(g, c, depth + 1);
			wt_node_unref(g->wt, c);
		}
	}
	dir->pins--;
	names_free(&match);
	names_free(&sub);
	return rc;
}

int wt_link_group_attach(struct mav_wt *wt, struct node *n,
                         struct mav_kv_batch *b)
{
	struct group_walk g = {.wt = wt, .n = n, .b = b};
	int rc;

	n->pins++;
	rc = scan(&g, wt_node(wt, MAV_WT_ROOT), 0);
	n->pins--;
	return rc;
}
