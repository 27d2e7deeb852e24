/* cli.c - the plumbing every command shares.
 *
 * Exit codes: the library speaks in return codes (-errno, MAV_E*); this is
 * the one place they become exit statuses and the one-line messages users
 * see. Finding the repository follows the order in `mavctl --help`: -R, then
 * MAV_REPO, then a mav mount holding the working directory (its mountinfo
 * source is the repository path). Opening follows the daemon rule: while
 * mavfs holds the repository, state changes go to it over the socket and
 * reads open a RocksDB secondary.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mav/error.h>

#include "cli.h"
#include "out.h"

/* ---- exit codes and messages ---- */

int cli_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return EXIT_OK;
	case MAV_ENOTREPO:
		return EXIT_NOTREPO;
	case MAV_ENOTFOUND:
	case MAV_EBADREV:
	case -ENOENT:
	case -ENOTDIR:
		return EXIT_NOTFOUND;
	case MAV_ELOCKED:
	case -EBUSY:
	case -EAGAIN:
		return EXIT_LOCKED;
	case MAV_ECORRUPT:
		return EXIT_CORRUPT;
	case -ENOSPC:
	case -EDQUOT:
		return EXIT_NOSPACE;
	case MAV_ECONFLICT:
	case MAV_EEXIST:
	case -EEXIST:
	case -ENOTEMPTY:
		return EXIT_CONFLICT;
	case MAV_EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_GENERIC;
	}
}

/* One line, whatever the message holds. */
static void print_line(const char *cmd, const char *msg)
{
	fputs("mavctl: ", stderr);
	if (cmd) {
		fputs(cmd, stderr);
		fputs(": ", stderr);
	}
	for (const char *p = msg; *p; p++)
		fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
	fputc('\n', stderr);
}

int cli_fail(struct cli *c, int rc)
{
	const char *msg = mav_error_message();

	if (!msg || !*msg)
		msg = mav_error_name(rc);
	print_line(c->cmd, msg);
	return cli_exit_code(rc);
}

int cli_end_listing(struct cli *c, struct json *j, int rc)
{
	if (rc)
		return cli_fail(c, rc);
	if (j) {
		json_end_arr(j);
		json_end_obj(j);
		json_done(j);
	}
	rc = out_flush();
	return rc ? cli_fail(c, rc) : EXIT_OK;
}

static int vreport(struct cli *c, int code, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	print_line(c->cmd, buf);
	return code;
}

int cli_error(struct cli *c, int rc, const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = vreport(c, cli_exit_code(rc), fmt, ap);
	va_end(ap);
	return code;
}

int cli_usage(struct cli *c, const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = vreport(c, EXIT_USAGE, fmt, ap);
	va_end(ap);
	return code;
}

int cli_bad_option(struct cli *c, char **argv)
{
	if (optopt && optopt != '?')
		return cli_usage(c,
		                 "option '-%c' is unknown or needs a value "
		                 "(see --help)",
		                 optopt);
	return cli_usage(c, "option '%s' is unknown or misused (see --help)",
	                 argv[optind - 1]);
}

int cli_getopt(struct cli *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
	char spec[64];
	int ch;

	/* Leading ':' so a missing value is reported as ':' not '?'. */
	snprintf(spec, sizeof(spec), ":%sh", shortopts);
	opterr = 0;
	ch = getopt_long(argc, argv, spec, longopts, NULL);
	if (ch == '?' || ch == ':') {
		cli_bad_option(c, argv);
		return -2;
	}
	return ch;
}

