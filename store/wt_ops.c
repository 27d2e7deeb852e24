/* wt_ops.c - changes to the namespace and to attributes of working trees.
 *
 * Every call follows one shape: take wt->lock, resolve the nodes involved,
 * check the POSIX rules (the same errno ext4 gives), materialize what will
 * change, put every changed record and overlay entry into one batch, write
 * it, and only then update the nodes in memory. A failed write leaves both
 * the store and the table as they were.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mav/error.h"
#include "wt_internal.h"

#define XATTR_NAME_MAX  255
#define XATTR_VALUE_MAX (64u << 10)

/* Shared prologue of calls that change directory dir: the node, writable,
 * a directory, and a batch to fill (*b is created unless already set). */
int wt_dir_begin(struct node **dir, struct mav_kv_batch **b, struct mav_wt *wt,
                 uint64_t ino)
{
	int rc;

	if (!wt->branch)
		return -EROFS;
	rc = wt_get(dir, wt, ino);
	if (rc == 0 && (*dir)->rec.type != MAV_T_DIR)
		rc = -ENOTDIR;
	if (rc == 0 && (*dir)->orphan)
		rc = -ENOENT;
	if (rc == 0 && !*b)
		rc = mav_kv_batch_new(b);
	if (rc == 0)
		rc = wt_materialize(wt, *dir, *b);
	return rc;
}

/* Mark dir changed now and queue its record. */
int wt_dir_touch(struct mav_wt *wt, struct mav_kv_batch *b, struct node *dir)
{
	dir->rec.mtime = dir->rec.ctime = wt_now();
	wt_listing_drop(wt, dir);
	return wt_put_rec(wt, b, dir);
}

static bool base_has(struct mav_wt *wt, const struct node *dir,
                     const char *name)
{
	const struct mav_tree *t = NULL;
	int64_t ix = -1;

	if (!mav_id_is_zero(&dir->rec.id) &&
	    mav_repo_tree_find(wt->r, &dir->rec.id, name, &t, &ix) == 0)
		mav_repo_tree_release(wt->r, t);
	return ix >= 0;
}

/* Queue removal of name from dir (whiteout if the base has it). */
int wt_dirent_remove(struct mav_wt *wt, struct mav_kv_batch *b,
                     struct node *dir, const char *name)
{
	if (base_has(wt, dir, name))
		return wt_put_dirent(wt, b, dir->ino, name, 0, true);
	return wt_del_dirent(wt, b, dir->ino, name);
}

/* Name must not exist yet in dir. */
int wt_check_new_name(struct mav_wt *wt, struct node *dir, const char *name)
{
	struct node *n = NULL;
	int rc;

	if (!mav_name_valid(name))
		return strlen(name) > 255 ? -ENAMETOOLONG : -EINVAL;
	rc = wt_resolve(&n, wt, dir, name);
	if (rc == 0) {
		wt_node_unref(wt, n);
		return -EEXIST;
	}
	return rc == -ENOENT ? 0 : rc;
}

/* Create a node of any type at dir/name. */
static int make_node(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                     const char *name, const struct wt_rec *proto)
{
	struct mav_kv_batch *b = NULL;
	struct node *dir, *n = NULL;
	uint64_t ino;
	int rc = wt_dir_begin(&dir, &b, wt, parent);

	if (rc == 0)
		rc = wt_check_new_name(wt, dir, name);
	if (rc < 0)
		goto out;
	rc = wt_name_ino(&ino, wt, dir->ino, name);
	if (rc < 0)
		goto out;
	n = wt_node_new(wt, ino);
	if (!n || !(n->name = strdup(name))) {
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
		goto out;
	}
	n->rec = *proto;
	n->rec.parent = dir->ino;
	n->rec.ctime = wt_now();
	if (!proto->mtime) /* import passes the source's times */
		n->rec.atime = n->rec.mtime = n->rec.ctime;
	else
		n->rec.atime = proto->mtime;
	if (dir->rec.mode & 02000) { /* setgid directory, as on ext4 */
		n->rec.gid = dir->rec.gid;
		if (n->rec.type == MAV_T_DIR)
			n->rec.mode |= 02000;
	}
	n->parent = dir->ino;
	n->persisted = true;
	rc = wt_put_rec(wt, b, n);
	if (rc == 0)
		rc = wt_put_dirent(wt, b, dir->ino, name, n->ino, false);
	if (rc == 0)
		rc = wt_put_header(wt, b);
	if (rc == 0)
		rc = wt_dir_touch(wt, b, dir);
	if (rc == 0)
		rc = wt_write(wt, b, 0);
	if (rc == 0) {
		wt_tab_add(&wt->by_child, n, WT_TAB_CHILD);
		n->nlookup++;
		wt_attr(out, wt, n);
	}
out:
	if (rc < 0 && n) {
		n->rec.target = NULL; /* owned by the caller's proto */
		n->rec.x = NULL;
		n->rec.nx = 0;
		n->persisted = false;
		n->parent = 0;
		wt_node_unref(wt, n);
	}
	mav_kv_batch_free(b);
	return rc;
}

