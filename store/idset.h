/* idset.h - a growable set of content ids, with an optional u64 per id.
 *
 * Open addressing on the id's own first bytes (ids are uniform). Used by
 * fsck, gc and du to visit each object once. Not thread-safe.
 */
#ifndef MAV_IDSET_H
#define MAV_IDSET_H

#include <stdbool.h>
#include <stdint.h>

#include "mav/id.h"

struct mav_idset {
	mav_id *ids;
	uint64_t *vals;
	uint8_t *used;
	uint64_t cap, count;
};

void mav_idset_init(struct mav_idset *s);
void mav_idset_free(struct mav_idset *s);
/* Add id; 1 if it was new, 0 if present, MAV_ENOMEM. */
int mav_idset_add(struct mav_idset *s, const mav_id *id, uint64_t val);
bool mav_idset_has(const struct mav_idset *s, const mav_id *id, uint64_t *val);

#endif
