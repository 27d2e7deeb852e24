/* prefetch.c - a bounded queue of chunk ids and the threads that load them.
 *
 * The queue is a ring of QUEUE_LEN ids. A duplicate check over the ring is a
 * linear scan, which is cheap at this size and keeps a burst of reads of the
 * same region from queueing the same chunk many times.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "prefetch.h"

#define QUEUE_LEN   64
#define MAX_THREADS 8

struct mav_prefetch {
	struct mav_repo *r;
	mav_prefetch_load_fn load;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	mav_id q[QUEUE_LEN]; /* lock: ring [head, head + n) */
	unsigned head, n;
	bool stop; /* lock */
	int nthreads;
	pthread_t th[MAX_THREADS];
};

static void *worker(void *arg)
{
	struct mav_prefetch *pf = arg;
	mav_id id;

	pthread_mutex_lock(&pf->lock);
	for (;;) {
		while (!pf->stop && pf->n == 0)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		id = pf->q[pf->head];
		pf->head = (pf->head + 1) % QUEUE_LEN;
		pf->n--;
		pthread_mutex_unlock(&pf->lock);
		pf->load(pf->r, &id);
		pthread_mutex_lock(&pf->lock);
	}
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

int mav_prefetch_new(struct mav_prefetch **out, struct mav_repo *r,
                     mav_prefetch_load_fn load, int threads)
{
	struct mav_prefetch *pf = calloc(1, sizeof(*pf));

	*out = NULL;
	if (!pf)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	pf->r = r;
	pf->load = load;
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->wake, NULL);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	for (; pf->nthreads < threads; pf->nthreads++)
		if (pthread_create(&pf->th[pf->nthreads], NULL, worker, pf))
			break;
	*out = pf;
	return 0;
}

void mav_prefetch_free(struct mav_prefetch *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = true;
	pthread_cond_broadcast(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	for (int i = 0; i < pf->nthreads; i++)
		pthread_join(pf->th[i], NULL);
	pthread_cond_destroy(&pf->wake);
	pthread_mutex_destroy(&pf->lock);
	free(pf);
}

void mav_prefetch_push(struct mav_prefetch *pf, const mav_id *id)
{
	pthread_mutex_lock(&pf->lock);
	for (unsigned i = 0; i < pf->n; i++)
		if (mav_id_cmp(&pf->q[(pf->head + i) % QUEUE_LEN], id) == 0)
			goto out;
	if (pf->n < QUEUE_LEN) {
		pf->q[(pf->head + pf->n) % QUEUE_LEN] = *id;
		pf->n++;
		pthread_cond_signal(&pf->wake);
	}
out:
	pthread_mutex_unlock(&pf->lock);
}
