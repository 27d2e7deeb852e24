/* behind.h - write-behind for a big append stream.
 *
 * A writer taking a stream's bytes one FUSE write at a time makes the
 * kernel wait while each write is cut, hashed and stored. Past a few MiB a
 * stream instead copies each write into a buffer and returns; a feeder
 * thread of its own cuts and stores full buffers (two of BEHIND_BUF bytes:
 * one filling while the other is fed). A failure of the feeder is kept
 * and returned by the next put or drain, as a failed writeback is reported
 * at the next write or fsync. Whoever uses the writer directly (to finish
 * the stream, or to feed it bytes out of band) drains first.
 *
 * Locking: bh->lock guards the buffers' counts, the stop flag and the
 * failure; the feeder calls the writer outside it.
 */
#ifndef MAV_BEHIND_H
#define MAV_BEHIND_H

#include <stddef.h>

#include "mav/repo.h"

struct behind;

/* Start a feeder for w (which stays the caller's to free, after this). */
int mav_behind_start(struct behind **out, struct mav_writer *w);
/* Copy len bytes in, handing a full buffer to the feeder (waiting while
 * it still feeds the other). The feeder's failure, if any. */
int mav_behind_put(struct behind *bh, const void *data, size_t len);
/* Feed everything put so far and wait for it: the writer is the caller's
 * again until the next put. The feeder's failure, if any. */
int mav_behind_drain(struct behind *bh);
/* Stop the feeder (after the buffer it is feeding). NULL is a no-op. */
void mav_behind_free(struct behind *bh);

#endif
