/* prefetch.h - background loading of chunks a sequential reader will want.
 *
 * A small pool of threads takes chunk ids from a bounded queue and loads
 * them into the repository's chunk cache, so a cold sequential read keeps
 * several disk reads in flight instead of waiting for one chunk at a time.
 * Requests that find the queue full are dropped: prefetching is a hint.
 *
 * Locking: pf->lock guards the queue, the workers' busy ids and the stop
 * flag.
 */
#ifndef MAV_PREFETCH_H
#define MAV_PREFETCH_H

#include <stdbool.h>

#include "mav/id.h"

struct mav_repo;
struct mav_prefetch;

/* loader(ctx, id) loads one chunk into the cache (errors are ignored). */
typedef void (*mav_prefetch_load_fn)(struct mav_repo *r, const mav_id *id);

int mav_prefetch_new(struct mav_prefetch **out, struct mav_repo *r,
                     mav_prefetch_load_fn load, int threads);
/* Stops and joins the threads. NULL is a no-op. */
void mav_prefetch_free(struct mav_prefetch *pf);
/* Queue id unless the queue is full or id is already queued. */
void mav_prefetch_push(struct mav_prefetch *pf, const mav_id *id);
/* For a reader that missed the cache and is about to load id itself: drops
 * id from the queue, or waits while a worker is loading it. True if it
 * waited (the chunk is then likely in the cache). */
bool mav_prefetch_claim(struct mav_prefetch *pf, const mav_id *id);

#endif