static const struct option parse_opts[] = {
    {"json", no_argument, NULL, 'J'},
    {"branch", required_argument, NULL, 'b'},
    {"all", no_argument, NULL, 'a'},
    {"stat", no_argument, NULL, 'S'},
    {"recursive", no_argument, NULL, 'R'},
    {"message", required_argument, NULL, 'm'},
    {"allow-empty", no_argument, NULL, 'E'},
    {"delete", optional_argument, NULL, 'd'},
    {"jobs", required_argument, NULL, 'j'},
    {"checksum", no_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Which OPT_* bit an option character needs. */
static unsigned opt_bit(int ch, bool long_delete)
{
	switch (ch) {
	case 'J':
		return OPT_JSON;
	case 'b':
		return OPT_BRANCH;
	case 'a':
		return OPT_ALL;
	case 'S':
		return OPT_STAT;
	case 'l':
		return OPT_LONG;
	case 'R':
		return OPT_RECURSIVE;
	case 'm':
		return OPT_MESSAGE;
	case 'E':
		return OPT_ALLOW_EMPTY;
	case 'd':
		return long_delete ? OPT_MIRROR | OPT_DELETE_NAME
		                   : OPT_DELETE_NAME;
	case 'j':
		return OPT_JOBS;
	case 'C':
		return OPT_CHECKSUM;
	default:
		return 0;
	}
}

static int parse_one(struct cli *c, int ch, unsigned accept, struct cli_opts *o)
{
	char *end;
	long v;

	switch (ch) {
	case 'J':
		o->json = true;
		break;
	case 'b':
		o->branch = optarg;
		break;
	case 'a':
		o->all = true;
		break;
	case 'S':
		o->stat = true;
		break;
	case 'l':
		o->long_ = true;
		break;
	case 'R':
		o->recursive = true;
		break;
	case 'm':
		o->message = optarg;
		break;
	case 'E':
		o->allow_empty = true;
		break;
	case 'd':
		/* import's --delete is a flag; branch/tag's takes a NAME */
		if (accept & OPT_MIRROR) {
			if (optarg)
				return cli_usage(c, "--delete takes no value");
			o->mirror = true;
		} else if (!optarg) {
			return cli_usage(c, "--delete needs a NAME");
		} else {
			o->delete_name = optarg;
		}
		break;
	case 'j':
		v = strtol(optarg, &end, 10);
		if (*end || end == optarg || v < 1 || v > 1024)
			return cli_usage(c, "bad --jobs '%s' (1..1024)",
			                 optarg);
		o->jobs = (int)v;
		break;
	case 'C':
		o->checksum = true;
		break;
	}
	return 0;
}

int cli_parse(struct cli *c, int argc, char **argv, unsigned accept,
              struct cli_opts *o)
{
	char shortopts[32] = "";
	int ch, rc;

	memset(o, 0, sizeof(*o));
	strcat(shortopts, accept & OPT_BRANCH ? "b:" : "");
	strcat(shortopts, accept & OPT_ALL ? "a" : "");
	strcat(shortopts, accept & OPT_LONG ? "l" : "");
	strcat(shortopts, accept & OPT_RECURSIVE ? "R" : "");
	strcat(shortopts, accept & OPT_MESSAGE ? "m:" : "");
	strcat(shortopts, accept & OPT_DELETE_NAME ? "d:" : "");
	strcat(shortopts, accept & OPT_JOBS ? "j:" : "");
	while ((ch = cli_getopt(c, argc, argv, shortopts, parse_opts)) != -1) {
		if (ch == -2)
			return EXIT_USAGE;
		if (ch == 'h')
			return cli_show_help(c);
		/* A long option this command does not take. */
		if (!(opt_bit(ch, true) & accept))
			return cli_usage(c,
			                 "option '%s' is not valid here "
			                 "(see --help)",
			                 argv[optind - 1]);
		/* "--delete NAME" (optional_argument only sees "=NAME") */
		if (ch == 'd' && !optarg && !(accept & OPT_MIRROR) &&
		    optind < argc)
			optarg = argv[optind++];
		rc = parse_one(c, ch, accept, o);
		if (rc)
			return rc;
	}
	return 0;
}

const struct cli_cmd *cli_find_cmd(const char *name)
{
	for (const struct cli_cmd *k = cli_cmds; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

int cli_help_cmd(const struct cli_cmd *cmd)
{
	printf("usage: mavctl [-R REPO] %s\n\n%s\n", cmd->usage, cmd->summary);
	if (cmd->help)
		printf("\n%s", cmd->help);
	printf("\n  -h, --help  show this help\n");
	return EXIT_OK;
}

int cli_show_help(struct cli *c)
{
	cli_help_cmd(cli_find_cmd(c->cmd));
	return CLI_HELP_DONE;
}

/* ---- finding the repository ---- */

/* Decode mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
		    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
			              (p[3] - '0'));
			p += 3;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
}

/* Fields of one mountinfo line: mount point (5th) and, after the "-"
 * separator, the type and the source. */
static bool parse_mountinfo(char *line, char **mnt, char **type, char **src)
{
	char *save = NULL, *tok;
	int i = 0;
	bool dash = false;

	*mnt = *type = *src = NULL;
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), i++) {
		if (i == 4)
			*mnt = tok;
		else if (i > 5 && !dash && strcmp(tok, "-") == 0)
			dash = true;
		else if (dash && !*type)
			*type = tok;
		else if (dash && !*src)
			*src = tok;
	}
	return *mnt && *type && *src;
}

/* Is path at or below dir? Returns the rest (after '/') or NULL. */
static const char *below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path + 1;
	if (strncmp(path, dir, n) != 0)
		return NULL;
	if (path[n] == '\0')
		return path + n;
	return path[n] == '/' ? path + n + 1 : NULL;
}

/* The innermost fuse.mavfs mount holding the working directory: sets
 * c->mountpoint and c->mount_branch, returns its source (malloc'd). */
static char *locate_mount(struct cli *c)
{
	char cwd[PATH_MAX], *line = NULL, *mnt, *type, *src, *msrc = NULL;
	const char *rest;
	size_t cap = 0, best = 0, n;
	FILE *f;

	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0) {
		if (!parse_mountinfo(line, &mnt, &type, &src) ||
		    strcmp(type, "fuse.mavfs") != 0)
			continue;
		unescape_octal(mnt);
		unescape_octal(src);
		rest = below(cwd, mnt);
		if (!rest || (msrc && strlen(mnt) < best))
			continue;
		best = strlen(mnt);
		free(c->mountpoint);
		free(c->mount_branch);
		free(msrc);
		c->mountpoint = strdup(mnt);
		msrc = strdup(src);
		n = strcspn(rest, "/");
		/* "@v3", "@main": read-only views, not a branch. */
		c->mount_branch =
		    n > 0 && rest[0] != '@' ? strndup(rest, n) : NULL;
	}
	free(line);
	fclose(f);
	return msrc;
}

