/* idset.c - open-addressing set of ids (linear probing, load <= 1/2). */
#include <stdlib.h>
#include <string.h>

#include "idset.h"
#include "mav/error.h"

void mav_idset_init(struct mav_idset *s)
{
	memset(s, 0, sizeof(*s));
}

void mav_idset_free(struct mav_idset *s)
{
	free(s->ids);
	free(s->vals);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

static uint64_t probe(const struct mav_idset *s, const mav_id *id)
{
	uint64_t i = mav_id_hash64(id) & (s->cap - 1);

	while (s->used[i] && mav_id_cmp(&s->ids[i], id) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static int grow(struct mav_idset *s)
{
	struct mav_idset n = {.cap = s->cap ? s->cap * 2 : 1024};

	n.ids = malloc(n.cap * sizeof(*n.ids));
	n.vals = malloc(n.cap * sizeof(*n.vals));
	n.used = calloc(n.cap, 1);
	if (!n.ids || !n.vals || !n.used) {
		mav_idset_free(&n);
		return mav_error_set(MAV_ENOMEM, "out of memory (id set)");
	}
	for (uint64_t i = 0; i < s->cap; i++) {
		if (s->used[i]) {
			uint64_t j = probe(&n, &s->ids[i]);

			n.used[j] = 1;
			n.ids[j] = s->ids[i];
			n.vals[j] = s->vals[i];
		}
	}
	n.count = s->count;
	mav_idset_free(s);
	*s = n;
	return 0;
}

int mav_idset_add(struct mav_idset *s, const mav_id *id, uint64_t val)
{
	uint64_t i;
	int rc;

	if (2 * (s->count + 1) > s->cap && (rc = grow(s)) < 0)
		return rc;
	i = probe(s, id);
	if (s->used[i])
		return 0;
	s->used[i] = 1;
	s->ids[i] = *id;
	s->vals[i] = val;
	s->count++;
	return 1;
}

bool mav_idset_has(const struct mav_idset *s, const mav_id *id, uint64_t *val)
{
	uint64_t i;

	if (!s->cap)
		return false;
	i = probe(s, id);
	if (s->used[i] && val)
		*val = s->vals[i];
	return s->used[i];
}
