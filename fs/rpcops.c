/* rpcops.c - what mavctl asks of a running daemon.
 *
 * Ops that look at or freeze a working tree (snapshot, status) first make
 * the kernel write back its dirty pages (syncfs on the mount, served by
 * the FUSE workers), so "everything written so far" means the same to the
 * user as to the snapshot. Ops that move refs then drop the root names
 * they touched from the kernel's caches; reset and branch deletion drop
 * every inode the kernel holds of that working tree.
 *
 * Who may do what: changing ops need uid 0 or the owner of the repository
 * directory; status, fsck and mountpoint are open to any local user who
 * can reach the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mav/error.h"
#include "mav/maint.h"
#include "mav/wt.h"
#include "rpcops.h"
#include "view.h"

#define NAME_MAX_LEN 256

/* a: the op's arguments, NULL after the last; len: their lengths. */
typedef int (*rpc_fn)(struct mavfs *fs, char *const *a, const uint32_t *len,
                      struct mav_rpc_msg *res);

static int add(struct mav_rpc_msg *res, const char *s)
{
	return mav_rpc_msg_add(res, s, strlen(s));
}

/* Names "NAME" / "@NAME" changed in the root. */
static void names_changed(struct mavfs *fs, const char *plain, const char *at,
                          const char *at2)
{
	char b1[NAME_MAX_LEN + 2], b2[NAME_MAX_LEN + 2];
	const char *names[3] = {plain, NULL, NULL};

	if (at) {
		snprintf(b1, sizeof(b1), "@%s", at);
		names[1] = b1;
	}
	if (at2) {
		snprintf(b2, sizeof(b2), "@%s", at2);
		names[2] = b2;
	}
	mavfs_root_changed(fs, names, 3);
}

/* The open working tree of an existing branch, pinned. */
static int branch_view(struct mavfs_view **v, struct mavfs *fs,
                       const char *branch)
{
	char ref[NAME_MAX_LEN + 3];
	mav_id id;
	int rc;

	*v = NULL;
	snprintf(ref, sizeof(ref), "b/%s", branch);
	rc = mav_ref_get(&id, fs->repo, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no branch '%s'", branch);
	if (rc < 0)
		return rc;
	rc = mavfs_view_get(v, fs->views, branch, true, NULL);
	if (rc < 0 && !mav_error_message()[0])
		mav_error_set(rc, "cannot open working tree of '%s': %s",
		              branch, mav_error_name(rc));
	return rc;
}

static int op_snapshot(struct mavfs *fs, char *const *a, const uint32_t *len,
                       struct mav_rpc_msg *res)
{
	(void)len;
	struct mav_snapshot_opts o = {.message = a[1], .author = a[2]};
	char hex[MAV_ID_HEX_LEN + 1], num[32];
	struct mavfs_view *v = NULL;
	uint64_t version = 0;
	mav_id commit;
	int rc;

	o.allow_empty =
	    a[3] && (!strcmp(a[3], "1") || !strcmp(a[3], "allow-empty"));
	mavfs_writeback(fs);
	rc = branch_view(&v, fs, a[0]);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&fs->gc_lock);
	rc = mav_wt_snapshot(&commit, &version, v->wt, &o);
	pthread_rwlock_unlock(&fs->gc_lock);
	mavfs_view_unpin(fs->views, v);
	if (rc < 0)
		return rc;
	snprintf(num, sizeof(num), "%" PRIu64, version);
	mav_id_hex(hex, &commit);
	rc = add(res, num);
	if (rc == 0)
		rc = add(res, hex);
	snprintf(num, sizeof(num), "v%" PRIu64, version);
	names_changed(fs, NULL, a[0], num);
	return rc;
}

static int op_branch_create(struct mavfs *fs, char *const *a,
                            const uint32_t *len, struct mav_rpc_msg *res)
{
	(void)len;
	mav_id id = {{0}};
	int rc = 0;

	(void)res;
	if (a[1] && a[1][0])
		rc = mav_rev_parse(&id, fs->repo, a[1]);
	if (rc == 0)
		rc = mav_branch_create(fs->repo, a[0], &id);
	if (rc == MAV_ECONFLICT)
		rc = mav_error_set(MAV_EEXIST, "branch '%s' already exists",
		                   a[0]);
	if (rc == 0)
		names_changed(fs, a[0], a[0], NULL);
	return rc;
}

