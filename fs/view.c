/* view.c - open trees behind root names, with reference counting.
 *
 * A slot goes FREE -> OPENING -> OPEN -> CLOSING -> FREE, or OPEN -> DEAD
 * -> FREE when its branch is deleted. OPENING and CLOSING views are
 * placeholders that keep a second opener of the same name waiting (on
 * vs->cond) while the tree is opened or synced outside the lock: two
 * struct mav_wt on one branch would each believe they own its working tree.
 *
 * Read-only trees are shared between views of the same commit through a
 * small refcounted struct tree; working trees are owned by their view.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mav/error.h"
#include "inoset.h"
#include "view.h"

enum state { V_FREE = 0, V_OPENING, V_OPEN, V_CLOSING, V_DEAD };

struct tree {
	struct mav_wt *wt;
	mav_id commit;
	unsigned users;
};

struct view {
	struct mavfs_view pub; /* first: handlers get &pub */
	unsigned slot;         /* where it is in the table */
	enum state state;
	char *name;
	mav_id commit;
	struct tree *tree; /* read-only views */
	uint64_t nlookup;  /* kernel references to inodes of this view */
	uint32_t pins;     /* handlers running on it */
	int64_t idle_since;
	int64_t last_used;         /* when last unpinned */
	struct mavfs_inoset *inos; /* working trees: inodes the kernel holds */
	bool retired; /* its name now opens a fresh view; serves old inodes */
};

struct mavfs_views {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a state changed or pins dropped */
	struct mav_repo *r;
	pthread_rwlock_t *gc_lock;
	unsigned max;   /* the bound the janitor trims back to */
	unsigned cap;   /* hard limit: slots[1..cap] */
	unsigned nused; /* slots in use */
	struct view **slots;
	/* Inode prefixes, 1..nprefix-1: the name each was given to and the
	 * slot its view is open in (0: none). */
	struct prefix {
		char *name;
		unsigned slot;
	} * prefixes;
	unsigned nprefix, capprefix;
	uint32_t gen;
	bool kernel_times; /* set once at init: see mav_wt_kernel_times */
};

int mavfs_views_new(struct mavfs_views **out, struct mav_repo *r,
                    pthread_rwlock_t *gc_lock, unsigned max_views)
{
	struct mavfs_views *vs = calloc(1, sizeof(*vs));

	*out = NULL;
	if (!vs)
		return -ENOMEM;
	if (max_views < 2)
		max_views = 2;
	if (max_views > MAVFS_MAX_SLOTS / 4)
		max_views = MAVFS_MAX_SLOTS / 4;
	/* Above max, views the kernel still holds stay open (failing the
	 * lookup would be worse) until the janitor makes it let go. */
	vs->cap = max_views * 4 < 64 ? 64 : max_views * 4;
	vs->slots = calloc(vs->cap + 1, sizeof(*vs->slots));
	if (!vs->slots) {
		free(vs);
		return -ENOMEM;
	}
	pthread_mutex_init(&vs->lock, NULL);
	pthread_cond_init(&vs->cond, NULL);
	vs->r = r;
	vs->gc_lock = gc_lock;
	vs->max = max_views;
	vs->nprefix = 1; /* 0 is the root's */
	*out = vs;
	return 0;
}

static void view_free(struct view *v)
{
	if (!v)
		return;
	mavfs_inoset_free(v->inos);
	free(v->name);
	free(v);
}

/* Release the tree of a view (outside the lock). */
static void view_close_tree(struct mavfs_views *vs, struct view *v)
{
	struct tree *t = v->tree;
	bool last;

	if (v->pub.rw) {
		mav_wt_close(v->pub.wt);
	} else if (t) {
		pthread_mutex_lock(&vs->lock);
		last = --t->users == 0;
		pthread_mutex_unlock(&vs->lock);
		if (last) {
			mav_wt_close(t->wt);
			free(t);
		}
	}
	v->pub.wt = NULL;
	v->tree = NULL;
}

