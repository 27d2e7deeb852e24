/* kv_mem.c - the in-memory kv backend (unit tests of everything above kv).
 *
 * Each column family is a version: a sorted array of leaves, each leaf a
 * sorted array of up to LEAF_MAX items (key and value in one allocation).
 * Versions, leaves and items are reference counted and never change once
 * published, which gives cheap point-in-time iterators: an iterator takes a
 * reference on the current version and walks it without any lock.
 *
 * A write builds the next version copy-on-write: it copies the leaf array of
 * each column family it touches (one pointer per leaf) and clones only the
 * leaves it modifies. If anything fails half way (out of memory), the new
 * versions are dropped and nothing is visible, so batches stay atomic. With
 * LEAF_MAX = 512 a single put into a 100k-key family costs a few hundred
 * pointer copies instead of memmoving the whole family.
 *
 * Locking: m->lock protects m->cf[] and every reference count. Published
 * versions, leaves and items are immutable, so readers of an iterator's
 * version need no lock; only taking and dropping references does.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/kv.h"

#define LEAF_MAX 512

struct item {
	unsigned refs;
	size_t klen, vlen;
	unsigned char data[]; /* key, then value */
};

struct leaf {
	unsigned refs;
	unsigned n;
	struct item *it[LEAF_MAX];
};

struct ver {
	unsigned refs;
	size_t n, cap;
	struct leaf **leaves;
};

struct kvm {
	struct mav_kv kv;
	pthread_mutex_t lock;
	struct ver *cf[MAV_CF_COUNT]; /* lock */
};

struct miter {
	struct mav_kv_iter base;
	struct kvm *m;
	struct ver *v; /* referenced; immutable */
	size_t li, ii; /* leaf index, item index */
};

static int nomem(void)
{
	return mav_error_set(MAV_ENOMEM, "out of memory in the mem kv");
}

static int keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int item_cmp(const struct item *it, const void *key, size_t klen)
{
	return keycmp(it->data, it->klen, key, klen);
}

/* ---- reference counting (all under m->lock) ---- */

static void item_unref(struct item *it)
{
	if (--it->refs == 0)
		free(it);
}

static void leaf_unref(struct leaf *l)
{
	if (--l->refs)
		return;
	for (unsigned i = 0; i < l->n; i++)
		item_unref(l->it[i]);
	free(l);
}

static void ver_unref(struct ver *v)
{
	if (!v || --v->refs)
		return;
	for (size_t i = 0; i < v->n; i++)
		leaf_unref(v->leaves[i]);
	free(v->leaves);
	free(v);
}

static struct ver *ver_clone(const struct ver *old)
{
	struct ver *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->refs = 1;
	v->cap = (old ? old->n : 0) + 8;
	v->leaves = malloc(v->cap * sizeof(*v->leaves));
	if (!v->leaves) {
		free(v);
		return NULL;
	}
	if (old) {
		memcpy(v->leaves, old->leaves, old->n * sizeof(*v->leaves));
		v->n = old->n;
	}
	for (size_t i = 0; i < v->n; i++)
		v->leaves[i]->refs++;
	return v;
}

/* ---- searching ---- */