static int make(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                const char *name, struct wt_rec *proto)
{
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = make_node(out, wt, parent, name, proto);
	wt_unlock(wt);
	if (rc < 0)
		free(proto->target);
	return rc;
}

int mav_wt_create(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                  const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct wt_rec p = {.type = MAV_T_FILE,
	                   .mode = mode & 07777,
	                   .uid = uid,
	                   .gid = gid,
	                   .nlink = 1};

	mav_repo_empty_blob(&p.id);
	return make(out, wt, parent, name, &p);
}

int mav_wt_mkdir(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                 const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct wt_rec p = {.type = MAV_T_DIR,
	                   .mode = mode & 07777,
	                   .uid = uid,
	                   .gid = gid,
	                   .nlink = 2};

	return make(out, wt, parent, name, &p);
}

int mav_wt_mknod(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                 const char *name, uint8_t type, uint32_t mode, uint32_t uid,
                 uint32_t gid)
{
	struct wt_rec p = {.type = type,
	                   .mode = mode & 07777,
	                   .uid = uid,
	                   .gid = gid,
	                   .nlink = 1};

	if (type != MAV_T_FIFO && type != MAV_T_SOCK)
		return -EPERM; /* no device nodes in trees */
	return make(out, wt, parent, name, &p);
}

int mav_wt_symlink(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                   const char *name, const char *target, uint32_t uid,
                   uint32_t gid)
{
	struct wt_rec p = {.type = MAV_T_SYMLINK,
	                   .mode = 0777,
	                   .uid = uid,
	                   .gid = gid,
	                   .nlink = 1};

	if (!target[0] || strlen(target) >= 4096)
		return target[0] ? -ENAMETOOLONG : -ENOENT;
	p.size = strlen(target);
	p.target = strdup(target);
	if (!p.target)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	return make(out, wt, parent, name, &p);
}

/* Drop one link of n (its name is already queued for removal). */
int wt_drop_link(struct mav_wt *wt, struct mav_kv_batch *b, struct node *n)
{
	uint8_t key[WT_KEY_MAX];
	int rc = 0;

	n->rec.ctime = wt_now();
	if (n->rec.type == MAV_T_DIR || n->rec.nlink <= 1) {
		n->orphan = true;
		if (n->in_child_tab)
			wt_tab_del(&wt->by_child, n, WT_TAB_CHILD);
		if (!n->persisted)
			return 0;
		if (n->nlookup == 0 && !wt_unsealed(n))
			return mav_kv_batch_del(
			    b, MAV_CF_WT, key,
			    wt_key(key, wt, 'i', n->ino, NULL));
		rc =
		    mav_kv_batch_put(b, MAV_CF_WT, key,
		                     wt_key(key, wt, 'o', n->ino, NULL), "", 0);
		return rc == 0 ? wt_put_rec(wt, b, n) : rc;
	}
	n->rec.nlink--;
	rc = wt_materialize(wt, n, b);
	return rc == 0 ? wt_put_rec(wt, b, n) : rc;
}

int wt_dir_is_empty(struct mav_wt *wt, struct node *dir)
{
	const struct mav_tree *t = NULL;
	uint64_t first;
	size_t n = 0;
	int rc;

	if (dir->persisted) {
		wt_listing_drop(wt, dir);
		rc = wt_dir_count(wt, dir, &n);
		return rc < 0 ? rc : n ? -ENOTEMPTY : 0;
	}
	if (mav_id_is_zero(&dir->rec.id))
		return 0;
	rc = mav_repo_tree_page(wt->r, &dir->rec.id, 0, &t, &first);
	if (rc == 0 && t)
		rc = -ENOTEMPTY;
	mav_repo_tree_release(wt->r, t);
	return rc;
}