void mavfs_views_free(struct mavfs_views *vs)
{
	if (!vs)
		return;
	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (v && v->state != V_DEAD)
			view_close_tree(vs, v);
		view_free(v);
	}
	free(vs->slots);
	for (unsigned p = 1; p < vs->nprefix; p++)
		free(vs->prefixes[p].name);
	free(vs->prefixes);
	pthread_mutex_destroy(&vs->lock);
	pthread_cond_destroy(&vs->cond);
	free(vs);
}

static bool same_key(const struct view *v, const char *name, bool rw,
                     const mav_id *commit)
{
	if (v->state == V_DEAD || v->retired || v->pub.rw != rw ||
	    strcmp(v->name, name))
		return false;
	return rw || mav_id_cmp(&v->commit, commit) == 0;
}

/* A shared tree of commit held by another view (lock held). */
static struct tree *shared_tree(struct mavfs_views *vs, const mav_id *commit)
{
	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (v && v->tree && v->state == V_OPEN &&
		    mav_id_cmp(&v->tree->commit, commit) == 0) {
			v->tree->users++;
			return v->tree;
		}
	}
	return NULL;
}

static bool closable(const struct view *v, int64_t now, int64_t idle_ns)
{
	return v && v->state == V_OPEN && v->pins == 0 && v->nlookup == 0 &&
	       now - v->idle_since >= idle_ns;
}

/* Close the view in slot i, which the caller marked V_CLOSING (lock not
 * held). A working tree keeps its buffered writes: sealed first. */
static void close_slot(struct mavfs_views *vs, unsigned i)
{
	struct view *v = vs->slots[i];

	if (v->pub.rw) {
		int rc;

		pthread_rwlock_rdlock(vs->gc_lock);
		rc = mav_wt_sync(v->pub.wt);
		pthread_rwlock_unlock(vs->gc_lock);
		if (rc < 0)
			mavfs_errno(rc, "sync before closing a working tree");
	}
	view_close_tree(vs, v);
	pthread_mutex_lock(&vs->lock);
	vs->slots[i] = NULL;
	vs->prefixes[v->pub.prefix].slot = 0;
	vs->nused--;
	pthread_cond_broadcast(&vs->cond);
	pthread_mutex_unlock(&vs->lock);
	view_free(v);
}

/* Pick the longest-idle closable view and mark it closing (lock held). */
static unsigned pick_idle(struct mavfs_views *vs, int64_t idle_ns)
{
	int64_t now = mavfs_now_ns();
	unsigned best = 0;

	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (closable(v, now, idle_ns) &&
		    (!best || v->idle_since < vs->slots[best]->idle_since))
			best = i;
	}
	if (best)
		vs->slots[best]->state = V_CLOSING;
	return best;
}

/* Find name's view or a free slot (lock held; may drop it to wait or to
 * close an idle view). Returns the slot; *found says which. */
static int find_or_reserve(unsigned *slot, bool *found, struct mavfs_views *vs,
                           const char *name, bool rw, const mav_id *commit)
{
	for (;;) {
		unsigned free_slot = 0, idle;
		bool waited = false;

		for (unsigned i = 1; i <= vs->cap && !waited; i++) {
			struct view *v = vs->slots[i];

			if (!v) {
				free_slot = free_slot ? free_slot : i;
				continue;
			}
			if (!same_key(v, name, rw, commit))
				continue;
			if (v->state == V_OPEN) {
				*slot = i;
				*found = true;
				return 0;
			}
			pthread_cond_wait(&vs->cond, &vs->lock);
			waited = true;
		}
		if (waited)
			continue;
		/* At the bound: make room from views nobody holds; above it
		 * only while the kernel holds them all. */
		idle = vs->nused >= vs->max ? pick_idle(vs, 0) : 0;
		if (idle) {
			pthread_mutex_unlock(&vs->lock);
			close_slot(vs, idle);
			pthread_mutex_lock(&vs->lock);
			continue;
		}
		if (!free_slot)
			return -ENFILE;
		*slot = free_slot;
		*found = false;
		return 0;
	}
}