void cli_locate(struct cli *c)
{
	char abs[PATH_MAX], mabs[PATH_MAX];
	const char *env = getenv("MAV_REPO");
	char *msrc;

	if (!c->repo && env && *env)
		c->repo = strdup(env);
	c->repo_explicit = c->repo != NULL;
	if (c->repo && realpath(c->repo, abs)) {
		free(c->repo);
		c->repo = strdup(abs);
	}
	msrc = locate_mount(c);
	if (msrc && !c->repo) {
		c->repo = msrc;
		return;
	}
	/* A mount of another repository says nothing about the branch. */
	if (msrc && !(realpath(msrc, mabs) && strcmp(mabs, c->repo) == 0)) {
		free(c->mountpoint);
		free(c->mount_branch);
		c->mountpoint = c->mount_branch = NULL;
	}
	free(msrc);
}

const char *cli_repo(struct cli *c, int *exit_code)
{
	if (c->repo)
		return c->repo;
	*exit_code = cli_error(c, MAV_ENOTREPO,
	                       "not a mav repository (use -R REPO, set "
	                       "MAV_REPO, or run inside a mav mount)");
	return NULL;
}

const char *cli_default_branch(const struct cli *c)
{
	return c->mount_branch ? c->mount_branch : "main";
}

void cli_fini(struct cli *c)
{
	free(c->repo);
	free(c->mountpoint);
	free(c->mount_branch);
}

/* ---- opening ---- */

static int need_repo(struct cli *c)
{
	if (c->repo)
		return 0;
	return mav_error_set(MAV_ENOTREPO,
	                     "not a mav repository (use -R REPO, set MAV_REPO, "
	                     "or run inside a mav mount)");
}

int cli_open_ro(struct cli *c, struct mav_repo **out)
{
	struct mav_repo_options opt = {0};
	int rc = need_repo(c);

	*out = NULL;
	if (rc)
		return rc;
	mav_error_clear();
	rc = mav_repo_open(out, c->repo, &opt);
	if (rc == MAV_ELOCKED) {
		opt.secondary = true;
		mav_error_clear();
		rc = mav_repo_open(out, c->repo, &opt);
	}
	return rc;
}

