/* wt_links.c - hard links of the base snapshot in working trees.
 *
 * Trees record hard links as entries sharing a link id. While none of them
 * changes, each name is served from its own base tree entry and the table
 * maps the link id to one node, so every name is one inode. When the file is
 * first materialized, every other name of the group must start pointing at
 * the materialized inode too, or a later snapshot would keep the old content
 * under the names in untouched directories. Trees have no back pointers, so
 * the names are found by walking the base commit once: costly, but only the
 * first change to a hard-linked file pays it. A name whose directory was
 * moved or deleted in the working tree since is left alone.
 */
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "wt_internal.h"

#define LINK_PATH_MAX 4096

struct group_walk {
	struct mav_wt *wt;
	struct node *n; /* the materialized inode of the group */
	struct mav_kv_batch *b;
	char path[LINK_PATH_MAX];
};

/* Resolve the directory at g->path[0..plen) ('/'-separated, from the root)
 * in the working tree. */
static int resolve_dir(struct node **out, struct group_walk *g, size_t plen)
{
	struct node *dir = wt_node(g->wt, MAV_WT_ROOT), *child;
	char *save = NULL, *part, buf[LINK_PATH_MAX];
	int rc = 0;

	memcpy(buf, g->path, plen);
	buf[plen] = '\0';
	for (part = strtok_r(buf, "/", &save); part && rc == 0;
	     part = strtok_r(NULL, "/", &save)) {
		rc = wt_resolve(&child, g->wt, dir, part);
		if (rc == 0)
			dir = child;
	}
	*out = dir;
	return rc;
}

/* Point name in the directory at g->path[0..plen) at the group's inode. */
static int attach(struct group_walk *g, size_t plen, const char *name)
{
	struct node *dir = NULL;
	int rc = resolve_dir(&dir, g, plen);

	if (rc < 0 || dir->rec.type != MAV_T_DIR)
		return 0; /* moved or deleted since: nothing to keep in step */
	if (dir->ino == g->n->parent && strcmp(name, g->n->name) == 0)
		return 0;
	dir->pins++;
	rc = wt_materialize(g->wt, dir, g->b);
	if (rc == 0)
		rc = wt_put_dirent(g->wt, g->b, dir->ino, name, g->n->ino,
		                   false);
	dir->pins--;
	return rc;
}

static int scan(struct group_walk *g, const mav_id *tree, size_t plen,
                int depth)
{
	const struct mav_tree *t = NULL;
	int rc;

	if (depth > 1024)
		return mav_error_set(MAV_ECORRUPT, "tree nesting too deep");
	rc = mav_repo_get_tree(g->wt->r, tree, &t);
	for (uint32_t i = 0; rc == 0 && i < t->n; i++) {
		const struct mav_entry *e = &t->e[i];
		size_t nl = strlen(e->name);

		if (e->type != MAV_T_DIR && e->link_id == g->n->rec.link_id)
			rc = attach(g, plen, e->name);
		else if (e->type == MAV_T_DIR &&
		         plen + nl + 2 < LINK_PATH_MAX) {
			memcpy(g->path + plen, e->name, nl);
			g->path[plen + nl] = '/';
			rc = scan(g, &e->id, plen + nl + 1, depth + 1);
		}
	}
	mav_repo_tree_release(g->wt->r, t);
	return rc;
}

int wt_link_group_attach(struct mav_wt *wt, struct node *n,
                         struct mav_kv_batch *b)
{
	struct group_walk *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	g->wt = wt;
	g->n = n;
	g->b = b;
	n->pins++;
	rc = scan(g, &wt->root_tree, 0, 0);
	n->pins--;
	free(g);
	return rc;
}
