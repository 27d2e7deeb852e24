/* main.c - mavfs REPO MOUNTPOINT [-f] [-o OPTIONS]: mount a repository.
 *
 * Startup is ordered so that every error reaches the terminal: the
 * mountpoint is checked (exists, is a directory, is not already a mount),
 * then - unless -f - the process forks at once and the child does all the
 * real work (open the repository, mount, start the rpc server) while the
 * parent waits on a pipe for "ready" or for the child's exit. The child
 * still has the terminal as stderr until it is ready. fuse_daemonize() is
 * not used because it forks after the fact: RocksDB's background threads
 * and its lock (an fcntl lock, owned per process) would stay behind in the
 * parent that exits, so the repository must be opened in the process that
 * serves it.
 *
 * Shutdown (fusermount3 -u, umount, SIGINT/SIGTERM/SIGHUP): the loop ends;
 * the rpc server and the janitor stop; the mount is released; every open
 * working tree is synced; the repository is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_opt.h>

#include "daemon.h"
#include "mav/error.h"
#include "mount.h"
#include "ops.h"
#include "root.h"
#include "server.h"
#include "view.h"

struct cli {
	char *repo, *mnt;
	char *chunk_cache, *tree_cache;
	unsigned max_views;
	int foreground, ro, no_writeback, posix_acl, help, version;
};

enum { KEY_FG, KEY_DEBUG, KEY_RO, KEY_HELP, KEY_VERSION, KEY_DROP };

#define CLI_OPT(t, field, v)                                                   \
	{                                                                      \
		t, offsetof(struct cli, field), v                              \
	}

static const struct fuse_opt cli_spec[] = {
    CLI_OPT("chunk_cache=%s", chunk_cache, 0),
    CLI_OPT("tree_cache=%s", tree_cache, 0),
    CLI_OPT("max_views=%u", max_views, 0),
    CLI_OPT("writeback_cache", no_writeback, 0),
    CLI_OPT("no_writeback_cache", no_writeback, 1),
    CLI_OPT("posix_acl", posix_acl, 1),
    CLI_OPT("no_posix_acl", posix_acl, 0),
    FUSE_OPT_KEY("-f", KEY_FG),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("default_permissions", KEY_DROP),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END};

static void usage(void)
{
	printf("usage: mavfs REPO MOUNTPOINT [-f] [-o OPTION[,OPTION...]]\n"
	       "\n"
	       "Mount a mav repository: every branch is a writable working\n"
	       "tree, every version, tag and branch snapshot a read-only\n"
	       "@NAME directory.\n"
	       "\n"
	       "  -f                     stay in the foreground\n"
	       "  -d, -o debug           foreground with FUSE debug output\n"
	       "  -o chunk_cache=SIZE    decompressed chunk cache (256M)\n"
	       "  -o tree_cache=SIZE     decoded tree cache (64M)\n"
	       "  -o max_views=N         trees open at once (256)\n"
	       "  -o ro                  mount read-only\n"
	       "  -o allow_other         let other users in\n"
	       "  -o writeback_cache     kernel writeback cache: faster small\n"
	       "                         writes, but a snapshot taken while a\n"
	       "                         program writes may hold part of one\n"
	       "                         write(); a write() into a read-only\n"
	       "                         view then fails only at fsync/close\n"
	       "  -o no_posix_acl        no ACL capability (ls -l then asks\n"
	       "                         the daemon twice per file)\n"
	       "\n"
	       "SIZE takes K, M or G. Unmount with fusermount3 -u "
	       "MOUNTPOINT.\n");
}

static int cli_proc(void *data, const char *arg, int key,
                    struct fuse_args *outargs)
{
	struct cli *c = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!c->repo)
			return (c->repo = strdup(arg)) ? 0 : -1;
		if (!c->mnt)
			return (c->mnt = strdup(arg)) ? 0 : -1;
		fprintf(stderr, "mavfs: unexpected argument '%s'\n", arg);
		return -1;
	case KEY_FG:
		c->foreground = 1;
		return 0;
	case KEY_DEBUG:
		c->foreground = 1;
		return 1;
	case KEY_RO:
		c->ro = 1;
		return 1;
	case KEY_HELP:
		c->help = 1;
		return 0;
	case KEY_VERSION:
		c->version = 1;
		return 0;
	case KEY_DROP:
		return 0; /* always added */
	default:
		return 1;
	}
}