/* The prefix for a new view of name in slot (lock held): the one name
 * had unless its old view still holds it, else a new one. */
static int take_prefix(uint32_t *out, struct mavfs_views *vs, const char *name,
                       unsigned slot)
{
	unsigned p = vs->nprefix;

	while (--p > 0 && strcmp(vs->prefixes[p].name, name) != 0)
		;
	if (p == 0 || vs->prefixes[p].slot != 0) {
		if (vs->nprefix >= MAVFS_MAX_SLOTS)
			return -ENFILE;
		if (vs->nprefix >= vs->capprefix) {
			unsigned cap = vs->capprefix ? 2 * vs->capprefix : 64;
			struct prefix *grown =
			    realloc(vs->prefixes, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			vs->prefixes = grown;
			vs->capprefix = cap;
		}
		p = vs->nprefix;
		if (!(vs->prefixes[p].name = strdup(name)))
			return -ENOMEM;
		vs->nprefix++;
	}
	vs->prefixes[p].slot = slot;
	*out = p;
	return 0;
}

/* The view an inode number belongs to, or NULL (lock held). */
static struct view *view_of(struct mavfs_views *vs, uint64_t ino)
{
	uint32_t p = mavfs_ino_prefix(ino);
	unsigned slot = p >= 1 && p < vs->nprefix ? vs->prefixes[p].slot : 0;

	return slot ? vs->slots[slot] : NULL;
}

/* Open the tree of a new view (lock not held). */
static int open_tree(struct mavfs_views *vs, struct view *v)
{
	struct tree *t;
	int rc;

	if (v->pub.rw) {
		rc = mav_wt_open(&v->pub.wt, vs->r, v->name);
		if (rc == 0) {
			mav_wt_kernel_times(v->pub.wt, vs->kernel_times);
			rc = mavfs_inoset_new(&v->inos);
		}
		return rc;
	}
	if (v->tree) {
		v->pub.wt = v->tree->wt;
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	rc = mav_wt_open_commit(&t->wt, vs->r, &v->commit);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->commit = v->commit;
	t->users = 1;
	v->tree = t;
	v->pub.wt = t->wt;
	return 0;
}

static struct view *view_alloc(const char *name, bool rw, const mav_id *commit)
{
	struct view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->name = strdup(name);
	if (!v->name) {
		free(v);
		return NULL;
	}
	v->pub.name = v->name;
	v->pub.rw = rw;
	if (!rw)
		v->commit = *commit;
	v->state = V_OPENING;
	v->idle_since = mavfs_now_ns();
	v->last_used = v->idle_since;
	return v;
}

int mavfs_view_get(struct mavfs_view **out, struct mavfs_views *vs,
                   const char *name, bool rw, const mav_id *commit)
{
	struct view *v = NULL;
	unsigned slot;
	bool found;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&vs->lock);
	rc = find_or_reserve(&slot, &found, vs, name, rw, commit);
	if (rc < 0 || found)
		goto out;
	v = view_alloc(name, rw, commit);
	rc = v ? take_prefix(&v->pub.prefix, vs, name, slot) : -ENOMEM;
	if (rc < 0)
		goto out;
	v->slot = slot;
	v->pub.gen = ++vs->gen;
	vs->slots[slot] = v;
	vs->nused++;
	if (!rw)
		v->tree = shared_tree(vs, commit);
	pthread_mutex_unlock(&vs->lock);
	rc = open_tree(vs, v);
	pthread_mutex_lock(&vs->lock);
	if (rc < 0) {
		if (v->tree)
			v->tree->users--; /* shared: never the last user */
		mavfs_inoset_free(v->inos);
		v->inos = NULL;
		if (v->pub.rw)
			mav_wt_close(v->pub.wt);
		vs->slots[slot] = NULL;
		vs->prefixes[v->pub.prefix].slot = 0;
		vs->nused--;
	} else {
		v->state = V_OPEN;
	}
	pthread_cond_broadcast(&vs->cond);
out:
	if (rc == 0) {
		v = vs->slots[slot];
		v->pins++;
		*out = &v->pub;
	} else if (v) {
		view_free(v);
	}
	pthread_mutex_unlock(&vs->lock);
	return rc;
}

int mavfs_view_pin(struct mavfs_view **out, struct mavfs_views *vs,
                   uint64_t ino)
{
	struct view *v;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&vs->lock);
	v = view_of(vs, ino);
	if (!v || v->state != V_OPEN) {
		rc = -ESTALE;
		goto out;
	}
	v->pins++;
	*out = &v->pub;
out:
	pthread_mutex_unlock(&vs->lock);
	return rc;
}

