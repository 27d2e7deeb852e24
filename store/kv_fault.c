/* kv_fault.c - a kv wrapper that fails on demand and simulates power loss.
 *
 * Crash tests run the store over this wrapper (usually over the mem kv): they
 * make the Nth get/write/flush fail, or cut the power with
 * mav_kv_fault_crash(), or kill the process (mav_kv_fault_kill), then
 * check that what remains is consistent.
 *
 * The durability model is RocksDB's. A write goes to the memtable and, unless
 * MAV_KV_NO_WAL, to the log. A MAV_KV_SYNC write syncs the log, which makes
 * every earlier logged write durable but not the NO_WAL ones, which live only
 * in memtables. A flush writes the memtables out, which makes everything
 * durable. After a power cut the database holds the last flushed state plus
 * the logged writes up to the last sync, replayed in order; after the
 * process is killed (the machine keeps the log it had written), the last
 * flushed state plus every logged write.
 *
 * To rebuild that state the wrapper keeps, for every write since the last
 * flush, the batch itself (redo) and the before-images of its keys read from
 * the inner kv just before the write (undo). Since every before-image is the
 * value the key had before the batch, one batch's undo images can be applied
 * in any order. crash() undoes all writes newest first, back to the flushed
 * state, then redoes the durable logged ones oldest first. When no NO_WAL
 * write is pending, a sync simply forgets the log.
 *
 * Locking: f->lock protects every field below it, and is held across each
 * inner write so the log and the inner kv agree.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/kv.h"

struct wlog {
	struct mav_kv_batch *redo;
	struct mav_kv_batch *undo;
	bool wal; /* written to the log (not MAV_KV_NO_WAL) */
};

struct fault {
	struct mav_kv kv;
	struct mav_kv *inner; /* owned */
	pthread_mutex_t lock;
	uint64_t calls;
	uint64_t fail_at; /* calls value from which calls fail; 0 = never */
	uint64_t writes;
	uint64_t wfail_at; /* writes value from which writes fail; 0 = never */
	int err;
	struct wlog *log; /* writes since the last flush */
	size_t nlog, caplog;
	size_t durable; /* logged writes in log[0, durable) are synced */
	bool has_nowal; /* a NO_WAL write is in the log */
};

static const struct mav_kv_ops fault_ops;

static int nomem(void)
{
	return mav_error_set(MAV_ENOMEM, "out of memory in the fault kv");
}

static struct fault *as_fault(const struct mav_kv *kv)
{
	return kv && kv->ops == &fault_ops ? kv->self : NULL;
}

/* Count a call; nonzero if it must fail. */
static int count_call(struct fault *f)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	f->calls++;
	if (f->fail_at && f->calls >= f->fail_at)
		rc = mav_error_set(f->err, "injected fault at call %llu",
		                   (unsigned long long)f->calls);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void log_forget(struct fault *f)
{
	for (size_t i = 0; i < f->nlog; i++) {
		mav_kv_batch_free(f->log[i].redo);
		mav_kv_batch_free(f->log[i].undo);
	}
	f->nlog = 0;
	f->durable = 0;
	f->has_nowal = false;
}

/* ---- capturing a write ---- */

struct capture {
	struct fault *f;
	struct mav_kv_batch *undo;
	struct mav_kv_batch *redo;
};

static int capture_op(void *arg, enum mav_cf cf, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
	struct capture *c = arg;
	void *old = NULL;
	size_t olen = 0;
	int rc;

	rc = val ? mav_kv_batch_put(c->redo, cf, key, klen, val, vlen)
	         : mav_kv_batch_del(c->redo, cf, key, klen);
	if (rc < 0)
		return rc;
	rc = mav_kv_get(c->f->inner, cf, key, klen, &old, &olen);
	if (rc == 0)
		rc = mav_kv_batch_put(c->undo, cf, key, klen, old, olen);
	else if (rc == MAV_ENOTFOUND)
		rc = mav_kv_batch_del(c->undo, cf, key, klen);
	free(old);
	return rc;
}

static int log_reserve(struct fault *f)
{
	struct wlog *p;
	size_t cap;

	if (f->nlog < f->caplog)
		return 0;
	cap = f->caplog ? f->caplog * 2 : 16;
	p = realloc(f->log, cap * sizeof(*p));
	if (!p)
		return nomem();
	f->log = p;
	f->caplog = cap;
	return 0;
}

/* Write b through to the inner kv, logging it; f->lock held. */
static int logged_write(struct fault *f, const struct mav_kv_batch *b,
                        unsigned flags)
{
	struct capture c = {.f = f};
	int rc;

	rc = log_reserve(f);
	if (rc == 0)
		rc = mav_kv_batch_new(&c.undo);
	if (rc == 0)
		rc = mav_kv_batch_new(&c.redo);
	if (rc == 0)
		rc = mav_kv_batch_foreach(b, capture_op, &c);
	if (rc == 0)
		rc = mav_kv_write(f->inner, b, flags);
	if (rc < 0)
		goto out;
	f->log[f->nlog++] = (struct wlog){
	    .redo = c.redo,
	    .undo = c.undo,
	    .wal = !(flags & MAV_KV_NO_WAL),
	};
	c.redo = c.undo = NULL;
	if (flags & MAV_KV_NO_WAL)
		f->has_nowal = true;
	if (flags & MAV_KV_SYNC) {
		if (f->has_nowal)
			f->durable = f->nlog;
		else
			log_forget(f);
	}
out:
	mav_kv_batch_free(c.undo);
	mav_kv_batch_free(c.redo);
	return rc;
}

