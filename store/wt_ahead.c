/* wt_ahead.c - read-ahead across the files of a directory.
 *
 * A loader or `cat` going through a directory reads each file from its
 * start, in name order, and would otherwise wait on two disk reads per
 * file, one after the other: the file's blob, then its chunks. When a file
 * is read from its start right after the file before it in the same
 * directory (a run), the next WT_AHEAD_FILES files' blobs and first chunks
 * are loaded by the repository's file prefetch threads, so that their
 * first reads find them cached. Each directory follows up to
 * WT_AHEAD_RUNS runs at once (two `cat`s of `xargs -P 2`, two DataLoader
 * workers) by the hash of the name each run should read next; reads in
 * any other order, such as a shuffled loader's, prefetch nothing.
 *
 * Called with wt->lock held, which also guards each node's `ahead`.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "wt_internal.h"

#define WT_AHEAD_FILES 4 /* files loaded ahead of a run */

static uint64_t name_hash(const char *name)
{
	uint64_t h = XXH3_64bits(name, strlen(name));

	return h ? h : 1; /* 0 marks a free slot */
}

/* n is read from its start: go on with its run, or start one. */
void wt_read_ahead_files(struct mav_wt *wt, const struct node *n)
{
	struct node *dir = n->name ? wt_node(wt, n->parent) : NULL;
	const struct mav_tree *t = NULL;
	struct read_ahead *ra;
	uint64_t h;
	unsigned slot;
	int64_t ix;

	if (!dir || dir->rec.type != MAV_T_DIR || mav_id_is_zero(&dir->rec.id))
		return;
	if (!dir->ahead && !(dir->ahead = calloc(1, sizeof(*dir->ahead))))
		return;
	ra = dir->ahead;
	h = name_hash(n->name);
	for (slot = 0; slot < WT_AHEAD_RUNS && ra->expect[slot] != h; slot++)
		;
	if (mav_repo_tree_find(wt->r, &dir->rec.id, n->name, &t, &ix) < 0)
		return;
	if (slot < WT_AHEAD_RUNS) { /* a run goes on: what it will read next */
		/* Its first step queues the next WT_AHEAD_FILES files; each
		 * step after only the one that comes into reach. */
		int64_t k = ra->going[slot] ? ix + WT_AHEAD_FILES : ix + 1;

		for (; ix >= 0 && k <= ix + WT_AHEAD_FILES && k < (int64_t)t->n;
		     k++)
			if (t->e[k].type == MAV_T_FILE && t->e[k].size)
				mav_repo_prefetch_file(wt->r, &t->e[k].id);
		ra->going[slot] = true;
	} else {
		slot = ra->next++ % WT_AHEAD_RUNS;
		ra->going[slot] = false;
	}
	ra->expect[slot] = ix >= 0 && ix + 1 < (int64_t)t->n
	                       ? name_hash(t->e[ix + 1].name)
	                       : 0;
	mav_repo_tree_release(wt->r, t);
}
