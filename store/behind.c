/* behind.c - see behind.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "behind.h"
#include "mav/error.h"

#define BEHIND_MAX (64u << 20) /* bytes in jobs, all streams together */

struct job {
	struct job *next;
	size_t len;
	uint8_t data[];
};

struct behind {
	struct behind_pool *p;
	struct mav_writer *w;
	struct job *head, *tail; /* put, not yet taken by a feeder */
	size_t queued;           /* bytes put and not yet fed */
	size_t held;             /* the writer's, when a feeder left it */
	bool busy;               /* a feeder is feeding it */
	bool ready;              /* in the pool's ready list */
	struct behind *next_ready;
	int rc; /* the first failure */
	char err[256];
};

struct behind_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* a stream is ready, or stop */
	pthread_cond_t done;         /* jobs were fed or dropped */
	struct behind *first, *last; /* ready streams, oldest first */
	size_t bytes;                /* in all jobs not yet fed */
	bool stop;
	pthread_t *threads;
	unsigned n;
};

/* Queue bh for a feeder (lock held; it has jobs and none is on it). */
static void make_ready(struct behind_pool *p, struct behind *bh)
{
	bh->ready = true;
	bh->next_ready = NULL;
	if (p->last)
		p->last->next_ready = bh;
	else
		p->first = bh;
	p->last = bh;
	pthread_cond_signal(&p->work);
}

/* Feed the jobs, in order; after a failure the rest is dropped (the
 * stream is lost). Returns the bytes taken. */
static size_t feed_jobs(struct behind *bh, struct job *j, int *rc)
{
	size_t fed = 0;

	while (j) {
		struct job *next = j->next;

		if (*rc == 0)
			*rc = mav_writer_feed(bh->w, j->data, j->len);
		fed += j->len;
		free(j);
		j = next;
	}
	return fed;
}

static void *feeder(void *arg)
{
	struct behind_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct behind *bh;
		struct job *jobs;
		size_t fed, held;
		bool quiet;
		int rc;

		while (!p->first && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->first)
			break;
		bh = p->first;
		p->first = bh->next_ready;
		if (!p->first)
			p->last = NULL;
		bh->ready = false;
		bh->busy = true;
		jobs = bh->head;
		bh->head = bh->tail = NULL;
		rc = bh->rc;
		pthread_mutex_unlock(&p->lock);
		fed = feed_jobs(bh, jobs, &rc);
		pthread_mutex_lock(&p->lock);
		quiet = !bh->head;
		pthread_mutex_unlock(&p->lock);
		/* Nothing more queued: settle (behind.h). */
		if (quiet && rc == 0)
			rc = mav_writer_settle(bh->w);
		held = mav_writer_held(bh->w);
		pthread_mutex_lock(&p->lock);
		if (rc < 0 && bh->rc == 0) {
			bh->rc = rc;
			snprintf(bh->err, sizeof(bh->err), "%s",
			         mav_error_message());
		}
		bh->held = held;
		bh->busy = false;
		bh->queued -= fed;
		p->bytes -= fed;
		if (bh->head)
			make_ready(p, bh);
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void mav_behind_pool_free(struct behind_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

int mav_behind_pool_new(struct behind_pool **out)
{
	struct behind_pool *p = calloc(1, sizeof(*p));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (unsigned)ncpu;

	*out = NULL;
	if (!p)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = calloc(threads, sizeof(*p->threads));
	while (p->threads && p->n < threads &&
	       pthread_create(&p->threads[p->n], NULL, feeder, p) == 0)
		p->n++;
	if (p->n < threads) {
		mav_behind_pool_free(p);
		return mav_error_set(MAV_ENOMEM, "cannot start stream feeders");
	}
	*out = p;
	return 0;
}

int mav_behind_start(struct behind **out, struct behind_pool *p,
                     struct mav_writer *w)
{
	struct behind *bh = calloc(1, sizeof(*bh));

	*out = bh;
	if (!bh)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	bh->p = p;
	bh->w = w;
	bh->held = mav_writer_held(w);
	return 0;
}

/* The stream's failure, its message restored on this thread (lock held). */
static int failure(const struct behind *bh)
{
	return bh->rc ? mav_error_set(bh->rc, "%s", bh->err) : 0;
}

int mav_behind_put(struct behind *bh, const void *data, size_t len)
{
	struct behind_pool *p = bh->p;
	struct job *j = malloc(sizeof(*j) + len);
	int rc;

	if (!j)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	j->next = NULL;
	j->len = len;
	memcpy(j->data, data, len);
	pthread_mutex_lock(&p->lock);
	/* Room for it, unless nothing else is waiting to be fed. */
	while (p->bytes && p->bytes + len > BEHIND_MAX && !bh->rc)
		pthread_cond_wait(&p->done, &p->lock);
	rc = failure(bh);
	if (rc == 0) {
		if (bh->tail)
			bh->tail->next = j;
		else
			bh->head = j;
		bh->tail = j;
		bh->queued += len;
		p->bytes += len;
		if (!bh->busy && !bh->ready)
			make_ready(p, bh);
		j = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	free(j);
	return rc;
}

int mav_behind_drain(struct behind *bh)
{
	struct behind_pool *p = bh->p;
	int rc;

	pthread_mutex_lock(&p->lock);
	while (bh->head || bh->busy)
		pthread_cond_wait(&p->done, &p->lock);
	rc = failure(bh);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

size_t mav_behind_held(struct behind *bh)
{
	size_t held;

	pthread_mutex_lock(&bh->p->lock);
	held = bh->queued + bh->held;
	pthread_mutex_unlock(&bh->p->lock);
	return held;
}

void mav_behind_free(struct behind *bh)
{
	struct behind_pool *p;
	struct job *j;

	if (!bh)
		return;
	p = bh->p;
	pthread_mutex_lock(&p->lock);
	if (bh->ready) { /* out of the ready list */
		struct behind **at = &p->first, *prev = NULL;

		while (*at != bh) {
			prev = *at;
			at = &(*at)->next_ready;
		}
		*at = bh->next_ready;
		if (p->last == bh)
			p->last = prev;
	}
	j = bh->head;
	bh->head = bh->tail = NULL;
	while (bh->busy)
		pthread_cond_wait(&p->done, &p->lock);
	for (struct job *next; j; j = next) {
		next = j->next;
		bh->queued -= j->len;
		p->bytes -= j->len;
		free(j);
	}
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	free(bh);
}
