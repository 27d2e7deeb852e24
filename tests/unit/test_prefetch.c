/* test_prefetch.c - the prefetch queue and its workers with a loader that
 * records what it loads and can be held at a gate: every pushed id is loaded
 * once, duplicates and overflow are dropped, and a reader's claim either
 * takes a still-queued id away from the workers or waits for the worker
 * that is loading it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "prefetch.h"

#define MAX_LOADS 256

static struct {
	pthread_mutex_t lock;
	pthread_cond_t change;
	mav_id loaded[MAX_LOADS]; /* lock */
	int nloaded;              /* lock */
	int started;              /* lock: loads begun */
	bool gate_open;           /* lock: loads may finish */
} L = {.lock = PTHREAD_MUTEX_INITIALIZER, .change = PTHREAD_COND_INITIALIZER};

static void gate(bool open)
{
	pthread_mutex_lock(&L.lock);
	L.gate_open = open;
	pthread_cond_broadcast(&L.change);
	pthread_mutex_unlock(&L.lock);
}

static void load(struct mav_repo *r, const mav_id *id)
{
	(void)r;
	pthread_mutex_lock(&L.lock);
	L.started++;
	pthread_cond_broadcast(&L.change);
	while (!L.gate_open)
		pthread_cond_wait(&L.change, &L.lock);
	if (L.nloaded < MAX_LOADS)
		L.loaded[L.nloaded++] = *id;
	pthread_cond_broadcast(&L.change);
	pthread_mutex_unlock(&L.lock);
}

static int setup(void **state)
{
	(void)state;
	pthread_mutex_lock(&L.lock);
	L.nloaded = L.started = 0;
	L.gate_open = true;
	pthread_mutex_unlock(&L.lock);
	return 0;
}

static mav_id id_of(uint8_t n)
{
	mav_id id;

	memset(&id, 0, sizeof(id));
	id.b[0] = n;
	return id;
}

static int times_loaded(uint8_t n)
{
	mav_id want = id_of(n);
	int c = 0;

	pthread_mutex_lock(&L.lock);
	for (int i = 0; i < L.nloaded; i++)
		c += mav_id_cmp(&L.loaded[i], &want) == 0;
	pthread_mutex_unlock(&L.lock);
	return c;
}

static void wait_started(int n)
{
	pthread_mutex_lock(&L.lock);
	while (L.started < n)
		pthread_cond_wait(&L.change, &L.lock);
	pthread_mutex_unlock(&L.lock);
}

static void wait_loaded(int n)
{
	pthread_mutex_lock(&L.lock);
	while (L.nloaded < n)
		pthread_cond_wait(&L.change, &L.lock);
	pthread_mutex_unlock(&L.lock);
}

static void test_every_push_loaded_once(void **state)
{
	struct mav_prefetch *pf;

	(void)state;
	assert_int_equal(mav_prefetch_new(&pf, NULL, load, 4), 0);
	for (uint8_t i = 1; i <= 40; i++) {
		mav_id id = id_of(i);

		mav_prefetch_push(pf, &id);
	}
	wait_loaded(40);
	mav_prefetch_free(pf); /* joins: no load after this */
	for (uint8_t i = 1; i <= 40; i++)
		assert_int_equal(times_loaded(i), 1);
	assert_int_equal(L.nloaded, 40);
}

static void test_duplicates_and_overflow_dropped(void **state)
{
	struct mav_prefetch *pf;
	mav_id first = id_of(200);

	(void)state;
	gate(false);
	assert_int_equal(mav_prefetch_new(&pf, NULL, load, 1), 0);
	mav_prefetch_push(pf, &first);
	wait_started(1); /* the one worker now holds id 200 */
	for (int round = 0; round < 2; round++)
		for (uint8_t i = 1; i <= 30; i++) {
			mav_id id = id_of(i);

			mav_prefetch_push(pf,
			                  &id); /* the second round: dropped */
		}
	for (uint8_t i = 31; i <= 100; i++) {
		mav_id id = id_of(i);

		mav_prefetch_push(pf, &id); /* room for 34 more */
	}
	gate(true);
	wait_loaded(65); /* 200, then the 64 the queue had room for */
	mav_prefetch_free(pf);
	assert_int_equal(L.nloaded, 65);
	for (uint8_t i = 1; i <= 64; i++)
		assert_int_equal(times_loaded(i), 1);
	assert_int_equal(times_loaded(65), 0);
}

struct claimer {
	struct mav_prefetch *pf;
	mav_id id;
	bool waited;
	int loaded_when_back;
};

static void *claim_thread(void *arg)
{
	struct claimer *c = arg;

	c->waited = mav_prefetch_claim(c->pf, &c->id);
	c->loaded_when_back = times_loaded(c->id.b[0]);
	return NULL;
}

static void test_claim_takes_queued_waits_for_busy(void **state)
{
	struct mav_prefetch *pf;
	struct claimer c;
	pthread_t th;
	mav_id busy = id_of(1), queued = id_of(2), other = id_of(3);

	(void)state;
	gate(false);
	assert_int_equal(mav_prefetch_new(&pf, NULL, load, 1), 0);
	mav_prefetch_push(pf, &busy);
	wait_started(1);
	mav_prefetch_push(pf, &queued);
	mav_prefetch_push(pf, &other);

	/* Queued, not started: the claim removes it and returns at once. */
	assert_false(mav_prefetch_claim(pf, &queued));
	/* Unknown id: nothing to wait for. */
	c.id = id_of(9);
	assert_false(mav_prefetch_claim(pf, &c.id));

	/* Being loaded: the claim returns only after the load finished. */
	c = (struct claimer){.pf = pf, .id = busy};
	assert_int_equal(pthread_create(&th, NULL, claim_thread, &c), 0);
	nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	gate(true); /* the claimer is (almost surely) waiting by now */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(c.waited);
	assert_int_equal(c.loaded_when_back, 1);

	wait_loaded(2); /* busy, then other */
	mav_prefetch_free(pf);
	assert_int_equal(times_loaded(2), 0);
	assert_int_equal(times_loaded(3), 1);
	assert_int_equal(L.nloaded, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_every_push_loaded_once, setup),
	    cmocka_unit_test_setup(test_duplicates_and_overflow_dropped, setup),
	    cmocka_unit_test_setup(test_claim_takes_queued_waits_for_busy,
	                           setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
