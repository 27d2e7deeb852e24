/* writer.c - bytes in, chunks stored, a blob out.
 *
 * Chunks are cut straight from the caller's buffer while it holds at least a
 * maximum chunk; only the tail (less than one maximum chunk) is copied into
 * a window to wait for more input or for finish. The next input tops the
 * window up by at most one maximum chunk, and cutting goes back to the
 * caller's buffer as soon as a cut starts in it. (An earlier version cut one
 * chunk per top-up and moved the rest down: fed 1 MiB at a time, as the
 * daemon's streams are, it copied every byte about four times.)
 *
 * The batch is written without the log whenever it passes a few MiB: chunks
 * are content-addressed, so a crash only leaves unreferenced chunks for gc,
 * and whoever points at them (a ref, an inode) flushes first. From the second
 * full batch on, a thread of the writer's own writes each full batch while
 * the writer cuts, hashes and frames the next: RocksDB's copies of a batch
 * (into its own batch and the memtable) were about a fifth of the time of the
 * one thread that fed a single big file. Memory is one window (two maximum
 * chunks) plus two batches, whatever the input; a settled writer keeps
 * only its uncut tail (mav_writer_settle).
 *
 * That thread also hashes. Once it runs, a cut chunk waits in `pend` while
 * the writer cuts the next ones, and the thread takes the chunks' BLAKE2b
 * ids in order; the writer then frames and stores them in order, hashing
 * itself whatever the thread has not taken yet. A single big stream (a
 * 1 GiB dd into a mount) kept its feeding thread busy for most of the
 * write, two fifths of it cutting and a third hashing; with the two side
 * by side the dd took 3.38-3.89 s against 3.48-4.13 (8 runs each, 2
 * cores, where the daemon's other threads and dd take the rest of the
 * CPU). Pending chunks point into the caller's buffer or the window, so
 * every feed stores them all before it returns or moves the window.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "repo_internal.h"

/* 512 KiB: an import's three workers each hold two batches and RocksDB a
 * copy of each, and every batch is memory allocated and freed again, which
 * glibc keeps once freed. With 8 MiB a 1.5 GB import peaked at 210 MiB
 * against 90 for 200 MB; with 2 MiB at 91-99 MiB (200 MB: 75-78, 4 GB:
 * 106-108); with 512 KiB at 73-85 MiB (60-61, 86-92), and neither the
 * import nor a 1 GiB dd into a mount was slower. */
#define BATCH_BYTES (512u << 10)
/* A writer stores its batches itself until it has cut this much, then on
 * a thread of its own: a file of a few MiB, like most a cp -a writes,
 * starts no thread, and its settled batches leave only its uncut tail
 * held (mav_writer_settle). */
#define THREAD_AFTER (8u << 20)
/* Chunks cut and not yet stored: at most 16 MiB of a caller's buffer with
 * the default sizes, and as many cuts as a 1 MiB feed makes. */
#define PEND_MAX 64

enum pend_state { PEND_CUT, PEND_HASHING, PEND_HASHED };

/* A chunk cut and waiting for its id (data is not the writer's). */
struct pend {
	const uint8_t *data;
	uint32_t len;
	enum pend_state state; /* writer's lock */
	mav_id id;             /* set by whoever moved state to HASHING */
};

struct mav_writer {
	struct mav_repo *r;
	struct mav_kv_batch *batch;
	uint8_t *win; /* uncut bytes [start, end), room for wcap (or NULL) */
	size_t start, end, wcap;
	mav_id *ids; /* chunks cut so far */
	uint32_t *lens;
	uint32_t n, ncap;
	uint64_t size;  /* bytes cut so far */
	unsigned flags; /* for batch writes */
	/* Writing behind: the thread takes `behind` and gives it back as
	 * `spare`, cleared. */
	bool thread_on;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mav_kv_batch *spare;  /* lock: a free batch, or NULL */
	struct mav_kv_batch *behind; /* lock: being written, or NULL */
	unsigned behind_flags;       /* lock */
	bool stop;                   /* lock */
	int behind_rc;               /* lock: first failure not yet reported */
	char behind_msg[256];        /* lock: its message */
	/* Cut chunks, stored in order: [0, npend) are cut, [0, nclaim) were
	 * taken by a hasher (lock). Used only while thread_on. */
	struct pend pend[PEND_MAX];
	unsigned npend, nclaim;
	int failed; /* the first failure: the writer refuses everything after */
};

