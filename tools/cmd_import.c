/* cmd_import.c - `mavctl import SRC [--branch B] [--delete] [-j N]`.
 *
 * Chooses the destination (the working tree itself, or MOUNTPOINT/BRANCH
 * while a daemon holds the repository), runs the import (import.c) and
 * prints one summary line.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mav/error.h>

#include "import.h"
#include "out.h"

/* One worker per core and one more: a worker waits now and then for a
 * cold source file or a full write buffer (1.1 GB on 2 cores: 2 workers
 * 2.9-3.1 s, 3 workers 2.6-2.7 s, 4 no better). */
static int default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 2 : n > 63 ? 64 : (int)n + 1;
}

/* MOUNTPOINT/BRANCH of the running daemon. */
static int mounted_dest(struct cli *c, char *out, size_t cap,
                        const char *branch)
{
	struct mav_rpc_msg reply;
	int rc = cli_rpc(c, &reply, "mountpoint", NULL);

	if (rc == 0 && cli_rpc_nresults(&reply) < 1)
		rc = mav_error_set(-EPROTO, "daemon sent no mountpoint");
	if (rc == 0 &&
	    (size_t)snprintf(out, cap, "%s/%s", cli_rpc_result(&reply, 0, NULL),
	                     branch) >= cap)
		rc = mav_error_set(-ENAMETOOLONG, "mountpoint path too long");
	mav_rpc_msg_free(&reply);
	return rc;
}

static void summary(struct imp *m, int64_t t0)
{
	double secs = (double)(progress_now_ns() - t0) / 1e9;
	uint64_t files = atomic_load(&m->prog.files_done);
	uint64_t bytes = atomic_load(&m->prog.bytes_done);
	char s[OUT_SIZE_LEN];

	printf("imported %" PRIu64 " files, %s read in %.2fs (%.1f MB/s)\n",
	       files, out_size(s, bytes), secs,
	       secs > 0 ? (double)bytes / secs / 1e6 : 0.0);
}

static int import_into(struct cli *c, struct imp *m, struct mav_repo *r,
                       bool daemon, const char *branch, const char *src)
{
	char dest[PATH_MAX];
	int64_t t0 = progress_now_ns();
	int rc;

	if (daemon) {
		rc = mounted_dest(c, dest, sizeof(dest), branch);
		if (rc == 0)
			rc = imp_fs_open(m, dest);
	} else {
		rc = imp_wt_open(m, r, branch);
	}
	if (rc)
		return cli_fail(c, rc);
	progress_start(&m->prog, "import", "files");
	rc = imp_run(m, src);
	progress_stop(&m->prog);
	if (rc)
		return cli_error(c, rc, "%s", m->errmsg);
	summary(m, t0);
	rc = out_flush();
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

int cmd_import(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	struct cli_opts o;
	struct imp m;
	bool daemon;
	int rc =
	    cli_parse(c, argc, argv,
	              OPT_BRANCH | OPT_MIRROR | OPT_JOBS | OPT_CHECKSUM, &o);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind != 1)
		return cli_usage(c, "expected one SRC directory");
	if (access(argv[optind], F_OK))
		return cli_error(c, -errno, "cannot access '%s': %s",
		                 argv[optind], strerror(errno));
	rc = cli_open_rw(c, &r, &daemon);
	if (rc)
		return cli_fail(c, rc);
	imp_init(&m, c, o.jobs ? o.jobs : default_jobs());
	m.mirror = o.mirror;
	m.checksum = o.checksum;
	rc = import_into(c, &m, r, daemon,
	                 o.branch ? o.branch : cli_default_branch(c),
	                 argv[optind]);
	imp_fini(&m);
	mav_repo_close(r);
	return rc;
}
