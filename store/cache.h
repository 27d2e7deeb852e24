/* cache.h - a byte-bounded LRU of refcounted values keyed by content id.
 *
 * Used for decompressed chunks and decoded trees. Values are immutable once
 * inserted (content-addressed), so a reader holds a reference and uses the
 * value outside the lock. An entry is evicted only when unreferenced; the
 * budget may be exceeded while every entry is in use.
 *
 * Locking: cache->lock guards the table, the LRU list and refcounts.
 */
#ifndef MAV_CACHE_H
#define MAV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mav/id.h"

struct mav_cache;
struct mav_cache_entry;

typedef void (*mav_cache_free_fn)(void *value);

int mav_cache_new(struct mav_cache **out, uint64_t budget_bytes,
                  mav_cache_free_fn free_fn);
void mav_cache_free(struct mav_cache *c); /* NULL is a no-op */

/* Referenced entry for id, or NULL. */
struct mav_cache_entry *mav_cache_get(struct mav_cache *c, const mav_id *id);
/* Insert value (ownership passes to the cache); if id is already present the
 * new value is freed and the existing entry returned. Returned referenced. */
struct mav_cache_entry *mav_cache_insert(struct mav_cache *c, const mav_id *id,
                                         void *value, size_t bytes);
void mav_cache_release(struct mav_cache *c, struct mav_cache_entry *e);
/* Whether id is cached; if it is, it counts as just used (one lock, no
 * reference: for checks such as "load it unless it is here"). */
bool mav_cache_touch(struct mav_cache *c, const mav_id *id);
void *mav_cache_value(const struct mav_cache_entry *e);
size_t mav_cache_bytes(const struct mav_cache_entry *e);
/* Drop every unreferenced entry. */
void mav_cache_clear(struct mav_cache *c);
/* Entries referenced now (walks the table: for tests and checks). */
size_t mav_cache_in_use(struct mav_cache *c);

#endif