int mav_writer_new(struct mav_writer **out, struct mav_repo *r)
{
	struct mav_writer *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	w->r = r;
	w->flags = MAV_KV_NO_WAL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	rc = mav_kv_batch_new(&w->batch); /* the window comes with input */
	if (rc < 0) {
		mav_writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void mav_writer_free(struct mav_writer *w)
{
	if (!w)
		return;
	if (w->thread_on) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	mav_kv_batch_free(w->spare);
	mav_kv_batch_free(w->batch);
	free(w->win);
	free(w->ids);
	free(w->lens);
	free(w);
}

void mav_writer_set_flags(struct mav_writer *w, unsigned flags)
{
	w->flags = flags;
}

/* Take the next pending chunk and hash it (lock held, dropped while
 * hashing). */
static void hash_next(struct mav_writer *w)
{
	struct pend *p = &w->pend[w->nclaim++];

	p->state = PEND_HASHING;
	pthread_mutex_unlock(&w->lock);
	mav_id_hash(&p->id, p->data, p->len);
	pthread_mutex_lock(&w->lock);
	p->state = PEND_HASHED;
	pthread_cond_broadcast(&w->cond);
}

static void *behind_main(void *arg)
{
	struct mav_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct mav_kv_batch *b;
		unsigned flags;
		int rc;

		while (!w->behind && w->nclaim == w->npend && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		/* Hashing first: the writer waits for ids, not for batches
		 * until its next one is full. */
		if (w->nclaim < w->npend) {
			hash_next(w);
			continue;
		}
		if (!w->behind)
			break;
		b = w->behind;
		flags = w->behind_flags;
		pthread_mutex_unlock(&w->lock);
		rc = mav_repo_write(w->r, b, flags);
		mav_kv_batch_clear(b);
		pthread_mutex_lock(&w->lock);
		if (rc < 0 && w->behind_rc == 0) {
			w->behind_rc = rc;
			snprintf(w->behind_msg, sizeof(w->behind_msg), "%s",
			         mav_error_message());
		}
		w->spare = b;
		w->behind = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Wait until nothing is written behind; the failure of an earlier write
 * behind, once. */
static int wait_behind(struct mav_writer *w)
{
	int rc;

	if (!w->thread_on)
		return 0;
	pthread_mutex_lock(&w->lock);
	while (w->behind) {
		if (w->nclaim < w->npend) /* the thread hashes those first */
			hash_next(w);
		else
			pthread_cond_wait(&w->cond, &w->lock);
	}
	rc = w->behind_rc;
	w->behind_rc = 0;
	if (rc < 0)
		mav_error_set(rc, "%s", w->behind_msg);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* Write the batch now, after whatever is written behind. */
static int write_batch(struct mav_writer *w)
{
	int rc = wait_behind(w);

	if (rc < 0 || mav_kv_batch_count(w->batch) == 0)
		return rc;
	rc = mav_repo_write(w->r, w->batch, w->flags);
	mav_kv_batch_clear(w->batch);
	return rc;
}

/* Hand the full batch to the writer's thread and go on with another; the
 * first time, write it here (most files never fill a second batch). */
static int write_full_batch(struct mav_writer *w)
{
	struct mav_kv_batch *next;
	int rc;

	if (!w->thread_on) {
		rc = write_batch(w);
		/* Without a thread, batches are simply written here. */
		if (rc == 0 && w->size >= THREAD_AFTER &&
		    (w->spare || mav_kv_batch_new(&w->spare) == 0) &&
		    pthread_create(&w->thread, NULL, behind_main, w) == 0)
			w->thread_on = true;
		return rc;
	}
	rc = wait_behind(w);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	next = w->spare;
	w->spare = NULL;
	w->behind = w->batch;
	w->behind_flags = w->flags;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->batch = next;
	return 0;
}

/* Room in the chunk lists for one more. */
static int lists_grow(struct mav_writer *w)
{
	uint32_t ncap;
	mav_id *ids;
	uint32_t *lens;

	if (w->n < w->ncap)
		return 0;
	if (w->ncap > UINT32_MAX / 2)
		return mav_error_set(MAV_ENOMEM, "too many chunks in one file");
	ncap = w->ncap ? 2 * w->ncap : 64;
	ids = realloc(w->ids, ncap * sizeof(*ids));
	lens = ids ? realloc(w->lens, ncap * sizeof(*lens)) : NULL;
	if (ids)
		w->ids = ids;
	if (!ids || !lens)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	w->lens = lens;
	w->ncap = ncap;
	return 0;
}

/* Store data[0..len), whose id is id, as the next chunk. */
static int emit_id(struct mav_writer *w, const uint8_t *data, size_t len,
                   const mav_id *id)
{
	int rc = lists_grow(w);

	if (rc == 0) {
		w->ids[w->n] = *id;
		rc = mav_odb_put_hashed_chunk(w->r, w->batch, w->flags, id,
		                              data, len);
	}
	if (rc < 0)
		return rc;
	w->lens[w->n++] = (uint32_t)len;
	w->size += len;
	if (mav_kv_batch_bytes(w->batch) >= BATCH_BYTES)
		return write_full_batch(w);
	return 0;
}

static int emit(struct mav_writer *w, const uint8_t *data, size_t len)
{
	mav_id id;

	mav_id_hash(&id, data, len);
	return emit_id(w, data, len, &id);
}

/* Store the pending chunks in order, or after a failure (rc < 0) drop
 * them; either way no hasher reads them any more on return. Returns rc or
 * the first failure. */
static int drain(struct mav_writer *w, int rc)
{
	if (w->npend == 0) /* always so without a thread: no lock per feed */
		return rc;
	for (unsigned i = 0; i < w->npend; i++) {
		struct pend *p = &w->pend[i];

		pthread_mutex_lock(&w->lock);
		if (rc < 0 && w->nclaim < w->npend)
			w->npend = w->nclaim; /* no one is to take the rest */
		/* While the thread hashes this one, hash the next. */
		while (i < w->npend && p->state != PEND_HASHED) {
			if (w->nclaim < w->npend)
				hash_next(w);
			else
				pthread_cond_wait(&w->cond, &w->lock);
		}
		pthread_mutex_unlock(&w->lock);
		if (rc == 0)
			rc = emit_id(w, p->data, p->len, &p->id);
	}
	pthread_mutex_lock(&w->lock);
	w->npend = w->nclaim = 0;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* The next chunk is data[0..len): stored now, or once the writer has a
 * thread, queued for its id (drain). */
static int cut_chunk(struct mav_writer *w, const uint8_t *data, size_t len)
{
	struct pend *p;
	int rc;

	if (!w->thread_on)
		return emit(w, data, len);
	if (w->npend == PEND_MAX && (rc = drain(w, 0)) < 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	p = &w->pend[w->npend++];
	p->data = data;
	p->len = (uint32_t)len;
	p->state = PEND_CUT;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Cut everything buffered in the window (the end of the input). */
static int cut_window(struct mav_writer *w)
{
	int rc = 0;

	while (rc == 0 && w->end > w->start) {
		size_t n = mav_chunker_cut(&w->r->chunker, w->win + w->start,
		                           w->end - w->start);

		rc = emit(w, w->win + w->start, n);
		w->start += n;
	}
	w->start = w->end = 0;
	return rc;
}

/* Cut chunks straight from the caller's buffer while a maximum chunk is
 * available, and store them; returns the bytes consumed. Avoids copying
 * bulk data. */
static int cut_in_place(struct mav_writer *w, const uint8_t *p, size_t len,
                        size_t *used)
{
	size_t max = w->r->cfg.chunk_max;
	int rc = 0;

	*used = 0;
	while (rc == 0 && len - *used >= max) {
		size_t n =
		    mav_chunker_cut(&w->r->chunker, p + *used, len - *used);

		rc = cut_chunk(w, p + *used, n);
		*used += n;
	}
	return drain(w, rc);
}

/* A failed feed or finish may have cut, stored or dropped part of its
 * bytes: the writer then refuses everything, rather than make a blob with a
 * gap in it. */
static int checked(struct mav_writer *w)
{
	return w->failed ? mav_error_set(w->failed,
	                                 "writer: refused after an earlier "
	                                 "failure")
	                 : 0;
}

static int remember(struct mav_writer *w, int rc)
{
	if (rc < 0 && !w->failed)
		w->failed = rc;
	return rc;
}

/* Room in the window for two maximum chunks: a new or settled writer
 * has less. */
static int window_full_size(struct mav_writer *w)
{
	size_t want = 2 * (size_t)w->r->cfg.chunk_max;
	uint8_t *win;

	if (w->wcap == want)
		return 0;
	win = realloc(w->win, want);
	if (!win)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	w->win = win;
	w->wcap = want;
	return 0;
}

static int feed(struct mav_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t max = w->r->cfg.chunk_max, used, take, old, back;
	int rc = len ? window_full_size(w) : 0;

	if (rc < 0)
		return rc;
	while (len > 0) {
		if (w->end == w->start) {
			rc = cut_in_place(w, p, len, &used);
			if (rc < 0) /* more than a window may be left */
				return rc;
			memcpy(w->win, p + used, len - used); /* < max */
			w->start = 0;
			w->end = len - used;
			return 0;
		}
		/* The window holds the start of the next chunk (less than
		 * max): add up to max bytes and cut from it until a cut
		 * starts past what it held before, which is then in the
		 * caller's buffer too. */
		if (w->start > 0) {
			memmove(w->win, w->win + w->start, w->end - w->start);
			w->end -= w->start;
			w->start = 0;
		}
		old = w->end;
		take = len < max ? len : max;
		memcpy(w->win + w->end, p, take);
		w->end += take;
		p += take;
		len -= take;
		while (rc == 0 && w->start < old && w->end - w->start >= max) {
			size_t n = mav_chunker_cut(&w->r->chunker,
			                           w->win + w->start, max);

			rc = cut_chunk(w, w->win + w->start, n);
			w->start += n;
		}
		rc = drain(w, rc); /* before the window moves */
		if (rc < 0)
			return rc;
		if (w->start < old)
			return 0;         /* all taken: wait for more input */
		back = w->end - w->start; /* copies of the caller's bytes */
		p -= back;
		len += back;
		w->start = w->end = 0;
	}
	return 0;
}

/* n zeros through the ordinary path, from a zeroed buffer of max bytes. */
static int feed_zero_bytes(struct mav_writer *w, const uint8_t *zeros,
                           uint64_t n)
{
	size_t max = w->r->cfg.chunk_max;
	int rc = 0;

	while (rc == 0 && n > 0) {
		size_t k = n < max ? (size_t)n : max;

		rc = feed(w, zeros, k);
		n -= k;
	}
	return rc;
}

/* A chunk that starts in a run of zeros with at least a maximum chunk of
 * them ahead is cut where a chunk of only zeros is (FastCDC looks no
 * further than that), and has that chunk's id: it is stored once and
 * then only counted, so a hole costs 36 bytes of chunk list per chunk,
 * not a hash and a store lookup (a 16 GiB hole took 50 s to seal). */
static int feed_zeros(struct mav_writer *w, const uint8_t *zeros, uint64_t n)
{
	size_t max = w->r->cfg.chunk_max;
	uint64_t fed = 0, run, k, z = w->r->zero_len;
	int rc = 0;

	/* Cut into the run until the uncut bytes are zeros only: the next
	 * chunk then starts in it. */
	while (rc == 0 && fed < n && w->end - w->start > fed) {
		uint64_t step = n - fed < max ? n - fed : max;

		rc = feed_zero_bytes(w, zeros, step);
		fed += step;
	}
	run = (w->end - w->start) + (n - fed); /* zeros from the next chunk */
	if (rc < 0 || w->end - w->start > fed || run < max)
		return rc < 0 ? rc : feed_zero_bytes(w, zeros, n - fed);
	k = (run - max) / z + 1; /* chunks with max zeros ahead */
	w->start = w->end = 0;
	rc = emit(w, zeros, (size_t)z);
	for (uint64_t i = 1; rc == 0 && i < k; i++) {
		rc = lists_grow(w);
		if (rc < 0)
			break;
		w->ids[w->n] = w->ids[w->n - 1];
		w->lens[w->n++] = (uint32_t)z;
		w->size += z;
	}
	return rc < 0 ? rc : feed_zero_bytes(w, zeros, run - k * z);
}

int mav_writer_feed_zeros(struct mav_writer *w, uint64_t n)
{
	uint8_t *zeros;
	int rc = checked(w);

	if (rc < 0 || n == 0)
		return rc;
	zeros = calloc(1, w->r->cfg.chunk_max);
	rc = zeros ? feed_zeros(w, zeros, n)
	           : mav_error_set(MAV_ENOMEM, "out of memory");
	free(zeros);
	return remember(w, rc);
}

int mav_writer_feed(struct mav_writer *w, const void *data, size_t len)
{
	int rc = checked(w);

	return remember(w, rc < 0 ? rc : feed(w, data, len));
}

/* A settled writer may wait long for more (a copy closes a file that is
 * sealed seconds later): keep only its uncut tail, not a window for two
 * maximum chunks and a batch's buffer. A 1.5 GB cp -a of small files
 * held about 1 MiB a file, 1.2 GB in all, until they were sealed. */
static void shrink(struct mav_writer *w)
{
	size_t tail = w->end - w->start;
	uint8_t *win;

	mav_kv_batch_release(w->batch);
	if (w->start > 0)
		memmove(w->win, w->win + w->start, tail);
	w->start = 0;
	w->end = tail;
	if (!tail) {
		free(w->win);
		w->win = NULL;
		w->wcap = 0;
	} else if ((win = realloc(w->win, tail))) { /* else it keeps its size */
		w->win = win;
		w->wcap = tail;
	}
}

int mav_writer_settle(struct mav_writer *w)
{
	int rc = checked(w);

	/* Past THREAD_AFTER a writer's own thread stores its batches as
	 * they fill: settling it would only write part batches synchronously
	 * and scan its tail twice. */
	if (w->thread_on)
		return rc;
	while (rc == 0 && w->end - w->start > w->r->cfg.chunk_min) {
		size_t left = w->end - w->start;
		size_t n =
		    mav_chunker_cut(&w->r->chunker, w->win + w->start, left);

		if (n == left) /* no cut yet: the end of the input decides */
			break;
		rc = emit(w, w->win + w->start, n);
		w->start += n;
	}
	if (rc == 0)
		rc = write_batch(w);
	if (rc == 0)
		shrink(w);
	return remember(w, rc);
}

/* measure(*slot) for a batch slot the writer's thread shares, 0 if none. */
static size_t shared_batch(const struct mav_writer *w,
                           struct mav_kv_batch *const *slot,
                           size_t (*measure)(const struct mav_kv_batch *))
{
	struct mav_writer *mw = (struct mav_writer *)w; /* for its lock */
	size_t n = 0;

	if (w->thread_on) {
		pthread_mutex_lock(&mw->lock);
		n = *slot ? measure(*slot) : 0;
		pthread_mutex_unlock(&mw->lock);
	}
	return n;
}

size_t mav_writer_held(const struct mav_writer *w)
{
	return mav_kv_batch_bytes(w->batch) +
	       shared_batch(w, &w->behind, mav_kv_batch_bytes) +
	       (w->end - w->start);
}

size_t mav_writer_memory(const struct mav_writer *w)
{
	return w->wcap + mav_kv_batch_capacity(w->batch) +
	       shared_batch(w, &w->behind, mav_kv_batch_capacity) +
	       shared_batch(w, &w->spare, mav_kv_batch_capacity) +
	       (size_t)w->ncap * (sizeof(*w->ids) + sizeof(*w->lens));
}

uint32_t mav_writer_chunks(const struct mav_writer *w, const mav_id **ids,
                           const uint32_t **lens)
{
	*ids = w->ids;
	*lens = w->lens;
	return w->n;
}

void mav_writer_rewind(struct mav_writer *w, uint32_t n)
{
	while (w->n > n)
		w->size -= w->lens[--w->n];
	w->start = w->end = 0;
}

/* Add the blob of chunks ids/lens[0..n) to the batch: one blob object, or
 * past MAV_BLOB_FLAT_MAX chunks pages of it under an index (an unchanged
 * page is not stored again). *id is what a file points at. */
static int put_blob(struct mav_writer *w, const mav_id *ids,
                    const uint32_t *lens, uint32_t n, mav_id *id)
{
	struct mav_blob_page *pages = NULL;
	uint32_t np = 0, from, i;
	uint8_t *enc = NULL;
	size_t elen;
	int rc;

	if (n <= MAV_BLOB_FLAT_MAX) {
		rc = mav_blob_encode(&enc, &elen, ids, lens, n);
		if (rc == 0)
			rc = mav_repo_put_object(w->r, w->batch, w->flags, id,
			                         enc, elen);
		free(enc);
		return rc;
	}
	for (from = 0; from < n; np++)
		from = mav_blob_page_end(ids, from, n);
	pages = calloc(np, sizeof(*pages));
	if (!pages)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	rc = 0;
	for (from = 0, i = 0; rc == 0 && from < n; i++) {
		struct mav_blob_page *pg = &pages[i];

		pg->n = mav_blob_page_end(ids, from, n) - from;
		for (uint32_t j = from; j < from + pg->n; j++)
			pg->size += lens[j];
		rc = put_blob(w, ids + from, lens + from, pg->n, &pg->id);
		from += pg->n;
	}
	if (rc == 0)
		rc = mav_blob_index_encode(&enc, &elen, pages, np);
	if (rc == 0)
		rc = mav_repo_put_object(w->r, w->batch, w->flags, id, enc,
		                         elen);
	free(enc);
	free(pages);
	return rc;
}

/* Store the blob made of old[0..prefix_n) + cut chunks + old[suffix_from..]. */
static int store_blob(struct mav_writer *w, const struct mav_blob *old,
                      uint32_t prefix_n, uint32_t suffix_from, mav_id *blob_id,
                      uint64_t *size)
{
	uint32_t tail = old ? old->n - suffix_from : 0;
	uint32_t n = prefix_n + w->n + tail, k = 0;
	mav_id *ids = malloc((n ? n : 1) * sizeof(*ids));
	uint32_t *lens = malloc((n ? n : 1) * sizeof(*lens));
	int rc = 0;

	if (!ids || !lens) {
		rc = mav_error_set(MAV_ENOMEM, "out of memory");
		goto out;
	}
	*size = 0;
	for (uint32_t i = 0; i < prefix_n + tail; i++) {
		uint32_t j = i < prefix_n ? i : suffix_from + (i - prefix_n);

		if (i == prefix_n && w->n) {
			memcpy(ids + k, w->ids, w->n * sizeof(*ids));
			memcpy(lens + k, w->lens, w->n * sizeof(*lens));
			k += w->n;
		}
		ids[k] = old->ids[j];
		lens[k++] =
		    (uint32_t)(old->ends[j] - mav_blob_chunk_start(old, j));
	}
	if (k == prefix_n && w->n) { /* no suffix: cut chunks go last */
		memcpy(ids + k, w->ids, w->n * sizeof(*ids));
		memcpy(lens + k, w->lens, w->n * sizeof(*lens));
		k += w->n;
	}
	for (uint32_t i = 0; i < k; i++)
		*size += lens[i];
	rc = put_blob(w, ids, lens, k, blob_id);
	if (rc == 0)
		rc = write_batch(w);
out:
	free(ids);
	free(lens);
	return rc;
}

int mav_writer_finish(struct mav_writer *w, mav_id *blob_id, uint64_t *size)
{
	int rc = checked(w);

	if (rc == 0)
		rc = cut_window(w);
	if (rc == 0)
		rc = store_blob(w, NULL, 0, 0, blob_id, size);
	return remember(w, rc);
}

int mav_writer_finish_splice(struct mav_writer *w, const struct mav_blob *old,
                             uint32_t prefix_n, uint32_t suffix_from,
                             mav_id *blob_id, uint64_t *size)
{
	int rc;

	if (prefix_n > old->n || suffix_from > old->n || suffix_from < prefix_n)
		return mav_error_set(MAV_EINVAL, "bad splice range");
	rc = checked(w);
	if (rc == 0)
		rc = cut_window(w);
	if (rc == 0)
		rc = store_blob(w, old, prefix_n, suffix_from, blob_id, size);
	return remember(w, rc);
}
