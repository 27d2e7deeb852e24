/* cli.h - what every mavctl command shares: the invocation context, the
 * command table, exit codes, finding and opening the repository, talking to
 * a running daemon.
 *
 * Ownership: struct cli is owned by main() and lives for the whole run; the
 * strings in it are malloc'd and freed by cli_fini(). Commands borrow it.
 *
 * Errors: a command returns an exit status (enum cli_exit). On failure it
 * prints exactly one line on stderr through cli_fail()/cli_error()/
 * cli_usage(): "mavctl: <command>: <message>".
 */
#ifndef MAVCTL_CLI_H
#define MAVCTL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <mav/id.h>
#include <mav/repo.h>
#include <mav/rpc.h>

/* Exit statuses, one per class of failure (documented in `mavctl --help`). */
enum cli_exit {
	EXIT_OK = 0,
	EXIT_GENERIC = 1,
	EXIT_USAGE = 2,
	EXIT_NOTREPO = 3,
	EXIT_NOTFOUND = 4, /* no such path, ref or revision; bad revision */
	EXIT_LOCKED = 5,   /* repository held by another process, busy */
	EXIT_CORRUPT = 6,  /* stored data failed a check; fsck found problems */
	EXIT_NOSPACE = 7,
	EXIT_CONFLICT = 8, /* concurrent ref update lost, name already taken */
};

struct cli {
	const char *cmd;      /* current command name, for messages */
	char *repo;           /* repository path (absolute when known) */
	bool repo_explicit;   /* from -R or MAV_REPO */
	char *mountpoint;     /* mav mount containing cwd, or NULL */
	char *mount_branch;   /* first component of cwd below it, or NULL */
	const char *exe_path; /* argv[0] */
};

struct cli_cmd {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *usage;   /* "ls REV[:PATH] [-l] [-R] [--json]" */
	const char *summary; /* one line */
	const char *help;    /* option lines, may be NULL */
};

extern const struct cli_cmd cli_cmds[];

/* ---- exit codes and messages ---- */

/* Exit status for a library return code (0 -> EXIT_OK). */
int cli_exit_code(int rc);
/* Print "mavctl: cmd: <mav_error_message() or the code's name>", return the
 * exit status for rc. */
int cli_fail(struct cli *c, int rc);
/* End a listing command: rc is its walk's result; on success close the
 * JSON array and object opened for the list (j non-NULL) and flush stdout.
 * The exit status. */
