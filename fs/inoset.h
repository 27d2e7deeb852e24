/* inoset.h - a counted set of inode numbers (open addressing).
 *
 * The daemon records which inodes of a working tree the kernel holds, and
 * how many lookups of each, so it can invalidate exactly those when the
 * tree changes under the kernel (reset, branch deletion). Not thread-safe:
 * the owner's lock guards it. Memory follows the kernel's inode cache.
 */
#ifndef MAVFS_INOSET_H
#define MAVFS_INOSET_H

#include <stddef.h>
#include <stdint.h>

struct mavfs_inoset;

int mavfs_inoset_new(struct mavfs_inoset **out);
void mavfs_inoset_free(struct mavfs_inoset *s); /* NULL is a no-op */
/* Add n to ino's count; -ENOMEM if the table cannot grow. */
int mavfs_inoset_add(struct mavfs_inoset *s, uint64_t ino, uint64_t n);
/* Subtract n (saturating); the entry goes when it reaches zero. */
void mavfs_inoset_sub(struct mavfs_inoset *s, uint64_t ino, uint64_t n);
size_t mavfs_inoset_count(const struct mavfs_inoset *s);
/* Copy up to cap inode numbers into out; returns how many were copied. */
size_t mavfs_inoset_list(const struct mavfs_inoset *s, uint64_t *out,
                         size_t cap);

#endif
