/* daemon.c - errors, logging, and the background threads of mavfs.
 *
 * Error translation happens here and only here: store codes become errno
 * values for FUSE replies. Failures that mean something is wrong with the
 * repository (corruption, I/O errors, a newer format) are logged with the
 * store's one-line message, which names the object.
 *
 * Kernel cache invalidations are never sent from a request handler: the
 * kernel may hold page locks while it waits for that very handler (a write
 * during writeback), and notify_inval_inode would wait for them. Handlers
 * queue inodes; the janitor sends.
 *
 * Shutdown on a signal: libfuse's own handlers end the loop at once, and
 * fuse_session_unmount then closes the device before the kernel has
 * written back dirty pages of the writeback cache - they would be lost. So
 * a signal thread first has the kernel write back (mavfs_writeback) while
 * the loop still serves the resulting writes, and only then ends the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "mav/error.h"
#include "root.h"
#include "server.h"
#include "view.h"

#define INVAL_QUEUE_MAX    4096
#define WRITEBACK_QUIET_NS 100000000LL   /* 100 ms */
#define WRITEBACK_MAX_NS   10000000000LL /* 10 s */

static bool log_syslog; /* set once by main before threads start */

void mavfs_log_to_syslog(bool on)
{
	log_syslog = on;
	if (on)
		openlog("mavfs", LOG_PID, LOG_DAEMON);
}

void mavfs_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		char line[1024];

		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "mavfs: %s\n", line);
	}
	va_end(ap);
}

int64_t mavfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int logged(int err, const char *what)
{
	const char *msg = mav_error_message();

	mavfs_log(LOG_ERR, "%s: %s", what, msg[0] ? msg : strerror(err));
	return err;
}

int mavfs_errno(int rc, const char *what)
{
	switch (rc) {
	case 0:
		return 0;
	case MAV_ECORRUPT:
	case MAV_EVERSION:
	case MAV_ENOTREPO:
		return logged(EIO, what);
	case MAV_ENOTFOUND:
	case MAV_EBADREV:
		return ENOENT;
	case MAV_EEXIST:
		return EEXIST;
	case MAV_ECONFLICT:
		return EAGAIN;
	case MAV_ELOCKED:
		return EBUSY;
	case MAV_EINVAL:
		return EINVAL;
	case MAV_ENOMEM:
		return ENOMEM;
	default:
		break;
	}
	if (rc < 0 && rc > -4096)
		return rc == -EIO ? logged(EIO, what) : -rc;
	return logged(EIO, what);
}

/* ---- janitor ---- */

void mavfs_queue_inval(struct mavfs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->jlock);
	for (size_t i = 0; i < fs->ninval; i++) {
		if (fs->inval[i] == ino)
			goto out;
	}
	if (fs->ninval == fs->capinval && fs->capinval < INVAL_QUEUE_MAX) {
		size_t cap = fs->capinval ? fs->capinval * 2 : 16;
		uint64_t *q = realloc(fs->inval, cap * sizeof(*q));

		if (q) {
			fs->inval = q;
			fs->capinval = cap;
		}
	}
	if (fs->ninval < fs->capinval)
		fs->inval[fs->ninval++] = ino;
	pthread_cond_signal(&fs->jcond);
out:
	pthread_mutex_unlock(&fs->jlock);
}

void mavfs_send_invals(struct mavfs *fs, const uint64_t *inos, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, inos[i], 0, 0);
}

/* Writes into snapshots that reached us (the kernel cached them first):
 * move the view's name to fresh inodes, drop the stale pages. */
static void undo_rejected_writes(struct mavfs *fs, const uint64_t *inos,
                                 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *name = mavfs_views_retire(fs->views, inos[i]);

		if (name) {
			mavfs_log(LOG_NOTICE, "write into read-only %s refused",
			          name);
			fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID,
			                                 name, strlen(name));
		}
		free(name);
	}
	mavfs_send_invals(fs, inos, n);
}

/* Above the view bound: let the kernel drop the least recently used root
 * names; their views close once it forgets them. *over (janitor state)
 * remembers whether we were above it, to log the way back. */
static void trim_views(struct mavfs *fs, bool *over)
{
	char **names = NULL;
	size_t n = mavfs_views_trim(fs->views, &names, 1000000000);
	unsigned open, trees;

	for (size_t i = 0; i < n; i++) {
		if (names[i])
			fuse_lowlevel_notify_inval_entry(
			    fs->se, FUSE_ROOT_ID, names[i], strlen(names[i]));
		free(names[i]);
	}
	free(names);
	mavfs_views_stats(fs->views, &open, &trees);
	if (n)
		mavfs_log(LOG_INFO,
		          "%u views open (%u trees), above the bound "
		          "of %u: asked the kernel to drop %zu",
		          open, trees, fs->opt.max_views, n);
	else if (*over && open <= fs->opt.max_views)
		mavfs_log(LOG_INFO,
		          "%u views open (%u trees), within the "
		          "bound again",
		          open, trees);
	*over = open > fs->opt.max_views;
}

static void janitor_chores(struct mavfs *fs, bool *over)
{
	mavfs_views_seal_idle(fs->views, (int64_t)(fs->opt.seal_seconds * 1e9));
	trim_views(fs, over);
	mavfs_views_close_idle(fs->views,
	                       (int64_t)(fs->opt.idle_seconds * 1e9));
}

