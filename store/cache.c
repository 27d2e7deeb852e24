/* cache.c - LRU of content-addressed values.
 *
 * A chained hash table (power-of-two buckets, grown at load 1) plus a doubly
 * linked LRU list of unreferenced entries only: a referenced entry is off the
 * list, so eviction walks from the tail and never meets one in use.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "mav/error.h"

struct mav_cache_entry {
	mav_id id;
	void *value;
	size_t bytes;
	uint32_t refs;
	struct mav_cache_entry *hnext;       /* bucket chain */
	struct mav_cache_entry *prev, *next; /* LRU (only when refs == 0) */
};

struct mav_cache {
	pthread_mutex_t lock;
	mav_cache_free_fn free_fn;
	uint64_t budget, used; /* used: bytes of every entry; under lock */
	struct mav_cache_entry **buckets;
	size_t nbuckets, count;
	struct mav_cache_entry *lru_head, *lru_tail; /* head = most recent */
};

int mav_cache_new(struct mav_cache **out, uint64_t budget_bytes,
                  mav_cache_free_fn free_fn)
{
	struct mav_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return mav_error_set(MAV_ENOMEM, "out of memory (cache)");
	c->nbuckets = 1024;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return mav_error_set(MAV_ENOMEM, "out of memory (cache)");
	}
	pthread_mutex_init(&c->lock, NULL);
	c->budget = budget_bytes;
	c->free_fn = free_fn;
	*out = c;
	return 0;
}

static void lru_unlink(struct mav_cache *c, struct mav_cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct mav_cache *c, struct mav_cache_entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static struct mav_cache_entry **slot(struct mav_cache *c, const mav_id *id)
{
	struct mav_cache_entry **p =
	    &c->buckets[mav_id_hash64(id) & (c->nbuckets - 1)];

	while (*p && mav_id_cmp(&(*p)->id, id) != 0)
		p = &(*p)->hnext;
	return p;
}

static void destroy(struct mav_cache *c, struct mav_cache_entry *e)
{
	struct mav_cache_entry **p = slot(c, &e->id);

	*p = e->hnext;
	c->used -= e->bytes;
	c->count--;
	c->free_fn(e->value);
	free(e);
}

static void evict(struct mav_cache *c)
{
	while (c->used > c->budget && c->lru_tail) {
		struct mav_cache_entry *e = c->lru_tail;

		lru_unlink(c, e);
		destroy(c, e);
	}
}

static void grow(struct mav_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct mav_cache_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* keep the old table: longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct mav_cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = b[mav_id_hash64(&e->id) & (n - 1)];
			b[mav_id_hash64(&e->id) & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

struct mav_cache_entry *mav_cache_get(struct mav_cache *c, const mav_id *id)
{
	struct mav_cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = *slot(c, id);
	if (e && e->refs++ == 0)
		lru_unlink(c, e);
	pthread_mutex_unlock(&c->lock);
	return e;
}

struct mav_cache_entry *mav_cache_insert(struct mav_cache *c, const mav_id *id,
                                         void *value, size_t bytes)
{
	struct mav_cache_entry *e = calloc(1, sizeof(*e)), **p;

	if (!e) {
		c->free_fn(value);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	p = slot(c, id);
	if (*p) {
		free(e);
		c->free_fn(value);
		e = *p;
		if (e->refs++ == 0)
			lru_unlink(c, e);
		goto out;
	}
	e->id = *id;
	e->value = value;
	e->bytes = bytes;
	e->refs = 1;
	*p = e;
	c->used += bytes;
	if (++c->count > c->nbuckets)
		grow(c);
	evict(c);
out:
	pthread_mutex_unlock(&c->lock);
	return e;
}

void mav_cache_release(struct mav_cache *c, struct mav_cache_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	if (--e->refs == 0) {
		lru_push(c, e);
		evict(c);
	}
	pthread_mutex_unlock(&c->lock);
}

bool mav_cache_touch(struct mav_cache *c, const mav_id *id)
{
	struct mav_cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = *slot(c, id);
	if (e && e->refs == 0) { /* to the front of the LRU */
		lru_unlink(c, e);
		lru_push(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return e != NULL;
}

void *mav_cache_value(const struct mav_cache_entry *e)
{
	return e->value;
}

size_t mav_cache_bytes(const struct mav_cache_entry *e)
{
	return e->bytes;
}

void mav_cache_clear(struct mav_cache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->lru_tail) {
		struct mav_cache_entry *e = c->lru_tail;

		lru_unlink(c, e);
		destroy(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}

size_t mav_cache_in_use(struct mav_cache *c)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct mav_cache_entry *e = c->buckets[i]; e; e = e->hnext)
			n += e->refs > 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void mav_cache_free(struct mav_cache *c)
{
	if (!c)
		return;
	mav_cache_clear(c);
	/* Entries still referenced are the caller's bug; free them anyway. */
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i])
			destroy(c, c->buckets[i]);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
