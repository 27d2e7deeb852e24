/* progress.c - redraws "label: files n/m, bytes, MB/s" with \r on a tty.
 *
 * The redraw thread sleeps on a condition variable so progress_stop() ends
 * it at once instead of waiting out a tick.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "out.h"
#include "progress.h"

#define TICK_NS (250 * 1000 * 1000)

int64_t progress_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void draw(struct progress *p, bool final)
{
	uint64_t seen = atomic_load(&p->files_seen);
	uint64_t done = atomic_load(&p->files_done);
	uint64_t bytes = atomic_load(&p->bytes_done);
	double secs = (double)(progress_now_ns() - p->start_ns) / 1e9;
	char sz[OUT_SIZE_LEN];

	if (secs <= 0)
		secs = 1e-9;
	fprintf(stderr, "\r%s: %" PRIu64, p->label, done);
	if (seen)
		fprintf(stderr, "/%" PRIu64, seen);
	fprintf(stderr, " %s, %s, %.1f MB/s, %.0fs\033[K%s", p->unit,
	        out_size(sz, bytes), bytes / secs / 1e6, secs,
	        final ? "\n" : "");
	fflush(stderr);
}

static void *run(void *arg)
{
	struct progress *p = arg;
	struct timespec until;

	pthread_mutex_lock(&p->mu);
	while (!atomic_load(&p->stop)) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TICK_NS;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->mu, &until);
		if (!atomic_load(&p->stop))
			draw(p, false);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void progress_start(struct progress *p, const char *label, const char *unit)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->unit = unit;
	p->start_ns = progress_now_ns();
	atomic_init(&p->stop, false);
	atomic_init(&p->files_seen, 0);
	atomic_init(&p->files_done, 0);
	atomic_init(&p->bytes_done, 0);
	p->on = isatty(STDERR_FILENO) == 1;
	if (!p->on)
		return;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->thread_started = pthread_create(&p->thread, NULL, run, p) == 0;
}

void progress_seen(struct progress *p, uint64_t files)
{
	atomic_fetch_add(&p->files_seen, files);
}

void progress_done(struct progress *p, uint64_t files, uint64_t bytes)
{
	atomic_fetch_add(&p->files_done, files);
	atomic_fetch_add(&p->bytes_done, bytes);
}

void progress_stop(struct progress *p)
{
	if (!p->on)
		return;
	if (p->thread_started) {
		pthread_mutex_lock(&p->mu);
		atomic_store(&p->stop, true);
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	draw(p, true);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cond);
	p->on = false;
}
