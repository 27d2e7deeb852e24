/* progress.h - a one-line progress bar on stderr.
 *
 * Shown only when stderr is a terminal. Counters are atomics that any thread
 * may bump; a background thread redraws the line a few times a second with
 * items done (of seen so far, when the caller counts them ahead), bytes and
 * throughput. progress_stop() draws the final state and ends the line.
 */
#ifndef MAVCTL_PROGRESS_H
#define MAVCTL_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct progress {
	bool on;
	bool thread_started;
	atomic_bool stop;
	atomic_uint_fast64_t files_seen, files_done, bytes_done;
	int64_t start_ns;
	pthread_t thread;
	pthread_mutex_t mu; /* guards cond for the wakeup to stop */
	pthread_cond_t cond;
	const char *label, *unit; /* "import", "files" */
};

void progress_start(struct progress *p, const char *label, const char *unit);
void progress_seen(struct progress *p, uint64_t files);
void progress_done(struct progress *p, uint64_t files, uint64_t bytes);
void progress_stop(struct progress *p);

/* Monotonic clock in nanoseconds. */
int64_t progress_now_ns(void);

#endif