static int op_branch_delete(struct mavfs *fs, char *const *a,
                            const uint32_t *len, struct mav_rpc_msg *res)
{
	(void)len;
	char ref[NAME_MAX_LEN + 3];
	uint64_t *inos = NULL;
	size_t n = 0;
	mav_id cur;
	int rc;

	(void)res;
	snprintf(ref, sizeof(ref), "b/%s", a[0]);
	rc = mav_ref_get(&cur, fs->repo, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no branch '%s'", a[0]);
	if (rc < 0)
		return rc;
	/* Close its working tree first: deleting it under an open mav_wt
	 * would leave that writing into a tree that no longer exists. */
	mavfs_views_kill_branch(fs->views, a[0], &inos, &n);
	pthread_rwlock_rdlock(&fs->gc_lock);
	rc = mav_branch_delete(fs->repo, a[0]);
	pthread_rwlock_unlock(&fs->gc_lock);
	mavfs_send_invals(fs, inos, n);
	free(inos);
	names_changed(fs, a[0], a[0], NULL);
	return rc;
}

static int op_tag_create(struct mavfs *fs, char *const *a, const uint32_t *len,
                         struct mav_rpc_msg *res)
{
	(void)len;
	char ref[NAME_MAX_LEN + 3];
	struct mav_ref_update u = {.ref = ref};
	mav_id id;
	int rc;

	(void)res;
	if (!mav_tag_name_valid(a[0]))
		return mav_error_set(MAV_EINVAL, "invalid tag name '%s'", a[0]);
	rc = mav_rev_parse(&id, fs->repo, a[1]);
	if (rc < 0)
		return rc;
	snprintf(ref, sizeof(ref), "t/%s", a[0]);
	u.new_id = &id;
	rc = mav_ref_update(fs->repo, NULL, &u, 1);
	if (rc == MAV_ECONFLICT)
		rc = mav_error_set(MAV_EEXIST, "tag '%s' already exists", a[0]);
	if (rc == 0)
		names_changed(fs, NULL, a[0], NULL);
	return rc;
}

static int op_tag_delete(struct mavfs *fs, char *const *a, const uint32_t *len,
                         struct mav_rpc_msg *res)
{
	(void)len;
	char ref[NAME_MAX_LEN + 3];
	struct mav_ref_update u = {.ref = ref};
	mav_id cur;
	int rc;

	(void)res;
	snprintf(ref, sizeof(ref), "t/%s", a[0]);
	rc = mav_ref_get(&cur, fs->repo, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no tag '%s'", a[0]);
	if (rc < 0)
		return rc;
	u.old = &cur;
	rc = mav_ref_update(fs->repo, NULL, &u, 1);
	if (rc == 0)
		names_changed(fs, NULL, a[0], NULL);
	return rc;
}

/* Move branch from head to commit unless it is there already. */
static int move_branch(struct mavfs *fs, const char *ref, const mav_id *head,
                       const mav_id *commit)
{
	struct mav_ref_update u = {.ref = ref, .old = head, .new_id = commit};

	if (mav_id_cmp(head, commit) == 0)
		return 0;
	return mav_ref_update(fs->repo, NULL, &u, 1);
}

/* reset BRANCH [REV]: drop the working tree's changes, rebase it on REV
 * (default: its last snapshot) and move the branch there, as mavctl does
 * without a daemon. */
static int op_reset(struct mavfs *fs, char *const *a, const uint32_t *len,
                    struct mav_rpc_msg *res)
{
	char ref[NAME_MAX_LEN + 3];
	struct mavfs_view *v = NULL;
	mav_id id, head;
	int rc;

	(void)len;
	(void)res;
	snprintf(ref, sizeof(ref), "b/%s", a[0]);
	rc = mav_ref_get(&head, fs->repo, ref);
	if (rc == 0 && a[1] && a[1][0])
		rc = mav_rev_parse(&id, fs->repo, a[1]);
	else if (rc == 0)
		id = head;
	if (rc == 0)
		rc = branch_view(&v, fs, a[0]);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&fs->gc_lock);
	rc = mav_wt_reset(v->wt, &id);
	if (rc == 0)
		rc = mav_wt_sync(v->wt);
	if (rc == 0)
		rc = move_branch(fs, ref, &head, &id);
	pthread_rwlock_unlock(&fs->gc_lock);
	mavfs_view_unpin(fs->views, v);
	mavfs_inval_branch(fs, a[0]);
	names_changed(fs, NULL, a[0], NULL);
	return rc;
}

static int status_line(void *ctx, char kind, const char *path)
{
	struct mav_rpc_msg *res = ctx;
	size_t len = strlen(path) + 3;
	char *line = malloc(len);
	int rc;

	if (!line)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	snprintf(line, len, "%c %s", kind, path);
	rc = mav_rpc_msg_add(res, line, len - 1);
	free(line);
	return rc;
}

static int op_status(struct mavfs *fs, char *const *a, const uint32_t *len,
                     struct mav_rpc_msg *res)
{
	(void)len;
	struct mavfs_view *v = NULL;
	int rc;

	mavfs_writeback(fs);
	rc = branch_view(&v, fs, a[0]);
	if (rc < 0)
		return rc;
	rc = mav_wt_status(v->wt, status_line, res);
	mavfs_view_unpin(fs->views, v);
	return rc;
}

/* Results: chunks deleted, objects deleted, bytes freed (decimal). */
static int op_gc(struct mavfs *fs, char *const *a, const uint32_t *len,
                 struct mav_rpc_msg *res)
{
	struct mav_gc_report r;
	char n[3][24];
	int rc;

	(void)len;
	(void)a;
	/* No working-tree writer may hold new, not yet referenced chunks:
	 * with the lock held none is in a call, and sealing every working
	 * tree makes the chunks that open append streams have already stored
	 * reachable from their inodes (gc used to sweep them). */
	pthread_rwlock_wrlock(&fs->gc_lock);
	rc = mavfs_views_sync_locked(fs->views);
	if (rc == 0)
		rc = mav_gc(&r, fs->repo, NULL, NULL);
	pthread_rwlock_unlock(&fs->gc_lock);
	if (rc == 0 && r.chunks_deleted > 0)
		rc = mav_gc_compact(fs->repo); /* slow: outside the lock */
	if (rc < 0)
		return rc;
	snprintf(n[0], sizeof(n[0]), "%" PRIu64, r.chunks_deleted);
	snprintf(n[1], sizeof(n[1]), "%" PRIu64, r.objects_deleted);
	snprintf(n[2], sizeof(n[2]), "%" PRIu64, r.bytes_freed);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = add(res, n[i]);
	return rc;
}

static void fsck_problem(void *ctx, const char *problem)
{
	add(ctx, problem);
}

static int op_fsck(struct mavfs *fs, char *const *a, const uint32_t *len,
                   struct mav_rpc_msg *res)
{
	(void)len;
	struct mav_fsck_report r;
	int rc;

	(void)a;
	pthread_rwlock_rdlock(&fs->gc_lock);
	rc = mav_fsck(&r, fs->repo, fsck_problem, NULL, res);
	pthread_rwlock_unlock(&fs->gc_lock);
	return rc;
}

static int op_mountpoint(struct mavfs *fs, char *const *a, const uint32_t *len,
                         struct mav_rpc_msg *res)
{
	(void)len;
	(void)a;
	return add(res, fs->mountpoint);
}

/* Walk PATH from the root of wt; every inode looked up is recorded in
 * trail (to be forgotten again), the last one is the target. */
static int walk(uint64_t *ino, uint64_t *trail, size_t *n, size_t cap,
                struct mav_wt *wt, const char *path)
{
	char *copy = strdup(path), *save = NULL;
	uint64_t cur = MAV_WT_ROOT;
	int rc = 0;

	*n = 0;
	if (!copy)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	for (char *c = strtok_r(copy, "/", &save); c && rc == 0;
	     c = strtok_r(NULL, "/", &save)) {
		struct mav_attr a;

		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..") || *n == cap) {
			rc = mav_error_set(MAV_EINVAL, "bad path '%s'", path);
			break;
		}
		rc = mav_wt_lookup(&a, wt, cur, c);
		if (rc < 0) {
			mav_error_set(rc, "%s: %s", path, mav_error_name(rc));
			break;
		}
		trail[(*n)++] = a.ino;
		cur = a.ino;
	}
	free(copy);
	*ino = cur;
	return rc;
}

