/* cmd_repo.c - whole-repository commands: init, du, fsck, gc, mount, umount.
 *
 * fsck and gc change or lock the whole store, so while a daemon holds the
 * repository they run inside it (rpc); du only reads and opens a secondary.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mav/chunker.h>
#include <mav/error.h>
#include <mav/maint.h>

#include "cli.h"
#include "progress.h"
#include "out.h"

/* ---- init ---- */

static int init_size(struct cli *c, uint32_t *out, const char *opt,
                     const char *val)
{
	unsigned long long v;

	if (cli_parse_size(&v, val) || v == 0 || v > UINT32_MAX)
		return cli_usage(c, "bad size '%s' for --%s", val, opt);
	*out = (uint32_t)v;
	return 0;
}

static int init_opts(struct cli *c, int argc, char **argv,
                     struct mav_repo_config *cfg, const char **path)
{
	static const struct option opts[] = {
	    {"chunk-min", required_argument, NULL, 1},
	    {"chunk-avg", required_argument, NULL, 2},
	    {"chunk-max", required_argument, NULL, 3},
	    {"zstd-level", required_argument, NULL, 4},
	    {"reserve", required_argument, NULL, 5},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long long reserve;
	int ch, rc = 0;
	char *end;
	long lvl;

	while (rc == 0 && (ch = cli_getopt(c, argc, argv, "", opts)) != -1) {
		switch (ch) {
		case 1:
			rc = init_size(c, &cfg->chunk_min, "chunk-min", optarg);
			break;
		case 2:
			rc = init_size(c, &cfg->chunk_avg, "chunk-avg", optarg);
			break;
		case 3:
			rc = init_size(c, &cfg->chunk_max, "chunk-max", optarg);
			break;
		case 4:
			lvl = strtol(optarg, &end, 10);
			if (*end || end == optarg || lvl < 0 || lvl > 19)
				return cli_usage(c,
				                 "bad --zstd-level '%s' "
				                 "(0..19)",
				                 optarg);
			cfg->zstd_level = (int)lvl;
			break;
		case 5:
			if (cli_parse_size(&reserve, optarg))
				return cli_usage(
				    c, "bad size '%s' for --reserve", optarg);
			cfg->reserve_bytes = reserve;
			break;
		case 'h':
			return cli_show_help(c);
		default:
			return EXIT_USAGE;
		}
	}
	if (rc)
		return rc;
	if (argc - optind > 1)
		return cli_usage(c, "too many arguments");
	*path = optind < argc ? argv[optind] : c->repo;
	return 0;
}

int cmd_init(struct cli *c, int argc, char **argv)
{
	struct mav_repo_config cfg;
	struct mav_chunker ck;
	const char *path = NULL;
	int rc;

	mav_repo_config_default(&cfg);
	rc = init_opts(c, argc, argv, &cfg, &path);
	if (rc)
		return cli_opt_exit(rc);
	if (!path)
		return cli_usage(c, "no repository path (give PATH, -R REPO "
		                    "or set MAV_REPO)");
	if (mav_chunker_init(&ck, cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max))
		return cli_usage(c, "bad chunk sizes: need 64 <= min < avg < "
		                    "max <= 64M, avg a power of two");
	mav_error_clear();
	rc = mav_repo_init(path, &cfg);
	if (rc)
		return cli_fail(c, rc);
	printf("initialized empty mav repository in %s\n", path);
	return cli_exit_code(out_flush());
}

/* ---- du ---- */

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static void du_json(const struct mav_du_report *d, const char *rev)
{
	struct json j;

	json_init(&j, stdout);
	json_obj(&j);
	json_kstr(&j, "rev", rev);
	json_ku64(&j, "files", d->files);
	json_ku64(&j, "logical_bytes", d->logical_bytes);
	json_ku64(&j, "unique_bytes", d->unique_bytes);
	json_ku64(&j, "stored_bytes", d->stored_bytes);
	json_ku64(&j, "chunks", d->chunks);
	json_key(&j, "dedup_ratio");
	json_dbl(&j, ratio(d->logical_bytes, d->unique_bytes));
	json_key(&j, "compression_ratio");
	json_dbl(&j, ratio(d->unique_bytes, d->stored_bytes));
	json_end_obj(&j);
	json_done(&j);
}

static void du_human(const struct mav_du_report *d)
{
	char s[OUT_SIZE_LEN];

	printf("files         %" PRIu64 "\n", d->files);
	printf("logical       %s (%" PRIu64 " bytes)\n",
	       out_size(s, d->logical_bytes), d->logical_bytes);
	printf("unique        %s (%" PRIu64 " bytes)\n",
	       out_size(s, d->unique_bytes), d->unique_bytes);
	printf("stored        %s (%" PRIu64 " bytes)\n",
	       out_size(s, d->stored_bytes), d->stored_bytes);
	printf("chunks        %" PRIu64 "\n", d->chunks);
	printf("dedup         %.2fx (logical / unique)\n",
	       ratio(d->logical_bytes, d->unique_bytes));
	printf("compression   %.2fx (unique / stored)\n",
	       ratio(d->unique_bytes, d->stored_bytes));
}

/* Options of commands that take only --json (and --help). */
static int json_only_opts(struct cli *c, int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	*json = false;
	while ((ch = cli_getopt(c, argc, argv, "", opts)) != -1) {
		if (ch == 'J')
			*json = true;
		else if (ch == 'h')
			return cli_show_help(c);
		else
			return EXIT_USAGE;
	}
	return 0;
}

int cmd_du(struct cli *c, int argc, char **argv)
{
	struct mav_du_report d = {0};
	struct mav_repo *r = NULL;
	const char *rev;
	mav_id commit;
	bool json;
	int rc = json_only_opts(c, argc, argv, &json);

	if (rc)
		return cli_opt_exit(rc);
	if (argc - optind > 1)
		return cli_usage(c, "too many arguments");
	rev = optind < argc ? argv[optind] : NULL;
	rc = cli_open_ro(c, &r);
	if (rc == 0 && rev)
		rc = cli_rev(c, &commit, r, rev);
	if (rc == 0) {
		mav_error_clear();
		rc = mav_du(&d, r, rev ? &commit : NULL);
	}
	if (rc == 0) {
		if (json)
			du_json(&d, rev);
		else
			du_human(&d);
		rc = out_flush();
	}
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- fsck ---- */

struct fsck_ctx {
	struct json *j; /* NULL: human output */
	uint64_t n;
	struct progress prog;
};

static void fsck_tick(void *arg, uint32_t len)
{
	progress_done(&((struct fsck_ctx *)arg)->prog, 1, len);
}

static void fsck_problem(void *arg, const char *problem)
{
	struct fsck_ctx *x = arg;

	x->n++;
	if (x->j)
		json_str(x->j, problem);
	else
		printf("%s\n", problem);
}

static int fsck_local(struct cli *c, struct mav_repo *r, bool json)
{
	struct mav_fsck_report rep = {0};
	struct json j;
	struct fsck_ctx x = {.j = json ? &j : NULL};
	int rc;

	json_init(&j, stdout);
	if (json) {
		json_obj(&j);
		json_key(&j, "problems");
		json_arr(&j);
	}
	mav_error_clear();
	progress_start(&x.prog, "fsck", "chunks");
	rc = mav_fsck(&rep, r, fsck_problem, fsck_tick, &x);
	progress_stop(&x.prog);
	if (rc)
		return cli_fail(c, rc); /* a half document is no document */
	if (json) {
		json_end_arr(&j);
		json_ku64(&j, "commits", rep.commits);
		json_ku64(&j, "trees", rep.trees);
		json_ku64(&j, "blobs", rep.blobs);
		json_ku64(&j, "chunks", rep.chunks);
		json_ku64(&j, "wt_inodes", rep.wt_inodes);
		json_key(&j, "ok");
		json_bool(&j, rep.problems == 0 && x.n == 0);
		json_end_obj(&j);
		json_done(&j);
	} else {
		printf("checked %" PRIu64 " commits, %" PRIu64
		       " trees, %" PRIu64 " blobs, %" PRIu64 " chunks, %" PRIu64
		       " working-tree inodes\n",
		       rep.commits, rep.trees, rep.blobs, rep.chunks,
		       rep.wt_inodes);
	}
	if (out_flush())
		return cli_fail(c, -EIO);
	if (rep.problems || x.n)
		return cli_error(c, MAV_ECORRUPT,
		                 "%" PRIu64 " problem(s) found",
		                 rep.problems > x.n ? rep.problems : x.n);
	return EXIT_OK;
}

static int fsck_daemon(struct cli *c, bool json)
{
	struct mav_rpc_msg reply;
	struct json j;
	unsigned n;
	int rc = cli_rpc(c, &reply, "fsck", NULL);

	if (rc) {
		mav_rpc_msg_free(&reply);
		return cli_fail(c, rc);
	}
	n = cli_rpc_nresults(&reply);
	json_init(&j, stdout);
	if (json) {
		json_obj(&j);
		json_key(&j, "problems");
		json_arr(&j);
	}
	for (unsigned i = 0; i < n; i++) {
		size_t len;
		const char *p = cli_rpc_result(&reply, i, &len);

		if (json)
			json_strn(&j, p, len);
		else
			printf("%s\n", p);
	}
	if (json) {
		json_end_arr(&j);
		json_key(&j, "ok");
		json_bool(&j, n == 0);
		json_end_obj(&j);
		json_done(&j);
	} else if (n == 0) {
		printf("no problems found\n");
	}
	mav_rpc_msg_free(&reply);
	if (out_flush())
		return cli_fail(c, -EIO);
	return n ? cli_error(c, MAV_ECORRUPT, "%u problem(s) found", n)
	         : EXIT_OK;
}

int cmd_fsck(struct cli *c, int argc, char **argv)
{
	struct mav_repo *r = NULL;
	bool json, daemon;
	int rc = json_only_opts(c, argc, argv, &json);

	if (rc)
		return cli_opt_exit(rc);
	if (optind < argc)
		return cli_usage(c, "too many arguments");
	rc = cli_open_rw(c, &r, &daemon);
	if (rc)
		return cli_fail(c, rc);
	rc = daemon ? fsck_daemon(c, json) : fsck_local(c, r, json);
	mav_repo_close(r);
	return rc;
}

/* ---- gc ---- */

static void gc_print(const struct mav_gc_report *g, bool json)
{
	char s[OUT_SIZE_LEN];
	struct json j;

	if (!json) {
		printf("freed %s (%" PRIu64 " bytes): %" PRIu64
		       " chunks, %" PRIu64 " objects\n",
		       out_size(s, g->bytes_freed), g->bytes_freed,
		       g->chunks_deleted, g->objects_deleted);
		return;
	}
	json_init(&j, stdout);
	json_obj(&j);
	json_ku64(&j, "chunks_deleted", g->chunks_deleted);
	json_ku64(&j, "objects_deleted", g->objects_deleted);
	json_ku64(&j, "bytes_freed", g->bytes_freed);
	json_end_obj(&j);
	json_done(&j);
}

static void gc_tick(void *arg, uint32_t len)
{
	progress_done(arg, 1, len);
}

/* The daemon answers gc with "chunks objects bytes" as three results (or,
 * older, a single text line which is printed as is). */
static int gc_daemon(struct cli *c, bool json)
{
	struct mav_rpc_msg reply;
	struct mav_gc_report g = {0};
	int rc = cli_rpc(c, &reply, "gc", NULL);

	if (rc == 0 && cli_rpc_nresults(&reply) >= 3) {
		g.chunks_deleted =
		    strtoull(cli_rpc_result(&reply, 0, NULL), NULL, 10);
		g.objects_deleted =
		    strtoull(cli_rpc_result(&reply, 1, NULL), NULL, 10);
		g.bytes_freed =
		    strtoull(cli_rpc_result(&reply, 2, NULL), NULL, 10);
		gc_print(&g, json);
	} else if (rc == 0) {
		for (unsigned i = 0; i < cli_rpc_nresults(&reply); i++)
			printf("%s\n", cli_rpc_result(&reply, i, NULL));
	}
	mav_rpc_msg_free(&reply);
	return rc;
}

int cmd_gc(struct cli *c, int argc, char **argv)
{
	struct mav_gc_report g = {0};
	struct progress prog;
	struct mav_repo *r = NULL;
	bool json, daemon;
	int rc = json_only_opts(c, argc, argv, &json);

	if (rc)
		return cli_opt_exit(rc);
	if (optind < argc)
		return cli_usage(c, "too many arguments");
	rc = cli_open_rw(c, &r, &daemon);
	if (rc == 0 && daemon) {
		rc = gc_daemon(c, json);
	} else if (rc == 0) {
		mav_error_clear();
		progress_start(&prog, "gc", "chunks and keys");
		rc = mav_gc(&g, r, gc_tick, &prog);
		progress_stop(&prog);
		if (rc == 0 && g.chunks_deleted > 0)
			rc = mav_gc_compact(r);
		if (rc == 0)
			gc_print(&g, json);
	}
	if (rc == 0)
		rc = out_flush();
	mav_repo_close(r);
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- mount / umount ---- */

/* mavfs beside our own executable, else "mavfs" (found on PATH). */
static void find_mavfs(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	snprintf(out, cap, "mavfs");
	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/mavfs", self) < cap &&
	    access(out, X_OK) == 0)
		return;
	snprintf(out, cap, "mavfs");
}

static int one_operand_opts(struct cli *c, int argc, char **argv,
                            const char **opts_out)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = cli_getopt(c, argc, argv, opts_out ? "o:" : "", opts)) !=
	       -1) {
		if (ch == 'o' && opts_out)
			*opts_out = optarg;
		else if (ch == 'h')
			return cli_show_help(c);
		else
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage(c, "expected exactly one MOUNTPOINT");
	return 0;
}