/* After a pin or reference went: wake waiters (a killer waits for pins to
 * drain), note when the view became unreferenced, free a dead one (lock
 * held). */
static void settle(struct mavfs_views *vs, struct view *v)
{
	pthread_cond_broadcast(&vs->cond);
	if (v->pins || v->nlookup)
		return;
	v->idle_since = mavfs_now_ns();
	if (v->state == V_DEAD) {
		vs->slots[v->slot] = NULL;
		vs->prefixes[v->pub.prefix].slot = 0;
		vs->nused--;
		view_free(v);
	}
}

void mavfs_view_unpin(struct mavfs_views *vs, struct mavfs_view *pv)
{
	struct view *v = (struct view *)pv;

	if (!pv)
		return;
	pthread_mutex_lock(&vs->lock);
	v->pins--;
	v->last_used = mavfs_now_ns();
	settle(vs, v);
	pthread_mutex_unlock(&vs->lock);
}

void mavfs_view_ref(struct mavfs_views *vs, struct mavfs_view *pv,
                    uint64_t wino, uint64_t n)
{
	struct view *v = (struct view *)pv;

	pthread_mutex_lock(&vs->lock);
	v->nlookup += n;
	if (v->inos && mavfs_inoset_add(v->inos, wino, n) < 0)
		mavfs_log(LOG_ERR, "out of memory tracking inodes of %s",
		          v->name);
	pthread_mutex_unlock(&vs->lock);
}

void mavfs_view_forget(struct mavfs_views *vs, uint64_t ino, uint64_t n)
{
	uint64_t wino = mavfs_ino_wino(ino);
	struct view *v;
	bool tell_wt;

	pthread_mutex_lock(&vs->lock);
	v = view_of(vs, ino);
	if (!v) {
		pthread_mutex_unlock(&vs->lock);
		return;
	}
	v->nlookup = n > v->nlookup ? 0 : v->nlookup - n;
	if (v->inos)
		mavfs_inoset_sub(v->inos, wino, n);
	/* The wt never counted its root: the root name is ours. */
	tell_wt = v->state == V_OPEN && wino != MAV_WT_ROOT;
	if (tell_wt)
		v->pins++;
	else
		settle(vs, v);
	pthread_mutex_unlock(&vs->lock);
	if (!tell_wt)
		return;
	/* Forgetting a dirty inode seals it: new chunks, so under gc_lock. */
	if (v->pub.rw)
		pthread_rwlock_rdlock(vs->gc_lock);
	mav_wt_forget(v->pub.wt, wino, n);
	if (v->pub.rw)
		pthread_rwlock_unlock(vs->gc_lock);
	mavfs_view_unpin(vs, &v->pub);
}

/* The open working-tree view of branch (lock held), waiting out opens. */
static struct view *branch_view(struct mavfs_views *vs, const char *branch)
{
	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (!v || !same_key(v, branch, true, NULL))
			continue;
		if (v->state == V_OPEN)
			return v;
		pthread_cond_wait(&vs->cond, &vs->lock);
		i = 0; /* rescan */
	}
	return NULL;
}