static int parse_size(uint64_t *out, const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	*out = 0;
	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'g':
	case 'G':
		v <<= 10; /* fall through */
	case 'm':
	case 'M':
		v <<= 10; /* fall through */
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	default:
		break;
	}
	if (errno || end == s || *end) {
		fprintf(stderr, "mavfs: bad size for %s: '%s'\n", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int fill_opts(struct mavfs_opts *o, const struct cli *c)
{
	memset(o, 0, sizeof(*o));
	if (parse_size(&o->chunk_cache, c->chunk_cache, "chunk_cache") < 0 ||
	    parse_size(&o->tree_cache, c->tree_cache, "tree_cache") < 0)
		return -1;
	o->max_views = c->max_views ? c->max_views : 256;
	o->foreground = c->foreground;
	o->ro = c->ro;
	o->writeback = !c->no_writeback;
	o->posix_acl = c->posix_acl;
	o->ro_timeout = 1e6;
	o->rw_timeout = 3600;
	o->root_timeout = 1.0;
	o->idle_seconds = 30;
	o->seal_seconds = 2;
	return 0;
}

/* Fork; the parent waits for the child to be ready and exits with its
 * verdict. Returns the write end of the pipe in the child. */
static int start_daemon(void)
{
	int p[2], status = 0;
	char ok;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("mavfs: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("mavfs: fork");
		exit(1);
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		return p[1];
	}
	close(p[1]);
	if (read(p[0], &ok, 1) == 1)
		exit(0);
	waitpid(pid, &status, 0);
	exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status)
	                                              : 1);
}

/* Tell the waiting parent we are up; from now on log to syslog. */
static void daemon_ready(int fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (chdir("/") < 0)
		mavfs_log(LOG_WARNING, "chdir /: %s", strerror(errno));
	mavfs_log_to_syslog(true);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	(void)!write(fd, "1", 1);
	close(fd);
}

static int run(struct mavfs *fs, struct fuse_args *args, int ready_fd);

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mavfs fs;
	struct cli c;
	int ready_fd = -1, rc = 1;

	memset(&c, 0, sizeof(c));
	memset(&fs, 0, sizeof(fs));
	/* 16 FUSE threads and the prefetchers each got a malloc arena of
	 * their own, and freed chunk buffers stayed spread over all of them:
	 * reading the whole 1.5G benchmark tree peaked at 143 MiB RSS with a
	 * 64 MiB chunk cache, 112 MiB with 4 arenas, no slower. */
	mallopt(M_ARENA_MAX, 4);
	c.posix_acl = 1; /* the kernel caches "no ACL": ls -l asks per file */
	/* Write-through by default: with the kernel's writeback cache a
	 * snapshot taken while a program writes can catch part of a write()
	 * (pages reach the daemon in any order), which t_mount_writers shows.
	 */
	c.no_writeback = 1;
	if (fuse_opt_parse(&args, &c, cli_spec, cli_proc) < 0)
		goto out;
	if (c.help || c.version) {
		if (c.help)
			usage();
		else
			printf("mavfs (mav format %d, libfuse %d)\n",
			       MAV_FORMAT_VERSION, fuse_version());
		rc = 0;
		goto out;
	}
	if (!c.repo || !c.mnt) {
		usage();
		rc = 2;
		goto out;
	}
	if (fill_opts(&fs.opt, &c) < 0 ||
	    mavfs_mount_check(&fs.repo_path, &fs.mountpoint, &fs.owner, c.repo,
	                      c.mnt) < 0)
		goto out;
	if (!c.foreground)
		ready_fd = start_daemon();
	rc = run(&fs, &args, ready_fd) < 0 ? 1 : 0;
out:
	free(c.repo);
	free(c.mnt);
	free(c.chunk_cache);
	free(c.tree_cache);
	free(fs.repo_path);
	free(fs.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}

/* Chunk loaders. Four, not eight, now that a file's chunks lie together:
 * a cold read of the big files after a restart, three rounds each in
 * alternation, ran at 663-787 MiB/s with four and 642-718 with eight, on
 * less daemon CPU; cold image reads were level. */
#define MAVFS_PREFETCH_THREADS 4