struct json;
int cli_end_listing(struct cli *c, struct json *j, int rc);
/* Print "mavctl: cmd: <formatted text>", return the exit status for rc. */
int cli_error(struct cli *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Usage error: print the line, return EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report the option getopt_long() just rejected (returns EXIT_USAGE). */
int cli_bad_option(struct cli *c, char **argv);
/* Print the command's help on stdout; returns EXIT_OK. */
int cli_help_cmd(const struct cli_cmd *cmd);
/* Option parsers return CLI_HELP_DONE after printing --help: the command
 * then exits 0 (cli_opt_exit maps it). */
#define CLI_HELP_DONE (-1)
int cli_show_help(struct cli *c); /* help of c->cmd; returns CLI_HELP_DONE */
static inline int cli_opt_exit(int rc)
{
	return rc == CLI_HELP_DONE ? EXIT_OK : rc;
}
const struct cli_cmd *cli_find_cmd(const char *name);

/* Standard option parsing: getopt_long() with our own messages. Every
 * command accepts --help (returns 'h'). Returns like getopt_long(), with -2
 * after reporting a bad option (the command returns EXIT_USAGE). */
int cli_getopt(struct cli *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* The options commands share. Each command says which it accepts (OPT_*
 * bits); cli_parse() fills the struct and leaves optind at the operands.
 * Returns 0, CLI_HELP_DONE, or EXIT_USAGE after reporting. */
enum {
	OPT_JSON = 1 << 0,        /* --json */
	OPT_BRANCH = 1 << 1,      /* -b/--branch B */
	OPT_ALL = 1 << 2,         /* -a/--all */
	OPT_STAT = 1 << 3,        /* --stat */
	OPT_LONG = 1 << 4,        /* -l */
	OPT_RECURSIVE = 1 << 5,   /* -R/--recursive */
	OPT_MESSAGE = 1 << 6,     /* -m/--message MSG */
	OPT_ALLOW_EMPTY = 1 << 7, /* --allow-empty */
	OPT_DELETE_NAME = 1 << 8, /* -d/--delete NAME */
	OPT_MIRROR = 1 << 9,      /* --delete (import) */
	OPT_JOBS = 1 << 10,       /* -j/--jobs N */
	OPT_CHECKSUM = 1 << 11,   /* --checksum */
};

struct cli_opts {
	bool json, all, stat, long_, recursive, allow_empty, mirror, checksum;
	const char *branch, *message, *delete_name;
	int jobs; /* 0 = default */
};

int cli_parse(struct cli *c, int argc, char **argv, unsigned accept,
              struct cli_opts *o);

/* ---- finding the repository ---- */

/* Locate the repository from -R, MAV_REPO or a mav mount holding the cwd. */
void cli_locate(struct cli *c);
/* The repository path, or print "not a mav repository" and return NULL. */
const char *cli_repo(struct cli *c, int *exit_code);
/* Branch to use when --branch is not given: the mount's branch or "main". */
const char *cli_default_branch(const struct cli *c);
void cli_fini(struct cli *c);

/* ---- opening it ---- */

/* Open for reading: as the writer if nobody holds the repository, else as a
 * RocksDB secondary beside the daemon. */
int cli_open_ro(struct cli *c, struct mav_repo **out);
/* For state-changing commands: *daemon = true when a daemon holds the
 * repository (then *out is NULL and the command uses cli_rpc), else *out is
 * the repository opened for writing. */
int cli_open_rw(struct cli *c, struct mav_repo **out, bool *daemon);

/* Call the daemon: op followed by NULL-terminated string arguments. On
 * success reply holds [code, message, results...]; returns the operation's
 * code (0 or negative, with its message set as the error message). */
int cli_rpc(struct cli *c, struct mav_rpc_msg *reply, const char *op, ...)
    __attribute__((sentinel));
/* Number of results in a reply and the i-th one. */
unsigned cli_rpc_nresults(const struct mav_rpc_msg *reply);
const char *cli_rpc_result(const struct mav_rpc_msg *reply, unsigned i,
                           size_t *len);

/* ---- revisions ---- */

/* Resolve REV to a commit id (mav_rev_parse), with a message naming REV. */
int cli_rev(struct cli *c, mav_id *out, struct mav_repo *r, const char *rev);
/* The commit a branch points at (zero id: no snapshot yet). */
int cli_branch_head(mav_id *out, struct mav_repo *r, const char *branch);

/* Author name for snapshots: $MAV_AUTHOR, else the login name. */
const char *cli_author(void);

/* Parse sizes like "16K", "64KiB", "1M", "4096". */
int cli_parse_size(unsigned long long *out, const char *s);

/* ---- the commands (one file per group) ---- */

/* cmd_repo.c */
int cmd_init(struct cli *c, int argc, char **argv);
int cmd_du(struct cli *c, int argc, char **argv);
int cmd_fsck(struct cli *c, int argc, char **argv);
int cmd_gc(struct cli *c, int argc, char **argv);
int cmd_mount(struct cli *c, int argc, char **argv);
int cmd_umount(struct cli *c, int argc, char **argv);
/* cmd_snap.c */
int cmd_snapshot(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_log(struct cli *c, int argc, char **argv);
int cmd_show(struct cli *c, int argc, char **argv);
int cmd_reset(struct cli *c, int argc, char **argv);
/* cmd_refs.c */
int cmd_branch(struct cli *c, int argc, char **argv);
int cmd_tag(struct cli *c, int argc, char **argv);
/* cmd_tree.c */
int cmd_ls(struct cli *c, int argc, char **argv);
int cmd_cat(struct cli *c, int argc, char **argv);
/* cmd_export.c */
int cmd_export(struct cli *c, int argc, char **argv);
/* cmd_diff.c */
int cmd_diff(struct cli *c, int argc, char **argv);
/* cmd_import.c */
int cmd_import(struct cli *c, int argc, char **argv);

#endif