static int remove_name(struct mav_wt *wt, uint64_t parent, const char *name,
                       bool want_dir)
{
	struct mav_kv_batch *b = NULL;
	struct node *dir, *n = NULL;
	int rc = wt_dir_begin(&dir, &b, wt, parent);

	if (rc == 0)
		rc = wt_resolve(&n, wt, dir, name);
	if (rc == 0 && want_dir && n->rec.type != MAV_T_DIR)
		rc = -ENOTDIR;
	if (rc == 0 && !want_dir && n->rec.type == MAV_T_DIR)
		rc = -EISDIR;
	if (rc == 0 && want_dir)
		rc = wt_dir_is_empty(wt, n);
	if (rc == 0 && n->rec.type != MAV_T_DIR && n->rec.nlink > 1)
		rc = wt_materialize(wt, n, b);
	if (rc == 0)
		rc = wt_dirent_remove(wt, b, dir, name);
	if (rc == 0) {
		wt_name_drop(wt, n, dir->ino, name);
		rc = wt_drop_link(wt, b, n);
	}
	if (rc == 0)
		rc = wt_dir_touch(wt, b, dir);
	if (rc == 0)
		rc = wt_write(wt, b, MAV_KV_FREES);
	if (n)
		wt_node_unref(wt, n);
	mav_kv_batch_free(b);
	return rc;
}

int mav_wt_unlink(struct mav_wt *wt, uint64_t parent, const char *name)
{
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = remove_name(wt, parent, name, false);
	wt_unlock(wt);
	return rc;
}

