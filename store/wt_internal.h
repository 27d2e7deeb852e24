/* wt_internal.h - working-tree internals shared by wt*.c (private).
 *
 * Persisted layout in MAV_CF_WT, every key prefixed by "<branch>\0":
 *   'h'                 header: base commit id, next inode number
 *   'i' ino(be64)       inode record of a materialized inode (struct wt_rec)
 *   'd' dir(be64) name  overlay entry: u8 1 + ino(le64), or u8 0 (whiteout)
 *   'l' link_id(be64)   materialized inode of a hard-link group of the base
 *   'o' ino(be64)       orphan: unlinked while open; deleted at next open
 * Only changes since the base snapshot are persisted; a snapshot clears them
 * in the same batch that writes the commit.
 *
 * In memory, struct node is one inode the kernel may reference. A node is
 * "persisted" once materialized (its record is authoritative); otherwise it
 * mirrors an entry of a base tree and pins its parent (so the parent is
 * there to materialize it). Locking: wt->lock guards every node, every table
 * and the dirty buffers. Lock order: wt->lock -> repo locks.
 */
#ifndef MAV_WT_INTERNAL_H
#define MAV_WT_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>

#include "mav/wt.h"
#include "repo_internal.h"

struct wt_rec {
	uint8_t type;
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	int64_t atime, mtime, ctime;
	uint64_t parent;  /* dirs: parent ino; files: a parent */
	uint64_t link_id; /* hard-link group of the base, else 0 */
	mav_id id;        /* file: sealed blob; dir: base tree (zero: none) */
	char *target;     /* symlink target (owned) */
	uint32_t nx;
	struct mav_xattr *x; /* owned names/values, sorted by name */
};

