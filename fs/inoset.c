/* inoset.c - counted inode set: linear probing, backward-shift deletion.
 *
 * Inode numbers are never 0, so 0 marks a free slot. The table doubles at
 * 3/4 full and never shrinks (it follows the high-water mark of the kernel's
 * inode cache for one tree, a few dozen bytes per inode).
 */
#include <errno.h>
#include <stdlib.h>

#include "inoset.h"

struct slot {
	uint64_t ino;
	uint64_t count;
};

struct mavfs_inoset {
	struct slot *t;
	size_t cap; /* power of two */
	size_t n;
};

static size_t home(const struct mavfs_inoset *s, uint64_t ino)
{
	uint64_t x = ino * 0x9e3779b97f4a7c15ull;

	return (size_t)(x ^ (x >> 29)) & (s->cap - 1);
}

int mavfs_inoset_new(struct mavfs_inoset **out)
{
	struct mavfs_inoset *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->cap = 64;
	s->t = calloc(s->cap, sizeof(*s->t));
	if (!s->t) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void mavfs_inoset_free(struct mavfs_inoset *s)
{
	if (!s)
		return;
	free(s->t);
	free(s);
}

static struct slot *find(const struct mavfs_inoset *s, uint64_t ino)
{
	for (size_t i = home(s, ino);; i = (i + 1) & (s->cap - 1)) {
		if (s->t[i].ino == ino || s->t[i].ino == 0)
			return &s->t[i];
	}
}

static int grow(struct mavfs_inoset *s)
{
	struct mavfs_inoset bigger = {.cap = s->cap * 2, .n = s->n};

	bigger.t = calloc(bigger.cap, sizeof(*bigger.t));
	if (!bigger.t)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (s->t[i].ino)
			*find(&bigger, s->t[i].ino) = s->t[i];
	}
	free(s->t);
	*s = bigger;
	return 0;
}

int mavfs_inoset_add(struct mavfs_inoset *s, uint64_t ino, uint64_t n)
{
	struct slot *e;

	if ((s->n + 1) * 4 > s->cap * 3 && grow(s) < 0)
		return -ENOMEM;
	e = find(s, ino);
	if (e->ino == 0) {
		e->ino = ino;
		e->count = 0;
		s->n++;
	}
	e->count += n;
	return 0;
}

void mavfs_inoset_sub(struct mavfs_inoset *s, uint64_t ino, uint64_t n)
{
	struct slot *e = find(s, ino);
	size_t i, j;

	if (e->ino == 0)
		return;
	if (e->count > n) {
		e->count -= n;
		return;
	}
	/* Remove, then pull later members of the probe run back so every
	 * entry stays reachable from its home slot. */
	i = (size_t)(e - s->t);
	s->t[i].ino = 0;
	s->n--;
	for (j = (i + 1) & (s->cap - 1); s->t[j].ino;
	     j = (j + 1) & (s->cap - 1)) {
		size_t h = home(s, s->t[j].ino);
		int movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);

		if (movable) {
			s->t[i] = s->t[j];
			s->t[j].ino = 0;
			i = j;
		}
	}
}

size_t mavfs_inoset_count(const struct mavfs_inoset *s)
{
	return s->n;
}

size_t mavfs_inoset_list(const struct mavfs_inoset *s, uint64_t *out,
                         size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < s->cap && k < cap; i++) {
		if (s->t[i].ino)
			out[k++] = s->t[i].ino;
	}
	return k;
}
