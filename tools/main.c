/* main.c - mavctl: the command table, global options and dispatch.
 *
 * `mavctl [-R REPO] COMMAND [ARGS]`. Global options stop at the command
 * name; each command parses its own options (GNU getopt, so options may
 * follow operands) and returns an exit status from enum cli_exit.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mav/error.h>

#include "cli.h"

#define JSON_HELP "  --json      one JSON document on stdout\n"

const struct cli_cmd cli_cmds[] = {
    {"init", cmd_init,
     "init [PATH] [--chunk-min N] [--chunk-avg N] "
     "[--chunk-max N] [--zstd-level N] [--reserve SIZE]",
     "Create a repository (at PATH, -R or $MAV_REPO) with branch main.",
     "  --chunk-min SIZE   smallest chunk (default 16K)\n"
     "  --chunk-avg SIZE   average chunk, a power of two (default 64K)\n"
     "  --chunk-max SIZE   largest chunk (default 256K)\n"
     "  --zstd-level N     zstd level 1..19, 0 stores raw (default 3)\n"
     "  --reserve SIZE     free space kept on the disk: writes that would\n"
     "                     eat into it fail with \"no space\" (default 64M)\n"
     "Sizes take K, M or G suffixes (powers of 1024).\n"},
    {"import", cmd_import, "import SRC [--branch B] [--delete] [-j N]",
     "Copy a directory tree into a branch's working tree, in parallel.",
     "  -b, --branch B   target branch (default: the mount's or main)\n"
     "  --delete         make the working tree an exact mirror of SRC\n"
     "  -j, --jobs N     reader threads (default: one per core, plus one)\n"
     "  --checksum       read every file, even if size and mtime match\n"
     "Symlinks are imported as symlinks, hard links as hard links, user.*\n"
     "xattrs, modes, owners and mtimes are kept. While the repository is\n"
     "mounted the copy goes through MOUNTPOINT/BRANCH.\n"},
    {"snapshot", cmd_snapshot, "snapshot [-m MSG] [--branch B] [--allow-empty]",
     "Freeze the working tree as the next version; prints \"vN <commit>\".",
     "  -m, --message MSG  snapshot message\n"
     "  -b, --branch B     branch (default: the mount's or main)\n"
     "  --allow-empty      snapshot even if nothing changed\n"
     "The author is $MAV_AUTHOR or the login name.\n"},
    {"status", cmd_status, "status [--branch B] [--json]",
     "List changes of the working tree since its last snapshot.",
     "  -b, --branch B   branch\n" JSON_HELP
     "Lines are \"A path\" (added), \"M path\" (modified), \"D path\".\n"},
    {"log", cmd_log, "log [--branch B | --all] [--json]",
     "List versions, newest first.",
     "  -b, --branch B   follow branch B's history (default)\n"
     "  -a, --all        every version of every branch\n" JSON_HELP},
    {"show", cmd_show, "show REV [--json]",
     "Show a commit and a diff --stat against its first parent.", JSON_HELP},
    {"ls", cmd_ls, "ls REV[:PATH] [-l] [-R] [--json]",
     "List a directory of a version.",
     "  -l          long listing: mode, size, mtime\n"
     "  -R          recursive\n" JSON_HELP},
    {"cat", cmd_cat, "cat REV:PATH [--offset N] [--length N]",
     "Write a file of a version to standard output (raw bytes).",
     "  --offset N  start at byte N (K, M, G suffixes)\n"
     "  --length N  write at most N bytes\n"},
    {"export", cmd_export, "export REV DEST",
     "Write a version out as plain files (DEST must be absent or empty).",
     "Keeps modes, mtimes, symlinks, hard links and user.* xattrs (owners\n"
     "too when run as root). Runs of zeros become holes.\n"},
    {"diff", cmd_diff, "diff REV1 REV2 [--stat] [--json]",
     "Compare two versions.",
     "  --stat      totals only: files added/removed/modified/renamed\n"
     "              and bytes\n" JSON_HELP
     "Lines: \"A path (size)\", \"D path (size)\", \"M path (old -> new)\",\n"
     "\"R old -> new (size)\".\n"},
    {"branch", cmd_branch, "branch [NAME [REV]] [-d NAME] [--json]",
     "List branches, create NAME at REV (default: the current branch's "
     "last snapshot), or delete one.",
     "  -d, --delete NAME  delete branch NAME and its working "
     "tree\n" JSON_HELP},
    {"tag", cmd_tag, "tag [NAME [REV]] [-d NAME] [--json]",
     "List tags, tag REV (default: the current branch's last snapshot) as "
     "NAME, or delete one.",
     "  -d, --delete NAME  delete tag NAME\n" JSON_HELP},
    {"reset", cmd_reset, "reset REV [--branch B]",
     "Drop the working tree's changes and move the branch to REV.",
     "  -b, --branch B   branch\n"},
    {"du", cmd_du, "du [REV] [--json]",
     "Space used: logical vs unique vs stored bytes (all versions, or REV).",
     JSON_HELP},
    {"fsck", cmd_fsck, "fsck [--json]",
     "Verify every ref, object and chunk; exit 6 listing problems.", JSON_HELP},
    {"gc", cmd_gc, "gc [--json]",
     "Delete chunks and objects nothing refers to; report what was freed.",
     JSON_HELP},
    {"mount", cmd_mount, "mount MOUNTPOINT [-o OPTS]",
     "Mount the repository (runs mavfs REPO MOUNTPOINT -o OPTS).",
     "  -o OPTS     options passed to mavfs\n"},
    {"umount", cmd_umount, "umount MOUNTPOINT",
     "Unmount a mav mount (fusermount3 -u).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void usage_main(FILE *f)
{
	fputs("usage: mavctl [-R REPO] COMMAND [ARGS]\n"
	      "\n"
	      "Versioned asset trees: import, snapshot, compare, export.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (const struct cli_cmd *k = cli_cmds; k->name; k++)
		fprintf(f, "  %-9s %s\n", k->name, k->summary);
	fputs(
	    "\n"
	    "Options:\n"
	    "  -R, --repo REPO  the repository; else $MAV_REPO; else the mav\n"
	    "                   mount holding the current directory (whose\n"
	    "                   first path component is the default branch)\n"
	    "  -h, --help       this help; `mavctl COMMAND --help` for one "
	    "command\n"
	    "\n"
	    "Revisions (REV): vN, a tag, a branch (its last snapshot), or a\n"
	    "commit-id prefix of at least 4 hex digits.\n"
	    "\n"
	    "JSON (--json): one document on stdout. Strings escape '\"', "
	    "'\\',\n"
	    "control characters, and each byte that is not valid UTF-8 as\n"
	    "\\u00XX (the byte's value; so such bytes are not distinguishable\n"
	    "from the characters U+0080..U+00FF).\n"
	    "\n"
	    "Exit status:\n"
	    "  0  success\n"
	    "  1  generic failure\n"
	    "  2  usage error (bad option, argument or name)\n"
	    "  3  not a repository\n"
	    "  4  not found: no such path, branch, tag or revision; bad "
	    "revision\n"
	    "  5  repository locked or busy\n"
	    "  6  corrupt data (fsck found problems)\n"
	    "  7  no space left\n"
	    "  8  conflict: concurrent update, name already exists\n"
	    "Errors are one line on stderr: \"mavctl: COMMAND: message\".\n",
	    f);
}

static int parse_global(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:R:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'R':
			free(c->repo);
			c->repo = strdup(optarg);
			break;
		case 'h':
			usage_main(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(c, argv);
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct cli c = {.exe_path = argv[0]};
	const struct cli_cmd *cmd;
	int rc;

	/* An import's workers and RocksDB's threads each took a malloc arena
	 * (up to 16 on 2 cores), and memory freed in one stayed there: peak
	 * RSS importing the 1.5G dataset 113-117 MiB, with 2 arenas 95-99 MiB
	 * (200M dataset: 79-91, 75-84), no slower. */
	mallopt(M_ARENA_MAX, 2);
	rc = parse_global(&c, argc, argv);
	if (rc >= 0)
		goto out;
	if (optind >= argc) {
		rc = cli_usage(&c, "no command given (see mavctl --help)");
		goto out;
	}
	if (strcmp(argv[optind], "help") == 0) {
		cmd = optind + 1 < argc ? cli_find_cmd(argv[optind + 1]) : NULL;
		rc = cmd ? cli_help_cmd(cmd) : (usage_main(stdout), EXIT_OK);
		goto out;
	}
	cmd = cli_find_cmd(argv[optind]);
	if (!cmd) {
		rc = cli_usage(&c, "unknown command '%s' (see mavctl --help)",
		               argv[optind]);
		goto out;
	}
	c.cmd = cmd->name;
	cli_locate(&c);
	argv += optind;
	argc -= optind;
	optind = 0; /* glibc: fully reinitialise getopt for the command */
	rc = cmd->fn(&c, argc, argv);
out:
	cli_fini(&c);
	return rc;
}
