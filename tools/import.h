/* import.h - `mavctl import`: the walker and its two destinations.
 *
 * import.c walks SRC on the main thread and hands regular files to a pool of
 * reader threads through a bounded queue; what it does with each name goes
 * through struct imp_ops, implemented twice:
 *   import_wt.c  straight into a branch's working tree (struct mav_wt), the
 *                store opened by us;
 *   import_fs.c  through the files of a mounted branch (MOUNTPOINT/BRANCH)
 *                while a daemon holds the repository.
 *
 * Memory: the queue holds at most IMP_QUEUE_PER_WORKER jobs per worker, each
 * worker one read buffer (IMP_READ_BYTES); a sink may keep a bounded list of
 * finished files. What grows with the dataset is metadata only: one record
 * per directory (attributes are set after its contents) and per hard-linked
 * file (links are made at the end).
 *
 * Threads: the main thread owns the walk, the directory list and the
 * hard-link table; workers touch only their job, struct imp_err (under
 * imp.mu) and what the sink guards itself.
 */
#ifndef MAVCTL_IMPORT_H
#define MAVCTL_IMPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <mav/object.h>
#include <mav/wt.h>

#include "cli.h"
#include "progress.h"

#define IMP_READ_BYTES       (1u << 20)
#define IMP_QUEUE_PER_WORKER 4
/* How far ahead of its reader a file is asked from the disk. */
#define IMP_AHEAD_BYTES (8u << 20)

/* A destination directory. Lives until the end of the import. */
struct imp_dir {
	uint64_t ino;   /* wt: inode number, referenced until the end */
	char *rel;      /* path below the destination root ("" = root) */
	char *src;      /* source path (for its attributes at the end) */
	struct stat st; /* source attributes */
	bool is_root;
};

/* user.* extended attributes of a source file, sorted by name. */
struct imp_xattrs {
	uint32_t n;
	struct mav_xattr *x;
};

/* A file with st_nlink > 1: its first name is imported, the others become
 * hard links of it at the end. */
struct imp_link_req {
	struct imp_dir *dir;
	char *name;
	struct imp_link_req *next;
};

struct imp_hl {
	dev_t dev;
	ino_t ino;
	atomic_bool done;          /* first name is in place */
	struct imp_dir *first_dir; /* where the first name went */
	char *first_name;
	struct imp_link_req *reqs;
	struct imp_hl *next;
};

struct imp_job {
	char *src;  /* source path */
	char *name; /* destination name in dir */
	struct imp_dir *dir;
	struct stat st;
	struct imp_hl *hl; /* first name of a hard-linked file, or NULL */
	int fd;            /* the source, opened by the walk; -1 once taken */
	struct imp_job *next;
};

struct imp;

struct imp_ops {
	/* Names now in dir (malloc'd array of malloc'd strings). */
	int (*names)(struct imp *m, struct imp_dir *dir, char ***out,
	             size_t *n);
	/* Remove dir/name (recursively for a directory); absent is fine. */
	int (*remove)(struct imp *m, struct imp_dir *dir, const char *name);
	/* Make dir/name a directory (reusing one that is there); fill
	 * child->ino (wt). */
	int (*mkdir)(struct imp *m, struct imp_dir *dir, const char *name,
	             struct imp_dir *child);
	int (*symlink)(struct imp *m, struct imp_dir *dir, const char *name,
	               const char *target, const struct stat *st);
	/* Make dir/name the named pipe or socket st describes (replacing
	 * what is in the way, keeping one alike). */
	int (*node)(struct imp *m, struct imp_dir *dir, const char *name,
	            const struct stat *st);
	/* Before queueing a file: clear what is in the way. Returns 1 when
	 * the content already there can be kept (same size and mtime), 0 to
	 * queue the job. */
	int (*prepare)(struct imp *m, struct imp_job *job);
	/* Worker: import the open source file; may take xa's contents. */
	int (*file)(struct imp *m, struct imp_job *job, int fd,
	            struct imp_xattrs *xa, uint8_t *buf);
	/* End: dir/name becomes a hard link of hl's first name. */
	int (*link)(struct imp *m, struct imp_dir *dir, const char *name,
	            struct imp_hl *hl);
	/* End: a directory's mode, owner, mtime and xattrs. */
	int (*dir_attrs)(struct imp *m, struct imp_dir *dir,
	                 const struct imp_xattrs *xa);
	/* Make every finished file visible and durable. */
	int (*finish)(struct imp *m);
	void (*close)(struct imp *m);
};

struct imp {
	struct cli *c;
	const struct imp_ops *ops;
	void *sink;    /* the destination's own state */
	bool mirror;   /* --delete */
	bool checksum; /* --checksum: never keep content by size+mtime */
	int jobs;
	struct progress prog;

	pthread_mutex_t mu; /* guards queue, qlen, closed, err, hl->done */
	pthread_cond_t not_empty, not_full;
	struct imp_job *head, *tail;
	unsigned qlen, qcap;
	bool closed;
	atomic_bool abort;
	int err; /* first failure */
	char errmsg[512];

	/* main thread only */
	struct imp_dir **dirs;
	size_t ndirs, capdirs;
	struct imp_hl **hl_buckets;
};

/* Record the first failure (message from this thread's error slot). */
int imp_fail(struct imp *m, int rc);
/* Record a system failure on path: "<what> '<path>': <strerror>". */
int imp_fail_sys(struct imp *m, int err, const char *what, const char *path);

/* Where imp_read() puts bytes: n bytes at p, or with hole set n zero bytes
 * of a hole, all of it at once (p is NULL: the sink skips or counts them). */
typedef int (*imp_sink_fn)(void *ctx, const void *p, uint64_t n, bool hole);

/* Read the source file in IMP_READ_BYTES pieces into fn, without reading
 * the holes of a sparse file. */
int imp_read(struct imp *m, int fd, const char *path, uint8_t *buf,
             imp_sink_fn fn, void *ctx);

int imp_xattrs_fd(struct imp_xattrs *out, int fd, const char *path);
int imp_xattrs_path(struct imp_xattrs *out, const char *path);
void imp_xattrs_free(struct imp_xattrs *xa);
/* Same names and values? */
bool imp_xattrs_equal(const struct imp_xattrs *a, const struct imp_xattrs *b);

/* "parent/name" (or name at the root); malloc'd. */
char *imp_join(const char *dir, const char *name);
int64_t imp_mtime_ns(const struct stat *st);

void imp_init(struct imp *m, struct cli *c, int jobs);
/* Import src; returns m->err (0 or the first failure, message in
 * m->errmsg). */
int imp_run(struct imp *m, const char *src);
void imp_fini(struct imp *m); /* closes the sink */

/* Sinks. */
int imp_wt_open(struct imp *m, struct mav_repo *r, const char *branch);
int imp_fs_open(struct imp *m, const char *dest);

#endif
