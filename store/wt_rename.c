/* wt_rename.c - rename(2) in working trees: replace, no-replace, exchange.
 *
 * The source (and, for an exchange, the target) is materialized, so both
 * names become overlay entries pointing at inodes; moving is then a matter of
 * rewriting two overlay entries in one batch. A replaced target loses a link
 * exactly as unlink would (and lives on while open). Directories may not move
 * under themselves (EINVAL), as on ext4.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "wt_internal.h"

/* Is dir inside (or equal to) the directory anc? */
static int is_within(bool *out, struct mav_wt *wt, uint64_t dir, uint64_t anc)
{
	struct node *n;
	int depth = 0, rc;

	*out = false;
	while (depth++ < 4096) {
		if (dir == anc) {
			*out = true;
			return 0;
		}
		if (dir == MAV_WT_ROOT)
			return 0;
		rc = wt_get(&n, wt, dir);
		if (rc < 0)
			return rc;
		dir = n->persisted ? n->rec.parent : n->parent;
	}
	return mav_error_set(MAV_ECORRUPT, "directory loop in working tree");
}

static int check_replace(struct mav_wt *wt, struct node *src, struct node *dst)
{
	if (src->rec.type == MAV_T_DIR && dst->rec.type != MAV_T_DIR)
		return -ENOTDIR;
	if (src->rec.type != MAV_T_DIR && dst->rec.type == MAV_T_DIR)
		return -EISDIR;
	if (dst->rec.type == MAV_T_DIR)
		return wt_dir_is_empty(wt, dst);
	return 0;
}

/* Point n at its new parent and name, in memory. */
static int move_node(struct mav_wt *wt, struct node *n, struct node *dir,
                     const char *name)
{
	n->rec.parent = dir->ino;
	n->rec.ctime = wt_now();
	return wt_name_set(wt, n, dir->ino, name);
}

struct rename_op {
	struct node *d1, *d2, *src, *dst;
	const char *n1, *n2;
	unsigned flags;
};

static int rename_checks(struct mav_wt *wt, struct rename_op *op)
{
	bool inside;
	int rc = 0;

	if (op->dst && (op->flags & MAV_RENAME_NOREPLACE))
		return -EEXIST;
	if (!op->dst && (op->flags & MAV_RENAME_EXCHANGE))
		return -ENOENT;
	if (op->src->rec.type == MAV_T_DIR) {
		rc = is_within(&inside, wt, op->d2->ino, op->src->ino);
		if (rc == 0 && inside)
			rc = -EINVAL;
	}
	if (rc == 0 && op->dst && (op->flags & MAV_RENAME_EXCHANGE) &&
	    op->dst->rec.type == MAV_T_DIR) {
		rc = is_within(&inside, wt, op->d1->ino, op->dst->ino);
		if (rc == 0 && inside)
			rc = -EINVAL;
	}
	/* Onto a directory that holds the source: ENOTEMPTY, as Linux says
	 * when the target is an ancestor of the source. */
	if (rc == 0 && op->dst && op->dst->rec.type == MAV_T_DIR &&
	    !(op->flags & MAV_RENAME_EXCHANGE)) {
		rc = is_within(&inside, wt, op->d1->ino, op->dst->ino);
		if (rc == 0 && inside)
			rc = -ENOTEMPTY;
	}
	if (rc == 0 && op->dst && !(op->flags & MAV_RENAME_EXCHANGE))
		rc = check_replace(wt, op->src, op->dst);
	return rc;
}

static int rename_queue(struct mav_wt *wt, struct mav_kv_batch *b,
                        struct rename_op *op)
{
	int rc = wt_materialize(wt, op->src, b);

	if (rc == 0 && op->dst && (op->flags & MAV_RENAME_EXCHANGE)) {
		rc = wt_materialize(wt, op->dst, b);
		if (rc == 0)
			rc = wt_put_dirent(wt, b, op->d1->ino, op->n1,
			                   op->dst->ino, false);
		if (rc == 0)
			rc = move_node(wt, op->dst, op->d1, op->n1);
		if (rc == 0)
			rc = wt_put_rec(wt, b, op->dst);
	} else {
		if (rc == 0 && op->dst && op->dst->rec.type != MAV_T_DIR &&
		    op->dst->rec.nlink > 1)
			rc = wt_materialize(wt, op->dst, b);
		if (rc == 0 && op->dst) {
			wt_name_drop(wt, op->dst, op->d2->ino, op->n2);
			rc = wt_drop_link(wt, b, op->dst);
		}
		if (rc == 0)
			rc = wt_dirent_remove(wt, b, op->d1, op->n1);
	}
	if (rc == 0)
		rc = wt_put_dirent(wt, b, op->d2->ino, op->n2, op->src->ino,
		                   false);
	if (rc == 0)
		rc = move_node(wt, op->src, op->d2, op->n2);
	if (rc == 0)
		rc = wt_put_rec(wt, b, op->src);
	if (rc == 0)
		rc = wt_dir_touch(wt, b, op->d1);
	if (rc == 0 && op->d2 != op->d1)
		rc = wt_dir_touch(wt, b, op->d2);
	return rc;
}

int mav_wt_rename(struct mav_wt *wt, uint64_t parent, const char *name,
                  uint64_t newparent, const char *newname, unsigned flags)
{
	struct rename_op op = {.n1 = name, .n2 = newname, .flags = flags};
	struct mav_kv_batch *b = NULL;
	int rc;

	if ((flags & MAV_RENAME_NOREPLACE) && (flags & MAV_RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & ~(unsigned)(MAV_RENAME_NOREPLACE | MAV_RENAME_EXCHANGE))
		return -EINVAL;
	pthread_mutex_lock(&wt->lock);
	rc = wt_dir_begin(&op.d1, &b, wt, parent);
	if (rc == 0)
		rc = wt_dir_begin(&op.d2, &b, wt, newparent);
	if (rc == 0)
		rc = wt_resolve(&op.src, wt, op.d1, name);
	/* The new name is judged after the source, as Linux does. */
	if (rc == 0 && !mav_name_valid(newname)) {
		rc = strlen(newname) > 255 ? -ENAMETOOLONG : -EINVAL;
		wt_node_unref(wt, op.src); /* not pinned yet */
		op.src = NULL;
	}
	if (rc == 0) {
		op.src->pins++;
		rc = wt_resolve(&op.dst, wt, op.d2, newname);
		if (rc == -ENOENT)
			rc = 0;
		if (op.dst)
			op.dst->pins++;
	}
	if (rc == 0 && op.dst && (flags & MAV_RENAME_NOREPLACE))
		rc = -EEXIST; /* even onto itself, as on ext4 */
	if (rc == 0 && op.dst == op.src)
		goto out; /* two names of one inode: nothing to do */
	if (rc == 0)
		rc = rename_checks(wt, &op);
	if (rc == 0)
		rc = rename_queue(wt, b, &op);
	if (rc == 0)
		rc = wt_write(wt, b, 0);
out:
	if (op.dst) {
		op.dst->pins--;
		wt_node_unref(wt, op.dst);
	}
	if (op.src) {
		op.src->pins--;
		wt_node_unref(wt, op.src);
	}
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}