static void *janitor(void *arg)
{
	struct mavfs *fs = arg;
	int64_t next = mavfs_now_ns() + 2000000000;
	bool over = false;

	pthread_mutex_lock(&fs->jlock);
	while (!fs->jstop) {
		uint64_t batch[64];
		size_t n = 0;
		struct timespec ts = {.tv_sec = next / 1000000000,
		                      .tv_nsec = next % 1000000000};

		if (fs->ninval == 0)
			pthread_cond_timedwait(&fs->jcond, &fs->jlock, &ts);
		while (n < 64 && fs->ninval > 0)
			batch[n++] = fs->inval[--fs->ninval];
		pthread_mutex_unlock(&fs->jlock);
		undo_rejected_writes(fs, batch, n);
		if (mavfs_now_ns() >= next) {
			janitor_chores(fs, &over);
			next = mavfs_now_ns() + 2000000000;
		}
		pthread_mutex_lock(&fs->jlock);
	}
	pthread_mutex_unlock(&fs->jlock);
	return NULL;
}

int mavfs_janitor_start(struct mavfs *fs)
{
	int rc = pthread_create(&fs->janitor, NULL, janitor, fs);

	if (rc)
		return -rc;
	fs->jstarted = true;
	return 0;
}

void mavfs_janitor_stop(struct mavfs *fs)
{
	if (!fs->jstarted)
		return;
	pthread_mutex_lock(&fs->jlock);
	fs->jstop = true;
	pthread_cond_signal(&fs->jcond);
	pthread_mutex_unlock(&fs->jlock);
	pthread_join(fs->janitor, NULL);
	fs->jstarted = false;
}

/* ---- invalidation after ref changes ---- */

void mavfs_root_changed(struct mavfs *fs, const char *const *names, size_t n)
{
	mavfs_root_touch(fs->root);
	for (size_t i = 0; i < n; i++) {
		if (names[i])
			fuse_lowlevel_notify_inval_entry(
			    fs->se, FUSE_ROOT_ID, names[i], strlen(names[i]));
	}
	fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
}

void mavfs_inval_branch(struct mavfs *fs, const char *branch)
{
	uint64_t *inos = NULL;
	size_t n = 0;

	if (mavfs_views_branch_inos(fs->views, branch, &inos, &n) == 0)
		mavfs_send_invals(fs, inos, n);
	free(inos);
	/* Drop the name too: its whole subtree of dentries goes with it. */
	fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, branch,
	                                 strlen(branch));
}

/* ---- signals ---- */

static void wake(int sig)
{
	(void)sig;
}

void mavfs_block_signals(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void *signal_thread(void *arg)
{
	struct mavfs *fs = arg;
	sigset_t s;
	int sig = 0;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigwait(&s, &sig);
	if (atomic_load(&fs->loop_done))
		return NULL;
	mavfs_log(LOG_INFO, "signal %d: writing back and unmounting", sig);
	/* rpc ops may wait for the kernel (syncfs): finish them while the
	 * loop still serves. */
	mavfs_stop_server(fs);
	mavfs_writeback(fs);
	fuse_session_exit(fs->se);
	/* The loop's main thread sleeps in sem_wait: interrupt it until it
	 * notices (a wakeup just before it sleeps would be lost). */
	while (!atomic_load(&fs->loop_done)) {
		pthread_kill(fs->main_thread, SIGUSR1);
		usleep(100000);
	}
	return NULL;
}

int mavfs_signals_start(struct mavfs *fs)
{
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake; /* no SA_RESTART: sem_wait returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	fs->main_thread = pthread_self();
	rc = pthread_create(&fs->sig_thread, NULL, signal_thread, fs);
	if (rc)
		return -rc;
	fs->sig_started = true;
	return 0;
}

void mavfs_signals_stop(struct mavfs *fs)
{
	atomic_store(&fs->loop_done, true);
	if (!fs->sig_started)
		return;
	pthread_kill(fs->sig_thread, SIGHUP); /* ends its sigwait */
	pthread_join(fs->sig_thread, NULL);
	fs->sig_started = false;
}

void mavfs_note_write(struct mavfs *fs)
{
	atomic_store(&fs->last_write_ns, mavfs_now_ns());
}

/* FUSE hands written-back pages to the daemon as background requests,
 * and syncfs() returns once they are queued, not answered: wait until no
 * write has arrived for WRITEBACK_QUIET_NS after syncfs returned (idle
 * workers pick queued requests up within microseconds). */
void mavfs_writeback(struct mavfs *fs)
{
	int64_t synced, deadline;
	int fd;

	if (!fs->writeback)
		return;
	fd = open(fs->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (syncfs(fd) < 0)
		mavfs_log(LOG_WARNING, "syncfs %s: %s", fs->mountpoint,
		          strerror(errno));
	close(fd);
	synced = mavfs_now_ns();
	deadline = synced + WRITEBACK_MAX_NS;
	for (;;) {
		int64_t last = atomic_load(&fs->last_write_ns), now;

		now = mavfs_now_ns();
		if (now - (last > synced ? last : synced) >=
		        WRITEBACK_QUIET_NS ||
		    now >= deadline)
			break;
		usleep(10000);
	}
}

void mavfs_stop_server(struct mavfs *fs)
{
	struct mavfs_server *s;

	pthread_mutex_lock(&fs->jlock);
	s = fs->server;
	fs->server = NULL;
	pthread_mutex_unlock(&fs->jlock);
	mavfs_server_stop(s);
}