static int open_repo(struct mavfs *fs)
{
	struct mav_repo_options ro = {.chunk_cache_bytes = fs->opt.chunk_cache,
	                              .tree_cache_bytes = fs->opt.tree_cache};
	int rc = mav_repo_open(&fs->repo, fs->repo_path, &ro);

	/* Cold sequential reads keep several chunk reads in flight. */
	if (rc == 0)
		rc = mav_repo_start_prefetch(fs->repo, MAVFS_PREFETCH_THREADS);
	if (rc == MAV_ELOCKED)
		fprintf(stderr,
		        "mavfs: %s: repository is in use by another "
		        "process\n",
		        fs->repo_path);
	else if (rc == MAV_ENOTREPO)
		fprintf(stderr, "mavfs: %s: not a mav repository\n",
		        fs->repo_path);
	else if (rc < 0)
		fprintf(stderr, "mavfs: %s: %s\n", fs->repo_path,
		        mav_error_message()[0] ? mav_error_message()
		                               : mav_error_name(rc));
	return rc;
}

static int init_state(struct mavfs *fs)
{
	pthread_rwlockattr_t a;
	int rc;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(
	    &a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->gc_lock, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&fs->jlock, NULL);
	pthread_cond_init(&fs->jcond, NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	rc = mavfs_views_new(&fs->views, fs->repo, &fs->gc_lock,
	                     fs->opt.max_views);
	if (rc == 0)
		rc = mavfs_root_new(&fs->root);
	if (rc < 0)
		fprintf(stderr, "mavfs: %s\n", strerror(-rc));
	return rc;
}

static int start_services(struct mavfs *fs)
{
	int rc = mavfs_server_start(&fs->server, fs);

	if (rc == -EADDRINUSE) {
		fprintf(stderr, "mavfs: another mavfs answers on %s/%s\n",
		        fs->repo_path, "mavfs.sock");
		return rc;
	}
	if (rc < 0) {
		fprintf(stderr, "mavfs: cannot serve %s/mavfs.sock: %s\n",
		        fs->repo_path, strerror(-rc));
		return rc;
	}
	rc = mavfs_janitor_start(fs);
	if (rc == 0)
		rc = mavfs_signals_start(fs);
	if (rc < 0)
		fprintf(stderr, "mavfs: cannot start threads: %s\n",
		        strerror(-rc));
	return rc;
}

static int serve(struct mavfs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	rc = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

static void shut_down(struct mavfs *fs, bool mounted)
{
	int rc;

	mavfs_signals_stop(fs);
	mavfs_stop_server(fs);
	mavfs_janitor_stop(fs);
	if (mounted)
		fuse_session_unmount(fs->se);
	if (fs->views) {
		rc = mavfs_views_sync(fs->views);
		if (rc < 0)
			mavfs_log(LOG_ERR, "sync at unmount failed: %s",
			          mav_error_name(rc));
	}
	if (fs->se)
		fuse_session_destroy(fs->se);
	mavfs_views_free(fs->views);
	mavfs_root_free(fs->root);
	mav_repo_close(fs->repo);
	free(fs->inval);
}

static int run(struct mavfs *fs, struct fuse_args *args, int ready_fd)
{
	bool mounted = false;
	int rc;

	/* Threads started from here on (RocksDB's too) leave the stop
	 * signals to the signal thread. */
	mavfs_block_signals();
	rc = open_repo(fs);
	if (rc == 0)
		rc = init_state(fs);
	if (rc == 0)
		rc = mavfs_mount_options(args, fs->repo_path);
	if (rc == 0) {
		fs->se =
		    fuse_session_new(args, &mavfs_ops, sizeof(mavfs_ops), fs);
		rc = fs->se ? 0 : -EINVAL;
	}
	if (rc == 0) {
		rc = fuse_session_mount(fs->se, fs->mountpoint) ? -EIO : 0;
		mounted = rc == 0;
	}
	if (rc == 0)
		rc = start_services(fs);
	if (rc == 0) {
		if (ready_fd >= 0)
			daemon_ready(ready_fd);
		mavfs_log(LOG_INFO, "serving %s on %s", fs->repo_path,
		          fs->mountpoint);
		rc = serve(fs);
		if (rc > 0) /* ended by a signal: a clean exit */
			rc = 0;
	}
	shut_down(fs, mounted);
	return rc;
}
