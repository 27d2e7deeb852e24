/* behind.c - see behind.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behind.h"
#include "mav/error.h"

#define BEHIND_BUF (4u << 20)

struct behind {
	struct mav_writer *w;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a buffer was handed over, fed, or stop */
	uint8_t *buf[2];
	int cur;       /* the buffer being filled */
	size_t fill;   /* its bytes */
	size_t handed; /* bytes of the other one, being fed; 0: feeder idle */
	bool stop;
	int rc; /* the feeder's first failure */
	char err[256];
};

static void *feeder(void *arg)
{
	struct behind *bh = arg;
	const uint8_t *p;
	size_t n;
	int rc;

	pthread_mutex_lock(&bh->lock);
	for (;;) {
		while (!bh->handed && !bh->stop)
			pthread_cond_wait(&bh->cond, &bh->lock);
		if (!bh->handed)
			break;
		/* Stable until handed is 0 again: only hand_over changes them,
		 * and it waits for that. */
		p = bh->buf[!bh->cur];
		n = bh->handed;
		rc = bh->rc;
		pthread_mutex_unlock(&bh->lock);
		/* After a failure the rest is dropped: the stream is lost. */
		if (rc == 0)
			rc = mav_writer_feed(bh->w, p, n);
		pthread_mutex_lock(&bh->lock);
		if (rc < 0 && bh->rc == 0) {
			bh->rc = rc;
			snprintf(bh->err, sizeof(bh->err), "%s",
			         mav_error_message());
		}
		bh->handed = 0;
		pthread_cond_broadcast(&bh->cond);
	}
	pthread_mutex_unlock(&bh->lock);
	return NULL;
}

int mav_behind_start(struct behind **out, struct mav_writer *w)
{
	struct behind *bh = calloc(1, sizeof(*bh));

	*out = NULL;
	if (!bh)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	bh->w = w;
	bh->buf[0] = malloc(BEHIND_BUF);
	bh->buf[1] = malloc(BEHIND_BUF);
	pthread_mutex_init(&bh->lock, NULL);
	pthread_cond_init(&bh->cond, NULL);
	if (!bh->buf[0] || !bh->buf[1] ||
	    pthread_create(&bh->thread, NULL, feeder, bh)) {
		pthread_cond_destroy(&bh->cond);
		pthread_mutex_destroy(&bh->lock);
		free(bh->buf[0]);
		free(bh->buf[1]);
		free(bh);
		return mav_error_set(MAV_ENOMEM,
		                     "cannot start a stream feeder");
	}
	*out = bh;
	return 0;
}

/* Hand the filling buffer over once the feeder is idle (lock held). */
static void hand_over(struct behind *bh)
{
	while (bh->handed)
		pthread_cond_wait(&bh->cond, &bh->lock);
	if (bh->fill == 0)
		return;
	bh->handed = bh->fill;
	bh->cur = !bh->cur;
	bh->fill = 0;
	pthread_cond_broadcast(&bh->cond);
}

/* The feeder's failure, its message restored on this thread (lock held). */
static int failure(const struct behind *bh)
{
	return bh->rc ? mav_error_set(bh->rc, "%s", bh->err) : 0;
}

int mav_behind_put(struct behind *bh, const void *data, size_t len)
{
	const uint8_t *p = data;
	int rc;

	pthread_mutex_lock(&bh->lock);
	while (len && !bh->rc) {
		size_t take = BEHIND_BUF - bh->fill;

		if (take > len)
			take = len;
		memcpy(bh->buf[bh->cur] + bh->fill, p, take);
		bh->fill += take;
		p += take;
		len -= take;
		if (bh->fill == BEHIND_BUF)
			hand_over(bh);
	}
	rc = failure(bh);
	pthread_mutex_unlock(&bh->lock);
	return rc;
}

int mav_behind_drain(struct behind *bh)
{
	int rc;

	pthread_mutex_lock(&bh->lock);
	hand_over(bh);
	while (bh->handed)
		pthread_cond_wait(&bh->cond, &bh->lock);
	rc = failure(bh);
	pthread_mutex_unlock(&bh->lock);
	return rc;
}

void mav_behind_free(struct behind *bh)
{
	if (!bh)
		return;
	pthread_mutex_lock(&bh->lock);
	bh->stop = true;
	pthread_cond_broadcast(&bh->cond);
	pthread_mutex_unlock(&bh->lock);
	pthread_join(bh->thread, NULL);
	pthread_cond_destroy(&bh->cond);
	pthread_mutex_destroy(&bh->lock);
	free(bh->buf[0]);
	free(bh->buf[1]);
	free(bh);
}
