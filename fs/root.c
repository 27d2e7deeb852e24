/* root.c - names in the mount root, resolved from refs.
 *
 * Lookup: "NAME" is the working tree of branch NAME; "@REV" is a read-only
 * view of whatever mav_rev_parse(REV) names (vN, tag, a branch's last
 * snapshot, a commit-id prefix). Only "@vN" can never change meaning, so
 * only it is cached by the kernel for the long read-only timeout; names
 * that refs can move are cached for the working-tree timeout and are also
 * invalidated explicitly whenever the daemon moves a ref (rpc). A lookup
 * that raced a ref change (the generation moved while it ran) is not
 * cached at all.
 *
 * Listing: branches, then @vN in version order, then @tags, then @BRANCH
 * for branches with a snapshot (unless a tag or version already owns that
 * @name, which is what the name resolves to). Offsets are positions in the
 * cached listing: 1 and 2 are "." and "..".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "root.h"

struct listing {
	char **names;
	size_t n, cap;
};

struct mavfs_root {
	pthread_mutex_t lock;
	_Atomic uint64_t gen;  /* bumped when refs change */
	_Atomic int64_t mtime; /* ns, of the last change */
	struct listing list;   /* lock */
	uint64_t list_gen;     /* lock: gen the listing was built at */
	bool built;            /* lock */
};

static void listing_clear(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

static int listing_add(struct listing *l, const char *prefix, const char *name)
{
	size_t len = strlen(prefix) + strlen(name) + 1;
	char *s;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **names = realloc(l->names, cap * sizeof(*names));

		if (!names)
			return -ENOMEM;
		l->names = names;
		l->cap = cap;
	}
	s = malloc(len);
	if (!s)
		return -ENOMEM;
	snprintf(s, len, "%s%s", prefix, name);
	l->names[l->n++] = s;
	return 0;
}

int mavfs_root_new(struct mavfs_root **out)
{
	struct mavfs_root *rt = calloc(1, sizeof(*rt));

	*out = NULL;
	if (!rt)
		return -ENOMEM;
	pthread_mutex_init(&rt->lock, NULL);
	atomic_store(&rt->mtime, mavfs_now_ns());
	*out = rt;
	return 0;
}

