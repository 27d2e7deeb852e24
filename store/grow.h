/* grow.h - room for one more element at the end of a growing array.
 *
 * The store's push-style arrays (a pointer, a count and a capacity) call
 * mav_grow before writing element n. When n has reached the capacity, the
 * capacity doubles (the first time to `first`) and the array moves with
 * realloc. On failure MAV_ENOMEM comes back, and the array and its capacity
 * are as they were. arrp is the address of the array pointer (any element
 * type); it is read and written with memcpy, so no pointer type is punned.
 */
#ifndef MAV_GROW_H
#define MAV_GROW_H

#include <stdlib.h>
#include <string.h>

#include "mav/error.h"

static inline int mav_grow(void *arrp, size_t *cap, size_t n, size_t size,
                           size_t first)
{
	void *arr, *grown;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : first;
	memcpy(&arr, arrp, sizeof(arr));
	grown = realloc(arr, c * size);
	if (!grown)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	memcpy(arrp, &grown, sizeof(grown));
	*cap = c;
	return 0;
}

#endif