int cmd_mount(struct cli *c, int argc, char **argv)
{
	const char *mopts = NULL, *repo;
	char bin[PATH_MAX];
	char *args[6];
	int rc = one_operand_opts(c, argc, argv, &mopts), n = 0;

	if (rc)
		return cli_opt_exit(rc);
	repo = cli_repo(c, &rc);
	if (!repo)
		return rc;
	find_mavfs(bin, sizeof(bin));
	args[n++] = bin;
	args[n++] = (char *)repo;
	args[n++] = argv[optind];
	if (mopts) {
		args[n++] = "-o";
		args[n++] = (char *)mopts;
	}
	args[n] = NULL;
	fflush(NULL);
	execvp(bin, args);
	return cli_error(c, -errno, "cannot run %s: %s", bin, strerror(errno));
}

/* Run fusermount3 -u, keeping its complaint for our one error line. */
int cmd_umount(struct cli *c, int argc, char **argv)
{
	char msg[512] = "";
	int rc = one_operand_opts(c, argc, argv, NULL), pfd[2], status;
	ssize_t n;
	pid_t pid;

	if (rc)
		return cli_opt_exit(rc);
	if (pipe(pfd))
		return cli_error(c, -errno, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execlp("fusermount3", "fusermount3", "-u", argv[optind],
		       (char *)NULL);
		fprintf(stderr, "cannot run fusermount3: %s", strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	n = pid > 0 ? read(pfd[0], msg, sizeof(msg) - 1) : 0;
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	if (pid < 0)
		return cli_error(c, -errno, "fork: %s", strerror(errno));
	if (waitpid(pid, &status, 0) < 0)
		return cli_error(c, -errno, "wait: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return EXIT_OK;
	msg[strcspn(msg, "\n")] = '\0';
	return cli_error(c, -EIO, "%s", msg[0] ? msg : "fusermount3 failed");
}
