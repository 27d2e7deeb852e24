/* wt_refs.h - what working trees keep alive (private to store/, for gc/fsck).
 *
 * Visits every object id (tree, blob) and chunk id that any persisted working
 * tree of the repository references, including each branch's base commit.
 * kind: 'C' commit, 'T' tree, 'B' blob, 'K' chunk.
 */
#ifndef MAV_WT_REFS_H
#define MAV_WT_REFS_H

#include "mav/id.h"
#include "mav/repo.h"

typedef int (*mav_wt_ref_fn)(void *ctx, char kind, const mav_id *id);
int mav_wt_foreach_ref(struct mav_repo *r, mav_wt_ref_fn fn, void *ctx);

#endif
