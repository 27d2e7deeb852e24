/* prefetch.c - a bounded queue of chunk ids and the threads that load them.
 *
 * The queue is a ring of QUEUE_LEN ids. A duplicate check over the ring is a
 * linear scan, which is cheap at this size and keeps a burst of reads of the
 * same region from queueing the same chunk many times. Each worker publishes
 * the id it is loading, so a reader that misses the cache can wait for that
 * load instead of reading the same chunk a second time.
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
	bool stop;             /* lock */
	pthread_cond_t loaded; /* signalled whenever a worker finishes a load */
	mav_id busy[MAX_THREADS];   /* lock: what worker i is loading, */
	bool busy_set[MAX_THREADS]; /* lock: if busy_set[i] */
	int nthreads;
	pthread_t th[MAX_THREADS];
};

struct worker_arg {
	struct mav_prefetch *pf;
	int slot;
};

static void *worker(void *arg)
{
	struct mav_prefetch *pf = ((struct worker_arg *)arg)->pf;
	int slot = ((struct worker_arg *)arg)->slot;

	free(arg);
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		while (!pf->stop && pf->n == 0)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		pf->busy[slot] = pf->q[pf->head];
		pf->busy_set[slot] = true;
		pf->head = (pf->head + 1) % QUEUE_LEN;
		pf->n--;
		pthread_mutex_unlock(&pf->lock);
		pf->load(pf->r, &pf->busy[slot]);
		pthread_mutex_lock(&pf->lock);
		pf->busy_set[slot] = false;
		pthread_cond_broadcast(&pf->loaded);
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
	pthread_cond_init(&pf->loaded, NULL);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	for (; pf->nthreads < threads; pf->nthreads++) {
		struct worker_arg *a = malloc(sizeof(*a));

		if (!a)
			break;
		*a = (struct worker_arg){pf, pf->nthreads};
		if (pthread_create(&pf->th[pf->nthreads], NULL, worker, a)) {
			free(a);
			break;
		}
	}
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
	pthread_cond_destroy(&pf->loaded);
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

static bool loading(const struct mav_prefetch *pf, const mav_id *id)
{
	for (int i = 0; i < pf->nthreads; i++)
		if (pf->busy_set[i] && mav_id_cmp(&pf->busy[i], id) == 0)
			return true;
	return false;
}

bool mav_prefetch_claim(struct mav_prefetch *pf, const mav_id *id)
{
	bool waited = false;

	pthread_mutex_lock(&pf->lock);
	for (unsigned i = 0; i < pf->n; i++) {
		unsigned at = (pf->head + i) % QUEUE_LEN;

		if (mav_id_cmp(&pf->q[at], id) != 0)
			continue;
		/* Still queued: the caller loads it; close the gap. */
		for (; i + 1 < pf->n; i++)
			pf->q[(pf->head + i) % QUEUE_LEN] =
			    pf->q[(pf->head + i + 1) % QUEUE_LEN];
		pf->n--;
		goto out;
	}
	while (loading(pf, id)) {
		pthread_cond_wait(&pf->loaded, &pf->lock);
		waited = true;
	}
out:
	pthread_mutex_unlock(&pf->lock);
	return waited;
}