static bool daemon_listening(const char *repo)
{
	int fd = -1;

	if (mav_rpc_connect(&fd, repo) != 0)
		return false;
	close(fd);
	return true;
}

int cli_open_rw(struct cli *c, struct mav_repo **out, bool *daemon)
{
	struct mav_repo_options opt = {0};
	int rc = need_repo(c);

	*out = NULL;
	*daemon = false;
	if (rc)
		return rc;
	if (daemon_listening(c->repo)) {
		*daemon = true;
		return 0;
	}
	mav_error_clear();
	rc = mav_repo_open(out, c->repo, &opt);
	if (rc != MAV_ELOCKED)
		return rc;
	/* A daemon may be starting up: give its socket a moment. */
	for (int i = 0; i < 20; i++) {
		usleep(50 * 1000);
		if (daemon_listening(c->repo)) {
			*daemon = true;
			return 0;
		}
	}
	return mav_error_set(MAV_ELOCKED,
	                     "repository %s is in use by another "
	                     "process (and no daemon answers)",
	                     c->repo);
}

int cli_rpc(struct cli *c, struct mav_rpc_msg *reply, const char *op, ...)
{
	struct mav_rpc_msg req = {0};
	const char *a;
	va_list ap;
	int rc;

	memset(reply, 0, sizeof(*reply));
	rc = mav_rpc_msg_add(&req, op, strlen(op));
	va_start(ap, op);
	while (rc == 0 && (a = va_arg(ap, const char *)))
		rc = mav_rpc_msg_add(&req, a, strlen(a));
	va_end(ap);
	if (rc == 0) {
		mav_error_clear();
		rc = mav_rpc_call(reply, c->repo, &req);
	}
	mav_rpc_msg_free(&req);
	if (rc)
		return rc;
	if (reply->n < 2)
		return mav_error_set(-EPROTO, "daemon sent a malformed reply");
	rc = (int)strtol(reply->s[0], NULL, 10);
	if (rc > 0)
		rc = -rc;
	if (rc)
		mav_error_set(rc, "%s",
		              reply->s[1][0] ? reply->s[1]
		                             : mav_error_name(rc));
	return rc;
}

unsigned cli_rpc_nresults(const struct mav_rpc_msg *reply)
{
	return reply->n >= 2 ? reply->n - 2 : 0;
}

const char *cli_rpc_result(const struct mav_rpc_msg *reply, unsigned i,
                           size_t *len)
{
	if (len)
		*len = reply->len[i + 2];
	return reply->s[i + 2];
}

/* ---- revisions ---- */

int cli_rev(struct cli *c, mav_id *out, struct mav_repo *r, const char *rev)
{
	int rc;

	(void)c;
	mav_error_clear();
	rc = mav_rev_parse(out, r, rev);
	if (rc && !*mav_error_message())
		mav_error_set(rc, "unknown revision '%s'", rev);
	if (rc == 0 && mav_id_is_zero(out))
		rc = mav_error_set(MAV_ENOTFOUND,
		                   "revision '%s' has no snapshot yet", rev);
	return rc;
}

int cli_branch_head(mav_id *out, struct mav_repo *r, const char *branch)
{
	char ref[512];
	int rc;

	if (snprintf(ref, sizeof(ref), "b/%s", branch) >= (int)sizeof(ref))
		return mav_error_set(MAV_EINVAL, "branch name too long");
	mav_error_clear();
	rc = mav_ref_get(out, r, ref);
	if (rc == MAV_ENOTFOUND)
		mav_error_set(rc, "no such branch '%s'", branch);
	return rc;
}

const char *cli_author(void)
{
	const char *a = getenv("MAV_AUTHOR");
	struct passwd *pw;

	if (a && *a)
		return a;
	pw = getpwuid(geteuid());
	return pw && pw->pw_name ? pw->pw_name : "unknown";
}

int cli_parse_size(unsigned long long *out, const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return MAV_EINVAL;
	v = strtoull(s, &end, 10);
	if (errno)
		return MAV_EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		return MAV_EINVAL;
	}
	if (*end) {
		end++;
		if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
			end += strlen(end);
		if (*end)
			return MAV_EINVAL;
	}
	if (shift && v > (~0ull >> shift))
		return MAV_EINVAL;
	*out = v << shift;
	return 0;
}