static int list_inos(uint64_t **inos, size_t *n, const struct view *v)
{
	size_t cnt = v->inos ? mavfs_inoset_count(v->inos) : 0;

	*inos = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	*inos = malloc(cnt * sizeof(**inos));
	if (!*inos)
		return -ENOMEM;
	*n = mavfs_inoset_list(v->inos, *inos, cnt);
	for (size_t i = 0; i < *n; i++)
		(*inos)[i] = mavfs_ino(v->pub.prefix, (*inos)[i]);
	return 0;
}

bool mavfs_views_kill_branch(struct mavfs_views *vs, const char *branch,
                             uint64_t **inos, size_t *n)
{
	struct view *v;

	*inos = NULL;
	*n = 0;
	pthread_mutex_lock(&vs->lock);
	v = branch_view(vs, branch);
	if (!v) {
		pthread_mutex_unlock(&vs->lock);
		return false;
	}
	v->state = V_DEAD; /* no new pins from here on */
	v->pins++;         /* ours: v stays until we are done */
	while (v->pins > 1)
		pthread_cond_wait(&vs->cond, &vs->lock);
	list_inos(inos, n, v);
	pthread_mutex_unlock(&vs->lock);
	mav_wt_close(v->pub.wt);
	v->pub.wt = NULL;
	pthread_mutex_lock(&vs->lock);
	v->pins--;
	settle(vs, v); /* free now if the kernel holds nothing */
	pthread_mutex_unlock(&vs->lock);
	return true;
}

char *mavfs_views_retire(struct mavfs_views *vs, uint64_t ino)
{
	struct view *v;
	char *name = NULL;

	pthread_mutex_lock(&vs->lock);
	v = view_of(vs, ino);
	if (v && v->state == V_OPEN && !v->pub.rw && !v->retired) {
		v->retired = true;
		name = strdup(v->name);
	}
	pthread_mutex_unlock(&vs->lock);
	return name;
}

int mavfs_views_branch_inos(struct mavfs_views *vs, const char *branch,
                            uint64_t **inos, size_t *n)
{
	struct view *v;
	int rc = 0;

	*inos = NULL;
	*n = 0;
	pthread_mutex_lock(&vs->lock);
	v = branch_view(vs, branch);
	if (v)
		rc = list_inos(inos, n, v);
	pthread_mutex_unlock(&vs->lock);
	return rc;
}

uint64_t mavfs_views_root_ino(struct mavfs_views *vs, const char *name)
{
	uint64_t ino = 0;

	pthread_mutex_lock(&vs->lock);
	for (unsigned i = 1; i <= vs->cap && !ino; i++) {
		struct view *v = vs->slots[i];

		if (v && v->state == V_OPEN && strcmp(v->name, name) == 0)
			ino = mavfs_ino(v->pub.prefix, MAV_WT_ROOT);
	}
	pthread_mutex_unlock(&vs->lock);
	return ino;
}

/* Pin every open working tree; returns them (malloc'd). */
static struct view **pin_working_trees(struct mavfs_views *vs, size_t *n)
{
	struct view **out = calloc(vs->cap, sizeof(*out));

	*n = 0;
	if (!out)
		return NULL;
	pthread_mutex_lock(&vs->lock);
	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (v && v->pub.rw && v->state == V_OPEN) {
			v->pins++;
			out[(*n)++] = v;
		}
	}
	pthread_mutex_unlock(&vs->lock);
	return out;
}

/* Say so when writes a program was told succeeded were dropped since the
 * last look (the store refused them, as on a full disk): only those files'
 * next fsync would tell, and cp calls none. */
static void log_lost(struct view *w)
{
	int first;
	unsigned n = mav_wt_take_lost(w->pub.wt, &first);

	if (n)
		mavfs_log(LOG_ERR,
		          "%s: writes to %u file%s were dropped (%s); each "
		          "file's next fsync reports it",
		          w->name, n, n == 1 ? "" : "s", mav_error_name(first));
}