/* First index in l with item >= key; *eq tells whether it is equal. */
static unsigned leaf_lower(const struct leaf *l, const void *key, size_t klen,
                           bool *eq)
{
	unsigned lo = 0, hi = l->n;

	*eq = false;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = item_cmp(l->it[mid], key, klen);

		if (c == 0) {
			*eq = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The leaf that holds key if present: the last whose first key <= key (0 if
 * key sorts before everything). v->n must be > 0. */
static size_t ver_leaf(const struct ver *v, const void *key, size_t klen)
{
	size_t lo = 1, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (item_cmp(v->leaves[mid]->it[0], key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static const struct item *ver_find(const struct ver *v, const void *key,
                                   size_t klen)
{
	const struct leaf *l;
	unsigned i;
	bool eq;

	if (!v || v->n == 0)
		return NULL;
	l = v->leaves[ver_leaf(v, key, klen)];
	i = leaf_lower(l, key, klen, &eq);
	return eq ? l->it[i] : NULL;
}

/* ---- building the next version ---- */

/* Make leaf li private to v (clone it if shared). */
static struct leaf *own_leaf(struct ver *v, size_t li)
{
	struct leaf *old = v->leaves[li], *l;

	if (old->refs == 1)
		return old;
	l = malloc(sizeof(*l));
	if (!l)
		return NULL;
	l->refs = 1;
	l->n = old->n;
	memcpy(l->it, old->it, old->n * sizeof(l->it[0]));
	for (unsigned i = 0; i < l->n; i++)
		l->it[i]->refs++;
	old->refs--; /* still referenced by the published version */
	v->leaves[li] = l;
	return l;
}

static int ver_reserve(struct ver *v)
{
	struct leaf **p;
	size_t cap;

	if (v->n < v->cap)
		return 0;
	cap = v->cap * 2;
	p = realloc(v->leaves, cap * sizeof(*p));
	if (!p)
		return nomem();
	v->leaves = p;
	v->cap = cap;
	return 0;
}

static void ver_insert_leaf(struct ver *v, size_t at, struct leaf *l)
{
	memmove(v->leaves + at + 1, v->leaves + at,
	        (v->n - at) * sizeof(*v->leaves));
	v->leaves[at] = l;
	v->n++;
}

/* Split the full private leaf li in two; returns the new right half. */
static struct leaf *split_leaf(struct ver *v, size_t li)
{
	struct leaf *l = v->leaves[li], *r;
	unsigned half = l->n / 2;

	if (ver_reserve(v) < 0)
		return NULL;
	r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	r->refs = 1;
	r->n = l->n - half;
	memcpy(r->it, l->it + half, r->n * sizeof(r->it[0]));
	l->n = half;
	ver_insert_leaf(v, li + 1, r);
	return r;
}

static int ver_put_first(struct ver *v, struct item *it)
{
	struct leaf *l;

	if (ver_reserve(v) < 0)
		return nomem();
	l = malloc(sizeof(*l));
	if (!l)
		return nomem();
	l->refs = 1;
	l->n = 1;
	l->it[0] = it;
	ver_insert_leaf(v, 0, l);
	return 0;
}

/* Insert or replace; takes ownership of it on success. */
static int ver_put(struct ver *v, struct item *it)
{
	size_t li;
	struct leaf *l;
	unsigned pos;
	bool eq;

	if (v->n == 0)
		return ver_put_first(v, it);
	li = ver_leaf(v, it->data, it->klen);
	l = own_leaf(v, li);
	if (!l)
		return nomem();
	pos = leaf_lower(l, it->data, it->klen, &eq);
	if (eq) {
		item_unref(l->it[pos]);
		l->it[pos] = it;
		return 0;
	}
	if (l->n == LEAF_MAX) {
		struct leaf *r = split_leaf(v, li);

		if (!r)
			return nomem();
		if (pos > l->n) {
			pos -= l->n;
			l = r;
		}
	}
	memmove(l->it + pos + 1, l->it + pos, (l->n - pos) * sizeof(l->it[0]));
	l->it[pos] = it;
	l->n++;
	return 0;
}

static int ver_del(struct ver *v, const void *key, size_t klen)
{
	size_t li;
	struct leaf *l;
	unsigned pos;
	bool eq;

	if (v->n == 0)
		return 0;
	li = ver_leaf(v, key, klen);
	pos = leaf_lower(v->leaves[li], key, klen, &eq);
	if (!eq)
		return 0;
	l = own_leaf(v, li);
	if (!l)
		return nomem();
	item_unref(l->it[pos]);
	memmove(l->it + pos, l->it + pos + 1,
	        (l->n - pos - 1) * sizeof(l->it[0]));
	if (--l->n == 0) {
		leaf_unref(l);
		memmove(v->leaves + li, v->leaves + li + 1,
		        (v->n - li - 1) * sizeof(*v->leaves));
		v->n--;
	}
	return 0;
}

struct apply_ctx {
	struct kvm *m;
	struct ver *nv[MAV_CF_COUNT];
};

static int apply_op(void *arg, enum mav_cf cf, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
	struct apply_ctx *c = arg;
	struct item *it;
	int rc;

	if (!c->nv[cf]) {
		c->nv[cf] = ver_clone(c->m->cf[cf]);
		if (!c->nv[cf])
			return nomem();
	}
	if (!val)
		return ver_del(c->nv[cf], key, klen);
	it = malloc(sizeof(*it) + klen + vlen);
	if (!it)
		return nomem();
	it->refs = 1;
	it->klen = klen;
	it->vlen = vlen;
	memcpy(it->data, key, klen);
	memcpy(it->data + klen, val, vlen);
	rc = ver_put(c->nv[cf], it);
	if (rc < 0)
		free(it);
	return rc;
}

/* ---- the vtable ---- */

static int mem_write(void *self, const struct mav_kv_batch *b, unsigned flags)
{
	struct apply_ctx c = {.m = self};
	int rc;

	(void)flags; /* nothing is durable here, so nothing to sync */
	pthread_mutex_lock(&c.m->lock);
	rc = mav_kv_batch_foreach(b, apply_op, &c);
	for (int cf = 0; cf < MAV_CF_COUNT; cf++) {
		if (!c.nv[cf])
			continue;
		if (rc < 0) {
			ver_unref(c.nv[cf]);
			continue;
		}
		ver_unref(c.m->cf[cf]);
		c.m->cf[cf] = c.nv[cf];
	}
	pthread_mutex_unlock(&c.m->lock);
	return rc;
}

static int mem_get(void *self, enum mav_cf cf, const void *key, size_t klen,
                   void **val, size_t *vlen)
{
	struct kvm *m = self;
	const struct item *it;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	it = ver_find(m->cf[cf], key, klen);
	if (!it) {
		rc = mav_error_set(MAV_ENOTFOUND, "key not found");
		goto out;
	}
	if (vlen)
		*vlen = it->vlen;
	if (!val)
		goto out;
	*val = malloc(it->vlen ? it->vlen : 1);
	if (!*val) {
		rc = nomem();
		goto out;
	}
	memcpy(*val, it->data + it->klen, it->vlen);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int mem_flush(void *self)
{
	(void)self;
	return 0;
}

static void mem_close(void *self)
{
	struct kvm *m = self;

	for (int cf = 0; cf < MAV_CF_COUNT; cf++)
		ver_unref(m->cf[cf]);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- iterators ---- */

static const struct item *iter_item(const struct miter *it)
{
	return it->v->leaves[it->li]->it[it->ii];
}

static void iter_seek(struct mav_kv_iter *base, const void *key, size_t klen)
{
	struct miter *it = (struct miter *)base;
	bool eq;

	it->li = it->v->n;
	it->ii = 0;
	if (it->v->n == 0)
		return;
	it->li = ver_leaf(it->v, key, klen);
	it->ii = leaf_lower(it->v->leaves[it->li], key, klen, &eq);
	if (it->ii == it->v->leaves[it->li]->n) {
		it->li++;
		it->ii = 0;
	}
}

static void iter_seek_last(struct mav_kv_iter *base)
{
	struct miter *it = (struct miter *)base;

	it->li = it->v->n;
	it->ii = 0;
	if (it->v->n == 0)
		return;
	it->li = it->v->n - 1;
	it->ii = it->v->leaves[it->li]->n - 1;
}

static bool iter_valid(const struct mav_kv_iter *base)
{
	const struct miter *it = (const struct miter *)base;

	return it->li < it->v->n;
}

static void iter_next(struct mav_kv_iter *base)
{
	struct miter *it = (struct miter *)base;

	if (it->li >= it->v->n)
		return;
	if (++it->ii == it->v->leaves[it->li]->n) {
		it->li++;
		it->ii = 0;
	}
}

static const void *iter_key(const struct mav_kv_iter *base, size_t *klen)
{
	const struct item *i = iter_item((const struct miter *)base);

	*klen = i->klen;
	return i->data;
}

static const void *iter_value(const struct mav_kv_iter *base, size_t *vlen)
{
	const struct item *i = iter_item((const struct miter *)base);

	*vlen = i->vlen;
	return i->data + i->klen;
}

static int iter_status(const struct mav_kv_iter *base)
{
	(void)base;
	return 0;
}

static void iter_free(struct mav_kv_iter *base)
{
	struct miter *it = (struct miter *)base;

	pthread_mutex_lock(&it->m->lock);
	ver_unref(it->v);
	pthread_mutex_unlock(&it->m->lock);
	free(it);
}

static const struct mav_kv_iter_ops mem_iter_ops = {
    .seek = iter_seek,
    .seek_last = iter_seek_last,
    .valid = iter_valid,
    .next = iter_next,
    .key = iter_key,
    .value = iter_value,
    .status = iter_status,
    .free = iter_free,
};

static int mem_iter(void *self, enum mav_cf cf, struct mav_kv_iter **out)
{
	struct kvm *m = self;
	struct miter *it = calloc(1, sizeof(*it));

	if (!it)
		return nomem();
	it->base.ops = &mem_iter_ops;
	it->m = m;
	pthread_mutex_lock(&m->lock);
	it->v = m->cf[cf];
	it->v->refs++;
	pthread_mutex_unlock(&m->lock);
	it->li = it->v->n; /* positioned nowhere until seek */
	*out = &it->base;
	return 0;
}

static const struct mav_kv_ops mem_ops = {
    .get = mem_get,
    .write = mem_write,
    .iter = mem_iter,
    .flush = mem_flush,
    .close = mem_close,
};

int mav_kv_open_mem(struct mav_kv **out)
{
	struct kvm *m = calloc(1, sizeof(*m));
	int rc = 0;

	*out = NULL;
	if (!m)
		return nomem();
	pthread_mutex_init(&m->lock, NULL);
	m->kv.ops = &mem_ops;
	m->kv.self = m;
	for (int cf = 0; cf < MAV_CF_COUNT; cf++) {
		m->cf[cf] = ver_clone(NULL);
		if (!m->cf[cf]) {
			rc = nomem();
			goto out;
		}
	}
	*out = &m->kv;
out:
	if (rc < 0)
		mem_close(m);
	return rc;
}