/* KEY may be given whole ("user.mav.license") or short ("license"). */
static void xattr_name(char *out, size_t cap, const char *key)
{
	if (!strncmp(key, "user.", 5))
		snprintf(out, cap, "%s", key);
	else
		snprintf(out, cap, "user.mav.%s", key);
}

/* meta-set BRANCH PATH KEY VALUE, meta-del BRANCH PATH KEY */
static int meta(struct mavfs *fs, char *const *a, const uint32_t *len, bool set)
{
	struct mavfs_view *v = NULL;
	uint64_t trail[256], ino = MAV_WT_ROOT;
	char name[NAME_MAX_LEN + 16];
	size_t n = 0;
	int rc;

	xattr_name(name, sizeof(name), a[2]);
	rc = branch_view(&v, fs, a[0]);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&fs->gc_lock);
	rc = walk(&ino, trail, &n, 256, v->wt, a[1]);
	if (rc == 0 && set)
		rc = mav_wt_setxattr(v->wt, ino, name, a[3], len[3], 0);
	else if (rc == 0)
		rc = mav_wt_removexattr(v->wt, ino, name);
	if (rc < 0 && !mav_error_message()[0])
		mav_error_set(rc, "%s: %s: %s", a[1], name, mav_error_name(rc));
	for (size_t i = 0; i < n; i++)
		mav_wt_forget(v->wt, trail[i], 1);
	pthread_rwlock_unlock(&fs->gc_lock);
	/* The kernel caches attributes (ctime), not xattrs. */
	if (rc == 0)
		fuse_lowlevel_notify_inval_inode(
		    fs->se, mavfs_ino(v->prefix, ino), -1, 0);
	mavfs_view_unpin(fs->views, v);
	return rc;
}

