/* tree.h - reading snapshots for ls, cat and export: "REV[:PATH]" to an
 * entry, and blob contents to a file descriptor.
 *
 * Trees come from the repository's shared cache (mav_repo_tree_find: the
 * tree, or the page of a big one, holding the name) and stay valid until
 * tree_node_release(); a node borrows its tree.
 */
#ifndef MAVCTL_TREE_H
#define MAVCTL_TREE_H

#include <stdint.h>

#include <mav/object.h>
#include <mav/repo.h>

#include "cli.h"

/* One resolved name: either the root directory of a commit (e == NULL, id
 * its tree) or entry e of a held tree. */
struct tree_node {
	const struct mav_tree *holder; /* tree holding e (release it) */
	const struct mav_entry *e;     /* NULL for the root */
	mav_id id;                     /* tree id (dir) or blob id (file) */
	uint8_t type;
	struct mav_commit *commit;
};

/* Split "REV[:PATH]" and resolve. PATH may be empty, "/" or "a/b". */
int tree_resolve(struct cli *c, struct tree_node *out, struct mav_repo *r,
                 const char *spec);
void tree_node_release(struct mav_repo *r, struct tree_node *n);

/* Write bytes [off, off+len) of blob id to fd (len UINT64_MAX: to the
 * end). With sparse set, runs of zeros are skipped with lseek (fd must be a
 * regular file that the caller truncates to the size afterwards). */
int tree_write_blob(struct mav_repo *r, const mav_id *id, int fd, uint64_t off,
                    uint64_t len, bool sparse);

#endif