/* ---- the vtable ---- */

static int fault_get(void *self, enum mav_cf cf, const void *key, size_t klen,
                     void **val, size_t *vlen)
{
	struct fault *f = self;
	int rc = count_call(f);

	if (rc)
		return rc;
	return mav_kv_get(f->inner, cf, key, klen, val, vlen);
}

/* A counted call of get_view or probe_view (through the inner's fwd). */
static int fault_view(void *self, mav_kv_lookup_fn fwd, enum mav_cf cf,
                      const void *key, size_t klen, mav_kv_view_fn fn,
                      void *ctx)
{
	struct fault *f = self;
	int rc = count_call(f);

	return rc ? rc : fwd(f->inner, cf, key, klen, fn, ctx);
}

static int fault_get_view(void *self, enum mav_cf cf, const void *key,
                          size_t klen, mav_kv_view_fn fn, void *ctx)
{
	return fault_view(self, mav_kv_get_view, cf, key, klen, fn, ctx);
}

static int fault_probe_view(void *self, enum mav_cf cf, const void *key,
                            size_t klen, mav_kv_view_fn fn, void *ctx)
{
	return fault_view(self, mav_kv_probe_view, cf, key, klen, fn, ctx);
}

static int fault_write(void *self, const struct mav_kv_batch *b, unsigned flags)
{
	struct fault *f = self;
	int rc = count_call(f);

	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	if (f->wfail_at && ++f->writes >= f->wfail_at)
		rc = mav_error_set(f->err, "injected fault at write %llu",
		                   (unsigned long long)f->writes);
	else
		rc = logged_write(f, b, flags);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int fault_iter(void *self, enum mav_cf cf, struct mav_kv_iter **out)
{
	struct fault *f = self;

	return mav_kv_iter_new(out, f->inner, cf);
}

static int fault_flush(void *self)
{
	struct fault *f = self;
	int rc = count_call(f);

	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = mav_kv_flush(f->inner);
	if (rc == 0)
		log_forget(f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int fault_compact(void *self)
{
	return mav_kv_compact(((struct fault *)self)->inner);
}

static int fault_room(void *self, uint64_t bytes)
{
	return mav_kv_room(((struct fault *)self)->inner, bytes);
}

static void fault_close(void *self)
{
	struct fault *f = self;

	log_forget(f);
	free(f->log);
	mav_kv_close(f->inner);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct mav_kv_ops fault_ops = {
    .get = fault_get,
    .get_view = fault_get_view,
    .probe_view = fault_probe_view,
    .write = fault_write,
    .iter = fault_iter,
    .flush = fault_flush,
    .compact = fault_compact,
    .room = fault_room,
    .close = fault_close,
};

/* ---- public ---- */

int mav_kv_fault_wrap(struct mav_kv **out, struct mav_kv *inner)
{
	struct fault *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f) {
		mav_kv_close(inner);
		return nomem();
	}
	f->kv.ops = &fault_ops;
	f->kv.self = f;
	f->inner = inner;
	pthread_mutex_init(&f->lock, NULL);
	*out = &f->kv;
	return 0;
}

void mav_kv_fault_fail_after(struct mav_kv *kv, uint64_t n, int err)
{
	struct fault *f = as_fault(kv);

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->fail_at = n ? f->calls + n : 0;
	f->wfail_at = 0;
	f->err = err < 0 ? err : -EIO; /* a "failure" must not look like 0 */
	pthread_mutex_unlock(&f->lock);
}

void mav_kv_fault_fail_writes_after(struct mav_kv *kv, uint64_t n, int err)
{
	struct fault *f = as_fault(kv);

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->fail_at = 0;
	f->wfail_at = n ? f->writes + n : 0;
	f->err = err < 0 ? err : -EIO;
	pthread_mutex_unlock(&f->lock);
}

void mav_kv_fault_clear(struct mav_kv *kv)
{
	mav_kv_fault_fail_after(kv, 0, 0);
}

/* Back to the last flushed state plus the logged writes that survive:
 * the synced ones, or (all_logged) every one. */
static int lose_unflushed(struct mav_kv *kv, bool all_logged)
{
	struct fault *f = as_fault(kv);
	int rc = 0;

	if (!f)
		return mav_error_set(MAV_EINVAL, "not a fault-injecting kv");
	pthread_mutex_lock(&f->lock);
	if (all_logged)
		f->durable = f->nlog;
	/* Back to the last flushed state, newest write first... */
	for (size_t i = f->nlog; i-- > 0 && rc == 0;)
		rc = mav_kv_write(f->inner, f->log[i].undo, 0);
	/* ...then replay what the synced log holds, oldest first. */
	for (size_t i = 0; i < f->durable && rc == 0; i++)
		if (f->log[i].wal)
			rc = mav_kv_write(f->inner, f->log[i].redo, 0);
	if (rc == 0)
		log_forget(f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int mav_kv_fault_crash(struct mav_kv *kv)
{
	return lose_unflushed(kv, false);
}

int mav_kv_fault_kill(struct mav_kv *kv)
{
	return lose_unflushed(kv, true);
}

uint64_t mav_kv_fault_calls(const struct mav_kv *kv)
{
	struct fault *f = as_fault(kv);
	uint64_t n;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	n = f->calls;
	pthread_mutex_unlock(&f->lock);
	return n;
}