/* Seal (all, or what has been quiet for older_ns) in every open working
 * tree, each under the gc lock for reading unless the caller holds it. */
static int for_working_trees(struct mavfs_views *vs, bool sync,
                             int64_t older_ns, bool locked)
{
	size_t n;
	struct view **w = pin_working_trees(vs, &n);
	int first = 0;

	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (!locked)
			pthread_rwlock_rdlock(vs->gc_lock);
		rc = sync ? mav_wt_sync(w[i]->pub.wt)
		          : mav_wt_seal_idle(w[i]->pub.wt, older_ns);
		if (!locked)
			pthread_rwlock_unlock(vs->gc_lock);
		if (rc < 0) {
			mavfs_errno(rc, sync ? "sync" : "sealing idle files");
			first = first ? first : rc;
		}
		log_lost(w[i]);
		mavfs_view_unpin(vs, &w[i]->pub);
	}
	free(w);
	return first;
}

void mavfs_views_kernel_times(struct mavfs_views *vs, bool on)
{
	vs->kernel_times = on;
}

void mavfs_views_seal_idle(struct mavfs_views *vs, int64_t older_ns)
{
	for_working_trees(vs, false, older_ns, false);
}

int mavfs_views_sync(struct mavfs_views *vs)
{
	return for_working_trees(vs, true, 0, false);
}

int mavfs_views_sync_locked(struct mavfs_views *vs)
{
	return for_working_trees(vs, true, 0, true);
}

void mavfs_views_close_idle(struct mavfs_views *vs, int64_t idle_ns)
{
	for (;;) {
		unsigned i;

		pthread_mutex_lock(&vs->lock);
		i = pick_idle(vs, vs->nused > vs->max ? 0 : idle_ns);
		pthread_mutex_unlock(&vs->lock);
		if (!i)
			return;
		close_slot(vs, i);
	}
}

static int by_last_use(const void *a, const void *b)
{
	const struct view *x = *(struct view *const *)a;
	const struct view *y = *(struct view *const *)b;

	return (x->last_used > y->last_used) - (x->last_used < y->last_used);
}

size_t mavfs_views_trim(struct mavfs_views *vs, char ***names, int64_t quiet_ns)
{
	int64_t now = mavfs_now_ns();
	struct view **c = NULL;
	size_t n = 0, want, out = 0;

	*names = NULL;
	pthread_mutex_lock(&vs->lock);
	want = vs->nused > vs->max ? vs->nused - vs->max : 0;
	if (want)
		c = calloc(vs->nused, sizeof(*c));
	for (unsigned i = 1; c && i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (v && v->state == V_OPEN && !v->pins && v->nlookup &&
		    now - v->last_used >= quiet_ns)
			c[n++] = v;
	}
	if (n)
		qsort(c, n, sizeof(*c), by_last_use);
	if (n && (*names = calloc(n < want ? n : want, sizeof(**names))))
		for (; out < n && out < want; out++)
			(*names)[out] = strdup(c[out]->name);
	pthread_mutex_unlock(&vs->lock);
	free(c);
	return out;
}

/* Whether slot i is the first holder of its read-only tree (lock held). */
static bool first_holder(struct mavfs_views *vs, unsigned i)
{
	for (unsigned j = 1; j < i; j++) {
		struct view *v = vs->slots[j];

		if (v && v->state != V_DEAD && v->tree == vs->slots[i]->tree)
			return false;
	}
	return vs->slots[i]->tree != NULL;
}

void mavfs_views_stats(struct mavfs_views *vs, unsigned *open, unsigned *trees)
{
	*open = 0;
	*trees = 0;
	pthread_mutex_lock(&vs->lock);
	for (unsigned i = 1; i <= vs->cap; i++) {
		struct view *v = vs->slots[i];

		if (!v || v->state == V_DEAD)
			continue;
		(*open)++;
		if (v->pub.rw || first_holder(vs, i))
			(*trees)++;
	}
	pthread_mutex_unlock(&vs->lock);
}