int mav_wt_rmdir(struct mav_wt *wt, uint64_t parent, const char *name)
{
	int rc;

	if (strcmp(name, ".") == 0)
		return -EINVAL;
	if (strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	pthread_mutex_lock(&wt->lock);
	rc = remove_name(wt, parent, name, true);
	wt_unlock(wt);
	return rc;
}

int mav_wt_link(struct mav_attr *out, struct mav_wt *wt, uint64_t ino,
                uint64_t newparent, const char *newname)
{
	struct mav_kv_batch *b = NULL;
	struct node *dir, *n = NULL;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_dir_begin(&dir, &b, wt, newparent);
	if (rc == 0)
		rc = wt_get(&n, wt, ino);
	if (rc == 0) /* a taken name first, as Linux checks */
		rc = wt_check_new_name(wt, dir, newname);
	if (rc == 0 && n->rec.type == MAV_T_DIR)
		rc = -EPERM;
	if (rc == 0 && n->orphan)
		rc = -ENOENT;
	if (rc == 0 && n->rec.nlink >= 65000)
		rc = -EMLINK;
	if (rc == 0)
		rc = wt_materialize(wt, n, b);
	if (rc < 0)
		goto out;
	if (!n->rec.link_id)
		randombytes_buf(&n->rec.link_id, sizeof(n->rec.link_id));
	n->rec.nlink++;
	n->rec.ctime = wt_now();
	rc = wt_put_rec(wt, b, n);
	if (rc == 0)
		rc = wt_put_dirent(wt, b, dir->ino, newname, n->ino, false);
	if (rc == 0)
		rc = wt_dir_touch(wt, b, dir);
	if (rc == 0)
		rc = wt_write(wt, b, 0);
	if (rc < 0) {
		n->rec.nlink--;
		goto out;
	}
	n->nlookup++;
	wt_attr(out, wt, n);
out:
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

/* ---- setattr ---- */

int mav_wt_setattr(struct mav_attr *out, struct mav_wt *wt, uint64_t ino,
                   const struct mav_attr *in, unsigned mask)
{
	int64_t now = wt_now();
	struct mav_kv_batch *b = NULL;
	struct wt_rec saved;
	struct node *n;
	int rc;

	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && !wt->branch)
		rc = -EROFS;
	if (rc == 0 && (mask & MAV_SET_SIZE) && n->rec.type != MAV_T_FILE)
		rc = n->rec.type == MAV_T_DIR ? -EISDIR : -EINVAL;
	if (rc == 0)
		rc = mav_kv_batch_new(&b);
	if (rc == 0)
		rc = wt_materialize(wt, n, b);
	if (rc < 0)
		goto out;
	saved = n->rec;
	if ((mask & MAV_SET_MODE) && (mask & MAV_SET_PERMS))
		n->rec.mode =
		    (n->rec.mode & in->mode & 07000) | (in->mode & 0777);
	else if (mask & MAV_SET_MODE)
		n->rec.mode = in->mode & 07777;
	if (mask & MAV_SET_UID)
		n->rec.uid = in->uid;
	if (mask & MAV_SET_GID)
		n->rec.gid = in->gid;
	if ((mask & (MAV_SET_UID | MAV_SET_GID)) && n->rec.type == MAV_T_FILE)
		n->rec.mode &= ~04000u; /* chown clears set-user-id */
	if (mask & MAV_SET_ATIME)
		n->rec.atime = in->atime_ns;
	if (mask & MAV_SET_MTIME)
		n->rec.mtime = in->mtime_ns;
	if ((mask & MAV_SET_SIZE) && in->size != n->rec.size &&
	    !((mask & MAV_SET_GROW) && in->size < n->rec.size))
		rc = wt_truncate(wt, n, in->size, b);
	/* A truncate or fallocate stamps mtime even when the size stays, as
	 * on ext4 (`: > empty-file` is a change of it); one clock reading
	 * for mtime and ctime. */
	if (rc == 0 && (mask & MAV_SET_SIZE) && !(mask & MAV_SET_MTIME))
		n->rec.mtime = now;
	n->rec.ctime = (mask & MAV_SET_CTIME) ? in->ctime_ns : now;
	/* A file with unsealed writes has its record written when they are
	 * sealed (fsync, the idle timer, a snapshot, unmount), and loses the
	 * change with them in a crash before that, as on ext4: the chmod
	 * and utimens cp -a makes on every file it writes cost no store
	 * write of their own (each waited behind the feeders' batches in
	 * RocksDB, under the tree's lock). A truncate may have sealed into
	 * b: that is written. */
	if (rc == 0 &&
	    ((mask & MAV_SET_SIZE) || !n->persisted || !wt_unsealed(n))) {
		rc = wt_put_rec(wt, b, n);
		if (rc == 0)
			rc = wt_write(wt, b, 0);
	}
	if (rc < 0 && !(mask & MAV_SET_SIZE))
		n->rec = saved;
	if (rc == 0)
		wt_attr(out, wt, n);
out:
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

/* ---- xattrs ---- */

static int xattr_check(const char *name, size_t len)
{
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (!name[5])
		return -EINVAL; /* "user." alone, as on ext4 */
	if (strlen(name) > XATTR_NAME_MAX)
		return -ERANGE;
	if (len > XATTR_VALUE_MAX)
		return -E2BIG;
	return 0;
}

static int xattr_find(const struct wt_rec *rec, const char *name, uint32_t *at)
{
	uint32_t i = 0;

	while (i < rec->nx && strcmp(rec->x[i].name, name) < 0)
		i++;
	*at = i;
	return i < rec->nx && strcmp(rec->x[i].name, name) == 0;
}

static int xattr_put(struct wt_rec *rec, const char *name, const void *val,
                     size_t len, int flags)
{
	uint32_t i;
	bool found = xattr_find(rec, name, &i);
	uint8_t *v;

	if (found && (flags & MAV_XATTR_CREATE))
		return -EEXIST;
	if (!found && (flags & MAV_XATTR_REPLACE))
		return -ENODATA;
	v = malloc(len ? len : 1);
	if (!v)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	memcpy(v, val, len);
	if (!found) {
		struct mav_xattr *x =
		    realloc(rec->x, (rec->nx + 1) * sizeof(*x));
		char *nm = strdup(name);

		if (x)
			rec->x = x;
		if (!x || !nm) {
			free(v);
			free(nm);
			return mav_error_set(MAV_ENOMEM, "out of memory");
		}
		memmove(x + i + 1, x + i, (rec->nx - i) * sizeof(*x));
		rec->nx++;
		x[i].name = nm;
		x[i].value = NULL;
	}
	free(rec->x[i].value);
	rec->x[i].value = v;
	rec->x[i].len = (uint32_t)len;
	return 0;
}

static int xattr_change(struct mav_wt *wt, uint64_t ino, const char *name,
                        const void *val, size_t len, int flags, bool remove)
{
	struct mav_kv_batch *b = NULL;
	struct node *n;
	uint32_t i;
	int rc = remove ? xattr_check(name, 0) : xattr_check(name, len);

	if (rc == 0 && !wt->branch)
		rc = -EROFS;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&n, wt, ino);
	if (rc == 0 && remove && !xattr_find(&n->rec, name, &i))
		rc = -ENODATA;
	if (rc == 0)
		rc = mav_kv_batch_new(&b);
	if (rc == 0)
		rc = wt_materialize(wt, n, b);
	if (rc == 0 && remove) {
		free(n->rec.x[i].name);
		free(n->rec.x[i].value);
		memmove(n->rec.x + i, n->rec.x + i + 1,
		        (n->rec.nx - i - 1) * sizeof(*n->rec.x));
		n->rec.nx--;
	} else if (rc == 0) {
		rc = xattr_put(&n->rec, name, val, len, flags);
	}
	if (rc == 0) {
		n->rec.ctime = wt_now();
		rc = wt_put_rec(wt, b, n);
	}
	if (rc == 0)
		rc = wt_write(wt, b, 0);
	wt_unlock(wt);
	mav_kv_batch_free(b);
	return rc;
}

int mav_wt_setxattr(struct mav_wt *wt, uint64_t ino, const char *name,
                    const void *val, size_t len, int flags)
{
	return xattr_change(wt, ino, name, val, len, flags, false);
}

int mav_wt_removexattr(struct mav_wt *wt, uint64_t ino, const char *name)
{
	return xattr_change(wt, ino, name, NULL, 0, 0, true);
}

/* ---- import fast path ---- */

static int replace_file(struct mav_attr *out, struct mav_wt *wt, struct node *n,
                        const struct wt_rec *proto)
{
	struct mav_kv_batch *b = NULL;
	int rc = mav_kv_batch_new(&b);

	if (rc == 0)
		rc = wt_materialize(wt, n, b);
	if (rc < 0)
		goto out;
	wt_dirty_free(wt, n);
	for (uint32_t i = 0; i < n->rec.nx; i++) {
		free(n->rec.x[i].name);
		free(n->rec.x[i].value);
	}
	free(n->rec.x);
	n->rec.x = proto->x;
	n->rec.nx = proto->nx;
	n->rec.id = proto->id;
	n->rec.size = proto->size;
	n->rec.mode = proto->mode;
	n->rec.uid = proto->uid;
	n->rec.gid = proto->gid;
	n->rec.mtime = proto->mtime;
	n->rec.ctime = wt_now();
	rc = wt_put_rec(wt, b, n);
	if (rc == 0)
		rc = wt_write(wt, b, 0);
	if (rc == 0)
		wt_attr(out, wt, n);
out:
	mav_kv_batch_free(b);
	return rc;
}

int mav_wt_put_file(struct mav_attr *out, struct mav_wt *wt, uint64_t parent,
                    const char *name, const struct mav_attr *attr,
                    const mav_id *blob, const struct mav_xattr *xattrs,
                    uint32_t nxattrs)
{
	struct wt_rec p = {.type = MAV_T_FILE,
	                   .mode = attr->mode & 07777,
	                   .uid = attr->uid,
	                   .gid = attr->gid,
	                   .nlink = 1,
	                   .size = attr->size,
	                   .id = *blob};
	struct node *dir, *n = NULL;
	int rc;

	if (!wt->branch)
		return -EROFS;
	rc = wt_rec_copy_xattrs(&p, xattrs, nxattrs);
	if (rc < 0) {
		wt_rec_clear(&p);
		return rc;
	}
	pthread_mutex_lock(&wt->lock);
	rc = wt_get(&dir, wt, parent);
	if (rc == 0)
		rc = wt_resolve(&n, wt, dir, name);
	if (rc == 0 && n->rec.type == MAV_T_DIR)
		rc = -EISDIR;
	if (rc == 0 && n->rec.type == MAV_T_SYMLINK) {
		rc = remove_name(wt, parent, name, false);
		n = NULL;
		if (rc == 0)
			rc = -ENOENT;
	}
	p.mtime = attr->mtime_ns;
	if (rc == 0) {
		n->pins++;
		rc = replace_file(out, wt, n, &p);
		n->pins--;
		wt_node_unref(wt, n);
		if (rc == 0) { /* now owned by n */
			p.x = NULL;
			p.nx = 0;
		}
	} else if (rc == -ENOENT) {
		rc = make_node(out, wt, parent, name, &p);
		n = rc == 0 ? wt_node(wt, out->ino) : NULL;
		if (n) { /* put_file adds no reference */
			p.x = NULL;
			p.nx = 0;
			n->nlookup--;
			wt_node_unref(wt, n);
		}
	}
	wt_unlock(wt);
	wt_rec_clear(&p);
	return rc;
}
