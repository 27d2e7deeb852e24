/* daemon.h - the state of one mavfs process and its background threads.
 *
 * struct mavfs is created by main() and lives until exit; every FUSE
 * handler reaches it through fuse_req_userdata(). It owns the repository,
 * the view table, the root listing cache and the rpc server.
 *
 * Background threads (all started after the mount, stopped before close):
 * - the janitor: every ~2 s seals quiet inodes of working trees
 *   (mav_wt_seal_idle), closes views nobody references any more, and sends
 *   kernel cache invalidations queued by handlers (a handler must never
 *   call fuse_lowlevel_notify_* itself: the kernel may be waiting for it);
 * - the signal thread: on SIGINT/SIGTERM/SIGHUP it stops the rpc server,
 *   has the kernel write back dirty pages and waits for them to arrive
 *   (mavfs_writeback, served by the still running loop), then ends the
 *   session loop.
 *
 * Lock order: gc_lock -> time stripe -> views lock -> root lock -> janitor
 * lock -> (store: wt lock -> ref lock -> cache locks). No lock of ours is
 * held while calling fuse_lowlevel_notify_* or replying to a request.
 */
#ifndef MAVFS_DAEMON_H
#define MAVFS_DAEMON_H

#define FUSE_USE_VERSION 314

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <syslog.h>

#include <fuse_lowlevel.h>

#include "mav/repo.h"

struct mavfs_views;
struct mavfs_root;
struct mavfs_server;

struct mavfs_opts {
	uint64_t chunk_cache; /* bytes; 0 = store default */
	uint64_t tree_cache;  /* bytes; 0 = store default */
	unsigned max_views;   /* open views (trees) at once */
	bool foreground;
	bool ro;             /* mounted read-only */
	bool writeback;      /* ask for the writeback cache */
	bool posix_acl;      /* ask for FUSE_CAP_POSIX_ACL */
	double ro_timeout;   /* entry/attr timeout of read-only views */
	double rw_timeout;   /* entry/attr timeout of working trees */
	double root_timeout; /* the root and the names refs can move */
	double idle_seconds; /* unreferenced views closed after this */
	double seal_seconds; /* quiet inodes sealed after this */
};

struct mavfs {
	struct mav_repo *repo;
	struct fuse_session *se;
	char *repo_path;  /* absolute */
	char *mountpoint; /* absolute */
	uid_t owner;      /* owner of the repository directory */
	uid_t uid;        /* who mounted: owner of the root directory */
	gid_t gid;
	struct mavfs_opts opt;
	struct mavfs_views *views;
	struct mavfs_root *root;
	struct mavfs_server *server; /* jlock */
	/* Negotiated in init, read-only afterwards. */
	bool writeback;  /* kernel writeback cache on */
	bool no_open;    /* open answered ENOSYS: zero-message open */
	bool no_opendir; /* same for opendir */

	/* Shared by every call that changes a working tree or seals its data;
	 * exclusive for gc, which must not run while new chunks are written
	 * and not yet referenced. Prefers writers so gc is not starved. */
	pthread_rwlock_t gc_lock;

	/* Janitor state, guarded by jlock. */
	pthread_mutex_t jlock;
	pthread_cond_t jcond;
	bool jstop;
	bool jstarted;
	pthread_t janitor;
	uint64_t *inval; /* fuse inodes whose page cache must be dropped */
	size_t ninval, capinval;

	/* Signal thread. */
	pthread_t main_thread; /* runs the session loop */
	pthread_t sig_thread;
	bool sig_started;
	atomic_bool loop_done;         /* the session loop has returned */
	_Atomic int64_t last_write_ns; /* see mavfs_note_write */
};

/* Translate a store/-errno code into a positive errno for a FUSE reply.
 * Corruption and other unexpected failures are logged with the store's
 * message (call on the thread that got the code, right after the call). */
int mavfs_errno(int rc, const char *what);

/* Log one line to stderr (foreground) or syslog (daemon). */
void mavfs_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mavfs_log_to_syslog(bool on);

/* Start/stop the janitor thread. */
int mavfs_janitor_start(struct mavfs *fs);
void mavfs_janitor_stop(struct mavfs *fs);
/* A write into read-only inode ino was refused: the janitor retires its
 * view (see mavfs_views_retire) and drops the inode's cached pages. */
void mavfs_queue_inval(struct mavfs *fs, uint64_t ino);

/* Wait for SIGINT/SIGTERM/SIGHUP on a thread of its own (signals must be
 * blocked in every thread first: mavfs_block_signals). */
int mavfs_signals_start(struct mavfs *fs);
/* After the loop returned: mark it done and stop the signal thread. */
void mavfs_signals_stop(struct mavfs *fs);
void mavfs_block_signals(void);

/* Have the kernel write back the dirty pages of its writeback cache and
 * wait until they have reached the daemon (the loop must be running). */
void mavfs_writeback(struct mavfs *fs);
/* A write or setattr arrived (mavfs_writeback waits for these to stop). */
void mavfs_note_write(struct mavfs *fs);

/* Stop the rpc server once (whichever of the signal thread and main gets
 * there first; fs->server is guarded by jlock). */
void mavfs_stop_server(struct mavfs *fs);

/* Invalidate names in the root directory and its listing after refs
 * changed (rpc). names may be NULL. Call with no lock held. */
void mavfs_root_changed(struct mavfs *fs, const char *const *names, size_t n);

/* Drop the kernel's caches for every inode it holds of the working tree of
 * branch (after a reset or a branch deletion). Call with no lock held. */
void mavfs_inval_branch(struct mavfs *fs, const char *branch);
/* Drop the kernel's attributes and pages of inos[0..n). No lock held, and
 * never from a request handler (see daemon.c). */
void mavfs_send_invals(struct mavfs *fs, const uint64_t *inos, size_t n);

int64_t mavfs_now_ns(void);

#endif