struct extent {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

/* Unsealed writes of one file: sorted, non-overlapping extents. */
struct dirty {
	struct extent *ext;
	size_t n, cap;
	uint64_t bytes;
	int64_t last_write;
};

/* An append in progress: bytes written at the end of the file go straight
 * through a writer (chunks stored as they are cut) instead of being held
 * as dirty extents. The last old chunk is cut again with them. */
struct stream {
	struct mav_writer *w;
	const struct mav_blob *old; /* sealed content, held in the blob cache */
	uint32_t prefix_n;          /* old chunks kept before the new ones */
	uint64_t pos;               /* next append offset (== rec.size) */
	int64_t last_write;
	struct behind *bh; /* write-behind, or NULL: fed directly */
	size_t held;       /* writer's bytes counted in wt->stream_bytes */
};

struct listing_ent {
	char *name;
	uint64_t ino;    /* overlay child, or 0 */
	int64_t base_ix; /* index in the base tree when ino == 0 */
	uint64_t cookie; /* its readdir cookie (wt_view.c) */
};

struct listing {
	struct listing_ent *e; /* by name */
	size_t n;
	const struct mav_tree *base; /* held while the listing lives */
	size_t *order; /* e's indices by cookie; NULL until read */
};

struct node {
	uint64_t ino;
	uint64_t nlookup; /* kernel references */
	uint32_t pins;    /* base children in memory + ops in flight */
	uint64_t parent;
	char *name; /* name in parent (base nodes; may be NULL otherwise) */
	bool persisted, orphan;
	bool pending; /* materialized by the call in progress: never freed */
	struct wt_rec rec;
	struct dirty *dirty;
	struct stream *stream;
	/* Its stream was finished in a group seal: rec.id is new and its
	 * record not yet written (seal_group in wt_data.c). */
	bool unsaved;
	int lost; /* error that dropped unsealed writes; fsync reports it once
	           */
	int64_t split_at; /* last write looked like the head of a split one */
	struct listing *listing;
	/* The last cookie of a listing read to its end and dropped since, while
	 * nothing changed (0: none): the call that asks past it is answered
	 * without building the listing again. */
	uint64_t listed_end;
	/* Data bytes of the sealed blob whose id hashes to holes_tag (0: not
	 * counted yet): file_holes in wt.c. */
	uint64_t holes_tag, blob_data;
	struct read_ahead *ahead; /* a directory's runs of files read */
	struct node *next_ino, *next_child, *next_link;
	bool in_child_tab, in_link_tab;
};

struct wt_table {
	struct node **b;
	size_t nb, count;
};

/* A node materialized by the operation in progress, until its batch lands. */
struct pending {
	struct node *n;
	bool unpinned; /* it dropped its pin on its parent */
};

struct mav_wt {
	struct mav_repo *r;
	char *branch; /* NULL for a read-only view */
	size_t plen;  /* bytes of the key prefix "<branch>\0" */
	pthread_mutex_t lock;
	mav_id base;       /* commit the tree is based on */
	mav_id root_tree;  /* its root tree (or the empty tree) */
	int64_t base_time; /* its time: ctime of what it holds (wt_set_base) */
	uint64_t next_ino; /* the header's old counter, written back as read */
	uint64_t dirty_bytes;        /* sum over nodes */
	size_t splits;               /* nodes with split_at set */
	uint64_t stream_bytes;       /* sum of stream->held */
	struct behind_pool *feeders; /* for streams' writes; NULL until used */
	bool kernel_times;           /* writes do not stamp mtime/ctime */
	unsigned lost_files;         /* writes dropped since mav_wt_take_lost */
	int lost_rc;                 /* the first of their errors */
	/* A group seal finished streams whose chunks are still unlogged:
	 * one flush for all is owed, and the next record written does it
	 * first (wt_put_rec). */
	bool flush_owed;
	/* A persisted record may hold a number from WT_BASE_INO_MIN up:
	 * numbering a base node must then ask the store (wt_base_ino). */
	bool hashed_recs;
	struct wt_table by_ino, by_child, by_link;
	struct pending *pend; /* materialized since the last landed write */
	size_t npend, cappend;
};

/* Readers going through a directory's files in name order: for each run,
 * the hash of the name it is expected to read next (0: free slot). */
#define WT_AHEAD_RUNS 4
struct read_ahead {
	uint64_t expect[WT_AHEAD_RUNS];
	bool going[WT_AHEAD_RUNS]; /* files ahead of the run already queued */
	unsigned next;             /* the slot a new run takes */
};

/* wt_ahead.c: n is being read from its start; load the files after it
 * if that continues a run through its directory (wt->lock held). */
void wt_read_ahead_files(struct mav_wt *wt, const struct node *n);

/* wt.c */
int64_t wt_now(void);
struct node *wt_node(struct mav_wt *wt, uint64_t ino); /* in memory only */
/* Node numbers are hashes from here up (wt.c, free_ino); working trees of
 * earlier builds numbered created files below, and such records still
 * load. */
#define WT_BASE_INO_MIN (UINT64_C(1) << 39)
/* The number for a node at parent/name (wt.c: why it is a hash). */
int wt_name_ino(uint64_t *out, struct mav_wt *wt, uint64_t parent,
                const char *name);
/* Set wt->hashed_recs from the store (after open, snapshot, reset). */
int wt_note_hashed_recs(struct mav_wt *wt);
/* The name table (by_child) maps (directory, name) to the node in memory
 * that has that name now, materialized or not; lookups consult it first.
 * wt_name_set gives n the name dir/name; wt_name_drop forgets dir/name if
 * it is the one n is filed under. */
int wt_name_set(struct mav_wt *wt, struct node *n, uint64_t dir,
                const char *name);
void wt_name_drop(struct mav_wt *wt, struct node *n, uint64_t dir,
                  const char *name);
int wt_get(struct node **out, struct mav_wt *wt, uint64_t ino);
int wt_resolve(struct node **out, struct mav_wt *wt, struct node *dir,
               const char *name);
/* The node for entry e of the base tree of dir (which is not persisted, or
 * whose overlay does not mention e's name); no reference added. */
int wt_base_node(struct node **out, struct mav_wt *wt, struct node *dir,
                 const struct mav_entry *e);
int wt_materialize(struct mav_wt *wt, struct node *n, struct mav_kv_batch *b);
/* Make the content of group seals durable if that is still owed (under
 * wt->lock): before anything points at it. */
int wt_pay_flush(struct mav_wt *wt);
int wt_put_rec(struct mav_wt *wt, struct mav_kv_batch *b, struct node *n);
int wt_put_dirent(struct mav_wt *wt, struct mav_kv_batch *b, uint64_t dir,
                  const char *name, uint64_t ino, bool whiteout);
int wt_del_dirent(struct mav_wt *wt, struct mav_kv_batch *b, uint64_t dir,
                  const char *name);
int wt_put_header(struct mav_wt *wt, struct mav_kv_batch *b);
/* Write b; on success every pending materialization has landed. */
int wt_write(struct mav_wt *wt, struct mav_kv_batch *b, unsigned flags);
/* Forget pending materializations as landed (after a write done by hand). */
void wt_landed(struct mav_wt *wt);
/* Undo what never landed and release wt->lock: every public call ends so. */
void wt_unlock(struct mav_wt *wt);
/* A node numbered ino (wt_name_ino, or a number a record or entry gave). */
struct node *wt_node_new(struct mav_wt *wt, uint64_t ino);
void wt_node_unref(struct mav_wt *wt, struct node *n);
/* May load (and remember) a file's count of holes. */
void wt_attr(struct mav_attr *out, struct mav_wt *wt, struct node *n);
void wt_rec_clear(struct wt_rec *rec);
int wt_rec_copy_xattrs(struct wt_rec *rec, const struct mav_xattr *x,
                       uint32_t nx);
void wt_listing_drop(struct mav_wt *wt, struct node *n);
/* A persisted directory's overlay: the names changed since its base tree,
 * in name order, each with its node's number, or 0 where it was removed. */
struct overlay_ent {
	char *name;
	uint64_t ino;
};
int wt_overlay_read(struct overlay_ent **out, size_t *n, struct mav_wt *wt,
                    const struct node *dir);
void wt_overlay_free(struct overlay_ent *ov, size_t n);
void wt_tab_del(struct wt_table *t, struct node *n, int which);
void wt_tab_add(struct wt_table *t, struct node *n, int which);
size_t wt_key(uint8_t *key, const struct mav_wt *wt, char kind, uint64_t num,
              const char *name);
int wt_dirent_get(uint64_t *ino, bool *whiteout, struct mav_wt *wt,
                  uint64_t dir, const char *name);
int wt_load_rec(struct wt_rec *rec, struct mav_wt *wt, uint64_t ino);
int wt_rec_decode(struct wt_rec *rec, const void *buf, size_t len);
int wt_rec_encode(uint8_t **out, size_t *len, const struct wt_rec *rec);
int wt_rec_from_entry(struct wt_rec *rec, const struct mav_wt *wt,
                      const struct mav_entry *e, uint64_t parent);
int wt_set_base(struct mav_wt *wt, const mav_id *commit);
enum { WT_TAB_INO, WT_TAB_CHILD, WT_TAB_LINK };

/* Writes not sealed yet, in extents or in an append stream. */
static inline bool wt_unsealed(const struct node *n)
{
	return n->dirty || n->stream || n->unsaved;
}

/* wt_data.c */
int wt_seal(struct mav_wt *wt, struct node *n, struct mav_kv_batch *b);
/* Seal every file with no write for older_ns (-1: all) as one group;
 * *count says how many. */
int wt_seal_all(struct mav_wt *wt, int64_t older_ns, int *count);
/* Drop unsealed writes: the stream and the extents, or the extents only. */
void wt_dirty_free(struct mav_wt *wt, struct node *n);
void wt_dirty_extents_free(struct mav_wt *wt, struct node *n);
/* Set the size; cutting into sealed bytes seals into b at once. */
int wt_truncate(struct mav_wt *wt, struct node *n, uint64_t size,
                struct mav_kv_batch *b);

/* wt_view.c */
int wt_dir_count(struct mav_wt *wt, struct node *dir, size_t *n);

/* wt_ops.c: helpers shared with rename and snapshot */
int wt_dir_begin(struct node **dir, struct mav_kv_batch **b, struct mav_wt *wt,
                 uint64_t ino);
int wt_dir_touch(struct mav_wt *wt, struct mav_kv_batch *b, struct node *dir);
int wt_dirent_remove(struct mav_wt *wt, struct mav_kv_batch *b,
                     struct node *dir, const char *name);
int wt_check_new_name(struct mav_wt *wt, struct node *dir, const char *name);
int wt_drop_link(struct mav_wt *wt, struct mav_kv_batch *b, struct node *n);
int wt_dir_is_empty(struct mav_wt *wt, struct node *dir);

/* wt_links.c: give every other name of n's base hard-link group an
 * overlay entry pointing at n (n was just materialized). */
int wt_link_group_attach(struct mav_wt *wt, struct node *n,
                         struct mav_kv_batch *b);

#define WT_KEY_MAX 512

#endif
