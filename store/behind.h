/* behind.h - write-behind for append streams.
 *
 * A writer taking a stream's bytes one FUSE write at a time makes the
 * kernel wait while each write is cut, hashed and stored, so a copy runs on
 * one core at a time: the copying program, then the daemon. Instead a
 * stream copies each write into a job and returns; a small pool of feeder
 * threads (one per working tree, started with its first stream) cuts and
 * stores the jobs, each stream's in order and by one thread at a time, and
 * different streams side by side. The jobs of all streams together hold at
 * most BEHIND_MAX bytes: a put waits for room.
 *
 * A feeder that has fed all of a stream's jobs settles its writer
 * (mav_writer_settle): a copy writes a small file in one or two writes,
 * and the file is then sealed much later, so its chunks are stored beside
 * the copy rather than held in memory until then.
 *
 * A feeder's failure is kept and returned by the stream's next put or
 * drain, as a failed writeback is reported at the next write or fsync.
 * Whoever uses the writer directly (to finish the stream, to feed it bytes
 * out of band, or to ask what it holds) drains first.
 *
 * Locking: the pool's lock guards every queue, count and flag; a feeder
 * calls the writer outside it, and only for a stream it has marked busy.
 */
#ifndef MAV_BEHIND_H
#define MAV_BEHIND_H

#include <stddef.h>

#include "mav/repo.h"

struct behind_pool;
struct behind;

/* A pool of feeders, one per online CPU (at most 4). */
int mav_behind_pool_new(struct behind_pool **out);
/* Stops the feeders; every stream must be freed first. NULL is a no-op. */
void mav_behind_pool_free(struct behind_pool *p);

/* Write-behind for w (which stays the caller's to free, after this). */
int mav_behind_start(struct behind **out, struct behind_pool *p,
                     struct mav_writer *w);
/* Copy len bytes into a job for the feeders. The stream's failure, if any. */
int mav_behind_put(struct behind *bh, const void *data, size_t len);
/* Feed everything put so far and wait for it: the writer is the caller's
 * again until the next put. The stream's failure, if any. */
int mav_behind_drain(struct behind *bh);
/* Bytes held for the stream: jobs not yet fed, plus what the writer held
 * when a feeder last left it. */
size_t mav_behind_held(struct behind *bh);
/* Drop what is not fed yet, wait for a feeder still using the writer, and
 * free. NULL is a no-op. */
void mav_behind_free(struct behind *bh);

#endif
