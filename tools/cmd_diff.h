/* cmd_diff.h - comparing two trees: the diff command and the --stat totals
 * that `show` reuses.
 */
#ifndef MAVCTL_CMD_DIFF_H
#define MAVCTL_CMD_DIFF_H

#include <stdint.h>

#include <mav/maint.h>

#include "out.h"

/* Totals over files (symlinks count as files; directories are counted
 * apart and not in the file totals). */
struct diff_stat {
	uint64_t added, removed, modified, renamed;
	uint64_t dirs_added, dirs_removed;
	uint64_t bytes_added;          /* sizes of added files */
	uint64_t bytes_removed;        /* sizes of removed files */
	uint64_t bytes_old, bytes_new; /* modified files before and after */
	uint64_t bytes_renamed;
};

void diff_stat_add(struct diff_stat *s, const struct mav_change *ch);
/* Run mav_diff and total it. */
int diff_stat_trees(struct diff_stat *s, struct mav_repo *r, const mav_id *a,
                    const mav_id *b);
void diff_stat_print(const struct diff_stat *s);
/* Writes "stat": {...} into an open object. */
void diff_stat_json(struct json *j, const struct diff_stat *s);

#endif