static int op_meta_set(struct mavfs *fs, char *const *a, const uint32_t *len,
                       struct mav_rpc_msg *res)
{
	(void)res;
	return meta(fs, a, len, true);
}

static int op_meta_del(struct mavfs *fs, char *const *a, const uint32_t *len,
                       struct mav_rpc_msg *res)
{
	(void)res;
	return meta(fs, a, len, false);
}

/* ---- dispatch ---- */

struct op {
	const char *name;
	uint32_t min, max; /* arguments after the op name */
	bool changes;      /* owner or root only */
	int binary_last;   /* last argument may hold any bytes */
	rpc_fn fn;
};

static const struct op ops[] = {
    {"snapshot", 3, 4, true, 0, op_snapshot},
    {"branch-create", 1, 2, true, 0, op_branch_create},
    {"branch-delete", 1, 1, true, 0, op_branch_delete},
    {"tag-create", 2, 2, true, 0, op_tag_create},
    {"tag-delete", 1, 1, true, 0, op_tag_delete},
    {"reset", 1, 2, true, 0, op_reset},
    {"status", 1, 1, false, 0, op_status},
    {"gc", 0, 0, true, 0, op_gc},
    {"fsck", 0, 0, false, 0, op_fsck},
    {"mountpoint", 0, 0, false, 0, op_mountpoint},
    {"meta-set", 4, 4, true, 1, op_meta_set},
    {"meta-del", 3, 3, true, 0, op_meta_del},
};

static const struct op *find_op(const struct mav_rpc_msg *req)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strlen(ops[i].name) == req->len[0] &&
		    !strcmp(ops[i].name, req->s[0]))
			return &ops[i];
	}
	return NULL;
}

/* Names and paths are C strings: no embedded NUL, bounded length. */
static int check_args(const struct op *op, const struct mav_rpc_msg *req)
{
	uint32_t nargs = req->n - 1;

	if (nargs < op->min || nargs > op->max)
		return mav_error_set(MAV_EINVAL,
		                     "%s: expected %u to %u "
		                     "arguments, got %u",
		                     op->name, op->min, op->max, nargs);
	for (uint32_t i = 1; i < req->n; i++) {
		bool binary = op->binary_last && i == req->n - 1;

		if (!binary && strlen(req->s[i]) != req->len[i])
			return mav_error_set(MAV_EINVAL,
			                     "%s: argument %u "
			                     "holds a NUL byte",
			                     op->name, i);
		if (i == 1 && req->len[i] > NAME_MAX_LEN - 1)
			return mav_error_set(MAV_EINVAL, "%s: name too long",
			                     op->name);
	}
	return 0;
}

int mavfs_rpc_dispatch(struct mavfs *fs, uid_t uid, pid_t pid,
                       const struct mav_rpc_msg *req,
                       struct mav_rpc_msg *results)
{
	const struct op *op = find_op(req);
	char *a[6] = {NULL};
	uint32_t len[6] = {0};
	int rc;

	if (!op)
		return mav_error_set(MAV_EINVAL, "unknown request '%.40s'",
		                     req->s[0]);
	rc = check_args(op, req);
	if (rc < 0)
		return rc;
	if (op->changes && uid != 0 && uid != fs->owner) {
		mavfs_log(LOG_NOTICE, "rpc: uid %u pid %d: %s refused",
		          (unsigned)uid, (int)pid, op->name);
		return mav_error_set(-EPERM,
		                     "%s: only the owner of %s (uid %u) "
		                     "or root may do this",
		                     op->name, fs->repo_path,
		                     (unsigned)fs->owner);
	}
	mavfs_log(LOG_INFO, "rpc: uid %u pid %d: %s", (unsigned)uid, (int)pid,
	          op->name);
	for (uint32_t i = 1; i < req->n; i++) {
		a[i - 1] = req->s[i];
		len[i - 1] = req->len[i];
	}
	return op->fn(fs, a, len, results);
}