void mavfs_root_free(struct mavfs_root *rt)
{
	if (!rt)
		return;
	listing_clear(&rt->list);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

void mavfs_root_touch(struct mavfs_root *rt)
{
	atomic_fetch_add(&rt->gen, 1);
	atomic_store(&rt->mtime, mavfs_now_ns());
}

void mavfs_root_stat(struct stat *st, struct mavfs *fs)
{
	int64_t t = atomic_load(&fs->root->mtime);

	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = t / 1000000000;
	st->st_mtim.tv_nsec = t % 1000000000;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

static bool is_version(const char *s)
{
	if (s[0] != 'v' || !s[1])
		return false;
	for (s++; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int resolve_commit(mav_id *id, bool *rw, struct mavfs *fs,
                          const char *name)
{
	char ref[300];
	int rc;

	*rw = name[0] != '@';
	if (name[0] == '.' || name[0] == '\0' || strcmp(name, "@") == 0)
		return -ENOENT;
	if (*rw) {
		if (snprintf(ref, sizeof(ref), "b/%s", name) >=
		    (int)sizeof(ref))
			return -ENOENT;
		rc = mav_ref_get(id, fs->repo, ref);
	} else {
		rc = mav_rev_parse(id, fs->repo, name + 1);
		if (rc == 0 && mav_id_is_zero(id))
			rc = MAV_ENOTFOUND;
	}
	if (rc == MAV_ENOTFOUND || rc == MAV_EBADREV)
		return -ENOENT;
	return rc;
}

int mavfs_root_resolve(struct mavfs_view **out, double *entry_timeout,
                       struct mavfs *fs, const char *name)
{
	uint64_t gen = atomic_load(&fs->root->gen);
	mav_id id;
	bool rw;
	int rc;

	*out = NULL;
	rc = resolve_commit(&id, &rw, fs, name);
	if (rc < 0)
		return rc;
	rc = mavfs_view_get(out, fs->views, name, rw, &id);
	if (rc < 0)
		return rc;
	if (!rw && is_version(name + 1))
		*entry_timeout = fs->opt.ro_timeout;
	else
		*entry_timeout = fs->opt.root_timeout;
	if (atomic_load(&fs->root->gen) != gen)
		*entry_timeout = 0;
	return 0;
}

/* ---- listing ---- */

struct build {
	struct listing *l;
	struct listing tags; /* sorted: mav_ref_list visits in name order */
	char pass;
};

static bool in_sorted(const struct listing *l, const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->names[mid], name);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int add_ref(void *ctx, const char *name, const mav_id *id)
{
	struct build *b = ctx;

	switch (b->pass) {
	case 'b':
		return listing_add(b->l, "", name);
	case 'v':
		return listing_add(b->l, "@", name);
	case 't': {
		int rc = listing_add(&b->tags, "", name);

		return rc < 0 ? rc : listing_add(b->l, "@", name);
	}
	default: /* '@': a branch's last snapshot */
		if (mav_id_is_zero(id) || is_version(name) ||
		    in_sorted(&b->tags, name))
			return 0;
		return listing_add(b->l, "@", name);
	}
}

static int build_listing(struct listing *l, struct mav_repo *r)
{
	static const char passes[][2] = {
	    {'b', 'b'}, {'v', 'v'}, {'t', 't'}, {'b', '@'}};
	struct build b = {.l = l};
	int rc = 0;

	for (size_t i = 0; i < 4 && rc == 0; i++) {
		b.pass = passes[i][1];
		rc = mav_ref_list(r, passes[i][0], add_ref, &b);
	}
	listing_clear(&b.tags);
	return rc;
}

/* Make sure the cached listing is current (lock held). */
static int refresh(struct mavfs *fs)
{
	struct mavfs_root *rt = fs->root;
	uint64_t gen = atomic_load(&rt->gen);
	struct listing l = {0};
	int rc;

	if (rt->built && rt->list_gen == gen)
		return 0;
	rc = build_listing(&l, fs->repo);
	if (rc < 0) {
		listing_clear(&l);
		return rc;
	}
	listing_clear(&rt->list);
	rt->list = l;
	rt->list_gen = gen;
	rt->built = true;
	return 0;
}

static size_t add_one(char *buf, size_t size, fuse_req_t req, bool plus,
                      const char *name, uint64_t ino, off_t next)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr.st_ino = ino;
	e.attr.st_mode = S_IFDIR;
	if (plus)
		return fuse_add_direntry_plus(req, buf, size, name, &e, next);
	return fuse_add_direntry(req, buf, size, name, &e.attr, next);
}

ssize_t mavfs_root_readdir(char *buf, size_t size, fuse_req_t req,
                           struct mavfs *fs, off_t off, bool plus)
{
	struct mavfs_root *rt = fs->root;
	size_t used = 0;
	int rc;

	pthread_mutex_lock(&rt->lock);
	rc = refresh(fs);
	if (rc < 0)
		goto out;
	for (off_t i = off; i < (off_t)rt->list.n + 2; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : NULL;
		/* Listed names carry stand-in inode numbers (slot 0, never a
		 * node id): the real one is known only once looked up. */
		uint64_t ino = i < 2 ? FUSE_ROOT_ID : (uint64_t)i + 1;
		size_t need;

		if (!name)
			name = rt->list.names[i - 2];
		need = add_one(buf + used, size - used, req, plus, name, ino,
		               i + 1);
		if (need > size - used)
			break;
		used += need;
	}
out:
	pthread_mutex_unlock(&rt->lock);
	return rc < 0 ? rc : (ssize_t)used;
}
